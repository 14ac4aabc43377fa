//! Pod spec to runtime configs: the Kubernetes-to-Docker translation.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod};

use crate::runtime::labels::PodRef;
use crate::runtime::{ContainerConfig, SandboxConfig};

/// A container config that cannot be built (`CreateContainerConfigError`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// The pod-level facts written into every container's labels.
pub fn pod_ref(pod: &Pod, source_key: &str) -> PodRef {
    let _ = (pod, source_key);
    todo!("implemented by the convert work")
}

/// Stable hash of a container's spec (for the `io.kubernetes.container.hash` label).
pub fn container_hash(container: &Container) -> String {
    let _ = container;
    todo!("implemented by the convert work")
}

/// The sandbox (pause container) for a pod.
pub fn sandbox_config(pod: &Pod, pod_ref: &PodRef, infra_image: &str, attempt: u32) -> SandboxConfig {
    let _ = (pod, pod_ref, infra_image, attempt);
    todo!("implemented by the convert work")
}

/// One app or init container of a pod, joined to `sandbox_id`.
///
/// `volumes` maps each pod volume name to the host path prepared for it;
/// a mount of a volume missing from the map is a [`ConfigError`].
pub fn container_config(
    pod: &Pod,
    pod_ref: &PodRef,
    container: &Container,
    sandbox_id: &str,
    restart_count: u32,
    volumes: &BTreeMap<String, String>,
) -> Result<ContainerConfig, ConfigError> {
    let _ = (pod, pod_ref, container, sandbox_id, restart_count, volumes);
    todo!("implemented by the convert work")
}
