//! The read-only objects besides pods and events, built from what rkubelet
//! knows (pure functions; time comes in as an argument), and their
//! server-side `Table`s with kubectl's columns.
//!
//! * [`node_object`]: this node — labels (built-in plus `--node-labels`),
//!   addresses, capacity (= allocatable; rkubelet reserves nothing; `pods`
//!   is `--max-pods`), `nodeInfo` and the four
//!   conditions (Ready with a heartbeat of the given "now": the running
//!   daemon rebuilds the node object every
//!   [`NODE_HEARTBEAT`](super::objects::NODE_HEARTBEAT)).
//! * [`namespaces`]: every namespace that holds an object, plus `default`.
//! * [`object_meta_with_age`]: ConfigMaps and Secrets as their manifests
//!   define them; one without a `creationTimestamp` gets the daemon's start.
//! * [`secret_view`]: what the read-only port shows of a Secret — its type
//!   and key names, **never the values**: every `data` value is emptied,
//!   `stringData` is dropped, the `kubectl.kubernetes.io/last-applied-configuration`
//!   annotation (which may hold the values) is removed, and the annotation
//!   [`REDACTED_ANNOTATION`] says so.
//!
//! It does not serve or store anything: that is [`super::objects`].

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{
    ConfigMap, Namespace, NamespaceStatus, Node, NodeAddress, NodeCondition, NodeSpec, NodeStatus,
    NodeSystemInfo, Secret,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::ByteString;
use serde_json::{json, Value};

use super::kube::{column, partial_metadata, table};
use crate::k8s::print::object_age;
use crate::node::{NodeCapacity, NodeInfo};

/// The annotation a Secret served on the read-only port carries: its values
/// were removed.
pub const REDACTED_ANNOTATION: &str = "rkubelet.io/data-redacted";

/// Label prefix of a node's roles (`node-role.kubernetes.io/<role>`).
const ROLE_PREFIX: &str = "node-role.kubernetes.io/";

/// What the node object is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFacts {
    /// Name and labels (built-in plus `--node-labels`).
    pub info: NodeInfo,
    /// The node's primary IPv4 address (`InternalIP`).
    pub host_ip: String,
    pub capacity: NodeCapacity,
    /// `--max-pods`: the node's `pods` capacity.
    pub max_pods: usize,
    /// `uname -r`.
    pub kernel_version: String,
    /// `PRETTY_NAME` of `/etc/os-release`.
    pub os_image: String,
    /// `docker://<version>`, or empty when the runtime does not answer.
    pub runtime_version: String,
    /// When the daemon started (the node's `creationTimestamp`).
    pub started: Timestamp,
    /// Now: the Ready heartbeat.
    pub now: Timestamp,
}

/// The version the node reports as `kubeletVersion`.
pub fn kubelet_version() -> String {
    super::kube::GIT_VERSION.to_string()
}

fn cpu_quantity(milli: i64) -> Quantity {
    Quantity(if milli % 1000 == 0 {
        (milli / 1000).to_string()
    } else {
        format!("{milli}m")
    })
}

fn kibibytes(bytes: i64) -> Quantity {
    Quantity(format!("{}Ki", bytes / 1024))
}

fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    f: &NodeFacts,
) -> NodeCondition {
    NodeCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_heartbeat_time: Some(Time(f.now)),
        last_transition_time: Some(Time(f.started)),
    }
}

