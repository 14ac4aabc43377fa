//! Helpers shared by the integration and end-to-end tests that run against the
//! real Docker daemon.
//!
//! * [`runtime`] connects to Docker (or fails the test saying how to start it)
//!   and makes sure the busybox test image and rkubelet's pause image exist;
//! * [`new_uid`] / [`unique`] give every test its own names, so tests run in
//!   parallel without stepping on each other;
//! * [`Cleanup`] and [`ImageCleanup`] remove what a test created when they are
//!   dropped, even when the test panics;
//! * [`wait_for`] / [`eventually`] poll with a deadline instead of sleeping;
//! * [`TestPod`] builds sandbox and container configs carrying rkubelet's labels;
//! * [`load_manifest`] loads a manifest the way the daemon does;
//! * [`now_nanos`] is wall-clock time in Docker's event units.
//!
//! The benchmark (`benches/pods.rs`) includes this module too.
//!
//! Nothing here skips a test: missing prerequisites are failures with a
//! message saying what to do.

#![allow(dead_code)]

use std::future::Future;
use std::io::Read;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::query_parameters::LogsOptionsBuilder;
use futures_util::StreamExt;
use rkubelet::runtime::docker::{DockerRuntime, DEFAULT_ENDPOINT};
use rkubelet::runtime::labels::{self, PodRef};
use rkubelet::runtime::{pause, ContainerConfig, ContainerRuntime, SandboxConfig};
use tokio::sync::OnceCell;

/// The local busybox image built by `scripts/make-test-image`.
pub const TEST_IMAGE: &str = "rkubelet/busybox:local";

/// The Docker endpoint tests use: `RKUBELET_TEST_DOCKER`, else `DOCKER_HOST`,
/// else the default socket.
pub fn docker_endpoint() -> String {
    std::env::var("RKUBELET_TEST_DOCKER")
        .or_else(|_| std::env::var("DOCKER_HOST"))
        .unwrap_or_else(|_| DEFAULT_ENDPOINT.to_string())
}

static PREREQUISITES: OnceCell<()> = OnceCell::const_new();

/// Connects to Docker and makes sure the test image and the default pause
/// image exist (once per test binary). Panics with instructions otherwise.
pub async fn runtime() -> Arc<DockerRuntime> {
    let endpoint = docker_endpoint();
    let runtime = match DockerRuntime::connect(&endpoint).await {
        Ok(runtime) => Arc::new(runtime),
        Err(e) => panic!(
            "these tests need a running Docker daemon at {endpoint}: {e}\n\
             start it (systemctl start docker, or `dockerd &`), or point \
             RKUBELET_TEST_DOCKER / DOCKER_HOST at one"
        ),
    };
    PREREQUISITES
        .get_or_init(|| async {
            ensure_test_image(&runtime).await;
            if let Err(e) = runtime.ensure_infra_image(pause::DEFAULT_IMAGE).await {
                panic!(
                    "cannot provision the pause image {}: {e}",
                    pause::DEFAULT_IMAGE
                );
            }
        })
        .await;
    runtime
}

/// Builds [`TEST_IMAGE`] with `scripts/make-test-image` when it is absent.
async fn ensure_test_image(runtime: &DockerRuntime) {
    match runtime.inspect_image(TEST_IMAGE).await {
        Ok(Some(_)) => return,
        Ok(None) => {}
        Err(e) => panic!("cannot inspect the test image {TEST_IMAGE}: {e}"),
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/make-test-image");
    let output =
        tokio::task::spawn_blocking(move || Command::new(&script).arg(TEST_IMAGE).output())
            .await
            .expect("make-test-image task");
    match output {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "scripts/make-test-image failed ({}); the tests need the image {TEST_IMAGE}:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!("cannot run scripts/make-test-image to build {TEST_IMAGE}: {e}"),
    }
    match runtime.inspect_image(TEST_IMAGE).await {
        Ok(Some(_)) => {}
        other => panic!("scripts/make-test-image ran but {TEST_IMAGE} is missing: {other:?}"),
    }
}

/// `bytes` random bytes from the kernel, hex-encoded.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("read /dev/urandom");
    hex::encode(buf)
}

/// Now, in nanoseconds since the Unix epoch (Docker's `timeNano`).
pub fn now_nanos() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    i64::try_from(since_epoch.as_nanos()).expect("nanos fit in i64")
}

/// The node name [`load_manifest`] identifies pods for.
pub const MANIFEST_NODE: &str = "node1";

/// Loads a manifest the way the daemon's file source does: parsed,
/// validated, identified for node [`MANIFEST_NODE`] with `path` as its file
/// origin, defaulted. Panics naming the problem.
pub fn load_manifest(path: &str, content: &[u8]) -> rkubelet::manifest::Loaded {
    use rkubelet::manifest::{self, LoadContext, Origin};
    let origin = Origin::file(path);
    let ctx = LoadContext {
        node_name: MANIFEST_NODE,
        origin: &origin,
        now: k8s_openapi::jiff::Timestamp::now(),
    };
    manifest::load(content, &ctx).unwrap_or_else(|e| panic!("{path} is not a valid manifest: {e}"))
}

