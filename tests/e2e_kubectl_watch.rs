//! End-to-end: the real `kubectl` gets true answers from rkubelet's
//! read-only API — label and field selectors pick the right pods, `kubectl
//! wait` waits on the pod it names (and times out on a crash-looping one),
//! `get -w` prints changes, options rkubelet does not implement get a 400
//! with a message, and bad input (malformed selectors, huge query strings,
//! a thousand dropped watches) leaves the daemon healthy.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::daemon::{docker_exec, wait_until, Daemon, IMAGE};

/// A background command whose stdout lines arrive on a channel.
struct Background {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Background {
    fn start(mut cmd: Command) -> Background {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Background {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line satisfying `f`; panics with what was printed.
    fn expect_line(&mut self, what: &str, timeout: Duration, f: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(l) = self.seen.iter().find(|l| f(l)) {
                return l.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self
                .lines
                .recv_timeout(left.min(Duration::from_millis(200)))
            {
                Ok(l) => self.seen.push(l),
                Err(_) if Instant::now() >= deadline => {
                    panic!(
                        "no line {what} within {timeout:?}; printed:\n{}",
                        self.seen.join("\n")
                    )
                }
                Err(_) => {}
            }
        }
    }

    /// Waits for the process to exit; (success, when, stderr).
    fn wait_exit(&mut self, timeout: Duration) -> (bool, Instant, String) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                let at = Instant::now();
                let mut err = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                self.seen.extend(self.lines.try_iter());
                return (status.success(), at, err);
            }
            assert!(
                Instant::now() < deadline,
                "the command did not exit within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GET with a status code and body, for the 4xx cases.
fn raw_get(d: &Daemon, path_and_query: &str) -> (u16, String) {
    rkubelet::http_client::install_crypto_provider();
    let resp = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
        .get(format!("http://127.0.0.1:{}{path_and_query}", d.port))
        .send()
        .expect("the daemon answers");
    let code = resp.status().as_u16();
    (code, resp.text().unwrap_or_default())
}

/// The status line of a GET written by hand on a TCP connection.
fn raw_status_line(d: &Daemon, path_and_query: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", d.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "GET {path_and_query} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).expect("a response");
    line
}

fn sleeper(name: &str, app: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, labels: {{app: {app}}}}}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - {{name: a, image: {IMAGE}, command: [sh, -c, 'trap \"exit 0\" TERM; sleep 3600 & wait']}}\n"
    )
}

