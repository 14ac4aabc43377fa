//! Running the real `rkubelet` binary in end-to-end tests.
//!
//! Each [`Daemon`] gets its own manifest directory, root directory, free API
//! port and a unique node name, so tests run in parallel on one Docker daemon
//! without touching each other's containers (rkubelet only manages containers
//! labelled with its own node). Dropping a `Daemon` kills it and removes every
//! container of its node; on a failing test it prints the daemon's log.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub use super::{free_port, random_hex, TEST_IMAGE as IMAGE};

/// GET `url` with a 5 s timeout; the body on any HTTP status below 400.
pub fn http_get(url: &str) -> Option<String> {
    rkubelet::http_client::install_crypto_provider();
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .ok()?;
    let resp = client.get(url).send().ok()?;
    if resp.status().as_u16() >= 400 {
        return None;
    }
    resp.text().ok()
}

/// Polls `f` every 100 ms until it returns `Some`, or panics after `timeout`
/// with `what` in the message.
pub fn wait_until<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs a command, returning stdout; panics with stderr on failure.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Checks that Docker answers and the test image exists (building it if not).
/// Panics with instructions otherwise: Docker tests never skip.
pub fn require_docker() {
    let ok = Command::new("docker")
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    assert!(
        matches!(ok, Ok(s) if s.success()),
        "the Docker daemon does not answer `docker info`; start it (systemctl start docker, \
         or run scripts/test which starts it) — Docker tests never skip"
    );
    let have = Command::new("docker")
        .args(["image", "inspect", IMAGE])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !matches!(have, Ok(s) if s.success()) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/make-test-image");
        run(Command::new(script).arg(IMAGE));
    }
}

/// An image with no shell at all: busybox-static copied to `/httpd` (so it
/// runs the httpd applet by its name) and a page under `/www`. Built once.
pub const NO_SHELL_IMAGE: &str = "rkubelet/noshell:local";

