//! YAML/JSON documents to `Pod`s, with errors naming document, line and field.
//!
//! Owns reading the manifest text: several `---` documents (JSON is YAML, so
//! one parser serves both), YAML merge keys, the accepted kinds (`Pod`,
//! `List`/`PodList` of those, `ConfigMap`, `Secret`, `apps/v1`
//! `Deployment`/`ReplicaSet`/`DaemonSet`, `batch/v1` `CronJob`; other kinds are skipped with a
//! warning), typed
//! deserialization into `k8s_openapi`'s types with a field path on type
//! errors, and warnings for fields Kubernetes does not know (k8s-openapi
//! ignores them silently; we compare the document with its round trip).
//! Input is held to [`super::limits`] first (size, nesting, nodes, alias
//! expansion). It does not validate, default or identify pods or objects.

use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::workload::Workload;
use super::ManifestError;

/// One pod found in a manifest.
#[derive(Debug, Clone)]
pub struct Document {
    /// 1-based number of the YAML document the pod came from.
    pub index: usize,
    /// The pod exactly as written (before identity and defaulting), for hashing.
    pub raw: serde_json::Value,
    pub pod: Pod,
}

/// All pods and objects of a manifest plus non-fatal warnings.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    pub documents: Vec<Document>,
    /// `ConfigMap`s with the number of the document they came from.
    pub configmaps: Vec<(usize, ConfigMap)>,
    /// `Secret`s with the number of the document they came from.
    pub secrets: Vec<(usize, Secret)>,
    /// `apps/v1` workloads with the number of the document they came from
    /// and their field prefix inside a `List` (`items[2].`, or empty).
    pub workloads: Vec<(usize, String, Workload)>,
    /// Unknown fields, each naming
    /// the location, document and field path.
    pub warnings: Vec<String>,
}

/// Parses every document of a manifest into pods.
///
/// Fails on the first malformed document or field that cannot be
/// deserialized, naming `location`, the document and the line/field. A kind
/// rkubelet does not run (a Service, RBAC, a custom resource) is skipped with
/// a warning naming the document and the kind.
pub fn parse_documents(content: &[u8], location: &str) -> Result<Parsed, ManifestError> {
    let mut parsed = Parsed::default();
    if let Some(err) = super::limits::check_size(content.len(), location) {
        return Err(err);
    }
    let text = std::str::from_utf8(content).map_err(|e| {
        let mut err = ManifestError::new(location, format!("manifest is not valid UTF-8: {e}"));
        err.line = Some(line_of(content, e.valid_up_to()));
        err
    })?;
    // A UTF-8 byte order mark some editors write: kubectl ignores it too.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Ok(parsed);
    }
    // Bounded before the real parser builds anything (see `limits`).
    super::limits::check(text, location)?;
    for (i, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let index = i + 1;
        // The iterator repeats a fatal error forever: return on the first one.
        let mut yaml = serde_yaml::Value::deserialize(document)
            .map_err(|e| yaml_error(location, index, &e))?;
        yaml.apply_merge()
            .map_err(|e| yaml_error(location, index, &e))?;
        if yaml.is_null() {
            continue; // an empty document (`---` twice, comments only)
        }
        let mut value = serde_json::to_value(&yaml).map_err(|e| {
            doc_error(
                location,
                index,
                None,
                format!("cannot be represented as JSON: {e}"),
            )
        })?;
        // Only one tree of a big document at a time (see `limits`).
        drop(yaml);
        octal_modes(&mut value);
        Object {
            location,
            index,
            prefix: "",
        }
        .accept(value, &mut parsed)?;
    }
    Ok(parsed)
}

/// Where an object sits: the document, and `items[i].` inside a list.
struct Object<'a> {
    location: &'a str,
    index: usize,
    prefix: &'a str,
}

