//! The ConfigMaps and Secrets pods can refer to, shared by every worker.
//!
//! Owns [`Objects`] (one immutable, versioned snapshot of the merged
//! ConfigMaps and Secrets, keyed by `namespace/name`) with the lookups pods
//! need — a key for `env.valueFrom`, all keys for `envFrom` and volumes —
//! and the [`ObjectStore`], a `watch` channel the pod manager publishes to
//! after every merge and workers read when starting a container and watch to
//! refresh mounted volumes and to retry containers waiting for an object.
//! An `immutable` object keeps its content until it is removed, as the API
//! server refuses to change it. It does not read manifests (that is
//! `source`) or write files (that is `volumes`).

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use tokio::sync::watch;

/// The ConfigMaps and Secrets of every source, merged.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Objects {
    /// Bumped on every change.
    pub version: u64,
    /// By `namespace/name`.
    pub configmaps: BTreeMap<String, Arc<ConfigMap>>,
    /// By `namespace/name`.
    pub secrets: BTreeMap<String, Arc<Secret>>,
}

/// Which kind of data object (ConfigMap or Secret) a pod's reference names;
/// the merger's [`ObjectKind`](crate::source::ObjectKind) also counts pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataKind {
    ConfigMap,
    Secret,
}

impl DataKind {
    /// Lower-case name used in messages (`configmap`, `secret`).
    pub fn name(self) -> &'static str {
        match self {
            DataKind::ConfigMap => "configmap",
            DataKind::Secret => "secret",
        }
    }
}

/// A missing object or key, with the message the container waits with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Missing {
    /// The ConfigMap or Secret does not exist (`key` is the one wanted).
    #[error("{} \"{name}\" not found in namespace \"{namespace}\" (key \"{key}\")", kind.name())]
    Object {
        kind: DataKind,
        namespace: String,
        name: String,
        key: String,
    },
    /// The object exists without `key`.
    #[error("couldn't find key \"{key}\" in {} {namespace}/{name}", kind.name())]
    Key {
        kind: DataKind,
        namespace: String,
        name: String,
        key: String,
    },
}

impl Objects {
    /// Every key of an object with its bytes (a ConfigMap's `data` and
    /// `binaryData`, a Secret's `data`); `None` when the object does not exist.
    pub fn entries(
        &self,
        kind: DataKind,
        namespace: &str,
        name: &str,
    ) -> Option<BTreeMap<String, Vec<u8>>> {
        let key = format!("{namespace}/{name}");
        match kind {
            DataKind::ConfigMap => self.configmaps.get(&key).map(|cm| {
                let text = cm
                    .data
                    .iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), v.clone().into_bytes()));
                let binary = cm
                    .binary_data
                    .iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), v.0.clone()));
                text.chain(binary).collect()
            }),
            DataKind::Secret => self.secrets.get(&key).map(|s| {
                s.data
                    .iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), v.0.clone()))
                    .collect()
            }),
        }
    }

    /// The keys usable as environment variables: a ConfigMap's `data` (not
    /// `binaryData`, as in Kubernetes) or a Secret's `data` as text.
    pub fn env_entries(
        &self,
        kind: DataKind,
        namespace: &str,
        name: &str,
    ) -> Option<BTreeMap<String, String>> {
        let key = format!("{namespace}/{name}");
        match kind {
            DataKind::ConfigMap => self
                .configmaps
                .get(&key)
                .map(|cm| cm.data.clone().unwrap_or_default()),
            DataKind::Secret => self.secrets.get(&key).map(|s| {
                s.data
                    .iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned()))
                    .collect()
            }),
        }
    }

    /// One key for `env.valueFrom`: `Ok(None)` when the object or key is
    /// missing and the reference is optional.
    ///
    /// Fails, naming the object and the key, when a required one is missing.
    pub fn env_value(
        &self,
        kind: DataKind,
        namespace: &str,
        name: &str,
        key: &str,
        optional: bool,
    ) -> Result<Option<String>, Missing> {
        match self.env_entries(kind, namespace, name) {
            None if optional => Ok(None),
            None => Err(Missing::Object {
                kind,
                namespace: namespace.to_string(),
                name: name.to_string(),
                key: key.to_string(),
            }),
            Some(mut entries) => match entries.remove(key) {
                Some(v) => Ok(Some(v)),
                None if optional => Ok(None),
                None => Err(Missing::Key {
                    kind,
                    namespace: namespace.to_string(),
                    name: name.to_string(),
                    key: key.to_string(),
                }),
            },
        }
    }
}

/// The shared, versioned [`Objects`]. Cloning shares the store.
#[derive(Debug, Clone)]
pub struct ObjectStore {
    tx: Arc<watch::Sender<Arc<Objects>>>,
}

impl Default for ObjectStore {
    fn default() -> Self {
        ObjectStore {
            tx: Arc::new(watch::Sender::new(Arc::new(Objects::default()))),
        }
    }
}

impl ObjectStore {
    /// The current objects.
    pub fn current(&self) -> Arc<Objects> {
        self.tx.borrow().clone()
    }

