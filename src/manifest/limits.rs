//! Input limits on manifests: what a real manifest never meets and an attack
//! always does.
//!
//! Owns the numbers ([`MAX_BYTES`], [`MAX_DEPTH`], [`MAX_NODES`],
//! [`MAX_ALIAS_NODES`], [`MAX_ALIAS_BYTES`]) and [`check`], a cheap pre-scan
//! run before the real parse: a streaming YAML event parser (saphyr) that
//! counts nesting, nodes and what aliases would expand to, and stops at the
//! first limit passed, so a hostile file costs a bounded amount of time and
//! memory instead of what the full parser (which builds a tree and expands
//! every alias) would spend on it. JSON is YAML, so JSON manifests are
//! checked the same way.
//!
//! It does not parse into objects (that is [`super::parse`]) and reads
//! nothing: the file and URL sources enforce [`MAX_BYTES`] while reading,
//! and [`super::parse::parse_documents`] enforces it again on what it is
//! given.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser};

use super::ManifestError;

/// Largest manifest accepted, from a file or the URL: 4 MiB. The API
/// server takes at most 3 MiB in one request (and etcd 1.5 MiB per
/// object), so no manifest a cluster would accept comes near it.
pub const MAX_BYTES: usize = 4 * 1024 * 1024;
/// Deepest nesting of mappings and sequences. The deepest field of a Pod
/// sits about 10 levels down.
pub const MAX_DEPTH: usize = 64;
/// Most nodes (scalars, mappings, sequences, aliases expanded) in one
/// manifest. A large Pod has a few hundred; a List of 100 of them fits.
pub const MAX_NODES: usize = 50_000;
/// Most nodes that aliases (`*name`, and `<<: *name` merge keys) may add
/// to a manifest by expansion.
pub const MAX_ALIAS_NODES: usize = 10_000;
/// Most scalar text that aliases may add to a manifest by expansion.
pub const MAX_ALIAS_BYTES: usize = 1024 * 1024;

/// Human sizes for messages: `4 MiB`, `512 KiB`, `100 bytes`.
pub fn human_bytes(n: usize) -> String {
    const KIB: usize = 1024;
    const MIB: usize = 1024 * 1024;
    if n >= MIB && n % MIB == 0 {
        format!("{} MiB", n / MIB)
    } else if n >= KIB && n % KIB == 0 {
        format!("{} KiB", n / KIB)
    } else {
        format!("{n} bytes")
    }
}

/// The error for a manifest of `len` bytes (or more) when it is larger
/// than [`MAX_BYTES`]: `None` when it fits.
pub fn check_size(len: usize, location: &str) -> Option<ManifestError> {
    (len > MAX_BYTES).then(|| too_big(location))
}

/// The error for a manifest larger than [`MAX_BYTES`].
pub fn too_big(location: &str) -> ManifestError {
    ManifestError::new(
        location,
        format!(
            "manifest is larger than the limit of {} (split it into several files)",
            human_bytes(MAX_BYTES)
        ),
    )
}

/// What an anchored node amounts to once expanded.
#[derive(Debug, Clone, Copy, Default)]
struct Size {
    nodes: usize,
    bytes: usize,
}

/// A mapping or sequence being read: its anchor and the totals when it
/// started.
#[derive(Debug, Clone, Copy)]
struct Open {
    anchor: usize,
    at: Size,
}

