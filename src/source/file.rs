//! The manifest directory source.
//!
//! Watches `--config DIR` with inotify (through `notify`), plus a full rescan
//! every `--file-check-frequency` in case an event was missed. A file that is
//! complete — renamed into place, closed after writing, removed — is acted on
//! at once; while a manifest is still being written (created or modified and
//! not closed yet) the rescan waits until it is closed or quiet for 25 ms, so
//! a half-written file is not acted on. Only regular files
//! named `*.yaml`, `*.yml` or `*.json`, not hidden, are read, and sub-directories
//! are not entered — so editor leftovers (`*.swp`, `*~`, `4913`) never are.
//!
//! Each file is either good (all its pods, ConfigMaps and Secrets) or bad
//! (none). A file that stops parsing keeps its **last good** content and
//! reports the error; a file that was
//! never good contributes only its error. Unchanged bytes are not re-parsed, so
//! an identical rewrite changes nothing.
//!
//! `--config` may also name a single manifest file (as for the kubelet): that
//! file is read whatever its name, and its directory is watched.
//!
//! Until the path has been read once (a late mount, a typo), the source asks
//! orphan cleanup to leave the pods of its files alone
//! ([`Snapshot::keep_origins`]) and reports why: pods running from before a
//! restart keep running; once it is read, their normal cleanup applies. A directory that becomes unreadable later
//! keeps the pods it had.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Defined, Snapshot};
use crate::manifest::{self, LoadContext, ManifestError, Origin};

/// The source name used in snapshots.
pub const SOURCE_NAME: &str = "file";

/// Quiet time after the last inotify event before rescanning while a
/// manifest is being written.
const DEBOUNCE: Duration = Duration::from_millis(25);
/// Longest a burst of events can postpone a rescan.
const DEBOUNCE_MAX: Duration = Duration::from_millis(500);

/// Is `name` a manifest file name rkubelet reads?
pub fn is_manifest_name(name: &str) -> bool {
    !name.starts_with('.')
        && [".yaml", ".yml", ".json"]
            .iter()
            .any(|ext| name.len() > ext.len() && name.ends_with(ext))
}

/// The manifest files of `dir`, sorted: regular files (symlinks followed,
/// like the kubelet) with a manifest name; sub-directories are not entered.
/// `rkubelet validate` lists directories with this too. Fails when the
/// directory cannot be read.
pub fn list_manifests(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !is_manifest_name(name) {
            continue;
        }
        // Follows symlinks, like the kubelet; directories are skipped.
        match std::fs::metadata(entry.path()) {
            Ok(m) if m.is_file() => files.push(entry.path()),
            _ => continue,
        }
    }
    files.sort();
    Ok(files)
}

/// The manifests `--config` names: the manifest files of a directory, or
/// the path itself when it is a regular file. Fails when it cannot be read.
pub fn list_config(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    if std::fs::metadata(path)?.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    list_manifests(path)
}

/// What an inotify event says about a manifest file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    /// Being written (created, modified): wait until it is closed or quiet.
    Writing,
    /// Complete: closed after writing, renamed, removed, attributes changed.
    Settled,
}

/// Classifies an event; `None` for events that change nothing (reads).
fn classify(kind: &notify::EventKind) -> Option<Change> {
    use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind};
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => Some(Change::Settled),
        EventKind::Access(_) => None,
        EventKind::Modify(ModifyKind::Name(_) | ModifyKind::Metadata(_)) => Some(Change::Settled),
        EventKind::Remove(_) => Some(Change::Settled),
        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Any | EventKind::Other => {
            Some(Change::Writing)
        }
    }
}

/// The changes an event means for a scan of `dir`: one per manifest-named
/// path (other files are never read, so their changes do not matter), or
/// the directory itself.
fn changes(dir: &Path, ev: &notify::Event) -> Vec<(PathBuf, Change)> {
    let Some(change) = classify(&ev.kind) else {
        return Vec::new();
    };
    ev.paths
        .iter()
        .filter(|p| {
            p.as_path() == dir
                || p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(is_manifest_name)
        })
        .map(|p| (p.clone(), change))
        .collect()
}

/// Manifests being written and not closed yet.
#[derive(Debug, Default)]
struct Writing(std::collections::BTreeSet<PathBuf>);

