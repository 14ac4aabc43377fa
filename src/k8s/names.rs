//! Kubernetes' name syntaxes, checked in one place: DNS-1123 labels and
//! subdomains (object names, namespaces, node names), label keys and values,
//! environment variable names and paths that must stay inside a volume.
//!
//! The predicates answer yes or no; callers word their own messages (the
//! API server's field errors in `manifest::validate`, flag errors in
//! `config`). The label checks carry their own message ([`LabelError`]),
//! shared by every caller. Pure.

/// Longest DNS-1123 label (a namespace, a container name).
pub const DNS1123_LABEL_MAX_LEN: usize = 63;
/// Longest DNS-1123 subdomain (an object name, a node name).
pub const DNS1123_SUBDOMAIN_MAX_LEN: usize = 253;

/// DNS-1123 label syntax, ignoring the length limit:
/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`.
pub fn is_dns1123_label_syntax(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// DNS-1123 subdomain syntax, ignoring the length limit: labels joined by `.`.
pub fn is_dns1123_subdomain_syntax(s: &str) -> bool {
    s.split('.').all(is_dns1123_label_syntax)
}

/// Is `s` a DNS-1123 label (syntax and at most 63 characters)?
pub fn is_dns1123_label(s: &str) -> bool {
    s.len() <= DNS1123_LABEL_MAX_LEN && is_dns1123_label_syntax(s)
}

/// Is `s` a DNS-1123 subdomain (syntax and at most 253 characters)?
pub fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= DNS1123_SUBDOMAIN_MAX_LEN && is_dns1123_subdomain_syntax(s)
}

/// A label name part or value: ≤ 63 chars of `[A-Za-z0-9_.-]`, starting and
/// ending alphanumeric (may be empty; a name part must not be).
fn is_label_token(s: &str) -> bool {
    s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && s.bytes().next().is_none_or(|b| b.is_ascii_alphanumeric())
        && s.bytes().last().is_none_or(|b| b.is_ascii_alphanumeric())
}

/// A label key or value Kubernetes would refuse, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    /// The part before `/` is not a DNS subdomain.
    #[error("label key {key:?}: the prefix must be a DNS subdomain (e.g. example.com)")]
    KeyPrefix { key: String },
    /// The part after `/` (or the whole key) is not a label name.
    #[error(
        "label key {key:?}: the name must be 1-63 characters of [A-Za-z0-9_.-], \
         starting and ending with a letter or digit"
    )]
    KeyName { key: String },
    /// The value is not a label value.
    #[error(
        "label {key}={value:?}: the value must be at most 63 characters of [A-Za-z0-9_.-], \
         starting and ending with a letter or digit"
    )]
    Value { key: String, value: String },
}

/// Checks a label key (`[prefix/]name`).
///
/// Fails when the prefix is not a DNS-1123 subdomain or the name is not
/// 1-63 characters of `[A-Za-z0-9_.-]` starting and ending alphanumeric.
pub fn check_label_key(key: &str) -> Result<(), LabelError> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if prefix.is_some_and(|p| !is_dns1123_subdomain(p)) {
        return Err(LabelError::KeyPrefix {
            key: key.to_string(),
        });
    }
    if name.is_empty() || !is_label_token(name) {
        return Err(LabelError::KeyName {
            key: key.to_string(),
        });
    }
    Ok(())
}

/// Checks the value of label `key`.
///
/// Fails when it is longer than 63 characters, has a character outside
/// `[A-Za-z0-9_.-]` or does not start and end alphanumeric.
pub fn check_label_value(key: &str, value: &str) -> Result<(), LabelError> {
    if is_label_token(value) {
        Ok(())
    } else {
        Err(LabelError::Value {
            key: key.to_string(),
            value: value.to_string(),
        })
    }
}

/// Is `name` a C-style environment variable name as the kubelet requires of
/// `envFrom` keys (Kubernetes' `IsEnvVarName`: `[-._a-zA-Z][-._a-zA-Z0-9]*`)?
pub fn is_env_var_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    let ok = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_');
    match bytes.next() {
        Some(first) if ok(first) && !first.is_ascii_digit() => bytes.all(ok),
        _ => false,
    }
}

/// Does `s` consist only of printable ASCII other than `=` (the API server's
/// relaxed rule for `env[].name` and `envFrom[].prefix`)? Empty passes.
pub fn is_relaxed_env_var_name(s: &str) -> bool {
    s.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'=')
}

/// Why `p` cannot be a path below a volume (`subPath`, a volume item's
/// path): absolute or with a `..` component. `None` when it can.
pub fn local_path_problem(p: &str) -> Option<&'static str> {
    if p.starts_with('/') {
        Some("must be a relative path")
    } else if p.split('/').any(|part| part == "..") {
        Some("must not contain '..'")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_labels_are_lower_case_alphanumerics_and_inner_dashes_of_at_most_63() {
        for ok in ["a", "web-1", "1a", &"a".repeat(63)] {
            assert!(is_dns1123_label(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "A", "a_b", "a.b", &"a".repeat(64)] {
            assert!(!is_dns1123_label(bad), "{bad}");
        }
        assert!(is_dns1123_label_syntax(&"a".repeat(64)));
    }

    #[test]
    fn dns_subdomains_are_dot_joined_labels_of_at_most_253() {
        for ok in ["example.com", "node1", "a-1.b-2.c"] {
            assert!(is_dns1123_subdomain(ok), "{ok}");
        }
        for bad in [
            "",
            ".a",
            "a.",
            "a..b",
            "bad_name",
            "Node1",
            &"a".repeat(254),
        ] {
            assert!(!is_dns1123_subdomain(bad), "{bad}");
        }
    }

    #[test]
    fn label_keys_have_an_optional_subdomain_prefix_and_a_token_name() {
        for ok in ["app", "example.com/zone", "a.b_c-d", "A9"] {
            assert_eq!(check_label_key(ok), Ok(()), "{ok}");
        }
        assert!(matches!(
            check_label_key("Bad_Prefix.com/x"),
            Err(LabelError::KeyPrefix { .. })
        ));
        assert!(matches!(
            check_label_key("/x"),
            Err(LabelError::KeyPrefix { .. })
        ));
        for bad in ["", "a b", "-a", "example.com/", &"a".repeat(64)] {
            assert!(
                matches!(check_label_key(bad), Err(LabelError::KeyName { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn label_values_may_be_empty_but_not_malformed() {
        assert_eq!(check_label_value("k", ""), Ok(()));
        assert_eq!(check_label_value("k", "v1.2_x"), Ok(()));
        let e = check_label_value("k", "bad value").expect_err("space");
        assert_eq!(
            e.to_string(),
            "label k=\"bad value\": the value must be at most 63 characters of [A-Za-z0-9_.-], \
             starting and ending with a letter or digit"
        );
        assert!(check_label_value("k", "-dash").is_err());
    }

    #[test]
    fn env_var_names_are_c_identifiers_with_dots_and_dashes() {
        for ok in ["A", "_x", "a.b", "a-b", "X1"] {
            assert!(is_env_var_name(ok), "{ok}");
        }
        for bad in ["", "1A", "a b", "a=b", "é"] {
            assert!(!is_env_var_name(bad), "{bad}");
        }
        assert!(is_relaxed_env_var_name("1 a.b"));
        assert!(!is_relaxed_env_var_name("a=b"));
        assert!(!is_relaxed_env_var_name("tab\t"));
    }

    #[test]
    fn local_paths_must_be_relative_without_dot_dot() {
        assert_eq!(local_path_problem("a/b"), None);
        assert_eq!(local_path_problem("..a"), None);
        assert_eq!(local_path_problem("/a"), Some("must be a relative path"));
        assert_eq!(local_path_problem("a/../b"), Some("must not contain '..'"));
    }
}
