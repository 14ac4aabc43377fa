//! The planner: what should happen to one pod now.
//!
//! [`plan`] is a pure function of the desired pod, the containers observed in
//! the runtime, the restart backoff, recent start failures, the sandbox
//! creation hold, when the pod started and the time. It returns an ordered
//! [`Plan`] — batches of [`Step`]s for the worker to execute one batch after
//! the other — and when to look again. It never talks to Docker and never
//! sleeps, so every rule is unit-tested here.
//!
//! The rules follow the kubelet's `computePodActions`: one sandbox per pod,
//! recreated (with every container) when it is gone, but not before a failed
//! creation's backoff ran out; init containers one at a time, in order; app
//! containers restarted according to `restartPolicy` with crash-loop backoff;
//! the newest dead instance of each container kept for `lastState`, older
//! ones removed; the sandbox stopped once the pod is done; everything stopped
//! for good once `activeDeadlineSeconds` ran out.
//!
//! The order of the steps is decided here too: stops first, in the order of
//! [`stop_batches`] (regular containers in parallel, then sidecars one by one
//! in reverse start order, then the sandbox); then kills for failed probes,
//! removals, the sandbox creation; then container starts, in batches that
//! each end with a container that has a `postStart` hook (the next batch
//! starts only after that hook finished).

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use k8s_openapi::jiff::Timestamp;

use super::observed::{Observed, Seen};
use crate::backoff::Backoff;
use crate::clock::{elapsed, later};
pub use crate::k8s::lifecycle::is_sidecar;
use crate::k8s::lifecycle::{RestartPolicy, WaitingReason};
use crate::runtime::{ContainerInfo, ContainerState};

/// A recent failure to start a container that did not produce a container
/// (image pull, config error, runtime refusal), retried at `retry_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartFailure {
    /// Waiting reason while retrying: `ErrImagePull`,
    /// `CreateContainerConfigError`, `ErrImageNeverPull`, `RunContainerError`…
    pub reason: WaitingReason,
    pub message: String,
    pub retry_at: Timestamp,
    /// When the failure happened.
    pub failed_at: Timestamp,
}

/// How long a failed pull shows as `ErrImagePull` before `ImagePullBackOff`.
pub const ERR_IMAGE_PULL_SHOWN_FOR: Duration = Duration::from_secs(2);

/// The event and status message of a pod past its `activeDeadlineSeconds`.
pub const DEADLINE_EXCEEDED_MESSAGE: &str =
    "Pod was active on the node longer than the specified deadline";

/// One action on the runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Create and start a new sandbox with this attempt number.
    CreateSandbox { attempt: u32 },
    /// Create and start a container instance. `restart_of` is the finish time
    /// of the instance this replaces (for backoff bookkeeping).
    StartContainer {
        name: String,
        restart_count: u32,
        init: bool,
        restart_of: Option<Timestamp>,
    },
    /// Stop a running container or sandbox (pod grace period; `name` is
    /// `POD` for a sandbox).
    StopContainer { id: String, name: String },
    /// Remove a stopped container.
    RemoveContainer { id: String },
    /// Kill a running container whose liveness or startup probe failed; the
    /// restart policy decides what follows. `grace` is the probe's own
    /// `terminationGracePeriodSeconds`, when set.
    KillUnhealthy {
        id: String,
        name: String,
        probe: super::probe::ProbeKind,
        grace: Option<Duration>,
    },
}

/// A running container whose liveness or startup probe failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unhealthy {
    pub probe: super::probe::ProbeKind,
    pub grace: Option<Duration>,
}

/// Why a container is not running right now, for status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub reason: WaitingReason,
    pub message: String,
}

/// The planner's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// What to do, in order: the steps of one batch run in parallel; a batch
    /// begins once the one before it finished. No empty batches.
    pub batches: Vec<Vec<Step>>,
    /// Containers (by name) waiting for a reason other than not being started yet.
    pub waiting: BTreeMap<String, Waiting>,
    /// Look again after this long even without an event (backoff expiry).
    /// `Some(ZERO)` means right after executing the steps.
    pub requeue_after: Option<Duration>,
    /// `activeDeadlineSeconds` ran out: the batches stop everything, nothing
    /// is started again, and the pod is `Failed` with `DeadlineExceeded`.
    pub deadline_exceeded: bool,
}

impl Plan {
    /// Every step, in execution order.
    pub fn steps(&self) -> impl Iterator<Item = &Step> {
        self.batches.iter().flatten()
    }

