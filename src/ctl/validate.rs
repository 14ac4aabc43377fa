//! `rkubelet validate PATH|URL…`: check manifests before dropping them in.
//!
//! Reads each target — a manifest file, a directory (its `*.yaml`, `*.yml`
//! and `*.json` files, like the daemon) or an http(s) URL — and runs what the
//! daemon would: parsing, validation, identity for this node, name conflicts
//! across the targets, and admission against this node's labels
//! (`--hostname-override`, `--node-labels`). It prints one line per object:
//!
//! ```text
//! OK pod default/web-node1 (web.yaml)
//! REJECTED pod default/gpu-node1 (gpu.yaml): NodeAffinity: Predicate NodeAffinity failed: …
//! ERROR bad.yaml: document 1: spec.containers[0].image: Required value
//! ```
//!
//! and reports whether everything was OK. It runs nothing and needs no
//! Docker; it does not talk to a running daemon.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use k8s_openapi::jiff::Timestamp;

use crate::admission;
use crate::cli::ValidateArgs;
use crate::config::{self, UsageError};
use crate::manifest::{self, LoadContext, Origin};
use crate::node::NodeInfo;
use crate::source::file::is_manifest_name;
use crate::source::full_name;
use crate::source::url::{self, Fetched, Fetcher};

/// Counts of what was printed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub ok: usize,
    pub rejected: usize,
    pub errors: usize,
}

impl Summary {
    /// True when nothing was rejected or in error.
    pub fn all_ok(&self) -> bool {
        self.rejected == 0 && self.errors == 0
    }
}

/// One manifest's bytes, or why there are none.
struct Input {
    origin: Origin,
    content: Result<Vec<u8>, String>,
}

fn is_url(target: &str) -> bool {
    target.starts_with("http://") || target.starts_with("https://")
}

/// Runs the command, printing verdicts to `out`. Fails only on bad usage
/// (an invalid node name, label or header); problems with the manifests are
/// verdicts in the [`Summary`].
pub async fn run(args: &ValidateArgs, out: &mut dyn Write) -> Result<Summary, UsageError> {
    let node_name = crate::node::resolve_name(args.hostname_override.as_deref())?;
    let labels = config::node_labels(&node_name, &args.node_labels)?;
    let node = NodeInfo {
        name: node_name,
        labels,
    };
    let headers = args
        .manifest_url_header
        .iter()
        .map(|h| crate::http_client::parse_header(h))
        .collect::<Result<Vec<_>, _>>()?;
    let mut inputs = Vec::new();
    for target in &args.targets {
        if is_url(target) {
            inputs.push(fetch(target, &headers).await);
        } else {
            read_path(Path::new(target), &mut inputs);
        }
    }
    Ok(check(&inputs, &node, out))
}

async fn fetch(url: &str, headers: &[(String, String)]) -> Input {
    let origin = Origin::url(url);
    let content = match Fetcher::new(url, headers, url::DEFAULT_TIMEOUT) {
        Err(e) => Err(e),
        Ok(f) => match f.fetch(None, None).await {
            Fetched::Body { body, .. } => Ok(body),
            Fetched::NotModified => Err("the server answered 304 Not Modified".into()),
            Fetched::Failed(e) => Err(e),
        },
    };
    Input { origin, content }
}

fn read_path(path: &Path, inputs: &mut Vec<Input>) {
    let location = path.display().to_string();
    if path.is_dir() {
        let mut files: Vec<_> = match std::fs::read_dir(path) {
            Ok(rd) => rd
                .flatten()
                .filter(|e| e.file_name().to_str().is_some_and(is_manifest_name))
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect(),
            Err(e) => {
                inputs.push(Input {
                    origin: Origin::file(&location),
                    content: Err(format!("cannot read the directory: {e}")),
                });
                return;
            }
        };
        files.sort();
        if files.is_empty() {
            inputs.push(Input {
                origin: Origin::file(&location),
                content: Err("no manifest files (*.yaml, *.yml, *.json) in this directory".into()),
            });
        }
        for f in files {
            read_path(&f, inputs);
        }
        return;
    }
    inputs.push(Input {
        origin: Origin::file(&location),
        content: std::fs::read(path).map_err(|e| format!("cannot read: {e}")),
    });
}

