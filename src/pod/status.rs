//! Pod status from spec + observations, computed the kubelet's way (pure).
//!
//! Owns phase, conditions and container statuses. The inputs are the pod, the
//! containers observed in the runtime and the planner's waiting reasons; the
//! worker stores the result for the API.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, ContainerState as K8sState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::observed::Observed;
use super::plan::{Waiting, DEADLINE_EXCEEDED_MESSAGE};
use super::probe::{ProbeKind, ProbeResult};
use crate::k8s::lifecycle::{is_sidecar, RestartPolicy, TerminatedReason, WaitingReason};
use crate::runtime::{ContainerInfo, ContainerState};

/// Everything status is computed from.
#[derive(Debug, Clone, Copy)]
pub struct StatusInput<'a> {
    pub pod: &'a Pod,
    pub observed: &'a [ContainerInfo],
    pub waiting: &'a BTreeMap<String, Waiting>,
    pub host_ip: &'a str,
    pub start_time: Option<Timestamp>,
    /// The pod is being terminated (file removed or replaced).
    pub terminating: bool,
    /// `activeDeadlineSeconds` ran out (the planner says so): the pod is
    /// `Failed` with reason `DeadlineExceeded`.
    pub deadline_exceeded: bool,
    /// Probe results by container id.
    pub probes: &'a BTreeMap<(String, ProbeKind), ProbeResult>,
    /// Termination messages of exited containers, by container id.
    pub messages: &'a BTreeMap<String, String>,
}

/// Puts termination messages into `terminated` states (current and last).
fn attach_messages(statuses: &mut [ContainerStatus], messages: &BTreeMap<String, String>) {
    let fill = |t: &mut ContainerStateTerminated| {
        let id = t
            .container_id
            .as_deref()
            .unwrap_or_default()
            .trim_start_matches("docker://");
        if let Some(m) = messages.get(id).filter(|m| !m.is_empty()) {
            t.message = Some(m.clone());
        }
    };
    for s in statuses {
        if let Some(t) = s.state.as_mut().and_then(|x| x.terminated.as_mut()) {
            fill(t);
        }
        if let Some(t) = s.last_state.as_mut().and_then(|x| x.terminated.as_mut()) {
            fill(t);
        }
    }
}

fn terminated(c: &ContainerInfo) -> ContainerStateTerminated {
    let code = c.exit_code.unwrap_or(0);
    let reason = if c.oom_killed {
        TerminatedReason::OomKilled
    } else if c.error.as_deref().is_some_and(|e| !e.is_empty()) {
        TerminatedReason::ContainerCannotRun
    } else if code == 0 {
        TerminatedReason::Completed
    } else {
        TerminatedReason::Error
    };
    ContainerStateTerminated {
        exit_code: code as i32,
        reason: Some(reason.as_str().into()),
        message: c.error.clone().filter(|e| !e.is_empty()),
        started_at: c.started_at.map(Time),
        finished_at: c.finished_at.map(Time),
        container_id: Some(format!("docker://{}", c.id)),
        ..Default::default()
    }
}

fn state_of(c: &ContainerInfo) -> K8sState {
    match c.state {
        ContainerState::Running => K8sState {
            running: Some(ContainerStateRunning {
                started_at: c.started_at.map(Time),
            }),
            ..Default::default()
        },
        ContainerState::Exited => K8sState {
            terminated: Some(terminated(c)),
            ..Default::default()
        },
        ContainerState::Created | ContainerState::Unknown => K8sState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(WaitingReason::ContainerCreating.as_str().into()),
                message: None,
            }),
            ..Default::default()
        },
    }
}

