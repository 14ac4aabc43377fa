//! Pod spec to runtime configs: the Kubernetes-to-Docker translation.
//!
//! Owns the pure mapping from a (validated, defaulted) `Pod` to what the
//! runtime creates: the sandbox (name, hostname, namespaces, `hostPort`
//! bindings, `/etc/hosts` entries, DNS) and each container (name, labels,
//! command/args/env with Kubernetes `$(VAR)` expansion, `envFrom`, env from
//! ConfigMaps, Secrets and the downward API, mounts including the pod's
//! `/etc/hosts` and the termination-message file, CPU/memory controls in
//! Docker units, security settings) from the spec plus a [`PodSetup`]
//! (prepared volumes, objects, addresses). Things that cannot be built from
//! these are a [`ConfigError`], which the worker reports as
//! `CreateContainerConfigError`.
//! It does not talk to Docker, prepare volumes or decide what to run.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Container, EnvVarSource, Pod, PodSpec};
use sha2::{Digest, Sha256};

use super::downward::{self, Addresses, NodeCapacity};
use super::layout;
use super::objects::{DataKind, Objects};
use crate::k8s::expand::expand;
use crate::k8s::meta::namespace_of;
use crate::k8s::names::{is_env_var_name, local_path_problem};
use crate::k8s::quantity::Quantity;
use crate::runtime::labels::{self, PodRef};
use crate::runtime::{ContainerConfig, Mount, PortMapping, Resources, SandboxConfig, Security};

/// A container config that cannot be built (`CreateContainerConfigError`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// What the worker set up for the pod that a container's config needs
/// besides the spec (volumes, objects, addresses, managed files); prepared
/// once the sandbox runs.
#[derive(Debug, Clone, Default)]
pub struct PodSetup {
    /// Host path per prepared volume name.
    pub volumes: BTreeMap<String, String>,
    /// The ConfigMaps and Secrets as they are at container start.
    pub objects: Arc<Objects>,
    /// The sandbox's IP (the host's with `hostNetwork`).
    pub pod_ip: String,
    pub host_ip: String,
    pub node: NodeCapacity,
    /// The pod's directory: when set, each container gets its
    /// termination-message file mounted from below it.
    pub pod_dir: Option<PathBuf>,
    /// The pod's managed hosts file, mounted at `/etc/hosts` (not with
    /// `hostNetwork`).
    pub hosts_file: Option<String>,
}

impl PodSetup {
    fn addresses(&self) -> Addresses<'_> {
        Addresses {
            pod_ip: &self.pod_ip,
            host_ip: &self.host_ip,
        }
    }
}

/// Where a container's termination message is written inside it, when the
/// spec does not say (Kubernetes' default).
pub const DEFAULT_TERMINATION_MESSAGE_PATH: &str = "/dev/termination-log";

/// Grace period when the spec has none (the API server's default).
pub const DEFAULT_GRACE_PERIOD_SECONDS: i64 = 30;
/// CFS period used with CPU limits, in microseconds.
pub const CPU_PERIOD_US: i64 = 100_000;
const MIN_SHARES: i64 = 2;
const MAX_SHARES: i64 = 262_144;
const MIN_QUOTA_US: i64 = 1_000;
const MAX_HOSTNAME_LEN: usize = 63;

/// The pod-level facts written into every container's labels.
pub fn pod_ref(pod: &Pod, source_key: &str) -> PodRef {
    let meta = &pod.metadata;
    PodRef {
        name: meta.name.clone().unwrap_or_default(),
        namespace: namespace_of(pod).to_string(),
        uid: meta.uid.clone().unwrap_or_default(),
        source: source_key.to_string(),
        grace_period_seconds: pod
            .spec
            .as_ref()
            .and_then(|s| s.termination_grace_period_seconds)
            .unwrap_or(DEFAULT_GRACE_PERIOD_SECONDS),
        workload_generation: (meta.annotations.as_ref())
            .and_then(|a| a.get(crate::workload::pods::GENERATION_ANNOTATION))
            .cloned(),
    }
}

/// Stable hash of a container's spec (for the `io.kubernetes.container.hash` label).
///
/// 16 lowercase hex chars of the SHA-256 of the container's JSON.
pub fn container_hash(container: &Container) -> String {
    let json = serde_json::to_vec(container).unwrap_or_default();
    hex::encode(&Sha256::digest(&json)[..8])
}

fn spec_of(pod: &Pod) -> PodSpec {
    pod.spec.clone().unwrap_or_default()
}

/// The pod's host name: `spec.hostname`, else the pod name cut to 63
/// characters without a trailing `-` or `.` (as the kubelet does).
pub fn pod_hostname(pod: &Pod) -> String {
    if let Some(h) = pod.spec.as_ref().and_then(|s| s.hostname.as_deref()) {
        if !h.is_empty() {
            return h.to_string();
        }
    }
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let cut: String = name.chars().take(MAX_HOSTNAME_LEN).collect();
    if cut.len() < name.len() {
        cut.trim_end_matches(['-', '.']).to_string()
    } else {
        cut
    }
}

