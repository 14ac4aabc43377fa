//! Test fixtures shared by the planner, status and worker tests: a pod —
//! loaded from YAML the way the daemon does, or built for the table-driven
//! tests — and the containers a runtime would report for it.

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;

use crate::manifest::{self, LoadContext, Origin};
use crate::runtime::labels::PodRef;
use crate::runtime::{ContainerInfo, ContainerState};

/// A fixed instant plus `secs`.
pub fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + secs).expect("valid")
}

/// The node [`load_pod`] loads for.
pub const NODE: &str = "node";

/// Everything in the manifest `yaml`, loaded the way the daemon loads a
/// manifest from `origin` on node `node`: parsed, validated, identified
/// (names get the `-<node>` suffix, UIDs are derived), defaulted.
pub fn load(yaml: &str, node: &str, origin: &Origin) -> manifest::Loaded {
    let ctx = LoadContext {
        node_name: node,
        origin,
        now: t(0),
    };
    manifest::load(yaml.as_bytes(), &ctx).unwrap_or_else(|e| panic!("a valid manifest: {e}"))
}

/// The pod in `yaml` (one Pod document) for `node`, from the file `path`.
pub fn load_pod_at(yaml: &str, node: &str, path: &str) -> Pod {
    let loaded = load(yaml, node, &Origin::file(path));
    assert_eq!(loaded.pods.len(), 1, "one pod in the manifest");
    loaded.pods[0].clone()
}

/// The pod in `yaml` (one Pod document) for [`NODE`], from a manifest file.
pub fn load_pod(yaml: &str) -> Pod {
    load_pod_at(yaml, NODE, "/etc/kubernetes/manifests/pod.yaml")
}

/// A pod with this restart policy and these init and app containers.
pub fn pod(policy: &str, inits: &[&str], apps: &[&str]) -> Pod {
    let c = |n: &&str| Container {
        name: n.to_string(),
        image: Some("img:1".into()),
        ..Default::default()
    };
    Pod {
        metadata: ObjectMeta {
            name: Some("p-node".into()),
            namespace: Some("default".into()),
            uid: Some("uid1".into()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            restart_policy: Some(policy.into()),
            init_containers: (!inits.is_empty()).then(|| inits.iter().map(c).collect()),
            containers: apps.iter().map(c).collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The labels' view of [`pod`].
pub fn pod_ref() -> PodRef {
    PodRef {
        name: "p-node".into(),
        namespace: "default".into(),
        uid: "uid1".into(),
        source: "file:/x.yaml".into(),
        grace_period_seconds: 30,
        workload_generation: None,
    }
}

/// The pod's sandbox, attempt `attempt`, IP 172.17.0.9.
pub fn sandbox(id: &str, attempt: u32, state: ContainerState) -> ContainerInfo {
    ContainerInfo {
        id: id.into(),
        name: format!("k8s_POD_{attempt}"),
        labels: pod_ref().sandbox_labels(attempt),
        image: "pause".into(),
        image_id: "sha256:p".into(),
        state,
        exit_code: (state == ContainerState::Exited).then_some(0),
        oom_killed: false,
        error: None,
        created_at: Some(t(attempt as i64)),
        started_at: Some(t(attempt as i64)),
        finished_at: None,
        ip: Some("172.17.0.9".into()),
    }
}

/// Instance `count` of container `name` in sandbox `sb`.
pub fn container(
    id: &str,
    name: &str,
    count: u32,
    sb: &str,
    state: ContainerState,
    code: Option<i64>,
) -> ContainerInfo {
    ContainerInfo {
        id: id.into(),
        name: format!("k8s_{name}_{count}"),
        labels: pod_ref().container_labels(name, "h", count, sb),
        image: "img:1".into(),
        image_id: "sha256:i".into(),
        state,
        exit_code: code,
        oom_killed: false,
        error: None,
        created_at: Some(t(10 + count as i64)),
        started_at: Some(t(10 + count as i64)),
        finished_at: (state == ContainerState::Exited).then(|| t(20 + count as i64)),
        ip: None,
    }
}
