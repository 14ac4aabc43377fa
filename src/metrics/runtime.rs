//! [`Metered`]: a [`ContainerRuntime`] that times every call of the one it
//! wraps into `rkubelet_docker_request_duration_seconds{operation_type}` and
//! counts failures in `rkubelet_docker_request_errors_total`. Streams (logs,
//! events) are passed through untimed.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures_util::stream::BoxStream;

use super::{global, OperationLabel};
use crate::runtime::{
    Attached, ContainerConfig, ContainerInfo, ContainerRuntime, ContainerStats, ExecResult,
    ExecState, ImageInfo, LogOptions, Result, RuntimeEvent, SandboxConfig, StreamOptions,
};

/// Times the calls of the runtime it wraps.
pub struct Metered {
    inner: Arc<dyn ContainerRuntime>,
}

impl Metered {
    pub fn new(inner: Arc<dyn ContainerRuntime>) -> Metered {
        Metered { inner }
    }
}

async fn timed<T>(operation: &str, call: impl Future<Output = Result<T>>) -> Result<T> {
    let start = Instant::now();
    let result = call.await;
    let labels = OperationLabel {
        operation_type: operation.to_string(),
    };
    let m = global();
    m.docker_duration
        .get_or_create(&labels)
        .observe(start.elapsed().as_secs_f64());
    if result.is_err() {
        m.docker_errors.get_or_create(&labels).inc();
    }
    result
}

#[async_trait]
impl ContainerRuntime for Metered {
    async fn version(&self) -> Result<String> {
        timed("version", self.inner.version()).await
    }
    async fn list_containers(&self, pod_uid: Option<&str>) -> Result<Vec<ContainerInfo>> {
        timed("list_containers", self.inner.list_containers(pod_uid)).await
    }
    async fn list_brief(&self, pod_uid: Option<&str>) -> Result<Vec<ContainerInfo>> {
        timed("list_brief", self.inner.list_brief(pod_uid)).await
    }
    async fn inspect_container(&self, id: &str) -> Result<Option<ContainerInfo>> {
        timed("inspect_container", self.inner.inspect_container(id)).await
    }
    async fn inspect_image(&self, image: &str) -> Result<Option<ImageInfo>> {
        timed("inspect_image", self.inner.inspect_image(image)).await
    }
    async fn pull_image(&self, image: &str) -> Result<ImageInfo> {
        timed("pull_image", self.inner.pull_image(image)).await
    }
    async fn pull_image_with_auth(
        &self,
        image: &str,
        auth: Option<&crate::registry::RegistryAuth>,
        progress: &crate::runtime::PullProgressFn<'_>,
    ) -> Result<ImageInfo> {
        timed(
            "pull_image",
            self.inner.pull_image_with_auth(image, auth, progress),
        )
        .await
    }
    async fn ensure_infra_image(&self, image: &str) -> Result<ImageInfo> {
        timed("ensure_infra_image", self.inner.ensure_infra_image(image)).await
    }
    async fn run_sandbox(&self, config: &SandboxConfig) -> Result<String> {
        timed("run_sandbox", self.inner.run_sandbox(config)).await
    }
    async fn create_container(&self, config: &ContainerConfig) -> Result<String> {
        timed("create_container", self.inner.create_container(config)).await
    }
    async fn start_container(&self, id: &str) -> Result<()> {
        timed("start_container", self.inner.start_container(id)).await
    }
    async fn stop_container(&self, id: &str, grace: Duration) -> Result<()> {
        timed("stop_container", self.inner.stop_container(id, grace)).await
    }
    async fn remove_container(&self, id: &str) -> Result<()> {
        timed("remove_container", self.inner.remove_container(id)).await
    }
    async fn exec(&self, id: &str, cmd: &[String], timeout: Duration) -> Result<ExecResult> {
        timed("exec", self.inner.exec(id, cmd, timeout)).await
    }
    async fn stats(&self, id: &str) -> Result<ContainerStats> {
        timed("stats", self.inner.stats(id)).await
    }
    async fn exec_stream(
        &self,
        id: &str,
        cmd: &[String],
        options: StreamOptions,
    ) -> Result<(String, Attached)> {
        timed("exec_stream", self.inner.exec_stream(id, cmd, options)).await
    }
    async fn exec_state(&self, exec_id: &str) -> Result<ExecState> {
        timed("exec_state", self.inner.exec_state(exec_id)).await
    }
    async fn resize_exec(&self, exec_id: &str, width: u16, height: u16) -> Result<()> {
        timed(
            "resize_exec",
            self.inner.resize_exec(exec_id, width, height),
        )
        .await
    }
    async fn attach(&self, id: &str, options: StreamOptions) -> Result<Attached> {
        timed("attach", self.inner.attach(id, options)).await
    }
    async fn resize_container(&self, id: &str, width: u16, height: u16) -> Result<()> {
        timed(
            "resize_container",
            self.inner.resize_container(id, width, height),
        )
        .await
    }
    fn logs(&self, id: &str, options: LogOptions) -> BoxStream<'static, Result<bytes::Bytes>> {
        self.inner.logs(id, options)
    }
    fn events(&self, since_nanos: Option<i64>) -> BoxStream<'static, Result<RuntimeEvent>> {
        self.inner.events(since_nanos)
    }
}
