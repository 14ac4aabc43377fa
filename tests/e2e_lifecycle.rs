//! End-to-end: restart policies, crash-loop backoff, init containers,
//! hooks, deadlines, OOM kills, status at /pods and the client commands —
//! the real binary against the real Docker daemon.

mod common;

use std::time::{Duration, Instant};

use common::daemon::{wait_until, Daemon, DockerEvents, Opts, IMAGE};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

const SECS30: Duration = Duration::from_secs(30);

/// A daemon with a 1 s / 8 s crash-loop backoff.
fn fast_backoff() -> Daemon {
    let mut opts = Opts::default();
    opts.extra_args.extend(
        [
            "--crash-loop-backoff-base",
            "1s",
            "--crash-loop-backoff-max",
            "8s",
        ]
        .map(String::from),
    );
    Daemon::start_with(opts)
}

fn status(pod: &Pod, container: &str) -> ContainerStatus {
    let st = pod.status.clone().unwrap_or_default();
    st.container_statuses
        .into_iter()
        .flatten()
        .chain(st.init_container_statuses.into_iter().flatten())
        .find(|c| c.name == container)
        .unwrap_or_else(|| panic!("no status for {container}"))
}

fn phase(pod: &Pod) -> String {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default()
}

fn waiting_reason(s: &ContainerStatus) -> Option<String> {
    s.state.as_ref()?.waiting.as_ref()?.reason.clone()
}

fn terminated_reason(s: &ContainerStatus) -> Option<String> {
    s.state.as_ref()?.terminated.as_ref()?.reason.clone()
}

#[test]
fn restart_policy_and_exit_codes_end_the_way_the_kubelet_ends_them() {
    let d = fast_backoff();
    for policy in ["Always", "OnFailure", "Never"] {
        let runs = d.scratch(policy);
        d.write(
            &format!("{}.yaml", policy.to_lowercase()),
            &format!(
                r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  restartPolicy: {policy}
  volumes: [{{name: runs, hostPath: {{path: "{runs}"}}}}]
  containers:
  - name: app
    image: {IMAGE}
    # First run exits 1, second exits 0, later runs sleep.
    command: ["sh", "-c", "echo run >> /runs/count; n=`wc -l < /runs/count`; if [ $n -eq 1 ]; then exit 1; elif [ $n -eq 2 ]; then exit 0; else sleep 3600; fi"]
    volumeMounts: [{{name: runs, mountPath: /runs}}]
"#,
                name = policy.to_lowercase(),
                runs = runs.display()
            ),
        );
    }
    let settled = |name: &str, want_phase: &str, want_restarts: i32| {
        wait_until(&format!("{name} settles"), SECS30, || {
            let pod = d.k8s_pod(name)?;
            let s = status(&pod, "app");
            (phase(&pod) == want_phase && s.restart_count == want_restarts).then_some((pod, s))
        })
    };
    let (_, always) = settled("always", "Running", 2);
    assert!(always.state.as_ref().is_some_and(|s| s.running.is_some()));
    let (_, on_failure) = settled("onfailure", "Succeeded", 1);
    assert_eq!(terminated_reason(&on_failure).as_deref(), Some("Completed"));
    let (_, never) = settled("never", "Failed", 0);
    assert_eq!(terminated_reason(&never).as_deref(), Some("Error"));
    // Finished pods stay finished.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        status(&d.k8s_pod("never").expect("pod"), "app").restart_count,
        0
    );
    assert_eq!(
        status(&d.k8s_pod("onfailure").expect("pod"), "app").restart_count,
        1
    );
}

