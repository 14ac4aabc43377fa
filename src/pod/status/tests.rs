use super::*;
use crate::pod::fixtures::{self, pod, t};

/// The pod's one sandbox, `sb`.
fn sandbox(state: ContainerState) -> ContainerInfo {
    fixtures::sandbox("sb", 0, state)
}

/// Instance `count` of container `name` in `sb`, with id `<name><count>`.
fn ctr(name: &str, count: u32, state: ContainerState, code: Option<i64>) -> ContainerInfo {
    fixtures::container(&format!("{name}{count}"), name, count, "sb", state, code)
}

fn status_of(p: &Pod, observed: &[ContainerInfo], waiting: &[(&str, WaitingReason)]) -> PodStatus {
    let waiting: BTreeMap<String, Waiting> = waiting
        .iter()
        .map(|(n, r)| {
            (
                n.to_string(),
                Waiting {
                    reason: *r,
                    message: format!("{r} message"),
                },
            )
        })
        .collect();
    pod_status(StatusInput {
        pod: p,
        observed,
        waiting: &waiting,
        host_ip: "192.0.2.1",
        start_time: Some(t(0)),
        terminating: false,
        deadline_exceeded: false,
        probes: &BTreeMap::new(),
        messages: &BTreeMap::new(),
    })
}

fn condition<'a>(s: &'a PodStatus, kind: &str) -> &'a PodCondition {
    s.conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == kind)
        .expect("condition")
}

use ContainerState::{Exited, Running};

#[test]
fn a_pod_with_nothing_running_yet_is_pending_with_container_creating() {
    let p = pod("Always", &[], &["a"]);
    let s = status_of(&p, &[sandbox(Running)], &[]);
    assert_eq!(s.phase.as_deref(), Some("Pending"));
    let a = &s.container_statuses.as_ref().expect("statuses")[0];
    assert_eq!(
        a.state
            .as_ref()
            .and_then(|x| x.waiting.as_ref())
            .and_then(|w| w.reason.as_deref()),
        Some("ContainerCreating")
    );
    assert_eq!(condition(&s, "PodReadyToStartContainers").status, "True");
    assert_eq!(s.pod_ip.as_deref(), Some("172.17.0.9"));
    assert_eq!(s.host_ip.as_deref(), Some("192.0.2.1"));
    assert_eq!(s.qos_class.as_deref(), Some("BestEffort"));
}

#[test]
fn running_containers_make_the_pod_running_and_ready() {
    let p = pod("Always", &[], &["a", "b"]);
    let s = status_of(
        &p,
        &[
            sandbox(Running),
            ctr("a", 0, Running, None),
            ctr("b", 0, Running, None),
        ],
        &[],
    );
    assert_eq!(s.phase.as_deref(), Some("Running"));
    assert_eq!(condition(&s, "Ready").status, "True");
    assert_eq!(condition(&s, "ContainersReady").status, "True");
    assert_eq!(condition(&s, "Initialized").status, "True");
}

#[test]
fn unready_containers_are_named_in_the_ready_conditions() {
    let p = pod("Always", &[], &["a", "b"]);
    let s = status_of(&p, &[sandbox(Running), ctr("a", 0, Running, None)], &[]);
    let ready = condition(&s, "Ready");
    assert_eq!(ready.status, "False");
    assert_eq!(ready.reason.as_deref(), Some("ContainersNotReady"));
    assert_eq!(
        ready.message.as_deref(),
        Some("containers with unready status: [b]")
    );
    assert_eq!(condition(&s, "ContainersReady").message, ready.message);
}

#[test]
fn phase_follows_the_restart_policy_when_everything_stopped() {
    for (policy, code, phase, reason) in [
        ("Always", 0, "Running", "Completed"),
        ("OnFailure", 0, "Succeeded", "Completed"),
        ("OnFailure", 1, "Running", "Error"),
        ("Never", 0, "Succeeded", "Completed"),
        ("Never", 1, "Failed", "Error"),
    ] {
        let p = pod(policy, &[], &["a"]);
        let s = status_of(&p, &[sandbox(Exited), ctr("a", 0, Exited, Some(code))], &[]);
        assert_eq!(s.phase.as_deref(), Some(phase), "{policy} exit {code}");
        let st = &s.container_statuses.as_ref().expect("statuses")[0];
        let term = st
            .state
            .as_ref()
            .and_then(|x| x.terminated.as_ref())
            .expect("terminated");
        assert_eq!(term.reason.as_deref(), Some(reason));
        assert_eq!(term.exit_code as i64, code);
    }
}

