//! End-to-end: the real `kubectl` (and `rkubelet`'s own client) against the
//! real binary for log options (`--since`, `--since-time`, `--limit-bytes`,
//! `--timestamps`, `--tail`, `-p`, `-f` ending with the container), the node,
//! namespaces, ConfigMaps and Secrets (a planted Secret value appears in no
//! answer), label and field selectors and watches of those kinds (kubectl's
//! and `rkubelet get -w`, a watch resumed from a list's resourceVersion),
//! `rkubelet get events`, and `rkubelet describe pod` (mounts, volumes, env
//! sources, current probe results).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::daemon::{wait_until, Daemon, Opts, IMAGE};
use k8s_openapi::jiff::Timestamp;

const SECS30: Duration = Duration::from_secs(30);
/// A Secret value no answer may contain, and its base64 form.
const PLANTED: &str = "PLANTED-s3cr3t-VALUE";
const PLANTED_B64: &str = "UExBTlRFRC1zM2NyM3QtVkFMVUU=";

/// The `N` of each `line N` in a log.
fn numbers(log: &str) -> Vec<u64> {
    log.lines()
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect()
}

fn objects() -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: app-config}}\ndata: {{greeting: hello, mode: fast}}\n---\n\
         apiVersion: v1\nkind: Secret\nmetadata: {{name: creds, namespace: prod}}\ntype: kubernetes.io/basic-auth\n\
         data: {{username: YWRtaW4=}}\nstringData: {{password: {PLANTED}}}\n---\n\
         apiVersion: v1\nkind: Secret\nmetadata: {{name: creds}}\nstringData: {{password: {PLANTED}}}\n---\n\
         apiVersion: v1\nkind: Pod\nmetadata: {{name: web, namespace: prod}}\nspec:\n  containers:\n  - name: a\n    image: {IMAGE}\n    command: [sh, -c, 'echo up; sleep 3600']\n    resources: {{requests: {{cpu: 100m, memory: 16Mi}}, limits: {{memory: 32Mi}}}}\n    env:\n    - {{name: PASS, valueFrom: {{secretKeyRef: {{name: creds, key: password}}}}}}\n"
    )
}

