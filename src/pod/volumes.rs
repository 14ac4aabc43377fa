//! What a pod's volumes contain, computed from the spec (pure).
//!
//! Owns the choice of volume plugin (`emptyDir`, `hostPath`, and the
//! API-data volumes `configMap`/`secret`/`downwardAPI`/`projected`, the
//! latter three on a tmpfs), the `emptyDir` medium and tmpfs size, the
//! `sizeLimit`s to watch, the files of an API-data volume ([`payload`]:
//! keys or items with their modes, downward API fields) and the content of
//! the pod's managed `/etc/hosts`. Mounting, writing and removing them is
//! the worker's (`worker::volumes`, `worker::atomic_writer`); where they live
//! is [`super::layout`]'s.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EmptyDirVolumeSource, KeyToPath, Pod, Volume, VolumeProjection};

use super::convert::pod_hostname;
use super::downward::{self, DownwardError, NodeCapacity};
use super::objects::{DataKind, Objects};
use crate::k8s::meta::namespace_of;
use crate::k8s::quantity::{Quantity, QuantityError};

/// Default file mode of API-data volume files (Kubernetes' 0644).
const DEFAULT_FILE_MODE: i32 = 0o644;

/// One file to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    pub data: Vec<u8>,
    /// Permission bits (e.g. `0o644`).
    pub mode: u32,
}

/// Relative path → file.
pub type Payload = BTreeMap<String, FileEntry>;

/// A volume whose content cannot be computed from the spec and objects.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VolumeError {
    /// A volume type other than the supported ones.
    #[error(
        "volume type {kind:?} is not supported (rkubelet supports emptyDir, hostPath, \
         configMap, secret, downwardAPI and projected)"
    )]
    UnsupportedType { kind: String },
    /// A required ConfigMap or Secret does not exist.
    #[error("{} \"{name}\" not found in namespace \"{namespace}\"", kind.name())]
    ObjectNotFound {
        kind: DataKind,
        namespace: String,
        name: String,
    },
    /// A listed key of a required ConfigMap or Secret does not exist.
    #[error("couldn't find key \"{key}\" in {} {namespace}/{name}", kind.name())]
    KeyNotFound {
        kind: DataKind,
        namespace: String,
        name: String,
        key: String,
    },
    /// A downwardAPI item with neither `fieldRef` nor `resourceFieldRef`.
    #[error("item {path:?} has no source")]
    NoSource { path: String },
    /// A downward API field that cannot be resolved.
    #[error(transparent)]
    Downward(#[from] DownwardError),
    /// A `serviceAccountToken` projection.
    #[error("serviceAccountToken projections need an API server and are not supported")]
    ServiceAccountToken,
    /// A projection other than configMap, secret, downwardAPI.
    #[error("only configMap, secret and downwardAPI projections are supported")]
    UnsupportedProjection,
    /// An `emptyDir` medium other than disk (`""`) or `Memory`.
    #[error("emptyDir medium {medium:?} is not supported")]
    UnsupportedMedium { medium: String },
    /// An `emptyDir` `sizeLimit` that is not a quantity.
    #[error(transparent)]
    SizeLimit(#[from] QuantityError),
}

/// Where an `emptyDir` keeps its files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Medium {
    /// A directory on the node's disk.
    Disk,
    /// A tmpfs of `size` bytes (`None`: the kernel's default).
    Memory { size: Option<i64> },
}

/// The medium of an `emptyDir` of `pod`: a `Memory` one is sized by its
/// `sizeLimit`, else by the pod's memory limit.
///
/// Fails for an unknown medium or a `sizeLimit` that is not a quantity.
pub fn empty_dir_medium(pod: &Pod, ed: &EmptyDirVolumeSource) -> Result<Medium, VolumeError> {
    match ed.medium.as_deref().unwrap_or_default() {
        "" => Ok(Medium::Disk),
        "Memory" => {
            let size = match &ed.size_limit {
                Some(q) => Some(Quantity::parse(&q.0)?.value()),
                None => pod_memory_limit(pod),
            };
            Ok(Medium::Memory { size })
        }
        other => Err(VolumeError::UnsupportedMedium {
            medium: other.to_string(),
        }),
    }
}

/// A disk `emptyDir` with a `sizeLimit`, to be measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SizeLimit {
    /// The volume's name.
    pub volume: String,
    /// The limit in bytes.
    pub bytes: i64,
    /// The limit as written (for messages).
    pub quantity: String,
}

