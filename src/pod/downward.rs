//! The downward API: pod and container facts as env values and files.
//!
//! Owns the pure resolution of `fieldRef` (metadata, spec and status fields,
//! subscripted labels and annotations) and `resourceFieldRef` (requests and
//! limits with a divisor, rounded up as Kubernetes does; the node's capacity
//! stands in for a missing limit), the `key="value"` form of label and
//! annotation files. The node's capacity comes in as data
//! ([`NodeCapacity`], read by [`crate::node::capacity`]).
//! It does not write files (that is `volumes`) or build environments (that
//! is `convert`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod, ResourceFieldSelector};

use crate::k8s::quantity::{Quantity, QuantityError};

/// A downward API reference that cannot be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DownwardError {
    /// A `fieldRef` path env variables cannot use.
    #[error("fieldRef {path:?} is not supported")]
    EnvField { path: String },
    /// A `fieldRef` path volume files cannot use.
    #[error("fieldRef {path:?} is not supported in downwardAPI volumes")]
    VolumeField { path: String },
    /// `resourceFieldRef.containerName` names no container of the pod.
    #[error("resourceFieldRef: container {name:?} not found")]
    ContainerNotFound { name: String },
    /// A volume's `resourceFieldRef` without `containerName`.
    #[error("resourceFieldRef needs a containerName")]
    NoContainerName,
    /// A resource other than `limits|requests.cpu|memory|ephemeral-storage`.
    #[error("unsupported resource {resource:?}")]
    UnsupportedResource { resource: String },
    /// A request, limit or divisor that is not a quantity.
    #[error("resourceFieldRef {resource:?}: {error}")]
    Quantity {
        resource: String,
        error: QuantityError,
    },
}

/// What the node offers, for `resourceFieldRef` limits a container lacks
/// (the defaults stand in for values that cannot be read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeCapacity {
    pub cpu_milli: i64,
    pub memory_bytes: i64,
    pub ephemeral_storage_bytes: i64,
}

impl Default for NodeCapacity {
    fn default() -> Self {
        NodeCapacity {
            cpu_milli: 1000,
            memory_bytes: 1 << 30,
            ephemeral_storage_bytes: 10 << 30,
        }
    }
}

/// The pod's network facts for `status.*` field references.
#[derive(Debug, Clone, Copy, Default)]
pub struct Addresses<'a> {
    pub pod_ip: &'a str,
    pub host_ip: &'a str,
}

fn subscript<'p>(path: &'p str, prefix: &str) -> Option<&'p str> {
    path.strip_prefix(prefix)
        .and_then(|rest| rest.strip_suffix("']"))
}

/// The value of an env `fieldRef`.
///
/// Fails for a field path the API does not offer to env variables.
pub fn env_field(pod: &Pod, path: &str, addrs: Addresses<'_>) -> Result<String, DownwardError> {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let value = match path {
        "metadata.name" => meta.name.clone(),
        "metadata.namespace" => meta.namespace.clone(),
        "metadata.uid" => meta.uid.clone(),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()),
        "spec.serviceAccountName" => spec.and_then(|s| s.service_account_name.clone()),
        "status.hostIP" | "status.hostIPs" => Some(addrs.host_ip.to_string()),
        "status.podIP" | "status.podIPs" => Some(addrs.pod_ip.to_string()),
        _ => {
            if let Some(key) = subscript(path, "metadata.labels['") {
                meta.labels.as_ref().and_then(|l| l.get(key).cloned())
            } else if let Some(key) = subscript(path, "metadata.annotations['") {
                meta.annotations.as_ref().and_then(|a| a.get(key).cloned())
            } else {
                return Err(DownwardError::EnvField {
                    path: path.to_string(),
                });
            }
        }
    };
    Ok(value.unwrap_or_default())
}