/// The sandbox (pause container) for a pod.
///
/// `hostPort`s of all (init and app) containers are published on the
/// sandbox, except with `hostNetwork`, where the ports are the host's
/// already and Docker would discard the bindings.
pub fn sandbox_config(
    pod: &Pod,
    pod_ref: &PodRef,
    infra_image: &str,
    attempt: u32,
) -> SandboxConfig {
    let spec = spec_of(pod);
    let host_network = spec.host_network.unwrap_or(false);
    let mut port_mappings = Vec::new();
    if !host_network {
        let init = spec.init_containers.iter().flatten();
        for c in init.chain(spec.containers.iter()) {
            for p in c.ports.iter().flatten() {
                let (Ok(host_port), Ok(container_port)) = (
                    u16::try_from(p.host_port.unwrap_or(0)),
                    u16::try_from(p.container_port),
                ) else {
                    continue;
                };
                if host_port == 0 {
                    continue;
                }
                port_mappings.push(PortMapping {
                    container_port,
                    host_port,
                    protocol: p.protocol.as_deref().unwrap_or("TCP").to_ascii_lowercase(),
                    host_ip: p.host_ip.clone().unwrap_or_default(),
                });
            }
        }
    }
    let extra_hosts = spec
        .host_aliases
        .iter()
        .flatten()
        .flat_map(|a| {
            a.hostnames
                .iter()
                .flatten()
                .map(move |h| format!("{h}:{}", a.ip))
        })
        .collect();
    let dns = spec.dns_config.clone().unwrap_or_default();
    let dns_options = dns
        .options
        .iter()
        .flatten()
        .filter_map(|o| {
            let name = o.name.as_deref().filter(|n| !n.is_empty())?;
            Some(match o.value.as_deref() {
                Some(v) if !v.is_empty() => format!("{name}:{v}"),
                _ => name.to_string(),
            })
        })
        .collect();
    SandboxConfig {
        name: labels::sandbox_name(&pod_ref.name, &pod_ref.namespace, &pod_ref.uid, attempt),
        image: infra_image.to_string(),
        hostname: pod_hostname(pod),
        host_network,
        host_ipc: spec.host_ipc.unwrap_or(false),
        host_pid: spec.host_pid.unwrap_or(false),
        port_mappings,
        extra_hosts,
        dns_servers: dns.nameservers.unwrap_or_default(),
        dns_searches: dns.searches.unwrap_or_default(),
        dns_options,
        labels: pod_ref.sandbox_labels(attempt),
    }
}

/// One app or init container of a pod, joined to `sandbox_id`.
///
/// `ctx.volumes` maps each pod volume name to the host path prepared for it;
/// a mount of a volume missing from the map is a [`ConfigError`]. So are a
/// missing required ConfigMap, Secret or key (the message names them), an
/// unsupported env source, a `subPath` escaping its volume and `runAsGroup`
/// without `runAsUser`.
pub fn container_config(
    pod: &Pod,
    pod_ref: &PodRef,
    container: &Container,
    sandbox_id: &str,
    restart_count: u32,
    ctx: &PodSetup,
) -> Result<ContainerConfig, ConfigError> {
    let spec = spec_of(pod);
    let env = build_env(pod, container, ctx)?;
    let vars: HashMap<&str, &str> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let expand_all = |list: &Option<Vec<String>>| {
        list.as_ref().map(|items| {
            items
                .iter()
                .map(|s| expand(s, |n| vars.get(n).copied()))
                .collect()
        })
    };
    let command = expand_all(&container.command);
    let args = expand_all(&container.args);
    let mut mounts = build_mounts(&spec, container, &ctx.volumes, &vars)?;
    mounts.extend(managed_mounts(&spec, container, restart_count, ctx));
    let hash = container_hash(container);
    Ok(ContainerConfig {
        name: labels::container_name(
            &container.name,
            &pod_ref.name,
            &pod_ref.namespace,
            &pod_ref.uid,
            restart_count,
        ),
        image: container.image.clone().unwrap_or_default(),
        command,
        args,
        working_dir: container.working_dir.clone().filter(|w| !w.is_empty()),
        sandbox_id: sandbox_id.to_string(),
        share_pid: spec.share_process_namespace.unwrap_or(false),
        host_pid: spec.host_pid.unwrap_or(false),
        mounts,
        resources: build_resources(container)?,
        security: build_security(&spec, container)?,
        stdin: container.stdin.unwrap_or(false),
        stdin_once: container.stdin_once.unwrap_or(false),
        tty: container.tty.unwrap_or(false),
        labels: pod_ref.container_labels(&container.name, &hash, restart_count, sandbox_id),
        env,
    })
}

/// The `envFrom` sources of a container: kind, name, prefix, optional.
fn env_from_sources(c: &Container) -> Vec<(DataKind, &str, &str, bool)> {
    c.env_from
        .iter()
        .flatten()
        .filter_map(|e| {
            let prefix = e.prefix.as_deref().unwrap_or_default();
            if let Some(r) = &e.config_map_ref {
                Some((
                    DataKind::ConfigMap,
                    r.name.as_str(),
                    prefix,
                    r.optional == Some(true),
                ))
            } else {
                e.secret_ref.as_ref().map(|r| {
                    (
                        DataKind::Secret,
                        r.name.as_str(),
                        prefix,
                        r.optional == Some(true),
                    )
                })
            }
        })
        .collect()
}

/// Messages for `envFrom` keys skipped because they are not valid variable
/// names (with their prefix), one per source, worded like the kubelet's
/// `InvalidEnvironmentVariableNames` event.
pub fn invalid_env_from_keys(pod: &Pod, c: &Container, objects: &Objects) -> Vec<String> {
    let ns = namespace_of(pod);
    let mut out = Vec::new();
    for (kind, name, prefix, _) in env_from_sources(c) {
        let Some(entries) = objects.env_entries(kind, ns, name) else {
            continue;
        };
        let bad: Vec<String> = entries
            .keys()
            .map(|k| format!("{prefix}{k}"))
            .filter(|k| !is_env_var_name(k))
            .collect();
        if !bad.is_empty() {
            let what = match kind {
                DataKind::ConfigMap => "configMap",
                DataKind::Secret => "secret",
            };
            out.push(format!(
                "Keys [{}] from the EnvFrom {what} {ns}/{name} were skipped since they are considered invalid environment variable names.",
                bad.join(", ")
            ));
        }
    }
    out
}

