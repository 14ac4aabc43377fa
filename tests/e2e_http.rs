//! End-to-end: the manifest URL source, file + URL together, node admission
//! and `rkubelet validate` — the real binary, a real HTTP server on loopback
//! and the real Docker daemon.

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use common::daemon::{wait_until, Ctr, Daemon, DockerEvents, Opts, IMAGE};
use common::manifest_server::ManifestServer;
use serde_json::Value;

/// How long a step that normally takes a second may take on a loaded CI box.
const PATIENCE: Duration = Duration::from_secs(30);
const SECS30: Duration = Duration::from_secs(30);

/// A one-container pod that stops promptly on SIGTERM; `x` changes its content.
fn pod(name: &str, x: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: app
    image: {IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    env: [{{name: X, value: "{x}"}}]
"#
    )
}

/// `pod(name, x)` with extra lines inserted under `spec:`.
fn pod_with_spec(name: &str, spec_lines: &str) -> String {
    pod(name, "1").replace("spec:\n", &format!("spec:\n{spec_lines}"))
}

fn daemon_for(server: &ManifestServer, extra: &[&str]) -> Daemon {
    let mut opts = Opts::default();
    opts.extra_args.extend(
        [
            "--manifest-url",
            &server.url(),
            "--http-check-frequency",
            "300ms",
            "--http-timeout",
            "1s",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    opts.extra_args.extend(extra.iter().map(|s| s.to_string()));
    Daemon::start_with(opts)
}

fn ids(cs: &[Ctr]) -> BTreeSet<String> {
    cs.iter().map(|c| c.id.clone()).collect()
}

/// `/manifests` errors as strings.
fn manifest_errors(d: &Daemon) -> Vec<String> {
    let v = d.get_json("/manifests");
    v["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e.as_str().map(String::from))
        .collect()
}

#[test]
fn url_pods_appear_change_with_the_old_one_stopped_first_and_disappear_and_an_identical_body_restarts_nothing(
) {
    let server = ManifestServer::start();
    server.serve(pod("remote", "1"));
    let d = daemon_for(&server, &[]);
    let old = d.wait_running("remote", &["app"], SECS30);
    let old_uid = old[0].uid().to_string();
    assert_eq!(
        old[0].label("io.rkubelet.source"),
        format!("url:{}", server.url())
    );
    let api = wait_until("pod in /pods", PATIENCE, || d.api_pod("remote"));
    assert_eq!(
        api["metadata"]["annotations"]["kubernetes.io/config.source"],
        "http"
    );

    // The same body, fetched several more times: nothing restarts.
    server.wait_more_hits(4, SECS30);
    assert_eq!(ids(&old), ids(&d.pod_containers("remote")));

    // A changed body: a new UID, started only after the old pod stopped.
    let mut events = DockerEvents::start(&d.node);
    server.serve(pod("remote", "2"));
    let new = wait_until("the new pod running", SECS30, || {
        let fresh: Vec<Ctr> = d
            .pod_containers("remote")
            .into_iter()
            .filter(|c| c.uid() != old_uid)
            .collect();
        let up = |n: &str| fresh.iter().any(|c| c.cname() == n && c.running);
        (up("POD") && up("app")).then_some(fresh)
    });
    let new_uid = new[0].uid().to_string();
    d.wait_gone_uid(&old_uid);
    let lines = events.all().to_vec();
    drop(events);
    let last_old_stop = lines
        .iter()
        .filter(|e| e.uid == old_uid && (e.action == "die" || e.action == "destroy"))
        .map(|e| e.nanos)
        .max()
        .expect("the old pod's containers died");
    let first_new = lines
        .iter()
        .filter(|e| e.uid == new_uid && (e.action == "create" || e.action == "start"))
        .map(|e| e.nanos)
        .min()
        .expect("the new pod's containers were created");
    assert!(
        last_old_stop < first_new,
        "old and new overlapped: {lines:?}"
    );

    // A second pod added to the body, then an empty 200 removes them all.
    server.serve(format!("{}---\n{}", pod("remote", "2"), pod("second", "1")));
    d.wait_running("second", &["app"], SECS30);
    assert!(d
        .pod_containers("remote")
        .iter()
        .all(|c| c.uid() == new_uid));
    server.serve("");
    d.wait_gone("remote", SECS30);
    d.wait_gone("second", SECS30);
    assert!(manifest_errors(&d).is_empty(), "{:?}", manifest_errors(&d));
}

#[test]
fn server_errors_timeouts_garbage_and_oversize_bodies_keep_the_previous_url_pods_running() {
    let server = ManifestServer::start();
    server.serve(pod("sturdy", "1"));
    let d = daemon_for(&server, &[]);
    let before = d.wait_running("sturdy", &["app"], SECS30);
    let url = server.url();

    let check_kept = |what: &str, expect_in_error: &str| {
        // Several fetches with the failure; the pod must not move.
        server.wait_more_hits(3, SECS30);
        let now = d.pod_containers("sturdy");
        assert_eq!(ids(&before), ids(&now), "{what}: the pod was touched");
        assert!(now.iter().all(|c| c.running), "{what}: not running");
        let errors = wait_until(&format!("{what} reported"), PATIENCE, || {
            let e = manifest_errors(&d);
            e.iter()
                .any(|e| e.starts_with(&url) && e.contains(expect_in_error))
                .then_some(e)
        });
        assert!(!errors.is_empty());
        let health = d.get("/healthz?verbose").expect("healthz");
        assert!(
            health.contains("[!]source-http") && health.contains(&url),
            "{what}: {health}"
        );
        assert_eq!(d.get("/healthz").expect("healthz"), "ok", "{what}");
    };

    server.status(500);
    check_kept("a 500", "500");

    server.status(200);
    server.delay(Duration::from_millis(1500)); // > --http-timeout 1s
    check_kept("a timeout", "within");
    server.delay(Duration::ZERO);

    server.serve("kind: Pod\nmetadata: [this is: not a pod\n");
    check_kept("garbage", "");

    // 5 MiB, once: the limit is 4 MiB, as for files.
    server.serve(vec![b'#'; 5 * 1024 * 1024]);
    check_kept("an oversize body", "larger than the limit of 4 MiB");

    // Recovery with the same pod: still nothing restarts; the error clears.
    server.serve(pod("sturdy", "1"));
    wait_until("the error cleared", SECS30, || {
        manifest_errors(&d).is_empty().then_some(())
    });
    assert_eq!(ids(&before), ids(&d.pod_containers("sturdy")));
    assert!(
        d.log().contains("manifest URL answers again"),
        "{}",
        d.log()
    );

    // Each distinct failure is an event on the node.
    let events = d.get_json("/api/v1/events");
    let failed_events: Vec<&Value> = events["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["reason"] == "ManifestURLFailed")
        .collect();
    assert!(
        failed_events.len() >= 4
            && failed_events
                .iter()
                .all(|e| e["message"].as_str().is_some_and(|m| m.contains(&url))),
        "{events}"
    );

    assert!(
        !events["items"].as_array().into_iter().flatten().any(|e| {
            e["reason"] == "FailedValidation"
                && e["message"].as_str().is_some_and(|m| m.starts_with(&url))
        }),
        "URL problems are ManifestURLFailed events, not FailedValidation: {events}"
    );

    // The repeated failures were not logged on every fetch.
    let failures = d.log().matches("manifest URL failed").count();
    assert!(
        failures <= 6,
        "{failures} failure lines for 4 distinct errors"
    );

    // An empty 200 removes the URL's pods.
    server.serve("");
    d.wait_gone("sturdy", SECS30);
}

#[test]
fn custom_headers_reach_the_server_and_an_etag_is_answered_with_304_without_restarts() {
    let server = ManifestServer::start();
    server.etag(Some("\"rev-1\""));
    server.serve(pod("tagged", "1"));
    let d = daemon_for(
        &server,
        &[
            "--manifest-url-header",
            "Authorization: Bearer s3cret",
            "--manifest-url-header",
            "X-Multi: one",
            "--manifest-url-header",
            "X-Multi: two",
        ],
    );
    let first = d.wait_running("tagged", &["app"], SECS30);
    server.wait_more_hits(3, SECS30);
    assert_eq!(server.last_header("authorization"), vec!["Bearer s3cret"]);
    assert_eq!(server.last_header("x-multi"), vec!["one", "two"]);
    assert_eq!(server.last_header("if-none-match"), vec!["\"rev-1\""]);
    assert!(server.not_modified() >= 2, "{}", server.not_modified());
    assert_eq!(ids(&first), ids(&d.pod_containers("tagged")));

    // A new revision is picked up.
    server.etag(Some("\"rev-2\""));
    server.serve(pod("tagged", "2"));
    let old_uid = first[0].uid().to_string();
    wait_until("the new revision running", SECS30, || {
        let cs = d.pod_containers("tagged");
        cs.iter()
            .any(|c| c.uid() != old_uid && c.cname() == "app" && c.running)
            .then_some(())
    });
}

#[test]
fn file_and_url_pods_run_together_and_a_name_conflict_rejects_the_url_pod_naming_both_origins() {
    let server = ManifestServer::start();
    let d = daemon_for(&server, &[]);
    d.write("shared.yaml", &pod("shared", "file"));
    let shared = d.wait_running("shared", &["app"], SECS30);
    // The URL then defines the same name, and another pod.
    server.serve(format!("{}---\n{}", pod("shared", "url"), pod("api", "1")));
    d.wait_running("api", &["app"], SECS30);
    let file = d.manifest_dir().join("shared.yaml").display().to_string();
    let conflict = wait_until("the conflict reported", PATIENCE, || {
        let v = d.get_json("/manifests");
        v["conflicts"]
            .as_array()?
            .iter()
            .filter_map(Value::as_str)
            .find(|c| c.contains("shared"))
            .map(String::from)
    });
    assert!(
        conflict.contains(&file) && conflict.contains(&server.url()),
        "{conflict}"
    );
    assert!(
        conflict.find(&server.url()) < conflict.find(&file),
        "the URL pod is the one ignored: {conflict}"
    );
    assert_eq!(
        ids(&shared),
        ids(&d.pod_containers("shared")),
        "the file's pod was touched"
    );
    let uids: BTreeSet<&str> = shared.iter().map(|c| c.uid()).collect();
    assert_eq!(uids.len(), 1, "only one pod named shared runs");
    assert!(shared
        .iter()
        .all(|c| c.label("io.rkubelet.source") == format!("file:{file}")));
    let v = d.get_json("/manifests");
    assert_eq!(v["pods"]["file"], 1);
    assert_eq!(v["pods"]["http"], 2);
}

#[test]
fn a_url_that_is_down_at_restart_neither_blocks_file_pods_nor_kills_its_running_pods() {
    let server = ManifestServer::start();
    server.serve(pod("remote", "1"));
    let mut d = daemon_for(&server, &[]);
    let remote = d.wait_running("remote", &["app"], SECS30);

    d.kill9();
    server.status(503);
    d.write("local.yaml", &pod("local", "1"));
    d.spawn();
    d.wait_running("local", &["app"], SECS30);
    server.wait_more_hits(3, SECS30);
    assert_eq!(
        ids(&remote),
        ids(&d.pod_containers("remote")),
        "the URL pod was touched while its URL was down"
    );
    assert!(d.pod_containers("remote").iter().all(|c| c.running));
    let health = d.get("/healthz?verbose").expect("healthz");
    assert!(health.contains("[!]source-http"), "{health}");

    // The URL answers again without that pod: now it is removed.
    server.serve("");
    d.wait_gone("remote", SECS30);
    assert!(d.pod_containers("local").iter().all(|c| c.running));
}

/// The `/pods` entry of `name` once it is `Failed`: (reason, message).
fn rejected(d: &Daemon, name: &str) -> (String, String) {
    let p = wait_until(&format!("{name} Failed in /pods"), SECS30, || {
        d.api_pod(name).filter(|p| p["status"]["phase"] == "Failed")
    });
    (
        p["status"]["reason"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        p["status"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

fn affinity(expressions: &str) -> String {
    format!(
        "  affinity:\n    nodeAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n        nodeSelectorTerms:\n        - matchExpressions:\n{expressions}"
    )
}

#[test]
fn pods_this_node_may_not_run_are_failed_in_pods_with_the_reason_and_never_create_a_container() {
    let mut opts = Opts::default();
    opts.extra_args
        .extend(["--node-labels", "disktype=ssd,cores=8"].map(String::from));
    let d = Daemon::start_with(opts);
    // Every operator matching, in one term, plus matchFields and nodeSelector.
    d.write(
        "fits.yaml",
        &pod_with_spec(
            "fits",
            &format!(
                "  nodeSelector: {{disktype: ssd, kubernetes.io/os: linux}}\n{}          - {{key: cores, operator: Gt, values: ['4']}}\n          - {{key: cores, operator: Lt, values: ['16']}}\n          - {{key: gpu, operator: DoesNotExist}}\n          - {{key: disktype, operator: Exists}}\n          - {{key: disktype, operator: NotIn, values: [hdd]}}\n          matchFields:\n          - {{key: metadata.name, operator: In, values: [{}]}}\n",
                affinity("          - {key: disktype, operator: In, values: [ssd, nvme]}\n"),
                d.node
            ),
        ),
    );
    let misfits = [
        (
            "sel",
            "  nodeSelector: {disktype: hdd}\n".to_string(),
            "nodeSelector disktype=hdd",
        ),
        (
            "op-in",
            affinity("          - {key: disktype, operator: In, values: [hdd]}\n"),
            "disktype In [hdd]",
        ),
        (
            "op-notin",
            affinity("          - {key: disktype, operator: NotIn, values: [ssd]}\n"),
            "disktype NotIn [ssd]",
        ),
        (
            "op-exists",
            affinity("          - {key: gpu, operator: Exists}\n"),
            "gpu Exists",
        ),
        (
            "op-dne",
            affinity("          - {key: cores, operator: DoesNotExist}\n"),
            "cores DoesNotExist",
        ),
        (
            "op-gt",
            affinity("          - {key: cores, operator: Gt, values: ['8']}\n"),
            "cores Gt [8]",
        ),
        (
            "op-lt",
            affinity("          - {key: cores, operator: Lt, values: ['2']}\n"),
            "cores Lt [2]",
        ),
    ];
    for (name, spec, _) in &misfits {
        d.write(&format!("{name}.yaml"), &pod_with_spec(name, spec));
    }
    d.write(
        "elsewhere.yaml",
        &pod_with_spec("elsewhere", "  nodeName: some-other-node\n"),
    );

    d.wait_running("fits", &["app"], SECS30);
    for (name, _, term) in &misfits {
        let (reason, message) = rejected(&d, name);
        assert_eq!(reason, "NodeAffinity", "{name}: {message}");
        assert!(
            message.starts_with(
                "Pod was rejected: Predicate NodeAffinity failed: node(s) didn't match Pod's node affinity/selector"
            ) && message.contains(term),
            "{name}: {message}"
        );
    }
    let (reason, message) = rejected(&d, "elsewhere");
    assert_eq!(reason, "NodeName");
    assert!(message.contains("some-other-node"), "{message}");

    // None of them ever had a container, and the log says why.
    for name in misfits.iter().map(|m| m.0).chain(["elsewhere"]) {
        assert!(d.pod_containers(name).is_empty(), "{name} has containers");
    }
    assert!(d.log().contains("pod rejected by admission"));
    let events = d.get_json("/api/v1/events");
    assert!(
        events["items"].as_array().into_iter().flatten().any(|e| {
            e["reason"] == "NodeName"
                && e["involvedObject"]["name"] == format!("elsewhere-{}", d.node).as_str()
        }),
        "{events}"
    );
    let get = common::daemon::run(
        Command::new(env!("CARGO_BIN_EXE_rkubelet"))
            .args(["get", "pods", "--server"])
            .arg(format!("http://127.0.0.1:{}", d.port)),
    );
    let line = get
        .lines()
        .find(|l| l.starts_with(&format!("sel-{}", d.node)))
        .unwrap_or_else(|| panic!("sel missing from get pods:\n{get}"));
    assert!(line.contains("NodeAffinity"), "{get}");

    // Removing a rejected pod's manifest removes it from /pods.
    d.remove("elsewhere.yaml");
    wait_until("elsewhere gone from /pods", SECS30, || {
        d.api_pod("elsewhere").is_none().then_some(())
    });
}

#[test]
fn restarting_with_other_node_labels_re_evaluates_admission() {
    let mut opts = Opts::default();
    opts.extra_args
        .extend(["--node-labels", "disktype=ssd"].map(String::from));
    let mut d = Daemon::start_with(opts);
    d.write(
        "fast.yaml",
        &pod_with_spec("fast", "  nodeSelector: {disktype: ssd}\n"),
    );
    d.wait_running("fast", &["app"], SECS30);
    assert_eq!(d.sigterm(), Some(0));

    let labels = d
        .opts
        .extra_args
        .iter()
        .position(|a| a == "disktype=ssd")
        .expect("label flag");
    d.opts.extra_args[labels] = "disktype=hdd".into();
    d.spawn();
    d.wait_gone("fast", SECS30);
    let (reason, _) = rejected(&d, "fast");
    assert_eq!(reason, "NodeAffinity");
}

fn validate(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rkubelet"))
        .arg("validate")
        .args(args)
        .output()
        .expect("run rkubelet validate");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn rkubelet_validate_prints_a_verdict_per_object_and_exits_non_zero_on_errors_and_rejections() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = |f: &str| dir.path().join(f).display().to_string();
    std::fs::write(p("a-web.yaml"), pod("web", "1")).expect("write");
    std::fs::write(
        p("b-gpu.yaml"),
        pod_with_spec("gpu", "  nodeSelector: {gpu: 'yes'}\n"),
    )
    .expect("write");
    std::fs::write(
        p("c-broken.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata: {name: broken}\nspec:\n  containers:\n  - {name: app}\n",
    )
    .expect("write");

    let (code, out, err) = validate(&[&p("a-web.yaml"), "--hostname-override", "node1"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        out.trim(),
        format!("OK pod default/web-node1 ({})", p("a-web.yaml"))
    );

    let dir_arg = dir.path().display().to_string();
    let (code, out, _) = validate(&[&dir_arg, "--hostname-override", "node1"]);
    assert_eq!(code, 1, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].starts_with("OK pod default/web-node1"), "{out}");
    assert!(
        lines[1].starts_with(&format!(
            "REJECTED pod default/gpu-node1 ({}): NodeAffinity:",
            p("b-gpu.yaml")
        )),
        "{out}"
    );
    assert!(
        lines[2].starts_with(&format!("ERROR {}", p("c-broken.yaml")))
            && lines[2].contains("image"),
        "{out}"
    );

    // The label makes the gpu pod fit.
    let (code, out, _) = validate(&[&p("b-gpu.yaml"), "--node-labels", "gpu=yes"]);
    assert_eq!(code, 0, "{out}");

    // A URL works too, and needs no daemon.
    let server = ManifestServer::start();
    server.serve(pod("remote", "1"));
    let (code, out, _) = validate(&[&server.url(), "--hostname-override", "n2"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out.trim(),
        format!("OK pod default/remote-n2 ({})", server.url())
    );
    server.status(500);
    let (code, out, _) = validate(&[&server.url()]);
    assert_eq!(code, 1);
    assert!(out.starts_with(&format!("ERROR {}", server.url())), "{out}");

    // Bad usage is exit code 64.
    let (code, _, err) = validate(&[&p("a-web.yaml"), "--node-labels", "nonsense"]);
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("--node-labels"), "{err}");
}

#[test]
fn bad_manifest_url_flags_exit_64_with_the_flag_named() {
    for args in [
        vec!["--manifest-url", "ftp://example.com/pods"],
        vec!["--manifest-url-header", "no colon here"],
        vec!["--node-labels", "kubernetes.io/hostname=x"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_rkubelet"))
            .args(&args)
            .args(["--hostname-override", "n", "--read-only-port", "0"])
            .output()
            .expect("run rkubelet");
        assert_eq!(out.status.code(), Some(64), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(args[0]), "{args:?}: {err}");
    }
}
