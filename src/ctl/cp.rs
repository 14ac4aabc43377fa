//! `rkubelet cp`: files into and out of a container, as `kubectl cp` does it
//! — `tar` runs in the container through an exec on the authenticated port,
//! and rkubelet packs or unpacks the archive locally (the `tar` crate).
//! `POD:PATH` names the container side (`-c` picks the container).

use std::path::{Path, PathBuf};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use super::{secure, CtlError, Result};
use crate::cli::CpArgs;
use crate::k8s::remotecommand as rc;

/// One side of a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Side {
    Local(PathBuf),
    Pod { pod: String, path: String },
}

fn side(s: &str) -> Side {
    match s.split_once(':') {
        Some((pod, path)) if !pod.is_empty() && !pod.contains('/') => Side::Pod {
            pod: pod.to_string(),
            path: path.to_string(),
        },
        _ => Side::Local(PathBuf::from(s)),
    }
}

/// Runs `cmd` in the container with `input` on stdin (closed at its end);
/// returns (exit code, stdout, stderr).
async fn exec(
    args: &CpArgs,
    pod: &str,
    cmd: &[&str],
    input: Option<Vec<u8>>,
) -> Result<(i32, Vec<u8>, Vec<u8>)> {
    let client = secure::client(&args.secure)?;
    let ns = args.namespace.as_deref().unwrap_or("default");
    let found = client.find(ns, pod).await?;
    let name = found.metadata.name.clone().unwrap_or_default();
    let container = args.container.clone().unwrap_or_else(|| {
        found
            .spec
            .as_ref()
            .and_then(|s| s.containers.first())
            .map(|c| c.name.clone())
            .unwrap_or_default()
    });
    let mut query = form_urlencoded::Serializer::new(String::new());
    for c in cmd {
        query.append_pair("command", c);
    }
    query.append_pair("container", &container);
    query.append_pair("stdin", &input.is_some().to_string());
    query.append_pair("stdout", "true");
    query.append_pair("stderr", "true");
    let path = format!(
        "/api/v1/namespaces/{ns}/pods/{name}/exec?{}",
        query.finish()
    );
    let ws = super::stream::open(&args.secure, &path, rc::PROTOCOL_V5).await?;
    let (mut sink, mut source) = ws.split();
    let writer = async move {
        if let Some(input) = input {
            for chunk in input.chunks(32 * 1024) {
                let frame = rc::frame(rc::STDIN, chunk);
                if sink.send(Message::Binary(frame.into())).await.is_err() {
                    return sink;
                }
            }
            let _ = sink
                .send(Message::Binary(vec![rc::CLOSE, rc::STDIN].into()))
                .await;
        }
        sink
    };
    let reader = async {
        let (mut out, mut err, mut code) = (Vec::new(), Vec::new(), 1);
        while let Some(Ok(msg)) = source.next().await {
            let Message::Binary(data) = msg else {
                if matches!(msg, Message::Close(_)) {
                    break;
                }
                continue;
            };
            match data.split_first() {
                Some((&rc::STDOUT, p)) => out.extend_from_slice(p),
                Some((&rc::STDERR, p)) => err.extend_from_slice(p),
                Some((&rc::ERROR, p)) => code = super::stream::status_code(p, &mut err),
                _ => {}
            }
        }
        (code, out, err)
    };
    let (_sink, result) = tokio::join!(writer, reader);
    Ok(result)
}

fn split_remote(path: &str) -> (String, String) {
    let p = Path::new(path);
    let dir = p
        .parent()
        .map(|d| d.to_string_lossy().into_owned())
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "/".into());
    let base = p
        .file_name()
        .map(|b| b.to_string_lossy().into_owned())
        .unwrap_or_else(|| ".".into());
    (dir, base)
}

/// `rkubelet cp SRC DEST`.
pub async fn run(args: &CpArgs) -> Result<()> {
    match (side(&args.src), side(&args.dest)) {
        (Side::Pod { pod, path }, Side::Local(dest)) => {
            let (dir, base) = split_remote(&path);
            let (code, out, err) =
                exec(args, &pod, &["tar", "cf", "-", "-C", &dir, &base], None).await?;
            if code != 0 {
                return Err(CtlError(format!(
                    "error: cannot read {pod}:{path}: {}",
                    String::from_utf8_lossy(&err).trim()
                )));
            }
            unpack(&out, &base, &dest)
        }
        (Side::Local(src), Side::Pod { pod, path }) => {
            let (dir, base) = split_remote(&path);
            let archive = pack(&src, &base)?;
            let (code, _, err) =
                exec(args, &pod, &["tar", "xmf", "-", "-C", &dir], Some(archive)).await?;
            if code != 0 {
                return Err(CtlError(format!(
                    "error: cannot write {pod}:{path}: {}",
                    String::from_utf8_lossy(&err).trim()
                )));
            }
            Ok(())
        }
        _ => Err(CtlError(
            "error: one of SRC and DEST must be POD:PATH and the other a local path".into(),
        )),
    }
}

/// A tar of the local file or directory `src`, named `name` inside.
fn pack(src: &Path, name: &str) -> Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    let fail = |e: std::io::Error| CtlError(format!("error: cannot read {}: {e}", src.display()));
    if src.is_dir() {
        builder.append_dir_all(name, src).map_err(fail)?;
    } else {
        builder.append_path_with_name(src, name).map_err(fail)?;
    }
    builder.into_inner().map_err(fail)
}

/// Unpacks the archive of `name` so that `name` lands at `dest` (inside it
/// when `dest` is an existing directory). Entries outside `name` are skipped.
fn unpack(archive: &[u8], name: &str, dest: &Path) -> Result<()> {
    let target = if dest.is_dir() {
        dest.join(name)
    } else {
        dest.to_path_buf()
    };
    let fail =
        |e: std::io::Error| CtlError(format!("error: cannot write {}: {e}", target.display()));
    let mut entries = tar::Archive::new(archive);
    for entry in entries.entries().map_err(fail)? {
        let mut entry = entry.map_err(fail)?;
        let path = entry.path().map_err(fail)?.into_owned();
        let Ok(rest) = path.strip_prefix(name) else {
            continue;
        };
        if rest
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            continue;
        }
        let out = if rest.as_os_str().is_empty() {
            target.clone()
        } else {
            target.join(rest)
        };
        if let Some(parent) = out.parent() {
            std::fs::create_dir_all(parent).map_err(fail)?;
        }
        entry.unpack(&out).map_err(fail)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_paths_and_local_paths_are_told_apart() {
        assert_eq!(
            side("web:/etc/hostname"),
            Side::Pod {
                pod: "web".into(),
                path: "/etc/hostname".into()
            }
        );
        assert_eq!(side("./x"), Side::Local("./x".into()));
        assert_eq!(side("/tmp/a:b"), Side::Local("/tmp/a:b".into()));
        assert_eq!(
            split_remote("/etc/hostname"),
            ("/etc".into(), "hostname".into())
        );
        assert_eq!(split_remote("/x"), ("/".into(), "x".into()));
    }

    #[test]
    fn a_packed_file_unpacks_under_a_new_name() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("a.txt");
        std::fs::write(&src, b"payload").unwrap();
        let archive = pack(&src, "b.txt").unwrap();
        let dest = dir.path().join("copy.txt");
        unpack(&archive, "b.txt", &dest).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"payload");
    }
}
