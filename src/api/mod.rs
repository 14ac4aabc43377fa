//! The local API: the read-only port (`--address:--read-only-port`) and
//! the authenticated port ([`secure`], `--address:--port`), which serves
//! the same read API plus logs and [`stream`]'s verbs.
//!
//! * `GET /healthz` — `ok` while the daemon runs (manifest errors do not make
//!   it unhealthy; they are reported at `/manifests`); `500` with the reason
//!   once the container runtime has been unreachable longer than
//!   [`UNHEALTHY_AFTER`](crate::runtime::health::UNHEALTHY_AFTER).
//!   `GET /healthz?verbose` lists the checks: the runtime (last answer,
//!   events stream, an outage while it lasts), each manifest source and why
//!   it is failing (an unreachable manifest URL is reported, not fatal).
//! * `GET /manifests` — manifest errors, warnings and name conflicts.
//! * `GET /metrics`, `/metrics/probes` — Prometheus metrics ([`metrics`]);
//!   `GET /stats/summary` — CPU and memory per pod and container.
//! * `GET /pods` — a `v1` `PodList` of every pod (defaulted spec + status),
//!   the shape of the kubelet's own `/pods`.
//! * A read-only subset of the Kubernetes API: `GET /api/v1/pods`,
//!   `/api/v1/namespaces/{ns}/pods[/{name}[/log]]`, `/api/v1/events`,
//!   `.../pods/{name}/probes` (rkubelet's: the last result of each probe),
//!   `/api/v1/namespaces/{ns}/events`, and `nodes`, `namespaces`,
//!   `configmaps` and `secrets` ([`objects`]; a Secret's values are never
//!   served). Lists and watches of every kind are [`watch`]'s
//!   (selectors, `watch`, `resourceVersion`, Tables; options it does not
//!   implement are refused by [`query`]). Logs take the API server's options
//!   (see [`logs`]).
//! * Anything else is a `404` (unknown path) or `405` (a verb other than
//!   `GET`) with a v1 `Status` body.
//!
//! Container logs are served on the read-only port only with
//! `--read-only-port-logs` (else `403`). Nothing on the read-only port
//! mutates; both ports bind loopback unless told otherwise.

pub mod apps;
pub mod batch;
pub mod cronjobs;
pub mod kube;
pub mod lifecycle;
pub mod logs;
pub mod metrics;
pub mod objects;
pub mod portforward;
pub mod query;
pub mod resources;
pub mod secure;
pub mod spdy;
pub mod stream;
pub mod upgrade;
pub mod watch;

use std::sync::{Arc, RwLock};

use axum::body::Body;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::Uri;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::jiff::Timestamp;
use tokio_util::sync::CancellationToken;

use crate::events::Recorder;
use crate::pod::objects::ObjectStore;
use crate::runtime::ContainerRuntime;
use crate::source::Diagnostics;
use crate::worker::store::PodStore;

/// What the API reads.
#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<PodStore>,
    pub diagnostics: Arc<RwLock<Diagnostics>>,
    pub recorder: Arc<Recorder>,
    pub runtime: Arc<dyn ContainerRuntime>,
    /// The runtime's reachability, for `/healthz`.
    pub health: Arc<crate::runtime::health::RuntimeHealth>,
    /// Ends open watches at shutdown.
    pub shutdown: CancellationToken,
    /// The ConfigMaps and Secrets the manifests define.
    pub objects: ObjectStore,
    /// This node, for `/api/v1/nodes`.
    pub node: Arc<objects::NodeView>,
    /// The versioned nodes, namespaces, ConfigMaps and Secrets
    /// ([`objects::feed`] keeps them current).
    pub served: Arc<objects::Stores>,
    /// Docker stats for `/stats/summary`, cached.
    pub stats: Arc<crate::metrics::stats::StatsCache>,
    /// Deployments, ReplicaSets and DaemonSets with their status
    /// (`/apis/apps/v1`), kept current by the pod manager.
    pub workloads: Arc<crate::worker::workloads::WorkloadObjects>,
}

const PODS: watch::Kind<Pod> = watch::Kind {
    resource: "pods",
    table: kube::pod_table,
};
const EVENTS: watch::Kind<Event> = watch::Kind {
    resource: "events",
    table: kube::event_table,
};

/// The read-only port's routes: the read API, and container logs only when
/// `serve_logs` (`--read-only-port-logs`).
pub fn router(state: ApiState, serve_logs: bool) -> Router {
    let logs = if serve_logs {
        get(pod_log)
    } else {
        get(logs_elsewhere)
    };
    read_routes()
        .route("/api/v1/namespaces/{ns}/pods/{name}/log", logs)
        .fallback(not_found)
        .method_not_allowed_fallback(not_allowed)
        .layer(axum::middleware::from_fn(metrics::count))
        .with_state(state)
}

