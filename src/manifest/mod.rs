//! Manifests: from bytes to validated, identified, defaulted Pods.
//!
//! Owns parsing (YAML or JSON, several documents, `Pod`, `ConfigMap`,
//! `Secret`, the `apps/v1` workloads of [`workload`] and `List`/`PodList`
//! of those), validation mirroring the API
//! server's, the kubelet-compatible static pod identity (name suffix,
//! namespace, UID, `kubernetes.io/config.*` annotations) and Kubernetes
//! defaulting. ConfigMaps and Secrets keep their names (pods refer to them by
//! name); their namespace defaults to `default` and a Secret's `stringData`
//! is merged into `data`, as the API server does.
//!
//! It does not read files or URLs (that is `source`) and does not decide what
//! to run (that is `pod`).

pub mod cronjob;
pub mod defaults;
pub mod identity;
pub mod limits;
pub mod parse;
pub mod validate;
pub mod workload;

use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::ByteString;

/// Where a manifest came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SourceKind {
    File,
    Http,
}

impl SourceKind {
    /// The value of the `kubernetes.io/config.source` annotation.
    pub fn annotation(self) -> &'static str {
        match self {
            SourceKind::File => "file",
            SourceKind::Http => "http",
        }
    }
}

/// One manifest location: a file path or a URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Origin {
    pub kind: SourceKind,
    /// The file path (as given) or the URL.
    pub location: String,
}

impl Origin {
    pub fn file(path: impl Into<String>) -> Self {
        Origin {
            kind: SourceKind::File,
            location: path.into(),
        }
    }
    /// The origin of a manifest URL, its password redacted
    /// ([`redact_url`]): the location shows in logs, events, the API and
    /// Docker labels, and is hashed into pod UIDs (so a new password
    /// restarts nothing).
    pub fn url(url: impl AsRef<str>) -> Self {
        Origin {
            kind: SourceKind::Http,
            location: redact_url(url.as_ref()),
        }
    }
    /// `file:<path>` or `url:<url>`: hashed into the UID and kept as a label.
    pub fn key(&self) -> String {
        match self.kind {
            SourceKind::File => format!("file:{}", self.location),
            SourceKind::Http => format!("url:{}", self.location),
        }
    }
}

/// The placeholder for a redacted password, as Go's `url.URL.Redacted`
/// (and so the Kubernetes tools) write it.
pub const REDACTED: &str = "xxxxx";

/// `url` with the password of its userinfo replaced by [`REDACTED`]
/// (`https://user:xxxxx@host/path`); other URLs unchanged. Text that is
/// not a URL has anything between `://` and an `@` before the first `/`
/// redacted the same way.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_none_or(|p| p == REDACTED) {
                return url.to_string();
            }
            match u.set_password(Some(REDACTED)) {
                Ok(()) => u.to_string(),
                Err(()) => url.to_string(),
            }
        }
        Err(_) => {
            let Some(start) = url.find("://").map(|i| i + 3) else {
                return url.to_string();
            };
            let authority_end = url[start..]
                .find(['/', '?', '#'])
                .map_or(url.len(), |i| start + i);
            match url[start..authority_end].rfind('@') {
                Some(at) => {
                    let userinfo = &url[start..start + at];
                    let user = userinfo.split(':').next().unwrap_or_default();
                    format!("{}{user}:{REDACTED}{}", &url[..start], &url[start + at..])
                }
                None => url.to_string(),
            }
        }
    }
}

/// What loading a manifest needs to know about the node and the moment.
#[derive(Debug, Clone)]
pub struct LoadContext<'a> {
    /// The node name (already lower-cased).
    pub node_name: &'a str,
    pub origin: &'a Origin,
    /// Value for `kubernetes.io/config.seen`.
    pub now: Timestamp,
}

/// A manifest that could not be used, with everything a user needs to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct ManifestError {
    /// The file path or URL.
    pub location: String,
    /// 1-based document number within a multi-document file, when known.
    pub document: Option<usize>,
    /// 1-based line and column of a syntax error, when known.
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// Field path like `spec.containers[1].name`, when known.
    pub field: Option<String>,
    /// What is wrong, lower case, API-server style where it applies.
    pub reason: String,
}

impl ManifestError {
    pub fn new(location: impl Into<String>, reason: impl Into<String>) -> Self {
        ManifestError {
            location: location.into(),
            document: None,
            line: None,
            column: None,
            field: None,
            reason: reason.into(),
        }
    }

    fn render(&self) -> String {
        let mut s = self.location.clone();
        if let Some(d) = self.document {
            s.push_str(&format!(": document {d}"));
        }
        match (self.line, self.column) {
            (Some(l), Some(c)) => s.push_str(&format!(": line {l} column {c}")),
            (Some(l), None) => s.push_str(&format!(": line {l}")),
            _ => {}
        }
        if let Some(f) = &self.field {
            s.push_str(&format!(": {f}"));
        }
        s.push_str(": ");
        s.push_str(&self.reason);
        s
    }
}

