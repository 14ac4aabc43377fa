//! Executing a plan: its batches in order, the steps of a batch in parallel.
//!
//! Stopping a container runs its `preStop` hook within the grace period
//! first; sidecars (the stop batches after the first) get what is left of
//! it. A started container's `postStart` hook runs before the next start
//! batch. Start failures become [`StartFailure`]s with backoff for the
//! planner to read; runtime failures fail the sync (it is retried).

use std::time::Duration;

use futures_util::future::join_all;
use k8s_openapi::api::core::v1::Container;
use k8s_openapi::jiff::Timestamp;
use tokio::time::Instant;

use super::{PodWorker, SandboxHold};
use crate::clock::later;
use crate::events::Involved;
use crate::k8s::lifecycle::{PullPolicy, WaitingReason};
use crate::pod::convert::{self, PodSetup};
use crate::pod::layout::{self, pod_dir};
use crate::pod::observed::Observed;
use crate::pod::plan::{Plan, StartFailure, Step};
use crate::runtime::labels;
use crate::runtime::{ContainerInfo, RuntimeError};
use crate::worker::actions::{self, Target};
use crate::worker::volumes::{self, PodSetupError};

const SANDBOX_KEY: &str = "POD";
/// The kubelet's minimum grace left for SIGTERM after a preStop hook.
pub(super) const MIN_GRACE_AFTER_HOOK: Duration = Duration::from_secs(2);
/// Upper bound for a postStart hook (the kubelet has none; a hung hook would
/// hold the pod forever).
const POST_START_TIMEOUT: Duration = Duration::from_secs(120);

/// Why a container could not be started.
enum Failure {
    /// A failure to report on the container and retry with backoff.
    Start {
        reason: WaitingReason,
        message: String,
    },
    /// The runtime itself failed (retry the whole sync).
    Runtime(RuntimeError),
}

impl Failure {
    /// A runtime error: the daemon being unavailable fails the sync, anything
    /// else is a start failure with `reason`.
    fn from_runtime(e: RuntimeError, reason: WaitingReason) -> Self {
        match e {
            RuntimeError::Unavailable(_) => Failure::Runtime(e),
            e => Failure::Start {
                reason,
                message: e.to_string(),
            },
        }
    }
}

/// A container start the plan asks for.
struct Start {
    name: String,
    restart_count: u32,
    restart_of: Option<Timestamp>,
}

/// Whether any instance of container `name` is observed.
fn has_instance(observed: &[ContainerInfo], name: &str) -> bool {
    observed
        .iter()
        .filter_map(ContainerInfo::meta)
        .any(|m| !m.is_sandbox && m.container_name == name)
}

