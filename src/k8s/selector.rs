//! Label and field selectors as the API server parses and matches them
//! (`?labelSelector=` and `?fieldSelector=`, what `kubectl -l` and
//! `kubectl --field-selector` send). Pure.
//!
//! * [`LabelSelector`]: comma-joined requirements — `k=v`, `k==v`, `k!=v`,
//!   `k in (a,b)`, `k notin (a,b)`, `k` (exists), `!k` (does not exist),
//!   `k>1`, `k<1` — with keys and values checked like label keys and values.
//! * [`FieldSelector`]: comma-joined `field=value`, `field==value`,
//!   `field!=value` (a `\` escapes `,`, `=`, `!` and itself in a value),
//!   checked against the fields a kind supports ([`Selectable::FIELDS`]):
//!   any other field is refused with the API server's
//!   `field label not supported: X`.
//! * [`Selectable`]: a kind's labels, its supported fields and their values;
//!   implemented here for `Pod`, `Event`, `Node`, `Namespace`, `ConfigMap`
//!   and `Secret` with the API server's field sets.
//!
//! It does not decide which objects a request sees beyond matching; the API
//! (`api/`) parses the query and applies these.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use k8s_openapi::api::core::v1::{ConfigMap, Event, Namespace, Node, Pod, Secret};

use super::names::{check_label_key, check_label_value};

/// A selector the API would refuse, with a message naming what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// The text does not parse (`unable to parse requirement: …`).
    #[error("unable to parse requirement: {0}")]
    Syntax(String),
    /// A key or value that is no valid label key or value.
    #[error("unable to parse requirement: {0}")]
    Label(#[from] super::names::LabelError),
    /// A field selector term without an operator.
    #[error("invalid selector: '{selector}'; can't understand '{term}'")]
    FieldTerm { selector: String, term: String },
    /// A field the kind does not support (the API server's wording).
    #[error("field label not supported: {0}")]
    UnsupportedField(String),
}

/// A label requirement's operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Equals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    pub op: Op,
    pub values: BTreeSet<String>,
}

impl Requirement {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        let number = |v: &String| v.parse::<i64>().ok();
        let bound = || self.values.iter().next().and_then(number);
        match self.op {
            Op::Equals | Op::In => value.is_some_and(|v| self.values.contains(v)),
            Op::NotEquals | Op::NotIn => value.is_none_or(|v| !self.values.contains(v)),
            Op::Exists => value.is_some(),
            Op::DoesNotExist => value.is_none(),
            Op::GreaterThan => {
                matches!((value.and_then(number), bound()), (Some(v), Some(b)) if v > b)
            }
            Op::LessThan => {
                matches!((value.and_then(number), bound()), (Some(v), Some(b)) if v < b)
            }
        }
    }
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    pub requirements: Vec<Requirement>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    Not,
    NotEquals,
    Equals,
    DoubleEquals,
    Open,
    Close,
    Comma,
    Greater,
    Less,
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Token::Ident(s) => s.as_str(),
            Token::Not => "!",
            Token::NotEquals => "!=",
            Token::Equals => "=",
            Token::DoubleEquals => "==",
            Token::Open => "(",
            Token::Close => ")",
            Token::Comma => ",",
            Token::Greater => ">",
            Token::Less => "<",
        };
        f.write_str(s)
    }
}

