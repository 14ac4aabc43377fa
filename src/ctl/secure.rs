//! Client commands on the authenticated port: `rkubelet restart pod NAME
//! [--recreate]` and `rkubelet create job NAME --from=cronjob/X`.
//!
//! They find the port through a kubeconfig (`--kubeconfig`, else
//! `$KUBECONFIG`, else `~/.kube/config`), or, when none exists, through the
//! daemon's own files under `/var/lib/rkubelet` (readable by root only) and
//! `https://127.0.0.1:10250`.

use std::path::PathBuf;

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};

use super::{failure, Client, CtlError, Result};
use crate::api::secure::kubeconfig;
use crate::cli::{CreateArgs, RestartArgs, SecureClientArgs};

/// The kubeconfig to use, if any exists.
fn kubeconfig_path(args: &SecureClientArgs) -> Option<PathBuf> {
    if let Some(p) = &args.kubeconfig {
        return Some(p.clone());
    }
    if let Some(p) = std::env::var_os("KUBECONFIG").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let home = std::env::var_os("HOME")?;
    let p = PathBuf::from(home).join(".kube/config");
    p.exists().then_some(p)
}

/// (server, CA PEM, token) for the authenticated port.
pub(super) fn endpoint(args: &SecureClientArgs) -> Result<(String, Vec<u8>, String)> {
    if let Some(path) = kubeconfig_path(args) {
        return kubeconfig::read(&path).map_err(CtlError);
    }
    kubeconfig::parts(&kubeconfig::KubeconfigArgs {
        root_dir: PathBuf::from("/var/lib/rkubelet"),
        address: std::net::Ipv4Addr::LOCALHOST.into(),
        port: 10250,
        token_auth_file: None,
        certificate_authority: None,
        name: "rkubelet".into(),
    })
    .map_err(|e| CtlError(format!("no kubeconfig (--kubeconfig, $KUBECONFIG) and {e}")))
}

/// A client of the authenticated port.
pub(super) fn client(args: &SecureClientArgs) -> Result<Client> {
    let (server, ca, token) = endpoint(args)?;
    let mut builder = crate::http_client::client_builder();
    if !ca.is_empty() {
        let certs = reqwest::Certificate::from_pem_bundle(&ca)
            .map_err(|e| CtlError(format!("the kubeconfig's CA: {e}")))?;
        builder = builder.tls_certs_only(certs);
    }
    let mut headers = HeaderMap::new();
    let value = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| CtlError("the kubeconfig's token is not a valid header value".into()))?;
    headers.insert(AUTHORIZATION, value);
    let http = builder
        .default_headers(headers)
        .build()
        .map_err(|e| CtlError(format!("cannot build an HTTPS client: {e}")))?;
    Ok(Client {
        http,
        server: server.trim_end_matches('/').to_string(),
    })
}

/// `rkubelet restart pod NAME [--recreate]`.
pub async fn restart(args: &RestartArgs, out: &mut impl std::io::Write) -> Result<()> {
    if !matches!(args.resource.as_str(), "pod" | "pods" | "po") {
        return Err(CtlError(format!(
            "error: rkubelet restart knows pods only, not {:?}",
            args.resource
        )));
    }
    let client = client(&args.secure)?;
    let ns = args.namespace.as_deref().unwrap_or("default");
    let pod = client.find(ns, &args.name).await?;
    let name = pod.metadata.name.unwrap_or_default();
    let url = format!(
        "{}/api/v1/namespaces/{ns}/pods/{name}/restart{}",
        client.server,
        if args.recreate { "?recreate=true" } else { "" }
    );
    let resp = client
        .http
        .post(&url)
        .send()
        .await
        .map_err(|e| CtlError(format!("cannot reach rkubelet at {}: {e}", client.server)))?;
    if !resp.status().is_success() {
        return Err(failure(resp).await);
    }
    let _ = writeln!(out, "pod/{name} restarted");
    Ok(())
}

/// `rkubelet create job NAME --from=cronjob/X`: reads the CronJob and posts
/// the Job `kubectl create job --from=cronjob/X` posts (the CronJob's job
/// template, annotated `cronjob.kubernetes.io/instantiate: manual`, owned
/// by the CronJob).
pub async fn create_job(args: &CreateArgs, out: &mut impl std::io::Write) -> Result<()> {
    if !matches!(args.resource.as_str(), "job" | "jobs" | "job.batch") {
        return Err(CtlError(format!(
            "error: rkubelet create knows jobs only (from a CronJob), not {:?}",
            args.resource
        )));
    }
    let Some(cronjob) = (args.from.split_once('/'))
        .filter(|(kind, _)| matches!(*kind, "cronjob" | "cronjobs" | "cj" | "cronjob.batch"))
        .map(|(_, name)| name)
        .filter(|n| !n.is_empty())
    else {
        return Err(CtlError(format!(
            "error: --from must be cronjob/NAME, not {:?}",
            args.from
        )));
    };
    let client = client(&args.secure)?;
    let ns = args.namespace.as_deref().unwrap_or("default");
    let unreachable =
        |e: reqwest::Error| CtlError(format!("cannot reach rkubelet at {}: {e}", client.server));
    let url = format!(
        "{}/apis/batch/v1/namespaces/{ns}/cronjobs/{cronjob}",
        client.server
    );
    let resp = client.http.get(&url).send().await.map_err(unreachable)?;
    if !resp.status().is_success() {
        return Err(failure(resp).await);
    }
    let cj: k8s_openapi::api::batch::v1::CronJob = resp
        .json()
        .await
        .map_err(|e| CtlError(format!("cannot read cronjob {cronjob:?}: {e}")))?;
    let template = cj.spec.map(|s| s.job_template).unwrap_or_default();
    let mut annotations = std::collections::BTreeMap::from([(
        crate::workload::cronjob::INSTANTIATE.to_string(),
        "manual".to_string(),
    )]);
    annotations.extend(
        template
            .metadata
            .as_ref()
            .and_then(|m| m.annotations.clone())
            .unwrap_or_default(),
    );
    let mut owner = crate::workload::cronjob::owner_ref(
        cronjob,
        cj.metadata.uid.as_deref().unwrap_or_default(),
    );
    owner.block_owner_deletion = None;
    let job = k8s_openapi::api::batch::v1::Job {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(args.name.clone()),
            namespace: Some(ns.to_string()),
            annotations: Some(annotations),
            labels: template.metadata.and_then(|m| m.labels),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: template.spec,
        status: None,
    };
    let mut body = serde_json::to_value(&job).unwrap_or_default();
    body["apiVersion"] = "batch/v1".into();
    body["kind"] = "Job".into();
    let url = format!("{}/apis/batch/v1/namespaces/{ns}/jobs", client.server);
    let resp = client
        .http
        .post(&url)
        .json(&body)
        .send()
        .await
        .map_err(unreachable)?;
    if !resp.status().is_success() {
        return Err(failure(resp).await);
    }
    let _ = writeln!(out, "job.batch/{} created", args.name);
    Ok(())
}
