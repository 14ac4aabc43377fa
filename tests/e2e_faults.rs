//! End-to-end: the real `rkubelet` binary against the real Docker daemon,
//! under faults of its inputs: a manifest path that is missing at startup,
//! a manifest path naming a single file.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::time::{Duration, Instant};

use common::daemon::{wait_until, Ctr, Daemon, IMAGE};

const SECS30: Duration = Duration::from_secs(30);

fn pod(name: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: app
    image: {IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
"#
    )
}

fn ids(cs: &[Ctr]) -> BTreeSet<String> {
    cs.iter().map(|c| c.id.clone()).collect()
}

/// The errors `/manifests` reports, as one string.
fn manifest_errors(d: &Daemon) -> String {
    d.get_json("/manifests")["errors"].to_string()
}

#[test]
fn a_manifest_directory_missing_at_startup_keeps_the_pods_it_had_and_they_are_adopted_once_it_is_back(
) {
    let mut d = Daemon::start();
    d.write("web.yaml", &pod("web"));
    let before = d.wait_running("web", &["app"], SECS30);
    assert_eq!(d.sigterm(), Some(0));

    // A late mount: the directory is not there when rkubelet starts.
    let dir = d.manifest_dir();
    let away = dir.with_extension("away");
    fs::rename(&dir, &away).expect("move the manifest directory away");
    d.spawn();
    wait_until("the missing directory reported", SECS30, || {
        let errors = manifest_errors(&d);
        errors
            .contains("cannot read the manifest directory")
            .then_some(())
    });
    wait_until("the initial sync", SECS30, || {
        d.last_log().contains("initial sync").then_some(())
    });
    // Several file-check periods (1 s): the pod is left alone throughout.
    let watch_until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < watch_until {
        let now = d.pod_containers("web");
        assert_eq!(ids(&before), ids(&now), "the pod's containers changed");
        assert!(
            now.iter().all(|c| c.running),
            "a container of the pod stopped: {now:?}\n{}",
            d.last_log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let log = d.last_log();
    assert!(
        log.contains("cannot read the manifest directory"),
        "the problem is logged:\n{log}"
    );
    assert!(!log.contains("terminating"), "{log}");

    // The directory comes back: the pod is adopted, not restarted.
    fs::rename(&away, &dir).expect("put the manifest directory back");
    wait_until("web adopted and reported running", SECS30, || {
        let ok = !manifest_errors(&d).contains("cannot read")
            && d.api_pod("web")
                .is_some_and(|p| p["status"]["phase"] == "Running");
        ok.then_some(())
    });
    let after = d.pod_containers("web");
    assert_eq!(ids(&before), ids(&after), "containers were replaced");
    assert!(after.iter().all(|c| c.running));

    // From now on the normal cleanup applies: a removed manifest's pod goes.
    d.remove("web.yaml");
    d.wait_gone("web", SECS30);
}

#[test]
fn config_naming_a_single_manifest_file_runs_its_pods() {
    let mut d = Daemon::start();
    assert_eq!(d.sigterm(), Some(0));
    // `--config` now names a file (any name, as for the kubelet).
    let path = d.manifest_dir();
    fs::remove_dir(&path).expect("remove the empty manifest directory");
    fs::write(&path, pod("single")).expect("write the manifest file");
    d.spawn();
    d.wait_running("single", &["app"], SECS30);
    assert_eq!(manifest_errors(&d), "[]");

    // A new version renamed over the file is picked up.
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, pod("other")).expect("write the new version");
    fs::rename(&tmp, &path).expect("rename over the manifest file");
    d.wait_running("other", &["app"], SECS30);
    d.wait_gone("single", SECS30);
}