/// The disk `emptyDir`s of `pod` with a (parsable) `sizeLimit`.
pub fn disk_size_limits(pod: &Pod) -> Vec<SizeLimit> {
    pod.spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .filter_map(|v| {
            let text = v
                .empty_dir
                .as_ref()
                .filter(|e| e.medium.as_deref().unwrap_or_default().is_empty())
                .and_then(|e| e.size_limit.as_ref())?;
            let limit = Quantity::parse(&text.0).ok()?;
            Some(SizeLimit {
                volume: v.name.clone(),
                bytes: limit.value(),
                quantity: text.0.clone(),
            })
        })
        .collect()
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
        out.push_str(&format!("{pod_ip}\t{}\n", pod_hostname(pod)));
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
pub enum Plugin {
    EmptyDir,
    HostPath,
    /// configMap, secret, downwardAPI, projected.
    ApiData {
        /// The plugin's directory name (`configmap`, `secret`, …).
        name: &'static str,
        /// Whether the files live on a tmpfs (never on disk).
        tmpfs: bool,
    },
}

/// The plugin directory name of `emptyDir` volumes.
pub const EMPTY_DIR: &str = "empty-dir";

/// The plugin handling volume `v`.
///
/// Fails for a volume type rkubelet does not support.
pub fn plugin_of(v: &Volume) -> Result<Plugin, VolumeError> {
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
        return Err(VolumeError::UnsupportedType { kind });
    })
}

fn mode_of(mode: Option<i32>, default: Option<i32>) -> u32 {
    (mode.or(default).unwrap_or(DEFAULT_FILE_MODE) & 0o7777) as u32
}

