//! Pod admission: may this node run this pod?
//!
//! Owns the kubelet's admission predicates that make sense without an API
//! server, checked against the node's name and labels ([`NodeInfo`], read by
//! [`crate::node`]):
//! the pod's OS, `spec.nodeName`, `spec.nodeSelector` and the *required* node
//! affinity (`requiredDuringSchedulingIgnoredDuringExecution`, operators
//! `In`, `NotIn`, `Exists`, `DoesNotExist`, `Gt`, `Lt`, and `matchFields` on
//! `metadata.name`). Preferred affinity is a scheduling hint and is ignored.
//!
//! Everything here is pure: [`admit`] answers with the kubelet's reason
//! (`NodeAffinity`, `NodeName`, …) and a message naming the term that did not
//! match; [`rejected_status`] is the `Failed` status the kubelet gives a pod it
//! rejects. For the pods a ReplicaSet makes rkubelet is also the node's
//! scheduler: [`unschedulable`] is its `TaintToleration` filter (such a pod
//! stays `Pending`, never `Failed`). It does not run or stop anything (that is the pod manager).

use k8s_openapi::api::core::v1::{NodeSelectorRequirement, NodeSelectorTerm, Pod, PodStatus};

use crate::k8s::taints;
use crate::node::{NodeInfo, LABEL_OS};

/// The kubelet's reasons for rejecting a pod.
pub const REASON_NODE_AFFINITY: &str = "NodeAffinity";
pub const REASON_NODE_NAME: &str = "NodeName";
pub const REASON_OS_SELECTOR: &str = "PodOSSelectorNodeLabelDoesNotMatch";
pub const REASON_OS_NOT_SUPPORTED: &str = "PodOSNotSupported";
pub const REASON_TAINT_TOLERATION: &str = "TaintToleration";

/// The scheduler's descriptions the kubelet puts in its messages.
const DESC_NODE_AFFINITY: &str = "node(s) didn't match Pod's node affinity/selector";
const DESC_NODE_NAME: &str = "node(s) didn't match the requested node name";
const DESC_TAINT: &str = "node(s) had taints that the pod didn't tolerate";

/// Why a pod may not run on this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The kubelet's reason, e.g. `NodeAffinity`.
    pub reason: String,
    /// The kubelet's message plus which term did not match, in parentheses.
    pub message: String,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.reason, self.message)
    }
}

fn predicate_failed(name: &str, desc: &str, detail: &str) -> Rejection {
    Rejection {
        reason: name.to_string(),
        message: format!("Predicate {name} failed: {desc} ({detail})"),
    }
}

