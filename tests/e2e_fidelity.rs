//! End-to-end: places where rkubelet must do what the kubelet does — a
//! manifest put back while its pod terminates, completed init containers,
//! long termination messages, status across an rkubelet restart — the real
//! binary against the real Docker daemon.

mod common;

use std::time::{Duration, Instant};

use common::daemon::{wait_until, Daemon, IMAGE};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

const SECS60: Duration = Duration::from_secs(60);

fn status(pod: &Pod, container: &str) -> Option<ContainerStatus> {
    let st = pod.status.clone().unwrap_or_default();
    st.container_statuses
        .into_iter()
        .flatten()
        .chain(st.init_container_statuses.into_iter().flatten())
        .find(|c| c.name == container)
}

/// The running container's id, when the pod's `app` container runs.
fn running_id(d: &Daemon, name: &str) -> Option<String> {
    let s = status(&d.k8s_pod(name)?, "app")?;
    s.state.as_ref()?.running.as_ref()?;
    s.container_id
}

/// A pod whose container ignores SIGTERM (`sleep` as PID 1), so stopping it
/// takes the grace period.
fn slow_to_stop(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  terminationGracePeriodSeconds: 4\n  containers:\n  - {{name: app, image: {IMAGE}, command: [sleep, '3600']}}\n"
    )
}

/// The kubelet's `podWorkers.UpdatePod` (pkg/kubelet/pod_workers.go)
/// records `restartRequested` when a pod is added again while it is
/// terminating, and starts it once termination finished. A manifest removed
/// and put back within one inotify batch leaves the pod running.
#[test]
fn a_manifest_put_back_while_its_pod_terminates_runs_again() {
    let d = Daemon::start();
    let manifest = slow_to_stop("back");
    d.write("back.yaml", &manifest);
    d.write("batch.yaml", &slow_to_stop("batch"));
    let old = wait_until("back running", SECS60, || running_id(&d, "back"));
    wait_until("batch running", SECS60, || running_id(&d, "batch"));

    d.remove("back.yaml");
    wait_until("back terminating", SECS60, || {
        d.k8s_pod("back")?.metadata.deletion_timestamp.map(|_| ())
    });
    d.write("back.yaml", &manifest);
    let new = wait_until("back running again after it stopped", SECS60, || {
        running_id(&d, "back").filter(|id| *id != old)
    });
    assert_ne!(new, old);
    let ids: Vec<String> = d
        .pod_containers("back")
        .iter()
        .map(|c| c.id.clone())
        .collect();
    assert!(
        !ids.iter().any(|id| old.ends_with(id.as_str())),
        "the old container was stopped and removed first: {ids:?}"
    );

    d.remove("batch.yaml");
    d.write("batch.yaml", &slow_to_stop("batch"));
    // Whether the two changes came as one batch or two, the pod ends running
    // and stays so.
    let deadline = Instant::now() + SECS60;
    let mut running_in_a_row = 0;
    while running_in_a_row < 30 {
        assert!(
            Instant::now() < deadline,
            "batch did not end running:\n{}",
            d.log()
        );
        let pod = d.k8s_pod("batch");
        let terminating = pod
            .as_ref()
            .is_some_and(|p| p.metadata.deletion_timestamp.is_some());
        if running_id(&d, "batch").is_some() && !terminating {
            running_in_a_row += 1;
        } else {
            running_in_a_row = 0;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The kubelet's prober manager (`UpdatePodStatus` in
/// pkg/kubelet/prober/prober_manager.go) reports an init container that
/// exited 0 as ready (Conformance: "init containers … should be ready").
#[test]
fn a_completed_init_container_is_ready() {
    let d = Daemon::start();
    d.write(
        "init.yaml",
        &format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: init}}\nspec:\n  initContainers:\n  - {{name: setup, image: {IMAGE}, command: ['true']}}\n  containers:\n  - {{name: app, image: {IMAGE}, command: [sleep, '3600']}}\n"),
    );
    wait_until("app running", SECS60, || running_id(&d, "init"));
    let pod = d.k8s_pod("init").expect("pod");
    let setup = status(&pod, "setup").expect("init status");
    let exit = setup.state.and_then(|s| s.terminated).map(|t| t.exit_code);
    assert_eq!(exit, Some(0));
    assert!(setup.ready, "a completed init container is ready");
    // `lastState` is serialized even when empty, as the kubelet does.
    let json = d.api_pod("init").expect("pod json");
    assert_eq!(
        json["status"]["containerStatuses"][0]["lastState"],
        serde_json::json!({})
    );
    let tolerations = &json["spec"]["tolerations"];
    assert_eq!(
        tolerations,
        &serde_json::json!([{"operator": "Exists", "effect": "NoExecute"}])
    );
}

/// The kubelet reads a termination message with `tail.ReadAtMost(path,
/// 4096)` (pkg/kubelet/kuberuntime, `getTerminationMessage`): a longer
/// message keeps its last 4096 bytes.
#[test]
fn a_long_termination_message_keeps_its_end() {
    let d = Daemon::start();
    d.write(
        "long.yaml",
        &format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: long}}\nspec:\n  restartPolicy: Never\n  containers:\n  - name: app\n    image: {IMAGE}\n    command: [sh, -c, \"head -c 5000 /dev/zero | tr '\\\\0' x > /dev/termination-log; printf THE-END >> /dev/termination-log\"]\n"),
    );
    let message = wait_until("long terminated", SECS60, || {
        let s = status(&d.k8s_pod("long")?, "app")?;
        s.state?.terminated.map(|t| t.message.unwrap_or_default())
    });
    assert_eq!(message.len(), 4096, "{message}");
    assert!(message.ends_with("xTHE-END"), "{}", &message[4000..]);
}

/// The kubelet keeps a running container's status across its own restart
/// (NodeConformance "should not change container status on kubelet
/// restart"; its prober workers only start from the initial values in
/// `newWorker`, pkg/kubelet/prober/worker.go, for containers it knows
/// nothing about). After an rkubelet restart, `ready` and `started` of a
/// container whose probes pass never go false.
#[test]
fn ready_and_started_do_not_flip_when_rkubelet_restarts() {
    let mut d = Daemon::start();
    d.write(
        "steady.yaml",
        &format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: steady}}\nspec:\n  containers:\n  - name: app\n    image: {IMAGE}\n    command: [sleep, '3600']\n    startupProbe: {{exec: {{command: ['true']}}, periodSeconds: 1}}\n    readinessProbe: {{exec: {{command: ['true']}}, periodSeconds: 5}}\n"),
    );
    let before = wait_until("app ready", SECS60, || {
        let s = status(&d.k8s_pod("steady")?, "app")?;
        (s.ready && s.started == Some(true)).then_some(s.container_id)
    });
    d.sigterm();
    d.spawn();
    let until = Instant::now() + Duration::from_secs(5);
    let mut samples = Vec::new();
    while Instant::now() < until {
        if let Some(s) = d.k8s_pod("steady").and_then(|p| status(&p, "app")) {
            samples.push((s.ready, s.started, s.container_id));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(samples.len() > 10, "the pod was listed: {samples:?}");
    for (ready, started, id) in &samples {
        assert_eq!(id, &before, "no container restarted");
        assert!(
            *ready && *started == Some(true),
            "status flipped after the restart: {samples:?}\n{}",
            d.last_log()
        );
    }
}
