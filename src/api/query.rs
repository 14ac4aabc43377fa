//! The list and watch options of a request (`?labelSelector=…&watch=1&…`),
//! parsed and checked as the API server does (pure).
//!
//! Every Kubernetes list/watch option is either honoured or refused with a
//! [`QueryError`] naming it (a `400 BadRequest` `Status`): rkubelet serves
//! only the latest state, so `resourceVersionMatch=Exact`, a `continue`
//! token (it never issues one: `limit` is ignored and every item is listed)
//! and `sendInitialEvents` are refused. Parameters that are no Kubernetes
//! option are ignored, as the API server ignores them.

use std::time::Duration;

use crate::k8s::selector::{FieldSelector, LabelSelector, SelectorError};

/// What a Table row's `object` holds (`?includeObject=`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    #[default]
    Metadata,
    Object,
}

/// The options of a list or watch request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListParams {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub watch: bool,
    pub bookmarks: bool,
    /// The resourceVersion to watch from (`None` for unset or `0`).
    pub resource_version: Option<u64>,
    pub timeout: Option<Duration>,
    pub include_object: IncludeObject,
}

/// A request option rkubelet refuses; the message names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("invalid labelSelector {selector:?}: {error}")]
    LabelSelector {
        selector: String,
        error: SelectorError,
    },
    /// In the API server's words (`field label not supported: X`).
    #[error("{0}")]
    FieldSelector(SelectorError),
    #[error("invalid value {value:?} for {parameter}: {expected}")]
    Invalid {
        parameter: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("{parameter}={value} is not supported by rkubelet: {why}")]
    Unsupported {
        parameter: &'static str,
        value: String,
        why: &'static str,
    },
}

/// The query's `key=value` pairs, percent-decoded.
pub fn pairs(raw: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

/// The API server's boolean syntax (Go's `strconv.ParseBool`); a bare
/// `?watch` is true.
fn boolean(parameter: &'static str, value: &str) -> Result<bool, QueryError> {
    match value {
        "" | "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(QueryError::Invalid {
            parameter,
            value: value.into(),
            expected: "true or false",
        }),
    }
}

fn number(parameter: &'static str, value: &str) -> Result<u64, QueryError> {
    value.parse().map_err(|_| QueryError::Invalid {
        parameter,
        value: value.into(),
        expected: "a non-negative integer",
    })
}

