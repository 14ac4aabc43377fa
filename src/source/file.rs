//! The manifest directory source.
//!
//! Watches `--config DIR` with inotify (through `notify`), plus a full rescan
//! every `--file-check-frequency` in case an event was missed. A file that is
//! complete — renamed into place, closed after writing, removed — is acted on
//! at once; a manifest still being written (created or modified and not
//! closed yet) is left out of every rescan until it is closed, or quiet for
//! [`WRITE_QUIET`], so a half-written file is never acted on, whatever
//! triggered the rescan. Only regular files
//! named `*.yaml`, `*.yml` or `*.json`, not hidden, are read, and sub-directories
//! are not entered — so editor leftovers (`*.swp`, `*~`, `4913`) never are.
//! A FIFO, socket or device under a manifest name is reported once and never
//! opened for reading the blocking way ([`read_manifest`] opens
//! non-blocking and checks the open file), so it cannot hang the scanner.
//!
//! Listing is cheap (`stat` only; a file whose stamp is unchanged is not
//! read again). Reading, hashing and loading happen in the background on
//! blocking threads — big files ([`BIG_FILE`]) one at a time, small ones
//! [`SMALL_LANES`] at a time — each bounded by the manifest limits
//! ([`crate::manifest::limits`]); one slow or hostile file delays no other,
//! and one still loading after [`LOAD_TIMEOUT`] is reported as such.
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
//! restart keep running; once it is read (listed, and the files of that
//! first listing loaded), their normal cleanup applies. A directory that
//! becomes unreadable later keeps the pods it had.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Defined, Snapshot};
use crate::manifest::{self, limits, LoadContext, ManifestError, Origin};

/// The source name used in snapshots.
pub const SOURCE_NAME: &str = "file";

/// A manifest being written (not closed yet) is read once it has been
/// quiet this long: a writer that never closes is not waited on forever.
pub const WRITE_QUIET: Duration = Duration::from_secs(1);

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
    Ok(list_dir(dir)?
        .into_iter()
        .filter(|(_, kind)| matches!(kind, Listed::Regular(_)))
        .map(|(path, _)| path)
        .collect())
}

/// What the listing found at a manifest name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listed {
    /// A regular file (a symlink to one counts), with its stamp.
    Regular(Stamp),
    /// Something never read: a FIFO, a socket, a device (named).
    Other(&'static str),
}

/// Every manifest-named entry of `dir`, sorted, directories left out (as
/// the kubelet does, with no word: `kubectl` tools make them).
fn list_dir(dir: &Path) -> std::io::Result<Vec<(PathBuf, Listed)>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !is_manifest_name(name) {
            continue;
        }
        // Follows symlinks, like the kubelet; a dangling one is skipped.
        // `stat` never blocks, whatever the file is.
        match std::fs::metadata(entry.path()) {
            Ok(m) if m.is_dir() => continue,
            Ok(m) => files.push((entry.path(), listed(&m))),
            Err(_) => continue,
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(files)
}

fn listed(m: &std::fs::Metadata) -> Listed {
    use std::os::unix::fs::FileTypeExt;
    let t = m.file_type();
    if m.is_file() {
        Listed::Regular(Stamp::of(m))
    } else if t.is_fifo() {
        Listed::Other("a FIFO")
    } else if t.is_socket() {
        Listed::Other("a socket")
    } else if t.is_char_device() {
        Listed::Other("a character device")
    } else if t.is_block_device() {
        Listed::Other("a block device")
    } else {
        Listed::Other("not a regular file")
    }
}

/// The manifests `--config` names: the manifest files of a directory, or
/// the path itself when it is a regular file. Fails when it cannot be read.
pub fn list_config(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    if std::fs::metadata(path)?.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    list_manifests(path)
}

/// `--config` as the scanner sees it: the directory's entries, or the one
/// file (whatever it is).
fn list_config_entries(path: &Path) -> std::io::Result<Vec<(PathBuf, Listed)>> {
    let m = std::fs::metadata(path)?;
    if m.is_dir() {
        return list_dir(path);
    }
    Ok(vec![(path.to_path_buf(), listed(&m))])
}

