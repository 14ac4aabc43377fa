//! The authenticated port's streaming verbs: `exec` and `attach` as kubectl
//! 1.32 speaks them (a WebSocket with subprotocol `v5.channel.k8s.io`, see
//! [`crate::k8s::remotecommand`]) and as it falls back to (a plain SPDY/3.1
//! upgrade, [`super::upgrade`], protocols `v4`/`v3`/`v2.channel.k8s.io`: one
//! client-opened SPDY stream per `streamType`), on top of the runtime's
//! streaming exec and attach.
//!
//! A session copies the client's stdin frames into the process's stdin
//! (closing it when the client closes channel 0), the process's output into
//! stdout/stderr frames, applies resize frames to the TTY, and when the
//! output ends sends the exit code as a `Status` on the error channel and
//! closes. A client that goes away before the command ends gets its exec
//! process killed, so nothing is left running in the container; an attach
//! just detaches.

use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::{SinkExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::spdy::{self, Decoder, Encoder, Frame};
use super::upgrade::{self, SpdyIo, Upgrade};
use super::{find_pod, status_error, ApiError, ApiState};
use crate::k8s::remotecommand::{self as rc, ClientFrame, StreamRequest};
use crate::runtime::{ContainerRuntime, StreamChunk, StreamOptions};

/// The verbs' routes.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route(
            "/api/v1/namespaces/{ns}/pods/{name}/exec",
            get(exec).post(exec),
        )
        .route(
            "/api/v1/namespaces/{ns}/pods/{name}/attach",
            get(attach).post(attach),
        )
        .merge(super::lifecycle::routes())
        .merge(super::cronjobs::secure_routes())
        .merge(super::portforward::routes())
}

/// What a client gets that asks for no upgrade (or an unknown one).
pub(crate) fn upgrade_required(verb: &str) -> Response {
    status_error(
        StatusCode::BAD_REQUEST,
        "BadRequest",
        format!("{verb} needs a WebSocket or SPDY/3.1 upgrade (as kubectl sends)"),
    )
    .into_response()
}

/// The container's Docker id, checked to exist and run.
fn running_container(pod: &Pod, container: Option<&str>) -> Result<(String, String), ApiError> {
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    let all: Vec<&str> = spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .map(|c| c.name.as_str())
        .collect();
    let name = match container {
        Some(c) => c.to_string(),
        None => spec
            .containers
            .first()
            .map(|c| c.name.clone())
            .unwrap_or_default(),
    };
    if !all.contains(&name.as_str()) {
        return Err(status_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!(
                "container {name:?} not found in pod {pod_name:?}, choose one of: [{}]",
                all.join(" ")
            ),
        ));
    }
    let status = pod.status.clone().unwrap_or_default();
    let running = status
        .container_statuses
        .iter()
        .flatten()
        .chain(status.init_container_statuses.iter().flatten())
        .find(|c| c.name == name)
        .filter(|c| c.state.as_ref().and_then(|s| s.running.as_ref()).is_some())
        .and_then(|c| c.container_id.clone());
    match running {
        Some(id) => Ok((name, id.trim_start_matches("docker://").to_string())),
        None => Err(status_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("container {name:?} in pod {pod_name:?} is not running"),
        )),
    }
}

/// What a session runs.
enum Target {
    Exec(Vec<String>),
    Attach,
}

async fn exec(
    state: State<ApiState>,
    path: Path<(String, String)>,
    query: Query<Vec<(String, String)>>,
    upgrade: Upgrade,
) -> Response {
    start(state, path, query, upgrade, true).await
}

async fn attach(
    state: State<ApiState>,
    path: Path<(String, String)>,
    query: Query<Vec<(String, String)>>,
    upgrade: Upgrade,
) -> Response {
    start(state, path, query, upgrade, false).await
}

