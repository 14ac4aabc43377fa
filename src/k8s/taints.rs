//! Node taints and pod tolerations.
//!
//! Owns the `--register-with-taints KEY[=VALUE]:EFFECT,...` syntax
//! ([`parse`], as the kubelet's flag), the toleration rule (Kubernetes'
//! `ToleratesTaint`: effect and key match when given, `Exists` matches any
//! value, `Equal` or no operator the same value; an empty key with `Exists`
//! matches every key), [`untolerated`] (the first taint of a set no
//! toleration matches, among the effects asked for) and the tolerations the
//! DaemonSet controller gives every pod it makes ([`add_daemon_tolerations`],
//! as `pkg/controller/daemon/util`). Pure.

use k8s_openapi::api::core::v1::{PodSpec, Taint, Toleration};

use super::names;

pub const NO_SCHEDULE: &str = "NoSchedule";
pub const PREFER_NO_SCHEDULE: &str = "PreferNoSchedule";
pub const NO_EXECUTE: &str = "NoExecute";

/// A node taint (k8s-openapi's [`Taint`] without `timeAdded`, comparable).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct NodeTaint {
    pub key: String,
    /// Empty when the taint has no value.
    pub value: String,
    pub effect: String,
}

impl NodeTaint {
    /// As the node object carries it.
    pub fn to_taint(&self) -> Taint {
        Taint {
            key: self.key.clone(),
            value: Some(self.value.clone()).filter(|v| !v.is_empty()),
            effect: self.effect.clone(),
            time_added: None,
        }
    }
}

impl std::fmt::Display for NodeTaint {
    /// `key=value:Effect` or `key:Effect`, as `kubectl describe node` and
    /// the flag write it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.value.is_empty() {
            write!(f, "{}:{}", self.key, self.effect)
        } else {
            write!(f, "{}={}:{}", self.key, self.value, self.effect)
        }
    }
}

/// A `--register-with-taints` entry rkubelet refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaintError {
    #[error(
        "--register-with-taints: invalid taint spec {spec:?}: expected KEY[=VALUE]:EFFECT \
         (example: dedicated=edge:NoSchedule)"
    )]
    Syntax { spec: String },
    #[error(
        "--register-with-taints: invalid taint effect {effect:?} in {spec:?}, unsupported taint \
         effect (must be NoSchedule, PreferNoSchedule or NoExecute)"
    )]
    Effect { spec: String, effect: String },
    #[error("--register-with-taints: {0}")]
    Invalid(#[from] names::LabelError),
    #[error(
        "--register-with-taints: taint {key}:{effect} is given twice (taints must be unique by \
         key and effect pair)"
    )]
    Duplicate { key: String, effect: String },
}

/// Parses `--register-with-taints` (every occurrence of the repeatable
/// flag; each a comma-separated list).
pub fn parse<S: AsRef<str>>(flags: &[S]) -> Result<Vec<NodeTaint>, TaintError> {
    let mut taints: Vec<NodeTaint> = Vec::new();
    for spec in flags
        .iter()
        .flat_map(|f| f.as_ref().split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let syntax = || TaintError::Syntax { spec: spec.into() };
        let (kv, effect) = spec.rsplit_once(':').ok_or_else(syntax)?;
        let (key, value) = kv.split_once('=').unwrap_or((kv, ""));
        if key.is_empty() {
            return Err(syntax());
        }
        if ![NO_SCHEDULE, PREFER_NO_SCHEDULE, NO_EXECUTE].contains(&effect) {
            return Err(TaintError::Effect {
                spec: spec.into(),
                effect: effect.into(),
            });
        }
        names::check_label_key(key)?;
        if !value.is_empty() {
            names::check_label_value(key, value)?;
        }
        let taint = NodeTaint {
            key: key.into(),
            value: value.into(),
            effect: effect.into(),
        };
        if taints
            .iter()
            .any(|t| t.key == taint.key && t.effect == taint.effect)
        {
            return Err(TaintError::Duplicate {
                key: taint.key,
                effect: taint.effect,
            });
        }
        taints.push(taint);
    }
    Ok(taints)
}

/// Does `toleration` tolerate `taint` (Kubernetes' `ToleratesTaint`)?
pub fn tolerates(toleration: &Toleration, taint: &NodeTaint) -> bool {
    let given = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
    if given(&toleration.effect).is_some_and(|e| e != taint.effect) {
        return false;
    }
    if given(&toleration.key).is_some_and(|k| k != taint.key) {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or("") {
        "" | "Equal" => toleration.value.as_deref().unwrap_or("") == taint.value,
        "Exists" => true,
        _ => false,
    }
}

/// The first of `taints` with one of `effects` that no toleration
/// tolerates.
pub fn untolerated<'a>(
    taints: &'a [NodeTaint],
    tolerations: &[Toleration],
    effects: &[&str],
) -> Option<&'a NodeTaint> {
    taints.iter().find(|t| {
        effects.contains(&t.effect.as_str()) && !tolerations.iter().any(|tol| tolerates(tol, t))
    })
}

