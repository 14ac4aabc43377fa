//! Pod validation mirroring the API server's.
//!
//! Owns the checks the API server would run on a static pod, with its
//! messages (`spec.containers[1].name: Duplicate value: "web"`): names,
//! containers, images, ports, volumes and mounts, env names, probes and
//! lifecycle handlers, grace periods and deadlines, resources and the enum
//! fields. It runs on the identified pod *before* defaulting, so fields the
//! API server would default (empty protocol, pull policy, a volume without a
//! source, `hostPort` 0 with `hostNetwork`) are accepted here as the API
//! server accepts them. It does not check what only a cluster knows (node
//! admission, quota, existence of referenced ConfigMaps).
//!
//! It also validates the `ConfigMap` and `Secret` objects of a manifest
//! ([`validate_config_map`], [`validate_secret`]): names, key syntax and the
//! 1 MiB size limit.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{
    ConfigMap, Container, ContainerPort, DownwardAPIVolumeFile, HTTPGetAction, KeyToPath,
    LifecycleHandler, ObjectFieldSelector, Pod, PodSpec, Probe, ResourceFieldSelector,
    ResourceRequirements, Secret, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::ManifestError;
use crate::k8s::lifecycle::{PullPolicy, RestartPolicy};
use crate::k8s::names::{self, local_path_problem};
use crate::k8s::quantity::Quantity;

/// Validates an identified pod. The returned error names the field path.
///
/// Fails with every problem found, joined by `; `; `field` is the first
/// problem's path.
pub fn validate_pod(pod: &Pod) -> Result<(), ManifestError> {
    let mut errs = Errors::default();
    validate_metadata(pod, &mut errs);
    match &pod.spec {
        Some(spec) => validate_spec(spec, &mut errs),
        None => errs.required("spec.containers", ""),
    }
    errs.into_result()
}

/// Validates a workload's pod template spec as the API server validates a
/// pod's: the errors' fields are prefixed with `prefix` (e.g.
/// `spec.template.`).
///
/// Fails with every problem found, joined by `; `.
pub fn validate_template_spec(spec: &PodSpec, prefix: &str) -> Result<(), ManifestError> {
    let mut errs = Errors::default();
    validate_spec(spec, &mut errs);
    for (field, _) in &mut errs.0 {
        *field = format!("{prefix}{field}");
    }
    errs.into_result()
}

const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const ENV_NAME_MSG: &str =
    "a valid environment variable name must consist only of printable ASCII characters other than '='";

/// The API server's `field.ErrorList`, rendered its way.
#[derive(Default)]
struct Errors(Vec<(String, String)>);

impl Errors {
    fn push(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.0.push((field.into(), reason.into()));
    }
    fn required(&mut self, field: impl Into<String>, detail: &str) {
        self.push(field, with_detail("Required value", detail));
    }
    fn invalid(&mut self, field: impl Into<String>, value: impl std::fmt::Display, detail: &str) {
        self.push(
            field,
            with_detail(&format!("Invalid value: {value}"), detail),
        );
    }
    fn duplicate(&mut self, field: impl Into<String>, value: &str) {
        self.push(field, format!("Duplicate value: {value:?}"));
    }
    fn not_found(&mut self, field: impl Into<String>, value: &str) {
        self.push(field, format!("Not found: {value:?}"));
    }
    fn forbidden(&mut self, field: impl Into<String>, detail: &str) {
        self.push(field, with_detail("Forbidden", detail));
    }
    fn not_supported(&mut self, field: impl Into<String>, value: &str, supported: &[&str]) {
        let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
        self.push(
            field,
            format!(
                "Unsupported value: {value:?}: supported values: {}",
                list.join(", ")
            ),
        );
    }
    /// Checks an optional enum field; empty means "defaulted later".
    fn one_of(&mut self, field: impl Into<String>, value: Option<&str>, supported: &[&str]) {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            if !supported.contains(&v) {
                self.not_supported(field, v, supported);
            }
        }
    }

    fn into_result(self) -> Result<(), ManifestError> {
        let mut iter = self.0.into_iter();
        let Some((field, reason)) = iter.next() else {
            return Ok(());
        };
        let mut text = reason;
        for (f, r) in iter {
            text.push_str(&format!("; {f}: {r}"));
        }
        let mut err = ManifestError::new("", text);
        err.field = Some(field);
        Err(err)
    }
}

fn with_detail(head: &str, detail: &str) -> String {
    if detail.is_empty() {
        head.to_string()
    } else {
        format!("{head}: {detail}")
    }
}

fn q(s: &str) -> String {
    format!("{s:?}")
}

fn check_label(errs: &mut Errors, field: &str, value: &str) {
    if value.len() > names::DNS1123_LABEL_MAX_LEN {
        errs.invalid(field, q(value), "must be no more than 63 characters");
    }
    if !names::is_dns1123_label_syntax(value) {
        errs.invalid(field, q(value), DNS1123_LABEL_MSG);
    }
}

fn check_subdomain(errs: &mut Errors, field: &str, value: &str) {
    if value.len() > names::DNS1123_SUBDOMAIN_MAX_LEN {
        errs.invalid(field, q(value), "must be no more than 253 characters");
    }
    if !names::is_dns1123_subdomain_syntax(value) {
        errs.invalid(field, q(value), DNS1123_SUBDOMAIN_MSG);
    }
}

/// IANA_SVC_NAME: the API server's messages for port names.
fn check_port_name(errs: &mut Errors, field: &str, name: &str) {
    if name.len() > 15 {
        errs.invalid(field, q(name), "must be no more than 15 characters");
    }
    if !name
        .bytes()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
    {
        errs.invalid(
            field,
            q(name),
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
        );
    }
    if name.contains("--") {
        errs.invalid(field, q(name), "must not contain consecutive hyphens");
    }
    if !name.bytes().any(|c| c.is_ascii_lowercase()) {
        errs.invalid(field, q(name), "must contain at least one letter (a-z)");
    }
    if name.starts_with('-') || name.ends_with('-') {
        errs.invalid(field, q(name), "must not begin or end with a hyphen");
    }
}

fn check_port_number(errs: &mut Errors, field: &str, port: i32) {
    if !(1..=65535).contains(&port) {
        errs.invalid(field, port, "must be between 1 and 65535, inclusive");
    }
}

fn check_min(errs: &mut Errors, field: &str, value: Option<i64>, min: i64) {
    if let Some(v) = value {
        if v < min {
            errs.invalid(field, v, &format!("must be greater than or equal to {min}"));
        }
    }
}

fn validate_metadata(pod: &Pod, errs: &mut Errors) {
    match pod.metadata.name.as_deref() {
        None | Some("") => errs.required("metadata.name", "name or generateName is required"),
        Some(name) => check_subdomain(errs, "metadata.name", name),
    }
    if let Some(ns) = pod.metadata.namespace.as_deref() {
        check_label(errs, "metadata.namespace", ns);
    }
}

