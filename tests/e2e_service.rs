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

/// A `NOTIFY_SOCKET` listener: every datagram with the time it arrived.
struct NotifySocket {
    path: std::path::PathBuf,
    _dir: tempfile::TempDir,
    rx: std::sync::mpsc::Receiver<(std::time::Instant, String)>,
    seen: Vec<(std::time::Instant, String)>,
}

impl NotifySocket {
    fn bind() -> NotifySocket {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify.sock");
        let sock = std::os::unix::net::UnixDatagram::bind(&path).expect("bind notify socket");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 4096];
            while let Ok(n) = sock.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                if tx.send((std::time::Instant::now(), msg)).is_err() {
                    break;
                }
            }
        });
        NotifySocket {
            path,
            _dir: dir,
            rx,
            seen: Vec::new(),
        }
    }

    fn messages(&mut self) -> &[(std::time::Instant, String)] {
        self.seen.extend(self.rx.try_iter());
        &self.seen
    }

    /// Waits for a message containing `line` (as one of its lines) that
    /// arrived after index `from`; returns its index.
    fn wait_for(&mut self, line: &str, from: usize, timeout: Duration) -> usize {
        wait_until(&format!("{line} on NOTIFY_SOCKET"), timeout, || {
            self.messages()
                .iter()
                .enumerate()
                .skip(from)
                .find(|(_, (_, m))| m.lines().any(|l| l == line))
                .map(|(i, _)| i)
        })
    }
}

#[test]
fn systemd_gets_ready_after_adoption_watchdog_pings_at_half_the_period_and_stopping() {
    let mut notify = NotifySocket::bind();
    let mut d = Daemon::start_with_env(
        Opts::default(),
        vec![
            ("NOTIFY_SOCKET".into(), notify.path.display().to_string()),
            ("WATCHDOG_USEC".into(), "1000000".into()),
        ],
    );
    let ready = notify.wait_for("READY=1", 0, SECS30);
    assert!(
        notify.messages()[ready].1.contains("STATUS=0 pods"),
        "READY=1 without the pod counts: {:?}",
        notify.messages()[ready]
    );
    d.write("app.yaml", &secret_pod("app", "x", "y"));
    let before = d.wait_running("app", &["app"], SECS30);
    wait_until("STATUS= with the running pod", SECS30, || {
        notify
            .messages()
            .iter()
            .any(|(_, m)| m.contains("STATUS=1 pods: 1 running"))
            .then_some(())
    });

    // Watchdog pings every WATCHDOG_USEC / 2 = 0.5 s.
    let first = notify.wait_for("WATCHDOG=1", 0, SECS30);
    let mut last = first;
    for _ in 0..6 {
        last = notify.wait_for("WATCHDOG=1", last + 1, Duration::from_secs(10));
    }
    let pings: Vec<std::time::Instant> = notify.messages()[first..=last]
        .iter()
        .filter(|(_, m)| m.trim() == "WATCHDOG=1")
        .map(|(t, _)| *t)
        .collect();
    let mean = (pings[pings.len() - 1] - pings[0]) / (pings.len() as u32 - 1);
    assert!(
        mean >= Duration::from_millis(350) && mean <= Duration::from_millis(900),
        "watchdog pings every {mean:?} on average, expected ~500ms"
    );

    // Stop: STOPPING=1, and the pod keeps running.
    let mark = notify.messages().len();
    assert_eq!(d.sigterm(), Some(0));
    notify.wait_for("STOPPING=1", mark, SECS30);

    // Restart: READY=1 only after the running pod was adopted (not restarted).
    let mark = notify.messages().len();
    d.spawn();
    let ready = notify.wait_for("READY=1", mark, SECS30);
    let log = d.last_log();
    let sync = log
        .lines()
        .find(|l| l.contains("initial sync"))
        .unwrap_or_else(|| panic!("READY=1 came before the initial sync:\n{log}"));
    assert!(sync.contains("adopted=1"), "not adopted: {sync}");
    assert!(
        notify.messages()[ready].1.contains("STATUS=1 pods"),
        "{:?}",
        notify.messages()[ready]
    );
    let after = d.wait_running("app", &["app"], SECS30);
    let ids = |cs: &[common::daemon::Ctr]| {
        let mut v: Vec<String> = cs.iter().map(|c| c.id.clone()).collect();
        v.sort();
        v
    };
    assert_eq!(ids(&before), ids(&after), "containers were recreated");
}

