//! A pod's volumes on the host: setup, refresh, teardown.
//!
//! Owns everything below `<root-dir>/pods/<uid>/`: one directory per volume
//! (`volumes/kubernetes.io~<plugin>/<name>`), the pod's managed hosts file
//! (`etc-hosts`) and one termination-message file per container instance
//! (`containers/<name>/<restartCount>/termination-log`). It sets volumes up
//! the kubelet's way — `emptyDir` (0777, on disk or on a tmpfs sized by
//! `sizeLimit` or the pod's memory limit), `hostPath` with its type check,
//! `configMap`/`secret`/`downwardAPI`/`projected` written by the
//! [`atomic_writer`](super::atomic_writer) (secrets, downward API and
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

use k8s_openapi::api::core::v1::{
    Container, HostPathVolumeSource, KeyToPath, Pod, Volume, VolumeProjection,
};

use super::atomic_writer::{self, FileEntry, Payload};
use crate::events::{Involved, Recorder};
use crate::k8s::meta::namespace_of;
use crate::k8s::quantity::Quantity;
use crate::pod::convert::{self, PodContext};
use crate::pod::downward::{self, NodeCapacity};
use crate::pod::objects::{Kind, Objects};
use crate::runtime::ContainerConfig;

/// Default file mode of API-data volume files (Kubernetes' 0644).
const DEFAULT_FILE_MODE: i32 = 0o644;
/// How often disk `emptyDir`s with a `sizeLimit` are measured.
const SIZE_CHECK_PERIOD: Duration = Duration::from_secs(10);

/// Host file mounted at a container instance's `terminationMessagePath`:
/// `<pod_dir>/containers/<container>/<restart_count>/termination-log`.
pub fn termination_log_path(pod_dir: &Path, container: &str, restart_count: u32) -> PathBuf {
    pod_dir
        .join("containers")
        .join(container)
        .join(restart_count.to_string())
        .join("termination-log")
}

/// The pod's managed hosts file.
pub fn hosts_file_path(pod_dir: &Path) -> PathBuf {
    pod_dir.join("etc-hosts")
}

/// Directory of volume `name` handled by `plugin` (`empty-dir`, `configmap`…).
pub fn volume_dir(pod_dir: &Path, plugin: &str, name: &str) -> PathBuf {
    pod_dir
        .join("volumes")
        .join(format!("kubernetes.io~{plugin}"))
        .join(name)
}

/// The pod's `/etc/hosts`, as the kubelet writes it: localhost entries, the
/// pod's IP with its host name, then `hostAliases`.
pub fn hosts_file(pod: &Pod, pod_ip: &str) -> String {
    let mut out = String::from(
        "# Kubernetes-managed hosts file.\n\
         127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\n\
         fe00::0\tip6-mcastprefix\n\
         fe00::1\tip6-allnodes\n\
         fe00::2\tip6-allrouters\n",
    );
    if !pod_ip.is_empty() {
        out.push_str(&format!("{pod_ip}\t{}\n", convert::pod_hostname(pod)));
    }
    let aliases = pod
        .spec
        .iter()
        .flat_map(|s| s.host_aliases.iter().flatten());
    let mut first = true;
    for a in aliases {
        if first {
            out.push_str("\n# Entries added by HostAliases.\n");
            first = false;
        }
        let names: Vec<&str> = a.hostnames.iter().flatten().map(String::as_str).collect();
        out.push_str(&format!("{}\t{}\n", a.ip, names.join("\t")));
    }
    out
}

/// How a volume is stored on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plugin {
    EmptyDir,
    HostPath,
    /// configMap, secret, downwardAPI, projected.
    ApiData {
        name: &'static str,
        tmpfs: bool,
    },
}

fn plugin_of(v: &Volume) -> Result<Plugin, String> {
    Ok(if v.empty_dir.is_some() {
        Plugin::EmptyDir
    } else if v.host_path.is_some() {
        Plugin::HostPath
    } else if v.config_map.is_some() {
        Plugin::ApiData {
            name: "configmap",
            tmpfs: false,
        }
    } else if v.secret.is_some() {
        Plugin::ApiData {
            name: "secret",
            tmpfs: true,
        }
    } else if v.downward_api.is_some() {
        Plugin::ApiData {
            name: "downward-api",
            tmpfs: true,
        }
    } else if v.projected.is_some() {
        Plugin::ApiData {
            name: "projected",
            tmpfs: true,
        }
    } else {
        let kind = serde_json::to_value(v)
            .ok()
            .and_then(|j| {
                j.as_object()
                    .and_then(|m| m.keys().find(|k| *k != "name").cloned())
            })
            .unwrap_or_else(|| "unknown".to_string());
        return Err(format!(
            "volume type {kind:?} is not supported (rkubelet supports emptyDir, hostPath, configMap, secret, downwardAPI and projected)"
        ));
    })
}

