//! Printing pods the way `kubectl` does (pure functions).
//!
//! `pod_row` follows kubectl's `printPod`: READY counts ready app containers
//! (and started sidecars) over app containers plus sidecars; STATUS walks init
//! containers (`Init:0/2`, `Init:Error`, `Init:CrashLoopBackOff`), then app
//! containers in reverse (a waiting or terminated reason wins), shows
//! `Terminating` for a pod being deleted; RESTARTS adds `(<age> ago)` of the
//! last restart; AGE is kubectl's human duration.

use std::time::Duration;

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use k8s_openapi::jiff::Timestamp;

use super::lifecycle::is_sidecar;
use super::meta::namespace_of;

/// One `kubectl get pods` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRow {
    pub namespace: String,
    pub name: String,
    pub ready: String,
    pub status: String,
    pub restarts: String,
    pub age: String,
    pub ip: String,
    pub node: String,
}

/// kubectl's `duration.HumanDuration`.
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs < 2 * 60 {
        return format!("{secs}s");
    }
    let minutes = secs / 60;
    if minutes < 10 {
        let s = secs % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    let hours = secs / 3600;
    if hours < 3 {
        return format!("{minutes}m");
    }
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / 24;
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{days}d")
        } else {
            format!("{days}d{h}h")
        };
    }
    if days < 365 * 2 {
        return format!("{days}d");
    }
    let years = days / 365;
    if years < 8 {
        let d = days % 365;
        return if d == 0 {
            format!("{years}y")
        } else {
            format!("{years}y{d}d")
        };
    }
    format!("{years}y")
}

/// How long ago an event last happened, in kubectl's style ("" if unknown).
pub fn event_age(e: &k8s_openapi::api::core::v1::Event, now: Timestamp) -> String {
    age_since(e.last_timestamp.as_ref().map(|t| t.0), now).unwrap_or_default()
}

/// How old an object is at `now`, in kubectl's style (`<unknown>` without
/// a `creationTimestamp`).
pub fn object_age(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    now: Timestamp,
) -> String {
    age_since(meta.creation_timestamp.as_ref().map(|t| t.0), now)
        .unwrap_or_else(|| "<unknown>".into())
}

fn age_since(t: Option<Timestamp>, now: Timestamp) -> Option<String> {
    let t = t?;
    let d = Duration::try_from(now.duration_since(t)).unwrap_or_default();
    Some(human_duration(d))
}

fn terminated_reason(s: &ContainerStatus) -> Option<String> {
    let t = s.state.as_ref()?.terminated.as_ref()?;
    Some(match t.reason.as_deref().filter(|r| !r.is_empty()) {
        Some(r) => r.to_string(),
        None if t.signal.unwrap_or(0) != 0 => format!("Signal:{}", t.signal.unwrap_or(0)),
        None => format!("ExitCode:{}", t.exit_code),
    })
}

fn last_restart(s: &ContainerStatus) -> Option<Timestamp> {
    s.last_state
        .as_ref()?
        .terminated
        .as_ref()?
        .finished_at
        .as_ref()
        .map(|t| t.0)
}

