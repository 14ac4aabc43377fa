//! The kubelet's static pod identity: name suffix, namespace, UID, annotations.

use k8s_openapi::api::core::v1::Pod;

use super::{LoadContext, Origin};

/// Annotation keys the kubelet sets on static pods.
pub const CONFIG_HASH: &str = "kubernetes.io/config.hash";
pub const CONFIG_SOURCE: &str = "kubernetes.io/config.source";
pub const CONFIG_SEEN: &str = "kubernetes.io/config.seen";

/// The UID: 32 lowercase hex chars hashing the canonical manifest content (as
/// written), the node name and the origin key.
pub fn uid(raw: &serde_json::Value, node_name: &str, origin: &Origin) -> String {
    let _ = (raw, node_name, origin);
    todo!("implemented by the manifest work")
}

/// Applies name suffix, default namespace, `spec.nodeName`, UID and the
/// `kubernetes.io/config.*` annotations.
pub fn apply(pod: &mut Pod, raw: &serde_json::Value, ctx: &LoadContext<'_>) {
    let _ = (pod, raw, ctx);
    todo!("implemented by the manifest work")
}
