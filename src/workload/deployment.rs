//! The Deployment controller: how many replicas each of its ReplicaSets
//! should have now, and the Deployment's status.
//!
//! A Deployment owns one ReplicaSet per template (keyed by
//! `pod-template-hash`); the one of the current template is the *new* one,
//! the others are *old*. [`scale`] returns every ReplicaSet's replica count
//! for this step, as the deployment controller's sync does:
//!
//! * `RollingUpdate`: scale the new ReplicaSet up while the total stays
//!   within `replicas + maxSurge`; scale old ones down (unhealthy pods
//!   first, oldest ReplicaSet first) while at least
//!   `replicas − maxUnavailable` pods stay available. A step that scaled up
//!   does not also scale down (the controller returns and syncs again).
//! * `Recreate`: old ReplicaSets to 0; the new one only once no old pod is
//!   left at all (terminating ones included).
//! * `paused`: no rollout; a lone ReplicaSet still follows `replicas`.
//!
//! The ReplicaSets then create and delete pods
//! ([`super::replicaset::reconcile`]); [`status`] counts them.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;

use super::replicaset::{count, Counts};
use super::{resolve_fenceposts, PodView};

/// How a Deployment replaces pods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strategy {
    RollingUpdate {
        max_surge: IntOrString,
        max_unavailable: IntOrString,
    },
    Recreate,
}

/// The parts of a Deployment's spec the controller reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub replicas: i32,
    pub strategy: Strategy,
    pub paused: bool,
    pub min_ready_seconds: i32,
}

/// One ReplicaSet of the Deployment as observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaSetView {
    /// Its `pod-template-hash`.
    pub hash: String,
    /// Its `spec.replicas`.
    pub replicas: i32,
    pub pods: Vec<PodView>,
}

impl ReplicaSetView {
    fn counts(&self, min_ready: i32, now: Timestamp) -> Counts {
        count(&self.pods, min_ready, now)
    }
}

/// The replica count of every ReplicaSet for this step, in the order of
/// `sets` (oldest first), followed by the new ReplicaSet's when `sets`
/// has none of hash `new_hash` yet. Only counts that change matter; the
/// caller applies them all.
pub fn scale(
    spec: &Spec,
    new_hash: &str,
    sets: &[ReplicaSetView],
    now: Timestamp,
) -> Vec<(String, i32)> {
    let mut out: Vec<(String, i32)> = sets.iter().map(|s| (s.hash.clone(), s.replicas)).collect();
    let new_index = match out.iter().position(|(h, _)| h == new_hash) {
        Some(i) => i,
        None => {
            out.push((new_hash.to_string(), 0));
            out.len() - 1
        }
    };
    let desired = spec.replicas.max(0);
    let olds_active = out
        .iter()
        .enumerate()
        .any(|(i, (_, r))| i != new_index && *r > 0);
    if spec.paused {
        // Scaling still works on a settled Deployment.
        if !olds_active {
            out[new_index].1 = desired;
        }
        return out;
    }
    match &spec.strategy {
        Strategy::Recreate => {
            if olds_active {
                for (i, (_, r)) in out.iter_mut().enumerate() {
                    if i != new_index {
                        *r = 0;
                    }
                }
                return out;
            }
            let old_pods_left = sets
                .iter()
                .filter(|s| s.hash != new_hash)
                .any(|s| !s.pods.is_empty());
            if !old_pods_left {
                out[new_index].1 = desired;
            }
            out
        }
        Strategy::RollingUpdate {
            max_surge,
            max_unavailable,
        } => {
            let (surge, unavailable) = resolve_fenceposts(max_surge, max_unavailable, desired);
            if !olds_active {
                out[new_index].1 = desired;
                return out;
            }
            // Scale the new ReplicaSet up within replicas + maxSurge.
            let total: i32 = out.iter().map(|(_, r)| *r).sum();
            let new_now = out[new_index].1;
            if new_now > desired {
                out[new_index].1 = desired;
                return out;
            }
            if new_now < desired && total < desired + surge {
                let up = (desired + surge - total).min(desired - new_now);
                out[new_index].1 = new_now + up;
                return out;
            }
            // Scale old ones down while keeping replicas - maxUnavailable available.
            let min_available = desired - unavailable;
            let counts: Vec<Counts> = (0..out.len())
                .map(|i| match sets.iter().find(|s| s.hash == out[i].0) {
                    Some(s) => s.counts(spec.min_ready_seconds, now),
                    None => Counts::default(),
                })
                .collect();
            let new_unavailable = (out[new_index].1 - counts[new_index].available).max(0);
            let mut max_scaled_down = total - min_available - new_unavailable;
            if max_scaled_down <= 0 {
                return out;
            }
            // First the old ReplicaSets' unhealthy replicas (oldest first).
            for i in (0..out.len()).filter(|i| *i != new_index) {
                if max_scaled_down <= 0 {
                    break;
                }
                let unhealthy = (out[i].1 - counts[i].available).max(0);
                let down = unhealthy.min(max_scaled_down);
                out[i].1 -= down;
                max_scaled_down -= down;
            }
            // Then available ones, as long as enough stay available.
            let available: i32 = counts.iter().map(|c| c.available).sum();
            let mut room = (available - min_available).min(max_scaled_down);
            for i in (0..out.len()).filter(|i| *i != new_index) {
                if room <= 0 {
                    break;
                }
                let down = out[i].1.min(room);
                out[i].1 -= down;
                room -= down;
            }
            out
        }
    }
}

