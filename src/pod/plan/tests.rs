use super::*;
use crate::backoff::BackoffPolicy;
use crate::pod::fixtures::{container, load_pod, pod, sandbox, t};
use std::collections::BTreeSet;

fn run(p: &Pod, observed: &[ContainerInfo], backoff: &Backoff, now: Timestamp) -> Plan {
    plan(Input {
        pod: p,
        observed,
        backoff,
        failures: &BTreeMap::new(),
        unhealthy: &BTreeMap::new(),
        started_at: Some(t(0)),
        sandbox_hold: None,
        now,
    })
}

/// Every step of `plan`, in execution order.
fn steps(plan: &Plan) -> Vec<Step> {
    plan.steps().cloned().collect()
}

fn starts(plan: &Plan) -> Vec<(String, u32)> {
    plan.steps()
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
    assert_eq!(steps(&plan), vec![Step::CreateSandbox { attempt: 0 }]);
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
    backoff.record("a", t(20), t(20)); // the first (immediate) restart happened
                                       // The instance finished at t(21); 10s backoff runs until t(31).
    let plan = run(&p, &obs, &backoff, t(25));
    assert!(starts(&plan).is_empty());
    assert_eq!(plan.waiting["a"].reason, WaitingReason::CrashLoopBackOff);
    assert!(plan.waiting["a"]
        .message
        .starts_with("back-off 10s restarting failed container=a"));
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(6)));
    let plan = run(&p, &obs, &backoff, t(31));
    assert_eq!(starts(&plan), vec![("a".into(), 2)]);
}

