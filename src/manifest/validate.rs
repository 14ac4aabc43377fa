//! Pod validation mirroring the API server's.

use k8s_openapi::api::core::v1::Pod;

use super::ManifestError;

/// Validates an identified pod. The returned error names the field path.
pub fn validate_pod(pod: &Pod) -> Result<(), ManifestError> {
    let _ = pod;
    todo!("implemented by the manifest work")
}