fn lex(s: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        let special = |c: char| c.is_whitespace() || "!=(),<>".contains(c);
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if special(c) {
            chars.next();
            let two = |chars: &mut std::iter::Peekable<std::str::Chars>| {
                if chars.peek() == Some(&'=') {
                    chars.next();
                    true
                } else {
                    false
                }
            };
            out.push(match c {
                '!' if two(&mut chars) => Token::NotEquals,
                '!' => Token::Not,
                '=' if two(&mut chars) => Token::DoubleEquals,
                '=' => Token::Equals,
                '(' => Token::Open,
                ')' => Token::Close,
                ',' => Token::Comma,
                '>' => Token::Greater,
                _ => Token::Less,
            });
            continue;
        }
        let mut ident = String::new();
        while let Some(&c) = chars.peek() {
            if special(c) {
                break;
            }
            ident.push(c);
            chars.next();
        }
        out.push(Token::Ident(ident));
    }
    out
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }
    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }
    fn found(t: Option<&Token>) -> String {
        t.map_or_else(|| "end of string".to_string(), |t| format!("'{t}'"))
    }

    fn key(&mut self) -> Result<String, SelectorError> {
        match self.next() {
            Some(Token::Ident(k)) if k != "in" && k != "notin" => {
                check_label_key(&k)?;
                Ok(k)
            }
            t => Err(SelectorError::Syntax(format!(
                "found {}, expected: identifier",
                Self::found(t.as_ref())
            ))),
        }
    }

    fn value(&mut self, key: &str) -> Result<String, SelectorError> {
        // An empty value (`k=` or `k=,j`) is allowed, as in Kubernetes.
        let value = match self.peek() {
            Some(Token::Ident(_)) => match self.next() {
                Some(Token::Ident(v)) => v,
                _ => String::new(),
            },
            Some(Token::Comma) | None => String::new(),
            t => {
                return Err(SelectorError::Syntax(format!(
                    "found {}, expected: identifier for the value of {key}",
                    Self::found(t)
                )))
            }
        };
        check_label_value(key, &value)?;
        Ok(value)
    }

    fn set(&mut self, key: &str) -> Result<BTreeSet<String>, SelectorError> {
        if self.next() != Some(Token::Open) {
            return Err(SelectorError::Syntax(format!(
                "found {}, expected: '(' after 'in' or 'notin' for {key}",
                Self::found(self.tokens.get(self.at - 1))
            )));
        }
        let mut values = BTreeSet::new();
        loop {
            match self.next() {
                Some(Token::Ident(v)) => {
                    check_label_value(key, &v)?;
                    values.insert(v);
                    match self.next() {
                        Some(Token::Comma) => continue,
                        Some(Token::Close) => break,
                        t => {
                            return Err(SelectorError::Syntax(format!(
                                "found {}, expected: ',' or ')' in the values of {key}",
                                Self::found(t.as_ref())
                            )))
                        }
                    }
                }
                t => {
                    return Err(SelectorError::Syntax(format!(
                        "found {}, expected: a value in the set of {key} (a set must not be empty)",
                        Self::found(t.as_ref())
                    )))
                }
            }
        }
        Ok(values)
    }

    fn requirement(&mut self) -> Result<Requirement, SelectorError> {
        let req = |key: String, op: Op, values: BTreeSet<String>| Requirement { key, op, values };
        if self.peek() == Some(&Token::Not) {
            self.next();
            let key = self.key()?;
            return Ok(req(key, Op::DoesNotExist, BTreeSet::new()));
        }
        let key = self.key()?;
        let op = match self.peek() {
            None | Some(Token::Comma) => return Ok(req(key, Op::Exists, BTreeSet::new())),
            Some(Token::Equals) | Some(Token::DoubleEquals) => Op::Equals,
            Some(Token::NotEquals) => Op::NotEquals,
            Some(Token::Greater) => Op::GreaterThan,
            Some(Token::Less) => Op::LessThan,
            Some(Token::Ident(w)) if w == "in" => Op::In,
            Some(Token::Ident(w)) if w == "notin" => Op::NotIn,
            t => {
                return Err(SelectorError::Syntax(format!(
                    "found {}, expected: in, notin, =, ==, !=, gt, lt after {key}",
                    Self::found(t)
                )))
            }
        };
        self.next();
        let values = match op {
            Op::In | Op::NotIn => self.set(&key)?,
            Op::GreaterThan | Op::LessThan => {
                let v = self.value(&key)?;
                if v.parse::<i64>().is_err() {
                    return Err(SelectorError::Syntax(format!(
                        "for 'gt', 'lt' operators, the value of {key} must be an integer, not {v:?}"
                    )));
                }
                BTreeSet::from([v])
            }
            _ => BTreeSet::from([self.value(&key)?]),
        };
        Ok(req(key, op, values))
    }
}

