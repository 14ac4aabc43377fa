//! Registry credentials for image pulls, found the way the kubelet finds
//! them.
//!
//! * A pod's `imagePullSecrets`: Secrets of the pod's namespace (from the
//!   manifests) of type `kubernetes.io/dockerconfigjson` (key
//!   `.dockerconfigjson`, `{"auths": {...}}`) or `kubernetes.io/dockercfg`
//!   (key `.dockercfg`, the legacy map); a missing Secret is skipped with a
//!   warning, as the kubelet does.
//! * The node's credentials: `--image-credential-file` (a Docker
//!   `config.json`), else `$HOME/.docker/config.json`, else
//!   `/root/.docker/config.json` — read at each pull, so a `docker login`
//!   takes effect without a restart.
//!
//! Entries are matched against the image's registry host as the kubelet's
//! keyring does: the key's scheme and path are ignored, the host (with its
//! port, which must match) may use `*` wildcards per DNS label, and Docker
//! Hub's aliases are one registry. Pod Secrets are tried before node
//! credentials.
//!
//! Credentials never reach a log line: [`RegistryAuth`]'s `Debug` redacts.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use base64::Engine as _;
use k8s_openapi::api::core::v1::Pod;
use serde::Deserialize;

use crate::pod::objects::{DataKind, Objects};

/// Docker Hub's canonical host.
pub const DOCKER_HUB: &str = "docker.io";

/// Credentials for one registry.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct RegistryAuth {
    pub username: String,
    pub password: String,
    /// The registry as the credentials name it (`serveraddress`).
    pub server: String,
}

impl std::fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryAuth")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("server", &self.server)
            .finish()
    }
}

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

#[derive(Deserialize)]
struct ConfigJson {
    #[serde(default)]
    auths: std::collections::BTreeMap<String, Entry>,
}

/// Why a credentials document cannot be used (never echoes its content).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CredentialsError(String);

fn entry_auth(key: &str, e: Entry) -> Option<(String, RegistryAuth)> {
    let (username, password) = match (e.username, e.password, e.auth) {
        (Some(u), Some(p), _) if !u.is_empty() => (u, p),
        (_, _, Some(auth)) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .ok()?;
            let text = String::from_utf8(bytes).ok()?;
            let (u, p) = text.split_once(':')?;
            (u.to_string(), p.to_string())
        }
        _ => return None,
    };
    Some((
        key.to_string(),
        RegistryAuth {
            username,
            password,
            server: key.to_string(),
        },
    ))
}

/// The entries of a Docker `config.json` / `.dockerconfigjson`
/// (`{"auths": {...}}`) or a legacy `.dockercfg` (the map itself).
pub fn parse_config(bytes: &[u8]) -> Result<Vec<(String, RegistryAuth)>, CredentialsError> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| CredentialsError(format!("not JSON (line {})", e.line())))?;
    let entries: std::collections::BTreeMap<String, Entry> = if value.get("auths").is_some() {
        serde_json::from_value::<ConfigJson>(value)
            .map_err(|_| CredentialsError("\"auths\" is not a map of registries".into()))?
            .auths
    } else {
        let Some(map) = value.as_object() else {
            return Err(CredentialsError("not a map of registries".into()));
        };
        // Docker's config.json without auths (credsStore only) has nothing.
        map.iter()
            .filter_map(|(k, v)| Some((k.clone(), serde_json::from_value(v.clone()).ok()?)))
            .collect()
    };
    Ok(entries
        .into_iter()
        .filter_map(|(k, e)| entry_auth(&k, e))
        .collect())
}

/// The registry host of an image reference (`docker.io` when none).
pub fn registry_host(image: &str) -> String {
    match image.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            normalize_host(first)
        }
        _ => DOCKER_HUB.to_string(),
    }
}

/// A credentials key or host as a comparable `host[:port]`: scheme and path
/// dropped, lower-cased, Docker Hub's aliases folded into `docker.io`.
pub fn normalize_host(key: &str) -> String {
    let key = key.trim();
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = key.split('/').next().unwrap_or(key).to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            DOCKER_HUB.to_string()
        }
        _ => host,
    }
}

