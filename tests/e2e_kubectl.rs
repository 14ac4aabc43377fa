//! End-to-end: a real `kubectl --server http://127.0.0.1:<port>` can `get`,
//! `describe`, read `logs` and list `events` from rkubelet's read-only API.
//! `scripts/test` installs a kubectl (Debian's kubernetes-client) when none
//! is present; without one this test fails rather than skips.

mod common;

use std::time::Duration;

use common::daemon::{wait_until, Daemon, IMAGE};

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
        Duration::from_secs(30),
        || {
            let (ok, out, _) = d.kubectl(&["get", "pods"]);
            (ok && out
                .lines()
                .any(|l| l.starts_with(&pod) && l.contains("1/1") && l.contains("Running")))
            .then_some(out)
        },
    );
    assert!(table.starts_with("NAME"), "{table}");
    let (ok, wide, err) = d.kubectl(&["get", "pods", "-o", "wide"]);
    assert!(
        ok && wide.contains("NODE") && wide.contains(&d.node),
        "{wide}{err}"
    );
    let (ok, json, err) = d.kubectl(&["get", "pod", &pod, "-o", "json"]);
    let v: serde_json::Value =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}{err}"));
    assert!(ok && v["status"]["phase"] == "Running");
    let (ok, text, err) = d.kubectl(&["describe", "pod", &pod]);
    assert!(ok, "{err}");
    assert!(
        text.contains("app=talk") && text.contains("Started container a"),
        "{text}"
    );
    let (ok, logs, err) = d.kubectl(&["logs", &pod]);
    assert!(ok && logs == "hello kubectl\n", "{logs:?} {err}");
    let (ok, events, err) = d.kubectl(&["get", "events"]);
    assert!(
        ok && events.contains("Started") && events.contains(&format!("pod/{pod}")),
        "{events}{err}"
    );
}
