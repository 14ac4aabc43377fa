//! Container names and labels: the only state rkubelet keeps.
//!
//! rkubelet has no database. Everything it needs after a crash or restart —
//! which pod a container belongs to, which spec it was created from, its
//! restart count, the grace period to stop it with — is written here as
//! Docker labels and container names, and read back by [`ContainerMeta`].
//! The names follow the kubelet's dockershim convention so `docker ps` reads
//! the same as on a Kubernetes node.

use std::collections::BTreeMap;

pub const POD_NAME: &str = "io.kubernetes.pod.name";
pub const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
pub const POD_UID: &str = "io.kubernetes.pod.uid";
pub const CONTAINER_NAME: &str = "io.kubernetes.container.name";
pub const DOCKER_TYPE: &str = "io.kubernetes.docker.type";
pub const CONTAINER_HASH: &str = "io.kubernetes.container.hash";
pub const RESTART_COUNT: &str = "io.kubernetes.container.restartCount";
pub const GRACE_PERIOD: &str = "io.kubernetes.pod.terminationGracePeriod";
pub const SANDBOX_ID: &str = "io.kubernetes.sandbox.id";
/// Marks every container rkubelet created; the filter for list and events.
pub const MANAGED: &str = "io.rkubelet.managed";
/// The manifest source of the pod: `file:<path>` or `url:<url>`.
pub const SOURCE: &str = "io.rkubelet.source";
/// The node (rkubelet instance) that owns the container. An rkubelet only
/// adopts, relists and cleans up containers of its own node, so several
/// instances (or tests) can share one Docker daemon.
pub const NODE: &str = "io.rkubelet.node";
/// On a workload's pods: the workload's `metadata.generation` when the pod
/// was made, a fingerprint of its spec then, and its `Kind/namespace/name`
/// (the pod annotation [`crate::workload::pods::GENERATION_ANNOTATION`]), so
/// a restarted rkubelet counts generations on from there.
pub const WORKLOAD_GENERATION: &str = "io.rkubelet.workload-generation";
/// Sandbox attempt number (how many sandboxes this pod had before).
pub const ATTEMPT: &str = "io.rkubelet.attempt";

pub const TYPE_SANDBOX: &str = "podsandbox";
pub const TYPE_CONTAINER: &str = "container";
/// The container name used for sandboxes, as the kubelet does.
pub const SANDBOX_CONTAINER_NAME: &str = "POD";

/// Docker name of a pod's sandbox: `k8s_POD_<pod>_<ns>_<uid>_<attempt>`.
pub fn sandbox_name(pod: &str, namespace: &str, uid: &str, attempt: u32) -> String {
    format!("k8s_{SANDBOX_CONTAINER_NAME}_{pod}_{namespace}_{uid}_{attempt}")
}

/// Docker name of an app container:
/// `k8s_<container>_<pod>_<ns>_<uid>_<restartCount>`.
pub fn container_name(
    container: &str,
    pod: &str,
    namespace: &str,
    uid: &str,
    restart_count: u32,
) -> String {
    format!("k8s_{container}_{pod}_{namespace}_{uid}_{restart_count}")
}

/// The pod-level facts every container of a pod carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRef {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    /// `file:<path>` or `url:<url>`.
    pub source: String,
    pub grace_period_seconds: i64,
    /// [`WORKLOAD_GENERATION`], on a workload's pods.
    pub workload_generation: Option<String>,
}

impl PodRef {
    fn base_labels(&self) -> BTreeMap<String, String> {
        let mut labels = BTreeMap::from([
            (MANAGED.to_string(), "true".to_string()),
            (POD_NAME.to_string(), self.name.clone()),
            (POD_NAMESPACE.to_string(), self.namespace.clone()),
            (POD_UID.to_string(), self.uid.clone()),
            (SOURCE.to_string(), self.source.clone()),
            (
                GRACE_PERIOD.to_string(),
                self.grace_period_seconds.to_string(),
            ),
        ]);
        if let Some(g) = &self.workload_generation {
            labels.insert(WORKLOAD_GENERATION.to_string(), g.clone());
        }
        labels
    }

    /// Labels of the pod's sandbox.
    pub fn sandbox_labels(&self, attempt: u32) -> BTreeMap<String, String> {
        let mut labels = self.base_labels();
        labels.insert(CONTAINER_NAME.into(), SANDBOX_CONTAINER_NAME.into());
        labels.insert(DOCKER_TYPE.into(), TYPE_SANDBOX.into());
        labels.insert(ATTEMPT.into(), attempt.to_string());
        labels
    }