impl Writing {
    fn note(&mut self, (path, change): (PathBuf, Change)) {
        match change {
            Change::Writing => {
                self.0.insert(path);
            }
            Change::Settled => {
                self.0.remove(&path);
            }
        }
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[derive(Debug, Clone)]
struct Entry {
    hash: [u8; 32],
    /// What the file's last good content defines.
    good: Option<Defined>,
    error: Option<ManifestError>,
    warnings: Vec<String>,
}

/// State of the manifest directory source.
#[derive(Debug)]
pub struct FileSource {
    dir: PathBuf,
    node_name: String,
    period: Duration,
    entries: BTreeMap<PathBuf, Entry>,
    dir_error: Option<ManifestError>,
    /// Has the path been read successfully since the start?
    read_once: bool,
}

impl FileSource {
    pub fn new(dir: PathBuf, node_name: String, period: Duration) -> Self {
        FileSource {
            dir,
            node_name,
            period,
            entries: BTreeMap::new(),
            dir_error: None,
            read_once: false,
        }
    }

    /// Rescans the directory. Returns true when anything changed.
    pub fn scan(&mut self, now: Timestamp) -> bool {
        let files = match list_config(&self.dir) {
            Ok(f) => f,
            Err(e) => {
                let err = ManifestError::new(
                    self.dir.display().to_string(),
                    format!("cannot read the manifest directory: {e}"),
                );
                let changed = self.dir_error.as_ref() != Some(&err);
                if changed && self.read_once {
                    tracing::error!(dir = %self.dir.display(), error = %e,
                        "cannot read the manifest directory; keeping the pods it had");
                } else if changed {
                    tracing::error!(dir = %self.dir.display(), error = %e,
                        "cannot read the manifest directory; leaving the pods of its manifests running until it can be read");
                }
                self.dir_error = Some(err);
                return changed;
            }
        };
        let mut changed = self.dir_error.take().is_some() || !self.read_once;
        self.read_once = true;
        let before = self.entries.len();
        self.entries.retain(|p, _| {
            let keep = files.contains(p);
            if !keep {
                tracing::info!(file = %p.display(), "manifest removed");
            }
            keep
        });
        changed |= self.entries.len() != before;
        for path in files {
            changed |= self.scan_file(&path, now);
        }
        changed
    }

    fn scan_file(&mut self, path: &Path, now: Timestamp) -> bool {
        let location = path.display().to_string();
        let previous = self.entries.get(path);
        let content = match std::fs::read(path) {
            Ok(c) => c,
            Err(e) => {
                // Vanished between listing and reading, or unreadable: keep
                // what we had; the next scan settles it.
                let err = ManifestError::new(&location, format!("cannot read: {e}"));
                if previous.map(|p| p.error.as_ref()) == Some(Some(&err)) {
                    return false;
                }
                tracing::warn!(file = %location, error = %e, "cannot read manifest");
                let entry = Entry {
                    hash: [0; 32],
                    good: previous.and_then(|p| p.good.clone()),
                    error: Some(err),
                    warnings: Vec::new(),
                };
                self.entries.insert(path.to_path_buf(), entry);
                return true;
            }
        };
        let hash: [u8; 32] = Sha256::digest(&content).into();
        if previous.map(|p| p.hash) == Some(hash) {
            return false;
        }
        let origin = Origin::file(&location);
        let ctx = LoadContext {
            node_name: &self.node_name,
            origin: &origin,
            now,
        };
        let entry = match manifest::load(&content, &ctx) {
            Ok(mut loaded) => {
                for w in &loaded.warnings {
                    tracing::warn!(file = %location, warning = %w, "manifest warning");
                }
                tracing::info!(file = %location, pods = loaded.pods.len(),
                    configmaps = loaded.configmaps.len(), secrets = loaded.secrets.len(),
                    "manifest loaded");
                let warnings = std::mem::take(&mut loaded.warnings);
                Entry {
                    hash,
                    good: Some(Defined::new(loaded, &origin)),
                    error: None,
                    warnings,
                }
            }
            Err(e) => {
                let kept = previous.and_then(|p| p.good.clone());
                tracing::error!(file = %location, error = %e, keeping_last_good = kept.is_some(),
                    "invalid manifest");
                Entry {
                    hash,
                    good: kept,
                    error: Some(e),
                    warnings: Vec::new(),
                }
            }
        };
        self.entries.insert(path.to_path_buf(), entry);
        true
    }

    /// The current complete snapshot.
    pub fn snapshot(&self) -> Snapshot {
        let mut snap = Snapshot {
            source: SOURCE_NAME.to_string(),
            ..Default::default()
        };
        snap.errors.extend(self.dir_error.iter().cloned());
        if !self.read_once {
            snap.keep_origins = self.keep_origins();
        }
        for entry in self.entries.values() {
            if let Some(good) = &entry.good {
                good.add_to(&mut snap);
            }
            snap.errors.extend(entry.error.iter().cloned());
            snap.warnings.extend(entry.warnings.iter().cloned());
        }
        snap
    }

    /// The origin keys of the manifests `--config` may name while it cannot
    /// be read: the path itself (a manifest file) and every file directly in
    /// it (a prefix, ending in `/`).
    fn keep_origins(&self) -> Vec<String> {
        let file = Origin::file(self.dir.display().to_string()).key();
        let dir = if file.ends_with('/') {
            file.clone()
        } else {
            format!("{file}/")
        };
        vec![file.trim_end_matches('/').to_string(), dir]
    }

    /// Runs the source until `cancel`: an initial scan, then inotify events
    /// (debounced) and periodic rescans, sending a snapshot whenever
    /// something changed (and always once at the start).
    pub async fn run(mut self, tx: mpsc::Sender<Snapshot>, cancel: CancellationToken) {
        let (ev_tx, mut ev_rx) = mpsc::channel::<(PathBuf, Change)>(256);
        let mut watcher = None;
        let mut first = true;
        let mut tick = tokio::time::interval(self.period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if watcher.is_none() {
                watcher = self.watch(ev_tx.clone());
            }
            let changed = self.scan(Timestamp::now());
            if (changed || first) && tx.send(self.snapshot()).await.is_err() {
                return;
            }
            first = false;
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
                Some(first) = ev_rx.recv() => {
                    let mut writing = Writing::default();
                    writing.note(first);
                    while let Ok(change) = ev_rx.try_recv() {
                        writing.note(change);
                    }
                    // A manifest still being written: wait until it is
                    // closed, or for a quiet moment, bounded.
                    let deadline = tokio::time::Instant::now() + DEBOUNCE_MAX;
                    while !writing.is_empty() {
                        tokio::select! {
                            _ = cancel.cancelled() => return,
                            _ = tokio::time::sleep(DEBOUNCE) => break,
                            _ = tokio::time::sleep_until(deadline) => break,
                            Some(change) = ev_rx.recv() => writing.note(change),
                        }
                    }
                }
            }
        }
    }

    /// Starts watching the directory; `None` if it cannot be watched (yet):
    /// the periodic rescan still works and the watch is retried.
    fn watch(&self, tx: mpsc::Sender<(PathBuf, Change)>) -> Option<notify::RecommendedWatcher> {
        use notify::{RecursiveMode, Watcher};
        let dir = self.dir.clone();
        let handler = move |res: notify::Result<notify::Event>| {
            if let Ok(ev) = res {
                for change in changes(&dir, &ev) {
                    // A full channel means a rescan is pending anyway (a lost
                    // "closed" only delays it by the quiet time).
                    let _ = tx.try_send(change);
                }
            }
        };
        let mut w = match notify::recommended_watcher(handler) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "cannot create a file watcher; relying on rescans");
                return None;
            }
        };
        // A manifest file is watched through its directory, so that a file
        // renamed over it is seen.
        let target = match (self.dir.is_file(), self.dir.parent()) {
            (true, Some(parent)) if !parent.as_os_str().is_empty() => parent,
            (true, _) => Path::new("."),
            (false, _) => self.dir.as_path(),
        };
        match w.watch(target, RecursiveMode::NonRecursive) {
            Ok(()) => Some(w),
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e,
                    "cannot watch the manifest directory; relying on rescans");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{
        AccessKind, AccessMode, CreateKind, DataChange, EventKind, ModifyKind, RemoveKind,
        RenameMode,
    };

    #[test]
    fn complete_files_settle_and_files_being_written_wait() {
        let dir = Path::new("/m");
        let ev = |kind, path: &str| notify::Event::new(kind).add_path(PathBuf::from(path));
        let settled = [
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            EventKind::Modify(ModifyKind::Name(RenameMode::From)),
            EventKind::Remove(RemoveKind::File),
        ];
        for kind in settled {
            assert_eq!(
                changes(dir, &ev(kind, "/m/web.yaml")),
                vec![(PathBuf::from("/m/web.yaml"), Change::Settled)],
                "{kind:?}"
            );
        }
        for kind in [
            EventKind::Create(CreateKind::File),
            EventKind::Modify(ModifyKind::Data(DataChange::Any)),
        ] {
            assert_eq!(
                changes(dir, &ev(kind, "/m/web.yaml")),
                vec![(PathBuf::from("/m/web.yaml"), Change::Writing)],
                "{kind:?}"
            );
        }
        // Reads change nothing; files rkubelet never reads do not matter.
        let read = EventKind::Access(AccessKind::Close(AccessMode::Read));
        assert!(changes(dir, &ev(read, "/m/web.yaml")).is_empty());
        let tmp = EventKind::Create(CreateKind::File);
        assert!(changes(dir, &ev(tmp, "/m/.web.yaml.tmp")).is_empty());
        assert!(changes(dir, &ev(tmp, "/m/web.yaml.swp")).is_empty());
        // The directory itself (removed, replaced) always counts.
        let gone = EventKind::Remove(RemoveKind::Folder);
        assert_eq!(
            changes(dir, &ev(gone, "/m")),
            vec![(PathBuf::from("/m"), Change::Settled)]
        );
    }

    #[test]
    fn a_manifest_is_being_written_until_it_is_closed() {
        let mut w = Writing::default();
        let p = || PathBuf::from("/m/web.yaml");
        w.note((p(), Change::Writing));
        w.note((PathBuf::from("/m/db.yaml"), Change::Settled));
        assert!(!w.is_empty());
        w.note((p(), Change::Writing));
        w.note((p(), Change::Settled));
        assert!(w.is_empty());
    }

    #[test]
    fn only_visible_yaml_yml_and_json_files_are_manifests() {
        for ok in ["web.yaml", "a.yml", "pod.json", "x.y.yaml"] {
            assert!(is_manifest_name(ok), "{ok}");
        }
        for no in [
            ".hidden.yaml",
            "web.yaml~",
            "web.yaml.swp",
            ".web.yaml.swp",
            "4913",
            "web.yaml.bak",
            "README.md",
            ".yaml",
            "yaml",
        ] {
            assert!(!is_manifest_name(no), "{no}");
        }
    }

    const POD: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers: [{name: c, image: busybox}]\n";

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rkubelet-file-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    }

    #[test]
    fn a_directory_never_read_keeps_the_pods_of_its_files_until_it_is_read() {
        let base = scratch("late");
        let dir = base.join("manifests");
        let mut src = FileSource::new(dir.clone(), "node1".into(), Duration::from_secs(1));
        assert!(src.scan(Timestamp::now()));
        let snap = src.snapshot();
        assert_eq!(snap.errors.len(), 1, "the problem is reported");
        let keep = snap.keep_origins;
        let web = Origin::file(dir.join("web.yaml").display().to_string()).key();
        assert!(
            keep.iter().any(|k| crate::source::origin_kept(k, &web)),
            "{keep:?}"
        );
        let other = Origin::file(base.join("web.yaml").display().to_string()).key();
        assert!(
            !keep.iter().any(|k| crate::source::origin_kept(k, &other)),
            "{keep:?}"
        );
        assert!(!src.scan(Timestamp::now()), "the same problem is no change");

        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("web.yaml"), POD).expect("write");
        assert!(src.scan(Timestamp::now()));
        let snap = src.snapshot();
        assert!(
            snap.errors.is_empty() && snap.keep_origins.is_empty(),
            "{snap:?}"
        );
        assert_eq!(snap.pods.len(), 1);

        // Unreadable after a good read: the pods it had stay, nothing is kept
        // by origin any more (they are desired).
        std::fs::remove_dir_all(&dir).expect("rm");
        assert!(src.scan(Timestamp::now()));
        let snap = src.snapshot();
        assert_eq!((snap.pods.len(), snap.errors.len()), (1, 1));
        assert!(snap.keep_origins.is_empty());
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn config_may_name_a_single_manifest_file_whatever_its_name() {
        let base = scratch("single");
        let file = base.join("static-pod.conf");
        std::fs::write(&file, POD).expect("write");
        let mut src = FileSource::new(file.clone(), "node1".into(), Duration::from_secs(1));
        assert!(src.scan(Timestamp::now()));
        let snap = src.snapshot();
        assert!(snap.errors.is_empty(), "{:?}", snap.errors);
        assert_eq!(snap.pods.len(), 1);
        assert_eq!(
            snap.pods[0].origin,
            Origin::file(file.display().to_string())
        );
        let _ = std::fs::remove_dir_all(&base);
    }
}