/// The container's environment in order: `envFrom` first (later sources
/// override earlier ones), then `env`. Each `env` value is expanded against
/// the variables defined before it; a repeated name keeps its first
/// position and takes the last value. Optional references to missing
/// objects or keys define nothing.
fn build_env(
    pod: &Pod,
    c: &Container,
    ctx: &PodSetup,
) -> Result<Vec<(String, String)>, ConfigError> {
    let mut env: Vec<(String, String)> = Vec::new();
    let mut defined: HashMap<String, usize> = HashMap::new();
    let mut set =
        |env: &mut Vec<(String, String)>, name: String, value: String| match defined.get(&name) {
            Some(&i) => env[i].1 = value,
            None => {
                defined.insert(name.clone(), env.len());
                env.push((name, value));
            }
        };
    let ns = namespace_of(pod);
    for (kind, name, prefix, optional) in env_from_sources(c) {
        match ctx.objects.env_entries(kind, ns, name) {
            None if optional => {}
            None => {
                return Err(ConfigError(format!(
                    "{} \"{name}\" not found in namespace \"{ns}\" (envFrom of container {:?})",
                    kind.name(),
                    c.name
                )))
            }
            Some(entries) => {
                for (k, v) in entries {
                    let var = format!("{prefix}{k}");
                    if is_env_var_name(&var) {
                        set(&mut env, var, v);
                    }
                }
            }
        }
    }
    for var in c.env.iter().flatten() {
        let value = match &var.value_from {
            Some(source) => match resolve_source(pod, c, &var.name, source, ctx)? {
                Some(v) => v,
                None => continue,
            },
            None => {
                let raw = var.value.as_deref().unwrap_or_default();
                let lookup: HashMap<&str, &str> =
                    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                expand(raw, |n| lookup.get(n).copied())
            }
        };
        set(&mut env, var.name.clone(), value);
    }
    Ok(env)
}

/// The value of one `env.valueFrom`; `None` when an optional reference
/// finds nothing.
fn resolve_source(
    pod: &Pod,
    c: &Container,
    name: &str,
    source: &EnvVarSource,
    ctx: &PodSetup,
) -> Result<Option<String>, ConfigError> {
    let in_var = |m: String| ConfigError(format!("env {name:?} of container {:?}: {m}", c.name));
    let ns = namespace_of(pod);
    if let Some(field_ref) = &source.field_ref {
        return downward::env_field(pod, &field_ref.field_path, ctx.addresses())
            .map(Some)
            .map_err(|e| in_var(e.to_string()));
    }
    if let Some(r) = &source.resource_field_ref {
        return downward::resource_field(pod, Some(c), r, &ctx.node)
            .map(Some)
            .map_err(|e| in_var(e.to_string()));
    }
    if let Some(k) = &source.config_map_key_ref {
        return ctx
            .objects
            .env_value(
                DataKind::ConfigMap,
                ns,
                &k.name,
                &k.key,
                k.optional == Some(true),
            )
            .map_err(|e| in_var(e.to_string()));
    }
    if let Some(k) = &source.secret_key_ref {
        return ctx
            .objects
            .env_value(
                DataKind::Secret,
                ns,
                &k.name,
                &k.key,
                k.optional == Some(true),
            )
            .map_err(|e| in_var(e.to_string()));
    }
    let what = if source.file_key_ref.is_some() {
        "valueFrom.fileKeyRef is not supported"
    } else {
        "an empty valueFrom is not supported"
    };
    Err(in_var(what.to_string()))
}

/// Volumes whose content comes from the API (configMap, secret, downwardAPI,
/// projected): always mounted read-only, as the kubelet does.
fn is_api_data_volume(spec: &PodSpec, name: &str) -> bool {
    spec.volumes.iter().flatten().any(|v| {
        v.name == name
            && (v.config_map.is_some()
                || v.secret.is_some()
                || v.downward_api.is_some()
                || v.projected.is_some())
    })
}

/// The mounts rkubelet adds: the termination-message file and the pod's
/// `/etc/hosts` (unless the container mounts its own there).
fn managed_mounts(spec: &PodSpec, c: &Container, restart_count: u32, ctx: &PodSetup) -> Vec<Mount> {
    let mut mounts = Vec::new();
    let own = |path: &str| {
        c.volume_mounts
            .iter()
            .flatten()
            .any(|m| m.mount_path == path)
    };
    if let Some(hosts) = &ctx.hosts_file {
        if !spec.host_network.unwrap_or(false) && !own("/etc/hosts") {
            mounts.push(Mount {
                host_path: hosts.clone(),
                container_path: "/etc/hosts".to_string(),
                read_only: false,
                propagation: None,
            });
        }
    }
    if let Some(dir) = &ctx.pod_dir {
        let path = c
            .termination_message_path
            .as_deref()
            .filter(|p| !p.is_empty())
            .unwrap_or(DEFAULT_TERMINATION_MESSAGE_PATH);
        if !own(path) {
            mounts.push(Mount {
                host_path: layout::termination_log_path(dir, &c.name, restart_count)
                    .display()
                    .to_string(),
                container_path: path.to_string(),
                read_only: false,
                propagation: None,
            });
        }
    }
    mounts
}

