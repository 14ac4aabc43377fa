//! End-to-end: a real `kubectl --server http://127.0.0.1:<port>` can `get`,
//! `describe`, read `logs` and list `events` from rkubelet's read-only API.
//! `scripts/test` installs a kubectl (Debian's kubernetes-client) when none
//! is present; without one this test fails rather than skips.

mod common;

use std::process::Command;
use std::time::Duration;

use common::daemon::{wait_until, Daemon, IMAGE};

fn kubectl(d: &Daemon, args: &[&str]) -> (bool, String, String) {
    let out = Command::new("kubectl")
        .arg("--server")
        .arg(format!("http://127.0.0.1:{}", d.port))
        .args(args)
        .output()
        .expect("kubectl is installed (scripts/test installs Debian's kubernetes-client)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_real_kubectl_gets_describes_and_reads_logs_and_events() {
    let d = Daemon::start();
    d.write(
        "talk.yaml",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: talk, labels: {{app: talk}}}}\nspec:\n  containers:\n  - {{name: a, image: {IMAGE}, command: [sh, -c, 'echo hello kubectl; sleep 3600']}}\n"
        ),
    );
    d.wait_running("talk", &["a"], Duration::from_secs(30));
    let pod = format!("talk-{}", d.node);
    let table = wait_until(
        "kubectl get pods shows it Running",
        Duration::from_secs(10),
        || {
            let (ok, out, _) = kubectl(&d, &["get", "pods"]);
            (ok && out
                .lines()
                .any(|l| l.starts_with(&pod) && l.contains("1/1") && l.contains("Running")))
            .then_some(out)
        },
    );
    assert!(table.starts_with("NAME"), "{table}");
    let (ok, wide, err) = kubectl(&d, &["get", "pods", "-o", "wide"]);
    assert!(
        ok && wide.contains("NODE") && wide.contains(&d.node),
        "{wide}{err}"
    );
    let (ok, json, err) = kubectl(&d, &["get", "pod", &pod, "-o", "json"]);
    let v: serde_json::Value =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}{err}"));
    assert!(ok && v["status"]["phase"] == "Running");
    let (ok, text, err) = kubectl(&d, &["describe", "pod", &pod]);
    assert!(ok, "{err}");
    assert!(
        text.contains("app=talk") && text.contains("Started container a"),
        "{text}"
    );
    let (ok, logs, err) = kubectl(&d, &["logs", &pod]);
    assert!(ok && logs == "hello kubectl\n", "{logs:?} {err}");
    let (ok, events, err) = kubectl(&d, &["get", "events"]);
    assert!(
        ok && events.contains("Started") && events.contains(&format!("pod/{pod}")),
        "{events}{err}"
    );
}