fn validate_spec(spec: &PodSpec, errs: &mut Errors) {
    let volumes = validate_volumes(spec.volumes.as_deref().unwrap_or_default(), errs);
    let host_network = spec.host_network.unwrap_or(false);

    if spec.containers.is_empty() {
        errs.required("spec.containers", "");
    }
    let init = spec.init_containers.as_deref().unwrap_or_default();
    let mut names = HashSet::new();
    for (i, c) in init.iter().enumerate() {
        let path = format!("spec.initContainers[{i}]");
        validate_container(c, &path, ContainerKind::Init, &volumes, &mut names, errs);
    }
    for (i, c) in spec.containers.iter().enumerate() {
        let path = format!("spec.containers[{i}]");
        validate_container(c, &path, ContainerKind::App, &volumes, &mut names, errs);
    }
    check_host_ports(init, "spec.initContainers", errs);
    check_host_ports(&spec.containers, "spec.containers", errs);
    if host_network {
        for (list, path) in [
            (init, "spec.initContainers"),
            (&spec.containers[..], "spec.containers"),
        ] {
            for (ci, c) in list.iter().enumerate() {
                for (pi, p) in c.ports.iter().flatten().enumerate() {
                    let host = p.host_port.unwrap_or(0);
                    if host != 0 && host != p.container_port {
                        errs.invalid(
                            format!("{path}[{ci}].ports[{pi}].hostPort"),
                            host,
                            "must match `containerPort` when `hostNetwork` is true",
                        );
                    }
                }
            }
        }
    }

    errs.one_of(
        "spec.restartPolicy",
        spec.restart_policy.as_deref(),
        &RestartPolicy::NAMES,
    );
    errs.one_of(
        "spec.dnsPolicy",
        spec.dns_policy.as_deref(),
        &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
    );
    if spec.dns_policy.as_deref() == Some("None") && spec.dns_config.is_none() {
        errs.required(
            "spec.dnsConfig",
            "must provide `dnsConfig` when `dnsPolicy` is None",
        );
    }
    if let Some(dns) = &spec.dns_config {
        let servers = dns.nameservers.as_deref().unwrap_or_default();
        if servers.len() > 3 {
            errs.invalid(
                "spec.dnsConfig.nameservers",
                format!("{servers:?}"),
                "must not have more than 3 nameservers",
            );
        }
        for (i, s) in servers.iter().enumerate() {
            if s.parse::<IpAddr>().is_err() {
                errs.invalid(
                    format!("spec.dnsConfig.nameservers[{i}]"),
                    q(s),
                    "must be a valid IP address",
                );
            }
        }
        if spec.dns_policy.as_deref() == Some("None") && servers.is_empty() {
            errs.required(
                "spec.dnsConfig.nameservers",
                "must provide at least one DNS nameserver when `dnsPolicy` is None",
            );
        }
    }
    check_min(
        errs,
        "spec.terminationGracePeriodSeconds",
        spec.termination_grace_period_seconds,
        0,
    );
    if let Some(d) = spec.active_deadline_seconds {
        if !(1..=i64::from(i32::MAX)).contains(&d) {
            errs.invalid(
                "spec.activeDeadlineSeconds",
                d,
                "must be between 1 and 2147483647, inclusive",
            );
        }
    }
    if let Some(h) = spec.hostname.as_deref().filter(|h| !h.is_empty()) {
        check_label(errs, "spec.hostname", h);
    }
    if let Some(s) = spec.subdomain.as_deref().filter(|s| !s.is_empty()) {
        check_label(errs, "spec.subdomain", s);
    }
    for (i, alias) in spec.host_aliases.iter().flatten().enumerate() {
        if alias.ip.parse::<IpAddr>().is_err() {
            errs.invalid(
                format!("spec.hostAliases[{i}].ip"),
                q(&alias.ip),
                "must be a valid IP address",
            );
        }
        for (j, h) in alias.hostnames.iter().flatten().enumerate() {
            check_subdomain(errs, &format!("spec.hostAliases[{i}].hostnames[{j}]"), h);
        }
    }
    if let Some(sc) = &spec.security_context {
        check_id(errs, "spec.securityContext.runAsUser", sc.run_as_user);
        check_id(errs, "spec.securityContext.runAsGroup", sc.run_as_group);
        check_id(errs, "spec.securityContext.fsGroup", sc.fs_group);
        for (i, g) in sc.supplemental_groups.iter().flatten().enumerate() {
            check_id(
                errs,
                &format!("spec.securityContext.supplementalGroups[{i}]"),
                Some(*g),
            );
        }
    }
}

fn check_id(errs: &mut Errors, field: &str, id: Option<i64>) {
    if let Some(id) = id {
        if !(0..=i64::from(i32::MAX)).contains(&id) {
            errs.invalid(field, id, "must be between 0 and 2147483647, inclusive");
        }
    }
}

/// Validates `spec.volumes`; returns the names of the declared volumes.
fn validate_volumes(volumes: &[Volume], errs: &mut Errors) -> HashSet<String> {
    let mut names = HashSet::new();
    for (i, v) in volumes.iter().enumerate() {
        let path = format!("spec.volumes[{i}]");
        if v.name.is_empty() {
            errs.required(format!("{path}.name"), "");
        } else {
            check_label(errs, &format!("{path}.name"), &v.name);
            if !names.insert(v.name.clone()) {
                errs.duplicate(format!("{path}.name"), &v.name);
            }
        }
        // Every key but `name` is a volume source. None at all is allowed:
        // the API server defaults it to `emptyDir: {}`.
        let sources: Vec<String> = match serde_json::to_value(v) {
            Ok(serde_json::Value::Object(map)) => {
                map.keys().filter(|k| *k != "name").cloned().collect()
            }
            _ => Vec::new(),
        };
        if let Some(second) = sources.get(1) {
            errs.forbidden(
                format!("{path}.{second}"),
                "may not specify more than 1 volume type",
            );
        }
        if let Some(hp) = &v.host_path {
            if hp.path.is_empty() {
                errs.required(format!("{path}.hostPath.path"), "");
            } else if hp.path.split('/').any(|part| part == "..") {
                errs.invalid(
                    format!("{path}.hostPath.path"),
                    q(&hp.path),
                    "must not contain '..'",
                );
            }
            errs.one_of(
                format!("{path}.hostPath.type"),
                hp.type_.as_deref(),
                &[
                    "DirectoryOrCreate",
                    "Directory",
                    "FileOrCreate",
                    "File",
                    "Socket",
                    "CharDevice",
                    "BlockDevice",
                ],
            );
        }
        if let Some(cm) = &v.config_map {
            if cm.name.is_empty() {
                errs.required(format!("{path}.configMap.name"), "");
            }
            check_mode(
                errs,
                &format!("{path}.configMap.defaultMode"),
                cm.default_mode,
            );
            check_key_to_paths(errs, &format!("{path}.configMap"), cm.items.as_deref());
        }
        if let Some(s) = &v.secret {
            if s.secret_name.as_deref().is_none_or(str::is_empty) {
                errs.required(format!("{path}.secret.secretName"), "");
            }
            check_mode(errs, &format!("{path}.secret.defaultMode"), s.default_mode);
            check_key_to_paths(errs, &format!("{path}.secret"), s.items.as_deref());
        }
        if let Some(d) = &v.downward_api {
            let dpath = format!("{path}.downwardAPI");
            check_mode(errs, &format!("{dpath}.defaultMode"), d.default_mode);
            check_downward_files(errs, &dpath, d.items.as_deref().unwrap_or_default());
        }
        if let Some(p) = &v.projected {
            let ppath = format!("{path}.projected");
            check_mode(errs, &format!("{ppath}.defaultMode"), p.default_mode);
            let mut targets = HashSet::new();
            for (j, source) in p.sources.iter().flatten().enumerate() {
                let spath = format!("{ppath}.sources[{j}]");
                let mut items: Vec<&str> = Vec::new();
                if let Some(cm) = &source.config_map {
                    if cm.name.is_empty() {
                        errs.required(format!("{spath}.configMap.name"), "");
                    }
                    let cpath = format!("{spath}.configMap");
                    check_key_to_paths(errs, &cpath, cm.items.as_deref());
                    items.extend(cm.items.iter().flatten().map(|i| i.path.as_str()));
                }
                if let Some(s) = &source.secret {
                    if s.name.is_empty() {
                        errs.required(format!("{spath}.secret.name"), "");
                    }
                    check_key_to_paths(errs, &format!("{spath}.secret"), s.items.as_deref());
                    items.extend(s.items.iter().flatten().map(|i| i.path.as_str()));
                }
                if let Some(d) = &source.downward_api {
                    let files = d.items.as_deref().unwrap_or_default();
                    check_downward_files(errs, &format!("{spath}.downwardAPI"), files);
                    items.extend(files.iter().map(|f| f.path.as_str()));
                }
                for item in items {
                    if !targets.insert(item.to_string()) {
                        errs.invalid(&spath, q(item), "conflicting duplicate paths");
                    }
                }
            }
        }
    }
    names
}