/// This node as a v1 `Node`.
pub fn node_object(f: &NodeFacts) -> Node {
    let resources = BTreeMap::from([
        ("cpu".to_string(), cpu_quantity(f.capacity.cpu_milli)),
        ("memory".to_string(), kibibytes(f.capacity.memory_bytes)),
        (
            "ephemeral-storage".to_string(),
            kibibytes(f.capacity.ephemeral_storage_bytes),
        ),
        ("pods".to_string(), Quantity(f.max_pods.to_string())),
    ]);
    let labels = f.info.labels.clone();
    let arch = labels
        .get(crate::node::LABEL_ARCH)
        .cloned()
        .unwrap_or_else(crate::node::host_arch);
    let os = labels
        .get(crate::node::LABEL_OS)
        .cloned()
        .unwrap_or_else(|| std::env::consts::OS.to_string());
    Node {
        metadata: ObjectMeta {
            name: Some(f.info.name.clone()),
            // The uid events about the node carry (and kubectl looks for).
            uid: Some(f.info.name.clone()),
            labels: Some(labels),
            creation_timestamp: Some(Time(f.started)),
            ..Default::default()
        },
        spec: Some(NodeSpec {
            taints: Some(f.info.taints.iter().map(|t| t.to_taint()).collect())
                .filter(|t: &Vec<_>| !t.is_empty()),
            ..Default::default()
        }),
        status: Some(NodeStatus {
            addresses: Some(vec![
                NodeAddress {
                    type_: "InternalIP".into(),
                    address: f.host_ip.clone(),
                },
                NodeAddress {
                    type_: "Hostname".into(),
                    address: f.info.name.clone(),
                },
            ]),
            allocatable: Some(resources.clone()),
            capacity: Some(resources),
            conditions: Some(vec![
                condition(
                    "MemoryPressure",
                    "False",
                    "KubeletHasSufficientMemory",
                    "kubelet has sufficient memory available",
                    f,
                ),
                condition(
                    "DiskPressure",
                    "False",
                    "KubeletHasNoDiskPressure",
                    "kubelet has no disk pressure",
                    f,
                ),
                condition(
                    "PIDPressure",
                    "False",
                    "KubeletHasSufficientPID",
                    "kubelet has sufficient PID available",
                    f,
                ),
                condition(
                    "Ready",
                    "True",
                    "KubeletReady",
                    "kubelet is posting ready status",
                    f,
                ),
            ]),
            node_info: Some(NodeSystemInfo {
                architecture: arch,
                operating_system: os,
                kernel_version: f.kernel_version.clone(),
                os_image: f.os_image.clone(),
                container_runtime_version: f.runtime_version.clone(),
                kubelet_version: kubelet_version(),
                ..Default::default()
            }),
            phase: None,
            ..Default::default()
        }),
    }
}

/// `Active` namespaces: `default` plus every one named in `used`, sorted.
pub fn namespaces<I: IntoIterator<Item = String>>(used: I, started: Timestamp) -> Vec<Namespace> {
    let mut names: BTreeSet<String> = used.into_iter().filter(|n| !n.is_empty()).collect();
    names.insert(crate::k8s::meta::DEFAULT_NAMESPACE.to_string());
    names
        .into_iter()
        .map(|name| Namespace {
            metadata: ObjectMeta {
                labels: Some(BTreeMap::from([(
                    "kubernetes.io/metadata.name".to_string(),
                    name.clone(),
                )])),
                name: Some(name),
                creation_timestamp: Some(Time(started)),
                ..Default::default()
            },
            spec: None,
            status: Some(NamespaceStatus {
                phase: Some("Active".into()),
                conditions: None,
            }),
        })
        .collect()
}

/// `meta` with a `creationTimestamp` (`started` when it has none).
pub fn object_meta_with_age(meta: &ObjectMeta, started: Timestamp) -> ObjectMeta {
    let mut meta = meta.clone();
    if meta.creation_timestamp.is_none() {
        meta.creation_timestamp = Some(Time(started));
    }
    meta
}

/// The keys of a Secret (`data` and any unmerged `stringData`).
pub fn secret_keys(secret: &Secret) -> BTreeSet<String> {
    (secret.data.iter().flatten().map(|(k, _)| k.clone()))
        .chain(secret.string_data.iter().flatten().map(|(k, _)| k.clone()))
        .collect()
}

/// What the read-only port shows of a Secret: type and key names, every
/// value empty (see the module docs).
pub fn secret_view(secret: &Secret) -> Secret {
    let mut meta = secret.metadata.clone();
    let mut annotations = meta.annotations.take().unwrap_or_default();
    annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
    annotations.insert(REDACTED_ANNOTATION.to_string(), "true".to_string());
    meta.annotations = Some(annotations);
    Secret {
        metadata: meta,
        data: Some(
            secret_keys(secret)
                .into_iter()
                .map(|k| (k, ByteString(Vec::new())))
                .collect(),
        ),
        string_data: None,
        type_: secret.type_.clone(),
        immutable: secret.immutable,
    }
}

