//! Actions on a running container, shared by lifecycle hooks and probes.
//!
//! One runner ([`run`]) for every action a `LifecycleHandler` or a `Probe`
//! can name:
//!
//! * `exec` through the runtime (Docker exec), rkubelet enforcing the timeout;
//! * `httpGet` from the host to the pod IP (the host's for `hostNetwork`
//!   pods, or `host` when given), 200 ≤ status < 400 is success;
//! * `tcpSocket`: a connection opens in time;
//! * `grpc`: `grpc.health.v1.Health/Check` over cleartext HTTP/2, `SERVING`
//!   is success — a minimal client, as one RPC needs no gRPC stack;
//! * `sleep`: waits, never longer than the timeout.
//!
//! Named ports are resolved against the container's `ports`. Every action
//! ends within its timeout. Hooks and probes differ where the kubelet's do,
//! chosen by [`Purpose`]: a probe's `httpGet` sends `User-Agent: kube-probe/…`
//! without keep-alive, follows redirects only on the same host (a redirect
//! elsewhere is a success with a warning) and reads at most 10 KiB of body;
//! a hook's uses the plain client, which follows redirects. Hooks take
//! `exec`, `httpGet` and `sleep` ([`run_hook`], whose [`HookError`] is the
//! event's message); probes take `exec`, `httpGet`, `tcpSocket` and `grpc`
//! (the prober words its own failure output from the [`ActionError`]).
//! Because actions run from the host they work in images without a shell.

use std::time::Duration;

use k8s_openapi::api::core::v1::{
    Container, ExecAction, GRPCAction, HTTPGetAction, LifecycleHandler, Probe, SleepAction,
    TCPSocketAction,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::probe_http;
use crate::runtime::{ContainerRuntime, RuntimeError};

/// The most of an HTTP probe's body that is read.
const HTTP_BODY_LIMIT: usize = 10 * 1024;
/// Redirects a probe follows (on the same host) before giving up.
const MAX_REDIRECTS: usize = 10;

/// Where an action runs: the container and its pod's address.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub container_id: &'a str,
    pub container: &'a Container,
    /// The pod IP (sandbox IP, or the host's for hostNetwork pods).
    pub pod_ip: &'a str,
}

/// Who runs an action: the few differences between hooks and probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Hook,
    Probe,
}

