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
            "web.yaml: document 1: kind \"Service\" (apiVersion \"v1\") is not run by rkubelet (skipped; a manifest may hold Pod, ConfigMap, Secret and List)"
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
