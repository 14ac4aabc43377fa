//! Starting while Docker is down.
//!
//! [`wait_for_docker`] connects to the Docker daemon, waiting as long as it
//! takes: one log line when it does not answer, then a retry growing from
//! 0.5 s to 5 s, each failure reported to the [`RuntimeHealth`]. Meanwhile
//! the API's listener answers `/healthz` from that health (`ok` at first,
//! `500` naming the reason once Docker has been unreachable longer than the
//! threshold; `?verbose` shows the outage) and every other path with `503`,
//! so monitors see a daemon that is up and waiting rather than a refused
//! connection. Outside systemd (a container entrypoint, a script) exiting
//! would leave a dead node; the kubelet, too, waits for its runtime.
//!
//! It owns nothing after Docker answered: the real API takes the listener.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio_util::sync::CancellationToken;

use crate::backoff::Retry;
use crate::runtime::docker::DockerRuntime;
use crate::runtime::health::RuntimeHealth;
use crate::runtime::RuntimeError;

/// Waiting for Docker at start: 0.5 s, doubling up to 5 s.
pub const CONNECT_RETRY: Retry = Retry::new(Duration::from_millis(500), Duration::from_secs(5));

/// How long the waiting API may take to close its connections.
const STOP_SERVING: Duration = Duration::from_secs(2);

/// Connects to Docker at `endpoint`, waiting until it answers, and serves
/// `/healthz` on (a clone of) `api` meanwhile. Fails only for an endpoint
/// that cannot work at all.
pub async fn wait_for_docker(
    endpoint: &str,
    health: &Arc<RuntimeHealth>,
    api: Option<&std::net::TcpListener>,
) -> Result<DockerRuntime, RuntimeError> {
    let first = DockerRuntime::connect(endpoint).await;
    let e = match first {
        Err(RuntimeError::Unavailable(m)) => RuntimeError::Unavailable(m),
        other => return other,
    };
    health.note_unreachable(&e);
    tracing::warn!(error = %e,
        "waiting for the container runtime; retrying every 0.5 s to 5 s until it answers");
    let stop = CancellationToken::new();
    let server = api.and_then(|l| serve_waiting(l, health.clone(), stop.clone()));
    let mut retry = CONNECT_RETRY;
    let connected = loop {
        let delay = retry.next_delay();
        tokio::time::sleep(delay).await;
        match DockerRuntime::connect(endpoint).await {
            Ok(docker) => break Ok(docker),
            Err(e @ RuntimeError::Unavailable(_)) => {
                health.note_unreachable(&e);
                tracing::debug!(error = %e, "the container runtime does not answer yet");
            }
            Err(e) => break Err(e),
        }
    };
    stop.cancel();
    if let Some(mut server) = server {
        if tokio::time::timeout(STOP_SERVING, &mut server)
            .await
            .is_err()
        {
            server.abort();
        }
    }
    if connected.is_ok() {
        health.note_answered();
        tracing::info!(endpoint, "the container runtime answers; starting");
    }
    connected
}

/// Serves the waiting API on a clone of `listener` until `stop`; `None`
/// (logged) when the listener cannot be cloned.
fn serve_waiting(
    listener: &std::net::TcpListener,
    health: Arc<RuntimeHealth>,
    stop: CancellationToken,
) -> Option<tokio::task::JoinHandle<()>> {
    let cloned = listener
        .try_clone()
        .and_then(tokio::net::TcpListener::from_std);
    let listener = match cloned {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "cannot serve /healthz while waiting for the runtime");
            return None;
        }
    };
    let app = Router::new()
        .route("/healthz", get(healthz))
        .fallback(|| async {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "rkubelet is waiting for the container runtime\n",
            )
        })
        .with_state(health);
    Some(tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned());
        if let Err(e) = serve.await {
            tracing::warn!(error = %e, "the waiting API failed");
        }
    }))
}

/// `/healthz` while waiting: the runtime check only.
async fn healthz(State(health): State<Arc<RuntimeHealth>>, RawQuery(query): RawQuery) -> Response {
    let verbose = query.is_some_and(|q| q.split('&').any(|p| p.starts_with("verbose")));
    let check = health.check();
    if !check.failing && !verbose {
        return "ok".into_response();
    }
    let mark = if check.failing {
        "[-]runtime failed:"
    } else {
        "[!]runtime"
    };
    let verdict = if check.failing { "failed" } else { "passed" };
    let ping = if verbose { "[+]ping ok\n" } else { "" };
    let body = format!("{ping}{mark} {}\nhealthz check {verdict}\n", check.message);
    let status = if check.failing {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    };
    (status, body).into_response()
}