/// Decides whether `node` may run `pod`, checking (in the kubelet's order)
/// the pod's `kubernetes.io/os` label, `spec.os`, node selector and required
/// node affinity, then `spec.nodeName`. Only the first failure is reported,
/// as the kubelet does.
pub fn admit(pod: &Pod, node: &NodeInfo) -> Result<(), Rejection> {
    let node_os = node
        .labels
        .get(LABEL_OS)
        .map(String::as_str)
        .unwrap_or(std::env::consts::OS);
    if let Some(os) = pod.metadata.labels.as_ref().and_then(|l| l.get(LABEL_OS)) {
        if os != node_os {
            return Err(Rejection {
                reason: REASON_OS_SELECTOR.into(),
                message: format!(
                    "Failed to admit pod as the `kubernetes.io/os` label doesn't match node label \
                     (the pod says {os:?}, the node is {node_os:?})"
                ),
            });
        }
    }
    let spec = pod.spec.as_ref();
    if let Some(os) = spec.and_then(|s| s.os.as_ref()) {
        if os.name != std::env::consts::OS {
            return Err(Rejection {
                reason: REASON_OS_NOT_SUPPORTED.into(),
                message: format!(
                    "Failed to admit pod as the OS field doesn't match node OS \
                     (spec.os.name is {:?}, the node is {:?})",
                    os.name,
                    std::env::consts::OS
                ),
            });
        }
    }
    if let Err(mismatch) =
        match_node_selector(pod, node).and_then(|()| match_required_affinity(pod, node))
    {
        return Err(predicate_failed(
            REASON_NODE_AFFINITY,
            DESC_NODE_AFFINITY,
            &mismatch.to_string(),
        ));
    }
    if let Some(name) = spec
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty())
    {
        if name != node.name {
            return Err(predicate_failed(
                REASON_NODE_NAME,
                DESC_NODE_NAME,
                &format!("spec.nodeName is {name:?}, this node is {:?}", node.name),
            ));
        }
    }
    // The kubelet checks only `NoExecute` taints, and not for static pods
    // (those without a controller). A ReplicaSet's pod would not have been
    // bound here at all: [`unschedulable`] keeps it `Pending` instead.
    let controlled =
        (pod.metadata.owner_references.iter().flatten()).any(|o| o.controller == Some(true));
    if controlled && !scheduled_here(pod) {
        let tolerations = spec.and_then(|s| s.tolerations.as_deref()).unwrap_or(&[]);
        if let Some(t) = taints::untolerated(&node.taints, tolerations, &[taints::NO_EXECUTE]) {
            return Err(predicate_failed(
                REASON_TAINT_TOLERATION,
                DESC_TAINT,
                &format!("taint {t}"),
            ));
        }
    }
    Ok(())
}

/// Would the scheduler (its `TaintToleration` filter) put `pod` on `node`:
/// does it tolerate every `NoSchedule` and `NoExecute` taint? The
/// DaemonSet controller asks this before it makes its pod.
pub fn tolerates_node_taints(pod: &Pod, node: &NodeInfo) -> Result<(), Rejection> {
    let tolerations = (pod.spec.as_ref())
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or(&[]);
    match taints::untolerated(
        &node.taints,
        tolerations,
        &[taints::NO_SCHEDULE, taints::NO_EXECUTE],
    ) {
        None => Ok(()),
        Some(t) => Err(predicate_failed(
            REASON_TAINT_TOLERATION,
            DESC_TAINT,
            &format!("taint {t}"),
        )),
    }
}

/// Is `pod` one rkubelet schedules as the scheduler of its one node: a pod
/// a ReplicaSet made (a Deployment's or a standalone one)? Static pods are
/// the kubelet's own; a DaemonSet's controller checks the node itself.
pub fn scheduled_here(pod: &Pod) -> bool {
    (pod.metadata.owner_references.iter().flatten())
        .any(|o| o.controller == Some(true) && o.kind == "ReplicaSet")
}

/// The scheduler's message for a pod that does not tolerate `taint` on a
/// one-node cluster (its `TaintToleration` filter's reason, prefixed with
/// the node count).
pub fn untolerated_taint_message(taint: &taints::NodeTaint) -> String {
    format!(
        "0/1 nodes are available: 1 node(s) had untolerated taint {{{}: {}}}.",
        taint.key, taint.value
    )
}

/// Would the scheduler keep a ReplicaSet's pod ([`scheduled_here`]) off
/// this node because of its taints? Then the scheduler's message. A new
/// pod must tolerate every `NoSchedule` and `NoExecute` taint; one that
/// `already_runs` here (found running at start) only the `NoExecute` ones,
/// since a `NoSchedule` taint does not evict. Other pods: `None`.
pub fn unschedulable(pod: &Pod, node: &NodeInfo, already_runs: bool) -> Option<String> {
    if !scheduled_here(pod) {
        return None;
    }
    let tolerations = (pod.spec.as_ref())
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or(&[]);
    let effects: &[&str] = if already_runs {
        &[taints::NO_EXECUTE]
    } else {
        &[taints::NO_SCHEDULE, taints::NO_EXECUTE]
    };
    taints::untolerated(&node.taints, tolerations, effects).map(untolerated_taint_message)
}