/// Identity and change marks of a file: a rewrite, rename or touch
/// changes at least one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(m: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Stamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }

    /// Can an unchanged stamp be trusted to mean unchanged content, for a
    /// file read at `read_at`? Not when the file changed within the second
    /// before: the kernel's coarse clock may give a second write in the
    /// same tick the same times (git's "racy clean" problem).
    fn trusted(&self, read_at: std::time::SystemTime) -> bool {
        let changed = std::time::UNIX_EPOCH
            + Duration::new(
                u64::try_from(self.ctime.0).unwrap_or(0),
                u32::try_from(self.ctime.1).unwrap_or(0),
            );
        changed + Duration::from_secs(1) < read_at
    }
}

/// Why a manifest file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A FIFO, socket or device: never read (opening a FIFO would block).
    #[error("{0}, not a regular file: only regular files are read as manifests")]
    NotRegular(&'static str),
    /// Larger than [`limits::MAX_BYTES`].
    #[error("larger than the limit of {}", limits::human_bytes(limits::MAX_BYTES))]
    TooBig,
}

/// Reads one manifest file without ever blocking on it: opened
/// non-blocking, checked to be a regular file on the open descriptor (so a
/// FIFO renamed over it meanwhile is refused, not waited on), and read up
/// to [`limits::MAX_BYTES`]. Fails when it cannot be opened or read, is not
/// a regular file, or is too big.
pub fn read_manifest(path: &Path) -> Result<Vec<u8>, ReadError> {
    read_stamped(path).map(|(content, _)| content)
}

fn read_stamped(path: &Path) -> Result<(Vec<u8>, Stamp), ReadError> {
    use nix::fcntl::OFlag;
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_NONBLOCK | OFlag::O_NOCTTY).bits())
        .open(path)?;
    let meta = file.metadata()?;
    match listed(&meta) {
        Listed::Other(kind) => return Err(ReadError::NotRegular(kind)),
        Listed::Regular(_) if meta.len() > limits::MAX_BYTES as u64 => {
            return Err(ReadError::TooBig)
        }
        Listed::Regular(_) => {}
    }
    let mut content = Vec::with_capacity(meta.len() as usize);
    file.take(limits::MAX_BYTES as u64 + 1)
        .read_to_end(&mut content)?;
    if content.len() > limits::MAX_BYTES {
        return Err(ReadError::TooBig);
    }
    Ok((content, Stamp::of(&meta)))
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

/// Manifests being written and not closed yet, with their last write; and
/// the manifests whose "complete" event (closed, renamed, …) came and that
/// have not been loaded since.
#[derive(Debug, Default)]
struct Writing {
    open: BTreeMap<PathBuf, tokio::time::Instant>,
    settled: BTreeSet<PathBuf>,
}

impl Writing {
    fn note(&mut self, (path, change): (PathBuf, Change), now: tokio::time::Instant) {
        match change {
            Change::Writing => {
                self.settled.remove(&path);
                self.open.insert(path, now);
            }
            Change::Settled => {
                self.open.remove(&path);
                self.settled.insert(path);
            }
        }
    }
    /// Forgets the files quiet for [`WRITE_QUIET`] by `now`.
    fn expire(&mut self, now: tokio::time::Instant) {
        self.open
            .retain(|_, at| now.duration_since(*at) < WRITE_QUIET);
        // Marks of files removed since are of no use.
        self.settled.retain(|p| p.symlink_metadata().is_ok());
    }
    fn contains(&self, path: &Path) -> bool {
        self.open.contains_key(path)
    }
    /// May a rescan load `path` now? Not while it is being written; nor
    /// when it changed within [`WRITE_QUIET`] (`changed_recently`) and the
    /// watcher has not reported it complete yet: a rescan can run before
    /// the watcher's events about a file just created arrive, and that
    /// file is then taken as being written until its "complete" event (or
    /// the quiet time). Loading it consumes its "complete" mark.
    fn may_load(&mut self, path: &Path, changed_recently: bool, now: tokio::time::Instant) -> bool {
        if self.contains(path) {
            return false;
        }
        if changed_recently && !self.settled.contains(path) {
            self.open.insert(path.to_path_buf(), now);
            return false;
        }
        self.settled.remove(path);
        true
    }
    /// When the next file being written counts as quiet.
    fn next_quiet(&self) -> Option<tokio::time::Instant> {
        self.open.values().min().map(|at| *at + WRITE_QUIET)
    }
}

