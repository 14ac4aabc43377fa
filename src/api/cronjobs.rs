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
//! manifests only. The body may be JSON (`rkubelet create job`) or the
//! protobuf kubectl's typed client sends; of a protobuf body only the
//! metadata is read, and the spec is the CronJob's job template — exactly
//! what `kubectl create job --from=cronjob/X` sends.

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

/// The start of a Kubernetes protobuf body.
const PROTOBUF_MAGIC: &[u8] = b"k8s\0";

/// Just enough of the Kubernetes protobuf encoding to read a Job's
/// metadata (name, namespace, labels, annotations, owner references) from
/// the `runtime.Unknown` envelope kubectl posts.
mod proto {
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

    /// `(field number, value)` of one field: varints as numbers,
    /// length-delimited fields as bytes; fixed-width ones are skipped.
    enum Value<'a> {
        Varint(u64),
        Bytes(&'a [u8]),
        Fixed,
    }

    fn varint(buf: &mut &[u8]) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = buf.split_first()?;
            *buf = rest;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    /// The fields of one message, in order; `None` when malformed.
    fn fields(mut buf: &[u8]) -> Option<Vec<(u64, Value<'_>)>> {
        let mut out = Vec::new();
        while !buf.is_empty() {
            let key = varint(&mut buf)?;
            let value = match key & 7 {
                0 => Value::Varint(varint(&mut buf)?),
                2 => {
                    let len = usize::try_from(varint(&mut buf)?).ok()?;
                    let (bytes, rest) = (buf.get(..len)?, buf.get(len..)?);
                    buf = rest;
                    Value::Bytes(bytes)
                }
                1 => {
                    buf = buf.get(8..)?;
                    Value::Fixed
                }
                5 => {
                    buf = buf.get(4..)?;
                    Value::Fixed
                }
                _ => return None,
            };
            out.push((key >> 3, value));
        }
        Some(out)
    }

    fn text(v: &Value<'_>) -> Option<String> {
        match v {
            Value::Bytes(b) => String::from_utf8(b.to_vec()).ok(),
            _ => None,
        }
    }

    fn bytes<'a>(v: &Value<'a>) -> Option<&'a [u8]> {
        match v {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    fn map_entry(v: &Value<'_>) -> Option<(String, String)> {
        let mut entry = (String::new(), String::new());
        for (n, f) in fields(bytes(v)?)? {
            match n {
                1 => entry.0 = text(&f)?,
                2 => entry.1 = text(&f)?,
                _ => {}
            }
        }
        Some(entry)
    }

    fn owner(v: &Value<'_>) -> Option<OwnerReference> {
        let mut o = OwnerReference::default();
        for (n, f) in fields(bytes(v)?)? {
            match (n, &f) {
                (1, _) => o.kind = text(&f)?,
                (3, _) => o.name = text(&f)?,
                (4, _) => o.uid = text(&f)?,
                (5, _) => o.api_version = text(&f)?,
                (6, Value::Varint(b)) => o.controller = Some(*b != 0),
                (7, Value::Varint(b)) => o.block_owner_deletion = Some(*b != 0),
                _ => {}
            }
        }
        Some(o)
    }

    /// The Job's `ObjectMeta` from the envelope after the magic bytes.
    pub fn job_metadata(envelope: &[u8]) -> Option<ObjectMeta> {
        // runtime.Unknown: raw = 2.
        let raw = (fields(envelope)?.into_iter()).find(|(n, _)| *n == 2)?.1;
        // Job: metadata = 1.
        let meta = (fields(bytes(&raw)?)?.into_iter())
            .find(|(n, _)| *n == 1)?
            .1;
        let mut out = ObjectMeta::default();
        let mut labels = BTreeMap::new();
        let mut annotations = BTreeMap::new();
        let mut owners = Vec::new();
        for (n, f) in fields(bytes(&meta)?)? {
            match n {
                1 => out.name = text(&f),
                3 => out.namespace = text(&f),
                11 => labels.extend(map_entry(&f)),
                12 => annotations.extend(map_entry(&f)),
                13 => owners.push(owner(&f)?),
                _ => {}
            }
        }
        out.labels = (!labels.is_empty()).then_some(labels);
        out.annotations = (!annotations.is_empty()).then_some(annotations);
        out.owner_references = (!owners.is_empty()).then_some(owners);
        Some(out)
    }
}

/// The authenticated port's route: creating a Job from a CronJob.
pub fn secure_routes() -> Router<ApiState> {
    Router::new().route("/apis/batch/v1/namespaces/{ns}/jobs", post(create_job))
}

async fn create_job(
    State(s): State<ApiState>,
    Path(ns): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let decoded = match body.strip_prefix(PROTOBUF_MAGIC) {
        // kubectl's typed client posts protobuf: read the metadata; the
        // spec is the CronJob's template, which is what kubectl sends.
        Some(envelope) => proto::job_metadata(envelope)
            .map(|metadata| Job {
                metadata,
                ..Default::default()
            })
            .ok_or_else(|| "cannot read the protobuf Job".to_string()),
        None => serde_json::from_slice::<Job>(&body).map_err(|e| e.to_string()),
    };
    let job: Job = match decoded {
        Ok(j) => j,
        Err(e) => {
            let content_type = (headers.get(axum::http::header::CONTENT_TYPE))
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            return status_error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaType",
                format!(
                    "the body must be a batch/v1 Job as JSON (Content-Type {content_type:?}): {e}"
                ),
            )
            .into_response();
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
