//! The container runtime seam.
//!
//! Owns the runtime-neutral vocabulary rkubelet uses to talk to a container
//! engine: what a sandbox (pause container) and an app container look like when
//! created ([`SandboxConfig`], [`ContainerConfig`]), what rkubelet observes back
//! ([`ContainerInfo`], [`RuntimeEvent`]) and the [`ContainerRuntime`] trait.
//! Docker (through bollard) is the real implementation in [`docker`]; an
//! in-memory [`fake`] makes planning and worker logic testable without Docker.
//!
//! It does not decide anything about pods: turning a `Pod` spec into configs is
//! `pod::convert`, deciding what to do is `pod::plan`.

pub mod docker;
pub mod fake;
pub mod health;
pub mod labels;
pub mod pause;

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use k8s_openapi::jiff::Timestamp;

/// Errors a runtime call can end in. Callers branch on the variant.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum RuntimeError {
    /// The container or image does not exist (any more).
    #[error("{0} not found")]
    NotFound(String),
    /// Pulling an image failed (no registry, unknown image, auth...).
    #[error("failed to pull image {image:?}: {reason}")]
    ImagePull { image: String, reason: String },
    /// The runtime refused to create or start the container (bad config,
    /// missing executable, port already allocated...).
    #[error("{0}")]
    CannotRun(String),
    /// The daemon cannot be reached; retry later.
    #[error("container runtime unavailable: {0}")]
    Unavailable(String),
    /// Anything else the runtime said.
    #[error("container runtime error: {0}")]
    Other(String),
}

pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;

/// A port published on the host by the sandbox (`hostPort`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMapping {
    pub container_port: u16,
    pub host_port: u16,
    /// `tcp`, `udp` or `sctp` (lower case, as Docker wants it).
    pub protocol: String,
    /// Host address to bind; empty means all addresses.
    pub host_ip: String,
}

/// Everything needed to create and start a pod's pause container.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SandboxConfig {
    /// Docker container name, `k8s_POD_<pod>_<ns>_<uid>_<attempt>`.
    pub name: String,
    /// The infra (pause) image.
    pub image: String,
    /// Host name inside the pod (≤ 63 chars). Ignored with `host_network`.
    pub hostname: String,
    /// Use the host's network namespace instead of a private one.
    pub host_network: bool,
    /// Use the host's IPC namespace (`hostIPC`).
    pub host_ipc: bool,
    /// Use the host's PID namespace (`hostPID`).
    pub host_pid: bool,
    /// `hostPort`s to publish.
    pub port_mappings: Vec<PortMapping>,
    /// Extra `/etc/hosts` entries (`host:ip`).
    pub extra_hosts: Vec<String>,
    /// DNS servers / searches / options, when the pod asks for them.
    pub dns_servers: Vec<String>,
    pub dns_searches: Vec<String>,
    pub dns_options: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

/// A bind mount from the host into a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub host_path: String,
    pub container_path: String,
    pub read_only: bool,
    /// Docker propagation mode (`rprivate`, `rslave`, `rshared`), if any.
    pub propagation: Option<String>,
}

/// Resource controls, already converted to Docker's units.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Resources {
    /// CPU shares from the CPU request (Kubernetes: milliCPU * 1024 / 1000, min 2).
    pub cpu_shares: Option<i64>,
    /// CFS quota in microseconds per `cpu_period` from the CPU limit.
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<i64>,
    /// Memory limit in bytes.
    pub memory_limit: Option<i64>,
}

/// Security settings from the container's (and pod's) securityContext.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Security {
    /// `uid` or `uid:gid`.
    pub user: Option<String>,
    pub privileged: bool,
    pub read_only_rootfs: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    /// Supplementary groups (`fsGroup`, `supplementalGroups`).
    pub group_add: Vec<String>,
}

/// Everything needed to create one app (or init) container in a sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerConfig {
    /// Docker container name, `k8s_<container>_<pod>_<ns>_<uid>_<restartCount>`.
    pub name: String,
    pub image: String,
    /// Kubernetes `command` (overrides the image ENTRYPOINT) after `$(VAR)` expansion.
    pub command: Option<Vec<String>>,
    /// Kubernetes `args` (overrides the image CMD) after `$(VAR)` expansion.
    pub args: Option<Vec<String>>,
    /// Environment in order, `$(VAR)` already expanded.
    pub env: Vec<(String, String)>,
    pub working_dir: Option<String>,
    /// The sandbox whose network and IPC (and PID, with `share_pid`) to join.
    pub sandbox_id: String,
    /// Join the sandbox's PID namespace (`shareProcessNamespace`).
    pub share_pid: bool,
    /// Use the host's PID namespace (`hostPID`); wins over `share_pid`.
    pub host_pid: bool,
    pub mounts: Vec<Mount>,
    pub resources: Resources,
    pub security: Security,
    pub stdin: bool,
    pub stdin_once: bool,
    pub tty: bool,
    pub labels: BTreeMap<String, String>,
}

/// Docker-level state of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerState {
    Created,
    Running,
    Exited,
    Unknown,
}

