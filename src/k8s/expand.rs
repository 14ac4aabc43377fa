//! Kubernetes `$(VAR)` expansion for `command`, `args`, `env` and `subPathExpr`.
//!
//! Owns exactly the Kubernetes semantics (the kubelet's fork of Go's
//! `os.Expand`): `$(NAME)` is replaced when `NAME` is defined, left as
//! written when it is not; `$$` is an escaped `$`; a `$` followed by any
//! other character, an unterminated `$(` and a trailing `$` stay as they are.
//! Expansion is a single pass: substituted values are never expanded again.
//! It does not decide which variables are defined; callers pass a lookup.

/// Expands `$(VAR)` references in `input` using `lookup`.
pub fn expand<'a>(input: &str, lookup: impl Fn(&str) -> Option<&'a str>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        match after.as_bytes().first() {
            // A trailing `$` is kept.
            None => {
                out.push('$');
                rest = after;
            }
            // `$$` is an escaped `$`.
            Some(b'$') => {
                out.push('$');
                rest = &after[1..];
            }
            Some(b'(') => match after.find(')') {
                Some(close) => {
                    let name = &after[1..close];
                    match lookup(name) {
                        Some(value) => out.push_str(value),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &after[close + 1..];
                }
                // Unterminated: keep `$(` and go on scanning after it.
                None => {
                    out.push_str("$(");
                    rest = &after[1..];
                }
            },
            // `$x`: kept as written; `x` is scanned normally (it is not `$`).
            Some(_) => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn vars() -> HashMap<&'static str, &'static str> {
        HashMap::from([
            ("VAR_A", "A"),
            ("VAR_B", "B"),
            ("VAR_C", "C"),
            ("VAR_REF", "$(VAR_A)"),
            ("VAR_EMPTY", ""),
        ])
    }

    fn ex(input: &str) -> String {
        let v = vars();
        expand(input, |n| v.get(n).copied())
    }

    #[test]
    fn the_kubernetes_expansion_table_holds() {
        let cases = [
            ("$(VAR_A)", "A"),
            ("___$(VAR_B)___", "___B___"),
            ("$(VAR_A)-$(VAR_A)", "A-A"),
            ("$(VAR_A)$(VAR_B)$(VAR_C)", "ABC"),
            ("f000-$$VAR_A", "f000-$VAR_A"),
            ("foo\\$(VAR_C)bar", "foo\\Cbar"),
            ("foo\\\\$(VAR_C)bar", "foo\\\\Cbar"),
            ("$(VAR_EMPTY)", ""),
            ("$(VAR_DNE)", "$(VAR_DNE)"),
            ("$$(VAR_A)", "$(VAR_A)"),
            ("$$$(VAR_A)", "$A"),
            ("$$$$(VAR_A)", "$$(VAR_A)"),
            ("$(VAR_A", "$(VAR_A"),
            ("$(VAR_A$(VAR_B)", "$(VAR_A$(VAR_B)"),
            ("$(VAR_A$(VAR_B))", "$(VAR_A$(VAR_B))"),
            ("$(VAR_A$(VAR_B) $(VAR_C)", "$(VAR_A$(VAR_B) C"),
            ("$VAR_A", "$VAR_A"),
            ("$", "$"),
            ("foo$", "foo$"),
            ("$$", "$"),
            ("$()", "$()"),
            ("$(", "$("),
            ("$)", "$)"),
            ("", ""),
            ("no refs", "no refs"),
            ("héllo $(VAR_A) wörld $ü", "héllo A wörld $ü"),
        ];
        for (input, want) in cases {
            assert_eq!(ex(input), want, "input {input:?}");
        }
    }

    #[test]
    fn substituted_values_are_not_expanded_again() {
        assert_eq!(ex("$(VAR_REF)"), "$(VAR_A)");
    }
}