/// The authenticated port's routes: the read API, logs, and the streaming
/// and lifecycle verbs ([`stream`]). Authentication happens before ([`secure`]).
pub fn authenticated_router(state: ApiState) -> Router {
    read_routes()
        .route("/api/v1/namespaces/{ns}/pods/{name}/log", get(pod_log))
        .merge(stream::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(not_allowed)
        .layer(axum::middleware::from_fn(metrics::count))
        .with_state(state)
}

/// The read-only port without `--read-only-port-logs`: a `403` saying where
/// logs are served.
async fn logs_elsewhere() -> Response {
    status_error(
        StatusCode::FORBIDDEN,
        "Forbidden",
        "container logs are not served on the read-only port: use the authenticated port \
         (--port, `rkubelet kubeconfig` prints a kubeconfig for it), or start rkubelet with \
         --read-only-port-logs"
            .to_string(),
    )
    .into_response()
}

/// The routes both ports serve.
fn read_routes() -> Router<ApiState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/manifests", get(manifests))
        .route("/pods", get(all_pods))
        .route("/metrics", get(metrics::all))
        .route("/metrics/probes", get(metrics::probes))
        .route("/stats/summary", get(metrics::summary))
        .route("/version", get(|| async { Json(kube::version()) }))
        .route("/api", get(api_versions))
        .route("/apis", get(|| async { Json(kube::api_group_list()) }))
        .merge(apps::routes())
        .merge(batch::routes())
        .merge(cronjobs::routes())
        .route("/api/v1", get(|| async { Json(kube::api_resource_list()) }))
        .route(
            "/api/v1/namespaces/{ns}/pods/{name}/probes",
            get(pod_probes),
        )
        .merge(watch::namespaced_routes(&PODS, pod_store))
        .merge(watch::namespaced_routes(&EVENTS, event_store))
        .merge(objects::routes())
}

/// `ok`; with `?verbose`, one line per check in the Kubernetes style. A
/// failing manifest source, a short runtime outage or a disconnected events
/// stream is marked `[!]` but does not fail the check; a runtime unreachable
/// for longer than the threshold is `[-]` and fails it with `500`, verbose
/// or not, naming the reason.
async fn healthz(State(s): State<ApiState>, RawQuery(query): RawQuery) -> Response {
    let verbose = query.is_some_and(|q| {
        q.split('&')
            .any(|p| p == "verbose" || p.starts_with("verbose="))
    });
    let runtime = s.health.check();
    let runtime_line = match (&runtime.failing, &runtime.degraded) {
        (true, _) => format!("[-]runtime failed: {}\n", runtime.message),
        (false, true) => format!("[!]runtime {}\n", runtime.message),
        (false, false) => format!("[+]runtime {}\n", runtime.message),
    };
    if !verbose && !runtime.failing {
        return "ok".into_response();
    }
    if !verbose {
        let body = format!("{runtime_line}healthz check failed\n");
        return (StatusCode::INTERNAL_SERVER_ERROR, body).into_response();
    }
    let diag = s.diagnostics.read().map(|d| d.clone()).unwrap_or_default();
    let mut out = String::from("[+]ping ok\n");
    out.push_str(&runtime_line);
    for source in diag.pods.keys() {
        match diag.failing.get(source) {
            Some(why) => out.push_str(&format!(
                "[!]source-{source} failing, its last good pods keep running: {why}\n"
            )),
            None => out.push_str(&format!("[+]source-{source} ok\n")),
        }
    }
    if runtime.failing {
        out.push_str("healthz check failed\n");
        return (StatusCode::INTERNAL_SERVER_ERROR, out).into_response();
    }
    out.push_str("healthz check passed\n");
    out.into_response()
}

/// An error answered as a Kubernetes `Status` body, as the API server does.
#[derive(Debug)]
pub(crate) struct ApiError {
    code: StatusCode,
    reason: &'static str,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code.as_u16(),
        });
        (self.code, Json(body)).into_response()
    }
}

pub(crate) fn status_error(code: StatusCode, reason: &'static str, message: String) -> ApiError {
    ApiError {
        code,
        reason,
        message,
    }
}

async fn api_versions(headers: HeaderMap) -> Json<serde_json::Value> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    Json(kube::api_versions(host))
}