    /// Nothing to execute.
    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// Look again after at most `after`.
    fn requeue(&mut self, after: Duration) {
        self.requeue_after = Some(match self.requeue_after {
            Some(d) => d.min(after),
            None => after,
        });
    }
}

/// What the planner looks at.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub pod: &'a Pod,
    /// The pod's containers as observed (any state, any sandbox).
    pub observed: &'a [ContainerInfo],
    pub backoff: &'a Backoff,
    pub failures: &'a BTreeMap<String, StartFailure>,
    /// Running containers (by id) to kill for a failed probe.
    pub unhealthy: &'a BTreeMap<String, Unhealthy>,
    /// When the pod became active on this node (`status.startTime`); the
    /// `activeDeadlineSeconds` count from here.
    pub started_at: Option<Timestamp>,
    /// A sandbox creation failed: no new sandbox before this time.
    pub sandbox_hold: Option<Timestamp>,
    pub now: Timestamp,
}

/// The message the kubelet uses for a crash-looping container.
pub fn crash_loop_message(delay: Duration, container: &str, pod: &Pod) -> String {
    format!(
        "back-off {} restarting failed container={} pod={}_{}({})",
        humantime::format_duration(delay),
        container,
        pod.metadata.name.as_deref().unwrap_or_default(),
        crate::k8s::meta::namespace_of(pod),
        pod.metadata.uid.as_deref().unwrap_or_default(),
    )
}

/// When the pod's `activeDeadlineSeconds` run out, if it has one.
pub fn deadline(pod: &Pod, started_at: Option<Timestamp>) -> Option<Timestamp> {
    let secs = pod.spec.as_ref()?.active_deadline_seconds?;
    Some(later(started_at?, Duration::from_secs(secs.max(0) as u64)))
}

/// The order to stop containers in, as the kubelet: regular containers
/// (and containers the spec does not know) in parallel, then sidecars one by
/// one in reverse start order, then the sandboxes. Each container becomes a
/// [`Step::StopContainer`]; the result has no empty batches.
pub fn stop_batches<'a>(
    spec: Option<&PodSpec>,
    to_stop: impl IntoIterator<Item = &'a Seen<'a>>,
) -> Vec<Vec<Step>> {
    let sidecar_order: Vec<&str> = spec
        .and_then(|s| s.init_containers.as_ref())
        .into_iter()
        .flatten()
        .filter(|c| is_sidecar(c))
        .map(|c| c.name.as_str())
        .collect();
    let step = |s: &Seen<'_>| Step::StopContainer {
        id: s.info.id.clone(),
        name: s.meta.container_name.clone(),
    };
    let mut regular = Vec::new();
    let mut sidecars = Vec::new();
    let mut sandboxes = Vec::new();
    for s in to_stop {
        if s.meta.is_sandbox {
            sandboxes.push(step(s));
        } else if let Some(i) = sidecar_order
            .iter()
            .position(|n| *n == s.meta.container_name)
        {
            sidecars.push((i, step(s)));
        } else {
            regular.push(step(s));
        }
    }
    sidecars.sort_by_key(|(i, _)| std::cmp::Reverse(*i));
    let mut batches = vec![regular];
    batches.extend(sidecars.into_iter().map(|(_, s)| vec![s]));
    batches.push(sandboxes);
    batches.retain(|b| !b.is_empty());
    batches
}

/// Every running container of the pod (sandbox included), in stop order:
/// what terminating the pod, or its deadline running out, stops.
pub fn stop_all(pod: &Pod, observed: &[ContainerInfo]) -> Vec<Vec<Step>> {
    let observed = Observed::new(observed);
    stop_batches(
        pod.spec.as_ref(),
        observed.iter().filter(|s| s.is_running()),
    )
}

/// Splits container starts into batches: a container with a `postStart`
/// hook ends its batch, so the next batch starts after that hook finished.
pub fn start_batches(spec: Option<&PodSpec>, starts: Vec<Step>) -> Vec<Vec<Step>> {
    let has_post_start = |name: &str| {
        spec.and_then(|s| container_spec(s, name))
            .and_then(|c| c.lifecycle.as_ref())
            .is_some_and(|l| l.post_start.is_some())
    };
    let mut batches = vec![Vec::new()];
    for step in starts {
        let ends_batch = matches!(&step, Step::StartContainer { name, .. } if has_post_start(name));
        if let Some(last) = batches.last_mut() {
            last.push(step);
        }
        if ends_batch {
            batches.push(Vec::new());
        }
    }
    batches.retain(|b| !b.is_empty());
    batches
}

