//! Client commands on the authenticated port: `rkubelet restart pod NAME
//! [--recreate]`.
//!
//! They find the port through a kubeconfig (`--kubeconfig`, else
//! `$KUBECONFIG`, else `~/.kube/config`), or, when none exists, through the
//! daemon's own files under `/var/lib/rkubelet` (readable by root only) and
//! `https://127.0.0.1:10250`.

use std::path::PathBuf;

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};

use super::{failure, Client, CtlError, Result};
use crate::api::secure::kubeconfig;
use crate::cli::{RestartArgs, SecureClientArgs};

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