/// The pods and objects of one good manifest, with non-fatal findings.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub pods: Vec<Pod>,
    /// Validated ConfigMaps, namespace defaulted.
    pub configmaps: Vec<ConfigMap>,
    /// Validated Secrets, namespace and type defaulted, `stringData` merged
    /// into `data`.
    pub secrets: Vec<Secret>,
    /// Validated and defaulted `apps/v1` workloads.
    pub workloads: Vec<workload::Workload>,
    /// Non-fatal findings (unknown fields, skipped kinds), each naming the
    /// location, document and field path.
    pub warnings: Vec<String>,
}

/// Parses, validates, identifies and defaults every pod and object in one
/// manifest.
///
/// Fails as a whole if any document is malformed or any pod or object
/// invalid: a file is either good (all its pods) or bad (none), so a bad edit
/// can fall back to the last good version of the file. An empty file yields
/// nothing.
pub fn load(content: &[u8], ctx: &LoadContext<'_>) -> Result<Loaded, ManifestError> {
    let parse::Parsed {
        documents,
        configmaps,
        secrets,
        workloads,
        warnings,
    } = parse::parse_documents(content, &ctx.origin.location)?;
    let located = |index: usize| {
        move |mut e: ManifestError| {
            e.location = ctx.origin.location.clone();
            e.document = e.document.or(Some(index));
            e
        }
    };
    let configmaps = configmaps
        .into_iter()
        .map(|(index, mut cm)| {
            default_namespace(&mut cm.metadata);
            validate::validate_config_map(&cm).map_err(located(index))?;
            Ok(cm)
        })
        .collect::<Result<Vec<_>, ManifestError>>()?;
    let secrets = secrets
        .into_iter()
        .map(|(index, mut secret)| {
            default_namespace(&mut secret.metadata);
            if let Some(strings) = secret.string_data.take() {
                let data = secret.data.get_or_insert_with(Default::default);
                for (k, v) in strings {
                    data.insert(k, ByteString(v.into_bytes()));
                }
            }
            if secret.type_.as_deref().is_none_or(str::is_empty) {
                secret.type_ = Some("Opaque".to_string());
            }
            validate::validate_secret(&secret).map_err(located(index))?;
            Ok(secret)
        })
        .collect::<Result<Vec<_>, ManifestError>>()?;
    let mut warnings = warnings;
    let workloads = workloads
        .into_iter()
        .map(|(index, prefix, mut w)| {
            workload::validate(&w).map_err(|mut e| {
                e.field = e.field.map(|f| format!("{prefix}{f}"));
                located(index)(e)
            })?;
            if let workload::Workload::Job(job) = &mut w {
                // A Job's identity is its manifest content: an edit is a
                // new Job (as deleting and creating it on a cluster).
                // `suspend` and `parallelism` may change on a cluster's
                // Job: they are not part of its identity.
                let mut raw = serde_json::to_value(&*job).unwrap_or_default();
                if let Some(spec) = raw.get_mut("spec").and_then(|s| s.as_object_mut()) {
                    spec.remove("suspend");
                    spec.remove("parallelism");
                }
                job.metadata.uid = Some(identity::uid(&raw, ctx.node_name, ctx.origin));
                for warning in workload::job_warnings(job) {
                    warnings.push(format!(
                        "{}: document {index}: {prefix}{warning}",
                        ctx.origin.location
                    ));
                }
            }
            workload::apply_defaults(&mut w);
            Ok(w)
        })
        .collect::<Result<Vec<_>, ManifestError>>()?;
    let mut pods = Vec::new();
    for doc in documents {
        let parse::Document { index, raw, pod } = doc;
        let mut pod = pod;
        identity::apply(&mut pod, &raw, ctx);
        validate::validate_pod(&pod).map_err(|mut e| {
            e.location = ctx.origin.location.clone();
            e.document = e.document.or(Some(index));
            e
        })?;
        defaults::apply(&mut pod);
        pods.push(pod);
    }
    Ok(Loaded {
        pods,
        configmaps,
        secrets,
        workloads,
        warnings,
    })
}

