//! A pod's volumes on the host: setup, refresh, teardown.
//!
//! Creates, fills and removes what lives below `<root-dir>/pods/<uid>/`
//! (the paths are [`crate::pod::layout`]'s): one directory per volume, the
//! pod's managed hosts file and one termination-message file per container
//! instance. What goes in them (plugin, medium, files, hosts content) is
//! computed by [`crate::pod::volumes`]. It sets volumes up
//! the kubelet's way — `emptyDir` (0777, on disk or on a tmpfs sized by
//! `sizeLimit` or the pod's memory limit), `hostPath` with its type check,
//! `configMap`/`secret`/`downwardAPI`/`projected` written by the
//! [`atomic_writer`] (secrets, downward API and
//! projections on a tmpfs, never on disk) — refreshes the API-data volumes
//! in place when ConfigMaps or Secrets change, watches `sizeLimit` of disk
//! `emptyDir`s, checks `subPath`s against symlink escapes, and tears it all
//! down (unmounting tmpfs first, also leftovers of an earlier run).
//! It does not decide when (that is the worker) or build container configs
//! (that is `convert`).

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, HostPathVolumeSource, Pod, Volume};

use super::atomic_writer;
use crate::events::{Involved, Recorder};
use crate::pod::convert::{self, PodSetup};
use crate::pod::downward::NodeCapacity;
use crate::pod::layout;
use crate::pod::objects::Objects;
use crate::pod::volumes::{self as spec, Medium, Plugin, VolumeError};
use crate::runtime::ContainerConfig;

/// A hostPath that fails its type check or cannot be created.
#[derive(Debug, thiserror::Error)]
pub enum HostPathError {
    /// The path has a `..` component.
    #[error("hostPath {path:?} must not contain '..'")]
    DotDot { path: String },
    /// An `…OrCreate` path cannot be created.
    #[error("hostPath {path:?}: {source}")]
    Io { path: String, source: io::Error },
    /// The path exists but is not what its type says.
    #[error("hostPath type check failed: {path} is not a {want}")]
    WrongType { path: String, want: &'static str },
    /// The path does not exist and its type does not create it.
    #[error("hostPath type check failed: {path} does not exist (type {type_})")]
    Missing { path: String, type_: String },
    /// A type Kubernetes does not define.
    #[error("hostPath type {type_:?} is not supported")]
    UnsupportedType { type_: String },
}

/// Why one volume cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// Its content cannot be computed (a missing object or key, …).
    #[error(transparent)]
    Spec(#[from] VolumeError),
    #[error(transparent)]
    HostPath(#[from] HostPathError),
    /// A tmpfs cannot be mounted.
    #[error("cannot mount a tmpfs at {}: {source}", dir.display())]
    Mount {
        dir: PathBuf,
        source: nix::errno::Errno,
    },
    /// Creating or writing its directory failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// A volume of a pod that cannot be set up, as the kubelet reports it.
#[derive(Debug, thiserror::Error)]
#[error("MountVolume.SetUp failed for volume \"{volume}\": {error}")]
pub struct MountFailed {
    pub volume: String,
    #[source]
    pub error: SetupError,
}

/// A file rkubelet manages for the pod that cannot be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {}: {source}", path.display())]
pub struct WriteError {
    pub path: PathBuf,
    pub source: io::Error,
}

/// Why a pod's volumes and managed files cannot be made ready for its
/// containers; the worker reports it as `CreateContainerConfigError`.
#[derive(Debug, thiserror::Error)]
pub enum PodSetupError {
    #[error(transparent)]
    Mount(#[from] MountFailed),
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// A `subPath` that cannot be resolved inside its volume.
#[derive(Debug, thiserror::Error)]
pub enum SubPathError {
    #[error("{} is not inside {}", full.display(), base.display())]
    NotInside { full: PathBuf, base: PathBuf },
    /// A component that is not a plain name (`..`, `/`).
    #[error("{} must stay inside its volume", rel.display())]
    Escapes { rel: PathBuf },
    #[error("{} is a symlink leading outside the volume; refused", rel.display())]
    SymlinkOut { rel: PathBuf },
    /// A path that cannot be resolved.
    #[error("{}: {source}", path.display())]
    Resolve { path: PathBuf, source: io::Error },
    /// A missing directory that cannot be created.
    #[error("cannot create {}: {source}", path.display())]
    Create { path: PathBuf, source: io::Error },
}

/// Why a container instance cannot be prepared (`CreateContainerConfigError`).
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// Its termination-message file cannot be created.
    #[error("cannot create {}: {source}", path.display())]
    TerminationLog { path: PathBuf, source: io::Error },
    /// A `subPath` mount cannot be resolved.
    #[error("subPath of volume {volume:?} in container {container:?}: {error}")]
    SubPath {
        volume: String,
        container: String,
        #[source]
        error: SubPathError,
    },
}

/// How often disk `emptyDir`s with a `sizeLimit` are measured.
const SIZE_CHECK_PERIOD: Duration = Duration::from_secs(10);

/// Checks (and for the `…OrCreate` types creates) a hostPath.
///
/// Fails naming the path and what it should be.
pub fn check_host_path(hp: &HostPathVolumeSource) -> Result<(), HostPathError> {
    let path = Path::new(&hp.path);
    if hp.path.split('/').any(|c| c == "..") {
        return Err(HostPathError::DotDot {
            path: hp.path.clone(),
        });
    }
    let ty = hp.type_.as_deref().unwrap_or_default();
    let meta = std::fs::metadata(path);
    let describe = |source: io::Error| HostPathError::Io {
        path: hp.path.clone(),
        source,
    };
    let want = |want: &'static str, ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(HostPathError::WrongType {
                path: hp.path.clone(),
                want,
            })
        }
    };
    match ty {
        "" => Ok(()),
        "DirectoryOrCreate" => match meta {
            Ok(m) => want("directory", m.is_dir()),
            Err(_) => {
                std::fs::create_dir_all(path).map_err(describe)?;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
                    .map_err(describe)
            }
        },
        "FileOrCreate" => match meta {
            Ok(m) => want("file", m.is_file()),
            Err(_) => {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(describe)?;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
                    .map_err(describe)
            }
        },
        _ => {
            let Ok(m) = meta else {
                return Err(HostPathError::Missing {
                    path: hp.path.clone(),
                    type_: ty.to_string(),
                });
            };
            let ft = m.file_type();
            match ty {
                "Directory" => want("directory", ft.is_dir()),
                "File" => want("file", ft.is_file()),
                "Socket" => want("socket", ft.is_socket()),
                "CharDevice" => want("character device", ft.is_char_device()),
                "BlockDevice" => want("block device", ft.is_block_device()),
                other => Err(HostPathError::UnsupportedType {
                    type_: other.to_string(),
                }),
            }
        }
    }
}