/// A fresh pod UID: 32 lowercase hex characters, like rkubelet's.
pub fn new_uid() -> String {
    random_hex(16)
}

/// `prefix-<8 hex>`: a name no other test (or test run) uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", random_hex(4))
}

/// Removes (`docker rm -f -v`) every container carrying a label when dropped,
/// even if the test panicked. Blocking on purpose: it must finish before the
/// test process exits.
#[must_use = "the containers are removed when this guard is dropped"]
pub struct Cleanup {
    selector: Selector,
}

enum Selector {
    /// `key=value`, filtered by Docker.
    Label(String),
    /// rkubelet's containers whose label `key` ends with a suffix.
    LabelSuffix { key: String, suffix: String },
}

impl Cleanup {
    /// Every container of the pod with this UID.
    pub fn pod(uid: &str) -> Self {
        Self::label(labels::POD_UID, uid)
    }

    /// Every container with `key=value`.
    pub fn label(key: &str, value: &str) -> Self {
        Cleanup {
            selector: Selector::Label(format!("{key}={value}")),
        }
    }

    /// Every rkubelet container whose label `key` ends with `suffix`. For
    /// end-to-end tests that only know part of a name, e.g. the pods of a
    /// `--hostname-override` node: `label_suffix(labels::POD_NAME, "-node1")`.
    pub fn label_suffix(key: &str, suffix: &str) -> Self {
        Cleanup {
            selector: Selector::LabelSuffix {
                key: key.to_string(),
                suffix: suffix.to_string(),
            },
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let ids = match &self.selector {
            Selector::Label(label) => docker_ps(&format!("label={label}"), "{{.ID}}"),
            Selector::LabelSuffix { key, suffix } => docker_ps(
                &format!("label={}=true", labels::MANAGED),
                &format!("{{{{.ID}}}} {{{{.Label \"{key}\"}}}}"),
            )
            .into_iter()
            .filter_map(|line| {
                let (id, value) = line.split_once(' ')?;
                value.ends_with(suffix.as_str()).then(|| id.to_string())
            })
            .collect(),
        };
        remove_containers(&ids);
    }
}

/// Force-removes every container with `label` (`key=value`) through the CLI.
pub fn remove_containers_with_label(label: &str) {
    remove_containers(&docker_ps(&format!("label={label}"), "{{.ID}}"));
}

/// `docker ps -a --no-trunc --filter <filter> --format <format>`, one line per container.
fn docker_ps(filter: &str, format: &str) -> Vec<String> {
    let listed = Command::new("docker")
        .args([
            "ps",
            "-a",
            "--no-trunc",
            "--filter",
            filter,
            "--format",
            format,
        ])
        .output();
    match listed {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect(),
        Ok(out) => {
            eprintln!(
                "cleanup: docker ps failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            Vec::new()
        }
        Err(e) => {
            eprintln!("cleanup: cannot run docker: {e}");
            Vec::new()
        }
    }
}

/// `docker rm -f -v` of these containers.
fn remove_containers(ids: &[String]) {
    if ids.is_empty() {
        return;
    }
    match Command::new("docker")
        .args(["rm", "-f", "-v"])
        .args(ids)
        .output()
    {
        Ok(out) if out.status.success() => {}
        Ok(out) => eprintln!(
            "cleanup: docker rm failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => eprintln!("cleanup: cannot run docker: {e}"),
    }
}

/// Removes an image (`docker rmi -f`) when dropped. Declare it *before* the
/// [`Cleanup`] of containers using it, so those are removed first.
#[must_use = "the image is removed when this guard is dropped"]
pub struct ImageCleanup(pub String);

impl Drop for ImageCleanup {
    fn drop(&mut self) {
        match Command::new("docker").args(["rmi", "-f", &self.0]).output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!(
                "cleanup: docker rmi {} failed: {}",
                self.0,
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => eprintln!("cleanup: cannot run docker: {e}"),
        }
    }
}

/// Polls `check` (every 50 ms) until it returns `Some`, or `None` once
/// `timeout` has passed.
pub async fn wait_for<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// [`wait_for`], failing the test with `what` on timeout.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    match wait_for(timeout, check).await {
        Some(value) => value,
        None => panic!("timed out after {timeout:?} waiting for {what}"),
    }
}

/// A free TCP port on 127.0.0.1 (free when asked; bind it soon).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

/// A container's stdout and stderr so far, as text.
pub async fn container_logs(runtime: &DockerRuntime, id: &str) -> String {
    let options = LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .build();
    let mut stream = runtime.client().logs(id, Some(options));
    let mut text = String::new();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(output) => text.push_str(&String::from_utf8_lossy(&output.into_bytes())),
            Err(e) => panic!("cannot read the logs of {id}: {e}"),
        }
    }
    text
}

