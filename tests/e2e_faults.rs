//! End-to-end: the real `rkubelet` binary against the real Docker daemon,
//! under faults of its inputs and of itself: a manifest path that is missing
//! at startup, a manifest path naming a single file, a manifest rewritten
//! hundreds of times in a few seconds, rkubelet `kill -9`ed in a pod burst.
//! (Faults of the Docker daemon itself are in `faults_dockerd.rs`.)

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

/// The pod's UID as the API reports it.
fn api_uid(d: &Daemon, name: &str) -> Option<String> {
    d.api_pod(name)
        .and_then(|p| p["metadata"]["uid"].as_str().map(String::from))
}

/// What is wrong with the node, if anything: every named pod must have
/// exactly one sandbox and one `app` container, both running, under the UID
/// the API reports; nothing else may exist (no other UID, nothing left in
/// `created`), and the only pod directories are the current pods'.
fn unsettled(d: &Daemon, names: &[String]) -> Option<String> {
    let all = d.containers();
    let mut uids = BTreeSet::new();
    for name in names {
        let Some(uid) = api_uid(d, name) else {
            return Some(format!("{name} is not in the API"));
        };
        let mine: Vec<&Ctr> = all.iter().filter(|c| c.uid() == uid).collect();
        let sandboxes = mine.iter().filter(|c| c.cname() == "POD").count();
        let apps = mine.iter().filter(|c| c.cname() == "app").count();
        if sandboxes != 1 || apps != 1 || !mine.iter().all(|c| c.running) {
            let seen: Vec<_> = mine.iter().map(|c| (&c.name, c.running)).collect();
            return Some(format!("{name} ({uid}): {seen:?}"));
        }
        uids.insert(uid);
    }
    d.leftovers(&all, &uids)
}

/// Waits until [`unsettled`] finds nothing, then checks that it stays so
/// for a few seconds (a create that was still in flight would show up).
fn assert_settles(d: &Daemon, names: &[String], timeout: Duration) {
    let mut last = String::new();
    let settled = Instant::now() + timeout;
    while Instant::now() < settled {
        match unsettled(d, names) {
            None => break,
            Some(why) => last = why,
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(
        unsettled(d, names).is_none(),
        "not settled after {timeout:?}: {last}"
    );
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        if let Some(why) = unsettled(d, names) {
            panic!("the node changed after settling: {why}");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn a_manifest_rewritten_200_times_in_5_seconds_leaves_one_pod_and_nothing_created() {
    let d = Daemon::start();
    let began = Instant::now();
    for i in 0..200 {
        // Each version is new content, so a new UID: the previous pod is
        // terminated while its start may be anywhere.
        d.write(
            "churn.yaml",
            &pod("churn").replace("while true", &format!("v={i}; while true")),
        );
        std::thread::sleep(Duration::from_millis(25));
    }
    assert!(
        began.elapsed() < Duration::from_secs(15),
        "writing took too long"
    );
    let final_uid = wait_until("the last version in the API", SECS30, || {
        d.api_pod("churn")
            .filter(|p| p["spec"].to_string().contains("v=199;"))
            .and_then(|p| p["metadata"]["uid"].as_str().map(String::from))
    });
    assert_settles(&d, &["churn".to_string()], Duration::from_secs(120));
    assert_eq!(api_uid(&d, "churn"), Some(final_uid));
}

#[test]
fn rkubelet_killed_during_a_20_pod_burst_leaves_nothing_created_after_its_restart() {
    let mut d = Daemon::start();
    let names: Vec<String> = (0..20).map(|i| format!("burst{i}")).collect();
    for name in &names {
        d.write(&format!("{name}.yaml"), &pod(name));
    }
    // Kill it while something is half made: a container created, not started.
    let deadline = Instant::now() + SECS30;
    while Instant::now() < deadline {
        let out = common::daemon::run(std::process::Command::new("docker").args([
            "ps",
            "-aq",
            "--filter",
            "status=created",
            "--filter",
            &format!("label=io.rkubelet.node={}", d.node),
        ]));
        if !out.trim().is_empty() {
            break;
        }
    }
    d.kill9();
    d.spawn();
    assert_settles(&d, &names, Duration::from_secs(120));
}

/// Unmounts a mount point when dropped (the test's tmpfs), even on failure.
struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn a_full_disk_under_the_root_dir_holds_new_pods_with_the_reason_and_leaves_running_ones_alone() {
    let mut opts = common::daemon::Opts::default();
    opts.extra_args.extend(
        [
            "--crash-loop-backoff-base",
            "1s",
            "--crash-loop-backoff-max",
            "2s",
        ]
        .map(String::from),
    );
    let mut d = Daemon::start_with(opts);
    assert_eq!(d.sigterm(), Some(0));
    // A tiny root dir of its own, so it can be filled.
    let root = d.root_dir();
    common::daemon::run(std::process::Command::new("mount").args([
        "-t",
        "tmpfs",
        "-o",
        "size=1m",
        "tmpfs",
        root.to_str().expect("utf-8 path"),
    ]));
    let _unmount = Unmount(root.clone());
    d.spawn();
    d.write("before.yaml", &pod("before"));
    let before = d.wait_running("before", &["app"], SECS30);

    // Fill it up.
    let mut fill = fs::File::create(root.join("fill")).expect("fill file");
    let chunk = vec![0u8; 64 * 1024];
    use std::io::Write as _;
    while fill.write_all(&chunk).and_then(|()| fill.flush()).is_ok() {}
    drop(fill);

    d.write("after.yaml", &pod("after"));
    let waiting = wait_until("the new pod to report why it waits", SECS30, || {
        let p = d.api_pod("after")?;
        let w = &p["status"]["containerStatuses"][0]["state"]["waiting"];
        let message = w["message"].as_str()?.to_string();
        message.contains("No space left on device").then(|| {
            (
                w["reason"].as_str().unwrap_or_default().to_string(),
                message,
            )
        })
    });
    assert_eq!(waiting.0, "CreateContainerConfigError", "{waiting:?}");
    assert!(
        !d.pod_containers("after").iter().any(|c| c.cname() == "app"),
        "no app container without its files"
    );
    // The running pod is left alone, the daemon stays healthy.
    let now = d.pod_containers("before");
    assert_eq!(ids(&before), ids(&now));
    assert!(now.iter().all(|c| c.running), "{now:?}");
    assert_eq!(d.get("/healthz").as_deref(), Ok("ok"));
    assert!(d.exited().is_none());

    // Space again: the held pod starts on its next retry.
    fs::remove_file(root.join("fill")).expect("remove the fill file");
    d.wait_running("after", &["app"], SECS30);
    assert!(!d.log().contains("panicked"));
}
