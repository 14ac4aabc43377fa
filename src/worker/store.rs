//! The status store: the latest spec + status of every pod, by UID, with
//! the last result of each of its probes.
//!
//! Pod workers write it; the API and the manager read it. Pods live in a
//! versioned [`watch::Store`] (keyed by UID), so each real change gets a
//! `resourceVersion` and reaches the API's watchers; republishing an
//! unchanged pod changes nothing. Probe results are kept beside it: they are
//! no part of the served `Pod`, so a new probe result alone is no change.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use k8s_openapi::api::core::v1::Pod;

use crate::k8s::probe::ProbeReport;
use crate::watch::{self, Versions};

/// One pod as served by the API: spec + status, and where it came from.
#[derive(Debug, Clone)]
pub struct PodRecord {
    pub pod: Pod,
    pub source: String,
    /// The last result of each probe, for `describe`.
    pub probes: Vec<ProbeReport>,
}

#[derive(Debug, Clone, Default)]
struct Extra {
    source: String,
    probes: Vec<ProbeReport>,
}

/// The latest status of every pod, by UID. Written by workers, read by the API.
#[derive(Debug)]
pub struct PodStore {
    pods: watch::Store<Pod>,
    extra: RwLock<BTreeMap<String, Extra>>,
}

impl Default for PodStore {
    fn default() -> Self {
        PodStore::new(Arc::new(Versions::default()))
    }
}

impl PodStore {
    /// A store drawing resourceVersions from the node's counter.
    pub fn new(versions: Arc<Versions>) -> Self {
        PodStore {
            pods: watch::Store::new(versions),
            extra: RwLock::default(),
        }
    }

    /// The versioned pods, for the API's lists and watches.
    pub fn pods(&self) -> &watch::Store<Pod> {
        &self.pods
    }

    pub fn put(&self, uid: &str, record: PodRecord) {
        if let Ok(mut m) = self.extra.write() {
            m.insert(
                uid.to_string(),
                Extra {
                    source: record.source,
                    probes: record.probes,
                },
            );
        }
        self.pods.put(uid, record.pod);
    }

    /// Replaces the probe reports of a pod already in the store (the pod
    /// itself is unchanged, so no new resourceVersion); a pod not in the
    /// store is left out.
    pub fn set_probes(&self, uid: &str, probes: Vec<ProbeReport>) {
        if let Ok(mut m) = self.extra.write() {
            if let Some(e) = m.get_mut(uid) {
                e.probes = probes;
            }
        }
    }
    pub fn remove(&self, uid: &str) {
        self.pods.remove(uid);
        if let Ok(mut m) = self.extra.write() {
            m.remove(uid);
        }
    }
    /// All pods, ordered by namespace and name.
    pub fn list(&self) -> Vec<PodRecord> {
        let extra = self.extra.read().map(|m| m.clone()).unwrap_or_default();
        self.pods
            .list()
            .0
            .into_iter()
            .map(|pod| {
                let uid = pod.metadata.uid.clone().unwrap_or_default();
                let e = extra.get(&uid).cloned().unwrap_or_default();
                PodRecord {
                    pod: (*pod).clone(),
                    source: e.source,
                    probes: e.probes,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(uid: &str, phase: &str) -> PodRecord {
        PodRecord {
            pod: serde_json::from_value(serde_json::json!({
                "metadata": {"name": "p", "namespace": "default", "uid": uid},
                "status": {"phase": phase}
            }))
            .expect("pod"),
            source: "file".into(),
            probes: Vec::new(),
        }
    }

    #[test]
    fn republishing_an_unchanged_pod_is_no_change() {
        let s = PodStore::default();
        s.put("u1", record("u1", "Running"));
        let (_, v) = s.pods().list();
        s.put("u1", record("u1", "Running"));
        assert_eq!(s.pods().list().1, v);
        s.put("u1", record("u1", "Succeeded"));
        assert!(s.pods().list().1 > v);
        let r = s.list();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].source, "file");
        assert!(r[0].pod.metadata.resource_version.is_some());
        s.remove("u1");
        assert!(s.list().is_empty());
    }
}
