//! `rkubelet describe pod`: kubectl's `describe pod` layout (pure).
//!
//! The sections and lines follow kubectl's `PodDescriber`: the pod's
//! header (node, start time, labels, annotations, status, IPs), each
//! container (ids, image, Port and Host Port, command and args, state and
//! last state, readiness, restarts, requests and limits, probes, env with
//! its sources such as `<set to the key 'k' of config map 'cm'>`, mounts),
//! conditions, volumes with their source type and details, QoS class, node
//! selectors, tolerations and events. Columns are aligned by a tab writer
//! with kubectl's settings (cells end in `\t`; consecutive lines with cells
//! form one aligned block). rkubelet adds "Last Probe Results" (the
//! prober's last result of each probe) before the events.

use std::collections::BTreeMap;
use std::fmt::Write;

use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStatus, EnvVar, Event, Pod, Toleration, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{tz::TimeZone, Timestamp};

use crate::k8s::meta::namespace_of;
use crate::k8s::print::{event_age, human_duration};

/// kubectl's time format (`Mon, 02 Jan 2006 15:04:05 -0700`), in UTC.
pub(super) fn time(t: &Time) -> String {
    t.0.to_zoned(TimeZone::UTC)
        .strftime("%a, %d %b %Y %H:%M:%S %z")
        .to_string()
}

/// Pads the tab-separated cells of `text` like kubectl's describe writer.
pub(super) fn align(text: &str) -> String {
    use std::io::Write as _;
    let mut tw = tabwriter::TabWriter::new(Vec::new()).padding(2);
    if tw.write_all(text.as_bytes()).is_err() {
        return text.to_string();
    }
    match tw.into_inner() {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => text.to_string(),
    }
}

/// `Title:\tk=v` lines (`sep` between key and value), `<none>` when empty.
pub(super) fn map_lines(
    out: &mut String,
    indent: &str,
    title: &str,
    map: Option<&BTreeMap<String, String>>,
    sep: &str,
) {
    let items: Vec<String> = (map.into_iter().flatten())
        .map(|(k, v)| format!("{k}{sep}{v}"))
        .collect();
    if items.is_empty() {
        let _ = writeln!(out, "{indent}{title}:\t<none>");
    }
    for (i, item) in items.iter().enumerate() {
        if i == 0 {
            let _ = writeln!(out, "{indent}{title}:\t{item}");
        } else {
            let _ = writeln!(out, "{indent}\t{item}");
        }
    }
}

fn state_lines(out: &mut String, title: &str, st: &ContainerState) {
    if let Some(r) = &st.running {
        let _ = writeln!(out, "    {title}:\tRunning");
        if let Some(t) = &r.started_at {
            let _ = writeln!(out, "      Started:\t{}", time(t));
        }
    } else if let Some(w) = &st.waiting {
        let _ = writeln!(out, "    {title}:\tWaiting");
        if let Some(r) = w.reason.as_deref().filter(|r| !r.is_empty()) {
            let _ = writeln!(out, "      Reason:\t{r}");
        }
        if let Some(m) = w.message.as_deref().filter(|m| !m.is_empty()) {
            let _ = writeln!(out, "      Message:\t{m}");
        }
    } else if let Some(t) = &st.terminated {
        let _ = writeln!(out, "    {title}:\tTerminated");
        if let Some(r) = t.reason.as_deref().filter(|r| !r.is_empty()) {
            let _ = writeln!(out, "      Reason:\t{r}");
        }
        if let Some(m) = t.message.as_deref().filter(|m| !m.is_empty()) {
            for (i, line) in m.trim_end().lines().enumerate() {
                let label = if i == 0 { "      Message:" } else { "      " };
                let _ = writeln!(out, "{label}\t{line}");
            }
        }
        let _ = writeln!(out, "      Exit Code:\t{}", t.exit_code);
        if let Some(sig) = t.signal.filter(|s| *s > 0) {
            let _ = writeln!(out, "      Signal:\t{sig}");
        }
        if let Some(s) = &t.started_at {
            let _ = writeln!(out, "      Started:\t{}", time(s));
        }
        if let Some(f) = &t.finished_at {
            let _ = writeln!(out, "      Finished:\t{}", time(f));
        }
    } else {
        let _ = writeln!(out, "    {title}:\tWaiting");
    }
}

