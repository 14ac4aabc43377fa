//! Kubernetes defaulting for pods (restartPolicy, grace period, pull policy…).
//!
//! Owns filling in what the API server's defaulting (`SetDefaults_*` for
//! `v1.Pod`) would, so the pod we run and serve looks like one read back
//! from a cluster. Runs after validation; never overwrites a given value.
//! Defaults are not part of the UID (identity hashes the manifest as
//! written), so a new default here does not restart pods.
//! It does not default what only admission plugins set (service accounts,
//! priority, tolerations).

use k8s_openapi::api::core::v1::{
    Container, HTTPGetAction, Pod, PodSecurityContext, PodSpec, PodTemplateSpec, Probe, Volume,
};

use crate::k8s::lifecycle::{PullPolicy, RestartPolicy};

/// Mode of projected ConfigMap/Secret files: 0644.
pub const DEFAULT_FILE_MODE: i32 = 0o644;

/// Fills in every default the API server would.
pub fn apply(pod: &mut Pod) {
    let spec = pod.spec.get_or_insert_with(PodSpec::default);
    set_if_empty(&mut spec.dns_policy, "ClusterFirst");
    set_if_empty(&mut spec.restart_policy, RestartPolicy::Always.as_str());
    spec.security_context
        .get_or_insert_with(PodSecurityContext::default);
    spec.termination_grace_period_seconds.get_or_insert(30);
    set_if_empty(&mut spec.scheduler_name, "default-scheduler");
    spec.enable_service_links.get_or_insert(true);

    let host_network = spec.host_network.unwrap_or(false);
    let init = spec.init_containers.iter_mut().flatten();
    for container in init.chain(spec.containers.iter_mut()) {
        default_container(container, host_network);
    }
    for volume in spec.volumes.iter_mut().flatten() {
        default_volume(volume);
    }
}

/// Fills in a workload's pod template as the API server does (the same
/// defaults as a pod's), for the Deployment, ReplicaSet or DaemonSet it
/// serves. Only the served copy: the template as written keeps deciding
/// the `pod-template-hash` and the pods' UIDs, so these defaults never
/// replace a running pod.
pub fn apply_template(template: &mut PodTemplateSpec) {
    let mut pod = Pod {
        spec: template.spec.take(),
        ..Default::default()
    };
    apply(&mut pod);
    template.spec = pod.spec;
}

fn set_if_empty(field: &mut Option<String>, value: &str) {
    if field.as_deref().is_none_or(str::is_empty) {
        *field = Some(value.to_string());
    }
}

/// The pull policy the API server picks: `Always` for `:latest` or no tag
/// (and no digest), `IfNotPresent` otherwise.
pub fn default_pull_policy(image: &str) -> &'static str {
    let (name, digest) = match image.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (image, None),
    };
    // A `:` in the last path component is a tag; earlier ones are a
    // registry port (`host:5000/img`).
    let last = name.rsplit('/').next().unwrap_or(name);
    let tag = last.split_once(':').map(|(_, tag)| tag);
    match (tag, digest) {
        (Some("latest"), _) | (None, None) => PullPolicy::Always.as_str(),
        _ => PullPolicy::IfNotPresent.as_str(),
    }
}

fn default_container(c: &mut Container, host_network: bool) {
    if c.image_pull_policy.as_deref().is_none_or(str::is_empty) {
        let policy = default_pull_policy(c.image.as_deref().unwrap_or(""));
        c.image_pull_policy = Some(policy.to_string());
    }
    set_if_empty(&mut c.termination_message_path, "/dev/termination-log");
    set_if_empty(&mut c.termination_message_policy, "File");
    for port in c.ports.iter_mut().flatten() {
        set_if_empty(&mut port.protocol, "TCP");
        if host_network && port.host_port.unwrap_or(0) == 0 {
            port.host_port = Some(port.container_port);
        }
    }
    for env in c.env.iter_mut().flatten() {
        if let Some(field_ref) = env.value_from.as_mut().and_then(|v| v.field_ref.as_mut()) {
            set_if_empty(&mut field_ref.api_version, "v1");
        }
    }
    if let Some(resources) = c.resources.as_mut() {
        if let Some(limits) = &resources.limits {
            let requests = resources.requests.get_or_insert_with(Default::default);
            for (name, limit) in limits {
                requests
                    .entry(name.clone())
                    .or_insert_with(|| limit.clone());
            }
        }
    }
    for probe in [
        &mut c.liveness_probe,
        &mut c.readiness_probe,
        &mut c.startup_probe,
    ]
    .into_iter()
    .flatten()
    {
        default_probe(probe);
    }
    if let Some(lifecycle) = c.lifecycle.as_mut() {
        for handler in [&mut lifecycle.post_start, &mut lifecycle.pre_stop]
            .into_iter()
            .flatten()
        {
            if let Some(http) = handler.http_get.as_mut() {
                default_http_get(http);
            }
        }
    }
}