fn container_status(
    spec: &Container,
    input: &StatusInput<'_>,
    observed: &Observed<'_>,
    default_waiting: WaitingReason,
) -> ContainerStatus {
    let inst = observed.instances(&spec.name);
    let newest = inst.first().map(|s| s.info);
    let previous = inst.get(1).map(|s| s.info);
    let mut st = ContainerStatus {
        name: spec.name.clone(),
        image: spec.image.clone().unwrap_or_default(),
        image_id: String::new(),
        restart_count: inst
            .first()
            .map(|s| s.meta.restart_count as i32)
            .unwrap_or(0),
        // The kubelet always serializes `lastState`, `{}` when empty.
        last_state: Some(K8sState::default()),
        ..Default::default()
    };
    let mut state = match newest {
        Some(c) => {
            st.container_id = Some(format!("docker://{}", c.id));
            st.image_id = c.image_id.clone();
            state_of(c)
        }
        None => K8sState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(default_waiting.as_str().into()),
                message: None,
            }),
            ..Default::default()
        },
    };
    if let Some(w) = input.waiting.get(&spec.name) {
        // The planner holds it back (backoff, pull or config error): waiting,
        // and the dead instance becomes lastState.
        if let Some(c) = newest.filter(|c| c.state == ContainerState::Exited) {
            st.last_state = Some(K8sState {
                terminated: Some(terminated(c)),
                ..Default::default()
            });
        }
        state = K8sState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(w.reason.as_str().into()),
                message: Some(w.message.clone()),
            }),
            ..Default::default()
        };
    } else if let Some(p) = previous.filter(|p| p.state == ContainerState::Exited) {
        st.last_state = Some(K8sState {
            terminated: Some(terminated(p)),
            ..Default::default()
        });
    }
    let running = state.running.is_some();
    st.state = Some(state);
    // Started: running and past its startup probe. Ready: started and its
    // readiness probe (if any) succeeds; never while the pod terminates.
    let result =
        |kind: ProbeKind| newest.and_then(|c| input.probes.get(&(c.id.clone(), kind)).copied());
    let passes = |kind: ProbeKind, c: &Container| {
        kind.of(c).is_none() || result(kind) == Some(ProbeResult::Success)
    };
    let started = running && passes(ProbeKind::Startup, spec);
    st.started = Some(started);
    st.ready = started && passes(ProbeKind::Readiness, spec) && !input.terminating;
    st
}

fn condition(
    kind: &str,
    ok: bool,
    reason: Option<String>,
    message: Option<String>,
) -> PodCondition {
    PodCondition {
        type_: kind.into(),
        status: if ok { "True" } else { "False" }.into(),
        reason: if ok { None } else { reason },
        message: if ok { None } else { message },
        ..Default::default()
    }
}

/// The pod's QoS class (see [`crate::k8s::qos`]).
pub use crate::k8s::qos::qos_class;