/// One action of a hook or a probe.
#[derive(Debug, Clone, Copy)]
pub enum Action<'a> {
    Exec(&'a ExecAction),
    HttpGet(&'a HTTPGetAction),
    TcpSocket(&'a TCPSocketAction),
    Grpc(&'a GRPCAction),
    Sleep(&'a SleepAction),
}

impl<'a> Action<'a> {
    /// A lifecycle hook's action: `exec`, `httpGet` or `sleep` (the
    /// deprecated `tcpSocket` is not run), `None` when it names none.
    pub fn of_hook(handler: &'a LifecycleHandler) -> Option<Self> {
        let h = handler;
        (h.exec.as_ref().map(Action::Exec))
            .or_else(|| h.http_get.as_ref().map(Action::HttpGet))
            .or_else(|| h.sleep.as_ref().map(Action::Sleep))
    }

    /// A probe's action: `exec`, `httpGet`, `tcpSocket` or `grpc`, `None`
    /// when it names none.
    pub fn of_probe(probe: &'a Probe) -> Option<Self> {
        let p = probe;
        (p.exec.as_ref().map(Action::Exec))
            .or_else(|| p.http_get.as_ref().map(Action::HttpGet))
            .or_else(|| p.tcp_socket.as_ref().map(Action::TcpSocket))
            .or_else(|| p.grpc.as_ref().map(Action::Grpc))
    }
}

/// A port that cannot be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    #[error("invalid port {0}")]
    Invalid(i32),
    #[error("no port named {name:?} in container {container:?}")]
    NoSuchName { name: String, container: String },
}

/// Why an action failed. The messages are those of the hook events (the
/// kubelet's); the prober words a few of them its own way.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ActionError {
    #[error(transparent)]
    Port(#[from] PortError),
    #[error("cannot build an HTTP client: {reason}")]
    Client { reason: String },
    #[error("exec {command:?} failed: {source}")]
    Exec {
        command: Vec<String>,
        source: RuntimeError,
    },
    #[error("command {command:?} timed out after {}", humantime::format_duration(*after))]
    ExecTimedOut {
        command: Vec<String>,
        after: Duration,
    },
    #[error("command {command:?} exited with {}: {output}", exit_code_text(*code))]
    ExitCode {
        command: Vec<String>,
        code: Option<i64>,
        /// The command's output, trailing whitespace trimmed.
        output: String,
    },
    /// The request got no answer.
    #[error("Get {url:?}: {reason}")]
    Request { url: String, reason: String },
    #[error("HTTP lifecycle hook ({url}) for Container {container:?} returned status {code}")]
    HttpStatus {
        url: String,
        container: String,
        code: u16,
    },
    #[error("Get {url:?}: stopped after {MAX_REDIRECTS} redirects")]
    TooManyRedirects { url: String },
    #[error("dial tcp {addr}: {reason}")]
    Dial { addr: String, reason: String },
    #[error("timeout: failed to connect service {addr:?} within {}: context deadline exceeded", humantime::format_duration(*after))]
    GrpcTimeout { addr: String, after: Duration },
    #[error("error: failed to connect service at {addr:?}: {reason}")]
    GrpcConnect { addr: String, reason: String },
    #[error("error: health rpc failed: rpc error: code = {code} desc = {message}")]
    GrpcStatus { code: String, message: String },
    #[error("error: health rpc failed: {reason}")]
    GrpcBody { reason: String },
    #[error("service unhealthy (responded with {status:?})")]
    NotServing { status: &'static str },
    #[error("error: health rpc returned an unreadable response")]
    GrpcUnreadable,
}

fn exit_code_text(code: Option<i64>) -> String {
    code.map_or("no exit code".to_string(), |c| c.to_string())
}

/// A lifecycle hook that failed, about the container it ran for. Its
/// message is the `FailedPostStartHook` / `FailedPreStopHook` event's.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HookError {
    #[error("{source}")]
    Failed {
        container: String,
        source: ActionError,
    },
    #[error("the hook has no exec, httpGet or sleep action")]
    NoAction { container: String },
}

/// What a successful action may add.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Success {
    /// A success with a caveat (a probe's redirect to another host).
    pub warning: Option<String>,
}

/// Resolves a numeric or named port against the container's ports.
pub fn resolve_port(port: &IntOrString, container: &Container) -> Result<u16, PortError> {
    match port {
        IntOrString::Int(n) => u16::try_from(*n)
            .ok()
            .filter(|p| *p > 0)
            .ok_or(PortError::Invalid(*n)),
        IntOrString::String(name) => {
            if let Ok(n) = name.parse::<u16>() {
                return Ok(n);
            }
            container
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .and_then(|p| u16::try_from(p.container_port).ok())
                .ok_or_else(|| PortError::NoSuchName {
                    name: name.clone(),
                    container: container.name.clone(),
                })
        }
    }
}

/// The URL an `httpGet` action targets.
pub fn http_url(action: &HTTPGetAction, target: &Target<'_>) -> Result<String, PortError> {
    let port = resolve_port(&action.port, target.container)?;
    let scheme = action
        .scheme
        .as_deref()
        .unwrap_or("HTTP")
        .to_ascii_lowercase();
    let host = action
        .host
        .as_deref()
        .filter(|h| !h.is_empty())
        .unwrap_or(target.pod_ip);
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    let path = action.path.as_deref().unwrap_or("/");
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    Ok(format!("{scheme}://{host}:{port}{path}"))
}

/// Runs a lifecycle hook within `timeout`. Fails with the event's message
/// when the action fails or the hook names none.
pub async fn run_hook(
    runtime: &dyn ContainerRuntime,
    handler: &LifecycleHandler,
    target: Target<'_>,
    timeout: Duration,
) -> Result<(), HookError> {
    let container = || target.container.name.clone();
    let Some(action) = Action::of_hook(handler) else {
        return Err(HookError::NoAction {
            container: container(),
        });
    };
    match run(runtime, action, target, timeout, Purpose::Hook).await {
        Ok(_) => Ok(()),
        Err(source) => Err(HookError::Failed {
            container: container(),
            source,
        }),
    }
}

/// Runs one action against `target`, bounded by `timeout`.
pub async fn run(
    runtime: &dyn ContainerRuntime,
    action: Action<'_>,
    target: Target<'_>,
    timeout: Duration,
    purpose: Purpose,
) -> Result<Success, ActionError> {
    match action {
        Action::Exec(exec) => run_exec(runtime, exec, target, timeout).await,
        Action::HttpGet(http) => {
            let url = http_url(http, &target)?;
            let headers: Vec<(&str, &str)> = http
                .http_headers
                .iter()
                .flatten()
                .map(|h| (h.name.as_str(), h.value.as_str()))
                .collect();
            http_get(&url, &headers, target.container, timeout, purpose).await
        }
        Action::TcpSocket(tcp) => {
            let port = resolve_port(&tcp.port, target.container)?;
            let host = tcp
                .host
                .as_deref()
                .filter(|h| !h.is_empty())
                .unwrap_or(target.pod_ip);
            tcp_connect(&format!("{host}:{port}"), timeout).await
        }
        Action::Grpc(grpc) => {
            let service = grpc.service.as_deref().unwrap_or_default();
            let addr = format!("{}:{}", target.pod_ip, grpc.port);
            grpc_check(&addr, service, timeout).await
        }
        Action::Sleep(sleep) => {
            let wanted = Duration::from_secs(sleep.seconds.max(0) as u64);
            tokio::time::sleep(wanted.min(timeout)).await;
            Ok(Success::default())
        }
    }
}

async fn run_exec(
    runtime: &dyn ContainerRuntime,
    exec: &ExecAction,
    target: Target<'_>,
    timeout: Duration,
) -> Result<Success, ActionError> {
    let command = exec.command.clone().unwrap_or_default();
    let result = match runtime.exec(target.container_id, &command, timeout).await {
        Ok(r) => r,
        Err(source) => return Err(ActionError::Exec { command, source }),
    };
    if result.timed_out {
        return Err(ActionError::ExecTimedOut {
            command,
            after: timeout,
        });
    }
    match result.exit_code {
        Some(0) => Ok(Success::default()),
        code => Err(ActionError::ExitCode {
            command,
            code,
            output: result.output.trim_end().to_string(),
        }),
    }
}

/// An HTTP client for an action: a probe's sends `kube-probe/…`, keeps no
/// connection and follows no redirect itself.
fn http_client(
    timeout: Duration,
    purpose: Purpose,
    http2: bool,
) -> Result<reqwest::Client, ActionError> {
    let mut b = crate::http_client::client_builder()
        .timeout(timeout)
        .danger_accept_invalid_certs(true);
    if purpose == Purpose::Probe {
        b = b
            .user_agent(PROBE_USER_AGENT)
            .pool_max_idle_per_host(0)
            .redirect(reqwest::redirect::Policy::none());
    }
    if http2 {
        b = b.http2_prior_knowledge();
    }
    b.build().map_err(|e| ActionError::Client {
        reason: e.to_string(),
    })
}

/// The `User-Agent` of a probe's requests.
const PROBE_USER_AGENT: &str = concat!("kube-probe/", env!("CARGO_PKG_VERSION"));

/// An `httpGet`: 200 ≤ status < 400 is success. A probe follows redirects
/// only on the same host and reads at most 10 KiB of body; a hook's
/// client follows them itself.
async fn http_get(
    url: &str,
    headers: &[(&str, &str)],
    container: &Container,
    timeout: Duration,
    purpose: Purpose,
) -> Result<Success, ActionError> {
    if purpose == Purpose::Probe {
        return probe_get(url, headers, container, timeout).await;
    }
    let client = http_client(timeout, purpose, false)?;
    let mut req = client.get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.map_err(|e| ActionError::Request {
        url: url.to_string(),
        reason: e.to_string(),
    })?;
    status_outcome(url.to_string(), container, resp.status().as_u16())
}

/// 200 ≤ `code` < 400 is success.
fn status_outcome(url: String, container: &Container, code: u16) -> Result<Success, ActionError> {
    if (200..400).contains(&code) {
        Ok(Success::default())
    } else {
        Err(ActionError::HttpStatus {
            url,
            container: container.name.clone(),
            code,
        })
    }
}

/// A probe's `httpGet`, the kubelet's way: a fresh connection per request,
/// same-host redirects followed, a redirect elsewhere (or without a
/// location) a success with a warning carrying the body.
async fn probe_get(
    url: &str,
    headers: &[(&str, &str)],
    container: &Container,
    timeout: Duration,
) -> Result<Success, ActionError> {
    let mut url = url.to_string();
    for _ in 0..MAX_REDIRECTS {
        let parsed = url::Url::parse(&url).map_err(|e| ActionError::Request {
            url: url.clone(),
            reason: e.to_string(),
        })?;
        let resp = probe_request(&parsed, headers, timeout).await?;
        if (300..400).contains(&resp.status) {
            let next = resp
                .location
                .as_deref()
                .and_then(|l| parsed.join(l).ok())
                .filter(|next| next.host_str() == parsed.host_str());
            if let Some(next) = next {
                url = next.to_string();
                continue;
            }
            // As the kubelet's HTTP prober: a redirect it does not follow
            // (off-host or without a location) ends the probe with a warning
            // carrying the body.
            return Ok(Success {
                warning: Some(format!(
                    "Probe terminated redirects, Response body: {}",
                    String::from_utf8_lossy(&resp.body)
                )),
            });
        }
        return status_outcome(url, container, resp.status);
    }
    Err(ActionError::TooManyRedirects { url })
}

/// One request of a probe: plain HTTP over its own small client
/// ([`super::probe_http`]), HTTPS through the full one. The body is read
/// (≤ 10 KiB) only for a redirect, which may carry it in a warning.
async fn probe_request(
    url: &url::Url,
    headers: &[(&str, &str)],
    timeout: Duration,
) -> Result<probe_http::Response, ActionError> {
    let request_error = |reason: String| ActionError::Request {
        url: url.to_string(),
        reason,
    };
    if url.scheme() == "http" {
        let host = url.host_str().unwrap_or_default();
        let port = url.port_or_known_default().unwrap_or(80);
        let host_port = format!("{host}:{port}");
        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        };
        let resp = probe_http::get(
            &host_port,
            &path,
            PROBE_USER_AGENT,
            headers,
            HTTP_BODY_LIMIT,
            timeout,
        )
        .await
        .map_err(|e| request_error(e.to_string()))?;
        return Ok(resp);
    }
    let client = http_client(timeout, Purpose::Probe, false)?;
    let mut req = client.get(url.as_str()).header("Accept", "*/*");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut resp = req.send().await.map_err(|e| {
        request_error(if e.is_timeout() {
            "context deadline exceeded (Client.Timeout exceeded)".to_string()
        } else {
            e.to_string()
        })
    })?;
    let location = resp
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .map(str::to_string);
    let body = if resp.status().is_redirection() {
        read_body(&mut resp).await
    } else {
        Vec::new()
    };
    Ok(probe_http::Response {
        status: resp.status().as_u16(),
        location,
        body,
    })
}

/// At most [`HTTP_BODY_LIMIT`] bytes of a response's body; a body that
/// cannot be read further ends early.
async fn read_body(resp: &mut reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < HTTP_BODY_LIMIT {
        match resp.chunk().await {
            Ok(Some(c)) => body.extend_from_slice(&c),
            _ => break,
        }
    }
    body.truncate(HTTP_BODY_LIMIT);
    body
}

/// A `tcpSocket` action: a connection to `addr` opens in time.
async fn tcp_connect(addr: &str, timeout: Duration) -> Result<Success, ActionError> {
    let dial = |reason: String| ActionError::Dial {
        addr: addr.to_string(),
        reason,
    };
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
        Ok(Ok(_)) => Ok(Success::default()),
        Ok(Err(e)) => Err(dial(e.to_string())),
        Err(_) => Err(dial("i/o timeout".to_string())),
    }
}