/// A volume's reference to a ConfigMap or Secret.
struct ObjectSource<'a> {
    kind: DataKind,
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
) -> Result<(), VolumeError> {
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
        return Err(VolumeError::ObjectNotFound {
            kind,
            namespace: namespace.to_string(),
            name: name.to_string(),
        });
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
                        return Err(VolumeError::KeyNotFound {
                            kind,
                            namespace: namespace.to_string(),
                            name: name.to_string(),
                            key: item.key.clone(),
                        })
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
) -> Result<(), VolumeError> {
    for item in items {
        let value = match (&item.field_ref, &item.resource_field_ref) {
            (Some(f), _) => downward::volume_field(pod, &f.field_path)?,
            (None, Some(r)) => downward::resource_field(pod, None, r, node)?,
            (None, None) => {
                return Err(VolumeError::NoSource {
                    path: item.path.clone(),
                })
            }
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
) -> Result<(), VolumeError> {
    let ns = namespace_of(pod);
    if let Some(cm) = &source.config_map {
        let items = cm.items.as_deref();
        let optional = cm.optional == Some(true);
        add_object_files(
            payload,
            objects,
            ObjectSource {
                kind: DataKind::ConfigMap,
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
                kind: DataKind::Secret,
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
        Err(VolumeError::ServiceAccountToken)
    } else {
        Err(VolumeError::UnsupportedProjection)
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
) -> Result<Option<Payload>, VolumeError> {
    let ns = namespace_of(pod);
    let mut p = Payload::new();
    if let Some(cm) = &v.config_map {
        let optional = cm.optional == Some(true);
        let items = cm.items.as_deref();
        add_object_files(
            &mut p,
            objects,
            ObjectSource {
                kind: DataKind::ConfigMap,
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
                kind: DataKind::Secret,
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

/// Memory limit of the whole pod when every app container has one.
pub fn pod_memory_limit(pod: &Pod) -> Option<i64> {
    let spec = pod.spec.as_ref()?;
    let mut total: i64 = 0;
    for c in &spec.containers {
        let q = c.resources.as_ref()?.limits.as_ref()?.get("memory")?;
        total = total.saturating_add(Quantity::parse(&q.0).ok()?.value());
    }
    (total > 0).then_some(total)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::pod::objects::ObjectStore;
    use k8s_openapi::api::core::v1::ConfigMap;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    /// A pod loaded the way the daemon loads it, with one container `app`
    /// (64Mi/500m limits) and `spec_extra` appended to its spec.
    pub(crate) fn pod(spec_extra: &str) -> Pod {
        let yaml = format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  labels: {{app: web, tier: \"a b\"}}\nspec:\n  containers:\n  - name: app\n    image: busybox\n    resources: {{limits: {{memory: 64Mi, cpu: 500m}}}}\n{spec_extra}"
        );
        crate::pod::fixtures::load_pod_at(&yaml, "node1", "/etc/kubelet.d/v.yaml")
    }

    /// The ConfigMap `default/app` with keys `a.conf` and `b.conf`.
    pub(crate) fn objects() -> Arc<Objects> {
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

    fn volumes_of(p: &Pod) -> Vec<Volume> {
        p.spec
            .as_ref()
            .and_then(|s| s.volumes.clone())
            .expect("volumes")
    }

    /// The node capacity the tests assume.
    pub(crate) const NODE: NodeCapacity = NodeCapacity {
        cpu_milli: 2000,
        memory_bytes: 1 << 30,
        ephemeral_storage_bytes: 1 << 30,
    };

    #[test]
    fn config_map_volumes_project_all_keys_or_the_listed_items_with_modes() {
        let p = pod("  volumes:\n  - {name: all, configMap: {name: app}}\n  - {name: some, configMap: {name: app, defaultMode: 0600, items: [{key: b.conf, path: sub/b}, {key: a.conf, path: a, mode: 0400}]}}\n");
        let vols = volumes_of(&p);
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
        let vols = volumes_of(&p);
        let o = objects();
        let message = |v: &Volume| payload(&p, v, &o, &NODE).expect_err("missing").to_string();
        assert_eq!(
            message(&vols[0]),
            "configmap \"nope\" not found in namespace \"default\""
        );
        assert_eq!(payload(&p, &vols[1], &o, &NODE), Ok(Some(Payload::new())));
        assert_eq!(
            payload(&p, &vols[2], &o, &NODE),
            Err(VolumeError::KeyNotFound {
                kind: DataKind::ConfigMap,
                namespace: "default".into(),
                name: "app".into(),
                key: "x".into(),
            })
        );
        assert_eq!(
            message(&vols[2]),
            "couldn't find key \"x\" in configmap default/app"
        );
        assert_eq!(
            message(&vols[3]),
            "secret \"s\" not found in namespace \"default\""
        );
    }

    #[test]
    fn downward_and_projected_volumes_write_fields_labels_and_limits() {
        let p = pod("  volumes:\n  - name: d\n    downwardAPI:\n      items:\n      - {path: labels, fieldRef: {fieldPath: metadata.labels}}\n      - {path: name, fieldRef: {fieldPath: metadata.name}}\n      - {path: mem, mode: 0600, resourceFieldRef: {containerName: app, resource: limits.memory, divisor: 1Mi}}\n  - name: p\n    projected:\n      defaultMode: 0440\n      sources:\n      - configMap: {name: app, items: [{key: a.conf, path: conf/a}]}\n      - downwardAPI: {items: [{path: ns, fieldRef: {fieldPath: metadata.namespace}}]}\n");
        let vols = volumes_of(&p);
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
    fn plugins_and_media_follow_the_volume_source() {
        let p = pod("  volumes:\n  - {name: d, emptyDir: {}}\n  - {name: m, emptyDir: {medium: Memory, sizeLimit: 10Mi}}\n  - {name: pm, emptyDir: {medium: Memory}}\n  - {name: big, emptyDir: {sizeLimit: 1Gi}}\n  - {name: s, secret: {secretName: s}}\n");
        let vols = volumes_of(&p);
        assert_eq!(plugin_of(&vols[0]), Ok(Plugin::EmptyDir));
        assert_eq!(
            plugin_of(&vols[4]),
            Ok(Plugin::ApiData {
                name: "secret",
                tmpfs: true
            })
        );
        let medium = |v: &Volume| empty_dir_medium(&p, v.empty_dir.as_ref().expect("emptyDir"));
        assert_eq!(medium(&vols[0]), Ok(Medium::Disk));
        assert_eq!(
            medium(&vols[1]),
            Ok(Medium::Memory {
                size: Some(10 << 20)
            })
        );
        assert_eq!(
            medium(&vols[2]),
            Ok(Medium::Memory {
                size: Some(64 << 20)
            }),
            "sized by the pod's memory limit"
        );
        assert_eq!(
            disk_size_limits(&p),
            [SizeLimit {
                volume: "big".into(),
                bytes: 1 << 30,
                quantity: "1Gi".into(),
            }]
        );
        let odd = EmptyDirVolumeSource {
            medium: Some("HugePages".into()),
            ..Default::default()
        };
        assert_eq!(
            empty_dir_medium(&p, &odd)
                .expect_err("unsupported")
                .to_string(),
            "emptyDir medium \"HugePages\" is not supported"
        );
    }
}
