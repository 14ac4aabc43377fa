//! The authenticated port's `port-forward`, as kubectl 1.32 speaks it: a
//! WebSocket with subprotocol `SPDY/3.1+portforward.k8s.io` carrying a SPDY
//! connection ([`super::spdy`]). For each forwarded connection kubectl opens
//! two streams with the same `requestID` — `streamType: error` and
//! `streamType: data` with the `port` — and rkubelet connects to the pod's IP
//! on that port from the host, copies bytes both ways on the data stream,
//! half-closes each direction as its side does, and ends the error stream
//! (with a message when the connection cannot be made).
//! kubectl's fallback — a plain SPDY upgrade with protocol
//! `portforward.k8s.io` ([`super::upgrade`]), what it sends with
//! `KUBECTL_PORT_FORWARD_WEBSOCKETS=false` — carries the same SPDY
//! connection directly and is served the same way.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::spdy::{self, Decoder, Encoder, Frame};
use super::stream::upgrade_required;
use super::upgrade::{self, SpdyIo, Upgrade, BATCH};
use super::{find_pod, status_error, ApiState};

/// The WebSocket subprotocol of SPDY tunnelled over a WebSocket.
pub const PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";
/// The protocol of port-forward on a plain SPDY upgrade.
pub const SPDY_PROTOCOL: &str = "portforward.k8s.io";
/// The most data in one DATA frame rkubelet sends (one read from the pod).
const CHUNK: usize = 128 * 1024;

/// The route.
pub fn routes() -> Router<ApiState> {
    Router::new().route(
        "/api/v1/namespaces/{ns}/pods/{name}/portforward",
        get(portforward).post(portforward),
    )
}

async fn portforward(
    State(s): State<ApiState>,
    Path((ns, name)): Path<(String, String)>,
    Query(params): Query<Vec<(String, String)>>,
    upgrade: Upgrade,
) -> Response {
    let pod = match find_pod(&s, &ns, &name) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    for (k, v) in &params {
        if k == "ports"
            && v.split(',')
                .any(|p| p.trim().parse::<u16>().map_or(true, |p| p == 0))
        {
            return status_error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                format!("invalid port {v:?}: ports must be 1-65535"),
            )
            .into_response();
        }
    }
    let ip: Option<IpAddr> = pod
        .status
        .as_ref()
        .and_then(|st| st.pod_ip.as_deref())
        .and_then(|ip| ip.parse().ok());
    let Some(ip) = ip else {
        return status_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("pod {name:?} has no IP address yet (is it running?)"),
        )
        .into_response();
    };
    let shutdown = s.shutdown.clone();
    match upgrade {
        Upgrade::WebSocket(ws) => {
            tracing::info!(pod = %name, namespace = %ns, %ip, "port-forward session");
            ws.protocols([PROTOCOL]).on_upgrade(move |ws| async move {
                tokio::select! {
                    _ = websocket_session(ws, ip) => {}
                    _ = shutdown.cancelled() => {}
                }
            })
        }
        Upgrade::Spdy(spdy) => {
            let protocol = match spdy.negotiate(&[SPDY_PROTOCOL], Some(SPDY_PROTOCOL)) {
                Ok(p) => p,
                Err(refused) => return refused.into_response(),
            };
            tracing::info!(pod = %name, namespace = %ns, %ip, "port-forward session (SPDY)");
            spdy.on_upgrade(protocol, move |io| async move {
                tokio::select! {
                    _ = spdy_session(io, ip) => {}
                    _ = shutdown.cancelled() => {}
                }
            })
        }
        Upgrade::None => upgrade_required("port-forward"),
    }
}

/// The two streams of one forwarded connection.
#[derive(Default)]
struct Pair {
    data: Option<u32>,
    error: Option<u32>,
    port: u16,
    started: bool,
}

/// A data stream's bytes from the client: `Some(bytes)`, or `None` at FIN.
type ClientData = mpsc::Sender<Option<Vec<u8>>>;