impl PodWorker {
    /// The restart count of a container none of whose instances is left (the
    /// sandbox was recreated, `rkubelet restart pod --recreate`): it counts
    /// on from the instance directories the earlier instances left in the
    /// pod directory, as the kubelet counts on from its log directory.
    fn restart_count_on_disk(&self, name: &str) -> u32 {
        let dir = layout::container_dir(&pod_dir(&self.ctx.root_dir, &self.uid), name);
        match std::fs::read_dir(dir) {
            Ok(entries) => layout::restart_count_after(
                entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned()),
            ),
            Err(_) => 0,
        }
    }

    /// Executes `plan`'s batches in order against what was `observed`.
    ///
    /// Returns the containers it created when that is all it did (no stop,
    /// kill or removal, every create and start succeeded): the caller can
    /// then look at just those instead of listing the pod again.
    pub(super) async fn execute(
        &mut self,
        plan: &Plan,
        observed: &[ContainerInfo],
    ) -> Result<Option<Vec<String>>, RuntimeError> {
        let is_stop = |b: &&Vec<Step>| matches!(b.first(), Some(Step::StopContainer { .. }));
        let stops = plan.batches.iter().take_while(is_stop).count();
        let (stop_batches, rest) = plan.batches.split_at(stops);
        self.stop(stop_batches, observed, self.grace(), false)
            .await?;
        let mut created = (stops == 0).then(Vec::new);
        let mut starts: Vec<Vec<Start>> = Vec::new();
        for batch in rest {
            let mut batch_starts = Vec::new();
            let mut kills = Vec::new();
            let mut removes = Vec::new();
            for step in batch {
                match step {
                    Step::StopContainer { .. } => {}
                    Step::KillUnhealthy {
                        id,
                        name,
                        probe,
                        grace,
                    } => {
                        let (Some(info), Some((spec, init))) = (
                            observed.iter().find(|c| c.id == *id),
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
                        kills.push((info, Some((spec, init)), grace));
                    }
                    Step::RemoveContainer { id } => removes.push(id.as_str()),
                    Step::CreateSandbox { attempt } => match self.create_sandbox(*attempt).await? {
                        Some(id) => created.iter_mut().for_each(|c| c.push(id.clone())),
                        None => created = None,
                    },
                    Step::StartContainer {
                        name,
                        restart_count,
                        restart_of,
                        ..
                    } => {
                        let restart_count = if has_instance(observed, name) {
                            *restart_count
                        } else {
                            (*restart_count).max(self.restart_count_on_disk(name))
                        };
                        batch_starts.push(Start {
                            name: name.clone(),
                            restart_count,
                            restart_of: *restart_of,
                        })
                    }
                }
            }
            if !kills.is_empty() || !removes.is_empty() {
                created = None;
            }
            if !kills.is_empty() {
                let pod_ip = self.pod_ip(observed);
                let this = &*self;
                let killed = kills
                    .iter()
                    .map(|(info, spec, grace)| this.kill_container(info, spec, *grace, &pod_ip));
                join_all(killed)
                    .await
                    .into_iter()
                    .collect::<Result<Vec<()>, _>>()?;
            }
            if !removes.is_empty() {
                let runtime = self.ctx.runtime.as_ref();
                join_all(removes.into_iter().map(|id| runtime.remove_container(id)))
                    .await
                    .into_iter()
                    .collect::<Result<Vec<()>, _>>()?;
            }
            if !batch_starts.is_empty() {
                starts.push(batch_starts);
            }
        }
        if starts.is_empty() {
            return Ok(created);
        }
        let started = self.start(starts, observed).await?;
        Ok(created.zip(started).map(|(mut c, s)| {
            c.extend(s);
            c
        }))
    }

    /// Stops containers batch after batch (the planner's stop order). The
    /// first batch gets `grace`; later ones (sidecars) what is left of it,
    /// at least 2 s. Sandboxes stop with the full `grace`, bounded by the
    /// teardown slots (unless the caller holds one: `slot_held`).
    pub(super) async fn stop(
        &self,
        batches: &[Vec<Step>],
        observed: &[ContainerInfo],
        grace: Duration,
        slot_held: bool,
    ) -> Result<(), RuntimeError> {
        let started = Instant::now();
        let pod_ip = self.pod_ip(observed);
        for (i, batch) in batches.iter().enumerate() {
            let left = if i == 0 {
                grace
            } else {
                grace
                    .saturating_sub(started.elapsed())
                    .max(MIN_GRACE_AFTER_HOOK)
            };
            let stops = batch
                .iter()
                .filter_map(|s| match s {
                    Step::StopContainer { id, .. } => observed.iter().find(|c| c.id == *id),
                    _ => None,
                })
                .map(|info| self.stop_one(info, left, grace, &pod_ip, slot_held));
            for r in join_all(stops).await {
                r?;
            }
        }
        Ok(())
    }

    async fn stop_one(
        &self,
        info: &ContainerInfo,
        left: Duration,
        grace: Duration,
        pod_ip: &str,
        slot_held: bool,
    ) -> Result<(), RuntimeError> {
        if info.meta().is_some_and(|m| m.is_sandbox) {
            // Tearing down a network namespace is CPU work inside Docker:
            // bounded, so a mass removal queues here instead.
            let _slot = if slot_held {
                None
            } else {
                Some(self.ctx.teardown_slot().await?)
            };
            return self.ctx.runtime.stop_container(&info.id, grace).await;
        }
        self.kill_container(info, &self.spec_of(info), left, pod_ip)
            .await
    }

    /// Stops one container: `Killing` event, its preStop hook within the
    /// grace period, then SIGTERM (or STOPSIGNAL) and SIGKILL after what is
    /// left of the grace (at least 2 s after a hook, as the kubelet does).
    async fn kill_container(
        &self,
        info: &ContainerInfo,
        spec: &Option<(Container, bool)>,
        grace: Duration,
        pod_ip: &str,
    ) -> Result<(), RuntimeError> {
        let runtime = self.ctx.runtime.as_ref();
        let mut remaining = grace;
        if let Some((spec, init)) = spec {
            let involved = self.involved.container(&spec.name, *init);
            self.ctx.recorder.normal(
                &involved,
                "Killing",
                format!("Stopping container {}", spec.name),
            );
            if let Some(hook) = spec.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref()) {
                let started = Instant::now();
                let target = Target {
                    container_id: &info.id,
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
        runtime.stop_container(&info.id, remaining).await
    }

    /// Starts the planned containers batch after batch in the running
    /// sandbox, each batch in parallel, then the batch's postStart hooks.
    /// Returns the started containers' ids when every one started.
    async fn start(
        &mut self,
        batches: Vec<Vec<Start>>,
        observed: &[ContainerInfo],
    ) -> Result<Option<Vec<String>>, RuntimeError> {
        let pod_ip = self.pod_ip(observed);
        let observed_index = Observed::new(observed);
        let Some(sandbox) = observed_index.running_sandbox() else {
            return Ok(None);
        };
        let sandbox_id = sandbox.info.id.clone();
        let volumes = match self.volumes(sandbox.info.ip.as_deref()) {
            Ok(volumes) => volumes,
            Err(e) => {
                // A volume cannot be set up: no container can start.
                let message = e.to_string();
                let now = self.ctx.clock.now();
                for s in batches.into_iter().flatten() {
                    let reason = WaitingReason::CreateContainerConfigError;
                    self.record_start_failure(s.name, reason, message.clone(), now);
                }
                return Ok(None);
            }
        };
        let mut started = Some(Vec::new());
        for batch in batches {
            let results =
                join_all(batch.iter().map(|s| {
                    self.start_container(&s.name, s.restart_count, &sandbox_id, &volumes)
                }))
                .await;
            let now = self.ctx.clock.now();
            let mut hooks = Vec::new();
            for (s, result) in batch.into_iter().zip(results) {
                match result {
                    Ok(id) => {
                        self.failures.remove(&s.name);
                        if let Some(finished) = s.restart_of {
                            self.backoff.record(&s.name, finished, now);
                        }
                        hooks.push((s.name, id));
                    }
                    Err(Failure::Runtime(e)) => return Err(e),
                    Err(Failure::Start { reason, message }) => {
                        // A create that succeeded before its start failed
                        // left a container behind: the pod is listed again.
                        started = None;
                        self.record_start_failure(s.name, reason, message, now)
                    }
                }
            }
            for (name, id) in hooks {
                self.post_start(&name, &id, &pod_ip).await?;
                started.iter_mut().for_each(|s| s.push(id.clone()));
            }
        }
        Ok(started)
    }

    fn record_start_failure(
        &mut self,
        name: String,
        reason: WaitingReason,
        message: String,
        now: Timestamp,
    ) {
        let key = format!("{reason}/{name}");
        self.backoff.record(&key, now, now);
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
                retry_at: later(now, delay),
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

    /// The new sandbox's id; `None` when its creation failed (and is held
    /// back by its backoff).
    async fn create_sandbox(&mut self, attempt: u32) -> Result<Option<String>, RuntimeError> {
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
        let slot = self.ctx.start_slot_owned().await?;
        let runtime = self.ctx.runtime.clone();
        let created = self
            .to_completion(async move {
                let created = runtime.run_sandbox(&config).await;
                drop(slot);
                created
            })
            .await;
        match created {
            Ok(id) => {
                self.sandbox_hold = None;
                self.backoff.forget(SANDBOX_KEY);
                Ok(Some(id))
            }
            Err(RuntimeError::Unavailable(m)) => Err(RuntimeError::Unavailable(m)),
            Err(e) => {
                let now = self.ctx.clock.now();
                self.backoff.record(SANDBOX_KEY, now, now);
                let delay = self.backoff.current_delay(SANDBOX_KEY).unwrap_or_default();
                self.ctx.recorder.warning(
                    &self.involved,
                    "FailedCreatePodSandBox",
                    format!("Failed to create pod sandbox: {e}"),
                );
                self.sandbox_hold = Some(SandboxHold {
                    until: later(now, delay),
                    error: e.to_string(),
                });
                Ok(None)
            }
        }
    }

    /// Sets up the pod's volumes and hosts file for the sandbox at
    /// `sandbox_ip`; what a container config needs besides the spec.
    fn volumes(&mut self, sandbox_ip: Option<&str>) -> Result<PodSetup, PodSetupError> {
        let objects = self.objects.borrow().clone();
        let node = crate::node::capacity();
        let paths = self.volumes.setup(&self.pod, &objects, &node)?;
        let pod_ip = sandbox_ip
            .filter(|ip| !ip.is_empty())
            .unwrap_or(&self.ctx.host_ip)
            .to_string();
        let hosts_file = Some(self.volumes.write_hosts_file(&self.pod, &pod_ip)?);
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
        let policy = PullPolicy::of(c);
        let runtime = &self.ctx.runtime;
        let recorder = &self.ctx.recorder;
        let present = match policy {
            PullPolicy::Always => None,
            PullPolicy::IfNotPresent | PullPolicy::Never => runtime
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
        if policy == PullPolicy::Never {
            let reason = WaitingReason::ErrImageNeverPull;
            let message =
                format!("Container image {image:?} is not present with pull policy of Never");
            recorder.warning(involved, reason.as_str(), message.clone());
            return Err(Failure::Start { reason, message });
        }
        recorder.normal(involved, "Pulling", format!("Pulling image {image:?}"));
        let (mut credentials, warnings) =
            crate::registry::pod_credentials(&self.pod, &self.objects.borrow());
        for w in warnings {
            recorder.warning(involved, "FailedToRetrieveImagePullSecret", w);
        }
        credentials.extend(crate::registry::node_credentials());
        let auth = crate::registry::find(&credentials, &image);
        let started = Instant::now();
        let progress = |done: i64, total: i64| {
            recorder.normal(
                involved,
                "Pulling",
                format!(
                    "Pulling image {image:?}: {} of {}",
                    crate::registry::human_bytes(done),
                    crate::registry::human_bytes(total)
                ),
            );
        };
        let pulled = {
            let _slot = crate::registry::pull_slot().await;
            runtime.pull_image_with_auth(&image, auth, &progress).await
        };
        match pulled {
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
            Err(e @ RuntimeError::Unavailable(_)) => Err(Failure::Runtime(e)),
            Err(e) => {
                recorder.warning(
                    involved,
                    "Failed",
                    format!("Failed to pull image {image:?}: {e}"),
                );
                Err(Failure::Start {
                    reason: WaitingReason::ErrImagePull,
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
                reason: WaitingReason::CreateContainerError,
                message: format!("no container {name:?} in the pod spec"),
            });
        };
        let involved = self.involved.container(name, init);
        self.ensure_image(&spec, &involved).await?;
        let config_error = |message: String| Failure::Start {
            reason: WaitingReason::CreateContainerConfigError,
            message,
        };
        let mut config = convert::container_config(
            &self.pod,
            &self.pod_ref,
            &spec,
            sandbox_id,
            restart_count,
            volumes,
        )
        .map_err(|e| config_error(e.0))?;
        let events = (self.ctx.recorder.as_ref(), &involved);
        volumes::prepare_container(
            &self.pod,
            &spec,
            restart_count,
            &mut config,
            volumes,
            events,
        )
        .map_err(|e| config_error(e.to_string()))?;
        config
            .labels
            .insert(labels::NODE.into(), self.ctx.node_name.clone());
        let runtime = self.ctx.runtime.clone();
        let _slot = self.ctx.start_slot().await.map_err(Failure::Runtime)?;
        let container_type = if init { "init_container" } else { "container" };
        let counted = |e: Failure| {
            let code = match &e {
                Failure::Start { reason, .. } => reason.as_str(),
                Failure::Runtime(_) => "RuntimeUnavailable",
            };
            crate::metrics::global().container_started(container_type, Some(code));
            e
        };
        let create = {
            let runtime = runtime.clone();
            async move { runtime.create_container(&config).await }
        };
        let id = self
            .to_completion(create)
            .await
            .map_err(|e| Failure::from_runtime(e, WaitingReason::CreateContainerError))
            .map_err(counted)?;
        self.ctx
            .recorder
            .normal(&involved, "Created", format!("Created container {name}"));
        tracing::info!(container = %name, restart_count, id = %id, "starting container");
        let start = {
            let id = id.clone();
            async move { runtime.start_container(&id).await }
        };
        self.to_completion(start)
            .await
            .map_err(|e| Failure::from_runtime(e, WaitingReason::RunContainerError))
            .map_err(counted)?;
        crate::metrics::global().container_started(container_type, None);
        self.ctx
            .recorder
            .normal(&involved, "Started", format!("Started container {name}"));
        Ok(id)
    }
}
