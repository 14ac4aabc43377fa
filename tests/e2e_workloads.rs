//! End-to-end: the real `rkubelet` binary against the real Docker daemon:
//! what a cluster manifest carries beyond Pods (kinds rkubelet skips) and
//! host ports shared between the pods of one node.

mod common;

use std::time::Duration;

use common::daemon::{wait_until, Daemon, IMAGE};

const SECS30: Duration = Duration::from_secs(30);

#[test]
fn a_pod_and_service_file_runs_its_pod_and_warns_about_the_service() {
    let d = Daemon::start();
    d.write(
        "web.yaml",
        &format!(
            r#"apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {{app: web}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: {IMAGE}
    command: ["httpd", "-f", "-p", "8080", "-h", "/var/www"]
---
apiVersion: example.com/v1
kind: Frobnicator
metadata: {{name: f}}
"#
        ),
    );
    d.wait_running("web", &["web"], SECS30);
    let warnings = wait_until("the skipped kinds in /manifests", SECS30, || {
        let v = d.get_json("/manifests");
        let warnings: Vec<String> = (v["warnings"].as_array()?.iter())
            .filter_map(|w| w.as_str().map(String::from))
            .filter(|w| w.contains("web.yaml"))
            .collect();
        (warnings.len() == 2).then_some(warnings)
    });
    assert!(
        warnings[0].ends_with(
            "web.yaml: document 1: kind \"Service\" (apiVersion \"v1\") is not run by rkubelet (skipped; a manifest may hold Pod, ConfigMap, Secret, Deployment, ReplicaSet, DaemonSet, Job, CronJob and List)"
        ),
        "{warnings:?}"
    );
    assert!(
        warnings[1].contains("document 3: unknown kind \"Frobnicator\""),
        "{warnings:?}"
    );
    let v = d.get_json("/manifests");
    assert!(
        v["errors"].as_array().is_some_and(|e| e.is_empty()),
        "no error: {v}"
    );
    let log = d.log();
    assert!(
        log.contains("kind \"Service\" (apiVersion \"v1\") is not run by rkubelet"),
        "the warning is logged:\n{log}"
    );
}

fn host_port_pod(name: &str, port: u16) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: {IMAGE}
    command: ["sh", "-c", "echo {name} > /tmp/index.html; exec httpd -f -p 80 -h /tmp"]
    ports: [{{containerPort: 80, hostPort: {port}}}]
"#
    )
}

