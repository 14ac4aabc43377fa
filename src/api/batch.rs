//! `/apis/batch/v1`: Jobs, read-only.
//!
//! Serves the Jobs the pod manager publishes after every controller run
//! ([`crate::worker::workloads::WorkloadObjects::jobs`]) like the `apps/v1`
//! kinds ([`super::apps`]): discovery (`/apis/batch`, `/apis/batch/v1`),
//! list and watch over all namespaces or one, get one, selectors, and
//! server-side Tables with kubectl's columns (NAME STATUS COMPLETIONS
//! DURATION AGE; wide: CONTAINERS IMAGES SELECTOR), so `kubectl get jobs`,
//! `describe job`, `wait --for=condition=complete job/x` and
//! `logs job/x` work.

use axum::routing::get;
use axum::{Json, Router};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::jiff::Timestamp;
use serde_json::{json, Value};

use super::apps::{containers_and_images, kind_routes, selector_text, wide_columns};
use super::kube::{column, partial_metadata, table};
use super::watch::Kind;
use super::ApiState;
use crate::k8s::print::{human_duration, object_age};

/// `GET /apis/batch/v1`.
pub fn resource_list() -> Value {
    let read = json!(["get", "list", "watch"]);
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": "batch/v1",
        "resources": [
            {"name": "jobs", "singularName": "job", "namespaced": true, "kind": "Job",
             "verbs": read, "categories": ["all"]},
            super::cronjobs::resource()
        ]
    })
}

/// The `batch` group as discovery lists it.
pub fn group() -> Value {
    json!({
        "name": "batch",
        "versions": [{"groupVersion": "batch/v1", "version": "v1"}],
        "preferredVersion": {"groupVersion": "batch/v1", "version": "v1"}
    })
}

/// A Job's STATUS as kubectl prints it.
pub fn job_state(j: &Job) -> &'static str {
    let has = |t: &str| {
        (j.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten())
        .any(|c| c.type_ == t && c.status == "True")
    };
    if has("Complete") {
        "Complete"
    } else if has("Failed") {
        "Failed"
    } else if j.metadata.deletion_timestamp.is_some() {
        "Terminating"
    } else if has("Suspended") {
        "Suspended"
    } else if has("FailureTarget") {
        "FailureTarget"
    } else if has("SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else {
        "Running"
    }
}

/// COMPLETIONS: `succeeded/completions`, or `succeeded/1 of parallelism`
/// for a Job without completions.
pub fn job_completions(j: &Job) -> String {
    let spec = j.spec.as_ref();
    let succeeded = j.status.as_ref().and_then(|s| s.succeeded).unwrap_or(0);
    match spec.and_then(|s| s.completions) {
        Some(c) => format!("{succeeded}/{c}"),
        None => match spec.and_then(|s| s.parallelism).unwrap_or(1) {
            p if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    }
}

/// DURATION: from start to completion (or to now while it runs).
pub fn job_duration(j: &Job, now: Timestamp) -> String {
    let st = j.status.as_ref();
    let Some(start) = st.and_then(|s| s.start_time.as_ref()) else {
        return String::new();
    };
    let end = st
        .and_then(|s| s.completion_time.as_ref())
        .map_or(now, |t| t.0);
    let d = end.duration_since(start.0);
    human_duration(std::time::Duration::try_from(d).unwrap_or_default())
}

/// Jobs as kubectl prints them.
pub fn job_table(items: &[Job], now: Timestamp) -> Value {
    let mut columns = vec![
        column("Name", "name", 0, "Name must be unique within a namespace."),
        column("Status", "", 0, "Status of the job."),
        column("Completions", "", 0, "The completion status of the job."),
        column("Duration", "", 0, "Time required to complete the job."),
        column("Age", "", 0, "CreationTimestamp of the object."),
    ];
    columns.extend(wide_columns());
    let rows = (items.iter())
        .map(|j| {
            let spec = j.spec.as_ref();
            let (containers, images) = containers_and_images(spec.map(|s| &s.template));
            let selector = (spec.and_then(|s| s.selector.as_ref()))
                .map(selector_text)
                .unwrap_or_else(|| "<none>".into());
            json!({
                "cells": [
                    j.metadata.name,
                    job_state(j),
                    job_completions(j),
                    job_duration(j, now),
                    object_age(&j.metadata, now),
                    containers, images, selector,
                ],
                "object": partial_metadata(&j.metadata),
            })
        })
        .collect();
    table(columns, rows)
}

static JOBS: Kind<Job> = Kind {
    resource: "jobs",
    table: job_table,
};

/// The `batch/v1` routes, discovery included.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route(
            "/apis/batch",
            get(|| async {
                let mut g = group();
                g["kind"] = json!("APIGroup");
                g["apiVersion"] = json!("v1");
                Json(g)
            }),
        )
        .route("/apis/batch/v1", get(|| async { Json(resource_list()) }))
        .merge(kind_routes("batch/v1", &JOBS, |s| &s.workloads.jobs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_completions_and_duration_read_like_kubectl() {
        let j: Job = serde_json::from_value(json!({
            "metadata": {"name": "work"},
            "spec": {"completions": 3, "parallelism": 2, "template": {}},
            "status": {"succeeded": 1, "startTime": "2026-01-01T00:00:00Z"}
        }))
        .expect("job");
        let now: Timestamp = "2026-01-01T00:01:05Z".parse().expect("ts");
        assert_eq!(job_state(&j), "Running");
        assert_eq!(job_completions(&j), "1/3");
        assert_eq!(job_duration(&j, now), "65s");
        let mut done = j.clone();
        let st = done.status.as_mut().expect("status");
        st.completion_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            "2026-01-01T00:00:30Z".parse().expect("ts"),
        ));
        st.conditions = Some(vec![k8s_openapi::api::batch::v1::JobCondition {
            type_: "Complete".into(),
            status: "True".into(),
            ..Default::default()
        }]);
        assert_eq!(job_state(&done), "Complete");
        assert_eq!(job_duration(&done, now), "30s");
        let mut any = j.clone();
        any.spec.as_mut().expect("spec").completions = None;
        assert_eq!(job_completions(&any), "1/1 of 2");
    }
}