/// `items` of a configMap or secret volume (or projection).
fn check_key_to_paths(errs: &mut Errors, path: &str, items: Option<&[KeyToPath]>) {
    for (i, item) in items.unwrap_or_default().iter().enumerate() {
        let ipath = format!("{path}.items[{i}]");
        if item.key.is_empty() {
            errs.required(format!("{ipath}.key"), "");
        }
        check_volume_file_path(errs, &format!("{ipath}.path"), &item.path);
        check_mode(errs, &format!("{ipath}.mode"), item.mode);
    }
}

/// A file path inside an API-data volume: relative, no `..` element, not
/// starting with `..` (the atomic writer's names).
fn check_volume_file_path(errs: &mut Errors, field: &str, p: &str) {
    if p.is_empty() {
        errs.required(field, "");
    } else if let Some(problem) = local_path_problem(p) {
        errs.invalid(field, q(p), problem);
    } else if p.starts_with("..") {
        errs.invalid(field, q(p), "must not start with '..'");
    }
}

/// Field paths a downwardAPI volume file may use (plus subscripted labels
/// and annotations).
const VOLUME_FIELD_PATHS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "metadata.labels",
    "metadata.annotations",
];

/// Field paths an env `fieldRef` may use (plus subscripted labels and
/// annotations).
const ENV_FIELD_PATHS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];

/// Resources a `resourceFieldRef` may name.
const RESOURCE_FIELDS: &[&str] = &[
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
];

fn check_downward_files(errs: &mut Errors, path: &str, files: &[DownwardAPIVolumeFile]) {
    for (i, f) in files.iter().enumerate() {
        let fpath = format!("{path}.items[{i}]");
        check_volume_file_path(errs, &format!("{fpath}.path"), &f.path);
        check_mode(errs, &format!("{fpath}.mode"), f.mode);
        match (&f.field_ref, &f.resource_field_ref) {
            (Some(fr), None) => {
                check_field_ref(errs, &format!("{fpath}.fieldRef"), fr, VOLUME_FIELD_PATHS)
            }
            (None, Some(rf)) => {
                let rpath = format!("{fpath}.resourceFieldRef");
                if rf.container_name.as_deref().is_none_or(str::is_empty) {
                    errs.required(format!("{rpath}.containerName"), "");
                }
                check_resource_field_ref(errs, &rpath, rf);
            }
            (None, None) => errs.required(
                fpath,
                "one of `fieldRef` and `resourceFieldRef` is required",
            ),
            (Some(_), Some(_)) => errs.invalid(
                fpath,
                "\"\"",
                "fieldRef and resourceFieldRef can not be specified simultaneously",
            ),
        }
    }
}

fn check_field_ref(errs: &mut Errors, path: &str, f: &ObjectFieldSelector, allowed: &[&str]) {
    let p = f.field_path.as_str();
    if p.is_empty() {
        errs.required(format!("{path}.fieldPath"), "");
        return;
    }
    if let Some(v) = f.api_version.as_deref().filter(|v| !v.is_empty()) {
        if v != "v1" {
            errs.not_supported(format!("{path}.apiVersion"), v, &["v1"]);
        }
    }
    let subscripted = ["metadata.labels['", "metadata.annotations['"]
        .iter()
        .any(|prefix| {
            p.strip_prefix(prefix)
                .and_then(|rest| rest.strip_suffix("']"))
                .is_some_and(|key| !key.is_empty())
        });
    if !subscripted && !allowed.contains(&p) {
        errs.not_supported(format!("{path}.fieldPath"), p, allowed);
    }
}

fn check_resource_field_ref(errs: &mut Errors, path: &str, r: &ResourceFieldSelector) {
    if r.resource.is_empty() {
        errs.required(format!("{path}.resource"), "");
        return;
    }
    if !RESOURCE_FIELDS.contains(&r.resource.as_str()) {
        errs.not_supported(format!("{path}.resource"), &r.resource, RESOURCE_FIELDS);
        return;
    }
    let Some(divisor) = &r.divisor else { return };
    let cpu = r.resource.ends_with(".cpu");
    let allowed: &[&str] = if cpu {
        &["1m", "1"]
    } else {
        &[
            "1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei",
        ]
    };
    // The API server compares values, so `1000m` is as good as `1`.
    let value = Quantity::parse(&divisor.0).ok();
    let ok = value.is_some_and(|d| {
        d.is_zero()
            || allowed
                .iter()
                .filter_map(|a| Quantity::parse(a).ok())
                .any(|a| a == d)
    });
    if !ok {
        let detail = if cpu {
            "only divisor's values 1m and 1 are supported with the cpu resource"
        } else {
            "only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei are supported with the memory resource"
        };
        errs.invalid(format!("{path}.divisor"), q(&divisor.0), detail);
    }
}

