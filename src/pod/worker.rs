//! The per-pod worker: one task per pod UID, executing plans.
//!
//! A worker observes its pod's containers, asks [`plan`](super::plan) what to
//! do, executes the steps through the [`ContainerRuntime`], publishes status to
//! the [`PodStore`], and sleeps until a runtime event wakes it, a backoff
//! expires, or it is told to terminate. It keeps only soft state in memory
//! (backoff, recent start failures); everything else is re-observed.
//!
//! Termination (manifest removed or replaced) stops app containers in
//! parallel, then the sandbox, removes them all and deletes the pod's
//! directory. Daemon shutdown just stops the worker and leaves pods running.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_util::future::join_all;
use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::jiff::Timestamp;
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::convert::{self, PodContext};
use super::objects::{ObjectStore, Objects};
use super::plan::{self, Plan, StartFailure, Step};
use super::status::{self, StatusInput};
use super::volumes::{self, PodVolumes};
use crate::backoff::{Backoff, BackoffPolicy};
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
}

/// One pod as served by the API: spec + status, and where it came from.
#[derive(Debug, Clone)]
pub struct PodRecord {
    pub pod: Pod,
    pub source: String,
}

/// The latest status of every pod, by UID. Written by workers, read by the API.
#[derive(Debug, Default)]
pub struct PodStore {
    pods: RwLock<BTreeMap<String, PodRecord>>,
}

impl PodStore {
    pub fn put(&self, uid: &str, record: PodRecord) {
        if let Ok(mut m) = self.pods.write() {
            m.insert(uid.to_string(), record);
        }
    }
    pub fn remove(&self, uid: &str) {
        if let Ok(mut m) = self.pods.write() {
            m.remove(uid);
        }
    }
    /// All pods, ordered by namespace and name.
    pub fn list(&self) -> Vec<PodRecord> {
        let mut v: Vec<PodRecord> = self
            .pods
            .read()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        v.sort_by(|a, b| {
            (&a.pod.metadata.namespace, &a.pod.metadata.name)
                .cmp(&(&b.pod.metadata.namespace, &b.pod.metadata.name))
        });
        v
    }
}

/// Directory of a pod's volumes and state under the root dir.
pub fn pod_dir(root: &Path, uid: &str) -> PathBuf {
    root.join("pods").join(uid)
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
    let containers = runtime.list_containers(Some(uid)).await?;
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
    backoff: Backoff,
    failures: BTreeMap<String, StartFailure>,
    /// A sandbox creation failure holds everything until then.
    sandbox_hold: Option<(Timestamp, String)>,
    volumes: PodVolumes,
    objects: watch::Receiver<Arc<Objects>>,
    start_time: Option<Timestamp>,
    wake: Arc<Notify>,
}

const SANDBOX_KEY: &str = "POD";

