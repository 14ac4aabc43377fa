//! `rkubelet describe deployment|replicaset|daemonset`: kubectl's layout
//! (pure).
//!
//! Follows kubectl's `DeploymentDescriber` (name, namespace, creation time,
//! labels, annotations, selector, the `Replicas:` line, strategy, pod
//! template, conditions, old and new ReplicaSets, events),
//! `ReplicaSetDescriber` (`Replicas: N current / M desired`, `Pods Status`)
//! and `DaemonSetDescriber` (the `Number of Nodes …` lines), with the pod
//! template printed as kubectl's `DescribePodTemplate`. Shares the pod
//! describer's helpers (tab alignment, container and volume lines, events).

use std::fmt::Write;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Event, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;

use super::describe::{
    align, container_lines, events_lines, map_lines, time, tolerations_lines, volume_lines,
};
use crate::k8s::meta::namespace_of;

/// A label selector as kubectl prints it: `k=v` pairs sorted by key, then
/// the expressions (`k in (a,b)`, `k notin (a)`, `k`, `!k`), comma-joined.
pub fn selector_string(sel: &LabelSelector) -> String {
    let mut parts: Vec<String> = (sel.match_labels.iter().flatten())
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in sel.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default().join(",");
        parts.push(match e.operator.as_str() {
            "In" => format!("{} in ({values})", e.key),
            "NotIn" => format!("{} notin ({values})", e.key),
            "Exists" => e.key.clone(),
            "DoesNotExist" => format!("!{}", e.key),
            other => format!("{} {other} ({values})", e.key),
        });
    }
    parts.sort();
    if parts.is_empty() {
        "<none>".into()
    } else {
        parts.join(",")
    }
}

fn int_or_string(v: Option<&IntOrString>, default: &str) -> String {
    match v {
        Some(IntOrString::Int(i)) => i.to_string(),
        Some(IntOrString::String(s)) => s.clone(),
        None => default.into(),
    }
}

/// Name, namespace, creation time, labels and annotations.
fn header(out: &mut String, md: &ObjectMeta, with_selector: Option<&LabelSelector>) {
    let _ = writeln!(out, "Name:\t{}", md.name.as_deref().unwrap_or(""));
    let _ = writeln!(out, "Namespace:\t{}", namespace_of(md));
    if let Some(sel) = with_selector {
        let _ = writeln!(out, "Selector:\t{}", selector_string(sel));
    }
    map_lines(out, "", "Labels", md.labels.as_ref(), "=");
    map_lines(out, "", "Annotations", md.annotations.as_ref(), ": ");
}

fn controlled_by(out: &mut String, md: &ObjectMeta) {
    if let Some(o) = (md.owner_references.iter().flatten()).find(|o| o.controller == Some(true)) {
        let _ = writeln!(out, "Controlled By:\t{}/{}", o.kind, o.name);
    }
}

/// kubectl's `DescribePodTemplate` under `Pod Template:`.
fn pod_template(out: &mut String, t: &PodTemplateSpec) {
    let _ = writeln!(out, "Pod Template:");
    let md = t.metadata.clone().unwrap_or_default();
    map_lines(out, "  ", "Labels", md.labels.as_ref(), "=");
    if md.annotations.as_ref().is_some_and(|a| !a.is_empty()) {
        map_lines(out, "  ", "Annotations", md.annotations.as_ref(), ": ");
    }
    let spec = t.spec.clone().unwrap_or_default();
    if let Some(sa) = spec
        .service_account_name
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        let _ = writeln!(out, "  Service Account:\t{sa}");
    }
    let sections = [
        (
            "Init Containers",
            spec.init_containers.clone().unwrap_or_default(),
        ),
        ("Containers", spec.containers.clone()),
    ];
    for (title, containers) in sections {
        if containers.is_empty() {
            continue;
        }
        let _ = writeln!(out, "  {title}:");
        for c in &containers {
            let mut lines = String::new();
            container_lines(&mut lines, c, None);
            // The pod describer's container lines, one level deeper for
            // the name (kubectl prints a template's `   name:`).
            for line in lines.lines() {
                let deeper = line.starts_with("  ") && !line.starts_with("   ");
                let _ = writeln!(out, "{}{line}", if deeper { " " } else { "" });
            }
        }
    }
    let volumes = spec.volumes.clone().unwrap_or_default();
    if volumes.is_empty() {
        let _ = writeln!(out, "  Volumes:\t<none>");
    } else {
        let _ = writeln!(out, "  Volumes:");
        let mut lines = String::new();
        for v in &volumes {
            volume_lines(&mut lines, v);
        }
        for line in lines.lines() {
            let _ = writeln!(out, "  {line}");
        }
    }
    map_lines(
        out,
        "  ",
        "Node-Selectors",
        spec.node_selector.as_ref(),
        "=",
    );
    tolerations_lines(out, "  ", spec.tolerations.as_deref());
}

