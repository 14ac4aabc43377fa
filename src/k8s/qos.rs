//! The pod's quality-of-service class (`BestEffort`, `Burstable`,
//! `Guaranteed`), the kubelet's way. Pure.

use k8s_openapi::api::core::v1::Pod;

/// The pod's QoS class from its containers' requests and limits.
pub fn qos_class(pod: &Pod) -> &'static str {
    let Some(spec) = pod.spec.as_ref() else {
        return "BestEffort";
    };
    let all = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten());
    let mut any = false;
    let mut guaranteed = true;
    for c in all {
        let r = c.resources.clone().unwrap_or_default();
        let limits = r.limits.unwrap_or_default();
        let requests = r.requests.unwrap_or_default();
        if !limits.is_empty() || !requests.is_empty() {
            any = true;
        }
        for res in ["cpu", "memory"] {
            match (limits.get(res), requests.get(res).or(limits.get(res))) {
                (Some(l), Some(q)) if l == q => {}
                _ => guaranteed = false,
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec, ResourceRequirements};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    fn pod(limits: &[(&str, &str)], requests: &[(&str, &str)]) -> Pod {
        let list = |kv: &[(&str, &str)]| {
            (!kv.is_empty()).then(|| {
                kv.iter()
                    .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
                    .collect()
            })
        };
        Pod {
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "a".into(),
                    resources: Some(ResourceRequirements {
                        limits: list(limits),
                        requests: list(requests),
                        ..Default::default()
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_class_follows_requests_and_limits() {
        assert_eq!(qos_class(&Pod::default()), "BestEffort");
        assert_eq!(qos_class(&pod(&[], &[])), "BestEffort");
        let both = [("cpu", "1"), ("memory", "1Gi")];
        assert_eq!(qos_class(&pod(&both, &[])), "Guaranteed");
        assert_eq!(qos_class(&pod(&both, &both)), "Guaranteed");
        assert_eq!(qos_class(&pod(&both, &[("cpu", "500m")])), "Burstable");
        assert_eq!(qos_class(&pod(&[], &[("memory", "1Gi")])), "Burstable");
    }
}
