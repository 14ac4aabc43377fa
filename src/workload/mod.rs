//! Workload controllers as pure functions.
//!
//! Owns what the cluster's controllers decide, without their API server:
//! from a workload's spec, the pods observed for it (with their status) and
//! the time, which pods to create, which to delete and the workload's
//! status. [`replicaset`] keeps a number of pods from one template (and
//! picks which to delete the way the ReplicaSet controller does);
//! [`deployment`] moves replicas between the ReplicaSets of its templates
//! (rolling update with `maxSurge`/`maxUnavailable`, `Recreate`, `paused`);
//! [`daemonset`] keeps one pod on this node when it fits;
//! [`cronjob`] decides when a CronJob creates a Job (on [`cron`]
//! schedules) and which of its Jobs to delete.
//! This module has what they share: the observed pod ([`PodView`]) and its
//! availability, `maxSurge`/`maxUnavailable` resolution, the
//! `pod-template-hash` and deterministic pod name suffixes (so a restarted
//! rkubelet finds the same names again).
//!
//! Pure: no tasks, no Docker, no clock reads (`now` is an argument). The
//! shell that runs them against the pod manager is not part of this module.

pub mod cron;
pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod job;
pub mod objects;
pub mod pods;
pub mod replicaset;

use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use sha2::{Digest, Sha256};

/// The label a Deployment's ReplicaSets and pods carry.
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";
/// The label a DaemonSet's pods carry.
pub const CONTROLLER_REVISION_HASH: &str = "controller-revision-hash";

/// The characters Kubernetes uses for generated name suffixes (no vowels,
/// no look-alikes).
const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// What a controller needs to know about one of its pods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodView {
    pub name: String,
    /// When the pod was created (first seen); newer pods go first on
    /// scale-down.
    pub created: Timestamp,
    /// Scheduled and started (not `Pending`).
    pub running: bool,
    /// Since when its `Ready` condition is true, if it is.
    pub ready_since: Option<Timestamp>,
    /// Restarts of its containers, summed.
    pub restarts: i32,
    /// Being deleted: no longer counted as a replica.
    pub terminating: bool,
}

impl PodView {
    pub fn is_ready(&self) -> bool {
        self.ready_since.is_some()
    }

    /// Ready for at least `min_ready_seconds` at `now` (the controllers'
    /// "available").
    pub fn is_available(&self, min_ready_seconds: i32, now: Timestamp) -> bool {
        self.ready_since.is_some_and(|since| {
            min_ready_seconds <= 0
                || since + SignedDuration::from_secs(i64::from(min_ready_seconds)) <= now
        })
    }
}

/// Resolves an int-or-percent against `total`, rounding up or down as
/// Kubernetes does (`maxSurge` up, `maxUnavailable` down). A malformed
/// value counts as 0 (validation rejected it before).
pub fn scaled_value(value: &IntOrString, total: i32, round_up: bool) -> i32 {
    match value {
        IntOrString::Int(i) => (*i).max(0),
        IntOrString::String(s) => {
            let Some(p) = s.strip_suffix('%').and_then(|d| d.parse::<i64>().ok()) else {
                return 0;
            };
            let product = p.max(0) * i64::from(total.max(0));
            let v = if round_up {
                (product + 99) / 100
            } else {
                product / 100
            };
            i32::try_from(v).unwrap_or(i32::MAX)
        }
    }
}

/// `(maxSurge, maxUnavailable)` for `replicas`: surge rounded up,
/// unavailable rounded down; when both come out 0, unavailable is 1 so a
/// rollout can progress (the deployment controller's `ResolveFenceposts`).
pub fn resolve_fenceposts(
    max_surge: &IntOrString,
    max_unavailable: &IntOrString,
    replicas: i32,
) -> (i32, i32) {
    let surge = scaled_value(max_surge, replicas, true);
    let unavailable = scaled_value(max_unavailable, replicas, false);
    if surge == 0 && unavailable == 0 {
        (0, 1)
    } else {
        (surge, unavailable)
    }
}

/// Maps bytes onto [`ALPHANUMS`] (Kubernetes' `SafeEncodeString`).
fn safe_encode(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| ALPHANUMS[usize::from(*b) % ALPHANUMS.len()] as char)
        .collect()
}