/// Encodes a `grpc.health.v1.HealthCheckRequest` as one length-prefixed gRPC message.
pub fn grpc_health_request(service: &str) -> Vec<u8> {
    let mut msg = Vec::new();
    if !service.is_empty() {
        msg.push(0x0a); // field 1, length-delimited
        let mut n = service.len();
        while n >= 0x80 {
            msg.push((n as u8) | 0x80);
            n >>= 7;
        }
        msg.push(n as u8);
        msg.extend_from_slice(service.as_bytes());
    }
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    frame.extend_from_slice(&msg);
    frame
}

/// Decodes the serving status from a `grpc.health.v1.HealthCheckResponse`
/// gRPC frame (`UNKNOWN` = 0, `SERVING` = 1, `NOT_SERVING` = 2, …).
pub fn grpc_health_status(frame: &[u8]) -> Option<u64> {
    if frame.len() < 5 || frame[0] != 0 {
        return None;
    }
    let len = u32::from_be_bytes([frame[1], frame[2], frame[3], frame[4]]) as usize;
    let msg = frame.get(5..5 + len)?;
    let mut i = 0;
    let mut status = 0;
    while i < msg.len() {
        let tag = msg[i];
        i += 1;
        let varint = |i: &mut usize| -> Option<u64> {
            let mut v = 0u64;
            for shift in (0..64).step_by(7) {
                let b = *msg.get(*i)?;
                *i += 1;
                v |= u64::from(b & 0x7f) << shift;
                if b & 0x80 == 0 {
                    return Some(v);
                }
            }
            None
        };
        match tag & 0x07 {
            0 => {
                let v = varint(&mut i)?;
                if tag >> 3 == 1 {
                    status = v;
                }
            }
            2 => {
                let n = varint(&mut i)? as usize;
                i += n;
            }
            _ => return None,
        }
    }
    Some(status)
}