impl Object<'_> {
    fn error(&self, field: &str, reason: impl Into<String>) -> ManifestError {
        let field = format!("{}{field}", self.prefix);
        let field = field.trim_end_matches('.');
        doc_error(
            self.location,
            self.index,
            (!field.is_empty()).then_some(field),
            reason,
        )
    }

    /// Handles one top-level document or list item.
    fn accept(&self, value: Value, parsed: &mut Parsed) -> Result<(), ManifestError> {
        let Value::Object(map) = &value else {
            return Err(self.error(
                "",
                format!(
                    "expected a Kubernetes object (a mapping), found {}",
                    type_name(&value)
                ),
            ));
        };
        let api_version =
            string_field(map, "apiVersion").map_err(|r| self.error("apiVersion", r.to_string()))?;
        let kind = string_field(map, "kind").map_err(|r| self.error("kind", r.to_string()))?;
        let in_pod_list = self.prefix.starts_with("items[") && kind.is_none();
        let kind = match (kind, in_pod_list) {
            (Some(kind), _) => kind,
            // Items of a PodList may leave out their type.
            (None, true) => "Pod",
            (None, false) => {
                return Err(self.error(
                    "kind",
                    "Required value: every document needs `apiVersion` and `kind` (e.g. `apiVersion: v1`, `kind: Pod`)",
                ))
            }
        };
        let api_version = match api_version {
            Some(v) => v,
            None if in_pod_list => "v1",
            None => {
                return Err(self.error(
                    "apiVersion",
                    format!("Required value: kind {kind:?} needs `apiVersion: v1`"),
                ))
            }
        };
        let nested = !self.prefix.is_empty();
        match kind {
            "Pod" | "ConfigMap" | "Secret" | "List" | "PodList" if api_version != "v1" => {
                Err(self.error(
                    "apiVersion",
                    format!("Unsupported value: {api_version:?}: supported values: \"v1\" (for kind {kind:?})"),
                ))
            }
            "Deployment" | "ReplicaSet" | "DaemonSet" if api_version != "apps/v1" => {
                Err(self.error(
                    "apiVersion",
                    format!("Unsupported value: {api_version:?}: supported values: \"apps/v1\" (for kind {kind:?})"),
                ))
            }
            "CronJob" if api_version != "batch/v1" => Err(self.error(
                "apiVersion",
                format!("Unsupported value: {api_version:?}: supported values: \"batch/v1\" (for kind {kind:?})"),
            )),
            "CronJob" => {
                let w = Workload::CronJob(Box::new(self.deserialize(&value, parsed)?));
                parsed.workloads.push((self.index, self.prefix.to_string(), w));
                Ok(())
            }
            "Job" if api_version != "batch/v1" => Err(self.error(
                "apiVersion",
                format!("Unsupported value: {api_version:?}: supported values: \"batch/v1\" (for kind {kind:?})"),
            )),
            "Job" => {
                let w = Workload::Job(self.deserialize(&value, parsed)?);
                parsed.workloads.push((self.index, self.prefix.to_string(), w));
                Ok(())
            }
            "Deployment" => {
                let w = Workload::Deployment(self.deserialize(&value, parsed)?);
                parsed.workloads.push((self.index, self.prefix.to_string(), w));
                Ok(())
            }
            "ReplicaSet" => {
                let w = Workload::ReplicaSet(self.deserialize(&value, parsed)?);
                parsed.workloads.push((self.index, self.prefix.to_string(), w));
                Ok(())
            }
            "DaemonSet" => {
                let w = Workload::DaemonSet(self.deserialize(&value, parsed)?);
                parsed.workloads.push((self.index, self.prefix.to_string(), w));
                Ok(())
            }
            "Pod" => {
                let pod = self.deserialize(&value, parsed)?;
                parsed.documents.push(Document { index: self.index, raw: value, pod });
                Ok(())
            }
            "ConfigMap" => {
                let cm = self.deserialize(&value, parsed)?;
                parsed.configmaps.push((self.index, cm));
                Ok(())
            }
            "Secret" => {
                let secret = self
                    .deserialize(&value, parsed)
                    .map_err(|e| self.redact_secret_error(e, map))?;
                parsed.secrets.push((self.index, secret));
                Ok(())
            }
            "List" | "PodList" if !nested => {
                let items = match map.get("items") {
                    None | Some(Value::Null) => return Ok(()),
                    Some(Value::Array(items)) => items.clone(),
                    Some(other) => {
                        return Err(self.error(
                            "items",
                            format!("invalid type: {}, expected a sequence", type_name(other)),
                        ))
                    }
                };
                for (i, item) in items.into_iter().enumerate() {
                    let prefix = format!("items[{i}].");
                    let object = Object { location: self.location, index: self.index, prefix: &prefix };
                    if kind == "PodList" {
                        if let Some(k) = item.get("kind").and_then(Value::as_str) {
                            if k != "Pod" {
                                return Err(object.error(
                                    "kind",
                                    format!("Unsupported value: {k:?}: a PodList holds only pods"),
                                ));
                            }
                        }
                    }
                    object.accept(item, parsed)?;
                }
                Ok(())
            }
            "List" | "PodList" => Err(self.error(
                "kind",
                format!("Unsupported value: {kind:?}: a list may not hold another list"),
            )),
            other => {
                parsed.warnings.push(skipped_kind(
                    self.location,
                    self.index,
                    self.prefix,
                    other,
                    api_version,
                ));
                Ok(())
            }
        }
    }

    /// A Secret's error about its `data` or `stringData` without the value:
    /// serde's messages quote the value they could not use, and a Secret's
    /// values must never reach a log line, an event or the API.
    fn redact_secret_error(
        &self,
        mut err: ManifestError,
        map: &serde_json::Map<String, Value>,
    ) -> ManifestError {
        let field = err.field.clone().unwrap_or_default();
        let field = field.strip_prefix(self.prefix).unwrap_or(&field);
        let (top, key) = field.split_once('.').unwrap_or((field, ""));
        let expected = match top {
            "data" => "a base64-encoded string",
            "stringData" => "a string",
            _ => return err,
        };
        let value = match (map.get(top), key) {
            (Some(v), "") => Some(v),
            (Some(Value::Object(m)), key) => m.get(key),
            _ => None,
        };
        err.reason = match value {
            Some(v) if key.is_empty() => format!(
                "invalid type: {}, expected a mapping of keys to {expected} (Secret values are not shown)",
                type_name(v)
            ),
            Some(Value::String(_)) => {
                format!("invalid value: expected {expected} (Secret values are not shown)")
            }
            Some(v) => format!(
                "invalid type: {}, expected {expected} (Secret values are not shown)",
                type_name(v)
            ),
            None => format!("invalid value, expected {expected} (Secret values are not shown)"),
        };
        err
    }

    /// Deserializes an object with a field path on errors; warns about
    /// unknown fields.
    fn deserialize<T: DeserializeOwned + Serialize>(
        &self,
        value: &Value,
        parsed: &mut Parsed,
    ) -> Result<T, ManifestError> {
        let object: T = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let path = if path == "." { String::new() } else { path };
            self.error(&path, e.inner().to_string())
        })?;
        let round_trip = serde_json::to_value(&object)
            .map_err(|e| self.error("", format!("cannot be re-encoded: {e}")))?;
        let mut unknown = Vec::new();
        unknown_fields(
            value,
            &round_trip,
            self.prefix.trim_end_matches('.'),
            &mut unknown,
        );
        for field in unknown {
            parsed.warnings.push(format!(
                "{}: document {}: {field}: unknown field (ignored)",
                self.location, self.index
            ));
        }
        Ok(object)
    }
}