fn default_namespace(meta: &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) {
    if meta.namespace.as_deref().is_none_or(str::is_empty) {
        meta.namespace = Some("default".to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(text: &str) -> Result<Loaded, ManifestError> {
        let origin = Origin::file("/d/objects.yaml");
        let ctx = LoadContext {
            node_name: "node1",
            origin: &origin,
            now: Timestamp::UNIX_EPOCH,
        };
        load(text.as_bytes(), &ctx)
    }

    #[test]
    fn config_maps_and_secrets_load_with_defaults_and_merged_string_data() {
        let loaded = load_str(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\ndata: {a.txt: hello}\nbinaryData: {b.bin: AAEC}\nimmutable: true\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: creds, namespace: prod}\ndata: {user: YWRtaW4=, pass: b2xk}\nstringData: {pass: new}\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(loaded.pods.is_empty() && loaded.warnings.is_empty());
        let cm = &loaded.configmaps[0];
        assert_eq!(cm.metadata.name.as_deref(), Some("app"));
        assert_eq!(cm.metadata.namespace.as_deref(), Some("default"));
        assert_eq!(
            cm.binary_data.as_ref().expect("binary")["b.bin"].0,
            [0, 1, 2]
        );
        let s = &loaded.secrets[0];
        assert_eq!(s.metadata.namespace.as_deref(), Some("prod"));
        assert_eq!(s.type_.as_deref(), Some("Opaque"));
        let data = s.data.as_ref().expect("data");
        assert_eq!(data["user"].0, b"admin");
        assert_eq!(data["pass"].0, b"new", "stringData wins");
        assert!(s.string_data.is_none());
    }

    #[test]
    fn config_map_keys_must_be_file_names_and_the_size_is_limited() {
        let e = load_str(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\ndata: {\"a/b\": x}\n",
        )
        .expect_err("slash");
        assert_eq!(e.field.as_deref(), Some("data[a/b]"));
        assert!(e.reason.contains("a valid config key"), "{e}");
        let e =
            load_str("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\ndata: {..x: y}\n")
                .expect_err("dots");
        assert!(e.reason.contains("must not start with '..'"), "{e}");
        let big = "x".repeat(MAX_OBJECT_SIZE_FOR_TESTS + 1);
        let e = load_str(&format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: app}}\ndata: {{big: {big}}}\n"
        ))
        .expect_err("too big");
        assert!(e.reason.contains("Too long"), "{e}");
        let e = load_str("apiVersion: v1\nkind: Secret\nmetadata: {name: Bad_Name}\n")
            .expect_err("name");
        assert_eq!(e.field.as_deref(), Some("metadata.name"));
        assert_eq!(e.document, Some(1));
    }

    const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 2\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers: [{name: web, image: busybox}]\n";

    #[test]
    fn workloads_load_validated_and_defaulted_from_documents_and_lists() {
        let list = format!(
            "apiVersion: v1\nkind: List\nitems:\n- {}",
            DEPLOYMENT.replace("web", "api").replace('\n', "\n  ")
        );
        let loaded =
            load_str(&format!("{DEPLOYMENT}---\n{list}")).unwrap_or_else(|e| panic!("{e}"));
        let keys: Vec<String> = loaded.workloads.iter().map(|w| w.key()).collect();
        assert_eq!(keys, ["default/web", "default/api"]);
        assert!(loaded.pods.is_empty());
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let ds = DEPLOYMENT
            .replace("Deployment", "DaemonSet")
            .replace("  replicas: 2\n", "");
        let loaded = load_str(&ds).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(loaded.workloads[0].kind(), "DaemonSet");
        assert!(loaded.warnings.is_empty());
    }

    #[test]
    fn a_bad_workload_names_file_document_and_field_and_fails_the_file() {
        let e = load_str(&format!(
            "apiVersion: v1\nkind: List\nitems:\n- {}",
            DEPLOYMENT
                .replace("replicas: 2", "replicas: -2")
                .replace('\n', "\n  ")
        ))
        .expect_err("negative replicas");
        assert_eq!(
            e.to_string(),
            "/d/objects.yaml: document 1: items[0].spec.replicas: Invalid value: -2: must be greater than or equal to 0"
        );
        let e = load_str(&DEPLOYMENT.replace("matchLabels: {app: web}", "matchLabels: {app: api}"))
            .expect_err("selector");
        assert_eq!(e.field.as_deref(), Some("spec.template.metadata.labels"));
        let e = load_str(&DEPLOYMENT.replace("apps/v1", "extensions/v1beta1")).expect_err("group");
        assert_eq!(e.field.as_deref(), Some("apiVersion"));
        assert!(e.reason.contains("supported values: \"apps/v1\""), "{e}");
    }

    const MAX_OBJECT_SIZE_FOR_TESTS: usize = validate::MAX_OBJECT_SIZE;

    #[test]
    fn url_passwords_are_redacted_and_other_urls_kept() {
        assert_eq!(
            redact_url("https://user:s3cr3t@example.com:8443/pods.yaml?x=1"),
            "https://user:xxxxx@example.com:8443/pods.yaml?x=1"
        );
        for kept in [
            "http://127.0.0.1:8080/pods",
            "https://user@example.com/pods",
            "https://user:xxxxx@example.com/pods",
        ] {
            assert_eq!(redact_url(kept), kept);
        }
        assert_eq!(
            redact_url("http://u:p@ss@[bad/x"),
            "http://u:xxxxx@[bad/x",
            "not a URL, still redacted"
        );
        let origin = Origin::url("http://u:s3cr3t@127.0.0.1:1/p");
        assert_eq!(origin.key(), "url:http://u:xxxxx@127.0.0.1:1/p");
        assert_eq!(origin, Origin::url(&origin.location), "idempotent");
    }
}