/// The spec of container `name`, init or app.
fn container_spec<'s>(spec: &'s PodSpec, name: &str) -> Option<&'s Container> {
    spec.init_containers
        .iter()
        .flatten()
        .chain(&spec.containers)
        .find(|c| c.name == name)
}

struct Planner<'a> {
    input: Input<'a>,
    observed: Observed<'a>,
    policy: RestartPolicy,
    /// The steps so far, unordered; [`Planner::finish`] orders them.
    steps: Vec<Step>,
    plan: Plan,
}

impl<'a> Planner<'a> {
    /// A pending start failure for `c` that is still backing off. A failed
    /// pull shows as `ErrImagePull` at first, then as `ImagePullBackOff`.
    fn failure_pending(&mut self, c: &Container) -> bool {
        let name = c.name.as_str();
        let Some(f) = self.input.failures.get(name) else {
            return false;
        };
        let now = self.input.now;
        if f.retry_at <= now {
            return false;
        }
        let mut waiting = Waiting {
            reason: f.reason,
            message: f.message.clone(),
        };
        let mut switch_in = None;
        if f.reason == WaitingReason::ErrImagePull {
            let switch = later(f.failed_at, ERR_IMAGE_PULL_SHOWN_FOR);
            if now >= switch {
                waiting = Waiting {
                    reason: WaitingReason::ImagePullBackOff,
                    message: format!(
                        "Back-off pulling image {:?}: {}: {}",
                        c.image.as_deref().unwrap_or_default(),
                        WaitingReason::ErrImagePull,
                        f.message
                    ),
                };
            } else {
                switch_in = Some(elapsed(now, switch));
            }
        }
        let retry_in = elapsed(now, f.retry_at);
        self.plan.waiting.insert(name.to_string(), waiting);
        self.plan.requeue(retry_in);
        if let Some(d) = switch_in {
            self.plan.requeue(d);
        }
        true
    }

    /// Decides about one container given its newest instance.
    fn decide_container(&mut self, c: &Container, init: bool, sandbox_id: &str) -> Settled {
        let name = c.name.as_str();
        let newest = self.observed.newest(name).map(|s| Newest {
            id: s.info.id.clone(),
            state: s.info.state,
            restart_count: s.meta.restart_count,
            in_sandbox: s.meta.sandbox_id.as_deref() == Some(sandbox_id),
            exit_code: s.info.exit_code,
            finished_at: s.info.finished_at,
        });
        let policy = if init {
            self.policy.for_init(is_sidecar(c))
        } else {
            self.policy
        };
        let Some(newest) = newest else {
            if self.failure_pending(c) {
                return Settled::Waiting;
            }
            self.steps.push(Step::StartContainer {
                name: name.into(),
                restart_count: 0,
                init,
                restart_of: None,
            });
            return Settled::Starting;
        };
        let in_sandbox = newest.in_sandbox;
        match newest.state {
            ContainerState::Running if in_sandbox => match self.input.unhealthy.get(&newest.id) {
                Some(u) => {
                    self.steps.push(Step::KillUnhealthy {
                        id: newest.id,
                        name: name.into(),
                        probe: u.probe,
                        grace: u.grace,
                    });
                    self.plan.requeue_after = Some(Duration::ZERO);
                    Settled::Starting
                }
                None => Settled::Running,
            },
            ContainerState::Running => {
                // Left running in a sandbox that is gone: replace it.
                self.steps.push(Step::StopContainer {
                    id: newest.id,
                    name: name.into(),
                });
                self.plan.requeue_after = Some(Duration::ZERO);
                Settled::Starting
            }
            ContainerState::Created | ContainerState::Unknown => {
                // Created but never started (rkubelet stopped in between):
                // replace it under the same restart count.
                if self.failure_pending(c) {
                    return Settled::Waiting;
                }
                self.steps.push(Step::RemoveContainer { id: newest.id });
                self.steps.push(Step::StartContainer {
                    name: name.into(),
                    restart_count: newest.restart_count,
                    init,
                    restart_of: None,
                });
                Settled::Starting
            }
            ContainerState::Exited => {
                let code = newest.exit_code;
                // A new sandbox does not resurrect a finished app container.
                if !policy.restarts(code) && (in_sandbox || !init) {
                    return if code == Some(0) {
                        Settled::Succeeded
                    } else {
                        Settled::Failed
                    };
                }
                if self.failure_pending(c) {
                    return Settled::Waiting;
                }
                let finished = newest.finished_at.unwrap_or(self.input.now);
                let wait = self.input.backoff.wait(name, finished, self.input.now);
                if !wait.is_zero() {
                    let delay = self.input.backoff.current_delay(name).unwrap_or(wait);
                    self.plan.waiting.insert(
                        name.into(),
                        Waiting {
                            reason: WaitingReason::CrashLoopBackOff,
                            message: crash_loop_message(delay, name, self.input.pod),
                        },
                    );
                    self.plan.requeue(wait);
                    return Settled::Waiting;
                }
                self.steps.push(Step::StartContainer {
                    name: name.into(),
                    restart_count: newest.restart_count + 1,
                    init,
                    restart_of: Some(finished),
                });
                Settled::Starting
            }
        }
    }

