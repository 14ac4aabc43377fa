//! A workload's pod from its template, as the cluster's controllers make it.
//!
//! [`pod_for`] builds the pod named by the controller: the template's
//! labels plus the controller's hash label, the template's annotations plus
//! rkubelet's `kubernetes.io/config.*` (the source stays truthful: `file` or
//! `http`), an `ownerReference` to its ReplicaSet or DaemonSet
//! or Job (`controller: true`), `spec.nodeName` = this node, Kubernetes defaults.
//! Its UID is a stable hash of origin, node, namespace/name and template, so
//! a restarted rkubelet builds the very same pod and adopts its containers.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;

use crate::manifest::identity::{self, CONFIG_HASH, CONFIG_SEEN, CONFIG_SOURCE};
use crate::manifest::Origin;

/// The owner a pod points to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// `ReplicaSet`, `DaemonSet` or `Job`.
    pub kind: String,
    pub name: String,
    pub uid: String,
}

impl Owner {
    /// The owner's group version: `batch/v1` for a Job, else `apps/v1`.
    pub fn api_version(&self) -> &'static str {
        match self.kind.as_str() {
            "Job" | "CronJob" => "batch/v1",
            _ => "apps/v1",
        }
    }
}

/// A stable UID for an object rkubelet makes on behalf of a workload (a
/// ReplicaSet of a Deployment, a pod): 32 hex chars over `parts`, the node
/// and the origin.
pub fn derived_uid(parts: &[&str], node: &str, origin: &Origin) -> String {
    identity::uid(&serde_json::json!(parts), node, origin)
}

/// Where and when a workload's pod is made.
#[derive(Debug, Clone, Copy)]
pub struct Site<'a> {
    /// This node's name.
    pub node: &'a str,
    /// The workload's manifest.
    pub origin: &'a Origin,
    /// First seen (`kubernetes.io/config.seen`).
    pub seen: Timestamp,
    /// The workload's generation stamp ([`GENERATION_ANNOTATION`]).
    pub generation: &'a str,
}

/// The annotation on a workload's pods (and, through it, the Docker label
/// `io.rkubelet.workload-generation`): `<generation> <spec fingerprint>
/// <Kind/namespace/name>` of the workload when the pod was made.
pub const GENERATION_ANNOTATION: &str = "rkubelet.io/workload-generation";

/// The pod `name` in `namespace` from `template`, labelled with
/// `extra_labels`, owned by `owner`, made at `site`.
pub fn pod_for(
    namespace: &str,
    name: &str,
    template: &PodTemplateSpec,
    extra_labels: &[(&str, &str)],
    owner: &Owner,
    site: Site<'_>,
) -> Pod {
    let Site {
        node,
        origin,
        seen,
        generation,
    } = site;
    let template_json = serde_json::to_string(template).unwrap_or_default();
    let uid = derived_uid(&[namespace, name, &template_json], node, origin);
    let t = template.metadata.clone().unwrap_or_default();
    let mut labels: BTreeMap<String, String> = t.labels.unwrap_or_default();
    for (k, v) in extra_labels {
        labels.insert((*k).to_string(), (*v).to_string());
    }
    let mut annotations = t.annotations.unwrap_or_default();
    annotations.insert(CONFIG_HASH.into(), uid.clone());
    annotations.insert(CONFIG_SOURCE.into(), origin.kind.annotation().into());
    annotations.insert(CONFIG_SEEN.into(), format!("{seen:.9}"));
    if !generation.is_empty() {
        annotations.insert(GENERATION_ANNOTATION.into(), generation.into());
    }
    let mut spec = template.spec.clone().unwrap_or_default();
    spec.node_name = Some(node.to_string());
    let mut pod = Pod {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            uid: Some(uid),
            labels: Some(labels),
            annotations: Some(annotations),
            owner_references: Some(vec![OwnerReference {
                api_version: owner.api_version().into(),
                kind: owner.kind.clone(),
                name: owner.name.clone(),
                uid: owner.uid.clone(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    };
    crate::manifest::defaults::apply(&mut pod);
    pod
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pod_of_a_replica_set_is_labelled_owned_and_stable() {
        let template: PodTemplateSpec = serde_json::from_value(serde_json::json!({
            "metadata": {"labels": {"app": "web"}, "annotations": {"a": "b"}},
            "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}
        }))
        .expect("template");
        let origin = Origin::file("/m/web.yaml");
        let owner = Owner {
            kind: "ReplicaSet".into(),
            name: "web-abc".into(),
            uid: "u1".into(),
        };
        let make = |seen| {
            pod_for(
                "default",
                "web-abc-xyz12",
                &template,
                &[("pod-template-hash", "abc")],
                &owner,
                Site {
                    node: "node1",
                    origin: &origin,
                    seen,
                    generation: "",
                },
            )
        };
        let pod = make(Timestamp::UNIX_EPOCH);
        let meta = &pod.metadata;
        assert_eq!(meta.name.as_deref(), Some("web-abc-xyz12"));
        let labels = meta.labels.as_ref().expect("labels");
        assert_eq!(labels["app"], "web");
        assert_eq!(labels["pod-template-hash"], "abc");
        let annotations = meta.annotations.as_ref().expect("annotations");
        assert_eq!(annotations[CONFIG_SOURCE], "file");
        assert_eq!(annotations["a"], "b");
        let refs = meta.owner_references.as_ref().expect("owner");
        assert_eq!(
            (
                refs[0].kind.as_str(),
                refs[0].name.as_str(),
                refs[0].controller
            ),
            ("ReplicaSet", "web-abc", Some(true))
        );
        let spec = pod.spec.as_ref().expect("spec");
        assert_eq!(spec.node_name.as_deref(), Some("node1"));
        assert_eq!(spec.restart_policy.as_deref(), Some("Always"), "defaulted");
        let later = make(Timestamp::from_second(100).expect("ts"));
        assert_eq!(
            later.metadata.uid, pod.metadata.uid,
            "stable across restarts"
        );
        assert_eq!(meta.uid.as_deref().map(str::len), Some(32));
    }
}