fn port_str(port: &k8s_openapi::apimachinery::pkg::util::intstr::IntOrString) -> String {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    match port {
        IntOrString::Int(n) => n.to_string(),
        IntOrString::String(s) => s.clone(),
    }
}

/// kubectl's one-line summary of a probe.
pub fn probe_line(p: &k8s_openapi::api::core::v1::Probe) -> String {
    let handler = if let Some(e) = &p.exec {
        format!("exec [{}]", e.command.clone().unwrap_or_default().join(" "))
    } else if let Some(h) = &p.http_get {
        let port = port_str(&h.port);
        format!(
            "http-get {}://{}:{}{}",
            h.scheme.as_deref().unwrap_or("HTTP").to_lowercase(),
            h.host.as_deref().unwrap_or(""),
            port,
            h.path.as_deref().unwrap_or("/")
        )
    } else if let Some(t) = &p.tcp_socket {
        let port = port_str(&t.port);
        format!("tcp-socket {}:{}", t.host.as_deref().unwrap_or(""), port)
    } else if let Some(g) = &p.grpc {
        format!(
            "grpc <pod>:{} {}",
            g.port,
            g.service.as_deref().unwrap_or("")
        )
    } else {
        "unknown".into()
    };
    let params = crate::k8s::probe::Params::of(p);
    format!(
        "{handler} delay={}s timeout={}s period={}s #success={} #failure={}",
        params.initial_delay.as_secs(),
        params.timeout.as_secs(),
        params.period.as_secs(),
        params.success_threshold,
        params.failure_threshold
    )
}

/// One `Environment:` line: the value, or where it comes from.
fn env_line(e: &EnvVar) -> String {
    let Some(from) = &e.value_from else {
        let value = e.value.clone().unwrap_or_default();
        return format!("      {}:\t{}", e.name, value.replace('\n', "\n      \t"));
    };
    if let Some(r) = &from.config_map_key_ref {
        format!(
            "      {}:\t<set to the key '{}' of config map '{}'>\tOptional: {}",
            e.name,
            r.key,
            r.name,
            r.optional.unwrap_or(false)
        )
    } else if let Some(r) = &from.secret_key_ref {
        format!(
            "      {}:\t<set to the key '{}' in secret '{}'>\tOptional: {}",
            e.name,
            r.key,
            r.name,
            r.optional.unwrap_or(false)
        )
    } else if let Some(f) = &from.field_ref {
        let api = f.api_version.as_deref().unwrap_or("v1");
        format!("      {}:\t ({api}:{})", e.name, f.field_path)
    } else if let Some(r) = &from.resource_field_ref {
        format!("      {}:\t ({})", e.name, r.resource)
    } else {
        format!("      {}:\t<unknown source>", e.name)
    }
}