#[test]
fn a_pod_whose_host_port_another_pod_holds_stays_pending_and_starts_when_the_holder_goes() {
    let d = Daemon::start();
    let port = common::daemon::free_port();
    d.write("a-first.yaml", &host_port_pod("first", port));
    d.wait_running("first", &["web"], SECS30);
    let url = format!("http://127.0.0.1:{port}/index.html");
    let body = wait_until("the first pod serves", SECS30, || {
        common::daemon::http_get(&url)
    });
    assert_eq!(body.trim(), "first");
    d.write("b-second.yaml", &host_port_pod("second", port));
    let condition = wait_until("second is pending and unschedulable", SECS30, || {
        let pod = d.api_pod("second")?;
        let conditions = pod["status"]["conditions"].as_array()?.clone();
        let scheduled = conditions
            .into_iter()
            .find(|c| c["type"] == "PodScheduled")?;
        Some((pod["status"]["phase"].clone(), scheduled))
    });
    assert_eq!(condition.0, "Pending");
    assert_eq!(condition.1["status"], "False");
    assert_eq!(condition.1["reason"], "Unschedulable");
    assert_eq!(
        condition.1["message"],
        "0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod ports."
    );
    let (ok, out, err) = d.kubectl(&["get", "pod", &format!("second-{}", d.node)]);
    assert!(ok, "{err}");
    assert!(out.contains("Pending"), "{out}");
    let (ok, out, err) = d.kubectl(&[
        "get",
        "events",
        "--field-selector",
        "reason=FailedScheduling",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("didn't have free ports"), "{out}");
    assert!(
        d.pod_containers("second").is_empty(),
        "no container for the waiting pod"
    );
    // The holder goes away: the waiting pod starts and takes the port.
    d.remove("a-first.yaml");
    d.wait_running("second", &["web"], SECS30);
    let body = wait_until("the second pod serves", SECS30, || {
        common::daemon::http_get(&url).filter(|b| b.trim() == "second")
    });
    assert_eq!(body.trim(), "second");
    assert!(
        !d.log().contains("FailedCreatePodSandBox"),
        "no sandbox failed for a taken port"
    );
}

fn sleeper(name: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: {IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
"#
    )
}

#[test]
fn an_invalid_deployment_is_reported_with_file_document_and_field_and_leaves_running_pods_alone() {
    let d = Daemon::start();
    d.write("a.yaml", &sleeper("steady"));
    let before = d.wait_running("steady", &["main"], SECS30);
    d.write(
        "web.yaml",
        &format!(
            r#"apiVersion: v1
kind: List
items:
- apiVersion: apps/v1
  kind: Deployment
  metadata: {{name: web}}
  spec:
    replicas: 3
    selector: {{matchLabels: {{app: web}}}}
    template:
      metadata: {{labels: {{app: api}}}}
      spec:
        containers: [{{name: web, image: {IMAGE}}}]
"#
        ),
    );
    let error = wait_until("the Deployment's error in /manifests", SECS30, || {
        let v = d.get_json("/manifests");
        (v["errors"].as_array()?.iter())
            .filter_map(|e| e.as_str())
            .find(|e| e.contains("web.yaml"))
            .map(String::from)
    });
    assert!(
        error.ends_with(
            "web.yaml: document 1: items[0].spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"api\"}: `selector` does not match template `labels`"
        ),
        "{error}"
    );
    let after = d.pod_containers("steady");
    assert_eq!(
        before.iter().map(|c| c.id.clone()).collect::<Vec<_>>(),
        after.iter().map(|c| c.id.clone()).collect::<Vec<_>>(),
        "the running pod is untouched"
    );
}

#[test]
fn pods_beyond_max_pods_stay_pending_with_the_schedulers_message() {
    let d = Daemon::start_with(common::daemon::Opts {
        extra_args: vec![
            "--file-check-frequency".into(),
            "1s".into(),
            "--max-pods".into(),
            "1".into(),
        ],
    });
    // The node reports the flag as its pods capacity, as the kubelet does.
    let node = d.get_json("/api/v1/nodes");
    let status = &node["items"][0]["status"];
    assert_eq!(status["capacity"]["pods"], "1", "{node}");
    assert_eq!(status["allocatable"]["pods"], "1", "{node}");
    d.write("a.yaml", &sleeper("one"));
    d.wait_running("one", &["main"], SECS30);
    d.write("b.yaml", &sleeper("two"));
    let message = wait_until("the second pod pending", SECS30, || {
        let pod = d.api_pod("two")?;
        let c = (pod["status"]["conditions"].as_array()?.iter())
            .find(|c| c["type"] == "PodScheduled" && c["status"] == "False")?
            .clone();
        Some(c["message"].as_str()?.to_string())
    });
    assert_eq!(message, "0/1 nodes are available: 1 Too many pods.");
    assert!(d.pod_containers("two").is_empty());
    d.remove("a.yaml");
    d.wait_running("two", &["main"], SECS30);
}

fn deployment(replicas: u32, version: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: web}}}}
  strategy: {{rollingUpdate: {{maxSurge: 1, maxUnavailable: 0}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: {IMAGE}
        env: [{{name: VERSION, value: "{version}"}}]
        command: ["sh", "-c", "touch /tmp/ready; trap 'exit 0' TERM; while true; do sleep 1; done"]
        readinessProbe:
          exec: {{command: [cat, /tmp/ready]}}
          periodSeconds: 1
"#
    )
}

/// The Deployment's pods in `/pods` not being deleted (as the controllers
/// count them): (name, uid, hash, ready).
fn web_pods(d: &Daemon) -> Vec<(String, String, String, bool)> {
    let list = d.get_json("/pods");
    let mut pods: Vec<_> = (list["items"].as_array().cloned().unwrap_or_default().iter())
        .filter(|p| p["metadata"]["labels"]["app"] == "web")
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .map(|p| {
            let ready = (p["status"]["conditions"].as_array().into_iter().flatten())
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            (
                p["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                p["metadata"]["uid"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                p["metadata"]["labels"]["pod-template-hash"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                ready,
            )
        })
        .collect();
    pods.sort();
    pods
}

/// UIDs of pods of the Deployment with a running app container in Docker.
fn running_uids(d: &Daemon) -> std::collections::BTreeSet<String> {
    (d.containers().into_iter())
        .filter(|c| {
            c.running && c.cname() == "web" && c.label("io.kubernetes.pod.name").starts_with("web-")
        })
        .map(|c| c.uid().to_string())
        .collect()
}

#[test]
fn a_deployment_runs_scales_rolls_out_and_is_adopted_after_kill_9() {
    let mut d = Daemon::start();
    d.write("web.yaml", &deployment(3, "1"));
    let first = wait_until("3 ready replicas", SECS30, || {
        let pods = web_pods(&d);
        (pods.len() == 3 && pods.iter().all(|p| p.3) && running_uids(&d).len() == 3).then_some(pods)
    });
    let hash = first[0].2.clone();
    assert!(!hash.is_empty());
    for (name, ..) in &first {
        let rest = name
            .strip_prefix(&format!("web-{hash}-"))
            .expect("named web-<hash>-<5>");
        assert_eq!(rest.len(), 5, "{name}");
    }
    let pod = d.get_json("/pods")["items"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|p| p["metadata"]["name"] == first[0].0.as_str())
                .cloned()
        })
        .expect("pod");
    let owner = &pod["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "ReplicaSet");
    assert_eq!(owner["name"], format!("web-{hash}").as_str());
    assert_eq!(owner["controller"], true);
    assert_eq!(
        pod["metadata"]["annotations"]["kubernetes.io/config.source"],
        "file"
    );
    let (ok, out, err) = d.kubectl(&["get", "pods", "-l", "app=web", "-o", "name"]);
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 3, "{out}");

    // Scaling up keeps the three and adds two; scaling down to one.
    d.write("web.yaml", &deployment(5, "1"));
    let five = wait_until("5 ready replicas", SECS30, || {
        let pods = web_pods(&d);
        (pods.len() == 5 && pods.iter().all(|p| p.3)).then_some(pods)
    });
    for p in &first {
        assert!(five.iter().any(|q| q.1 == p.1), "{} kept", p.0);
    }
    d.write("web.yaml", &deployment(1, "1"));
    wait_until("1 replica left", SECS30, || {
        (web_pods(&d).len() == 1 && running_uids(&d).len() == 1).then_some(())
    });

    // A rolling update of 3 with maxSurge 1, maxUnavailable 0.
    d.write("web.yaml", &deployment(3, "1"));
    wait_until("3 ready again", SECS30, || {
        let pods = web_pods(&d);
        (pods.len() == 3 && pods.iter().all(|p| p.3)).then_some(())
    });
    d.write("web.yaml", &deployment(3, "2"));
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let new_hash = loop {
        let pods = web_pods(&d);
        let ready = pods.iter().filter(|p| p.3).count();
        assert!(ready >= 3, "at least 3 ready throughout: {pods:?}");
        assert!(pods.len() <= 4, "at most 3 + 1 pods: {pods:?}");
        if pods.len() == 3 && pods.iter().all(|p| p.2 != hash && p.3) {
            break pods[0].2.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "rollout did not finish: {pods:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    wait_until("old pods gone from Docker", SECS30, || {
        (running_uids(&d).len() == 3).then_some(())
    });

    // kill -9 and restart: the same containers, nothing new.
    let uids: Vec<String> = web_pods(&d).into_iter().map(|p| p.1).collect();
    let of_pods = |d: &Daemon| -> Vec<String> {
        let mut ids: Vec<String> = (d.containers().into_iter())
            .filter(|c| {
                uids.iter().any(|u| u == c.uid())
                    || c.label("io.kubernetes.pod.name")
                        .starts_with(&format!("web-{new_hash}-"))
            })
            .map(|c| c.id)
            .collect();
        ids.sort();
        ids
    };
    let before = of_pods(&d);
    assert_eq!(before.len(), 6, "3 pods of 2 containers");
    let generations = |d: &Daemon| {
        let dep = d.get_json("/apis/apps/v1/namespaces/default/deployments/web");
        (
            dep["metadata"]["generation"].as_i64(),
            dep["status"]["observedGeneration"].as_i64(),
        )
    };
    // Five specs: 3, 5, 1 and 3 replicas, then the new template.
    assert_eq!(generations(&d), (Some(5), Some(5)));
    d.kill9();
    d.spawn();
    wait_until("3 ready after restart", SECS30, || {
        let pods = web_pods(&d);
        (pods.len() == 3 && pods.iter().all(|p| p.3 && p.2 == new_hash)).then_some(())
    });
    let after_uids: Vec<String> = web_pods(&d).into_iter().map(|p| p.1).collect();
    assert_eq!(after_uids, uids, "the same pods");
    assert_eq!(of_pods(&d), before, "adopted, not recreated");
    assert_eq!(
        generations(&d),
        (Some(5), Some(5)),
        "the generation is derived from the pods' Docker labels"
    );
    let log = d.last_log();
    assert!(
        !log.contains("creating pod sandbox"),
        "no sandbox created after the restart:\n{log}"
    );
}