/// Did `path`'s inode change (content, rename, attributes) within
/// [`WRITE_QUIET`]?
fn changed_recently(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return false;
    };
    let changed = std::time::UNIX_EPOCH
        + Duration::new(
            u64::try_from(meta.ctime()).unwrap_or(0),
            u32::try_from(meta.ctime_nsec()).unwrap_or(0),
        );
    // A ctime in the future (the clock went back) does not count as recent.
    changed.elapsed().is_ok_and(|ago| ago < WRITE_QUIET)
}

#[derive(Debug, Clone)]
struct Entry {
    hash: [u8; 32],
    /// The stamp of the content `hash` is of, when it can be trusted to
    /// change with the content (see [`Stamp::trusted`]): an equal stamp
    /// then skips reading the file again.
    stamp: Option<Stamp>,
    /// What the file's last good content defines.
    good: Option<Defined>,
    error: Option<ManifestError>,
    warnings: Vec<String>,
}

/// What reading and loading one file in the background gave.
#[derive(Debug)]
enum Outcome {
    /// The same bytes as before.
    Unchanged(Option<Stamp>),
    /// New bytes, loaded or not.
    Loaded {
        stamp: Option<Stamp>,
        hash: [u8; 32],
        result: Result<manifest::Loaded, ManifestError>,
    },
    /// No usable bytes: cannot be read, not a regular file, too big.
    Unreadable {
        stamp: Option<Stamp>,
        error: ManifestError,
    },
}

/// A report from a background load.
#[derive(Debug)]
enum Done {
    /// Still loading after [`LOAD_TIMEOUT`].
    Slow(PathBuf),
    Finished(PathBuf, Box<Outcome>),
}

/// A file being read and loaded in the background.
#[derive(Debug, Default)]
struct Job {
    /// It passed [`LOAD_TIMEOUT`].
    slow: bool,
    /// The file changed again meanwhile: load it once more when done.
    again: bool,
}

/// How long a file may take to read and load before it is reported as
/// slow (its last good pods stay; the result is used when it comes).
pub const LOAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Files above this size load one at a time, in their own lane, so a
/// few big files never hold up a small one nor pile up in memory.
pub const BIG_FILE: u64 = 256 * 1024;
/// Small files load this many at a time (a directory of hundreds of
/// files does not start hundreds of threads). Each is bounded by the
/// manifest limits to a fraction of a second.
pub const SMALL_LANES: usize = 4;

/// What a background load needs, cheap to clone into a blocking task.
#[derive(Debug, Clone)]
struct Loader {
    node_name: String,
    big_lane: Arc<tokio::sync::Semaphore>,
    small_lanes: Arc<tokio::sync::Semaphore>,
}

