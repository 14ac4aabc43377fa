//! The prober: one task per (container, probe kind), run from the host.
//!
//! Handlers: `exec` through the runtime with rkubelet's own timeout;
//! `httpGet` from the host to the pod IP (no keep-alive, redirects followed
//! only on the same host — a redirect elsewhere is a success with a
//! `ProbeWarning`, at most 10 KiB of body read, `User-Agent: kube-probe/…`);
//! `tcpSocket` (a connection opens in time); `grpc` (`grpc.health.v1.Health/
//! Check` over cleartext HTTP/2, `SERVING` is success — a minimal client, as
//! one RPC needs no gRPC stack). Because probes run from the host they work
//! in images without a shell.
//!
//! Semantics as the kubelet's: liveness and readiness wait for the startup
//! probe; once startup succeeds readiness is checked at once; `initialDelay`
//! counts from the container's start; after an rkubelet restart the first run
//! is jittered within one period. A changed result is stored in [`Results`]
//! and wakes the pod worker, which kills on liveness/startup failure and
//! reports readiness. Every failure records an `Unhealthy` event.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::jiff::Timestamp;
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

use super::hooks::{http_url, resolve_port, Target};
use crate::events::{Involved, Recorder};
use crate::k8s::probe::ProbeReport;
use crate::pod::probe::{Kind, Params, ProbeResult, Tracker};
use crate::runtime::{ContainerInfo, ContainerRuntime};

/// The most of an HTTP probe's body that is read.
const HTTP_BODY_LIMIT: usize = 10 * 1024;

/// What one probe run found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub success: bool,
    /// Failure output or message (trimmed, bounded).
    pub output: String,
    /// A success with a caveat (`ProbeWarning`).
    pub warning: Option<String>,
}

impl Outcome {
    fn ok() -> Self {
        Outcome {
            success: true,
            output: String::new(),
            warning: None,
        }
    }
    fn fail(output: impl Into<String>) -> Self {
        Outcome {
            success: false,
            output: output.into(),
            warning: None,
        }
    }
}

/// Probe results by container id, shared with the worker.
#[derive(Debug, Default)]
pub struct Results {
    map: Mutex<HashMap<(String, Kind), (ProbeResult, ProbeReport)>>,
}

impl Results {
    fn set(&self, id: &str, kind: Kind, result: ProbeResult, report: ProbeReport) {
        if let Ok(mut m) = self.map.lock() {
            m.insert((id.to_string(), kind), (result, report));
        }
    }
    fn forget(&self, id: &str) {
        if let Ok(mut m) = self.map.lock() {
            m.retain(|(cid, _), _| cid != id);
        }
    }
    /// The current result of a container's probe, if it has one.
    pub fn get(&self, id: &str, kind: Kind) -> Option<ProbeResult> {
        self.map
            .lock()
            .ok()?
            .get(&(id.to_string(), kind))
            .map(|(r, _)| *r)
    }
    /// Every probe's last report, by container and kind.
    pub fn reports(&self) -> Vec<ProbeReport> {
        let mut v: Vec<ProbeReport> = self
            .map
            .lock()
            .map(|m| m.values().map(|(_, r)| r.clone()).collect())
            .unwrap_or_default();
        v.sort_by(|a, b| (&a.container, &a.kind).cmp(&(&b.container, &b.kind)));
        v
    }
}

