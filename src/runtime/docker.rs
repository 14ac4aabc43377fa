//! The Docker implementation of [`ContainerRuntime`], through bollard.
//!
//! [`DockerRuntime`] turns the runtime-neutral configs of [`super`] into Docker
//! API calls: a pod is one pause (sandbox) container that owns the network and
//! IPC namespaces (`IpcMode: shareable`) plus app containers joined to it with
//! `container:<sandbox id>` modes. It maps Docker's answers back (inspect ⇒
//! [`ContainerInfo`], events ⇒ [`RuntimeEvent`]) and Docker's errors onto
//! [`RuntimeError`] variants callers can branch on. It provisions the pause
//! image locally from the program embedded by [`super::pause`] when no registry
//! can provide it.
//!
//! It decides nothing about pods (that is `pod::plan`) and keeps no state of its
//! own besides the client: everything it knows comes from Docker.
//!
//! Notes on bollard 0.21 learnt the hard way:
//! * its request timeout covers only the wait for the response *headers*;
//!   streamed bodies (events, pull progress) are not cut by it, but
//!   `POST /containers/{id}/stop` answers only after the container stopped, so
//!   stops get a per-call timeout longer than their grace period;
//! * its `NetworkSettings` model has no top-level `IPAddress` any more, so the
//!   IP comes from `NetworkSettings.Networks`.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use bollard::errors::Error as DockerError;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerStateStatusEnum, ContainerSummary,
    EventMessage, HostConfig, ImageInspect, Mount as DockerMount, MountBindOptions,
    MountBindOptionsPropagationEnum, MountType, PortBinding,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, EventsOptions,
    ListContainersOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    StopContainerOptionsBuilder,
};
use bollard::{Docker, API_DEFAULT_VERSION};
use futures_util::stream::{BoxStream, StreamExt, TryStreamExt};
use k8s_openapi::jiff::Timestamp;

use super::{
    labels, pause, ContainerConfig, ContainerInfo, ContainerRuntime, ContainerState, ExecResult,
    ImageInfo, LogOptions, Mount, Result, RuntimeError, RuntimeEvent, SandboxConfig,
    EXEC_OUTPUT_LIMIT,
};

/// Where Docker listens by default.
pub const DEFAULT_ENDPOINT: &str = "unix:///var/run/docker.sock";

/// Timeout for ordinary requests (until the response headers arrive).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Added to a stop's grace period for the stop request's own timeout: Docker
/// answers `POST /stop` only once the container is gone (SIGKILL included).
const STOP_TIMEOUT_MARGIN: Duration = Duration::from_secs(30);

/// How many containers `list_containers` inspects at once.
const INSPECT_CONCURRENCY: usize = 8;

/// Docker's "never" timestamp (`time.Time{}` in Go).
const DOCKER_ZERO_TIME_PREFIX: &str = "0001-01-01";

/// A [`ContainerRuntime`] backed by a Docker daemon.
#[derive(Debug)]
pub struct DockerRuntime {
    docker: Docker,
    endpoint: String,
    /// Serialises pause image provisioning so concurrent pod starts do not
    /// import the same image several times.
    infra_lock: tokio::sync::Mutex<()>,
}

impl DockerRuntime {
    /// Creates (does not start) a container under `name`, logging Docker's warnings.
    async fn create_named(
        &self,
        name: &str,
        image: &str,
        body: bollard::models::ContainerCreateBody,
    ) -> Result<String> {
        let options = CreateContainerOptionsBuilder::default().name(name).build();
        let created = self
            .docker
            .create_container(Some(options), body)
            .await
            .map_err(|e| create_error(e, name, image))?;
        for warning in created.warnings.iter().filter(|w| !w.is_empty()) {
            tracing::warn!(container = %name, warning = %warning, "docker warning on create");
        }
        Ok(created.id)
    }

    /// Connects to the Docker daemon at `endpoint` (`unix:///path`, a bare
    /// socket path, or `tcp://host:port`), negotiates the API version and pings it.
    ///
    /// Fails with [`RuntimeError::Unavailable`] when the daemon cannot be
    /// reached (the message says what to check), and with
    /// [`RuntimeError::Other`] for an endpoint it cannot use.
    pub async fn connect(endpoint: &str) -> Result<Self> {
        Self::connect_with_timeout(endpoint, DEFAULT_REQUEST_TIMEOUT).await
    }

