//! Manifests: from bytes to validated, identified, defaulted Pods.
//!
//! Owns parsing (YAML or JSON, several documents, `Pod` and `List`/`PodList`
//! of pods; `ConfigMap`/`Secret` accepted and skipped for now), validation
//! mirroring the API server's pod validation, the kubelet-compatible static
//! pod identity (name suffix, namespace, UID, `kubernetes.io/config.*`
//! annotations) and Kubernetes defaulting.
//!
//! It does not read files or URLs (that is `source`) and does not decide what
//! to run (that is `pod`).

pub mod defaults;
pub mod identity;
pub mod parse;
pub mod validate;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;

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
    pub fn url(url: impl Into<String>) -> Self {
        Origin {
            kind: SourceKind::Http,
            location: url.into(),
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

/// The pods of one good manifest, with non-fatal findings.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub pods: Vec<Pod>,
    /// Non-fatal findings (unknown fields, skipped kinds), each naming the
    /// location, document and field path.
    pub warnings: Vec<String>,
}

/// Parses, validates, identifies and defaults every pod in one manifest.
///
/// Fails as a whole if any document is malformed or any pod invalid: a file is
/// either good (all its pods) or bad (none), so a bad edit can fall back to the
/// last good version of the file. An empty file yields no pods.
pub fn load(content: &[u8], ctx: &LoadContext<'_>) -> Result<Loaded, ManifestError> {
    let parse::Parsed {
        documents,
        warnings,
    } = parse::parse_documents(content, &ctx.origin.location)?;
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
    Ok(Loaded { pods, warnings })
}
