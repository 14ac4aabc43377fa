use super::*;
use crate::backoff::BackoffPolicy;
use crate::pod::fixtures::{container, pod, sandbox, t};

fn run(p: &Pod, observed: &[ContainerInfo], backoff: &Backoff, now: Timestamp) -> Plan {
    plan(Input {
        pod: p,
        observed,
        backoff,
        failures: &BTreeMap::new(),
        unhealthy: &BTreeMap::new(),
        now,
    })
}

fn starts(plan: &Plan) -> Vec<(String, u32)> {
    plan.steps
        .iter()
        .filter_map(|s| match s {
            Step::StartContainer {
                name,
                restart_count,
                ..
            } => Some((name.clone(), *restart_count)),
            _ => None,
        })
        .collect()
}

use ContainerState::{Exited, Running};

#[test]
fn a_new_pod_gets_a_sandbox_first() {
    let p = pod("Always", &[], &["a", "b"]);
    let plan = run(&p, &[], &Backoff::default(), t(0));
    assert_eq!(plan.steps, vec![Step::CreateSandbox { attempt: 0 }]);
    assert_eq!(plan.requeue_after, Some(Duration::ZERO));
}

#[test]
fn with_a_running_sandbox_all_app_containers_start() {
    let p = pod("Always", &[], &["a", "b"]);
    let plan = run(&p, &[sandbox("s", 0, Running)], &Backoff::default(), t(0));
    assert_eq!(starts(&plan), vec![("a".into(), 0), ("b".into(), 0)]);
}

#[test]
fn a_running_pod_needs_nothing() {
    let p = pod("Always", &[], &["a"]);
    let obs = [
        sandbox("s", 0, Running),
        container("c", "a", 0, "s", Running, None),
    ];
    let plan = run(&p, &obs, &Backoff::default(), t(0));
    assert_eq!(plan, Plan::default());
}

#[test]
fn restart_policy_decides_by_exit_code() {
    for (policy, code, restarts) in [
        ("Always", 0, true),
        ("Always", 1, true),
        ("OnFailure", 0, false),
        ("OnFailure", 1, true),
        ("Never", 0, false),
        ("Never", 1, false),
    ] {
        let p = pod(policy, &[], &["a", "keep"]);
        let obs = [
            sandbox("s", 0, Running),
            container("c", "a", 0, "s", Exited, Some(code)),
            container("k", "keep", 0, "s", Running, None),
        ];
        let plan = run(&p, &obs, &Backoff::default(), t(30));
        assert_eq!(!starts(&plan).is_empty(), restarts, "{policy} exit {code}");
        if restarts {
            assert_eq!(starts(&plan), vec![("a".into(), 1)]);
        }
    }
}

#[test]
fn a_crash_looping_container_waits_with_crash_loop_backoff() {
    let p = pod("Always", &[], &["a"]);
    let obs = [
        sandbox("s", 0, Running),
        container("c", "a", 1, "s", Exited, Some(1)),
    ];
    let mut backoff = Backoff::new(BackoffPolicy::default());
    backoff.record("a", t(20)); // the first (immediate) restart happened
                                // The instance finished at t(21); 10s backoff runs until t(31).
    let plan = run(&p, &obs, &backoff, t(25));
    assert!(starts(&plan).is_empty());
    assert_eq!(plan.waiting["a"].reason, "CrashLoopBackOff");
    assert!(plan.waiting["a"]
        .message
        .starts_with("back-off 10s restarting failed container=a"));
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(6)));
    let plan = run(&p, &obs, &backoff, t(31));
    assert_eq!(starts(&plan), vec![("a".into(), 2)]);
}

#[test]
fn a_dead_sandbox_is_replaced_and_running_containers_stopped_first() {
    let p = pod("Always", &[], &["a"]);
    let obs = [
        sandbox("s", 0, Exited),
        container("c", "a", 0, "s", Running, None),
    ];
    let plan = run(&p, &obs, &Backoff::default(), t(0));
    assert_eq!(
        plan.steps,
        vec![
            Step::StopContainer {
                id: "c".into(),
                name: "a".into()
            },
            Step::CreateSandbox { attempt: 1 },
            Step::RemoveContainer { id: "s".into() },
        ]
    );
}

#[test]
fn init_containers_run_one_at_a_time_in_order() {
    let p = pod("Always", &["i1", "i2"], &["a"]);
    let s = sandbox("s", 0, Running);
    let plan = run(&p, std::slice::from_ref(&s), &Backoff::default(), t(0));
    assert_eq!(starts(&plan), vec![("i1".into(), 0)]);
    let obs = [s.clone(), container("x1", "i1", 0, "s", Running, None)];
    assert!(starts(&run(&p, &obs, &Backoff::default(), t(0))).is_empty());
    let obs = [s.clone(), container("x1", "i1", 0, "s", Exited, Some(0))];
    assert_eq!(
        starts(&run(&p, &obs, &Backoff::default(), t(0))),
        vec![("i2".into(), 0)]
    );
    let obs = [
        s,
        container("x1", "i1", 0, "s", Exited, Some(0)),
        container("x2", "i2", 0, "s", Exited, Some(0)),
    ];
    assert_eq!(
        starts(&run(&p, &obs, &Backoff::default(), t(0))),
        vec![("a".into(), 0)]
    );
}

