//! The planner: what should happen to one pod now.
//!
//! [`plan`] is a pure function of the desired pod, the containers observed in
//! the runtime, the restart backoff, recent start failures and the time. It
//! returns [`Step`]s for the worker to execute and when to look again. It never
//! talks to Docker and never sleeps, so every rule is unit-tested here.
//!
//! The rules follow the kubelet's `computePodActions`: one sandbox per pod,
//! recreated (with every container) when it is gone; init containers one at a
//! time, in order; app containers restarted according to `restartPolicy` with
//! crash-loop backoff; the newest dead instance of each container kept for
//! `lastState`, older ones removed; the sandbox stopped once the pod is done.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::jiff::Timestamp;

use crate::backoff::Backoff;
use crate::runtime::labels::ContainerMeta;
use crate::runtime::{ContainerInfo, ContainerState};

/// A recent failure to start a container that did not produce a container
/// (image pull, config error, runtime refusal), retried at `retry_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartFailure {
    /// Waiting reason while retrying: `ErrImagePull`, `ImagePullBackOff`,
    /// `CreateContainerConfigError`, `ErrImageNeverPull`, `RunContainerError`…
    pub reason: String,
    pub message: String,
    pub retry_at: Timestamp,
    /// When the failure happened.
    pub failed_at: Timestamp,
}

/// How long a failed pull shows as `ErrImagePull` before `ImagePullBackOff`.
pub const ERR_IMAGE_PULL_SHOWN_FOR: Duration = Duration::from_secs(2);

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
    /// Stop a running container (pod grace period).
    StopContainer { id: String, name: String },
    /// Remove a stopped container.
    RemoveContainer { id: String },
    /// Kill a running container whose liveness or startup probe failed; the
    /// restart policy decides what follows. `grace` is the probe's own
    /// `terminationGracePeriodSeconds`, when set.
    KillUnhealthy {
        id: String,
        name: String,
        probe: super::probe::Kind,
        grace: Option<Duration>,
    },
}

/// A running container whose liveness or startup probe failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unhealthy {
    pub probe: super::probe::Kind,
    pub grace: Option<Duration>,
}

/// Why a container is not running right now, for status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub reason: String,
    pub message: String,
}

/// The planner's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub steps: Vec<Step>,
    /// Containers (by name) waiting for a reason other than not being started yet.
    pub waiting: BTreeMap<String, Waiting>,
    /// Look again after this long even without an event (backoff expiry).
    /// `Some(ZERO)` means right after executing the steps.
    pub requeue_after: Option<Duration>,
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
    pub now: Timestamp,
}

/// An observed container with its parsed labels.
#[derive(Debug, Clone, Copy)]
struct Seen<'a> {
    info: &'a ContainerInfo,
    meta: &'a ContainerMeta,
}

fn restart_policy(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always")
}

/// Does `policy` restart a container that exited with `code`?
pub fn should_restart(policy: &str, code: Option<i64>) -> bool {
    match policy {
        "Never" => false,
        "OnFailure" => code != Some(0),
        _ => true,
    }
}

/// Is this init container a sidecar (`restartPolicy: Always`)?
pub fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

/// The message the kubelet uses for a crash-looping container.
pub fn crash_loop_message(delay: Duration, container: &str, pod: &Pod) -> String {
    format!(
        "back-off {} restarting failed container={} pod={}_{}({})",
        humantime::format_duration(delay),
        container,
        pod.metadata.name.as_deref().unwrap_or_default(),
        pod.metadata.namespace.as_deref().unwrap_or("default"),
        pod.metadata.uid.as_deref().unwrap_or_default(),
    )
}

fn to_duration(from: Timestamp, to: Timestamp) -> Duration {
    Duration::try_from(to.duration_since(from)).unwrap_or(Duration::ZERO)
}

struct Planner<'a> {
    input: Input<'a>,
    metas: Vec<(usize, ContainerMeta)>,
    plan: Plan,
}

impl<'a> Planner<'a> {
    fn requeue(&mut self, after: Duration) {
        self.plan.requeue_after = Some(match self.plan.requeue_after {
            Some(d) => d.min(after),
            None => after,
        });
    }