#[test]
fn a_crashing_container_backs_off_exponentially_up_to_the_cap_and_is_forgiven_after_a_long_run() {
    let d = fast_backoff();
    let mut events = DockerEvents::start(&d.node);
    let runs = d.scratch("runs");
    d.write(
        "crash.yaml",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: crash}}\nspec:\n  containers:\n  - {{name: crash, image: {IMAGE}, command: [sh, -c, 'exit 1']}}\n"
        ),
    );
    // Three instant crashes, then a run of 17 s (> 2 × max), then crashes.
    d.write(
        "forgive.yaml",
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata: {{name: forgive}}
spec:
  volumes: [{{name: runs, hostPath: {{path: "{}"}}}}]
  containers:
  - name: forgive
    image: {IMAGE}
    command: ["sh", "-c", "echo run >> /runs/count; if [ `wc -l < /runs/count` -eq 4 ]; then sleep 17; fi; exit 1"]
    volumeMounts: [{{name: runs, mountPath: /runs}}]
"#,
            runs.display()
        ),
    );
    // Between restarts the container shows CrashLoopBackOff.
    wait_until("CrashLoopBackOff in /pods", SECS30, || {
        let s = status(&d.k8s_pod("crash")?, "crash");
        let w = s.state.as_ref()?.waiting.as_ref()?.clone();
        (w.reason.as_deref() == Some("CrashLoopBackOff")).then_some(())?;
        assert!(
            w.message.as_deref().is_some_and(|m| m.contains("back-off")),
            "{w:?}"
        );
        Some(())
    });
    let starts = wait_until(
        "7 starts of the crashing container",
        Duration::from_secs(60),
        || {
            let s = events.of("crash", "start");
            (s.len() >= 7).then_some(s)
        },
    );
    let gaps: Vec<f64> = starts
        .windows(2)
        .map(|w| w[1].secs() - w[0].secs())
        .collect();
    let expected = [0.0, 1.0, 2.0, 4.0, 8.0, 8.0];
    for (i, (gap, want)) in gaps.iter().zip(expected).enumerate() {
        // ±0.5 s, plus Docker's time to notice the exit and start a container.
        assert!(
            *gap >= want - 0.5 && *gap <= want + 0.5 + 1.0,
            "gap {i}: {gap:.2}s, want {want}s (all: {gaps:?})"
        );
    }
    // The 4th run lasted 17 s > 2 × 8 s: its restart is immediate.
    let f_starts = wait_until(
        "the run after the long one",
        Duration::from_secs(60),
        || {
            let s = events.of("forgive", "start");
            (s.len() >= 5).then_some(s)
        },
    );
    let f_dies = events.of("forgive", "die");
    let long_run_end = f_dies
        .iter()
        .find(|e| e.nanos > f_starts[3].nanos)
        .expect("the long run ended");
    let gap = f_starts[4].secs() - long_run_end.secs();
    assert!(
        gap < 1.5,
        "restart after a long run took {gap:.2}s instead of being immediate"
    );
    assert!(
        long_run_end.secs() - f_starts[3].secs() >= 16.5,
        "the 4th run was the long one"
    );
}

#[test]
fn restart_count_survives_a_killed_rkubelet() {
    let mut d = fast_backoff();
    d.write(
        "crash.yaml",
        &format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: crash}}\nspec:\n  containers:\n  - {{name: c, image: {IMAGE}, command: [sh, -c, 'sleep 0.5; exit 1']}}\n"),
    );
    let before = wait_until("two restarts", SECS30, || {
        let n = status(&d.k8s_pod("crash")?, "c").restart_count;
        (n >= 2).then_some(n)
    });
    d.kill9();
    d.spawn();
    let mut seen = Vec::new();
    let after = wait_until("another restart after the rkubelet restart", SECS30, || {
        let n = status(&d.k8s_pod("crash")?, "c").restart_count;
        seen.push(n);
        (n > before).then_some(n)
    });
    assert!(
        seen.iter().all(|n| *n >= before),
        "restartCount went back: {seen:?}"
    );
    assert!(after > before);
    // The previous instance's logs and lastState are there.
    let pod = d.k8s_pod("crash").expect("pod");
    let last = status(&pod, "c")
        .last_state
        .and_then(|l| l.terminated)
        .expect("lastState.terminated");
    assert_eq!(last.exit_code, 1);
    assert!(last.finished_at.is_some() && last.started_at.is_some());
    // Dead instances do not pile up: at most the newest dead one is kept.
    let dead = d
        .pod_containers("crash")
        .iter()
        .filter(|c| c.cname() == "c" && !c.running)
        .count();
    assert!(dead <= 2, "{dead} dead instances kept");
}