fn mode_of(mode: Option<i32>, default: Option<i32>) -> u32 {
    (mode.or(default).unwrap_or(DEFAULT_FILE_MODE) & 0o7777) as u32
}

/// A volume's reference to a ConfigMap or Secret.
struct ObjectSource<'a> {
    kind: Kind,
    namespace: &'a str,
    name: &'a str,
    items: Option<&'a [KeyToPath]>,
    optional: bool,
}

/// Adds a ConfigMap's or Secret's keys (all, or `items`) to `payload`.
fn add_object_files(
    payload: &mut Payload,
    objects: &Objects,
    source: ObjectSource<'_>,
    default_mode: Option<i32>,
) -> Result<(), String> {
    let ObjectSource {
        kind,
        namespace,
        name,
        items,
        optional,
    } = source;
    let Some(mut entries) = objects.entries(kind, namespace, name) else {
        if optional {
            return Ok(());
        }
        return Err(format!(
            "{} \"{name}\" not found in namespace \"{namespace}\"",
            kind.name()
        ));
    };
    match items {
        None => {
            for (key, data) in entries {
                let mode = mode_of(None, default_mode);
                payload.insert(key, FileEntry { data, mode });
            }
        }
        Some(items) => {
            for item in items {
                match entries.remove(&item.key) {
                    Some(data) => {
                        let mode = mode_of(item.mode, default_mode);
                        payload.insert(item.path.clone(), FileEntry { data, mode });
                    }
                    None if optional => {}
                    None => {
                        return Err(format!(
                            "couldn't find key \"{}\" in {} {namespace}/{name}",
                            item.key,
                            kind.name()
                        ))
                    }
                }
            }
        }
    }
    Ok(())
}

fn add_downward_files(
    payload: &mut Payload,
    pod: &Pod,
    items: &[k8s_openapi::api::core::v1::DownwardAPIVolumeFile],
    default_mode: Option<i32>,
    node: &NodeCapacity,
) -> Result<(), String> {
    for item in items {
        let value = match (&item.field_ref, &item.resource_field_ref) {
            (Some(f), _) => downward::volume_field(pod, &f.field_path)?,
            (None, Some(r)) => downward::resource_field(pod, None, r, node)?,
            (None, None) => return Err(format!("item {:?} has no source", item.path)),
        };
        payload.insert(
            item.path.clone(),
            FileEntry {
                data: value.into_bytes(),
                mode: mode_of(item.mode, default_mode),
            },
        );
    }
    Ok(())
}

fn add_projection(
    payload: &mut Payload,
    pod: &Pod,
    source: &VolumeProjection,
    objects: &Objects,
    default_mode: Option<i32>,
    node: &NodeCapacity,
) -> Result<(), String> {
    let ns = namespace_of(pod);
    if let Some(cm) = &source.config_map {
        let items = cm.items.as_deref();
        let optional = cm.optional == Some(true);
        add_object_files(
            payload,
            objects,
            ObjectSource {
                kind: Kind::ConfigMap,
                namespace: ns,
                name: &cm.name,
                items,
                optional,
            },
            default_mode,
        )
    } else if let Some(s) = &source.secret {
        let items = s.items.as_deref();
        let optional = s.optional == Some(true);
        add_object_files(
            payload,
            objects,
            ObjectSource {
                kind: Kind::Secret,
                namespace: ns,
                name: &s.name,
                items,
                optional,
            },
            default_mode,
        )
    } else if let Some(d) = &source.downward_api {
        let items = d.items.as_deref().unwrap_or_default();
        add_downward_files(payload, pod, items, default_mode, node)
    } else if source.service_account_token.is_some() {
        Err("serviceAccountToken projections need an API server and are not supported".into())
    } else {
        Err("only configMap, secret and downwardAPI projections are supported".into())
    }
}