    /// Labels of one of the pod's app or init containers.
    pub fn container_labels(
        &self,
        container: &str,
        spec_hash: &str,
        restart_count: u32,
        sandbox_id: &str,
    ) -> BTreeMap<String, String> {
        let mut labels = self.base_labels();
        labels.insert(CONTAINER_NAME.into(), container.into());
        labels.insert(DOCKER_TYPE.into(), TYPE_CONTAINER.into());
        labels.insert(CONTAINER_HASH.into(), spec_hash.into());
        labels.insert(RESTART_COUNT.into(), restart_count.to_string());
        labels.insert(SANDBOX_ID.into(), sandbox_id.into());
        labels
    }
}

/// The node a container belongs to, from its labels.
pub fn node_of(labels: &BTreeMap<String, String>) -> Option<&str> {
    labels.get(NODE).map(String::as_str)
}

/// rkubelet's labels read back from a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerMeta {
    pub pod: PodRef,
    /// `POD` for sandboxes.
    pub container_name: String,
    pub is_sandbox: bool,
    /// Restart count for app containers, attempt for sandboxes.
    pub restart_count: u32,
    pub spec_hash: Option<String>,
    pub sandbox_id: Option<String>,
}

impl ContainerMeta {
    /// Parses the labels; `None` if the container is not one of rkubelet's.
    pub fn from_labels(labels: &BTreeMap<String, String>) -> Option<Self> {
        if labels.get(MANAGED).map(String::as_str) != Some("true") {
            return None;
        }
        let get = |k: &str| labels.get(k).cloned();
        let is_sandbox = get(DOCKER_TYPE).as_deref() == Some(TYPE_SANDBOX);
        let count_key = if is_sandbox { ATTEMPT } else { RESTART_COUNT };
        Some(ContainerMeta {
            pod: PodRef {
                name: get(POD_NAME)?,
                namespace: get(POD_NAMESPACE)?,
                uid: get(POD_UID)?,
                source: get(SOURCE).unwrap_or_default(),
                grace_period_seconds: get(GRACE_PERIOD).and_then(|g| g.parse().ok()).unwrap_or(30),
                workload_generation: get(WORKLOAD_GENERATION),
            },
            container_name: get(CONTAINER_NAME)?,
            is_sandbox,
            restart_count: get(count_key).and_then(|c| c.parse().ok()).unwrap_or(0),
            spec_hash: get(CONTAINER_HASH),
            sandbox_id: get(SANDBOX_ID),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> PodRef {
        PodRef {
            name: "web-node1".into(),
            namespace: "default".into(),
            uid: "0123456789abcdef0123456789abcdef".into(),
            source: "file:/etc/kubelet.d/web.yaml".into(),
            grace_period_seconds: 5,
            workload_generation: None,
        }
    }

    #[test]
    fn a_workload_pods_generation_stamp_round_trips_through_the_labels() {
        let mut p = pod();
        let labels = p.sandbox_labels(0);
        assert!(!labels.contains_key(WORKLOAD_GENERATION));
        p.workload_generation = Some("2 0011223344556677 Deployment/default/web".into());
        let labels = p.container_labels("c", "h", 0, "sb");
        assert_eq!(ContainerMeta::from_labels(&labels).expect("meta").pod, p);
    }

    #[test]
    fn names_follow_the_dockershim_convention() {
        assert_eq!(
            sandbox_name("web-node1", "default", "abc", 0),
            "k8s_POD_web-node1_default_abc_0"
        );
        assert_eq!(
            container_name("nginx", "web-node1", "default", "abc", 3),
            "k8s_nginx_web-node1_default_abc_3"
        );
    }

    #[test]
    fn container_labels_read_back_as_the_same_meta() {
        let labels = pod().container_labels("nginx", "h1", 4, "sb1");
        let meta = ContainerMeta::from_labels(&labels).expect("managed");
        assert_eq!(meta.pod, pod());
        assert_eq!(meta.container_name, "nginx");
        assert!(!meta.is_sandbox);
        assert_eq!(meta.restart_count, 4);
        assert_eq!(meta.spec_hash.as_deref(), Some("h1"));
        assert_eq!(meta.sandbox_id.as_deref(), Some("sb1"));
    }

    #[test]
    fn sandbox_labels_carry_the_attempt() {
        let meta = ContainerMeta::from_labels(&pod().sandbox_labels(2)).expect("managed");
        assert!(meta.is_sandbox);
        assert_eq!(meta.container_name, "POD");
        assert_eq!(meta.restart_count, 2);
    }

    #[test]
    fn containers_without_the_managed_label_are_not_ours() {
        let mut labels = pod().sandbox_labels(0);
        labels.remove(MANAGED);
        assert_eq!(ContainerMeta::from_labels(&labels), None);
    }
}