#[test]
fn init_containers_run_in_order_before_the_app_and_a_failing_one_blocks_or_fails_the_pod() {
    let d = fast_backoff();
    let log = d.scratch("log");
    d.write(
        "ordered.yaml",
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata: {{name: ordered}}
spec:
  volumes: [{{name: log, hostPath: {{path: "{}"}}}}]
  initContainers:
  - {{name: first, image: {IMAGE}, command: [sh, -c, 'sleep 1; echo first >> /log/order'], volumeMounts: [{{name: log, mountPath: /log}}]}}
  - {{name: second, image: {IMAGE}, command: [sh, -c, 'echo second >> /log/order'], volumeMounts: [{{name: log, mountPath: /log}}]}}
  containers:
  - {{name: app, image: {IMAGE}, command: [sh, -c, 'echo app >> /log/order; sleep 3600'], volumeMounts: [{{name: log, mountPath: /log}}]}}
"#,
            log.display()
        ),
    );
    let failing = |name: &str, policy: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  restartPolicy: {policy}\n  initContainers:\n  - {{name: init1, image: {IMAGE}, command: [sh, -c, 'exit 1']}}\n  - {{name: init2, image: {IMAGE}, command: ['true']}}\n  containers:\n  - {{name: app, image: {IMAGE}, command: [sleep, '3600']}}\n"
        )
    };
    d.write("blocked.yaml", &failing("blocked", "Always"));
    d.write("failed.yaml", &failing("failed", "Never"));

    d.wait_running("ordered", &["app"], SECS30);
    let order = wait_until("the app wrote", SECS30, || {
        std::fs::read_to_string(log.join("order"))
            .ok()
            .filter(|s| s.contains("app"))
    });
    assert_eq!(order, "first\nsecond\napp\n");

    let pod = wait_until("blocked retries init1", SECS30, || {
        let pod = d.k8s_pod("blocked")?;
        (status(&pod, "init1").restart_count >= 1).then_some(pod)
    });
    assert_eq!(
        waiting_reason(&status(&pod, "app")).as_deref(),
        Some("PodInitializing")
    );
    assert_eq!(phase(&pod), "Pending");
    assert!(
        d.pod_containers("blocked")
            .iter()
            .all(|c| c.cname() != "app"),
        "the app never started"
    );

    let pod = wait_until("failed is Failed", SECS30, || {
        let pod = d.k8s_pod("failed")?;
        (phase(&pod) == "Failed").then_some(pod)
    });
    let init = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .into_iter()
        .flatten()
        .find(|c| c.type_ == "Initialized")
        .expect("Initialized condition");
    assert_eq!(init.status, "False");
    assert_eq!(init.reason.as_deref(), Some("ContainersNotInitialized"));
    assert_eq!(
        init.message.as_deref(),
        Some("containers with incomplete status: [init1 init2]")
    );
    assert_eq!(status(&pod, "init1").restart_count, 0);
}

#[test]
fn sidecars_start_in_order_keep_running_and_stop_after_the_app_containers() {
    let d = fast_backoff();
    let log = d.scratch("log");
    d.write(
        "side.yaml",
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata: {{name: side}}
spec:
  terminationGracePeriodSeconds: 5
  volumes: [{{name: log, hostPath: {{path: "{}"}}}}]
  initContainers:
  - name: proxy
    image: {IMAGE}
    restartPolicy: Always
    command: [sh, -c, "echo proxy-start >> /log/order; trap 'echo proxy-stop >> /log/order; exit 0' TERM; while true; do sleep 0.1; done"]
    volumeMounts: [{{name: log, mountPath: /log}}]
  containers:
  - name: app
    image: {IMAGE}
    command: [sh, -c, "echo app-start >> /log/order; trap 'sleep 1; echo app-stop >> /log/order; exit 0' TERM; while true; do sleep 0.1; done"]
    volumeMounts: [{{name: log, mountPath: /log}}]
"#,
            log.display()
        ),
    );
    d.wait_running("side", &["proxy", "app"], SECS30);
    let pod = wait_until("side ready", SECS30, || {
        let pod = d.k8s_pod("side")?;
        (phase(&pod) == "Running").then_some(pod)
    });
    assert!(status(&pod, "proxy").started == Some(true));
    let (ok, table, _) = d.ctl(&["get", "pods"]);
    assert!(ok && table.contains("2/2"), "{table}");
    d.remove("side.yaml");
    d.wait_gone("side", SECS30);
    let order = std::fs::read_to_string(log.join("order")).expect("order");
    assert_eq!(order, "proxy-start\napp-start\napp-stop\nproxy-stop\n");
}

