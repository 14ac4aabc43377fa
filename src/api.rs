//! The read-only local API (`--address:--read-only-port`).
//!
//! * `GET /healthz` — `ok` while the daemon runs (manifest errors do not make
//!   it unhealthy; they are reported at `/manifests`). `GET /healthz?verbose`
//!   lists the checks, including each manifest source and why it is failing
//!   (an unreachable manifest URL is reported, not fatal).
//! * `GET /manifests` — manifest errors, warnings and name conflicts.
//! * `GET /pods` — a `v1` `PodList` of every pod (defaulted spec + status).
//!
//! Nothing here mutates; it binds loopback unless told otherwise.

use std::sync::{Arc, RwLock};

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::List;

use crate::pod::worker::PodStore;
use crate::source::Diagnostics;

/// What the API reads.
#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<PodStore>,
    pub diagnostics: Arc<RwLock<Diagnostics>>,
}

/// The API's routes.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/manifests", get(manifests))
        .route("/pods", get(pods))
        .with_state(state)
}

/// `ok`; with `?verbose`, one line per check in the Kubernetes style. A
/// failing manifest source is marked `[!]` but does not fail the check: its
/// last good pods keep running.
async fn healthz(State(s): State<ApiState>, RawQuery(query): RawQuery) -> String {
    let verbose = query.is_some_and(|q| {
        q.split('&')
            .any(|p| p == "verbose" || p.starts_with("verbose="))
    });
    if !verbose {
        return "ok".to_string();
    }
    let diag = s.diagnostics.read().map(|d| d.clone()).unwrap_or_default();
    let mut out = String::from("[+]ping ok\n");
    for source in diag.pods.keys() {
        match diag.failing.get(source) {
            Some(why) => out.push_str(&format!(
                "[!]source-{source} failing, its last good pods keep running: {why}\n"
            )),
            None => out.push_str(&format!("[+]source-{source} ok\n")),
        }
    }
    out.push_str("healthz check passed\n");
    out
}

async fn manifests(State(s): State<ApiState>) -> Response {
    match s.diagnostics.read() {
        Ok(d) => Json(d.clone()).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn pods(State(s): State<ApiState>) -> Json<List<Pod>> {
    let items = s.store.list().into_iter().map(|r| r.pod).collect();
    Json(List {
        items,
        metadata: Default::default(),
    })
}