#[test]
fn selectors_pick_the_right_pods_and_unsupported_options_are_refused() {
    let d = Daemon::start();
    d.write("sel-a.yaml", &sleeper("sel-a", "a"));
    d.write("sel-b.yaml", &sleeper("sel-b", "b"));
    d.wait_running("sel-a", &["a"], Duration::from_secs(60));
    d.wait_running("sel-b", &["a"], Duration::from_secs(60));
    let (a, b) = (format!("sel-a-{}", d.node), format!("sel-b-{}", d.node));
    wait_until(
        "both pods Running in the API",
        Duration::from_secs(20),
        || {
            let (_, out, _) =
                d.kubectl(&["get", "pods", "--field-selector", "status.phase=Running"]);
            (out.contains(&a) && out.contains(&b)).then_some(())
        },
    );

    let (ok, out, err) = d.kubectl(&["get", "pods", "-l", "app=doesnotexist"]);
    assert!(
        ok && out.is_empty() && err.contains("No resources found"),
        "{out}{err}"
    );
    let (ok, out, err) = d.kubectl(&["get", "pods", "-l", "app=a", "-o", "name"]);
    assert!(ok && out == format!("pod/{a}\n"), "{out}{err}");
    let (ok, out, err) = d.kubectl(&["get", "pods", "-l", "app in (a,b),app!=a", "-o", "name"]);
    assert!(ok && out == format!("pod/{b}\n"), "{out}{err}");
    let (ok, out, err) = d.kubectl(&["get", "pods", "-l", "!app", "-o", "name"]);
    assert!(ok && out.is_empty(), "{out}{err}");
    let sel = format!("metadata.name={b},spec.nodeName={}", d.node);
    let (ok, out, err) = d.kubectl(&["get", "pods", "--field-selector", &sel, "-o", "name"]);
    assert!(ok && out == format!("pod/{b}\n"), "{out}{err}");
    let (ok, out, err) = d.kubectl(&["get", "pods", "--field-selector", "status.phase!=Running"]);
    assert!(ok && !out.contains(&a) && !out.contains(&b), "{out}{err}");

    // rkubelet's own client passes them to the server too.
    let (ok, out, err) = d.ctl(&["get", "pods", "-l", "app=b", "-o", "name"]);
    assert!(ok && out == format!("pod/{b}\n"), "{out}{err}");
    let (ok, out, err) = d.ctl(&["get", "pods", "--field-selector", "metadata.name=nope"]);
    assert!(
        ok && out.is_empty() && err.contains("No resources found"),
        "{out}{err}"
    );

    // Refusals kubectl prints, with a non-zero exit.
    let (ok, _, err) = d.kubectl(&["get", "pods", "--field-selector", "spec.bogus=1"]);
    assert!(
        !ok && err.contains("field label not supported: spec.bogus"),
        "{err}"
    );
    let (ok, _, err) = d.kubectl(&["get", "events", "--field-selector", "status.phase=Running"]);
    assert!(
        !ok && err.contains("field label not supported: status.phase"),
        "{err}"
    );
    let (code, body) = raw_get(
        &d,
        "/api/v1/pods?resourceVersionMatch=Exact&resourceVersion=1",
    );
    assert_eq!(code, 400, "{body}");
    let status: serde_json::Value = serde_json::from_str(&body).expect("a Status");
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["reason"], "BadRequest");
    assert!(
        status["message"]
            .as_str()
            .unwrap_or_default()
            .contains("resourceVersionMatch=Exact"),
        "{body}"
    );
    let (code, body) = raw_get(&d, "/api/v1/pods?labelSelector=app%20in%20(a");
    assert!(
        code == 400
            && body.contains("labelSelector")
            && body.contains("unable to parse requirement"),
        "{code} {body}"
    );
    let (code, body) = raw_get(&d, "/api/v1/namespaces/default/pods?continue=abc");
    assert!(code == 400 && body.contains("continue"), "{code} {body}");
    let (code, body) = raw_get(&d, "/api/v1/pods?limit=1&pretty=true&notAnOption=1");
    let list: serde_json::Value = serde_json::from_str(&body).expect("a list");
    assert_eq!(code, 200);
    assert_eq!(
        list["items"].as_array().map(Vec::len),
        Some(2),
        "limit is ignored, never a short list"
    );
    assert!(list["metadata"]["resourceVersion"]
        .as_str()
        .is_some_and(|v| !v.is_empty()));
    let (code, body) = raw_get(&d, "/api/v1/nothing/here");
    assert!(
        code == 404 && body.contains("\"kind\":\"Status\""),
        "{code} {body}"
    );
}

