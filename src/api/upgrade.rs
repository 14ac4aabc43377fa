//! The upgrades the streaming verbs accept, and the byte transport their SPDY
//! sessions run on.
//!
//! kubectl 1.31+ asks for a WebSocket; with
//! `KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false` (exec, attach) or
//! `KUBECTL_PORT_FORWARD_WEBSOCKETS=false` (port-forward) — and as older
//! clients do — it sends a plain `Upgrade: SPDY/3.1` with the protocols it
//! speaks in `X-Stream-Protocol-Version`. The server picks the first of the
//! client's protocols it speaks, answers `101` naming it, and the connection
//! becomes a SPDY connection ([`super::spdy`]) on which the client opens the
//! streams. A client offering none of the server's protocols gets a `403`
//! naming both lists, as from the kubelet.
//!
//! The transport: bytes in as a stream of reads; frames out through a channel
//! to one writer task that writes whatever is queued and flushes once per
//! batch.

use std::future::Future;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::{status_error, ApiError};

/// The `X-Stream-Protocol-Version` header.
pub const PROTOCOL_HEADER: &str = "x-stream-protocol-version";
/// What a SPDY upgrade's `Upgrade` header names.
pub const SPDY_31: &str = "SPDY/3.1";
/// Frames already queued are written before one flush, up to about this
/// many bytes.
pub const BATCH: usize = 512 * 1024;
/// The most one read from the connection takes.
const READ: usize = 256 * 1024;

/// The upgraded connection of a SPDY session.
pub type SpdyIo = TokioIo<Upgraded>;

/// The upgrade a streaming request asks for, if any.
pub(crate) enum Upgrade {
    WebSocket(WebSocketUpgrade),
    Spdy(SpdyUpgrade),
    /// Plain HTTP, or an upgrade to something else.
    None,
}

impl<S: Send + Sync> FromRequestParts<S> for Upgrade {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Ok(ws) = WebSocketUpgrade::from_request_parts(parts, state).await {
            return Ok(Upgrade::WebSocket(ws));
        }
        let has = |name: header::HeaderName, token: &str| {
            parts.headers.get_all(name).iter().any(|v| {
                v.to_str()
                    .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
            })
        };
        if !(has(header::CONNECTION, "upgrade") && has(header::UPGRADE, SPDY_31)) {
            return Ok(Upgrade::None);
        }
        let Some(on_upgrade) = parts.extensions.remove::<OnUpgrade>() else {
            return Ok(Upgrade::None);
        };
        let protocols = parts
            .headers
            .get_all(PROTOCOL_HEADER)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect();
        Ok(Upgrade::Spdy(SpdyUpgrade {
            protocols,
            on_upgrade,
        }))
    }
}

/// A plain SPDY/3.1 upgrade request.
pub(crate) struct SpdyUpgrade {
    /// The client's `X-Stream-Protocol-Version` values, in its order.
    pub protocols: Vec<String>,
    on_upgrade: OnUpgrade,
}

impl SpdyUpgrade {
    /// The first of the client's protocols that `server` has (`default`
    /// when the client names none), or the `403` that says they share none.
    pub fn negotiate(
        &self,
        server: &[&'static str],
        default: Option<&'static str>,
    ) -> Result<&'static str, ApiError> {
        if self.protocols.is_empty() {
            if let Some(d) = default {
                return Ok(d);
            }
        }
        self.protocols
            .iter()
            .find_map(|c| server.iter().find(|s| **s == c.as_str()).copied())
            .ok_or_else(|| {
                status_error(
                    StatusCode::FORBIDDEN,
                    "Forbidden",
                    format!(
                        "unable to upgrade: unable to negotiate protocol: client supports {:?}, server supports {:?}",
                        self.protocols, server
                    ),
                )
            })
    }

    /// Answers `101` with `protocol` and runs `session` on the connection
    /// once the client has it.
    pub fn on_upgrade<F, Fut>(self, protocol: &'static str, session: F) -> Response
    where
        F: FnOnce(SpdyIo) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let on_upgrade = self.on_upgrade;
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => session(TokioIo::new(upgraded)).await,
                Err(e) => tracing::debug!(error = %e, "SPDY upgrade failed"),
            }
        });
        let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
        let h = response.headers_mut();
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static(SPDY_31));
        h.insert(PROTOCOL_HEADER, HeaderValue::from_static(protocol));
        response
    }
}

/// The reads of `read` as a stream of byte chunks, ending at end of input or
/// at the first error.
pub fn reads<R: AsyncRead + Unpin + Send + 'static>(read: R) -> BoxStream<'static, Bytes> {
    futures_util::stream::unfold(read, |mut read| async move {
        let mut buf = BytesMut::with_capacity(READ);
        match read.read_buf(&mut buf).await {
            Ok(0) | Err(_) => None,
            Ok(_) => Some((buf.freeze(), read)),
        }
    })
    .boxed()
}

/// Writes the frames from `frames` to `write` — each as it is (no copy),
/// one flush per batch of what is queued — until the channel closes or a write fails, then
/// shuts the write side down.
pub async fn write_frames<W: AsyncWrite + Unpin>(
    mut write: W,
    mut frames: mpsc::Receiver<Vec<u8>>,
) {
    while let Some(frame) = frames.recv().await {
        let mut written = frame.len();
        if write.write_all(&frame).await.is_err() {
            return;
        }
        while written < BATCH {
            let Ok(frame) = frames.try_recv() else { break };
            written += frame.len();
            if write.write_all(&frame).await.is_err() {
                return;
            }
        }
        if write.flush().await.is_err() {
            return;
        }
    }
    let _ = write.shutdown().await;
}
