//! End-to-end: the real `rkubelet` binary under faults of the Docker daemon
//! itself — stopped (SIGTERM) and killed (SIGKILL) under rkubelet and
//! started again, and down when rkubelet starts.
//!
//! Each test starts a **private** `dockerd` (its own socket, data root, exec
//! root, pid file and containerd namespace; its own bridge on a private
//! subnet, no iptables; an empty config file) and points rkubelet at it with `--docker-endpoint`, so the
//! machine's daemon and the other tests' containers are never disturbed. The
//! test image is copied in with `docker save | docker load`; rkubelet
//! provisions its own pause image there as it would on a fresh node.
//! [`PrivateDockerd`]'s `Drop` removes its containers, stops it (killing it
//! when it does not stop) and removes its directories, even when the test
//! fails. This needs root, as dockerd does (the tests and CI run as root).

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::daemon::{containers_on, run, wait_until, Ctr, Daemon, Opts, IMAGE};

const SECS60: Duration = Duration::from_secs(60);

/// A Docker daemon of the test's own.
struct PrivateDockerd {
    dir: tempfile::TempDir,
    child: Option<Child>,
    namespace: String,
    /// The bridge the test created for it. Never `--bridge=none`: a dockerd
    /// started that way deletes the host's `docker0`, breaking the machine's
    /// daemon.
    bridge: String,
    starts: u32,
}

