//! End-to-end: the real `rkubelet` binary on a temp manifest directory,
//! against the real Docker daemon: the core daemon loop.

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use common::daemon::{docker_exec, free_port, run, wait_until, Daemon, DockerEvents, IMAGE};

/// How long a step that normally takes a second may take on a loaded CI box.
const PATIENCE: Duration = Duration::from_secs(30);
const SECS30: Duration = Duration::from_secs(30);

fn two_container_pod(name: &str, port: u16, extra_env: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels: {{app: web}}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: server
    image: {IMAGE}
    command: ["httpd", "-f", "-p", "{port}", "-h", "/var/www"]
    env: [{{name: X, value: "{extra_env}"}}]
  - name: client
    image: {IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
"#
    )
}

#[test]
fn a_two_container_pod_runs_with_kubelet_names_and_labels_and_shares_localhost() {
    let d = Daemon::start();
    d.write("web.yaml", &two_container_pod("web", 8080, "1"));
    let cs = d.wait_running("web", &["server", "client"], PATIENCE);

    let pod = format!("web-{}", d.node);
    let uid = cs[0].uid().to_string();
    assert_eq!(uid.len(), 32, "uid {uid:?}");
    assert!(uid
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    let names: BTreeSet<String> = cs.iter().map(|c| c.name.clone()).collect();
    let expected: BTreeSet<String> = [
        format!("k8s_POD_{pod}_default_{uid}_0"),
        format!("k8s_server_{pod}_default_{uid}_0"),
        format!("k8s_client_{pod}_default_{uid}_0"),
    ]
    .into();
    assert_eq!(names, expected);
    for c in &cs {
        assert_eq!(c.label("io.kubernetes.pod.name"), pod);
        assert_eq!(c.label("io.kubernetes.pod.namespace"), "default");
        assert_eq!(c.label("io.kubernetes.pod.uid"), uid);
        let ty = if c.cname() == "POD" {
            "podsandbox"
        } else {
            "container"
        };
        assert_eq!(c.label("io.kubernetes.docker.type"), ty, "{}", c.name);
    }

    // The client reaches the server over localhost: they share the pause
    // container's network namespace.
    let client = cs.iter().find(|c| c.cname() == "client").expect("client");
    let body = wait_until("wget over localhost", PATIENCE, || {
        let (ok, out) = docker_exec(&client.id, &["wget", "-qO-", "http://127.0.0.1:8080/"]);
        ok.then_some(out)
    });
    assert!(body.contains("hello from rkubelet"), "{body}");

    // Identity and status are visible through the API.
    let api = wait_until("pod in /pods", PATIENCE, || d.api_pod("web"));
    assert_eq!(api["metadata"]["uid"], uid.as_str());
    assert_eq!(
        api["metadata"]["annotations"]["kubernetes.io/config.hash"],
        uid.as_str()
    );
    assert_eq!(
        api["metadata"]["annotations"]["kubernetes.io/config.source"],
        "file"
    );
    assert_eq!(api["spec"]["nodeName"], d.node.as_str());
}

#[test]
fn removing_the_manifest_stops_the_pod_gracefully_and_kills_a_stubborn_container_after_the_grace_period(
) {
    let d = Daemon::start();
    let out = d.scratch("out");
    d.write(
        "grace.yaml",
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata: {{name: grace}}
spec:
  terminationGracePeriodSeconds: 3
  volumes:
  - name: out
    hostPath: {{path: "{}"}}
  containers:
  - name: polite
    image: {IMAGE}
    command: ["sh", "-c", "trap 'echo got SIGTERM >> /out/polite.log; exit 0' TERM; echo started > /out/polite.log; while true; do sleep 0.2; done"]
    volumeMounts: [{{name: out, mountPath: /out}}]
  - name: stubborn
    image: {IMAGE}
    command: ["sh", "-c", "trap '' TERM; while true; do sleep 0.2; done"]
"#,
            out.display()
        ),
    );
    let cs = d.wait_running("grace", &["polite", "stubborn"], SECS30);
    let pod_dir = d.root_dir().join("pods").join(cs[0].uid());
    assert!(pod_dir.is_dir(), "the pod has a directory under --root-dir");
    wait_until("polite started", PATIENCE, || {
        std::fs::read_to_string(out.join("polite.log"))
            .ok()
            .filter(|s| s.contains("started"))
    });
    let polite = cs
        .iter()
        .find(|c| c.cname() == "polite")
        .expect("polite")
        .id
        .clone();

    let removed = Instant::now();
    d.remove("grace.yaml");
    // The polite container sees SIGTERM and exits at once.
    wait_until("polite saw SIGTERM", PATIENCE, || {
        std::fs::read_to_string(out.join("polite.log"))
            .ok()
            .filter(|s| s.contains("got SIGTERM"))
    });
    let polite_done = wait_until("polite stopped", PATIENCE, || {
        let gone = !d
            .pod_containers("grace")
            .iter()
            .any(|c| c.id == polite && c.running);
        gone.then(Instant::now)
    });
    // The stubborn one is killed only after the 3 s grace period.
    d.wait_gone("grace", Duration::from_secs(30));
    let gone = removed.elapsed();
    assert!(
        gone.saturating_sub(polite_done - removed) >= Duration::from_secs(1),
        "the polite container did not stop well before the stubborn one's grace ran out: \
         polite after {:?}, pod gone after {gone:?}",
        polite_done - removed
    );
    assert!(
        gone >= Duration::from_secs(3),
        "killed before the grace period: {gone:?}"
    );
    assert!(gone < Duration::from_secs(25), "took too long: {gone:?}");
    assert!(!pod_dir.exists(), "the pod's directory is removed with it");
    wait_until("the pod leaves /pods", PATIENCE, || {
        d.api_pod("grace").is_none().then_some(())
    });
}

