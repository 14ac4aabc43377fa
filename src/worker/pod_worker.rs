//! The per-pod worker: one task per pod UID, executing plans.
//!
//! A worker observes its pod's containers, asks the [planner](crate::pod::plan) what to
//! do, executes the plan's batches in order through the [`ContainerRuntime`]
//! (`execute.rs`), records the events the plan calls for, publishes status to
//! the [`PodStore`], and sleeps until a runtime event wakes it, a backoff
//! expires, or it is told to terminate. It decides nothing itself: restarts,
//! the sandbox hold, `activeDeadlineSeconds`, the stop order and postStart
//! batching are the planner's. It keeps only soft state in memory (backoff,
//! recent start failures, the sandbox hold, condition transition times);
//! everything else is re-observed.
//!
//! Its life is one `Lifecycle`: waiting for the worker of the pod it
//! replaces, running, stopped for good past its deadline
//! (`Failed`/`DeadlineExceeded`), terminating (manifest removed or replaced:
//! stop in the planner's order, remove everything, delete the pod's
//! directory — see `terminate.rs`), done. Daemon shutdown just stops the
//! worker and leaves pods running. The time comes from the context's
//! [`Clock`], and durations are measured with `tokio::time::Instant`, so the
//! worker runs under paused tokio time in tests.

mod execute;
mod terminate;
/// The last `limit` bytes of the file at `path` (all of a shorter file), as
/// the kubelet's `tail.ReadAtMost` reads termination messages: a message
/// written last is the one kept. Fails when the file cannot be opened or read.
async fn read_tail(path: &std::path::Path, limit: usize) -> std::io::Result<Vec<u8>> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let mut file = tokio::fs::File::open(path).await?;
    let len = file.metadata().await?.len();
    let start = len.saturating_sub(limit as u64);
    file.seek(std::io::SeekFrom::Start(start)).await?;
    let mut bytes = Vec::with_capacity(limit.min(len as usize));
    file.take(limit as u64).read_to_end(&mut bytes).await?;
    Ok(bytes)
}

#[cfg(test)]
mod tests;

use futures_util::future::join_all;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod, PodCondition, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use tokio::sync::{watch, Notify, Semaphore, SemaphorePermit};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::prober::{ProbeContext, Prober, Results};
use super::store::{PodRecord, PodStore};
use super::volumes::PodVolumes;
use crate::backoff::{Backoff, BackoffPolicy, Retry};
use crate::clock::Clock;
use crate::events::{Involved, Recorder};
use crate::k8s::lifecycle::WaitingReason;
use crate::pod::convert;
use crate::pod::layout::{pod_dir, probe_results_path};
use crate::pod::objects::{ObjectStore, Objects};
use crate::pod::observed::Observed;
use crate::pod::plan::{self, Plan, StartFailure, Unhealthy, DEADLINE_EXCEEDED_MESSAGE};
use crate::pod::probe::{Params, ProbeKind, ProbeResult, SavedResults};
use crate::pod::status::{self, StatusInput};
use crate::runtime::labels::PodRef;
use crate::runtime::{ContainerInfo, ContainerRuntime, RuntimeError};

pub use terminate::{kill_pod, kill_pod_until_done};

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
    /// Bounds sandbox stops and pod removals in flight
    /// (`--max-parallel-teardowns`; separate from the start slots, so a mass
    /// removal never holds starts back).
    pub teardown_slots: Arc<Semaphore>,
    /// Where the time comes from (the system clock outside tests).
    pub clock: Arc<dyn Clock>,
    /// The runtime's reachability: its recovery resets the workers' retry.
    pub health: Arc<crate::runtime::health::RuntimeHealth>,
}

impl WorkerContext {
    /// Waits for a free teardown slot (a sandbox stop or a pod removal).
    async fn teardown_slot(&self) -> Result<SemaphorePermit<'_>, RuntimeError> {
        self.teardown_slots
            .acquire()
            .await
            .map_err(|_| RuntimeError::Other("the teardown slots were closed".into()))
    }

    /// [`start_slot`](Self::start_slot), owned, for a call that may outlive
    /// the sync that began it.
    async fn start_slot_owned(&self) -> Result<tokio::sync::OwnedSemaphorePermit, RuntimeError> {
        self.start_slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| RuntimeError::Other("the start slots were closed".into()))
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