fn daemon_set(name: &str, selector: &str, version: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: {name}}}
spec:
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      nodeSelector: {{{selector}}}
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: {IMAGE}
        env: [{{name: VERSION, value: "{version}"}}]
        command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
"#
    )
}

/// Names of the pods in `/pods` whose name starts with `prefix`, and
/// whether each is being deleted.
fn pods_named(d: &Daemon, prefix: &str) -> Vec<(String, bool)> {
    let list = d.get_json("/pods");
    (list["items"].as_array().cloned().unwrap_or_default().iter())
        .filter_map(|p| {
            let name = p["metadata"]["name"].as_str()?;
            name.starts_with(prefix).then(|| {
                (
                    name.to_string(),
                    !p["metadata"]["deletionTimestamp"].is_null(),
                )
            })
        })
        .collect()
}

#[test]
fn a_daemon_set_runs_one_pod_where_the_node_labels_match_and_replaces_it_without_overlap() {
    let d = Daemon::start_with(common::daemon::Opts {
        extra_args: vec![
            "--file-check-frequency".into(),
            "1s".into(),
            "--node-labels".into(),
            "role=edge".into(),
        ],
    });
    d.write("agent.yaml", &daemon_set("agent", "role: edge", "1"));
    d.write("gpu.yaml", &daemon_set("gpu", "gpu: \"true\"", "1"));
    let first = wait_until("the agent pod running", SECS30, || {
        let pods = pods_named(&d, "agent-");
        let name = pods.first()?.0.clone();
        let running = (d.containers().iter())
            .any(|c| c.running && c.cname() == "main" && c.label("io.kubernetes.pod.name") == name);
        (pods.len() == 1 && running).then_some(name)
    });
    assert_eq!(first.len(), "agent-".len() + 5, "{first}");
    let pod = d.get_json("/pods")["items"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|p| p["metadata"]["name"] == first.as_str())
                .cloned()
        })
        .expect("pod");
    assert_eq!(pod["metadata"]["ownerReferences"][0]["kind"], "DaemonSet");
    assert!(pod["metadata"]["labels"]["controller-revision-hash"].is_string());
    assert!(
        pods_named(&d, "gpu").is_empty(),
        "no pod where the node does not fit"
    );
    // A template change: the old pod goes before the new one starts.
    d.write("agent.yaml", &daemon_set("agent", "role: edge", "2"));
    let second = wait_until("the new agent pod running", SECS30, || {
        let pods = pods_named(&d, "agent-");
        let live: Vec<&(String, bool)> = pods.iter().filter(|p| !p.1).collect();
        assert!(live.len() <= 1, "never two live pods: {pods:?}");
        let running: Vec<String> = (d.containers().into_iter())
            .filter(|c| {
                c.running
                    && c.cname() == "main"
                    && c.label("io.kubernetes.pod.name").starts_with("agent-")
            })
            .map(|c| c.label("io.kubernetes.pod.name").to_string())
            .collect();
        assert!(running.len() <= 1, "never two running: {running:?}");
        (running.len() == 1 && running[0] != first).then(|| running[0].clone())
    });
    assert_ne!(second, first);
}