#[test]
fn kubectl_log_options_cut_by_time_bytes_lines_and_instance() {
    let d = Daemon::start();
    d.write(
        "logs.yaml",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: ticker}}\nspec:\n  containers:\n  - {{name: t, image: {IMAGE}, command: [sh, -c, 'i=0; while true; do i=$((i+1)); echo line $i; sleep 0.2; done']}}\n---\n\
             apiVersion: v1\nkind: Pod\nmetadata: {{name: blink}}\nspec:\n  volumes: [{{name: d, emptyDir: {{}}}}]\n  containers:\n  - name: b\n    image: {IMAGE}\n    volumeMounts: [{{name: d, mountPath: /d}}]\n    command: [sh, -c, 'n=$(cat /d/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /d/n; echo run $n; sleep 1; exit 3']\n"
        ),
    );
    d.wait_running("ticker", &["t"], SECS30);
    let pod = format!("ticker-{}", d.node);
    // About 6 s of output: 30 lines.
    let all = wait_until("30 log lines", SECS30, || {
        let (ok, out, _) = d.kubectl(&["logs", &pod]);
        (ok && numbers(&out).len() >= 30).then_some(out)
    });
    assert_eq!(numbers(&all)[..3], [1, 2, 3], "{all}");

    // --since 1s: about five lines (one per 200 ms), the newest ones.
    for (who, (ok, out, err)) in [
        ("kubectl", d.kubectl(&["logs", &pod, "--since", "1s"])),
        ("rkubelet", d.ctl(&["logs", "ticker", "--since", "1s"])),
    ] {
        let n = numbers(&out);
        assert!(ok, "{who}: {err}");
        assert!(
            (2..=12).contains(&n.len()) && n[0] > 20,
            "{who} --since 1s printed {} lines starting at {:?}:\n{out}",
            n.len(),
            n.first()
        );
    }

    // --limit-bytes cuts mid-line.
    let (ok, out, err) = d.kubectl(&["logs", &pod, "--limit-bytes", "10"]);
    assert!(ok && out == "line 1\nlin", "{out:?} {err}");
    let (ok, out, err) = d.ctl(&["logs", "ticker", "--limit-bytes", "10"]);
    assert!(ok && out == "line 1\nlin", "{out:?} {err}");

    // --timestamps with --tail: two lines, each with an RFC 3339 time.
    let (ok, stamped, err) = d.kubectl(&["logs", &pod, "--timestamps", "--tail", "2"]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = stamped.lines().collect();
    assert_eq!(lines.len(), 2, "{stamped}");
    for l in &lines {
        let (t, rest) = l.split_once(' ').expect("time and text");
        t.parse::<Timestamp>()
            .unwrap_or_else(|e| panic!("{t:?} is no timestamp: {e}"));
        assert!(rest.starts_with("line "), "{l}");
    }

    // --since-time: rkubelet's client sends the time to the nanosecond and
    // gets exactly the tenth line on; kubectl sends whole seconds and gets
    // the lines from that second on (at most five lines earlier).
    let (ok, stamped, err) = d.kubectl(&["logs", &pod, "--timestamps"]);
    assert!(ok, "{err}");
    let tenth = stamped.lines().nth(9).expect("ten lines");
    let (t, text) = tenth.split_once(' ').expect("time and text");
    assert_eq!(text, "line 10");
    let (ok, out, err) = d.ctl(&["logs", "ticker", "--since-time", t]);
    assert!(ok, "{err}");
    assert_eq!(numbers(&out).first(), Some(&10), "{out}");
    let (ok, out, err) = d.kubectl(&["logs", &pod, "--since-time", t]);
    assert!(ok, "{err}");
    let first = numbers(&out).first().copied().unwrap_or(0);
    assert!((5..=10).contains(&first), "{out}");

    // A bad option is refused naming it.
    let err = d
        .get(&format!(
            "/api/v1/namespaces/default/pods/{pod}/log?limitBytes=0"
        ))
        .expect_err("limitBytes=0 is refused");
    assert!(
        err.starts_with("400") && err.contains("limitBytes"),
        "{err}"
    );

    // -p: the previous instance of a restarted container.
    let blink = format!("blink-{}", d.node);
    wait_until("blink restarted", SECS30, || {
        let p = d.k8s_pod("blink")?;
        let st = p.status?.container_statuses?;
        (st[0].restart_count >= 1).then_some(())
    });
    for (who, (ok, out, err)) in [
        ("kubectl", d.kubectl(&["logs", &blink, "-p"])),
        ("rkubelet", d.ctl(&["logs", "blink", "-p"])),
    ] {
        let run: u64 = out
            .trim()
            .strip_prefix("run ")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{who} -p printed {out:?} {err}"));
        assert!(ok && run >= 1, "{who}: {out} {err}");
    }
}

#[test]
fn follow_ends_when_the_container_exits() {
    let d = Daemon::start();
    d.write(
        "finite.yaml",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: finite}}\nspec:\n  restartPolicy: Never\n  containers:\n  - {{name: f, image: {IMAGE}, command: [sh, -c, 'for i in 1 2 3 4 5 6; do echo tick $i; sleep 1; done']}}\n"
        ),
    );
    d.wait_running("finite", &["f"], SECS30);
    let pod = format!("finite-{}", d.node);
    let spawn = |cmd: &mut Command| {
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn")
    };
    let mut k = spawn(
        Command::new("kubectl")
            .arg("--server")
            .arg(format!("http://127.0.0.1:{}", d.port))
            .args(["logs", "-f", &pod]),
    );
    let mut r = spawn(
        Command::new(env!("CARGO_BIN_EXE_rkubelet"))
            .args(["logs", "-f", "finite"])
            .env("RKUBELET_SERVER", format!("http://127.0.0.1:{}", d.port)),
    );
    let started = Instant::now();
    for (who, child) in [("kubectl", &mut k), ("rkubelet", &mut r)] {
        let status = wait_until(
            &format!("{who} logs -f to end with the container"),
            SECS30,
            || child.try_wait().ok().flatten(),
        );
        let out = child.wait_with_output_ref();
        assert!(status.success(), "{who}: {status} {out}");
        assert!(
            out.contains("tick 1") && out.contains("tick 6"),
            "{who}: {out}"
        );
    }
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "-f returned before the container exited"
    );
}