/// A sample's value in the text format: the line `name{labels} value`
/// whose name and labels contain every part of `series`.
fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.split(['{', ' ']).next() == Some(name))
        .find(|l| labels.iter().all(|p| l.contains(p)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn promtool_check(text: &str) {
    use std::io::Write as _;
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; scripts/test installs it)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool check metrics rejected /metrics:\n{}{}\n--- metrics ---\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sleeper(name: &str, probe: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: {IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
{probe}"#
    )
}

#[test]
fn metrics_match_reality_and_promtool_accepts_them() {
    let d = Daemon::start();
    let failing =
        "    readinessProbe:\n      exec: {command: [\"false\"]}\n      periodSeconds: 1\n";
    d.write("a.yaml", &sleeper("a", ""));
    d.write("b.yaml", &sleeper("b", ""));
    d.write("c.yaml", &sleeper("c", failing));
    for p in ["a", "b", "c"] {
        d.wait_running(p, &["main"], SECS30);
    }
    let pod_c = format!("c-{}", d.node);
    let failed = [
        "probe_type=\"Readiness\"",
        "result=\"failed\"",
        "container=\"main\"",
        "namespace=\"default\"",
    ];
    let with_pod = format!("pod=\"{pod_c}\"");
    let mut labels: Vec<&str> = failed.to_vec();
    labels.push(&with_pod);
    let text = wait_until("3 running pods and 2 failed probes", SECS30, || {
        let text = d.get("/metrics").ok()?;
        (sample(&text, "kubelet_running_pods", &[]) == Some(3.0)
            && sample(&text, "prober_probe_total", &labels)? >= 2.0)
            .then_some(text)
    });
    promtool_check(&text);
    assert_eq!(
        sample(
            &text,
            "kubelet_running_containers",
            &["container_state=\"running\""]
        ),
        Some(3.0),
        "{text}"
    );
    assert!(
        sample(
            &text,
            "kubelet_started_containers_total",
            &["container_type=\"container\""]
        ) >= Some(3.0)
    );
    assert!(sample(&text, "kubelet_pod_start_duration_seconds_count", &[]) >= Some(3.0));
    assert!(sample(&text, "kubelet_pod_worker_duration_seconds_count", &[]) >= Some(3.0));
    assert!(
        sample(
            &text,
            "rkubelet_docker_request_duration_seconds_count",
            &["operation_type=\"create_container\""]
        ) >= Some(3.0)
    );
    assert!(sample(&text, "kubelet_http_requests_total", &["path=\"metrics\""]) >= Some(1.0));
    assert!(sample(&text, "process_resident_memory_bytes", &[]) > Some(1e6));
    assert!(sample(&text, "process_cpu_seconds_total", &[]).is_some());
    // The failing probe counts up; the others have no probe series.
    let before = sample(&text, "prober_probe_total", &labels).unwrap_or(0.0);
    let later = wait_until("more failed probes", SECS30, || {
        let t = d.get("/metrics/probes").ok()?;
        let n = sample(&t, "prober_probe_total", &labels)?;
        (n > before).then_some(t)
    });
    promtool_check(&later);
    assert!(
        !later.contains("kubelet_running_pods"),
        "/metrics/probes has only probes"
    );
    assert!(!later.contains(&format!("pod=\"a-{}\"", d.node)));

    // One pod goes: the gauges follow, and its probe series go with it.
    d.remove("c.yaml");
    d.wait_gone("c", SECS30);
    wait_until("2 running pods and no series of pod c", SECS30, || {
        let t = d.get("/metrics").ok()?;
        (sample(&t, "kubelet_running_pods", &[]) == Some(2.0) && !t.contains(&with_pod))
            .then_some(())
    });
}

#[test]
fn stats_summary_has_cpu_and_memory_per_container_from_cached_docker_stats_and_top_prints_them() {
    let d = Daemon::start();
    // A little CPU and a few MiB held in memory.
    let busy = "    command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; x=$(head -c 4000000 /dev/zero | tr '\\\\0' a); while true; do i=0; while [ $i -lt 200 ]; do i=$((i+1)); done; sleep 0.2; done\"]\n";
    let manifest = sleeper("busy", "").replace(
        "    command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; while true; do sleep 1; done\"]\n",
        busy,
    );
    d.write("busy.yaml", &manifest);
    d.wait_running("busy", &["main"], SECS30);
    let full = format!("busy-{}", d.node);
    let pod_of = |v: &serde_json::Value| {
        v["pods"]
            .as_array()?
            .iter()
            .find(|p| p["podRef"]["name"] == full.as_str())
            .cloned()
    };
    let first = wait_until("the pod's container in /stats/summary", SECS30, || {
        let v = d.get_json("/stats/summary");
        let pod = pod_of(&v)?;
        (pod["containers"].as_array()?.len() == 1).then_some(pod)
    });
    let c = &first["containers"][0];
    assert_eq!(c["name"], "main");
    assert!(
        c["memory"]["workingSetBytes"].as_u64() > Some(1_000_000),
        "{c}"
    );
    assert!(c["cpu"]["usageCoreNanoSeconds"].as_u64() > Some(0), "{c}");
    assert_eq!(first["podRef"]["namespace"], "default");

    // Cached: more reads within 10 s make no more Docker stats calls.
    let stats_calls = || {
        let t = d.get("/metrics").expect("metrics");
        sample(
            &t,
            "rkubelet_docker_request_duration_seconds_count",
            &["operation_type=\"stats\""],
        )
        .unwrap_or(0.0)
    };
    let calls = stats_calls();
    for _ in 0..5 {
        d.get_json("/stats/summary");
    }
    assert_eq!(
        stats_calls(),
        calls,
        "a read within 10 s asked Docker again"
    );

    // After the refresh period, a CPU rate and `rkubelet top pods`.
    let top = wait_until(
        "rkubelet top pods with the pod",
        Duration::from_secs(40),
        || {
            let (ok, out, _) = d.ctl(&["top", "pods"]);
            (ok && out.contains(&full)).then_some(out)
        },
    );
    assert!(top.starts_with("NAME"), "{top}");
    assert!(
        top.contains("CPU(cores)") && top.contains("MEMORY(bytes)"),
        "{top}"
    );
    let row = top.lines().find(|l| l.starts_with(&full)).expect("row");
    assert!(row.contains('m') && row.trim_end().ends_with("Mi"), "{row}");
    let later = pod_of(&d.get_json("/stats/summary")).expect("pod");
    assert!(later["cpu"]["usageNanoCores"].as_u64().is_some(), "{later}");
}