#[test]
fn a_deployment_with_a_host_port_runs_one_replica_and_leaves_the_others_pending() {
    let d = Daemon::start();
    let port = common::daemon::free_port();
    d.write(
        "hp.yaml",
        &format!(
            r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: hp}}
spec:
  replicas: 3
  selector: {{matchLabels: {{app: hp}}}}
  template:
    metadata: {{labels: {{app: hp}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: {IMAGE}
        command: ["httpd", "-f", "-p", "80", "-h", "/var/www"]
        ports: [{{containerPort: 80, hostPort: {port}}}]
"#
        ),
    );
    let pending = wait_until("one running, two pending", SECS30, || {
        let list = d.get_json("/pods");
        let pods: Vec<serde_json::Value> = (list["items"].as_array()?.iter())
            .filter(|p| p["metadata"]["labels"]["app"] == "hp")
            .cloned()
            .collect();
        let pending: Vec<String> = (pods.iter())
            .filter(|p| p["status"]["phase"] == "Pending")
            .filter_map(|p| {
                (p["status"]["conditions"].as_array()?.iter())
                    .find(|c| c["type"] == "PodScheduled" && c["status"] == "False")
                    .and_then(|c| c["message"].as_str().map(String::from))
            })
            .collect();
        let running = (d.containers().iter())
            .filter(|c| {
                c.running
                    && c.cname() == "web"
                    && c.label("io.kubernetes.pod.name").starts_with("hp-")
            })
            .count();
        (pods.len() == 3 && pending.len() == 2 && running == 1).then_some(pending)
    });
    assert!(
        pending.iter().all(|m| m.contains("didn't have free ports")),
        "{pending:?}"
    );
    let body = wait_until("the replica serves on the host port", SECS30, || {
        common::daemon::http_get(&format!("http://127.0.0.1:{port}/"))
    });
    assert!(body.contains("hello from rkubelet"), "{body}");
    // Settled: the waiting pods cause no stream of events or controller runs.
    let events = |d: &Daemon| {
        let v = d.get_json("/api/v1/events");
        v["items"].as_array().map(Vec::len).unwrap_or(0)
    };
    let before = events(&d);
    let log_before = d.last_log().len();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(events(&d), before, "no new events while settled");
    assert!(
        d.last_log().len() - log_before < 10_000,
        "the log stays quiet while settled"
    );
}

#[test]
fn two_nodes_fed_by_one_url_each_run_the_daemon_set_pod_where_their_labels_match() {
    let server = common::manifest_server::ManifestServer::start();
    server.serve(daemon_set("agent", "role: edge", "1"));
    let node = |labels: &str| {
        Daemon::start_with(common::daemon::Opts {
            extra_args: vec![
                "--file-check-frequency".into(),
                "1s".into(),
                "--manifest-url".into(),
                server.url(),
                "--http-check-frequency".into(),
                "300ms".into(),
                "--node-labels".into(),
                labels.into(),
            ],
        })
    };
    let edge = node("role=edge");
    let core = node("role=core");
    let name = wait_until("the edge node's agent pod", SECS30, || {
        let pods = pods_named(&edge, "agent-");
        let name = pods.first()?.0.clone();
        let running = (edge.containers().iter())
            .any(|c| c.running && c.cname() == "main" && c.label("io.kubernetes.pod.name") == name);
        (pods.len() == 1 && running).then_some(name)
    });
    let pod = (edge.get_json("/pods")["items"]
        .as_array()
        .cloned()
        .unwrap_or_default())
    .into_iter()
    .find(|p| p["metadata"]["name"] == name.as_str())
    .expect("pod");
    assert_eq!(
        pod["metadata"]["annotations"]["kubernetes.io/config.source"],
        "http"
    );
    assert_eq!(pod["spec"]["nodeName"], edge.node.as_str());
    // The core node read the same body and runs nothing of it.
    wait_until("the core node read the URL", SECS30, || {
        let v = core.get_json("/manifests");
        (v["pods"]["http"].is_number() && v["failing"].is_null()).then_some(())
    });
    assert!(pods_named(&core, "agent-").is_empty());
    assert!(!(core.containers().iter())
        .any(|c| c.label("io.kubernetes.pod.name").starts_with("agent-")));
}

#[test]
fn kubectl_gets_describes_and_waits_for_the_rollout_of_a_deployment() {
    let d = Daemon::start();
    d.write("web.yaml", &deployment(2, "1"));
    wait_until("2 ready replicas", SECS30, || {
        let pods = web_pods(&d);
        (pods.len() == 2 && pods.iter().all(|p| p.3)).then_some(())
    });
    let (ok, out, err) = d.kubectl(&["rollout", "status", "deployment/web", "--timeout=60s"]);
    assert!(ok, "rollout status: {out}{err}");
    let (ok, out, err) = d.kubectl(&["get", "deploy,rs,ds", "-o", "wide"]);
    assert!(ok, "{err}");
    let deploy = out
        .lines()
        .find(|l| l.starts_with("deployment.apps/web "))
        .unwrap_or_else(|| panic!("{out}"));
    let cells: Vec<&str> = deploy.split_whitespace().collect();
    assert_eq!(&cells[1..4], ["2/2", "2", "2"], "{out}");
    assert!(
        out.contains("READY") && out.contains("UP-TO-DATE") && out.contains("DESIRED"),
        "{out}"
    );
    assert!(
        out.lines().any(|l| l.starts_with("replicaset.apps/web-")),
        "{out}"
    );
    let (ok, out, err) = d.kubectl(&["describe", "deployment", "web"]);
    assert!(ok, "{err}");
    assert!(out.contains("Name:") && out.contains("web"), "{out}");
    assert!(out.contains("MinimumReplicasAvailable"), "{out}");
    // The template as a cluster serves it: the API server's defaults.
    assert!(
        out.contains(
            "Readiness:  exec [cat /tmp/ready] delay=0s timeout=1s period=1s #success=1 #failure=3"
        ),
        "{out}"
    );
    let dep = d.get_json("/apis/apps/v1/namespaces/default/deployments/web");
    let spec = &dep["spec"]["template"]["spec"];
    assert_eq!(spec["dnsPolicy"], "ClusterFirst", "{dep}");
    assert_eq!(spec["schedulerName"], "default-scheduler", "{dep}");
    let c = &spec["containers"][0];
    assert_eq!(c["terminationMessagePath"], "/dev/termination-log", "{dep}");
    assert!(c["imagePullPolicy"].is_string(), "{dep}");
    // rkubelet's own describe prints kubectl's lines.
    let (ok, ours, err) = d.ctl(&["describe", "deployment", "web"]);
    assert!(ok, "{err}");
    for key in [
        "Name:",
        "Namespace:",
        "Selector:",
        "Replicas:",
        "StrategyType:",
        "MinReadySeconds:",
        "RollingUpdateStrategy:",
        "NewReplicaSet:",
        "OldReplicaSets:",
        "  Available ",
        "  Progressing ",
        "   web:",
        "    Image:",
    ] {
        let line = |text: &str| {
            (text.lines())
                .find(|l| l.starts_with(key))
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        };
        assert!(line(&out).is_some(), "kubectl prints {key:?}:\n{out}");
        assert_eq!(
            line(&ours),
            line(&out),
            "{key:?}\nours:\n{ours}\nkubectl:\n{out}"
        );
    }
    for section in ["Pod Template:", "Conditions:", "Events:"] {
        assert!(ours.contains(section), "{section}\n{ours}");
    }
    let generations = |d: &Daemon| {
        let path = "jsonpath={.metadata.generation}/{.status.observedGeneration}";
        let (ok, out, err) = d.kubectl(&["get", "deployment", "web", "-o", path]);
        assert!(ok, "{err}");
        out
    };
    assert_eq!(generations(&d), "1/1");
    // A new template: rollout status waits for it and returns 0.
    let old_hash = web_pods(&d)[0].2.clone();
    d.write("web.yaml", &deployment(2, "2"));
    // A file write is not an API call: wait until rkubelet has read it.
    wait_until("the new template served", SECS30, || {
        let dep = d.get_json("/apis/apps/v1/namespaces/default/deployments/web");
        let env = &dep["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"];
        (env == "2").then_some(())
    });
    assert_eq!(generations(&d), "2/2", "the edit is generation 2, observed");
    let (ok, out, err) = d.kubectl(&["rollout", "status", "deployment/web", "--timeout=90s"]);
    assert!(ok, "rollout status: {out}{err}");
    assert!(out.contains("successfully rolled out"), "{out}");
    let pods = web_pods(&d);
    assert_eq!(pods.len(), 2, "{pods:?}");
    assert!(
        pods.iter().all(|p| p.2 != old_hash && p.3),
        "all new and ready: {pods:?}"
    );
    let (ok, out, err) = d.kubectl(&[
        "get",
        "events",
        "-o",
        "custom-columns=KIND:.involvedObject.kind,REASON:.reason,MESSAGE:.message",
    ]);
    assert!(ok, "{err}");
    assert!(
        out.lines().any(|l| l.starts_with("Deployment")
            && l.contains("ScalingReplicaSet")
            && l.contains("Scaled up replica set web-")),
        "{out}"
    );
    assert!(
        out.lines().any(|l| l.starts_with("ReplicaSet")
            && l.contains("SuccessfulCreate")
            && l.contains("Created pod: web-")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("ReplicaSet") && l.contains("SuccessfulDelete")),
        "{out}"
    );
    let (ok, out, err) = d.ctl(&["get", "deploy"]);
    assert!(ok, "{err}");
    assert!(
        out.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()[..4] == ["web", "2/2", "2", "2"]),
        "rkubelet get deploy:\n{out}"
    );
    let (ok, out, err) = d.ctl(&["get", "ds", "-o", "name"]);
    assert!(ok && out.trim().is_empty(), "{out}{err}");
    let (ok, out, err) = d.kubectl(&["get", "rs", "-l", "app=web", "-o", "name"]);
    assert!(ok, "{err}");
    assert!(out.lines().count() >= 1, "{out}");
}

