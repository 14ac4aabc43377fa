//! Is the container runtime answering?
//!
//! [`RuntimeHealth`] is fed by every runtime call ([`Monitored`] wraps the
//! real runtime and reports each answer) and by the events watcher (stream
//! connected or not). It turns that into:
//!
//! * one log line when an outage begins and one when it ends (never a
//!   warning per worker per failed call);
//! * the `runtime` check of `/healthz`: failing once the runtime has been
//!   unreachable for longer than [`UNHEALTHY_AFTER`];
//! * a "recovered" signal ([`RuntimeHealth::recovered`]) on which the events
//!   watcher reconnects, the relist runs and every pod worker retries at
//!   once, their runtime-error backoff reset;
//! * [`probe_while_down`], which asks the runtime for its version every
//!   [`PROBE_WHILE_DOWN`] step while it is down, so the recovery is noticed
//!   within a second whatever the outage's length.
//!
//! Any answer from the daemon, an error included, counts as "answering";
//! only [`RuntimeError::Unavailable`] (transport failures, timeouts) counts
//! as an outage. It decides nothing about pods.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{
    Attached, ContainerConfig, ContainerInfo, ContainerRuntime, ContainerStats, ExecResult,
    ExecState, ImageInfo, LogOptions, PullProgressFn, Result, RuntimeError, RuntimeEvent,
    SandboxConfig, StreamOptions,
};
use crate::backoff::Retry;

/// Plain `/healthz` fails once the runtime has been unreachable this long.
pub const UNHEALTHY_AFTER: Duration = Duration::from_secs(10);

/// Probing a runtime that is down: 250 ms, then every 500 ms.
pub const PROBE_WHILE_DOWN: Retry =
    Retry::new(Duration::from_millis(250), Duration::from_millis(500));

/// An outage ends once the runtime has answered for at least this long with
/// no failure in between (the prober asks every 500 ms while it is down).
/// While Docker shuts down, some requests are still answered between
/// refused ones, for seconds under load: one answer after a quiet moment is
/// not a recovery, or one outage would be logged as several.
pub const QUIET_TO_RECOVER: Duration = Duration::from_millis(400);

#[derive(Debug, Default)]
struct State {
    last_ok: Option<Instant>,
    /// When the current outage began; `None` while the runtime answers.
    down_since: Option<Instant>,
    /// The last call that could not reach the runtime.
    last_unreachable: Option<Instant>,
    /// The first answer since the last failure.
    answering_since: Option<Instant>,
    last_error: Option<String>,
    events_connected: bool,
    version: Option<String>,
}

/// What `/healthz` says about the runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The check fails: unreachable longer than [`UNHEALTHY_AFTER`].
    pub failing: bool,
    /// A problem short of failing (a short outage, the events stream down).
    pub degraded: bool,
    /// One line, without the `[+]runtime` prefix.
    pub message: String,
}

/// The runtime's reachability, shared by everything that calls it.
#[derive(Debug)]
pub struct RuntimeHealth {
    state: Mutex<State>,
    /// Bumped each time the runtime answers again after an outage.
    recovered: watch::Sender<u64>,
    /// Wakes [`probe_while_down`] when an outage begins.
    went_down: Notify,
}

impl Default for RuntimeHealth {
    fn default() -> Self {
        RuntimeHealth {
            state: Mutex::new(State::default()),
            recovered: watch::channel(0).0,
            went_down: Notify::new(),
        }
    }
}