/// Loads, de-duplicates and admits every input, printing one line per
/// object (and per warning).
fn check(inputs: &[Input], node: &NodeInfo, out: &mut dyn Write) -> Summary {
    let mut summary = Summary::default();
    let mut seen: HashMap<String, String> = HashMap::new();
    let now = Timestamp::now();
    let mut line = |s: String| {
        let _ = writeln!(out, "{s}");
    };
    for input in inputs {
        let location = &input.origin.location;
        let content = match &input.content {
            Ok(c) => c,
            Err(e) => {
                summary.errors += 1;
                line(format!("ERROR {location}: {e}"));
                continue;
            }
        };
        let ctx = LoadContext {
            node_name: &node.name,
            origin: &input.origin,
            now,
        };
        let loaded = match manifest::load(content, &ctx) {
            Ok(l) => l,
            Err(e) => {
                summary.errors += 1;
                line(format!("ERROR {e}"));
                continue;
            }
        };
        for w in &loaded.warnings {
            line(format!("WARNING {w}"));
        }
        if loaded.pods.is_empty() {
            line(format!("OK {location}: no pods"));
        }
        for pod in &loaded.pods {
            let name = full_name(pod);
            if let Some(first) = seen.get(&name) {
                summary.errors += 1;
                line(format!(
                    "ERROR pod {name} ({location}): {first} already defines it; the daemon would ignore this one"
                ));
                continue;
            }
            seen.insert(name.clone(), location.clone());
            match admission::admit(pod, node) {
                Ok(()) => {
                    summary.ok += 1;
                    line(format!("OK pod {name} ({location})"));
                }
                Err(r) => {
                    summary.rejected += 1;
                    line(format!("REJECTED pod {name} ({location}): {r}"));
                }
            }
        }
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers:\n  - {name: c, image: busybox}\n";
    const SSD: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: fast}\nspec:\n  nodeSelector: {disktype: ssd}\n  containers:\n  - {name: c, image: busybox}\n";
    const BAD: &str =
        "apiVersion: v1\nkind: Pod\nmetadata: {name: broken}\nspec:\n  containers:\n  - {name: c}\n";

    fn args(targets: Vec<String>, labels: &[&str]) -> ValidateArgs {
        ValidateArgs {
            targets,
            hostname_override: Some("node1".into()),
            node_labels: labels.iter().map(|s| s.to_string()).collect(),
            manifest_url_header: vec![],
        }
    }

    async fn validate(a: &ValidateArgs) -> (Summary, String) {
        let mut out = Vec::new();
        let s = run(a, &mut out).await.expect("usage ok");
        (s, String::from_utf8(out).expect("utf8"))
    }

    #[tokio::test]
    async fn a_directory_gets_one_verdict_per_pod_and_errors_name_the_file() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(dir.path().join("a-good.yaml"), GOOD).expect("write");
        std::fs::write(dir.path().join("b-ssd.yaml"), SSD).expect("write");
        std::fs::write(dir.path().join("c-bad.yaml"), BAD).expect("write");
        std::fs::write(dir.path().join("notes.txt"), "not a manifest").expect("write");
        let d = dir.path().display().to_string();
        let (s, out) = validate(&args(vec![d.clone()], &[])).await;
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        assert_eq!(
            lines[0],
            format!("OK pod default/web-node1 ({d}/a-good.yaml)")
        );
        assert!(
            lines[1].starts_with(&format!(
                "REJECTED pod default/fast-node1 ({d}/b-ssd.yaml): NodeAffinity: Predicate NodeAffinity failed"
            )),
            "{out}"
        );
        assert!(
            lines[2].starts_with(&format!("ERROR {d}/c-bad.yaml")) && lines[2].contains("image"),
            "{out}"
        );
        assert_eq!(
            s,
            Summary {
                ok: 1,
                rejected: 1,
                errors: 1
            }
        );
        assert!(!s.all_ok());

        // With the label, the selector matches.
        let (s, out) = validate(&args(vec![format!("{d}/b-ssd.yaml")], &["disktype=ssd"])).await;
        assert!(s.all_ok(), "{out}");
        assert_eq!(
            out.trim(),
            format!("OK pod default/fast-node1 ({d}/b-ssd.yaml)")
        );
    }

    #[tokio::test]
    async fn the_same_pod_name_twice_is_an_error_naming_both_files() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(dir.path().join("a.yaml"), GOOD).expect("write");
        std::fs::write(dir.path().join("b.yaml"), GOOD).expect("write");
        let (s, out) = validate(&args(vec![dir.path().display().to_string()], &[])).await;
        assert_eq!(s.errors, 1, "{out}");
        let err = out.lines().nth(1).expect("second line");
        assert!(
            err.starts_with("ERROR pod default/web-node1")
                && err.contains("a.yaml")
                && err.contains("b.yaml"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn missing_paths_and_empty_directories_are_errors() {
        let dir = tempfile::tempdir().expect("tmp");
        let missing = dir.path().join("nope.yaml").display().to_string();
        let (s, out) = validate(&args(
            vec![missing.clone(), dir.path().display().to_string()],
            &[],
        ))
        .await;
        assert_eq!(s.errors, 2, "{out}");
        assert!(
            out.contains(&format!("ERROR {missing}: cannot read")),
            "{out}"
        );
        assert!(out.contains("no manifest files"), "{out}");
    }

    #[tokio::test]
    async fn bad_node_labels_are_usage_errors() {
        let a = args(vec!["x.yaml".into()], &["no-equals"]);
        let mut out = Vec::new();
        let e = run(&a, &mut out).await.expect_err("usage");
        assert!(e.to_string().contains("--node-labels"), "{e}");
    }
}
