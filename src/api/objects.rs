//! The handlers of the read-only objects besides pods and events:
//! `nodes`, `namespaces`, `configmaps` and `secrets` (list and get, as JSON
//! or kubectl's `Table`). The objects themselves are built by the pure
//! functions of [`super::resources`]; a Secret is only ever served through
//! [`resources::secret_view`] (no values on the read-only port).

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Secret};
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::List;
use serde::Serialize;

use super::resources::{self, NodeFacts};
use super::{kube, status_error, ApiState};
use crate::node::NodeInfo;

/// What the API knows about this node beyond the machine's own facts.
#[derive(Debug, Clone)]
pub struct NodeView {
    /// Name and labels (built-in plus `--node-labels`).
    pub info: NodeInfo,
    pub host_ip: String,
    /// When the daemon started.
    pub started: Timestamp,
}

/// The routes of this module (merged into [`super::router`]).
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/nodes", get(list_nodes))
        .route("/api/v1/nodes/{name}", get(one_node))
        .route("/api/v1/namespaces", get(list_namespaces))
        .route("/api/v1/namespaces/{ns}", get(one_namespace))
        .route("/api/v1/configmaps", get(all_configmaps))
        .route(
            "/api/v1/namespaces/{ns}/configmaps",
            get(namespace_configmaps),
        )
        .route(
            "/api/v1/namespaces/{ns}/configmaps/{name}",
            get(one_configmap),
        )
        .route("/api/v1/secrets", get(all_secrets))
        .route("/api/v1/namespaces/{ns}/secrets", get(namespace_secrets))
        .route("/api/v1/namespaces/{ns}/secrets/{name}", get(one_secret))
}

fn wants_table(headers: &HeaderMap) -> bool {
    kube::wants_table(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()))
}

fn not_found(resource: &str, name: &str) -> Response {
    status_error(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("{resource} {name:?} not found"),
    )
    .into_response()
}

/// A list as JSON, or `table(items)` when kubectl asks for one.
fn answer<T>(
    items: Vec<T>,
    headers: &HeaderMap,
    table: fn(&[T], Timestamp) -> serde_json::Value,
) -> Response
where
    T: k8s_openapi::ListableResource + Serialize,
{
    if wants_table(headers) {
        return Json(table(&items, Timestamp::now())).into_response();
    }
    Json(List {
        items,
        metadata: Default::default(),
    })
    .into_response()
}

/// One object as JSON, or its one-row `Table`.
fn answer_one<T: Serialize + Clone>(
    item: T,
    headers: &HeaderMap,
    table: fn(&[T], Timestamp) -> serde_json::Value,
) -> Response {
    if wants_table(headers) {
        return Json(table(&[item], Timestamp::now())).into_response();
    }
    Json(item).into_response()
}

async fn node(s: &ApiState) -> Node {
    let runtime_version =
        match tokio::time::timeout(std::time::Duration::from_secs(2), s.runtime.version()).await {
            Ok(Ok(v)) => v,
            _ => String::new(),
        };
    resources::node_object(&NodeFacts {
        info: s.node.info.clone(),
        host_ip: s.node.host_ip.clone(),
        capacity: crate::node::capacity(),
        kernel_version: crate::node::kernel_version(),
        os_image: crate::node::os_image(),
        runtime_version,
        started: s.node.started,
        now: Timestamp::now(),
    })
}

async fn list_nodes(State(s): State<ApiState>, headers: HeaderMap) -> Response {
    answer(vec![node(&s).await], &headers, resources::node_table)
}

async fn one_node(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    if name != s.node.info.name {
        return not_found("nodes", &name);
    }
    answer_one(node(&s).await, &headers, resources::node_table)
}

/// Every namespace that holds a pod, ConfigMap, Secret or event, plus
/// `default`.
fn all_namespaces(s: &ApiState) -> Vec<Namespace> {
    let objects = s.objects.current();
    let pods = s.store.list();
    let used = (pods.iter())
        .filter_map(|r| r.pod.metadata.namespace.clone())
        .chain(
            objects
                .configmaps
                .values()
                .filter_map(|c| c.metadata.namespace.clone()),
        )
        .chain(
            objects
                .secrets
                .values()
                .filter_map(|c| c.metadata.namespace.clone()),
        )
        .chain(
            (s.recorder.list(None).into_iter())
                .filter_map(|e| e.metadata.namespace)
                .collect::<Vec<_>>(),
        );
    resources::namespaces(used, s.node.started)
}

async fn list_namespaces(State(s): State<ApiState>, headers: HeaderMap) -> Response {
    answer(all_namespaces(&s), &headers, resources::namespace_table)
}

async fn one_namespace(
    State(s): State<ApiState>,
    Path(ns): Path<String>,
    headers: HeaderMap,
) -> Response {
    match all_namespaces(&s)
        .into_iter()
        .find(|n| n.metadata.name.as_deref() == Some(ns.as_str()))
    {
        Some(n) => answer_one(n, &headers, resources::namespace_table),
        None => not_found("namespaces", &ns),
    }
}

fn configmaps(s: &ApiState, ns: Option<&str>) -> Vec<ConfigMap> {
    let objects = s.objects.current();
    (objects.configmaps.values())
        .filter(|c| ns.is_none_or(|ns| c.metadata.namespace.as_deref() == Some(ns)))
        .map(|c| ConfigMap {
            metadata: resources::object_meta_with_age(&c.metadata, s.node.started),
            ..(**c).clone()
        })
        .collect()
}

async fn all_configmaps(State(s): State<ApiState>, headers: HeaderMap) -> Response {
    answer(configmaps(&s, None), &headers, resources::configmap_table)
}

async fn namespace_configmaps(
    State(s): State<ApiState>,
    Path(ns): Path<String>,
    headers: HeaderMap,
) -> Response {
    answer(
        configmaps(&s, Some(&ns)),
        &headers,
        resources::configmap_table,
    )
}

async fn one_configmap(
    State(s): State<ApiState>,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    match (configmaps(&s, Some(&ns)).into_iter())
        .find(|c| c.metadata.name.as_deref() == Some(name.as_str()))
    {
        Some(c) => answer_one(c, &headers, resources::configmap_table),
        None => not_found("configmaps", &name),
    }
}

/// Secrets without their values (see [`resources::secret_view`]).
fn secrets(s: &ApiState, ns: Option<&str>) -> Vec<Secret> {
    let objects = s.objects.current();
    (objects.secrets.values())
        .filter(|c| ns.is_none_or(|ns| c.metadata.namespace.as_deref() == Some(ns)))
        .map(|c| {
            let mut view = resources::secret_view(c);
            view.metadata = resources::object_meta_with_age(&view.metadata, s.node.started);
            view
        })
        .collect()
}

async fn all_secrets(State(s): State<ApiState>, headers: HeaderMap) -> Response {
    answer(secrets(&s, None), &headers, resources::secret_table)
}

async fn namespace_secrets(
    State(s): State<ApiState>,
    Path(ns): Path<String>,
    headers: HeaderMap,
) -> Response {
    answer(secrets(&s, Some(&ns)), &headers, resources::secret_table)
}

async fn one_secret(
    State(s): State<ApiState>,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    match (secrets(&s, Some(&ns)).into_iter())
        .find(|c| c.metadata.name.as_deref() == Some(name.as_str()))
    {
        Some(c) => answer_one(c, &headers, resources::secret_table),
        None => not_found("secrets", &name),
    }
}
