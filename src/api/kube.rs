//! What a real `kubectl --server http://127.0.0.1:10255` needs beyond plain
//! objects (pure helpers for the API).
//!
//! * Discovery: `/api` (`APIVersions`), `/apis` (an empty `APIGroupList`),
//!   `/api/v1` (an `APIResourceList` naming pods, pods/log, events,
//!   namespaces, nodes, configmaps and secrets, all read-only; pods and
//!   events can be watched) and `/version`.
//! * Server-side printing: kubectl asks for `application/json;as=Table;…`
//!   and prints the `meta.k8s.io/v1` `Table` it gets; pod rows come from
//!   [`crate::k8s::print::pod_row`], the same rules `rkubelet get pods` uses.
//!
//! Selectors live in [`crate::k8s::selector`]; lists and watches in
//! [`super::watch`].

use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::jiff::Timestamp;
use serde_json::{json, Value};

use crate::k8s::print::{event_age, pod_row};

/// `GET /api`.
pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]
    })
}

/// `GET /apis`: the `apps` group (Deployments, ReplicaSets, DaemonSets)
/// and the `batch` group (Jobs).
pub fn api_group_list() -> Value {
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [super::apps::group(), super::batch::group()]})
}

/// `GET /api/v1`: the read-only resources rkubelet serves.
pub fn api_resource_list() -> Value {
    let read = json!(["get", "list", "watch"]);
    json!({
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": [
            {"name": "pods", "singularName": "pod", "namespaced": true, "kind": "Pod",
             "verbs": read, "shortNames": ["po"], "categories": ["all"]},
            {"name": "pods/log", "singularName": "", "namespaced": true, "kind": "Pod", "verbs": ["get"]},
            {"name": "events", "singularName": "event", "namespaced": true, "kind": "Event",
             "verbs": read, "shortNames": ["ev"]},
            {"name": "namespaces", "singularName": "namespace", "namespaced": false, "kind": "Namespace",
             "verbs": read, "shortNames": ["ns"]},
            {"name": "nodes", "singularName": "node", "namespaced": false, "kind": "Node",
             "verbs": read, "shortNames": ["no"]},
            {"name": "configmaps", "singularName": "configmap", "namespaced": true, "kind": "ConfigMap",
             "verbs": read, "shortNames": ["cm"]},
            {"name": "secrets", "singularName": "secret", "namespaced": true, "kind": "Secret",
             "verbs": read}
        ]
    })
}

/// The version rkubelet reports (`/version`, the node's `kubeletVersion`).
pub const GIT_VERSION: &str = concat!("v1.35.0-rkubelet.", env!("CARGO_PKG_VERSION"));

/// `GET /version`.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "35",
        "gitVersion": GIT_VERSION,
        "gitCommit": "",
        "gitTreeState": "",
        "buildDate": "",
        "goVersion": "",
        "compiler": "rustc",
        "platform": format!("linux/{}", crate::node::host_arch()),
    })
}

/// Does the request's `Accept` header ask for a `Table`?
pub fn wants_table(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.split(',').any(|part| part.contains("as=Table")))
}

pub(crate) fn column(name: &str, format: &str, priority: i32, description: &str) -> Value {
    json!({"name": name, "type": "string", "format": format, "priority": priority, "description": description})
}

pub(crate) fn partial_metadata(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta})
}

/// A `meta.k8s.io/v1` `Table` of these columns and rows.
pub(crate) fn table(columns: Vec<Value>, rows: Vec<Value>) -> Value {
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {}, "columnDefinitions": columns, "rows": rows})
}

/// Pods as kubectl's `Table` (columns as the API server prints them).
pub fn pod_table(pods: &[Pod], now: Timestamp) -> Value {
    let columns = vec![
        column("Name", "name", 0, "Name must be unique within a namespace."),
        column("Ready", "", 0, "The aggregate readiness state of this pod for accepting traffic."),
        column("Status", "", 0, "The aggregate status of the containers in this pod."),
        column("Restarts", "", 0, "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."),
        column("Age", "", 0, "CreationTimestamp of the pod."),
        column("IP", "", 1, "IP address allocated to the pod."),
        column("Node", "", 1, "Name of the Node the pod is assigned to."),
        column("Nominated Node", "", 1, "Name of the Node where the pod is nominated."),
        column("Readiness Gates", "", 1, "The readiness gates of this pod."),
    ];
    let rows: Vec<Value> = pods
        .iter()
        .map(|p| {
            let r = pod_row(p, now);
            json!({
                "cells": [r.name, r.ready, r.status, r.restarts, r.age, r.ip, r.node, "<none>", "<none>"],
                "object": partial_metadata(&p.metadata),
            })
        })
        .collect();
    table(columns, rows)
}