/// The status fields of a Deployment over all its ReplicaSets' pods.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Status {
    pub replicas: i32,
    pub updated: i32,
    pub ready: i32,
    pub available: i32,
    pub unavailable: i32,
    /// Every replica is updated and available and no old pod is left.
    pub complete: bool,
    /// At least `replicas − maxUnavailable` available (condition
    /// `Available`, reason `MinimumReplicasAvailable`).
    pub minimum_available: bool,
}

/// Counts the Deployment's status as the controller does.
pub fn status(spec: &Spec, new_hash: &str, sets: &[ReplicaSetView], now: Timestamp) -> Status {
    let mut s = Status::default();
    let mut old_pods = 0;
    for set in sets {
        let c = set.counts(spec.min_ready_seconds, now);
        s.replicas += c.replicas;
        s.ready += c.ready;
        s.available += c.available;
        if set.hash == new_hash {
            s.updated = c.replicas;
        } else {
            old_pods += set.pods.len();
        }
    }
    let desired = spec.replicas.max(0);
    s.unavailable = (desired - s.available).max(0);
    let max_unavailable = match &spec.strategy {
        Strategy::RollingUpdate {
            max_surge,
            max_unavailable,
        } => resolve_fenceposts(max_surge, max_unavailable, desired).1,
        Strategy::Recreate => 0,
    };
    s.minimum_available = s.available >= desired - max_unavailable;
    s.complete = s.updated == desired && s.available >= desired && old_pods == 0;
    s
}

#[cfg(test)]
mod tests {
    use super::super::replicaset;
    use super::*;
    use crate::workload::fixtures::at;

    fn rolling(surge: IntOrString, unavailable: IntOrString) -> Spec {
        Spec {
            replicas: 4,
            strategy: Strategy::RollingUpdate {
                max_surge: surge,
                max_unavailable: unavailable,
            },
            paused: false,
            min_ready_seconds: 0,
        }
    }

    /// A node in miniature: ReplicaSets whose pods are created at once,
    /// become ready `ready_after` seconds later, and are gone
    /// `terminate_for` seconds after their deletion.
    struct World {
        sets: Vec<ReplicaSetView>,
        now: i64,
        ready_after: i64,
        terminate_for: i64,
        /// (hash, pod name, deleted at)
        deleting: Vec<(String, String, i64)>,
    }

