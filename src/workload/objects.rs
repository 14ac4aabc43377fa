//! Deployments, ReplicaSets, DaemonSets (and Jobs) as the API serves them.
//!
//! Owns the versioned-store plumbing of the `apps/v1` kinds ([`Object`] and
//! [`Selectable`]: name and namespace fields, labels) and the status the
//! controllers write, built from their counts: a Deployment's `replicas`,
//! `updatedReplicas`, `readyReplicas`, `availableReplicas`,
//! `unavailableReplicas`, `observedGeneration` and its `Available` /
//! `Progressing` conditions with the deployment controller's reasons; a
//! ReplicaSet's and a DaemonSet's counts.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    DaemonSet, DaemonSetStatus, Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet,
    ReplicaSetStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::daemonset::Counts as DaemonCounts;
use super::deployment::Status;
use super::replicaset::Counts;
use crate::k8s::selector::{Selectable, META_FIELDS};
use crate::watch::Object;

macro_rules! apps_object {
    ($t:ty, $kind:literal) => {
        apps_object!($t, $kind, "apps/v1");
    };
    ($t:ty, $kind:literal, $api:literal) => {
        impl Object for $t {
            const KIND: &'static str = $kind;
            const API_VERSION: &'static str = $api;
            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }

        impl Selectable for $t {
            const FIELDS: &'static [&'static str] = META_FIELDS;
            fn labels(&self) -> Option<&BTreeMap<String, String>> {
                self.metadata.labels.as_ref()
            }
            fn field(&self, field: &str) -> Option<String> {
                match field {
                    "metadata.name" => Some(self.metadata.name.clone().unwrap_or_default()),
                    "metadata.namespace" => {
                        Some(self.metadata.namespace.clone().unwrap_or_default())
                    }
                    _ => None,
                }
            }
        }
    };
}

apps_object!(Deployment, "Deployment");
apps_object!(ReplicaSet, "ReplicaSet");
apps_object!(DaemonSet, "DaemonSet");
apps_object!(k8s_openapi::api::batch::v1::Job, "Job", "batch/v1");
apps_object!(k8s_openapi::api::batch::v1::CronJob, "CronJob", "batch/v1");

fn condition(type_: &str, ok: bool, reason: &str, message: String) -> DeploymentCondition {
    DeploymentCondition {
        type_: type_.into(),
        status: if ok { "True" } else { "False" }.into(),
        reason: Some(reason.into()),
        message: Some(message),
        ..Default::default()
    }
}

/// A Deployment's status as the deployment controller writes it. `rs` is
/// the name of its current ReplicaSet (for the messages); `stalled`: no
/// progress for `progressDeadlineSeconds`.
pub fn deployment_status(s: &Status, rs: &str, generation: i64, stalled: bool) -> DeploymentStatus {
    let available = if s.minimum_available {
        condition(
            "Available",
            true,
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.".into(),
        )
    } else {
        condition(
            "Available",
            false,
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.".into(),
        )
    };
    let progressing = if s.complete {
        condition(
            "Progressing",
            true,
            "NewReplicaSetAvailable",
            format!("ReplicaSet \"{rs}\" has successfully progressed."),
        )
    } else if stalled {
        condition(
            "Progressing",
            false,
            "ProgressDeadlineExceeded",
            format!("ReplicaSet \"{rs}\" has timed out progressing."),
        )
    } else {
        condition(
            "Progressing",
            true,
            "ReplicaSetUpdated",
            format!("ReplicaSet \"{rs}\" is progressing."),
        )
    };
    DeploymentStatus {
        observed_generation: Some(generation),
        replicas: Some(s.replicas),
        updated_replicas: Some(s.updated),
        ready_replicas: Some(s.ready),
        available_replicas: Some(s.available),
        unavailable_replicas: Some(s.unavailable),
        conditions: Some(vec![available, progressing]),
        ..Default::default()
    }
}

/// A ReplicaSet's status from its pods' counts.
pub fn replica_set_status(c: &Counts, generation: i64) -> ReplicaSetStatus {
    ReplicaSetStatus {
        observed_generation: Some(generation),
        replicas: c.replicas,
        fully_labeled_replicas: Some(c.replicas),
        ready_replicas: Some(c.ready),
        available_replicas: Some(c.available),
        ..Default::default()
    }
}

/// A DaemonSet's status on this node.
pub fn daemon_set_status(c: &DaemonCounts, generation: i64) -> DaemonSetStatus {
    DaemonSetStatus {
        observed_generation: Some(generation),
        desired_number_scheduled: c.desired_number_scheduled,
        current_number_scheduled: c.current_number_scheduled,
        number_ready: c.number_ready,
        number_available: Some(c.number_available),
        number_unavailable: Some(c.desired_number_scheduled - c.number_available)
            .filter(|n| *n > 0),
        updated_number_scheduled: Some(c.updated_number_scheduled),
        number_misscheduled: c.number_misscheduled,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_complete_rollout_has_the_controllers_conditions() {
        let s = Status {
            replicas: 3,
            updated: 3,
            ready: 3,
            available: 3,
            unavailable: 0,
            complete: true,
            minimum_available: true,
        };
        let st = deployment_status(&s, "web-abc", 1, false);
        assert_eq!(st.observed_generation, Some(1));
        let c = st.conditions.expect("conditions");
        assert_eq!(
            (
                c[0].type_.as_str(),
                c[0].status.as_str(),
                c[0].reason.as_deref()
            ),
            ("Available", "True", Some("MinimumReplicasAvailable"))
        );
        assert_eq!(c[1].reason.as_deref(), Some("NewReplicaSetAvailable"));
        assert_eq!(
            c[1].message.as_deref(),
            Some("ReplicaSet \"web-abc\" has successfully progressed.")
        );
        let mut s = s;
        s.complete = false;
        s.minimum_available = false;
        let c = deployment_status(&s, "web-abc", 1, false)
            .conditions
            .expect("c");
        assert_eq!(c[0].reason.as_deref(), Some("MinimumReplicasUnavailable"));
        assert_eq!(c[1].reason.as_deref(), Some("ReplicaSetUpdated"));
        let c = deployment_status(&s, "web-abc", 1, true)
            .conditions
            .expect("c");
        assert_eq!(
            (c[1].status.as_str(), c[1].reason.as_deref()),
            ("False", Some("ProgressDeadlineExceeded"))
        );
    }
}