/// The files of a configMap, secret, downwardAPI or projected volume;
/// `Ok(None)` for other volume types.
///
/// Fails, naming the object and key, when a required ConfigMap, Secret or
/// key is missing, or a downward API field is not supported.
pub fn payload(
    pod: &Pod,
    v: &Volume,
    objects: &Objects,
    node: &NodeCapacity,
) -> Result<Option<Payload>, String> {
    let ns = namespace_of(pod);
    let mut p = Payload::new();
    if let Some(cm) = &v.config_map {
        let optional = cm.optional == Some(true);
        let items = cm.items.as_deref();
        add_object_files(
            &mut p,
            objects,
            ObjectSource {
                kind: Kind::ConfigMap,
                namespace: ns,
                name: &cm.name,
                items,
                optional,
            },
            cm.default_mode,
        )?;
    } else if let Some(s) = &v.secret {
        let name = s.secret_name.as_deref().unwrap_or_default();
        let optional = s.optional == Some(true);
        let items = s.items.as_deref();
        add_object_files(
            &mut p,
            objects,
            ObjectSource {
                kind: Kind::Secret,
                namespace: ns,
                name,
                items,
                optional,
            },
            s.default_mode,
        )?;
    } else if let Some(d) = &v.downward_api {
        let items = d.items.as_deref().unwrap_or_default();
        add_downward_files(&mut p, pod, items, d.default_mode, node)?;
    } else if let Some(proj) = &v.projected {
        for source in proj.sources.iter().flatten() {
            add_projection(&mut p, pod, source, objects, proj.default_mode, node)?;
        }
    } else {
        return Ok(None);
    }
    Ok(Some(p))
}