/// Decodes the octal escapes (`\040`) of a path in `/proc/self/mountinfo`.
fn unescape_mount_path(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let digits = &b[i + 1..i + 4];
            let parsed = std::str::from_utf8(digits)
                .ok()
                .and_then(|d| u8::from_str_radix(d, 8).ok());
            if let Some(v) = parsed {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Mount points at or below `dir`, deepest first.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut found: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_mount_path(p)))
        .filter(|p| p.starts_with(dir))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    found
}

fn is_mount_point(dir: &Path) -> bool {
    mounts_under(dir).iter().any(|p| p == dir)
}

fn mount_tmpfs(dir: &Path, size_bytes: Option<i64>, mode: u32) -> Result<(), SetupError> {
    use nix::mount::{mount, MsFlags};
    if is_mount_point(dir) {
        return Ok(());
    }
    let mut options = format!("mode={mode:o}");
    if let Some(size) = size_bytes.filter(|s| *s > 0) {
        options.push_str(&format!(",size={size}"));
    }
    mount(
        Some("tmpfs"),
        dir,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(options.as_str()),
    )
    .map_err(|source| SetupError::Mount {
        dir: dir.to_path_buf(),
        source,
    })
}

/// Unmounts every mount below `pod_dir` (tmpfs volumes, also leftovers of
/// an earlier run) and removes the directory. A missing directory is fine.
///
/// Fails when the directory cannot be removed (the caller retries).
pub fn teardown(pod_dir: &Path) -> io::Result<()> {
    use nix::mount::{umount2, MntFlags};
    for m in mounts_under(pod_dir) {
        if let Err(e) = umount2(&m, MntFlags::MNT_DETACH) {
            tracing::warn!(mount = %m.display(), error = %e, "cannot unmount volume");
        }
    }
    match std::fs::remove_dir_all(pod_dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Bytes used below `dir` (files counted once by size, not following links).
pub fn disk_usage(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(m) = e.path().symlink_metadata() else {
                continue;
            };
            if m.is_dir() {
                stack.push(e.path());
            } else {
                total += m.len();
            }
        }
    }
    total
}