async fn start(
    State(s): State<ApiState>,
    Path((ns, name)): Path<(String, String)>,
    Query(params): Query<Vec<(String, String)>>,
    upgrade: Upgrade,
    is_exec: bool,
) -> Response {
    let req = match StreamRequest::parse(&params, is_exec) {
        Ok(r) => r,
        Err(e) => return status_error(StatusCode::BAD_REQUEST, "BadRequest", e).into_response(),
    };
    let pod = match find_pod(&s, &ns, &name) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let (container, id) = match running_container(&pod, req.container.as_deref()) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let target = if is_exec {
        Target::Exec(req.command.clone())
    } else {
        Target::Attach
    };
    let runtime = s.runtime.clone();
    let shutdown = s.shutdown.clone();
    match upgrade {
        Upgrade::WebSocket(ws) => {
            let ws = ws.protocols([rc::PROTOCOL_V5, rc::PROTOCOL_V4]);
            let v5 = ws
                .selected_protocol()
                .is_some_and(|p| p.as_bytes() == rc::PROTOCOL_V5.as_bytes());
            tracing::info!(pod = %name, namespace = %ns, %container, exec = is_exec,
                command = ?req.command, tty = req.tty, "stream session");
            ws.on_upgrade(move |ws| async move {
                tokio::select! {
                    _ = session(ws, runtime, id, target, req, v5) => {}
                    _ = shutdown.cancelled() => {}
                }
            })
        }
        Upgrade::Spdy(spdy) => {
            let protocol = match spdy.negotiate(&rc::SPDY_PROTOCOLS, None) {
                Ok(p) => p,
                Err(refused) => return refused.into_response(),
            };
            tracing::info!(pod = %name, namespace = %ns, %container, exec = is_exec,
                command = ?req.command, tty = req.tty, protocol, "stream session (SPDY)");
            spdy.on_upgrade(protocol, move |io| async move {
                tokio::select! {
                    _ = spdy_session(io, runtime, id, target, req, protocol) => {}
                    _ = shutdown.cancelled() => {}
                }
            })
        }
        Upgrade::None => upgrade_required(if is_exec { "exec" } else { "attach" }),
    }
}

/// Runs one exec or attach over the WebSocket until the command ends or the
/// client goes away.
async fn session(
    ws: WebSocket,
    runtime: std::sync::Arc<dyn ContainerRuntime>,
    id: String,
    target: Target,
    req: StreamRequest,
    v5: bool,
) {
    tracing::debug!(v5, "stream session started");
    let (mut sink, mut source) = ws.split();
    let options = StreamOptions {
        stdin: req.stdin,
        stdout: req.stdout,
        stderr: req.stderr,
        tty: req.tty,
    };
    let started = match &target {
        Target::Exec(cmd) => runtime
            .exec_stream(&id, cmd, options)
            .await
            .map(|(exec_id, a)| (Some(exec_id), a)),
        Target::Attach => runtime.attach(&id, options).await.map(|a| (None, a)),
    };
    let (exec_id, attached) = match started {
        Ok(s) => s,
        Err(e) => {
            let status = rc::failure_status(&e.to_string());
            let _ = sink
                .send(Message::Binary(
                    rc::frame(rc::ERROR, status.to_string().as_bytes()).into(),
                ))
                .await;
            let _ = sink.send(normal_close()).await;
            return;
        }
    };
    let mut output = attached.output;
    let mut input = attached.input;

    // stdin: its own task, so a slow reader never stalls the output.
    let (stdin_tx, mut stdin_rx) = mpsc::channel::<Option<bytes::Bytes>>(64);
    let stdin_task = tokio::spawn(async move {
        while let Some(chunk) = stdin_rx.recv().await {
            match chunk {
                Some(data) => {
                    if input.write_all(&data).await.is_err() {
                        break;
                    }
                    let _ = input.flush().await;
                }
                None => break,
            }
        }
        let _ = input.shutdown().await;
        // Keep the write half until the session ends: dropping it early
        // would not matter for Docker, but shutting down twice is harmless.
        std::future::pending::<()>().await;
    });

    // Client frames: stdin, resize, close; the task ends when the client goes.
    let resize_runtime = runtime.clone();
    let resize_exec = exec_id.clone();
    let resize_container = id.clone();
    let tty = req.tty;
    let mut reader = tokio::spawn(async move {
        let mut stdin_open = true;
        while let Some(msg) = source.next().await {
            let data = match msg {
                Ok(Message::Binary(b)) => b,
                Ok(Message::Text(t)) => bytes::Bytes::from(t.as_str().as_bytes().to_vec()),
                Ok(Message::Close(_)) | Err(_) => break,
                Ok(_) => continue,
            };
            match rc::decode(&data) {
                ClientFrame::Stdin(bytes) if stdin_open && !bytes.is_empty() => {
                    let sent = stdin_tx
                        .send(Some(bytes::Bytes::copy_from_slice(bytes)))
                        .await;
                    stdin_open = sent.is_ok();
                }
                ClientFrame::Close(rc::STDIN) if stdin_open => {
                    stdin_open = false;
                    let _ = stdin_tx.send(None).await;
                }
                ClientFrame::Resize { width, height } if tty => {
                    let r = match &resize_exec {
                        Some(e) => resize_runtime.resize_exec(e, width, height).await,
                        None => {
                            resize_runtime
                                .resize_container(&resize_container, width, height)
                                .await
                        }
                    };
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "terminal resize failed");
                    }
                }
                _ => {}
            }
        }
    });

    // Output until the process's streams end, or the client goes.
    let mut client_gone = false;
    loop {
        tokio::select! {
            chunk = output.next() => match chunk {
                Some(Ok(StreamChunk::Stdout(b))) => {
                    if sink.send(Message::Binary(rc::frame(rc::STDOUT, &b).into())).await.is_err() {
                        client_gone = true;
                        break;
                    }
                }
                Some(Ok(StreamChunk::Stderr(b))) => {
                    let channel = if req.stderr { rc::STDERR } else { rc::STDOUT };
                    if sink.send(Message::Binary(rc::frame(channel, &b).into())).await.is_err() {
                        client_gone = true;
                        break;
                    }
                }
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "stream output failed");
                    break;
                }
                None => break,
            },
            _ = &mut reader => {
                client_gone = true;
                break;
            }
        }
    }
    if client_gone {
        if let Some(exec_id) = &exec_id {
            kill_exec(runtime.as_ref(), exec_id).await;
        }
        reader.abort();
        stdin_task.abort();
        return;
    }
    let status = match (&target, &exec_id) {
        (Target::Exec(cmd), Some(exec_id)) => {
            rc::exit_status(cmd, exit_code(runtime.as_ref(), exec_id).await)
        }
        _ => serde_json::json!({"metadata": {}, "status": "Success"}),
    };
    let _ = sink
        .send(Message::Binary(
            rc::frame(rc::ERROR, status.to_string().as_bytes()).into(),
        ))
        .await;
    let _ = sink.send(normal_close()).await;
    // Let the client read the close, then stop reading.
    let _ = tokio::time::timeout(Duration::from_secs(5), &mut reader).await;
    reader.abort();
    stdin_task.abort();
}