impl PrivateDockerd {
    /// Starts it and loads the test image into it.
    fn start() -> PrivateDockerd {
        common::daemon::require_docker();
        // A short path: a unix socket path has at most 107 bytes.
        let dir = tempfile::Builder::new()
            .prefix("rkd-")
            .tempdir_in("/tmp")
            .expect("tempdir");
        for sub in ["data", "exec"] {
            fs::create_dir_all(dir.path().join(sub)).expect("dockerd dirs");
        }
        fs::write(dir.path().join("daemon.json"), "{}").expect("config file");
        let suffix = common::random_hex(4);
        let bridge = format!("rkbr{suffix}");
        // 10.201.X.0/24 with X from the random suffix: a private subnet
        // that neither docker0 nor another test run's bridge is likely to use.
        let third = u8::from_str_radix(&suffix[..2], 16).expect("hex") % 250 + 2;
        for args in [
            vec!["link", "add", "name", &bridge, "type", "bridge"],
            vec!["link", "set", &bridge, "up"],
        ] {
            run(Command::new("ip").args(&args));
        }
        run(Command::new("ip").args([
            "addr",
            "add",
            &format!("10.201.{third}.1/24"),
            "dev",
            &bridge,
        ]));
        let mut d = PrivateDockerd {
            dir,
            child: None,
            namespace: format!("rkt-{}", common::random_hex(5)),
            bridge,
            starts: 0,
        };
        d.spawn();
        let mut save = Command::new("docker")
            .args(["save", IMAGE])
            .stdout(Stdio::piped())
            .spawn()
            .expect("docker save");
        let load = d
            .docker()
            .arg("load")
            .stdin(save.stdout.take().expect("save's stdout"))
            .output()
            .expect("docker load");
        assert!(save.wait().expect("docker save").success(), "docker save");
        assert!(
            load.status.success(),
            "docker load into the private dockerd: {}",
            String::from_utf8_lossy(&load.stderr)
        );
        d
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `unix:///tmp/rkd-…/d.sock`.
    fn host(&self) -> String {
        format!("unix://{}", self.path("d.sock").display())
    }

    /// `docker -H <this daemon>`, not yet run.
    fn docker(&self) -> Command {
        let mut cmd = Command::new("docker");
        cmd.args(["-H", &self.host()]);
        cmd
    }

    fn answers(&self) -> bool {
        self.docker()
            .arg("version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Starts `dockerd` on the same directories and waits until it answers.
    fn spawn(&mut self) {
        assert!(self.child.is_none(), "dockerd already running");
        self.starts += 1;
        let log = fs::File::create(self.path(&format!("dockerd-{}.log", self.starts)))
            .expect("dockerd log");
        let child = Command::new("dockerd")
            .arg("-H")
            .arg(self.host())
            .arg("--data-root")
            .arg(self.path("data"))
            .arg("--exec-root")
            .arg(self.path("exec"))
            .arg("--pidfile")
            .arg(self.path("dockerd.pid"))
            .arg("--config-file")
            .arg(self.path("daemon.json"))
            .arg(format!("--bridge={}", self.bridge))
            .args(["--iptables=false", "--ip-masq=false"])
            .args(["--storage-driver", "vfs"])
            .args(["--containerd-namespace", &self.namespace])
            .args([
                "--containerd-plugins-namespace",
                &format!("{}-plugins", self.namespace),
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("dockerd is installed (Debian's docker.io)");
        self.child = Some(child);
        wait_until("the private dockerd to answer", SECS60, || {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("the private dockerd exited with {status}:\n{}", self.log());
            }
            self.answers().then_some(())
        });
    }

    /// Sends `signal` to dockerd and waits for it to end.
    fn stop_with(&mut self, signal: &str) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + SECS60;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("the private dockerd did not end within 60 s of SIG{signal}");
    }

    fn log(&self) -> String {
        (1..=self.starts)
            .map(|i| fs::read_to_string(self.path(&format!("dockerd-{i}.log"))).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n--- restart ---\n")
    }

    /// Every container of rkubelet node `node` on this daemon.
    fn containers(&self, node: &str) -> Vec<Ctr> {
        containers_on(Some(&self.host()), "io.rkubelet.node", node)
    }
}

impl Drop for PrivateDockerd {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("===== private dockerd log =====\n{}", self.log());
        }
        if self.child.is_some() {
            // Remove its containers so no shim outlives it, then stop it.
            if let Ok(out) = self.docker().args(["ps", "-aq"]).output() {
                let ids = String::from_utf8_lossy(&out.stdout).into_owned();
                let ids: Vec<&str> = ids.split_whitespace().collect();
                if !ids.is_empty() {
                    let _ = self.docker().args(["rm", "-f"]).args(&ids).output();
                }
            }
            let mut child = self.child.take();
            if let Some(c) = child.as_mut() {
                let _ = Command::new("kill").arg(c.id().to_string()).status();
                let deadline = Instant::now() + Duration::from_secs(30);
                while Instant::now() < deadline && !matches!(c.try_wait(), Ok(Some(_))) {
                    std::thread::sleep(Duration::from_millis(100));
                }
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        // A containerd it supervised may outlive a killed dockerd.
        kill_pid_file(&self.path("exec/containerd/containerd.pid"));
        // Whatever is still mounted below the directories (network
        // namespaces, shm) must go before the directories can.
        let _ = Command::new("umount")
            .args(["-R", "-l"])
            .arg(self.path("exec"))
            .stderr(Stdio::null())
            .status();
        let _ = rkubelet::worker::volumes::teardown(&self.path("data"));
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .stderr(Stdio::null())
            .status();
    }
}

/// SIGKILLs the process whose pid a file holds, if any.
fn kill_pid_file(path: &Path) {
    if let Some(pid) = fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
    {
        let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
    }
}

fn pod(name: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: app
    image: {IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
"#
    )
}

const PODS: [&str; 3] = ["alpha", "beta", "gamma"];

/// rkubelet on the private dockerd, with a short crash-loop backoff.
fn rkubelet_on(dockerd: &PrivateDockerd) -> Daemon {
    let mut opts = Opts::default();
    opts.extra_args.extend(
        [
            "--docker-endpoint",
            &dockerd.host(),
            "--crash-loop-backoff-base",
            "1s",
            "--crash-loop-backoff-max",
            "2s",
        ]
        .map(String::from),
    );
    Daemon::start_with(opts)
}

/// The pod's UID and its app container's restart count, from the API.
fn api_state(d: &Daemon, name: &str) -> Option<(String, i64)> {
    let p = d.api_pod(name)?;
    let uid = p["metadata"]["uid"].as_str()?.to_string();
    let restarts = p["status"]["containerStatuses"][0]["restartCount"].as_i64()?;
    Some((uid, restarts))
}

/// What is wrong with the node on `dockerd`, if anything: every pod has
/// exactly one sandbox, running, and exactly one running `app` instance,
/// nothing in `created`, at most one dead `app` instance kept, no container
/// of another UID, no pod directory but the pods', and the API's restart
/// count equals the newest instance's.
fn unsettled(d: &Daemon, dockerd: &PrivateDockerd) -> Option<String> {
    let all = dockerd.containers(&d.node);
    let mut uids = BTreeSet::new();
    for name in PODS {
        let Some((uid, restarts)) = api_state(d, name) else {
            return Some(format!("{name} has no status in the API yet"));
        };
        let mine: Vec<&Ctr> = all.iter().filter(|c| c.uid() == uid).collect();
        let sandboxes: Vec<&&Ctr> = mine.iter().filter(|c| c.cname() == "POD").collect();
        let apps: Vec<&&Ctr> = mine.iter().filter(|c| c.cname() == "app").collect();
        let running_apps: Vec<&&&Ctr> = apps.iter().filter(|c| c.running).collect();
        let described: Vec<_> = mine.iter().map(|c| (&c.name, c.running)).collect();
        if sandboxes.len() != 1 || !sandboxes[0].running || running_apps.len() != 1 {
            return Some(format!("{name}: {described:?}"));
        }
        if apps.len() > 2 {
            return Some(format!(
                "{name} keeps more than one dead instance: {described:?}"
            ));
        }
        let newest = running_apps[0].name.rsplit('_').next().unwrap_or_default();
        if restarts.to_string() != newest {
            return Some(format!(
                "{name}: the API says restartCount {restarts}, the running instance is {}",
                running_apps[0].name
            ));
        }
        uids.insert(uid);
    }
    let created: Vec<&str> = all
        .iter()
        .filter(|c| !c.running && c.started_at.starts_with("0001-"))
        .map(|c| c.name.as_str())
        .collect();
    if !created.is_empty() {
        return Some(format!("never started: {created:?}"));
    }
    d.leftovers(&all, &uids)
}

/// Polls until [`unsettled`] finds nothing; returns how long that took.
fn settle(d: &Daemon, dockerd: &PrivateDockerd, timeout: Duration) -> Duration {
    let began = Instant::now();
    let mut last = String::new();
    while began.elapsed() < timeout {
        match unsettled(d, dockerd) {
            None => return began.elapsed(),
            Some(why) => last = why,
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("not settled after {timeout:?}: {last}");
}

/// Polls until every pod's sandbox and app container run on `dockerd`;
/// returns how long that took.
fn all_running(d: &Daemon, dockerd: &PrivateDockerd, timeout: Duration) -> Duration {
    let began = Instant::now();
    wait_until("every pod running again", timeout, || {
        let all = dockerd.containers(&d.node);
        let ok = PODS.iter().all(|name| {
            let full = format!("{name}-{}", d.node);
            let run = |c: &str| {
                all.iter().any(|x| {
                    x.label("io.kubernetes.pod.name") == full && x.cname() == c && x.running
                })
            };
            run("POD") && run("app")
        });
        ok.then_some(())
    });
    began.elapsed()
}

fn verbose_health(d: &Daemon) -> String {
    // 200 or 500: the body says which checks failed either way.
    let url = format!("http://127.0.0.1:{}/healthz?verbose", d.port);
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .ok()
        .and_then(|c| c.get(url).send().ok())
        .and_then(|r| r.text().ok())
        .unwrap_or_default()
}

/// The checks after a recovery: the node settles, a crash is restarted
/// promptly (the events stream was resubscribed; the relist runs only every
/// 30 s), rkubelet is still running, never panicked, and logged the outage
/// once as it began and once as it ended.
fn after_recovery(d: &mut Daemon, dockerd: &PrivateDockerd) {
    settle(d, dockerd, SECS60);
    let healthy = wait_until("/healthz?verbose back to ok", SECS60, || {
        let body = verbose_health(d);
        body.contains("[+]runtime").then_some(body)
    });
    assert!(healthy.contains("events stream connected"), "{healthy}");

    let full = format!("{}-{}", PODS[0], d.node);
    let victim = dockerd
        .containers(&d.node)
        .into_iter()
        .find(|c| c.label("io.kubernetes.pod.name") == full && c.cname() == "app" && c.running)
        .expect("a running app container");
    run(dockerd.docker().args(["kill", &victim.id]));
    let killed = Instant::now();
    wait_until(
        "the killed container restarted",
        Duration::from_secs(20),
        || {
            dockerd
                .containers(&d.node)
                .iter()
                .any(|c| {
                    c.label("io.kubernetes.pod.name") == full
                        && c.cname() == "app"
                        && c.running
                        && c.id != victim.id
                })
                .then_some(())
        },
    );
    assert!(
        killed.elapsed() < Duration::from_secs(20),
        "the restart came from the relist, not the events stream"
    );
    settle(d, dockerd, SECS60);

    assert!(d.exited().is_none(), "rkubelet exited:\n{}", d.log());
    let log = d.log();
    assert!(!log.contains("panicked"), "{log}");
    let began = log.matches("the container runtime is unreachable").count();
    let ended = log.matches("the container runtime answers again").count();
    assert_eq!(
        (began, ended),
        (1, 1),
        "the outage is logged once each way:\n{log}"
    );
    let noisy = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("pod sync failed"))
        .count();
    assert_eq!(noisy, 0, "a warning per worker during the outage:\n{log}");
}

/// Runs the pods, stops dockerd with `signal`, checks that `/healthz?verbose`
/// reports it, starts dockerd again and checks the recovery.
fn dockerd_stops_and_comes_back(signal: &str, wait_for_failing_healthz: bool) {
    let mut dockerd = PrivateDockerd::start();
    let mut d = rkubelet_on(&dockerd);
    for name in PODS {
        d.write(&format!("{name}.yaml"), &pod(name));
    }
    all_running(&d, &dockerd, SECS60);
    settle(&d, &dockerd, SECS60);

    dockerd.stop_with(signal);
    let report = wait_until("/healthz?verbose to report the outage", SECS60, || {
        let body = verbose_health(&d);
        body.contains("unreachable").then_some(body)
    });
    assert!(report.contains("runtime"), "{report}");
    if wait_for_failing_healthz {
        let failed = wait_until("plain /healthz to fail", SECS60, || d.get("/healthz").err());
        assert!(failed.starts_with("500"), "{failed}");
        assert!(failed.contains("unreachable"), "names the reason: {failed}");
    }
    assert!(d.exited().is_none(), "rkubelet exited:\n{}", d.log());

    dockerd.spawn();
    let answered = Instant::now();
    let took = all_running(&d, &dockerd, SECS60);
    eprintln!(
        "every pod running again {:.2} s after dockerd answered (SIG{signal})",
        (answered.elapsed().min(took)).as_secs_f64()
    );
    assert!(
        took < Duration::from_secs(15),
        "pods came back only after {took:?}"
    );
    after_recovery(&mut d, &dockerd);
}

#[test]
fn dockerd_stopped_with_sigterm_and_started_again_brings_every_pod_back() {
    dockerd_stops_and_comes_back("TERM", false);
}

#[test]
fn dockerd_killed_with_sigkill_fails_healthz_and_every_pod_comes_back_when_it_returns() {
    dockerd_stops_and_comes_back("KILL", true);
}

#[test]
fn rkubelet_started_while_dockerd_is_down_waits_and_starts_the_pods_when_it_answers() {
    let mut dockerd = PrivateDockerd::start();
    let mut d = rkubelet_on(&dockerd);
    assert_eq!(d.sigterm(), Some(0));
    dockerd.stop_with("TERM");
    for name in PODS {
        d.write(&format!("{name}.yaml"), &pod(name));
    }
    d.spawn_detached();
    wait_until("the waiting line", SECS60, || {
        d.last_log()
            .contains("waiting for the container runtime")
            .then_some(())
    });
    // It answers /healthz meanwhile, and says what it waits for.
    let report = wait_until("/healthz?verbose while waiting", SECS60, || {
        let body = verbose_health(&d);
        body.contains("unreachable").then_some(body)
    });
    assert!(report.contains("[!]runtime"), "{report}");
    // A few retries later it is still there, waiting.
    std::thread::sleep(Duration::from_secs(3));
    assert!(d.exited().is_none(), "rkubelet exited:\n{}", d.log());

    dockerd.spawn();
    let took = all_running(&d, &dockerd, SECS60);
    eprintln!(
        "every pod running {:.2} s after dockerd answered",
        took.as_secs_f64()
    );
    // Its retry is capped at 5 s; starting three pods takes a few seconds.
    assert!(
        took < Duration::from_secs(20),
        "pods started only after {took:?}"
    );
    d.wait_healthy();
    settle(&d, &dockerd, SECS60);
    let log = d.last_log();
    assert_eq!(
        log.matches("waiting for the container runtime").count(),
        1,
        "one line while waiting:\n{log}"
    );
    assert!(!log.contains("panicked"), "{log}");
}