/// `N Running / N Waiting / N Succeeded / N Failed` of `pods`.
fn pods_status(pods: &[Pod]) -> String {
    let count = |phase: &str| {
        pods.iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some(phase))
            .count()
    };
    format!(
        "{} Running / {} Waiting / {} Succeeded / {} Failed",
        count("Running"),
        count("Pending"),
        count("Succeeded"),
        count("Failed")
    )
}

/// `name (created/desired replicas created)` as kubectl lists ReplicaSets.
fn replica_set_summary(rs: &ReplicaSet) -> String {
    let created = rs.status.as_ref().map_or(0, |s| s.replicas);
    let desired = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    format!(
        "{} ({created}/{desired} replicas created)",
        rs.metadata.name.as_deref().unwrap_or("")
    )
}

/// Renders `describe deployment` for `d`, the ReplicaSets it owns and its
/// events, at `now`.
pub fn describe_deployment(
    d: &Deployment,
    replica_sets: &[ReplicaSet],
    events: &[Event],
    now: Timestamp,
) -> String {
    let mut out = String::new();
    let spec = d.spec.clone().unwrap_or_default();
    let status = d.status.clone().unwrap_or_default();
    let _ = writeln!(out, "Name:\t{}", d.metadata.name.as_deref().unwrap_or(""));
    let _ = writeln!(out, "Namespace:\t{}", namespace_of(&d.metadata));
    if let Some(t) = &d.metadata.creation_timestamp {
        let _ = writeln!(out, "CreationTimestamp:\t{}", time(t));
    }
    map_lines(&mut out, "", "Labels", d.metadata.labels.as_ref(), "=");
    map_lines(
        &mut out,
        "",
        "Annotations",
        d.metadata.annotations.as_ref(),
        ": ",
    );
    let _ = writeln!(out, "Selector:\t{}", selector_string(&spec.selector));
    let _ = writeln!(
        out,
        "Replicas:\t{} desired | {} updated | {} total | {} available | {} unavailable",
        spec.replicas.unwrap_or(1),
        status.updated_replicas.unwrap_or(0),
        status.replicas.unwrap_or(0),
        status.available_replicas.unwrap_or(0),
        status.unavailable_replicas.unwrap_or(0)
    );
    let strategy = spec.strategy.clone().unwrap_or_default();
    let type_ = strategy.type_.as_deref().unwrap_or("RollingUpdate");
    let _ = writeln!(out, "StrategyType:\t{type_}");
    let _ = writeln!(
        out,
        "MinReadySeconds:\t{}",
        spec.min_ready_seconds.unwrap_or(0)
    );
    if type_ == "RollingUpdate" {
        let ru = strategy.rolling_update.unwrap_or_default();
        let _ = writeln!(
            out,
            "RollingUpdateStrategy:\t{} max unavailable, {} max surge",
            int_or_string(ru.max_unavailable.as_ref(), "25%"),
            int_or_string(ru.max_surge.as_ref(), "25%")
        );
    }
    pod_template(&mut out, &spec.template);
    let conditions = status.conditions.clone().unwrap_or_default();
    if !conditions.is_empty() {
        let _ = writeln!(
            out,
            "Conditions:\n  Type\tStatus\tReason\n  ----\t------\t------"
        );
        for c in &conditions {
            let _ = writeln!(
                out,
                "  {}\t{}\t{}",
                c.type_,
                c.status,
                c.reason.as_deref().unwrap_or("")
            );
        }
    }
    let current = (spec.template.metadata.as_ref())
        .and_then(|m| m.labels.as_ref())
        .cloned()
        .unwrap_or_default();
    // The new ReplicaSet has the current template (its pod-template-hash
    // aside); the others are old, listed when they still have pods.
    let is_new = |rs: &ReplicaSet| {
        rs.spec
            .as_ref()
            .and_then(|s| s.template.as_ref())
            .is_some_and(|t| {
                let mut labels = (t.metadata.as_ref())
                    .and_then(|m| m.labels.clone())
                    .unwrap_or_default();
                labels.remove(crate::workload::POD_TEMPLATE_HASH);
                labels == current && t.spec == spec.template.spec
            })
    };
    let new: Vec<String> = (replica_sets.iter().filter(|rs| is_new(rs)))
        .map(replica_set_summary)
        .collect();
    let old: Vec<String> = (replica_sets.iter())
        .filter(|rs| !is_new(rs))
        .filter(|rs| {
            rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0) > 0
                || rs.status.as_ref().is_some_and(|s| s.replicas > 0)
        })
        .map(replica_set_summary)
        .collect();
    let none = |v: Vec<String>| {
        if v.is_empty() {
            "<none>".to_string()
        } else {
            v.join(", ")
        }
    };
    let _ = writeln!(out, "OldReplicaSets:\t{}", none(old));
    let _ = writeln!(out, "NewReplicaSet:\t{}", none(new));
    events_lines(&mut out, events, now);
    align(&out)
}

