//! `GET /metrics`, `GET /metrics/probes` and `GET /stats/summary`
//! ([`crate::metrics`]), and the middleware counting every request into
//! `kubelet_http_requests_total`.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiState;
use crate::metrics;

/// OpenMetrics for scrapers that ask for it, the text format otherwise.
fn respond(headers: &HeaderMap, openmetrics: String) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|a| a.to_str().ok());
    if metrics::wants_openmetrics(accept) {
        ([(header::CONTENT_TYPE, metrics::OPENMETRICS)], openmetrics).into_response()
    } else {
        let text = metrics::to_text_format(&openmetrics);
        ([(header::CONTENT_TYPE, metrics::TEXT_FORMAT)], text).into_response()
    }
}

/// Every metric, refreshed from the status store and diagnostics.
pub async fn all(State(s): State<ApiState>, headers: HeaderMap) -> Response {
    let diagnostics = s.diagnostics.read().map(|d| d.clone()).unwrap_or_default();
    respond(&headers, metrics::global().encode(&s.store, &diagnostics))
}

/// The probe metrics alone, as the kubelet's `/metrics/probes`.
pub async fn probes(headers: HeaderMap) -> Response {
    respond(&headers, metrics::global().encode_probes())
}

/// Counts the request (method, first path segment, `readonly` server).
pub async fn count(request: Request, next: Next) -> Response {
    let method = request.method().as_str().to_string();
    let path = metrics::path_label(request.uri().path());
    metrics::global().http_request(&method, path, "readonly");
    next.run(request).await
}

/// The kubelet's Summary API: CPU and memory per pod and container, from
/// cached Docker stats ([`metrics::stats`]).
pub async fn summary(State(s): State<ApiState>) -> Response {
    let pods: Vec<_> = s
        .store
        .pods()
        .list()
        .0
        .iter()
        .map(|p| (**p).clone())
        .collect();
    let ids: Vec<String> = metrics::stats::running_containers(&pods)
        .into_iter()
        .map(|(_, _, id)| id)
        .collect();
    let samples = s.stats.samples(&ids).await;
    let started = s.node.started;
    axum::Json(metrics::stats::summary(
        &s.node.info.name,
        started,
        &pods,
        &samples,
    ))
    .into_response()
}