impl RuntimeHealth {
    pub fn new() -> Arc<Self> {
        Arc::new(RuntimeHealth::default())
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        match self.state.lock() {
            Ok(mut s) => f(&mut s),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// The runtime answered (any answer, an error included). It ends an
    /// outage once it has answered for [`QUIET_TO_RECOVER`] with no failure
    /// in between.
    pub fn answered(&self) {
        let now = Instant::now();
        let ended = self.with(|s| {
            s.last_ok = Some(now);
            let since = *s.answering_since.get_or_insert(now);
            let steady = s.last_unreachable.is_none()
                || now.saturating_duration_since(since) >= QUIET_TO_RECOVER;
            if steady {
                s.down_since.take()
            } else {
                None
            }
        });
        if let Some(since) = ended {
            let outage = now.saturating_duration_since(since);
            tracing::warn!(outage = ?outage, "the container runtime answers again; resyncing every pod");
            self.recovered.send_modify(|n| *n += 1);
        }
    }

    /// The runtime answered before anything depended on it (at start): the
    /// outage ends without a log line or a recovery signal.
    pub fn note_answered(&self) {
        self.with(|s| {
            s.last_ok = Some(Instant::now());
            s.down_since = None;
        });
    }

    /// The runtime could not be reached.
    pub fn unreachable(&self, error: &RuntimeError) {
        if self.note_unreachable(error) {
            tracing::warn!(error = %error,
                "the container runtime is unreachable; pods keep running as they are, retrying until it answers");
        }
    }

    /// [`unreachable`](Self::unreachable) without the log line (the caller
    /// says it its own way); returns whether an outage began.
    pub fn note_unreachable(&self, error: &RuntimeError) -> bool {
        let began = self.with(|s| {
            s.last_error = Some(error.to_string());
            s.last_unreachable = Some(Instant::now());
            s.answering_since = None;
            if s.down_since.is_none() {
                s.down_since = Some(Instant::now());
                true
            } else {
                false
            }
        });
        if began {
            self.went_down.notify_one();
        }
        began
    }

    /// Records the outcome of a runtime call.
    pub fn observe<T>(&self, result: &Result<T>) {
        match result {
            Err(e @ RuntimeError::Unavailable(_)) => self.unreachable(e),
            _ => self.answered(),
        }
    }

    /// The events stream was (re)subscribed, or broke.
    pub fn set_events_connected(&self, connected: bool) {
        self.with(|s| s.events_connected = connected);
    }

    /// The runtime's version, for the check's message.
    pub fn set_version(&self, version: &str) {
        self.with(|s| s.version = Some(version.to_string()));
    }

    /// Whether an outage is going on.
    pub fn is_down(&self) -> bool {
        self.with(|s| s.down_since.is_some())
    }

    /// Changes each time the runtime answers again after an outage.
    pub fn recovered(&self) -> watch::Receiver<u64> {
        self.recovered.subscribe()
    }

    /// The `/healthz` check of the runtime, now.
    pub fn check(&self) -> Check {
        let now = Instant::now();
        self.with(|s| {
            let runtime = s.version.as_deref().unwrap_or("container runtime");
            if let Some(since) = s.down_since {
                let down = now.saturating_duration_since(since);
                let failing = down > UNHEALTHY_AFTER;
                return Check {
                    failing,
                    degraded: true,
                    message: format!(
                        "{runtime} unreachable for {:.1}s (healthz fails after {}s): {}",
                        down.as_secs_f64(),
                        UNHEALTHY_AFTER.as_secs(),
                        s.last_error.as_deref().unwrap_or("no answer"),
                    ),
                };
            }
            let last = s
                .last_ok
                .map(|t| {
                    format!(
                        "last answer {:.1}s ago",
                        now.saturating_duration_since(t).as_secs_f64()
                    )
                })
                .unwrap_or_else(|| "no call yet".into());
            let events = if s.events_connected {
                "events stream connected"
            } else {
                "events stream not connected"
            };
            Check {
                failing: false,
                degraded: !s.events_connected,
                message: format!("{runtime} ok, {last}, {events}"),
            }
        })
    }
}

/// While the runtime is down, asks it for its version (through `runtime`,
/// which reports to `health`) with a short, capped backoff, so its return is
/// noticed at once. Sleeps while the runtime answers. Runs until `shutdown`.
pub async fn probe_while_down(
    runtime: Arc<dyn ContainerRuntime>,
    health: Arc<RuntimeHealth>,
    shutdown: CancellationToken,
) {
    loop {
        if !health.is_down() {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = health.went_down.notified() => {}
            }
        }
        let mut retry = PROBE_WHILE_DOWN;
        while health.is_down() {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(retry.next_delay()) => {}
            }
            let answer = runtime.version().await;
            if let Err(e) = &answer {
                tracing::debug!(error = %e, "the container runtime is still unreachable");
            }
        }
    }
}

