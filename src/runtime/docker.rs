//! The Docker implementation of [`ContainerRuntime`](super::ContainerRuntime), through bollard.
//! (placeholder in this branch; the real one lands from the runtime work)
use super::*;
pub struct DockerRuntime;
impl DockerRuntime {
    pub async fn connect(_endpoint: &str) -> Result<Self> {
        Err(RuntimeError::Unavailable("not implemented".into()))
    }
}
#[async_trait]
impl ContainerRuntime for DockerRuntime {
    async fn version(&self) -> Result<String> { unimplemented!() }
    async fn list_containers(&self, _: Option<&str>) -> Result<Vec<ContainerInfo>> { unimplemented!() }
    async fn inspect_image(&self, _: &str) -> Result<Option<ImageInfo>> { unimplemented!() }
    async fn pull_image(&self, _: &str) -> Result<ImageInfo> { unimplemented!() }
    async fn ensure_infra_image(&self, _: &str) -> Result<ImageInfo> { unimplemented!() }
    async fn run_sandbox(&self, _: &SandboxConfig) -> Result<String> { unimplemented!() }
    async fn create_container(&self, _: &ContainerConfig) -> Result<String> { unimplemented!() }
    async fn start_container(&self, _: &str) -> Result<()> { unimplemented!() }
    async fn stop_container(&self, _: &str, _: Duration) -> Result<()> { unimplemented!() }
    async fn remove_container(&self, _: &str) -> Result<()> { unimplemented!() }
    fn events(&self, _: Option<i64>) -> BoxStream<'static, Result<RuntimeEvent>> { unimplemented!() }
}