#[test]
fn a_failed_init_container_under_never_stops_the_pod() {
    let p = pod("Never", &["i1"], &["a"]);
    let obs = [
        sandbox("s", 0, Running),
        container("x1", "i1", 0, "s", Exited, Some(2)),
    ];
    let plan = run(&p, &obs, &Backoff::default(), t(0));
    assert!(starts(&plan).is_empty());
    assert_eq!(
        plan.steps,
        vec![Step::StopContainer {
            id: "s".into(),
            name: "POD".into()
        }]
    );
}

#[test]
fn a_failed_init_container_is_retried_otherwise() {
    let p = pod("Always", &["i1"], &["a"]);
    let obs = [
        sandbox("s", 0, Running),
        container("x1", "i1", 0, "s", Exited, Some(2)),
    ];
    assert_eq!(
        starts(&run(&p, &obs, &Backoff::default(), t(30))),
        vec![("i1".into(), 1)]
    );
}

#[test]
fn a_finished_pod_stops_its_sandbox_and_is_not_restarted() {
    let p = pod("OnFailure", &[], &["a"]);
    let obs = [
        sandbox("s", 0, Running),
        container("c", "a", 0, "s", Exited, Some(0)),
    ];
    let plan = run(&p, &obs, &Backoff::default(), t(30));
    assert_eq!(
        plan.steps,
        vec![Step::StopContainer {
            id: "s".into(),
            name: "POD".into()
        }]
    );
    let obs = [
        sandbox("s", 0, Exited),
        container("c", "a", 0, "s", Exited, Some(0)),
    ];
    assert_eq!(run(&p, &obs, &Backoff::default(), t(40)), Plan::default());
}

#[test]
fn only_the_newest_dead_instance_of_a_container_is_kept() {
    let p = pod("Always", &[], &["a"]);
    let obs = [
        sandbox("s", 0, Running),
        container("c0", "a", 0, "s", Exited, Some(1)),
        container("c1", "a", 1, "s", Exited, Some(1)),
        container("c2", "a", 2, "s", Running, None),
    ];
    let plan = run(&p, &obs, &Backoff::default(), t(30));
    assert_eq!(plan.steps, vec![Step::RemoveContainer { id: "c0".into() }]);
}

#[test]
fn a_created_but_never_started_container_is_replaced_under_the_same_count() {
    let p = pod("Always", &[], &["a"]);
    let obs = [
        sandbox("s", 0, Running),
        container("c3", "a", 3, "s", ContainerState::Created, None),
    ];
    let plan = run(&p, &obs, &Backoff::default(), t(30));
    assert_eq!(plan.steps[0], Step::RemoveContainer { id: "c3".into() });
    assert_eq!(starts(&plan), vec![("a".into(), 3)]);
}

#[test]
fn a_start_failure_waits_until_its_retry_time() {
    let p = pod("Always", &[], &["a"]);
    let obs = [sandbox("s", 0, Running)];
    let failures = BTreeMap::from([(
        "a".to_string(),
        StartFailure {
            reason: "ErrImagePull".into(),
            message: "no registry".into(),
            retry_at: t(10),
            failed_at: t(4),
        },
    )]);
    let backoff = Backoff::default();
    let input = Input {
        pod: &p,
        observed: &obs,
        backoff: &backoff,
        failures: &failures,
        unhealthy: &BTreeMap::new(),
        now: t(5),
    };
    let plan = plan(input);
    assert!(starts(&plan).is_empty());
    assert_eq!(plan.waiting["a"].reason, "ErrImagePull");
    // Shown as ErrImagePull until 2 s after the failure (t=6), then
    // ImagePullBackOff until the retry at t=10.
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(1)));
    let later = super::plan(Input { now: t(7), ..input });
    assert_eq!(later.waiting["a"].reason, "ImagePullBackOff");
    assert!(later.waiting["a"]
        .message
        .starts_with("Back-off pulling image \"img:1\""));
    assert_eq!(later.requeue_after, Some(Duration::from_secs(3)));
    let plan = super::plan(Input {
        now: t(10),
        ..input
    });
    assert_eq!(starts(&plan), vec![("a".into(), 0)]);
}

#[test]
fn a_container_failing_its_liveness_probe_is_killed_with_the_probe_grace_then_restarted() {
    use crate::pod::probe::Kind;
    let p = pod("Always", &[], &["a"]);
    let obs = [
        sandbox("s", 0, Running),
        container("c", "a", 0, "s", Running, None),
    ];
    let unhealthy = BTreeMap::from([(
        "c".to_string(),
        Unhealthy {
            probe: Kind::Liveness,
            grace: Some(Duration::from_secs(2)),
        },
    )]);
    let backoff = Backoff::default();
    let none = BTreeMap::new();
    let input = Input {
        pod: &p,
        observed: &obs,
        backoff: &backoff,
        failures: &none,
        unhealthy: &unhealthy,
        now: t(30),
    };
    let plan = plan(input);
    assert_eq!(
        plan.steps,
        vec![Step::KillUnhealthy {
            id: "c".into(),
            name: "a".into(),
            probe: Kind::Liveness,
            grace: Some(Duration::from_secs(2))
        }]
    );
    // Once it exited, the restart policy brings it back.
    let obs = [
        sandbox("s", 0, Running),
        container("c", "a", 0, "s", Exited, Some(137)),
    ];
    let plan = super::plan(Input {
        observed: &obs,
        ..input
    });
    assert_eq!(starts(&plan), vec![("a".into(), 1)]);
}