    /// A receiver that sees every later change (the current value counts as
    /// seen). The store keeps its sender, so `changed()` never fails.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Objects>> {
        self.tx.subscribe()
    }

    /// Publishes the merged objects; workers are told only if something
    /// changed. An immutable object whose content changed keeps its old
    /// content (reported), as the API server would refuse the update.
    pub fn publish(
        &self,
        configmaps: BTreeMap<String, Arc<ConfigMap>>,
        secrets: BTreeMap<String, Arc<Secret>>,
    ) {
        self.tx.send_if_modified(|current| {
            let configmaps = keep_immutable(&current.configmaps, configmaps, |old, new| {
                old.data == new.data && old.binary_data == new.binary_data
            });
            let secrets =
                keep_immutable(&current.secrets, secrets, |old, new| old.data == new.data);
            if configmaps == current.configmaps && secrets == current.secrets {
                return false;
            }
            log_changes("configmap", &current.configmaps, &configmaps);
            log_changes("secret", &current.secrets, &secrets);
            *current = Arc::new(Objects {
                version: current.version + 1,
                configmaps,
                secrets,
            });
            true
        });
    }
}

trait Immutable {
    fn immutable(&self) -> bool;
}

impl Immutable for ConfigMap {
    fn immutable(&self) -> bool {
        self.immutable == Some(true)
    }
}

impl Immutable for Secret {
    fn immutable(&self) -> bool {
        self.immutable == Some(true)
    }
}

fn keep_immutable<T: Immutable>(
    old: &BTreeMap<String, Arc<T>>,
    mut new: BTreeMap<String, Arc<T>>,
    same_content: impl Fn(&T, &T) -> bool,
) -> BTreeMap<String, Arc<T>> {
    for (key, value) in new.iter_mut() {
        if let Some(previous) = old.get(key) {
            if previous.immutable() && !same_content(previous, value) {
                tracing::error!(object = %key,
                    "the object is immutable: its new content is ignored; delete it and add it again to change it");
                *value = previous.clone();
            }
        }
    }
    new
}

fn log_changes<T: PartialEq>(
    kind: &str,
    old: &BTreeMap<String, Arc<T>>,
    new: &BTreeMap<String, Arc<T>>,
) {
    for (key, value) in new {
        match old.get(key) {
            None => tracing::info!(kind, object = %key, "object added"),
            Some(o) if o != value => tracing::info!(kind, object = %key, "object changed"),
            Some(_) => {}
        }
    }
    for key in old.keys().filter(|k| !new.contains_key(*k)) {
        tracing::info!(kind, object = %key, "object removed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use k8s_openapi::ByteString;

    fn cm(value: &str, immutable: bool) -> Arc<ConfigMap> {
        Arc::new(ConfigMap {
            metadata: ObjectMeta {
                name: Some("app".into()),
                namespace: Some("default".into()),
                ..Default::default()
            },
            data: Some([("k".to_string(), value.to_string())].into()),
            binary_data: Some([("b".to_string(), ByteString(vec![0, 1]))].into()),
            immutable: immutable.then_some(true),
        })
    }

    fn store_with(value: &str, immutable: bool) -> ObjectStore {
        let store = ObjectStore::default();
        store.publish(
            [("default/app".to_string(), cm(value, immutable))].into(),
            BTreeMap::new(),
        );
        store
    }

    #[test]
    fn publishing_the_same_objects_again_changes_nothing() {
        let store = store_with("v1", false);
        let rx = store.subscribe();
        assert_eq!(store.current().version, 1);
        store.publish(
            [("default/app".to_string(), cm("v1", false))].into(),
            BTreeMap::new(),
        );
        assert!(!rx.has_changed().unwrap_or(true));
        store.publish(
            [("default/app".to_string(), cm("v2", false))].into(),
            BTreeMap::new(),
        );
        assert!(rx.has_changed().unwrap_or(false));
        assert_eq!(store.current().version, 2);
    }

    #[test]
    fn an_immutable_object_keeps_its_content_until_removed() {
        let store = store_with("v1", true);
        store.publish(
            [("default/app".to_string(), cm("v2", true))].into(),
            BTreeMap::new(),
        );
        let value = store
            .current()
            .env_value(DataKind::ConfigMap, "default", "app", "k", false);
        assert_eq!(value, Ok(Some("v1".into())));
        store.publish(BTreeMap::new(), BTreeMap::new());
        store.publish(
            [("default/app".to_string(), cm("v2", true))].into(),
            BTreeMap::new(),
        );
        let value = store
            .current()
            .env_value(DataKind::ConfigMap, "default", "app", "k", false);
        assert_eq!(value, Ok(Some("v2".into())));
    }

    #[test]
    fn lookups_name_the_missing_object_or_key_unless_optional() {
        let objects = store_with("v1", false).current();
        let get = |name: &str, key: &str, optional| {
            objects.env_value(DataKind::ConfigMap, "default", name, key, optional)
        };
        assert_eq!(get("app", "k", false), Ok(Some("v1".into())));
        let message =
            |name: &str, key: &str| get(name, key, false).expect_err("missing").to_string();
        assert_eq!(
            message("nope", "k"),
            "configmap \"nope\" not found in namespace \"default\" (key \"k\")"
        );
        assert_eq!(
            get("app", "x", false),
            Err(Missing::Key {
                kind: DataKind::ConfigMap,
                namespace: "default".into(),
                name: "app".into(),
                key: "x".into(),
            })
        );
        assert_eq!(
            message("app", "x"),
            "couldn't find key \"x\" in configmap default/app"
        );
        assert_eq!(get("nope", "k", true), Ok(None));
        assert_eq!(get("app", "x", true), Ok(None));
        assert_eq!(get("app", "b", true), Ok(None), "binaryData is not for env");
        let files = objects
            .entries(DataKind::ConfigMap, "default", "app")
            .expect("exists");
        assert_eq!(files["b"], [0, 1]);
        assert_eq!(files["k"], b"v1");
        assert!(objects
            .entries(DataKind::Secret, "default", "app")
            .is_none());
    }
}