fn build_mounts(
    spec: &PodSpec,
    c: &Container,
    volumes: &BTreeMap<String, String>,
    vars: &HashMap<&str, &str>,
) -> Result<Vec<Mount>, ConfigError> {
    let mut mounts = Vec::new();
    for m in c.volume_mounts.iter().flatten() {
        let Some(host) = volumes.get(&m.name) else {
            return Err(ConfigError(format!(
                "volume {:?} of container {:?} is not available",
                m.name, c.name
            )));
        };
        let sub_path = match (m.sub_path.as_deref(), m.sub_path_expr.as_deref()) {
            (Some(p), _) if !p.is_empty() => Some(p.to_string()),
            (_, Some(e)) if !e.is_empty() => Some(expand(e, |n| vars.get(n).copied())),
            _ => None,
        };
        let host_path = match sub_path {
            None => host.clone(),
            Some(sub) => {
                if let Some(problem) = local_path_problem(&sub) {
                    return Err(ConfigError(format!(
                        "subPath {sub:?} of volume {:?} in container {:?} {problem}",
                        m.name, c.name
                    )));
                }
                format!("{}/{sub}", host.trim_end_matches('/'))
            }
        };
        let propagation = match m.mount_propagation.as_deref() {
            None | Some("") | Some("None") => None,
            Some("HostToContainer") => Some("rslave".to_string()),
            Some("Bidirectional") => Some("rshared".to_string()),
            Some(other) => {
                return Err(ConfigError(format!(
                    "mountPropagation {other:?} of volume {:?} in container {:?} is not supported",
                    m.name, c.name
                )))
            }
        };
        mounts.push(Mount {
            host_path,
            container_path: m.mount_path.clone(),
            read_only: m.read_only.unwrap_or(false) || is_api_data_volume(spec, &m.name),
            propagation,
        });
    }
    Ok(mounts)
}

/// CPU request → shares, CPU limit → CFS quota, memory limit → bytes, the
/// kubelet's way.
fn build_resources(c: &Container) -> Result<Resources, ConfigError> {
    let r = c.resources.clone().unwrap_or_default();
    let get = |list: &Option<
        BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    >,
               key: &str|
     -> Result<Option<Quantity>, ConfigError> {
        match list.as_ref().and_then(|l| l.get(key)) {
            None => Ok(None),
            Some(q) => Quantity::parse(&q.0).map(Some).map_err(|e| {
                ConfigError(format!(
                    "{key} quantity {:?} of container {:?}: {e}",
                    q.0, c.name
                ))
            }),
        }
    };
    let cpu_request = get(&r.requests, "cpu")?;
    let cpu_limit = get(&r.limits, "cpu")?;
    let memory_limit = get(&r.limits, "memory")?;
    // Like the kubelet: no request but a limit ⇒ the limit is the request.
    let request_milli = match (cpu_request, cpu_limit) {
        (Some(req), _) if !req.is_zero() => req.milli_value(),
        (_, Some(lim)) => lim.milli_value(),
        _ => 0,
    };
    let mut res = Resources {
        cpu_shares: Some(milli_cpu_to_shares(request_milli)),
        ..Resources::default()
    };
    if let Some(limit) = cpu_limit.filter(|l| !l.is_zero()) {
        res.cpu_quota = Some(milli_cpu_to_quota(limit.milli_value()));
        res.cpu_period = Some(CPU_PERIOD_US);
    }
    if let Some(mem) = memory_limit.filter(|m| !m.is_zero()) {
        res.memory_limit = Some(mem.value());
    }
    Ok(res)
}

/// milliCPU × 1024 / 1000, within Docker's 2…262144.
pub fn milli_cpu_to_shares(milli: i64) -> i64 {
    if milli <= 0 {
        return MIN_SHARES;
    }
    (milli.saturating_mul(1024) / 1000).clamp(MIN_SHARES, MAX_SHARES)
}

/// milliCPU × period / 1000, at least 1 ms.
pub fn milli_cpu_to_quota(milli: i64) -> i64 {
    (milli.saturating_mul(CPU_PERIOD_US) / 1000).max(MIN_QUOTA_US)
}

fn build_security(spec: &PodSpec, c: &Container) -> Result<Security, ConfigError> {
    let pod_sc = spec.security_context.clone().unwrap_or_default();
    let sc = c.security_context.clone().unwrap_or_default();
    let uid = sc.run_as_user.or(pod_sc.run_as_user);
    let gid = sc.run_as_group.or(pod_sc.run_as_group);
    let user = match (uid, gid) {
        (Some(u), Some(g)) => Some(format!("{u}:{g}")),
        (Some(u), None) => Some(u.to_string()),
        (None, Some(_)) => {
            return Err(ConfigError(format!(
                "container {:?}: runAsGroup is specified without a runAsUser",
                c.name
            )))
        }
        (None, None) => None,
    };
    let caps = sc.capabilities.unwrap_or_default();
    let group_add = pod_sc
        .fs_group
        .into_iter()
        .chain(pod_sc.supplemental_groups.unwrap_or_default())
        .map(|g| g.to_string())
        .collect();
    Ok(Security {
        user,
        privileged: sc.privileged.unwrap_or(false),
        read_only_rootfs: sc.read_only_root_filesystem.unwrap_or(false),
        cap_add: caps.add.unwrap_or_default(),
        cap_drop: caps.drop.unwrap_or_default(),
        group_add,
    })
}

#[cfg(test)]
mod tests {

    use super::*;

    const SOURCE: &str = "file:/etc/kubelet.d/web.yaml";

    /// Loads a manifest (identity, validation, defaults) like the daemon does.
    fn pod(yaml: &str) -> Pod {
        crate::pod::fixtures::load_pod_at(yaml, "node1", "/etc/kubelet.d/web.yaml")
    }

