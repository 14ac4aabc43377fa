//! The ReplicaSet controller: keep `replicas` pods of one template.
//!
//! [`reconcile`] compares the live (not terminating) pods with `replicas`:
//! too few gets new pod names (the owner's deterministic sequence, see
//! [`super::free_pod_name`]), too many picks pods to delete in the
//! controller's order ([`deletion_order`]: not running before running,
//! not ready before ready, ready for less time first, more restarts first,
//! newer before older). It also counts the status fields.

use std::cmp::Ordering;

use k8s_openapi::jiff::Timestamp;

use super::{free_pod_name, PodView};

/// What to do for one ReplicaSet now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Names of pods to create.
    pub create: Vec<String>,
    /// Names of pods to delete.
    pub delete: Vec<String>,
    pub status: Counts,
}

/// The status fields of a ReplicaSet, counted over live pods.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub replicas: i32,
    pub ready: i32,
    pub available: i32,
}

/// Counts the live pods, the ready ones and the available ones.
pub fn count(pods: &[PodView], min_ready_seconds: i32, now: Timestamp) -> Counts {
    let live = pods.iter().filter(|p| !p.terminating);
    let mut c = Counts::default();
    for p in live {
        c.replicas += 1;
        c.ready += i32::from(p.is_ready());
        c.available += i32::from(p.is_available(min_ready_seconds, now));
    }
    c
}

/// The controller's preference for deleting `a` before `b` (`Less` = `a`
/// goes first).
fn delete_first(a: &PodView, b: &PodView) -> Ordering {
    // Not running (Pending) before running.
    (a.running.cmp(&b.running))
        // Not ready before ready.
        .then(a.is_ready().cmp(&b.is_ready()))
        // Ready for less time first (the later ready_since).
        .then(b.ready_since.cmp(&a.ready_since))
        // More restarts first.
        .then(b.restarts.cmp(&a.restarts))
        // Newer before older.
        .then(b.created.cmp(&a.created))
        .then(a.name.cmp(&b.name))
}

/// The live pods in the order the ReplicaSet controller deletes them.
pub fn deletion_order(pods: &[PodView]) -> Vec<&PodView> {
    let mut live: Vec<&PodView> = pods.iter().filter(|p| !p.terminating).collect();
    live.sort_by(|a, b| delete_first(a, b));
    live
}

/// What the ReplicaSet `owner` (`namespace/name`), whose pods are named
/// `<prefix>-<suffix>`, must do to have `replicas` live pods.
pub fn reconcile(
    owner: &str,
    prefix: &str,
    replicas: i32,
    min_ready_seconds: i32,
    pods: &[PodView],
    now: Timestamp,
) -> Plan {
    let status = count(pods, min_ready_seconds, now);
    let want = usize::try_from(replicas.max(0)).unwrap_or(0);
    let have = usize::try_from(status.replicas).unwrap_or(0);
    let mut plan = Plan {
        status,
        ..Plan::default()
    };
    if have < want {
        let mut taken: Vec<String> = pods.iter().map(|p| p.name.clone()).collect();
        for _ in have..want {
            let refs: Vec<&str> = taken.iter().map(String::as_str).collect();
            let name = free_pod_name(owner, prefix, &refs);
            taken.push(name.clone());
            plan.create.push(name);
        }
    } else if have > want {
        plan.delete = (deletion_order(pods).into_iter())
            .take(have - want)
            .map(|p| p.name.clone())
            .collect();
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    #[test]
    fn too_few_pods_get_new_distinct_names_that_skip_taken_ones() {
        let plan = reconcile("default/web", "web", 3, 0, &[], at(0));
        assert_eq!(plan.create.len(), 3);
        assert!(plan.delete.is_empty());
        let mut names = plan.create.clone();
        names.dedup();
        assert_eq!(names.len(), 3);
        assert!(names.iter().all(|n| n.starts_with("web-") && n.len() == 9));
        // After a restart the pods are found by name: nothing new.
        let pods: Vec<PodView> = (plan.create.iter())
            .map(|n| pod(n, 0, Some(1), 0))
            .collect();
        let again = reconcile("default/web", "web", 3, 0, &pods, at(5));
        assert!(again.create.is_empty() && again.delete.is_empty());
        assert_eq!(
            again.status,
            Counts {
                replicas: 3,
                ready: 3,
                available: 3
            }
        );
        // One gone: exactly its name is reused.
        let rest = &pods[1..];
        assert_eq!(
            reconcile("default/web", "web", 3, 0, rest, at(5)).create,
            [plan.create[0].clone()]
        );
    }

    #[test]
    fn scale_down_deletes_pending_then_not_ready_then_more_restarts_then_newer_pods() {
        let mut pending = pod("pending", 1, None, 0);
        pending.running = false;
        let pods = vec![
            pod("old-ready", 0, Some(1), 0),
            pod("new-ready", 50, Some(51), 0),
            pod("not-ready", 0, None, 0),
            pod("crashy", 0, Some(1), 5),
            pod("newest-ready-same-time", 60, Some(1), 0),
            pending,
        ];
        let order: Vec<&str> = (deletion_order(&pods).into_iter())
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(
            order,
            [
                "pending",
                "not-ready",
                "new-ready",
                "crashy",
                "newest-ready-same-time",
                "old-ready"
            ]
        );
        let plan = reconcile("default/web", "web", 4, 0, &pods, at(100));
        assert_eq!(plan.delete, ["pending", "not-ready"]);
        assert!(plan.create.is_empty());
    }

    #[test]
    fn terminating_pods_do_not_count_and_are_not_deleted_again() {
        let mut going = pod("going", 0, Some(1), 0);
        going.terminating = true;
        let pods = vec![going, pod("a", 0, Some(1), 0)];
        let plan = reconcile("default/web", "web", 2, 0, &pods, at(10));
        assert_eq!(plan.create.len(), 1);
        assert_ne!(plan.create[0], "going");
        assert_eq!(plan.status.replicas, 1);
        assert_eq!(
            reconcile("default/web", "web", 0, 0, &pods, at(10)).delete,
            ["a"]
        );
    }
}