fn serving_status_name(s: u64) -> &'static str {
    match s {
        0 => "UNKNOWN",
        1 => "SERVING",
        2 => "NOT_SERVING",
        3 => "SERVICE_UNKNOWN",
        _ => "INVALID",
    }
}

/// A `grpc` action: a health check over cleartext HTTP/2.
async fn grpc_check(addr: &str, service: &str, timeout: Duration) -> Result<Success, ActionError> {
    let client = http_client(timeout, Purpose::Probe, true)?;
    let url = format!("http://{addr}/grpc.health.v1.Health/Check");
    let sent = client
        .post(&url)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(grpc_health_request(service))
        .send()
        .await;
    let resp = match sent {
        Ok(r) => r,
        Err(e) if e.is_timeout() => {
            return Err(ActionError::GrpcTimeout {
                addr: addr.to_string(),
                after: timeout,
            })
        }
        Err(e) => {
            return Err(ActionError::GrpcConnect {
                addr: addr.to_string(),
                reason: e.to_string(),
            })
        }
    };
    // A trailers-only answer carries the gRPC status in the headers.
    if let Some(code) = resp
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
    {
        if code != "0" {
            let message = resp
                .headers()
                .get("grpc-message")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            return Err(ActionError::GrpcStatus {
                code: code.to_string(),
                message: message.to_string(),
            });
        }
    }
    let body = resp.bytes().await.map_err(|e| ActionError::GrpcBody {
        reason: e.to_string(),
    })?;
    match grpc_health_status(&body) {
        Some(1) => Ok(Success::default()),
        Some(s) => Err(ActionError::NotServing {
            status: serving_status_name(s),
        }),
        None => Err(ActionError::GrpcUnreadable),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ContainerPort;

    fn container() -> Container {
        Container {
            name: "web".into(),
            ports: Some(vec![ContainerPort {
                name: Some("http".into()),
                container_port: 8080,
                ..Default::default()
            }]),
            ..Default::default()
        }
    }

    #[test]
    fn named_and_numeric_ports_resolve() {
        let c = container();
        assert_eq!(
            resolve_port(&IntOrString::String("http".into()), &c),
            Ok(8080)
        );
        assert_eq!(resolve_port(&IntOrString::Int(81), &c), Ok(81));
        assert_eq!(resolve_port(&IntOrString::String("82".into()), &c), Ok(82));
        assert!(resolve_port(&IntOrString::String("nope".into()), &c).is_err());
        assert!(resolve_port(&IntOrString::Int(0), &c).is_err());
    }

    #[test]
    fn http_urls_default_to_the_pod_ip_http_and_root() {
        let c = container();
        let t = Target {
            container_id: "x",
            container: &c,
            pod_ip: "172.17.0.2",
        };
        let mut a = HTTPGetAction {
            port: IntOrString::String("http".into()),
            ..Default::default()
        };
        assert_eq!(http_url(&a, &t).as_deref(), Ok("http://172.17.0.2:8080/"));
        a.host = Some("127.0.0.1".into());
        a.path = Some("healthz".into());
        a.scheme = Some("HTTPS".into());
        assert_eq!(
            http_url(&a, &t).as_deref(),
            Ok("https://127.0.0.1:8080/healthz")
        );
        let t6 = Target {
            pod_ip: "fd00::2",
            ..t
        };
        a.host = None;
        assert_eq!(
            http_url(&a, &t6).as_deref(),
            Ok("https://[fd00::2]:8080/healthz")
        );
    }

    #[tokio::test]
    async fn exec_hooks_fail_on_a_non_zero_exit_and_sleep_hooks_are_bounded() {
        use crate::runtime::fake::FakeRuntime;
        use crate::runtime::{ContainerRuntime, SandboxConfig};
        let fake = FakeRuntime::new();
        let labels = crate::runtime::labels::PodRef {
            name: "p".into(),
            namespace: "default".into(),
            uid: "u".into(),
            source: String::new(),
            grace_period_seconds: 1,
            workload_generation: None,
        }
        .sandbox_labels(0);
        let id = fake
            .run_sandbox(&SandboxConfig {
                name: "s".into(),
                labels,
                ..Default::default()
            })
            .await
            .expect("sandbox");
        let c = container();
        let t = Target {
            container_id: &id,
            container: &c,
            pod_ip: "10.0.0.2",
        };
        let exec = |cmd: &str| LifecycleHandler {
            exec: Some(ExecAction {
                command: Some(vec![cmd.into()]),
            }),
            ..Default::default()
        };
        let d = Duration::from_secs(1);
        assert!(run_hook(&fake, &exec("true"), t, d).await.is_ok());
        let failed = run_hook(&fake, &exec("false"), t, d).await;
        assert!(
            matches!(
                &failed,
                Err(HookError::Failed {
                    source: ActionError::ExitCode { .. },
                    ..
                })
            ),
            "{failed:?}"
        );
        let sleep = LifecycleHandler {
            sleep: Some(SleepAction { seconds: 60 }),
            ..Default::default()
        };
        let started = std::time::Instant::now();
        assert!(run_hook(&fake, &sleep, t, Duration::from_millis(50))
            .await
            .is_ok());
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn a_hook_without_an_action_fails_naming_what_it_lacks() {
        let fake = crate::runtime::fake::FakeRuntime::new();
        let c = container();
        let t = Target {
            container_id: "x",
            container: &c,
            pod_ip: "10.0.0.2",
        };
        let e = run_hook(
            &fake,
            &LifecycleHandler::default(),
            t,
            Duration::from_secs(1),
        )
        .await
        .expect_err("no action");
        assert_eq!(
            e.to_string(),
            "the hook has no exec, httpGet or sleep action"
        );
    }

    #[test]
    fn hooks_take_exec_http_and_sleep_and_probes_take_tcp_and_grpc_too() {
        let tcp = TCPSocketAction {
            port: IntOrString::Int(80),
            ..Default::default()
        };
        let hook = LifecycleHandler {
            tcp_socket: Some(tcp.clone()),
            ..Default::default()
        };
        assert!(Action::of_hook(&hook).is_none());
        let probe = Probe {
            tcp_socket: Some(tcp),
            ..Default::default()
        };
        assert!(matches!(
            Action::of_probe(&probe),
            Some(Action::TcpSocket(_))
        ));
    }

    /// The kubelet's `DoHTTPProbe` (pkg/probe/http/http.go) returns
    /// `probe.Warning` with "Probe terminated redirects, Response body: …"
    /// for a redirect it does not follow; the prober (pkg/kubelet/prober)
    /// records it as a `ProbeWarning` event.
    #[tokio::test]
    async fn a_redirect_off_host_is_a_warning_carrying_the_body() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.expect("accept");
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf).await;
            let body = "<a href=\"http://0.0.0.0/\">Found</a>.\n\n";
            let response = format!(
                "HTTP/1.1 302 Found\r\nLocation: http://0.0.0.0/\r\n\
                 Content-Type: text/html\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(response.as_bytes()).await;
        });
        let url = format!("http://{addr}/redirect");
        let outcome = http_get(
            &url,
            &[],
            &container(),
            Duration::from_secs(10),
            Purpose::Probe,
        )
        .await
        .expect("a redirect is no failure");
        let warning = outcome.warning.expect("a warning");
        assert!(
            warning.starts_with(
                "Probe terminated redirects, Response body: <a href=\"http://0.0.0.0/\">Found</a>."
            ),
            "{warning}"
        );
    }

    #[test]
    fn grpc_health_requests_encode_the_service_name() {
        assert_eq!(grpc_health_request(""), vec![0, 0, 0, 0, 0]);
        assert_eq!(
            grpc_health_request("db"),
            vec![0, 0, 0, 0, 4, 0x0a, 2, b'd', b'b']
        );
        let long = "s".repeat(200);
        let frame = grpc_health_request(&long);
        assert_eq!(&frame[5..8], &[0x0a, 0xc8, 0x01]);
        assert_eq!(frame.len(), 5 + 3 + 200);
    }

    #[test]
    fn grpc_health_responses_decode_the_serving_status() {
        assert_eq!(grpc_health_status(&[0, 0, 0, 0, 2, 0x08, 1]), Some(1));
        assert_eq!(grpc_health_status(&[0, 0, 0, 0, 2, 0x08, 2]), Some(2));
        // An empty message is the default: UNKNOWN.
        assert_eq!(grpc_health_status(&[0, 0, 0, 0, 0]), Some(0));
        // Compressed or truncated frames are not understood.
        assert_eq!(grpc_health_status(&[1, 0, 0, 0, 2, 0x08, 1]), None);
        assert_eq!(grpc_health_status(&[0, 0, 0, 0, 9, 0x08]), None);
    }
}