    /// [`connect`](Self::connect) with another request timeout (whole seconds,
    /// at least one). Stops always get their grace period plus a margin.
    pub async fn connect_with_timeout(endpoint: &str, request_timeout: Duration) -> Result<Self> {
        let timeout = request_timeout.as_secs().max(1);
        let unreachable = |e: &dyn std::fmt::Display| {
            RuntimeError::Unavailable(format!(
                "cannot reach the Docker daemon at {endpoint}: {e}; is it running? \
                 (systemctl start docker) and may this user open its socket?"
            ))
        };
        let client = if let Some(path) = unix_socket_path(endpoint) {
            Docker::connect_with_unix(path, timeout, API_DEFAULT_VERSION)
        } else if endpoint.starts_with("tcp://") || endpoint.starts_with("http://") {
            Docker::connect_with_http(endpoint, timeout, API_DEFAULT_VERSION)
        } else {
            return Err(RuntimeError::Other(format!(
                "unsupported Docker endpoint {endpoint:?}; use unix:///path/to/docker.sock \
                 or tcp://host:port"
            )));
        };
        let client = client.map_err(|e| unreachable(&e))?;
        let docker = client
            .negotiate_version()
            .await
            .map_err(|e| unreachable(&e))?;
        docker.ping().await.map_err(|e| unreachable(&e))?;
        tracing::debug!(endpoint, api_version = %docker.client_version(), "connected to docker");
        Ok(DockerRuntime {
            docker,
            endpoint: endpoint.to_string(),
            infra_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// The underlying bollard client, for what the trait does not cover
    /// (exec, logs, tests).
    pub fn client(&self) -> &Docker {
        &self.docker
    }

    /// The endpoint this runtime is connected to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Docker's container list (no inspect) of rkubelet's containers, or of
    /// one pod's.
    async fn list_summaries(&self, pod_uid: Option<&str>) -> Result<Vec<ContainerSummary>> {
        let mut label_filters = vec![format!("{}=true", labels::MANAGED)];
        if let Some(uid) = pod_uid {
            label_filters.push(format!("{}={uid}", labels::POD_UID));
        }
        let filters = HashMap::from([("label".to_string(), label_filters)]);
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        self.docker
            .list_containers(Some(options))
            .await
            .map_err(|e| map_err(e, "container list"))
    }

    async fn inspect_container_info(&self, id: &str) -> Result<Option<ContainerInfo>> {
        match self.docker.inspect_container(id, None).await {
            Ok(resp) => Ok(container_info_from_inspect(resp)),
            Err(e) if status_of(&e) == Some(404) => Ok(None),
            Err(e) => Err(map_err(e, &format!("container {id}"))),
        }
    }

    /// Imports the embedded pause rootfs as `image` (`docker import`).
    async fn import_pause_image(&self, image: &str) -> Result<()> {
        let (repo, tag) = split_image_ref(image);
        if tag.starts_with("sha256:") {
            return Err(RuntimeError::Other(format!(
                "cannot provision the pause image {image}: a digest reference cannot be \
                 created locally; pull or `docker load` it, or use a tagged name"
            )));
        }
        let tarball = pause::rootfs_tar().map_err(|e| {
            RuntimeError::Other(format!("cannot build the pause image rootfs: {e}"))
        })?;
        let options = CreateImageOptionsBuilder::default()
            .from_src("-")
            .repo(repo)
            .tag(tag)
            .message(pause::IMAGE_MESSAGE)
            .changes(pause::IMAGE_CHANGES.iter().map(|c| c.to_string()).collect())
            .build();
        let body = bollard::body_full(bytes::Bytes::from(tarball));
        self.docker
            .create_image(Some(options), Some(body), None)
            .try_for_each(|_| async { Ok(()) })
            .await
            .map_err(|e| match map_err(e, &format!("image {image}")) {
                RuntimeError::Unavailable(m) => RuntimeError::Unavailable(m),
                other => RuntimeError::Other(format!(
                    "importing the pause image as {image} failed: {}",
                    error_message(&other)
                )),
            })
    }
}

#[async_trait]
impl ContainerRuntime for DockerRuntime {
    async fn version(&self) -> Result<String> {
        let v = self
            .docker
            .version()
            .await
            .map_err(|e| map_err(e, "docker version"))?;
        Ok(format!("docker://{}", v.version.unwrap_or_default()))
    }

    async fn list_containers(&self, pod_uid: Option<&str>) -> Result<Vec<ContainerInfo>> {
        let summaries = self.list_summaries(pod_uid).await?;
        let ids: Vec<String> = summaries.into_iter().filter_map(|s| s.id).collect();
        let inspected: Vec<Option<ContainerInfo>> = futures_util::stream::iter(ids)
            .map(|id| async move { self.inspect_container_info(&id).await })
            .buffer_unordered(INSPECT_CONCURRENCY)
            .try_collect()
            .await?;
        let mut infos: Vec<ContainerInfo> = inspected.into_iter().flatten().collect();
        super::sort_listing(&mut infos);
        Ok(infos)
    }

    async fn inspect_container(&self, id: &str) -> Result<Option<ContainerInfo>> {
        self.inspect_container_info(id).await
    }

    async fn list_brief(&self, pod_uid: Option<&str>) -> Result<Vec<ContainerInfo>> {
        let summaries = self.list_summaries(pod_uid).await?;
        let mut infos: Vec<ContainerInfo> = summaries
            .into_iter()
            .filter_map(container_info_from_summary)
            .collect();
        super::sort_listing(&mut infos);
        Ok(infos)
    }

    async fn inspect_image(&self, image: &str) -> Result<Option<ImageInfo>> {
        match self.docker.inspect_image(image).await {
            Ok(inspect) => Ok(Some(image_info_from_inspect(inspect))),
            Err(e) if status_of(&e) == Some(404) => Ok(None),
            Err(e) => Err(map_err(e, &format!("image {image}"))),
        }
    }

    async fn pull_image(&self, image: &str) -> Result<ImageInfo> {
        self.pull_image_with_auth(image, None, &|_, _| {}).await
    }

    async fn pull_image_with_auth(
        &self,
        image: &str,
        auth: Option<&crate::registry::RegistryAuth>,
        report: &super::PullProgressFn<'_>,
    ) -> Result<ImageInfo> {
        let (repo, tag) = split_image_ref(image);
        let options = CreateImageOptionsBuilder::default()
            .from_image(repo)
            .tag(tag)
            .build();
        let pull_failed = |e: DockerError| match map_err(e, &format!("image {image}")) {
            RuntimeError::Unavailable(m) => RuntimeError::Unavailable(m),
            other => RuntimeError::ImagePull {
                image: image.to_string(),
                reason: error_message(&other),
            },
        };
        let credentials = auth.map(|a| bollard::auth::DockerCredentials {
            username: Some(a.username.clone()),
            password: Some(a.password.clone()),
            serveraddress: Some(a.server.clone()),
            ..Default::default()
        });
        let mut progress = PullProgress::new(image);
        self.docker
            .create_image(Some(options), None, credentials)
            .try_for_each(|info| {
                progress.observe(&info, report);
                async { Ok(()) }
            })
            .await
            .map_err(pull_failed)?;
        tracing::info!(image, bytes = progress.total(), "pulled image");
        self.inspect_image(image)
            .await?
            .ok_or_else(|| RuntimeError::ImagePull {
                image: image.to_string(),
                reason: "the pull succeeded but the image is not present".to_string(),
            })
    }

    async fn ensure_infra_image(&self, image: &str) -> Result<ImageInfo> {
        let _guard = self.infra_lock.lock().await;
        if let Some(info) = self.inspect_image(image).await? {
            return Ok(info);
        }
        if image != pause::DEFAULT_IMAGE {
            match self.pull_image(image).await {
                Ok(info) => return Ok(info),
                Err(e @ RuntimeError::Unavailable(_)) => return Err(e),
                Err(e) => tracing::warn!(
                    image,
                    error = %e,
                    "cannot pull the pod infra image; provisioning rkubelet's own pause image under that name"
                ),
            }
        }
        self.import_pause_image(image).await?;
        tracing::info!(
            image,
            "provisioned the pod infra image locally from rkubelet's embedded pause program"
        );
        self.inspect_image(image).await?.ok_or_else(|| {
            RuntimeError::Other(format!(
                "the pause image {image} was imported but Docker does not list it"
            ))
        })
    }

    async fn run_sandbox(&self, config: &SandboxConfig) -> Result<String> {
        let id = self
            .create_named(&config.name, &config.image, sandbox_create_body(config))
            .await?;
        if let Err(e) = self.docker.start_container(&id, None).await {
            let err = start_error(e, &id);
            tracing::warn!(sandbox = %config.name, error = %err, "sandbox failed to start; removing it");
            if let Err(rm) = self.remove_container(&id).await {
                tracing::warn!(sandbox = %config.name, error = %rm, "cannot remove the failed sandbox");
            }
            return Err(match err {
                RuntimeError::CannotRun(m) => {
                    RuntimeError::CannotRun(format!("sandbox {} failed to start: {m}", config.name))
                }
                other => other,
            });
        }
        Ok(id)
    }

    async fn create_container(&self, config: &ContainerConfig) -> Result<String> {
        self.create_named(&config.name, &config.image, container_create_body(config))
            .await
    }

    async fn start_container(&self, id: &str) -> Result<()> {
        self.docker
            .start_container(id, None)
            .await
            .map_err(|e| start_error(e, id))
    }

    async fn stop_container(&self, id: &str, grace: Duration) -> Result<()> {
        let seconds = grace_seconds(grace);
        let options = StopContainerOptionsBuilder::default().t(seconds).build();
        let client = self
            .docker
            .clone()
            .with_timeout(stop_request_timeout(grace, self.docker.timeout()));
        match client.stop_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if matches!(status_of(&e), Some(304) | Some(404)) => Ok(()),
            Err(e) => Err(map_err(e, &format!("container {id}"))),
        }
    }

    async fn remove_container(&self, id: &str) -> Result<()> {
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        match self.docker.remove_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if status_of(&e) == Some(404) => Ok(()),
            Err(DockerError::DockerResponseServerError { message, .. })
                if message.contains("already in progress") =>
            {
                Ok(())
            }
            Err(e) => Err(map_err(e, &format!("container {id}"))),
        }
    }

    async fn exec_stream(
        &self,
        id: &str,
        cmd: &[String],
        options: super::StreamOptions,
    ) -> Result<(String, super::Attached)> {
        use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
        let create = CreateExecOptions {
            attach_stdin: Some(options.stdin),
            attach_stdout: Some(options.stdout),
            attach_stderr: Some(options.stderr),
            tty: Some(options.tty),
            cmd: Some(cmd.to_vec()),
            ..Default::default()
        };
        let object = format!("container {id}");
        let exec = self
            .docker
            .create_exec(id, create)
            .await
            .map_err(|e| map_err(e, &object))?;
        let start = StartExecOptions {
            detach: false,
            tty: options.tty,
            output_capacity: None,
        };
        match self
            .docker
            .start_exec(&exec.id, Some(start))
            .await
            .map_err(|e| map_err(e, &format!("exec in container {id}")))?
        {
            StartExecResults::Attached { output, input } => {
                Ok((exec.id, attached(output, input, id)))
            }
            StartExecResults::Detached => Err(RuntimeError::Other(format!(
                "exec in container {id} started detached"
            ))),
        }
    }

    async fn exec_state(&self, exec_id: &str) -> Result<super::ExecState> {
        let inspect = self
            .docker
            .inspect_exec(exec_id)
            .await
            .map_err(|e| map_err(e, &format!("exec {exec_id}")))?;
        Ok(super::ExecState {
            running: inspect.running.unwrap_or(false),
            exit_code: inspect.exit_code,
            pid: inspect.pid.filter(|p| *p > 0),
        })
    }

    async fn resize_exec(&self, exec_id: &str, width: u16, height: u16) -> Result<()> {
        self.docker
            .resize_exec(exec_id, bollard::exec::ResizeExecOptions { height, width })
            .await
            .map_err(|e| map_err(e, &format!("exec {exec_id}")))
    }

    async fn attach(&self, id: &str, options: super::StreamOptions) -> Result<super::Attached> {
        let opts = bollard::query_parameters::AttachContainerOptionsBuilder::new()
            .stream(true)
            .logs(false)
            .stdin(options.stdin)
            .stdout(options.stdout)
            .stderr(options.stderr)
            .build();
        let r = self
            .docker
            .attach_container(id, Some(opts))
            .await
            .map_err(|e| map_err(e, &format!("container {id}")))?;
        Ok(attached(r.output, r.input, id))
    }

    async fn resize_container(&self, id: &str, width: u16, height: u16) -> Result<()> {
        let opts = bollard::query_parameters::ResizeContainerTTYOptions {
            h: i32::from(height),
            w: i32::from(width),
        };
        self.docker
            .resize_container_tty(id, opts)
            .await
            .map_err(|e| map_err(e, &format!("container {id}")))
    }

    async fn exec(&self, id: &str, cmd: &[String], timeout: Duration) -> Result<ExecResult> {
        use bollard::exec::{CreateExecOptions, StartExecResults};
        let options = CreateExecOptions {
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            cmd: Some(cmd.to_vec()),
            ..Default::default()
        };
        let exec = self
            .docker
            .create_exec(id, options)
            .await
            .map_err(|e| map_err(e, &format!("container {id}")))?;
        let run = async {
            let mut output = Vec::new();
            if let StartExecResults::Attached {
                output: mut stream, ..
            } = self
                .docker
                .start_exec(&exec.id, None)
                .await
                .map_err(|e| map_err(e, &format!("exec in container {id}")))?
            {
                while let Some(chunk) = stream.next().await {
                    let chunk =
                        chunk.map_err(|e| map_err(e, &format!("exec in container {id}")))?;
                    let room = EXEC_OUTPUT_LIMIT.saturating_sub(output.len());
                    let bytes = chunk.into_bytes();
                    output.extend_from_slice(&bytes[..bytes.len().min(room)]);
                }
            }
            let inspect = self
                .docker
                .inspect_exec(&exec.id)
                .await
                .map_err(|e| map_err(e, &format!("exec in container {id}")))?;
            Ok::<_, RuntimeError>(ExecResult {
                exit_code: inspect.exit_code,
                output: String::from_utf8_lossy(&output).into_owned(),
                timed_out: false,
            })
        };
        match tokio::time::timeout(timeout, run).await {
            Ok(result) => result,
            Err(_) => Ok(ExecResult {
                exit_code: None,
                output: String::new(),
                timed_out: true,
            }),
        }
    }

    async fn stats(&self, id: &str) -> Result<super::ContainerStats> {
        let options = bollard::query_parameters::StatsOptions {
            stream: false,
            one_shot: true,
        };
        let mut stream = self.docker.stats(id, Some(options));
        let sample = match stream.next().await {
            Some(Ok(s)) => s,
            Some(Err(e)) => return Err(map_err(e, id)),
            None => return Err(RuntimeError::NotFound(format!("stats of container {id}"))),
        };
        Ok(stats_of(&sample))
    }

    fn logs(&self, id: &str, options: LogOptions) -> BoxStream<'static, Result<bytes::Bytes>> {
        // Docker's `since` is whole seconds: ask from the second before and
        // drop the earlier lines by their timestamps (asked for even when the
        // caller does not want them, then cut off again).
        let mut builder = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .follow(options.follow)
            .timestamps(options.timestamps || options.since.is_some());
        if let Some(since) = options.since {
            let secs = i32::try_from(since.as_second()).unwrap_or(i32::MAX).max(0);
            builder = builder.since(secs);
        }
        if let Some(tail) = options.tail {
            builder = builder.tail(&tail.to_string());
        }
        let what = format!("container {id}");
        let stream = self
            .docker
            .logs(id, Some(builder.build()))
            .map(move |r| r.map(|o| o.into_bytes()).map_err(|e| map_err(e, &what)));
        match options.since {
            None => stream.boxed(),
            Some(since) => {
                let keep = options.timestamps;
                stream
                    .filter_map(move |r| async move {
                        match r {
                            Ok(chunk) => {
                                let kept = lines_since(&chunk, since, keep);
                                (!kept.is_empty()).then_some(Ok(kept))
                            }
                            Err(e) => Some(Err(e)),
                        }
                    })
                    .boxed()
            }
        }
    }