/// Does the credentials key `pattern` cover `host` (both normalized)? Ports
/// must be equal; `*` matches one DNS label.
pub fn host_matches(pattern: &str, host: &str) -> bool {
    let (p_name, p_port) = pattern.split_once(':').unwrap_or((pattern, ""));
    let (h_name, h_port) = host.split_once(':').unwrap_or((host, ""));
    if p_port != h_port {
        return false;
    }
    let p: Vec<&str> = p_name.split('.').collect();
    let h: Vec<&str> = h_name.split('.').collect();
    p.len() == h.len()
        && p.iter().zip(&h).all(|(p, h)| {
            if p.contains('*') {
                glob_label(p, h)
            } else {
                p == h
            }
        })
}

fn glob_label(pattern: &str, label: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == label,
        Some((pre, rest)) => {
            label.starts_with(pre)
                && (pre.len()..=label.len()).any(|i| glob_label(rest, &label[i..]))
        }
    }
}

/// The first entry whose key covers `image`'s registry.
pub fn find<'a>(entries: &'a [(String, RegistryAuth)], image: &str) -> Option<&'a RegistryAuth> {
    let host = registry_host(image);
    entries
        .iter()
        .find(|(k, _)| host_matches(&normalize_host(k), &host))
        .map(|(_, a)| a)
}

/// Credentials from the pod's `imagePullSecrets`, in order. Secrets that
/// are missing or unusable are returned as warnings (never their content).
pub fn pod_credentials(pod: &Pod, objects: &Objects) -> (Vec<(String, RegistryAuth)>, Vec<String>) {
    let namespace = crate::k8s::meta::namespace_of(&pod.metadata);
    let mut entries = Vec::new();
    let mut warnings = Vec::new();
    let refs = pod
        .spec
        .as_ref()
        .and_then(|s| s.image_pull_secrets.clone())
        .unwrap_or_default();
    for r in refs {
        let name = r.name;
        let Some(data) = objects.entries(DataKind::Secret, namespace, &name) else {
            warnings.push(format!(
                "unable to retrieve pull secret {namespace}/{name} for {namespace}/{}: secret \"{name}\" not found",
                pod.metadata.name.as_deref().unwrap_or_default()
            ));
            continue;
        };
        let doc = data
            .get(".dockerconfigjson")
            .or_else(|| data.get(".dockercfg"));
        let Some(doc) = doc else {
            warnings.push(format!(
                "pull secret {namespace}/{name} has neither .dockerconfigjson nor .dockercfg"
            ));
            continue;
        };
        match parse_config(doc) {
            Ok(mut e) => entries.append(&mut e),
            Err(e) => warnings.push(format!("pull secret {namespace}/{name}: {e}")),
        }
    }
    (entries, warnings)
}

/// Bytes for a progress message: `512 B`, `3.4 MB` (decimal, as Docker).
pub fn human_bytes(n: i64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n.max(0) as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < units.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", units[unit])
    }
}

static NODE_FILE: OnceLock<Option<PathBuf>> = OnceLock::new();
static PROGRESS_PERIOD: OnceLock<std::time::Duration> = OnceLock::new();

/// The least time between two progress reports of a pull (2 s unless a
/// test sets it, once, at start).
pub fn progress_period() -> std::time::Duration {
    *PROGRESS_PERIOD.get_or_init(|| std::time::Duration::from_secs(2))
}

/// Sets [`progress_period`] (once, at start).
pub fn set_progress_period(period: std::time::Duration) {
    let _ = PROGRESS_PERIOD.set(period);
}
static PULLS: OnceLock<tokio::sync::Semaphore> = OnceLock::new();

/// Sets `--serialize-image-pulls` (once, at start; default true: one pull
/// at a time, as the kubelet).
pub fn set_serialize_pulls(serialize: bool) {
    let permits = if serialize {
        1
    } else {
        tokio::sync::Semaphore::MAX_PERMITS
    };
    let _ = PULLS.set(tokio::sync::Semaphore::new(permits));
}