/// Why a pod's node selector or required node affinity does not match.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum Mismatch {
    /// A `nodeSelector` pair the node does not have.
    #[error("nodeSelector {key}={want}: {has}")]
    NodeSelector {
        key: String,
        want: String,
        /// What the node has instead.
        has: String,
    },
    /// Required affinity with an empty term list.
    #[error("required node affinity has no nodeSelectorTerms, so no node matches")]
    NoTerms,
    /// No term matched; why each did not, in order.
    #[error("{}", terms_message(.0))]
    Terms(Vec<TermMismatch>),
}

fn terms_message(misses: &[TermMismatch]) -> String {
    let prefix = if misses.len() == 1 {
        "required node affinity"
    } else {
        "required node affinity: no term matched"
    };
    let misses: Vec<String> = misses
        .iter()
        .enumerate()
        .map(|(i, why)| format!("term {}: {why}", i + 1))
        .collect();
    format!("{prefix}: {}", misses.join("; "))
}

/// Why one node selector term does not match; `requirement` is the
/// requirement as written (`key Op [values]`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum TermMismatch {
    #[error("empty term (no matchExpressions, no matchFields) matches no node")]
    Empty,
    /// A label expression the node's labels do not satisfy.
    #[error("{requirement}: {has}")]
    Expression { requirement: String, has: String },
    #[error("{requirement}: invalid: {invalid}")]
    InvalidExpression {
        requirement: String,
        invalid: InvalidRequirement,
    },
    #[error("matchFields {requirement}: invalid: only metadata.name is supported")]
    FieldKey { requirement: String },
    #[error(
        "matchFields {requirement}: invalid: metadata.name needs In or NotIn with exactly one value"
    )]
    FieldOperator { requirement: String },
    /// A `metadata.name` field requirement this node's name does not satisfy.
    #[error("matchFields {requirement}: the node's name is {node:?}")]
    FieldName { requirement: String, node: String },
    #[error("matchFields {requirement}: invalid: {invalid}")]
    InvalidField {
        requirement: String,
        invalid: InvalidRequirement,
    },
}

/// A requirement the API server would have refused (it matches no node).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum InvalidRequirement {
    #[error("{value:?} is not an integer")]
    NotAnInteger { value: String },
    #[error("operator {operator} needs at least one value")]
    NoValues { operator: String },
    #[error("operator {operator} takes no values")]
    UnexpectedValues { operator: String },
    #[error("operator {operator} needs exactly one integer value")]
    NotOneValue { operator: String },
    #[error("unknown operator {operator:?} (use In, NotIn, Exists, DoesNotExist, Gt or Lt)")]
    UnknownOperator { operator: String },
}

/// What the node has for `key`, for messages.
fn node_has(node: &NodeInfo, key: &str) -> String {
    match node.labels.get(key) {
        Some(v) => format!("the node's {key} is {v:?}"),
        None => format!("the node has no label {key}"),
    }
}

fn match_node_selector(pod: &Pod, node: &NodeInfo) -> Result<(), Mismatch> {
    let selector = pod.spec.as_ref().and_then(|s| s.node_selector.as_ref());
    for (key, want) in selector.into_iter().flatten() {
        if node.labels.get(key) != Some(want) {
            return Err(Mismatch::NodeSelector {
                key: key.clone(),
                want: want.clone(),
                has: node_has(node, key),
            });
        }
    }
    Ok(())
}

fn match_required_affinity(pod: &Pod, node: &NodeInfo) -> Result<(), Mismatch> {
    let Some(required) = pod
        .spec
        .as_ref()
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
    else {
        return Ok(());
    };
    let terms = &required.node_selector_terms;
    if terms.is_empty() {
        return Err(Mismatch::NoTerms);
    }
    let mut misses = Vec::new();
    for term in terms {
        match match_term(term, node) {
            Ok(()) => return Ok(()),
            Err(why) => misses.push(why),
        }
    }
    Err(Mismatch::Terms(misses))
}