/// The volumes of one pod and what has been set up.
pub struct PodVolumes {
    pod_dir: PathBuf,
    recorder: Arc<Recorder>,
    /// The pod, for events.
    involved: Involved,
    /// Host path of every volume set up so far.
    ready: BTreeMap<String, String>,
    /// Objects version the API-data volumes were last refreshed for.
    refreshed: Option<u64>,
    /// The `sizeLimit` watcher of disk emptyDirs, stopped on drop.
    size_watch: Option<tokio::task::AbortHandle>,
}

impl Drop for PodVolumes {
    fn drop(&mut self) {
        if let Some(h) = self.size_watch.take() {
            h.abort();
        }
    }
}

impl PodVolumes {
    /// Volumes below `pod_dir`; events go to `recorder` about `involved`.
    pub fn new(pod_dir: PathBuf, recorder: Arc<Recorder>, involved: Involved) -> Self {
        PodVolumes {
            pod_dir,
            recorder,
            involved,
            ready: BTreeMap::new(),
            refreshed: None,
            size_watch: None,
        }
    }

    /// Sets up every volume not set up yet and returns the host path per
    /// volume name. Idempotent: an existing emptyDir keeps its data and a
    /// mounted tmpfs is not mounted again (also after an rkubelet restart).
    ///
    /// Fails with `MountVolume.SetUp failed for volume "x": …` for the first
    /// volume that cannot be set up (reported as a `FailedMount` event); the
    /// caller retries, and the volumes that worked stay set up.
    pub fn setup(
        &mut self,
        pod: &Pod,
        objects: &Objects,
        node: &NodeCapacity,
    ) -> Result<BTreeMap<String, String>, MountFailed> {
        let mut first_error = None;
        for v in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
            if self.ready.contains_key(&v.name) {
                continue;
            }
            match self.setup_one(pod, v, objects, node) {
                Ok(path) => {
                    self.ready.insert(v.name.clone(), path);
                }
                Err(error) => {
                    let failed = MountFailed {
                        volume: v.name.clone(),
                        error,
                    };
                    self.recorder
                        .warning(&self.involved, "FailedMount", failed.to_string());
                    first_error.get_or_insert(failed);
                }
            }
        }
        let size_limited = spec::disk_size_limits(pod);
        if self.size_watch.is_none() && !size_limited.is_empty() {
            let (recorder, involved) = (self.recorder.clone(), self.involved.clone());
            self.size_watch = Some(watch_size_limits(
                recorder,
                involved,
                &self.pod_dir,
                size_limited,
                SIZE_CHECK_PERIOD,
            ));
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(self.ready.clone()),
        }
    }

    fn setup_one(
        &self,
        pod: &Pod,
        v: &Volume,
        objects: &Objects,
        node: &NodeCapacity,
    ) -> Result<String, SetupError> {
        match spec::plugin_of(v)? {
            Plugin::HostPath => {
                let hp = v.host_path.clone().unwrap_or_default();
                check_host_path(&hp)?;
                Ok(hp.path)
            }
            Plugin::EmptyDir => {
                let ed = v.empty_dir.clone().unwrap_or_default();
                let dir = layout::volume_dir(&self.pod_dir, spec::EMPTY_DIR, &v.name);
                std::fs::create_dir_all(&dir)?;
                if let Medium::Memory { size } = spec::empty_dir_medium(pod, &ed)? {
                    mount_tmpfs(&dir, size, 0o777)?;
                }
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))?;
                Ok(dir.display().to_string())
            }
            Plugin::ApiData { name, tmpfs } => {
                let files = spec::payload(pod, v, objects, node)?.unwrap_or_default();
                let dir = layout::volume_dir(&self.pod_dir, name, &v.name);
                std::fs::create_dir_all(&dir)?;
                if tmpfs {
                    mount_tmpfs(&dir, None, 0o755)?;
                }
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
                atomic_writer::write(&dir, &files)?;
                Ok(dir.display().to_string())
            }
        }
    }

    /// Rewrites configMap, secret and projected volumes that exist on disk
    /// (set up now or by an earlier run) when `objects` is newer than the
    /// last refresh. Returns whether `objects` was new. A volume whose
    /// object or key went missing keeps its last content (reported).
    pub fn refresh(&mut self, pod: &Pod, objects: &Objects, node: &NodeCapacity) -> bool {
        if self.refreshed == Some(objects.version) {
            return false;
        }
        self.refreshed = Some(objects.version);
        for v in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
            let Ok(Plugin::ApiData { name, .. }) = spec::plugin_of(v) else {
                continue;
            };
            let dir = layout::volume_dir(&self.pod_dir, name, &v.name);
            if std::fs::symlink_metadata(dir.join("..data")).is_err() {
                continue;
            }
            match spec::payload(pod, v, objects, node) {
                Ok(Some(files)) => match atomic_writer::write(&dir, &files) {
                    Ok(true) => tracing::info!(volume = %v.name, "volume content updated"),
                    Ok(false) => {}
                    Err(e) => tracing::warn!(volume = %v.name, error = %e, "cannot update volume"),
                },
                Ok(None) => {}
                Err(e) => self.recorder.warning(
                    &self.involved,
                    "FailedMount",
                    format!(
                        "MountVolume.SetUp failed for volume \"{}\": {e}; keeping its last content",
                        v.name
                    ),
                ),
            }
        }
        true
    }

    /// The pod's hosts file, (re)written for `pod_ip` when it differs.
    /// In place, so running containers see the change.
    ///
    /// Fails when the file cannot be written.
    pub fn write_hosts_file(&self, pod: &Pod, pod_ip: &str) -> Result<String, WriteError> {
        let path = layout::hosts_file_path(&self.pod_dir);
        let content = spec::hosts_file(pod, pod_ip);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(content.as_str()) {
            std::fs::create_dir_all(&self.pod_dir)
                .and_then(|()| std::fs::write(&path, &content))
                .and_then(|()| {
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
                })
                .map_err(|source| WriteError {
                    path: path.clone(),
                    source,
                })?;
        }
        Ok(path.display().to_string())
    }
}

