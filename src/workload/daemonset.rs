//! The DaemonSet controller for one node: one pod here when the node fits.
//!
//! [`reconcile`] keeps exactly one live pod of the current template
//! (`controller-revision-hash`) when the node fits the template (node
//! selector, required node affinity: the caller's admission answer), none
//! otherwise — except that a pod already here stays when the node only
//! stopped fitting because of a `NoSchedule` taint it does not tolerate
//! (the controller's "should continue running": only `NoExecute` evicts).
//! A template change replaces the pod per `updateStrategy`:
//! `RollingUpdate` with `maxSurge` 0 (the default) deletes the old pod and
//! starts the new one once it is gone (a node never runs both); with
//! `maxSurge` > 0 the new one starts first and the old one goes once the new
//! one is available; `OnDelete` keeps the old pod until it is deleted.

use k8s_openapi::jiff::Timestamp;

use super::{free_pod_name, PodView};

/// How a DaemonSet replaces its pod on a template change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    /// `RollingUpdate`; `surge`: may the new pod start before the old one
    /// is gone (`maxSurge` resolved > 0)?
    Rolling {
        surge: bool,
    },
    OnDelete,
}

/// One of the DaemonSet's pods with its `controller-revision-hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonPod {
    pub view: PodView,
    pub hash: String,
}

/// What to do on this node now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The name of the pod to create, if one.
    pub create: Option<String>,
    pub delete: Vec<String>,
    pub status: Counts,
}

/// The DaemonSet status fields for this node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub desired_number_scheduled: i32,
    pub current_number_scheduled: i32,
    pub number_ready: i32,
    pub number_available: i32,
    pub updated_number_scheduled: i32,
    pub number_misscheduled: i32,
}

/// A DaemonSet as its controller on this node sees it.
#[derive(Debug, Clone, Copy)]
pub struct Daemon<'a> {
    /// `namespace/name` (plus the template hash, so a replaced pod gets a
    /// new name): seeds the pod names.
    pub owner: &'a str,
    /// Pods are named `<prefix>-<suffix>`.
    pub prefix: &'a str,
    /// Would a new pod be scheduled here (admission, and the node's
    /// `NoSchedule` and `NoExecute` taints tolerated)?
    pub fits: bool,
    /// May a pod already here keep running (admission, `NoExecute` taints
    /// tolerated)? Implied by `fits`.
    pub keeps: bool,
    /// The current template's `controller-revision-hash`.
    pub hash: &'a str,
    pub update: Update,
    pub min_ready_seconds: i32,
}