/// Kinds a cluster manifest commonly carries next to its pods that only the
/// control plane acts on (`apiVersion`-independent, as written by users).
const CLUSTER_KINDS: &[&str] = &[
    "Service",
    "Endpoints",
    "EndpointSlice",
    "Ingress",
    "IngressClass",
    "ServiceAccount",
    "Namespace",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "StorageClass",
    "NetworkPolicy",
    "Role",
    "RoleBinding",
    "ClusterRole",
    "ClusterRoleBinding",
    "LimitRange",
    "ResourceQuota",
    "PodDisruptionBudget",
    "HorizontalPodAutoscaler",
    "PriorityClass",
    "CustomResourceDefinition",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
    "StatefulSet",
    "ReplicationController",
];

/// The warning for a document (or list item) whose kind rkubelet does not
/// run: it is skipped and the rest of the manifest runs, so a file with a
/// Pod and its Service (or a custom resource) still runs its Pod.
fn skipped_kind(
    location: &str,
    index: usize,
    prefix: &str,
    kind: &str,
    api_version: &str,
) -> String {
    let at = match prefix.trim_end_matches('.') {
        "" => String::new(),
        item => format!("{item}: "),
    };
    let known = if CLUSTER_KINDS.contains(&kind) {
        ""
    } else {
        "unknown "
    };
    format!(
        "{location}: document {index}: {at}{known}kind {kind:?} (apiVersion {api_version:?}) is not run by rkubelet (skipped; a manifest may hold Pod, ConfigMap, Secret, Deployment, ReplicaSet, DaemonSet, Job, CronJob and List)"
    )
}