fn node_roles(node: &Node) -> String {
    let roles: Vec<&str> = (node.metadata.labels.iter().flatten())
        .filter_map(|(k, _)| k.strip_prefix(ROLE_PREFIX))
        .filter(|r| !r.is_empty())
        .collect();
    if roles.is_empty() {
        "<none>".into()
    } else {
        roles.join(",")
    }
}

fn node_status(node: &Node) -> String {
    let ready = (node.status.as_ref())
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"));
    let mut status = match ready {
        Some(c) if c.status == "True" => "Ready".to_string(),
        Some(_) => "NotReady".to_string(),
        None => "Unknown".to_string(),
    };
    if node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
        status.push_str(",SchedulingDisabled");
    }
    status
}

fn address(node: &Node, type_: &str) -> String {
    (node.status.as_ref())
        .and_then(|s| s.addresses.as_ref())
        .and_then(|a| a.iter().find(|a| a.type_ == type_))
        .map(|a| a.address.clone())
        .unwrap_or_else(|| "<none>".into())
}

/// Nodes as kubectl's `Table` (`kubectl get nodes [-o wide]`).
pub fn node_table(nodes: &[Node], now: Timestamp) -> Value {
    let columns = vec![
        column("Name", "name", 0, "Name must be unique within a namespace."),
        column("Status", "", 0, "The status of the node"),
        column("Roles", "", 0, "The roles of the node"),
        column("Age", "", 0, "CreationTimestamp of the node."),
        column("Version", "", 0, "Kubelet Version reported by the node."),
        column("Internal-IP", "", 1, "List of internal IPs for the node."),
        column("External-IP", "", 1, "List of external IPs for the node."),
        column("OS-Image", "", 1, "OS image reported by the node."),
        column(
            "Kernel-Version",
            "",
            1,
            "Kernel version reported by the node.",
        ),
        column(
            "Container-Runtime",
            "",
            1,
            "Container runtime and version reported by the node.",
        ),
    ];
    let rows = nodes
        .iter()
        .map(|n| {
            let info = n
                .status
                .as_ref()
                .and_then(|s| s.node_info.clone())
                .unwrap_or_default();
            json!({
                "cells": [
                    n.metadata.name, node_status(n), node_roles(n),
                    object_age(&n.metadata, now), info.kubelet_version,
                    address(n, "InternalIP"), address(n, "ExternalIP"),
                    info.os_image, info.kernel_version, info.container_runtime_version,
                ],
                "object": partial_metadata(&n.metadata),
            })
        })
        .collect();
    table(columns, rows)
}

/// Namespaces as kubectl's `Table` (`kubectl get ns`).
pub fn namespace_table(namespaces: &[Namespace], now: Timestamp) -> Value {
    let columns = vec![
        column("Name", "name", 0, "Name must be unique within a namespace."),
        column("Status", "", 0, "The status of the namespace"),
        column("Age", "", 0, "CreationTimestamp of the namespace."),
    ];
    let rows = namespaces
        .iter()
        .map(|ns| {
            let phase = (ns.status.as_ref())
                .and_then(|s| s.phase.clone())
                .unwrap_or_default();
            json!({
                "cells": [ns.metadata.name, phase, object_age(&ns.metadata, now)],
                "object": partial_metadata(&ns.metadata),
            })
        })
        .collect();
    table(columns, rows)
}

/// ConfigMaps as kubectl's `Table` (`NAME DATA AGE`; DATA counts `data`
/// and `binaryData` keys).
pub fn configmap_table(configmaps: &[ConfigMap], now: Timestamp) -> Value {
    let columns = vec![
        column("Name", "name", 0, "Name must be unique within a namespace."),
        column("Data", "", 0, "Data contains the configuration data."),
        column("Age", "", 0, "CreationTimestamp of the configmap."),
    ];
    let rows = configmaps
        .iter()
        .map(|cm| {
            let keys = cm.data.as_ref().map_or(0, |d| d.len())
                + cm.binary_data.as_ref().map_or(0, |d| d.len());
            json!({
                "cells": [cm.metadata.name, keys, object_age(&cm.metadata, now)],
                "object": partial_metadata(&cm.metadata),
            })
        })
        .collect();
    table(columns, rows)
}