/// A normal closure (1000): kubectl reads it as the end of every channel.
fn normal_close() -> Message {
    Message::Close(Some(axum::extract::ws::CloseFrame {
        code: axum::extract::ws::close_code::NORMAL,
        reason: "".into(),
    }))
}

/// The exit code of a finished exec: Docker may report it a moment after the
/// output ends, so ask until it is known (a few seconds at most).
async fn exit_code(runtime: &dyn ContainerRuntime, exec_id: &str) -> Option<i64> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match runtime.exec_state(exec_id).await {
            Ok(st) if !st.running => return st.exit_code,
            Ok(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Ok(_) => return None,
            Err(e) => {
                tracing::debug!(error = %e, "exec inspect failed");
                return None;
            }
        }
    }
}

/// Kills an exec process whose client went away (Docker keeps it running).
async fn kill_exec(runtime: &dyn ContainerRuntime, exec_id: &str) {
    match runtime.exec_state(exec_id).await {
        Ok(st) if st.running => {
            if let Some(pid) = st.pid.and_then(|p| i32::try_from(p).ok()) {
                let r = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
                tracing::info!(exec = %exec_id, pid, ok = r.is_ok(), "client went away: killed its exec process");
            }
        }
        Ok(_) => {}
        Err(e) => tracing::debug!(error = %e, "exec inspect failed"),
    }
}

/// How long a SPDY client has to open the streams it asked for (the
/// kubelet's stream creation timeout).
const STREAM_CREATION: Duration = Duration::from_secs(30);

/// The streams of a SPDY exec or attach, by `streamType`.
#[derive(Default, Clone, Copy)]
struct SpdyStreams {
    error: Option<u32>,
    stdin: Option<u32>,
    stdout: Option<u32>,
    stderr: Option<u32>,
    resize: Option<u32>,
}