impl ListParams {
    /// Parses a list or watch query for a kind whose `fieldSelector`
    /// supports `fields`.
    ///
    /// Fails on a malformed selector, an unsupported field, a malformed
    /// value, and on options rkubelet does not implement (see the module).
    pub fn parse(raw: Option<&str>, fields: &[&str]) -> Result<ListParams, QueryError> {
        let mut p = ListParams::default();
        let mut rv_match = String::new();
        for (key, value) in pairs(raw) {
            match key.as_str() {
                "labelSelector" => {
                    p.labels =
                        LabelSelector::parse(&value).map_err(|error| QueryError::LabelSelector {
                            selector: value.clone(),
                            error,
                        })?
                }
                "fieldSelector" => {
                    p.fields =
                        FieldSelector::parse(&value, fields).map_err(QueryError::FieldSelector)?
                }
                "watch" => p.watch = boolean("watch", &value)?,
                "allowWatchBookmarks" => p.bookmarks = boolean("allowWatchBookmarks", &value)?,
                "resourceVersion" if value.is_empty() => {}
                "resourceVersion" => {
                    p.resource_version = Some(number("resourceVersion", &value)?).filter(|v| *v > 0)
                }
                "timeoutSeconds" => {
                    p.timeout = Some(Duration::from_secs(number("timeoutSeconds", &value)?))
                }
                "limit" if !value.is_empty() => {
                    // Ignored: every item is listed, with no continue token.
                    number("limit", &value)?;
                }
                "continue" if !value.is_empty() => return Err(QueryError::Unsupported {
                    parameter: "continue",
                    value,
                    why: "it never issues continue tokens (it ignores limit and lists every item)",
                }),
                "sendInitialEvents" if boolean("sendInitialEvents", &value)? => {
                    return Err(QueryError::Unsupported {
                        parameter: "sendInitialEvents",
                        value,
                        why: "list first, then watch from the list's resourceVersion",
                    })
                }
                "resourceVersionMatch" => rv_match = value,
                "includeObject" => {
                    p.include_object = match value.as_str() {
                        "None" => IncludeObject::None,
                        "" | "Metadata" => IncludeObject::Metadata,
                        "Object" => IncludeObject::Object,
                        _ => {
                            return Err(QueryError::Invalid {
                                parameter: "includeObject",
                                value,
                                expected: "None, Metadata or Object",
                            })
                        }
                    }
                }
                // `pretty`, and anything that is no list option, is ignored.
                _ => {}
            }
        }
        match rv_match.as_str() {
            "" => {}
            _ if p.watch => {
                return Err(QueryError::Unsupported {
                    parameter: "resourceVersionMatch",
                    value: rv_match,
                    why: "it is forbidden for watch",
                })
            }
            "NotOlderThan" => {}
            "Exact" => {
                return Err(QueryError::Unsupported {
                    parameter: "resourceVersionMatch",
                    value: rv_match,
                    why: "it serves only the latest state (use NotOlderThan or leave it unset)",
                })
            }
            _ => {
                return Err(QueryError::Invalid {
                    parameter: "resourceVersionMatch",
                    value: rv_match,
                    expected: "NotOlderThan or Exact",
                })
            }
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;

    use crate::k8s::selector::Selectable;

    fn parse(q: &str) -> Result<ListParams, QueryError> {
        ListParams::parse(Some(q), Pod::FIELDS)
    }

    #[test]
    fn an_empty_query_lists_everything() {
        assert_eq!(
            ListParams::parse(None, Pod::FIELDS),
            Ok(ListParams::default())
        );
    }

    #[test]
    fn selectors_are_percent_decoded_and_parsed() {
        let p =
            parse("labelSelector=app%3Dweb%2Cenv+in+%28a%29&fieldSelector=status.phase%3DRunning")
                .expect("valid");
        assert_eq!(p.labels.requirements.len(), 2);
        assert_eq!(p.fields.required("status.phase"), Some("Running"));
    }

    #[test]
    fn watch_options_are_read() {
        let p = parse("watch=1&allowWatchBookmarks=true&resourceVersion=42&timeoutSeconds=5&includeObject=Object")
            .expect("valid");
        assert!(p.watch && p.bookmarks);
        assert_eq!(p.resource_version, Some(42));
        assert_eq!(p.timeout, Some(Duration::from_secs(5)));
        assert_eq!(p.include_object, IncludeObject::Object);
        assert!(parse("watch").expect("bare").watch);
        assert!(!parse("watch=false").expect("false").watch);
        assert_eq!(
            parse("resourceVersion=0").expect("0").resource_version,
            None
        );
    }

    #[test]
    fn limit_is_ignored_and_unknown_parameters_too() {
        assert_eq!(
            parse("limit=500&pretty=true&foo=bar"),
            Ok(ListParams::default())
        );
        assert_eq!(
            parse("resourceVersionMatch=NotOlderThan&resourceVersion=1").map(|p| p.watch),
            Ok(false)
        );
    }

    #[test]
    fn options_rkubelet_does_not_implement_are_refused_by_name() {
        for (q, name) in [
            (
                "resourceVersionMatch=Exact&resourceVersion=1",
                "resourceVersionMatch=Exact",
            ),
            ("continue=abc", "continue=abc"),
            ("sendInitialEvents=true&watch=1", "sendInitialEvents=true"),
            (
                "watch=1&resourceVersionMatch=NotOlderThan",
                "resourceVersionMatch=NotOlderThan",
            ),
        ] {
            let e = parse(q).expect_err(q).to_string();
            assert!(
                e.starts_with(name) && e.contains("not supported"),
                "{q}: {e}"
            );
        }
    }

    #[test]
    fn malformed_values_are_refused_by_name() {
        for (q, name) in [
            ("watch=yes", "watch"),
            ("timeoutSeconds=-1", "timeoutSeconds"),
            ("resourceVersion=abc", "resourceVersion"),
            ("limit=x", "limit"),
            ("includeObject=All", "includeObject"),
            ("resourceVersionMatch=Newest", "resourceVersionMatch"),
        ] {
            let e = parse(q).expect_err(q).to_string();
            assert!(e.contains(name), "{q}: {e}");
        }
        let e = parse("labelSelector=a%3D%3D%3D")
            .expect_err("bad")
            .to_string();
        assert!(
            e.starts_with("invalid labelSelector \"a===\": unable to parse requirement"),
            "{e}"
        );
        let e = parse("fieldSelector=spec.bogus%3D1")
            .expect_err("bad")
            .to_string();
        assert_eq!(e, "field label not supported: spec.bogus");
    }
}