impl Loader {
    /// Reads `path` and, when its bytes are not `known`, loads them.
    fn load(&self, path: &Path, known: Option<[u8; 32]>, now: Timestamp) -> Outcome {
        let location = path.display().to_string();
        let read_at = std::time::SystemTime::now();
        let trusted = |stamp: Stamp| stamp.trusted(read_at).then_some(stamp);
        let (content, stamp) = match read_stamped(path) {
            Ok(read) => read,
            Err(e) => {
                let stamp = match &e {
                    // Those stay what they are until the file changes.
                    ReadError::NotRegular(_) | ReadError::TooBig => std::fs::metadata(path)
                        .ok()
                        .map(|m| Stamp::of(&m))
                        .and_then(trusted),
                    ReadError::Io(_) => None,
                };
                let error = match e {
                    ReadError::TooBig => limits::too_big(&location),
                    e => ManifestError::new(&location, format!("cannot read: {e}")),
                };
                return Outcome::Unreadable { stamp, error };
            }
        };
        let stamp = trusted(stamp);
        let hash: [u8; 32] = Sha256::digest(&content).into();
        if known == Some(hash) {
            return Outcome::Unchanged(stamp);
        }
        let origin = Origin::file(&location);
        let ctx = LoadContext {
            node_name: &self.node_name,
            origin: &origin,
            now,
        };
        let result = manifest::load(&content, &ctx);
        Outcome::Loaded {
            stamp,
            hash,
            result,
        }
    }
}

/// State of the manifest directory source.
#[derive(Debug)]
pub struct FileSource {
    dir: PathBuf,
    loader: Loader,
    period: Duration,
    entries: BTreeMap<PathBuf, Entry>,
    /// The manifest names of the last listing.
    listed: BTreeSet<PathBuf>,
    /// Files being loaded in the background.
    jobs: BTreeMap<PathBuf, Job>,
    dir_error: Option<ManifestError>,
    /// Has the path been listed successfully since the start?
    read_once: bool,
    /// Files of that first listing not loaded yet: until they are, the
    /// path does not count as read (its pods are not orphans).
    first_loads: BTreeSet<PathBuf>,
}

impl FileSource {
    pub fn new(dir: PathBuf, node_name: String, period: Duration) -> Self {
        FileSource {
            dir,
            loader: Loader {
                node_name,
                big_lane: Arc::new(tokio::sync::Semaphore::new(1)),
                small_lanes: Arc::new(tokio::sync::Semaphore::new(SMALL_LANES)),
            },
            period,
            entries: BTreeMap::new(),
            listed: BTreeSet::new(),
            jobs: BTreeMap::new(),
            dir_error: None,
            read_once: false,
            first_loads: BTreeSet::new(),
        }
    }

    /// Rescans the directory, loading changed files right here (tests and
    /// one-shot use; the daemon loads them in the background). Returns true
    /// when anything changed.
    pub fn scan(&mut self, now: Timestamp) -> bool {
        let (mut changed, to_load) = self.list();
        for path in to_load {
            let known = self.entries.get(&path).map(|e| e.hash);
            let outcome = self.loader.load(&path, known, now);
            changed |= self.finish(&path, outcome);
        }
        changed
    }

