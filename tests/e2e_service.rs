//! End-to-end: rkubelet as a node service — log verbosity without leaked
//! secrets, systemd notifications and the watchdog, metrics.
//! The real binary against the real Docker daemon.

mod common;

use std::process::Command;
use std::time::Duration;

use common::daemon::{run, wait_until, Daemon, Opts, IMAGE};

const SECS30: Duration = Duration::from_secs(30);

fn opts(extra: &[&str]) -> Opts {
    let mut o = Opts::default();
    o.extra_args.extend(extra.iter().map(|s| s.to_string()));
    o
}

fn base64(s: &str) -> String {
    let out = run(Command::new("sh")
        .arg("-c")
        .arg(format!("printf %s '{s}' | base64 -w0")));
    out.trim().to_string()
}

/// A pod whose env holds `env_value` and which reads `secret_value` from a
/// Secret (as env and as a volume), plus that Secret.
fn secret_pod(name: &str, env_value: &str, secret_value: &str) -> String {
    let encoded = base64(secret_value);
    format!(
        r#"apiVersion: v1
kind: Secret
metadata: {{name: {name}-creds}}
data:
  password: {encoded}
stringData:
  token: "{secret_value}-token"
---
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: {IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    env:
    - {{name: PLAIN, value: "{env_value}"}}
    - name: PASSWORD
      valueFrom: {{secretKeyRef: {{name: {name}-creds, key: password}}}}
    envFrom:
    - secretRef: {{name: {name}-creds}}
    volumeMounts: [{{name: creds, mountPath: /creds}}]
    readinessProbe:
      exec: {{command: ["cat", "/creds/token"]}}
      periodSeconds: 1
  volumes:
  - name: creds
    secret: {{secretName: {name}-creds}}
"#
    )
}

/// Runs a secret-holding pod under the given log settings until it is ready,
/// restarts it (a new spec, so containers are created again), and returns
/// the whole log.
fn log_of_a_secret_pod(daemon: Daemon, env_value: &str, secret_value: &str) -> String {
    let d = daemon;
    d.write("app.yaml", &secret_pod("app", env_value, secret_value));
    d.wait_running("app", &["app"], SECS30);
    wait_until("the pod to be ready", SECS30, || {
        let pod = d.api_pod("app")?;
        (pod["status"]["containerStatuses"][0]["ready"] == true).then_some(())
    });
    let (ok, out, _) = d.ctl(&["describe", "pod", "app"]);
    assert!(ok, "describe failed");
    assert!(
        out.contains(env_value),
        "describe shows a pod's literal env values, as kubectl's"
    );
    assert!(!out.contains(secret_value), "describe shows a Secret value");
    d.log()
}

fn assert_no_secret(log: &str, env_value: &str, secret_value: &str) {
    for (what, planted) in [
        ("an env value", env_value.to_string()),
        ("a Secret value", secret_value.to_string()),
        ("a Secret value (base64)", base64(secret_value)),
        ("a Secret stringData value", format!("{secret_value}-token")),
    ] {
        let hits: Vec<&str> = log.lines().filter(|l| l.contains(&planted)).collect();
        assert!(
            hits.is_empty(),
            "{what} leaked into the log on {} line(s), e.g.: {}",
            hits.len(),
            hits[0]
        );
    }
}

#[test]
fn a_v6_trace_run_logs_dependencies_but_never_env_values_or_secret_data() {
    let env_value = format!("envplant{}", common::random_hex(8));
    let secret_value = format!("secretplant{}", common::random_hex(8));
    let d = Daemon::start_with_env(
        opts(&["--v=6"]),
        vec![("RKUBELET_LOG".into(), String::new())],
    );
    let log = log_of_a_secret_pod(d, &env_value, &secret_value);
    // --v=6 really traces, dependencies included (hyper serves the API).
    assert!(
        log.lines()
            .any(|l| l.contains("TRACE") && l.contains("hyper")),
        "no dependency trace lines at --v=6:\n{}",
        &log[..log.len().min(4000)]
    );
    assert_no_secret(&log, &env_value, &secret_value);
}

#[test]
fn a_debug_run_through_rkubelet_log_never_logs_env_values_or_secret_data() {
    let env_value = format!("envplant{}", common::random_hex(8));
    let secret_value = format!("secretplant{}", common::random_hex(8));
    let d = Daemon::start_with_env(opts(&[]), vec![("RKUBELET_LOG".into(), "debug".into())]);
    let log = log_of_a_secret_pod(d, &env_value, &secret_value);
    assert!(
        log.lines().any(|l| l.contains("DEBUG")),
        "no debug lines under RKUBELET_LOG=debug"
    );
    assert_no_secret(&log, &env_value, &secret_value);
}

#[test]
fn v0_logs_info_but_no_debug_lines() {
    let d = Daemon::start_with_env(
        opts(&["-v", "0"]),
        vec![("RKUBELET_LOG".into(), String::new())],
    );
    d.write("p.yaml", &secret_pod("p", "x", "y"));
    d.wait_running("p", &["app"], SECS30);
    let log = d.log();
    assert!(log.contains("INFO"), "no info lines at --v=0:\n{log}");
    assert!(
        !log.lines()
            .any(|l| l.contains("DEBUG") || l.contains("TRACE")),
        "debug or trace lines at --v=0:\n{log}"
    );
}

#[test]
fn a_v4_run_shows_rkubelet_debug_but_no_dependency_debug() {
    let d = Daemon::start_with_env(
        opts(&["--v", "4"]),
        vec![("RKUBELET_LOG".into(), String::new())],
    );
    d.write("p.yaml", &secret_pod("p", "x", "y"));
    d.wait_running("p", &["app"], SECS30);
    let log = d.log();
    let debug: Vec<&str> = log.lines().filter(|l| l.contains("DEBUG")).collect();
    assert!(
        debug.iter().any(|l| l.contains(" rkubelet")),
        "no rkubelet debug lines at --v=4:\n{log}"
    );
    assert!(
        debug.iter().all(|l| l.contains(" rkubelet")),
        "dependency debug lines at --v=4: {:?}",
        debug.iter().find(|l| !l.contains(" rkubelet"))
    );
}