/// Checks `text` against the limits without building it.
///
/// Fails, naming `location`, the document, the line and the limit, when
/// the nesting is deeper than [`MAX_DEPTH`], the manifest has more than
/// [`MAX_NODES`] nodes, or its aliases would expand to more than
/// [`MAX_ALIAS_NODES`] nodes or [`MAX_ALIAS_BYTES`] of text. A syntax
/// error is not this check's to report (the real parser says it better),
/// except that flow brackets nested deeper than the limit are still
/// refused: the real parser is slow on them.
pub fn check(text: &str, location: &str) -> Result<(), ManifestError> {
    let mut document = 0usize;
    let mut open: Vec<Open> = Vec::new();
    // Totals with aliases expanded, and what aliases added.
    let mut total = Size::default();
    let mut aliased = Size::default();
    let mut anchors: HashMap<usize, Size> = HashMap::new();
    for item in Parser::new_from_str(text) {
        let (event, span) = match item {
            Ok(ev) => ev,
            Err(e) if e.info().contains("recursion limit") => {
                let mut err = deeper(location, document.max(1));
                err.line = Some(e.marker().line());
                err.column = Some(e.marker().col() + 1);
                return Err(err);
            }
            // A syntax error: the real parser reports it, unless brackets
            // alone nest too deep.
            Err(_) => return flow_depth(text, location),
        };
        let at = |mut err: ManifestError| {
            err.line = Some(span.start.line());
            err.column = Some(span.start.col() + 1);
            err
        };
        match event {
            Event::DocumentStart(_) => {
                document += 1;
                anchors.clear();
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                total.nodes += 1;
                open.push(Open { anchor, at: total });
                if open.len() > MAX_DEPTH {
                    return Err(at(deeper(location, document)));
                }
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some(o) = open.pop() {
                    if o.anchor != 0 {
                        let size = Size {
                            nodes: total.nodes - o.at.nodes + 1,
                            bytes: total.bytes - o.at.bytes,
                        };
                        anchors.insert(o.anchor, size);
                    }
                }
            }
            Event::Scalar(value, _, anchor, _) => {
                total.nodes += 1;
                total.bytes += value.len();
                if anchor != 0 {
                    anchors.insert(
                        anchor,
                        Size {
                            nodes: 1,
                            bytes: value.len(),
                        },
                    );
                }
            }
            Event::Alias(anchor) => {
                // An alias of an anchor still open (a cycle) is an error
                // for the real parser; count it as one node.
                let size = anchors
                    .get(&anchor)
                    .copied()
                    .unwrap_or(Size { nodes: 1, bytes: 0 });
                total.nodes += size.nodes;
                total.bytes += size.bytes;
                aliased.nodes += size.nodes;
                aliased.bytes += size.bytes;
                if aliased.nodes > MAX_ALIAS_NODES {
                    return Err(at(limit(
                        location,
                        document,
                        format!(
                            "aliases expand to more than {MAX_ALIAS_NODES} nodes (the limit for manifests; write the values out instead)"
                        ),
                    )));
                }
                if aliased.bytes > MAX_ALIAS_BYTES {
                    return Err(at(limit(
                        location,
                        document,
                        format!(
                            "aliases expand to more than {} of text (the limit for manifests; write the values out instead)",
                            human_bytes(MAX_ALIAS_BYTES)
                        ),
                    )));
                }
            }
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
        }
        if total.nodes > MAX_NODES {
            return Err(at(limit(
                location,
                document,
                format!(
                    "more than {MAX_NODES} nodes (the limit for manifests; split it into several files)"
                ),
            )));
        }
    }
    Ok(())
}

fn limit(location: &str, document: usize, reason: String) -> ManifestError {
    let mut err = ManifestError::new(location, reason);
    err.document = Some(document.max(1));
    err
}

fn deeper(location: &str, document: usize) -> ManifestError {
    limit(
        location,
        document,
        format!("nested deeper than {MAX_DEPTH} levels (the limit for manifests)"),
    )
}

