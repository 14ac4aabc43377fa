//! A bounded, seeded manifest fuzzer over the real parse + validate path
//! (`rkubelet::manifest::load`, as the file and URL sources call it).
//!
//! A few hundred mutations of good manifests — byte flips, truncation,
//! type swaps, huge numbers, control characters, invalid UTF-8, duplicate
//! keys, deep nesting, alias bombs, multi-MB files — each must load or be
//! refused with an error that names the file; none may panic. The PRNG is
//! seeded, so a failure names a case that replays the same way.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use rkubelet::manifest::{limits, load, LoadContext, ManifestError, Origin};

#[path = "common/fuzz.rs"]
mod fuzz;
use fuzz::mutate;

const LOCATION: &str = "/etc/kubelet.d/fuzzed.yaml";
const SEED: u64 = 0x12a_5eed;
const CASES: usize = 400;

const POD: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  terminationGracePeriodSeconds: 5
  containers:
  - name: app
    image: busybox:1.36
    command: ["sh", "-c", "sleep 3600"]
    ports: [{containerPort: 8080, hostPort: 18080}]
    env: [{name: A, value: "1"}]
    resources: {limits: {cpu: 500m, memory: 64Mi}}
    livenessProbe: {tcpSocket: {port: 8080}, periodSeconds: 5}
  volumes:
  - {name: data, emptyDir: {}}
"#;

const OBJECTS: &str = r#"apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {a.conf: "x = 1"}
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
stringData: {password: hunter2}
data: {token: dG9rZW4=}
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: listed}
  spec:
    containers:
    - &c {name: a, image: busybox}
    - <<: *c
      name: b
"#;

const JSON: &str = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"j"},"spec":{"containers":[{"name":"c","image":"busybox","args":["1","2"]}]}}"#;

fn load_bytes(content: &[u8]) -> Result<usize, ManifestError> {
    let origin = Origin::file(LOCATION);
    let ctx = LoadContext {
        node_name: "fuzz-node",
        origin: &origin,
        now: k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
    };
    load(content, &ctx).map(|l| l.pods.len() + l.configmaps.len() + l.secrets.len())
}

#[test]
fn mutated_manifests_load_or_name_the_file_and_never_panic() {
    // The seeds are good to begin with.
    for seed in [POD, OBJECTS, JSON] {
        let n = load_bytes(seed.as_bytes()).unwrap_or_else(|e| panic!("seed: {e}"));
        assert!(n > 0);
    }
    let mut rng = fastrand::Rng::with_seed(SEED);
    let started = Instant::now();
    let (mut ok, mut refused, mut slowest) = (0, 0, (Duration::ZERO, ""));
    for case in 0..CASES {
        let seed = [POD, OBJECTS, JSON][rng.usize(0..3)];
        let (kind, bytes) = mutate(&mut rng, seed);
        let t = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| load_bytes(&bytes)));
        let took = t.elapsed();
        if took > slowest.0 {
            slowest = (took, kind);
        }
        let shown = || String::from_utf8_lossy(&bytes[..bytes.len().min(600)]).into_owned();
        match outcome {
            Err(_) => panic!("case {case} ({kind}) panicked on:\n{}", shown()),
            Ok(Ok(_)) => ok += 1,
            Ok(Err(e)) => {
                refused += 1;
                assert_eq!(e.location, LOCATION, "case {case} ({kind}): {e}");
                let text = e.to_string();
                assert!(
                    text.starts_with(LOCATION) && text.len() > LOCATION.len() + 2,
                    "case {case} ({kind}): {text}"
                );
                assert!(
                    !text.contains("hunter2"),
                    "case {case} ({kind}) shows a Secret value: {text}"
                );
            }
        }
        assert!(
            took < Duration::from_secs(10),
            "case {case} ({kind}) took {took:?}"
        );
    }
    let total = started.elapsed();
    eprintln!(
        "{CASES} cases in {total:?}: {ok} loaded, {refused} refused; slowest {:?} ({})",
        slowest.0, slowest.1
    );
    assert!(
        ok > 0 && refused > CASES / 4,
        "{ok} loaded, {refused} refused"
    );
    assert!(total < Duration::from_secs(60), "took {total:?}");
}