impl LabelSelector {
    /// Parses `?labelSelector=` as the API server does.
    ///
    /// Fails on a token out of place, an empty set, or a key or value that
    /// is no valid label key or value.
    pub fn parse(s: &str) -> Result<LabelSelector, SelectorError> {
        let mut p = Parser {
            tokens: lex(s),
            at: 0,
        };
        let mut requirements = Vec::new();
        while p.peek().is_some() {
            requirements.push(p.requirement()?);
            match p.next() {
                None => break,
                Some(Token::Comma) if p.peek().is_some() => {}
                t => {
                    return Err(SelectorError::Syntax(format!(
                        "found {}, expected: ',' between requirements",
                        Parser::found(t.as_ref())
                    )))
                }
            }
        }
        Ok(LabelSelector { requirements })
    }

    /// Does an object with these labels match every requirement?
    pub fn matches(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        let empty = BTreeMap::new();
        let labels = labels.unwrap_or(&empty);
        self.requirements.iter().all(|r| r.matches(labels))
    }
}

/// One `field=value` (or `!=`) term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldTerm {
    pub field: String,
    pub value: String,
    pub negate: bool,
}

/// A parsed field selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    pub terms: Vec<FieldTerm>,
}

/// Splits on unescaped `sep`, keeping escapes for a later pass.
fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            parts.push(String::new());
            continue;
        }
        if let Some(last) = parts.last_mut() {
            last.push(c);
        }
    }
    parts
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut escaped = false;
    for c in s.chars() {
        if !escaped && c == '\\' {
            escaped = true;
            continue;
        }
        escaped = false;
        out.push(c);
    }
    out
}

/// The first unescaped occurrence of `op` in `s`.
fn find_unescaped(s: &str, op: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        if c == '\\' {
            escaped = true;
            continue;
        }
        if s[i..].starts_with(op) {
            return Some(i);
        }
    }
    None
}

impl FieldSelector {
    /// Parses `?fieldSelector=` for a kind supporting `fields`.
    ///
    /// Fails on a term with no `=`, `==` or `!=`, and on a field the kind
    /// does not support (`field label not supported: X`).
    pub fn parse(s: &str, fields: &[&str]) -> Result<FieldSelector, SelectorError> {
        let mut terms = Vec::new();
        for term in split_unescaped(s, ',') {
            if term.trim().is_empty() {
                continue;
            }
            let (at, len, negate) = ["!=", "==", "="]
                .iter()
                .find_map(|op| find_unescaped(&term, op).map(|i| (i, op.len(), *op == "!=")))
                .ok_or_else(|| SelectorError::FieldTerm {
                    selector: s.to_string(),
                    term: term.clone(),
                })?;
            let field = term[..at].trim().to_string();
            if !fields.contains(&field.as_str()) {
                return Err(SelectorError::UnsupportedField(field));
            }
            terms.push(FieldTerm {
                field,
                value: unescape(term[at + len..].trim()),
                negate,
            });
        }
        Ok(FieldSelector { terms })
    }

    /// Does `object` match every term?
    pub fn matches<T: Selectable>(&self, object: &T) -> bool {
        self.terms
            .iter()
            .all(|t| (object.field(&t.field).unwrap_or_default() == t.value) != t.negate)
    }

    /// The value this selector requires of `field` (`field=value`), if any:
    /// `kubectl wait pod/X` watches with `metadata.name=X`.
    pub fn required(&self, field: &str) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| t.field == field && !t.negate)
            .map(|t| t.value.as_str())
    }
}

/// What selectors need of a kind.
pub trait Selectable {
    /// The fields `fieldSelector` supports for this kind.
    const FIELDS: &'static [&'static str];
    /// The object's labels.
    fn labels(&self) -> Option<&BTreeMap<String, String>>;
    /// The value of a supported field (`""` when unset); `None` for a field
    /// not in [`Selectable::FIELDS`].
    fn field(&self, field: &str) -> Option<String>;
}