#[test]
fn a_changed_manifest_replaces_the_pod_only_after_the_old_one_stopped_and_an_identical_rewrite_changes_nothing(
) {
    let d = Daemon::start();
    d.write("web.yaml", &two_container_pod("web", 8081, "1"));
    let old = d.wait_running("web", &["server", "client"], SECS30);
    let old_uid = old[0].uid().to_string();

    // Record Docker's events for this node while the pod is replaced.
    let mut events = DockerEvents::start(&d.node);
    d.write("web.yaml", &two_container_pod("web", 8081, "2"));
    let new = wait_until("the new pod running", SECS30, || {
        let cs = d.pod_containers("web");
        let fresh: Vec<_> = cs.iter().filter(|c| c.uid() != old_uid).cloned().collect();
        let running = |n: &str| fresh.iter().any(|c| c.cname() == n && c.running);
        (running("POD") && running("server") && running("client")).then_some(fresh)
    });
    let new_uid = new[0].uid().to_string();
    assert_ne!(new_uid, old_uid, "a content change gives a new UID");
    d.wait_gone_uid(&old_uid);
    let lines: Vec<(u128, String, String)> = events
        .all()
        .iter()
        .map(|e| (e.nanos, e.action.clone(), e.uid.clone()))
        .collect();
    let last_old_stop = lines
        .iter()
        .filter(|(_, a, u)| u == &old_uid && (a == "die" || a == "destroy"))
        .map(|(t, _, _)| *t)
        .max()
        .expect("old pod's containers died");
    let first_new = lines
        .iter()
        .filter(|(_, a, u)| u == &new_uid && (a == "create" || a == "start"))
        .map(|(t, _, _)| *t)
        .min()
        .expect("new pod's containers were created");
    assert!(
        last_old_stop < first_new,
        "old and new pods overlapped: {lines:?}"
    );

    // An identical rewrite changes nothing. Barrier: a second pod written
    // afterwards runs, so the rewrite has been processed.
    let ids: BTreeSet<String> = d
        .pod_containers("web")
        .iter()
        .map(|c| c.id.clone())
        .collect();
    d.write("web.yaml", &two_container_pod("web", 8081, "2"));
    d.write("barrier.yaml", &two_container_pod("barrier", 8082, "x"));
    d.wait_running("barrier", &["server", "client"], SECS30);
    let after: BTreeSet<String> = d
        .pod_containers("web")
        .iter()
        .map(|c| c.id.clone())
        .collect();
    assert_eq!(ids, after);
}