async fn websocket_session(ws: WebSocket, ip: IpAddr) {
    let (mut sink, source) = ws.split();
    let (out, mut out_rx) = mpsc::channel::<Vec<u8>>(256);
    let writer = tokio::spawn(async move {
        // Each frame is one WebSocket message (kubectl reads the messages
        // as one byte stream); what is queued is fed without a flush and
        // flushed once: no copy into a batch buffer, and one flush of the
        // TLS stream per batch.
        'send: while let Some(frame) = out_rx.recv().await {
            let mut queued = frame.len();
            if sink.feed(Message::Binary(frame.into())).await.is_err() {
                break;
            }
            while queued < BATCH {
                let Ok(frame) = out_rx.try_recv() else { break };
                queued += frame.len();
                if sink.feed(Message::Binary(frame.into())).await.is_err() {
                    break 'send;
                }
            }
            if sink.flush().await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let input = source
        .take_while(|m| std::future::ready(matches!(m, Ok(m) if !matches!(m, Message::Close(_)))))
        .filter_map(|m| {
            std::future::ready(match m {
                Ok(Message::Binary(b)) => Some(b),
                _ => None,
            })
        })
        .boxed();
    serve(input, out, ip).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
}

/// A port-forward on a plain SPDY connection.
async fn spdy_session(io: SpdyIo, ip: IpAddr) {
    let (read, write) = tokio::io::split(io);
    let (out, out_rx) = mpsc::channel::<Vec<u8>>(256);
    let writer = tokio::spawn(upgrade::write_frames(write, out_rx));
    serve(upgrade::reads(read), out, ip).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
}

/// Serves the SPDY connection whose bytes come in as `input` and whose
/// frames go out through `out`, until the client goes away.
async fn serve(mut input: BoxStream<'static, Bytes>, out: mpsc::Sender<Vec<u8>>, ip: IpAddr) {
    let mut decoder = Decoder::default();
    let mut encoder = Encoder::default();
    let mut pairs: HashMap<String, Pair> = HashMap::new();
    let mut streams: HashMap<u32, ClientData> = HashMap::new();
    let mut connections = tokio::task::JoinSet::new();
    'read: while let Some(bytes) = input.next().await {
        decoder.push(&bytes);
        loop {
            let frame = match decoder.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(error = %e, "port-forward: bad SPDY frame");
                    let _ = out.send(spdy::goaway(0)).await;
                    break 'read;
                }
            };
            match frame {
                Frame::SynStream {
                    stream_id, headers, ..
                } => {
                    let port = headers.get("port").and_then(|p| p.parse::<u16>().ok());
                    let kind = headers.get("streamtype").map(String::as_str);
                    let (Some(port), Some(kind @ ("data" | "error"))) = (port, kind) else {
                        let _ = out
                            .send(spdy::rst_stream(stream_id, spdy::PROTOCOL_ERROR))
                            .await;
                        continue;
                    };
                    match encoder.syn_reply(stream_id) {
                        Ok(f) => {
                            let _ = out.send(f).await;
                        }
                        Err(e) => {
                            tracing::debug!(error = %e, "port-forward: cannot reply");
                            break 'read;
                        }
                    }
                    let request = headers.get("requestid").cloned().unwrap_or_default();
                    let pair = pairs.entry(request.clone()).or_default();
                    pair.port = port;
                    if kind == "data" {
                        pair.data = Some(stream_id);
                    } else {
                        pair.error = Some(stream_id);
                    }
                    if let (Some(data), Some(error), false) = (pair.data, pair.error, pair.started)
                    {
                        pair.started = true;
                        let (tx, rx) = mpsc::channel(64);
                        streams.insert(data, tx);
                        connections.spawn(forward(ip, port, data, error, rx, out.clone()));
                        pairs.remove(&request);
                    }
                }
                Frame::Data {
                    stream_id,
                    data,
                    fin,
                } => {
                    if let Some(tx) = streams.get(&stream_id) {
                        if !data.is_empty() && tx.send(Some(data)).await.is_err() {
                            streams.remove(&stream_id);
                            continue;
                        }
                        if fin {
                            let _ = tx.send(None).await;
                        }
                    }
                }
                Frame::RstStream { stream_id, .. } => {
                    streams.remove(&stream_id);
                }
                Frame::Ping(id) => {
                    let _ = out.send(spdy::ping(id)).await;
                }
                Frame::GoAway => break 'read,
                Frame::Ignored => {}
            }
            // Forget connections that have finished.
            streams.retain(|_, tx| !tx.is_closed());
        }
    }
    drop(streams);
    connections.abort_all();
}

/// One forwarded connection: the pod's `ip:port` and the two streams.
async fn forward(
    ip: IpAddr,
    port: u16,
    data: u32,
    error: u32,
    mut from_client: mpsc::Receiver<Option<Vec<u8>>>,
    out: mpsc::Sender<Vec<u8>>,
) {
    let connect = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect((ip, port)));
    let tcp = match connect.await {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => return refuse(&out, data, error, ip, port, &e.to_string()).await,
        Err(_) => return refuse(&out, data, error, ip, port, "timed out").await,
    };
    let _ = tcp.set_nodelay(true);
    let (mut read, mut write) = tcp.into_split();
    let up = async {
        while let Some(chunk) = from_client.recv().await {
            match chunk {
                Some(bytes) => {
                    if write.write_all(&bytes).await.is_err() {
                        break;
                    }
                }
                None => {
                    let _ = write.shutdown().await;
                }
            }
        }
    };
    let down = async {
        loop {
            // Read straight behind room for the DATA frame's header: the
            // buffer becomes the frame, with no copy.
            let mut frame = Vec::with_capacity(spdy::DATA_HEADER + CHUNK);
            frame.resize(spdy::DATA_HEADER, 0);
            match read.read_buf(&mut frame).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    spdy::finish_data(&mut frame, data, false);
                    if out.send(frame).await.is_err() {
                        return;
                    }
                }
            }
        }
        let _ = out.send(spdy::data(data, &[], true)).await;
        let _ = out.send(spdy::data(error, &[], true)).await;
    };
    tokio::select! {
        _ = down => {}
        _ = up => {}
    }
}

/// The pod's port cannot be reached: say why on the error stream, end both.
async fn refuse(
    out: &mpsc::Sender<Vec<u8>>,
    data: u32,
    error: u32,
    ip: IpAddr,
    port: u16,
    why: &str,
) {
    let message = format!("error forwarding port {port} to pod {ip}: {why}");
    let _ = out.send(spdy::data(error, message.as_bytes(), true)).await;
    let _ = out.send(spdy::data(data, &[], true)).await;
}