#[test]
fn pre_stop_runs_on_removal_not_on_a_normal_exit_and_is_cut_at_the_grace_period() {
    let d = fast_backoff();
    let out = d.scratch("out");
    let hook = |name: &str, cmd: &str, policy: &str, grace: u32, pre_stop: &str| {
        format!(
            r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  restartPolicy: {policy}
  terminationGracePeriodSeconds: {grace}
  volumes: [{{name: out, hostPath: {{path: "{out}"}}}}]
  containers:
  - name: app
    image: {IMAGE}
    command: [sh, -c, "{cmd}"]
    volumeMounts: [{{name: out, mountPath: /out}}]
    lifecycle:
      preStop: {pre_stop}
"#,
            out = out.display()
        )
    };
    let write_hook =
        |file: &str| format!("{{exec: {{command: [sh, -c, 'echo ran > /out/{file}']}}}}");
    d.write(
        "removed.yaml",
        &hook(
            "removed",
            "sleep 3600",
            "Always",
            10,
            &write_hook("removed"),
        ),
    );
    d.write(
        "exits.yaml",
        &hook("exits", "exit 0", "Never", 10, &write_hook("exits")),
    );
    d.write(
        "slow.yaml",
        &hook(
            "slow",
            "trap '' TERM; while true; do sleep 0.2; done",
            "Always",
            3,
            "{sleep: {seconds: 30}}",
        ),
    );
    d.wait_running("removed", &["app"], SECS30);
    d.wait_running("slow", &["app"], SECS30);
    wait_until("exits finished", SECS30, || {
        (phase(&d.k8s_pod("exits")?) == "Succeeded").then_some(())
    });

    d.remove("removed.yaml");
    d.wait_gone("removed", SECS30);
    assert_eq!(
        std::fs::read_to_string(out.join("removed")).ok().as_deref(),
        Some("ran\n")
    );

    d.remove("exits.yaml");
    d.wait_gone("exits", SECS30);
    assert!(
        !out.join("exits").exists(),
        "preStop ran for a container that had exited normally"
    );

    let started = Instant::now();
    d.remove("slow.yaml");
    d.wait_gone("slow", SECS30);
    let took = started.elapsed();
    // Hook cut at the 3 s grace, then at least 2 s for SIGTERM before SIGKILL.
    assert!(took >= Duration::from_secs(3), "took {took:?}");
    assert!(
        took < Duration::from_secs(20),
        "the 30 s preStop was not cut: {took:?}"
    );
}

#[test]
fn a_post_start_hook_runs_before_the_next_container_starts_and_a_failing_one_restarts_the_container(
) {
    let d = fast_backoff();
    let out = d.scratch("out");
    d.write(
        "post.yaml",
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata: {{name: post}}
spec:
  volumes: [{{name: out, hostPath: {{path: "{out}"}}}}]
  containers:
  - name: first
    image: {IMAGE}
    command: [sleep, "3600"]
    volumeMounts: [{{name: out, mountPath: /out}}]
    lifecycle:
      postStart: {{exec: {{command: [sh, -c, 'sleep 1; echo first-hook >> /out/order']}}}}
  - name: second
    image: {IMAGE}
    command: [sh, -c, 'echo second-start >> /out/order; sleep 3600']
    volumeMounts: [{{name: out, mountPath: /out}}]
"#,
            out = out.display()
        ),
    );
    d.write(
        "badhook.yaml",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: badhook}}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: app\n    image: {IMAGE}\n    command: [sleep, '3600']\n    lifecycle:\n      postStart: {{exec: {{command: [sh, -c, 'exit 7']}}}}\n"
        ),
    );
    d.wait_running("post", &["first", "second"], SECS30);
    let order = wait_until("second started", SECS30, || {
        std::fs::read_to_string(out.join("order"))
            .ok()
            .filter(|s| s.contains("second-start"))
    });
    assert_eq!(order, "first-hook\nsecond-start\n");

    wait_until("the failing hook's container restarted", SECS30, || {
        (status(&d.k8s_pod("badhook")?, "app").restart_count >= 1).then_some(())
    });
    let events = d.get_json("/api/v1/namespaces/default/events");
    let hook_event = events["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["reason"] == "FailedPostStartHook");
    let hook_event = hook_event.expect("a FailedPostStartHook event");
    assert!(
        hook_event["message"]
            .as_str()
            .is_some_and(|m| m.contains("PostStartHookError")),
        "{hook_event}"
    );
}