#[test]
fn a_killed_rkubelet_adopts_running_containers_and_cleans_up_pods_removed_while_it_was_down() {
    let mut d = Daemon::start();
    d.write("keep.yaml", &two_container_pod("keep", 8083, "1"));
    d.write("drop.yaml", &two_container_pod("drop", 8084, "1"));
    let keep = d.wait_running("keep", &["server", "client"], SECS30);
    d.wait_running("drop", &["server", "client"], SECS30);
    let ids = |cs: &[common::daemon::Ctr]| cs.iter().map(|c| c.id.clone()).collect::<BTreeSet<_>>();

    d.kill9();
    d.spawn();
    // Once the restarted daemon reports the pod, it has synced it.
    wait_until("keep reported running", SECS30, || {
        d.api_pod("keep")
            .filter(|p| p["status"]["phase"] == "Running")
    });
    let after = d.pod_containers("keep");
    assert_eq!(
        ids(&keep),
        ids(&after),
        "containers were restarted or duplicated"
    );
    let log = d.last_log();
    assert!(
        !log.contains("creating pod sandbox") && !log.contains("starting container"),
        "the restarted daemon tried to recreate adopted containers:\n{log}"
    );
    assert!(after.iter().all(|c| c.running));

    d.kill9();
    d.remove("drop.yaml");
    d.spawn();
    d.wait_gone("drop", SECS30);
    assert_eq!(ids(&keep), ids(&d.pod_containers("keep")));

    // SIGTERM stops rkubelet and leaves pods running.
    assert_eq!(d.sigterm(), Some(0));
    assert!(d.pod_containers("keep").iter().all(|c| c.running));
}

#[test]
fn malformed_manifests_are_reported_with_file_and_reason_and_leave_good_pods_alone() {
    let d = Daemon::start();
    d.write("good.yaml", &two_container_pod("good", 8085, "1"));
    d.write(
        "bad-yaml.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: x\n  spec: [\n",
    );
    d.write(
        "dup.yaml",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: dup}}\nspec:\n  containers:\n  - {{name: a, image: {IMAGE}}}\n  - {{name: a, image: {IMAGE}}}\n"
        ),
    );
    d.wait_running("good", &["server", "client"], SECS30);
    let diag = wait_until("both errors reported", PATIENCE, || {
        let v = d.get_json("/manifests");
        let errors: Vec<String> = v["errors"]
            .as_array()?
            .iter()
            .filter_map(|e| e.as_str().map(String::from))
            .collect();
        (errors.len() >= 2).then_some(errors)
    });
    let bad = diag
        .iter()
        .find(|e| e.contains("bad-yaml.yaml"))
        .expect("bad-yaml named");
    assert!(bad.contains("line"), "{bad}");
    let dup = diag
        .iter()
        .find(|e| e.contains("dup.yaml"))
        .expect("dup named");
    assert!(
        dup.contains("Duplicate value") && dup.contains("containers[1].name"),
        "{dup}"
    );
    assert!(d.pod_containers("dup").is_empty());
    assert_eq!(d.get("/healthz").as_deref(), Ok("ok"));
    assert!(d.log().contains("bad-yaml.yaml"), "the log names the file");

    // Breaking a running pod's file keeps that pod running...
    let before: BTreeSet<String> = d
        .pod_containers("good")
        .iter()
        .map(|c| c.id.clone())
        .collect();
    d.write(
        "good.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: good}\nspec: {containers: [{name: a}]}\n",
    );
    wait_until("the breakage reported", PATIENCE, || {
        let v = d.get_json("/manifests");
        v["errors"]
            .as_array()?
            .iter()
            .any(|e| {
                e.as_str()
                    .is_some_and(|s| s.contains("good.yaml") && s.contains("image"))
            })
            .then_some(())
    });
    d.write("barrier.yaml", &two_container_pod("barrier", 8086, "x"));
    d.wait_running("barrier", &["server", "client"], SECS30);
    let still: BTreeSet<String> = d
        .pod_containers("good")
        .iter()
        .filter(|c| c.running)
        .map(|c| c.id.clone())
        .collect();
    assert_eq!(before, still, "the last good version keeps running");

    // ...and fixing it applies the fix.
    d.write("good.yaml", &two_container_pod("good", 8085, "fixed"));
    wait_until("the fixed pod running", SECS30, || {
        let cs = d.pod_containers("good");
        let fresh: Vec<_> = cs
            .iter()
            .filter(|c| !before.contains(&c.id) && c.running)
            .collect();
        (fresh.len() == 3).then_some(())
    });
    wait_until("errors cleared", PATIENCE, || {
        let v = d.get_json("/manifests");
        (!v["errors"]
            .as_array()?
            .iter()
            .any(|e| e.as_str().is_some_and(|s| s.contains("good.yaml"))))
        .then_some(())
    });
}