pub(super) fn container_lines(out: &mut String, c: &Container, st: Option<&ContainerStatus>) {
    let _ = writeln!(out, "  {}:", c.name);
    if let Some(s) = st {
        let _ = writeln!(
            out,
            "    Container ID:\t{}",
            s.container_id.as_deref().unwrap_or("")
        );
    }
    let _ = writeln!(out, "    Image:\t{}", c.image.as_deref().unwrap_or(""));
    if let Some(s) = st {
        let _ = writeln!(out, "    Image ID:\t{}", s.image_id);
    }
    let ports: Vec<_> = c.ports.iter().flatten().collect();
    let protocol = |p: &&k8s_openapi::api::core::v1::ContainerPort| {
        p.protocol.clone().unwrap_or_else(|| "TCP".into())
    };
    let port = (ports.iter())
        .map(|p| format!("{}/{}", p.container_port, protocol(p)))
        .collect::<Vec<_>>()
        .join(", ");
    let host_port = (ports.iter())
        .map(|p| format!("{}/{}", p.host_port.unwrap_or(0), protocol(p)))
        .collect::<Vec<_>>()
        .join(", ");
    let plural = if ports.len() > 1 { "s" } else { "" };
    let none = |s: String| {
        if s.is_empty() {
            "<none>".to_string()
        } else {
            s
        }
    };
    let _ = writeln!(out, "    Port{plural}:\t{}", none(port));
    let _ = writeln!(out, "    Host Port{plural}:\t{}", none(host_port));
    for (title, words) in [("Command", &c.command), ("Args", &c.args)] {
        if let Some(words) = words.as_ref().filter(|w| !w.is_empty()) {
            let _ = writeln!(out, "    {title}:");
            for w in words {
                for line in w.split('\n') {
                    let _ = writeln!(out, "      {line}");
                }
            }
        }
    }
    if let Some(s) = st {
        if let Some(state) = &s.state {
            state_lines(out, "State", state);
        }
        if let Some(last) = s
            .last_state
            .as_ref()
            .filter(|l| l.running.is_some() || l.waiting.is_some() || l.terminated.is_some())
        {
            state_lines(out, "Last State", last);
        }
        let _ = writeln!(out, "    Ready:\t{}", s.ready);
        let _ = writeln!(out, "    Restart Count:\t{}", s.restart_count);
    }
    let resources = c.resources.clone().unwrap_or_default();
    for (title, list) in [
        ("Limits", resources.limits),
        ("Requests", resources.requests),
    ] {
        if let Some(list) = list.filter(|l| !l.is_empty()) {
            let _ = writeln!(out, "    {title}:");
            for (name, q) in list {
                let _ = writeln!(out, "      {name}:\t{}", q.0);
            }
        }
    }
    for (label, probe) in [
        ("Liveness", &c.liveness_probe),
        ("Readiness", &c.readiness_probe),
        ("Startup", &c.startup_probe),
    ] {
        if let Some(p) = probe {
            let _ = writeln!(out, "    {label}:\t{}", probe_line(p));
        }
    }
    let env_from = c.env_from.clone().unwrap_or_default();
    if !env_from.is_empty() {
        let _ = writeln!(out, "    Environment Variables from:");
        for f in &env_from {
            let (name, kind, optional) = if let Some(cm) = &f.config_map_ref {
                (cm.name.clone(), "ConfigMap", cm.optional.unwrap_or(false))
            } else if let Some(s) = &f.secret_ref {
                (s.name.clone(), "Secret", s.optional.unwrap_or(false))
            } else {
                continue;
            };
            match f.prefix.as_deref().filter(|p| !p.is_empty()) {
                Some(prefix) => {
                    let _ = writeln!(
                        out,
                        "      {name}\t{kind} with prefix '{prefix}'\tOptional: {optional}"
                    );
                }
                None => {
                    let _ = writeln!(out, "      {name}\t{kind}\tOptional: {optional}");
                }
            }
        }
    }
    let env = c.env.clone().unwrap_or_default();
    if env.is_empty() {
        let _ = writeln!(out, "    Environment:\t<none>");
    } else {
        let _ = writeln!(out, "    Environment:");
        for e in &env {
            let _ = writeln!(out, "{}", env_line(e));
        }
    }
    let mut mounts = c.volume_mounts.clone().unwrap_or_default();
    if mounts.is_empty() {
        let _ = writeln!(out, "    Mounts:\t<none>");
    } else {
        let _ = writeln!(out, "    Mounts:");
        mounts.sort_by(|a, b| a.mount_path.cmp(&b.mount_path));
        for m in &mounts {
            let mut flags = vec![if m.read_only.unwrap_or(false) {
                "ro"
            } else {
                "rw"
            }
            .to_string()];
            if let Some(p) = m.sub_path.as_deref().filter(|p| !p.is_empty()) {
                flags.push(format!("path={p:?}"));
            }
            if let Some(p) = m.sub_path_expr.as_deref().filter(|p| !p.is_empty()) {
                flags.push(format!("path={p:?}"));
            }
            let _ = writeln!(
                out,
                "      {} from {} ({})",
                m.mount_path,
                m.name,
                flags.join(",")
            );
        }
    }
}