/// Where a worker is in its pod's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lifecycle {
    /// Waiting for the worker of the pod this one replaces to finish.
    WaitingForPrevious,
    /// Keeping the pod's containers as its spec says.
    Running,
    /// `activeDeadlineSeconds` ran out: everything is stopped for good and the
    /// pod is `Failed` with `DeadlineExceeded`.
    DeadlineExceeded,
    /// Stopping and removing the pod since `since` (shown as
    /// `metadata.deletionTimestamp`). `interrupted`: a sync was cut off, so a
    /// create may have been in flight. `after_deadline`: it was past its
    /// deadline (and stays `Failed` while it goes).
    Terminating {
        since: Timestamp,
        interrupted: bool,
        after_deadline: bool,
    },
    /// Fully stopped and removed.
    Done,
}

impl Lifecycle {
    /// When termination began, while terminating.
    fn terminating_since(self) -> Option<Timestamp> {
        match self {
            Lifecycle::Terminating { since, .. } => Some(since),
            _ => None,
        }
    }

    /// Past `activeDeadlineSeconds` (also while terminating afterwards).
    fn deadline_exceeded(self) -> bool {
        matches!(
            self,
            Lifecycle::DeadlineExceeded
                | Lifecycle::Terminating {
                    after_deadline: true,
                    ..
                }
        )
    }

    /// Probes run only while the pod is kept running.
    fn probes_run(self) -> bool {
        self == Lifecycle::Running
    }

    /// The pod is still synced (running, or held stopped past its deadline).
    fn syncs(self) -> bool {
        matches!(self, Lifecycle::Running | Lifecycle::DeadlineExceeded)
    }
}

/// A failed sandbox creation: no new sandbox before `until`.
#[derive(Debug, Clone)]
struct SandboxHold {
    until: Timestamp,
    error: String,
}

/// A worker for one pod UID.
pub struct PodWorker {
    ctx: Arc<WorkerContext>,
    pod: Arc<Pod>,
    source: String,
    uid: String,
    pod_ref: PodRef,
    involved: Involved,
    lifecycle: Lifecycle,
    // What the planner remembers between syncs:
    backoff: Backoff,
    failures: BTreeMap<String, StartFailure>,
    sandbox_hold: Option<SandboxHold>,
    /// When the pod became active on this node (`status.startTime`).
    start_time: Option<Timestamp>,
    volumes: PodVolumes,
    objects: watch::Receiver<Arc<Objects>>,
    /// Conditions last published, for `lastTransitionTime`.
    conditions: Vec<PodCondition>,
    prober: Prober,
    /// Termination messages of exited containers, by container id (read once:
    /// a dead container does not change).
    term_messages: BTreeMap<String, String>,
    /// Probe results as last saved to the pod's directory (for the next
    /// rkubelet); `None` until read back at the first sync.
    saved_probes: Option<SavedResults>,
    wake: Arc<Notify>,
    /// Runtime calls that create containers, run to their end even when the
    /// sync that began them is cut off: terminating waits for them, so it
    /// sees (and removes) everything they created.
    in_flight: TaskTracker,
    /// The pod's containers as the last sync observed them, kept only when
    /// that sync had nothing to do (so nothing was created or removed
    /// since): terminating stops and removes these without listing again.
    known: Option<Vec<ContainerInfo>>,
    /// After a sync that only created containers: what it observed before,
    /// and the ids it created. The next sync inspects just those instead of
    /// listing the pod again (the list walks every container in Docker:
    /// three per pod made a burst's Docker work grow with its size).
    created: Option<(Vec<ContainerInfo>, Vec<String>)>,
}

/// The most of a termination-log file that is reported (as the kubelet).
const TERMINATION_MESSAGE_LIMIT: usize = 4096;
/// `FallbackToLogsOnError`: the last this many lines / bytes of the log.
const FALLBACK_LOG_LINES: usize = 80;
const FALLBACK_LOG_BYTES: usize = 2048;