/// Events as kubectl's `Table` (`kubectl get events`).
pub fn event_table(events: &[Event], now: Timestamp) -> Value {
    let columns = vec![
        column("Last Seen", "", 0, "Time when this event was last seen."),
        column("Type", "", 0, "Type of this event (Normal, Warning)."),
        column("Reason", "", 0, "Why the action was taken."),
        column("Object", "", 0, "The object this event is about."),
        column(
            "Message",
            "",
            0,
            "A human-readable description of the status of this operation.",
        ),
    ];
    let rows: Vec<Value> = events
        .iter()
        .map(|e| {
            let age = event_age(e, now);
            let obj = &e.involved_object;
            let object = format!(
                "{}/{}",
                obj.kind.as_deref().unwrap_or("").to_lowercase(),
                obj.name.as_deref().unwrap_or("")
            );
            json!({
                "cells": [age, e.type_, e.reason, object, e.message],
                "object": partial_metadata(&e.metadata),
            })
        })
        .collect();
    table(columns, rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_asks_for_tables_in_its_accept_header() {
        assert!(wants_table(Some("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json")));
        assert!(!wants_table(Some("application/json")));
        assert!(!wants_table(None));
    }

    #[test]
    fn pod_tables_have_kubectls_columns_and_rows() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "web-n", "namespace": "default", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"nodeName": "n", "containers": [{"name": "a"}]},
            "status": {"phase": "Running", "podIP": "10.0.0.2", "containerStatuses": [
                {"name": "a", "image": "i", "imageID": "", "ready": true, "restartCount": 0, "state": {"running": {}}}]}
        }))
        .expect("pod");
        let now: Timestamp = "2026-01-01T00:05:00Z".parse().expect("time");
        let t = pod_table(&[pod], now);
        let names: Vec<&str> = t["columnDefinitions"]
            .as_array()
            .expect("cols")
            .iter()
            .filter_map(|c| c["name"].as_str())
            .collect();
        assert_eq!(
            names,
            [
                "Name",
                "Ready",
                "Status",
                "Restarts",
                "Age",
                "IP",
                "Node",
                "Nominated Node",
                "Readiness Gates"
            ]
        );
        assert_eq!(
            t["rows"][0]["cells"],
            json!(["web-n", "1/1", "Running", "0", "5m", "10.0.0.2", "n", "<none>", "<none>"])
        );
        assert_eq!(t["rows"][0]["object"]["metadata"]["name"], "web-n");
    }

    /// Go's `runtime.GOOS + "/" + runtime.GOARCH`, as every kubelet's
    /// `/version` reports it (`linux/amd64`, not Rust's `linux/x86_64`).
    #[test]
    fn version_names_the_platform_as_go_does() {
        let platform = version()["platform"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert_eq!(platform, format!("linux/{}", crate::node::host_arch()));
        assert!(!platform.contains("x86_64") && !platform.contains("aarch64"));
    }

    #[test]
    fn discovery_names_the_read_only_resources() {
        let r = api_resource_list();
        let pods = r["resources"]
            .as_array()
            .expect("resources")
            .iter()
            .find(|x| x["name"] == "pods")
            .expect("pods");
        assert_eq!(pods["verbs"], json!(["get", "list", "watch"]));
        let names: Vec<&str> = r["resources"]
            .as_array()
            .expect("resources")
            .iter()
            .filter_map(|x| x["name"].as_str())
            .collect();
        for want in ["namespaces", "nodes", "configmaps", "secrets"] {
            assert!(names.contains(&want), "{want}: {names:?}");
        }
        assert_eq!(api_versions("127.0.0.1:1")["versions"], json!(["v1"]));
    }
}