/// Collects the paths of keys present in `raw` but lost in `known` (the
/// round trip through the typed `Pod`). Keys whose value is `null` are not
/// reported: dropping them changes nothing.
fn unknown_fields(raw: &Value, known: &Value, path: &str, out: &mut Vec<String>) {
    match (raw, known) {
        (Value::Object(raw), Value::Object(known)) => {
            for (key, value) in raw {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match known.get(key) {
                    Some(k) => unknown_fields(value, k, &child, out),
                    None if value.is_null() => {}
                    None => out.push(child),
                }
            }
        }
        (Value::Array(raw), Value::Array(known)) => {
            for (i, (r, k)) in raw.iter().zip(known).enumerate() {
                unknown_fields(r, k, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// File modes written YAML 1.1 style (`defaultMode: 0644`) are octal
/// numbers for Kubernetes, whose YAML parser follows YAML 1.1; our YAML 1.2
/// parser reads them as strings. Converts them at the keys that hold modes.
fn octal_modes(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if let (true, Value::String(s)) = (key == "defaultMode" || key == "mode", &*v) {
                    let digits = s.strip_prefix('0').filter(|d| !d.is_empty());
                    if let Some(n) = digits.and_then(|d| i64::from_str_radix(d, 8).ok()) {
                        *v = Value::from(n);
                    }
                }
                octal_modes(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(octal_modes),
        _ => {}
    }
}

/// A top-level field that should be a string and is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid type: {found}, expected a string")]
struct NotAString {
    /// What it is instead (`a number`, `a mapping`, …).
    found: &'static str,
}

/// A string-valued top-level field.
///
/// Fails when the field has another type.
fn string_field<'v>(
    map: &'v serde_json::Map<String, Value>,
    key: &str,
) -> Result<Option<&'v str>, NotAString> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(NotAString {
            found: type_name(other),
        }),
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a sequence",
        Value::Object(_) => "a mapping",
    }
}

fn doc_error(
    location: &str,
    index: usize,
    field: Option<&str>,
    reason: impl Into<String>,
) -> ManifestError {
    let mut err = ManifestError::new(location, reason);
    err.document = Some(index);
    err.field = field.map(str::to_string);
    err
}

/// A YAML syntax error with its line and column taken out of the message.
fn yaml_error(location: &str, index: usize, e: &serde_yaml::Error) -> ManifestError {
    let mut message = e.to_string();
    let mut err = doc_error(location, index, None, String::new());
    if let Some(loc) = e.location() {
        err.line = Some(loc.line());
        err.column = Some(loc.column());
        let at = format!(" at line {} column {}", loc.line(), loc.column());
        if let Some(pos) = message.find(&at) {
            message.replace_range(pos..pos + at.len(), "");
        }
    }
    err.reason = format!("invalid YAML: {message}");
    err
}