/// Decides for the DaemonSet `ds` on this node, given the pods it has here.
pub fn reconcile(ds: &Daemon<'_>, pods: &[DaemonPod], now: Timestamp) -> Plan {
    let Daemon {
        owner,
        prefix,
        fits,
        keeps,
        hash,
        update,
        min_ready_seconds,
    } = *ds;
    let live: Vec<&DaemonPod> = pods.iter().filter(|p| !p.view.terminating).collect();
    let terminating = pods.len() > live.len();
    let mut plan = Plan::default();
    let (current, old): (Vec<&DaemonPod>, Vec<&DaemonPod>) =
        live.iter().copied().partition(|p| p.hash == hash);
    let available = |p: &DaemonPod| p.view.is_available(min_ready_seconds, now);
    plan.status = Counts {
        desired_number_scheduled: i32::from(fits),
        current_number_scheduled: i32::from(fits && !live.is_empty()),
        number_ready: i32::from(live.iter().any(|p| p.view.is_ready())),
        number_available: i32::from(live.iter().any(|p| available(p))),
        updated_number_scheduled: i32::from(!current.is_empty()),
        number_misscheduled: i32::from(!fits && !live.is_empty()),
    };
    let name_of = |p: &&DaemonPod| p.view.name.clone();
    if !fits {
        if !keeps {
            plan.delete = live.iter().map(name_of).collect();
        }
        return plan;
    }
    // Extra pods of the current template: keep the oldest.
    let mut current = current;
    current.sort_by_key(|p| (p.view.created, p.view.name.clone()));
    plan.delete.extend(current.iter().skip(1).map(name_of));
    let create = || {
        let taken: Vec<&str> = pods.iter().map(|p| p.view.name.as_str()).collect();
        Some(free_pod_name(owner, prefix, &taken))
    };
    match (current.first(), update) {
        (Some(new), _) => {
            // The new pod is there: old ones go once it is available (at
            // once when the new one was made after they were deleted).
            if available(new) || matches!(update, Update::Rolling { surge: false }) {
                plan.delete.extend(old.iter().map(name_of));
            }
        }
        (None, Update::OnDelete) if !old.is_empty() => {}
        (None, Update::Rolling { surge: true }) => plan.create = create(),
        (None, _) if !old.is_empty() => plan.delete.extend(old.iter().map(name_of)),
        // No live pod: start one, once no pod of ours still terminates.
        (None, _) if !terminating => plan.create = create(),
        (None, _) => {}
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{at, pod};
    use super::*;

    fn dp(name: &str, hash: &str, created: i64, ready: Option<i64>) -> DaemonPod {
        DaemonPod {
            view: pod(name, created, ready, 0),
            hash: hash.into(),
        }
    }

    const ROLL: Update = Update::Rolling { surge: false };

    fn agent(fits: bool, hash: &'static str, update: Update) -> Daemon<'static> {
        Daemon {
            owner: "default/agent",
            prefix: "agent",
            fits,
            keeps: fits,
            hash,
            update,
            min_ready_seconds: 0,
        }
    }

    #[test]
    fn a_fitting_node_gets_one_pod_and_a_node_that_does_not_fit_none() {
        let plan = reconcile(&agent(true, "h1", ROLL), &[], at(0));
        let name = plan.create.expect("one pod");
        assert!(name.starts_with("agent-") && name.len() == 11, "{name}");
        assert_eq!(plan.status.desired_number_scheduled, 1);
        let pods = [dp(&name, "h1", 0, Some(1))];
        let plan = reconcile(&agent(true, "h1", ROLL), &pods, at(5));
        assert_eq!(plan.create, None);
        assert!(plan.delete.is_empty());
        assert_eq!(
            plan.status,
            Counts {
                desired_number_scheduled: 1,
                current_number_scheduled: 1,
                number_ready: 1,
                number_available: 1,
                updated_number_scheduled: 1,
                number_misscheduled: 0
            }
        );
        let plan = reconcile(&agent(false, "h1", ROLL), &pods, at(5));
        assert_eq!(plan.delete, [name]);
        assert_eq!(plan.status.number_misscheduled, 1);
        assert_eq!(plan.status.desired_number_scheduled, 0);
    }

    #[test]
    fn a_pod_already_here_stays_when_only_a_no_schedule_taint_came() {
        let pods = [dp("agent-abc12", "h1", 0, Some(1))];
        let tainted = Daemon {
            keeps: true,
            ..agent(false, "h1", ROLL)
        };
        let plan = reconcile(&tainted, &pods, at(5));
        assert_eq!((plan.create, plan.delete.len()), (None, 0), "kept");
        assert_eq!(plan.status.number_misscheduled, 1);
        assert_eq!(plan.status.desired_number_scheduled, 0);
        let plan = reconcile(&tainted, &[], at(5));
        assert_eq!(plan.create, None, "but no new pod is made");
    }

    #[test]
    fn a_rolling_update_without_surge_never_overlaps_the_pods() {
        let old = [dp("agent-old11", "h1", 0, Some(1))];
        let plan = reconcile(&agent(true, "h2", ROLL), &old, at(5));
        assert_eq!(
            (plan.create, plan.delete.as_slice()),
            (None, &["agent-old11".to_string()][..])
        );
        let mut going = old.clone();
        going[0].view.terminating = true;
        let plan = reconcile(&agent(true, "h2", ROLL), &going, at(6));
        assert_eq!(plan.create, None, "waits for the old pod to be gone");
        let plan = reconcile(&agent(true, "h2", ROLL), &[], at(7));
        assert!(plan.create.is_some());
    }

    #[test]
    fn with_surge_the_new_pod_starts_first_and_on_delete_keeps_the_old_one() {
        let surge = Update::Rolling { surge: true };
        let old = dp("agent-old11", "h1", 0, Some(1));
        let plan = reconcile(&agent(true, "h2", surge), std::slice::from_ref(&old), at(5));
        let new_name = plan.create.expect("new first");
        assert!(plan.delete.is_empty());
        let both = [old.clone(), dp(&new_name, "h2", 5, None)];
        let plan = reconcile(&agent(true, "h2", surge), &both, at(6));
        assert!(
            plan.delete.is_empty(),
            "old stays until the new one is available"
        );
        let both = [old.clone(), dp(&new_name, "h2", 5, Some(6))];
        let plan = reconcile(&agent(true, "h2", surge), &both, at(7));
        assert_eq!(plan.delete, ["agent-old11"]);
        let plan = reconcile(&agent(true, "h2", Update::OnDelete), &[old], at(5));
        assert_eq!((plan.create, plan.delete.len()), (None, 0));
        assert_eq!(plan.status.updated_number_scheduled, 0);
    }
}