    fn events(&self, since_nanos: Option<i64>) -> BoxStream<'static, Result<RuntimeEvent>> {
        let filters = HashMap::from([
            ("type".to_string(), vec!["container".to_string()]),
            (
                "label".to_string(),
                vec![format!("{}=true", labels::MANAGED)],
            ),
        ]);
        let options = EventsOptions {
            since: since_nanos.map(format_since),
            until: None,
            filters: Some(filters),
        };
        self.docker
            .events(Some(options))
            .filter_map(|item| async move {
                match item {
                    Ok(message) => event_from_message(message).map(Ok),
                    Err(e) => Some(Err(map_err(e, "docker events"))),
                }
            })
            .boxed()
    }
}

/// The lines of a timestamped log chunk written at or after `since`, with
/// their timestamps when `keep_timestamps` (Docker prefixes each line with
/// an RFC 3339 time and a space). A line whose time cannot be read is kept.
fn lines_since(chunk: &[u8], since: Timestamp, keep_timestamps: bool) -> bytes::Bytes {
    let mut out = Vec::with_capacity(chunk.len());
    for line in chunk.split_inclusive(|b| *b == b'\n') {
        let space = line.iter().position(|b| *b == b' ');
        let stamp = space
            .and_then(|i| std::str::from_utf8(&line[..i]).ok())
            .and_then(|t| t.parse::<Timestamp>().ok());
        match (stamp, space) {
            (Some(t), _) if t < since => {}
            (Some(_), Some(i)) if !keep_timestamps => out.extend_from_slice(&line[i + 1..]),
            _ => out.extend_from_slice(line),
        }
    }
    bytes::Bytes::from(out)
}

/// The socket path of a `unix://` endpoint or a bare absolute path.
fn unix_socket_path(endpoint: &str) -> Option<&str> {
    if let Some(path) = endpoint.strip_prefix("unix://") {
        Some(path)
    } else if endpoint.starts_with('/') {
        Some(endpoint)
    } else {
        None
    }
}