/// Runs one probe once, bounded by `timeout`.
pub async fn run_probe(
    runtime: &dyn ContainerRuntime,
    probe: &Probe,
    target: Target<'_>,
    timeout: Duration,
) -> Outcome {
    if let Some(exec) = &probe.exec {
        let cmd = exec.command.clone().unwrap_or_default();
        return match runtime.exec(target.container_id, &cmd, timeout).await {
            Err(e) => Outcome::fail(format!("exec failed: {e}")),
            Ok(r) if r.timed_out => Outcome::fail(format!(
                "command {cmd:?} timed out after {}",
                humantime::format_duration(timeout)
            )),
            Ok(r) if r.exit_code == Some(0) => Outcome::ok(),
            Ok(r) => Outcome::fail(r.output.trim_end().to_string()),
        };
    }
    if let Some(action) = &probe.http_get {
        let url = match http_url(action, &target) {
            Ok(u) => u,
            Err(e) => return Outcome::fail(e),
        };
        let headers: Vec<(String, String)> = action
            .http_headers
            .iter()
            .flatten()
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect();
        return http_probe(&url, &headers, timeout).await;
    }
    if let Some(tcp) = &probe.tcp_socket {
        let port = match resolve_port(&tcp.port, target.container) {
            Ok(p) => p,
            Err(e) => return Outcome::fail(e),
        };
        let host = tcp
            .host
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| target.pod_ip.to_string());
        let addr = format!("{host}:{port}");
        return match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&addr)).await {
            Ok(Ok(_)) => Outcome::ok(),
            Ok(Err(e)) => Outcome::fail(format!("dial tcp {addr}: {e}")),
            Err(_) => Outcome::fail(format!("dial tcp {addr}: i/o timeout")),
        };
    }
    if let Some(grpc) = &probe.grpc {
        let service = grpc.service.clone().unwrap_or_default();
        let addr = format!("{}:{}", target.pod_ip, grpc.port);
        return grpc_probe(&addr, &service, timeout).await;
    }
    Outcome::fail("the probe has no handler")
}

fn probe_client(timeout: Duration, http2: bool) -> Result<reqwest::Client, String> {
    let mut b = crate::http_client::client_builder()
        .user_agent(concat!("kube-probe/", env!("CARGO_PKG_VERSION")))
        .timeout(timeout)
        .pool_max_idle_per_host(0)
        .danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::none());
    if http2 {
        b = b.http2_prior_knowledge();
    }
    b.build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))
}

/// An HTTP probe: redirects are followed only on the same host.
async fn http_probe(url: &str, headers: &[(String, String)], timeout: Duration) -> Outcome {
    let client = match probe_client(timeout, false) {
        Ok(c) => c,
        Err(e) => return Outcome::fail(e),
    };
    let mut url = url.to_string();
    for _ in 0..10 {
        let mut req = client.get(&url).header("Accept", "*/*");
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let mut resp = match req.send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => {
                return Outcome::fail(format!(
                    "Get {url:?}: context deadline exceeded (Client.Timeout exceeded)"
                ))
            }
            Err(e) => return Outcome::fail(format!("Get {url:?}: {e}")),
        };
        let status = resp.status();
        if status.is_redirection() {
            let next = resp
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .and_then(|l| resp.url().join(l).ok());
            let Some(next) = next else {
                return Outcome::ok();
            };
            if next.host_str() != resp.url().host_str() {
                let mut o = Outcome::ok();
                o.warning = Some(format!(
                    "Probe terminated redirects, Response body: (redirect to {next})"
                ));
                return o;
            }
            url = next.to_string();
            continue;
        }
        // Read at most 10 KiB of body.
        let mut body = Vec::new();
        while body.len() < HTTP_BODY_LIMIT {
            match resp.chunk().await {
                Ok(Some(c)) => {
                    body.extend_from_slice(&c[..c.len().min(HTTP_BODY_LIMIT - body.len())])
                }
                _ => break,
            }
        }
        let code = status.as_u16();
        return if (200..400).contains(&code) {
            Outcome::ok()
        } else {
            Outcome::fail(format!("HTTP probe failed with statuscode: {code}"))
        };
    }
    Outcome::fail(format!("Get {url:?}: stopped after 10 redirects"))
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