#[test]
fn editor_leftovers_hidden_files_and_subdirectories_are_ignored() {
    let d = Daemon::start();
    let pod = |name: &str| two_container_pod(name, 8087, "1");
    d.write("swap.yaml.swp", &pod("swp"));
    d.write("backup.yaml~", &pod("tilde"));
    d.write(".hidden.yaml", &pod("hidden"));
    std::fs::create_dir_all(d.manifest_dir().join("sub")).expect("subdir");
    std::fs::write(d.manifest_dir().join("sub/nested.yaml"), pod("nested")).expect("nested");
    std::fs::write(d.manifest_dir().join("notes.txt"), pod("txt")).expect("txt");
    d.write("real.yaml", &pod("real"));
    d.wait_running("real", &["server", "client"], SECS30);
    for ignored in ["swp", "tilde", "hidden", "nested", "txt"] {
        assert!(d.pod_containers(ignored).is_empty(), "{ignored} was read");
    }
    let v = d.get_json("/manifests");
    assert_eq!(v["errors"].as_array().map(Vec::len), Some(0), "{v}");
}

#[test]
fn host_port_is_published_on_loopback_and_host_network_uses_the_hosts_network() {
    let d = Daemon::start();
    let host_port = free_port();
    d.write(
        "hp.yaml",
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata: {{name: hp}}
spec:
  containers:
  - name: web
    image: {IMAGE}
    command: ["httpd", "-f", "-p", "80", "-h", "/var/www"]
    ports: [{{containerPort: 80, hostPort: {host_port}}}]
"#
        ),
    );
    let net_port = free_port();
    d.write(
        "hn.yaml",
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata: {{name: hn}}
spec:
  hostNetwork: true
  containers:
  - name: web
    image: {IMAGE}
    command: ["httpd", "-f", "-p", "127.0.0.1:{net_port}", "-h", "/var/www"]
"#
        ),
    );
    d.wait_running("hp", &["web"], SECS30);
    d.wait_running("hn", &["web"], SECS30);
    for port in [host_port, net_port] {
        let body = wait_until(&format!("http://127.0.0.1:{port}/"), PATIENCE, || {
            common::daemon::http_get(&format!("http://127.0.0.1:{port}/"))
        });
        assert!(body.contains("hello from rkubelet"), "{body}");
    }
}