/// Secrets as kubectl's `Table` (`NAME TYPE DATA AGE`): no value.
pub fn secret_table(secrets: &[Secret], now: Timestamp) -> Value {
    let columns = vec![
        column("Name", "name", 0, "Name must be unique within a namespace."),
        column("Type", "", 0, "The type of the secret"),
        column("Data", "", 0, "The number of keys in the secret."),
        column("Age", "", 0, "CreationTimestamp of the secret."),
    ];
    let rows = secrets
        .iter()
        .map(|s| {
            let view = secret_view(s);
            json!({
                "cells": [
                    view.metadata.name,
                    view.type_.clone().unwrap_or_else(|| "Opaque".into()),
                    secret_keys(&view).len(),
                    object_age(&view.metadata, now),
                ],
                "object": partial_metadata(&view.metadata),
            })
        })
        .collect();
    table(columns, rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(s: &str) -> Timestamp {
        s.parse().expect("time")
    }

    fn facts() -> NodeFacts {
        let extra = BTreeMap::from([("disktype".to_string(), "ssd".to_string())]);
        NodeFacts {
            info: NodeInfo::with_labels("edge-1", &extra),
            host_ip: "192.168.1.5".into(),
            capacity: NodeCapacity {
                cpu_milli: 4000,
                memory_bytes: 8 << 30,
                ephemeral_storage_bytes: 100 << 30,
            },
            max_pods: 110,
            kernel_version: "6.1.0-13-amd64".into(),
            os_image: "Debian GNU/Linux 12 (bookworm)".into(),
            runtime_version: "docker://27.3.1".into(),
            started: time("2026-01-01T00:00:00Z"),
            now: time("2026-01-01T01:00:00Z"),
        }
    }

    fn cells(t: &Value, row: usize) -> Vec<String> {
        t["rows"][row]["cells"]
            .as_array()
            .expect("cells")
            .iter()
            .map(|c| match c {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect()
    }

    fn column_names(t: &Value) -> Vec<String> {
        t["columnDefinitions"]
            .as_array()
            .expect("columns")
            .iter()
            .map(|c| c["name"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    #[test]
    fn the_node_has_labels_addresses_capacity_info_and_a_ready_heartbeat() {
        let n = node_object(&facts());
        assert_eq!(n.metadata.name.as_deref(), Some("edge-1"));
        let labels = n.metadata.labels.clone().expect("labels");
        assert_eq!(labels["disktype"], "ssd");
        assert_eq!(labels["kubernetes.io/hostname"], "edge-1");
        let st = n.status.clone().expect("status");
        let addrs: Vec<(String, String)> = (st.addresses.clone().expect("addresses"))
            .into_iter()
            .map(|a| (a.type_, a.address))
            .collect();
        assert_eq!(
            addrs,
            [
                ("InternalIP".into(), "192.168.1.5".into()),
                ("Hostname".into(), "edge-1".into())
            ]
        );
        let cap = st.capacity.clone().expect("capacity");
        assert_eq!(cap["cpu"].0, "4");
        assert_eq!(cap["memory"].0, "8388608Ki");
        assert_eq!(cap["pods"].0, "110");
        let small = node_object(&NodeFacts {
            max_pods: 7,
            ..facts()
        });
        let small = small.status.expect("status");
        assert_eq!(small.capacity.expect("capacity")["pods"].0, "7");
        assert_eq!(small.allocatable.expect("allocatable")["pods"].0, "7");
        assert_eq!(cap["ephemeral-storage"].0, "104857600Ki");
        assert_eq!(st.allocatable, st.capacity);
        let info = st.node_info.clone().expect("info");
        assert_eq!(info.container_runtime_version, "docker://27.3.1");
        assert_eq!(info.operating_system, "linux");
        assert!(info.kubelet_version.starts_with("v1."), "{info:?}");
        let conds = st.conditions.clone().expect("conditions");
        let ready = conds.iter().find(|c| c.type_ == "Ready").expect("Ready");
        assert_eq!(ready.status, "True");
        assert_eq!(ready.reason.as_deref(), Some("KubeletReady"));
        assert_eq!(ready.last_heartbeat_time, Some(Time(facts().now)));
        for pressure in ["MemoryPressure", "DiskPressure", "PIDPressure"] {
            let c = conds.iter().find(|c| c.type_ == pressure).expect(pressure);
            assert_eq!(c.status, "False", "{pressure}");
        }
        assert_eq!(cpu_quantity(1500).0, "1500m");
    }

    #[test]
    fn the_node_table_has_kubectls_columns() {
        let mut n = node_object(&facts());
        let t = node_table(std::slice::from_ref(&n), facts().now);
        assert_eq!(
            column_names(&t),
            [
                "Name",
                "Status",
                "Roles",
                "Age",
                "Version",
                "Internal-IP",
                "External-IP",
                "OS-Image",
                "Kernel-Version",
                "Container-Runtime"
            ]
        );
        let row = cells(&t, 0);
        assert_eq!(row[..4], ["edge-1", "Ready", "<none>", "60m"]);
        assert_eq!(row[5..7], ["192.168.1.5", "<none>"]);
        assert_eq!(row[9], "docker://27.3.1");
        if let Some(l) = n.metadata.labels.as_mut() {
            l.insert("node-role.kubernetes.io/edge".into(), String::new());
        }
        n.spec = Some(NodeSpec {
            unschedulable: Some(true),
            ..Default::default()
        });
        let row = cells(&node_table(&[n], facts().now), 0);
        assert_eq!(row[1..3], ["Ready,SchedulingDisabled", "edge"]);
    }

    #[test]
    fn namespaces_are_the_used_ones_plus_default_sorted_and_active() {
        let started = time("2026-01-01T00:00:00Z");
        let ns = namespaces(
            ["prod".to_string(), "".into(), "prod".into(), "a".into()],
            started,
        );
        let names: Vec<_> = ns.iter().filter_map(|n| n.metadata.name.clone()).collect();
        assert_eq!(names, ["a", "default", "prod"]);
        let t = namespace_table(&ns, time("2026-01-01T00:00:30Z"));
        assert_eq!(column_names(&t), ["Name", "Status", "Age"]);
        assert_eq!(cells(&t, 1), ["default", "Active", "30s"]);
    }

    fn secret() -> Secret {
        serde_json::from_value(json!({
            "metadata": {"name": "creds", "namespace": "prod", "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": "{\"data\":{\"pass\":\"c3VwZXJzZWNyZXQ=\"}}",
                "team": "a"}},
            "type": "kubernetes.io/basic-auth",
            "data": {"username": "YWRtaW4=", "password": "c3VwZXJzZWNyZXQ="},
            "stringData": {"extra": "supersecret"}
        }))
        .expect("secret")
    }

    #[test]
    fn a_secret_view_keeps_type_and_keys_and_no_value() {
        let v = secret_view(&secret());
        let text = serde_json::to_string(&v).expect("json");
        for leaked in ["c3VwZXJzZWNyZXQ", "supersecret", "YWRtaW4", "last-applied"] {
            assert!(!text.contains(leaked), "{leaked} in {text}");
        }
        assert_eq!(v.type_.as_deref(), Some("kubernetes.io/basic-auth"));
        let keys: Vec<_> = v.data.clone().expect("data").into_keys().collect();
        assert_eq!(keys, ["extra", "password", "username"]);
        let ann = v.metadata.annotations.clone().expect("annotations");
        assert_eq!(ann[REDACTED_ANNOTATION], "true");
        assert_eq!(ann["team"], "a");
    }

    #[test]
    fn secret_and_configmap_tables_count_keys() {
        let now = time("2026-01-01T00:02:00Z");
        let mut s = secret();
        s.metadata = object_meta_with_age(&s.metadata, time("2026-01-01T00:00:00Z"));
        let t = secret_table(&[s], now);
        assert_eq!(column_names(&t), ["Name", "Type", "Data", "Age"]);
        assert_eq!(
            cells(&t, 0),
            ["creds", "kubernetes.io/basic-auth", "3", "2m"]
        );
        assert!(!t.to_string().contains("c3VwZXJzZWNyZXQ"));
        let cm: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": "app"},
            "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AAE="}
        }))
        .expect("configmap");
        let t = configmap_table(&[cm], now);
        assert_eq!(column_names(&t), ["Name", "Data", "Age"]);
        assert_eq!(cells(&t, 0), ["app", "3", "<unknown>"]);
    }
}