/// What rkubelet observes about one container it manages (from inspect).
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerInfo {
    pub id: String,
    /// Docker name without the leading `/`.
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub image: String,
    pub image_id: String,
    pub state: ContainerState,
    pub exit_code: Option<i64>,
    pub oom_killed: bool,
    /// The runtime's error for a container that could not start.
    pub error: Option<String>,
    pub created_at: Option<Timestamp>,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    /// The container's IP on its network, if it owns one (sandboxes).
    pub ip: Option<String>,
}

impl ContainerInfo {
    /// The parsed rkubelet labels, if this container carries them.
    pub fn meta(&self) -> Option<labels::ContainerMeta> {
        labels::ContainerMeta::from_labels(&self.labels)
    }
    pub fn is_running(&self) -> bool {
        self.state == ContainerState::Running
    }
}

/// What rkubelet needs to know about an image.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImageInfo {
    /// `sha256:…`
    pub id: String,
    /// Repo digests / tags Docker knows it by.
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
}

/// What an `exec` in a container produced.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecResult {
    /// The command's exit code; `None` when it timed out (still running).
    pub exit_code: Option<i64>,
    /// Combined stdout and stderr, at most [`EXEC_OUTPUT_LIMIT`] bytes.
    pub output: String,
    /// The command did not finish within the timeout.
    pub timed_out: bool,
}

/// The most output an `exec` keeps (the kubelet keeps 10 KiB for probes).
pub const EXEC_OUTPUT_LIMIT: usize = 10 * 1024;

/// Which logs to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogOptions {
    /// Keep streaming new output until the container stops.
    pub follow: bool,
    /// Only the last this many lines.
    pub tail: Option<usize>,
    /// Prefix each line with its RFC 3339 timestamp.
    pub timestamps: bool,
    /// Only lines written at or after this time (`sinceSeconds`/`sinceTime`).
    pub since: Option<Timestamp>,
}

/// Which standard streams a streaming exec or attach connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// A terminal: output is one raw stream (reported as stdout).
    pub tty: bool,
}

/// A piece of a streaming exec's or attach's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamChunk {
    Stdout(bytes::Bytes),
    Stderr(bytes::Bytes),
}

/// A process's connected streams: its output, and its stdin (shut it down to
/// close the process's stdin).
pub struct Attached {
    pub output: BoxStream<'static, Result<StreamChunk>>,
    pub input: std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
}

/// How a streaming exec ended or stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExecState {
    pub running: bool,
    pub exit_code: Option<i64>,
    /// The process id on the host, while it runs.
    pub pid: Option<i64>,
}

/// One event from the runtime's events stream about a managed container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeEvent {
    pub container_id: String,
    /// The `io.kubernetes.pod.uid` label of the container, when present.
    pub pod_uid: Option<String>,
    /// Docker's action: `create`, `start`, `die`, `oom`, `kill`, `destroy`, …
    pub action: String,
    /// Exit code for `die` events.
    pub exit_code: Option<i64>,
    /// Event time with nanoseconds, for resuming the stream with `since`.
    pub time_nanos: i64,
}

/// Pull progress: (bytes downloaded, bytes to download) over all layers.
pub type PullProgressFn<'a> = dyn Fn(i64, i64) + Send + Sync + 'a;

/// One sample of a container's resource usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ContainerStats {
    /// Cumulative CPU time used, in nanoseconds.
    pub cpu_usage_nanos: u64,
    /// Memory in use, page cache included.
    pub memory_usage_bytes: u64,
    /// Memory in use minus inactive page cache (what the kubelet reports
    /// and evicts on).
    pub memory_working_set_bytes: u64,
    /// Anonymous memory, when the runtime reports it.
    pub memory_rss_bytes: Option<u64>,
}

/// Puts a pod's containers in the order a listing gives them: by creation
/// time, then name and id.
pub fn sort_listing(infos: &mut [ContainerInfo]) {
    infos.sort_by(|a, b| (a.created_at, &a.name, &a.id).cmp(&(b.created_at, &b.name, &b.id)));
}