#[test]
fn bad_flags_exit_non_zero_with_a_one_line_message_and_an_unreachable_docker_is_waited_for() {
    let bin = env!("CARGO_BIN_EXE_rkubelet");
    let out = Command::new(bin)
        .arg("--no-such-flag")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let out = Command::new(bin)
        .args(["--hostname-override", "Bad_Name", "--read-only-port", "0"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--hostname-override"));

    // Docker not there: rkubelet does not exit (outside systemd that would
    // be a dead node); it says so once and keeps retrying until a signal.
    let dir = tempfile::tempdir().expect("tmp");
    let log = dir.path().join("log");
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Command::new(bin)
        .args([
            "--docker-endpoint",
            &format!("unix://{}/nope.sock", dir.path().display()),
        ])
        .args(["--read-only-port", "0", "--hostname-override", "n1"])
        .arg("--config")
        .arg(dir.path())
        .arg("--root-dir")
        .arg(dir.path().join("root"))
        .env("RKUBELET_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .map(KillOnDrop)
        .expect("run");
    let child = &mut child.0;
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_until("the waiting line", PATIENCE, || {
        read_log()
            .contains("waiting for the container runtime")
            .then_some(())
    });
    // Several retries later (0.5 s, 1 s, 2 s): still running, still one line.
    std::thread::sleep(Duration::from_secs(4));
    assert!(child.try_wait().expect("wait").is_none(), "{}", read_log());
    let err = read_log();
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("nope.sock"), "names the endpoint: {err}");
    run(Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string()));
    let status = wait_until("exit after SIGTERM", PATIENCE, || {
        child.try_wait().expect("wait")
    });
    assert_eq!(status.code(), Some(0), "{}", read_log());

    let help = run(Command::new(bin).arg("--help"));
    for flag in [
        "--config",
        "--pod-manifest-path",
        "--file-check-frequency",
        "--hostname-override",
        "--root-dir",
        "--docker-endpoint",
        "--pod-infra-container-image",
        "--address",
        "--read-only-port",
        "--log-format",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
    assert!(run(Command::new(bin).arg("--version")).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn two_manifests_defining_the_same_pod_name_run_the_first_and_report_both_files() {
    let d = Daemon::start();
    d.write("a.yaml", &two_container_pod("same", 8090, "from-a"));
    d.write("b.yaml", &two_container_pod("same", 8090, "from-b"));
    let cs = d.wait_running("same", &["server", "client"], SECS30);
    let conflict = wait_until("the conflict reported", PATIENCE, || {
        let v = d.get_json("/manifests");
        v["conflicts"]
            .as_array()?
            .first()?
            .as_str()
            .map(String::from)
    });
    assert!(
        conflict.contains("a.yaml") && conflict.contains("b.yaml"),
        "{conflict}"
    );
    let uids: BTreeSet<&str> = cs.iter().map(|c| c.uid()).collect();
    assert_eq!(uids.len(), 1, "only one of the two pods runs");
    let server = cs.iter().find(|c| c.cname() == "server").expect("server");
    let (_, env) = docker_exec(&server.id, &["sh", "-c", "echo $X"]);
    assert_eq!(env.trim(), "from-a", "the first file (by name) wins");
}

#[test]
fn resources_security_context_working_dir_and_env_expansion_reach_docker() {
    let d = Daemon::start();
    d.write(
        "res.yaml",
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata: {{name: res}}
spec:
  securityContext: {{runAsUser: 1000, runAsGroup: 3000}}
  containers:
  - name: app
    image: {IMAGE}
    workingDir: /tmp
    env:
    - {{name: GREETING, value: hello}}
    - {{name: MESSAGE, value: "$(GREETING) world, $$(GREETING) escaped, $(UNDEFINED) kept"}}
    command: ["sh", "-c", "printf '%s\\n' \"$MESSAGE\" > /tmp/out; echo '$(GREETING) from the command' > /tmp/cmd; id -u > /tmp/uid; pwd > /tmp/pwd; sleep 3600"]
    resources:
      requests: {{cpu: 250m, memory: 32Mi}}
      limits: {{cpu: 500m, memory: 64Mi}}
    securityContext:
      readOnlyRootFilesystem: false
      capabilities: {{drop: [NET_RAW]}}
"#
        ),
    );
    let cs = d.wait_running("res", &["app"], SECS30);
    let app = cs.iter().find(|c| c.cname() == "app").expect("app");
    let inspect: serde_json::Value =
        serde_json::from_str(&run(Command::new("docker").args(["inspect", &app.id])))
            .expect("inspect json");
    let hc = &inspect[0]["HostConfig"];
    assert_eq!(hc["Memory"], 64 * 1024 * 1024);
    assert_eq!(hc["CpuQuota"], 50_000);
    assert_eq!(hc["CpuPeriod"], 100_000);
    assert_eq!(hc["CpuShares"], 256);
    assert_eq!(hc["CapDrop"][0], "NET_RAW");
    assert_eq!(inspect[0]["Config"]["User"], "1000:3000");
    let out = wait_until("the container wrote its output", PATIENCE, || {
        let (ok, out) = docker_exec(
            &app.id,
            &["cat", "/tmp/out", "/tmp/cmd", "/tmp/uid", "/tmp/pwd"],
        );
        ok.then_some(out)
    });
    assert_eq!(
        out,
        "hello world, $(GREETING) escaped, $(UNDEFINED) kept\nhello from the command\n1000\n/tmp\n"
    );
}

#[test]
fn a_container_that_exits_is_restarted_at_once_by_the_events_stream() {
    // A relist period of an hour leaves only Docker's events to notice the exit.
    let mut opts = common::daemon::Opts::default();
    opts.extra_args
        .extend(["--relist-period".to_string(), "1h".to_string()]);
    let d = Daemon::start_with(opts);
    d.write(
        "crash.yaml",
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata: {{name: crash}}
spec:
  containers:
  - name: app
    image: {IMAGE}
    command: ["sh", "-c", "sleep 1; exit 3"]
"#
        ),
    );
    let first = d.wait_running("crash", &["app"], SECS30);
    let first = first
        .iter()
        .find(|c| c.cname() == "app")
        .expect("app")
        .clone();
    assert_eq!(first.label("io.kubernetes.container.restartCount"), "0");
    let restarted = wait_until("the first restart", PATIENCE, || {
        d.pod_containers("crash")
            .into_iter()
            .find(|c| c.cname() == "app" && c.label("io.kubernetes.container.restartCount") == "1")
    });
    let old = d
        .pod_containers("crash")
        .into_iter()
        .find(|c| c.id == first.id)
        .expect("dead instance kept");
    assert_eq!(old.exit_code, 3);
    // The replacement started right after the old one died (first restart is immediate).
    let died = chrono_like_secs(&old.finished_at);
    let started = chrono_like_secs(&restarted.started_at);
    assert!(started - died < 1.5, "restart took {:.2}s", started - died);
}

/// Seconds since the epoch from Docker's RFC 3339 timestamps (UTC, ns).
fn chrono_like_secs(ts: &str) -> f64 {
    let out = run(Command::new("date").args(["-u", "-d", ts, "+%s.%N"]));
    out.trim().parse().expect("date parses Docker's timestamp")
}