/// Renders `describe replicaset` for `rs`, its pods and events at `now`.
pub fn describe_replica_set(
    rs: &ReplicaSet,
    pods: &[Pod],
    events: &[Event],
    now: Timestamp,
) -> String {
    let mut out = String::new();
    let spec = rs.spec.clone().unwrap_or_default();
    header(&mut out, &rs.metadata, Some(&spec.selector));
    controlled_by(&mut out, &rs.metadata);
    let _ = writeln!(
        out,
        "Replicas:\t{} current / {} desired",
        rs.status.as_ref().map_or(0, |s| s.replicas),
        spec.replicas.unwrap_or(1)
    );
    let _ = writeln!(out, "Pods Status:\t{}", pods_status(pods));
    pod_template(&mut out, &spec.template.unwrap_or_default());
    events_lines(&mut out, events, now);
    align(&out)
}

/// Renders `describe daemonset` for `ds`, its pods and events at `now`.
pub fn describe_daemon_set(
    ds: &DaemonSet,
    pods: &[Pod],
    events: &[Event],
    now: Timestamp,
) -> String {
    let mut out = String::new();
    let spec = ds.spec.clone().unwrap_or_default();
    let status = ds.status.clone().unwrap_or_default();
    let _ = writeln!(out, "Name:\t{}", ds.metadata.name.as_deref().unwrap_or(""));
    let _ = writeln!(out, "Namespace:\t{}", namespace_of(&ds.metadata));
    let _ = writeln!(out, "Selector:\t{}", selector_string(&spec.selector));
    let node_selector = (spec.template.spec.as_ref()).and_then(|s| s.node_selector.as_ref());
    map_lines(&mut out, "", "Node-Selector", node_selector, "=");
    map_lines(&mut out, "", "Labels", ds.metadata.labels.as_ref(), "=");
    map_lines(
        &mut out,
        "",
        "Annotations",
        ds.metadata.annotations.as_ref(),
        ": ",
    );
    let _ = writeln!(
        out,
        "Desired Number of Nodes Scheduled: {}",
        status.desired_number_scheduled
    );
    let _ = writeln!(
        out,
        "Current Number of Nodes Scheduled: {}",
        status.current_number_scheduled
    );
    let _ = writeln!(
        out,
        "Number of Nodes Scheduled with Up-to-date Pods: {}",
        status.updated_number_scheduled.unwrap_or(0)
    );
    let _ = writeln!(
        out,
        "Number of Nodes Scheduled with Available Pods: {}",
        status.number_available.unwrap_or(0)
    );
    let _ = writeln!(
        out,
        "Number of Nodes Misscheduled: {}",
        status.number_misscheduled
    );
    let _ = writeln!(out, "Pods Status:\t{}", pods_status(pods));
    pod_template(&mut out, &spec.template);
    events_lines(&mut out, events, now);
    align(&out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template(version: &str, hash: Option<&str>) -> serde_json::Value {
        let mut labels = json!({"app": "web"});
        if let Some(h) = hash {
            labels["pod-template-hash"] = json!(h);
        }
        json!({
            "metadata": {"labels": labels},
            "spec": {"containers": [{"name": "web", "image": format!("nginx:{version}"),
                                     "ports": [{"containerPort": 80}]}]}
        })
    }

    fn rs(name: &str, version: &str, replicas: i32) -> ReplicaSet {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default",
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                              "name": "web", "uid": "u", "controller": true}]},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "template": template(version, Some(name.trim_start_matches("web-")))},
            "status": {"replicas": replicas}
        }))
        .expect("replica set")
    }

    fn line<'a>(text: &'a str, start: &str) -> &'a str {
        (text.lines())
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no {start:?} in\n{text}"))
    }

    #[test]
    fn a_deployment_mid_rollout_prints_kubectls_lines() {
        let d: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default", "generation": 2},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "web"},
                             "matchExpressions": [{"key": "tier", "operator": "In",
                                                   "values": ["a", "b"]}]},
                "strategy": {"type": "RollingUpdate",
                             "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                "template": template("2", None)
            },
            "status": {"replicas": 4, "updatedReplicas": 1, "availableReplicas": 3,
                       "unavailableReplicas": 1, "observedGeneration": 2,
                       "conditions": [
                           {"type": "Available", "status": "True",
                            "reason": "MinimumReplicasAvailable"},
                           {"type": "Progressing", "status": "True",
                            "reason": "ReplicaSetUpdated"}]}
        }))
        .expect("deployment");
        let sets = [
            rs("web-old11", "1", 3),
            rs("web-new22", "2", 1),
            rs("web-gone3", "0", 0),
        ];
        let text = describe_deployment(&d, &sets, &[], Timestamp::UNIX_EPOCH);
        assert_eq!(
            line(&text, "Selector:"),
            "Selector:               app=web,tier in (a,b)"
        );
        assert_eq!(
            line(&text, "Replicas:"),
            "Replicas:               3 desired | 1 updated | 4 total | 3 available | 1 unavailable"
        );
        assert_eq!(
            line(&text, "RollingUpdateStrategy:"),
            "RollingUpdateStrategy:  0 max unavailable, 1 max surge"
        );
        assert_eq!(
            line(&text, "OldReplicaSets:"),
            "OldReplicaSets:  web-old11 (3/3 replicas created)"
        );
        assert_eq!(
            line(&text, "NewReplicaSet:"),
            "NewReplicaSet:   web-new22 (1/1 replicas created)"
        );
        assert_eq!(line(&text, "   web:"), "   web:");
        assert!(line(&text, "    Image:").ends_with("nginx:2"), "{text}");
        assert!(line(&text, "  Progressing").contains("ReplicaSetUpdated"));
        assert_eq!(line(&text, "Events:"), "Events:          <none>");
    }

    #[test]
    fn a_replica_set_and_a_daemon_set_print_their_counts() {
        let set = rs("web-new22", "2", 2);
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "web-new22-abcde"}, "status": {"phase": "Running"}
        }))
        .expect("pod");
        let text =
            describe_replica_set(&set, std::slice::from_ref(&pod), &[], Timestamp::UNIX_EPOCH);
        assert_eq!(
            line(&text, "Controlled By:"),
            "Controlled By:  Deployment/web"
        );
        assert_eq!(
            line(&text, "Replicas:"),
            "Replicas:       2 current / 2 desired"
        );
        assert_eq!(
            line(&text, "Pods Status:"),
            "Pods Status:    1 Running / 0 Waiting / 0 Succeeded / 0 Failed"
        );
        let ds: DaemonSet = serde_json::from_value(json!({
            "metadata": {"name": "agent", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": "agent"}},
                     "template": template("1", None)},
            "status": {"desiredNumberScheduled": 0, "currentNumberScheduled": 0,
                       "numberMisscheduled": 0, "numberReady": 0}
        }))
        .expect("daemon set");
        let text = describe_daemon_set(&ds, &[], &[], Timestamp::UNIX_EPOCH);
        assert_eq!(
            line(&text, "Desired Number"),
            "Desired Number of Nodes Scheduled: 0"
        );
        assert!(line(&text, "Node-Selector:").ends_with("<none>"));
        assert!(text.contains("Pod Template:\n  Labels:"), "{text}");
    }
}
