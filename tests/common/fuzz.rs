//! The manifest mutator shared by the in-process fuzzer
//! (`tests/manifest_fuzz.rs`) and the end-to-end one
//! (`tests/e2e_hostile.rs`): one seeded mutation of a good manifest.
//! Included with `#[path]`, not through `common/mod.rs`.

#![allow(dead_code)]

use rkubelet::manifest::limits;

/// One mutation of `seed`, and its name for failure messages.
pub fn mutate(rng: &mut fastrand::Rng, seed: &str) -> (&'static str, Vec<u8>) {
    let mut bytes = seed.as_bytes().to_vec();
    let at = |rng: &mut fastrand::Rng, len: usize| rng.usize(0..=len);
    let kind = rng.usize(0..12);
    let name = match kind {
        0 => {
            for _ in 0..rng.usize(1..8) {
                let i = rng.usize(0..bytes.len());
                bytes[i] ^= 1 << rng.u8(0..8);
            }
            "byte flips"
        }
        1 => {
            bytes.truncate(at(rng, seed.len()));
            "truncation"
        }
        2 => {
            // A value (after ": ") swapped for another type.
            let swaps = [
                "[1, 2]", "{a: b}", "12345", "true", "null", "\"\"", "~", "-1",
            ];
            let colons: Vec<usize> = seed.match_indices(':').map(|(i, _)| i + 1).collect();
            let i = colons[rng.usize(0..colons.len())];
            let i = if seed[i..].starts_with(' ') { i + 1 } else { i };
            let end = seed[i..]
                .find(['\n', ',', '}'])
                .map_or(seed.len(), |e| i + e);
            let swap = swaps[rng.usize(0..swaps.len())];
            bytes = format!("{}{swap}{}", &seed[..i], &seed[end..]).into_bytes();
            "type swap"
        }
        3 => {
            let huge = [
                "99999999999999999999999999999",
                "1e999",
                "-9223372036854775809",
                "18446744073709551616",
                "0x7fffffffffffffff",
                ".inf",
                "-.nan",
                "1Ei",
            ];
            let digits: Vec<usize> = seed
                .match_indices(|c: char| c.is_ascii_digit())
                .map(|(i, _)| i)
                .collect();
            let i = digits[rng.usize(0..digits.len())];
            let end = seed[i..]
                .find(|c: char| !c.is_ascii_alphanumeric())
                .map_or(seed.len(), |e| i + e);
            let h = huge[rng.usize(0..huge.len())];
            bytes = format!("{}{h}{}", &seed[..i], &seed[end..]).into_bytes();
            "huge number"
        }
        4 => {
            for _ in 0..rng.usize(1..5) {
                let i = at(rng, bytes.len());
                let c = [0u8, 7, 8, 0x0b, 0x0c, 0x1b, 0x7f, b'\r', b'\t'][rng.usize(0..9)];
                bytes.insert(i, c);
            }
            "control characters"
        }
        5 => {
            let i = at(rng, bytes.len());
            let bad: &[u8] = [
                &b"\xff"[..],
                b"\xfe\xff",
                b"\xc0\xaf",
                b"\xed\xa0\x80",
                b"\xf4\x90",
            ][rng.usize(0..5)];
            bytes.splice(i..i, bad.iter().copied());
            "invalid UTF-8"
        }
        6 => {
            let lines: Vec<&str> = seed.lines().collect();
            let i = rng.usize(0..lines.len());
            let mut out = lines.clone();
            out.insert(i, lines[i]);
            bytes = (out.join("\n") + "\n").into_bytes();
            "duplicate key (line)"
        }
        7 => {
            let depth = [60, 64, 65, 100, 1000, 100_000][rng.usize(0..6)];
            let i = at(rng, bytes.len());
            let (open, close) = if rng.bool() {
                ("[", "]")
            } else {
                ("{a: ", "}")
            };
            let closed = rng.bool();
            let nest = format!(
                "{}1{}",
                open.repeat(depth),
                if closed {
                    close.repeat(depth)
                } else {
                    String::new()
                }
            );
            bytes.splice(i..i, nest.bytes());
            "deep nesting"
        }
        8 => {
            let mut bomb = String::from("x: &a [\"lol\", \"lol\"]\n");
            for (j, c) in "bcdefghij".chars().enumerate().take(rng.usize(3..9)) {
                let prev = (b'a' + j as u8) as char;
                bomb.push_str(&format!(
                    "{c}: &{c} [{}]\n",
                    vec![format!("*{prev}"); 9].join(",")
                ));
            }
            bytes = format!("{seed}---\n{bomb}").into_bytes();
            "alias bomb"
        }
        9 => {
            // Multi-MB: a big scalar, or many small nodes, around the limit.
            let size = [
                limits::MAX_BYTES - 4096,
                limits::MAX_BYTES + 1,
                2 * 1024 * 1024,
            ][rng.usize(0..3)];
            let filler = if rng.bool() {
                format!("  big: \"{}\"\n", "x".repeat(size))
            } else {
                "  - a\n".repeat(size / 6)
            };
            bytes = format!("{seed}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: huge}}\ndata:\n{filler}")
                .into_bytes();
            "multi-MB"
        }
        10 => {
            // A random slice of another part of the text spliced in.
            let a = rng.usize(0..seed.len());
            let b = rng.usize(a..=seed.len());
            let i = at(rng, bytes.len());
            let piece = seed.as_bytes()[a..b].to_vec();
            bytes.splice(i..i, piece);
            "splice"
        }
        _ => {
            let tokens = [
                "---\n",
                "&x ",
                "*x",
                "<<: ",
                "!!binary ",
                "? ",
                "|\n",
                "'",
                "\"",
                "#",
                "%YAML 1.1\n",
                "...\n",
            ];
            for _ in 0..rng.usize(1..4) {
                let i = at(rng, bytes.len());
                let t = tokens[rng.usize(0..tokens.len())];
                bytes.splice(i..i, t.bytes());
            }
            "YAML tokens"
        }
    };
    (name, bytes)
}