async fn manifests(State(s): State<ApiState>) -> Response {
    match s.diagnostics.read() {
        Ok(d) => Json(d.clone()).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// An unknown path: a `404` `Status`, never an empty body.
async fn not_found(uri: Uri) -> Response {
    status_error(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!(
            "the server could not find the requested resource {}: rkubelet serves a read-only subset of the API (see /api/v1)",
            uri.path()
        ),
    )
    .into_response()
}

/// A verb other than `GET` on a known path.
async fn not_allowed(method: axum::http::Method, uri: Uri) -> Response {
    status_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        format!(
            "{method} is not supported on {}: rkubelet's API is read-only",
            uri.path()
        ),
    )
    .into_response()
}

fn pods_in(s: &ApiState, ns: Option<&str>) -> Vec<Pod> {
    s.store
        .list()
        .into_iter()
        .map(|r| r.pod)
        .filter(|p| ns.is_none_or(|ns| p.metadata.namespace.as_deref() == Some(ns)))
        .collect()
}

/// `/pods`, the kubelet's own path: every pod, as `/api/v1/pods`.
async fn all_pods(
    State(s): State<ApiState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    let stop = s.shutdown.clone();
    watch::list_or_watch(s.store.pods(), &PODS, None, q.as_deref(), &headers, stop)
}

fn pod_store(s: &ApiState) -> &crate::watch::Store<Pod> {
    s.store.pods()
}

fn event_store(s: &ApiState) -> &crate::watch::Store<Event> {
    s.recorder.objects()
}

pub(crate) fn find_pod(s: &ApiState, ns: &str, name: &str) -> Result<Pod, ApiError> {
    pods_in(s, Some(ns))
        .into_iter()
        .find(|p| p.metadata.name.as_deref() == Some(name))
        .ok_or_else(|| {
            status_error(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("pods {name:?} not found"),
            )
        })
}

/// The Docker id of the container instance `previous` asks for, from status.
pub(crate) fn container_id(
    pod: &Pod,
    container: Option<&str>,
    previous: bool,
) -> Result<String, ApiError> {
    let spec = pod.spec.clone().unwrap_or_default();
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    let name = match container {
        Some(c) => c.to_string(),
        None if spec.containers.len() == 1 => spec.containers[0].name.clone(),
        None => {
            let names: Vec<&str> = spec.containers.iter().map(|c| c.name.as_str()).collect();
            return Err(status_error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                format!(
                    "a container name must be specified for pod {pod_name}, choose one of: [{}]",
                    names.join(" ")
                ),
            ));
        }
    };
    let status = pod.status.clone().unwrap_or_default();
    let statuses = status
        .container_statuses
        .iter()
        .flatten()
        .chain(status.init_container_statuses.iter().flatten());
    let Some(st) = statuses.into_iter().find(|c| c.name == name) else {
        return Err(status_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("container {name} is not valid for pod {pod_name}"),
        ));
    };
    let id = if previous {
        st.last_state
            .as_ref()
            .and_then(|l| l.terminated.as_ref())
            .and_then(|t| t.container_id.clone())
    } else {
        st.container_id.clone()
    };
    let Some(id) = id else {
        let message = if previous {
            format!("previous terminated container {name:?} in pod {pod_name:?} not found")
        } else {
            format!("container {name:?} in pod {pod_name:?} is waiting to start")
        };
        return Err(status_error(StatusCode::BAD_REQUEST, "BadRequest", message));
    };
    Ok(id.trim_start_matches("docker://").to_string())
}

async fn pod_log(
    State(s): State<ApiState>,
    Path((ns, name)): Path<(String, String)>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let req = match logs::log_request(&params, Timestamp::now()) {
        Ok(r) => r,
        Err(e) => return status_error(StatusCode::BAD_REQUEST, "BadRequest", e.0).into_response(),
    };
    let pod = match find_pod(&s, &ns, &name) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let id = match container_id(&pod, req.container.as_deref(), req.previous) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    let stream = logs::limit_bytes(s.runtime.logs(&id, req.options), req.limit_bytes)
        .map(|r| r.map_err(std::io::Error::other));
    (
        [(header::CONTENT_TYPE, "text/plain")],
        Body::from_stream(stream),
    )
        .into_response()
}

/// rkubelet's extension: the last result of each probe of a pod.
async fn pod_probes(
    State(s): State<ApiState>,
    Path((ns, name)): Path<(String, String)>,
) -> Response {
    let record = s.store.list().into_iter().find(|r| {
        r.pod.metadata.namespace.as_deref() == Some(ns.as_str())
            && r.pod.metadata.name.as_deref() == Some(name.as_str())
    });
    match record {
        Some(r) => Json(r.probes).into_response(),
        None => status_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("pods {name:?} not found"),
        )
        .into_response(),
    }
}