/// A [`ContainerRuntime`] that reports every answer to a [`RuntimeHealth`].
pub struct Monitored {
    inner: Arc<dyn ContainerRuntime>,
    health: Arc<RuntimeHealth>,
}

impl Monitored {
    pub fn new(inner: Arc<dyn ContainerRuntime>, health: Arc<RuntimeHealth>) -> Self {
        Monitored { inner, health }
    }

    fn seen<T>(&self, result: Result<T>) -> Result<T> {
        self.health.observe(&result);
        result
    }
}

#[async_trait]
impl ContainerRuntime for Monitored {
    async fn version(&self) -> Result<String> {
        let r = self.inner.version().await;
        self.seen(r)
    }
    async fn list_containers(&self, pod_uid: Option<&str>) -> Result<Vec<ContainerInfo>> {
        let r = self.inner.list_containers(pod_uid).await;
        self.seen(r)
    }
    async fn list_brief(&self, pod_uid: Option<&str>) -> Result<Vec<ContainerInfo>> {
        let r = self.inner.list_brief(pod_uid).await;
        self.seen(r)
    }
    async fn inspect_container(&self, id: &str) -> Result<Option<ContainerInfo>> {
        let r = self.inner.inspect_container(id).await;
        self.seen(r)
    }
    async fn inspect_image(&self, image: &str) -> Result<Option<ImageInfo>> {
        let r = self.inner.inspect_image(image).await;
        self.seen(r)
    }
    async fn pull_image(&self, image: &str) -> Result<ImageInfo> {
        let r = self.inner.pull_image(image).await;
        self.seen(r)
    }
    async fn pull_image_with_auth(
        &self,
        image: &str,
        auth: Option<&crate::registry::RegistryAuth>,
        progress: &PullProgressFn<'_>,
    ) -> Result<ImageInfo> {
        let r = self.inner.pull_image_with_auth(image, auth, progress).await;
        self.seen(r)
    }
    async fn ensure_infra_image(&self, image: &str) -> Result<ImageInfo> {
        let r = self.inner.ensure_infra_image(image).await;
        self.seen(r)
    }
    async fn run_sandbox(&self, config: &SandboxConfig) -> Result<String> {
        let r = self.inner.run_sandbox(config).await;
        self.seen(r)
    }
    async fn create_container(&self, config: &ContainerConfig) -> Result<String> {
        let r = self.inner.create_container(config).await;
        self.seen(r)
    }
    async fn start_container(&self, id: &str) -> Result<()> {
        let r = self.inner.start_container(id).await;
        self.seen(r)
    }
    async fn stop_container(&self, id: &str, grace: Duration) -> Result<()> {
        let r = self.inner.stop_container(id, grace).await;
        self.seen(r)
    }
    async fn remove_container(&self, id: &str) -> Result<()> {
        let r = self.inner.remove_container(id).await;
        self.seen(r)
    }
    async fn exec(&self, id: &str, cmd: &[String], timeout: Duration) -> Result<ExecResult> {
        let r = self.inner.exec(id, cmd, timeout).await;
        self.seen(r)
    }
    async fn stats(&self, id: &str) -> Result<ContainerStats> {
        let r = self.inner.stats(id).await;
        self.seen(r)
    }
    async fn exec_stream(
        &self,
        id: &str,
        cmd: &[String],
        options: StreamOptions,
    ) -> Result<(String, Attached)> {
        let r = self.inner.exec_stream(id, cmd, options).await;
        self.seen(r)
    }
    async fn exec_state(&self, exec_id: &str) -> Result<ExecState> {
        let r = self.inner.exec_state(exec_id).await;
        self.seen(r)
    }
    async fn resize_exec(&self, exec_id: &str, width: u16, height: u16) -> Result<()> {
        let r = self.inner.resize_exec(exec_id, width, height).await;
        self.seen(r)
    }
    async fn attach(&self, id: &str, options: StreamOptions) -> Result<Attached> {
        let r = self.inner.attach(id, options).await;
        self.seen(r)
    }
    async fn resize_container(&self, id: &str, width: u16, height: u16) -> Result<()> {
        let r = self.inner.resize_container(id, width, height).await;
        self.seen(r)
    }
    fn logs(&self, id: &str, options: LogOptions) -> BoxStream<'static, Result<bytes::Bytes>> {
        self.inner.logs(id, options)
    }
    /// The events watcher reports the stream's state itself.
    fn events(&self, since_nanos: Option<i64>) -> BoxStream<'static, Result<RuntimeEvent>> {
        self.inner.events(since_nanos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::fake::FakeRuntime;

    fn down() -> RuntimeError {
        RuntimeError::Unavailable("connection refused".into())
    }

    #[tokio::test(start_paused = true)]
    async fn a_short_outage_degrades_the_check_and_a_long_one_fails_it() {
        let h = RuntimeHealth::new();
        h.set_version("docker://20.10");
        h.set_events_connected(true);
        h.answered();
        let c = h.check();
        assert!(!c.failing && !c.degraded, "{c:?}");
        assert!(c.message.contains("events stream connected"), "{c:?}");

        h.unreachable(&down());
        let c = h.check();
        assert!(!c.failing && c.degraded, "{c:?}");
        assert!(c.message.contains("connection refused"), "{c:?}");

        tokio::time::advance(UNHEALTHY_AFTER + Duration::from_secs(1)).await;
        let c = h.check();
        assert!(c.failing, "{c:?}");
        assert!(c.message.contains("unreachable for 11"), "{c:?}");

        h.answered();
        assert!(h.is_down(), "one answer is not yet a recovery");
        tokio::time::advance(QUIET_TO_RECOVER).await;
        h.answered();
        assert!(!h.is_down());
        assert!(!h.check().failing);
    }

    #[tokio::test(start_paused = true)]
    async fn only_unavailable_counts_as_an_outage_and_recovery_is_signalled_once() {
        let h = RuntimeHealth::new();
        let mut recovered = h.recovered();
        h.observe::<()>(&Err(RuntimeError::NotFound("container x".into())));
        assert!(!h.is_down());
        h.observe::<()>(&Err(down()));
        h.observe::<()>(&Err(down()));
        assert!(h.is_down());
        assert!(!recovered.has_changed().expect("open"));
        // An answer right after a failure (an old connection) is not a recovery.
        h.observe(&Ok(()));
        assert!(h.is_down());
        // Answers between failures while Docker shuts down are not either.
        tokio::time::advance(QUIET_TO_RECOVER).await;
        h.observe::<()>(&Err(down()));
        h.observe(&Ok(()));
        assert!(h.is_down());
        tokio::time::advance(QUIET_TO_RECOVER / 2).await;
        h.observe(&Ok(()));
        assert!(h.is_down());
        // Answering with no failure for QUIET_TO_RECOVER: over.
        tokio::time::advance(QUIET_TO_RECOVER / 2).await;
        h.observe(&Ok(()));
        h.observe(&Ok(()));
        assert!(!h.is_down());
        assert!(recovered.has_changed().expect("open"));
        assert_eq!(*recovered.borrow_and_update(), 1);
    }

    #[tokio::test]
    async fn a_disconnected_events_stream_degrades_the_check() {
        let h = RuntimeHealth::new();
        h.answered();
        let c = h.check();
        assert!(c.degraded && !c.failing, "{c:?}");
        assert!(c.message.contains("not connected"), "{c:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_prober_notices_the_return_of_the_runtime() {
        let fake = Arc::new(FakeRuntime::new());
        let h = RuntimeHealth::new();
        let runtime: Arc<dyn ContainerRuntime> = Arc::new(Monitored::new(fake.clone(), h.clone()));
        let stop = CancellationToken::new();
        tokio::spawn(probe_while_down(runtime, h.clone(), stop.clone()));
        let mut recovered = h.recovered();
        h.unreachable(&down());
        // The fake answers: within the first probe step the outage is over.
        tokio::time::timeout(Duration::from_secs(2), recovered.changed())
            .await
            .expect("recovery noticed in time")
            .expect("open");
        assert!(!h.is_down());
        stop.cancel();
    }
}