#[test]
fn each_limit_is_named_in_its_error() {
    let deep = format!("a: {}", "[".repeat(limits::MAX_DEPTH + 1));
    let e = load_bytes(deep.as_bytes()).expect_err("deep");
    assert!(
        e.to_string().contains("nested deeper than 64 levels"),
        "{e}"
    );
    let big = vec![b'#'; limits::MAX_BYTES + 1];
    let e = load_bytes(&big).expect_err("big");
    assert!(
        e.to_string().contains("larger than the limit of 4 MiB"),
        "{e}"
    );
    let many = "- a\n".repeat(limits::MAX_NODES + 1);
    let e = load_bytes(many.as_bytes()).expect_err("many");
    assert!(e.to_string().contains("more than 50000 nodes"), "{e}");
}

#[test]
fn hostile_shapes_are_refused_or_loaded_at_bounded_cost() {
    let near = limits::MAX_BYTES - 1024;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty documents", "---\n".repeat(near / 4).into_bytes()),
        (
            "tiny documents",
            "a: b\n---\n".repeat(near / 9).into_bytes(),
        ),
        (
            "one long line",
            format!("a: {}", "x".repeat(near)).into_bytes(),
        ),
        (
            "one long key",
            format!("{}: 1", "k".repeat(near)).into_bytes(),
        ),
        (
            "deep block nesting",
            (0..2000)
                .map(|i| format!("{}k:\n", " ".repeat(i)))
                .collect::<String>()
                .into_bytes(),
        ),
        (
            "deep flow, closed",
            format!("{}{}", "[".repeat(near / 2), "]".repeat(near / 2)).into_bytes(),
        ),
        ("deep mappings", "{a: ".repeat(near / 4).into_bytes()),
        ("complex keys", "? [".repeat(near / 3).into_bytes()),
        (
            "many anchors",
            (0..40_000)
                .map(|i| format!("- &a{i} x\n"))
                .collect::<String>()
                .into_bytes(),
        ),
        ("aliases of a big map", {
            let mut t = String::from("base: &b {");
            t.push_str(
                &(0..2000)
                    .map(|i| format!("k{i}: v"))
                    .collect::<Vec<_>>()
                    .join(", "),
            );
            t.push_str("}\nlist:\n");
            t.push_str(&"- *b\n".repeat(100));
            t.into_bytes()
        }),
        ("merge keys of a big map", {
            let mut t = String::from("base: &b {");
            t.push_str(
                &(0..2000)
                    .map(|i| format!("k{i}: v"))
                    .collect::<Vec<_>>()
                    .join(", "),
            );
            t.push_str("}\nlist:\n");
            t.push_str(&"- {<<: *b, z: 1}\n".repeat(100));
            t.into_bytes()
        }),
        (
            "binary tag",
            format!("a: !!binary {}", "QUJD".repeat(near / 4)).into_bytes(),
        ),
        ("NUL bytes", vec![0u8; near]),
        ("invalid UTF-8", vec![0xffu8; near]),
    ];
    for (what, bytes) in cases {
        let t = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| load_bytes(&bytes)));
        let took = t.elapsed();
        let shown = match &outcome {
            Err(_) => panic!("{what}: panicked"),
            Ok(Ok(n)) => format!("loaded {n}"),
            Ok(Err(e)) => {
                assert_eq!(e.location, LOCATION, "{what}: {e}");
                e.to_string().chars().take(160).collect()
            }
        };
        eprintln!("{what}: {took:?}: {shown}");
        assert!(took < Duration::from_secs(5), "{what} took {took:?}");
    }
}