pub fn require_no_shell_image() {
    let have = Command::new("docker")
        .args(["image", "inspect", NO_SHELL_IMAGE])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if matches!(have, Ok(s) if s.success()) {
        return;
    }
    let root = tempfile::tempdir().expect("tmp");
    fs::copy("/bin/busybox", root.path().join("httpd")).expect("busybox-static at /bin/busybox");
    fs::create_dir_all(root.path().join("www")).expect("www");
    fs::write(root.path().join("www/index.html"), "no shell here\n").expect("page");
    let tar = Command::new("tar")
        .arg("-C")
        .arg(root.path())
        .args(["-c", "."])
        .output()
        .expect("tar");
    let mut import = Command::new("docker")
        .args([
            "import",
            "--change",
            "CMD [\"/httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]",
            "-",
            NO_SHELL_IMAGE,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("docker import");
    use std::io::Write as _;
    import
        .stdin
        .take()
        .expect("stdin")
        .write_all(&tar.stdout)
        .expect("write tar");
    assert!(
        import.wait().expect("docker import").success(),
        "docker import of {NO_SHELL_IMAGE} failed"
    );
}

/// One container as `docker inspect` shows it.
#[derive(Debug, Clone)]
pub struct Ctr {
    pub id: String,
    pub name: String,
    pub running: bool,
    pub exit_code: i64,
    pub labels: BTreeMap<String, String>,
    pub started_at: String,
    pub finished_at: String,
}

impl Ctr {
    pub fn label(&self, k: &str) -> &str {
        self.labels.get(k).map(String::as_str).unwrap_or("")
    }
    /// `io.kubernetes.container.name`.
    pub fn cname(&self) -> &str {
        self.label("io.kubernetes.container.name")
    }
    pub fn uid(&self) -> &str {
        self.label("io.kubernetes.pod.uid")
    }
}

/// Every container (any state) carrying `label=value`.
pub fn containers_with(label: &str, value: &str) -> Vec<Ctr> {
    containers_on(None, label, value)
}

/// [`containers_with`] on the Docker daemon at `host` (`-H`), or the default one.
pub fn containers_on(host: Option<&str>, label: &str, value: &str) -> Vec<Ctr> {
    let docker = || {
        let mut cmd = Command::new("docker");
        if let Some(h) = host {
            cmd.args(["-H", h]);
        }
        cmd
    };
    let ids = run(docker().args([
        "ps",
        "-aq",
        "--no-trunc",
        "--filter",
        &format!("label={label}={value}"),
    ]));
    let ids: Vec<&str> = ids.split_whitespace().collect();
    if ids.is_empty() {
        return Vec::new();
    }
    let out = docker()
        .arg("inspect")
        .args(&ids)
        .output()
        .expect("docker inspect");
    // A container may vanish between ps and inspect; inspect still prints the rest.
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Array(vec![]));
    v.as_array()
        .into_iter()
        .flatten()
        .map(|c| Ctr {
            id: c["Id"].as_str().unwrap_or_default().to_string(),
            name: c["Name"]
                .as_str()
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string(),
            running: c["State"]["Running"].as_bool().unwrap_or(false),
            exit_code: c["State"]["ExitCode"].as_i64().unwrap_or(-1),
            labels: c["Config"]["Labels"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default(),
            started_at: c["State"]["StartedAt"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            finished_at: c["State"]["FinishedAt"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        })
        .collect()
}

/// Runs `docker exec` and returns (success, stdout+stderr).
pub fn docker_exec(id: &str, cmd: &[&str]) -> (bool, String) {
    let out = Command::new("docker")
        .arg("exec")
        .arg(id)
        .args(cmd)
        .output()
        .expect("docker exec");
    let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), s)
}

/// One Docker event about a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerEvent {
    /// Unix time in nanoseconds.
    pub nanos: u128,
    pub action: String,
    pub uid: String,
    /// `io.kubernetes.container.name`.
    pub container: String,
}

impl DockerEvent {
    pub fn secs(&self) -> f64 {
        self.nanos as f64 / 1e9
    }
}

/// Records Docker's container events for one node from the moment it is
/// created (`--since` now, so nothing is lost while `docker events` connects).
pub struct DockerEvents {
    child: Child,
    rx: std::sync::mpsc::Receiver<DockerEvent>,
    seen: Vec<DockerEvent>,
}

impl DockerEvents {
    pub fn start(node: &str) -> DockerEvents {
        use std::io::{BufRead, BufReader};
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| format!("{}.{:09}", d.as_secs(), d.subsec_nanos()))
            .expect("clock");
        let mut child = Command::new("docker")
            .args(["events", "--since", &since, "--filter", "type=container"])
            .args(["--filter", &format!("label=io.rkubelet.node={node}")])
            .args(["--format", "{{.TimeNano}} {{.Action}} {{index .Actor.Attributes \"io.kubernetes.pod.uid\"}} {{index .Actor.Attributes \"io.kubernetes.container.name\"}}"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("docker events");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let mut p = line.split_whitespace();
                let ev = (|| {
                    Some(DockerEvent {
                        nanos: p.next()?.parse().ok()?,
                        action: p.next()?.to_string(),
                        uid: p.next().unwrap_or_default().to_string(),
                        container: p.next().unwrap_or_default().to_string(),
                    })
                })();
                if let Some(ev) = ev {
                    if tx.send(ev).is_err() {
                        break;
                    }
                }
            }
        });
        DockerEvents {
            child,
            rx,
            seen: Vec::new(),
        }
    }

    /// Every event received so far.
    pub fn all(&mut self) -> &[DockerEvent] {
        self.seen.extend(self.rx.try_iter());
        &self.seen
    }

    /// `action` events of `container` (any pod of the node), in order.
    pub fn of(&mut self, container: &str, action: &str) -> Vec<DockerEvent> {
        self.all()
            .iter()
            .filter(|e| e.container == container && e.action == action)
            .cloned()
            .collect()
    }
}

impl Drop for DockerEvents {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Options for starting a daemon.
#[derive(Debug, Clone)]
pub struct Opts {
    pub extra_args: Vec<String>,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            extra_args: vec!["--file-check-frequency".into(), "1s".into()],
        }
    }
}

