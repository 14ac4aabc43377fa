//! The kubelet's static pod identity: name suffix, namespace, UID, annotations.
//!
//! Owns how a manifest pod becomes a node-local pod: the name gets the node
//! name as a suffix, the namespace defaults to `default`, `spec.nodeName` is
//! filled in when empty, and the UID is a hash of the manifest content as
//! written (not defaulted: a new default in a new rkubelet must not change
//! UIDs), the node name and the source. A user-given `metadata.uid` is
//! ignored and overwritten, as the kubelet does for static pods. Pods from
//! files tolerate every `NoExecute` taint, as the kubelet's file pods do.
//! It does not validate anything (an empty name stays empty so validation
//! can report it).

use k8s_openapi::api::core::v1::{Pod, PodSpec, Toleration};
use sha2::{Digest, Sha256};

use super::{LoadContext, Origin, SourceKind};

/// Annotation keys the kubelet sets on static pods.
pub const CONFIG_HASH: &str = "kubernetes.io/config.hash";
pub const CONFIG_SOURCE: &str = "kubernetes.io/config.source";
pub const CONFIG_SEEN: &str = "kubernetes.io/config.seen";

/// The UID: 32 lowercase hex chars hashing the canonical manifest content (as
/// written), the node name and the origin key.
///
/// The content is hashed as canonical JSON (object keys sorted, no
/// whitespace), so key order, comments and formatting do not matter.
pub fn uid(raw: &serde_json::Value, node_name: &str, origin: &Origin) -> String {
    let mut canonical = String::new();
    write_canonical(raw, &mut canonical);
    let mut hasher = Sha256::new();
    hasher.update(canonical.as_bytes());
    hasher.update([0u8]);
    hasher.update(node_name.as_bytes());
    hasher.update([0u8]);
    hasher.update(origin.key().as_bytes());
    let digest = hasher.finalize();
    hex::encode(&digest[..16])
}

/// Applies name suffix, default namespace, `spec.nodeName`, UID, the
/// `kubernetes.io/config.*` annotations and, for a file pod, the toleration
/// of every `NoExecute` taint (added once, not again if written).
///
/// A `spec.nodeName` naming another node is kept as written. An empty
/// `metadata.name` is left empty (validation reports it).
pub fn apply(pod: &mut Pod, raw: &serde_json::Value, ctx: &LoadContext<'_>) {
    let uid = uid(raw, ctx.node_name, ctx.origin);
    let meta = &mut pod.metadata;
    if let Some(name) = meta.name.as_mut().filter(|n| !n.is_empty()) {
        *name = format!("{name}-{}", ctx.node_name);
    }
    if meta.namespace.as_deref().is_none_or(str::is_empty) {
        meta.namespace = Some("default".to_string());
    }
    meta.uid = Some(uid.clone());
    let annotations = meta.annotations.get_or_insert_with(Default::default);
    annotations.insert(CONFIG_HASH.to_string(), uid);
    annotations.insert(
        CONFIG_SOURCE.to_string(),
        ctx.origin.kind.annotation().to_string(),
    );
    annotations.insert(CONFIG_SEEN.to_string(), format!("{:.9}", ctx.now));
    let spec = pod.spec.get_or_insert_with(PodSpec::default);
    if spec.node_name.as_deref().is_none_or(str::is_empty) {
        spec.node_name = Some(ctx.node_name.to_string());
    }
    if ctx.origin.kind == SourceKind::File {
        let exists = Toleration {
            operator: Some("Exists".to_string()),
            effect: Some("NoExecute".to_string()),
            ..Default::default()
        };
        let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
        if !tolerations.contains(&exists) {
            tolerations.push(exists);
        }
    }
}