    fn seen(&self) -> impl Iterator<Item = Seen<'_>> {
        self.metas.iter().map(|(i, meta)| Seen {
            info: &self.input.observed[*i],
            meta,
        })
    }

    /// Instances of a container, newest (highest restart count) first.
    fn instances(&self, name: &str) -> Vec<Seen<'_>> {
        let mut v: Vec<Seen<'_>> = self
            .seen()
            .filter(|s| !s.meta.is_sandbox && s.meta.container_name == name)
            .collect();
        v.sort_by(|a, b| {
            b.meta
                .restart_count
                .cmp(&a.meta.restart_count)
                .then_with(|| b.info.created_at.cmp(&a.info.created_at))
        });
        v
    }

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
            reason: f.reason.clone(),
            message: f.message.clone(),
        };
        let mut switch_in = None;
        if f.reason == "ErrImagePull" {
            let shown = k8s_openapi::jiff::SignedDuration::try_from(ERR_IMAGE_PULL_SHOWN_FOR)
                .unwrap_or_default();
            let switch = f.failed_at.checked_add(shown).unwrap_or(f.failed_at);
            if now >= switch {
                waiting = Waiting {
                    reason: "ImagePullBackOff".into(),
                    message: format!(
                        "Back-off pulling image {:?}: ErrImagePull: {}",
                        c.image.as_deref().unwrap_or_default(),
                        f.message
                    ),
                };
            } else {
                switch_in = Some(to_duration(now, switch));
            }
        }
        let retry_in = to_duration(now, f.retry_at);
        self.plan.waiting.insert(name.to_string(), waiting);
        self.requeue(retry_in);
        if let Some(d) = switch_in {
            self.requeue(d);
        }
        true
    }

    /// Decides about one container given its newest instance. Returns true if
    /// the container is "settled" (running, or finished for good).
    fn reconcile(&mut self, c: &Container, init: bool, sandbox_id: &str) -> Settled {
        let name = c.name.as_str();
        let newest = self.instances(name).first().map(|s| Newest {
            id: s.info.id.clone(),
            state: s.info.state,
            restart_count: s.meta.restart_count,
            in_sandbox: s.meta.sandbox_id.as_deref() == Some(sandbox_id),
            exit_code: s.info.exit_code,
            finished_at: s.info.finished_at,
        });
        let next_count = newest.as_ref().map(|s| s.restart_count + 1).unwrap_or(0);
        let policy = if init && !is_sidecar(c) {
            // Init containers are retried unless the pod never restarts.
            if restart_policy(self.input.pod) == "Never" {
                "Never"
            } else {
                "OnFailure"
            }
        } else if init {
            "Always"
        } else {
            restart_policy(self.input.pod)
        };
        let Some(newest) = newest else {
            if self.failure_pending(c) {
                return Settled::Waiting;
            }
            self.plan.steps.push(Step::StartContainer {
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
                    self.plan.steps.push(Step::KillUnhealthy {
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
                self.plan.steps.push(Step::StopContainer {
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
                let count = newest.restart_count;
                self.plan
                    .steps
                    .push(Step::RemoveContainer { id: newest.id });
                self.plan.steps.push(Step::StartContainer {
                    name: name.into(),
                    restart_count: count,
                    init,
                    restart_of: None,
                });
                Settled::Starting
            }
            ContainerState::Exited => {
                let code = newest.exit_code;
                if in_sandbox && !should_restart(policy, code) {
                    return if code == Some(0) {
                        Settled::Succeeded
                    } else {
                        Settled::Failed
                    };
                }
                if !in_sandbox && !should_restart(policy, code) && !init {
                    // A new sandbox does not resurrect a finished container.
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
                            reason: "CrashLoopBackOff".into(),
                            message: crash_loop_message(delay, name, self.input.pod),
                        },
                    );
                    self.requeue(wait);
                    return Settled::Waiting;
                }
                self.plan.steps.push(Step::StartContainer {
                    name: name.into(),
                    restart_count: next_count,
                    init,
                    restart_of: Some(finished),
                });
                Settled::Starting
            }
        }
    }

    /// Removes dead instances beyond the newest of each container, and dead
    /// sandboxes other than the current one.
    fn collect_garbage(&mut self, current_sandbox: Option<&str>) {
        let mut keep: BTreeMap<String, ()> = BTreeMap::new();
        let mut removals = Vec::new();
        let names: Vec<String> = {
            let mut n: Vec<String> = self
                .seen()
                .filter(|s| !s.meta.is_sandbox)
                .map(|s| s.meta.container_name.clone())
                .collect();
            n.dedup();
            n
        };
        for name in names {
            let mut kept_dead = false;
            for s in self.instances(&name) {
                if s.info.state != ContainerState::Exited {
                    continue;
                }
                if kept_dead {
                    removals.push(s.info.id.clone());
                } else {
                    kept_dead = true;
                    keep.insert(s.info.id.clone(), ());
                }
            }
        }
        for s in self.seen().filter(|s| s.meta.is_sandbox) {
            if Some(s.info.id.as_str()) != current_sandbox && s.info.state == ContainerState::Exited
            {
                removals.push(s.info.id.clone());
            }
        }
        let already: Vec<String> = self
            .plan
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::RemoveContainer { id } => Some(id.clone()),
                _ => None,
            })
            .collect();
        for id in removals {
            if !already.contains(&id) {
                self.plan.steps.push(Step::RemoveContainer { id });
            }
        }
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
    let metas = input
        .observed
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.meta().map(|m| (i, m)))
        .collect();
    let mut p = Planner {
        input,
        metas,
        plan: Plan::default(),
    };
    let spec = input.pod.spec.clone().unwrap_or_default();

    // The newest sandbox decides.
    let newest_sandbox = p
        .seen()
        .filter(|s| s.meta.is_sandbox)
        .max_by_key(|s| (s.meta.restart_count, s.info.created_at))
        .map(|s| (s.info.id.clone(), s.info.state, s.meta.restart_count));

    // Is the pod finished for good? (All app containers terminated and none to
    // be restarted; init failure under Never.)
    let done = pod_is_done(&p, &spec);

    let sandbox_id = match newest_sandbox {
        Some((id, ContainerState::Running, _)) => id,
        other => {
            if done {
                p.collect_garbage(other.as_ref().map(|(id, _, _)| id.as_str()));
                return p.plan;
            }
            // (Re)create the sandbox; first stop whatever still runs in the old one.
            let running: Vec<(String, String)> = p
                .seen()
                .filter(|s| !s.meta.is_sandbox && s.info.state == ContainerState::Running)
                .map(|s| (s.info.id.clone(), s.meta.container_name.clone()))
                .collect();
            for (id, name) in running {
                p.plan.steps.push(Step::StopContainer { id, name });
            }
            let attempt = other.map(|(_, _, a)| a + 1).unwrap_or(0);
            p.plan.steps.push(Step::CreateSandbox { attempt });
            p.plan.requeue_after = Some(Duration::ZERO);
            p.collect_garbage(None);
            return p.plan;
        }
    };

    // Init containers, one at a time, in order; sidecars stay running.
    let mut initialized = true;
    for c in spec.init_containers.iter().flatten() {
        match p.reconcile(c, true, &sandbox_id) {
            Settled::Succeeded => continue,
            Settled::Running if is_sidecar(c) => continue,
            Settled::Failed => {
                // Only reached under restartPolicy Never: the pod has failed.
                initialized = false;
                break;
            }
            _ => {
                initialized = false;
                break;
            }
        }
    }

    let mut all_done = initialized;
    if initialized {
        for c in &spec.containers {
            match p.reconcile(c, false, &sandbox_id) {
                Settled::Succeeded | Settled::Failed => {}
                _ => all_done = false,
            }
        }
    }

    if (initialized && all_done) || done {
        // The pod is finished: stop what still runs (sidecars, the sandbox).
        let running: Vec<(String, String)> = p
            .seen()
            .filter(|s| s.info.state == ContainerState::Running)
            .map(|s| (s.info.id.clone(), s.meta.container_name.clone()))
            .collect();
        let (sandboxes, others): (Vec<_>, Vec<_>) = running
            .into_iter()
            .partition(|(_, n)| n == crate::runtime::labels::SANDBOX_CONTAINER_NAME);
        for (id, name) in others.into_iter().chain(sandboxes) {
            p.plan.steps.push(Step::StopContainer { id, name });
        }
    }
    p.collect_garbage(Some(&sandbox_id));
    p.plan
}

/// The pod is finished for good: under `Never`, an init container failed, or
/// (under any policy) every app container terminated and none will restart.
fn pod_is_done(p: &Planner<'_>, spec: &k8s_openapi::api::core::v1::PodSpec) -> bool {
    let policy = restart_policy(p.input.pod);
    if policy == "Always" {
        return false;
    }
    let newest_exit = |name: &str| -> Option<Option<i64>> {
        let inst = p.instances(name);
        let newest = inst.first()?;
        (newest.info.state == ContainerState::Exited).then_some(newest.info.exit_code)
    };
    if policy == "Never" {
        for c in spec
            .init_containers
            .iter()
            .flatten()
            .filter(|c| !is_sidecar(c))
        {
            if let Some(code) = newest_exit(&c.name) {
                if code != Some(0) {
                    return true;
                }
            }
        }
    }
    !spec.containers.is_empty()
        && spec.containers.iter().all(|c| match newest_exit(&c.name) {
            Some(code) => !should_restart(policy, code),
            None => false,
        })
}

#[cfg(test)]
mod tests;