#[test]
fn active_deadline_fails_the_pod_and_oom_kills_are_reported() {
    let d = fast_backoff();
    d.write(
        "deadline.yaml",
        &format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: deadline}}\nspec:\n  activeDeadlineSeconds: 3\n  terminationGracePeriodSeconds: 1\n  containers:\n  - {{name: app, image: {IMAGE}, command: [sleep, '3600']}}\n"),
    );
    d.write(
        "oom.yaml",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: oom}}\nspec:\n  restartPolicy: Never\n  containers:\n  - name: app\n    image: {IMAGE}\n    command: [dd, if=/dev/zero, of=/dev/null, bs=100M, count=1]\n    resources: {{limits: {{memory: 32Mi}}}}\n"
        ),
    );
    let started = Instant::now();
    let pod = wait_until("deadline exceeded", SECS30, || {
        let pod = d.k8s_pod("deadline")?;
        (phase(&pod) == "Failed").then_some(pod)
    });
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "the deadline came early"
    );
    let st = pod.status.clone().unwrap_or_default();
    assert_eq!(st.reason.as_deref(), Some("DeadlineExceeded"));
    wait_until("its containers stopped", SECS30, || {
        d.pod_containers("deadline")
            .iter()
            .all(|c| !c.running)
            .then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        d.pod_containers("deadline").iter().all(|c| !c.running),
        "a failed pod was restarted"
    );

    let pod = wait_until("oom pod failed", SECS30, || {
        let pod = d.k8s_pod("oom")?;
        (phase(&pod) == "Failed").then_some(pod)
    });
    let app = status(&pod, "app");
    let t = app.state.and_then(|s| s.terminated).expect("terminated");
    assert_eq!((t.reason.as_deref(), t.exit_code), (Some("OOMKilled"), 137));
}

#[test]
fn pods_validates_as_a_pod_list_and_get_pods_prints_the_kubectl_status_of_each_pod() {
    let d = fast_backoff();
    let pod = |name: &str, body: &str| {
        format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n{body}")
    };
    d.write(
        "running.yaml",
        &pod(
            "running",
            &format!("  containers:\n  - {{name: a, image: {IMAGE}, command: [sleep, '3600']}}\n"),
        ),
    );
    d.write("completed.yaml", &pod("completed", &format!("  restartPolicy: Never\n  containers:\n  - {{name: a, image: {IMAGE}, command: ['true']}}\n")));
    d.write(
        "crashing.yaml",
        &pod(
            "crashing",
            &format!(
                "  containers:\n  - {{name: a, image: {IMAGE}, command: [sh, -c, 'exit 2']}}\n"
            ),
        ),
    );
    d.write("initing.yaml", &pod("initing", &format!("  initContainers:\n  - {{name: i, image: {IMAGE}, command: [sleep, '3600']}}\n  containers:\n  - {{name: a, image: {IMAGE}}}\n")));
    d.write(
        "pullfail.yaml",
        &pod(
            "pullfail",
            "  containers:\n  - {name: a, image: 'rkubelet-test/does-not-exist:1'}\n",
        ),
    );

    let expected = [
        ("running", vec!["Running"]),
        ("completed", vec!["Completed"]),
        ("crashing", vec!["CrashLoopBackOff"]),
        ("initing", vec!["Init:0/1"]),
        ("pullfail", vec!["ErrImagePull", "ImagePullBackOff"]),
    ];
    let table = wait_until("every pod shows its status", SECS30, || {
        let (ok, out, _) = d.ctl(&["get", "pods"]);
        if !ok {
            return None;
        }
        let all = expected.iter().all(|(name, statuses)| {
            out.lines().any(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                cols.first() == Some(&format!("{name}-{}", d.node).as_str())
                    && cols.get(2).is_some_and(|s| statuses.contains(s))
            })
        });
        all.then_some(out)
    });
    assert!(table.starts_with("NAME"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&format!("running-{}", d.node)) && l.contains("1/1")),
        "{table}"
    );

    // /pods is a v1 PodList of full pods.
    let list: k8s_openapi::List<Pod> =
        serde_json::from_str(&d.get("/pods").expect("/pods")).expect("a v1 PodList");
    assert_eq!(list.items.len(), 5);
    let running = list
        .items
        .iter()
        .find(|p| p.metadata.name.as_deref() == Some(&format!("running-{}", d.node)))
        .expect("running");
    let spec = running.spec.clone().expect("spec");
    assert_eq!(
        spec.restart_policy.as_deref(),
        Some("Always"),
        "the spec is defaulted"
    );
    assert_eq!(
        spec.containers[0].image_pull_policy.as_deref(),
        Some("IfNotPresent")
    );
    let st = running.status.clone().expect("status");
    assert_eq!(st.qos_class.as_deref(), Some("BestEffort"));
    assert!(st.start_time.is_some() && st.pod_ip.is_some() && st.host_ip.is_some());
    let c = &st.container_statuses.expect("container statuses")[0];
    assert!(c
        .container_id
        .as_deref()
        .is_some_and(|id| id.starts_with("docker://")));
    assert!(c.image_id.starts_with("sha256:"), "{}", c.image_id);

    // Names work without the node suffix; -o wide adds IP and NODE.
    let (ok, wide, _) = d.ctl(&["get", "pods", "running", "-o", "wide"]);
    assert!(
        ok && wide.contains("IP") && wide.contains(&d.node),
        "{wide}"
    );
    let (ok, json, _) = d.ctl(&["get", "pod", "running", "-o", "json"]);
    let one: Pod = serde_json::from_str(&json).expect("-o json is a Pod");
    assert!(ok && one.metadata.name == running.metadata.name);
    let (ok, _, err) = d.ctl(&["get", "pods", "nope"]);
    assert!(!ok && err.contains("not found"), "{err}");
}