/// One term: every expression and every field requirement must match. A
/// term with neither matches nothing (as in Kubernetes).
fn match_term(term: &NodeSelectorTerm, node: &NodeInfo) -> Result<(), TermMismatch> {
    let exprs = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if exprs.is_empty() && fields.is_empty() {
        return Err(TermMismatch::Empty);
    }
    for r in exprs {
        let value = node.labels.get(&r.key).map(String::as_str);
        match match_requirement(r, value) {
            Ok(true) => {}
            Ok(false) => {
                return Err(TermMismatch::Expression {
                    requirement: describe_requirement(r),
                    has: node_has(node, &r.key),
                })
            }
            Err(invalid) => {
                return Err(TermMismatch::InvalidExpression {
                    requirement: describe_requirement(r),
                    invalid,
                })
            }
        }
    }
    for r in fields {
        let requirement = describe_requirement(r);
        if r.key != "metadata.name" {
            return Err(TermMismatch::FieldKey { requirement });
        }
        if !matches!(r.operator.as_str(), "In" | "NotIn")
            || r.values.as_ref().map(Vec::len) != Some(1)
        {
            return Err(TermMismatch::FieldOperator { requirement });
        }
        match match_requirement(r, Some(&node.name)) {
            Ok(true) => {}
            Ok(false) => {
                return Err(TermMismatch::FieldName {
                    requirement,
                    node: node.name.clone(),
                })
            }
            Err(invalid) => {
                return Err(TermMismatch::InvalidField {
                    requirement,
                    invalid,
                })
            }
        }
    }
    Ok(())
}

/// `key Op [values]`, as written.
fn describe_requirement(r: &NodeSelectorRequirement) -> String {
    let values = r.values.as_deref().unwrap_or_default();
    if values.is_empty() {
        format!("{} {}", r.key, r.operator)
    } else {
        format!("{} {} [{}]", r.key, r.operator, values.join(", "))
    }
}

/// Does a requirement match the node's `value` for its key (`None` = no
/// such label)? `Err` when the requirement itself is invalid (the API server
/// would have refused it; such a term matches no node).
fn match_requirement(
    r: &NodeSelectorRequirement,
    value: Option<&str>,
) -> Result<bool, InvalidRequirement> {
    let values = r.values.as_deref().unwrap_or_default();
    let operator = || r.operator.clone();
    let int = |s: &str| -> Result<i64, InvalidRequirement> {
        s.trim()
            .parse::<i64>()
            .map_err(|_| InvalidRequirement::NotAnInteger {
                value: s.to_string(),
            })
    };
    match r.operator.as_str() {
        "In" | "NotIn" if values.is_empty() => Err(InvalidRequirement::NoValues {
            operator: operator(),
        }),
        "In" => Ok(value.is_some_and(|v| values.iter().any(|w| w == v))),
        "NotIn" => Ok(!value.is_some_and(|v| values.iter().any(|w| w == v))),
        "Exists" | "DoesNotExist" if !values.is_empty() => {
            Err(InvalidRequirement::UnexpectedValues {
                operator: operator(),
            })
        }
        "Exists" => Ok(value.is_some()),
        "DoesNotExist" => Ok(value.is_none()),
        "Gt" | "Lt" => {
            let [bound] = values else {
                return Err(InvalidRequirement::NotOneValue {
                    operator: operator(),
                });
            };
            let bound = int(bound)?;
            // A missing or non-integer label does not match.
            let Some(v) = value.and_then(|v| v.trim().parse::<i64>().ok()) else {
                return Ok(false);
            };
            Ok(if r.operator == "Gt" {
                v > bound
            } else {
                v < bound
            })
        }
        other => Err(InvalidRequirement::UnknownOperator {
            operator: other.to_string(),
        }),
    }
}