/// `metadata.name` and `metadata.namespace`, which every kind supports.
pub const META_FIELDS: &[&str] = &["metadata.name", "metadata.namespace"];

fn meta_field(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    field: &str,
) -> Option<String> {
    match field {
        "metadata.name" => Some(meta.name.clone().unwrap_or_default()),
        "metadata.namespace" => Some(meta.namespace.clone().unwrap_or_default()),
        _ => None,
    }
}

impl Selectable for Pod {
    const FIELDS: &'static [&'static str] = &[
        "metadata.name",
        "metadata.namespace",
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ];
    fn labels(&self) -> Option<&BTreeMap<String, String>> {
        self.metadata.labels.as_ref()
    }
    fn field(&self, field: &str) -> Option<String> {
        let spec = self.spec.as_ref();
        let status = self.status.as_ref();
        let s = |v: Option<&String>| v.cloned().unwrap_or_default();
        Some(match field {
            "spec.nodeName" => s(spec.and_then(|p| p.node_name.as_ref())),
            "spec.restartPolicy" => s(spec.and_then(|p| p.restart_policy.as_ref())),
            "spec.schedulerName" => s(spec.and_then(|p| p.scheduler_name.as_ref())),
            "spec.serviceAccountName" => s(spec.and_then(|p| p.service_account_name.as_ref())),
            "spec.hostNetwork" => spec
                .and_then(|p| p.host_network)
                .unwrap_or(false)
                .to_string(),
            "status.phase" => s(status.and_then(|p| p.phase.as_ref())),
            "status.podIP" => s(status.and_then(|p| p.pod_ip.as_ref())),
            "status.nominatedNodeName" => s(status.and_then(|p| p.nominated_node_name.as_ref())),
            other => return meta_field(&self.metadata, other),
        })
    }
}

impl Selectable for Event {
    const FIELDS: &'static [&'static str] = &[
        "metadata.name",
        "metadata.namespace",
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ];
    fn labels(&self) -> Option<&BTreeMap<String, String>> {
        self.metadata.labels.as_ref()
    }
    fn field(&self, field: &str) -> Option<String> {
        let o = &self.involved_object;
        let s = |v: Option<&String>| v.cloned().unwrap_or_default();
        Some(match field {
            "involvedObject.kind" => s(o.kind.as_ref()),
            "involvedObject.namespace" => s(o.namespace.as_ref()),
            "involvedObject.name" => s(o.name.as_ref()),
            "involvedObject.uid" => s(o.uid.as_ref()),
            "involvedObject.apiVersion" => s(o.api_version.as_ref()),
            "involvedObject.resourceVersion" => s(o.resource_version.as_ref()),
            "involvedObject.fieldPath" => s(o.field_path.as_ref()),
            "reason" => s(self.reason.as_ref()),
            // The API server selects `reportingComponent` on
            // `reportingController`, and `source` on `source.component`.
            "reportingComponent" => s(self.reporting_component.as_ref()),
            "source" => s(self.source.as_ref().and_then(|x| x.component.as_ref())),
            "type" => s(self.type_.as_ref()),
            other => return meta_field(&self.metadata, other),
        })
    }
}

impl Selectable for ConfigMap {
    const FIELDS: &'static [&'static str] = META_FIELDS;
    fn labels(&self) -> Option<&BTreeMap<String, String>> {
        self.metadata.labels.as_ref()
    }
    fn field(&self, field: &str) -> Option<String> {
        meta_field(&self.metadata, field)
    }
}

impl Selectable for Secret {
    const FIELDS: &'static [&'static str] = &["metadata.name", "metadata.namespace", "type"];
    fn labels(&self) -> Option<&BTreeMap<String, String>> {
        self.metadata.labels.as_ref()
    }
    fn field(&self, field: &str) -> Option<String> {
        match field {
            // The API server defaults an unset type to `Opaque` on create.
            "type" => Some(self.type_.clone().unwrap_or_else(|| "Opaque".into())),
            other => meta_field(&self.metadata, other),
        }
    }
}