    impl World {
        /// `n` ready pods of template "old".
        fn settled(n: i32) -> World {
            let mut w = World {
                sets: vec![ReplicaSetView {
                    hash: "old".into(),
                    replicas: n,
                    pods: Vec::new(),
                }],
                now: 0,
                ready_after: 1,
                terminate_for: 0,
                deleting: Vec::new(),
            };
            w.sync_pods();
            for p in &mut w.sets[0].pods {
                p.ready_since = Some(at(0));
            }
            w
        }

        /// The ReplicaSet controller's turn.
        fn sync_pods(&mut self) {
            let now = at(self.now);
            for set in &mut self.sets {
                let owner = format!("default/web-{}", set.hash);
                let prefix = format!("web-{}", set.hash);
                let plan = replicaset::reconcile(&owner, &prefix, set.replicas, 0, &set.pods, now);
                for name in plan.create {
                    set.pods.push(PodView {
                        name,
                        created: now,
                        running: true,
                        ready_since: None,
                        restarts: 0,
                        terminating: false,
                    });
                }
                for name in plan.delete {
                    if let Some(p) = set.pods.iter_mut().find(|p| p.name == name) {
                        p.terminating = true;
                        p.ready_since = None;
                        self.deleting.push((set.hash.clone(), name, self.now));
                    }
                }
            }
        }

        /// Time passes by one second: pods get ready, deleted ones go.
        fn tick(&mut self) {
            self.now += 1;
            let now = self.now;
            for set in &mut self.sets {
                for p in &mut set.pods {
                    let age = now - p.created.as_second();
                    if !p.terminating && p.ready_since.is_none() && age >= self.ready_after {
                        p.ready_since = Some(at(now));
                    }
                }
            }
            let (gone, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.deleting)
                .into_iter()
                .partition(|(_, _, at)| now - at >= self.terminate_for);
            self.deleting = keep;
            for (hash, name, _) in gone {
                if let Some(set) = self.sets.iter_mut().find(|s| s.hash == hash) {
                    set.pods.retain(|p| p.name != name);
                }
            }
        }

        /// The Deployment controller's turn.
        fn sync_deployment(&mut self, spec: &Spec, new_hash: &str) {
            for (hash, replicas) in scale(spec, new_hash, &self.sets, at(self.now)) {
                match self.sets.iter_mut().find(|s| s.hash == hash) {
                    Some(s) => s.replicas = replicas,
                    None => self.sets.push(ReplicaSetView {
                        hash,
                        replicas,
                        pods: Vec::new(),
                    }),
                }
            }
        }

        fn live(&self) -> i32 {
            (self.sets.iter().flat_map(|s| &s.pods))
                .filter(|p| !p.terminating)
                .count() as i32
        }

        fn available(&self) -> i32 {
            (self.sets.iter().flat_map(|s| &s.pods))
                .filter(|p| p.is_available(0, at(self.now)))
                .count() as i32
        }

        fn status(&self, spec: &Spec, new_hash: &str) -> Status {
            status(spec, new_hash, &self.sets, at(self.now))
        }
    }

    fn values() -> [IntOrString; 3] {
        [
            IntOrString::Int(0),
            IntOrString::Int(1),
            IntOrString::String("25%".into()),
        ]
    }

    #[test]
    fn every_surge_and_unavailable_combination_keeps_the_rollout_within_its_bounds() {
        let timings = [(1, 0), (3, 2)];
        for (surge, unavailable, (ready_after, terminate_for)) in values()
            .into_iter()
            .flat_map(|s| values().map(move |u| (s.clone(), u)))
            .flat_map(|(s, u)| timings.map(move |t| (s.clone(), u.clone(), t)))
        {
            {
                if surge == IntOrString::Int(0) && unavailable == IntOrString::Int(0) {
                    continue; // rejected by validation
                }
                let spec = rolling(surge.clone(), unavailable.clone());
                let (max_surge, max_unavailable) = resolve_fenceposts(&surge, &unavailable, 4);
                let mut w = World::settled(4);
                w.ready_after = ready_after;
                w.terminate_for = terminate_for;
                let mut done = false;
                for step in 0..100 {
                    w.sync_deployment(&spec, "new");
                    w.sync_pods();
                    let what = format!("surge {surge:?} unavailable {unavailable:?} step {step}");
                    assert!(w.live() <= 4 + max_surge, "{what}: {} pods", w.live());
                    assert!(
                        w.available() >= 4 - max_unavailable,
                        "{what}: {} available",
                        w.available()
                    );
                    if w.status(&spec, "new").complete {
                        done = true;
                        break;
                    }
                    w.tick();
                }
                assert!(
                    done,
                    "surge {surge:?} unavailable {unavailable:?}: rollout finished"
                );
                let st = w.status(&spec, "new");
                assert_eq!((st.replicas, st.updated, st.available), (4, 4, 4));
            }
        }
    }

