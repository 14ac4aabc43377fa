//! Object identity helpers: the namespace (`default` when unset) and the
//! `namespace/name` keys pods, ConfigMaps and Secrets are known by. Pure.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// The namespace objects without one live in.
pub const DEFAULT_NAMESPACE: &str = "default";

/// Anything with object metadata.
pub trait HasMeta {
    fn meta(&self) -> &ObjectMeta;
}

impl HasMeta for ObjectMeta {
    fn meta(&self) -> &ObjectMeta {
        self
    }
}

impl HasMeta for Pod {
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
}

/// The object's namespace, `default` when unset or empty.
pub fn namespace_of(object: &impl HasMeta) -> &str {
    object
        .meta()
        .namespace
        .as_deref()
        .filter(|n| !n.is_empty())
        .unwrap_or(DEFAULT_NAMESPACE)
}

/// `namespace/name` of an object's metadata (ConfigMaps, Secrets).
pub fn object_key(meta: &ObjectMeta) -> String {
    format!(
        "{}/{}",
        namespace_of(meta),
        meta.name.as_deref().unwrap_or_default()
    )
}

/// `namespace/name` of a pod (the name with the node suffix).
pub fn full_name(pod: &Pod) -> String {
    object_key(&pod.metadata)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_empty_namespace_is_default() {
        let mut meta = ObjectMeta {
            name: Some("web".into()),
            ..Default::default()
        };
        assert_eq!(namespace_of(&meta), "default");
        meta.namespace = Some(String::new());
        assert_eq!(object_key(&meta), "default/web");
        meta.namespace = Some("kube-system".into());
        let pod = Pod {
            metadata: meta,
            ..Default::default()
        };
        assert_eq!(namespace_of(&pod), "kube-system");
        assert_eq!(full_name(&pod), "kube-system/web");
    }
}
