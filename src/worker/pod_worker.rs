//! The per-pod worker: one task per pod UID, executing plans.
//!
//! A worker observes its pod's containers, asks [`plan`](crate::pod::plan) what to
//! do, executes the steps through the [`ContainerRuntime`], records events,
//! publishes status to the [`PodStore`], and sleeps until a runtime event
//! wakes it, a backoff expires, or it is told to terminate. It keeps only soft
//! state in memory (backoff, recent start failures, condition transition
//! times); everything else is re-observed.
//!
//! Containers start in parallel except where a `postStart` hook must finish
//! first (the kubelet starts the next container only after the previous
//! one's hook). Stopping a container runs its `preStop` hook within the grace
//! period first. Termination (manifest removed or replaced) stops the regular
//! containers in parallel, then sidecars in reverse order, then the sandbox,
//! removes them all and deletes the pod's directory. `activeDeadlineSeconds`
//! stops the pod for good as `Failed`/`DeadlineExceeded`. Daemon shutdown just
//! stops the worker and leaves pods running.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use k8s_openapi::api::core::v1::{Container, Pod, PodCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use tokio::sync::{watch, Notify, Semaphore, SemaphorePermit};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::actions::{self, Target};
use super::prober::{ProbeContext, Prober, Results};
use super::store::{PodRecord, PodStore};
use super::volumes::{self, PodVolumes};
use crate::backoff::{Backoff, BackoffPolicy};
use crate::events::{Involved, Recorder};
use crate::pod::convert::{self, PodSetup};
use crate::pod::objects::{ObjectStore, Objects};
use crate::pod::plan::{self, Plan, StartFailure, Step, Unhealthy};
use crate::pod::probe::{Kind, Params, ProbeResult};
use crate::pod::status::{self, StatusInput};
use crate::runtime::labels::{self, PodRef};
use crate::runtime::{ContainerInfo, ContainerRuntime, RuntimeError};

/// What every worker shares.
pub struct WorkerContext {
    pub runtime: Arc<dyn ContainerRuntime>,
    /// This rkubelet's node name; written into every container's labels.
    pub node_name: String,
    pub infra_image: String,
    pub root_dir: PathBuf,
    pub backoff: BackoffPolicy,
    pub host_ip: String,
    pub store: Arc<PodStore>,
    /// The ConfigMaps and Secrets pods refer to.
    pub objects: ObjectStore,
    pub recorder: Arc<Recorder>,
    /// Bounds container creations + starts in flight over all pods
    /// (`--max-parallel-starts`): a burst of pods queues here instead of
    /// inside Docker, where starts are CPU-bound.
    pub start_slots: Arc<Semaphore>,
    /// Bounds sandbox stops and pod removals in flight (as many as start
    /// slots, but separate, so a mass removal never holds starts back).
    pub teardown_slots: Arc<Semaphore>,
}

impl WorkerContext {
    /// Waits for a free teardown slot (a sandbox stop or a pod removal).
    async fn teardown_slot(&self) -> Result<SemaphorePermit<'_>, RuntimeError> {
        self.teardown_slots
            .acquire()
            .await
            .map_err(|_| RuntimeError::Other("the teardown slots were closed".into()))
    }

    /// Waits for a free start slot; held while creating and starting one
    /// container (not while pulling its image).
    async fn start_slot(&self) -> Result<SemaphorePermit<'_>, RuntimeError> {
        self.start_slots
            .acquire()
            .await
            .map_err(|_| RuntimeError::Other("the start slots were closed".into()))
    }
}

/// Directory of a pod's volumes and state under the root dir.
pub fn pod_dir(root: &Path, uid: &str) -> PathBuf {
    crate::pod::layout::pod_dir(root, uid)
}

/// Stops and removes every container of pod `uid` — app containers in
/// parallel, then the sandbox — and deletes the pod's directory. `grace`
/// defaults to each container's grace-period label. Repeats until nothing is
/// left; fails only if the runtime keeps failing (the caller retries).
pub async fn kill_pod(
    runtime: &dyn ContainerRuntime,
    root_dir: &Path,
    uid: &str,
    grace: Option<Duration>,
) -> Result<(), RuntimeError> {
    // The brief list is enough here: ids, labels and whether to stop (a
    // container that just died may read running; stopping it is a no-op).
    let containers = runtime.list_brief(Some(uid)).await?;
    let grace_of = |c: &ContainerInfo| {
        grace.unwrap_or_else(|| {
            let secs = c.meta().map(|m| m.pod.grace_period_seconds).unwrap_or(30);
            Duration::from_secs(secs.max(0) as u64)
        })
    };
    let (sandboxes, apps): (Vec<&ContainerInfo>, Vec<&ContainerInfo>) = containers
        .iter()
        .partition(|c| c.meta().is_some_and(|m| m.is_sandbox));
    for group in [apps, sandboxes] {
        let stops = group
            .into_iter()
            .filter(|c| c.is_running())
            .map(|c| runtime.stop_container(&c.id, grace_of(c)));
        for r in join_all(stops).await {
            r?;
        }
    }
    remove_pod(runtime, root_dir, uid, &containers).await
}

