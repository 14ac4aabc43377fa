//! End-to-end: pod lifecycle verbs on the authenticated port.
//! `rkubelet restart pod NAME` stops a running pod's containers gracefully
//! and the restart policy brings them back (RESTARTS counts it, an event
//! says who asked); `--recreate` gives the pod a new sandbox; a completed
//! `restartPolicy: Never` pod runs again; `kubectl delete pod` is refused
//! with a `Status` naming the manifest file and the restart command; the
//! read-only port has no exec and no restart.

mod common;

use std::process::Command;
use std::time::Duration;

use common::daemon::{wait_until, Daemon, IMAGE};

fn restart(d: &Daemon, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rkubelet"))
        .arg("restart")
        .args(args)
        .arg("--kubeconfig")
        .arg(d.kubeconfig())
        .output()
        .expect("rkubelet restart");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn restart_count(d: &Daemon, name: &str) -> i64 {
    d.api_pod(name).map_or(-1, |p| {
        p["status"]["containerStatuses"][0]["restartCount"]
            .as_i64()
            .unwrap_or(-1)
    })
}

#[test]
fn restart_brings_the_containers_back_counted_and_recreate_makes_a_new_sandbox() {
    let d = Daemon::start();
    d.write(
        "web.yaml",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: web}}\nspec:\n  terminationGracePeriodSeconds: 5\n  containers:\n  - {{name: a, image: {IMAGE}, command: [sh, -c, 'trap \"exit 0\" TERM; while true; do sleep 0.2; done']}}\n"
        ),
    );
    let before = d.wait_running("web", &["a"], Duration::from_secs(30));
    let sandbox = before
        .iter()
        .find(|c| c.cname() == "POD")
        .expect("sandbox")
        .id
        .clone();
    let app = before
        .iter()
        .find(|c| c.cname() == "a")
        .expect("app")
        .id
        .clone();
    wait_until("restartCount 0 reported", Duration::from_secs(20), || {
        (restart_count(&d, "web") == 0).then_some(())
    });

    let (ok, out, err) = restart(&d, &["pod", "web"]);
    assert!(ok, "{err}");
    assert!(out.contains("restarted"), "{out}");
    wait_until(
        "the container is back, counted",
        Duration::from_secs(30),
        || {
            let cs = d.pod_containers("web");
            let running = cs
                .iter()
                .any(|c| c.cname() == "a" && c.running && c.id != app);
            (running && restart_count(&d, "web") == 1).then_some(())
        },
    );
    // Same sandbox: only the containers were restarted.
    assert!(d
        .pod_containers("web")
        .iter()
        .any(|c| c.id == sandbox && c.running));
    let (ok, events, _) = d.kubectl_auth(&["get", "events"]);
    assert!(ok && events.contains("Restarting"), "{events}");

    let (ok, _, err) = restart(&d, &["pod", "web", "--recreate"]);
    assert!(ok, "{err}");
    wait_until(
        "a new sandbox runs the pod",
        Duration::from_secs(60),
        || {
            let cs = d.pod_containers("web");
            let new_sandbox = cs
                .iter()
                .any(|c| c.cname() == "POD" && c.running && c.id != sandbox);
            let app_running = cs.iter().any(|c| c.cname() == "a" && c.running);
            (new_sandbox && app_running && !cs.iter().any(|c| c.id == sandbox)).then_some(())
        },
    );
    // The new sandbox's container counts on from the removed one's (1).
    wait_until(
        "restartCount 2 after the recreation",
        Duration::from_secs(20),
        || (restart_count(&d, "web") == 2).then_some(()),
    );
    let (ok, table, err) = d.kubectl_auth(&["get", "pods"]);
    assert!(ok, "{err}");
    let row = table
        .lines()
        .find(|l| l.starts_with("web"))
        .unwrap_or_else(|| panic!("no web row in {table}"));
    assert_eq!(row.split_whitespace().nth(3), Some("2"), "{table}");

    let (ok, _, err) = restart(&d, &["pod", "missing"]);
    assert!(!ok && err.contains("\"missing\" not found"), "{err}");
}

#[test]
fn a_completed_never_pod_runs_again_on_restart() {
    let d = Daemon::start();
    d.write(
        "once.yaml",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: once}}\nspec:\n  restartPolicy: Never\n  containers:\n  - {{name: a, image: {IMAGE}, command: [sh, -c, 'echo ran']}}\n"
        ),
    );
    let first = wait_until("the pod completes", Duration::from_secs(30), || {
        let p = d.api_pod("once")?;
        (p["status"]["phase"] == "Succeeded").then(|| {
            d.pod_containers("once")
                .into_iter()
                .find(|c| c.cname() == "a")
                .map(|c| c.id)
        })?
    });
    let (ok, _, err) = restart(&d, &["pod", "once"]);
    assert!(ok, "{err}");
    wait_until(
        "the pod ran again and completed",
        Duration::from_secs(60),
        || {
            let p = d.api_pod("once")?;
            let again = d
                .pod_containers("once")
                .into_iter()
                .any(|c| c.cname() == "a" && c.id != first && !c.running && c.exit_code == 0);
            (again && p["status"]["phase"] == "Succeeded").then_some(())
        },
    );
    assert_eq!(
        restart_count(&d, "once"),
        1,
        "the re-run counts as a restart"
    );
}

#[test]
fn kubectl_delete_pod_is_refused_naming_the_manifest_and_the_restart_command() {
    let d = Daemon::start();
    d.write(
        "keep.yaml",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: keep}}\nspec:\n  containers:\n  - {{name: a, image: {IMAGE}, command: [sleep, '3600']}}\n"
        ),
    );
    d.wait_running("keep", &["a"], Duration::from_secs(30));
    let pod = format!("keep-{}", d.node);
    let manifest = d.manifest_dir().join("keep.yaml");
    let (ok, _, err) = wait_until("the pod is served", Duration::from_secs(20), || {
        let r = d.kubectl_auth(&["delete", "pod", &pod, "--wait=false"]);
        (!r.2.contains("NotFound")).then_some(r)
    });
    assert!(!ok, "kubectl delete succeeded");
    assert!(err.contains(&manifest.display().to_string()), "{err}");
    assert!(err.contains("rkubelet restart pod"), "{err}");
    assert!(d
        .pod_containers("keep")
        .iter()
        .any(|c| c.cname() == "a" && c.running));

    // The read-only port has no exec, attach, port-forward or restart.
    for path in [
        "exec?command=ls&stdout=true",
        "attach?stdout=true",
        "portforward?ports=80",
        "restart",
    ] {
        let url = format!("/api/v1/namespaces/default/pods/{pod}/{path}");
        let e = d.get(&url).unwrap_err();
        assert!(e.starts_with("404"), "{url}: {e}");
    }
    let (ok, _, err) = d.kubectl(&["exec", &pod, "--", "ls"]);
    assert!(!ok, "exec over the read-only port worked: {err}");
}