/// Computes the pod's status.
pub fn pod_status(input: StatusInput<'_>) -> PodStatus {
    let pod = input.pod;
    let spec = pod.spec.clone().unwrap_or_default();
    let policy = RestartPolicy::of(pod);
    let observed = Observed::new(input.observed);

    let sandbox = observed.newest_sandbox().map(|s| s.info);
    let sandbox_ready = sandbox.is_some_and(|s| s.is_running());

    let init_specs: Vec<&Container> = spec.init_containers.iter().flatten().collect();
    let mut init_statuses: Vec<ContainerStatus> = init_specs
        .iter()
        .map(|c| {
            let mut st = container_status(c, &input, &observed, WaitingReason::PodInitializing);
            // As the kubelet's prober manager: an init container is ready once
            // it exited 0; a sidecar also while running and ready.
            let completed = st
                .state
                .as_ref()
                .and_then(|x| x.terminated.as_ref())
                .is_some_and(|t| t.exit_code == 0);
            st.ready = completed || (is_sidecar(c) && st.ready);
            st
        })
        .collect();
    attach_messages(&mut init_statuses, input.messages);
    let init_done = |s: &ContainerStatus, c: &Container| {
        let st = s.state.as_ref();
        if is_sidecar(c) {
            st.is_some_and(|x| x.running.is_some())
        } else {
            st.and_then(|x| x.terminated.as_ref())
                .is_some_and(|t| t.exit_code == 0)
        }
    };
    let incomplete: Vec<&str> = init_specs
        .iter()
        .zip(&init_statuses)
        .filter(|(c, s)| !init_done(s, c))
        .map(|(c, _)| c.name.as_str())
        .collect();
    // As the kubelet: a pod whose app containers ever started was initialized
    // before, even if an init container's record is gone or it runs again.
    let app_started = spec
        .containers
        .iter()
        .any(|c| observed.newest(&c.name).is_some());
    let initialized = incomplete.is_empty() || app_started;
    let app_waiting = if initialized {
        WaitingReason::ContainerCreating
    } else {
        WaitingReason::PodInitializing
    };
    let mut statuses: Vec<ContainerStatus> = spec
        .containers
        .iter()
        .map(|c| container_status(c, &input, &observed, app_waiting))
        .collect();
    attach_messages(&mut statuses, input.messages);

    // Phase, as the kubelet's getPhase.
    let init_failed = policy == RestartPolicy::Never
        && init_statuses.iter().any(|s| {
            s.state
                .as_ref()
                .and_then(|x| x.terminated.as_ref())
                .is_some_and(|t| t.exit_code != 0)
        });
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for s in &statuses {
        let st = s.state.clone().unwrap_or_default();
        if st.running.is_some() {
            running += 1;
        } else if let Some(t) = st.terminated.as_ref() {
            stopped += 1;
            if t.exit_code == 0 {
                succeeded += 1;
            }
        } else if let Some(w) = st.waiting.as_ref() {
            // A container waiting to be restarted after a run counts as stopped.
            if s.last_state
                .as_ref()
                .and_then(|l| l.terminated.as_ref())
                .is_some()
                && w.reason.as_deref() != Some(WaitingReason::ContainerCreating.as_str())
            {
                stopped += 1;
            } else {
                waiting += 1;
            }
        }
    }
    let total = statuses.len();
    let phase = if init_failed {
        "Failed"
    } else if !initialized || waiting > 0 {
        "Pending"
    } else if running > 0 {
        "Running"
    } else if stopped == total && total > 0 {
        match policy {
            RestartPolicy::Always => "Running",
            RestartPolicy::OnFailure if succeeded == total => "Succeeded",
            RestartPolicy::OnFailure => "Running",
            RestartPolicy::Never if succeeded == total => "Succeeded",
            RestartPolicy::Never => "Failed",
        }
    } else {
        "Pending"
    };
    // A stopped container that will be restarted keeps the pod Running.
    let phase = if phase == "Failed"
        && statuses.iter().zip(&spec.containers).any(|(s, _)| {
            s.state
                .as_ref()
                .and_then(|x| x.terminated.as_ref())
                .is_some_and(|t| policy.restarts(Some(t.exit_code as i64)))
        }) {
        "Running"
    } else {
        phase
    };

    let unready: Vec<&str> = statuses
        .iter()
        .filter(|s| !s.ready)
        .map(|s| s.name.as_str())
        .collect();
    let done = matches!(phase, "Succeeded" | "Failed");
    let unready_msg = format!("containers with unready status: [{}]", unready.join(" "));
    let ready_condition = |kind: &str| {
        let reason = if done {
            "PodCompleted"
        } else {
            "ContainersNotReady"
        };
        condition(
            kind,
            unready.is_empty() && !done,
            Some(reason.into()),
            Some(unready_msg.clone()),
        )
    };
    let conditions = vec![
        condition("PodReadyToStartContainers", sandbox_ready, None, None),
        condition(
            "Initialized",
            initialized,
            Some("ContainersNotInitialized".into()),
            Some(format!(
                "containers with incomplete status: [{}]",
                incomplete.join(" ")
            )),
        ),
        ready_condition("Ready"),
        ready_condition("ContainersReady"),
        condition("PodScheduled", true, None, None),
    ];

    let host_network = spec.host_network.unwrap_or(false);
    let pod_ip = if host_network {
        Some(input.host_ip.to_string())
    } else {
        sandbox
            .filter(|s| s.is_running())
            .and_then(|s| s.ip.clone())
            .filter(|ip| !ip.is_empty())
    };
    let (phase, reason, message) = if input.deadline_exceeded {
        let message = Some(DEADLINE_EXCEEDED_MESSAGE.to_string());
        ("Failed", Some("DeadlineExceeded".to_string()), message)
    } else {
        (phase, None, None)
    };
    PodStatus {
        phase: Some(phase.into()),
        reason,
        message,
        conditions: Some(conditions),
        container_statuses: Some(statuses),
        init_container_statuses: (!init_statuses.is_empty()).then_some(init_statuses),
        host_ip: Some(input.host_ip.to_string()),
        host_ips: Some(vec![k8s_openapi::api::core::v1::HostIP {
            ip: input.host_ip.to_string(),
        }]),
        pod_ips: pod_ip.clone().map(|ip| vec![PodIP { ip }]),
        pod_ip,
        start_time: input.start_time.map(Time),
        qos_class: Some(qos_class(pod).into()),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests;