/// Measures disk emptyDirs with a `sizeLimit` periodically and reports an
/// event when one exceeds it (again only after it fell below).
fn watch_size_limits(
    recorder: Arc<Recorder>,
    involved: Involved,
    pod_dir: &Path,
    volumes: Vec<spec::SizeLimit>,
    period: Duration,
) -> tokio::task::AbortHandle {
    let volumes: Vec<(spec::SizeLimit, PathBuf)> = volumes
        .into_iter()
        .map(|v| {
            let dir = layout::volume_dir(pod_dir, spec::EMPTY_DIR, &v.volume);
            (v, dir)
        })
        .collect();
    let task = tokio::spawn(async move {
        let mut over: BTreeSet<String> = BTreeSet::new();
        let mut tick = tokio::time::interval(period);
        loop {
            tick.tick().await;
            for (
                spec::SizeLimit {
                    volume: name,
                    bytes: limit,
                    quantity,
                },
                dir,
            ) in &volumes
            {
                let d = dir.clone();
                let used = tokio::task::spawn_blocking(move || disk_usage(&d))
                    .await
                    .unwrap_or(0);
                let exceeded = i64::try_from(used).unwrap_or(i64::MAX) > *limit;
                if exceeded && over.insert(name.clone()) {
                    recorder.warning(
                        &involved,
                        "EmptyDirSizeLimitExceeded",
                        format!(
                            "Usage of EmptyDir volume \"{name}\" exceeds the limit \"{quantity}\" ({used} bytes used)."
                        ),
                    );
                } else if !exceeded {
                    over.remove(name);
                }
            }
        }
    });
    task.abort_handle()
}

