//! Manifest sources and the merger.
//!
//! A source (the manifest directory, the manifest URL) produces
//! *complete snapshots* — every pod it currently defines plus the problems it
//! found — never diffs. The [`Merger`] keeps the newest snapshot per source and
//! turns them into one desired set keyed by pod UID, rejecting a pod whose
//! namespace/name another source (or an earlier file) already claims.
//! ConfigMaps and Secrets travel the same way: snapshots carry them, the
//! merger keys them by namespace/name with the same first-wins rule.
//!
//! It does not run anything: the pod manager consumes [`Desired`].

pub mod file;
pub mod merge;
pub mod url;

pub use crate::k8s::meta::{full_name, object_key};
pub use merge::{Conflict, Merger, ObjectKind};

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use serde::Serialize;

use crate::manifest::{self, ManifestError, Origin};

/// One pod as a source defines it (identified, validated, defaulted).
#[derive(Debug, Clone)]
pub struct SourcePod {
    pub pod: Arc<Pod>,
    pub origin: Origin,
}

impl SourcePod {
    pub fn uid(&self) -> &str {
        self.pod.metadata.uid.as_deref().unwrap_or_default()
    }
    /// `namespace/name` (name with the node suffix).
    pub fn full_name(&self) -> String {
        full_name(&self.pod)
    }
}

/// A ConfigMap or Secret as a source defines it (validated, namespaced).
#[derive(Debug, Clone)]
pub struct SourceObject<T> {
    pub object: Arc<T>,
    pub origin: Origin,
}

pub type SourceConfigMap = SourceObject<ConfigMap>;
pub type SourceSecret = SourceObject<Secret>;
pub type SourceWorkload = SourceObject<crate::manifest::workload::Workload>;

/// What one good manifest (a file, the URL's body) defines, each object
/// with its origin: that manifest's share of a snapshot.
#[derive(Debug, Clone, Default)]
pub struct Defined {
    pub pods: Vec<SourcePod>,
    pub configmaps: Vec<SourceConfigMap>,
    pub secrets: Vec<SourceSecret>,
    pub workloads: Vec<SourceWorkload>,
}

impl Defined {
    /// The pods and objects of a loaded manifest (its warnings are the
    /// caller's to keep).
    pub fn new(loaded: manifest::Loaded, origin: &Origin) -> Self {
        fn with_origin<T>(objects: Vec<T>, origin: &Origin) -> Vec<SourceObject<T>> {
            (objects.into_iter())
                .map(|o| SourceObject {
                    object: Arc::new(o),
                    origin: origin.clone(),
                })
                .collect()
        }
        Defined {
            pods: (loaded.pods.into_iter())
                .map(|pod| SourcePod {
                    pod: Arc::new(pod),
                    origin: origin.clone(),
                })
                .collect(),
            configmaps: with_origin(loaded.configmaps, origin),
            secrets: with_origin(loaded.secrets, origin),
            workloads: with_origin(loaded.workloads, origin),
        }
    }

    /// Adds these pods and objects to `snapshot`, after what it has.
    pub fn add_to(&self, snapshot: &mut Snapshot) {
        snapshot.pods.extend(self.pods.iter().cloned());
        snapshot.configmaps.extend(self.configmaps.iter().cloned());
        snapshot.secrets.extend(self.secrets.iter().cloned());
        snapshot.workloads.extend(self.workloads.iter().cloned());
    }
}

/// Everything one source defines right now.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Source name, e.g. `file`.
    pub source: String,
    /// Pods in the source's order (for the file source: by file name).
    pub pods: Vec<SourcePod>,
    /// Current problems (each names its file or URL).
    pub errors: Vec<ManifestError>,
    /// Current non-fatal findings.
    pub warnings: Vec<String>,
    /// ConfigMaps in the source's order.
    pub configmaps: Vec<SourceConfigMap>,
    /// Secrets in the source's order.
    pub secrets: Vec<SourceSecret>,
    /// Deployments, ReplicaSets and DaemonSets in the source's order.
    pub workloads: Vec<SourceWorkload>,
    /// Origin keys (`url:<url>`, `file:<path>`) whose containers orphan
    /// cleanup must leave alone: the source cannot say what they should be
    /// yet (a URL whose fetches failed, a manifest directory not read since
    /// rkubelet started), so pods running from before a restart keep
    /// running. A key ending in `/` stands for every file directly in that
    /// directory (see [`origin_kept`]).
    pub keep_origins: Vec<String>,
    /// Why the source as a whole is failing right now (e.g. the URL cannot be
    /// fetched); `None` when it is healthy.
    pub failing: Option<String>,
}

/// Does the kept origin key `kept` (an entry of [`Snapshot::keep_origins`])
/// cover a container whose origin label is `origin`? Equal keys do, and a
/// key ending in `/` covers the files directly in that directory.
pub fn origin_kept(kept: &str, origin: &str) -> bool {
    kept == origin
        || (kept.ends_with('/')
            && origin
                .strip_prefix(kept)
                .is_some_and(|rest| !rest.is_empty() && !rest.contains('/')))
}

/// The merged desired state.
#[derive(Debug, Clone, Default)]
pub struct Desired {
    pub pods: BTreeMap<String, SourcePod>,
    /// ConfigMaps by `namespace/name`.
    pub configmaps: BTreeMap<String, Arc<ConfigMap>>,
    /// Secrets by `namespace/name`.
    pub secrets: BTreeMap<String, Arc<Secret>>,
    /// Workloads by `Kind/namespace/name`, with their origin.
    pub workloads: BTreeMap<String, SourceWorkload>,
    /// True once every configured source has reported at least once
    /// (a failed first fetch counts as a report).
    pub complete: bool,
    /// Union of the sources' [`Snapshot::keep_origins`].
    pub keep_origins: BTreeSet<String>,
}

/// Problems across all sources, as served by `GET /manifests`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Diagnostics {
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
    /// Pods, ConfigMaps and Secrets ignored because another manifest
    /// already defines the same namespace/name (served as messages).
    pub conflicts: Vec<Conflict>,
    /// Number of pods defined per source.
    pub pods: BTreeMap<String, usize>,
    /// Sources failing as a whole (source name to why), e.g. an unreachable
    /// manifest URL. Their last good pods keep running.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub failing: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::origin_kept;

    #[test]
    fn a_kept_directory_key_covers_the_files_directly_in_it() {
        assert!(origin_kept("url:http://x/", "url:http://x/"));
        assert!(origin_kept("file:/etc/m/", "file:/etc/m/web.yaml"));
        assert!(origin_kept("file:/etc/m", "file:/etc/m"));
        assert!(!origin_kept("file:/etc/m/", "file:/etc/m/sub/web.yaml"));
        assert!(!origin_kept("file:/etc/m/", "file:/etc/mx/web.yaml"));
        assert!(!origin_kept("file:/etc/m", "file:/etc/m/web.yaml"));
    }
}