/// Computes the `kubectl get pods` row of a pod at `now`.
pub fn pod_row(pod: &Pod, now: Timestamp) -> PodRow {
    let spec = pod.spec.clone().unwrap_or_default();
    let status = pod.status.clone().unwrap_or_default();
    let init_specs = spec.init_containers.clone().unwrap_or_default();
    let sidecars = init_specs.iter().filter(|c| is_sidecar(c)).count();
    let total = spec.containers.len() + sidecars;
    let mut ready = 0;
    let mut restarts: i32 = 0;
    let mut last: Option<Timestamp> = None;
    let mut bump = |s: &ContainerStatus, restarts: &mut i32| {
        *restarts += s.restart_count;
        if let Some(t) = last_restart(s) {
            last = Some(last.map_or(t, |l: Timestamp| l.max(t)));
        }
    };
    let mut reason = status
        .reason
        .clone()
        .filter(|r| !r.is_empty())
        .or_else(|| status.phase.clone())
        .unwrap_or_else(|| "Pending".into());

    let mut initializing = false;
    let init_statuses = status.init_container_statuses.clone().unwrap_or_default();
    for (i, s) in init_statuses.iter().enumerate() {
        bump(s, &mut restarts);
        let st = s.state.clone().unwrap_or_default();
        let sidecar = init_specs.get(i).is_some_and(is_sidecar);
        if st.terminated.as_ref().is_some_and(|t| t.exit_code == 0) {
            continue;
        }
        if sidecar && s.started == Some(true) {
            if s.ready {
                ready += 1;
            }
            continue;
        }
        if st.terminated.is_some() {
            reason = format!("Init:{}", terminated_reason(s).unwrap_or_default());
        } else if let Some(w) = st
            .waiting
            .as_ref()
            .and_then(|w| w.reason.clone())
            .filter(|r| !r.is_empty() && r != "PodInitializing")
        {
            reason = format!("Init:{w}");
        } else {
            reason = format!("Init:{}/{}", i, init_specs.len());
        }
        initializing = true;
        break;
    }
    let initialized_condition = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Initialized" && c.status == "True");
    if !initializing || initialized_condition {
        restarts = 0;
        last = None;
        let mut has_running = false;
        for s in init_statuses.iter() {
            restarts += s.restart_count;
        }
        for s in status.container_statuses.iter().flatten().rev() {
            restarts += s.restart_count;
            if let Some(t) = last_restart(s) {
                last = Some(last.map_or(t, |l| l.max(t)));
            }
            let st = s.state.clone().unwrap_or_default();
            if let Some(w) = st
                .waiting
                .as_ref()
                .and_then(|w| w.reason.clone())
                .filter(|r| !r.is_empty())
            {
                reason = w;
            } else if st.terminated.is_some() {
                reason = terminated_reason(s).unwrap_or_default();
            } else if s.ready && st.running.is_some() {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            let pod_ready = status
                .conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            reason = if pod_ready {
                "Running".into()
            } else {
                "NotReady".into()
            };
        }
    }
    if pod.metadata.deletion_timestamp.is_some() {
        reason = "Terminating".into();
    }
    let restarts = match age_since(last, now) {
        Some(age) if restarts > 0 => format!("{restarts} ({age} ago)"),
        _ => restarts.to_string(),
    };
    PodRow {
        namespace: namespace_of(pod).to_string(),
        name: pod.metadata.name.clone().unwrap_or_default(),
        ready: format!("{ready}/{total}"),
        status: reason,
        restarts,
        age: age_since(pod.metadata.creation_timestamp.as_ref().map(|t| t.0), now)
            .unwrap_or_else(|| "<unknown>".into()),
        ip: status
            .pod_ip
            .clone()
            .filter(|ip| !ip.is_empty())
            .unwrap_or_else(|| "<none>".into()),
        node: spec.node_name.clone().unwrap_or_else(|| "<none>".into()),
    }
}

/// Renders rows as kubectl's aligned table.
pub fn table(rows: &[PodRow], wide: bool, with_namespace: bool) -> String {
    let mut header: Vec<&str> = Vec::new();
    if with_namespace {
        header.push("NAMESPACE");
    }
    header.extend(["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    if wide {
        header.extend(["IP", "NODE", "NOMINATED NODE", "READINESS GATES"]);
    }
    let mut lines: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for r in rows {
        let mut l = Vec::new();
        if with_namespace {
            l.push(r.namespace.clone());
        }
        l.extend([
            r.name.clone(),
            r.ready.clone(),
            r.status.clone(),
            r.restarts.clone(),
            r.age.clone(),
        ]);
        if wide {
            l.extend([
                r.ip.clone(),
                r.node.clone(),
                "<none>".into(),
                "<none>".into(),
            ]);
        }
        lines.push(l);
    }
    let cols = lines[0].len();
    let widths: Vec<usize> = (0..cols)
        .map(|i| {
            lines
                .iter()
                .map(|l| l[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for l in lines {
        let mut line = String::new();
        for (i, cell) in l.iter().enumerate() {
            if i + 1 == cols {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}   ", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Lines of cells aligned in columns like kubectl's `get` (three spaces
/// between columns, the last one unpadded), through a tab writer.
pub fn aligned(lines: &[Vec<String>]) -> String {
    use std::io::Write as _;
    let mut tw = tabwriter::TabWriter::new(Vec::new()).padding(3);
    for l in lines {
        // Cells never hold tabs or newlines of their own.
        let cells: Vec<String> = l.iter().map(|c| c.replace(['\t', '\n'], " ")).collect();
        let _ = writeln!(tw, "{}", cells.join("\t"));
    }
    let bytes = tw.into_inner().unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn cell_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "<none>".into(),
        other => other.to_string(),
    }
}

/// A server-side `meta.k8s.io/v1` `Table` printed as kubectl prints it:
/// upper-case headers, priority-0 columns unless `wide`, a NAMESPACE
/// column from each row's object when `with_namespace`.
pub fn server_table(table: &serde_json::Value, wide: bool, with_namespace: bool) -> String {
    let empty = Vec::new();
    let columns = table["columnDefinitions"].as_array().unwrap_or(&empty);
    let shown: Vec<usize> = (0..columns.len())
        .filter(|i| wide || columns[*i]["priority"].as_i64().unwrap_or(0) == 0)
        .collect();
    let mut header: Vec<String> = Vec::new();
    if with_namespace {
        header.push("NAMESPACE".into());
    }
    header.extend(
        shown
            .iter()
            .map(|i| columns[*i]["name"].as_str().unwrap_or("").to_uppercase()),
    );
    let mut lines = vec![header];
    for row in table["rows"].as_array().unwrap_or(&empty) {
        let cells = row["cells"].as_array().unwrap_or(&empty);
        let mut line = Vec::new();
        if with_namespace {
            let ns = &row["object"]["metadata"]["namespace"];
            line.push(ns.as_str().unwrap_or("").to_string());
        }
        line.extend(
            shown
                .iter()
                .map(|i| cells.get(*i).map(cell_text).unwrap_or_default()),
        );
        lines.push(line);
    }
    aligned(&lines)
}

#[cfg(test)]
mod tests;