    fn web(container_extra: &str, spec_extra: &str) -> Pod {
        pod(&format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  labels: {{app: web}}\n  annotations: {{team: a}}\nspec:\n  containers:\n  - name: app\n    image: busybox\n{container_extra}{spec_extra}"
        ))
    }

    fn config(p: &Pod, volumes: &[(&str, &str)]) -> Result<ContainerConfig, ConfigError> {
        let r = pod_ref(p, SOURCE);
        let ctx = PodSetup {
            volumes: volumes
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        };
        let spec = p.spec.as_ref().expect("spec");
        container_config(p, &r, &spec.containers[0], "sb123", 2, &ctx)
    }

    fn with_ctx(p: &Pod, ctx: &PodSetup) -> Result<ContainerConfig, ConfigError> {
        let spec = p.spec.as_ref().expect("spec");
        container_config(p, &pod_ref(p, SOURCE), &spec.containers[0], "sb123", 2, ctx)
    }

    fn ok(p: &Pod) -> ContainerConfig {
        config(p, &[]).unwrap_or_else(|e| panic!("{e}"))
    }

    fn env_of(c: &ContainerConfig) -> Vec<(&str, &str)> {
        c.env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn pod_ref_carries_name_namespace_uid_source_and_grace() {
        let p = web("", "  terminationGracePeriodSeconds: 5\n");
        let r = pod_ref(&p, SOURCE);
        assert_eq!(r.name, "web-node1");
        assert_eq!(r.namespace, "default");
        assert_eq!(Some(r.uid.as_str()), p.metadata.uid.as_deref());
        assert_eq!(r.source, SOURCE);
        assert_eq!(r.grace_period_seconds, 5);
        assert_eq!(pod_ref(&Pod::default(), SOURCE).grace_period_seconds, 30);
    }

    #[test]
    fn container_hash_is_16_hex_chars_and_follows_the_spec() {
        let a = web("", "");
        let b = web("    args: [x]\n", "");
        let ha = container_hash(&a.spec.as_ref().expect("spec").containers[0]);
        let hb = container_hash(&b.spec.as_ref().expect("spec").containers[0]);
        assert_eq!(ha.len(), 16);
        assert!(ha
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(ha, hb);
        assert_eq!(
            ha,
            container_hash(&web("", "").spec.as_ref().expect("spec").containers[0])
        );
    }

    #[test]
    fn the_sandbox_is_named_and_labelled_for_the_pod() {
        let p = web("", "");
        let r = pod_ref(&p, SOURCE);
        let sb = sandbox_config(&p, &r, "pause:3.9", 1);
        assert_eq!(sb.name, format!("k8s_POD_web-node1_default_{}_1", r.uid));
        assert_eq!(sb.image, "pause:3.9");
        assert_eq!(sb.hostname, "web-node1");
        assert_eq!(sb.labels, r.sandbox_labels(1));
        assert!(!sb.host_network && !sb.host_ipc && !sb.host_pid);
        assert!(
            sb.port_mappings.is_empty() && sb.extra_hosts.is_empty() && sb.dns_servers.is_empty()
        );
    }

    #[test]
    fn sandbox_hostname_is_truncated_to_63_chars_without_a_trailing_dash_or_dot() {
        let mut p = Pod::default();
        p.metadata.name = Some(format!("{}-{}", "a".repeat(62), "node1"));
        assert_eq!(pod_hostname(&p), "a".repeat(62));
        p.metadata.name = Some(format!("{}.-xyz", "b".repeat(61)));
        assert_eq!(pod_hostname(&p), "b".repeat(61));
        p.metadata.name = Some("short-node1".into());
        assert_eq!(pod_hostname(&p), "short-node1");
        let with_hostname = web("", "  hostname: custom\n");
        assert_eq!(pod_hostname(&with_hostname), "custom");
    }

    #[test]
    fn host_ports_of_all_containers_become_port_mappings() {
        let p = web(
            "    ports:\n    - {containerPort: 80, hostPort: 8080}\n    - {containerPort: 81}\n    - {containerPort: 53, hostPort: 5353, protocol: UDP, hostIP: 127.0.0.1}\n",
            "  initContainers:\n  - {name: init, image: busybox, restartPolicy: Always, ports: [{containerPort: 9000, hostPort: 9000, protocol: SCTP}]}\n",
        );
        let sb = sandbox_config(&p, &pod_ref(&p, SOURCE), "pause", 0);
        let m = |c: u16, h: u16, proto: &str, ip: &str| PortMapping {
            container_port: c,
            host_port: h,
            protocol: proto.into(),
            host_ip: ip.into(),
        };
        assert_eq!(
            sb.port_mappings,
            [
                m(9000, 9000, "sctp", ""),
                m(80, 8080, "tcp", ""),
                m(53, 5353, "udp", "127.0.0.1")
            ]
        );
    }

    #[test]
    fn host_network_pods_publish_no_ports_and_share_namespaces() {
        let p = web(
            "    ports: [{containerPort: 80}]\n",
            "  hostNetwork: true\n  hostIPC: true\n  hostPID: true\n",
        );
        let sb = sandbox_config(&p, &pod_ref(&p, SOURCE), "pause", 0);
        assert!(sb.host_network && sb.host_ipc && sb.host_pid);
        assert!(sb.port_mappings.is_empty());
    }

    #[test]
    fn host_aliases_and_dns_config_reach_the_sandbox() {
        let p = web(
            "",
            "  hostAliases: [{ip: 10.0.0.1, hostnames: [db, db.local]}, {ip: \"::1\", hostnames: [six]}]\n  dnsPolicy: None\n  dnsConfig: {nameservers: [1.1.1.1, 8.8.8.8], searches: [svc.local], options: [{name: ndots, value: \"2\"}, {name: edns0}]}\n",
        );
        let sb = sandbox_config(&p, &pod_ref(&p, SOURCE), "pause", 0);
        assert_eq!(
            sb.extra_hosts,
            ["db:10.0.0.1", "db.local:10.0.0.1", "six:::1"]
        );
        assert_eq!(sb.dns_servers, ["1.1.1.1", "8.8.8.8"]);
        assert_eq!(sb.dns_searches, ["svc.local"]);
        assert_eq!(sb.dns_options, ["ndots:2", "edns0"]);
    }

    #[test]
    fn a_container_is_named_and_labelled_for_its_pod() {
        let p = web(
            "    workingDir: /srv\n    stdin: true\n    stdinOnce: true\n    tty: true\n",
            "  shareProcessNamespace: true\n",
        );
        let c = ok(&p);
        let r = pod_ref(&p, SOURCE);
        assert_eq!(c.name, format!("k8s_app_web-node1_default_{}_2", r.uid));
        assert_eq!(c.image, "busybox");
        assert_eq!(c.sandbox_id, "sb123");
        let hash = container_hash(&p.spec.as_ref().expect("spec").containers[0]);
        assert_eq!(c.labels, r.container_labels("app", &hash, 2, "sb123"));
        assert_eq!(c.working_dir.as_deref(), Some("/srv"));
        assert!(c.stdin && c.stdin_once && c.tty && c.share_pid && !c.host_pid);
        assert_eq!((c.command.clone(), c.args.clone()), (None, None));
    }

    #[test]
    fn env_values_expand_against_earlier_variables_only() {
        let p = web(
            "    env:\n    - {name: A, value: a}\n    - {name: B, value: \"$(A)-$(C)\"}\n    - {name: C, value: c}\n    - {name: D, value: \"$$(A) $(B)\"}\n    - {name: A, value: again}\n",
            "",
        );
        let c = ok(&p);
        assert_eq!(
            env_of(&c),
            [
                ("A", "again"),
                ("B", "a-$(C)"),
                ("C", "c"),
                ("D", "$(A) a-$(C)")
            ]
        );
    }

    #[test]
    fn command_and_args_expand_against_the_final_environment_without_recursion() {
        let p = web(
            "    command: [sh, -c, \"echo $(GREETING) $(MISSING) $$(GREETING)\"]\n    args: [\"$(REF)\", \"$(PORT)\"]\n    env:\n    - {name: GREETING, value: hi}\n    - {name: REF, value: \"$$(GREETING)\"}\n    - {name: PORT, value: \"80\"}\n",
            "",
        );
        let c = ok(&p);
        assert_eq!(
            c.command,
            Some(vec![
                "sh".into(),
                "-c".into(),
                "echo hi $(MISSING) $(GREETING)".into()
            ])
        );
        assert_eq!(c.args, Some(vec!["$(GREETING)".into(), "80".into()]));
    }

    #[test]
    fn downward_api_field_refs_resolve() {
        let p = web(
            "    env:\n    - {name: NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}\n    - {name: NS, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}\n    - {name: UID, valueFrom: {fieldRef: {fieldPath: metadata.uid}}}\n    - {name: APP, valueFrom: {fieldRef: {fieldPath: \"metadata.labels['app']\"}}}\n    - {name: NONE, valueFrom: {fieldRef: {fieldPath: \"metadata.labels['nope']\"}}}\n    - {name: TEAM, valueFrom: {fieldRef: {fieldPath: \"metadata.annotations['team']\"}}}\n    - {name: NODE, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}\n    - {name: SA, valueFrom: {fieldRef: {fieldPath: spec.serviceAccountName}}}\n    - {name: MSG, value: \"$(NAME) on $(NODE)\"}\n",
            "  serviceAccountName: robot\n",
        );
        let c = ok(&p);
        let uid = p.metadata.uid.clone().expect("uid");
        assert_eq!(
            env_of(&c),
            [
                ("NAME", "web-node1"),
                ("NS", "default"),
                ("UID", uid.as_str()),
                ("APP", "web"),
                ("NONE", ""),
                ("TEAM", "a"),
                ("NODE", "node1"),
                ("SA", "robot"),
                ("MSG", "web-node1 on node1"),
            ]
        );
    }

    fn ctx_with_objects() -> PodSetup {
        use k8s_openapi::api::core::v1::{ConfigMap, Secret};
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
        use k8s_openapi::ByteString;
        let meta = |name: &str| ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            ..Default::default()
        };
        let store = crate::pod::objects::ObjectStore::default();
        let cm = ConfigMap {
            metadata: meta("cm"),
            data: Some(
                [
                    ("color".to_string(), "blue".to_string()),
                    ("size".to_string(), "L".to_string()),
                    ("bad-1".to_string(), "x".to_string()),
                    ("1st".to_string(), "y".to_string()),
                ]
                .into(),
            ),
            ..Default::default()
        };
        let secret = Secret {
            metadata: meta("s"),
            data: Some([("password".to_string(), ByteString(b"hunter2".to_vec()))].into()),
            ..Default::default()
        };
        store.publish(
            [("default/cm".to_string(), Arc::new(cm))].into(),
            [("default/s".to_string(), Arc::new(secret))].into(),
        );
        PodSetup {
            objects: store.current(),
            pod_ip: "172.17.0.7".into(),
            host_ip: "10.0.0.2".into(),
            node: NodeCapacity {
                cpu_milli: 2000,
                memory_bytes: 1 << 30,
                ephemeral_storage_bytes: 1 << 30,
            },
            ..Default::default()
        }
    }

    #[test]
    fn env_from_config_maps_and_secrets_with_prefixes_then_env_overrides() {
        let p = web(
            "    envFrom:\n    - {configMapRef: {name: cm}}\n    - {secretRef: {name: s}, prefix: S_}\n    - {configMapRef: {name: missing, optional: true}}\n    env:\n    - {name: color, value: red}\n    - {name: PW, valueFrom: {secretKeyRef: {name: s, key: password}}}\n    - {name: SIZE, valueFrom: {configMapKeyRef: {name: cm, key: size}}}\n    - {name: OPT, valueFrom: {configMapKeyRef: {name: cm, key: nope, optional: true}}}\n    - {name: MSG, value: \"$(color)-$(S_password)-$(OPT)\"}\n",
            "",
        );
        let ctx = ctx_with_objects();
        let c = with_ctx(&p, &ctx).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            env_of(&c),
            [
                ("bad-1", "x"),
                ("color", "red"),
                ("size", "L"),
                ("S_password", "hunter2"),
                ("PW", "hunter2"),
                ("SIZE", "L"),
                ("MSG", "red-hunter2-$(OPT)"),
            ]
        );
        let skipped = invalid_env_from_keys(
            &p,
            &p.spec.as_ref().expect("spec").containers[0],
            &ctx.objects,
        );
        assert_eq!(
            skipped,
            ["Keys [1st] from the EnvFrom configMap default/cm were skipped since they are considered invalid environment variable names."]
        );
    }

    #[test]
    fn missing_required_objects_and_keys_are_config_errors_naming_them() {
        let ctx = ctx_with_objects();
        let cases = [
            (
                "    env: [{name: K, valueFrom: {configMapKeyRef: {name: other, key: k}}}]\n",
                "env \"K\" of container \"app\": configmap \"other\" not found in namespace \"default\" (key \"k\")",
            ),
            (
                "    env: [{name: K, valueFrom: {secretKeyRef: {name: s, key: user}}}]\n",
                "env \"K\" of container \"app\": couldn't find key \"user\" in secret default/s",
            ),
            (
                "    envFrom: [{secretRef: {name: gone}}]\n",
                "secret \"gone\" not found in namespace \"default\" (envFrom of container \"app\")",
            ),
        ];
        for (extra, want) in cases {
            assert_eq!(
                with_ctx(&web(extra, ""), &ctx),
                Err(ConfigError(want.into())),
                "{extra}"
            );
        }
    }

    #[test]
    fn status_and_resource_field_refs_resolve_from_the_context() {
        let p = web(
            "    resources: {limits: {memory: 64Mi}, requests: {cpu: 250m}}\n    env:\n    - {name: IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}\n    - {name: IPS, valueFrom: {fieldRef: {fieldPath: status.podIPs}}}\n    - {name: HOST, valueFrom: {fieldRef: {fieldPath: status.hostIP}}}\n    - {name: MEM, valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}}\n    - {name: CPU, valueFrom: {resourceFieldRef: {resource: limits.cpu}}}\n    - {name: REQ, valueFrom: {resourceFieldRef: {resource: requests.cpu, divisor: 1m}}}\n",
            "",
        );
        let c = with_ctx(&p, &ctx_with_objects()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            env_of(&c),
            [
                ("IP", "172.17.0.7"),
                ("IPS", "172.17.0.7"),
                ("HOST", "10.0.0.2"),
                ("MEM", "64"),
                ("CPU", "2"),
                ("REQ", "250"),
            ]
        );
    }

    #[test]
    fn the_hosts_file_and_termination_log_are_mounted_unless_the_container_has_its_own() {
        let mut ctx = ctx_with_objects();
        ctx.pod_dir = Some(PathBuf::from("/r/pods/u"));
        ctx.hosts_file = Some("/r/pods/u/etc-hosts".into());
        let c = with_ctx(&web("", ""), &ctx).unwrap_or_else(|e| panic!("{e}"));
        let m = |h: &str, c: &str| Mount {
            host_path: h.into(),
            container_path: c.into(),
            read_only: false,
            propagation: None,
        };
        assert_eq!(
            c.mounts,
            [
                m("/r/pods/u/etc-hosts", "/etc/hosts"),
                m(
                    "/r/pods/u/containers/app/2/termination-log",
                    "/dev/termination-log"
                ),
            ]
        );
        let p = web(
            "    terminationMessagePath: /tmp/msg\n    volumeMounts: [{name: data, mountPath: /etc/hosts}]\n",
            VOLUMES,
        );
        ctx.volumes.insert("data".into(), "/v".into());
        let c = with_ctx(&p, &ctx).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.mounts,
            [
                m("/v", "/etc/hosts"),
                m("/r/pods/u/containers/app/2/termination-log", "/tmp/msg"),
            ]
        );
        let c = with_ctx(&web("", "  hostNetwork: true\n"), &ctx).unwrap_or_else(|e| panic!("{e}"));
        assert!(c.mounts.iter().all(|m| m.container_path != "/etc/hosts"));
    }

    #[test]
    fn api_data_volumes_are_always_mounted_read_only() {
        let p = web(
            "    volumeMounts: [{name: c, mountPath: /c}, {name: e, mountPath: /e}]\n",
            "  volumes: [{name: c, configMap: {name: cm}}, {name: e, emptyDir: {}}]\n",
        );
        let c = config(&p, &[("c", "/vc"), ("e", "/ve")]).expect("config");
        let ro: Vec<bool> = c.mounts.iter().map(|m| m.read_only).collect();
        assert_eq!(ro, [true, false]);
    }

    #[test]
    fn unsupported_env_sources_are_config_errors_naming_the_variable() {
        let p = web(
            "    env: [{name: F, valueFrom: {fileKeyRef: {volumeName: v, path: p, key: k}}}]\n",
            "  volumes: [{name: v, emptyDir: {}}]\n",
        );
        assert_eq!(
            config(&p, &[]),
            Err(ConfigError(
                "env \"F\" of container \"app\": valueFrom.fileKeyRef is not supported".into()
            ))
        );
    }

    #[test]
    fn cpu_and_memory_convert_to_docker_units() {
        let c = ok(&web("    resources: {requests: {cpu: 250m, memory: 64Mi}, limits: {cpu: 500m, memory: 128Mi}}\n", ""));
        assert_eq!(
            c.resources,
            Resources {
                cpu_shares: Some(256),
                cpu_quota: Some(50_000),
                cpu_period: Some(100_000),
                memory_limit: Some(128 * 1024 * 1024),
            }
        );
    }

    #[test]
    fn no_cpu_request_gives_minimum_shares_and_no_limits() {
        let c = ok(&web("", ""));
        assert_eq!(
            c.resources,
            Resources {
                cpu_shares: Some(2),
                ..Resources::default()
            }
        );
    }

    #[test]
    fn a_cpu_limit_alone_sets_shares_too_and_tiny_quotas_are_raised() {
        let c = ok(&web("    resources: {limits: {cpu: 5m}}\n", ""));
        assert_eq!(c.resources.cpu_shares, Some(5));
        assert_eq!(c.resources.cpu_quota, Some(1000));
        let c = ok(&web("    resources: {limits: {cpu: \"2\"}}\n", ""));
        assert_eq!(
            (c.resources.cpu_shares, c.resources.cpu_quota),
            (Some(2048), Some(200_000))
        );
    }

    #[test]
    fn share_and_quota_conversions_match_the_kubelet() {
        assert_eq!(milli_cpu_to_shares(0), 2);
        assert_eq!(milli_cpu_to_shares(1), 2);
        assert_eq!(milli_cpu_to_shares(1000), 1024);
        assert_eq!(milli_cpu_to_shares(1_000_000), 262_144);
        assert_eq!(milli_cpu_to_quota(1), 1000);
        assert_eq!(milli_cpu_to_quota(1500), 150_000);
    }

    #[test]
    fn run_as_user_and_group_combine_with_the_container_winning() {
        let p = web("    securityContext: {runAsUser: 1000}\n", "  securityContext: {runAsUser: 1, runAsGroup: 3000, fsGroup: 2000, supplementalGroups: [4000, 5000]}\n");
        let s = ok(&p).security;
        assert_eq!(s.user.as_deref(), Some("1000:3000"));
        assert_eq!(s.group_add, ["2000", "4000", "5000"]);
        let s = ok(&web("", "  securityContext: {runAsUser: 7}\n")).security;
        assert_eq!(s.user.as_deref(), Some("7"));
        assert_eq!(ok(&web("", "")).security, Security::default());
        let err =
            config(&web("    securityContext: {runAsGroup: 5}\n", ""), &[]).expect_err("no user");
        assert!(
            err.0
                .contains("runAsGroup is specified without a runAsUser"),
            "{err}"
        );
    }

    #[test]
    fn privileged_read_only_and_capabilities_are_passed_as_given() {
        let p = web("    securityContext: {privileged: true, readOnlyRootFilesystem: true, capabilities: {add: [NET_ADMIN, SYS_TIME], drop: [ALL]}}\n", "");
        let s = ok(&p).security;
        assert!(s.privileged && s.read_only_rootfs);
        assert_eq!(s.cap_add, ["NET_ADMIN", "SYS_TIME"]);
        assert_eq!(s.cap_drop, ["ALL"]);
    }

    const VOLUMES: &str =
        "  volumes: [{name: data, emptyDir: {}}, {name: conf, hostPath: {path: /srv/conf}}]\n";

    #[test]
    fn volume_mounts_become_bind_mounts_with_sub_paths_and_propagation() {
        let p = web(
            "    securityContext: {privileged: true}\n    env: [{name: SUB, value: logs}]\n    volumeMounts:\n    - {name: data, mountPath: /data}\n    - {name: conf, mountPath: /etc/app, readOnly: true, subPath: app/v1, mountPropagation: HostToContainer}\n    - {name: data, mountPath: /shared, mountPropagation: Bidirectional}\n    - {name: data, mountPath: /logs, subPathExpr: \"$(SUB)/x\", mountPropagation: None}\n",
            VOLUMES,
        );
        let c = config(
            &p,
            &[
                ("data", "/var/lib/rkubelet/pods/u/data"),
                ("conf", "/srv/conf/"),
            ],
        )
        .expect("config");
        let m = |h: &str, c: &str, ro: bool, prop: Option<&str>| Mount {
            host_path: h.into(),
            container_path: c.into(),
            read_only: ro,
            propagation: prop.map(str::to_string),
        };
        assert_eq!(
            c.mounts,
            [
                m("/var/lib/rkubelet/pods/u/data", "/data", false, None),
                m("/srv/conf/app/v1", "/etc/app", true, Some("rslave")),
                m(
                    "/var/lib/rkubelet/pods/u/data",
                    "/shared",
                    false,
                    Some("rshared")
                ),
                m("/var/lib/rkubelet/pods/u/data/logs/x", "/logs", false, None),
            ]
        );
    }

    #[test]
    fn a_mount_of_an_unprepared_volume_is_a_config_error() {
        let p = web(
            "    volumeMounts: [{name: data, mountPath: /data}]\n",
            VOLUMES,
        );
        assert_eq!(
            config(&p, &[("conf", "/srv/conf")]),
            Err(ConfigError(
                "volume \"data\" of container \"app\" is not available".into()
            ))
        );
    }

    #[test]
    fn a_sub_path_escaping_its_volume_is_a_config_error() {
        let p = web("    env: [{name: UP, value: ..}]\n    volumeMounts: [{name: data, mountPath: /d, subPathExpr: \"$(UP)/etc\"}]\n", VOLUMES);
        let err = config(&p, &[("data", "/v")]).expect_err("escapes");
        assert!(err.0.contains("must not contain '..'"), "{err}");
        let p = web("    env: [{name: ABS, value: /etc}]\n    volumeMounts: [{name: data, mountPath: /d, subPathExpr: \"$(ABS)\"}]\n", VOLUMES);
        let err = config(&p, &[("data", "/v")]).expect_err("absolute");
        assert!(err.0.contains("must be a relative path"), "{err}");
    }

    #[test]
    fn host_pid_is_passed_through() {
        let c = ok(&web("", "  hostPID: true\n"));
        assert!(c.host_pid && !c.share_pid);
    }
}