/// For text that is not valid YAML: refuses flow brackets (`[`, `{`)
/// nested deeper than [`MAX_DEPTH`], counted outside quotes and comments.
/// It may overcount brackets inside plain text, which only matters for a
/// file that is invalid anyway.
fn flow_depth(text: &str, location: &str) -> Result<(), ManifestError> {
    let mut depth = 0usize;
    let mut line = 1usize;
    let mut quote: Option<u8> = None;
    let mut comment = false;
    let mut prev = b'\n';
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\n' {
            line += 1;
            comment = false;
        }
        match (quote, b) {
            (_, _) if comment => {}
            (Some(b'"'), b'\\') => i += 1,
            (Some(q), _) if b == q => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'') if prev.is_ascii_whitespace() || b"[{,:".contains(&prev) => {
                quote = Some(b)
            }
            (None, b'#') if prev.is_ascii_whitespace() => comment = true,
            (None, b'[' | b'{') => {
                depth += 1;
                if depth > MAX_DEPTH {
                    let mut err = deeper(location, 1);
                    err.document = None;
                    err.line = Some(line);
                    return Err(err);
                }
            }
            (None, b']' | b'}') => depth = depth.saturating_sub(1),
            (None, _) => {}
        }
        prev = b;
        i += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOC: &str = "/etc/kubelet.d/x.yaml";

    fn refused(text: &str) -> ManifestError {
        check(text, LOC).expect_err("refused")
    }

    #[test]
    fn real_manifests_pass() {
        let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers:\n  - &base {name: a, image: busybox, env: [{name: X, value: \"1\"}]}\n  - <<: *base\n    name: b\n";
        check(pod, LOC).expect("a pod with a merge key");
        check("", LOC).expect("empty");
        check("{\"a\": [1, {\"b\": 2}]}", LOC).expect("json");
        let deep_ok = format!("{}1{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        check(&deep_ok, LOC).expect("exactly the limit");
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_refused_with_its_line() {
        let e = refused(&format!("a: 1\nb: {}", "[".repeat(MAX_DEPTH + 1)));
        assert!(e.reason.contains("nested deeper than 64 levels"), "{e}");
        assert_eq!(e.line, Some(2), "{e:?}");
        assert!(e.to_string().starts_with(LOC), "{e}");
        // Unclosed, as in the 97 KiB file that took 30 s to parse.
        let e = refused(&"[".repeat(97 * 1024));
        assert!(e.reason.contains("nested deeper"), "{e}");
        // Block nesting counts too.
        let block: String = (0..MAX_DEPTH + 1)
            .map(|i| format!("{}k:\n", "  ".repeat(i)))
            .collect();
        let e = refused(&block);
        assert!(e.reason.contains("nested deeper"), "{e}");
        // In a second document.
        let e = refused(&format!("a: 1\n---\nb: {}", "{x: ".repeat(MAX_DEPTH + 1)));
        assert_eq!(e.document, Some(2), "{e:?}");
    }

    #[test]
    fn deep_brackets_in_an_invalid_file_are_still_refused() {
        // Not YAML (a tab-indented key after a flow start), then brackets.
        let text = format!("a: [\n\t: ]]] {}", "[".repeat(MAX_DEPTH + 1));
        let e = refused(&text);
        assert!(e.reason.contains("nested deeper"), "{e}");
        // Brackets inside quotes and comments do not count.
        let quoted = format!(
            "a: ]]] ::\n'{}' # {}",
            "[".repeat(MAX_DEPTH + 1),
            "{".repeat(MAX_DEPTH + 1)
        );
        check(&quoted, LOC).expect("quoted brackets are text");
    }

    #[test]
    fn an_alias_bomb_is_refused_before_it_expands() {
        // Nine levels of nine aliases: 9^9 nodes once expanded, 1 KiB written.
        let mut bomb = String::from("a: &a [\"lol\"]\n");
        for (i, c) in "bcdefghi".chars().enumerate() {
            let prev = (b'a' + i as u8) as char;
            bomb.push_str(&format!(
                "{c}: &{c} [{}]\n",
                vec![format!("*{prev}"); 9].join(",")
            ));
        }
        let e = refused(&bomb);
        assert!(
            e.reason.contains("aliases expand to more than 10000 nodes"),
            "{e}"
        );
        assert_eq!(e.document, Some(1));
        assert!(e.line.is_some(), "{e:?}");
    }

    #[test]
    fn aliases_of_long_text_are_limited_by_bytes() {
        let long = "x".repeat(64 * 1024);
        let text = format!("a: &a {long}\nb: [{}]\n", ["*a"; 20].join(","));
        let e = refused(&text);
        assert!(
            e.reason
                .contains("aliases expand to more than 1 MiB of text"),
            "{e}"
        );
        let ok = format!("a: &a {long}\nb: [{}]\n", ["*a"; 10].join(","));
        check(&ok, LOC).expect("640 KiB of aliased text is fine");
    }

    #[test]
    fn too_many_nodes_are_refused() {
        let text = "- a\n".repeat(MAX_NODES + 1);
        let e = refused(&text);
        assert!(e.reason.contains("more than 50000 nodes"), "{e}");
        check(&"- a\n".repeat(MAX_NODES - 1), LOC).expect("one sequence under the limit");
    }

    #[test]
    fn sizes_are_checked_and_shown_in_mebibytes() {
        assert!(check_size(MAX_BYTES, LOC).is_none());
        let e = check_size(MAX_BYTES + 1, LOC).expect("too big");
        assert_eq!(
            e.to_string(),
            format!(
                "{LOC}: manifest is larger than the limit of 4 MiB (split it into several files)"
            )
        );
        assert_eq!(human_bytes(512 * 1024), "512 KiB");
        assert_eq!(human_bytes(100), "100 bytes");
    }
}