    /// Removes dead instances beyond the newest of each container, every
    /// instance that was created but never started (the newest one in the
    /// current sandbox is replaced by [`Planner::decide_container`]), and
    /// sandboxes other than the current one that do not run — never-started
    /// ones included, as the kubelet's garbage collection removes non-ready
    /// sandboxes.
    fn collect_garbage(&mut self, current_sandbox: Option<&str>) {
        let mut removals = Vec::new();
        let mut names: Vec<&str> = self
            .observed
            .containers()
            .map(|s| s.meta.container_name.as_str())
            .collect();
        names.dedup();
        for name in names {
            let dead = self
                .observed
                .instances(name)
                .into_iter()
                .filter(|s| s.state() == ContainerState::Exited);
            removals.extend(dead.skip(1).map(|s| s.info.id.clone()));
        }
        let never_started =
            |s: &Seen<'_>| matches!(s.state(), ContainerState::Created | ContainerState::Unknown);
        removals.extend(
            self.observed
                .containers()
                .filter(|s| never_started(s))
                .map(|s| s.info.id.clone()),
        );
        for s in self.observed.sandboxes() {
            if Some(s.id()) != current_sandbox && !s.is_running() {
                removals.push(s.info.id.clone());
            }
        }
        for id in removals {
            let step = Step::RemoveContainer { id };
            if !self.steps.contains(&step) {
                self.steps.push(step);
            }
        }
    }

    /// Stops whatever still runs: every container, or only those outside
    /// the sandbox `except_in`.
    fn stop_running(&mut self, sandboxes_too: bool) {
        let running: Vec<Step> = self
            .observed
            .iter()
            .filter(|s| s.is_running() && (sandboxes_too || !s.meta.is_sandbox))
            .map(|s| Step::StopContainer {
                id: s.info.id.clone(),
                name: s.meta.container_name.clone(),
            })
            .collect();
        self.steps.extend(running);
    }

    /// Orders the collected steps into batches: stops (in stop order),
    /// kills, removals, the sandbox creation, then starts in postStart
    /// batches.
    fn finish(mut self) -> Plan {
        let spec = self.input.pod.spec.as_ref();
        let steps = std::mem::take(&mut self.steps);
        let stop_ids: Vec<&str> = steps
            .iter()
            .filter_map(|s| match s {
                Step::StopContainer { id, .. } => Some(id.as_str()),
                _ => None,
            })
            .collect();
        let to_stop = self.observed.iter().filter(|s| stop_ids.contains(&s.id()));
        let mut batches = stop_batches(spec, to_stop);
        let of_kind = |pick: fn(&Step) -> bool| -> Vec<Step> {
            steps.iter().filter(|s| pick(s)).cloned().collect()
        };
        batches.push(of_kind(|s| matches!(s, Step::KillUnhealthy { .. })));
        batches.push(of_kind(|s| matches!(s, Step::RemoveContainer { .. })));
        batches.push(of_kind(|s| matches!(s, Step::CreateSandbox { .. })));
        batches.retain(|b| !b.is_empty());
        let starts = of_kind(|s| matches!(s, Step::StartContainer { .. }));
        batches.extend(start_batches(spec, starts));
        self.plan.batches = batches;
        self.plan
    }
}

/// The newest instance of a container, detached from the borrow of the input.
struct Newest {
    id: String,
    state: ContainerState,
    restart_count: u32,
    in_sandbox: bool,
    exit_code: Option<i64>,
    finished_at: Option<Timestamp>,
}