pub(super) fn volume_lines(out: &mut String, v: &Volume) {
    let _ = writeln!(out, "  {}:", v.name);
    if let Some(h) = &v.host_path {
        let _ = writeln!(out, "    Type:\tHostPath (bare host directory volume)");
        let _ = writeln!(out, "    Path:\t{}", h.path);
        let _ = writeln!(
            out,
            "    HostPathType:\t{}",
            h.type_.as_deref().unwrap_or("")
        );
    } else if let Some(e) = &v.empty_dir {
        let _ = writeln!(
            out,
            "    Type:\tEmptyDir (a temporary directory that shares a pod's lifetime)"
        );
        let _ = writeln!(out, "    Medium:\t{}", e.medium.as_deref().unwrap_or(""));
        let limit = (e.size_limit.as_ref()).map_or("<unset>".to_string(), |q| q.0.clone());
        let _ = writeln!(out, "    SizeLimit:\t{limit}");
    } else if let Some(s) = &v.secret {
        let _ = writeln!(out, "    Type:\tSecret (a volume populated by a Secret)");
        let _ = writeln!(
            out,
            "    SecretName:\t{}",
            s.secret_name.as_deref().unwrap_or("")
        );
        let _ = writeln!(out, "    Optional:\t{}", s.optional.unwrap_or(false));
    } else if let Some(c) = &v.config_map {
        let _ = writeln!(
            out,
            "    Type:\tConfigMap (a volume populated by a ConfigMap)"
        );
        let _ = writeln!(out, "    Name:\t{}", c.name);
        let _ = writeln!(out, "    Optional:\t{}", c.optional.unwrap_or(false));
    } else if let Some(d) = &v.downward_api {
        let _ = writeln!(
            out,
            "    Type:\tDownwardAPI (a volume populated by information about the pod)"
        );
        let _ = writeln!(out, "    Items:");
        for item in d.items.iter().flatten() {
            if let Some(f) = &item.field_ref {
                let _ = writeln!(out, "      {} -> {}", f.field_path, item.path);
            } else if let Some(r) = &item.resource_field_ref {
                let _ = writeln!(out, "      {} -> {}", r.resource, item.path);
            }
        }
    } else if let Some(p) = &v.projected {
        let _ = writeln!(
            out,
            "    Type:\tProjected (a volume that contains injected data from multiple sources)"
        );
        for s in p.sources.iter().flatten() {
            if let Some(c) = &s.config_map {
                let _ = writeln!(out, "    ConfigMapName:\t{}", c.name);
                let _ = writeln!(out, "    Optional:\t{}", c.optional.unwrap_or(false));
            } else if let Some(sec) = &s.secret {
                let _ = writeln!(out, "    SecretName:\t{}", sec.name);
                let _ = writeln!(out, "    Optional:\t{}", sec.optional.unwrap_or(false));
            } else if s.downward_api.is_some() {
                let _ = writeln!(out, "    DownwardAPI:\ttrue");
            } else if let Some(t) = &s.service_account_token {
                let _ = writeln!(
                    out,
                    "    TokenExpirationSeconds:\t{}",
                    t.expiration_seconds.unwrap_or(3607)
                );
            }
        }
    } else {
        let _ = writeln!(out, "    <unknown>");
    }
}

/// `Tolerations:` lines (`<none>` when none), indented by `indent`.
pub(super) fn tolerations_lines(
    out: &mut String,
    indent: &str,
    tolerations: Option<&[Toleration]>,
) {
    let tolerations: Vec<String> = (tolerations.iter().copied().flatten())
        .map(|t| {
            let mut s = t.key.clone().unwrap_or_default();
            if let Some(v) = t.value.as_deref().filter(|v| !v.is_empty()) {
                s.push('=');
                s.push_str(v);
            }
            if let Some(e) = t.effect.as_deref().filter(|e| !e.is_empty()) {
                s.push(':');
                s.push_str(e);
            }
            if t.operator.as_deref() == Some("Exists") && t.value.is_none() {
                s.push_str(" op=Exists");
            }
            if let Some(secs) = t.toleration_seconds {
                s.push_str(&format!(" for {secs}s"));
            }
            s
        })
        .collect();
    if tolerations.is_empty() {
        let _ = writeln!(out, "{indent}Tolerations:\t<none>");
    }
    for (i, t) in tolerations.iter().enumerate() {
        let label = if i == 0 { "Tolerations:" } else { "" };
        let _ = writeln!(out, "{indent}{label}\t{t}");
    }
}