/// The `pod-template-hash` of a template: a stable hash of its canonical
/// JSON (map keys sorted), encoded like Kubernetes' (decimal digits of a
/// 32-bit hash mapped onto its suffix alphabet), so equal templates — an
/// edit rolled back — get the same hash and the same ReplicaSet again.
pub fn template_hash(template: &PodTemplateSpec) -> String {
    let canonical = serde_json::to_vec(template).unwrap_or_default();
    let digest = Sha256::digest(&canonical);
    let n = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    safe_encode(n.to_string().as_bytes())
}

/// The `index`-th deterministic 5-character suffix for pods of `owner`
/// (`namespace/name` of the ReplicaSet or DaemonSet): the same owner gets
/// the same sequence of names after a restart, so its pods are found again.
pub fn pod_suffix(owner: &str, index: u32) -> String {
    let digest = Sha256::digest(format!("{owner}\n{index}").as_bytes());
    safe_encode(&digest[..5])
}

/// A name `<prefix>-<suffix>` not in `taken`: the first free one of the
/// owner's deterministic sequence.
pub fn free_pod_name(owner: &str, prefix: &str, taken: &[&str]) -> String {
    (0u32..)
        .map(|i| format!("{prefix}-{}", pod_suffix(owner, i)))
        .find(|n| !taken.contains(&n.as_str()))
        .unwrap_or_else(|| format!("{prefix}-xxxxx"))
}

#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    pub fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).expect("in range")
    }

    /// A running pod created at `created`, ready since `ready` (if any).
    pub fn pod(name: &str, created: i64, ready: Option<i64>, restarts: i32) -> PodView {
        PodView {
            name: name.into(),
            created: at(created),
            running: true,
            ready_since: ready.map(at),
            restarts,
            terminating: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;

    #[test]
    fn surge_rounds_up_and_unavailable_rounds_down() {
        let pct = |s: &str| IntOrString::String(s.into());
        assert_eq!(resolve_fenceposts(&pct("25%"), &pct("25%"), 3), (1, 0));
        assert_eq!(resolve_fenceposts(&pct("25%"), &pct("25%"), 10), (3, 2));
        assert_eq!(
            resolve_fenceposts(&IntOrString::Int(0), &pct("25%"), 3),
            (0, 1),
            "both 0 after rounding: one may be unavailable"
        );
        assert_eq!(
            resolve_fenceposts(&IntOrString::Int(2), &IntOrString::Int(0), 3),
            (2, 0)
        );
        assert_eq!(scaled_value(&pct("100%"), 7, false), 7);
        assert_eq!(scaled_value(&pct("junk"), 7, false), 0);
    }

    #[test]
    fn availability_needs_ready_for_min_ready_seconds() {
        let p = pod("a", 0, Some(10), 0);
        assert!(p.is_available(0, at(10)));
        assert!(!p.is_available(5, at(14)));
        assert!(p.is_available(5, at(15)));
        assert!(!pod("b", 0, None, 0).is_available(0, at(100)));
    }

    #[test]
    fn template_hashes_and_suffixes_are_stable_and_use_the_kubernetes_alphabet() {
        let t: PodTemplateSpec = serde_json::from_value(serde_json::json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "i"}]}
        }))
        .expect("template");
        let h = template_hash(&t);
        assert_eq!(h, template_hash(&t.clone()));
        let mut changed = t.clone();
        changed.metadata.get_or_insert_with(Default::default).labels =
            Some([("app".to_string(), "api".to_string())].into());
        assert_ne!(h, template_hash(&changed));
        let s = pod_suffix("default/web-abc", 0);
        assert_eq!(s.len(), 5);
        assert!(s.bytes().all(|b| ALPHANUMS.contains(&b)), "{s}");
        assert!(h.bytes().all(|b| ALPHANUMS.contains(&b)), "{h}");
        assert_eq!(s, pod_suffix("default/web-abc", 0));
        assert_ne!(s, pod_suffix("default/web-abc", 1));
        let first = free_pod_name("default/web", "web", &[]);
        let second = free_pod_name("default/web", "web", &[&first]);
        assert_ne!(first, second);
        assert_eq!(first, free_pod_name("default/web", "web", &[&second]));
    }
}
