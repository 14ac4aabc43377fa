//! `/apis/apps/v1`: Deployments, ReplicaSets and DaemonSets, read-only.
//!
//! Serves the workloads the pod manager publishes after every controller
//! run ([`crate::worker::workloads::WorkloadObjects`]) like the core kinds:
//! discovery (`/apis/apps`, `/apis/apps/v1`), list and watch over all
//! namespaces or one, get one, label and field selectors, and server-side
//! Tables with kubectl's columns (so `kubectl get deploy,rs,ds -o wide`,
//! `describe deployment` and `rollout status` work).

use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::jiff::Timestamp;
use serde_json::{json, Value};

use super::kube::{column, partial_metadata, table};
use super::watch::{get_one, list_or_watch, Kind, StoreOf};
use super::ApiState;
use crate::k8s::print::object_age;
use crate::watch::Object;

/// `GET /apis/apps/v1`.
pub fn resource_list() -> Value {
    let read = json!(["get", "list", "watch"]);
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": "apps/v1",
        "resources": [
            {"name": "deployments", "singularName": "deployment", "namespaced": true, "kind": "Deployment",
             "verbs": read, "shortNames": ["deploy"], "categories": ["all"]},
            {"name": "replicasets", "singularName": "replicaset", "namespaced": true, "kind": "ReplicaSet",
             "verbs": read, "shortNames": ["rs"], "categories": ["all"]},
            {"name": "daemonsets", "singularName": "daemonset", "namespaced": true, "kind": "DaemonSet",
             "verbs": read, "shortNames": ["ds"], "categories": ["all"]}
        ]
    })
}

/// The `apps` group as discovery lists it.
pub fn group() -> Value {
    json!({
        "name": "apps",
        "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
        "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"}
    })
}

pub(super) fn selector_text(s: &LabelSelector) -> String {
    let mut parts: Vec<String> = (s.match_labels.iter().flatten())
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in s.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default().join(",");
        parts.push(match e.operator.as_str() {
            "In" => format!("{} in ({values})", e.key),
            "NotIn" => format!("{} notin ({values})", e.key),
            "Exists" => e.key.clone(),
            _ => format!("!{}", e.key),
        });
    }
    if parts.is_empty() {
        "<none>".into()
    } else {
        parts.join(",")
    }
}

pub(super) fn containers_and_images(t: Option<&PodTemplateSpec>) -> (String, String) {
    let cs = t
        .and_then(|t| t.spec.as_ref())
        .map(|s| s.containers.as_slice());
    let cs = cs.unwrap_or_default();
    (
        cs.iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(","),
        (cs.iter())
            .map(|c| c.image.as_deref().unwrap_or_default())
            .collect::<Vec<_>>()
            .join(","),
    )
}

pub(super) fn wide_columns() -> Vec<Value> {
    vec![
        column(
            "Containers",
            "",
            1,
            "Names of each container in the template.",
        ),
        column(
            "Images",
            "",
            1,
            "Images referenced by each container in the template.",
        ),
        column("Selector", "", 1, "Label selector for pods."),
    ]
}

/// Deployments as kubectl prints them.
pub fn deployment_table(items: &[Deployment], now: Timestamp) -> Value {
    let mut columns = vec![
        column("Name", "name", 0, "Name must be unique within a namespace."),
        column("Ready", "", 0, "Number of the pod with ready state"),
        column("Up-to-date", "", 0, "Total number of non-terminated pods targeted by this deployment that have the desired template spec."),
        column("Available", "", 0, "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment."),
        column("Age", "", 0, "CreationTimestamp of the object."),
    ];
    columns.extend(wide_columns());
    let rows = (items.iter())
        .map(|d| {
            let spec = d.spec.as_ref();
            let st = d.status.clone().unwrap_or_default();
            let (containers, images) = containers_and_images(spec.map(|s| &s.template));
            let selector = spec.map(|s| selector_text(&s.selector)).unwrap_or_default();
            json!({
                "cells": [
                    d.metadata.name,
                    format!("{}/{}", st.ready_replicas.unwrap_or(0), spec.and_then(|s| s.replicas).unwrap_or(1)),
                    st.updated_replicas.unwrap_or(0),
                    st.available_replicas.unwrap_or(0),
                    object_age(&d.metadata, now),
                    containers, images, selector,
                ],
                "object": partial_metadata(&d.metadata),
            })
        })
        .collect();
    table(columns, rows)
}