/// client-go's `flowcontrol.Backoff.Next` (used by the kubelet's
/// `doBackOff` in pkg/kubelet/kuberuntime) stamps an entry with the moment
/// the restart is granted; `hasExpired` forgives only when the next crash
/// comes more than twice the cap after it — the run, not the wait before it.
#[test]
fn at_the_cap_only_a_run_longer_than_twice_the_cap_restarts_at_once() {
    let p = pod("Always", &[], &["a"]);
    // Instance 1 ran from its restart until t(21).
    let obs = [
        sandbox("s", 0, Running),
        container("c", "a", 1, "s", Exited, Some(1)),
    ];
    let at_the_cap = |crashed: i64, granted: i64| {
        let mut backoff = Backoff::new(BackoffPolicy::default());
        for _ in 0..7 {
            backoff.record("a", t(crashed - 20), t(crashed - 20));
        }
        backoff.record("a", t(crashed), t(granted));
        assert_eq!(backoff.current_delay("a"), Some(Duration::from_secs(300)));
        backoff
    };
    // Crashed at -580, restarted after the 300 s wait, ran 301 s: waits.
    let plan = run(&p, &obs, &at_the_cap(-580, -280), t(25));
    assert!(starts(&plan).is_empty());
    assert_eq!(plan.waiting["a"].reason, WaitingReason::CrashLoopBackOff);
    // Crashed at -880, restarted at -580, ran 601 s: forgiven, restarts now.
    let plan = run(&p, &obs, &at_the_cap(-880, -580), t(25));
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
        steps(&plan),
        vec![
            Step::StopContainer {
                id: "c".into(),
                name: "a".into()
            },
            Step::RemoveContainer { id: "s".into() },
            Step::CreateSandbox { attempt: 1 },
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
        steps(&plan),
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
        steps(&plan),
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
    assert_eq!(
        steps(&plan),
        vec![Step::RemoveContainer { id: "c0".into() }]
    );
}

#[test]
fn a_created_but_never_started_container_is_replaced_under_the_same_count() {
    let p = pod("Always", &[], &["a"]);
    let obs = [
        sandbox("s", 0, Running),
        container("c3", "a", 3, "s", ContainerState::Created, None),
    ];
    let plan = run(&p, &obs, &Backoff::default(), t(30));
    assert_eq!(steps(&plan)[0], Step::RemoveContainer { id: "c3".into() });
    assert_eq!(starts(&plan), vec![("a".into(), 3)]);
}

#[test]
fn a_start_failure_waits_until_its_retry_time() {
    let p = pod("Always", &[], &["a"]);
    let obs = [sandbox("s", 0, Running)];
    let failures = BTreeMap::from([(
        "a".to_string(),
        StartFailure {
            reason: WaitingReason::ErrImagePull,
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
        started_at: Some(t(0)),
        sandbox_hold: None,
        now: t(5),
    };
    let plan = plan(input);
    assert!(starts(&plan).is_empty());
    assert_eq!(plan.waiting["a"].reason, WaitingReason::ErrImagePull);
    // Shown as ErrImagePull until 2 s after the failure (t=6), then
    // ImagePullBackOff until the retry at t=10.
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(1)));
    let later = super::plan(Input { now: t(7), ..input });
    assert_eq!(later.waiting["a"].reason, WaitingReason::ImagePullBackOff);
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
    use crate::pod::probe::ProbeKind;
    let p = pod("Always", &[], &["a"]);
    let obs = [
        sandbox("s", 0, Running),
        container("c", "a", 0, "s", Running, None),
    ];
    let unhealthy = BTreeMap::from([(
        "c".to_string(),
        Unhealthy {
            probe: ProbeKind::Liveness,
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
        started_at: Some(t(0)),
        sandbox_hold: None,
        now: t(30),
    };
    let plan = plan(input);
    assert_eq!(
        steps(&plan),
        vec![Step::KillUnhealthy {
            id: "c".into(),
            name: "a".into(),
            probe: ProbeKind::Liveness,
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

/// Planner memory with nothing in it: no backoff, failures or unhealthy
/// containers.
#[derive(Default)]
struct Fresh {
    backoff: Backoff,
    failures: BTreeMap<String, StartFailure>,
    unhealthy: BTreeMap<String, Unhealthy>,
}

impl Fresh {
    /// The input for `p` with `observed` at `now`, started at `t(0)`.
    fn input<'a>(&'a self, p: &'a Pod, observed: &'a [ContainerInfo], now: Timestamp) -> Input<'a> {
        Input {
            pod: p,
            observed,
            backoff: &self.backoff,
            failures: &self.failures,
            unhealthy: &self.unhealthy,
            started_at: Some(t(0)),
            sandbox_hold: None,
            now,
        }
    }
}

fn stop(id: &str, name: &str) -> Step {
    Step::StopContainer {
        id: id.into(),
        name: name.into(),
    }
}

const WITH_DEADLINE: &str = "
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  activeDeadlineSeconds: 60
  restartPolicy: Always
  containers:
  - {name: a, image: 'img:1'}
";

#[test]
fn before_its_deadline_a_pod_runs_and_is_looked_at_again_when_it_runs_out() {
    let p = load_pod(WITH_DEADLINE);
    let m = Fresh::default();
    let obs = [
        sandbox("s", 0, Running),
        container("c", "a", 0, "s", Running, None),
    ];
    let plan = plan(m.input(&p, &obs, t(45)));
    assert!(!plan.deadline_exceeded);
    assert!(plan.is_empty());
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(15)));
}

#[test]
fn past_its_deadline_a_pod_is_stopped_for_good_sandbox_last() {
    let p = load_pod(WITH_DEADLINE);
    let m = Fresh::default();
    let obs = [
        sandbox("s", 0, Running),
        container("c", "a", 0, "s", Running, None),
    ];
    let plan = plan(m.input(&p, &obs, t(60)));
    assert!(plan.deadline_exceeded);
    assert_eq!(
        plan.batches,
        vec![vec![stop("c", "a")], vec![stop("s", "POD")]]
    );
    assert_eq!(plan.requeue_after, Some(Duration::ZERO));
    assert!(plan.waiting.is_empty());
}

#[test]
fn past_its_deadline_a_stopped_pod_is_not_restarted_nor_cleaned_up() {
    let p = load_pod(WITH_DEADLINE);
    let m = Fresh::default();
    let obs = [
        sandbox("s", 0, Exited),
        container("c0", "a", 0, "s", Exited, Some(1)),
        container("c1", "a", 1, "s", Exited, Some(1)),
    ];
    let plan = plan(m.input(&p, &obs, t(600)));
    assert!(plan.deadline_exceeded);
    assert!(plan.is_empty());
    assert_eq!(plan.requeue_after, None);
}

#[test]
fn a_pod_without_a_start_time_has_no_deadline_yet() {
    let p = load_pod(WITH_DEADLINE);
    let m = Fresh::default();
    let input = Input {
        started_at: None,
        ..m.input(&p, &[], t(600))
    };
    let plan = plan(input);
    assert!(!plan.deadline_exceeded);
    assert_eq!(steps(&plan), vec![Step::CreateSandbox { attempt: 0 }]);
}

#[test]
fn a_failed_sandbox_creation_holds_the_next_one_until_its_backoff_ran_out() {
    let p = pod("Always", &[], &["a"]);
    let m = Fresh::default();
    let obs = [
        sandbox("s", 0, Exited),
        container("c", "a", 0, "s", Running, None),
    ];
    let held = Input {
        sandbox_hold: Some(t(20)),
        ..m.input(&p, &obs, t(5))
    };
    let plan = plan(held);
    assert!(plan.is_empty(), "{plan:?}");
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(15)));
    let plan = super::plan(Input { now: t(20), ..held });
    assert_eq!(
        steps(&plan),
        vec![
            stop("c", "a"),
            Step::RemoveContainer { id: "s".into() },
            Step::CreateSandbox { attempt: 1 },
        ]
    );
}

#[test]
fn the_sandbox_hold_does_not_touch_a_pod_with_a_running_sandbox() {
    let p = pod("Always", &[], &["a"]);
    let m = Fresh::default();
    let obs = [sandbox("s", 0, Running)];
    let plan = plan(Input {
        sandbox_hold: Some(t(20)),
        ..m.input(&p, &obs, t(5))
    });
    assert_eq!(starts(&plan), vec![("a".into(), 0)]);
}

const SIDECARS: &str = "
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  restartPolicy: Never
  initContainers:
  - {name: s1, image: 'img:1', restartPolicy: Always}
  - {name: init, image: 'img:1'}
  - {name: s2, image: 'img:1', restartPolicy: Always}
  containers:
  - {name: a, image: 'img:1'}
  - {name: b, image: 'img:1'}
";

#[test]
fn containers_stop_apps_in_parallel_then_sidecars_in_reverse_then_the_sandbox() {
    let p = load_pod(SIDECARS);
    let obs = [
        sandbox("s", 0, Running),
        container("x1", "s1", 0, "s", Running, None),
        container("x2", "s2", 0, "s", Running, None),
        container("ca", "a", 0, "s", Running, None),
        container("cb", "b", 0, "s", Running, None),
    ];
    assert_eq!(
        stop_all(&p, &obs),
        vec![
            vec![stop("ca", "a"), stop("cb", "b")],
            vec![stop("x2", "s2")],
            vec![stop("x1", "s1")],
            vec![stop("s", "POD")],
        ]
    );
}

#[test]
fn without_the_spec_every_container_is_regular_and_the_sandbox_still_goes_last() {
    let obs = [
        sandbox("s", 0, Running),
        container("x1", "s1", 0, "s", Running, None),
        container("ca", "a", 0, "s", Running, None),
    ];
    let observed = Observed::new(&obs);
    assert_eq!(
        stop_batches(None, observed.iter()),
        vec![
            vec![stop("x1", "s1"), stop("ca", "a")],
            vec![stop("s", "POD")]
        ]
    );
}

#[test]
fn a_finished_pod_stops_its_sidecars_in_reverse_before_the_sandbox() {
    let p = load_pod(SIDECARS);
    let m = Fresh::default();
    let obs = [
        sandbox("s", 0, Running),
        container("x1", "s1", 0, "s", Running, None),
        container("i", "init", 0, "s", Exited, Some(0)),
        container("x2", "s2", 0, "s", Running, None),
        container("ca", "a", 0, "s", Exited, Some(0)),
        container("cb", "b", 0, "s", Exited, Some(1)),
    ];
    let plan = plan(m.input(&p, &obs, t(30)));
    assert_eq!(
        plan.batches,
        vec![
            vec![stop("x2", "s2")],
            vec![stop("x1", "s1")],
            vec![stop("s", "POD")],
        ]
    );
}

const POST_START: &str = "
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
  - {name: a, image: 'img:1'}
  - name: b
    image: 'img:1'
    lifecycle: {postStart: {exec: {command: [touch, /ready]}}}
  - {name: c, image: 'img:1'}
  - {name: d, image: 'img:1'}
";

#[test]
fn a_container_with_a_post_start_hook_ends_its_start_batch() {
    let p = load_pod(POST_START);
    let m = Fresh::default();
    let plan = plan(m.input(&p, &[sandbox("s", 0, Running)], t(0)));
    let names: Vec<Vec<&str>> = plan
        .batches
        .iter()
        .map(|b| {
            b.iter()
                .map(|s| match s {
                    Step::StartContainer { name, .. } => name.as_str(),
                    other => panic!("not a start: {other:?}"),
                })
                .collect()
        })
        .collect();
    assert_eq!(names, vec![vec!["a", "b"], vec!["c", "d"]]);
}

#[test]
fn removals_run_as_one_batch_before_the_starts() {
    let p = pod("Always", &[], &["a", "b"]);
    let m = Fresh::default();
    let obs = [
        sandbox("s", 0, Running),
        container("a0", "a", 0, "s", Exited, Some(1)),
        container("a1", "a", 1, "s", Exited, Some(1)),
        container("a2", "a", 2, "s", Exited, Some(1)),
        container("b3", "b", 3, "s", ContainerState::Created, None),
    ];
    let plan = plan(m.input(&p, &obs, t(600)));
    assert_eq!(
        plan.batches,
        vec![
            vec![
                Step::RemoveContainer { id: "b3".into() },
                Step::RemoveContainer { id: "a1".into() },
                Step::RemoveContainer { id: "a0".into() },
            ],
            vec![
                Step::StartContainer {
                    name: "a".into(),
                    restart_count: 3,
                    init: false,
                    restart_of: Some(t(22)),
                },
                Step::StartContainer {
                    name: "b".into(),
                    restart_count: 3,
                    init: false,
                    restart_of: None,
                },
            ],
        ]
    );
}

#[test]
fn a_never_started_sandbox_is_removed_and_a_new_one_created_with_a_higher_attempt() {
    // rkubelet was killed between the sandbox's create and start.
    let p = pod("Always", &[], &["a"]);
    let obs = [sandbox("s0", 0, ContainerState::Created)];
    let plan = run(&p, &obs, &Backoff::default(), t(0));
    assert_eq!(
        steps(&plan),
        vec![
            Step::RemoveContainer { id: "s0".into() },
            Step::CreateSandbox { attempt: 1 },
        ]
    );
}

#[test]
fn never_started_sandboxes_beside_the_running_one_are_removed_and_it_is_kept() {
    // Docker created a sandbox but its answer was lost; a later one runs.
    let p = pod("Always", &[], &["a"]);
    let obs = [
        sandbox("s1", 1, ContainerState::Created),
        sandbox("s2", 2, Running),
        sandbox("s3", 3, ContainerState::Created),
        container("c", "a", 0, "s2", Running, None),
    ];
    let plan = run(&p, &obs, &Backoff::default(), t(0));
    let mut got = steps(&plan);
    got.sort_by_key(|s| format!("{s:?}"));
    assert_eq!(
        got,
        vec![
            Step::RemoveContainer { id: "s1".into() },
            Step::RemoveContainer { id: "s3".into() },
        ]
    );
}

#[test]
fn never_started_app_containers_of_an_old_sandbox_go_with_it() {
    let p = pod("Always", &[], &["a"]);
    let obs = [
        sandbox("s0", 0, Exited),
        container("c0", "a", 0, "s0", Exited, Some(0)),
        container("c1", "a", 1, "s0", ContainerState::Created, None),
        sandbox("s1", 1, ContainerState::Created),
    ];
    let plan = run(&p, &obs, &Backoff::default(), t(30));
    let removed: BTreeSet<String> = plan
        .steps()
        .filter_map(|s| match s {
            Step::RemoveContainer { id } => Some(id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(removed, ["c1", "s0", "s1"].map(String::from).into());
    assert!(steps(&plan).contains(&Step::CreateSandbox { attempt: 2 }));
}

#[test]
fn an_older_never_started_instance_is_removed_while_the_newest_runs() {
    let p = pod("Always", &[], &["a"]);
    let obs = [
        sandbox("s", 0, Running),
        container("c1", "a", 1, "s", ContainerState::Created, None),
        container("c2", "a", 2, "s", Running, None),
    ];
    let plan = run(&p, &obs, &Backoff::default(), t(30));
    assert_eq!(
        steps(&plan),
        vec![Step::RemoveContainer { id: "c1".into() }]
    );
}

#[test]
fn a_finished_pod_removes_a_never_started_sandbox_but_keeps_its_record() {
    let p = pod("Never", &[], &["a"]);
    let obs = [
        sandbox("s0", 0, Exited),
        container("c0", "a", 0, "s0", Exited, Some(0)),
        sandbox("s1", 1, ContainerState::Created),
    ];
    let plan = run(&p, &obs, &Backoff::default(), t(30));
    assert_eq!(
        steps(&plan),
        vec![Step::RemoveContainer { id: "s1".into() }]
    );
}