/// Retrying a failed sync: 1 s, doubling up to 32 s.
const SYNC_RETRY: Retry = Retry::new(Duration::from_secs(1), Duration::from_secs(32));
/// How long an idle worker sleeps without any event.
const IDLE: Duration = Duration::from_secs(3600);

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
            results: Arc::new(Results::published_to(ctx.store.clone(), &uid)),
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
            lifecycle: Lifecycle::WaitingForPrevious,
            failures: BTreeMap::new(),
            sandbox_hold: None,
            start_time: None,
            conditions: Vec::new(),
            saved_probes: None,
            wake: handle.wake.clone(),
            in_flight: TaskTracker::new(),
            known: None,
            created: None,
        };
        let h = handle.clone();
        let span = tracing::info_span!("pod", pod = %full_name, uid = %uid);
        tokio::spawn(
            async move {
                let _done = h.done.clone().drop_guard();
                worker.run(previous, h.terminate, shutdown).await;
            }
            .instrument(span),
        );
        handle
    }

    /// Walks the lifecycle until done or daemon shutdown.
    async fn run(
        mut self,
        previous: Option<CancellationToken>,
        terminate: CancellationToken,
        shutdown: CancellationToken,
    ) {
        loop {
            match self.lifecycle {
                Lifecycle::WaitingForPrevious => {
                    if let Some(prev) = &previous {
                        tokio::select! {
                            _ = prev.cancelled() => {}
                            _ = shutdown.cancelled() => return,
                        }
                    }
                    tracing::info!(source = %self.source, "pod worker started");
                    self.lifecycle = Lifecycle::Running;
                }
                Lifecycle::Running | Lifecycle::DeadlineExceeded => {
                    let Some(interrupted) = self.keep(&terminate, &shutdown).await else {
                        return;
                    };
                    tracing::info!("terminating pod");
                    self.lifecycle = Lifecycle::Terminating {
                        since: self.ctx.clock.now(),
                        interrupted,
                        after_deadline: self.lifecycle.deadline_exceeded(),
                    };
                }
                Lifecycle::Terminating {
                    since, interrupted, ..
                } => {
                    if !self.terminate(&shutdown, since, interrupted).await {
                        return;
                    }
                    self.lifecycle = Lifecycle::Done;
                }
                Lifecycle::Done => return,
            }
        }
    }

    /// Syncs the pod until `terminate` (returns whether a sync was cut off)
    /// or `shutdown` (returns `None`).
    async fn keep(
        &mut self,
        terminate: &CancellationToken,
        shutdown: &CancellationToken,
    ) -> Option<bool> {
        let mut retry = SYNC_RETRY;
        let mut recovered = self.ctx.health.recovered();
        while self.lifecycle.syncs() {
            if terminate.is_cancelled() {
                return Some(false);
            }
            let started = std::time::Instant::now();
            let requeue = tokio::select! {
                _ = shutdown.cancelled() => return None,
                _ = terminate.cancelled() => return Some(true),
                r = self.sync() => {
                    crate::metrics::global().pod_synced(started.elapsed());
                    match r {
                        Ok(requeue) => {
                            retry.reset();
                            requeue
                        }
                        Err(e) => {
                            let delay = retry.next_delay();
                            if matches!(e, RuntimeError::Unavailable(_)) {
                                // The outage is logged once, by the runtime health.
                                tracing::debug!(error = %e, retry_in = ?delay, "pod sync failed");
                            } else {
                                tracing::warn!(error = %e, retry_in = ?delay, "pod sync failed");
                            }
                            Some(delay)
                        }
                    }
                }
            };
            if requeue == Some(Duration::ZERO) {
                continue;
            }
            let sleep = tokio::time::sleep(requeue.unwrap_or(IDLE));
            let runtime_back = tokio::select! {
                _ = shutdown.cancelled() => return None,
                _ = terminate.cancelled() => false,
                _ = self.wake.notified() => false,
                _ = self.objects.changed() => false,
                _ = recovered.changed() => true,
                _ = sleep => false,
            };
            if runtime_back {
                retry.reset();
                self.forget_runtime_failures();
            }
        }
        Some(false)
    }

    /// Runs a runtime call that creates something to its end, even if the
    /// sync awaiting it is dropped (the pod was terminated meanwhile):
    /// [`terminate`](Self::terminate) waits for every such call first. Fails
    /// only if the call panicked.
    async fn to_completion<T: Send + 'static>(
        &self,
        call: impl std::future::Future<Output = Result<T, RuntimeError>> + Send + 'static,
    ) -> Result<T, RuntimeError> {
        match self.in_flight.spawn(call).await {
            Ok(result) => result,
            Err(e) => Err(RuntimeError::Other(format!("a runtime call failed: {e}"))),
        }
    }

    /// The runtime answers again after an outage: what it refused meanwhile
    /// (a sandbox, a container's create or start) is retried at once rather
    /// than after its backoff. Crash-loop backoff is kept.
    fn forget_runtime_failures(&mut self) {
        self.sandbox_hold = None;
        self.failures.retain(|_, f| {
            !matches!(
                f.reason,
                WaitingReason::RunContainerError | WaitingReason::CreateContainerError
            )
        });
    }

    fn spec(&self) -> PodSpec {
        self.pod.spec.clone().unwrap_or_default()
    }

    /// The planner says the deadline ran out: stop probing, and say so once.
    fn exceed_deadline(&mut self) {
        self.prober.stop_all();
        if self.lifecycle == Lifecycle::Running {
            self.lifecycle = Lifecycle::DeadlineExceeded;
            self.ctx.recorder.warning(
                &self.involved,
                "DeadlineExceeded",
                DEADLINE_EXCEEDED_MESSAGE,
            );
        }
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
                .retain(|_, f| f.reason != WaitingReason::CreateContainerConfigError);
        }
        // Cleared first: a sync that fails or is cut off leaves no list.
        self.known = None;
        let observed = match self.created.take() {
            Some((before, ids)) => self.observe_created(before, &ids).await?,
            None => self.ctx.runtime.list_containers(Some(&self.uid)).await?,
        };
        self.read_termination_messages(&observed).await;
        let now = self.ctx.clock.now();
        if self.start_time.is_none() {
            self.start_time = Some(
                observed
                    .iter()
                    .filter_map(|c| c.created_at)
                    .min()
                    .unwrap_or(now),
            );
        }
        if self.lifecycle.probes_run() {
            if self.saved_probes.is_none() {
                let saved = self.read_saved_probes().await;
                self.prober.restore(saved.clone());
                self.saved_probes = Some(saved);
            }
            let pod_ip = self.pod_ip(&observed);
            self.prober.sync(&self.all_specs(), &observed, &pod_ip);
        }
        let unhealthy = self.unhealthy(&observed);
        let plan = plan::plan(plan::Input {
            pod: &self.pod,
            observed: &observed,
            backoff: &self.backoff,
            failures: &self.failures,
            unhealthy: &unhealthy,
            started_at: self.start_time,
            sandbox_hold: self.sandbox_hold.as_ref().map(|h| h.until),
            now,
        });
        if plan.deadline_exceeded {
            self.exceed_deadline();
        }
        let held = self.sandbox_hold.as_ref().filter(|h| h.until > now);
        if let Some(hold) = held.filter(|_| plan.is_empty()) {
            tracing::debug!(reason = %hold.error, "sandbox creation backing off");
        }
        self.report_waiting(&plan);
        self.publish(&observed, &plan);
        if plan.is_empty() {
            self.known = Some(observed);
            return Ok(plan.requeue_after);
        }
        if let Some(ids) = self.execute(&plan, &observed).await? {
            self.created = Some((observed, ids));
        }
        // Look again right away: the steps changed what there is to observe.
        Ok(Some(Duration::ZERO))
    }

    /// The pod's containers after a sync that only created some: those
    /// observed `before` (nothing stopped or removed them: only this worker
    /// does, and a death wakes it again) plus the created ones, inspected.
    /// Lists the pod when one of those is gone already.
    async fn observe_created(
        &self,
        mut before: Vec<ContainerInfo>,
        ids: &[String],
    ) -> Result<Vec<ContainerInfo>, RuntimeError> {
        let runtime = self.ctx.runtime.as_ref();
        let inspected = join_all(ids.iter().map(|id| runtime.inspect_container(id))).await;
        for info in inspected {
            match info? {
                Some(info) => before.push(info),
                None => return runtime.list_containers(Some(&self.uid)).await,
            }
        }
        crate::runtime::sort_listing(&mut before);
        Ok(before)
    }

    /// Reads the termination messages of exited containers not read yet:
    /// the container's termination-log file (its last 4096 bytes), or with
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
            let bytes = read_tail(&path, TERMINATION_MESSAGE_LIMIT)
                .await
                .unwrap_or_default();
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
    /// (`read_tail` below keeps the end of a file the same way.)
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
            for kind in [ProbeKind::Startup, ProbeKind::Liveness] {
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
            match w.reason {
                WaitingReason::CrashLoopBackOff => self.ctx.recorder.warning(
                    &involved,
                    "BackOff",
                    format!(
                        "Back-off restarting failed container {name} in pod {}",
                        self.pod_ref.name
                    ),
                ),
                WaitingReason::ImagePullBackOff => self.ctx.recorder.normal(
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
        let terminating_since = self.lifecycle.terminating_since();
        let results = self.prober.results().clone();
        let mut probes = BTreeMap::new();
        for c in observed {
            for kind in [
                ProbeKind::Startup,
                ProbeKind::Liveness,
                ProbeKind::Readiness,
            ] {
                if let Some(r) = results.get(&c.id, kind) {
                    probes.insert((c.id.clone(), kind), r);
                }
            }
        }
        if self.lifecycle.probes_run() {
            self.save_probes(&probes);
        }
        let mut st = status::pod_status(StatusInput {
            pod: &self.pod,
            observed,
            waiting: &plan.waiting,
            host_ip: &self.ctx.host_ip,
            start_time: self.start_time,
            terminating: terminating_since.is_some(),
            deadline_exceeded: self.lifecycle.deadline_exceeded(),
            probes: &probes,
            messages: &self.term_messages,
        });
        // lastTransitionTime: when a condition's status last changed.
        let now = Time(self.ctx.clock.now());
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
        if let Some(since) = terminating_since {
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

    /// The probe results an earlier rkubelet saved for this pod; nothing
    /// when there is no (readable) file.
    async fn read_saved_probes(&self) -> SavedResults {
        let dir = pod_dir(&self.ctx.root_dir, &self.uid);
        match tokio::fs::read_to_string(probe_results_path(&dir)).await {
            Ok(text) => SavedResults::decode(&text),
            Err(_) => SavedResults::default(),
        }
    }

    /// Saves the known startup and readiness results when they changed:
    /// written to a temporary file and renamed over the old one, so a
    /// restart reads either the old or the new results. Only into an
    /// existing pod directory (never re-creates a removed one).
    fn save_probes(&mut self, probes: &BTreeMap<(String, ProbeKind), ProbeResult>) {
        let saved = SavedResults::of(probes);
        // Not before the earlier results were read back, nor unchanged.
        if self.saved_probes.as_ref().is_none_or(|s| *s == saved) {
            return;
        }
        let dir = pod_dir(&self.ctx.root_dir, &self.uid);
        if !dir.is_dir() {
            return;
        }
        let path = probe_results_path(&dir);
        let tmp = path.with_extension("json.tmp");
        let written =
            std::fs::write(&tmp, saved.encode()).and_then(|()| std::fs::rename(&tmp, &path));
        match written {
            Ok(()) => self.saved_probes = Some(saved),
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "cannot save probe results")
            }
        }
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

    /// The address hooks and probes target: the running sandbox's IP, or
    /// loopback for host-network pods.
    fn pod_ip(&self, observed: &[ContainerInfo]) -> String {
        if self.spec().host_network.unwrap_or(false) {
            return "127.0.0.1".into();
        }
        Observed::new(observed)
            .running_sandbox()
            .and_then(|s| s.info.ip.clone())
            .unwrap_or_else(|| "127.0.0.1".into())
    }
}
