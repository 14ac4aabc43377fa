//! A manifest server for tests: a real HTTP server on loopback whose answer
//! (status, body, delay, ETag) the test changes while rkubelet polls it.
//!
//! It runs axum on its own tokio runtime in a background thread, so blocking
//! end-to-end tests can use it; it counts requests (and the 304s it sent) and
//! records the headers of the last request. Dropping it stops the server.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

#[derive(Debug, Default)]
struct State {
    status: u16,
    body: Bytes,
    delay: Duration,
    etag: Option<String>,
    hits: u64,
    not_modified: u64,
    /// Every (name, value) of the last request's headers, names lower-cased.
    last_headers: Vec<(String, String)>,
}

/// A running manifest server; `url()` is what rkubelet fetches.
pub struct ManifestServer {
    state: Arc<Mutex<State>>,
    port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ManifestServer {
    /// Starts serving `200` with an empty body.
    pub fn start() -> ManifestServer {
        let state = Arc::new(Mutex::new(State {
            status: 200,
            ..Default::default()
        }));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let s = state.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let app = axum::Router::new()
                    .route("/{*path}", axum::routing::get(handle))
                    .with_state(s);
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stop_rx.await;
                    })
                    .await;
            });
        });
        ManifestServer {
            state,
            port,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// The URL rkubelet should fetch.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/pods.yaml", self.port)
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().expect("server state"))
    }

    /// Serves `200` with this body from now on.
    pub fn serve(&self, body: impl Into<Bytes>) {
        self.with(|s| {
            s.status = 200;
            s.body = body.into();
        });
    }
    /// Answers with this status (and the current body) from now on.
    pub fn status(&self, status: u16) {
        self.with(|s| s.status = status);
    }
    /// Waits this long before answering.
    pub fn delay(&self, delay: Duration) {
        self.with(|s| s.delay = delay);
    }
    /// Sends this `ETag` and answers `304` to a matching `If-None-Match`.
    pub fn etag(&self, etag: Option<&str>) {
        self.with(|s| s.etag = etag.map(String::from));
    }
    /// Requests received so far.
    pub fn hits(&self) -> u64 {
        self.with(|s| s.hits)
    }
    /// `304 Not Modified` answers sent so far.
    pub fn not_modified(&self) -> u64 {
        self.with(|s| s.not_modified)
    }
    /// Values of header `name` (lower case) on the last request.
    pub fn last_header(&self, name: &str) -> Vec<String> {
        self.with(|s| {
            s.last_headers
                .iter()
                .filter(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .collect()
        })
    }

    /// Waits until `n` more requests than now have arrived (each one was
    /// answered with the state at its arrival).
    pub fn wait_more_hits(&self, n: u64, timeout: Duration) {
        let target = self.hits() + n;
        super::daemon::wait_until(
            &format!("{n} more requests to the manifest server"),
            timeout,
            || (self.hits() >= target).then_some(()),
        );
    }
}

async fn handle(
    axum::extract::State(state): axum::extract::State<Arc<Mutex<State>>>,
    headers: HeaderMap,
) -> Response {
    let (status, body, delay, etag) = {
        let mut s = state.lock().expect("server state");
        // Counted on arrival (the answer reflects the state read here), so
        // requests the client gives up on (timeouts) count too.
        s.hits += 1;
        s.last_headers = headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    v.to_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        (s.status, s.body.clone(), s.delay, s.etag.clone())
    };
    tokio::time::sleep(delay).await;
    let if_none_match = headers
        .get("if-none-match")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let response = if status == 200 && etag.is_some() && if_none_match == etag {
        state.lock().expect("server state").not_modified += 1;
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut r = (code, body).into_response();
        if let Some(e) = etag.filter(|_| status == 200) {
            if let Ok(v) = e.parse() {
                r.headers_mut().insert("etag", v);
            }
        }
        r
    };
    response
}

impl Drop for ManifestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