/// The content of a downwardAPI volume file for a `fieldRef`.
///
/// Fails for a field path volumes do not offer.
pub fn volume_field(pod: &Pod, path: &str) -> Result<String, DownwardError> {
    let meta = &pod.metadata;
    match path {
        "metadata.labels" => Ok(format_map(meta.labels.as_ref())),
        "metadata.annotations" => Ok(format_map(meta.annotations.as_ref())),
        "metadata.name" | "metadata.namespace" | "metadata.uid" => {
            env_field(pod, path, Addresses::default())
        }
        _ if subscript(path, "metadata.labels['").is_some()
            || subscript(path, "metadata.annotations['").is_some() =>
        {
            env_field(pod, path, Addresses::default())
        }
        _ => Err(DownwardError::VolumeField {
            path: path.to_string(),
        }),
    }
}

/// `key="value"` lines sorted by key, values quoted as Go's `%q` does,
/// without a trailing newline (the kubelet's format).
pub fn format_map(map: Option<&BTreeMap<String, String>>) -> String {
    map.into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A double-quoted string with Go's escapes.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The value of a `resourceFieldRef` for `container` (the one named by
/// `containerName` when given), divided by the divisor and rounded up.
///
/// Fails when the named container does not exist or the resource or a
/// quantity is not understood.
pub fn resource_field(
    pod: &Pod,
    container: Option<&Container>,
    sel: &ResourceFieldSelector,
    node: &NodeCapacity,
) -> Result<String, DownwardError> {
    let named = sel.container_name.as_deref().filter(|n| !n.is_empty());
    let found;
    let container = match (named, container) {
        (Some(name), _) => {
            let spec = pod.spec.as_ref();
            found = spec
                .into_iter()
                .flat_map(|s| {
                    s.containers
                        .iter()
                        .chain(s.init_containers.iter().flatten())
                })
                .find(|c| c.name == name)
                .cloned()
                .ok_or_else(|| DownwardError::ContainerNotFound {
                    name: name.to_string(),
                })?;
            &found
        }
        (None, Some(c)) => c,
        (None, None) => return Err(DownwardError::NoContainerName),
    };
    let unsupported = || DownwardError::UnsupportedResource {
        resource: sel.resource.clone(),
    };
    let (which, resource) = sel.resource.split_once('.').ok_or_else(unsupported)?;
    let resources = container.resources.clone().unwrap_or_default();
    let list = match which {
        "limits" => resources.limits,
        "requests" => resources.requests,
        _ => return Err(unsupported()),
    };
    let parse = |text: &str| {
        Quantity::parse(text).map_err(|error| DownwardError::Quantity {
            resource: sel.resource.clone(),
            error,
        })
    };
    let set = match list.as_ref().and_then(|l| l.get(resource)) {
        Some(q) => Some(parse(&q.0)?),
        None => None,
    }
    .filter(|q| !q.is_zero());
    let divisor = match sel.divisor.as_ref() {
        Some(d) => parse(&d.0)?,
        None => parse("1")?,
    };
    let divisor = if divisor.is_zero() {
        parse("1")?
    } else {
        divisor
    };
    let ceil = |a: i64, b: i64| -> i64 {
        if b <= 0 {
            return a;
        }
        let (a, b) = (i128::from(a), i128::from(b));
        let q = a / b + i128::from(a % b > 0);
        i64::try_from(q).unwrap_or(i64::MAX)
    };
    let limits = which == "limits";
    let value = match resource {
        "cpu" => {
            let milli = match set {
                Some(q) => q.milli_value(),
                None if limits => node.cpu_milli,
                None => 0,
            };
            ceil(milli, divisor.milli_value())
        }
        "memory" | "ephemeral-storage" => {
            let bytes = match set {
                Some(q) => q.value(),
                None if limits && resource == "memory" => node.memory_bytes,
                None if limits => node.ephemeral_storage_bytes,
                None => 0,
            };
            ceil(bytes, divisor.value())
        }
        _ => return Err(unsupported()),
    };
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity as Q;

    fn container(requests: &[(&str, &str)], limits: &[(&str, &str)]) -> Container {
        let list = |l: &[(&str, &str)]| {
            Some(
                l.iter()
                    .map(|(k, v)| (k.to_string(), Q(v.to_string())))
                    .collect(),
            )
        };
        Container {
            name: "app".into(),
            resources: Some(k8s_openapi::api::core::v1::ResourceRequirements {
                requests: list(requests),
                limits: list(limits),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn sel(resource: &str, divisor: Option<&str>) -> ResourceFieldSelector {
        ResourceFieldSelector {
            resource: resource.into(),
            divisor: divisor.map(|d| Q(d.into())),
            container_name: None,
        }
    }

    const NODE: NodeCapacity = NodeCapacity {
        cpu_milli: 4000,
        memory_bytes: 8 << 30,
        ephemeral_storage_bytes: 100 << 30,
    };

    #[test]
    fn resource_values_are_divided_and_rounded_up_like_kubernetes() {
        let c = container(
            &[("cpu", "250m"), ("memory", "64Mi")],
            &[("cpu", "1500m"), ("memory", "100M")],
        );
        let pod = Pod::default();
        let v = |r: &str, d: Option<&str>| {
            resource_field(&pod, Some(&c), &sel(r, d), &NODE).unwrap_or_else(|e| panic!("{e}"))
        };
        assert_eq!(v("limits.cpu", None), "2", "1.5 cores round up to 2");
        assert_eq!(v("limits.cpu", Some("1m")), "1500");
        assert_eq!(v("requests.cpu", None), "1");
        assert_eq!(v("requests.cpu", Some("1m")), "250");
        assert_eq!(v("limits.memory", None), "100000000");
        assert_eq!(v("limits.memory", Some("1Mi")), "96", "95.37 MiB round up");
        assert_eq!(v("requests.memory", Some("1Mi")), "64");
        assert_eq!(
            v("limits.memory", Some("0")),
            "100000000",
            "a zero divisor is 1"
        );
    }

    #[test]
    fn missing_limits_are_the_node_capacity_and_missing_requests_zero() {
        let c = container(&[], &[]);
        let pod = Pod::default();
        let v = |r: &str, d: Option<&str>| {
            resource_field(&pod, Some(&c), &sel(r, d), &NODE).unwrap_or_else(|e| panic!("{e}"))
        };
        assert_eq!(v("limits.cpu", None), "4");
        assert_eq!(v("limits.memory", Some("1Gi")), "8");
        assert_eq!(v("limits.ephemeral-storage", Some("1Gi")), "100");
        assert_eq!(v("requests.cpu", None), "0");
        assert_eq!(v("requests.memory", None), "0");
    }

    #[test]
    fn a_named_container_is_looked_up_in_the_pod() {
        let pod = Pod {
            spec: Some(k8s_openapi::api::core::v1::PodSpec {
                containers: vec![container(&[], &[("memory", "1Gi")])],
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut s = sel("limits.memory", Some("1Mi"));
        s.container_name = Some("app".into());
        assert_eq!(resource_field(&pod, None, &s, &NODE), Ok("1024".into()));
        s.container_name = Some("nope".into());
        let e = resource_field(&pod, None, &s, &NODE).expect_err("missing");
        assert_eq!(
            e,
            DownwardError::ContainerNotFound {
                name: "nope".into()
            }
        );
        assert!(e.to_string().contains("\"nope\" not found"), "{e}");
    }

    #[test]
    fn label_files_are_sorted_go_quoted_lines_without_a_trailing_newline() {
        let map: BTreeMap<String, String> = [
            ("b".to_string(), "two \"quoted\"\nline".to_string()),
            ("a".to_string(), "1".to_string()),
        ]
        .into();
        assert_eq!(
            format_map(Some(&map)),
            "a=\"1\"\nb=\"two \\\"quoted\\\"\\nline\""
        );
        assert_eq!(format_map(None), "");
    }

    #[test]
    fn status_fields_come_from_the_addresses() {
        let pod = Pod::default();
        let addrs = Addresses {
            pod_ip: "172.17.0.5",
            host_ip: "10.0.0.2",
        };
        assert_eq!(
            env_field(&pod, "status.podIP", addrs),
            Ok("172.17.0.5".into())
        );
        assert_eq!(
            env_field(&pod, "status.podIPs", addrs),
            Ok("172.17.0.5".into())
        );
        assert_eq!(
            env_field(&pod, "status.hostIPs", addrs),
            Ok("10.0.0.2".into())
        );
        assert!(env_field(&pod, "spec.restartPolicy", addrs).is_err());
        assert!(volume_field(&pod, "status.podIP").is_err());
    }
}