    /// Lists the path and settles what needs no reading (gone files,
    /// non-regular files, unchanged stamps). Returns whether anything
    /// changed and the files to read.
    fn list(&mut self) -> (bool, Vec<PathBuf>) {
        let files = match list_config_entries(&self.dir) {
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
                return (changed, Vec::new());
            }
        };
        let first_read = !self.read_once;
        let mut changed = self.dir_error.take().is_some() || first_read;
        self.read_once = true;
        self.listed = files.iter().map(|(p, _)| p.clone()).collect();
        let before = self.entries.len();
        let listed = &self.listed;
        self.entries.retain(|p, _| {
            let keep = listed.contains(p);
            if !keep {
                tracing::info!(file = %p.display(), "manifest removed");
            }
            keep
        });
        changed |= self.entries.len() != before;
        let mut to_load = Vec::new();
        for (path, kind) in files {
            match kind {
                Listed::Other(what) => {
                    let location = path.display().to_string();
                    let error =
                        ManifestError::new(&location, format!("{}", ReadError::NotRegular(what)));
                    changed |= self.finish(&path, Outcome::Unreadable { stamp: None, error });
                }
                Listed::Regular(stamp) => {
                    let unchanged = self
                        .entries
                        .get(&path)
                        .is_some_and(|e| e.stamp == Some(stamp));
                    if !unchanged {
                        to_load.push(path);
                    }
                }
            }
        }
        if first_read {
            self.first_loads = to_load.iter().cloned().collect();
        }
        (changed, to_load)
    }

    /// Takes the outcome of reading `path`. Returns true when the snapshot
    /// changed.
    fn finish(&mut self, path: &Path, outcome: Outcome) -> bool {
        // The last file of the first listing: the path now counts as read.
        let read_now = self.first_loads.remove(path) && self.first_loads.is_empty();
        self.take(path, outcome) || read_now
    }

    fn take(&mut self, path: &Path, outcome: Outcome) -> bool {
        if !self.listed.contains(path) {
            return false; // removed meanwhile
        }
        let location = path.display().to_string();
        let previous = self.entries.get(path);
        let kept = || previous.and_then(|p| p.good.clone());
        let entry = match outcome {
            Outcome::Unchanged(stamp) => {
                if let Some(e) = self.entries.get_mut(path) {
                    e.stamp = stamp;
                }
                return false;
            }
            Outcome::Unreadable { stamp, error } => {
                if previous.map(|p| p.error.as_ref()) == Some(Some(&error)) {
                    if let Some(e) = self.entries.get_mut(path) {
                        e.stamp = stamp;
                    }
                    return false;
                }
                tracing::warn!(file = %location, error = %error.reason,
                    keeping_last_good = previous.is_some_and(|p| p.good.is_some()),
                    "cannot read manifest");
                Entry {
                    hash: [0; 32],
                    stamp,
                    good: kept(),
                    error: Some(error),
                    warnings: Vec::new(),
                }
            }
            Outcome::Loaded {
                stamp,
                hash,
                result: Ok(mut loaded),
            } => {
                for w in &loaded.warnings {
                    tracing::warn!(file = %location, warning = %w, "manifest warning");
                }
                tracing::info!(file = %location, pods = loaded.pods.len(),
                    configmaps = loaded.configmaps.len(), secrets = loaded.secrets.len(),
                    "manifest loaded");
                let warnings = std::mem::take(&mut loaded.warnings);
                let origin = Origin::file(&location);
                Entry {
                    hash,
                    stamp,
                    good: Some(Defined::new(loaded, &origin)),
                    error: None,
                    warnings,
                }
            }
            Outcome::Loaded {
                stamp,
                hash,
                result: Err(e),
            } => {
                let kept = kept();
                tracing::error!(file = %location, error = %e, keeping_last_good = kept.is_some(),
                    "invalid manifest");
                Entry {
                    hash,
                    stamp,
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
        if !self.read_once || !self.first_loads.is_empty() {
            snap.keep_origins = self.keep_origins();
        }
        // A file still loading that never loaded: whatever pods it had
        // before a restart are not orphans.
        for path in self.jobs.keys() {
            if self.entries.get(path).is_none_or(|e| e.good.is_none()) {
                snap.keep_origins
                    .push(Origin::file(path.display().to_string()).key());
            }
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

    /// Starts loading `path` in the background, or marks it to be loaded
    /// again when a load is already running.
    fn start(&mut self, path: PathBuf, done: &mpsc::UnboundedSender<Done>) {
        if let Some(job) = self.jobs.get_mut(&path) {
            job.again = true;
            return;
        }
        self.jobs.insert(path.clone(), Job::default());
        let known = self.entries.get(&path).map(|e| e.hash);
        let loader = self.loader.clone();
        let done = done.clone();
        let now = Timestamp::now();
        let big = std::fs::metadata(&path).is_ok_and(|m| m.len() > BIG_FILE);
        tokio::spawn(async move {
            // Files wait for their lane here, not in a blocking thread.
            let lane = match big {
                true => loader.big_lane.clone(),
                false => loader.small_lanes.clone(),
            };
            let permit = lane.acquire_owned().await.ok();
            let task_path = path.clone();
            let mut task = tokio::task::spawn_blocking(move || {
                let outcome = loader.load(&task_path, known, now);
                drop(permit);
                outcome
            });
            let joined = tokio::select! {
                r = &mut task => r,
                _ = tokio::time::sleep(LOAD_TIMEOUT) => {
                    let _ = done.send(Done::Slow(path.clone()));
                    task.await
                }
            };
            let outcome = joined.unwrap_or_else(|e| Outcome::Unreadable {
                stamp: None,
                error: ManifestError::new(
                    path.display().to_string(),
                    format!("loading failed: {e}"),
                ),
            });
            let _ = done.send(Done::Finished(path, Box::new(outcome)));
        });
    }

    /// Takes a background report. Returns true when the snapshot changed.
    fn report(&mut self, done: Done, tx: &mpsc::UnboundedSender<Done>) -> bool {
        match done {
            Done::Slow(path) => {
                let Some(job) = self.jobs.get_mut(&path) else {
                    return false;
                };
                job.slow = true;
                self.first_loads.remove(&path);
                // (Changed in any case: the error below, or the keep.)
                let location = path.display().to_string();
                tracing::warn!(file = %location, after = ?LOAD_TIMEOUT,
                    "manifest still loading; other files are not held up");
                let Some(entry) = self.entries.get_mut(&path) else {
                    return true; // now kept by origin, see `snapshot`
                };
                entry.error = Some(ManifestError::new(
                    location,
                    format!("still loading after {LOAD_TIMEOUT:?}"),
                ));
                true
            }
            Done::Finished(path, outcome) => {
                let again = self.jobs.remove(&path).is_some_and(|j| j.again);
                let changed = self.finish(&path, *outcome);
                if again {
                    self.start(path, tx);
                }
                changed
            }
        }
    }

    /// Is every file of the first listing loaded (or reported slow)? The
    /// first snapshot waits for that, so pods running from before a
    /// restart are never taken for orphans because their file is still
    /// loading.
    fn settled(&self) -> bool {
        self.jobs.values().all(|j| j.slow)
    }

    /// Runs the source until `cancel`: an initial scan, then inotify events
    /// (debounced) and periodic rescans, sending a snapshot whenever
    /// something changed (and always once at the start). Files are read
    /// and loaded in the background (see [`LOAD_TIMEOUT`], [`BIG_FILE`]),
    /// so one slow file never delays another.
    pub async fn run(mut self, tx: mpsc::Sender<Snapshot>, cancel: CancellationToken) {
        let (ev_tx, mut ev_rx) = mpsc::channel::<(PathBuf, Change)>(256);
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
        let mut watcher = None;
        let mut first = true;
        let mut changed = true;
        let mut rescan = true;
        let mut writing = Writing::default();
        let mut tick = tokio::time::interval(self.period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if watcher.is_none() {
                watcher = self.watch(ev_tx.clone());
            }
            if rescan {
                let now = tokio::time::Instant::now();
                // Events already delivered count before the listing.
                while let Ok(change) = ev_rx.try_recv() {
                    writing.note(change, now);
                }
                writing.expire(now);
                let (c, to_load) = self.list();
                changed |= c;
                // Files still being written wait for their "closed" event
                // (or quiet time), which rescans again. The first listing
                // loads everything (files from before the start are whole).
                for path in to_load {
                    if first || writing.may_load(&path, changed_recently(&path), now) {
                        self.start(path, &done_tx);
                    }
                }
                rescan = false;
            }
            let quiet = writing.next_quiet();
            if changed && (!first || self.settled()) {
                if tx.send(self.snapshot()).await.is_err() {
                    return;
                }
                first = false;
                changed = false;
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => rescan = true,
                Some(done) = done_rx.recv() => changed |= self.report(done, &done_tx),
                _ = tokio::time::sleep_until(quiet.unwrap_or_else(tokio::time::Instant::now)),
                    if quiet.is_some() => rescan = true,
                Some(first) = ev_rx.recv() => {
                    rescan = true;
                    let now = tokio::time::Instant::now();
                    writing.note(first, now);
                    while let Ok(change) = ev_rx.try_recv() {
                        writing.note(change, now);
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
                for (path, change) in changes(&dir, &ev) {
                    // A symlink (or a hard link) is complete when created:
                    // no "closed" event follows.
                    let linked = std::fs::symlink_metadata(&path).is_ok_and(|m| {
                        use std::os::unix::fs::MetadataExt;
                        m.file_type().is_symlink() || m.nlink() > 1
                    });
                    let change = match (change, linked) {
                        (Change::Writing, true) => Change::Settled,
                        (change, _) => change,
                    };
                    let change = (path, change);
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
    fn a_manifest_is_being_written_until_it_is_closed_or_quiet() {
        let mut w = Writing::default();
        let p = || PathBuf::from("/m/web.yaml");
        let t0 = tokio::time::Instant::now();
        w.note((p(), Change::Writing), t0);
        w.note((PathBuf::from("/m/db.yaml"), Change::Settled), t0);
        assert!(w.contains(&p()));
        assert_eq!(w.next_quiet(), Some(t0 + WRITE_QUIET));
        w.note((p(), Change::Writing), t0);
        w.note((p(), Change::Settled), t0);
        assert!(!w.contains(&p()) && w.next_quiet().is_none());
        // A writer that never closes: read once it has been quiet.
        w.note((p(), Change::Writing), t0);
        w.expire(t0 + WRITE_QUIET / 2);
        assert!(w.contains(&p()));
        w.expire(t0 + WRITE_QUIET);
        assert!(!w.contains(&p()));
    }

    #[test]
    fn a_file_changed_just_now_waits_for_its_complete_event_unless_it_came() {
        let mut w = Writing::default();
        let p = || PathBuf::from("/m/web.yaml");
        let t0 = tokio::time::Instant::now();
        // Changed moments ago, no event yet: taken as being written.
        assert!(!w.may_load(&p(), true, t0));
        assert!(w.contains(&p()));
        assert_eq!(w.next_quiet(), Some(t0 + WRITE_QUIET));
        // Its "closed" event arrives: loaded, once.
        w.note((p(), Change::Settled), t0);
        assert!(w.may_load(&p(), true, t0));
        assert!(!w.may_load(&p(), true, t0));
        // Renamed into place (complete at once) before the rescan: no wait.
        w.expire(t0 + WRITE_QUIET);
        w.note((p(), Change::Settled), t0);
        assert!(w.may_load(&p(), true, t0));
        // An old file loads at once.
        assert!(w.may_load(&PathBuf::from("/m/old.yaml"), false, t0));
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

    fn mkfifo(path: &Path) {
        nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o644)).expect("mkfifo");
    }

    #[test]
    fn a_fifo_renamed_over_a_manifest_is_refused_at_once_and_keeps_its_pods() {
        let dir = scratch("fifo");
        let web = dir.join("web.yaml");
        std::fs::write(&web, POD).expect("write");
        let mut src = FileSource::new(dir.clone(), "node1".into(), Duration::from_secs(1));
        assert!(src.scan(Timestamp::now()));
        assert_eq!(src.snapshot().pods.len(), 1);

        let fifo = dir.join(".tmp-fifo");
        mkfifo(&fifo);
        std::fs::rename(&fifo, &web).expect("rename");
        // A fresh FIFO of its own too. Opening either for reading the usual
        // way would block this test forever.
        mkfifo(&dir.join("pipe.yaml"));
        assert!(src.scan(Timestamp::now()));
        let snap = src.snapshot();
        assert_eq!(snap.pods.len(), 1, "the last good pods stay");
        let shown: Vec<String> = snap.errors.iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 2, "{shown:?}");
        for (shown, file) in shown.iter().zip(["pipe.yaml", "web.yaml"]) {
            assert!(shown.contains(file), "{shown}");
            assert!(shown.contains("a FIFO, not a regular file"), "{shown}");
        }
        assert!(
            !src.scan(Timestamp::now()),
            "reported once, not on every scan"
        );

        // The read path refuses a FIFO on the open descriptor as well.
        let e = read_manifest(&web).expect_err("a FIFO");
        assert!(matches!(e, ReadError::NotRegular("a FIFO")), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_file_over_the_size_limit_is_refused_naming_the_limit() {
        let dir = scratch("big");
        let big = dir.join("big.yaml");
        let mut text = POD.to_string();
        text.push_str(&format!("# {}\n", "x".repeat(limits::MAX_BYTES)));
        std::fs::write(&big, &text).expect("write");
        let mut src = FileSource::new(dir.clone(), "node1".into(), Duration::from_secs(1));
        assert!(src.scan(Timestamp::now()));
        let snap = src.snapshot();
        assert!(snap.pods.is_empty());
        let shown = snap.errors[0].to_string();
        assert_eq!(
            shown,
            format!(
                "{}: manifest is larger than the limit of 4 MiB (split it into several files)",
                big.display()
            )
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_unchanged_file_is_not_read_again_once_its_stamp_is_trusted() {
        let old = Stamp {
            dev: 1,
            ino: 2,
            size: 3,
            mtime: (1_000, 0),
            ctime: (1_000, 0),
        };
        let at = |secs: u64, nanos: u32| std::time::UNIX_EPOCH + Duration::new(secs, nanos);
        assert!(old.trusted(at(1_002, 0)));
        assert!(!old.trusted(at(1_000, 500_000_000)), "written just before");
        assert!(!old.trusted(at(1_001, 0)), "within the second");
    }

    #[test]
    fn the_path_counts_as_read_only_once_the_files_of_its_first_listing_are_loaded() {
        let dir = scratch("first");
        std::fs::write(dir.join("web.yaml"), POD).expect("write");
        let mut src = FileSource::new(dir.clone(), "node1".into(), Duration::from_secs(1));
        let (changed, to_load) = src.list();
        assert!(changed);
        assert_eq!(to_load, [dir.join("web.yaml")]);
        // Loading in the background: the pods of the directory are kept.
        let kept = src.snapshot().keep_origins;
        let web = Origin::file(dir.join("web.yaml").display().to_string()).key();
        assert!(
            kept.iter().any(|k| crate::source::origin_kept(k, &web)),
            "{kept:?}"
        );
        let outcome = src.loader.load(&to_load[0], None, Timestamp::now());
        assert!(src.finish(&to_load[0], outcome));
        let snap = src.snapshot();
        assert!(snap.keep_origins.is_empty(), "{:?}", snap.keep_origins);
        assert_eq!(snap.pods.len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_file_still_loading_after_the_timeout_is_reported_and_keeps_its_pods() {
        let dir = scratch("slow");
        let web = dir.join("web.yaml");
        std::fs::write(&web, POD).expect("write");
        let mut src = FileSource::new(dir.clone(), "node1".into(), Duration::from_secs(1));
        assert!(src.scan(Timestamp::now()));
        // A new load of web.yaml, and a first one of new.yaml, both slow.
        let new = dir.join("new.yaml");
        src.listed.insert(new.clone());
        src.jobs.insert(web.clone(), Job::default());
        src.jobs.insert(new.clone(), Job::default());
        assert!(!src.settled());
        let (tx, _rx) = mpsc::unbounded_channel();
        assert!(src.report(Done::Slow(web.clone()), &tx));
        assert!(src.report(Done::Slow(new.clone()), &tx));
        assert!(src.settled(), "slow loads do not hold up snapshots");
        let snap = src.snapshot();
        assert_eq!(snap.pods.len(), 1, "the last good pods stay");
        let shown = snap.errors[0].to_string();
        assert_eq!(shown, format!("{}: still loading after 10s", web.display()));
        let new_key = Origin::file(new.display().to_string()).key();
        assert_eq!(
            snap.keep_origins,
            [new_key],
            "a file never loaded keeps its pods"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
