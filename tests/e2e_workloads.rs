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
            "web.yaml: document 1: kind \"Service\" (apiVersion \"v1\") is not run by rkubelet (skipped; a manifest may hold Pod, ConfigMap, Secret, Deployment, ReplicaSet, DaemonSet and List)"
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