#[test]
fn bad_input_gets_clear_refusals_and_a_thousand_dropped_watches_leave_the_daemon_healthy() {
    let d = Daemon::start();
    d.write("calm.yaml", &sleeper("calm", "calm"));
    d.wait_running("calm", &["a"], Duration::from_secs(60));

    // Workers republish status all the time; an unchanged pod is no change.
    let version = |d: &Daemon| {
        d.get_json("/api/v1/pods")["metadata"]["resourceVersion"]
            .as_str()
            .map(String::from)
    };
    let calm = format!("calm-{}", d.node);
    let steady = wait_until("calm Ready", Duration::from_secs(30), || {
        let list = d.get_json("/api/v1/pods");
        let ready = list["items"][0]["status"]["conditions"]
            .as_array()?
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        (ready && list["items"][0]["metadata"]["name"] == calm.as_str()).then(|| version(&d))
    });
    // Absence of changes needs a window: a few relist and status cycles.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        version(&d),
        steady,
        "a steady pod must not change its resourceVersion"
    );

    // A 100 KiB query string (beyond what HTTP client libraries send, so
    // written by hand): refused with a 4xx, and the daemon keeps serving.
    let huge = "a".repeat(100 * 1024);
    let status = raw_status_line(&d, &format!("/api/v1/pods?labelSelector={huge}"));
    assert!(
        status.starts_with("HTTP/1.1 4"),
        "a 100 KiB query is refused: {status}"
    );
    let (code, body) = raw_get(
        &d,
        &format!(
            "/api/v1/pods?fieldSelector=metadata.name%3D{}",
            "x".repeat(40 * 1024)
        ),
    );
    assert!(code == 200 && body.contains("\"items\":[]"), "{code}");
    for bad in [
        "%3D%3D",
        "a%3D(b)",
        "app%20notin%20()",
        "a,,b",
        "!",
        "app%3Dbad%20value",
    ] {
        let (code, body) = raw_get(&d, &format!("/api/v1/pods?labelSelector={bad}"));
        assert!(
            code == 400 && body.contains("labelSelector"),
            "{bad}: {code} {body}"
        );
    }

    // A thousand watches opened (the response has started) and dropped.
    let addr = format!("127.0.0.1:{}", d.port);
    for i in 0..1000 {
        let mut s = TcpStream::connect(&addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        write!(s, "GET /api/v1/pods?watch=1 HTTP/1.1\r\nHost: x\r\n\r\n").expect("send");
        let mut buf = [0u8; 64];
        let n = s
            .read(&mut buf)
            .unwrap_or_else(|e| panic!("watch {i}: {e}"));
        assert!(
            buf[..n].starts_with(b"HTTP/1.1 200"),
            "watch {i}: {:?}",
            String::from_utf8_lossy(&buf[..n])
        );
    }
    assert_eq!(d.get("/healthz").as_deref(), Ok("ok"));
    let mut w = Background::start(d.kubectl_cmd(&["get", "pods", "-w", "--output-watch-events"]));
    w.expect_line("listing the calm pod", Duration::from_secs(20), |l| {
        l.contains("calm-")
    });
    // The watch still delivers changes after all that.
    d.write("late.yaml", &sleeper("late", "late"));
    w.expect_line("with the late pod", Duration::from_secs(60), |l| {
        l.contains("ADDED") && l.contains("late-")
    });
}

fn ready_on_demand(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: a\n    image: {IMAGE}\n    command: [sh, -c, 'trap \"exit 0\" TERM; sleep 3600 & wait']\n    readinessProbe: {{exec: {{command: [cat, /tmp/ready]}}, periodSeconds: 1}}\n"
    )
}

fn ready_condition(d: &Daemon, full: &str) -> Option<bool> {
    let pod = d.get_json(&format!("/api/v1/namespaces/default/pods/{full}"));
    pod["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")
        .map(|c| c["status"] == "True")
}