#[test]
fn describe_shows_state_and_events_and_logs_show_current_and_previous_output() {
    let d = fast_backoff();
    d.write(
        "talk.yaml",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: talk}}\nspec:\n  containers:\n  - {{name: a, image: {IMAGE}, command: [sh, -c, 'echo hello from run `date +%s%N`; sleep 1; exit 3']}}\n  - {{name: b, image: {IMAGE}, command: [sh, -c, 'echo b says hi; sleep 3600']}}\n"
        ),
    );
    wait_until("a restarted", SECS30, || {
        (status(&d.k8s_pod("talk")?, "a").restart_count >= 1).then_some(())
    });
    let (ok, text, err) = d.ctl(&["describe", "pod", "talk"]);
    assert!(ok, "{err}");
    for needle in [
        "Name:",
        "talk-",
        "Containers:",
        "Restart Count:",
        "Last State:",
        "Exit Code:    3",
        "Conditions:",
        "Events:",
        "Started",
        "Created",
    ] {
        assert!(text.contains(needle), "describe lacks {needle:?}:\n{text}");
    }
    let (ok, _, err) = d.ctl(&["logs", "talk"]);
    assert!(!ok && err.contains("choose one of: [a b]"), "{err}");
    let (ok, b, _) = d.ctl(&["logs", "talk", "-c", "b"]);
    assert!(ok && b == "b says hi\n", "{b:?}");
    let (ok, previous, err) = d.ctl(&["logs", "talk", "-c", "a", "--previous"]);
    assert!(
        ok && previous.starts_with("hello from run"),
        "{previous:?} {err}"
    );
    let (ok, tail, _) = d.ctl(&["logs", "talk", "-c", "b", "--tail", "1"]);
    assert!(ok && tail == "b says hi\n");
}

#[test]
fn termination_messages_come_from_the_termination_log_or_the_logs_on_error() {
    let d = fast_backoff();
    let pod = |name: &str, extra: &str, cmd: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  restartPolicy: Never\n  containers:\n  - name: app\n    image: {IMAGE}\n{extra}    command: [sh, -c, \"{cmd}\"]\n"
        )
    };
    d.write(
        "file.yaml",
        &pod(
            "file",
            "",
            "echo 'goodbye from the file' > /dev/termination-log; exit 1",
        ),
    );
    d.write(
        "custom.yaml",
        &pod(
            "custom",
            "    terminationMessagePath: /tmp/why\n",
            "echo 'custom path' > /tmp/why; exit 0",
        ),
    );
    d.write(
        "fallback.yaml",
        &pod(
            "fallback",
            "    terminationMessagePolicy: FallbackToLogsOnError\n",
            "for i in 1 2 3; do echo line $i; done; exit 2",
        ),
    );
    let message = |name: &str| {
        wait_until(&format!("{name} terminated"), SECS30, || {
            let s = status(&d.k8s_pod(name)?, "app");
            s.state?.terminated.map(|t| t.message.unwrap_or_default())
        })
    };
    assert_eq!(message("file"), "goodbye from the file\n");
    assert_eq!(message("custom"), "custom path\n");
    assert_eq!(message("fallback"), "line 1\nline 2\nline 3\n");
    let (ok, text, _) = d.ctl(&["describe", "pod", "file"]);
    assert!(ok && text.contains("goodbye from the file"), "{text}");
}