/// A gRPC health probe over cleartext HTTP/2.
async fn grpc_probe(addr: &str, service: &str, timeout: Duration) -> Outcome {
    let client = match probe_client(timeout, true) {
        Ok(c) => c,
        Err(e) => return Outcome::fail(e),
    };
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
            return Outcome::fail(format!(
                "timeout: failed to connect service {addr:?} within {}: context deadline exceeded",
                humantime::format_duration(timeout)
            ))
        }
        Err(e) => {
            return Outcome::fail(format!("error: failed to connect service at {addr:?}: {e}"))
        }
    };
    // A trailers-only answer carries the gRPC status in the headers.
    if let Some(code) = resp
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
    {
        if code != "0" {
            let msg = resp
                .headers()
                .get("grpc-message")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            return Outcome::fail(format!(
                "error: health rpc failed: rpc error: code = {code} desc = {msg}"
            ));
        }
    }
    let body = match resp.bytes().await {
        Ok(b) => b,
        Err(e) => return Outcome::fail(format!("error: health rpc failed: {e}")),
    };
    match grpc_health_status(&body) {
        Some(1) => Outcome::ok(),
        Some(s) => Outcome::fail(format!(
            "service unhealthy (responded with {:?})",
            serving_status_name(s)
        )),
        None => Outcome::fail("error: health rpc returned an unreadable response"),
    }
}

/// A random duration below `max` (for jitter).
fn jitter(max: Duration) -> Duration {
    let r = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    Duration::from_millis(r % (max.as_millis().max(1) as u64))
}

/// Everything a probe task needs.
#[derive(Clone)]
pub struct ProbeContext {
    pub runtime: Arc<dyn ContainerRuntime>,
    pub recorder: Arc<Recorder>,
    pub involved: Involved,
    pub wake: Arc<Notify>,
    pub results: Arc<Results>,
}

/// Owns the probe tasks of one pod.
pub struct Prober {
    ctx: ProbeContext,
    /// Container id → cancels its tasks.
    tasks: BTreeMap<String, CancellationToken>,
    /// Probes of containers that were already running when the prober began
    /// (after an rkubelet restart) start with jitter.
    first_sync: bool,
}

impl Prober {
    pub fn new(ctx: ProbeContext) -> Self {
        Prober {
            ctx,
            tasks: BTreeMap::new(),
            first_sync: true,
        }
    }

    pub fn results(&self) -> &Arc<Results> {
        &self.ctx.results
    }

    /// Starts tasks for running containers with probes, stops those of
    /// containers that stopped.
    pub fn sync(&mut self, specs: &[(Container, bool)], observed: &[ContainerInfo], pod_ip: &str) {
        let adopted = std::mem::replace(&mut self.first_sync, false);
        let running: BTreeMap<&str, &ContainerInfo> = observed
            .iter()
            .filter(|c| c.is_running() && c.meta().is_some_and(|m| !m.is_sandbox))
            .map(|c| (c.id.as_str(), c))
            .collect();
        let gone: Vec<String> = self
            .tasks
            .keys()
            .filter(|id| !running.contains_key(id.as_str()))
            .cloned()
            .collect();
        for id in gone {
            if let Some(t) = self.tasks.remove(&id) {
                t.cancel();
            }
            self.ctx.results.forget(&id);
        }
        for (id, info) in running {
            if self.tasks.contains_key(id) {
                continue;
            }
            let Some(meta) = info.meta() else { continue };
            let Some((spec, init)) = specs.iter().find(|(c, _)| c.name == meta.container_name)
            else {
                continue;
            };
            let probed = [Kind::Startup, Kind::Liveness, Kind::Readiness]
                .into_iter()
                .filter(|k| k.of(spec).is_some())
                .collect::<Vec<_>>();
            if probed.is_empty() || (*init && !crate::pod::plan::is_sidecar(spec)) {
                continue;
            }
            let cancel = CancellationToken::new();
            let (started_tx, started_rx) = watch::channel(spec.startup_probe.is_none());
            let started_tx = Arc::new(started_tx);
            for kind in probed {
                let task = ProbeTask {
                    ctx: self.ctx.clone(),
                    kind,
                    container: spec.clone(),
                    init: *init,
                    container_id: id.to_string(),
                    pod_ip: pod_ip.to_string(),
                    started_at: info.started_at,
                    adopted,
                    started_tx: started_tx.clone(),
                    started_rx: started_rx.clone(),
                };
                let cancel = cancel.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        _ = cancel.cancelled() => {}
                        _ = task.run() => {}
                    }
                });
            }
            self.tasks.insert(id.to_string(), cancel);
        }
    }

    /// Stops every probe (pod termination).
    pub fn stop_all(&mut self) {
        for (id, t) in std::mem::take(&mut self.tasks) {
            t.cancel();
            self.ctx.results.forget(&id);
        }
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        self.stop_all();
    }
}