/// ReplicaSets as kubectl prints them.
pub fn replica_set_table(items: &[ReplicaSet], now: Timestamp) -> Value {
    let mut columns = vec![
        column("Name", "name", 0, "Name must be unique within a namespace."),
        column("Desired", "", 0, "Number of desired pods."),
        column("Current", "", 0, "Number of actual replicas."),
        column(
            "Ready",
            "",
            0,
            "The number of ready replicas for this replica set.",
        ),
        column("Age", "", 0, "CreationTimestamp of the object."),
    ];
    columns.extend(wide_columns());
    let rows = (items.iter())
        .map(|r| {
            let spec = r.spec.as_ref();
            let st = r.status.clone().unwrap_or_default();
            let (containers, images) =
                containers_and_images(spec.and_then(|s| s.template.as_ref()));
            let selector = spec.map(|s| selector_text(&s.selector)).unwrap_or_default();
            json!({
                "cells": [
                    r.metadata.name,
                    spec.and_then(|s| s.replicas).unwrap_or(1),
                    st.replicas,
                    st.ready_replicas.unwrap_or(0),
                    object_age(&r.metadata, now),
                    containers, images, selector,
                ],
                "object": partial_metadata(&r.metadata),
            })
        })
        .collect();
    table(columns, rows)
}

/// DaemonSets as kubectl prints them.
pub fn daemon_set_table(items: &[DaemonSet], now: Timestamp) -> Value {
    let mut columns = vec![
        column("Name", "name", 0, "Name must be unique within a namespace."),
        column("Desired", "", 0, "The total number of nodes that should be running the daemon pod."),
        column("Current", "", 0, "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod."),
        column("Ready", "", 0, "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and ready."),
        column("Up-to-date", "", 0, "The total number of nodes that are running updated daemon pod"),
        column("Available", "", 0, "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)"),
        column("Node Selector", "", 0, "NodeSelector is a selector which must be true for the pod to fit on a node."),
        column("Age", "", 0, "CreationTimestamp of the object."),
    ];
    columns.extend(wide_columns());
    let rows = (items.iter())
        .map(|d| {
            let spec = d.spec.as_ref();
            let st = d.status.clone().unwrap_or_default();
            let (containers, images) = containers_and_images(spec.map(|s| &s.template));
            let selector = spec.map(|s| selector_text(&s.selector)).unwrap_or_default();
            let node_selector = (spec.and_then(|s| s.template.spec.as_ref()))
                .and_then(|s| s.node_selector.as_ref())
                .filter(|m| !m.is_empty())
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_else(|| "<none>".into());
            json!({
                "cells": [
                    d.metadata.name,
                    st.desired_number_scheduled,
                    st.current_number_scheduled,
                    st.number_ready,
                    st.updated_number_scheduled.unwrap_or(0),
                    st.number_available.unwrap_or(0),
                    node_selector,
                    object_age(&d.metadata, now),
                    containers, images, selector,
                ],
                "object": partial_metadata(&d.metadata),
            })
        })
        .collect();
    table(columns, rows)
}

static DEPLOYMENTS: Kind<Deployment> = Kind {
    resource: "deployments",
    table: deployment_table,
};
static REPLICASETS: Kind<ReplicaSet> = Kind {
    resource: "replicasets",
    table: replica_set_table,
};
static DAEMONSETS: Kind<DaemonSet> = Kind {
    resource: "daemonsets",
    table: daemon_set_table,
};

/// List, watch and get routes of one kind of the group version `gv`
/// (`apps/v1`, `batch/v1`).
pub(super) fn kind_routes<T: Object>(
    gv: &'static str,
    kind: &'static Kind<T>,
    store: StoreOf<T>,
) -> Router<ApiState> {
    let r = kind.resource;
    Router::new()
        .route(
            &format!("/apis/{gv}/{r}"),
            get(
                move |State(s): State<ApiState>, RawQuery(q): RawQuery, headers: HeaderMap| async move {
                    let stop = s.shutdown.clone();
                    list_or_watch(store(&s), kind, None, q.as_deref(), &headers, stop)
                },
            ),
        )
        .route(
            &format!("/apis/{gv}/namespaces/{{ns}}/{r}"),
            get(
                move |State(s): State<ApiState>,
                      Path(ns): Path<String>,
                      RawQuery(q): RawQuery,
                      headers: HeaderMap| async move {
                    let stop = s.shutdown.clone();
                    list_or_watch(store(&s), kind, Some(&ns), q.as_deref(), &headers, stop)
                },
            ),
        )
        .route(
            &format!("/apis/{gv}/namespaces/{{ns}}/{r}/{{name}}"),
            get(
                move |State(s): State<ApiState>,
                      Path((ns, name)): Path<(String, String)>,
                      RawQuery(q): RawQuery,
                      headers: HeaderMap| async move {
                    get_one(store(&s), kind, Some(&ns), &name, q.as_deref(), &headers)
                },
            ),
        )
}

/// The `apps/v1` routes, discovery included.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route(
            "/apis/apps",
            get(|| async {
                let mut g = group();
                g["kind"] = json!("APIGroup");
                g["apiVersion"] = json!("v1");
                Json(g)
            }),
        )
        .route("/apis/apps/v1", get(|| async { Json(resource_list()) }))
        .merge(kind_routes("apps/v1", &DEPLOYMENTS, |s| {
            &s.workloads.deployments
        }))
        .merge(kind_routes("apps/v1", &REPLICASETS, |s| {
            &s.workloads.replicasets
        }))
        .merge(kind_routes("apps/v1", &DAEMONSETS, |s| {
            &s.workloads.daemonsets
        }))
}