/// The `Events:` table (`<none>` when none).
pub(super) fn events_lines(out: &mut String, events: &[Event], now: Timestamp) {
    if events.is_empty() {
        let _ = writeln!(out, "Events:\t<none>");
    } else {
        let _ = writeln!(
            out,
            "Events:\n  Type\tReason\tAge\tFrom\tMessage\n  ----\t------\t----\t----\t-------"
        );
        for e in events {
            let from = (e.source.as_ref())
                .and_then(|s| s.component.clone())
                .or_else(|| e.reporting_component.clone())
                .unwrap_or_else(|| "kubelet".into());
            let _ = writeln!(
                out,
                "  {}\t{}\t{}\t{}\t{}",
                e.type_.as_deref().unwrap_or(""),
                e.reason.as_deref().unwrap_or(""),
                event_interval(e, now),
                from,
                e.message.as_deref().unwrap_or("").trim_end()
            );
        }
    }
}

/// Renders `describe pod` for a pod, its events and its last probe results at `now`.
pub fn describe_pod_with_probes(
    pod: &Pod,
    events: &[Event],
    probes: &[crate::k8s::probe::ProbeReport],
    now: Timestamp,
) -> String {
    let mut out = describe_pod(pod, events, now);
    if !probes.is_empty() {
        let mut section = String::from("Last Probe Results:\n");
        for p in probes {
            let _ = writeln!(
                section,
                "  {}/{}: {} (at {}) {}",
                p.container,
                p.kind,
                p.result,
                p.last_probe.as_deref().unwrap_or("never"),
                p.last_output.lines().next().unwrap_or("")
            );
        }
        // Before the events, like kubectl's sections.
        match out.rfind("\nEvents:") {
            Some(i) => out.insert_str(i + 1, &section),
            None => out.push_str(&section),
        }
    }
    out
}

/// An event's AGE cell: `5s`, or `5s (x3 over 1m)` for a repeated one.
pub(super) fn event_interval(e: &Event, now: Timestamp) -> String {
    let last = event_age(e, now);
    match (e.count, &e.first_timestamp) {
        (Some(n), Some(first)) if n > 1 => {
            let over = Timestamp::duration_since(now, first.0);
            let over = std::time::Duration::try_from(over).unwrap_or_default();
            format!("{last} (x{n} over {})", human_duration(over))
        }
        (Some(n), None) if n > 1 => format!("{last} (x{n})"),
        _ => last,
    }
}