impl SpdyStreams {
    /// Whether every stream `req` needs in `protocol` is open.
    fn complete(&self, req: &StreamRequest, protocol: &str) -> bool {
        let resize = req.tty && protocol != rc::PROTOCOL_V2;
        self.error.is_some()
            && (!req.stdin || self.stdin.is_some())
            && (!req.stdout || self.stdout.is_some())
            && (!req.stderr || self.stderr.is_some())
            && (!resize || self.resize.is_some())
    }

    /// The slot of a `streamType`.
    fn slot(&mut self, kind: Option<&str>) -> Option<&mut Option<u32>> {
        match kind? {
            "error" => Some(&mut self.error),
            "stdin" => Some(&mut self.stdin),
            "stdout" => Some(&mut self.stdout),
            "stderr" => Some(&mut self.stderr),
            "resize" => Some(&mut self.resize),
            _ => None,
        }
    }
}

/// The next frame from a SPDY connection; `None` when it has ended or sent
/// something malformed.
async fn next_frame(
    decoder: &mut Decoder,
    input: &mut futures_util::stream::BoxStream<'static, bytes::Bytes>,
) -> Option<Frame> {
    loop {
        match decoder.next_frame() {
            Ok(Some(f)) => return Some(f),
            Ok(None) => {}
            Err(e) => {
                tracing::debug!(error = %e, "stream session: bad SPDY frame");
                return None;
            }
        }
        let bytes = input.next().await?;
        decoder.push(&bytes);
    }
}