/// 1-based line number of a byte offset.
fn line_of(content: &[u8], offset: usize) -> usize {
    content[..offset.min(content.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOC: &str = "etc/kubelet.d/web.yaml";

    fn parse(text: &str) -> Result<Parsed, ManifestError> {
        parse_documents(text.as_bytes(), LOC)
    }

    fn ok(text: &str) -> Parsed {
        parse(text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn err(text: &str) -> ManifestError {
        parse(text).expect_err("should fail")
    }

    fn names(parsed: &Parsed) -> Vec<String> {
        parsed
            .documents
            .iter()
            .map(|d| d.pod.metadata.name.clone().unwrap_or_default())
            .collect()
    }

    const WEB: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: nginx\n    image: nginx:1.25\n";

    /// A realistic pod touching quantities, int-or-string ports, probes,
    /// volumes and security contexts: must round-trip without warnings.
    const REALISTIC: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: prod
  labels: {app: web, tier: "frontend"}
  annotations:
    example.com/owner: "team-a"
  creationTimestamp: null
spec:
  hostNetwork: false
  terminationGracePeriodSeconds: 10
  dnsPolicy: None
  dnsConfig:
    nameservers: ["1.1.1.1"]
    searches: ["svc.local"]
    options: [{name: ndots, value: "2"}, {name: edns0}]
  hostAliases:
  - ip: 10.0.0.1
    hostnames: [db, db.local]
  securityContext:
    runAsUser: 1000
    runAsGroup: 3000
    fsGroup: 2000
    supplementalGroups: [4000]
    sysctls: [{name: net.core.somaxconn, value: "1024"}]
  initContainers:
  - name: init
    image: busybox
    command: ["sh", "-c", "echo $(GREETING)"]
    env: [{name: GREETING, value: hi}]
  containers:
  - name: nginx
    image: nginx:1.25
    imagePullPolicy: IfNotPresent
    args: ["--port", "$(PORT)"]
    env:
    - {name: PORT, value: "8080"}
    - name: POD_NAME
      valueFrom: {fieldRef: {fieldPath: metadata.name}}
    ports:
    - {name: http, containerPort: 8080, hostPort: 18080, protocol: TCP, hostIP: 127.0.0.1}
    resources:
      requests: {cpu: 250m, memory: 64Mi}
      limits: {cpu: 0.5, memory: 128Mi, ephemeral-storage: 1Gi}
    livenessProbe:
      httpGet: {path: /healthz, port: http, scheme: HTTP, httpHeaders: [{name: X-A, value: b}]}
      initialDelaySeconds: 3
      periodSeconds: 5
      timeoutSeconds: 2
      failureThreshold: 4
      successThreshold: 1
    readinessProbe:
      tcpSocket: {port: 8080}
    startupProbe:
      exec: {command: [cat, /tmp/ready]}
    lifecycle:
      preStop: {sleep: {seconds: 2}}
      postStart: {exec: {command: ["true"]}}
    volumeMounts:
    - {name: data, mountPath: /data}
    - {name: conf, mountPath: /etc/nginx/conf.d, readOnly: true, subPath: site, mountPropagation: HostToContainer}
    securityContext:
      privileged: false
      readOnlyRootFilesystem: true
      allowPrivilegeEscalation: false
      capabilities: {add: [NET_ADMIN], drop: [ALL]}
      seccompProfile: {type: RuntimeDefault}
    stdin: false
    tty: false
    workingDir: /srv
    terminationMessagePolicy: FallbackToLogsOnError
  volumes:
  - {name: data, emptyDir: {}}
  - name: conf
    hostPath: {path: /srv/conf, type: DirectoryOrCreate}
  - name: mem
    emptyDir: {medium: Memory, sizeLimit: 64Mi}
  - name: cm
    configMap: {name: settings, defaultMode: 0644, items: [{key: a, path: a.conf}]}
  - {name: sec, secret: {secretName: creds, optional: true}}
  - name: proj
    projected:
      sources:
      - downwardAPI: {items: [{path: labels, fieldRef: {fieldPath: metadata.labels}}]}
status: {}
"#;

    #[test]
    fn a_single_pod_document_parses() {
        let parsed = ok(WEB);
        assert_eq!(names(&parsed), ["web"]);
        assert_eq!(parsed.documents[0].index, 1);
        assert_eq!(parsed.documents[0].raw["metadata"]["name"], "web");
        assert!(parsed.warnings.is_empty());
    }

    #[test]
    fn several_documents_yield_several_pods_numbered_from_one() {
        let text = format!(
            "---\n{WEB}---\n# only a comment\n---\n{}",
            WEB.replace("web", "api")
        );
        let parsed = ok(&text);
        assert_eq!(names(&parsed), ["web", "api"]);
        assert_eq!(parsed.documents[0].index, 1);
        assert_eq!(parsed.documents[1].index, 3);
    }

    #[test]
    fn an_empty_or_comment_only_file_has_no_pods() {
        assert!(ok("").documents.is_empty());
        assert!(ok("\n  \n").documents.is_empty());
        assert!(ok("# nothing here\n").documents.is_empty());
        assert!(ok("---\n---\n").documents.is_empty());
    }

    #[test]
    fn json_manifests_parse() {
        let json = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web"},
            "spec":{"containers":[{"name":"c","image":"busybox","ports":[{"containerPort":80}]}]}}"#;
        let parsed = ok(json);
        assert_eq!(names(&parsed), ["web"]);
        assert!(parsed.warnings.is_empty());
    }

    #[test]
    fn lists_and_pod_lists_yield_their_pods() {
        let list = r#"
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Pod, metadata: {name: a}, spec: {containers: [{name: c, image: i}]}}
- {apiVersion: v1, kind: ConfigMap, metadata: {name: cm}, data: {k: v}}
- {apiVersion: v1, kind: Pod, metadata: {name: b}, spec: {containers: [{name: c, image: i}]}}
"#;
        let parsed = ok(list);
        assert_eq!(names(&parsed), ["a", "b"]);
        assert_eq!(parsed.documents[1].raw["metadata"]["name"], "b");

        let pod_list = "apiVersion: v1\nkind: PodList\nitems:\n- metadata: {name: x}\n  spec: {containers: [{name: c, image: i}]}\n";
        assert_eq!(names(&ok(pod_list)), ["x"]);
        assert!(ok("apiVersion: v1\nkind: List\nitems: []\n")
            .documents
            .is_empty());
    }

    #[test]
    fn errors_inside_a_list_name_the_item() {
        let e = err(
            "apiVersion: v1\nkind: PodList\nitems:\n- {apiVersion: apps/v1, kind: Deployment}\n",
        );
        assert_eq!(e.field.as_deref(), Some("items[0].kind"));
        assert!(e.reason.contains("\"Deployment\""), "{e}");
        let e = err("apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Pod, spec: {containers: [{name: 1, image: i}]}}\n");
        assert_eq!(
            e.field.as_deref(),
            Some("items[0].spec.containers[0].name"),
            "{e}"
        );
    }

    #[test]
    fn config_maps_and_secrets_are_skipped_without_warnings() {
        let text = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cm}}\ndata: {{a: b}}\n---\napiVersion: v1\nkind: Secret\nmetadata: {{name: s}}\nstringData: {{a: b}}\n---\n{WEB}"
        );
        let parsed = ok(&text);
        assert_eq!(names(&parsed), ["web"]);
        assert_eq!(parsed.documents[0].index, 3);
        assert!(parsed.warnings.is_empty());
    }

    #[test]
    fn bad_yaml_is_reported_with_document_line_and_column() {
        let text = format!("{WEB}---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: [unclosed\n");
        let e = err(&text);
        assert_eq!(e.document, Some(2));
        assert!(e.line.is_some() && e.column.is_some(), "{e:?}");
        let shown = e.to_string();
        assert!(
            shown.starts_with("etc/kubelet.d/web.yaml: document 2: line "),
            "{shown}"
        );
        assert!(shown.contains("invalid YAML"), "{shown}");

        let e = err("apiVersion: v1\nkind: Pod\n  bad: indent\n");
        assert_eq!((e.document, e.line), (Some(1), Some(3)), "{e}");
        assert!(
            !e.reason.contains(" at line 3 column"),
            "location not repeated: {e}"
        );
    }

    #[test]
    fn a_wrong_type_is_reported_with_the_field_path() {
        let text = WEB.replace(
            "image: nginx:1.25",
            "image: nginx\n    ports:\n    - containerPort: x",
        );
        let e = err(&text);
        assert_eq!(e.document, Some(1));
        assert_eq!(
            e.field.as_deref(),
            Some("spec.containers[0].ports[0].containerPort")
        );
        assert_eq!(
            e.to_string(),
            "etc/kubelet.d/web.yaml: document 1: spec.containers[0].ports[0].containerPort: invalid type: string \"x\", expected i32"
        );
    }

    #[test]
    fn unknown_fields_are_warned_about_with_their_path() {
        let text = WEB.replace(
            "image: nginx:1.25",
            "image: nginx:1.25\n    imagePullPolicyy: Always",
        ) + "  restartPolcy: Never\nextra: 1\n";
        let parsed = ok(&text);
        assert_eq!(
            parsed.warnings,
            [
                "etc/kubelet.d/web.yaml: document 1: extra: unknown field (ignored)",
                "etc/kubelet.d/web.yaml: document 1: spec.containers[0].imagePullPolicyy: unknown field (ignored)",
                "etc/kubelet.d/web.yaml: document 1: spec.restartPolcy: unknown field (ignored)",
            ]
        );
    }

    #[test]
    fn a_realistic_pod_gives_no_false_unknown_field_warnings() {
        let parsed = ok(REALISTIC);
        assert_eq!(names(&parsed), ["web"]);
        assert!(parsed.warnings.is_empty(), "{:#?}", parsed.warnings);
    }

    #[test]
    fn other_cluster_kinds_are_skipped_with_a_warning_naming_document_and_kind() {
        let text = format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: web}}\nspec: {{ports: [{{port: 80}}]}}\n---\n{WEB}---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {{name: r}}\n"
        );
        let parsed = ok(&text);
        assert_eq!(names(&parsed), ["web"]);
        assert_eq!(parsed.documents[0].index, 2);
        assert_eq!(
            parsed.warnings,
            [
                "etc/kubelet.d/web.yaml: document 1: kind \"Service\" (apiVersion \"v1\") is not run by rkubelet (skipped; a manifest may hold Pod, ConfigMap, Secret, Deployment, ReplicaSet, DaemonSet, Job, CronJob and List)",
                "etc/kubelet.d/web.yaml: document 3: kind \"ClusterRole\" (apiVersion \"rbac.authorization.k8s.io/v1\") is not run by rkubelet (skipped; a manifest may hold Pod, ConfigMap, Secret, Deployment, ReplicaSet, DaemonSet, Job, CronJob and List)",
            ]
        );
    }

    #[test]
    fn an_unknown_kind_does_not_take_the_pods_of_its_file_down() {
        let text = format!(
            "apiVersion: example.com/v1\nkind: Frobnicator\nmetadata: {{name: f}}\n---\napiVersion: v1\nkind: List\nitems:\n- {{apiVersion: networking.k8s.io/v1, kind: Ingress, metadata: {{name: i}}}}\n---\n{WEB}"
        );
        let parsed = ok(&text);
        assert_eq!(names(&parsed), ["web"]);
        assert_eq!(parsed.warnings.len(), 2, "{:?}", parsed.warnings);
        assert!(
            parsed.warnings[0].starts_with(
                "etc/kubelet.d/web.yaml: document 1: unknown kind \"Frobnicator\" (apiVersion \"example.com/v1\") is not run by rkubelet"
            ),
            "{:?}",
            parsed.warnings
        );
        assert!(
            parsed.warnings[1]
                .starts_with("etc/kubelet.d/web.yaml: document 2: items[0]: kind \"Ingress\""),
            "{:?}",
            parsed.warnings
        );
    }

    #[test]
    fn a_list_inside_a_list_is_an_error() {
        let e =
            err("apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: List, items: []}\n");
        assert_eq!(e.field.as_deref(), Some("items[0].kind"));
        assert!(e.reason.contains("may not hold another list"), "{e}");
    }

    #[test]
    fn missing_kind_or_api_version_is_an_error() {
        let e = err("metadata: {name: x}\n");
        assert_eq!(e.field.as_deref(), Some("kind"));
        assert!(e.reason.starts_with("Required value"), "{e}");
        let e = err("kind: Pod\nmetadata: {name: x}\n");
        assert_eq!(e.field.as_deref(), Some("apiVersion"));
        let e = err("apiVersion: v2\nkind: Pod\n");
        assert_eq!(e.field.as_deref(), Some("apiVersion"));
        assert!(e.reason.contains("Unsupported value: \"v2\""), "{e}");
    }

    #[test]
    fn a_document_that_is_not_a_mapping_is_an_error() {
        let e = err("- just\n- a list\n");
        assert_eq!(e.document, Some(1));
        assert!(e.reason.contains("found a sequence"), "{e}");
    }

    #[test]
    fn yaml_merge_keys_are_applied() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: m}\nspec:\n  containers:\n  - &base {name: a, image: busybox}\n  - <<: *base\n    name: b\n";
        let parsed = ok(text);
        let containers = &parsed.documents[0]
            .pod
            .spec
            .as_ref()
            .expect("spec")
            .containers;
        assert_eq!(containers[1].name, "b");
        assert_eq!(containers[1].image.as_deref(), Some("busybox"));
        assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    }

    #[test]
    fn yaml_1_1_octal_file_modes_are_octal() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: m}\nspec:\n  containers: [{name: c, image: i}]\n  volumes:\n  - name: s\n    secret: {secretName: s, defaultMode: 0400, items: [{key: k, path: p, mode: 0755}]}\n";
        let parsed = ok(text);
        let v = &parsed.documents[0]
            .pod
            .spec
            .as_ref()
            .expect("spec")
            .volumes
            .as_ref()
            .expect("volumes")[0];
        let secret = v.secret.as_ref().expect("secret");
        assert_eq!(secret.default_mode, Some(0o400));
        assert_eq!(secret.items.as_ref().expect("items")[0].mode, Some(0o755));
    }

    #[test]
    fn a_realistic_manifest_loads_end_to_end() {
        use crate::manifest::{load, LoadContext, Origin};
        let origin = Origin::file(LOC);
        let ctx = LoadContext {
            node_name: "node1",
            origin: &origin,
            now: k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
        };
        let text = format!(
            "{REALISTIC}---\n{}",
            WEB.replace("  name: web", "  name: web\n  extra: x")
        );
        let loaded = load(text.as_bytes(), &ctx).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(loaded.pods.len(), 2);
        assert_eq!(loaded.pods[0].metadata.name.as_deref(), Some("web-node1"));
        assert_eq!(
            loaded.warnings,
            ["etc/kubelet.d/web.yaml: document 2: metadata.extra: unknown field (ignored)"]
        );
        let bad = WEB.replace("image: nginx:1.25", "image: \"\"");
        let e = load(format!("{WEB}---\n{bad}").as_bytes(), &ctx).expect_err("invalid");
        assert_eq!(
            e.to_string(),
            "etc/kubelet.d/web.yaml: document 2: spec.containers[0].image: Required value"
        );
    }

    #[test]
    fn invalid_utf8_is_an_error_not_a_panic() {
        let e = parse_documents(b"apiVersion: v1\nkind: \xff\n", LOC).expect_err("fails");
        assert_eq!(e.line, Some(2));
    }

    #[test]
    fn a_leading_byte_order_mark_is_ignored_in_yaml_and_json() {
        let yaml = "\u{feff}apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers: [{name: c, image: busybox}]\n";
        assert_eq!(names(&ok(yaml)), ["web"]);
        let json = "\u{feff}{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"db\"},\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"busybox\"}]}}";
        assert_eq!(names(&ok(json)), ["db"]);
        assert!(ok("\u{feff}\n").documents.is_empty());
    }

    #[test]
    fn a_secret_value_of_the_wrong_type_is_never_in_the_error() {
        const PLANTED: &str = "918273645";
        let secret = |body: &str| {
            format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: creds}}\n{body}\n")
        };
        let cases = [
            (secret(&format!("stringData: {{password: {PLANTED}}}")), "stringData.password"),
            (secret(&format!("stringData: {{password: {{nested: s{PLANTED}}}}}")), "stringData.password"),
            (secret(&format!("stringData: {{password: [s{PLANTED}]}}")), "stringData.password"),
            (secret(&format!("data: {{token: {PLANTED}}}")), "data.token"),
            (secret(&format!("data: {{token: \"not*base64!{PLANTED}\"}}")), "data.token"),
            (secret(&format!("stringData: [s{PLANTED}]")), "stringData"),
            (
                format!("apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Secret\n  metadata: {{name: creds}}\n  stringData: {{password: {PLANTED}}}\n"),
                "items[0].stringData.password",
            ),
        ];
        for (text, field) in cases {
            let e = err(&text);
            let shown = e.to_string();
            assert!(!shown.contains(PLANTED), "value leaked: {shown}\n{text}");
            assert!(!format!("{e:?}").contains(PLANTED), "value leaked: {e:?}");
            assert_eq!(e.field.as_deref(), Some(field), "{shown}");
            assert_eq!(e.document, Some(1), "{shown}");
            assert!(shown.contains(LOC), "{shown}");
            assert!(shown.contains("not shown"), "{shown}");
        }
    }

    #[test]
    fn a_secret_value_never_shows_in_syntax_limit_or_duplicate_errors() {
        const PLANTED: &str = "918273645";
        let secret = |body: &str| {
            format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: creds}}\n{body}\n")
        };
        let cases = [
            secret(&format!("stringData: {{password: \"{PLANTED}")),
            secret(&format!("stringData: {{p: a{PLANTED}, p: b{PLANTED}}}")),
            secret(&format!("stringData: {{p: *x{PLANTED}}}")),
            secret(&format!("stringData:\n  p: |\n    {PLANTED}\n   bad")),
            secret(&format!("data: {{p: !!binary \"{PLANTED}*\"}}")),
            secret(&format!("stringData: {{p: {PLANTED}{}}}", "[".repeat(100))),
            format!("{{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{{\"name\":\"s\"}},\"data\":{{\"t\":\"{PLANTED}!\"}}}}"),
        ];
        for text in cases {
            let e = err(&text);
            let shown = format!("{e} {e:?}");
            assert!(!shown.contains(PLANTED), "value leaked: {shown}\n{text}");
            assert!(shown.starts_with(LOC), "{shown}");
        }
    }
}