#[test]
fn a_completed_pod_reports_pod_completed_readiness() {
    let p = pod("Never", &[], &["a"]);
    let s = status_of(&p, &[sandbox(Exited), ctr("a", 0, Exited, Some(0))], &[]);
    assert_eq!(
        condition(&s, "Ready").reason.as_deref(),
        Some("PodCompleted")
    );
    assert_eq!(s.pod_ip, None, "a stopped sandbox has no IP");
}

#[test]
fn a_crash_looping_container_is_waiting_with_the_dead_instance_as_last_state() {
    let p = pod("Always", &[], &["a"]);
    let s = status_of(
        &p,
        &[sandbox(Running), ctr("a", 2, Exited, Some(1))],
        &[("a", WaitingReason::CrashLoopBackOff)],
    );
    assert_eq!(
        s.phase.as_deref(),
        Some("Running"),
        "a container waiting to restart keeps the pod running"
    );
    let st = &s.container_statuses.as_ref().expect("statuses")[0];
    assert_eq!(st.restart_count, 2);
    assert_eq!(
        st.state
            .as_ref()
            .and_then(|x| x.waiting.as_ref())
            .and_then(|w| w.reason.as_deref()),
        Some("CrashLoopBackOff")
    );
    let last = st
        .last_state
        .as_ref()
        .and_then(|l| l.terminated.as_ref())
        .expect("last state");
    assert_eq!((last.exit_code, last.reason.as_deref()), (1, Some("Error")));
    assert_eq!(last.container_id.as_deref(), Some("docker://a2"));
}

#[test]
fn a_restarted_container_shows_its_previous_instance_as_last_state() {
    let p = pod("Always", &[], &["a"]);
    let s = status_of(
        &p,
        &[
            sandbox(Running),
            ctr("a", 0, Exited, Some(3)),
            ctr("a", 1, Running, None),
        ],
        &[],
    );
    let st = &s.container_statuses.as_ref().expect("statuses")[0];
    assert_eq!(st.restart_count, 1);
    assert!(st.state.as_ref().is_some_and(|x| x.running.is_some()));
    assert_eq!(
        st.last_state
            .as_ref()
            .and_then(|l| l.terminated.as_ref())
            .map(|t| t.exit_code),
        Some(3)
    );
    assert_eq!(st.container_id.as_deref(), Some("docker://a1"));
}

#[test]
fn pending_init_containers_hold_the_pod_and_are_named_in_initialized() {
    let p = pod("Always", &["i1", "i2"], &["a"]);
    let s = status_of(&p, &[sandbox(Running), ctr("i1", 0, Running, None)], &[]);
    assert_eq!(s.phase.as_deref(), Some("Pending"));
    let init = condition(&s, "Initialized");
    assert_eq!(init.status, "False");
    assert_eq!(init.reason.as_deref(), Some("ContainersNotInitialized"));
    assert_eq!(
        init.message.as_deref(),
        Some("containers with incomplete status: [i1 i2]")
    );
    let app = &s.container_statuses.as_ref().expect("statuses")[0];
    assert_eq!(
        app.state
            .as_ref()
            .and_then(|x| x.waiting.as_ref())
            .and_then(|w| w.reason.as_deref()),
        Some("PodInitializing")
    );
}

#[test]
fn a_failed_init_container_under_never_fails_the_pod() {
    let p = pod("Never", &["i1", "i2"], &["a"]);
    let s = status_of(&p, &[sandbox(Exited), ctr("i1", 0, Exited, Some(1))], &[]);
    assert_eq!(s.phase.as_deref(), Some("Failed"));
    assert_eq!(
        condition(&s, "Initialized").message.as_deref(),
        Some("containers with incomplete status: [i1 i2]")
    );
}

#[test]
fn a_pod_whose_app_containers_started_stays_initialized() {
    let p = pod("Always", &["i1"], &["a"]);
    // The init container's record is gone (garbage-collected), the app runs.
    let s = status_of(&p, &[sandbox(Running), ctr("a", 0, Running, None)], &[]);
    assert_eq!(condition(&s, "Initialized").status, "True");
    assert_eq!(s.phase.as_deref(), Some("Running"));
}