/// Runs one exec or attach over a plain SPDY connection (kubectl's
/// fallback): waits for the client's streams (replying to each), then
/// copies stdin, resizes and output as the WebSocket session does, and ends
/// with the exit on the error stream and every stream closed.
async fn spdy_session(
    io: SpdyIo,
    runtime: std::sync::Arc<dyn ContainerRuntime>,
    id: String,
    target: Target,
    req: StreamRequest,
    protocol: &'static str,
) {
    let (read, write) = tokio::io::split(io);
    let mut input = upgrade::reads(read);
    let (out, out_rx) = mpsc::channel::<Vec<u8>>(256);
    let writer = tokio::spawn(upgrade::write_frames(write, out_rx));
    let mut decoder = Decoder::default();
    let mut encoder = Encoder::default();
    let mut streams = SpdyStreams::default();
    // Frames that came before every stream was open (none, from kubectl).
    let mut early = Vec::new();
    let opened = tokio::time::timeout(STREAM_CREATION, async {
        while !streams.complete(&req, protocol) {
            match next_frame(&mut decoder, &mut input).await {
                Some(Frame::SynStream {
                    stream_id, headers, ..
                }) => {
                    let kind = headers.get("streamtype").map(String::as_str);
                    let frame = match streams.slot(kind) {
                        Some(slot) if slot.is_none() => {
                            *slot = Some(stream_id);
                            match encoder.syn_reply(stream_id) {
                                Ok(f) => f,
                                Err(e) => {
                                    tracing::debug!(error = %e, "stream session: cannot reply");
                                    return false;
                                }
                            }
                        }
                        _ => spdy::rst_stream(stream_id, spdy::PROTOCOL_ERROR),
                    };
                    if out.send(frame).await.is_err() {
                        return false;
                    }
                }
                Some(Frame::Ping(ping)) => {
                    let _ = out.send(spdy::ping(ping)).await;
                }
                Some(Frame::GoAway) | None => return false,
                Some(f) => early.push(f),
            }
        }
        true
    })
    .await;
    if opened != Ok(true) {
        tracing::debug!("stream session: the client did not open its streams");
        drop(out);
        let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
        return;
    }
    let options = StreamOptions {
        stdin: req.stdin,
        stdout: req.stdout,
        stderr: req.stderr,
        tty: req.tty,
    };
    let started = match &target {
        Target::Exec(cmd) => runtime
            .exec_stream(&id, cmd, options)
            .await
            .map(|(exec_id, a)| (Some(exec_id), a)),
        Target::Attach => runtime.attach(&id, options).await.map(|a| (None, a)),
    };
    let finish = |status: serde_json::Value| {
        let mut frames = Vec::new();
        for s in [streams.stdout, streams.stderr].into_iter().flatten() {
            frames.push(spdy::data(s, &[], true));
        }
        if let Some(e) = streams.error {
            frames.push(spdy::data(
                e,
                &rc::spdy_error_payload(protocol, &status),
                true,
            ));
        }
        frames.concat()
    };
    let (exec_id, attached) = match started {
        Ok(s) => s,
        Err(e) => {
            let _ = out.send(finish(rc::failure_status(&e.to_string()))).await;
            drop(out);
            let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
            return;
        }
    };
    let mut output = attached.output;
    let mut input_stdin = attached.input;

    let (stdin_tx, mut stdin_rx) = mpsc::channel::<Option<Vec<u8>>>(64);
    let stdin_task = tokio::spawn(async move {
        while let Some(Some(data)) = stdin_rx.recv().await {
            if input_stdin.write_all(&data).await.is_err() {
                break;
            }
            let _ = input_stdin.flush().await;
        }
        let _ = input_stdin.shutdown().await;
        std::future::pending::<()>().await;
    });

    // Client frames: stdin, resizes, pings; the task ends when the client goes.
    let resize_runtime = runtime.clone();
    let resize_exec = exec_id.clone();
    let resize_container = id.clone();
    let pings = out.clone();
    let mut reader = tokio::spawn(async move {
        let mut stdin_open = true;
        let mut sizes = Vec::new();
        let mut early = early.into_iter();
        loop {
            let frame = match early.next() {
                Some(f) => f,
                None => match next_frame(&mut decoder, &mut input).await {
                    Some(f) => f,
                    None => break,
                },
            };
            match frame {
                Frame::Data {
                    stream_id,
                    data,
                    fin,
                } if Some(stream_id) == streams.stdin => {
                    if stdin_open && !data.is_empty() {
                        stdin_open = stdin_tx.send(Some(data)).await.is_ok();
                    }
                    if fin && stdin_open {
                        stdin_open = false;
                        let _ = stdin_tx.send(None).await;
                    }
                }
                Frame::Data {
                    stream_id, data, ..
                } if Some(stream_id) == streams.resize => {
                    sizes.extend_from_slice(&data);
                    for (width, height) in rc::take_resizes(&mut sizes) {
                        let r = match &resize_exec {
                            Some(e) => resize_runtime.resize_exec(e, width, height).await,
                            None => {
                                resize_runtime
                                    .resize_container(&resize_container, width, height)
                                    .await
                            }
                        };
                        if let Err(e) = r {
                            tracing::debug!(error = %e, "terminal resize failed");
                        }
                    }
                }
                Frame::SynStream { stream_id, .. } => {
                    let _ = pings
                        .send(spdy::rst_stream(stream_id, spdy::PROTOCOL_ERROR))
                        .await;
                }
                Frame::Ping(ping) => {
                    let _ = pings.send(spdy::ping(ping)).await;
                }
                Frame::GoAway => break,
                _ => {}
            }
        }
    });

    // Output until the process's streams end, or the client goes.
    let mut client_gone = false;
    loop {
        tokio::select! {
            chunk = output.next() => {
                let (stream, bytes) = match chunk {
                    Some(Ok(StreamChunk::Stdout(b))) => (streams.stdout, b),
                    Some(Ok(StreamChunk::Stderr(b))) => (streams.stderr.or(streams.stdout), b),
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "stream output failed");
                        break;
                    }
                    None => break,
                };
                let Some(stream) = stream else { continue };
                if out.send(spdy::data(stream, &bytes, false)).await.is_err() {
                    client_gone = true;
                    break;
                }
            },
            _ = &mut reader => {
                client_gone = true;
                break;
            }
        }
    }
    if client_gone {
        if let Some(exec_id) = &exec_id {
            kill_exec(runtime.as_ref(), exec_id).await;
        }
    } else {
        let status = match (&target, &exec_id) {
            (Target::Exec(cmd), Some(exec_id)) => {
                rc::exit_status(cmd, exit_code(runtime.as_ref(), exec_id).await)
            }
            _ => serde_json::json!({"metadata": {}, "status": "Success"}),
        };
        let _ = out.send(finish(status)).await;
    }
    // What is queued is written, then the connection is closed: the client
    // reads every stream to its end.
    reader.abort();
    stdin_task.abort();
    drop(out);
    let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
}