/// Writes `value` as JSON with object keys sorted, whatever the map type.
fn write_canonical(value: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                if let Some(v) = map.get(key) {
                    write_canonical(v, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::jiff::Timestamp;

    use super::*;
    use crate::manifest::parse::parse_documents;

    fn raw(text: &str) -> serde_json::Value {
        let parsed = parse_documents(text.as_bytes(), "m.yaml").expect("parses");
        parsed.documents[0].raw.clone()
    }

    const A: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: c\n    image: nginx\n";
    const A_REORDERED: &str = "# a comment\nkind: Pod\nspec:\n  containers:\n  - {image: nginx,   name: c}\nmetadata: {name: web}\napiVersion: v1\n";

    fn origin() -> Origin {
        Origin::file("/etc/kubelet.d/web.yaml")
    }

    #[test]
    fn the_uid_is_32_lowercase_hex_chars() {
        let u = uid(&raw(A), "node1", &origin());
        assert_eq!(u.len(), 32);
        assert!(
            u.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
            "{u}"
        );
    }

    #[test]
    fn the_uid_is_stable_under_key_order_comments_and_formatting() {
        assert_eq!(
            uid(&raw(A), "node1", &origin()),
            uid(&raw(A_REORDERED), "node1", &origin())
        );
        let json = r#"{"spec":{"containers":[{"name":"c","image":"nginx"}]},"metadata":{"name":"web"},"kind":"Pod","apiVersion":"v1"}"#;
        assert_eq!(
            uid(&raw(A), "node1", &origin()),
            uid(&raw(json), "node1", &origin())
        );
    }

    #[test]
    fn the_uid_changes_with_content_node_and_origin() {
        let base = uid(&raw(A), "node1", &origin());
        assert_ne!(
            base,
            uid(&raw(&A.replace("nginx", "nginx:1.25")), "node1", &origin())
        );
        assert_ne!(base, uid(&raw(A), "node2", &origin()));
        assert_ne!(
            base,
            uid(&raw(A), "node1", &Origin::file("/etc/kubelet.d/other.yaml"))
        );
        assert_ne!(
            base,
            uid(&raw(A), "node1", &Origin::url("/etc/kubelet.d/web.yaml"))
        );
    }

    #[test]
    fn the_uid_is_pinned_so_upgrades_do_not_restart_pods() {
        // Changing the hashing scheme changes every UID and restarts every
        // pod on upgrade: this value must never change.
        let v = serde_json::json!({"a": 1, "b": [true, null, "x"]});
        assert_eq!(uid(&v, "n", &Origin::file("/f")), {
            let mut h = Sha256::new();
            h.update(br#"{"a":1,"b":[true,null,"x"]}"#);
            h.update(b"\0n\0file:/f");
            hex::encode(&h.finalize()[..16])
        });
    }

    fn applied(text: &str, node: &str) -> Pod {
        let parsed = parse_documents(text.as_bytes(), "m.yaml").expect("parses");
        let doc = parsed.documents[0].clone();
        let mut pod = doc.pod;
        let origin = origin();
        let now: Timestamp = "2024-05-01T10:20:30.123456789Z".parse().expect("ts");
        let ctx = LoadContext {
            node_name: node,
            origin: &origin,
            now,
        };
        apply(&mut pod, &doc.raw, &ctx);
        pod
    }

    #[test]
    fn apply_suffixes_the_name_defaults_the_namespace_and_sets_the_node() {
        let pod = applied(A, "node1");
        assert_eq!(pod.metadata.name.as_deref(), Some("web-node1"));
        assert_eq!(pod.metadata.namespace.as_deref(), Some("default"));
        assert_eq!(
            pod.spec.as_ref().and_then(|s| s.node_name.as_deref()),
            Some("node1")
        );
    }

    #[test]
    fn apply_sets_uid_and_config_annotations() {
        let pod = applied(A, "node1");
        let u = uid(&raw(A), "node1", &origin());
        assert_eq!(pod.metadata.uid.as_deref(), Some(u.as_str()));
        let ann = pod.metadata.annotations.expect("annotations");
        assert_eq!(ann[CONFIG_HASH], u);
        assert_eq!(ann[CONFIG_SOURCE], "file");
        assert_eq!(ann[CONFIG_SEEN], "2024-05-01T10:20:30.123456789Z");
    }

    #[test]
    fn apply_keeps_a_given_namespace_and_node_name() {
        let text = A
            .replace(
                "name: web\n",
                "name: web\n  namespace: kube-system\n  uid: mine\n",
            )
            .replace("spec:\n", "spec:\n  nodeName: other\n");
        let pod = applied(&text, "node1");
        assert_eq!(pod.metadata.namespace.as_deref(), Some("kube-system"));
        assert_eq!(
            pod.spec.as_ref().and_then(|s| s.node_name.as_deref()),
            Some("other")
        );
        assert_ne!(
            pod.metadata.uid.as_deref(),
            Some("mine"),
            "a given uid is overwritten"
        );
    }

    /// The kubelet's `applyDefaults` (pkg/kubelet/config/common.go) adds
    /// `{operator: Exists, effect: NoExecute}` to file pods with
    /// `AddOrUpdateTolerationInPod`, which does not duplicate it.
    #[test]
    fn file_pods_tolerate_every_no_execute_taint_once() {
        let exists = Toleration {
            operator: Some("Exists".into()),
            effect: Some("NoExecute".into()),
            ..Default::default()
        };
        let pod = applied(A, "node1");
        let tolerations = pod.spec.and_then(|s| s.tolerations).unwrap_or_default();
        assert_eq!(tolerations, vec![exists.clone()]);
        let written = A.replace(
            "spec:\n",
            "spec:\n  tolerations: [{operator: Exists, effect: NoExecute}]\n",
        );
        let pod = applied(&written, "node1");
        let tolerations = pod.spec.and_then(|s| s.tolerations).unwrap_or_default();
        assert_eq!(tolerations, vec![exists]);
    }

    #[test]
    fn apply_leaves_an_empty_name_empty_for_validation() {
        let pod = applied(
            "apiVersion: v1\nkind: Pod\nspec: {containers: []}\n",
            "node1",
        );
        assert_eq!(pod.metadata.name, None);
    }
}