/// A running `rkubelet` with its own directories, port and node name.
pub struct Daemon {
    child: Option<Child>,
    pub node: String,
    pub port: u16,
    /// The authenticated (HTTPS) port, `--port`.
    pub secure_port: u16,
    /// Whether the read-only port serves logs (`--read-only-port-logs`, on
    /// unless started with [`Daemon::start_without_read_only_logs`]).
    read_only_logs: bool,
    dirs: tempfile::TempDir,
    pub opts: Opts,
    starts: u32,
    /// Extra environment of the binary, set after the defaults.
    env: Vec<(String, String)>,
}

impl Daemon {
    /// `kubectl --server http://127.0.0.1:<port> ARGS`, not yet run.
    pub fn kubectl_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("kubectl");
        cmd.arg("--server")
            .arg(format!("http://127.0.0.1:{}", self.port))
            .args(args);
        cmd
    }

    /// A kubeconfig for the authenticated port, written by `rkubelet
    /// kubeconfig` (once) into the daemon's temp dir; its path.
    pub fn kubeconfig(&self) -> PathBuf {
        let path = self.dirs.path().join("kubeconfig");
        if !path.exists() {
            let text = run(Command::new(env!("CARGO_BIN_EXE_rkubelet"))
                .arg("kubeconfig")
                .arg("--root-dir")
                .arg(self.root_dir())
                .args(["--port", &self.secure_port.to_string()]));
            fs::write(&path, text).expect("write kubeconfig");
        }
        path
    }

    /// `kubectl --kubeconfig K ARGS` against the authenticated port, not yet run.
    pub fn kubectl_auth_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("kubectl");
        cmd.arg("--kubeconfig").arg(self.kubeconfig()).args(args);
        cmd
    }

    /// Runs kubectl against the authenticated port: (success, stdout, stderr).
    pub fn kubectl_auth(&self, args: &[&str]) -> (bool, String, String) {
        let out = self
            .kubectl_auth_cmd(args)
            .output()
            .expect("kubectl is installed");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs kubectl against this daemon: (success, stdout, stderr).
    pub fn kubectl(&self, args: &[&str]) -> (bool, String, String) {
        let out = self
            .kubectl_cmd(args)
            .output()
            .expect("kubectl is installed (scripts/test installs Debian's kubernetes-client)");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Starts a daemon on an empty manifest directory.
    pub fn start() -> Daemon {
        Daemon::start_with(Opts::default())
    }

    pub fn start_with(opts: Opts) -> Daemon {
        Daemon::start_full(opts, true, Vec::new())
    }

    /// Like [`Daemon::start_with`] with extra environment variables, set
    /// after the defaults (an empty `RKUBELET_LOG` lets `--v` decide).
    pub fn start_with_env(opts: Opts, env: Vec<(String, String)>) -> Daemon {
        Daemon::start_full(opts, true, env)
    }

    /// A daemon whose read-only port serves no logs (rkubelet's default).
    pub fn start_without_read_only_logs(opts: Opts) -> Daemon {
        Daemon::start_full(opts, false, Vec::new())
    }

    fn start_full(opts: Opts, read_only_logs: bool, env: Vec<(String, String)>) -> Daemon {
        require_docker();
        let dirs = tempfile::Builder::new()
            .prefix("rkubelet-e2e-")
            .tempdir()
            .expect("tempdir");
        fs::create_dir_all(dirs.path().join("manifests")).expect("manifest dir");
        let mut d = Daemon {
            child: None,
            node: format!("rkt-{}", random_hex(5)),
            port: free_port(),
            secure_port: free_port(),
            read_only_logs,
            dirs,
            opts,
            starts: 0,
            env,
        };
        // A port picked free can be taken by another process (parallel test
        // files, Docker) before rkubelet binds it: then pick new ones.
        for attempt in 1.. {
            d.spawn_detached();
            match d.healthy_or_exit() {
                Ok(()) => break,
                Err(log) if attempt < 4 && log.contains("Address already in use") => {
                    d.child = None;
                    d.port = free_port();
                    d.secure_port = free_port();
                }
                Err(log) => panic!("rkubelet exited early with {log}"),
            }
        }
        d
    }

    pub fn manifest_dir(&self) -> PathBuf {
        self.dirs.path().join("manifests")
    }
    pub fn root_dir(&self) -> PathBuf {
        self.dirs.path().join("root")
    }
    /// A scratch directory for hostPath volumes and the like.
    pub fn scratch(&self, name: &str) -> PathBuf {
        let p = self.dirs.path().join("scratch").join(name);
        fs::create_dir_all(&p).expect("scratch dir");
        p
    }
    fn log_path(&self) -> PathBuf {
        self.dirs
            .path()
            .join(format!("rkubelet-{}.log", self.starts))
    }

    /// (Re)starts the binary with the same directories, port and node, and
    /// waits until its `/healthz` says `ok`.
    pub fn spawn(&mut self) {
        self.spawn_detached();
        self.wait_healthy();
    }

    /// The daemon's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Whether the daemon process has ended (and how).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Waits until `/healthz` says `ok`; the log if the process ends first.
    fn healthy_or_exit(&mut self) -> Result<(), String> {
        let mut early = None;
        wait_until("rkubelet's /healthz", Duration::from_secs(60), || {
            if let Some(status) = self.exited() {
                early = Some(format!("{status}:\n{}", self.log()));
                return Some(());
            }
            self.get("/healthz").ok().filter(|b| b == "ok").map(|_| ())
        });
        early.map_or(Ok(()), Err)
    }

    /// Waits until `/healthz` says `ok`; panics if the process ends first.
    pub fn wait_healthy(&mut self) {
        wait_until("rkubelet's /healthz", Duration::from_secs(60), || {
            if let Some(status) = self.exited() {
                panic!("rkubelet exited early with {status}:\n{}", self.log());
            }
            self.get("/healthz").ok().filter(|b| b == "ok")
        });
    }

    /// (Re)starts the binary without waiting for it to answer.
    pub fn spawn_detached(&mut self) {
        assert!(self.child.is_none(), "daemon already running");
        self.starts += 1;
        let log = fs::File::create(self.log_path()).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_rkubelet"))
            .arg("--config")
            .arg(self.manifest_dir())
            .arg("--root-dir")
            .arg(self.root_dir())
            .arg("--hostname-override")
            .arg(&self.node)
            .arg("--read-only-port")
            .arg(self.port.to_string())
            .arg("--port")
            .arg(self.secure_port.to_string())
            .args(self.read_only_logs.then_some("--read-only-port-logs"))
            .args(&self.opts.extra_args)
            .env("RKUBELET_LOG", "info,rkubelet=debug")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start rkubelet");
        self.child = Some(child);
    }

    /// What is left over beside the pods `uids`: containers among `all`
    /// of no such pod, and pod directories under the root dir of other
    /// pods (or missing ones). `None` when there is nothing.
    pub fn leftovers(
        &self,
        all: &[Ctr],
        uids: &std::collections::BTreeSet<String>,
    ) -> Option<String> {
        let strays: Vec<&str> = all
            .iter()
            .filter(|c| !uids.contains(c.uid()))
            .map(|c| c.name.as_str())
            .collect();
        if !strays.is_empty() {
            return Some(format!("containers of no current pod: {strays:?}"));
        }
        let dirs: std::collections::BTreeSet<String> = fs::read_dir(self.root_dir().join("pods"))
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        if &dirs != uids {
            return Some(format!("pod directories {dirs:?}, pods {uids:?}"));
        }
        None
    }

    /// Everything the daemon logged so far (all runs).
    pub fn log(&self) -> String {
        (1..=self.starts)
            .map(|i| {
                fs::read_to_string(self.dirs.path().join(format!("rkubelet-{i}.log")))
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("\n--- restart ---\n")
    }

    /// What the current (latest) run of the daemon logged.
    pub fn last_log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Sends SIGKILL (`kill -9`) and waits for the process to end.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends SIGTERM and waits for a clean exit, returning the exit code.
    pub fn sigterm(&mut self) -> Option<i32> {
        let mut c = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(s)) = c.try_wait() {
                return s.code();
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                panic!("rkubelet did not exit within 30s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Writes a manifest atomically (temp file + rename, as editors and
    /// config tools do).
    pub fn write(&self, name: &str, content: &str) {
        let tmp = self.manifest_dir().join(format!(".{name}.tmp"));
        fs::write(&tmp, content).expect("write manifest");
        fs::rename(&tmp, self.manifest_dir().join(name)).expect("rename manifest");
    }

    pub fn remove(&self, name: &str) {
        fs::remove_file(self.manifest_dir().join(name)).expect("remove manifest");
    }

    /// GET on the daemon's API; the body on 200.
    pub fn get(&self, path: &str) -> Result<String, String> {
        let url = format!("http://127.0.0.1:{}{path}", self.port);
        rkubelet::http_client::install_crypto_provider();
        let resp = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| e.to_string())?
            .get(&url)
            .send()
            .map_err(|e| e.to_string())?;
        let status = resp.status();
        let body = resp.text().map_err(|e| e.to_string())?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(format!("{status}: {body}"))
        }
    }

    pub fn get_json(&self, path: &str) -> Value {
        let body = self.get(path).unwrap_or_else(|e| panic!("GET {path}: {e}"));
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {body}"))
    }

    /// Every container of this daemon's node.
    pub fn containers(&self) -> Vec<Ctr> {
        containers_with("io.rkubelet.node", &self.node)
    }

    /// Containers of the pod `<name>-<node>` (any UID, any state).
    pub fn pod_containers(&self, name: &str) -> Vec<Ctr> {
        let full = format!("{name}-{}", self.node);
        self.containers()
            .into_iter()
            .filter(|c| c.label("io.kubernetes.pod.name") == full)
            .collect()
    }

    /// Waits until the pod's sandbox and the named containers all run; returns them.
    pub fn wait_running(&self, name: &str, containers: &[&str], timeout: Duration) -> Vec<Ctr> {
        wait_until(
            &format!("pod {name} running {containers:?}"),
            timeout,
            || {
                let cs = self.pod_containers(name);
                let running = |n: &str| cs.iter().any(|c| c.cname() == n && c.running);
                (running("POD") && containers.iter().all(|n| running(n))).then_some(cs)
            },
        )
    }

    /// Waits until the pod has no containers left.
    pub fn wait_gone(&self, name: &str, timeout: Duration) {
        wait_until(&format!("pod {name} gone"), timeout, || {
            self.pod_containers(name).is_empty().then_some(())
        })
    }

    /// Runs a client sub-command (`get pods`, …) against this daemon;
    /// returns (success, stdout, stderr).
    pub fn ctl(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_rkubelet"))
            .args(args)
            .env("RKUBELET_SERVER", format!("http://127.0.0.1:{}", self.port))
            .output()
            .expect("run rkubelet client");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// The pod from `/pods`, deserialized as a Kubernetes `Pod`.
    pub fn k8s_pod(&self, name: &str) -> Option<k8s_openapi::api::core::v1::Pod> {
        self.api_pod(name)
            .map(|v| serde_json::from_value(v).expect("a v1 Pod"))
    }

    /// Waits until no container of pod UID `uid` is left.
    pub fn wait_gone_uid(&self, uid: &str) {
        wait_until(&format!("uid {uid} gone"), Duration::from_secs(30), || {
            (!self.containers().iter().any(|c| c.uid() == uid)).then_some(())
        });
    }

    /// The pod's entry in `/pods`.
    pub fn api_pod(&self, name: &str) -> Option<Value> {
        let full = format!("{name}-{}", self.node);
        let list = self.get_json("/pods");
        list["items"]
            .as_array()?
            .iter()
            .find(|p| p["metadata"]["name"] == full.as_str())
            .cloned()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            eprintln!(
                "===== rkubelet log (node {}) =====\n{}",
                self.node,
                self.log()
            );
        }
        let ids = Command::new("docker")
            .args([
                "ps",
                "-aq",
                "--filter",
                &format!("label=io.rkubelet.node={}", self.node),
            ])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if !ids.is_empty() {
            let _ = Command::new("docker")
                .args(["rm", "-f"])
                .args(&ids)
                .output();
        }
        // Pods left running keep their tmpfs volumes mounted (as a stopped
        // rkubelet does): unmount them so the temp dir can go.
        if let Err(e) = rkubelet::worker::volumes::teardown(&self.root_dir()) {
            eprintln!("cannot clean up {}: {e}", self.root_dir().display());
        }
    }
}