/// Waits for a turn to pull (`None` if the semaphore is closed, never).
pub async fn pull_slot() -> Option<tokio::sync::SemaphorePermit<'static>> {
    PULLS
        .get_or_init(|| tokio::sync::Semaphore::new(1))
        .acquire()
        .await
        .ok()
}

/// Sets `--image-credential-file` (once, at start).
pub fn set_node_credential_file(path: Option<PathBuf>) {
    let _ = NODE_FILE.set(path);
}

/// The node's credentials file: the flag, else the Docker config of
/// `$HOME`, else root's.
fn node_file() -> Option<PathBuf> {
    if let Some(Some(p)) = NODE_FILE.get() {
        return Some(p.clone());
    }
    let home = std::env::var_os("HOME").map(|h| Path::new(&h).join(".docker/config.json"));
    home.into_iter()
        .chain([PathBuf::from("/root/.docker/config.json")])
        .find(|p| p.is_file())
}

/// The node's credentials (empty when there is no file; an unreadable or
/// invalid file is logged, without its content).
pub fn node_credentials() -> Vec<(String, RegistryAuth)> {
    let Some(path) = node_file() else {
        return Vec::new();
    };
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read the node's registry credentials");
            return Vec::new();
        }
    };
    parse_config(&bytes).unwrap_or_else(|e| {
        tracing::warn!(path = %path.display(), error = %e, "ignoring the node's registry credentials");
        Vec::new()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn dockerconfigjson_and_dockercfg_both_parse_with_auth_or_user_and_password() {
        let json = format!(
            r#"{{"auths": {{"127.0.0.1:5000": {{"auth": "{}"}}, "https://index.docker.io/v1/": {{"username": "u", "password": "p"}}}}}}"#,
            b64("alice:s3:cret")
        );
        let e = parse_config(json.as_bytes()).unwrap();
        assert_eq!(e.len(), 2);
        let local = find(&e, "127.0.0.1:5000/team/app:1").unwrap();
        assert_eq!(
            (local.username.as_str(), local.password.as_str()),
            ("alice", "s3:cret")
        );
        assert_eq!(find(&e, "busybox").unwrap().username, "u");
        let legacy = format!(
            r#"{{"reg.example.com": {{"auth": "{}", "email": "x@y"}}}}"#,
            b64("bob:pw")
        );
        let e = parse_config(legacy.as_bytes()).unwrap();
        assert_eq!(find(&e, "reg.example.com/app").unwrap().username, "bob");
    }

    #[test]
    fn hosts_match_like_the_kubelet_ports_must_agree_and_wildcards_cover_one_label() {
        assert_eq!(registry_host("busybox:1.36"), "docker.io");
        assert_eq!(registry_host("library/busybox"), "docker.io");
        assert_eq!(registry_host("localhost:5000/x"), "localhost:5000");
        assert_eq!(registry_host("Reg.Example.com/a/b"), "reg.example.com");
        assert!(host_matches("*.example.com", "reg.example.com"));
        assert!(!host_matches("*.example.com", "a.reg.example.com"));
        assert!(!host_matches("reg.example.com", "reg.example.com:5000"));
        assert!(!host_matches("127.0.0.1:5000", "127.0.0.1:5001"));
        assert!(host_matches("reg-*.example.com", "reg-eu.example.com"));
        assert_eq!(
            normalize_host("https://registry-1.docker.io/v2/"),
            "docker.io"
        );
    }

    #[test]
    fn bad_documents_are_errors_that_do_not_echo_their_content() {
        let err = parse_config(b"{\"auths\": \"sekrit\"}")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("sekrit"), "{err}");
        assert!(parse_config(b"nope sekrit")
            .unwrap_err()
            .to_string()
            .contains("not JSON"));
    }

    #[test]
    fn progress_bytes_read_like_dockers() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(3_400_000), "3.4 MB");
        assert_eq!(human_bytes(1_000), "1.0 kB");
    }

    #[test]
    fn debug_output_redacts_the_password() {
        let a = RegistryAuth {
            username: "u".into(),
            password: "hunter2".into(),
            server: "r".into(),
        };
        assert!(!format!("{a:?}").contains("hunter2"));
    }
}
