//! The bundled examples are valid Kubernetes and the offline ones really run.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::daemon::{wait_until, Daemon};
use common::load_manifest;
use rkubelet::source::file::list_manifests;

/// The bundled manifests in `dir`, listed as the daemon lists its directory.
fn manifests(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    list_manifests(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

fn docker_logs(id: &str) -> String {
    let out = std::process::Command::new("docker")
        .args(["logs", id])
        .output()
        .expect("docker logs");
    let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    s
}

#[test]
fn every_bundled_manifest_loads_without_errors_or_warnings() {
    let mut pods = 0;
    for dir in ["etc/kubelet.d", "etc/kubelet.d/with-registry"] {
        for file in manifests(dir) {
            let content = std::fs::read(&file).expect("read");
            let loaded = load_manifest(&file.display().to_string(), &content);
            // The Pod+Service example warns about its Service, and only that.
            let expected: &[&str] = if file.ends_with("web-with-service.yaml") {
                &["document 1: kind \"Service\" (apiVersion \"v1\") is not run by rkubelet"]
            } else {
                &[]
            };
            assert_eq!(
                loaded.warnings.len(),
                expected.len(),
                "{}: {:?}",
                file.display(),
                loaded.warnings
            );
            for (w, e) in loaded.warnings.iter().zip(expected) {
                assert!(w.contains(e), "{}: {w}", file.display());
            }
            pods += loaded.pods.len();
        }
    }
    assert!(pods >= 8, "expected the seed's example pods, found {pods}");
}

#[test]
fn the_offline_examples_run_and_answer_on_their_host_ports() {
    let d = Daemon::start();
    for file in manifests("etc/kubelet.d") {
        let name = file
            .file_name()
            .expect("name")
            .to_string_lossy()
            .to_string();
        d.write(&name, &std::fs::read_to_string(&file).expect("read"));
    }
    let timeout = Duration::from_secs(30);
    d.wait_running("static-web", &["web"], timeout);
    d.wait_running("nginx", &["nginx"], timeout);
    d.wait_running("redis-php", &["frontend", "redis"], timeout);
    d.wait_running("hello", &["web"], timeout);
    let get = |port: u16| -> Option<String> {
        common::daemon::http_get(&format!("http://127.0.0.1:{port}/"))
    };
    let web = wait_until("static-web on :8080", Duration::from_secs(10), || get(8080));
    assert!(web.contains("hello from rkubelet"), "{web}");
    let front = wait_until(
        "the frontend reached redis over localhost",
        Duration::from_secs(20),
        || get(8081).filter(|b| b.contains("+PONG")),
    );
    assert!(front.contains("redis-php-"), "{front}");

    // ConfigMaps from the manifest directory: files served, variables printed.
    let cs = d.wait_running("cm-test-app", &["cm-test-app"], timeout);
    let xml = wait_until("server.xml on :8082", Duration::from_secs(10), || {
        common::daemon::http_get("http://127.0.0.1:8082/server.xml")
    });
    assert!(xml.contains("<Server port=\"8005\""), "{xml}");
    let app = cs.iter().find(|c| c.cname() == "cm-test-app").expect("app");
    let logs = wait_until(
        "cm-test-app prints its env",
        Duration::from_secs(10),
        || Some(docker_logs(&app.id)).filter(|l| l.contains("APPLOGLEVEL")),
    );
    assert!(
        logs.contains("APPLOGLEVEL=info APPDATADIR=/var/data"),
        "{logs}"
    );

    // The shared emptyDir: the reader tails what the writer appends.
    let cs = d.wait_running("volume-pod", &["writer", "reader"], timeout);
    let reader = cs.iter().find(|c| c.cname() == "reader").expect("reader");
    wait_until(
        "the reader shows the writer's lines",
        Duration::from_secs(15),
        || {
            docker_logs(&reader.id)
                .contains("writer is alive")
                .then_some(())
        },
    );
    // The Deployment: three Ready replicas named web-<hash>-<5>; the
    // DaemonSet's node selector does not match this node: no pod.
    let ready_web = |d: &Daemon| -> Vec<String> {
        let pods = d.get_json("/pods");
        (pods["items"].as_array().cloned().unwrap_or_default().iter())
            .filter(|p| p["metadata"]["labels"]["app"] == "web")
            .filter(|p| {
                (p["status"]["conditions"].as_array().into_iter().flatten())
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
            .filter_map(|p| p["metadata"]["name"].as_str().map(String::from))
            .collect()
    };
    let web = wait_until("3 ready web replicas", Duration::from_secs(30), || {
        Some(ready_web(&d)).filter(|w| w.len() == 3)
    });
    assert!(
        web.iter().all(|n| n.starts_with("web-") && n.len() > 12),
        "{web:?}"
    );
    let pods = d.get_json("/pods");
    assert!(
        !(pods["items"].as_array().into_iter().flatten())
            .any(|p| p["metadata"]["labels"]["app"] == "node-agent"),
        "no DaemonSet pod without the node label"
    );
    // The Job: three pods succeed, then it is Complete.
    let job = wait_until("the batch Job completes", Duration::from_secs(60), || {
        let j = d.get("/apis/batch/v1/namespaces/default/jobs/batch").ok()?;
        let j: serde_json::Value = serde_json::from_str(&j).ok()?;
        (j["status"]["succeeded"] == 3).then_some(j)
    });
    assert!(
        (job["status"]["conditions"].as_array().into_iter().flatten())
            .any(|c| c["type"] == "Complete" && c["status"] == "True"),
        "{job}"
    );
    let v = d.get_json("/manifests");
    assert_eq!(v["errors"].as_array().map(Vec::len), Some(0), "{v}");
}
