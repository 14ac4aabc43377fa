//! The status store: the latest spec + status of every pod, by UID.
//!
//! Pod workers write it; the API and the manager read it.

use std::collections::BTreeMap;
use std::sync::RwLock;

use k8s_openapi::api::core::v1::Pod;

use crate::k8s::probe::ProbeReport;

/// One pod as served by the API: spec + status, and where it came from.
#[derive(Debug, Clone)]
pub struct PodRecord {
    pub pod: Pod,
    pub source: String,
    /// The last result of each probe, for `describe`.
    pub probes: Vec<ProbeReport>,
}

/// The latest status of every pod, by UID. Written by workers, read by the API.
#[derive(Debug, Default)]
pub struct PodStore {
    pods: RwLock<BTreeMap<String, PodRecord>>,
}

impl PodStore {
    pub fn put(&self, uid: &str, record: PodRecord) {
        if let Ok(mut m) = self.pods.write() {
            m.insert(uid.to_string(), record);
        }
    }
    /// Replaces the probe reports of a pod already in the store (the pod
    /// itself is unchanged); a pod not in the store is left out.
    pub fn set_probes(&self, uid: &str, probes: Vec<ProbeReport>) {
        if let Ok(mut m) = self.pods.write() {
            if let Some(r) = m.get_mut(uid) {
                r.probes = probes;
            }
        }
    }
    pub fn remove(&self, uid: &str) {
        if let Ok(mut m) = self.pods.write() {
            m.remove(uid);
        }
    }
    /// All pods, ordered by namespace and name.
    pub fn list(&self) -> Vec<PodRecord> {
        let mut v: Vec<PodRecord> = self
            .pods
            .read()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        v.sort_by(|a, b| {
            (&a.pod.metadata.namespace, &a.pod.metadata.name)
                .cmp(&(&b.pod.metadata.namespace, &b.pod.metadata.name))
        });
        v
    }
}