#[test]
fn oom_kills_and_start_failures_have_their_reasons() {
    let p = pod("Never", &[], &["a"]);
    let mut oom = ctr("a", 0, Exited, Some(137));
    oom.oom_killed = true;
    let s = status_of(&p, &[sandbox(Exited), oom], &[]);
    let st = &s.container_statuses.as_ref().expect("statuses")[0];
    assert_eq!(
        st.state
            .as_ref()
            .and_then(|x| x.terminated.as_ref())
            .and_then(|t| t.reason.as_deref()),
        Some("OOMKilled")
    );

    let s = status_of(
        &pod("Always", &[], &["a"]),
        &[sandbox(Running)],
        &[("a", WaitingReason::ErrImagePull)],
    );
    let st = &s.container_statuses.as_ref().expect("statuses")[0];
    let w = st
        .state
        .as_ref()
        .and_then(|x| x.waiting.as_ref())
        .expect("waiting");
    assert_eq!(
        (w.reason.as_deref(), w.message.as_deref()),
        (Some("ErrImagePull"), Some("ErrImagePull message"))
    );
    assert_eq!(s.phase.as_deref(), Some("Pending"));
}

#[test]
fn a_terminating_pod_is_not_ready() {
    let p = pod("Always", &[], &["a"]);
    let observed = [sandbox(Running), ctr("a", 0, Running, None)];
    let waiting = BTreeMap::new();
    let s = pod_status(StatusInput {
        pod: &p,
        observed: &observed,
        waiting: &waiting,
        host_ip: "h",
        start_time: None,
        terminating: true,
        deadline_exceeded: false,
        probes: &BTreeMap::new(),
        messages: &BTreeMap::new(),
    });
    assert_eq!(condition(&s, "Ready").status, "False");
}

#[test]
fn qos_classes_follow_requests_and_limits() {
    use k8s_openapi::api::core::v1::ResourceRequirements;
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    let with = |limits: &[(&str, &str)], requests: &[(&str, &str)]| {
        let mut p = pod("Always", &[], &["a"]);
        let q = |kv: &[(&str, &str)]| {
            (!kv.is_empty()).then(|| {
                kv.iter()
                    .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
                    .collect()
            })
        };
        if let Some(spec) = p.spec.as_mut() {
            spec.containers[0].resources = Some(ResourceRequirements {
                limits: q(limits),
                requests: q(requests),
                ..Default::default()
            });
        }
        qos_class(&p)
    };
    assert_eq!(with(&[], &[]), "BestEffort");
    assert_eq!(with(&[("cpu", "1"), ("memory", "1Gi")], &[]), "Guaranteed");
    assert_eq!(
        with(&[("cpu", "1"), ("memory", "1Gi")], &[("cpu", "500m")]),
        "Burstable"
    );
    assert_eq!(with(&[], &[("memory", "1Gi")]), "Burstable");
}

#[test]
fn readiness_and_startup_probes_decide_ready_and_started() {
    use k8s_openapi::api::core::v1::Probe;
    let mut p = pod("Always", &[], &["a"]);
    if let Some(spec) = p.spec.as_mut() {
        spec.containers[0].readiness_probe = Some(Probe::default());
        spec.containers[0].startup_probe = Some(Probe::default());
    }
    let observed = [sandbox(Running), ctr("a", 0, Running, None)];
    let waiting = BTreeMap::new();
    let with = |probes: &[(ProbeKind, ProbeResult)]| {
        let probes: BTreeMap<(String, ProbeKind), ProbeResult> = probes
            .iter()
            .map(|(k, r)| (("a0".to_string(), *k), *r))
            .collect();
        let s = pod_status(StatusInput {
            pod: &p,
            observed: &observed,
            waiting: &waiting,
            host_ip: "h",
            start_time: None,
            terminating: false,
            deadline_exceeded: false,
            probes: &probes,
            messages: &BTreeMap::new(),
        });
        let c = s.container_statuses.clone().expect("statuses")[0].clone();
        (c.started, c.ready, condition(&s, "Ready").status.clone())
    };
    assert_eq!(with(&[]), (Some(false), false, "False".to_string()));
    assert_eq!(
        with(&[(ProbeKind::Startup, ProbeResult::Success)]),
        (Some(true), false, "False".to_string())
    );
    assert_eq!(
        with(&[
            (ProbeKind::Startup, ProbeResult::Success),
            (ProbeKind::Readiness, ProbeResult::Success)
        ]),
        (Some(true), true, "True".to_string())
    );
    assert_eq!(
        with(&[
            (ProbeKind::Startup, ProbeResult::Success),
            (ProbeKind::Readiness, ProbeResult::Failure)
        ]),
        (Some(true), false, "False".to_string())
    );
}

