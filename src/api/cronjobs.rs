//! `/apis/batch/v1/…/cronjobs`, and creating a Job from a CronJob.
//!
//! Serves the CronJobs the pod manager publishes after every controller
//! run ([`crate::worker::workloads::WorkloadObjects::cronjobs`]) like the
//! other kinds: list and watch over all namespaces or one, get one, label
//! and field selectors, and a server-side Table with kubectl's columns
//! (NAME SCHEDULE TIMEZONE SUSPEND ACTIVE LAST SCHEDULE AGE; wide:
//! CONTAINERS IMAGES SELECTOR).
//!
//! On the authenticated port, `POST /apis/batch/v1/namespaces/{ns}/jobs`
//! accepts what `kubectl create job NAME --from=cronjob/X` (and `rkubelet
//! create job`) sends — a Job whose controller ownerReference names a
//! CronJob — and queues it for the CronJob controller, which keeps it with
//! that CronJob's Jobs ([`crate::worker::cronjobs`]). Other Jobs come from
//! manifests only.

use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::jiff::Timestamp;
use serde_json::{json, Value};

use super::kube::{column, partial_metadata, table};
use super::watch::{get_one, list_or_watch, Kind};
use super::{status_error, ApiState};
use crate::k8s::print::{human_duration, object_age};

/// The `cronjobs` entry of `/apis/batch/v1`.
pub fn resource() -> Value {
    json!({"name": "cronjobs", "singularName": "cronjob", "namespaced": true, "kind": "CronJob",
           "verbs": ["get", "list", "watch"], "shortNames": ["cj"], "categories": ["all"]})
}

/// CronJobs as kubectl prints them.
pub fn cronjob_table(items: &[CronJob], now: Timestamp) -> Value {
    let columns = vec![
        column("Name", "name", 0, "Name must be unique within a namespace."),
        column("Schedule", "", 0, "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron."),
        column("Timezone", "", 0, "The time zone name for the given schedule, see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones."),
        column("Suspend", "", 0, "This flag tells the controller to suspend subsequent executions, it does not apply to already started executions."),
        column("Active", "", 0, "A list of pointers to currently running jobs."),
        column("Last Schedule", "", 0, "Information when was the last time the job was successfully scheduled."),
        column("Age", "", 0, "CreationTimestamp of the object."),
        column("Containers", "", 1, "Names of each container in the template."),
        column("Images", "", 1, "Images referenced by each container in the template."),
        column("Selector", "", 1, "A label query over pods that should match the pod count."),
    ];
    let rows = (items.iter())
        .map(|cj| {
            let spec = cj.spec.clone().unwrap_or_default();
            let st = cj.status.clone().unwrap_or_default();
            let last = (st.last_schedule_time.as_ref())
                .map(|t| {
                    let secs = now.duration_since(t.0).as_secs().max(0).unsigned_abs();
                    human_duration(Duration::from_secs(secs))
                })
                .unwrap_or_else(|| "<none>".into());
            let suspend = match spec.suspend {
                None => "<unset>".to_string(),
                Some(b) => if b { "True" } else { "False" }.to_string(),
            };
            let job = spec.job_template.spec.clone().unwrap_or_default();
            let containers = job.template.spec.map(|s| s.containers).unwrap_or_default();
            let names: Vec<&str> = containers.iter().map(|c| c.name.as_str()).collect();
            let images: Vec<&str> = (containers.iter())
                .map(|c| c.image.as_deref().unwrap_or_default())
                .collect();
            let selector = job
                .selector
                .and_then(|s| s.match_labels)
                .filter(|m| !m.is_empty())
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_else(|| "<none>".into());
            json!({
                "cells": [
                    cj.metadata.name,
                    spec.schedule,
                    spec.time_zone.unwrap_or_else(|| "<none>".into()),
                    suspend,
                    st.active.map_or(0, |a| a.len()),
                    last,
                    object_age(&cj.metadata, now),
                    names.join(","), images.join(","), selector,
                ],
                "object": partial_metadata(&cj.metadata),
            })
        })
        .collect();
    table(columns, rows)
}

static CRONJOBS: Kind<CronJob> = Kind {
    resource: "cronjobs",
    table: cronjob_table,
};

/// The CronJob routes (list, watch, get).
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route(
            "/apis/batch/v1/cronjobs",
            get(
                move |State(s): State<ApiState>, RawQuery(q): RawQuery, headers: HeaderMap| async move {
                    let stop = s.shutdown.clone();
                    list_or_watch(&s.workloads.cronjobs, &CRONJOBS, None, q.as_deref(), &headers, stop)
                },
            ),
        )
        .route(
            "/apis/batch/v1/namespaces/{ns}/cronjobs",
            get(
                move |State(s): State<ApiState>,
                      Path(ns): Path<String>,
                      RawQuery(q): RawQuery,
                      headers: HeaderMap| async move {
                    let stop = s.shutdown.clone();
                    list_or_watch(&s.workloads.cronjobs, &CRONJOBS, Some(&ns), q.as_deref(), &headers, stop)
                },
            ),
        )
        .route(
            "/apis/batch/v1/namespaces/{ns}/cronjobs/{name}",
            get(
                move |State(s): State<ApiState>,
                      Path((ns, name)): Path<(String, String)>,
                      RawQuery(q): RawQuery,
                      headers: HeaderMap| async move {
                    get_one(&s.workloads.cronjobs, &CRONJOBS, Some(&ns), &name, q.as_deref(), &headers)
                },
            ),
        )
}

/// The authenticated port's route: creating a Job from a CronJob.
pub fn secure_routes() -> Router<ApiState> {
    Router::new().route("/apis/batch/v1/namespaces/{ns}/jobs", post(create_job))
}

async fn create_job(
    State(s): State<ApiState>,
    Path(ns): Path<String>,
    RawQuery(q): RawQuery,
    Json(body): Json<Value>,
) -> Response {
    let job: Job = match serde_json::from_value(body) {
        Ok(j) => j,
        Err(e) => {
            return status_error(StatusCode::BAD_REQUEST, "BadRequest", format!("not a Job: {e}"))
                .into_response()
        }
    };
    let cronjobs: Vec<CronJob> = (s.workloads.cronjobs.list().0.iter())
        .map(|c| (**c).clone())
        .collect();
    let job = match crate::worker::cronjobs::manual_job(job, &ns, &cronjobs) {
        Ok(j) => j,
        Err(e) if e.ends_with("not found") => {
            return status_error(StatusCode::NOT_FOUND, "NotFound", e).into_response()
        }
        Err(e) => {
            return status_error(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", e).into_response()
        }
    };
    let name = job.metadata.name.clone().unwrap_or_default();
    let exists = (s.workloads.jobs.list().0.iter()).any(|j| {
        j.metadata.namespace.as_deref() == Some(ns.as_str())
            && j.metadata.name.as_deref() == Some(name.as_str())
    });
    if exists {
        return status_error(
            StatusCode::CONFLICT,
            "AlreadyExists",
            format!("jobs.batch {name:?} already exists"),
        )
        .into_response();
    }
    let dry_run = q.as_deref().is_some_and(|q| q.contains("dryRun=All"));
    if !dry_run {
        s.workloads.manual.push(job.clone());
    }
    let mut out = serde_json::to_value(&job).unwrap_or_default();
    out["apiVersion"] = json!("batch/v1");
    out["kind"] = json!("Job");
    (StatusCode::CREATED, Json(out)).into_response()
}