#[test]
fn kubectl_wait_waits_on_the_named_pod_ready_soon_after_and_times_out_on_a_crash_loop() {
    let d = Daemon::start();
    d.write("later.yaml", &ready_on_demand("later"));
    d.write(
        "crash.yaml",
        // A readiness probe that never passes: without one, a container is
        // Ready while it runs, and a crash loop is Ready for an instant now
        // and then, which a wait could rightly catch.
        &format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: crash}}\nspec:\n  containers:\n  - {{name: a, image: {IMAGE}, command: [sh, -c, 'sleep 0.3; exit 1'], readinessProbe: {{exec: {{command: ['false']}}, periodSeconds: 1}}}}\n"),
    );
    d.write("fine.yaml", &sleeper("fine", "fine"));
    let ctrs = d.wait_running("later", &["a"], Duration::from_secs(60));
    d.wait_running("fine", &["a"], Duration::from_secs(60));
    let later = format!("later-{}", d.node);
    let crash = format!("crash-{}", d.node);
    let fine = format!("fine-{}", d.node);
    wait_until("fine is Ready", Duration::from_secs(30), || {
        (ready_condition(&d, &fine) == Some(true)).then_some(())
    });
    assert_eq!(ready_condition(&d, &later), Some(false));

    // Another pod being Ready must not satisfy a wait on the crash loop.
    let started = Instant::now();
    let (ok, out, err) = d.kubectl(&[
        "wait",
        "--for=condition=Ready",
        &format!("pod/{crash}"),
        "--timeout=4s",
    ]);
    assert!(!ok, "waiting on a crash-looping pod times out: {out}{err}");
    assert!(
        err.contains("timed out") && !out.contains("condition met"),
        "{out}{err}"
    );
    assert!(started.elapsed() >= Duration::from_secs(4));

    let mut wait = Background::start(d.kubectl_cmd(&[
        "wait",
        "--for=condition=Ready",
        &format!("pod/{later}"),
        "--timeout=120s",
    ]));
    // kubectl has its watch open once it stays running past its first GET.
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        wait.running(),
        "kubectl wait must not succeed before the pod is Ready"
    );
    let sandbox_or_app = ctrs.iter().find(|c| c.cname() == "a").expect("container a");
    let (ok, out) = docker_exec(&sandbox_or_app.id, &["touch", "/tmp/ready"]);
    assert!(ok, "{out}");
    let seen = wait_until("later Ready in the API", Duration::from_secs(30), || {
        (ready_condition(&d, &later) == Some(true)).then(Instant::now)
    });
    let (ok, exited, err) = wait.wait_exit(Duration::from_secs(30));
    assert!(ok, "kubectl wait failed: {err}");
    assert!(
        wait.seen
            .iter()
            .any(|l| l.contains(&format!("pod/{later} condition met"))),
        "{:?}",
        wait.seen
    );
    let lag = exited.saturating_duration_since(seen);
    eprintln!("kubectl wait returned {lag:?} after the Ready status was visible in the API");
    assert!(
        lag <= Duration::from_secs(3),
        "kubectl wait returned {lag:?} after the status change was visible"
    );
}