impl Selectable for Node {
    const FIELDS: &'static [&'static str] =
        &["metadata.name", "metadata.namespace", "spec.unschedulable"];
    fn labels(&self) -> Option<&BTreeMap<String, String>> {
        self.metadata.labels.as_ref()
    }
    fn field(&self, field: &str) -> Option<String> {
        match field {
            "spec.unschedulable" => Some(
                (self.spec.as_ref())
                    .and_then(|s| s.unschedulable)
                    .unwrap_or(false)
                    .to_string(),
            ),
            other => meta_field(&self.metadata, other),
        }
    }
}

impl Selectable for Namespace {
    const FIELDS: &'static [&'static str] =
        &["metadata.name", "metadata.namespace", "status.phase"];
    fn labels(&self) -> Option<&BTreeMap<String, String>> {
        self.metadata.labels.as_ref()
    }
    fn field(&self, field: &str) -> Option<String> {
        match field {
            "status.phase" => Some(
                (self.status.as_ref())
                    .and_then(|s| s.phase.clone())
                    .unwrap_or_default(),
            ),
            other => meta_field(&self.metadata, other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ObjectReference;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn sel(s: &str) -> LabelSelector {
        LabelSelector::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    fn matches(s: &str, pairs: &[(&str, &str)]) -> bool {
        sel(s).matches(Some(&labels(pairs)))
    }

    #[test]
    fn the_empty_label_selector_matches_everything() {
        assert!(matches("", &[]));
        assert!(matches("  ", &[("a", "b")]));
        assert!(sel("").matches(None));
    }

    #[test]
    fn equality_takes_one_or_two_equals_signs() {
        assert!(matches("app=web", &[("app", "web")]));
        assert!(matches("app==web", &[("app", "web")]));
        assert!(!matches("app=web", &[("app", "db")]));
        assert!(!matches("app=web", &[]));
        assert!(matches("app = web", &[("app", "web")]));
    }

    #[test]
    fn inequality_matches_a_missing_label_too() {
        assert!(matches("app!=web", &[("app", "db")]));
        assert!(matches("app!=web", &[]));
        assert!(!matches("app!=web", &[("app", "web")]));
    }

    #[test]
    fn set_membership_in_and_notin() {
        assert!(matches("env in (prod, qa)", &[("env", "qa")]));
        assert!(!matches("env in (prod,qa)", &[("env", "dev")]));
        assert!(!matches("env in (prod,qa)", &[]));
        assert!(matches("env notin (prod,qa)", &[("env", "dev")]));
        assert!(matches("env notin (prod,qa)", &[]));
        assert!(!matches("env notin (prod,qa)", &[("env", "prod")]));
    }

    #[test]
    fn existence_and_non_existence() {
        assert!(matches("tier", &[("tier", "")]));
        assert!(!matches("tier", &[("app", "x")]));
        assert!(matches("!tier", &[("app", "x")]));
        assert!(!matches("!tier", &[("tier", "front")]));
    }

    #[test]
    fn greater_and_less_than_compare_integers() {
        assert!(matches("gen>3", &[("gen", "4")]));
        assert!(!matches("gen>3", &[("gen", "3")]));
        assert!(!matches("gen>3", &[("gen", "x")]));
        assert!(matches("gen<3", &[("gen", "2")]));
        assert!(!matches("gen<3", &[]));
    }

    #[test]
    fn requirements_are_anded() {
        let s = "app=web,env in (prod),!canary,tier";
        assert_eq!(sel(s).requirements.len(), 4);
        assert!(matches(
            s,
            &[("app", "web"), ("env", "prod"), ("tier", "f")]
        ));
        assert!(!matches(
            s,
            &[
                ("app", "web"),
                ("env", "prod"),
                ("tier", "f"),
                ("canary", "1")
            ]
        ));
    }

    #[test]
    fn prefixed_keys_and_empty_values_are_allowed() {
        assert!(matches(
            "app.kubernetes.io/name=web",
            &[("app.kubernetes.io/name", "web")]
        ));
        assert!(matches("app=", &[("app", "")]));
        assert!(matches("app=,x", &[("app", ""), ("x", "1")]));
    }

    #[test]
    fn malformed_label_selectors_are_refused_with_a_reason() {
        for bad in [
            "=web",
            "app=web,",
            ",app",
            "app in prod",
            "app in ()",
            "app in (a b)",
            "app in (a,",
            "app web",
            "app=(x)",
            "!",
            "app>x",
            "bad key=1",
            "-app=1",
            "app=bad value!",
            "app=-x",
            "in=1",
        ] {
            let e = LabelSelector::parse(bad).expect_err(bad);
            assert!(
                e.to_string().starts_with("unable to parse requirement: "),
                "{bad:?}: {e}"
            );
        }
        let long = "a".repeat(64);
        assert!(LabelSelector::parse(&format!("app={long}")).is_err());
        assert!(LabelSelector::parse(&format!("{long}=x")).is_err());
    }

    fn pod() -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "web-n", "namespace": "default", "labels": {"app": "web"}},
            "spec": {"nodeName": "n", "restartPolicy": "Always", "containers": [], "hostNetwork": true},
            "status": {"phase": "Running", "podIP": "10.0.0.2"}
        }))
        .expect("pod")
    }

    fn pod_sel(s: &str) -> FieldSelector {
        FieldSelector::parse(s, Pod::FIELDS).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn pod_field_selectors_match_like_the_api_server() {
        let p = pod();
        assert!(pod_sel("").matches(&p));
        assert!(pod_sel("status.phase=Running").matches(&p));
        assert!(pod_sel("status.phase==Running,metadata.name=web-n").matches(&p));
        assert!(!pod_sel("status.phase!=Running").matches(&p));
        assert!(pod_sel("spec.nodeName=n,metadata.namespace=default").matches(&p));
        assert!(pod_sel("spec.hostNetwork=true").matches(&p));
        assert!(pod_sel("spec.restartPolicy=Always").matches(&p));
        assert!(pod_sel("status.podIP=10.0.0.2").matches(&p));
        assert!(
            pod_sel("status.nominatedNodeName=").matches(&p),
            "unset is empty"
        );
        assert!(pod_sel("spec.schedulerName!=x,spec.serviceAccountName=").matches(&p));
        assert_eq!(
            pod_sel("metadata.name=web-n").required("metadata.name"),
            Some("web-n")
        );
        assert_eq!(
            pod_sel("metadata.name!=web-n").required("metadata.name"),
            None
        );
    }

    #[test]
    fn unsupported_fields_are_refused_in_the_api_servers_words() {
        let e = FieldSelector::parse("spec.bogus=1", Pod::FIELDS).expect_err("bogus");
        assert_eq!(e.to_string(), "field label not supported: spec.bogus");
        let e = FieldSelector::parse("status.phase=Running,reason=x", Pod::FIELDS)
            .expect_err("reason is an event field");
        assert_eq!(e.to_string(), "field label not supported: reason");
        assert!(FieldSelector::parse("spec.nodeName=x", Event::FIELDS).is_err());
    }

    #[test]
    fn field_terms_without_an_operator_are_malformed() {
        let e = FieldSelector::parse("status.phase", Pod::FIELDS).expect_err("no op");
        assert_eq!(
            e.to_string(),
            "invalid selector: 'status.phase'; can't understand 'status.phase'"
        );
    }

    #[test]
    fn field_values_may_escape_commas_and_operators() {
        let s =
            FieldSelector::parse(r"reason=a\,b\=c,type!=Normal", Event::FIELDS).expect("escaped");
        assert_eq!(s.terms.len(), 2);
        assert_eq!(s.terms[0].value, "a,b=c");
        assert!(s.terms[1].negate);
    }

    #[test]
    fn event_field_selectors_cover_the_involved_object_and_the_source() {
        let e = Event {
            involved_object: ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: Some("web-n".into()),
                namespace: Some("default".into()),
                uid: Some("u1".into()),
                field_path: Some("spec.containers{a}".into()),
                ..Default::default()
            },
            reason: Some("Started".into()),
            type_: Some("Normal".into()),
            reporting_component: Some("kubelet".into()),
            source: Some(k8s_openapi::api::core::v1::EventSource {
                component: Some("kubelet".into()),
                host: None,
            }),
            ..Default::default()
        };
        let m = |s: &str| {
            FieldSelector::parse(s, Event::FIELDS)
                .unwrap_or_else(|x| panic!("{s}: {x}"))
                .matches(&e)
        };
        assert!(m(
            "involvedObject.name=web-n,involvedObject.namespace=default"
        ));
        assert!(m("involvedObject.uid=u1,involvedObject.kind==Pod"));
        assert!(m(
            "involvedObject.apiVersion=v1,involvedObject.fieldPath=spec.containers{a}"
        ));
        assert!(m("involvedObject.resourceVersion="));
        assert!(m(
            "reason=Started,type!=Warning,source=kubelet,reportingComponent=kubelet"
        ));
        assert!(!m("involvedObject.name=other"));
    }

    #[test]
    fn label_selectors_apply_to_pods_through_their_labels() {
        let p = pod();
        assert!(sel("app=web").matches(p.labels()));
        assert!(!sel("app=doesnotexist").matches(p.labels()));
    }

    fn fields<T: Selectable>(s: &str, o: &T) -> bool {
        FieldSelector::parse(s, T::FIELDS)
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .matches(o)
    }

    fn meta(
        ns: Option<&str>,
        name: &str,
    ) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
        k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(name.into()),
            namespace: ns.map(String::from),
            labels: Some(labels(&[("x", "y")])),
            ..Default::default()
        }
    }

    #[test]
    fn configmaps_select_on_name_namespace_and_labels_only() {
        let cm = ConfigMap {
            metadata: meta(Some("prod"), "settings"),
            ..Default::default()
        };
        assert!(fields(
            "metadata.name=settings,metadata.namespace=prod",
            &cm
        ));
        assert!(!fields("metadata.name!=settings", &cm));
        assert!(sel("x=y").matches(cm.labels()));
        assert!(!sel("x=z").matches(cm.labels()));
        let e = FieldSelector::parse("type=Opaque", ConfigMap::FIELDS).expect_err("no type");
        assert_eq!(e.to_string(), "field label not supported: type");
    }

    #[test]
    fn secrets_select_on_their_type_which_defaults_to_opaque() {
        let mut s = Secret {
            metadata: meta(Some("default"), "token"),
            ..Default::default()
        };
        assert!(fields("type=Opaque,metadata.name=token", &s));
        s.type_ = Some("kubernetes.io/tls".into());
        assert!(fields("type=kubernetes.io/tls", &s));
        assert!(!fields("type=Opaque", &s));
        assert!(sel("x").matches(s.labels()));
        assert!(FieldSelector::parse("data.k=v", Secret::FIELDS).is_err());
    }

    #[test]
    fn nodes_select_on_unschedulable_which_defaults_to_false() {
        let mut n = Node {
            metadata: meta(None, "edge-1"),
            ..Default::default()
        };
        assert!(fields("spec.unschedulable=false,metadata.name=edge-1", &n));
        assert!(fields("metadata.namespace=", &n));
        n.spec = Some(k8s_openapi::api::core::v1::NodeSpec {
            unschedulable: Some(true),
            ..Default::default()
        });
        assert!(fields("spec.unschedulable=true", &n));
        assert!(FieldSelector::parse("status.phase=Ready", Node::FIELDS).is_err());
    }

    #[test]
    fn namespaces_select_on_their_phase() {
        let n = Namespace {
            metadata: meta(None, "prod"),
            status: Some(k8s_openapi::api::core::v1::NamespaceStatus {
                phase: Some("Active".into()),
                conditions: None,
            }),
            ..Default::default()
        };
        assert!(fields("status.phase=Active,metadata.name=prod", &n));
        assert!(!fields("status.phase=Terminating", &n));
        assert!(sel("x in (y)").matches(n.labels()));
        assert!(FieldSelector::parse("spec.unschedulable=false", Namespace::FIELDS).is_err());
    }
}