/// The status the kubelet gives a pod it rejects: phase `Failed`, the
/// rejection's reason, and `Pod was rejected: <message>`.
pub fn rejected_status(pod: &Pod, rejection: &Rejection, host_ip: &str) -> PodStatus {
    PodStatus {
        phase: Some("Failed".into()),
        reason: Some(rejection.reason.clone()),
        message: Some(format!("Pod was rejected: {}", rejection.message)),
        qos_class: Some(crate::k8s::qos::qos_class(pod).to_string()),
        host_ip: Some(host_ip.to_string()),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Affinity, NodeAffinity, NodeSelector, PodOS, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use std::collections::BTreeMap;

    #[test]
    fn controller_pods_must_tolerate_no_execute_taints_and_daemon_pods_no_schedule_ones() {
        use k8s_openapi::api::core::v1::Toleration;
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
        let mut n = node();
        n.taints = crate::k8s::taints::parse(&["gpu=yes:NoExecute,edge:NoSchedule"]).expect("t");
        let mut p = Pod {
            metadata: ObjectMeta {
                name: Some("web-abc12".into()),
                ..Default::default()
            },
            spec: Some(PodSpec::default()),
            ..Default::default()
        };
        assert_eq!(admit(&p, &n), Ok(()), "a static pod is exempt");
        p.metadata.owner_references = Some(vec![OwnerReference {
            kind: "DaemonSet".into(),
            name: "web".into(),
            controller: Some(true),
            ..Default::default()
        }]);
        let why = admit(&p, &n).expect_err("untolerated NoExecute");
        assert_eq!(why.reason, "TaintToleration");
        assert_eq!(
            why.message,
            "Predicate TaintToleration failed: node(s) had taints that the pod didn't tolerate \
             (taint gpu=yes:NoExecute)"
        );
        let spec = p.spec.as_mut().expect("spec");
        spec.tolerations = Some(vec![Toleration {
            key: Some("gpu".into()),
            operator: Some("Exists".into()),
            ..Default::default()
        }]);
        assert_eq!(admit(&p, &n), Ok(()), "NoSchedule is the scheduler's");
        let why = tolerates_node_taints(&p, &n).expect_err("NoSchedule");
        assert!(why.message.ends_with("(taint edge:NoSchedule)"), "{why}");
        crate::k8s::taints::add_daemon_tolerations(p.spec.as_mut().expect("spec"));
        assert!(
            tolerates_node_taints(&p, &n).is_err(),
            "edge is not standard"
        );
        n.taints =
            crate::k8s::taints::parse(&["node.kubernetes.io/unschedulable:NoSchedule"]).expect("t");
        assert_eq!(tolerates_node_taints(&p, &n), Ok(()));
    }

    #[test]
    fn a_replica_sets_pod_is_not_scheduled_onto_a_taint_it_does_not_tolerate() {
        use k8s_openapi::api::core::v1::Toleration;
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
        let mut n = node();
        n.taints = crate::k8s::taints::parse(&["dedicated=edge:NoSchedule"]).expect("t");
        let mut p = Pod {
            spec: Some(PodSpec::default()),
            ..Default::default()
        };
        assert_eq!(unschedulable(&p, &n, false), None, "a static pod");
        p.metadata.owner_references = Some(vec![OwnerReference {
            kind: "ReplicaSet".into(),
            name: "web-abc".into(),
            controller: Some(true),
            ..Default::default()
        }]);
        assert_eq!(
            unschedulable(&p, &n, false).as_deref(),
            Some("0/1 nodes are available: 1 node(s) had untolerated taint {dedicated: edge}.")
        );
        assert_eq!(
            unschedulable(&p, &n, true),
            None,
            "NoSchedule does not evict a pod already running"
        );
        n.taints = crate::k8s::taints::parse(&["maintenance:NoExecute"]).expect("t");
        assert_eq!(admit(&p, &n), Ok(()), "not the kubelet's Failed");
        assert_eq!(
            unschedulable(&p, &n, true).as_deref(),
            Some("0/1 nodes are available: 1 node(s) had untolerated taint {maintenance: }."),
            "NoExecute evicts"
        );
        p.spec.as_mut().expect("spec").tolerations = Some(vec![Toleration {
            key: Some("maintenance".into()),
            operator: Some("Exists".into()),
            ..Default::default()
        }]);
        assert_eq!(unschedulable(&p, &n, false), None);
    }

    fn node() -> NodeInfo {
        NodeInfo::with_labels(
            "node1",
            &BTreeMap::from([
                ("disktype".to_string(), "ssd".to_string()),
                ("cores".to_string(), "8".to_string()),
                ("example.com/zone".to_string(), "a".to_string()),
            ]),
        )
    }

    fn pod_with(spec: PodSpec) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("web-node1".into()),
                ..Default::default()
            },
            spec: Some(spec),
            ..Default::default()
        }
    }

    fn req(key: &str, op: &str, values: &[&str]) -> NodeSelectorRequirement {
        NodeSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: (!values.is_empty()).then(|| values.iter().map(|v| v.to_string()).collect()),
        }
    }

    fn term(exprs: Vec<NodeSelectorRequirement>) -> NodeSelectorTerm {
        NodeSelectorTerm {
            match_expressions: Some(exprs),
            match_fields: None,
        }
    }

    fn affinity_pod(terms: Vec<NodeSelectorTerm>) -> Pod {
        pod_with(PodSpec {
            affinity: Some(Affinity {
                node_affinity: Some(NodeAffinity {
                    required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                        node_selector_terms: terms,
                    }),
                    preferred_during_scheduling_ignored_during_execution: None,
                }),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    fn one(r: NodeSelectorRequirement) -> Result<(), Rejection> {
        admit(&affinity_pod(vec![term(vec![r])]), &node())
    }

    #[test]
    fn a_pod_without_constraints_is_admitted() {
        assert_eq!(admit(&pod_with(PodSpec::default()), &node()), Ok(()));
    }

    #[test]
    fn node_selector_matches_only_when_every_pair_is_on_the_node() {
        let sel = |pairs: &[(&str, &str)]| {
            pod_with(PodSpec {
                node_selector: Some(
                    pairs
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            })
        };
        assert_eq!(
            admit(
                &sel(&[("disktype", "ssd"), ("kubernetes.io/os", "linux")]),
                &node()
            ),
            Ok(())
        );
        let r = admit(&sel(&[("disktype", "hdd")]), &node()).expect_err("mismatch");
        assert_eq!(r.reason, "NodeAffinity");
        assert!(
            r.message.starts_with(
                "Predicate NodeAffinity failed: node(s) didn't match Pod's node affinity/selector"
            ),
            "{}",
            r.message
        );
        assert!(
            r.message.contains("nodeSelector disktype=hdd") && r.message.contains("\"ssd\""),
            "{}",
            r.message
        );
        let r = admit(&sel(&[("gpu", "yes")]), &node()).expect_err("missing label");
        assert!(r.message.contains("no label gpu"), "{}", r.message);
    }

    #[test]
    fn in_matches_a_listed_value_and_fails_on_others_or_a_missing_label() {
        assert_eq!(one(req("disktype", "In", &["hdd", "ssd"])), Ok(()));
        let r = one(req("disktype", "In", &["hdd"])).expect_err("not listed");
        assert_eq!(r.reason, "NodeAffinity");
        assert!(
            r.message.contains("term 1: disktype In [hdd]"),
            "{}",
            r.message
        );
        assert!(one(req("gpu", "In", &["yes"])).is_err());
    }

    #[test]
    fn not_in_matches_other_values_and_a_missing_label() {
        assert_eq!(one(req("disktype", "NotIn", &["hdd"])), Ok(()));
        assert_eq!(one(req("gpu", "NotIn", &["yes"])), Ok(()));
        assert!(one(req("disktype", "NotIn", &["ssd"])).is_err());
    }

    #[test]
    fn exists_and_does_not_exist_look_only_at_the_key() {
        assert_eq!(one(req("disktype", "Exists", &[])), Ok(()));
        assert!(one(req("gpu", "Exists", &[])).is_err());
        assert_eq!(one(req("gpu", "DoesNotExist", &[])), Ok(()));
        let r = one(req("disktype", "DoesNotExist", &[])).expect_err("exists");
        assert!(r.message.contains("disktype DoesNotExist"), "{}", r.message);
    }

    #[test]
    fn gt_and_lt_compare_integers_and_fail_on_missing_or_non_integer_labels() {
        assert_eq!(one(req("cores", "Gt", &["4"])), Ok(()));
        assert!(one(req("cores", "Gt", &["8"])).is_err());
        assert_eq!(one(req("cores", "Lt", &["16"])), Ok(()));
        assert!(one(req("cores", "Lt", &["8"])).is_err());
        assert!(one(req("gpu", "Gt", &["0"])).is_err());
        assert!(one(req("disktype", "Lt", &["10"])).is_err());
    }

    #[test]
    fn invalid_requirements_match_nothing_and_say_why() {
        let r = one(req("cores", "Gt", &["many"])).expect_err("invalid");
        assert!(r.message.contains("not an integer"), "{}", r.message);
        let r = one(req("cores", "Gt", &["1", "2"])).expect_err("invalid");
        assert!(r.message.contains("exactly one"), "{}", r.message);
        let r = one(req("disktype", "Matches", &["s.*"])).expect_err("invalid");
        assert!(r.message.contains("unknown operator"), "{}", r.message);
        assert!(one(req("disktype", "In", &[])).is_err());
        assert!(one(req("disktype", "Exists", &["ssd"])).is_err());
    }

    #[test]
    fn an_invalid_requirement_is_told_apart_from_a_non_matching_one() {
        assert_eq!(
            match_requirement(&req("gpu", "In", &["yes"]), None),
            Ok(false)
        );
        assert_eq!(
            match_requirement(&req("cores", "Gt", &["many"]), Some("8")),
            Err(InvalidRequirement::NotAnInteger {
                value: "many".into()
            })
        );
        assert_eq!(
            match_requirement(&req("k", "Matches", &[]), None),
            Err(InvalidRequirement::UnknownOperator {
                operator: "Matches".into()
            })
        );
    }

    #[test]
    fn terms_are_ored_and_expressions_within_a_term_are_anded() {
        let ok = affinity_pod(vec![
            term(vec![req("disktype", "In", &["hdd"])]),
            term(vec![
                req("disktype", "In", &["ssd"]),
                req("cores", "Gt", &["2"]),
            ]),
        ]);
        assert_eq!(admit(&ok, &node()), Ok(()));
        let bad = affinity_pod(vec![
            term(vec![req("disktype", "In", &["hdd"])]),
            term(vec![
                req("disktype", "In", &["ssd"]),
                req("cores", "Gt", &["64"]),
            ]),
        ]);
        let r = admit(&bad, &node()).expect_err("no term");
        assert!(
            r.message.contains("no term matched")
                && r.message.contains("term 1: disktype In [hdd]")
                && r.message.contains("term 2: cores Gt [64]"),
            "{}",
            r.message
        );
    }

    #[test]
    fn empty_terms_and_an_empty_term_list_match_no_node() {
        assert!(admit(&affinity_pod(vec![]), &node()).is_err());
        let empty = NodeSelectorTerm::default();
        let r = admit(&affinity_pod(vec![empty]), &node()).expect_err("empty term");
        assert!(r.message.contains("empty term"), "{}", r.message);
    }

    #[test]
    fn match_fields_compare_metadata_name_with_the_node_name() {
        let fields = |op: &str, v: &str| {
            affinity_pod(vec![NodeSelectorTerm {
                match_expressions: None,
                match_fields: Some(vec![req("metadata.name", op, &[v])]),
            }])
        };
        assert_eq!(admit(&fields("In", "node1"), &node()), Ok(()));
        assert!(admit(&fields("In", "node2"), &node()).is_err());
        assert_eq!(admit(&fields("NotIn", "node2"), &node()), Ok(()));
        let r = admit(&fields("NotIn", "node1"), &node()).expect_err("excluded");
        assert!(r
            .message
            .contains("matchFields metadata.name NotIn [node1]"));
        let other_key = affinity_pod(vec![NodeSelectorTerm {
            match_expressions: None,
            match_fields: Some(vec![req("metadata.uid", "In", &["x"])]),
        }]);
        assert!(admit(&other_key, &node()).is_err());
    }

    #[test]
    fn preferred_affinity_is_ignored() {
        let mut p = pod_with(PodSpec::default());
        p.spec.get_or_insert_default().affinity = Some(Affinity {
            node_affinity: Some(NodeAffinity {
                preferred_during_scheduling_ignored_during_execution: Some(vec![
                    k8s_openapi::api::core::v1::PreferredSchedulingTerm {
                        weight: 10,
                        preference: term(vec![req("disktype", "In", &["hdd"])]),
                    },
                ]),
                required_during_scheduling_ignored_during_execution: None,
            }),
            ..Default::default()
        });
        assert_eq!(admit(&p, &node()), Ok(()));
    }

    #[test]
    fn another_node_name_is_rejected_with_the_node_name_reason() {
        let p = pod_with(PodSpec {
            node_name: Some("node2".into()),
            ..Default::default()
        });
        let r = admit(&p, &node()).expect_err("other node");
        assert_eq!(r.reason, "NodeName");
        assert!(
            r.message.starts_with(
                "Predicate NodeName failed: node(s) didn't match the requested node name"
            ) && r.message.contains("\"node2\""),
            "{}",
            r.message
        );
        let mine = pod_with(PodSpec {
            node_name: Some("node1".into()),
            ..Default::default()
        });
        assert_eq!(admit(&mine, &node()), Ok(()));
    }

    #[test]
    fn node_affinity_is_reported_before_node_name_as_the_kubelet_does() {
        let p = pod_with(PodSpec {
            node_name: Some("node2".into()),
            node_selector: Some(BTreeMap::from([("disktype".into(), "hdd".into())])),
            ..Default::default()
        });
        assert_eq!(admit(&p, &node()).expect_err("both").reason, "NodeAffinity");
    }

    #[test]
    fn a_pod_for_another_os_is_rejected() {
        let p = pod_with(PodSpec {
            os: Some(PodOS {
                name: "windows".into(),
            }),
            ..Default::default()
        });
        assert_eq!(
            admit(&p, &node()).expect_err("os").reason,
            "PodOSNotSupported"
        );
        let mut labelled = pod_with(PodSpec::default());
        labelled.metadata.labels = Some(BTreeMap::from([(LABEL_OS.into(), "windows".into())]));
        assert_eq!(
            admit(&labelled, &node()).expect_err("os label").reason,
            "PodOSSelectorNodeLabelDoesNotMatch"
        );
    }

    #[test]
    fn the_rejected_status_is_failed_with_the_kubelets_message_prefix() {
        let p = pod_with(PodSpec {
            node_name: Some("node2".into()),
            ..Default::default()
        });
        let r = admit(&p, &node()).expect_err("other node");
        let s = rejected_status(&p, &r, "192.0.2.1");
        assert_eq!(s.phase.as_deref(), Some("Failed"));
        assert_eq!(s.reason.as_deref(), Some("NodeName"));
        assert!(s
            .message
            .as_deref()
            .is_some_and(|m| m.starts_with("Pod was rejected: Predicate NodeName failed")));
        assert_eq!(s.qos_class.as_deref(), Some("BestEffort"));
    }
}