/// The tolerations the DaemonSet controller adds to its pods (so node
/// conditions do not evict or block them): `not-ready` and `unreachable`
/// (`NoExecute`), `disk-pressure`, `memory-pressure`, `pid-pressure` and
/// `unschedulable` (`NoSchedule`), and `network-unavailable` for a
/// `hostNetwork` pod. Each with `Exists`, added unless already there.
pub fn add_daemon_tolerations(spec: &mut PodSpec) {
    let mut wanted = vec![
        ("node.kubernetes.io/not-ready", NO_EXECUTE),
        ("node.kubernetes.io/unreachable", NO_EXECUTE),
        ("node.kubernetes.io/disk-pressure", NO_SCHEDULE),
        ("node.kubernetes.io/memory-pressure", NO_SCHEDULE),
        ("node.kubernetes.io/pid-pressure", NO_SCHEDULE),
        ("node.kubernetes.io/unschedulable", NO_SCHEDULE),
    ];
    if spec.host_network == Some(true) {
        wanted.push(("node.kubernetes.io/network-unavailable", NO_SCHEDULE));
    }
    let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
    for (key, effect) in wanted {
        let t = Toleration {
            key: Some(key.into()),
            operator: Some("Exists".into()),
            effect: Some(effect.into()),
            ..Default::default()
        };
        if !tolerations.contains(&t) {
            tolerations.push(t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(key: &str, value: &str, effect: &str) -> NodeTaint {
        NodeTaint {
            key: key.into(),
            value: value.into(),
            effect: effect.into(),
        }
    }

    fn tol(key: &str, op: &str, value: &str, effect: &str) -> Toleration {
        let opt = |s: &str| Some(s.to_string()).filter(|s| !s.is_empty());
        Toleration {
            key: opt(key),
            operator: opt(op),
            value: opt(value),
            effect: opt(effect),
            ..Default::default()
        }
    }

    #[test]
    fn the_flag_parses_like_the_kubelets() {
        let t = parse(&[
            "dedicated=edge:NoSchedule,gpu:NoExecute",
            "a/b=c:PreferNoSchedule",
        ])
        .expect("valid");
        assert_eq!(
            t,
            [
                taint("dedicated", "edge", NO_SCHEDULE),
                taint("gpu", "", NO_EXECUTE),
                taint("a/b", "c", PREFER_NO_SCHEDULE)
            ]
        );
        assert_eq!(t[0].to_string(), "dedicated=edge:NoSchedule");
        assert_eq!(t[1].to_string(), "gpu:NoExecute");
        assert_eq!(t[1].to_taint().value, None);
        assert_eq!(parse::<&str>(&[]).expect("none"), []);
    }

    #[test]
    fn bad_taints_are_refused_with_the_flag_and_entry_named() {
        let e = parse(&["dedicated=edge"])
            .expect_err("no effect")
            .to_string();
        assert!(
            e.contains("--register-with-taints") && e.contains("\"dedicated=edge\""),
            "{e}"
        );
        let e = parse(&["a=b:Sometimes"]).expect_err("effect").to_string();
        assert!(e.contains("\"Sometimes\""), "{e}");
        assert!(parse(&["=b:NoSchedule"]).is_err());
        assert!(parse(&["bad key:NoSchedule"]).is_err());
        assert!(parse(&["k=bad value:NoSchedule"]).is_err());
        let e = parse(&["k=a:NoSchedule,k=b:NoSchedule"]).expect_err("twice");
        assert_eq!(
            e,
            TaintError::Duplicate {
                key: "k".into(),
                effect: NO_SCHEDULE.into()
            }
        );
        assert!(parse(&["k=a:NoSchedule,k=b:NoExecute"]).is_ok());
    }

    #[test]
    fn tolerations_match_as_kubernetes_does() {
        let t = taint("dedicated", "edge", NO_SCHEDULE);
        assert!(tolerates(
            &tol("dedicated", "Equal", "edge", "NoSchedule"),
            &t
        ));
        assert!(tolerates(&tol("dedicated", "", "edge", ""), &t));
        assert!(tolerates(&tol("dedicated", "Exists", "", ""), &t));
        assert!(tolerates(&tol("", "Exists", "", ""), &t), "tolerates all");
        assert!(!tolerates(&tol("dedicated", "Equal", "core", ""), &t));
        assert!(!tolerates(&tol("dedicated", "Exists", "", "NoExecute"), &t));
        assert!(!tolerates(&tol("other", "Exists", "", ""), &t));
        assert!(!tolerates(&tol("dedicated", "Gt", "edge", ""), &t));
        let taints = [taint("soft", "", PREFER_NO_SCHEDULE), t.clone()];
        assert_eq!(
            untolerated(&taints, &[], &[NO_SCHEDULE, NO_EXECUTE]),
            Some(&t)
        );
        assert_eq!(untolerated(&taints, &[], &[NO_EXECUTE]), None);
        let tols = [tol("dedicated", "Exists", "", "")];
        assert_eq!(
            untolerated(&taints, &tols, &[NO_SCHEDULE, NO_EXECUTE]),
            None
        );
    }

    #[test]
    fn daemon_pods_get_the_controllers_tolerations_once() {
        let mut spec = PodSpec {
            tolerations: Some(vec![tol(
                "node.kubernetes.io/not-ready",
                "Exists",
                "",
                "NoExecute",
            )]),
            ..Default::default()
        };
        add_daemon_tolerations(&mut spec);
        let tols = spec.tolerations.clone().expect("tolerations");
        assert_eq!(tols.len(), 6, "{tols:?}");
        let node = [
            taint("node.kubernetes.io/unschedulable", "", NO_SCHEDULE),
            taint("node.kubernetes.io/not-ready", "", NO_EXECUTE),
        ];
        assert_eq!(untolerated(&node, &tols, &[NO_SCHEDULE, NO_EXECUTE]), None);
        assert!(untolerated(
            &[taint(
                "node.kubernetes.io/network-unavailable",
                "",
                NO_SCHEDULE
            )],
            &tols,
            &[NO_SCHEDULE]
        )
        .is_some());
        spec.host_network = Some(true);
        add_daemon_tolerations(&mut spec);
        assert_eq!(spec.tolerations.expect("t").len(), 7);
    }
}
