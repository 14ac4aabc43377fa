//! `rkubelet validate PATH|URL…`: check manifests before dropping them in.
//!
//! Reads each target — a manifest file, a directory (listed exactly like the
//! daemon lists its manifest directory, [`list_manifests`]) or an http(s)
//! URL — and runs what the daemon would: parsing, validation, identity for
//! this node, the daemon's [`Merger`] over all targets in order (so a pod,
//! ConfigMap or Secret whose namespace/name an earlier target already
//! defines is reported as the daemon reports it), and admission against this
//! node's labels (`--hostname-override`, `--node-labels`). It prints one line
//! per pod, per conflict and per problem:
//!
//! ```text
//! OK pod default/web-node1 (web.yaml)
//! REJECTED pod default/gpu-node1 (gpu.yaml): NodeAffinity: Predicate NodeAffinity failed: …
//! ERROR pod default/web-node1 from copy.yaml is ignored: web.yaml already defines it
//! ERROR bad.yaml: document 1: spec.containers[0].image: Required value
//! ```
//!
//! and reports whether everything was OK. It runs nothing and needs no
//! Docker; it does not talk to a running daemon.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;

use crate::admission;
use crate::cli::ValidateArgs;
use crate::config::{self, UsageError};
use crate::manifest::{self, LoadContext, Origin};
use crate::node::NodeInfo;
use crate::source::file::list_manifests;
use crate::source::url::{self, Fetched, Fetcher, FetcherError};
use crate::source::{object_key, Conflict, Defined, Merger, ObjectKind, Snapshot};

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

/// Why a target has no manifest bytes to check (printed after its location).
#[derive(Debug, thiserror::Error)]
enum Unreadable {
    #[error("cannot read the directory: {0}")]
    Directory(std::io::Error),
    #[error("no manifest files (*.yaml, *.yml, *.json) in this directory")]
    EmptyDirectory,
    #[error("cannot read: {0}")]
    File(std::io::Error),
    #[error(transparent)]
    Fetcher(#[from] FetcherError),
    #[error("the server answered 304 Not Modified")]
    NotModified,
    #[error("{0}")]
    Fetch(String),
}

/// One manifest's bytes, or why there are none.
struct Input {
    origin: Origin,
    content: Result<Vec<u8>, Unreadable>,
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
        taints: Vec::new(),
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
        Err(e) => Err(e.into()),
        Ok(f) => match f.fetch(None, None).await {
            Fetched::Body { body, .. } => Ok(body),
            Fetched::NotModified => Err(Unreadable::NotModified),
            Fetched::Failed(e) => Err(Unreadable::Fetch(e)),
        },
    };
    Input { origin, content }
}

fn read_path(path: &Path, inputs: &mut Vec<Input>) {
    let origin = Origin::file(path.display().to_string());
    if path.is_dir() {
        match list_manifests(path) {
            Err(e) => inputs.push(Input {
                origin,
                content: Err(Unreadable::Directory(e)),
            }),
            Ok(files) if files.is_empty() => inputs.push(Input {
                origin,
                content: Err(Unreadable::EmptyDirectory),
            }),
            Ok(files) => {
                for f in files {
                    read_path(&f, inputs);
                }
            }
        }
        return;
    }
    inputs.push(Input {
        origin,
        content: crate::source::file::read_manifest(path)
            .map_err(|e| Unreadable::File(std::io::Error::other(e.to_string()))),
    });
}

/// What one input turned out to be.
enum Checked<'a> {
    Unreadable(&'a Unreadable),
    Invalid(manifest::ManifestError),
    Loaded {
        defined: Defined,
        warnings: Vec<String>,
    },
}