/// Reads a finished child's stdout and stderr.
trait OutputRef {
    fn wait_with_output_ref(&mut self) -> String;
}

impl OutputRef for std::process::Child {
    fn wait_with_output_ref(&mut self) -> String {
        use std::io::Read;
        let mut s = String::new();
        if let Some(o) = self.stdout.as_mut() {
            let _ = o.read_to_string(&mut s);
        }
        if let Some(e) = self.stderr.as_mut() {
            let _ = e.read_to_string(&mut s);
        }
        s
    }
}

#[test]
fn kubectl_gets_the_node_namespaces_configmaps_and_secrets_without_values() {
    let d = Daemon::start_with(Opts {
        extra_args: vec![
            "--file-check-frequency".into(),
            "1s".into(),
            "--node-labels".into(),
            "disktype=ssd".into(),
        ],
    });
    d.write("objects.yaml", &objects());
    d.wait_running("web", &["a"], SECS30);
    let web = format!("web-{}", d.node);
    let mut answers = Vec::new();
    let mut ok_kubectl = |args: &[&str]| {
        let (ok, out, err) = d.kubectl(args);
        assert!(ok, "kubectl {args:?}: {err}");
        answers.push(format!("kubectl {args:?}:\n{out}{err}"));
        out
    };

    let nodes = ok_kubectl(&["get", "nodes", "-o", "wide"]);
    let header = nodes.lines().next().unwrap_or_default();
    for col in [
        "NAME",
        "STATUS",
        "ROLES",
        "AGE",
        "VERSION",
        "INTERNAL-IP",
        "OS-IMAGE",
        "KERNEL-VERSION",
        "CONTAINER-RUNTIME",
    ] {
        assert!(header.contains(col), "{col}: {nodes}");
    }
    let row = nodes.lines().nth(1).unwrap_or_default();
    assert!(
        row.starts_with(&d.node) && row.contains(" Ready ") && row.contains("docker://"),
        "{nodes}"
    );
    let node: serde_json::Value =
        serde_json::from_str(&ok_kubectl(&["get", "node", &d.node, "-o", "json"])).expect("json");
    assert_eq!(node["metadata"]["labels"]["disktype"], "ssd");
    assert_eq!(
        node["metadata"]["labels"]["kubernetes.io/hostname"],
        d.node.as_str()
    );
    assert_eq!(node["status"]["capacity"]["pods"], "110");
    assert_eq!(node["status"]["addresses"][1]["type"], "Hostname");
    assert!(node["status"]["nodeInfo"]["containerRuntimeVersion"]
        .as_str()
        .is_some_and(|v| v.starts_with("docker://")));
    let ready = node["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready").cloned())
        .expect("Ready");
    assert_eq!(ready["status"], "True");
    assert!(ready["lastHeartbeatTime"].is_string());

    let describe = ok_kubectl(&["describe", "node", &d.node]);
    for needle in [
        "disktype=ssd",
        "KubeletReady",
        "Capacity:",
        "Non-terminated Pods:",
        web.as_str(),
        "100m (",
        "32Mi (",
    ] {
        assert!(describe.contains(needle), "{needle}:\n{describe}");
    }

    let ns = ok_kubectl(&["get", "ns"]);
    assert!(
        ns.lines()
            .any(|l| l.starts_with("default ") && l.contains("Active"))
            && ns
                .lines()
                .any(|l| l.starts_with("prod ") && l.contains("Active")),
        "{ns}"
    );
    let (ok, out, err) = d.kubectl(&["get", "pod", "nope"]);
    assert!(!ok && out.is_empty(), "{out}");
    assert_eq!(
        err,
        "Error from server (NotFound): pods \"nope\" not found\n"
    );
    let (ok, _, err) = d.kubectl(&["get", "pod", "nope", "-n", "nowhere"]);
    assert!(
        !ok && err.contains("namespaces \"nowhere\" not found"),
        "{err}"
    );

    let cms = ok_kubectl(&["get", "configmaps"]);
    assert!(cms.starts_with("NAME"), "{cms}");
    assert!(
        cms.lines()
            .any(|l| l.split_whitespace().take(2).eq(["app-config", "2"])),
        "{cms}"
    );
    let cm = ok_kubectl(&["get", "cm", "app-config", "-o", "yaml"]);
    assert!(cm.contains("greeting: hello"), "{cm}");

    let secrets = ok_kubectl(&["get", "secrets", "-n", "prod"]);
    assert!(
        secrets
            .lines()
            .next()
            .is_some_and(|h| h.split_whitespace().eq(["NAME", "TYPE", "DATA", "AGE"])),
        "{secrets}"
    );
    assert!(
        secrets.lines().any(|l| l.split_whitespace().take(3).eq([
            "creds",
            "kubernetes.io/basic-auth",
            "2"
        ])),
        "{secrets}"
    );
    ok_kubectl(&["get", "secrets", "-A"]);
    ok_kubectl(&["get", "secrets", "-A", "-o", "json"]);
    let yaml = ok_kubectl(&["get", "secret", "creds", "-n", "prod", "-o", "yaml"]);
    assert!(
        yaml.contains("password: \"\"") && yaml.contains("rkubelet.io/data-redacted"),
        "{yaml}"
    );
    ok_kubectl(&["describe", "secret", "creds", "-n", "prod"]);
    ok_kubectl(&["describe", "pod", &web, "-n", "prod"]);
    ok_kubectl(&["get", "pods", "-A", "-o", "yaml"]);
    ok_kubectl(&["get", "events", "-A", "-o", "yaml"]);
    for path in [
        "/api/v1/secrets",
        "/api/v1/namespaces/prod/secrets",
        "/api/v1/namespaces/prod/secrets/creds",
        "/api/v1/namespaces/default/secrets/creds",
        "/api/v1/configmaps",
        "/api/v1/events",
        "/api/v1/pods",
        "/pods",
        "/manifests",
        "/healthz?verbose",
    ] {
        answers.push(format!(
            "GET {path}:\n{}",
            d.get(path).unwrap_or_else(|e| e)
        ));
    }

    // rkubelet's own client prints the same resources.
    for (args, needles) in [
        (
            vec!["get", "nodes", "-o", "wide"],
            vec![d.node.as_str(), "Ready", "docker://"],
        ),
        (vec!["get", "ns"], vec!["default", "prod", "Active"]),
        (vec!["get", "cm"], vec!["NAME", "DATA", "app-config"]),
        (
            vec!["get", "secrets", "-A"],
            vec![
                "NAMESPACE",
                "prod",
                "creds",
                "kubernetes.io/basic-auth",
                "Opaque",
            ],
        ),
        (
            vec!["get", "secret", "creds", "-n", "prod", "-o", "yaml"],
            vec!["basic-auth"],
        ),
        (
            vec!["get", "events", "-n", "prod"],
            vec!["LAST SEEN", "Started", web.as_str()],
        ),
    ] {
        let (ok, out, err) = d.ctl(&args);
        assert!(ok, "rkubelet {args:?}: {err}");
        for n in needles {
            assert!(out.contains(n), "rkubelet {args:?} lacks {n:?}:\n{out}");
        }
        answers.push(format!("rkubelet {args:?}:\n{out}{err}"));
    }
    for a in &answers {
        assert!(
            !a.contains(PLANTED) && !a.contains(PLANTED_B64),
            "a Secret value leaked:\n{a}"
        );
    }
}