/// The operations rkubelet needs from a container engine.
///
/// Every method may fail with [`RuntimeError::Unavailable`] when the daemon
/// cannot be reached; callers retry with backoff.
#[async_trait]
pub trait ContainerRuntime: Send + Sync + 'static {
    /// The runtime's name and version, e.g. `docker://20.10.24`.
    async fn version(&self) -> Result<String>;

    /// All containers carrying rkubelet's labels, in every state, inspected.
    /// With `pod_uid`, only that pod's containers.
    async fn list_containers(&self, pod_uid: Option<&str>) -> Result<Vec<ContainerInfo>>;

    /// Like [`list_containers`](Self::list_containers), but only what the
    /// runtime's container list says, without inspecting each container: id,
    /// name, labels, image and state are filled in; exit code, times, IP and
    /// error are not. One call instead of one per container — for callers that
    /// need no more (the relist, removing a pod). Right after a container
    /// died its state may still read `Running`.
    async fn list_brief(&self, pod_uid: Option<&str>) -> Result<Vec<ContainerInfo>> {
        self.list_containers(pod_uid).await
    }

    /// One container, inspected; `Ok(None)` when it does not exist (any
    /// more). The default looks it up in the full listing.
    async fn inspect_container(&self, id: &str) -> Result<Option<ContainerInfo>> {
        let all = self.list_containers(None).await?;
        Ok(all.into_iter().find(|c| c.id == id))
    }

    /// The image if it is present locally; `Ok(None)` when it is not.
    async fn inspect_image(&self, image: &str) -> Result<Option<ImageInfo>>;

    /// Pulls an image. Fails with [`RuntimeError::ImagePull`].
    async fn pull_image(&self, image: &str) -> Result<ImageInfo>;

    /// Pulls an image with registry credentials (`None`: anonymously),
    /// calling `progress(bytes_done, bytes_total)` at most every 2 s while
    /// layers download. Fails with [`RuntimeError::ImagePull`] carrying the
    /// registry's message (not found, unauthorized, unreachable). (No
    /// default: a wrapping runtime must pass the credentials on.)
    async fn pull_image_with_auth(
        &self,
        image: &str,
        auth: Option<&crate::registry::RegistryAuth>,
        progress: &PullProgressFn<'_>,
    ) -> Result<ImageInfo>;

    /// Makes sure the infra (pause) image exists: present ⇒ nothing to do;
    /// absent ⇒ provision rkubelet's own pause image locally under that name
    /// (no registry needed; see [`pause`]).
    async fn ensure_infra_image(&self, image: &str) -> Result<ImageInfo>;

    /// Creates and starts a sandbox (pause) container; returns its id.
    async fn run_sandbox(&self, config: &SandboxConfig) -> Result<String>;

    /// Creates (does not start) an app container; returns its id.
    async fn create_container(&self, config: &ContainerConfig) -> Result<String>;

    /// Starts a created container. Fails with [`RuntimeError::CannotRun`]
    /// when the process cannot be started.
    async fn start_container(&self, id: &str) -> Result<()>;

    /// Stops a container: its stop signal (image STOPSIGNAL, else SIGTERM),
    /// then SIGKILL after `grace`. Stopping a stopped or missing container is Ok.
    async fn stop_container(&self, id: &str, grace: Duration) -> Result<()>;

    /// Removes a stopped container (and its anonymous volumes). Missing is Ok.
    async fn remove_container(&self, id: &str) -> Result<()>;

    /// Runs `cmd` in the running container `id`, as root, without a TTY.
    /// rkubelet enforces `timeout` itself (Docker does not): on expiry the
    /// result says `timed_out` (the process may linger in the container).
    async fn exec(&self, id: &str, cmd: &[String], timeout: Duration) -> Result<ExecResult>;

    /// One resource usage sample of a running container (one call, no
    /// streaming). Fails with [`RuntimeError::NotFound`] for a missing
    /// container. (No default: a wrapping runtime must pass it on.)
    async fn stats(&self, id: &str) -> Result<ContainerStats>;
    /// Starts `cmd` in the running container `id` with the streams `options`
    /// asks for connected (for `kubectl exec`); returns the exec's id and its
    /// streams. Fails with [`RuntimeError::NotFound`] for a missing container.
    async fn exec_stream(
        &self,
        id: &str,
        cmd: &[String],
        options: StreamOptions,
    ) -> Result<(String, Attached)> {
        let _ = (id, cmd, options);
        Err(RuntimeError::Other(
            "streaming exec is not supported by this runtime".into(),
        ))
    }

    /// The state of a streaming exec.
    async fn exec_state(&self, exec_id: &str) -> Result<ExecState> {
        let _ = exec_id;
        Err(RuntimeError::Other(
            "streaming exec is not supported by this runtime".into(),
        ))
    }

    /// Resizes a streaming exec's terminal.
    async fn resize_exec(&self, exec_id: &str, width: u16, height: u16) -> Result<()> {
        let _ = (exec_id, width, height);
        Ok(())
    }

    /// Connects to the main process of the running container `id` (for
    /// `kubectl attach`).
    async fn attach(&self, id: &str, options: StreamOptions) -> Result<Attached> {
        let _ = (id, options);
        Err(RuntimeError::Other(
            "attach is not supported by this runtime".into(),
        ))
    }

    /// Resizes a container's terminal (attach with a TTY).
    async fn resize_container(&self, id: &str, width: u16, height: u16) -> Result<()> {
        let _ = (id, width, height);
        Ok(())
    }

    /// The container's stdout and stderr, interleaved as Docker stored them.
    fn logs(&self, id: &str, options: LogOptions) -> BoxStream<'static, Result<bytes::Bytes>>;

    /// Events about containers carrying rkubelet's labels, from
    /// `since_nanos` (Unix nanoseconds) when given. The stream ends or yields
    /// an error when the connection breaks; the caller reconnects.
    fn events(&self, since_nanos: Option<i64>) -> BoxStream<'static, Result<RuntimeEvent>>;
}