/// Makes one container instance ready to be created: creates its
/// termination-message file (mode 0666, older instances' files removed but
/// the previous one), resolves `subPath` mounts to real paths inside their
/// volume (creating missing directories, refusing symlinks that lead out),
/// and reports `envFrom` keys skipped for invalid names as events about
/// `involved` (the container).
///
/// Fails with a message for `CreateContainerConfigError`.
pub fn prepare_container(
    pod: &Pod,
    c: &Container,
    restart_count: u32,
    config: &mut ContainerConfig,
    ctx: &PodSetup,
    events: (&Recorder, &Involved),
) -> Result<(), PrepareError> {
    if let Some(dir) = &ctx.pod_dir {
        let log = layout::termination_log_path(dir, &c.name, restart_count);
        let made = log
            .parent()
            .map(std::fs::create_dir_all)
            .unwrap_or(Ok(()))
            .and_then(|()| std::fs::write(&log, b""))
            .and_then(|()| std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o666)));
        made.map_err(|source| PrepareError::TerminationLog {
            path: log.clone(),
            source,
        })?;
        if let Ok(entries) = std::fs::read_dir(layout::container_dir(dir, &c.name)) {
            for e in entries.flatten() {
                let old = e.file_name().to_string_lossy().parse::<u32>().ok();
                if old.is_some_and(|n| n + 1 < restart_count) {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
    }
    for (m, mount) in c
        .volume_mounts
        .iter()
        .flatten()
        .zip(config.mounts.iter_mut())
    {
        let Some(base) = ctx.volumes.get(&m.name) else {
            continue;
        };
        if mount.host_path == *base {
            continue;
        }
        let resolved =
            resolve_sub_path(Path::new(base), Path::new(&mount.host_path)).map_err(|error| {
                PrepareError::SubPath {
                    volume: m.name.clone(),
                    container: c.name.clone(),
                    error,
                }
            })?;
        mount.host_path = resolved.display().to_string();
    }
    for message in convert::invalid_env_from_keys(pod, c, &ctx.objects) {
        events
            .0
            .warning(events.1, "InvalidEnvironmentVariableNames", message);
    }
    Ok(())
}

/// The real path of `full` (below `base`), creating missing directories
/// with the volume's mode.
///
/// Fails when a component is a symlink leading outside `base`.
pub fn resolve_sub_path(base: &Path, full: &Path) -> Result<PathBuf, SubPathError> {
    let rel = full
        .strip_prefix(base)
        .map_err(|_| SubPathError::NotInside {
            full: full.to_path_buf(),
            base: base.to_path_buf(),
        })?;
    let root = base
        .canonicalize()
        .map_err(|source| SubPathError::Resolve {
            path: base.to_path_buf(),
            source,
        })?;
    let mode = std::fs::metadata(&root)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o755);
    let mut current = root.clone();
    for comp in rel.components() {
        let Component::Normal(part) = comp else {
            return Err(SubPathError::Escapes {
                rel: rel.to_path_buf(),
            });
        };
        let next = current.join(part);
        match std::fs::symlink_metadata(&next) {
            Ok(_) => {
                let real = next
                    .canonicalize()
                    .map_err(|source| SubPathError::Resolve {
                        path: next.clone(),
                        source,
                    })?;
                if !real.starts_with(&root) {
                    return Err(SubPathError::SymlinkOut {
                        rel: rel.to_path_buf(),
                    });
                }
                current = real;
            }
            Err(_) => {
                std::fs::create_dir(&next)
                    .and_then(|()| {
                        std::fs::set_permissions(&next, std::fs::Permissions::from_mode(mode))
                    })
                    .map_err(|source| SubPathError::Create {
                        path: next.clone(),
                        source,
                    })?;
                current = next;
            }
        }
    }
    Ok(current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod::objects::ObjectStore;
    use crate::pod::volumes::tests::{objects, pod, NODE};

    fn test_volumes(dir: PathBuf) -> PodVolumes {
        let recorder = Arc::new(Recorder::new("node1"));
        PodVolumes::new(dir, recorder, Involved::pod("default", "web-node1", "u"))
    }

    #[test]
    fn host_path_types_are_checked_and_the_or_create_types_create() {
        let tmp = tempfile::tempdir().expect("tmp");
        let hp = |path: &Path, ty: &str| HostPathVolumeSource {
            path: path.display().to_string(),
            type_: Some(ty.to_string()),
        };
        let dir = tmp.path().join("made/deep");
        check_host_path(&hp(&dir, "DirectoryOrCreate")).expect("created");
        let m = std::fs::metadata(&dir).expect("exists");
        assert!(m.is_dir());
        assert_eq!(m.permissions().mode() & 0o777, 0o755);
        let file = tmp.path().join("f");
        check_host_path(&hp(&file, "FileOrCreate")).expect("created");
        assert_eq!(
            std::fs::metadata(&file).expect("file").permissions().mode() & 0o777,
            0o644
        );
        check_host_path(&hp(&file, "File")).expect("is a file");
        check_host_path(&hp(&dir, "Directory")).expect("is a dir");
        let e = check_host_path(&hp(&tmp.path().join("nope"), "File")).expect_err("missing");
        assert!(e.to_string().contains("does not exist"), "{e}");
        let e = check_host_path(&hp(&file, "Directory")).expect_err("wrong type");
        assert!(e.to_string().contains("is not a directory"), "{e}");
        let e = check_host_path(&hp(&dir, "Socket")).expect_err("not a socket");
        assert!(e.to_string().contains("is not a socket"), "{e}");
        check_host_path(&hp(Path::new("/dev/null"), "CharDevice")).expect("char device");
        let e = check_host_path(&hp(Path::new("/dev/null"), "BlockDevice")).expect_err("block");
        assert!(e.to_string().contains("block device"), "{e}");
        let e = check_host_path(&hp(Path::new("/tmp/../etc"), "")).expect_err("dots");
        assert!(e.to_string().contains("'..'"), "{e}");
        check_host_path(&hp(&tmp.path().join("whatever"), "")).expect("no check");
        let no_parent = tmp.path().join("no/parent/file");
        assert!(check_host_path(&hp(&no_parent, "FileOrCreate")).is_err());
    }

    #[test]
    fn sub_paths_are_created_inside_and_symlinks_out_are_refused() {
        let tmp = tempfile::tempdir().expect("tmp");
        let base = tmp.path().join("vol");
        std::fs::create_dir(&base).expect("vol");
        let made = resolve_sub_path(&base, &base.join("a/b")).expect("created");
        assert!(made.is_dir() && made.starts_with(base.canonicalize().expect("canon")));
        std::os::unix::fs::symlink("/etc", base.join("out")).expect("link");
        let e = resolve_sub_path(&base, &base.join("out/passwd")).expect_err("escape");
        assert!(e.to_string().contains("outside the volume"), "{e}");
        std::os::unix::fs::symlink("a", base.join("in")).expect("link");
        let inside = resolve_sub_path(&base, &base.join("in/b")).expect("inside");
        assert_eq!(inside, made);
    }

    #[test]
    fn empty_dirs_persist_memory_ones_are_sized_tmpfs_and_teardown_unmounts() {
        let tmp = tempfile::tempdir().expect("tmp");
        let pod_dir = tmp.path().join("pods/uid1");
        let p = pod("  volumes:\n  - {name: disk, emptyDir: {}}\n  - {name: mem, emptyDir: {medium: Memory, sizeLimit: 10Mi}}\n  - {name: podmem, emptyDir: {medium: Memory}}\n  - {name: cm, configMap: {name: app}}\n  - {name: sec, secret: {secretName: s, optional: true}}\n");
        let mut vols = test_volumes(pod_dir.clone());
        let paths = vols.setup(&p, &objects(), &NODE).expect("setup");
        assert_eq!(paths.len(), 5);
        let disk = PathBuf::from(&paths["disk"]);
        assert_eq!(
            std::fs::metadata(&disk).expect("dir").permissions().mode() & 0o777,
            0o777
        );
        std::fs::write(disk.join("keep"), "x").expect("write");
        let mounts = std::fs::read_to_string("/proc/self/mounts").expect("mounts");
        let line = |p: &str| {
            mounts
                .lines()
                .find(|l| l.split(' ').nth(1) == Some(p))
                .unwrap_or_else(|| panic!("{p} is not mounted:\n{mounts}"))
                .to_string()
        };
        assert!(
            line(&paths["mem"]).contains("size=10240k"),
            "{}",
            line(&paths["mem"])
        );
        assert!(line(&paths["podmem"]).contains("size=65536k"));
        assert!(line(&paths["sec"]).starts_with("tmpfs "));
        assert_eq!(
            std::fs::read_to_string(Path::new(&paths["cm"]).join("a.conf")).expect("cm"),
            "A"
        );
        // A second worker (rkubelet restart) sets up again without losing data.
        let mut again = test_volumes(pod_dir.clone());
        again.setup(&p, &objects(), &NODE).expect("setup again");
        assert!(disk.join("keep").exists());
        assert_eq!(mounts_under(&pod_dir).len(), 3, "no double mounts");
        teardown(&pod_dir).expect("teardown");
        assert!(!pod_dir.exists());
        assert!(mounts_under(&pod_dir).is_empty());
        teardown(&pod_dir).expect("a missing dir is fine");
    }

    #[test]
    fn a_failing_volume_names_itself_and_the_others_stay_ready() {
        let tmp = tempfile::tempdir().expect("tmp");
        let p = pod("  volumes:\n  - {name: ok, emptyDir: {}}\n  - {name: gone, hostPath: {path: /nonexistent/rkubelet, type: File}}\n");
        let mut vols = test_volumes(tmp.path().join("pod"));
        let e = vols.setup(&p, &objects(), &NODE).expect_err("fails");
        assert_eq!(e.volume, "gone");
        assert!(matches!(
            e.error,
            SetupError::HostPath(HostPathError::Missing { .. })
        ));
        assert!(
            e.to_string().starts_with("MountVolume.SetUp failed for volume \"gone\": hostPath type check failed: /nonexistent/rkubelet does not exist"),
            "{e}"
        );
        assert!(vols.ready.contains_key("ok"));
    }

    #[test]
    fn refresh_rewrites_config_map_volumes_in_place_once_per_version() {
        let tmp = tempfile::tempdir().expect("tmp");
        let p = pod("  volumes:\n  - {name: cm, configMap: {name: app}}\n");
        let mut vols = test_volumes(tmp.path().join("pod"));
        let store = ObjectStore::default();
        store.publish(objects().configmaps.clone(), Default::default());
        let paths = vols.setup(&p, &store.current(), &NODE).expect("setup");
        assert!(vols.refresh(&p, &store.current(), &NODE));
        assert!(!vols.refresh(&p, &store.current(), &NODE));
        let mut cm = (*store.current().configmaps["default/app"]).clone();
        cm.data = Some([("a.conf".to_string(), "A2".to_string())].into());
        store.publish(
            [("default/app".to_string(), Arc::new(cm))].into(),
            Default::default(),
        );
        assert!(vols.refresh(&p, &store.current(), &NODE));
        let dir = Path::new(&paths["cm"]);
        assert_eq!(
            std::fs::read_to_string(dir.join("a.conf")).expect("a"),
            "A2"
        );
        assert!(!dir.join("b.conf").exists());
        // Removed: the last content stays.
        store.publish(Default::default(), Default::default());
        assert!(vols.refresh(&p, &store.current(), &NODE));
        assert_eq!(
            std::fs::read_to_string(dir.join("a.conf")).expect("a"),
            "A2"
        );
    }

    #[tokio::test]
    async fn a_disk_empty_dir_over_its_size_limit_is_reported_once() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = layout::volume_dir(tmp.path(), spec::EMPTY_DIR, "cache");
        std::fs::create_dir_all(dir.join("sub")).expect("dir");
        std::fs::write(dir.join("sub/big"), vec![0u8; 4096]).expect("write");
        assert_eq!(disk_usage(&dir), 4096);
        let recorder = Arc::new(Recorder::new("node1"));
        let involved = Involved::pod("default", "web-node1", "u1");
        let watch = watch_size_limits(
            recorder.clone(),
            involved,
            tmp.path(),
            vec![spec::SizeLimit {
                volume: "cache".into(),
                bytes: 1024,
                quantity: "1Ki".into(),
            }],
            Duration::from_millis(20),
        );
        let reported = || {
            recorder
                .for_uid("u1")
                .into_iter()
                .filter(|e| e.reason.as_deref() == Some("EmptyDirSizeLimitExceeded"))
                .collect::<Vec<_>>()
        };
        for _ in 0..100 {
            if !reported().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Several more periods: still one event, counted once.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let events = reported();
        watch.abort();
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].count, Some(1));
        let message = events[0].message.clone().unwrap_or_default();
        assert!(
            message.contains("EmptyDir volume \"cache\" exceeds the limit \"1Ki\""),
            "{message}"
        );
    }

    #[test]
    fn mountinfo_escapes_are_decoded() {
        assert_eq!(unescape_mount_path("/a\\040b/c"), "/a b/c");
        assert_eq!(unescape_mount_path("/plain"), "/plain");
    }
}