#[test]
fn rkubelet_describe_shows_mounts_volumes_env_sources_and_current_probe_results() {
    let d = Daemon::start();
    let host_port = common::free_port();
    let mut manifest = objects();
    manifest.push_str(&format!(
        "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: probed}}\nspec:\n  volumes:\n  - {{name: cfg, configMap: {{name: app-config}}}}\n  - {{name: scratch, emptyDir: {{}}}}\n  containers:\n  - name: app\n    image: {IMAGE}\n    command: [sh, -c, 'sleep 3600']\n    ports: [{{containerPort: 80, hostPort: {host_port}}}]\n    env:\n    - {{name: GREETING, valueFrom: {{configMapKeyRef: {{name: app-config, key: greeting}}}}}}\n    - {{name: PASS, valueFrom: {{secretKeyRef: {{name: creds, key: password}}}}}}\n    volumeMounts:\n    - {{name: cfg, mountPath: /etc/cfg, readOnly: true}}\n    - {{name: scratch, mountPath: /scratch}}\n    readinessProbe: {{exec: {{command: [sh, -c, 'test -f /tmp/ready']}}, periodSeconds: 1, failureThreshold: 3}}\n"
    ));
    d.write("objects.yaml", &manifest);
    let cs = d.wait_running("probed", &["app"], SECS30);
    let describe = || {
        let (ok, out, err) = d.ctl(&["describe", "pod", "probed"]);
        assert!(ok, "{err}");
        assert!(!out.contains(PLANTED), "a Secret value leaked:\n{out}");
        out
    };
    let squeeze = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let text = squeeze(&describe());
    for needle in [
        format!("Host Port: {host_port}/TCP"),
        "GREETING:  <set to the key 'greeting' of config map 'app-config'>  Optional: false".into(),
        "PASS:      <set to the key 'password' in secret 'creds'>".into(),
        "/etc/cfg from cfg (ro)".into(),
        "/scratch from scratch (rw)".into(),
        "Type:       ConfigMap (a volume populated by a ConfigMap)".into(),
        "EmptyDir (a temporary directory that shares a pod's lifetime)".into(),
        "Readiness:".into(),
    ] {
        assert!(text.contains(&squeeze(&needle)), "{needle:?}:\n{text}");
    }
    // While the readiness probe fails (below and at its threshold) the
    // result shows, and its time moves on with every run.
    let probe_time = |text: &str, result: &str| -> Option<String> {
        let line = text.lines().find(|l| {
            l.trim_start()
                .starts_with(&format!("app/Readiness: {result} (at "))
        })?;
        let at = line.split_once("(at ")?.1;
        Some(at.split_once(')')?.0.to_string())
    };
    let first = wait_until("a failing readiness result", SECS30, || {
        probe_time(&describe(), "Failure")
    });
    wait_until("a newer failing readiness result", SECS30, || {
        probe_time(&describe(), "Failure").filter(|t| *t != first)
    });
    let app = cs.iter().find(|c| c.cname() == "app").expect("app");
    let (ok, out) = common::daemon::docker_exec(&app.id, &["touch", "/tmp/ready"]);
    assert!(ok, "{out}");
    let passed = wait_until("a passing readiness result", SECS30, || {
        probe_time(&describe(), "Success")
    });
    wait_until("a newer passing readiness result", SECS30, || {
        probe_time(&describe(), "Success").filter(|t| *t != passed)
    });
}