struct ProbeTask {
    ctx: ProbeContext,
    kind: Kind,
    container: Container,
    init: bool,
    container_id: String,
    pod_ip: String,
    started_at: Option<Timestamp>,
    adopted: bool,
    started_tx: Arc<watch::Sender<bool>>,
    started_rx: watch::Receiver<bool>,
}

impl ProbeTask {
    async fn run(mut self) {
        let Some(probe) = self.kind.of(&self.container).cloned() else {
            return;
        };
        let params = Params::of(&probe);
        let mut tracker = Tracker::new(self.kind, params);
        self.report(tracker.result(), None);
        // Liveness and readiness wait for the startup probe.
        if self.kind != Kind::Startup && self.started_rx.wait_for(|s| *s).await.is_err() {
            return;
        }
        // initialDelaySeconds counts from the container's start.
        let since_start = self
            .started_at
            .and_then(|s| Duration::try_from(Timestamp::now().duration_since(s)).ok())
            .unwrap_or_default();
        let mut delay = params.initial_delay.saturating_sub(since_start);
        if self.adopted && delay.is_zero() {
            delay = jitter(params.period);
        }
        tokio::time::sleep(delay).await;
        let involved = self.ctx.involved.container(&self.container.name, self.init);
        loop {
            let target = Target {
                container_id: &self.container_id,
                container: &self.container,
                pod_ip: &self.pod_ip,
            };
            let outcome =
                run_probe(self.ctx.runtime.as_ref(), &probe, target, params.timeout).await;
            if let Some(w) = &outcome.warning {
                self.ctx.recorder.warning(
                    &involved,
                    "ProbeWarning",
                    format!("{} probe warning: {w}", self.kind.name()),
                );
            }
            if !outcome.success {
                self.ctx.recorder.warning(
                    &involved,
                    "Unhealthy",
                    format!("{} probe failed: {}", self.kind.name(), outcome.output),
                );
            }
            let changed = tracker.observe(outcome.success);
            self.report(tracker.result(), Some(&outcome));
            if let Some(result) = changed {
                self.ctx.wake.notify_one();
                match (self.kind, result) {
                    // The worker kills the container; nothing more to probe.
                    (Kind::Liveness | Kind::Startup, ProbeResult::Failure) => return,
                    (Kind::Startup, ProbeResult::Success) => {
                        self.started_tx.send_replace(true);
                        return;
                    }
                    _ => {}
                }
            }
            tokio::time::sleep(params.period).await;
        }
    }

    fn report(&self, result: ProbeResult, outcome: Option<&Outcome>) {
        let report = ProbeReport {
            container: self.container.name.clone(),
            kind: self.kind.name().to_string(),
            result: format!("{result:?}"),
            last_probe: outcome.map(|_| Timestamp::now().to_string()),
            last_output: outcome
                .map(|o| o.output.chars().take(1024).collect())
                .unwrap_or_default(),
        };
        self.ctx
            .results
            .set(&self.container_id, self.kind, result, report);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn jitter_stays_below_the_period() {
        for _ in 0..100 {
            assert!(jitter(Duration::from_secs(1)) < Duration::from_secs(1));
        }
    }
}