#[test]
fn termination_messages_fill_the_terminated_states() {
    let p = pod("Always", &[], &["a"]);
    let observed = [
        sandbox(Running),
        ctr("a", 0, Exited, Some(1)),
        ctr("a", 1, Exited, Some(2)),
    ];
    let messages = BTreeMap::from([
        ("a0".to_string(), "first".to_string()),
        ("a1".to_string(), "second".to_string()),
    ]);
    let waiting = BTreeMap::from([(
        "a".to_string(),
        Waiting {
            reason: WaitingReason::CrashLoopBackOff,
            message: "m".into(),
        },
    )]);
    let s = pod_status(StatusInput {
        pod: &p,
        observed: &observed,
        waiting: &waiting,
        host_ip: "h",
        start_time: None,
        terminating: false,
        deadline_exceeded: false,
        probes: &BTreeMap::new(),
        messages: &messages,
    });
    let st = &s.container_statuses.expect("statuses")[0];
    let last = st
        .last_state
        .as_ref()
        .and_then(|l| l.terminated.as_ref())
        .expect("last");
    assert_eq!(last.message.as_deref(), Some("second"));
}

#[test]
fn a_pod_past_its_deadline_is_failed_with_deadline_exceeded() {
    let p = crate::pod::fixtures::load_pod(
        "
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  activeDeadlineSeconds: 30
  containers:
  - {name: a, image: 'img:1'}
",
    );
    let observed = [sandbox(Exited), ctr("a", 0, Exited, Some(137))];
    let waiting = BTreeMap::new();
    let input = StatusInput {
        pod: &p,
        observed: &observed,
        waiting: &waiting,
        host_ip: "h",
        start_time: Some(t(0)),
        terminating: false,
        deadline_exceeded: true,
        probes: &BTreeMap::new(),
        messages: &BTreeMap::new(),
    };
    let s = pod_status(input);
    assert_eq!(s.phase.as_deref(), Some("Failed"));
    assert_eq!(s.reason.as_deref(), Some("DeadlineExceeded"));
    assert_eq!(s.message.as_deref(), Some(DEADLINE_EXCEEDED_MESSAGE));
    let within = pod_status(StatusInput {
        deadline_exceeded: false,
        ..input
    });
    assert_eq!(within.reason, None);
}

/// The kubelet's prober manager (`UpdatePodStatus` in
/// pkg/kubelet/prober/prober_manager.go) marks an init container ready when
/// it terminated with exit code 0; a running or failed one is not ready.
#[test]
fn init_containers_that_exited_zero_are_ready_and_running_ones_are_not() {
    let p = pod("Always", &["i1", "i2"], &["a"]);
    let observed = [
        sandbox(Running),
        ctr("i1", 0, Exited, Some(0)),
        ctr("i2", 0, Running, None),
    ];
    let s = status_of(&p, &observed, &[]);
    let init = s.init_container_statuses.expect("init statuses");
    assert!(init[0].ready, "a completed init container is ready");
    assert!(!init[1].ready, "a running init container is not ready");
    let p = pod("Never", &["i1"], &["a"]);
    let s = status_of(&p, &[sandbox(Exited), ctr("i1", 0, Exited, Some(1))], &[]);
    assert!(!s.init_container_statuses.expect("init statuses")[0].ready);
}

/// The kubelet's `convertToAPIContainerStatuses`
/// (pkg/kubelet/kubelet_pods.go) always sets `LastTerminationState`, so the
/// API serializes `"lastState": {}` for a container that never restarted.
#[test]
fn last_state_is_an_empty_object_when_there_was_no_previous_instance() {
    let p = pod("Always", &["i1"], &["a"]);
    let observed = [
        sandbox(Running),
        ctr("i1", 0, Exited, Some(0)),
        ctr("a", 0, Running, None),
    ];
    let s = status_of(&p, &observed, &[]);
    let json = serde_json::to_value(&s).expect("serializes");
    for list in ["containerStatuses", "initContainerStatuses"] {
        assert_eq!(json[list][0]["lastState"], serde_json::json!({}), "{list}");
    }
}