fn default_probe(p: &mut Probe) {
    for (field, value) in [
        (&mut p.timeout_seconds, 1),
        (&mut p.period_seconds, 10),
        (&mut p.success_threshold, 1),
        (&mut p.failure_threshold, 3),
    ] {
        if field.unwrap_or(0) == 0 {
            *field = Some(value);
        }
    }
    if let Some(http) = p.http_get.as_mut() {
        default_http_get(http);
    }
    if let Some(grpc) = p.grpc.as_mut() {
        grpc.service.get_or_insert_with(String::new);
    }
}

fn default_http_get(h: &mut HTTPGetAction) {
    set_if_empty(&mut h.path, "/");
    set_if_empty(&mut h.scheme, "HTTP");
}

fn default_volume(v: &mut Volume) {
    let has_source = matches!(
        serde_json::to_value(&*v),
        Ok(serde_json::Value::Object(map)) if map.keys().any(|k| k != "name")
    );
    if !has_source {
        v.empty_dir = Some(Default::default());
    }
    if let Some(hp) = v.host_path.as_mut() {
        hp.type_.get_or_insert_with(String::new);
    }
    if let Some(cm) = v.config_map.as_mut() {
        cm.default_mode.get_or_insert(DEFAULT_FILE_MODE);
    }
    if let Some(s) = v.secret.as_mut() {
        s.default_mode.get_or_insert(DEFAULT_FILE_MODE);
    }
    if let Some(d) = v.downward_api.as_mut() {
        d.default_mode.get_or_insert(DEFAULT_FILE_MODE);
        for item in d.items.iter_mut().flatten() {
            if let Some(f) = item.field_ref.as_mut() {
                set_if_empty(&mut f.api_version, "v1");
            }
        }
    }
    if let Some(p) = v.projected.as_mut() {
        p.default_mode.get_or_insert(DEFAULT_FILE_MODE);
        for source in p.sources.iter_mut().flatten() {
            if let Some(token) = source.service_account_token.as_mut() {
                token.expiration_seconds.get_or_insert(3600);
            }
            for item in source
                .downward_api
                .iter_mut()
                .flat_map(|d| d.items.iter_mut().flatten())
            {
                if let Some(f) = item.field_ref.as_mut() {
                    set_if_empty(&mut f.api_version, "v1");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::parse::parse_documents;

    fn defaulted(text: &str) -> Pod {
        let parsed = parse_documents(text.as_bytes(), "t.yaml").unwrap_or_else(|e| panic!("{e}"));
        let mut pod = parsed.documents[0].pod.clone();
        apply(&mut pod);
        pod
    }

    fn spec_of(pod: &Pod) -> &PodSpec {
        pod.spec.as_ref().expect("spec")
    }

    const MINIMAL: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    image: nginx\n";

    #[test]
    fn pod_level_defaults_match_the_api_server() {
        let pod = defaulted(MINIMAL);
        let s = spec_of(&pod);
        assert_eq!(s.restart_policy.as_deref(), Some("Always"));
        assert_eq!(s.termination_grace_period_seconds, Some(30));
        assert_eq!(s.dns_policy.as_deref(), Some("ClusterFirst"));
        assert_eq!(s.scheduler_name.as_deref(), Some("default-scheduler"));
        assert_eq!(s.security_context, Some(PodSecurityContext::default()));
        assert_eq!(s.enable_service_links, Some(true));
        assert_eq!(s.service_account_name, None);
    }

    #[test]
    fn given_values_are_never_overwritten() {
        let pod = defaulted(&MINIMAL.replace(
            "spec:\n",
            "spec:\n  restartPolicy: Never\n  terminationGracePeriodSeconds: 0\n  dnsPolicy: Default\n  enableServiceLinks: false\n",
        ));
        let s = spec_of(&pod);
        assert_eq!(s.restart_policy.as_deref(), Some("Never"));
        assert_eq!(s.termination_grace_period_seconds, Some(0));
        assert_eq!(s.dns_policy.as_deref(), Some("Default"));
        assert_eq!(s.enable_service_links, Some(false));
    }

    #[test]
    fn container_defaults_match_the_api_server() {
        let pod = defaulted(&MINIMAL.replace(
            "image: nginx\n",
            "image: nginx\n    ports: [{containerPort: 80}]\n",
        ));
        let c = &spec_of(&pod).containers[0];
        assert_eq!(c.image_pull_policy.as_deref(), Some("Always"));
        assert_eq!(
            c.termination_message_path.as_deref(),
            Some("/dev/termination-log")
        );
        assert_eq!(c.termination_message_policy.as_deref(), Some("File"));
        let port = &c.ports.as_ref().expect("ports")[0];
        assert_eq!(port.protocol.as_deref(), Some("TCP"));
        assert_eq!(port.host_port, None);
    }

    #[test]
    fn pull_policy_follows_the_image_tag() {
        let cases = [
            ("nginx", "Always"),
            ("nginx:latest", "Always"),
            ("nginx:1.25", "IfNotPresent"),
            ("registry:5000/team/app", "Always"),
            ("registry:5000/team/app:v2", "IfNotPresent"),
            ("nginx@sha256:0123abcd", "IfNotPresent"),
            ("nginx:latest@sha256:0123abcd", "Always"),
            ("nginx:1.0@sha256:0123abcd", "IfNotPresent"),
        ];
        for (image, want) in cases {
            assert_eq!(default_pull_policy(image), want, "{image}");
        }
    }

    #[test]
    fn init_containers_are_defaulted_too() {
        let pod = defaulted(&MINIMAL.replace(
            "spec:\n",
            "spec:\n  initContainers: [{name: i, image: \"busybox:1.36\"}]\n",
        ));
        let i = &spec_of(&pod).init_containers.as_ref().expect("init")[0];
        assert_eq!(i.image_pull_policy.as_deref(), Some("IfNotPresent"));
        assert_eq!(i.termination_message_policy.as_deref(), Some("File"));
    }

    #[test]
    fn host_network_defaults_host_ports_to_container_ports() {
        let pod = defaulted(&MINIMAL.replace(
            "image: nginx\n",
            "image: nginx\n    ports: [{containerPort: 80}]\n  hostNetwork: true\n",
        ));
        let port = &spec_of(&pod).containers[0].ports.as_ref().expect("ports")[0];
        assert_eq!(port.host_port, Some(80));
    }

    #[test]
    fn probe_defaults_match_the_api_server() {
        let pod = defaulted(&MINIMAL.replace(
            "image: nginx\n",
            "image: nginx\n    livenessProbe: {httpGet: {port: 80}, periodSeconds: 3}\n    readinessProbe: {grpc: {port: 9000}}\n    lifecycle: {preStop: {httpGet: {port: 80}}}\n",
        ));
        let c = &spec_of(&pod).containers[0];
        let live = c.liveness_probe.as_ref().expect("liveness");
        assert_eq!(live.timeout_seconds, Some(1));
        assert_eq!(live.period_seconds, Some(3));
        assert_eq!(live.success_threshold, Some(1));
        assert_eq!(live.failure_threshold, Some(3));
        assert_eq!(live.initial_delay_seconds, None);
        let http = live.http_get.as_ref().expect("httpGet");
        assert_eq!(http.path.as_deref(), Some("/"));
        assert_eq!(http.scheme.as_deref(), Some("HTTP"));
        let ready = c.readiness_probe.as_ref().expect("readiness");
        assert_eq!(ready.period_seconds, Some(10));
        assert_eq!(
            ready.grpc.as_ref().and_then(|g| g.service.as_deref()),
            Some("")
        );
        let pre_stop = c
            .lifecycle
            .as_ref()
            .and_then(|l| l.pre_stop.as_ref())
            .expect("preStop");
        assert_eq!(
            pre_stop.http_get.as_ref().and_then(|h| h.path.as_deref()),
            Some("/")
        );
    }

    #[test]
    fn a_workload_template_gets_the_pod_defaults_and_keeps_its_metadata() {
        let mut t: PodTemplateSpec = serde_json::from_value(serde_json::json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{
                "name": "c", "image": "busybox:1",
                "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 2}
            }]}
        }))
        .expect("template");
        apply_template(&mut t);
        assert_eq!(
            t.metadata.as_ref().and_then(|m| m.labels.as_ref()),
            Some(&[("app".to_string(), "web".to_string())].into())
        );
        let spec = t.spec.as_ref().expect("spec");
        assert_eq!(spec.dns_policy.as_deref(), Some("ClusterFirst"));
        assert_eq!(spec.scheduler_name.as_deref(), Some("default-scheduler"));
        assert_eq!(spec.restart_policy.as_deref(), Some("Always"));
        let c = &spec.containers[0];
        assert_eq!(c.image_pull_policy.as_deref(), Some("IfNotPresent"));
        assert_eq!(
            c.termination_message_path.as_deref(),
            Some("/dev/termination-log")
        );
        let ready = c.readiness_probe.as_ref().expect("probe");
        assert_eq!(
            (
                ready.timeout_seconds,
                ready.period_seconds,
                ready.success_threshold,
                ready.failure_threshold
            ),
            (Some(1), Some(2), Some(1), Some(3))
        );
    }

    #[test]
    fn requests_default_to_limits_per_resource() {
        let pod = defaulted(&MINIMAL.replace(
            "image: nginx\n",
            "image: nginx\n    resources: {requests: {cpu: 100m}, limits: {cpu: 500m, memory: 128Mi}}\n",
        ));
        let r = spec_of(&pod).containers[0]
            .resources
            .as_ref()
            .expect("resources");
        let req = r.requests.as_ref().expect("requests");
        assert_eq!(req["cpu"].0, "100m");
        assert_eq!(req["memory"].0, "128Mi");
    }

    #[test]
    fn volume_defaults_match_the_api_server() {
        let pod = defaulted(&MINIMAL.replace(
            "spec:\n",
            "spec:\n  volumes:\n  - {name: e, emptyDir: {}}\n  - {name: bare}\n  - {name: h, hostPath: {path: /srv}}\n  - {name: cm, configMap: {name: c}}\n  - {name: s, secret: {secretName: s, defaultMode: 256}}\n",
        ));
        let v = spec_of(&pod).volumes.as_ref().expect("volumes");
        assert_eq!(v[0].empty_dir, Some(Default::default()));
        assert_eq!(v[1].empty_dir, Some(Default::default()));
        assert_eq!(
            v[2].host_path.as_ref().and_then(|h| h.type_.as_deref()),
            Some("")
        );
        assert_eq!(v[2].empty_dir, None);
        assert_eq!(
            v[3].config_map.as_ref().and_then(|c| c.default_mode),
            Some(420)
        );
        assert_eq!(v[4].secret.as_ref().and_then(|s| s.default_mode), Some(256));
    }

    #[test]
    fn field_refs_default_their_api_version() {
        let pod = defaulted(&MINIMAL.replace(
            "image: nginx\n",
            "image: nginx\n    env: [{name: N, valueFrom: {fieldRef: {fieldPath: metadata.name}}}]\n",
        ));
        let env = &spec_of(&pod).containers[0].env.as_ref().expect("env")[0];
        let f = env
            .value_from
            .as_ref()
            .and_then(|v| v.field_ref.as_ref())
            .expect("fieldRef");
        assert_eq!(f.api_version.as_deref(), Some("v1"));
    }
}