/// The host PID of a running container's main process.
pub async fn container_pid(runtime: &DockerRuntime, id: &str) -> i64 {
    let inspect = runtime
        .client()
        .inspect_container(id, None)
        .await
        .unwrap_or_else(|e| panic!("inspect {id}: {e}"));
    inspect
        .state
        .and_then(|s| s.pid)
        .filter(|pid| *pid > 0)
        .unwrap_or_else(|| panic!("container {id} has no running process"))
}

/// The namespace a host process is in (`ipc:[4026532182]`), from `/proc`.
pub fn namespace_of(pid: i64, kind: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/ns/{kind}: {e}"))
        .to_string_lossy()
        .into_owned()
}

/// A pod identity for tests, with a fresh UID, and the guard removing its
/// containers. Keep it alive for the whole test.
pub struct TestPod {
    pub pod: PodRef,
    _cleanup: Cleanup,
}

/// Marks a container as created by a test: `scripts/test` removes leftovers
/// carrying `io.rkubelet.test=1` (or an `io.rkubelet.node` starting with
/// `rkt-`, the node names the end-to-end daemons use).
pub fn with_test_label(
    mut labels: std::collections::BTreeMap<String, String>,
) -> std::collections::BTreeMap<String, String> {
    labels.insert("io.rkubelet.test".into(), "1".into());
    labels
}

impl TestPod {
    /// A pod named `<name>-<8 hex>` in `default`, grace period 30 s.
    pub fn new(name: &str) -> Self {
        let uid = new_uid();
        TestPod {
            pod: PodRef {
                name: format!("{name}-{}", &uid[..8]),
                namespace: "default".to_string(),
                uid: uid.clone(),
                source: "file:/test/manifest.yaml".to_string(),
                grace_period_seconds: 30,
                workload_generation: None,
            },
            _cleanup: Cleanup::pod(&uid),
        }
    }

    pub fn uid(&self) -> &str {
        &self.pod.uid
    }

    /// The sandbox config: default pause image, hostname = pod name.
    pub fn sandbox_config(&self) -> SandboxConfig {
        SandboxConfig {
            name: labels::sandbox_name(&self.pod.name, &self.pod.namespace, &self.pod.uid, 0),
            image: pause::DEFAULT_IMAGE.to_string(),
            hostname: self.pod.name.clone(),
            labels: with_test_label(self.pod.sandbox_labels(0)),
            ..Default::default()
        }
    }

    /// An app container running `command` in [`TEST_IMAGE`] inside `sandbox_id`.
    pub fn container_config(
        &self,
        name: &str,
        sandbox_id: &str,
        command: &[&str],
    ) -> ContainerConfig {
        ContainerConfig {
            name: labels::container_name(
                name,
                &self.pod.name,
                &self.pod.namespace,
                &self.pod.uid,
                0,
            ),
            image: TEST_IMAGE.to_string(),
            command: Some(command.iter().map(|s| s.to_string()).collect()),
            sandbox_id: sandbox_id.to_string(),
            labels: with_test_label(self.pod.container_labels(name, "testhash", 0, sandbox_id)),
            ..Default::default()
        }
    }

    /// Runs the default sandbox; panics on failure.
    pub async fn run_sandbox(&self, runtime: &DockerRuntime) -> String {
        let config = self.sandbox_config();
        runtime
            .run_sandbox(&config)
            .await
            .unwrap_or_else(|e| panic!("run sandbox {}: {e}", config.name))
    }

    /// Creates and starts an app container; panics on failure.
    pub async fn start_container(
        &self,
        runtime: &DockerRuntime,
        name: &str,
        sandbox_id: &str,
        command: &[&str],
    ) -> String {
        let config = self.container_config(name, sandbox_id, command);
        let id = runtime
            .create_container(&config)
            .await
            .unwrap_or_else(|e| panic!("create {}: {e}", config.name));
        runtime
            .start_container(&id)
            .await
            .unwrap_or_else(|e| panic!("start {}: {e}", config.name));
        id
    }
}

/// Waits until the container has exited and returns its exit code.
pub async fn wait_exited(
    runtime: &DockerRuntime,
    pod_uid: &str,
    id: &str,
    timeout: Duration,
) -> Option<i64> {
    eventually(&format!("container {id} to exit"), timeout, || async {
        let infos = runtime.list_containers(Some(pod_uid)).await.ok()?;
        let info = infos.into_iter().find(|c| c.id == id)?;
        (info.state == rkubelet::runtime::ContainerState::Exited).then_some(info.exit_code)
    })
    .await
}

/// Waits until the container runs.
pub async fn wait_running(runtime: &DockerRuntime, pod_uid: &str, id: &str, timeout: Duration) {
    eventually(&format!("container {id} to run"), timeout, || async {
        let infos = runtime.list_containers(Some(pod_uid)).await.ok()?;
        infos
            .into_iter()
            .find(|c| c.id == id && c.is_running())
            .map(|_| ())
    })
    .await
}
pub mod daemon;
pub mod manifest_server;
pub mod terminal;