/// The HTTP status of a Docker API error, if the daemon answered at all.
fn status_of(e: &DockerError) -> Option<u16> {
    match e {
        DockerError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// Pull progress from Docker's per-layer messages, logged and reported at
/// most every [`crate::registry::progress_period`] (2 s) as bytes done /
/// total.
struct PullProgress {
    image: String,
    /// Layer id → (current, total) bytes.
    layers: HashMap<String, (i64, i64)>,
    last: std::time::Instant,
}

impl PullProgress {
    fn new(image: &str) -> Self {
        PullProgress {
            image: image.to_string(),
            layers: HashMap::new(),
            last: std::time::Instant::now(),
        }
    }

    fn total(&self) -> i64 {
        self.layers.values().map(|(_, t)| t).sum()
    }

    fn observe(
        &mut self,
        info: &bollard::models::CreateImageInfo,
        report: &super::PullProgressFn<'_>,
    ) {
        let (Some(id), Some(detail)) = (&info.id, &info.progress_detail) else {
            return;
        };
        if let (Some(current), Some(total)) = (detail.current, detail.total) {
            if info.status.as_deref() == Some("Downloading") {
                self.layers.insert(id.clone(), (current, total));
            }
        }
        if self.last.elapsed() >= crate::registry::progress_period() && !self.layers.is_empty() {
            self.last = std::time::Instant::now();
            let done: i64 = self.layers.values().map(|(c, _)| c).sum();
            tracing::info!(image = %self.image, bytes_done = done, bytes_total = self.total(),
                "pulling image");
            report(done, self.total());
        }
    }
}

/// Docker's stats to ours: the working set is usage minus inactive file
/// pages (cgroup v1 `total_inactive_file`, v2 `inactive_file`), as the
/// kubelet computes it.
fn stats_of(s: &bollard::models::ContainerStatsResponse) -> super::ContainerStats {
    let cpu = (s.cpu_stats.as_ref())
        .and_then(|c| c.cpu_usage.as_ref())
        .and_then(|u| u.total_usage)
        .unwrap_or(0);
    let memory = s.memory_stats.as_ref();
    let usage = memory.and_then(|m| m.usage).unwrap_or(0);
    let detail = memory.and_then(|m| m.stats.as_ref());
    let stat = |keys: &[&str]| detail.and_then(|d| keys.iter().find_map(|k| d.get(*k).copied()));
    let inactive = stat(&["total_inactive_file", "inactive_file"]).unwrap_or(0);
    super::ContainerStats {
        cpu_usage_nanos: cpu,
        memory_usage_bytes: usage,
        memory_working_set_bytes: usage.saturating_sub(inactive),
        memory_rss_bytes: stat(&["total_rss", "rss", "anon"]),
    }
}

/// bollard's attached streams as the runtime-neutral [`super::Attached`].
fn attached(
    output: std::pin::Pin<
        Box<
            dyn futures_util::Stream<Item = Result<bollard::container::LogOutput, DockerError>>
                + Send,
        >,
    >,
    input: std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
    id: &str,
) -> super::Attached {
    use bollard::container::LogOutput;
    let object = format!("stream of container {id}");
    let output = output
        .map(move |chunk| match chunk {
            Ok(LogOutput::StdErr { message }) => Ok(super::StreamChunk::Stderr(message)),
            Ok(
                LogOutput::StdOut { message }
                | LogOutput::Console { message }
                | LogOutput::StdIn { message },
            ) => Ok(super::StreamChunk::Stdout(message)),
            Err(e) => Err(map_err(e, &object)),
        })
        .boxed();
    super::Attached { output, input }
}

/// Maps a bollard error: transport failures ⇒ `Unavailable`, 404 ⇒
/// `NotFound(object)`, anything else ⇒ `Other` with Docker's message.
fn map_err(e: DockerError, object: &str) -> RuntimeError {
    match e {
        DockerError::DockerResponseServerError {
            status_code: 404, ..
        } => RuntimeError::NotFound(object.to_string()),
        DockerError::DockerResponseServerError { message, .. } => RuntimeError::Other(message),
        DockerError::DockerStreamError { error } => RuntimeError::Other(error),
        DockerError::HyperLegacyError { .. }
        | DockerError::HyperResponseError { .. }
        | DockerError::IOError { .. }
        | DockerError::SocketNotFoundError(_)
        | DockerError::RequestTimeoutError => {
            RuntimeError::Unavailable(format!("docker ({object}): {e}"))
        }
        other => RuntimeError::Other(other.to_string()),
    }
}

/// The bare message of an error, without the variant's prefix.
fn error_message(e: &RuntimeError) -> String {
    match e {
        RuntimeError::NotFound(what) => format!("{what} not found"),
        RuntimeError::ImagePull { reason, .. } => reason.clone(),
        RuntimeError::CannotRun(m) | RuntimeError::Unavailable(m) | RuntimeError::Other(m) => {
            m.clone()
        }
    }
}

/// Errors of `POST /containers/create`. A missing image is `NotFound(image …)`;
/// a missing sandbox to join (Docker answers 400 "No such container") is
/// `NotFound(container …)`, so callers can recreate the sandbox.
fn create_error(e: DockerError, name: &str, image: &str) -> RuntimeError {
    let (status_code, message) = match e {
        DockerError::DockerResponseServerError {
            status_code,
            message,
        } => (status_code, message),
        other => return map_err(other, &format!("container {name}")),
    };
    if message.contains("No such image") {
        return RuntimeError::NotFound(format!("image {image}"));
    }
    if let Some(missing) = message.strip_prefix("No such container: ") {
        return RuntimeError::NotFound(format!("container {missing} (needed by {name})"));
    }
    match status_code {
        404 => RuntimeError::NotFound(format!("{message} (creating {name})")),
        400 => RuntimeError::CannotRun(format!("cannot create container {name}: {message}")),
        _ => RuntimeError::Other(format!("cannot create container {name}: {message}")),
    }
}

/// Errors of `POST /containers/{id}/start`: whatever the daemon refused is `CannotRun`.
fn start_error(e: DockerError, id: &str) -> RuntimeError {
    match e {
        DockerError::DockerResponseServerError {
            status_code: 404, ..
        } => RuntimeError::NotFound(format!("container {id}")),
        DockerError::DockerResponseServerError { message, .. } => RuntimeError::CannotRun(message),
        other => map_err(other, &format!("container {id}")),
    }
}

/// Splits an image reference into the repository and the tag or digest that
/// Docker's `fromImage`/`tag` (and import's `repo`/`tag`) parameters want.
/// A reference without either means `latest` (Docker would pull every tag).
fn split_image_ref(image: &str) -> (&str, &str) {
    if let Some((name, digest)) = image.split_once('@') {
        // `name:tag@digest`: the digest wins, as Kubernetes and Docker do.
        return (strip_tag(name).0, digest);
    }
    let (name, tag) = strip_tag(image);
    (name, tag.unwrap_or("latest"))
}

/// `repo:tag` ⇒ (`repo`, Some(`tag`)); a `:` before the last `/` is a registry port.
fn strip_tag(name: &str) -> (&str, Option<&str>) {
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[last_slash..].rfind(':') {
        Some(i) => (&name[..last_slash + i], Some(&name[last_slash + i + 1..])),
        None => (name, None),
    }
}

/// Whole seconds for Docker's stop timeout, rounded up.
fn grace_seconds(grace: Duration) -> i32 {
    let secs = grace.as_secs() + u64::from(grace.subsec_nanos() > 0);
    i32::try_from(secs).unwrap_or(i32::MAX)
}

/// The request timeout of a stop: the daemon answers only after the
/// container has stopped, so it must outlast the grace period.
fn stop_request_timeout(grace: Duration, client_timeout: Duration) -> Duration {
    let grace = Duration::from_secs(u64::try_from(grace_seconds(grace)).unwrap_or(0));
    (grace + STOP_TIMEOUT_MARGIN).max(client_timeout)
}

/// Docker's `since` for events: `seconds.nanoseconds`.
fn format_since(nanos: i64) -> String {
    format!(
        "{}.{:09}",
        nanos.div_euclid(1_000_000_000),
        nanos.rem_euclid(1_000_000_000)
    )
}

/// Parses a Docker RFC 3339 time; Docker's zero time and garbage are `None`.
fn parse_docker_time(s: &str) -> Option<Timestamp> {
    if s.is_empty() || s.starts_with(DOCKER_ZERO_TIME_PREFIX) {
        return None;
    }
    s.parse().ok()
}

/// Maps an inspect response; `None` without an id.
fn container_info_from_inspect(resp: ContainerInspectResponse) -> Option<ContainerInfo> {
    let id = resp.id?;
    let state = resp.state.unwrap_or_default();
    let running = state.running.unwrap_or(false);
    let our_state = match state.status {
        Some(ContainerStateStatusEnum::CREATED) => ContainerState::Created,
        Some(
            ContainerStateStatusEnum::RUNNING
            | ContainerStateStatusEnum::PAUSED
            | ContainerStateStatusEnum::RESTARTING
            | ContainerStateStatusEnum::STOPPING,
        ) => ContainerState::Running,
        Some(ContainerStateStatusEnum::EXITED | ContainerStateStatusEnum::DEAD) => {
            ContainerState::Exited
        }
        Some(ContainerStateStatusEnum::REMOVING) if running => ContainerState::Running,
        Some(ContainerStateStatusEnum::REMOVING) => ContainerState::Exited,
        Some(ContainerStateStatusEnum::EMPTY) | None if running => ContainerState::Running,
        Some(ContainerStateStatusEnum::EMPTY) | None => ContainerState::Unknown,
    };
    let raw_exit = state.exit_code.unwrap_or(0);
    // A running container reports 0; a created one that failed to start
    // carries the code Docker gave the failure (127 for a missing executable).
    let exit_code = match our_state {
        ContainerState::Exited => Some(raw_exit),
        ContainerState::Created if raw_exit != 0 => Some(raw_exit),
        _ => None,
    };
    let config = resp.config.unwrap_or_default();
    let ip = resp
        .network_settings
        .and_then(|n| n.networks)
        .and_then(|networks| {
            let mut networks: Vec<_> = networks.into_iter().collect();
            networks.sort_by(|a, b| a.0.cmp(&b.0));
            networks
                .into_iter()
                .filter_map(|(_, endpoint)| endpoint.ip_address)
                .find(|ip| !ip.is_empty())
        });
    Some(ContainerInfo {
        id,
        name: resp
            .name
            .map(|n| n.trim_start_matches('/').to_string())
            .unwrap_or_default(),
        labels: config.labels.unwrap_or_default().into_iter().collect(),
        image: config.image.unwrap_or_default(),
        image_id: resp.image.unwrap_or_default(),
        state: our_state,
        exit_code,
        oom_killed: state.oom_killed.unwrap_or(false),
        error: state.error.filter(|e| !e.is_empty()),
        created_at: resp.created.as_deref().and_then(parse_docker_time),
        started_at: state.started_at.as_deref().and_then(parse_docker_time),
        finished_at: state.finished_at.as_deref().and_then(parse_docker_time),
        ip,
    })
}

/// Maps an entry of Docker's container list; `None` without an id. Only
/// what the list carries: no exit code, times (but creation, in seconds), IP
/// or error.
fn container_info_from_summary(s: ContainerSummary) -> Option<ContainerInfo> {
    use bollard::models::ContainerSummaryStateEnum as S;
    let id = s.id?;
    let state = match s.state {
        Some(S::CREATED) => ContainerState::Created,
        Some(S::RUNNING | S::PAUSED | S::RESTARTING | S::STOPPING) => ContainerState::Running,
        Some(S::EXITED | S::DEAD | S::REMOVING) => ContainerState::Exited,
        Some(S::EMPTY) | None => ContainerState::Unknown,
    };
    Some(ContainerInfo {
        id,
        name: s
            .names
            .into_iter()
            .flatten()
            .next()
            .map(|n| n.trim_start_matches('/').to_string())
            .unwrap_or_default(),
        labels: s.labels.unwrap_or_default().into_iter().collect(),
        image: s.image.unwrap_or_default(),
        image_id: s.image_id.unwrap_or_default(),
        state,
        exit_code: None,
        oom_killed: false,
        error: None,
        created_at: s.created.and_then(|c| Timestamp::from_second(c).ok()),
        started_at: None,
        finished_at: None,
        ip: None,
    })
}

fn image_info_from_inspect(inspect: ImageInspect) -> ImageInfo {
    ImageInfo {
        id: inspect.id.unwrap_or_default(),
        repo_tags: inspect.repo_tags.unwrap_or_default(),
        repo_digests: inspect.repo_digests.unwrap_or_default(),
    }
}

/// Maps one events-stream message; `None` for messages without a container id.
fn event_from_message(message: EventMessage) -> Option<RuntimeEvent> {
    let actor = message.actor?;
    let container_id = actor.id.filter(|id| !id.is_empty())?;
    let attributes = actor.attributes.unwrap_or_default();
    // `exec_start: sh -c …`, `health_status: healthy`: keep the verb.
    let action = message
        .action
        .unwrap_or_default()
        .split(|c: char| c == ':' || c.is_whitespace())
        .next()
        .unwrap_or_default()
        .to_string();
    let time_nanos = message
        .time_nano
        .or_else(|| message.time.map(|s| s.saturating_mul(1_000_000_000)))
        .unwrap_or(0);
    Some(RuntimeEvent {
        container_id,
        pod_uid: attributes.get(labels::POD_UID).cloned(),
        exit_code: attributes.get("exitCode").and_then(|c| c.parse().ok()),
        action,
        time_nanos,
    })
}

fn non_empty(v: &[String]) -> Option<Vec<String>> {
    (!v.is_empty()).then(|| v.to_vec())
}

fn labels_map(labels: &BTreeMap<String, String>) -> Option<HashMap<String, String>> {
    Some(labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

/// The create request of a pause container.
fn sandbox_create_body(config: &SandboxConfig) -> ContainerCreateBody {
    let mut port_bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    if !config.host_network {
        for p in &config.port_mappings {
            let key = format!("{}/{}", p.container_port, p.protocol.to_lowercase());
            let binding = PortBinding {
                host_ip: (!p.host_ip.is_empty()).then(|| p.host_ip.clone()),
                host_port: Some(p.host_port.to_string()),
            };
            port_bindings
                .entry(key)
                .or_default()
                .get_or_insert_with(Vec::new)
                .push(binding);
        }
    }
    let mut exposed_ports: Vec<String> = port_bindings.keys().cloned().collect();
    exposed_ports.sort();
    let host_config = HostConfig {
        network_mode: Some(
            if config.host_network {
                "host"
            } else {
                "default"
            }
            .to_string(),
        ),
        // "shareable" lets app containers join the IPC namespace (Docker's
        // default "private" refuses them).
        ipc_mode: Some(if config.host_ipc { "host" } else { "shareable" }.to_string()),
        pid_mode: config.host_pid.then(|| "host".to_string()),
        port_bindings: (!port_bindings.is_empty()).then_some(port_bindings),
        extra_hosts: non_empty(&config.extra_hosts),
        dns: non_empty(&config.dns_servers),
        dns_search: non_empty(&config.dns_searches),
        dns_options: non_empty(&config.dns_options),
        ..Default::default()
    };
    ContainerCreateBody {
        image: Some(config.image.clone()),
        // Docker rejects a hostname together with the host's network.
        hostname: (!config.host_network && !config.hostname.is_empty())
            .then(|| config.hostname.clone()),
        labels: labels_map(&config.labels),
        exposed_ports: (!exposed_ports.is_empty()).then_some(exposed_ports),
        host_config: Some(host_config),
        ..Default::default()
    }
}

/// `Binds` strings where they can express the mount (Docker then creates a
/// missing host directory, as the kubelet's dockershim did); `None` when a
/// path contains `:` or `,` and needs the `Mounts` API instead.
fn bind_spec(m: &Mount) -> Option<String> {
    let awkward = |p: &str| p.contains(':') || p.contains(',');
    if awkward(&m.host_path) || awkward(&m.container_path) {
        return None;
    }
    let mut options = Vec::new();
    if m.read_only {
        options.push("ro");
    }
    if let Some(p) = m.propagation.as_deref().filter(|p| !p.is_empty()) {
        options.push(p);
    }
    let mut spec = format!("{}:{}", m.host_path, m.container_path);
    if !options.is_empty() {
        spec.push(':');
        spec.push_str(&options.join(","));
    }
    Some(spec)
}

fn mount_spec(m: &Mount) -> DockerMount {
    let propagation = m
        .propagation
        .as_deref()
        .and_then(|p| p.parse::<MountBindOptionsPropagationEnum>().ok());
    DockerMount {
        typ: Some(MountType::BIND),
        source: Some(m.host_path.clone()),
        target: Some(m.container_path.clone()),
        read_only: Some(m.read_only),
        bind_options: propagation.map(|p| MountBindOptions {
            propagation: Some(p),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The create request of an app container joined to its sandbox.
fn container_create_body(config: &ContainerConfig) -> ContainerCreateBody {
    let join = format!("container:{}", config.sandbox_id);
    let pid_mode = if config.host_pid {
        Some("host".to_string())
    } else if config.share_pid {
        Some(join.clone())
    } else {
        None
    };
    let mut binds = Vec::new();
    let mut mounts = Vec::new();
    for m in &config.mounts {
        match bind_spec(m) {
            Some(spec) => binds.push(spec),
            None => mounts.push(mount_spec(m)),
        }
    }
    let security = &config.security;
    let resources = &config.resources;
    let host_config = HostConfig {
        network_mode: Some(join.clone()),
        ipc_mode: Some(join),
        pid_mode,
        binds: (!binds.is_empty()).then_some(binds),
        mounts: (!mounts.is_empty()).then_some(mounts),
        cpu_shares: resources.cpu_shares,
        cpu_quota: resources.cpu_quota,
        cpu_period: resources.cpu_period,
        memory: resources.memory_limit,
        privileged: Some(security.privileged),
        readonly_rootfs: Some(security.read_only_rootfs),
        cap_add: non_empty(&security.cap_add),
        cap_drop: non_empty(&security.cap_drop),
        group_add: non_empty(&security.group_add),
        ..Default::default()
    };
    ContainerCreateBody {
        image: Some(config.image.clone()),
        // Kubernetes `command` replaces the image ENTRYPOINT and `args` the
        // image CMD. Docker does the same with Entrypoint/Cmd, including the
        // subtle case: when Entrypoint is given, the image's CMD is dropped
        // rather than appended, exactly as Kubernetes ignores the image CMD
        // when only `command` is set. An absent (or empty) field keeps the
        // image's value in both systems.
        entrypoint: config.command.clone(),
        cmd: config.args.clone(),
        env: Some(config.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        working_dir: config.working_dir.clone().filter(|w| !w.is_empty()),
        user: security.user.clone().filter(|u| !u.is_empty()),
        labels: labels_map(&config.labels),
        open_stdin: Some(config.stdin),
        stdin_once: Some(config.stdin_once),
        tty: Some(config.tty),
        host_config: Some(host_config),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{
        ContainerConfig as DockerContainerConfig, ContainerState as DockerState, EndpointSettings,
        EventActor, NetworkSettings,
    };

    #[test]
    fn log_lines_before_since_are_dropped_and_timestamps_cut_unless_wanted() {
        let chunk = b"2026-01-01T00:00:01.100000000Z early\n2026-01-01T00:00:01.900000000Z late\n";
        let since: Timestamp = "2026-01-01T00:00:01.5Z".parse().expect("time");
        assert_eq!(&lines_since(chunk, since, false)[..], b"late\n");
        assert_eq!(
            &lines_since(chunk, since, true)[..],
            b"2026-01-01T00:00:01.900000000Z late\n"
        );
        assert_eq!(&lines_since(b"no stamp\n", since, false)[..], b"no stamp\n");
    }

    fn inspect(status: ContainerStateStatusEnum) -> ContainerInspectResponse {
        ContainerInspectResponse {
            id: Some("abc123".into()),
            name: Some("/k8s_web_pod_default_uid_0".into()),
            created: Some("2024-05-06T07:08:09.123456789Z".into()),
            image: Some("sha256:feed".into()),
            state: Some(DockerState {
                status: Some(status),
                running: Some(status == ContainerStateStatusEnum::RUNNING),
                exit_code: Some(0),
                started_at: Some("2024-05-06T07:08:10.5Z".into()),
                finished_at: Some("0001-01-01T00:00:00Z".into()),
                error: Some(String::new()),
                oom_killed: Some(false),
                ..Default::default()
            }),
            config: Some(DockerContainerConfig {
                image: Some("rkubelet/busybox:local".into()),
                labels: Some(HashMap::from([
                    ("io.rkubelet.managed".to_string(), "true".to_string()),
                    ("io.kubernetes.pod.uid".to_string(), "uid".to_string()),
                ])),
                ..Default::default()
            }),
            network_settings: Some(NetworkSettings {
                networks: Some(HashMap::from([(
                    "bridge".to_string(),
                    EndpointSettings {
                        ip_address: Some("172.17.0.5".into()),
                        ..Default::default()
                    },
                )])),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_running_container_maps_with_times_ip_and_labels() {
        let info = container_info_from_inspect(inspect(ContainerStateStatusEnum::RUNNING))
            .expect("has an id");
        assert_eq!(info.id, "abc123");
        assert_eq!(info.name, "k8s_web_pod_default_uid_0");
        assert_eq!(info.state, ContainerState::Running);
        assert_eq!(info.exit_code, None);
        assert_eq!(info.error, None);
        assert_eq!(info.image, "rkubelet/busybox:local");
        assert_eq!(info.image_id, "sha256:feed");
        assert_eq!(info.ip.as_deref(), Some("172.17.0.5"));
        assert_eq!(
            info.labels.get("io.kubernetes.pod.uid").map(String::as_str),
            Some("uid")
        );
        let created = info.created_at.expect("created");
        assert_eq!(created.as_second(), 1_714_979_289);
        assert_eq!(created.subsec_nanosecond(), 123_456_789);
        assert_eq!(info.started_at.expect("started").subsec_millisecond(), 500);
        assert_eq!(info.finished_at, None, "Docker's zero time means never");
    }

    #[test]
    fn an_exited_container_carries_its_exit_code_oom_and_error() {
        let mut resp = inspect(ContainerStateStatusEnum::EXITED);
        let state = resp.state.as_mut().expect("state");
        state.exit_code = Some(137);
        state.oom_killed = Some(true);
        state.finished_at = Some("2024-05-06T07:09:00Z".into());
        state.error = Some("boom".into());
        let info = container_info_from_inspect(resp).expect("has an id");
        assert_eq!(info.state, ContainerState::Exited);
        assert_eq!(info.exit_code, Some(137));
        assert!(info.oom_killed);
        assert_eq!(info.error.as_deref(), Some("boom"));
        assert!(info.finished_at.is_some());
    }

    #[test]
    fn docker_states_map_onto_ours() {
        use ContainerStateStatusEnum as S;
        let cases = [
            (S::CREATED, ContainerState::Created),
            (S::RUNNING, ContainerState::Running),
            (S::PAUSED, ContainerState::Running),
            (S::RESTARTING, ContainerState::Running),
            (S::EXITED, ContainerState::Exited),
            (S::DEAD, ContainerState::Exited),
            (S::REMOVING, ContainerState::Exited),
            (S::EMPTY, ContainerState::Unknown),
        ];
        for (docker, ours) in cases {
            let info = container_info_from_inspect(inspect(docker)).expect("has an id");
            assert_eq!(info.state, ours, "{docker:?}");
        }
    }

    #[test]
    fn a_created_container_that_failed_to_start_keeps_its_code_and_error() {
        let mut resp = inspect(ContainerStateStatusEnum::CREATED);
        let state = resp.state.as_mut().expect("state");
        state.exit_code = Some(127);
        state.error = Some("exec: \"nope\": executable file not found in $PATH".into());
        let info = container_info_from_inspect(resp).expect("has an id");
        assert_eq!(info.state, ContainerState::Created);
        assert_eq!(info.exit_code, Some(127));
        assert!(info
            .error
            .expect("error")
            .contains("executable file not found"));
    }

    #[test]
    fn containers_without_a_network_of_their_own_have_no_ip() {
        let mut resp = inspect(ContainerStateStatusEnum::RUNNING);
        resp.network_settings = Some(NetworkSettings {
            networks: Some(HashMap::from([(
                "host".to_string(),
                EndpointSettings {
                    ip_address: Some(String::new()),
                    ..Default::default()
                },
            )])),
            ..Default::default()
        });
        let info = container_info_from_inspect(resp).expect("has an id");
        assert_eq!(info.ip, None);
    }

    #[test]
    fn list_entries_map_to_brief_infos() {
        use bollard::models::ContainerSummaryStateEnum as S;
        let summary = |state| ContainerSummary {
            id: Some("c1".into()),
            names: Some(vec!["/k8s_POD_p_default_u_0".into()]),
            image: Some("rkubelet/pause:x".into()),
            labels: Some(HashMap::from([(
                "io.kubernetes.pod.uid".to_string(),
                "u".to_string(),
            )])),
            state: Some(state),
            created: Some(1_714_979_289),
            ..Default::default()
        };
        let info = container_info_from_summary(summary(S::RUNNING)).expect("has an id");
        assert_eq!(info.id, "c1");
        assert_eq!(info.name, "k8s_POD_p_default_u_0");
        assert_eq!(info.state, ContainerState::Running);
        assert_eq!(
            info.labels.get("io.kubernetes.pod.uid").map(String::as_str),
            Some("u")
        );
        assert_eq!(info.created_at.map(|t| t.as_second()), Some(1_714_979_289));
        assert_eq!(
            (info.exit_code, info.started_at, info.ip),
            (None, None, None)
        );
        for (state, ours) in [
            (S::CREATED, ContainerState::Created),
            (S::EXITED, ContainerState::Exited),
            (S::DEAD, ContainerState::Exited),
            (S::PAUSED, ContainerState::Running),
            (S::EMPTY, ContainerState::Unknown),
        ] {
            let info = container_info_from_summary(summary(state)).expect("has an id");
            assert_eq!(info.state, ours, "{state:?}");
        }
        let mut anonymous = summary(S::RUNNING);
        anonymous.id = None;
        assert_eq!(container_info_from_summary(anonymous), None);
    }

    #[test]
    fn an_inspect_without_an_id_is_skipped() {
        let mut resp = inspect(ContainerStateStatusEnum::RUNNING);
        resp.id = None;
        assert_eq!(container_info_from_inspect(resp), None);
    }

    #[test]
    fn image_references_split_into_repo_and_tag_or_digest() {
        assert_eq!(split_image_ref("busybox"), ("busybox", "latest"));
        assert_eq!(split_image_ref("busybox:1.36"), ("busybox", "1.36"));
        assert_eq!(
            split_image_ref("registry.k8s.io/pause:3.10"),
            ("registry.k8s.io/pause", "3.10")
        );
        assert_eq!(
            split_image_ref("localhost:5000/team/app"),
            ("localhost:5000/team/app", "latest")
        );
        assert_eq!(
            split_image_ref("localhost:5000/team/app:v2"),
            ("localhost:5000/team/app", "v2")
        );
        assert_eq!(
            split_image_ref("nginx@sha256:0123abcd"),
            ("nginx", "sha256:0123abcd")
        );
        assert_eq!(
            split_image_ref("localhost:5000/nginx:1.25@sha256:0123abcd"),
            ("localhost:5000/nginx", "sha256:0123abcd")
        );
    }

    #[test]
    fn docker_times_parse_and_the_zero_time_is_none() {
        assert_eq!(parse_docker_time("0001-01-01T00:00:00Z"), None);
        assert_eq!(parse_docker_time(""), None);
        assert_eq!(parse_docker_time("not a time"), None);
        let t = parse_docker_time("2024-01-02T03:04:05.000000006Z").expect("parses");
        assert_eq!(t.to_string(), "2024-01-02T03:04:05.000000006Z");
    }

    #[test]
    fn grace_periods_round_up_to_whole_seconds() {
        assert_eq!(grace_seconds(Duration::ZERO), 0);
        assert_eq!(grace_seconds(Duration::from_millis(1)), 1);
        assert_eq!(grace_seconds(Duration::from_secs(2)), 2);
        assert_eq!(grace_seconds(Duration::from_millis(2500)), 3);
        assert_eq!(grace_seconds(Duration::from_secs(u64::MAX)), i32::MAX);
    }

    #[test]
    fn stops_wait_longer_than_their_grace_period() {
        let default = DEFAULT_REQUEST_TIMEOUT;
        assert_eq!(
            stop_request_timeout(Duration::from_secs(30), default),
            default
        );
        assert_eq!(
            stop_request_timeout(Duration::from_secs(300), default),
            Duration::from_secs(330)
        );
        assert_eq!(
            stop_request_timeout(Duration::from_millis(2500), Duration::from_secs(1)),
            Duration::from_secs(33)
        );
    }

    #[test]
    fn since_is_seconds_dot_nanoseconds() {
        assert_eq!(
            format_since(1_700_000_000_000_000_042),
            "1700000000.000000042"
        );
        assert_eq!(format_since(5), "0.000000005");
    }

    #[test]
    fn events_keep_the_verb_pod_uid_and_exit_code() {
        let message = |action: &str, attributes: &[(&str, &str)]| EventMessage {
            action: Some(action.into()),
            actor: Some(EventActor {
                id: Some("c1".into()),
                attributes: Some(
                    attributes
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
            }),
            time: Some(1_700_000_000),
            time_nano: Some(1_700_000_000_123_456_789),
            ..Default::default()
        };
        let die = event_from_message(message(
            "die",
            &[("exitCode", "137"), ("io.kubernetes.pod.uid", "u1")],
        ))
        .expect("event");
        assert_eq!(die.container_id, "c1");
        assert_eq!(die.action, "die");
        assert_eq!(die.exit_code, Some(137));
        assert_eq!(die.pod_uid.as_deref(), Some("u1"));
        assert_eq!(die.time_nanos, 1_700_000_000_123_456_789);

        let exec = event_from_message(message("exec_start: sh -c true", &[])).expect("event");
        assert_eq!(exec.action, "exec_start");
        assert_eq!(exec.exit_code, None);
        assert_eq!(exec.pod_uid, None);
        let health = event_from_message(message("health_status: healthy", &[])).expect("event");
        assert_eq!(health.action, "health_status");

        let mut anonymous = message("start", &[]);
        anonymous.actor = None;
        assert_eq!(event_from_message(anonymous), None);
    }

    #[test]
    fn sandboxes_share_ipc_and_publish_host_ports() {
        let config = SandboxConfig {
            name: "k8s_POD_p_default_u_0".into(),
            image: "rkubelet/pause:test".into(),
            hostname: "p".into(),
            port_mappings: vec![
                super::super::PortMapping {
                    container_port: 80,
                    host_port: 8080,
                    protocol: "TCP".into(),
                    host_ip: String::new(),
                },
                super::super::PortMapping {
                    container_port: 80,
                    host_port: 8081,
                    protocol: "tcp".into(),
                    host_ip: "127.0.0.1".into(),
                },
            ],
            ..Default::default()
        };
        let body = sandbox_create_body(&config);
        let host = body.host_config.expect("host config");
        assert_eq!(host.ipc_mode.as_deref(), Some("shareable"));
        assert_eq!(host.network_mode.as_deref(), Some("default"));
        assert_eq!(host.pid_mode, None);
        assert_eq!(body.hostname.as_deref(), Some("p"));
        assert_eq!(body.exposed_ports, Some(vec!["80/tcp".to_string()]));
        let bindings = host
            .port_bindings
            .expect("bindings")
            .remove("80/tcp")
            .flatten()
            .expect("80/tcp");
        assert_eq!(bindings.len(), 2);
        assert_eq!(bindings[0].host_port.as_deref(), Some("8080"));
        assert_eq!(bindings[0].host_ip, None);
        assert_eq!(bindings[1].host_ip.as_deref(), Some("127.0.0.1"));
    }

    #[test]
    fn host_network_sandboxes_have_no_hostname_and_no_port_bindings() {
        let config = SandboxConfig {
            hostname: "p".into(),
            host_network: true,
            host_ipc: true,
            host_pid: true,
            port_mappings: vec![super::super::PortMapping {
                container_port: 80,
                host_port: 80,
                protocol: "tcp".into(),
                host_ip: String::new(),
            }],
            ..Default::default()
        };
        let body = sandbox_create_body(&config);
        let host = body.host_config.expect("host config");
        assert_eq!(body.hostname, None);
        assert_eq!(body.exposed_ports, None);
        assert_eq!(host.port_bindings, None);
        assert_eq!(host.network_mode.as_deref(), Some("host"));
        assert_eq!(host.ipc_mode.as_deref(), Some("host"));
        assert_eq!(host.pid_mode.as_deref(), Some("host"));
    }

    #[test]
    fn app_containers_join_the_sandbox_and_map_command_and_args() {
        let config = ContainerConfig {
            name: "k8s_c_p_default_u_0".into(),
            image: "img".into(),
            command: Some(vec!["sh".into(), "-c".into()]),
            args: None,
            env: vec![("A".into(), "1".into()), ("B".into(), "x=y".into())],
            sandbox_id: "sb".into(),
            share_pid: true,
            mounts: vec![
                Mount {
                    host_path: "/data".into(),
                    container_path: "/d".into(),
                    read_only: true,
                    propagation: Some("rslave".into()),
                },
                Mount {
                    host_path: "/plain".into(),
                    container_path: "/p".into(),
                    read_only: false,
                    propagation: None,
                },
                Mount {
                    host_path: "/odd:path".into(),
                    container_path: "/o".into(),
                    read_only: true,
                    propagation: None,
                },
            ],
            resources: super::super::Resources {
                cpu_shares: Some(512),
                cpu_quota: Some(50_000),
                cpu_period: Some(100_000),
                memory_limit: Some(64 << 20),
            },
            ..Default::default()
        };
        let body = container_create_body(&config);
        assert_eq!(
            body.entrypoint,
            Some(vec!["sh".to_string(), "-c".to_string()])
        );
        assert_eq!(body.cmd, None);
        assert_eq!(body.env, Some(vec!["A=1".to_string(), "B=x=y".to_string()]));
        let host = body.host_config.expect("host config");
        assert_eq!(host.network_mode.as_deref(), Some("container:sb"));
        assert_eq!(host.ipc_mode.as_deref(), Some("container:sb"));
        assert_eq!(host.pid_mode.as_deref(), Some("container:sb"));
        assert_eq!(
            host.binds,
            Some(vec![
                "/data:/d:ro,rslave".to_string(),
                "/plain:/p".to_string()
            ])
        );
        let mounts = host.mounts.expect("mounts");
        assert_eq!(mounts.len(), 1);
        assert_eq!(mounts[0].source.as_deref(), Some("/odd:path"));
        assert_eq!(mounts[0].read_only, Some(true));
        assert_eq!(host.cpu_shares, Some(512));
        assert_eq!(host.cpu_quota, Some(50_000));
        assert_eq!(host.memory, Some(64 << 20));

        let host_pid = ContainerConfig {
            host_pid: true,
            share_pid: true,
            ..config
        };
        let host = container_create_body(&host_pid)
            .host_config
            .expect("host config");
        assert_eq!(host.pid_mode.as_deref(), Some("host"));
    }

    #[test]
    fn docker_errors_map_onto_runtime_errors() {
        let server = |status_code: u16, message: &str| DockerError::DockerResponseServerError {
            status_code,
            message: message.into(),
        };
        assert_eq!(
            map_err(server(404, "No such container: x"), "container x"),
            RuntimeError::NotFound("container x".into())
        );
        assert_eq!(
            create_error(server(404, "No such image: img:latest"), "n", "img"),
            RuntimeError::NotFound("image img".into())
        );
        assert!(matches!(
            create_error(server(409, "Conflict. The container name \"/n\" is already in use"), "n", "img"),
            RuntimeError::Other(m) if m.contains("already in use")
        ));
        assert_eq!(
            create_error(server(400, "No such container: sb1"), "n", "img"),
            RuntimeError::NotFound("container sb1 (needed by n)".into())
        );
        assert!(matches!(
            create_error(server(400, "invalid mount config"), "n", "img"),
            RuntimeError::CannotRun(m) if m.contains("invalid mount config")
        ));
        assert!(matches!(
            start_error(server(400, "executable file not found in $PATH"), "x"),
            RuntimeError::CannotRun(m) if m.contains("executable file not found")
        ));
        assert!(matches!(
            map_err(DockerError::SocketNotFoundError("/nope".into()), "x"),
            RuntimeError::Unavailable(_)
        ));
        assert!(matches!(
            map_err(DockerError::RequestTimeoutError, "x"),
            RuntimeError::Unavailable(_)
        ));
    }

    #[test]
    fn endpoints_are_unix_sockets_or_tcp() {
        assert_eq!(
            unix_socket_path("unix:///var/run/docker.sock"),
            Some("/var/run/docker.sock")
        );
        assert_eq!(
            unix_socket_path("/run/docker.sock"),
            Some("/run/docker.sock")
        );
        assert_eq!(unix_socket_path("tcp://127.0.0.1:2375"), None);
    }
}
