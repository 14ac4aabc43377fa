//! Atomic updates of a volume's files, the kubelet's way.
//!
//! Owns the on-disk layout of configMap, secret, downwardAPI and projected
//! volumes: the files live in a hidden, timestamped directory
//! (`..2024_05_01_12_00_00.123456789`); `..data` is a symlink to the current
//! one; each top-level name the user sees is a symlink through `..data`.
//! An update writes a complete new directory, then renames a fresh `..data`
//! symlink over the old one — one atomic step, so a reader sees either all
//! old or all new files — then adds or removes the user-visible links and
//! deletes the old directory. Unchanged content (data and modes) is not
//! rewritten. It does not decide what the files contain (that is `pod::volumes`).

use std::collections::BTreeSet;
use std::io;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::pod::volumes::{FileEntry, Payload};

const DATA_DIR: &str = "..data";
const DATA_DIR_TMP: &str = "..data_tmp";

/// Why a payload path cannot be written: absolute, with a `..` element, or
/// starting with `..` (reserved for the writer's own names).
pub fn path_problem(p: &str) -> Option<&'static str> {
    if p.is_empty() {
        Some("must not be empty")
    } else if p.starts_with('/') {
        Some("must be a relative path")
    } else if p.split('/').any(|e| e == "..") {
        Some("must not contain '..'")
    } else if p.starts_with("..") {
        Some("must not start with '..'")
    } else {
        None
    }
}

/// Makes `dir` hold exactly `payload`. Returns whether anything changed.
///
/// Fails on an invalid path in the payload (nothing is written) or an I/O
/// error (the previous content stays visible).
pub fn write(dir: &Path, payload: &Payload) -> io::Result<bool> {
    for path in payload.keys() {
        if let Some(problem) = path_problem(path) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid file path {path:?}: {problem}"),
            ));
        }
    }
    std::fs::create_dir_all(dir)?;
    let old = std::fs::read_link(dir.join(DATA_DIR)).ok();
    if let Some(old) = &old {
        if read_tree(&dir.join(old)).ok().as_ref() == Some(payload) {
            return Ok(false);
        }
    }

    let ts_name = timestamp_dir_name();
    let ts_dir = dir.join(&ts_name);
    std::fs::create_dir(&ts_dir)?;
    std::fs::set_permissions(&ts_dir, std::fs::Permissions::from_mode(0o755))?;
    let written = write_files(&ts_dir, payload);
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&ts_dir);
        return Err(e);
    }

    let tmp = dir.join(DATA_DIR_TMP);
    let _ = std::fs::remove_file(&tmp);
    symlink(&ts_name, &tmp)?;
    std::fs::rename(&tmp, dir.join(DATA_DIR))?;

    let top: BTreeSet<&str> = payload.keys().filter_map(|p| p.split('/').next()).collect();
    for name in &top {
        let link = dir.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            symlink(Path::new(DATA_DIR).join(name), &link)?;
        }
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if name.starts_with("..") {
            if name != DATA_DIR && name != ts_name {
                remove_any(&path)?;
            }
        } else if !top.contains(name.as_str()) && entry.file_type()?.is_symlink() {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(true)
}

fn remove_any(path: &Path) -> io::Result<()> {
    if std::fs::symlink_metadata(path)?.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    }
}

fn write_files(root: &Path, payload: &Payload) -> io::Result<()> {
    for (path, file) in payload {
        let target = root.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&target, &file.data)?;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(file.mode & 0o7777))?;
    }
    Ok(())
}

/// The files below `root` with their permission bits.
fn read_tree(root: &Path) -> io::Result<Payload> {
    let mut out = Payload::new();
    let mut stack: Vec<(PathBuf, String)> = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let meta = entry.metadata()?;
            if meta.is_dir() {
                stack.push((entry.path(), rel));
            } else {
                let data = std::fs::read(entry.path())?;
                let mode = meta.permissions().mode() & 0o7777;
                out.insert(rel, FileEntry { data, mode });
            }
        }
    }
    Ok(out)
}

/// `..YYYY_MM_DD_HH_MM_SS.<nanos><counter>`: unique within the process.
fn timestamp_dir_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = k8s_openapi::jiff::Timestamp::now();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "..{}.{:09}{n}",
        now.strftime("%Y_%m_%d_%H_%M_%S"),
        now.subsec_nanosecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(data: &str, mode: u32) -> FileEntry {
        FileEntry {
            data: data.as_bytes().to_vec(),
            mode,
        }
    }

    fn read(dir: &Path, p: &str) -> String {
        std::fs::read_to_string(dir.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"))
    }

    fn mode(dir: &Path, p: &str) -> u32 {
        std::fs::metadata(dir.join(p))
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777
    }

    #[test]
    fn files_appear_through_data_symlinks_with_their_modes() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path();
        let payload: Payload = [
            ("a.txt".to_string(), file("A", 0o644)),
            ("sub/b.txt".to_string(), file("B", 0o400)),
        ]
        .into();
        assert!(write(dir, &payload).expect("write"));
        assert_eq!(read(dir, "a.txt"), "A");
        assert_eq!(read(dir, "sub/b.txt"), "B");
        assert_eq!(mode(dir, "a.txt"), 0o644);
        assert_eq!(mode(dir, "sub/b.txt"), 0o400);
        assert_eq!(
            std::fs::read_link(dir.join("a.txt")).expect("link"),
            Path::new("..data/a.txt")
        );
        assert!(
            !write(dir, &payload).expect("again"),
            "unchanged content is not rewritten"
        );
    }

    #[test]
    fn an_update_swaps_the_data_link_and_removes_old_files_and_directories() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path();
        let first: Payload = [
            ("keep".to_string(), file("1", 0o644)),
            ("gone".to_string(), file("x", 0o644)),
        ]
        .into();
        write(dir, &first).expect("first");
        let old_target = std::fs::read_link(dir.join(DATA_DIR)).expect("data");
        let second: Payload = [
            ("keep".to_string(), file("2", 0o644)),
            ("new".to_string(), file("n", 0o600)),
        ]
        .into();
        assert!(write(dir, &second).expect("second"));
        assert_eq!(read(dir, "keep"), "2");
        assert_eq!(read(dir, "new"), "n");
        assert!(std::fs::symlink_metadata(dir.join("gone")).is_err());
        assert!(
            !dir.join(&old_target).exists(),
            "old timestamped dir removed"
        );
        let hidden: Vec<String> = std::fs::read_dir(dir)
            .expect("ls")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".."))
            .collect();
        assert_eq!(hidden.len(), 2, "{hidden:?}");
        // A mode change alone is an update too.
        let third: Payload = [
            ("keep".to_string(), file("2", 0o600)),
            ("new".to_string(), file("n", 0o600)),
        ]
        .into();
        assert!(write(dir, &third).expect("third"));
        assert_eq!(mode(dir, "keep"), 0o600);
    }

    #[test]
    fn paths_escaping_the_volume_are_refused_before_anything_is_written() {
        let tmp = tempfile::tempdir().expect("tmp");
        for bad in ["../x", "/etc/passwd", "a/../../x", "..data", ""] {
            let payload: Payload = [(bad.to_string(), file("x", 0o644))].into();
            let e = write(tmp.path(), &payload).expect_err(bad);
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{bad}");
        }
        assert_eq!(std::fs::read_dir(tmp.path()).expect("ls").count(), 0);
    }
}