#[test]
fn a_rollout_without_progress_exceeds_its_deadline_and_kubectl_rollout_status_fails() {
    let d = Daemon::start();
    d.write(
        "stuck.yaml",
        &format!(
            r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: stuck}}
spec:
  replicas: 1
  progressDeadlineSeconds: 3
  selector: {{matchLabels: {{app: stuck}}}}
  template:
    metadata: {{labels: {{app: stuck}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: {IMAGE}
        command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
        readinessProbe:
          exec: {{command: [cat, /never]}}
          periodSeconds: 1
"#
        ),
    );
    let condition = wait_until("Progressing=False", SECS30, || {
        // Not served (404) until rkubelet has read the file.
        let dep: serde_json::Value = serde_json::from_str(
            &d.get("/apis/apps/v1/namespaces/default/deployments/stuck")
                .ok()?,
        )
        .ok()?;
        (dep["status"]["conditions"].as_array()?.iter())
            .find(|c| c["type"] == "Progressing" && c["status"] == "False")
            .cloned()
    });
    assert_eq!(condition["reason"], "ProgressDeadlineExceeded");
    let (ok, out, err) = d.kubectl(&["rollout", "status", "deployment/stuck", "--timeout=20s"]);
    assert!(!ok, "rollout status fails: {out}");
    assert!(err.contains("exceeded its progress deadline"), "{out}{err}");
}

#[test]
fn a_tainted_node_runs_only_the_daemon_sets_that_tolerate_its_taints() {
    let d = Daemon::start_with(common::daemon::Opts {
        extra_args: vec![
            "--file-check-frequency".into(),
            "1s".into(),
            "--register-with-taints".into(),
            "dedicated=edge:NoSchedule".into(),
        ],
    });
    // The same DaemonSet once without and once with a toleration.
    d.write("plain.yaml", &daemon_set("plain", "", "1"));
    let tolerant = daemon_set("tolerant", "", "1").replace(
        "      terminationGracePeriodSeconds: 1\n",
        "      terminationGracePeriodSeconds: 1\n      tolerations: \
         [{key: dedicated, operator: Equal, value: edge, effect: NoSchedule}]\n",
    );
    d.write("tolerant.yaml", &tolerant);
    let name = wait_until("the tolerant pod running", SECS30, || {
        let pods = pods_named(&d, "tolerant-");
        let name = pods.first()?.0.clone();
        (d.containers().iter())
            .any(|c| c.running && c.cname() == "main" && c.label("io.kubernetes.pod.name") == name)
            .then_some(name)
    });
    let pod = (d.get_json("/pods")["items"]
        .as_array()
        .cloned()
        .unwrap_or_default())
    .into_iter()
    .find(|p| p["metadata"]["name"] == name.as_str())
    .expect("tolerant pod served");
    let tolerations = pod["spec"]["tolerations"].to_string();
    assert!(
        tolerations.contains("node.kubernetes.io/not-ready")
            && tolerations.contains("node.kubernetes.io/unschedulable"),
        "the DaemonSet controller's tolerations: {tolerations}"
    );
    let plain = wait_until("the plain DaemonSet's status", SECS30, || {
        let ds = d.get_json("/apis/apps/v1/namespaces/default/daemonsets/plain");
        ds["status"]["desiredNumberScheduled"].as_i64().map(|_| ds)
    });
    assert_eq!(plain["status"]["desiredNumberScheduled"], 0, "{plain}");
    assert!(
        pods_named(&d, "plain-").is_empty(),
        "no pod without the toleration"
    );
    let tol = d.get_json("/apis/apps/v1/namespaces/default/daemonsets/tolerant");
    assert_eq!(tol["status"]["desiredNumberScheduled"], 1, "{tol}");
    // The node shows its taint, to the API and to kubectl describe.
    let nodes = d.get_json("/api/v1/nodes");
    let taints = &nodes["items"][0]["spec"]["taints"];
    assert_eq!(
        taints,
        &serde_json::json!([{"key": "dedicated", "value": "edge", "effect": "NoSchedule"}]),
        "{nodes}"
    );
    let node = nodes["items"][0]["metadata"]["name"]
        .as_str()
        .expect("name");
    let (ok, out, err) = d.kubectl(&["describe", "node", node]);
    assert!(ok, "{err}");
    let line = out
        .lines()
        .find(|l| l.starts_with("Taints:"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(line.ends_with("dedicated=edge:NoSchedule"), "{line}");
}

#[test]
fn a_restart_that_adds_a_no_schedule_taint_keeps_the_running_daemon_set_pod() {
    let mut d = Daemon::start_with(common::daemon::Opts {
        extra_args: vec!["--file-check-frequency".into(), "1s".into()],
    });
    d.write("agent.yaml", &daemon_set("agent", "", "1"));
    let running = |d: &Daemon| -> Vec<String> {
        (d.containers().into_iter())
            .filter(|c| {
                c.running
                    && c.cname() == "main"
                    && c.label("io.kubernetes.pod.name").starts_with("agent-")
            })
            .map(|c| c.id)
            .collect()
    };
    let before = wait_until("the agent pod running", SECS30, || {
        let ids = running(&d);
        (ids.len() == 1).then_some(ids)
    });
    d.kill9();
    d.opts.extra_args.extend([
        "--register-with-taints".into(),
        "dedicated=edge:NoSchedule".into(),
    ]);
    d.spawn();
    // The controller has looked at the node with its new taint: the pod
    // no longer fits (misscheduled) but stays, as upstream keeps it.
    let ds = wait_until("the DaemonSet seen on the tainted node", SECS30, || {
        let ds = served(&d, "/apis/apps/v1/namespaces/default/daemonsets/agent")?;
        (ds["status"]["numberMisscheduled"] == 1).then_some(ds)
    });
    assert_eq!(ds["status"]["desiredNumberScheduled"], 0, "{ds}");
    // The pod is listed once its worker has reported (right after start,
    // the controller may see it before /pods does).
    let pods = wait_until("the agent pod listed again", SECS30, || {
        let pods = pods_named(&d, "agent-");
        (!pods.is_empty()).then_some(pods)
    });
    assert_eq!(pods.len(), 1, "{pods:?}");
    assert!(!pods[0].1, "not being deleted: {pods:?}");
    assert_eq!(running(&d), before, "the same container runs on");
    let events = d.get_json("/api/v1/events");
    let deletes: Vec<&serde_json::Value> = (events["items"].as_array().into_iter().flatten())
        .filter(|e| e["reason"] == "SuccessfulDelete")
        .collect();
    assert!(deletes.is_empty(), "{deletes:?}");
}

#[test]
fn a_deployment_pod_that_does_not_tolerate_the_node_taints_stays_pending() {
    let d = Daemon::start_with(common::daemon::Opts {
        extra_args: vec![
            "--file-check-frequency".into(),
            "1s".into(),
            "--register-with-taints".into(),
            "dedicated=edge:NoSchedule,maintenance:NoExecute".into(),
        ],
    });
    // `web` tolerates neither taint; `api` tolerates the NoSchedule one
    // only (so a NoExecute taint keeps it Pending too, not Failed).
    d.write("web.yaml", &deployment(2, "1"));
    let api = deployment(1, "1").replace("web", "api").replace(
        "      terminationGracePeriodSeconds: 1\n",
        "      terminationGracePeriodSeconds: 1\n      tolerations: \
         [{key: dedicated, operator: Exists, effect: NoSchedule}]\n",
    );
    d.write("api.yaml", &api);
    let pending = |prefix: &str, n: usize| {
        wait_until(&format!("{n} {prefix} pods pending"), SECS30, || {
            let list = d.get_json("/pods");
            let pods: Vec<serde_json::Value> = (list["items"].as_array().into_iter().flatten())
                .filter(|p| {
                    p["metadata"]["name"]
                        .as_str()
                        .is_some_and(|n| n.starts_with(prefix))
                })
                .cloned()
                .collect();
            (pods.len() == n && pods.iter().all(|p| p["status"]["phase"] == "Pending"))
                .then_some(pods)
        })
    };
    for (prefix, n, taint) in [
        ("web-", 2, "{dedicated: edge}"),
        ("api-", 1, "{maintenance: }"),
    ] {
        for p in pending(prefix, n) {
            let c = (p["status"]["conditions"].as_array().into_iter().flatten())
                .find(|c| c["type"] == "PodScheduled")
                .cloned()
                .unwrap_or_else(|| panic!("PodScheduled: {p}"));
            assert_eq!(c["status"], "False", "{p}");
            assert_eq!(c["reason"], "Unschedulable", "{p}");
            assert_eq!(
                c["message"],
                format!("0/1 nodes are available: 1 node(s) had untolerated taint {taint}."),
                "{p}"
            );
            let name = p["metadata"]["name"].as_str().expect("name").to_string();
            assert!(d.pod_containers(&name).is_empty(), "{name} not started");
            let events = wait_until("the FailedScheduling event", SECS30, || {
                let all = d.get_json("/api/v1/events");
                let mine: Vec<serde_json::Value> = (all["items"].as_array().into_iter().flatten())
                    .filter(|e| e["involvedObject"]["name"] == name.as_str())
                    .cloned()
                    .collect();
                (!mine.is_empty()).then_some(mine)
            });
            assert_eq!(events.len(), 1, "{events:?}");
            assert_eq!(events[0]["reason"], "FailedScheduling");
            assert_eq!(events[0]["message"], c["message"]);
        }
    }
    let dep = d.get_json("/apis/apps/v1/namespaces/default/deployments/web");
    assert_eq!(dep["status"]["unavailableReplicas"], 2, "{dep}");
}

#[test]
fn a_rollout_interrupted_by_kill_9_and_a_manifest_edit_goes_on_within_its_bounds() {
    let mut d = Daemon::start_with(common::daemon::Opts {
        extra_args: vec!["--file-check-frequency".into(), "1s".into()],
    });
    // maxSurge 1, maxUnavailable 0; minReadySeconds widens each step.
    let web = |replicas: u32, version: &str| {
        deployment(replicas, version).replace("  replicas:", "  minReadySeconds: 2\n  replicas:")
    };
    d.write("web.yaml", &web(3, "1"));
    let old = wait_until("3 ready replicas", Duration::from_secs(60), || {
        let pods = web_pods(&d);
        (pods.len() == 3 && pods.iter().all(|p| p.3)).then_some(pods)
    });
    let old_hash = old[0].2.clone();
    let old_uids: std::collections::BTreeSet<String> = old.iter().map(|p| p.1.clone()).collect();
    d.write("web.yaml", &web(3, "2"));
    wait_until("the surge pod", SECS30, || {
        (web_pods(&d).len() == 4).then_some(())
    });
    d.kill9();
    // The manifest changes again while rkubelet is down: the rollout goes
    // on to the newest template with the first two as old ReplicaSets.
    d.write("web.yaml", &web(3, "3"));
    d.spawn_detached();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let mut samples = 0;
    let final_pods = loop {
        // Docker first, then the API: a pod gone from Docker was deleted
        // when the API already counted what replaced it.
        let running = running_uids(&d);
        let old_running = running.iter().filter(|u| old_uids.contains(*u)).count();
        assert!(
            running.len() >= 3,
            "at least 3 pods run throughout: {running:?}"
        );
        let api = d.get("/pods").ok().map(|_| web_pods(&d));
        if let Some(pods) = &api {
            samples += 1;
            assert!(pods.len() <= 4, "at most 3 + 1 pods: {pods:?}");
            let new_ready = (pods.iter())
                .filter(|p| p.3 && !old_uids.contains(&p.1))
                .count();
            let old_in_api = pods.iter().filter(|p| old_uids.contains(&p.1)).count();
            assert!(
                old_in_api + new_ready >= 3 || old_running + new_ready >= 3,
                "an old pod went before its replacement was ready: {pods:?}, \
                 {old_running} old running"
            );
            let done =
                pods.len() == 3 && pods.iter().all(|p| p.3 && p.2 != old_hash) && old_running == 0;
            if done {
                break pods.clone();
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "rollout did not finish: {api:?}, running {running:?}\n{}",
            d.last_log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(samples > 10, "the API was sampled during the rollout");
    let hashes: std::collections::BTreeSet<&str> =
        final_pods.iter().map(|p| p.2.as_str()).collect();
    assert_eq!(hashes.len(), 1, "one template: {final_pods:?}");
    wait_until("only the new pods in Docker", SECS30, || {
        let uids: std::collections::BTreeSet<String> =
            final_pods.iter().map(|p| p.1.clone()).collect();
        (running_uids(&d) == uids).then_some(())
    });
    let (ok, out, err) = d.kubectl(&["rollout", "status", "deployment/web", "--timeout=30s"]);
    assert!(ok, "{out}{err}");
    let log = d.last_log();
    assert!(!log.contains("cannot read the workload records"), "{log}");

    // Two scale-downs make no pod (no pod carries their generation); a
    // restart must not count back.
    let generation = |d: &Daemon| {
        let dep = d.get_json("/apis/apps/v1/namespaces/default/deployments/web");
        dep["metadata"]["generation"].as_i64()
    };
    let g = generation(&d).expect("generation");
    for (replicas, expected) in [(2, g + 1), (1, g + 2)] {
        d.write("web.yaml", &web(replicas, "3"));
        wait_until(&format!("generation {expected}"), SECS30, || {
            (generation(&d) == Some(expected)).then_some(())
        });
    }
    d.kill9();
    d.spawn();
    let after = wait_until("the Deployment served again", SECS30, || {
        let dep = served(&d, "/apis/apps/v1/namespaces/default/deployments/web")?;
        let observed = dep["status"]["observedGeneration"].as_i64()?;
        Some((dep["metadata"]["generation"].as_i64(), observed))
    });
    assert_eq!(after, (Some(g + 2), g + 2), "never lower after a restart");
}

/// The object at `path` once the API serves it (a restarted rkubelet
/// answers before its controllers ran).
fn served(d: &Daemon, path: &str) -> Option<serde_json::Value> {
    serde_json::from_str(&d.get(path).ok()?).ok()
}