    #[test]
    fn recreate_never_runs_old_and_new_pods_together() {
        let spec = Spec {
            strategy: Strategy::Recreate,
            ..rolling(IntOrString::Int(1), IntOrString::Int(0))
        };
        let mut w = World::settled(4);
        w.terminate_for = 3;
        let mut done = false;
        for _ in 0..50 {
            w.sync_deployment(&spec, "new");
            w.sync_pods();
            let old = w
                .sets
                .iter()
                .filter(|s| s.hash == "old")
                .flat_map(|s| &s.pods)
                .count();
            let new = w
                .sets
                .iter()
                .filter(|s| s.hash == "new")
                .flat_map(|s| &s.pods)
                .count();
            assert!(
                old == 0 || new == 0,
                "{old} old and {new} new pods together"
            );
            if w.status(&spec, "new").complete {
                done = true;
                break;
            }
            w.tick();
        }
        assert!(done);
    }

    #[test]
    fn a_paused_deployment_does_not_roll_out_but_resumes_where_it_stood() {
        let mut spec = rolling(IntOrString::Int(1), IntOrString::Int(0));
        spec.paused = true;
        let mut w = World::settled(4);
        for _ in 0..5 {
            w.sync_deployment(&spec, "new");
            w.sync_pods();
            w.tick();
        }
        assert_eq!(w.status(&spec, "new").updated, 0, "nothing rolled out");
        spec.paused = false;
        w.sync_deployment(&spec, "new");
        w.sync_pods();
        assert_eq!(w.status(&spec, "new").updated, 1, "one surge pod");
    }

    #[test]
    fn changing_only_replicas_scales_the_current_replica_set() {
        let mut spec = rolling(IntOrString::Int(1), IntOrString::Int(0));
        spec.replicas = 6;
        let w = World::settled(4);
        assert_eq!(
            scale(&spec, "old", &w.sets, at(0)),
            [("old".to_string(), 6)]
        );
        spec.replicas = 1;
        assert_eq!(
            scale(&spec, "old", &w.sets, at(0)),
            [("old".to_string(), 1)]
        );
    }

    #[test]
    fn rolling_back_to_an_old_template_reuses_its_replica_set() {
        let spec = rolling(IntOrString::Int(1), IntOrString::Int(1));
        let mut w = World::settled(4);
        for _ in 0..3 {
            w.sync_deployment(&spec, "new");
            w.sync_pods();
            w.tick();
        }
        assert!(w.status(&spec, "new").updated > 0, "rollout under way");
        for _ in 0..50 {
            w.sync_deployment(&spec, "old");
            w.sync_pods();
            if w.status(&spec, "old").complete {
                break;
            }
            w.tick();
        }
        let st = w.status(&spec, "old");
        assert!(st.complete, "{st:?}");
        assert_eq!(w.sets.len(), 2, "no third ReplicaSet");
    }

    #[test]
    fn status_counts_updated_ready_available_and_minimum_availability() {
        let spec = rolling(IntOrString::Int(1), IntOrString::Int(1));
        let w = World::settled(4);
        let st = w.status(&spec, "new");
        assert_eq!(
            (
                st.replicas,
                st.updated,
                st.ready,
                st.available,
                st.unavailable
            ),
            (4, 0, 4, 4, 0)
        );
        assert!(st.minimum_available && !st.complete);
        let st = w.status(&spec, "old");
        assert!(st.complete);
    }
}
