//! Pod events, for now as structured log lines.
//!
//! Owns the one function volume and environment code calls to report a
//! Kubernetes-style event (`FailedMount`, `InvalidEnvironmentVariableNames`,
//! `EmptyDirSizeLimitExceeded`) about a pod. Today it writes a `tracing`
//! line with the pod, type, reason and message; a recorder that keeps events
//! for the API can take over here without touching the callers.

use k8s_openapi::api::core::v1::Pod;

/// `Normal` or `Warning`, as in Kubernetes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

/// Reports an event about `pod`.
pub fn record(pod: &Pod, event_type: EventType, reason: &str, message: &str) {
    let pod_name = crate::source::full_name(pod);
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    match event_type {
        EventType::Normal => {
            tracing::info!(event = reason, pod = %pod_name, %uid, %message, "pod event")
        }
        EventType::Warning => {
            tracing::warn!(event = reason, pod = %pod_name, %uid, %message, "pod event")
        }
    }
}