/// Checks (and for the `…OrCreate` types creates) a hostPath.
///
/// Fails with a message naming the path and what it should be.
pub fn check_host_path(hp: &HostPathVolumeSource) -> Result<(), String> {
    let path = Path::new(&hp.path);
    if hp.path.split('/').any(|c| c == "..") {
        return Err(format!("hostPath {:?} must not contain '..'", hp.path));
    }
    let ty = hp.type_.as_deref().unwrap_or_default();
    let meta = std::fs::metadata(path);
    let describe = |e: io::Error| format!("hostPath {:?}: {e}", hp.path);
    let want = |what: &str, ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(format!(
                "hostPath type check failed: {} is not a {what}",
                hp.path
            ))
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
                return Err(format!(
                    "hostPath type check failed: {} does not exist (type {ty})",
                    hp.path
                ));
            };
            let ft = m.file_type();
            match ty {
                "Directory" => want("directory", ft.is_dir()),
                "File" => want("file", ft.is_file()),
                "Socket" => want("socket", ft.is_socket()),
                "CharDevice" => want("character device", ft.is_char_device()),
                "BlockDevice" => want("block device", ft.is_block_device()),
                other => Err(format!("hostPath type {other:?} is not supported")),
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

fn mount_tmpfs(dir: &Path, size_bytes: Option<i64>, mode: u32) -> Result<(), String> {
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
    .map_err(|e| format!("cannot mount a tmpfs at {}: {e}", dir.display()))
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

/// Memory limit of the whole pod when every app container has one.
fn pod_memory_limit(pod: &Pod) -> Option<i64> {
    let spec = pod.spec.as_ref()?;
    let mut total: i64 = 0;
    for c in &spec.containers {
        let q = c.resources.as_ref()?.limits.as_ref()?.get("memory")?;
        total = total.saturating_add(Quantity::parse(&q.0).ok()?.value());
    }
    (total > 0).then_some(total)
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
    ) -> Result<BTreeMap<String, String>, String> {
        let mut first_error = None;
        let mut size_limited = Vec::new();
        for v in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
            let on_disk_limit = v
                .empty_dir
                .as_ref()
                .filter(|e| e.medium.as_deref().unwrap_or_default().is_empty())
                .and_then(|e| e.size_limit.as_ref());
            if let Some(text) = on_disk_limit {
                if let Ok(limit) = Quantity::parse(&text.0) {
                    let dir = volume_dir(&self.pod_dir, "empty-dir", &v.name);
                    size_limited.push((v.name.clone(), dir, limit.value(), text.0.clone()));
                }
            }
            if self.ready.contains_key(&v.name) {
                continue;
            }
            match self.setup_one(pod, v, objects, node) {
                Ok(path) => {
                    self.ready.insert(v.name.clone(), path);
                }
                Err(e) => {
                    let message =
                        format!("MountVolume.SetUp failed for volume \"{}\": {e}", v.name);
                    self.recorder
                        .warning(&self.involved, "FailedMount", message.clone());
                    first_error.get_or_insert(message);
                }
            }
        }
        if self.size_watch.is_none() && !size_limited.is_empty() {
            let (recorder, involved) = (self.recorder.clone(), self.involved.clone());
            self.size_watch = Some(watch_size_limits(
                recorder,
                involved,
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
    ) -> Result<String, String> {
        let io = |e: io::Error| e.to_string();
        match plugin_of(v)? {
            Plugin::HostPath => {
                let hp = v.host_path.as_ref().ok_or("no hostPath")?;
                check_host_path(hp)?;
                Ok(hp.path.clone())
            }
            Plugin::EmptyDir => {
                let ed = v.empty_dir.clone().unwrap_or_default();
                let dir = volume_dir(&self.pod_dir, "empty-dir", &v.name);
                std::fs::create_dir_all(&dir).map_err(io)?;
                match ed.medium.as_deref().unwrap_or_default() {
                    "" => {}
                    "Memory" => {
                        let size = match &ed.size_limit {
                            Some(q) => Some(Quantity::parse(&q.0).map_err(|e| e.0)?.value()),
                            None => pod_memory_limit(pod),
                        };
                        mount_tmpfs(&dir, size, 0o777)?;
                    }
                    other => return Err(format!("emptyDir medium {other:?} is not supported")),
                }
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))
                    .map_err(io)?;
                Ok(dir.display().to_string())
            }
            Plugin::ApiData { name, tmpfs } => {
                let files = payload(pod, v, objects, node)?.unwrap_or_default();
                let dir = volume_dir(&self.pod_dir, name, &v.name);
                std::fs::create_dir_all(&dir).map_err(io)?;
                if tmpfs {
                    mount_tmpfs(&dir, None, 0o755)?;
                }
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
                    .map_err(io)?;
                atomic_writer::write(&dir, &files).map_err(io)?;
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
            let Ok(Plugin::ApiData { name, .. }) = plugin_of(v) else {
                continue;
            };
            let dir = volume_dir(&self.pod_dir, name, &v.name);
            if std::fs::symlink_metadata(dir.join("..data")).is_err() {
                continue;
            }
            match payload(pod, v, objects, node) {
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
    pub fn write_hosts_file(&self, pod: &Pod, pod_ip: &str) -> Result<String, String> {
        let path = hosts_file_path(&self.pod_dir);
        let content = hosts_file(pod, pod_ip);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(content.as_str()) {
            std::fs::create_dir_all(&self.pod_dir)
                .and_then(|()| std::fs::write(&path, &content))
                .and_then(|()| {
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
                })
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        Ok(path.display().to_string())
    }
}

/// Measures disk emptyDirs with a `sizeLimit` periodically and reports an
/// event when one exceeds it (again only after it fell below).
fn watch_size_limits(
    recorder: Arc<Recorder>,
    involved: Involved,
    volumes: Vec<(String, PathBuf, i64, String)>,
    period: Duration,
) -> tokio::task::AbortHandle {
    let task = tokio::spawn(async move {
        let mut over: BTreeSet<String> = BTreeSet::new();
        let mut tick = tokio::time::interval(period);
        loop {
            tick.tick().await;
            for (name, dir, limit, quantity) in &volumes {
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
    ctx: &PodContext,
    events: (&Recorder, &Involved),
) -> Result<(), String> {
    if let Some(dir) = &ctx.pod_dir {
        let log = termination_log_path(dir, &c.name, restart_count);
        let made = log
            .parent()
            .map(std::fs::create_dir_all)
            .unwrap_or(Ok(()))
            .and_then(|()| std::fs::write(&log, b""))
            .and_then(|()| std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o666)));
        made.map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        if let Ok(entries) = std::fs::read_dir(dir.join("containers").join(&c.name)) {
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
            resolve_sub_path(Path::new(base), Path::new(&mount.host_path)).map_err(|e| {
                format!(
                    "subPath of volume {:?} in container {:?}: {e}",
                    m.name, c.name
                )
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
pub fn resolve_sub_path(base: &Path, full: &Path) -> Result<PathBuf, String> {
    let rel = full
        .strip_prefix(base)
        .map_err(|_| format!("{} is not inside {}", full.display(), base.display()))?;
    let root = base
        .canonicalize()
        .map_err(|e| format!("{}: {e}", base.display()))?;
    let mode = std::fs::metadata(&root)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o755);
    let mut current = root.clone();
    for comp in rel.components() {
        let Component::Normal(part) = comp else {
            return Err(format!("{} must stay inside its volume", rel.display()));
        };
        let next = current.join(part);
        match std::fs::symlink_metadata(&next) {
            Ok(_) => {
                let real = next
                    .canonicalize()
                    .map_err(|e| format!("{}: {e}", next.display()))?;
                if !real.starts_with(&root) {
                    return Err(format!(
                        "{} is a symlink leading outside the volume; refused",
                        rel.display()
                    ));
                }
                current = real;
            }
            Err(_) => {
                std::fs::create_dir(&next)
                    .and_then(|()| {
                        std::fs::set_permissions(&next, std::fs::Permissions::from_mode(mode))
                    })
                    .map_err(|e| format!("cannot create {}: {e}", next.display()))?;
                current = next;
            }
        }
    }
    Ok(current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{load, LoadContext, Origin};
    use crate::pod::objects::ObjectStore;
    use k8s_openapi::api::core::v1::ConfigMap;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod(spec_extra: &str) -> Pod {
        let origin = Origin::file("/etc/kubelet.d/v.yaml");
        let ctx = LoadContext {
            node_name: "node1",
            origin: &origin,
            now: k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
        };
        let yaml = format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  labels: {{app: web, tier: \"a b\"}}\nspec:\n  containers:\n  - name: app\n    image: busybox\n    resources: {{limits: {{memory: 64Mi, cpu: 500m}}}}\n{spec_extra}"
        );
        load(yaml.as_bytes(), &ctx)
            .unwrap_or_else(|e| panic!("{e}"))
            .pods[0]
            .clone()
    }

    fn objects() -> Arc<Objects> {
        let store = ObjectStore::default();
        let cm = ConfigMap {
            metadata: ObjectMeta {
                name: Some("app".into()),
                namespace: Some("default".into()),
                ..Default::default()
            },
            data: Some(
                [
                    ("a.conf".to_string(), "A".to_string()),
                    ("b.conf".to_string(), "B".to_string()),
                ]
                .into(),
            ),
            ..Default::default()
        };
        store.publish(
            [("default/app".to_string(), Arc::new(cm))].into(),
            Default::default(),
        );
        store.current()
    }

    fn files(p: &Payload) -> Vec<(&str, &[u8], u32)> {
        p.iter()
            .map(|(k, f)| (k.as_str(), f.data.as_slice(), f.mode))
            .collect()
    }

    fn test_volumes(dir: PathBuf) -> PodVolumes {
        let recorder = Arc::new(Recorder::new("node1"));
        PodVolumes::new(dir, recorder, Involved::pod("default", "web-node1", "u"))
    }

    const NODE: NodeCapacity = NodeCapacity {
        cpu_milli: 2000,
        memory_bytes: 1 << 30,
        ephemeral_storage_bytes: 1 << 30,
    };

    #[test]
    fn config_map_volumes_project_all_keys_or_the_listed_items_with_modes() {
        let p = pod("  volumes:\n  - {name: all, configMap: {name: app}}\n  - {name: some, configMap: {name: app, defaultMode: 0600, items: [{key: b.conf, path: sub/b}, {key: a.conf, path: a, mode: 0400}]}}\n");
        let vols = p
            .spec
            .as_ref()
            .and_then(|s| s.volumes.clone())
            .expect("volumes");
        let o = objects();
        let all = payload(&p, &vols[0], &o, &NODE).expect("ok").expect("api");
        assert_eq!(
            files(&all),
            [("a.conf", &b"A"[..], 0o644), ("b.conf", &b"B"[..], 0o644)]
        );
        let some = payload(&p, &vols[1], &o, &NODE).expect("ok").expect("api");
        assert_eq!(
            files(&some),
            [("a", &b"A"[..], 0o400), ("sub/b", &b"B"[..], 0o600)]
        );
    }

    #[test]
    fn missing_objects_and_keys_fail_unless_optional() {
        let p = pod("  volumes:\n  - {name: a, configMap: {name: nope}}\n  - {name: b, configMap: {name: nope, optional: true}}\n  - {name: c, configMap: {name: app, items: [{key: x, path: x}]}}\n  - {name: d, secret: {secretName: s}}\n");
        let vols = p
            .spec
            .as_ref()
            .and_then(|s| s.volumes.clone())
            .expect("volumes");
        let o = objects();
        assert_eq!(
            payload(&p, &vols[0], &o, &NODE),
            Err("configmap \"nope\" not found in namespace \"default\"".into())
        );
        assert_eq!(payload(&p, &vols[1], &o, &NODE), Ok(Some(Payload::new())));
        assert_eq!(
            payload(&p, &vols[2], &o, &NODE),
            Err("couldn't find key \"x\" in configmap default/app".into())
        );
        assert_eq!(
            payload(&p, &vols[3], &o, &NODE),
            Err("secret \"s\" not found in namespace \"default\"".into())
        );
    }

    #[test]
    fn downward_and_projected_volumes_write_fields_labels_and_limits() {
        let p = pod("  volumes:\n  - name: d\n    downwardAPI:\n      items:\n      - {path: labels, fieldRef: {fieldPath: metadata.labels}}\n      - {path: name, fieldRef: {fieldPath: metadata.name}}\n      - {path: mem, mode: 0600, resourceFieldRef: {containerName: app, resource: limits.memory, divisor: 1Mi}}\n  - name: p\n    projected:\n      defaultMode: 0440\n      sources:\n      - configMap: {name: app, items: [{key: a.conf, path: conf/a}]}\n      - downwardAPI: {items: [{path: ns, fieldRef: {fieldPath: metadata.namespace}}]}\n");
        let vols = p
            .spec
            .as_ref()
            .and_then(|s| s.volumes.clone())
            .expect("volumes");
        let o = objects();
        let d = payload(&p, &vols[0], &o, &NODE).expect("ok").expect("api");
        assert_eq!(
            files(&d),
            [
                ("labels", &b"app=\"web\"\ntier=\"a b\""[..], 0o644),
                ("mem", &b"64"[..], 0o600),
                ("name", &b"web-node1"[..], 0o644),
            ]
        );
        let pr = payload(&p, &vols[1], &o, &NODE).expect("ok").expect("api");
        assert_eq!(
            files(&pr),
            [("conf/a", &b"A"[..], 0o440), ("ns", &b"default"[..], 0o440)]
        );
    }

    #[test]
    fn the_hosts_file_has_localhost_the_pod_and_host_aliases() {
        let p = pod("  hostAliases: [{ip: 10.0.0.1, hostnames: [db, db.local]}]\n");
        let hosts = hosts_file(&p, "172.17.0.9");
        assert!(hosts.starts_with("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"));
        assert!(hosts.contains("\n172.17.0.9\tweb-node1\n"), "{hosts}");
        assert!(
            hosts.ends_with("\n# Entries added by HostAliases.\n10.0.0.1\tdb\tdb.local\n"),
            "{hosts}"
        );
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
        assert!(e.contains("does not exist"), "{e}");
        let e = check_host_path(&hp(&file, "Directory")).expect_err("wrong type");
        assert!(e.contains("is not a directory"), "{e}");
        let e = check_host_path(&hp(&dir, "Socket")).expect_err("not a socket");
        assert!(e.contains("is not a socket"), "{e}");
        check_host_path(&hp(Path::new("/dev/null"), "CharDevice")).expect("char device");
        let e = check_host_path(&hp(Path::new("/dev/null"), "BlockDevice")).expect_err("block");
        assert!(e.contains("block device"), "{e}");
        let e = check_host_path(&hp(Path::new("/tmp/../etc"), "")).expect_err("dots");
        assert!(e.contains("'..'"), "{e}");
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
        assert!(e.contains("outside the volume"), "{e}");
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
        assert!(
            e.starts_with("MountVolume.SetUp failed for volume \"gone\": hostPath type check failed: /nonexistent/rkubelet does not exist"),
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
        std::fs::create_dir_all(tmp.path().join("sub")).expect("dir");
        std::fs::write(tmp.path().join("sub/big"), vec![0u8; 4096]).expect("write");
        assert_eq!(disk_usage(tmp.path()), 4096);
        let recorder = Arc::new(Recorder::new("node1"));
        let involved = Involved::pod("default", "web-node1", "u1");
        let watch = watch_size_limits(
            recorder.clone(),
            involved,
            vec![("cache".into(), tmp.path().to_path_buf(), 1024, "1Ki".into())],
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
    fn the_termination_log_path_is_per_container_instance() {
        assert_eq!(
            termination_log_path(Path::new("/var/lib/rkubelet/pods/u"), "app", 3),
            Path::new("/var/lib/rkubelet/pods/u/containers/app/3/termination-log")
        );
    }

    #[test]
    fn mountinfo_escapes_are_decoded() {
        assert_eq!(unescape_mount_path("/a\\040b/c"), "/a b/c");
        assert_eq!(unescape_mount_path("/plain"), "/plain");
    }
}