/// Removes the given (stopped) containers of pod `uid` in parallel and
/// deletes the pod's directory.
async fn remove_pod(
    runtime: &dyn ContainerRuntime,
    root_dir: &Path,
    uid: &str,
    containers: &[ContainerInfo],
) -> Result<(), RuntimeError> {
    for r in join_all(containers.iter().map(|c| runtime.remove_container(&c.id))).await {
        r?;
    }
    let dir = pod_dir(root_dir, uid);
    if let Err(e) = volumes::teardown(&dir) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot remove pod directory");
    }
    Ok(())
}

/// [`kill_pod`], retried with backoff until it succeeds. Returns false if
/// `shutdown` came first (the pod is then left for the next start to clean up).
pub async fn kill_pod_until_done(
    runtime: &dyn ContainerRuntime,
    root_dir: &Path,
    uid: &str,
    grace: Option<Duration>,
    shutdown: &CancellationToken,
) -> bool {
    let mut attempt = 0u32;
    loop {
        let result = tokio::select! {
            _ = shutdown.cancelled() => return false,
            r = kill_pod(runtime, root_dir, uid, grace) => r,
        };
        let Err(e) = result else { return true };
        attempt += 1;
        let delay = Duration::from_millis(500 * 2u64.pow(attempt.min(6)));
        tracing::warn!(%uid, error = %e, retry_in = ?delay, "cannot remove pod containers yet");
        tokio::select! {
            _ = shutdown.cancelled() => return false,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// Signals to and from a running worker.
#[derive(Debug, Clone)]
pub struct WorkerHandle {
    pub uid: String,
    pub full_name: String,
    /// Wakes the worker (runtime event for its pod).
    pub wake: Arc<Notify>,
    /// Asks the worker to terminate the pod.
    pub terminate: CancellationToken,
    /// Cancelled when the worker has finished (pod fully stopped, or shutdown).
    pub done: CancellationToken,
}

/// A worker for one pod UID.
pub struct PodWorker {
    ctx: Arc<WorkerContext>,
    pod: Arc<Pod>,
    source: String,
    uid: String,
    pod_ref: PodRef,
    involved: Involved,
    backoff: Backoff,
    failures: BTreeMap<String, StartFailure>,
    /// A sandbox creation failure holds everything until then.
    sandbox_hold: Option<(Timestamp, String)>,
    volumes: PodVolumes,
    objects: watch::Receiver<Arc<Objects>>,
    start_time: Option<Timestamp>,
    /// `activeDeadlineSeconds` ran out: the pod is stopped for good.
    deadline_exceeded: bool,
    /// When termination began (shown as `metadata.deletionTimestamp`).
    terminating_since: Option<Timestamp>,
    /// Conditions last published, for `lastTransitionTime`.
    conditions: Vec<PodCondition>,
    prober: Prober,
    /// Termination messages of exited containers, by container id (read once:
    /// a dead container does not change).
    term_messages: BTreeMap<String, String>,
    wake: Arc<Notify>,
}

/// The most of a termination-log file that is reported (as the kubelet).
const TERMINATION_MESSAGE_LIMIT: usize = 4096;
/// `FallbackToLogsOnError`: the last this many lines / bytes of the log.
const FALLBACK_LOG_LINES: usize = 80;
const FALLBACK_LOG_BYTES: usize = 2048;

const SANDBOX_KEY: &str = "POD";
/// The kubelet's minimum grace left for SIGTERM after a preStop hook.
const MIN_GRACE_AFTER_HOOK: Duration = Duration::from_secs(2);
/// Upper bound for a postStart hook (the kubelet has none; a hung hook would
/// hold the pod forever).
const POST_START_TIMEOUT: Duration = Duration::from_secs(120);

fn after(now: Timestamp, d: Duration) -> Timestamp {
    now.checked_add(k8s_openapi::jiff::SignedDuration::try_from(d).unwrap_or_default())
        .unwrap_or(now)
}

fn since(earlier: Timestamp, now: Timestamp) -> Duration {
    Duration::try_from(now.duration_since(earlier)).unwrap_or_default()
}

/// A container to stop, with its spec when known.
struct ToStop {
    info: ContainerInfo,
    spec: Option<(Container, bool)>,
}

impl PodWorker {
    /// Spawns a worker for `pod`. It first waits for `previous` (the pod it
    /// replaces) to be fully stopped.
    pub fn spawn(
        ctx: Arc<WorkerContext>,
        pod: Arc<Pod>,
        source: String,
        previous: Option<CancellationToken>,
        shutdown: CancellationToken,
    ) -> WorkerHandle {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let full_name = crate::source::full_name(&pod);
        let handle = WorkerHandle {
            uid: uid.clone(),
            full_name: full_name.clone(),
            wake: Arc::new(Notify::new()),
            terminate: CancellationToken::new(),
            done: CancellationToken::new(),
        };
        let pod_ref = convert::pod_ref(&pod, &source);
        let involved = Involved::pod(&pod_ref.namespace, &pod_ref.name, &uid);
        let prober = Prober::new(ProbeContext {
            runtime: ctx.runtime.clone(),
            recorder: ctx.recorder.clone(),
            involved: involved.clone(),
            wake: handle.wake.clone(),
            results: Arc::new(Results::default()),
        });
        let worker = PodWorker {
            prober,
            term_messages: BTreeMap::new(),
            pod_ref,
            backoff: Backoff::new(ctx.backoff),
            volumes: PodVolumes::new(
                pod_dir(&ctx.root_dir, &uid),
                ctx.recorder.clone(),
                involved.clone(),
            ),
            involved,
            objects: ctx.objects.subscribe(),
            ctx,
            pod,
            source,
            uid: uid.clone(),
            failures: BTreeMap::new(),
            sandbox_hold: None,
            start_time: None,
            deadline_exceeded: false,
            terminating_since: None,
            conditions: Vec::new(),
            wake: handle.wake.clone(),
        };
        let h = handle.clone();
        let span = tracing::info_span!("pod", pod = %full_name, uid = %uid);
        tokio::spawn(
            async move {
                let _done = h.done.clone().drop_guard();
                if let Some(prev) = previous {
                    tokio::select! {
                        _ = prev.cancelled() => {}
                        _ = shutdown.cancelled() => return,
                    }
                }
                worker.run(h.terminate, shutdown).await;
            }
            .instrument(span),
        );
        handle
    }

    async fn run(mut self, terminate: CancellationToken, shutdown: CancellationToken) {
        tracing::info!(source = %self.source, "pod worker started");
        let mut errors = 0u32;
        // A sync cut off by termination may have had a create in flight.
        let mut interrupted = false;
        loop {
            if terminate.is_cancelled() {
                self.terminate(&shutdown, interrupted).await;
                return;
            }
            let requeue = tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = terminate.cancelled() => {
                    interrupted = true;
                    continue;
                }
                r = self.sync() => match r {
                    Ok(requeue) => {
                        errors = 0;
                        requeue
                    }
                    Err(e) => {
                        errors += 1;
                        let delay = Duration::from_millis(500 * 2u64.pow(errors.min(6)));
                        tracing::warn!(error = %e, retry_in = ?delay, "pod sync failed");
                        Some(delay)
                    }
                }
            };
            if requeue == Some(Duration::ZERO) {
                continue;
            }
            let sleep = tokio::time::sleep(requeue.unwrap_or(Duration::from_secs(3600)));
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = terminate.cancelled() => {}
                _ = self.wake.notified() => {}
                _ = self.objects.changed() => {}
                _ = sleep => {}
            }
        }
    }

    fn spec(&self) -> k8s_openapi::api::core::v1::PodSpec {
        self.pod.spec.clone().unwrap_or_default()
    }

    /// Checks `activeDeadlineSeconds`; returns the time left when it runs.
    fn check_deadline(&mut self, now: Timestamp) -> Option<Duration> {
        let secs = self.spec().active_deadline_seconds?;
        let start = self.start_time?;
        let deadline = after(start, Duration::from_secs(secs.max(0) as u64));
        if now < deadline {
            return Some(since(now, deadline));
        }
        if !self.deadline_exceeded {
            self.deadline_exceeded = true;
            self.ctx.recorder.warning(
                &self.involved,
                "DeadlineExceeded",
                "Pod was active on the node longer than the specified deadline",
            );
        }
        None
    }

    /// Observes, plans, executes; returns when to look again.
    async fn sync(&mut self) -> Result<Option<Duration>, RuntimeError> {
        let objects = self.objects.borrow_and_update().clone();
        if self
            .volumes
            .refresh(&self.pod, &objects, &crate::node::capacity())
        {
            // A ConfigMap or Secret may have appeared: retry at once.
            self.failures
                .retain(|_, f| f.reason != "CreateContainerConfigError");
        }
        let observed = self.ctx.runtime.list_containers(Some(&self.uid)).await?;
        self.read_termination_messages(&observed).await;
        let now = Timestamp::now();
        if self.start_time.is_none() {
            self.start_time = Some(
                observed
                    .iter()
                    .filter_map(|c| c.created_at)
                    .min()
                    .unwrap_or(now),
            );
        }
        let deadline_in = self.check_deadline(now);
        if self.deadline_exceeded {
            self.prober.stop_all();
            let running = self.running_to_stop(&observed);
            self.publish(&observed, &Plan::default());
            if running.is_empty() {
                return Ok(None);
            }
            let grace = self.grace();
            self.stop_ordered(running, grace).await?;
            return Ok(Some(Duration::ZERO));
        }
        let pod_ip = self.pod_ip(&observed);
        self.prober.sync(&self.all_specs(), &observed, &pod_ip);
        let unhealthy = self.unhealthy(&observed);
        let mut plan = plan::plan(plan::Input {
            pod: &self.pod,
            observed: &observed,
            backoff: &self.backoff,
            failures: &self.failures,
            unhealthy: &unhealthy,
            now,
        });
        if let Some((until, why)) = &self.sandbox_hold {
            if *until > now
                && plan
                    .steps
                    .iter()
                    .any(|s| matches!(s, Step::CreateSandbox { .. }))
            {
                let wait = since(now, *until);
                tracing::debug!(reason = %why, ?wait, "sandbox creation backing off");
                plan.steps.clear();
                plan.requeue_after = Some(wait);
            }
        }
        self.report_waiting(&plan);
        self.publish(&observed, &plan);
        let requeue = match (plan.requeue_after, deadline_in) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if plan.steps.is_empty() {
            return Ok(requeue);
        }
        self.execute(&plan, &observed).await?;
        // Look again right away: the steps changed what there is to observe.
        Ok(Some(Duration::ZERO))
    }

    /// Reads the termination messages of exited containers not read yet:
    /// the container's termination-log file (at most 4096 bytes), or with
    /// `FallbackToLogsOnError` and a failed, silent exit the end of its log.
    async fn read_termination_messages(&mut self, observed: &[ContainerInfo]) {
        self.term_messages
            .retain(|id, _| observed.iter().any(|c| &c.id == id));
        let dir = pod_dir(&self.ctx.root_dir, &self.uid);
        for c in observed
            .iter()
            .filter(|c| c.state == crate::runtime::ContainerState::Exited)
        {
            if self.term_messages.contains_key(&c.id) {
                continue;
            }
            let Some(meta) = c.meta().filter(|m| !m.is_sandbox) else {
                continue;
            };
            let Some((spec, _)) = self.container_spec(&meta.container_name) else {
                continue;
            };
            let path = crate::pod::layout::termination_log_path(
                &dir,
                &meta.container_name,
                meta.restart_count,
            );
            let mut bytes = tokio::fs::read(&path).await.unwrap_or_default();
            bytes.truncate(TERMINATION_MESSAGE_LIMIT);
            let mut message = String::from_utf8_lossy(&bytes).into_owned();
            let fallback =
                spec.termination_message_policy.as_deref() == Some("FallbackToLogsOnError");
            if message.trim().is_empty() && fallback && c.exit_code != Some(0) {
                message = self.log_tail(&c.id).await;
            }
            self.term_messages.insert(c.id.clone(), message);
        }
    }

    /// The last 80 lines of a container's log, at most 2048 bytes.
    async fn log_tail(&self, id: &str) -> String {
        use futures_util::StreamExt;
        let options = crate::runtime::LogOptions {
            tail: Some(FALLBACK_LOG_LINES),
            ..Default::default()
        };
        let mut stream = self.ctx.runtime.logs(id, options);
        let mut bytes = Vec::new();
        while let Some(Ok(chunk)) = stream.next().await {
            bytes.extend_from_slice(&chunk);
        }
        let start = bytes.len().saturating_sub(FALLBACK_LOG_BYTES);
        String::from_utf8_lossy(&bytes[start..]).into_owned()
    }

    /// Every container spec with whether it is an init container.
    fn all_specs(&self) -> Vec<(Container, bool)> {
        let spec = self.spec();
        let inits = spec
            .init_containers
            .iter()
            .flatten()
            .map(|c| (c.clone(), true));
        inits
            .chain(spec.containers.iter().map(|c| (c.clone(), false)))
            .collect()
    }

    /// Running containers whose liveness or startup probe failed.
    fn unhealthy(&self, observed: &[ContainerInfo]) -> BTreeMap<String, Unhealthy> {
        let results = self.prober.results();
        let mut out = BTreeMap::new();
        for c in observed.iter().filter(|c| c.is_running()) {
            let Some((spec, _)) = self.spec_of(c) else {
                continue;
            };
            for kind in [Kind::Startup, Kind::Liveness] {
                if results.get(&c.id, kind) == Some(ProbeResult::Failure) {
                    let grace = kind.of(&spec).and_then(|p| Params::of(p).termination_grace);
                    out.insert(c.id.clone(), Unhealthy { probe: kind, grace });
                    break;
                }
            }
        }
        out
    }

    /// Back-off events for containers the planner holds back.
    fn report_waiting(&self, plan: &Plan) {
        for (name, w) in &plan.waiting {
            let Some((spec, init)) = self.container_spec(name) else {
                continue;
            };
            let involved = self.involved.container(name, init);
            match w.reason.as_str() {
                "CrashLoopBackOff" => self.ctx.recorder.warning(
                    &involved,
                    "BackOff",
                    format!(
                        "Back-off restarting failed container {name} in pod {}",
                        self.pod_ref.name
                    ),
                ),
                "ImagePullBackOff" => self.ctx.recorder.normal(
                    &involved,
                    "BackOff",
                    format!(
                        "Back-off pulling image {:?}",
                        spec.image.unwrap_or_default()
                    ),
                ),
                _ => {}
            }
        }
    }

    fn publish(&mut self, observed: &[ContainerInfo], plan: &Plan) {
        let mut pod = (*self.pod).clone();
        let terminating = self.terminating_since.is_some();
        let results = self.prober.results();
        let mut probes = BTreeMap::new();
        for c in observed {
            for kind in [Kind::Startup, Kind::Liveness, Kind::Readiness] {
                if let Some(r) = results.get(&c.id, kind) {
                    probes.insert((c.id.clone(), kind), r);
                }
            }
        }
        let mut st = status::pod_status(StatusInput {
            pod: &self.pod,
            observed,
            waiting: &plan.waiting,
            host_ip: &self.ctx.host_ip,
            start_time: self.start_time,
            terminating,
            probes: &probes,
            messages: &self.term_messages,
        });
        if self.deadline_exceeded {
            st.phase = Some("Failed".into());
            st.reason = Some("DeadlineExceeded".into());
            st.message =
                Some("Pod was active on the node longer than the specified deadline".into());
        }
        // lastTransitionTime: when a condition's status last changed.
        let now = Time(Timestamp::now());
        for c in st.conditions.iter_mut().flatten() {
            let before = self.conditions.iter().find(|p| p.type_ == c.type_);
            c.last_transition_time = match before {
                Some(p) if p.status == c.status => p.last_transition_time.clone(),
                _ => Some(now.clone()),
            };
        }
        self.conditions = st.conditions.clone().unwrap_or_default();
        pod.status = Some(st);
        if pod.metadata.creation_timestamp.is_none() {
            pod.metadata.creation_timestamp = self.start_time.map(Time);
        }
        if let Some(since) = self.terminating_since {
            pod.metadata.deletion_timestamp = Some(Time(since));
            pod.metadata.deletion_grace_period_seconds = Some(self.pod_ref.grace_period_seconds);
        }
        self.ctx.store.put(
            &self.uid,
            PodRecord {
                pod,
                source: self.source.clone(),
                probes: results.reports(),
            },
        );
    }

    fn container_spec(&self, name: &str) -> Option<(Container, bool)> {
        let spec = self.pod.spec.as_ref()?;
        if let Some(c) = spec
            .init_containers
            .iter()
            .flatten()
            .find(|c| c.name == name)
        {
            return Some((c.clone(), true));
        }
        spec.containers
            .iter()
            .find(|c| c.name == name)
            .map(|c| (c.clone(), false))
    }

    /// The running containers of `observed`, with their specs, to stop.
    fn running_to_stop(&self, observed: &[ContainerInfo]) -> Vec<ToStop> {
        observed
            .iter()
            .filter(|c| c.is_running())
            .map(|c| ToStop {
                info: c.clone(),
                spec: self.spec_of(c),
            })
            .collect()
    }

    fn spec_of(&self, c: &ContainerInfo) -> Option<(Container, bool)> {
        let meta = c.meta()?;
        if meta.is_sandbox {
            return None;
        }
        self.container_spec(&meta.container_name)
    }

    fn grace(&self) -> Duration {
        Duration::from_secs(self.pod_ref.grace_period_seconds.max(0) as u64)
    }

    /// The address hooks and probes target: the sandbox's IP, or loopback
    /// for host-network pods.
    fn pod_ip(&self, observed: &[ContainerInfo]) -> String {
        if self.spec().host_network.unwrap_or(false) {
            return "127.0.0.1".into();
        }
        observed
            .iter()
            .filter(|c| c.is_running() && c.meta().is_some_and(|m| m.is_sandbox))
            .find_map(|c| c.ip.clone())
            .unwrap_or_else(|| "127.0.0.1".into())
    }

    /// Stops one container: `Killing` event, its preStop hook within the
    /// grace period, then SIGTERM (or STOPSIGNAL) and SIGKILL after what is
    /// left of the grace (at least 2 s after a hook, as the kubelet does).
    async fn kill_container(
        &self,
        c: &ToStop,
        grace: Duration,
        pod_ip: &str,
    ) -> Result<(), RuntimeError> {
        let runtime = self.ctx.runtime.as_ref();
        let mut remaining = grace;
        if let Some((spec, init)) = &c.spec {
            let involved = self.involved.container(&spec.name, *init);
            self.ctx.recorder.normal(
                &involved,
                "Killing",
                format!("Stopping container {}", spec.name),
            );
            if let Some(hook) = spec.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref()) {
                let started = Instant::now();
                let target = Target {
                    container_id: &c.info.id,
                    container: spec,
                    pod_ip,
                };
                if let Err(msg) = actions::run_hook(runtime, hook, target, grace).await {
                    self.ctx
                        .recorder
                        .warning(&involved, "FailedPreStopHook", msg.to_string());
                }
                remaining = grace
                    .saturating_sub(started.elapsed())
                    .max(MIN_GRACE_AFTER_HOOK);
            }
        }
        runtime.stop_container(&c.info.id, remaining).await
    }

    /// Stops containers the kubelet's way: regular ones in parallel, then
    /// sidecars in reverse order, then sandboxes; sidecars get what is left of
    /// the grace period.
    async fn stop_ordered(&self, list: Vec<ToStop>, grace: Duration) -> Result<(), RuntimeError> {
        let started = Instant::now();
        let pod_ip = self.pod_ip(&list.iter().map(|c| c.info.clone()).collect::<Vec<_>>());
        let sidecar_order: Vec<String> = self
            .spec()
            .init_containers
            .iter()
            .flatten()
            .filter(|c| plan::is_sidecar(c))
            .map(|c| c.name.clone())
            .collect();
        let is_sandbox = |c: &ToStop| c.info.meta().is_some_and(|m| m.is_sandbox);
        let is_sidecar = |c: &ToStop| {
            c.spec
                .as_ref()
                .is_some_and(|(s, init)| *init && plan::is_sidecar(s))
        };
        let (sandboxes, rest): (Vec<ToStop>, Vec<ToStop>) = list.into_iter().partition(is_sandbox);
        let (mut sidecars, regular): (Vec<ToStop>, Vec<ToStop>) =
            rest.into_iter().partition(is_sidecar);
        for r in join_all(
            regular
                .iter()
                .map(|c| self.kill_container(c, grace, &pod_ip)),
        )
        .await
        {
            r?;
        }
        sidecars.sort_by_key(|c| {
            let name = c
                .spec
                .as_ref()
                .map(|(s, _)| s.name.clone())
                .unwrap_or_default();
            std::cmp::Reverse(sidecar_order.iter().position(|n| *n == name))
        });
        for c in &sidecars {
            let left = grace
                .saturating_sub(started.elapsed())
                .max(MIN_GRACE_AFTER_HOOK);
            self.kill_container(c, left, &pod_ip).await?;
        }
        for c in &sandboxes {
            // Tearing down a network namespace is CPU work inside Docker:
            // bounded, so a mass removal queues here instead.
            let _slot = self.ctx.teardown_slot().await?;
            self.ctx.runtime.stop_container(&c.info.id, grace).await?;
        }
        Ok(())
    }

    async fn execute(
        &mut self,
        plan: &Plan,
        observed: &[ContainerInfo],
    ) -> Result<(), RuntimeError> {
        let runtime = self.ctx.runtime.clone();
        let stops: Vec<ToStop> = plan
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::StopContainer { id, .. } => observed.iter().find(|c| &c.id == id),
                _ => None,
            })
            .map(|c| ToStop {
                info: c.clone(),
                spec: self.spec_of(c),
            })
            .collect();
        if !stops.is_empty() {
            self.stop_ordered(stops, self.grace()).await?;
        }
        let pod_ip = self.pod_ip(observed);
        let mut kills = Vec::new();
        for step in &plan.steps {
            let Step::KillUnhealthy {
                id,
                name,
                probe,
                grace,
            } = step
            else {
                continue;
            };
            let (Some(info), Some((spec, init))) = (
                observed.iter().find(|c| &c.id == id),
                self.container_spec(name),
            ) else {
                continue;
            };
            let involved = self.involved.container(name, init);
            self.ctx.recorder.normal(
                &involved,
                "Killing",
                format!(
                    "Container {name} failed {} probe, will be restarted",
                    probe.name().to_lowercase()
                ),
            );
            let grace = grace.unwrap_or_else(|| self.grace());
            kills.push((
                ToStop {
                    info: info.clone(),
                    spec: Some((spec, init)),
                },
                grace,
            ));
        }
        let this = &*self;
        let results = join_all(
            kills
                .iter()
                .map(|(stop, grace)| this.kill_container(stop, *grace, &pod_ip)),
        )
        .await;
        for r in results {
            r?;
        }
        let removes = plan.steps.iter().filter_map(|s| match s {
            Step::RemoveContainer { id } => Some(runtime.remove_container(id)),
            _ => None,
        });
        join_all(removes)
            .await
            .into_iter()
            .collect::<Result<Vec<()>, _>>()?;

        for step in &plan.steps {
            if let Step::CreateSandbox { attempt } = step {
                self.create_sandbox(*attempt).await?;
            }
        }
        let starts: Vec<(String, u32, Option<Timestamp>)> = plan
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::StartContainer {
                    name,
                    restart_count,
                    restart_of,
                    ..
                } => Some((name.clone(), *restart_count, *restart_of)),
                _ => None,
            })
            .collect();
        if starts.is_empty() {
            return Ok(());
        }
        let Some(sandbox) = observed
            .iter()
            .find(|c| c.is_running() && c.meta().is_some_and(|m| m.is_sandbox))
        else {
            return Ok(());
        };
        let sandbox_id = sandbox.id.clone();
        let volumes = match self.volumes(sandbox.ip.as_deref()) {
            Ok(volumes) => volumes,
            Err(message) => {
                // A volume cannot be set up: no container can start.
                let now = Timestamp::now();
                for (name, _, _) in starts {
                    let reason = "CreateContainerConfigError".to_string();
                    self.record_start_failure(name, reason, message.clone(), now);
                }
                return Ok(());
            }
        };
        // Batches: a container with a postStart hook ends a batch; the next
        // batch starts only after that hook finished.
        let mut batches: Vec<Vec<(String, u32, Option<Timestamp>)>> = vec![Vec::new()];
        for s in starts {
            let has_hook = self
                .container_spec(&s.0)
                .and_then(|(c, _)| c.lifecycle.and_then(|l| l.post_start))
                .is_some();
            if let Some(last) = batches.last_mut() {
                last.push(s);
            }
            if has_hook {
                batches.push(Vec::new());
            }
        }
        for batch in batches.into_iter().filter(|b| !b.is_empty()) {
            let results =
                join_all(batch.iter().map(|(name, count, _)| {
                    self.start_container(name, *count, &sandbox_id, &volumes)
                }))
                .await;
            let now = Timestamp::now();
            let mut hooks = Vec::new();
            for ((name, _, restart_of), result) in batch.into_iter().zip(results) {
                match result {
                    Ok(id) => {
                        self.failures.remove(&name);
                        if let Some(finished) = restart_of {
                            self.backoff.record(&name, finished);
                        }
                        hooks.push((name, id));
                    }
                    Err(Failure::Runtime(e)) => return Err(e),
                    Err(Failure::Start { reason, message }) => {
                        self.record_start_failure(name, reason, message, now)
                    }
                }
            }
            for (name, id) in hooks {
                self.post_start(&name, &id, &pod_ip).await?;
            }
        }
        Ok(())
    }

    fn record_start_failure(
        &mut self,
        name: String,
        reason: String,
        message: String,
        now: Timestamp,
    ) {
        let key = format!("{reason}/{name}");
        self.backoff.record(&key, now);
        let delay = self.backoff.current_delay(&key).unwrap_or_default();
        if let Some((_, init)) = self.container_spec(&name) {
            let involved = self.involved.container(&name, init);
            self.ctx
                .recorder
                .warning(&involved, "Failed", format!("Error: {reason}"));
        }
        tracing::warn!(container = %name, %reason, %message, retry_in = ?delay, "cannot start container");
        self.failures.insert(
            name,
            StartFailure {
                reason,
                message,
                retry_at: after(now, delay),
                failed_at: now,
            },
        );
    }

    /// Runs a started container's postStart hook; a failure kills the
    /// container (the restart policy and backoff decide what follows).
    async fn post_start(&self, name: &str, id: &str, pod_ip: &str) -> Result<(), RuntimeError> {
        let Some((spec, init)) = self.container_spec(name) else {
            return Ok(());
        };
        let Some(hook) = spec.lifecycle.as_ref().and_then(|l| l.post_start.as_ref()) else {
            return Ok(());
        };
        let target = Target {
            container_id: id,
            container: &spec,
            pod_ip,
        };
        let runtime = self.ctx.runtime.as_ref();
        if let Err(msg) = actions::run_hook(runtime, hook, target, POST_START_TIMEOUT).await {
            let involved = self.involved.container(name, init);
            self.ctx.recorder.warning(
                &involved,
                "FailedPostStartHook",
                format!("PostStartHookError: {msg}"),
            );
            self.ctx.recorder.normal(
                &involved,
                "Killing",
                format!("FailedPostStartHook: stopping container {name}"),
            );
            runtime.stop_container(id, self.grace()).await?;
        }
        Ok(())
    }

    async fn create_sandbox(&mut self, attempt: u32) -> Result<(), RuntimeError> {
        let dir = pod_dir(&self.ctx.root_dir, &self.uid);
        if let Err(e) = tokio::fs::create_dir_all(&dir).await {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot create pod directory");
        }
        if attempt > 0 {
            self.ctx.recorder.normal(
                &self.involved,
                "SandboxChanged",
                "Pod sandbox changed, it will be killed and re-created.",
            );
        }
        let mut config =
            convert::sandbox_config(&self.pod, &self.pod_ref, &self.ctx.infra_image, attempt);
        config
            .labels
            .insert(labels::NODE.into(), self.ctx.node_name.clone());
        tracing::info!(name = %config.name, "creating pod sandbox");
        let slot = self.ctx.start_slot().await?;
        let created = self.ctx.runtime.run_sandbox(&config).await;
        drop(slot);
        match created {
            Ok(_) => {
                self.sandbox_hold = None;
                self.backoff.forget(SANDBOX_KEY);
                Ok(())
            }
            Err(RuntimeError::Unavailable(m)) => Err(RuntimeError::Unavailable(m)),
            Err(e) => {
                let now = Timestamp::now();
                self.backoff.record(SANDBOX_KEY, now);
                let delay = self.backoff.current_delay(SANDBOX_KEY).unwrap_or_default();
                self.ctx.recorder.warning(
                    &self.involved,
                    "FailedCreatePodSandBox",
                    format!("Failed to create pod sandbox: {e}"),
                );
                self.sandbox_hold = Some((after(now, delay), e.to_string()));
                Ok(())
            }
        }
    }

    /// Sets up the pod's volumes and hosts file for the sandbox at
    /// `sandbox_ip`; what a container config needs besides the spec.
    fn volumes(&mut self, sandbox_ip: Option<&str>) -> Result<PodSetup, String> {
        let objects = self.objects.borrow().clone();
        let node = crate::node::capacity();
        let paths = self
            .volumes
            .setup(&self.pod, &objects, &node)
            .map_err(|e| e.to_string())?;
        let pod_ip = sandbox_ip
            .filter(|ip| !ip.is_empty())
            .unwrap_or(&self.ctx.host_ip)
            .to_string();
        let hosts_file = Some(
            self.volumes
                .write_hosts_file(&self.pod, &pod_ip)
                .map_err(|e| e.to_string())?,
        );
        Ok(PodSetup {
            volumes: paths,
            objects,
            pod_ip,
            host_ip: self.ctx.host_ip.clone(),
            node,
            pod_dir: Some(pod_dir(&self.ctx.root_dir, &self.uid)),
            hosts_file,
        })
    }

    async fn ensure_image(&self, c: &Container, involved: &Involved) -> Result<(), Failure> {
        let image = c.image.clone().unwrap_or_default();
        let policy = c.image_pull_policy.as_deref().unwrap_or("IfNotPresent");
        let runtime = &self.ctx.runtime;
        let recorder = &self.ctx.recorder;
        let present = match policy {
            "Always" => None,
            _ => runtime
                .inspect_image(&image)
                .await
                .map_err(Failure::Runtime)?,
        };
        if present.is_some() {
            recorder.normal(
                involved,
                "Pulled",
                format!("Container image {image:?} already present on machine"),
            );
            return Ok(());
        }
        if policy == "Never" {
            let message =
                format!("Container image {image:?} is not present with pull policy of Never");
            recorder.warning(involved, "ErrImageNeverPull", message.clone());
            return Err(Failure::Start {
                reason: "ErrImageNeverPull".into(),
                message,
            });
        }
        recorder.normal(involved, "Pulling", format!("Pulling image {image:?}"));
        let started = Instant::now();
        match runtime.pull_image(&image).await {
            Ok(_) => {
                recorder.normal(
                    involved,
                    "Pulled",
                    format!(
                        "Successfully pulled image {image:?} in {}",
                        humantime::format_duration(Duration::from_millis(
                            started.elapsed().as_millis() as u64
                        ))
                    ),
                );
                Ok(())
            }
            Err(RuntimeError::Unavailable(m)) => {
                Err(Failure::Runtime(RuntimeError::Unavailable(m)))
            }
            Err(e) => {
                recorder.warning(
                    involved,
                    "Failed",
                    format!("Failed to pull image {image:?}: {e}"),
                );
                Err(Failure::Start {
                    reason: "ErrImagePull".into(),
                    message: e.to_string(),
                })
            }
        }
    }

    /// Pulls (per policy), creates and starts one container; its id.
    async fn start_container(
        &self,
        name: &str,
        restart_count: u32,
        sandbox_id: &str,
        volumes: &PodSetup,
    ) -> Result<String, Failure> {
        let Some((spec, init)) = self.container_spec(name) else {
            return Err(Failure::Start {
                reason: "CreateContainerError".into(),
                message: format!("no container {name:?} in the pod spec"),
            });
        };
        let involved = self.involved.container(name, init);
        self.ensure_image(&spec, &involved).await?;
        let mut config = convert::container_config(
            &self.pod,
            &self.pod_ref,
            &spec,
            sandbox_id,
            restart_count,
            volumes,
        )
        .map_err(|e| Failure::Start {
            reason: "CreateContainerConfigError".into(),
            message: e.0,
        })?;
        let events = (self.ctx.recorder.as_ref(), &involved);
        volumes::prepare_container(
            &self.pod,
            &spec,
            restart_count,
            &mut config,
            volumes,
            events,
        )
        .map_err(|e| Failure::Start {
            reason: "CreateContainerConfigError".into(),
            message: e.to_string(),
        })?;
        config
            .labels
            .insert(labels::NODE.into(), self.ctx.node_name.clone());
        let runtime = &self.ctx.runtime;
        let _slot = self.ctx.start_slot().await.map_err(Failure::Runtime)?;
        let id = runtime
            .create_container(&config)
            .await
            .map_err(|e| match e {
                RuntimeError::Unavailable(_) => Failure::Runtime(e),
                e => Failure::Start {
                    reason: "CreateContainerError".into(),
                    message: e.to_string(),
                },
            })?;
        self.ctx
            .recorder
            .normal(&involved, "Created", format!("Created container {name}"));
        tracing::info!(container = %name, restart_count, id = %id, "starting container");
        runtime.start_container(&id).await.map_err(|e| match e {
            RuntimeError::Unavailable(_) => Failure::Runtime(e),
            e => Failure::Start {
                reason: "RunContainerError".into(),
                message: e.to_string(),
            },
        })?;
        self.ctx
            .recorder
            .normal(&involved, "Started", format!("Started container {name}"));
        Ok(id)
    }

    /// Stops and removes the pod — regular containers in parallel with their
    /// preStop hooks, sidecars in reverse order, the sandbox last — retrying
    /// until done or daemon shutdown. When a sync was `interrupted` (or on a
    /// retry) the containers are listed again before removing them, in case
    /// a create was still in flight; otherwise what was observed is all
    /// there is (only this worker creates this pod's containers).
    async fn terminate(&mut self, shutdown: &CancellationToken, interrupted: bool) {
        tracing::info!("terminating pod");
        self.prober.stop_all();
        let started = Timestamp::now();
        self.terminating_since = Some(started);
        let mut attempt = 0u32;
        loop {
            let step = async {
                let observed = self.ctx.runtime.list_containers(Some(&self.uid)).await?;
                self.publish(&observed, &Plan::default());
                let running = self.running_to_stop(&observed);
                let left = self
                    .grace()
                    .saturating_sub(since(started, Timestamp::now()));
                self.stop_ordered(running, left).await?;
                let runtime = self.ctx.runtime.as_ref();
                // Removing containers is CPU work inside Docker too: a slot
                // per pod keeps a mass removal from thrashing the daemon.
                let _slot = self.ctx.teardown_slot().await?;
                if interrupted || attempt > 0 {
                    kill_pod(runtime, &self.ctx.root_dir, &self.uid, Some(left)).await
                } else {
                    remove_pod(runtime, &self.ctx.root_dir, &self.uid, &observed).await
                }
            };
            let result = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = step => r,
            };
            match result {
                Ok(()) => break,
                Err(e) => {
                    attempt += 1;
                    let delay = Duration::from_millis(500 * 2u64.pow(attempt.min(6)));
                    tracing::warn!(error = %e, retry_in = ?delay, "cannot terminate pod yet");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
        self.ctx.store.remove(&self.uid);
        tracing::info!("pod terminated");
    }
}

/// Why a container could not be started.
enum Failure {
    /// A failure to report on the container and retry with backoff.
    Start { reason: String, message: String },
    /// The runtime itself failed (retry the whole sync).
    Runtime(RuntimeError),
}