/// Loads every input, merges them the daemon's way and admits the pods
/// that win, printing one line per pod, conflict, problem and warning.
fn check(inputs: &[Input], node: &NodeInfo, out: &mut dyn Write) -> Summary {
    let now = Timestamp::now();
    let checked: Vec<Checked<'_>> = inputs
        .iter()
        .map(|input| {
            let content = match &input.content {
                Ok(c) => c,
                Err(e) => return Checked::Unreadable(e),
            };
            let ctx = LoadContext {
                node_name: &node.name,
                origin: &input.origin,
                now,
            };
            match manifest::load(content, &ctx) {
                Ok(mut loaded) => Checked::Loaded {
                    warnings: std::mem::take(&mut loaded.warnings),
                    defined: Defined::new(loaded, &input.origin),
                },
                Err(e) => Checked::Invalid(e),
            }
        })
        .collect();

    // All targets as one source, in order: the first definition wins.
    let mut snapshot = Snapshot {
        source: "validate".into(),
        ..Default::default()
    };
    for c in &checked {
        if let Checked::Loaded { defined, .. } = c {
            defined.add_to(&mut snapshot);
        }
    }
    let (desired, diag) = Merger::new(vec![snapshot.source.clone()]).update(snapshot);
    // The conflict that ignored a definition (of `kind`, `name`, from `origin`).
    let conflict = |kind: ObjectKind, name: &str, origin: &Origin| -> Option<&Conflict> {
        (diag.conflicts.iter()).find(|c| c.kind == kind && c.name == name && &c.ignored == origin)
    };

    let mut summary = Summary::default();
    let mut line = |s: String| {
        let _ = writeln!(out, "{s}");
    };
    for (input, c) in inputs.iter().zip(&checked) {
        let location = &input.origin.location;
        let (defined, warnings) = match c {
            Checked::Unreadable(e) => {
                summary.errors += 1;
                line(format!("ERROR {location}: {e}"));
                continue;
            }
            Checked::Invalid(e) => {
                summary.errors += 1;
                line(format!("ERROR {e}"));
                continue;
            }
            Checked::Loaded { defined, warnings } => (defined, warnings),
        };
        for w in warnings {
            line(format!("WARNING {w}"));
        }
        if defined.pods.is_empty() && defined.workloads.is_empty() {
            line(format!("OK {location}: no pods"));
        }
        for w in &defined.workloads {
            let key = format!("{}/{}", w.object.kind(), w.object.key());
            let won =
                (desired.workloads.get(&key)).is_some_and(|m| Arc::ptr_eq(&m.object, &w.object));
            let kind = w.object.kind().to_lowercase();
            if won {
                summary.ok += 1;
                line(format!("OK {kind} {} ({location})", w.object.key()));
                continue;
            }
            summary.errors += 1;
            match conflict(ObjectKind::Workload, &key, &w.origin) {
                Some(c) => line(format!("ERROR {c}")),
                None => line(format!(
                    "ERROR {kind} {} ({location}): ignored",
                    w.object.key()
                )),
            }
        }
        for sp in &defined.pods {
            let name = sp.full_name();
            let merged = desired.pods.get(sp.uid());
            if !merged.is_some_and(|m| Arc::ptr_eq(&m.pod, &sp.pod)) {
                summary.errors += 1;
                match conflict(ObjectKind::Pod, &name, &sp.origin) {
                    Some(c) => line(format!("ERROR {c}")),
                    None => line(format!("ERROR pod {name} ({location}): ignored")),
                }
                continue;
            }
            match admission::admit(&sp.pod, node) {
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
        let configmaps = (defined.configmaps.iter()).map(|o| {
            let key = object_key(&o.object.metadata);
            let won = (desired.configmaps.get(&key)).is_some_and(|m| Arc::ptr_eq(m, &o.object));
            (ObjectKind::ConfigMap, key, &o.origin, won)
        });
        let secrets = (defined.secrets.iter()).map(|o| {
            let key = object_key(&o.object.metadata);
            let won = (desired.secrets.get(&key)).is_some_and(|m| Arc::ptr_eq(m, &o.object));
            (ObjectKind::Secret, key, &o.origin, won)
        });
        for (kind, key, origin, won) in configmaps.chain(secrets) {
            if won {
                continue;
            }
            summary.errors += 1;
            match conflict(kind, &key, origin) {
                Some(c) => line(format!("ERROR {c}")),
                None => line(format!(
                    "ERROR {} {key} ({location}): ignored",
                    kind.as_str()
                )),
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
    async fn a_config_map_defined_twice_is_an_error_like_the_daemon_reports_it() {
        let dir = tempfile::tempdir().expect("tmp");
        let cm = |value: &str| {
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: settings}}\ndata: {{k: {value}}}\n")
        };
        std::fs::write(dir.path().join("a.yaml"), cm("one")).expect("write");
        std::fs::write(dir.path().join("b.yaml"), cm("two")).expect("write");
        let d = dir.path().display().to_string();
        let (s, out) = validate(&args(vec![d.clone()], &[])).await;
        assert_eq!(s.errors, 1, "{out}");
        assert!(
            out.lines().any(|l| l
                == format!(
                    "ERROR configmap default/settings from {d}/b.yaml is ignored: {d}/a.yaml already defines it"
                )),
            "{out}"
        );
    }

    #[tokio::test]
    async fn workloads_get_a_verdict_and_one_defined_twice_is_an_error() {
        let dir = tempfile::tempdir().expect("tmp");
        let deploy = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: c, image: busybox}]}\n";
        std::fs::write(dir.path().join("a.yaml"), deploy).expect("write");
        let d = dir.path().display().to_string();
        let (s, out) = validate(&args(vec![d.clone()], &[])).await;
        assert!(s.all_ok(), "{out}");
        assert_eq!(
            out.trim(),
            format!("OK deployment default/web ({d}/a.yaml)")
        );
        std::fs::write(dir.path().join("b.yaml"), deploy).expect("write");
        let (s, out) = validate(&args(vec![d.clone()], &[])).await;
        assert_eq!(s.errors, 1, "{out}");
        assert!(
            out.lines().any(
                |l| l.starts_with("ERROR workload Deployment/default/web from")
                    && l.ends_with(&format!("{d}/a.yaml already defines it"))
            ),
            "{out}"
        );
    }

    #[tokio::test]
    async fn a_secret_defined_twice_in_one_file_is_one_error() {
        let dir = tempfile::tempdir().expect("tmp");
        let secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: token}\nstringData: {k: v}\n";
        std::fs::write(dir.path().join("s.yaml"), format!("{secret}---\n{secret}")).expect("write");
        let (s, out) = validate(&args(vec![dir.path().display().to_string()], &[])).await;
        assert_eq!(s.errors, 1, "{out}");
        assert_eq!(
            out.lines()
                .filter(|l| l.starts_with("ERROR secret default/token"))
                .count(),
            1,
            "{out}"
        );
    }

    #[tokio::test]
    async fn bad_node_labels_are_usage_errors() {
        let a = args(vec!["x.yaml".into()], &["no-equals"]);
        let mut out = Vec::new();
        let e = run(&a, &mut out).await.expect_err("usage");
        assert!(e.to_string().contains("--node-labels"), "{e}");
    }
}
