//! `rkubelet kubeconfig`: a kubeconfig for the authenticated port.
//!
//! It names the server (`https://ADDRESS:PORT`, loopback for an unspecified
//! address), the CA that signed the serving certificate (the generated
//! `pki/ca.crt`, or `--tls-cert-file`'s last certificate, or a given CA
//! file) and the first token of the token file. The files are private to
//! root, so the command works where they can be read.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use base64::Engine;

/// What goes in the kubeconfig.
#[derive(Debug, Clone)]
pub struct KubeconfigArgs {
    pub root_dir: PathBuf,
    pub address: IpAddr,
    pub port: u16,
    /// `--token-auth-file` if the daemon runs with one.
    pub token_auth_file: Option<PathBuf>,
    /// The CA of a `--tls-cert-file` the daemon runs with.
    pub certificate_authority: Option<PathBuf>,
    /// The context, cluster and user name.
    pub name: String,
}

/// The server URL clients use for a daemon bound to `address:port`.
pub fn server_url(address: IpAddr, port: u16) -> String {
    let ip = match address {
        IpAddr::V4(a) if a.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(a) if a.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        a => a,
    };
    format!("https://{}", SocketAddr::new(ip, port))
}

/// The kubeconfig YAML for a server, CA (PEM) and token.
pub fn render(name: &str, server: &str, ca_pem: &[u8], token: &str) -> String {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let config = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {
            "server": server,
            "certificate-authority-data": ca,
        }}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{"name": name, "context": {
            "cluster": name, "user": name, "namespace": "default",
        }}],
        "current-context": name,
        "preferences": {},
    });
    serde_yaml::to_string(&config).unwrap_or_default()
}

/// Reads the CA and token files and renders the kubeconfig. Fails naming the
/// file that cannot be read.
pub fn build(args: &KubeconfigArgs) -> Result<String, String> {
    let (server, ca, token) = parts(args)?;
    Ok(render(&args.name, &server, &ca, &token))
}

/// (server, CA PEM, token) of a node run with `args`' flags. Fails naming
/// the file that cannot be read.
pub fn parts(args: &KubeconfigArgs) -> Result<(String, Vec<u8>, String), String> {
    let ca_path = args
        .certificate_authority
        .clone()
        .unwrap_or_else(|| super::pki::generated_paths(&args.root_dir).ca);
    let ca = std::fs::read(&ca_path).map_err(|e| {
        format!(
            "cannot read the CA {}: {e} (has rkubelet run with --root-dir {}? the file is readable by root only)",
            ca_path.display(),
            args.root_dir.display()
        )
    })?;
    let token_path = args
        .token_auth_file
        .clone()
        .unwrap_or_else(|| super::tokens::generated_path(&args.root_dir));
    let tokens = super::tokens::Tokens::read(&token_path).map_err(|e| {
        format!(
            "{e} (has rkubelet run with --root-dir {}? the file is readable by root only)",
            args.root_dir.display()
        )
    })?;
    let token = tokens.first().unwrap_or_default().to_string();
    Ok((server_url(args.address, args.port), ca, token))
}

/// The token and CA a kubeconfig file names: (server, CA PEM, token).
pub fn read(path: &Path) -> Result<(String, Vec<u8>, String), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the kubeconfig {}: {e}", path.display()))?;
    let doc: serde_json::Value =
        serde_yaml::from_str(&text).map_err(|e| format!("kubeconfig {}: {e}", path.display()))?;
    let current = doc["current-context"].as_str().unwrap_or_default();
    let named = |list: &str, name: &str| {
        doc[list]
            .as_array()
            .and_then(|l| l.iter().find(|e| e["name"] == name).cloned())
            .or_else(|| doc[list].get(0).cloned())
            .unwrap_or_default()
    };
    let context = named("contexts", current);
    let cluster = named(
        "clusters",
        context["context"]["cluster"].as_str().unwrap_or(""),
    );
    let user = named("users", context["context"]["user"].as_str().unwrap_or(""));
    let server = cluster["cluster"]["server"]
        .as_str()
        .ok_or_else(|| format!("kubeconfig {}: no cluster server", path.display()))?
        .to_string();
    let ca = match cluster["cluster"]["certificate-authority-data"].as_str() {
        Some(b64) => base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|e| {
                format!(
                    "kubeconfig {}: certificate-authority-data: {e}",
                    path.display()
                )
            })?,
        None => match cluster["cluster"]["certificate-authority"].as_str() {
            Some(file) => std::fs::read(file).map_err(|e| {
                format!(
                    "kubeconfig {}: certificate-authority {file}: {e}",
                    path.display()
                )
            })?,
            None => Vec::new(),
        },
    };
    let token = user["user"]["token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    Ok((server, ca, token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unspecified_address_is_reached_on_loopback() {
        assert_eq!(
            server_url("0.0.0.0".parse().unwrap(), 10250),
            "https://127.0.0.1:10250"
        );
        assert_eq!(server_url("::".parse().unwrap(), 1), "https://[::1]:1");
        assert_eq!(
            server_url("10.0.0.5".parse().unwrap(), 2),
            "https://10.0.0.5:2"
        );
    }

    #[test]
    fn a_rendered_kubeconfig_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, render("n", "https://127.0.0.1:1", b"PEM", "tok")).unwrap();
        let (server, ca, token) = read(&path).unwrap();
        assert_eq!(server, "https://127.0.0.1:1");
        assert_eq!(ca, b"PEM");
        assert_eq!(token, "tok");
    }
}