fn check_mode(errs: &mut Errors, field: &str, mode: Option<i32>) {
    if let Some(m) = mode {
        if !(0..=0o777).contains(&m) {
            errs.invalid(
                field,
                m,
                "must be a number between 0 and 0777 (octal), both inclusive",
            );
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ContainerKind {
    Init,
    App,
}

fn validate_container(
    c: &Container,
    path: &str,
    kind: ContainerKind,
    volumes: &HashSet<String>,
    names: &mut HashSet<String>,
    errs: &mut Errors,
) {
    if c.name.is_empty() {
        errs.required(format!("{path}.name"), "");
    } else {
        check_label(errs, &format!("{path}.name"), &c.name);
        if !names.insert(c.name.clone()) {
            errs.duplicate(format!("{path}.name"), &c.name);
        }
    }
    match c.image.as_deref() {
        None | Some("") => errs.required(format!("{path}.image"), ""),
        Some(image) if image.trim() != image => errs.invalid(
            format!("{path}.image"),
            q(image),
            "must not have leading or trailing whitespace",
        ),
        Some(_) => {}
    }
    errs.one_of(
        format!("{path}.imagePullPolicy"),
        c.image_pull_policy.as_deref(),
        &PullPolicy::NAMES,
    );
    errs.one_of(
        format!("{path}.terminationMessagePolicy"),
        c.termination_message_policy.as_deref(),
        &["File", "FallbackToLogsOnError"],
    );
    let sidecar = match (kind, c.restart_policy.as_deref()) {
        (_, None) => false,
        (ContainerKind::Init, Some(p)) => {
            let always = RestartPolicy::Always.as_str();
            errs.one_of(format!("{path}.restartPolicy"), Some(p), &[always]);
            p == always
        }
        (ContainerKind::App, Some(_)) => {
            errs.forbidden(
                format!("{path}.restartPolicy"),
                "may not be set for non-init containers",
            );
            false
        }
    };

    validate_ports(c.ports.as_deref().unwrap_or_default(), path, errs);
    validate_env(c, path, errs);
    validate_mounts(c, path, volumes, errs);
    if let Some(r) = &c.resources {
        validate_resources(r, &format!("{path}.resources"), errs);
    }

    let probes = [
        ("livenessProbe", &c.liveness_probe),
        ("readinessProbe", &c.readiness_probe),
        ("startupProbe", &c.startup_probe),
    ];
    for (name, probe) in probes {
        let Some(probe) = probe else { continue };
        let ppath = format!("{path}.{name}");
        if kind == ContainerKind::Init && !sidecar {
            errs.forbidden(
                &ppath,
                "may not be set for init containers without restartPolicy=Always",
            );
            continue;
        }
        validate_probe(probe, &ppath, name, errs);
    }
    if let Some(lc) = &c.lifecycle {
        if kind == ContainerKind::Init && !sidecar {
            errs.forbidden(
                format!("{path}.lifecycle"),
                "may not be set for init containers without restartPolicy=Always",
            );
        } else {
            for (name, h) in [("postStart", &lc.post_start), ("preStop", &lc.pre_stop)] {
                if let Some(h) = h {
                    validate_lifecycle_handler(h, &format!("{path}.lifecycle.{name}"), errs);
                }
            }
        }
    }
    if let Some(sc) = &c.security_context {
        check_id(
            errs,
            &format!("{path}.securityContext.runAsUser"),
            sc.run_as_user,
        );
        check_id(
            errs,
            &format!("{path}.securityContext.runAsGroup"),
            sc.run_as_group,
        );
    }
}

fn validate_ports(ports: &[ContainerPort], path: &str, errs: &mut Errors) {
    let mut names = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        let ppath = format!("{path}.ports[{i}]");
        if let Some(name) = p.name.as_deref().filter(|n| !n.is_empty()) {
            check_port_name(errs, &format!("{ppath}.name"), name);
            if !names.insert(name) {
                errs.duplicate(format!("{ppath}.name"), name);
            }
        }
        if p.container_port == 0 {
            errs.required(format!("{ppath}.containerPort"), "");
        } else {
            check_port_number(errs, &format!("{ppath}.containerPort"), p.container_port);
        }
        if let Some(h) = p.host_port.filter(|h| *h != 0) {
            check_port_number(errs, &format!("{ppath}.hostPort"), h);
        }
        errs.one_of(
            format!("{ppath}.protocol"),
            p.protocol.as_deref(),
            &["SCTP", "TCP", "UDP"],
        );
        if let Some(ip) = p.host_ip.as_deref().filter(|ip| !ip.is_empty()) {
            if ip.parse::<IpAddr>().is_err() {
                errs.invalid(
                    format!("{ppath}.hostIP"),
                    q(ip),
                    "must be a valid IP address",
                );
            }
        }
    }
}

/// The API server's `AccumulateUniqueHostPorts`: one (protocol, hostIP,
/// hostPort) per list of containers.
fn check_host_ports(containers: &[Container], path: &str, errs: &mut Errors) {
    let mut seen = HashSet::new();
    for (ci, c) in containers.iter().enumerate() {
        for (pi, p) in c.ports.iter().flatten().enumerate() {
            let port = p.host_port.unwrap_or(0);
            if port == 0 {
                continue;
            }
            let protocol = p
                .protocol
                .as_deref()
                .filter(|s| !s.is_empty())
                .unwrap_or("TCP");
            let key = format!("{protocol}/{}/{port}", p.host_ip.as_deref().unwrap_or(""));
            if !seen.insert(key.clone()) {
                errs.duplicate(format!("{path}[{ci}].ports[{pi}].hostPort"), &key);
            }
        }
    }
}

fn validate_env(c: &Container, path: &str, errs: &mut Errors) {
    for (i, e) in c.env.iter().flatten().enumerate() {
        let epath = format!("{path}.env[{i}]");
        if e.name.is_empty() {
            errs.required(format!("{epath}.name"), "");
        } else if !names::is_relaxed_env_var_name(&e.name) {
            errs.invalid(format!("{epath}.name"), q(&e.name), ENV_NAME_MSG);
        }
        let Some(from) = &e.value_from else { continue };
        if e.value.as_deref().is_some_and(|v| !v.is_empty()) {
            errs.invalid(
                format!("{epath}.valueFrom"),
                "\"\"",
                "may not be specified when `value` is not empty",
            );
        }
        let count = [
            from.field_ref.is_some(),
            from.resource_field_ref.is_some(),
            from.config_map_key_ref.is_some(),
            from.secret_key_ref.is_some(),
            from.file_key_ref.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        match count {
            0 => errs.invalid(
                format!("{epath}.valueFrom"),
                "\"\"",
                "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef`, `secretKeyRef` or `fileKeyRef`",
            ),
            1 => {}
            _ => errs.invalid(format!("{epath}.valueFrom"), "\"\"", "may not have more than one field specified at a time"),
        }
        if let Some(f) = &from.field_ref {
            check_field_ref(
                errs,
                &format!("{epath}.valueFrom.fieldRef"),
                f,
                ENV_FIELD_PATHS,
            );
        }
        if let Some(r) = &from.resource_field_ref {
            let rpath = format!("{epath}.valueFrom.resourceFieldRef");
            check_resource_field_ref(errs, &rpath, r);
        }
        if let Some(k) = &from.config_map_key_ref {
            if k.name.is_empty() {
                errs.required(format!("{epath}.valueFrom.configMapKeyRef.name"), "");
            }
            check_config_key(
                errs,
                &format!("{epath}.valueFrom.configMapKeyRef.key"),
                &k.key,
            );
        }
        if let Some(k) = &from.secret_key_ref {
            if k.name.is_empty() {
                errs.required(format!("{epath}.valueFrom.secretKeyRef.name"), "");
            }
            check_config_key(errs, &format!("{epath}.valueFrom.secretKeyRef.key"), &k.key);
        }
    }
    for (i, e) in c.env_from.iter().flatten().enumerate() {
        let fpath = format!("{path}.envFrom[{i}]");
        match (&e.config_map_ref, &e.secret_ref) {
            (Some(_), Some(_)) => errs.invalid(
                &fpath,
                "\"\"",
                "may not have more than one field specified at a time",
            ),
            (None, None) => errs.invalid(
                &fpath,
                "\"\"",
                "must specify one of: `configMapRef` or `secretRef`",
            ),
            _ => {}
        }
        if e.config_map_ref.as_ref().is_some_and(|r| r.name.is_empty()) {
            errs.required(format!("{fpath}.configMapRef.name"), "");
        }
        if e.secret_ref.as_ref().is_some_and(|r| r.name.is_empty()) {
            errs.required(format!("{fpath}.secretRef.name"), "");
        }
        if let Some(prefix) = e.prefix.as_deref() {
            if !names::is_relaxed_env_var_name(prefix) {
                errs.invalid(
                    format!("{path}.envFrom[{i}].prefix"),
                    q(prefix),
                    ENV_NAME_MSG,
                );
            }
        }
    }
}

fn validate_mounts(c: &Container, path: &str, volumes: &HashSet<String>, errs: &mut Errors) {
    let privileged = c
        .security_context
        .as_ref()
        .and_then(|s| s.privileged)
        .unwrap_or(false);
    let mut paths = HashSet::new();
    for (i, m) in c.volume_mounts.iter().flatten().enumerate() {
        let mpath = format!("{path}.volumeMounts[{i}]");
        if m.name.is_empty() {
            errs.required(format!("{mpath}.name"), "");
        } else if !volumes.contains(&m.name) {
            errs.not_found(format!("{mpath}.name"), &m.name);
        }
        if m.mount_path.is_empty() {
            errs.required(format!("{mpath}.mountPath"), "");
        } else if !paths.insert(m.mount_path.as_str()) {
            errs.invalid(
                format!("{mpath}.mountPath"),
                q(&m.mount_path),
                "must be unique",
            );
        }
        let sub_path = m.sub_path.as_deref().filter(|s| !s.is_empty());
        let sub_path_expr = m.sub_path_expr.as_deref().filter(|s| !s.is_empty());
        if let Some(sp) = sub_path {
            check_local_path(errs, &format!("{mpath}.subPath"), sp);
            if sub_path_expr.is_some() {
                errs.invalid(
                    format!("{mpath}.subPathExpr"),
                    q(sp),
                    "subPathExpr and subPath are mutually exclusive",
                );
            }
        }
        if let Some(sp) = sub_path_expr {
            check_local_path(errs, &format!("{mpath}.subPathExpr"), sp);
        }
        errs.one_of(
            format!("{mpath}.mountPropagation"),
            m.mount_propagation.as_deref(),
            &["Bidirectional", "HostToContainer", "None"],
        );
        if m.mount_propagation.as_deref() == Some("Bidirectional") && !privileged {
            errs.forbidden(
                format!("{mpath}.mountPropagation"),
                "Bidirectional mount propagation is available only to privileged containers",
            );
        }
    }
}

fn check_local_path(errs: &mut Errors, field: &str, p: &str) {
    if let Some(problem) = local_path_problem(p) {
        errs.invalid(field, q(p), problem);
    }
}

fn validate_resources(r: &ResourceRequirements, path: &str, errs: &mut Errors) {
    let mut parse_all = |list: &Option<
        std::collections::BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    >,
                         which: &str| {
        let mut parsed = HashMap::new();
        for (name, quantity) in list.iter().flatten() {
            let field = format!("{path}.{which}[{name}]");
            match Quantity::parse(&quantity.0) {
                Err(e) => errs.invalid(field, q(&quantity.0), &e.0),
                Ok(v) if v.is_negative() => {
                    errs.invalid(field, q(&quantity.0), "must be greater than or equal to 0")
                }
                Ok(v) => {
                    parsed.insert(name.clone(), (v, quantity.0.clone()));
                }
            }
        }
        parsed
    };
    let limits = parse_all(&r.limits, "limits");
    let requests = parse_all(&r.requests, "requests");
    let names: BTreeSet<&String> = requests.keys().collect();
    for name in names {
        let (Some((req, req_text)), Some((lim, lim_text))) = (requests.get(name), limits.get(name))
        else {
            continue;
        };
        if req > lim {
            errs.invalid(
                format!("{path}.requests[{name}]"),
                q(req_text),
                &format!("must be less than or equal to {name} limit of {lim_text}"),
            );
        }
    }
}

fn validate_probe(p: &Probe, path: &str, which: &str, errs: &mut Errors) {
    let handlers = [
        ("exec", p.exec.is_some()),
        ("httpGet", p.http_get.is_some()),
        ("tcpSocket", p.tcp_socket.is_some()),
        ("grpc", p.grpc.is_some()),
    ];
    check_handler_count(&handlers, path, errs);
    if let Some(exec) = &p.exec {
        if exec.command.as_deref().unwrap_or_default().is_empty() {
            errs.required(format!("{path}.exec.command"), "");
        }
    }
    if let Some(h) = &p.http_get {
        validate_http_get(h, &format!("{path}.httpGet"), errs);
    }
    if let Some(t) = &p.tcp_socket {
        check_named_port(errs, &format!("{path}.tcpSocket.port"), &t.port);
    }
    if let Some(g) = &p.grpc {
        check_port_number(errs, &format!("{path}.grpc.port"), g.port);
    }
    check_min(
        errs,
        &format!("{path}.initialDelaySeconds"),
        p.initial_delay_seconds.map(i64::from),
        0,
    );
    for (name, value) in [
        ("timeoutSeconds", p.timeout_seconds),
        ("periodSeconds", p.period_seconds),
        ("successThreshold", p.success_threshold),
        ("failureThreshold", p.failure_threshold),
    ] {
        check_min(errs, &format!("{path}.{name}"), value.map(i64::from), 1);
    }
    if which != "readinessProbe" {
        if let Some(s) = p.success_threshold.filter(|s| *s > 1) {
            errs.invalid(format!("{path}.successThreshold"), s, "must be 1");
        }
    }
    if let Some(g) = p.termination_grace_period_seconds {
        if which == "readinessProbe" {
            errs.invalid(
                format!("{path}.terminationGracePeriodSeconds"),
                g,
                "must not be set for readinessProbes",
            );
        } else if g <= 0 {
            errs.invalid(
                format!("{path}.terminationGracePeriodSeconds"),
                g,
                "must be greater than 0",
            );
        }
    }
}

fn validate_lifecycle_handler(h: &LifecycleHandler, path: &str, errs: &mut Errors) {
    let handlers = [
        ("exec", h.exec.is_some()),
        ("httpGet", h.http_get.is_some()),
        ("tcpSocket", h.tcp_socket.is_some()),
        ("sleep", h.sleep.is_some()),
    ];
    check_handler_count(&handlers, path, errs);
    if let Some(exec) = &h.exec {
        if exec.command.as_deref().unwrap_or_default().is_empty() {
            errs.required(format!("{path}.exec.command"), "");
        }
    }
    if let Some(g) = &h.http_get {
        validate_http_get(g, &format!("{path}.httpGet"), errs);
    }
    if let Some(t) = &h.tcp_socket {
        check_named_port(errs, &format!("{path}.tcpSocket.port"), &t.port);
    }
    if let Some(s) = &h.sleep {
        check_min(errs, &format!("{path}.sleep.seconds"), Some(s.seconds), 0);
    }
}

fn check_handler_count(handlers: &[(&str, bool)], path: &str, errs: &mut Errors) {
    let mut set = handlers.iter().filter(|(_, on)| *on).map(|(name, _)| *name);
    if set.next().is_none() {
        errs.required(path, "must specify a handler type");
    } else if let Some(second) = set.next() {
        errs.forbidden(
            format!("{path}.{second}"),
            "may not specify more than 1 handler type",
        );
    }
}

fn validate_http_get(h: &HTTPGetAction, path: &str, errs: &mut Errors) {
    check_named_port(errs, &format!("{path}.port"), &h.port);
    errs.one_of(
        format!("{path}.scheme"),
        h.scheme.as_deref(),
        &["HTTP", "HTTPS"],
    );
}

fn check_named_port(errs: &mut Errors, field: &str, port: &IntOrString) {
    match port {
        IntOrString::Int(n) => check_port_number(errs, field, *n),
        IntOrString::String(s) => match s.parse::<i32>() {
            Ok(n) => check_port_number(errs, field, n),
            Err(_) => check_port_name(errs, field, s),
        },
    }
}

/// Largest total size of a ConfigMap's or Secret's data (the API server's).
pub const MAX_OBJECT_SIZE: usize = 1024 * 1024;

const CONFIG_KEY_MSG: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";

/// Why `key` cannot be a ConfigMap or Secret key (a file name in a volume).
pub fn config_key_problem(key: &str) -> Option<&'static str> {
    if key.len() > 253 {
        Some("must be no more than 253 characters")
    } else if key.is_empty()
        || !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        Some(CONFIG_KEY_MSG)
    } else if key == "." {
        Some("must not be '.'")
    } else if key == ".." {
        Some("must not be '..'")
    } else if key.starts_with("..") {
        Some("must not start with '..'")
    } else {
        None
    }
}

fn check_config_key(errs: &mut Errors, field: &str, key: &str) {
    if key.is_empty() {
        errs.required(field, "");
    } else if let Some(problem) = config_key_problem(key) {
        errs.invalid(field, q(key), problem);
    }
}

fn validate_object_meta(meta: &ObjectMeta, errs: &mut Errors) {
    match meta.name.as_deref() {
        None | Some("") => errs.required("metadata.name", "name or generateName is required"),
        Some(name) => check_subdomain(errs, "metadata.name", name),
    }
    if let Some(ns) = meta.namespace.as_deref().filter(|n| !n.is_empty()) {
        check_label(errs, "metadata.namespace", ns);
    }
}

fn check_total_size(errs: &mut Errors, total: usize) {
    if total > MAX_OBJECT_SIZE {
        errs.push(
            "data",
            format!("Too long: must have at most {MAX_OBJECT_SIZE} bytes"),
        );
    }
}

/// Validates a ConfigMap like the API server: name, keys (file names, not
/// in both `data` and `binaryData`), total size at most 1 MiB.
pub fn validate_config_map(cm: &ConfigMap) -> Result<(), ManifestError> {
    let mut errs = Errors::default();
    validate_object_meta(&cm.metadata, &mut errs);
    let mut total = 0;
    for (key, value) in cm.data.iter().flatten() {
        check_config_key(&mut errs, &format!("data[{key}]"), key);
        total += value.len();
    }
    for (key, value) in cm.binary_data.iter().flatten() {
        check_config_key(&mut errs, &format!("binaryData[{key}]"), key);
        if cm.data.as_ref().is_some_and(|d| d.contains_key(key)) {
            errs.invalid(
                format!("data[{key}]"),
                q(key),
                "duplicate of key present in binaryData",
            );
        }
        total += value.0.len();
    }
    check_total_size(&mut errs, total);
    errs.into_result()
}

/// Validates a Secret (after `stringData` is merged into `data`): name,
/// keys, total size at most 1 MiB.
pub fn validate_secret(secret: &Secret) -> Result<(), ManifestError> {
    let mut errs = Errors::default();
    validate_object_meta(&secret.metadata, &mut errs);
    let mut total = 0;
    for (key, value) in secret.data.iter().flatten() {
        check_config_key(&mut errs, &format!("data[{key}]"), key);
        total += value.0.len();
    }
    check_total_size(&mut errs, total);
    errs.into_result()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::parse::parse_documents;

    /// A valid pod (as identity leaves it) with `extra` appended to the
    /// first container and `spec_extra` to the spec.
    fn pod(container_extra: &str, spec_extra: &str) -> Pod {
        let text = format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: web-node1, namespace: default}}\nspec:\n  containers:\n  - name: web\n    image: nginx\n{container_extra}{spec_extra}"
        );
        let parsed =
            parse_documents(text.as_bytes(), "t.yaml").unwrap_or_else(|e| panic!("{e}\n{text}"));
        parsed.documents[0].pod.clone()
    }

    fn check(p: &Pod) -> Result<(), String> {
        validate_pod(p).map_err(|e| format!("{}: {}", e.field.unwrap_or_default(), e.reason))
    }

    fn fails(container_extra: &str, spec_extra: &str) -> String {
        check(&pod(container_extra, spec_extra)).expect_err("should be invalid")
    }

    fn passes(container_extra: &str, spec_extra: &str) {
        if let Err(e) = check(&pod(container_extra, spec_extra)) {
            panic!("unexpected error: {e}");
        }
    }

    #[test]
    fn a_minimal_pod_is_valid() {
        passes("", "");
    }

    #[test]
    fn the_name_is_required() {
        let mut p = pod("", "");
        p.metadata.name = None;
        assert_eq!(
            check(&p).expect_err("invalid"),
            "metadata.name: Required value: name or generateName is required"
        );
    }

    #[test]
    fn the_name_must_be_a_dns_subdomain_of_at_most_253_chars() {
        let mut p = pod("", "");
        p.metadata.name = Some("Web_1-node1".into());
        let e = check(&p).expect_err("invalid");
        assert!(
            e.starts_with(
                "metadata.name: Invalid value: \"Web_1-node1\": a lowercase RFC 1123 subdomain"
            ),
            "{e}"
        );
        p.metadata.name = Some(format!("{}-node1", "a".repeat(250)));
        let e = check(&p).expect_err("invalid");
        assert!(e.contains("must be no more than 253 characters"), "{e}");
        p.metadata.name = Some("web.v1-node1".into());
        assert_eq!(check(&p), Ok(()));
    }

    #[test]
    fn the_namespace_must_be_a_dns_label() {
        let mut p = pod("", "");
        p.metadata.namespace = Some("my.ns".into());
        let e = check(&p).expect_err("invalid");
        assert!(
            e.starts_with(
                "metadata.namespace: Invalid value: \"my.ns\": a lowercase RFC 1123 label"
            ),
            "{e}"
        );
    }

    #[test]
    fn at_least_one_container_is_required() {
        let mut p = pod("", "");
        if let Some(s) = p.spec.as_mut() {
            s.containers.clear();
        }
        assert_eq!(check(&p), Err("spec.containers: Required value".into()));
        p.spec = None;
        assert_eq!(check(&p), Err("spec.containers: Required value".into()));
    }

    #[test]
    fn duplicate_container_names_are_rejected_with_the_field_path() {
        let e = fails("", "  - name: web\n    image: busybox\n");
        assert_eq!(e, "spec.containers[1].name: Duplicate value: \"web\"");
        let e = fails("", "  initContainers:\n  - name: web\n    image: busybox\n");
        assert_eq!(e, "spec.containers[0].name: Duplicate value: \"web\"");
    }

    #[test]
    fn container_names_must_be_dns_labels() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: Web, image: i}]}\n";
        let p = parse_documents(text.as_bytes(), "t")
            .expect("parses")
            .documents[0]
            .pod
            .clone();
        let e = check(&p).expect_err("invalid");
        assert!(
            e.starts_with(
                "spec.containers[0].name: Invalid value: \"Web\": a lowercase RFC 1123 label"
            ),
            "{e}"
        );
    }

    #[test]
    fn the_image_is_required() {
        let mut p = pod("", "");
        if let Some(s) = p.spec.as_mut() {
            s.containers[0].image = None;
        }
        assert_eq!(
            check(&p),
            Err("spec.containers[0].image: Required value".into())
        );
    }

    #[test]
    fn all_problems_are_reported_joined_and_the_first_names_the_field() {
        let mut p = pod("", "  - name: web\n    image: ''\n");
        p.metadata.name = None;
        let e = validate_pod(&p).expect_err("invalid");
        assert_eq!(e.field.as_deref(), Some("metadata.name"));
        assert_eq!(
            e.reason,
            "Required value: name or generateName is required; spec.containers[1].name: Duplicate value: \"web\"; spec.containers[1].image: Required value"
        );
    }

    #[test]
    fn container_ports_must_be_in_range() {
        let e = fails("    ports: [{containerPort: 70000}]\n", "");
        assert_eq!(e, "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive");
        let e = fails("    ports: [{containerPort: 0}]\n", "");
        assert_eq!(
            e,
            "spec.containers[0].ports[0].containerPort: Required value"
        );
        let e = fails("    ports: [{containerPort: 80, hostPort: -1}]\n", "");
        assert_eq!(e, "spec.containers[0].ports[0].hostPort: Invalid value: -1: must be between 1 and 65535, inclusive");
        passes(
            "    ports: [{containerPort: 80, hostPort: 0}, {containerPort: 81, hostPort: 65535}]\n",
            "",
        );
    }

    #[test]
    fn port_protocols_must_be_known() {
        let e = fails("    ports: [{containerPort: 80, protocol: tcp}]\n", "");
        assert_eq!(e, "spec.containers[0].ports[0].protocol: Unsupported value: \"tcp\": supported values: \"SCTP\", \"TCP\", \"UDP\"");
        passes("    ports: [{containerPort: 80, protocol: UDP}, {containerPort: 80, protocol: SCTP}]\n", "");
    }

    #[test]
    fn port_names_must_be_iana_service_names_and_unique() {
        let e = fails(
            "    ports: [{containerPort: 80, name: a-very-long-port-name}]\n",
            "",
        );
        assert!(e.contains("must be no more than 15 characters"), "{e}");
        let e = fails("    ports: [{containerPort: 80, name: HTTP}]\n", "");
        assert!(
            e.contains("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"),
            "{e}"
        );
        let e = fails("    ports: [{containerPort: 80, name: \"8080\"}]\n", "");
        assert!(e.contains("must contain at least one letter (a-z)"), "{e}");
        let e = fails(
            "    ports: [{containerPort: 80, name: http}, {containerPort: 81, name: http}]\n",
            "",
        );
        assert_eq!(
            e,
            "spec.containers[0].ports[1].name: Duplicate value: \"http\""
        );
    }

    #[test]
    fn duplicate_host_ports_are_rejected() {
        let e = fails(
            "    ports: [{containerPort: 80, hostPort: 8080}]\n",
            "  - name: b\n    image: i\n    ports: [{containerPort: 81, hostPort: 8080, protocol: TCP}]\n",
        );
        assert_eq!(
            e,
            "spec.containers[1].ports[0].hostPort: Duplicate value: \"TCP//8080\""
        );
        passes("    ports: [{containerPort: 80, hostPort: 8080}, {containerPort: 80, hostPort: 8080, protocol: UDP}]\n", "");
    }

    #[test]
    fn with_host_network_the_host_port_must_equal_the_container_port() {
        let e = fails(
            "    ports: [{containerPort: 80, hostPort: 8080}]\n",
            "  hostNetwork: true\n",
        );
        assert_eq!(e, "spec.containers[0].ports[0].hostPort: Invalid value: 8080: must match `containerPort` when `hostNetwork` is true");
        passes(
            "    ports: [{containerPort: 80}, {containerPort: 81, hostPort: 81}]\n",
            "  hostNetwork: true\n",
        );
    }

    #[test]
    fn volumes_need_unique_dns_label_names_and_at_most_one_source() {
        let e = fails(
            "",
            "  volumes: [{name: a, emptyDir: {}}, {name: a, emptyDir: {}}]\n",
        );
        assert_eq!(e, "spec.volumes[1].name: Duplicate value: \"a\"");
        let e = fails("", "  volumes: [{name: A_b, emptyDir: {}}]\n");
        assert!(
            e.starts_with("spec.volumes[0].name: Invalid value: \"A_b\""),
            "{e}"
        );
        let e = fails(
            "",
            "  volumes: [{name: a, emptyDir: {}, hostPath: {path: /x}}]\n",
        );
        assert_eq!(
            e,
            "spec.volumes[0].hostPath: Forbidden: may not specify more than 1 volume type"
        );
        let e = fails(
            "",
            "  volumes: [{name: a, hostPath: {path: /x, type: Dir}}]\n",
        );
        assert!(
            e.starts_with("spec.volumes[0].hostPath.type: Unsupported value: \"Dir\""),
            "{e}"
        );
        let e = fails("", "  volumes: [{name: a, configMap: {name: \"\"}}]\n");
        assert_eq!(e, "spec.volumes[0].configMap.name: Required value");
        // The API server defaults a volume without a source to emptyDir.
        passes("", "  volumes: [{name: a}]\n");
    }

    #[test]
    fn api_data_volume_items_and_host_paths_must_stay_inside() {
        let e = fails(
            "",
            "  volumes: [{name: a, hostPath: {path: /srv/../etc}}]\n",
        );
        assert!(
            e.starts_with("spec.volumes[0].hostPath.path: Invalid value: \"/srv/../etc\": must not contain '..'"),
            "{e}"
        );
        let e = fails(
            "",
            "  volumes: [{name: a, configMap: {name: c, items: [{key: k, path: ../x}]}}]\n",
        );
        assert!(
            e.starts_with("spec.volumes[0].configMap.items[0].path"),
            "{e}"
        );
        let e = fails(
            "",
            "  volumes: [{name: a, secret: {secretName: s, items: [{key: k, path: ..data}]}}]\n",
        );
        assert!(e.contains("must not start with '..'"), "{e}");
        let e = fails("", "  volumes: [{name: a, downwardAPI: {items: [{path: p, fieldRef: {fieldPath: status.podIP}}]}}]\n");
        assert!(
            e.starts_with("spec.volumes[0].downwardAPI.items[0].fieldRef.fieldPath: Unsupported value: \"status.podIP\""),
            "{e}"
        );
        let e = fails("", "  volumes: [{name: a, downwardAPI: {items: [{path: p, resourceFieldRef: {resource: limits.cpu}}]}}]\n");
        assert!(
            e.contains("resourceFieldRef.containerName: Required value"),
            "{e}"
        );
        let e = fails("", "  volumes:\n  - name: a\n    projected:\n      sources:\n      - configMap: {name: c, items: [{key: k, path: same}]}\n      - secret: {name: s, items: [{key: k, path: same}]}\n");
        assert!(e.contains("conflicting duplicate paths"), "{e}");
        passes("", "  volumes:\n  - name: a\n    projected:\n      sources:\n      - configMap: {name: c}\n      - downwardAPI: {items: [{path: labels, fieldRef: {fieldPath: metadata.labels}}]}\n");
    }

    #[test]
    fn env_references_are_checked_like_the_api_server() {
        let e = fails(
            "    env: [{name: X, valueFrom: {fieldRef: {fieldPath: spec.restartPolicy}}}]\n",
            "",
        );
        assert!(
            e.contains("fieldRef.fieldPath: Unsupported value: \"spec.restartPolicy\""),
            "{e}"
        );
        passes(
            "    env: [{name: X, valueFrom: {fieldRef: {fieldPath: \"metadata.labels['a']\"}}}]\n",
            "",
        );
        let e = fails("    env: [{name: X, valueFrom: {resourceFieldRef: {resource: limits.cpu, divisor: 1Mi}}}]\n", "");
        assert!(
            e.contains("only divisor's values 1m and 1 are supported"),
            "{e}"
        );
        passes("    env: [{name: X, valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}}]\n", "");
        let e = fails(
            "    env: [{name: X, valueFrom: {configMapKeyRef: {name: c, key: \"a/b\"}}}]\n",
            "",
        );
        assert!(e.contains("configMapKeyRef.key: Invalid value"), "{e}");
        let e = fails(
            "    envFrom: [{configMapRef: {name: c}, secretRef: {name: s}}]\n",
            "",
        );
        assert!(e.contains("may not have more than one field"), "{e}");
    }

    #[test]
    fn volume_mounts_must_reference_volumes_and_have_unique_paths() {
        let e = fails("    volumeMounts: [{name: data, mountPath: /data}]\n", "");
        assert_eq!(
            e,
            "spec.containers[0].volumeMounts[0].name: Not found: \"data\""
        );
        let e = fails(
            "    volumeMounts: [{name: d, mountPath: /data}, {name: d, mountPath: /data}]\n",
            "  volumes: [{name: d, emptyDir: {}}]\n",
        );
        assert_eq!(e, "spec.containers[0].volumeMounts[1].mountPath: Invalid value: \"/data\": must be unique");
        let e = fails(
            "    volumeMounts: [{name: d, mountPath: \"\"}]\n",
            "  volumes: [{name: d, emptyDir: {}}]\n",
        );
        assert_eq!(
            e,
            "spec.containers[0].volumeMounts[0].mountPath: Required value"
        );
        let e = fails(
            "    volumeMounts: [{name: d, mountPath: /x, subPath: ../etc}]\n",
            "  volumes: [{name: d, emptyDir: {}}]\n",
        );
        assert_eq!(e, "spec.containers[0].volumeMounts[0].subPath: Invalid value: \"../etc\": must not contain '..'");
        let e = fails(
            "    volumeMounts: [{name: d, mountPath: /x, mountPropagation: Bidirectional}]\n",
            "  volumes: [{name: d, emptyDir: {}}]\n",
        );
        assert!(
            e.contains(
                "Bidirectional mount propagation is available only to privileged containers"
            ),
            "{e}"
        );
    }

    #[test]
    fn env_names_must_be_printable_ascii_without_equals() {
        let e = fails("    env: [{name: \"A=B\", value: x}]\n", "");
        assert_eq!(
            e,
            format!("spec.containers[0].env[0].name: Invalid value: \"A=B\": {ENV_NAME_MSG}")
        );
        let e = fails("    env: [{name: \"\", value: x}]\n", "");
        assert_eq!(e, "spec.containers[0].env[0].name: Required value");
        passes(
            "    env: [{name: my.var-1, value: x}, {name: \"1 weird:name\", value: y}]\n",
            "",
        );
        let e = fails(
            "    env: [{name: A, value: x, valueFrom: {fieldRef: {fieldPath: metadata.name}}}]\n",
            "",
        );
        assert!(
            e.contains("may not be specified when `value` is not empty"),
            "{e}"
        );
    }

    #[test]
    fn probe_numbers_must_be_positive() {
        for field in [
            "periodSeconds",
            "timeoutSeconds",
            "successThreshold",
            "failureThreshold",
        ] {
            let e = fails(
                &format!("    readinessProbe: {{tcpSocket: {{port: 80}}, {field}: 0}}\n"),
                "",
            );
            assert_eq!(e, format!("spec.containers[0].readinessProbe.{field}: Invalid value: 0: must be greater than or equal to 1"));
        }
        let e = fails(
            "    livenessProbe: {tcpSocket: {port: 80}, initialDelaySeconds: -1}\n",
            "",
        );
        assert!(e.contains("must be greater than or equal to 0"), "{e}");
    }

    #[test]
    fn liveness_and_startup_success_threshold_must_be_one() {
        let e = fails(
            "    livenessProbe: {tcpSocket: {port: 80}, successThreshold: 2}\n",
            "",
        );
        assert_eq!(
            e,
            "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1"
        );
        let e = fails(
            "    startupProbe: {tcpSocket: {port: 80}, successThreshold: 3}\n",
            "",
        );
        assert_eq!(
            e,
            "spec.containers[0].startupProbe.successThreshold: Invalid value: 3: must be 1"
        );
        passes(
            "    readinessProbe: {tcpSocket: {port: 80}, successThreshold: 3}\n",
            "",
        );
    }

    #[test]
    fn probes_need_exactly_one_handler() {
        let e = fails("    livenessProbe: {periodSeconds: 5}\n", "");
        assert_eq!(
            e,
            "spec.containers[0].livenessProbe: Required value: must specify a handler type"
        );
        let e = fails(
            "    livenessProbe: {exec: {command: [\"true\"]}, httpGet: {port: 80}}\n",
            "",
        );
        assert_eq!(e, "spec.containers[0].livenessProbe.httpGet: Forbidden: may not specify more than 1 handler type");
        let e = fails("    livenessProbe: {httpGet: {port: 0}}\n", "");
        assert!(
            e.starts_with("spec.containers[0].livenessProbe.httpGet.port: Invalid value: 0"),
            "{e}"
        );
        passes("    livenessProbe: {httpGet: {port: http}}\n    ports: [{containerPort: 80, name: http}]\n", "");
    }

    #[test]
    fn plain_init_containers_may_not_have_probes() {
        let e = fails(
            "",
            "  initContainers:\n  - {name: i, image: x, readinessProbe: {tcpSocket: {port: 1}}}\n",
        );
        assert!(
            e.starts_with("spec.initContainers[0].readinessProbe: Forbidden"),
            "{e}"
        );
        passes("", "  initContainers:\n  - {name: i, image: x, restartPolicy: Always, readinessProbe: {tcpSocket: {port: 1}}}\n");
    }

    #[test]
    fn grace_period_and_active_deadline_are_bounded() {
        let e = fails("", "  terminationGracePeriodSeconds: -1\n");
        assert_eq!(e, "spec.terminationGracePeriodSeconds: Invalid value: -1: must be greater than or equal to 0");
        passes("", "  terminationGracePeriodSeconds: 0\n");
        let e = fails("", "  activeDeadlineSeconds: 0\n");
        assert_eq!(e, "spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive");
    }

    #[test]
    fn requests_may_not_exceed_limits() {
        let e = fails(
            "    resources: {requests: {cpu: \"2\"}, limits: {cpu: 1500m}}\n",
            "",
        );
        assert_eq!(e, "spec.containers[0].resources.requests[cpu]: Invalid value: \"2\": must be less than or equal to cpu limit of 1500m");
        let e = fails(
            "    resources: {requests: {memory: 1Gi}, limits: {memory: 1G}}\n",
            "",
        );
        assert!(
            e.starts_with("spec.containers[0].resources.requests[memory]"),
            "{e}"
        );
        passes(
            "    resources: {requests: {cpu: 500m, memory: 1G}, limits: {cpu: 0.5, memory: 1Gi}}\n",
            "",
        );
        let e = fails("    resources: {limits: {memory: lots}}\n", "");
        assert!(e.starts_with("spec.containers[0].resources.limits[memory]: Invalid value: \"lots\": quantities must match"), "{e}");
        let e = fails("    resources: {requests: {cpu: \"-1\"}}\n", "");
        assert!(e.contains("must be greater than or equal to 0"), "{e}");
    }

    #[test]
    fn enums_must_have_known_values() {
        let e = fails("", "  restartPolicy: Sometimes\n");
        assert_eq!(e, "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"");
        let e = fails("    imagePullPolicy: Maybe\n", "");
        assert!(
            e.starts_with("spec.containers[0].imagePullPolicy: Unsupported value: \"Maybe\""),
            "{e}"
        );
        let e = fails("", "  dnsPolicy: Cluster\n");
        assert!(e.starts_with("spec.dnsPolicy: Unsupported value"), "{e}");
        let e = fails("    terminationMessagePolicy: Logs\n", "");
        assert!(
            e.starts_with("spec.containers[0].terminationMessagePolicy: Unsupported value"),
            "{e}"
        );
        passes(
            "    imagePullPolicy: Never\n    terminationMessagePolicy: FallbackToLogsOnError\n",
            "  restartPolicy: OnFailure\n  dnsPolicy: Default\n",
        );
    }

    #[test]
    fn container_restart_policy_is_only_always_and_only_on_init_containers() {
        let e = fails("    restartPolicy: Always\n", "");
        assert_eq!(
            e,
            "spec.containers[0].restartPolicy: Forbidden: may not be set for non-init containers"
        );
        let e = fails(
            "",
            "  initContainers: [{name: i, image: x, restartPolicy: Never}]\n",
        );
        assert_eq!(e, "spec.initContainers[0].restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"");
    }

    #[test]
    fn dns_policy_none_needs_a_dns_config() {
        let e = fails("", "  dnsPolicy: None\n");
        assert!(e.starts_with("spec.dnsConfig: Required value"), "{e}");
        passes(
            "",
            "  dnsPolicy: None\n  dnsConfig: {nameservers: [1.1.1.1]}\n",
        );
    }
}