#[test]
fn kubectl_waits_for_a_phase_and_for_deletion_and_get_w_prints_changes() {
    let d = Daemon::start();
    d.write("watched.yaml", &sleeper("watched", "w"));
    d.wait_running("watched", &["a"], Duration::from_secs(60));
    let watched = format!("watched-{}", d.node);
    wait_until("watched listed", Duration::from_secs(20), || {
        d.kubectl(&["get", "pods", "-o", "name"])
            .1
            .contains(&watched)
            .then_some(())
    });

    let mut pods = Background::start(d.kubectl_cmd(&["get", "pods", "-w"]));
    let mut wide = Background::start(d.kubectl_cmd(&["get", "pods", "-A", "-w", "-o", "wide"]));
    let mut events = Background::start(d.kubectl_cmd(&["get", "events", "-w"]));
    let mut own = Background::start({
        let mut c = Command::new(env!("CARGO_BIN_EXE_rkubelet"));
        c.args(["get", "pods", "-w"])
            .env("RKUBELET_SERVER", format!("http://127.0.0.1:{}", d.port));
        c
    });
    pods.expect_line("with the watched pod", Duration::from_secs(20), |l| {
        l.starts_with(&watched)
    });
    wide.expect_line("with the watched pod", Duration::from_secs(20), |l| {
        l.starts_with("default") && l.contains(&watched)
    });
    own.expect_line("with the watched pod", Duration::from_secs(20), |l| {
        l.starts_with(&watched)
    });

    d.write(
        "job.yaml",
        &format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: job}}\nspec:\n  restartPolicy: Never\n  containers:\n  - {{name: a, image: {IMAGE}, command: [sh, -c, 'sleep 2']}}\n"),
    );
    let job = format!("job-{}", d.node);
    let (ok, out, err) = {
        let deadline = Instant::now() + Duration::from_secs(60);
        // The pod may not exist yet: kubectl wait fails with NotFound then.
        loop {
            let r = d.kubectl(&[
                "wait",
                "--for=jsonpath={.status.phase}=Succeeded",
                &format!("pod/{job}"),
                "--timeout=60s",
            ]);
            if r.0 || Instant::now() > deadline || !r.2.contains("NotFound") {
                break r;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    assert!(ok && out.contains("condition met"), "{out}{err}");

    // Every watcher saw the new pod arrive and complete.
    pods.expect_line("with the job Completed", Duration::from_secs(20), |l| {
        l.starts_with(&job) && l.contains("Completed")
    });
    wide.expect_line("with the job Completed", Duration::from_secs(20), |l| {
        l.contains(&job) && l.contains("Completed") && l.contains(&d.node)
    });
    own.expect_line("with the job Completed", Duration::from_secs(20), |l| {
        l.starts_with(&job) && l.contains("Completed")
    });
    events.expect_line(
        "with the job's container starting",
        Duration::from_secs(20),
        |l| l.contains(&format!("pod/{job}")) && l.contains("Started"),
    );

    // Waiting for deletion ends once the manifest is gone and the pod with it.
    let mut gone = Background::start(d.kubectl_cmd(&[
        "wait",
        "--for=delete",
        &format!("pod/{watched}"),
        "--timeout=60s",
    ]));
    std::thread::sleep(Duration::from_secs(1));
    assert!(gone.running(), "the pod still exists");
    d.remove("watched.yaml");
    let (ok, _, err) = gone.wait_exit(Duration::from_secs(60));
    assert!(ok, "kubectl wait --for=delete failed: {err}");
    assert!(d.get_json("/api/v1/pods")["items"]
        .as_array()
        .is_some_and(|i| i.iter().all(|p| p["metadata"]["name"] != watched.as_str())));
    pods.expect_line(
        "with the watched pod terminating",
        Duration::from_secs(20),
        |l| l.starts_with(&watched) && l.contains("Terminating"),
    );
}

/// `kubectl logs -l SELECTOR -c C` reads the logs of the pods the selector
/// picks — kubectl lists them with `labelSelector` first — and never those
/// of another pod with a container of the same name.
#[test]
fn kubectl_logs_with_a_label_selector_reads_the_selected_pod_only() {
    let d = Daemon::start();
    for (name, app) in [("one", "redis-one"), ("two", "redis-two")] {
        d.write(
            &format!("{name}.yaml"),
            &format!(
                "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, labels: {{app: {app}}}}}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - {{name: redis, image: {IMAGE}, command: [sh, -c, 'echo hello-from-{name}; trap \"exit 0\" TERM; sleep 3600 & wait']}}\n"
            ),
        );
    }
    d.wait_running("one", &["redis"], Duration::from_secs(60));
    d.wait_running("two", &["redis"], Duration::from_secs(60));
    let out = wait_until(
        "kubectl logs -l app=redis-two -c redis prints pod two's line",
        Duration::from_secs(30),
        || {
            let (ok, out, _) = d.kubectl(&["logs", "-l", "app=redis-two", "-c", "redis"]);
            (ok && out.contains("hello-from-two")).then_some(out)
        },
    );
    assert!(!out.contains("hello-from-one"), "{out}");
    let (ok, out, err) = d.kubectl(&["logs", "-l", "app=nothing", "-c", "redis"]);
    assert!(ok, "{err}");
    assert!(!out.contains("hello-from"), "{out}");
}