/// How one container stands after planning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settled {
    Running,
    Starting,
    Waiting,
    Succeeded,
    Failed,
}

/// Computes what to do for a pod that should be running.
pub fn plan(input: Input<'_>) -> Plan {
    let deadline = deadline(input.pod, input.started_at);
    if deadline.is_some_and(|d| input.now >= d) {
        // Stopped for good: nothing starts again, nothing is removed (the
        // dead containers are the pod's record).
        let batches = stop_all(input.pod, input.observed);
        let requeue_after = (!batches.is_empty()).then_some(Duration::ZERO);
        return Plan {
            batches,
            requeue_after,
            deadline_exceeded: true,
            ..Plan::default()
        };
    }
    let mut plan = plan_active(input);
    if let Some(d) = deadline {
        plan.requeue(elapsed(input.now, d));
    }
    plan
}

/// [`plan`] for a pod within its deadline.
fn plan_active(input: Input<'_>) -> Plan {
    let mut p = Planner {
        input,
        observed: Observed::new(input.observed),
        policy: RestartPolicy::of(input.pod),
        steps: Vec::new(),
        plan: Plan::default(),
    };
    let spec = input.pod.spec.clone().unwrap_or_default();

    // The newest sandbox decides.
    let newest_sandbox = p
        .observed
        .newest_sandbox()
        .map(|s| (s.info.id.clone(), s.state(), s.meta.restart_count));

    // Is the pod finished for good? (All app containers terminated and none to
    // be restarted; init failure under Never.)
    let done = pod_is_done(&p, &spec);

    let sandbox_id = match newest_sandbox {
        Some((id, ContainerState::Running, _)) => id,
        other => {
            if done {
                p.collect_garbage(other.as_ref().map(|(id, _, _)| id.as_str()));
                return p.finish();
            }
            if let Some(hold) = input.sandbox_hold.filter(|h| *h > input.now) {
                // A sandbox creation failed: nothing happens until its
                // backoff ran out.
                p.plan.requeue(elapsed(input.now, hold));
                return p.plan;
            }
            // (Re)create the sandbox; first stop whatever still runs in the old one.
            p.stop_running(false);
            let attempt = p.observed.next_sandbox_attempt();
            p.steps.push(Step::CreateSandbox { attempt });
            p.plan.requeue_after = Some(Duration::ZERO);
            p.collect_garbage(None);
            return p.finish();
        }
    };

    // Init containers, one at a time, in order; sidecars stay running.
    let mut initialized = true;
    for c in spec.init_containers.iter().flatten() {
        match p.decide_container(c, true, &sandbox_id) {
            Settled::Succeeded => continue,
            Settled::Running if is_sidecar(c) => continue,
            // Failed is only reached under restartPolicy Never: the pod has failed.
            _ => {
                initialized = false;
                break;
            }
        }
    }

    let mut all_done = initialized;
    if initialized {
        for c in &spec.containers {
            match p.decide_container(c, false, &sandbox_id) {
                Settled::Succeeded | Settled::Failed => {}
                _ => all_done = false,
            }
        }
    }

    if (initialized && all_done) || done {
        // The pod is finished: stop what still runs (sidecars, the sandbox).
        p.stop_running(true);
    }
    p.collect_garbage(Some(&sandbox_id));
    p.finish()
}

/// The pod is finished for good: under `Never`, an init container failed, or
/// (under any policy) every app container terminated and none will restart.
fn pod_is_done(p: &Planner<'_>, spec: &PodSpec) -> bool {
    if p.policy == RestartPolicy::Always {
        return false;
    }
    let newest_exit = |name: &str| -> Option<Option<i64>> {
        let newest = p.observed.newest(name)?;
        (newest.state() == ContainerState::Exited).then_some(newest.info.exit_code)
    };
    if p.policy == RestartPolicy::Never {
        let inits = spec.init_containers.iter().flatten();
        for c in inits.filter(|c| !is_sidecar(c)) {
            if let Some(code) = newest_exit(&c.name) {
                if code != Some(0) {
                    return true;
                }
            }
        }
    }
    !spec.containers.is_empty()
        && spec.containers.iter().all(|c| match newest_exit(&c.name) {
            Some(code) => !p.policy.restarts(code),
            None => false,
        })
}

#[cfg(test)]
mod tests;