/// A running command whose stdout and stderr are collected as they come.
struct Streaming {
    child: std::process::Child,
    out: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Streaming {
    fn start(cmd: &mut Command) -> Streaming {
        use std::io::Read;
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let out = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let pipes: Vec<Box<dyn Read + Send>> = vec![
            Box::new(child.stdout.take().expect("stdout")),
            Box::new(child.stderr.take().expect("stderr")),
        ];
        for mut pipe in pipes {
            let out = out.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                    out.lock().expect("lock").push_str(&text);
                }
            });
        }
        Streaming { child, out }
    }

    fn text(&self) -> String {
        self.out.lock().expect("lock").clone()
    }

    /// Waits for `pred` on the output so far, naming `what` on timeout.
    fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        wait_until(what, SECS30, || {
            let t = self.text();
            pred(&t).then_some(t)
        })
    }
}

impl Drop for Streaming {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn first_words(text: &str) -> Vec<String> {
    (text.lines().skip(1))
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect()
}

#[test]
fn kubectl_selects_and_watches_nodes_namespaces_configmaps_and_secrets() {
    let d = Daemon::start_with(Opts {
        extra_args: vec!["--file-check-frequency".into(), "1s".into()],
    });
    d.write(
        "objects.yaml",
        &format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: labelled, labels: {{x: y}}}}\ndata: {{a: b}}\n---\n\
             apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: plain}}\ndata: {{a: b}}\n---\n\
             apiVersion: v1\nkind: Secret\nmetadata: {{name: creds}}\nstringData: {{password: {PLANTED}}}\n---\n\
             apiVersion: v1\nkind: Secret\nmetadata: {{name: cert}}\ntype: kubernetes.io/tls\nstringData: {{tls.crt: {PLANTED}, tls.key: k}}\n"
        ),
    );
    wait_until("the ConfigMaps and Secrets", SECS30, || {
        let (_, cms, _) = d.kubectl(&["get", "cm"]);
        let (_, secrets, _) = d.kubectl(&["get", "secrets"]);
        (cms.contains("plain") && secrets.contains("cert")).then_some(())
    });
    let mut answers = Vec::new();
    let mut get = |args: &[&str]| {
        let (ok, out, err) = d.kubectl(args);
        assert!(ok, "kubectl {args:?}: {err}");
        answers.push(format!("kubectl {args:?}:\n{out}{err}"));
        first_words(&out)
    };

    // Selectors are honoured for every kind.
    assert_eq!(get(&["get", "configmaps", "-l", "x=y"]), ["labelled"]);
    assert_eq!(get(&["get", "configmaps", "-l", "x!=y"]), ["plain"]);
    assert_eq!(
        get(&["get", "cm", "--field-selector", "metadata.name=plain"]),
        ["plain"]
    );
    assert_eq!(
        get(&["get", "secrets", "--field-selector", "type=Opaque"]),
        ["creds"]
    );
    assert_eq!(
        get(&["get", "secrets", "--field-selector", "type!=Opaque"]),
        ["cert"]
    );
    let node = d.node.clone();
    assert_eq!(
        get(&[
            "get",
            "nodes",
            "--field-selector",
            "spec.unschedulable=false"
        ]),
        [node.as_str()]
    );
    assert_eq!(
        get(&[
            "get",
            "nodes",
            "-l",
            &format!("kubernetes.io/hostname={node}")
        ]),
        [node.as_str()]
    );
    assert!(get(&["get", "nodes", "-l", "kubernetes.io/hostname=elsewhere"]).is_empty());
    assert_eq!(
        get(&["get", "ns", "--field-selector", "status.phase=Active"]),
        ["default"]
    );
    assert!(get(&["get", "ns", "--field-selector", "status.phase=Terminating"]).is_empty());
    for (args, needles) in [
        (vec!["get", "cm", "-l", "x=y"], vec!["labelled"]),
        (
            vec!["get", "secrets", "--field-selector", "type=Opaque"],
            vec!["creds"],
        ),
        (
            vec![
                "get",
                "nodes",
                "--field-selector",
                "spec.unschedulable=false",
            ],
            vec![node.as_str()],
        ),
    ] {
        let (ok, out, err) = d.ctl(&args);
        assert!(ok, "rkubelet {args:?}: {err}");
        assert_eq!(first_words(&out), needles, "rkubelet {args:?}:\n{out}");
        answers.push(format!("rkubelet {args:?}:\n{out}{err}"));
    }

    // What the API server refuses is refused with its message.
    let (ok, _, err) = d.kubectl(&["get", "cm", "--field-selector", "spec.bogus=1"]);
    assert!(
        !ok && err.contains("field label not supported: spec.bogus"),
        "{err}"
    );
    let (ok, _, err) = d.kubectl(&["get", "nodes", "--field-selector", "type=Opaque"]);
    assert!(
        !ok && err.contains("field label not supported: type"),
        "{err}"
    );
    let err = d
        .get("/api/v1/secrets?labelSelector=x%20in%20(")
        .expect_err("a malformed selector is refused");
    assert!(err.starts_with("400"), "{err}");

    // Lists and objects carry resourceVersions.
    let list = d.get_json("/api/v1/configmaps");
    let version: u64 = list["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .expect("a list resourceVersion");
    for item in list["items"].as_array().expect("items") {
        let v: u64 = item["metadata"]["resourceVersion"]
            .as_str()
            .and_then(|v| v.parse().ok())
            .expect("an object resourceVersion");
        assert!(v <= version, "{item}");
    }

    // Watches print what a manifest adds and removes.
    let ns_watch =
        Streaming::start(&mut d.kubectl_cmd(&["get", "ns", "-w", "--output-watch-events"]));
    let cm_watch = Streaming::start(&mut d.kubectl_cmd(&["get", "configmaps", "-A", "-w"]));
    let secret_watch =
        Streaming::start(&mut d.kubectl_cmd(&["get", "secrets", "-A", "-w", "-o", "json"]));
    let mut ctl_watch = Command::new(env!("CARGO_BIN_EXE_rkubelet"));
    ctl_watch
        .args(["get", "cm", "-A", "-w", "-l", "fresh=yes"])
        .env("RKUBELET_SERVER", format!("http://127.0.0.1:{}", d.port));
    let ctl_watch = Streaming::start(&mut ctl_watch);
    ns_watch.wait_for("kubectl get ns -w to list default", |t| {
        t.contains("default")
    });
    cm_watch.wait_for("kubectl get cm -w to list plain", |t| t.contains("plain"));
    secret_watch.wait_for("kubectl get secrets -w to list cert", |t| {
        t.contains("\"cert\"")
    });
    d.write(
        "fresh.yaml",
        &format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: added, namespace: fresh, labels: {{fresh: 'yes'}}}}\ndata: {{k: v}}\n---\n\
             apiVersion: v1\nkind: Secret\nmetadata: {{name: late, namespace: fresh}}\nstringData: {{password: {PLANTED}}}\n"
        ),
    );
    let ns_seen = ns_watch.wait_for("kubectl get ns -w to print the new namespace", |t| {
        t.lines()
            .any(|l| l.starts_with("ADDED") && l.contains("fresh"))
    });
    let cm_seen = cm_watch.wait_for("kubectl get cm -w to print the new ConfigMap", |t| {
        t.lines()
            .any(|l| l.starts_with("fresh") && l.contains("added"))
    });
    secret_watch.wait_for("kubectl get secrets -w to print the new Secret", |t| {
        t.contains("\"late\"")
    });
    let ctl_seen = ctl_watch.wait_for("rkubelet get cm -w to print the new ConfigMap", |t| {
        t.contains("added")
    });
    assert!(!ctl_seen.contains("plain"), "{ctl_seen}");
    assert!(!cm_seen.contains("PLANTED"), "{cm_seen}");
    // A watch resumed from the earlier list sees the addition.
    let resumed = d
        .get(&format!(
            "/api/v1/configmaps?watch=1&resourceVersion={version}&timeoutSeconds=1"
        ))
        .expect("a resumed watch");
    assert!(
        resumed
            .lines()
            .any(|l| l.contains("\"ADDED\"") && l.contains("\"added\"")),
        "{resumed}"
    );
    assert!(!resumed.contains("\"plain\""), "{resumed}");

    d.remove("fresh.yaml");
    ns_watch.wait_for("kubectl get ns -w to print the namespace's deletion", |t| {
        t.lines()
            .any(|l| l.starts_with("DELETED") && l.contains("fresh"))
    });
    answers.push(format!("ns watch:\n{ns_seen}"));
    answers.push(format!("secret watch:\n{}", secret_watch.text()));
    answers.push(format!("cm watch:\n{}", cm_watch.text()));
    answers.push(format!(
        "raw secret watch:\n{}",
        d.get("/api/v1/secrets?watch=1&timeoutSeconds=1")
            .unwrap_or_else(|e| e)
    ));
    for a in &answers {
        assert!(
            !a.contains(PLANTED) && !a.contains(PLANTED_B64),
            "a Secret value leaked:\n{a}"
        );
    }
}