fn after(now: Timestamp, d: Duration) -> Timestamp {
    now.checked_add(k8s_openapi::jiff::SignedDuration::try_from(d).unwrap_or_default())
        .unwrap_or(now)
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
        let worker = PodWorker {
            pod_ref: convert::pod_ref(&pod, &source),
            backoff: Backoff::new(ctx.backoff),
            volumes: PodVolumes::new(pod_dir(&ctx.root_dir, &uid)),
            objects: ctx.objects.subscribe(),
            ctx,
            pod,
            source,
            uid: uid.clone(),
            failures: BTreeMap::new(),
            sandbox_hold: None,
            start_time: None,
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
        loop {
            if terminate.is_cancelled() {
                self.terminate(&shutdown).await;
                return;
            }
            let requeue = tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = terminate.cancelled() => continue,
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

    /// Observes, plans, executes; returns when to look again.
    async fn sync(&mut self) -> Result<Option<Duration>, RuntimeError> {
        let objects = self.objects.borrow_and_update().clone();
        if self
            .volumes
            .refresh(&self.pod, &objects, &volumes::node_capacity())
        {
            // A ConfigMap or Secret may have appeared: retry at once.
            self.failures
                .retain(|_, f| f.reason != "CreateContainerConfigError");
        }
        let observed = self.ctx.runtime.list_containers(Some(&self.uid)).await?;
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
        let mut plan = plan::plan(plan::Input {
            pod: &self.pod,
            observed: &observed,
            backoff: &self.backoff,
            failures: &self.failures,
            now,
        });
        if let Some((until, why)) = &self.sandbox_hold {
            if *until > now
                && plan
                    .steps
                    .iter()
                    .any(|s| matches!(s, Step::CreateSandbox { .. }))
            {
                let wait = Duration::try_from(until.duration_since(now)).unwrap_or_default();
                tracing::debug!(reason = %why, ?wait, "sandbox creation backing off");
                plan.steps.clear();
                plan.requeue_after = Some(wait);
            }
        }
        self.publish(&observed, &plan, false);
        if plan.steps.is_empty() {
            return Ok(plan.requeue_after);
        }
        self.execute(&plan, &observed).await?;
        // Look again right away: the steps changed what there is to observe.
        Ok(Some(Duration::ZERO))
    }

    fn publish(&self, observed: &[ContainerInfo], plan: &Plan, terminating: bool) {
        let mut pod = (*self.pod).clone();
        pod.status = Some(status::pod_status(StatusInput {
            pod: &self.pod,
            observed,
            waiting: &plan.waiting,
            host_ip: &self.ctx.host_ip,
            start_time: self.start_time,
            terminating,
        }));
        self.ctx.store.put(
            &self.uid,
            PodRecord {
                pod,
                source: self.source.clone(),
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

    async fn execute(
        &mut self,
        plan: &Plan,
        observed: &[ContainerInfo],
    ) -> Result<(), RuntimeError> {
        let runtime = self.ctx.runtime.clone();
        let grace = Duration::from_secs(self.pod_ref.grace_period_seconds.max(0) as u64);
        let stops: Vec<_> = plan
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::StopContainer { id, name } => Some((id.clone(), name.clone())),
                _ => None,
            })
            .collect();
        let results = join_all(stops.iter().map(|(id, name)| {
            let runtime = runtime.clone();
            async move {
                tracing::info!(container = %name, "stopping container");
                runtime.stop_container(id, grace).await
            }
        }))
        .await;
        results.into_iter().collect::<Result<Vec<()>, _>>()?;
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
        let starts: Vec<(String, u32, bool, Option<Timestamp>)> = plan
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::StartContainer {
                    name,
                    restart_count,
                    init,
                    restart_of,
                } => Some((name.clone(), *restart_count, *init, *restart_of)),
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
        let results = match self.volumes(sandbox.ip.as_deref()) {
            Ok(volumes) => {
                join_all(starts.iter().map(|(name, count, _, _)| {
                    self.start_container(name, *count, &sandbox_id, &volumes)
                }))
                .await
            }
            Err(message) => starts
                .iter()
                .map(|_| {
                    Err(Failure::Start {
                        reason: "CreateContainerConfigError".into(),
                        message: message.clone(),
                    })
                })
                .collect(),
        };
        let now = Timestamp::now();
        for ((name, _, _, restart_of), result) in starts.into_iter().zip(results) {
            match result {
                Ok(()) => {
                    self.failures.remove(&name);
                    if let Some(finished) = restart_of {
                        self.backoff.record(&name, finished);
                    }
                }
                Err(Failure::Runtime(e)) => return Err(e),
                Err(Failure::Start { reason, message }) => {
                    let key = format!("{reason}/{name}");
                    let wait = self.backoff.wait(&key, now, now);
                    self.backoff.record(&key, now);
                    let delay = self.backoff.current_delay(&key).unwrap_or(wait);
                    tracing::warn!(container = %name, %reason, %message, retry_in = ?delay,
                        "cannot start container");
                    self.failures.insert(
                        name,
                        StartFailure {
                            reason,
                            message,
                            retry_at: after(now, delay),
                        },
                    );
                }
            }
        }
        Ok(())
    }

    async fn create_sandbox(&mut self, attempt: u32) -> Result<(), RuntimeError> {
        let dir = pod_dir(&self.ctx.root_dir, &self.uid);
        if let Err(e) = tokio::fs::create_dir_all(&dir).await {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot create pod directory");
        }
        let mut config =
            convert::sandbox_config(&self.pod, &self.pod_ref, &self.ctx.infra_image, attempt);
        config
            .labels
            .insert(labels::NODE.into(), self.ctx.node_name.clone());
        tracing::info!(name = %config.name, "creating pod sandbox");
        match self.ctx.runtime.run_sandbox(&config).await {
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
                tracing::warn!(error = %e, retry_in = ?delay, "FailedCreatePodSandBox");
                self.sandbox_hold = Some((after(now, delay), e.to_string()));
                Ok(())
            }
        }
    }

    /// Sets up the pod's volumes and hosts file for the sandbox at
    /// `sandbox_ip`; what a container config needs besides the spec.
    fn volumes(&mut self, sandbox_ip: Option<&str>) -> Result<PodContext, String> {
        let objects = self.objects.borrow().clone();
        let node = volumes::node_capacity();
        let paths = self.volumes.setup(&self.pod, &objects, &node)?;
        let pod_ip = sandbox_ip
            .filter(|ip| !ip.is_empty())
            .unwrap_or(&self.ctx.host_ip)
            .to_string();
        let hosts_file = Some(self.volumes.write_hosts_file(&self.pod, &pod_ip)?);
        Ok(PodContext {
            volumes: paths,
            objects,
            pod_ip,
            host_ip: self.ctx.host_ip.clone(),
            node,
            pod_dir: Some(pod_dir(&self.ctx.root_dir, &self.uid)),
            hosts_file,
        })
    }

    async fn ensure_image(&self, c: &Container) -> Result<(), Failure> {
        let image = c.image.clone().unwrap_or_default();
        let policy = c.image_pull_policy.as_deref().unwrap_or("IfNotPresent");
        let runtime = &self.ctx.runtime;
        let present = match policy {
            "Always" => None,
            _ => runtime
                .inspect_image(&image)
                .await
                .map_err(Failure::Runtime)?,
        };
        if present.is_some() {
            return Ok(());
        }
        if policy == "Never" {
            return Err(Failure::Start {
                reason: "ErrImageNeverPull".into(),
                message: format!(
                    "Container image \"{image}\" is not present with pull policy of Never"
                ),
            });
        }
        tracing::info!(%image, "pulling image");
        match runtime.pull_image(&image).await {
            Ok(_) => Ok(()),
            Err(RuntimeError::Unavailable(m)) => {
                Err(Failure::Runtime(RuntimeError::Unavailable(m)))
            }
            Err(e) => Err(Failure::Start {
                reason: "ErrImagePull".into(),
                message: e.to_string(),
            }),
        }
    }

    async fn start_container(
        &self,
        name: &str,
        restart_count: u32,
        sandbox_id: &str,
        volumes: &PodContext,
    ) -> Result<(), Failure> {
        let Some((spec, _init)) = self.container_spec(name) else {
            return Ok(());
        };
        self.ensure_image(&spec).await?;
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
        volumes::prepare_container(&self.pod, &spec, restart_count, &mut config, volumes).map_err(
            |message| Failure::Start {
                reason: "CreateContainerConfigError".into(),
                message,
            },
        )?;
        config
            .labels
            .insert(labels::NODE.into(), self.ctx.node_name.clone());
        let runtime = &self.ctx.runtime;
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
        tracing::info!(container = %name, restart_count, id = %id, "starting container");
        runtime.start_container(&id).await.map_err(|e| match e {
            RuntimeError::Unavailable(_) => Failure::Runtime(e),
            e => Failure::Start {
                reason: "RunContainerError".into(),
                message: e.to_string(),
            },
        })
    }

    /// Stops and removes the pod, retrying until done or daemon shutdown.
    async fn terminate(&mut self, shutdown: &CancellationToken) {
        tracing::info!("terminating pod");
        let grace = Duration::from_secs(self.pod_ref.grace_period_seconds.max(0) as u64);
        if let Ok(observed) = self.ctx.runtime.list_containers(Some(&self.uid)).await {
            self.publish(&observed, &Plan::default(), true);
        }
        let runtime = self.ctx.runtime.as_ref();
        if !kill_pod_until_done(
            runtime,
            &self.ctx.root_dir,
            &self.uid,
            Some(grace),
            shutdown,
        )
        .await
        {
            return;
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
