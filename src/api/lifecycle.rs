//! The authenticated port's pod lifecycle verbs, as a manifest-driven node
//! allows them.
//!
//! * `POST …/pods/{name}/restart` (rkubelet's; `rkubelet restart pod NAME`):
//!   a running `restartPolicy: Always` pod has its app containers stopped
//!   gracefully (their grace period), and the restart policy brings them
//!   back — counted in `restartCount`, like a crash. With `?recreate=true`,
//!   or for a pod the restart policy would not bring back (`Never`,
//!   `OnFailure`, or a completed pod), every container of the pod including
//!   its sandbox is stopped gracefully and removed, and the pod's worker
//!   starts it afresh: a new sandbox, whose containers' restart counts go
//!   on from the removed instances' (the worker counts on from the
//!   instance directories they left, as the kubelet does from its log
//!   directory) — the way to re-run a completed `Never` pod. Both record a `Restarting` event.
//! * `DELETE …/pods/{name}` (`kubectl delete pod`) is refused with a
//!   `Status` naming the manifest that defines the pod and the command that
//!   restarts it: the manifests are the only source of truth.
//!
//! Only containers listed when the request arrives are stopped or removed;
//! what the worker creates meanwhile is left alone.

use std::time::Duration;

use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use axum::{Json, Router};
use futures_util::future::join_all;

use super::secure::tokens::User;
use super::{status_error, ApiState};
use crate::events::Involved;
use crate::worker::store::PodRecord;

/// The verbs' routes.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/namespaces/{ns}/pods/{name}/restart", post(restart))
        .route("/api/v1/namespaces/{ns}/pods/{name}", delete(refuse_delete))
}

fn find(s: &ApiState, ns: &str, name: &str) -> Option<PodRecord> {
    s.store.list().into_iter().find(|r| {
        r.pod.metadata.namespace.as_deref() == Some(ns)
            && r.pod.metadata.name.as_deref() == Some(name)
    })
}

fn not_found(name: &str) -> Response {
    status_error(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("pods {name:?} not found"),
    )
    .into_response()
}

/// The manifest a pod comes from, for people: `the manifest file X` or
/// `the manifest URL Y`.
pub fn describe_source(source: &str) -> String {
    match source.split_once(':') {
        Some(("file", path)) => format!("the manifest file {path}"),
        Some(("url", url)) => format!("the manifest URL {url}"),
        _ => format!("the manifest source {source}"),
    }
}

async fn refuse_delete(
    State(s): State<ApiState>,
    Path((ns, name)): Path<(String, String)>,
) -> Response {
    let Some(record) = find(&s, &ns, &name) else {
        return not_found(&name);
    };
    status_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        format!(
            "pod {name:?} is defined by {}: rkubelet runs what its manifests say, so delete the pod by \
             removing or editing that manifest; restart it with `rkubelet restart pod {name}` \
             (or `rkubelet restart pod {name} --recreate` for a new sandbox)",
            describe_source(&record.source)
        ),
    )
    .into_response()
}

#[derive(Debug, serde::Deserialize)]
struct RestartQuery {
    #[serde(default)]
    recreate: Option<String>,
}

async fn restart(
    State(s): State<ApiState>,
    Path((ns, name)): Path<(String, String)>,
    Query(q): Query<RestartQuery>,
    user: Option<Extension<User>>,
) -> Response {
    let Some(record) = find(&s, &ns, &name) else {
        return not_found(&name);
    };
    let pod = &record.pod;
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    let grace = Duration::from_secs(
        spec.termination_grace_period_seconds
            .unwrap_or(30)
            .max(0)
            .unsigned_abs(),
    );
    let phase = pod
        .status
        .as_ref()
        .and_then(|st| st.phase.clone())
        .unwrap_or_default();
    let always = spec.restart_policy.as_deref().unwrap_or("Always") == "Always";
    let asked = q
        .recreate
        .as_deref()
        .is_some_and(|v| matches!(v, "" | "1" | "true" | "True"));
    let recreate = asked || !always || matches!(phase.as_str(), "Succeeded" | "Failed");
    let containers = match s.runtime.list_brief(Some(&uid)).await {
        Ok(c) => c,
        Err(e) => {
            return status_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                format!("cannot list the containers of pod {name:?}: {e}"),
            )
            .into_response()
        }
    };
    let (sandboxes, apps): (Vec<_>, Vec<_>) = containers
        .into_iter()
        .partition(|c| c.meta().is_some_and(|m| m.is_sandbox));
    let who = user.map(|Extension(u)| u.name).unwrap_or_default();
    let involved = Involved::pod(&ns, &name, &uid);
    let names: Vec<String> = apps
        .iter()
        .filter(|c| c.is_running())
        .filter_map(|c| c.meta().map(|m| m.container_name))
        .collect();
    let message = if recreate {
        format!("restart requested by {who:?}: stopping and removing every container and the sandbox; the pod starts afresh")
    } else {
        format!(
            "restart requested by {who:?}: stopping containers [{}]; the restart policy brings them back",
            names.join(" ")
        )
    };
    s.recorder.normal(&involved, "Restarting", message.clone());
    tracing::info!(pod = %name, namespace = %ns, recreate, user = %who, "restart requested");

    let runtime = s.runtime.clone();
    let stop_apps = join_all(
        apps.iter()
            .filter(|c| c.is_running())
            .map(|c| runtime.stop_container(&c.id, grace)),
    );
    let failed: Vec<String> = stop_apps
        .await
        .into_iter()
        .filter_map(Result::err)
        .map(|e| e.to_string())
        .collect();
    if recreate {
        for c in &sandboxes {
            if let Err(e) = runtime.stop_container(&c.id, Duration::from_secs(2)).await {
                tracing::warn!(error = %e, "restart: cannot stop the sandbox");
            }
        }
        for c in apps.iter().chain(sandboxes.iter()) {
            if let Err(e) = runtime.remove_container(&c.id).await {
                tracing::warn!(error = %e, "restart: cannot remove a container");
            }
        }
    }
    if !failed.is_empty() {
        return status_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            format!("restart of pod {name:?}: {}", failed.join("; ")),
        )
        .into_response();
    }
    Json(serde_json::json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "message": format!("pod {name:?} restarted{}", if recreate { " (recreated)" } else { "" }),
        "details": {"name": name, "kind": "pods", "uid": uid},
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_is_described_as_its_file_or_url() {
        assert_eq!(
            describe_source("file:/etc/kubelet.d/web.yaml"),
            "the manifest file /etc/kubelet.d/web.yaml"
        );
        assert_eq!(
            describe_source("url:http://x/pods"),
            "the manifest URL http://x/pods"
        );
    }
}