/// Renders `describe pod` for a pod and its events at `now`.
pub fn describe_pod(pod: &Pod, events: &[Event], now: Timestamp) -> String {
    let mut out = String::new();
    let spec = pod.spec.clone().unwrap_or_default();
    let status = pod.status.clone().unwrap_or_default();
    let md = &pod.metadata;
    let _ = writeln!(out, "Name:\t{}", md.name.as_deref().unwrap_or(""));
    let _ = writeln!(out, "Namespace:\t{}", namespace_of(md));
    if let Some(p) = spec.priority {
        let _ = writeln!(out, "Priority:\t{p}");
    }
    if let Some(p) = spec
        .priority_class_name
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        let _ = writeln!(out, "Priority Class Name:\t{p}");
    }
    if let Some(sa) = spec
        .service_account_name
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        let _ = writeln!(out, "Service Account:\t{sa}");
    }
    match spec.node_name.as_deref() {
        Some(node) => {
            let _ = writeln!(
                out,
                "Node:\t{node}/{}",
                status.host_ip.as_deref().unwrap_or("")
            );
        }
        None => {
            let _ = writeln!(out, "Node:\t<none>");
        }
    }
    if let Some(t) = &status.start_time {
        let _ = writeln!(out, "Start Time:\t{}", time(t));
    }
    map_lines(&mut out, "", "Labels", md.labels.as_ref(), "=");
    map_lines(&mut out, "", "Annotations", md.annotations.as_ref(), ": ");
    match &md.deletion_timestamp {
        Some(t) => {
            let _ = writeln!(out, "Status:\tTerminating (lasts {})", {
                let d = Timestamp::duration_since(now, t.0);
                human_duration(std::time::Duration::try_from(d).unwrap_or_default())
            });
            if let Some(g) = md.deletion_grace_period_seconds {
                let _ = writeln!(out, "Termination Grace Period:\t{g}s");
            }
        }
        None => {
            let _ = writeln!(out, "Status:\t{}", status.phase.as_deref().unwrap_or(""));
        }
    }
    if let Some(r) = status.reason.as_deref().filter(|r| !r.is_empty()) {
        let _ = writeln!(out, "Reason:\t{r}");
    }
    if let Some(m) = status.message.as_deref().filter(|m| !m.is_empty()) {
        let _ = writeln!(out, "Message:\t{m}");
    }
    let _ = writeln!(out, "IP:\t{}", status.pod_ip.as_deref().unwrap_or(""));
    let ips: Vec<String> = (status.pod_ips.iter().flatten())
        .map(|p| p.ip.clone())
        .collect();
    if ips.is_empty() {
        let _ = writeln!(out, "IPs:\t<none>");
    } else {
        let _ = writeln!(out, "IPs:");
        for ip in ips {
            let _ = writeln!(out, "  IP:\t{ip}");
        }
    }
    let sections: [(&str, Vec<Container>, Vec<ContainerStatus>); 2] = [
        (
            "Init Containers:",
            spec.init_containers.clone().unwrap_or_default(),
            status.init_container_statuses.clone().unwrap_or_default(),
        ),
        (
            "Containers:",
            spec.containers.clone(),
            status.container_statuses.clone().unwrap_or_default(),
        ),
    ];
    for (title, specs, statuses) in sections {
        if specs.is_empty() {
            continue;
        }
        let _ = writeln!(out, "{title}");
        for c in &specs {
            container_lines(&mut out, c, statuses.iter().find(|s| s.name == c.name));
        }
    }
    let conditions = status.conditions.clone().unwrap_or_default();
    if !conditions.is_empty() {
        let _ = writeln!(out, "Conditions:\n  Type\tStatus");
        for c in &conditions {
            let _ = writeln!(out, "  {} \t{} ", c.type_, c.status);
        }
    }
    let volumes = spec.volumes.clone().unwrap_or_default();
    if volumes.is_empty() {
        let _ = writeln!(out, "Volumes:\t<none>");
    } else {
        let _ = writeln!(out, "Volumes:");
        for v in &volumes {
            volume_lines(&mut out, v);
        }
    }
    let _ = writeln!(
        out,
        "QoS Class:\t{}",
        status.qos_class.as_deref().unwrap_or("")
    );
    map_lines(
        &mut out,
        "",
        "Node-Selectors",
        spec.node_selector.as_ref(),
        "=",
    );
    tolerations_lines(&mut out, "", spec.tolerations.as_deref());
    events_lines(&mut out, events, now);
    align(&out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "web-n", "namespace": "default", "labels": {"app": "web"}},
            "spec": {
                "nodeName": "n",
                "containers": [{
                    "name": "app", "image": "busybox",
                    "command": ["sh", "-c", "sleep 3600"],
                    "ports": [{"containerPort": 80, "hostPort": 8080}],
                    "resources": {"requests": {"cpu": "100m"}, "limits": {"memory": "64Mi"}},
                    "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 2},
                    "env": [
                        {"name": "PLAIN", "value": "x"},
                        {"name": "FROM_CM", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}},
                        {"name": "FROM_S", "valueFrom": {"secretKeyRef": {"name": "s", "key": "p", "optional": true}}},
                        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
                    ],
                    "envFrom": [{"configMapRef": {"name": "all"}, "prefix": "A_"}],
                    "volumeMounts": [
                        {"name": "data", "mountPath": "/data"},
                        {"name": "cfg", "mountPath": "/etc/cfg", "readOnly": true, "subPath": "app.conf"}
                    ]
                }],
                "volumes": [
                    {"name": "data", "emptyDir": {}},
                    {"name": "cfg", "configMap": {"name": "cm"}},
                    {"name": "creds", "secret": {"secretName": "s"}},
                    {"name": "host", "hostPath": {"path": "/var/log", "type": "Directory"}},
                    {"name": "info", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}}
                ]
            },
            "status": {
                "phase": "Running", "hostIP": "10.0.0.1", "podIP": "172.17.0.2",
                "podIPs": [{"ip": "172.17.0.2"}],
                "startTime": "2026-01-01T00:00:00Z",
                "qosClass": "Burstable",
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [{
                    "name": "app", "image": "busybox", "imageID": "sha256:1", "ready": true,
                    "restartCount": 1, "containerID": "docker://abc",
                    "state": {"running": {"startedAt": "2026-01-01T00:00:01Z"}},
                    "lastState": {"terminated": {"exitCode": 3, "reason": "Error"}}
                }]
            }
        }))
        .expect("pod")
    }

    fn line_of<'a>(text: &'a str, start: &str) -> &'a str {
        text.lines()
            .find(|l| l.trim_start().starts_with(start))
            .unwrap_or_else(|| panic!("no line {start:?} in\n{text}"))
    }

    #[test]
    fn describe_shows_ports_env_sources_mounts_and_volumes_like_kubectl() {
        let now: Timestamp = "2026-01-01T00:05:00Z".parse().expect("time");
        let text = describe_pod(&pod(), &[], now);
        for needle in [
            "Host Port:     8080/TCP",
            "Start Time:   Thu, 01 Jan 2026 00:00:00 +0000",
            "<set to the key 'k' of config map 'cm'>",
            "<set to the key 'p' in secret 's'>",
            "Optional: true",
            "POD:       (v1:metadata.name)",
            "all  ConfigMap with prefix 'A_'  Optional: false",
            "/data from data (rw)",
            "/etc/cfg from cfg (ro,path=\"app.conf\")",
            "Type:       EmptyDir (a temporary directory that shares a pod's lifetime)",
            "Type:      ConfigMap (a volume populated by a ConfigMap)",
            "SecretName:  s",
            "Path:          /var/log",
            "HostPathType:  Directory",
            "metadata.labels -> labels",
            "Exit Code:    3",
            "Requests:",
            "cpu:      100m",
            "IPs:\n  IP:  172.17.0.2",
            "Events:          <none>",
        ] {
            assert!(text.contains(needle), "no {needle:?} in\n{text}");
        }
        // Aligned columns: the header block shares one value column.
        let col = |l: &str| {
            l.find("  ")
                .map(|i| i + l[i..].len() - l[i..].trim_start().len())
        };
        assert_eq!(
            col(line_of(&text, "Name:")),
            col(line_of(&text, "Annotations:"))
        );
        assert_eq!(
            col(line_of(&text, "State:")),
            col(line_of(&text, "Restart Count:"))
        );
        assert!(!text.contains('\t'), "{text}");
    }

    #[test]
    fn probe_results_sit_before_the_events() {
        let now: Timestamp = "2026-01-01T00:05:00Z".parse().expect("time");
        let report = crate::k8s::probe::ProbeReport {
            container: "app".into(),
            kind: "Readiness".into(),
            result: "Failure".into(),
            last_probe: Some("2026-01-01T00:04:59Z".into()),
            last_output: "not yet\n".into(),
        };
        let event: Event = serde_json::from_value(json!({
            "metadata": {"name": "e"}, "involvedObject": {},
            "type": "Warning", "reason": "Unhealthy", "message": "Readiness probe failed",
            "count": 3, "firstTimestamp": "2026-01-01T00:03:00Z", "lastTimestamp": "2026-01-01T00:04:59Z",
            "source": {"component": "kubelet"}
        }))
        .expect("event");
        let text = describe_pod_with_probes(&pod(), &[event], &[report], now);
        let probes = text.find("Last Probe Results:").expect("probe section");
        let events = text.find("\nEvents:").expect("events");
        assert!(probes < events, "{text}");
        assert!(text.contains("app/Readiness: Failure (at 2026-01-01T00:04:59Z) not yet"));
        assert!(text.contains("1s (x3 over 2m)"), "{text}");
    }
}
