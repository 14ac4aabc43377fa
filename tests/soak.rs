//! A bounded soak (about two and a half minutes): the real `rkubelet` binary
//! against the real Docker daemon with 15 pods crash-looping under a shrunk
//! crash-loop backoff. In a file of its own so it runs beside the others.
//!
//! Checked minute over minute: resident memory grows by at most 5 MiB, open
//! file descriptors and threads stay flat; at every sample at most two dead
//! instances are kept per container and every `restartCount` only grows;
//! at the end each pod's `restartCount` equals the number of its app
//! instances Docker created, minus one.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::time::{Duration, Instant};

use common::daemon::{wait_until, Daemon, DockerEvents, Opts, IMAGE};

const PODS: usize = 15;
const WARM_UP: Duration = Duration::from_secs(15);
const WINDOW: Duration = Duration::from_secs(60);
const SAMPLE_EVERY: Duration = Duration::from_secs(3);
const MIB: u64 = 1024 * 1024;

fn crashing_pod(name: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: {IMAGE}
    command: ["sh", "-c", "sleep 3; exit 1"]
"#
    )
}

/// One sample of the daemon process.
#[derive(Debug, Clone, Copy)]
struct Usage {
    rss: u64,
    threads: u64,
    fds: u64,
}

fn usage(pid: u32) -> Usage {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("rkubelet runs");
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
    };
    let fds = fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("fd dir")
        .count() as u64;
    Usage {
        rss: field("VmRSS:") * 1024,
        threads: field("Threads:"),
        fds,
    }
}

/// Each pod's `restartCount` from the API, by pod name.
fn restart_counts(d: &Daemon) -> BTreeMap<String, i64> {
    let list = d.get_json("/pods");
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let name = p["metadata"]["name"].as_str()?.to_string();
            let n = p["status"]["containerStatuses"][0]["restartCount"].as_i64()?;
            Some((name, n))
        })
        .collect()
}

#[test]
fn fifteen_crash_looping_pods_for_two_minutes_leak_no_memory_fds_threads_or_containers() {
    let mut opts = Opts::default();
    opts.extra_args.extend(
        [
            "--crash-loop-backoff-base",
            "2s",
            "--crash-loop-backoff-max",
            "4s",
        ]
        .map(String::from),
    );
    let d = Daemon::start_with(opts);
    let mut events = DockerEvents::start(&d.node);
    let pid = d.pid().expect("running");
    let names: Vec<String> = (0..PODS).map(|i| format!("soak{i}")).collect();
    for name in &names {
        d.write(&format!("{name}.yaml"), &crashing_pod(name));
    }
    wait_until("every pod restarted once", Duration::from_secs(120), || {
        let counts = restart_counts(&d);
        (counts.len() == PODS && counts.values().all(|n| *n >= 1)).then_some(())
    });

    let began = Instant::now();
    let mut windows: [Vec<Usage>; 2] = [Vec::new(), Vec::new()];
    let mut last_counts: BTreeMap<String, i64> = BTreeMap::new();
    while began.elapsed() < WARM_UP + 2 * WINDOW {
        std::thread::sleep(SAMPLE_EVERY);
        let u = usage(pid);
        let since = began.elapsed();
        if since > WARM_UP {
            let w = ((since - WARM_UP).as_secs() / WINDOW.as_secs()).min(1) as usize;
            windows[w].push(u);
        }
        // No more than the newest dead instance beside the current one.
        let mut per_pod: BTreeMap<String, usize> = BTreeMap::new();
        for c in d.containers() {
            if c.cname() == "app" && !c.running {
                *per_pod
                    .entry(c.label("io.kubernetes.pod.name").into())
                    .or_default() += 1;
            }
        }
        for (pod, dead) in &per_pod {
            assert!(*dead <= 2, "{pod} keeps {dead} dead instances");
        }
        let counts = restart_counts(&d);
        for (pod, n) in &counts {
            let before = last_counts.get(pod).copied().unwrap_or(0);
            assert!(
                *n >= before,
                "{pod}: restartCount went from {before} to {n}"
            );
        }
        last_counts = counts;
    }
    assert!(d.log().matches("panicked").count() == 0, "{}", d.log());

    let peak = |w: &[Usage], f: fn(&Usage) -> u64| w.iter().map(f).max().unwrap_or(0);
    let (a, b) = (&windows[0], &windows[1]);
    assert!(
        a.len() >= 10 && b.len() >= 10,
        "too few samples: {a:?} {b:?}"
    );
    let (rss_a, rss_b) = (peak(a, |u| u.rss), peak(b, |u| u.rss));
    let (fds_a, fds_b) = (peak(a, |u| u.fds), peak(b, |u| u.fds));
    let (thr_a, thr_b) = (peak(a, |u| u.threads), peak(b, |u| u.threads));
    eprintln!(
        "soak: RSS {:.1} -> {:.1} MiB, fds {fds_a} -> {fds_b}, threads {thr_a} -> {thr_b}",
        rss_a as f64 / MIB as f64,
        rss_b as f64 / MIB as f64
    );
    assert!(
        rss_b <= rss_a + 5 * MIB,
        "RSS grew from {rss_a} to {rss_b} bytes in a minute"
    );
    // Flat: a few connections or blocking threads more at one sample is
    // noise; a leak per restart (about 30 restarts a minute) is not.
    assert!(fds_b <= fds_a + 8, "open fds grew from {fds_a} to {fds_b}");
    assert!(thr_b <= thr_a + 4, "threads grew from {thr_a} to {thr_b}");

    // restartCount = instances Docker created - 1, at a moment when the pod
    // is not between a create and the status that follows it.
    for name in &names {
        let full = format!("{name}-{}", d.node);
        wait_until(
            &format!("{name}'s restartCount to match Docker's creates"),
            Duration::from_secs(60),
            || {
                let uid = d.api_pod(name)?["metadata"]["uid"].as_str()?.to_string();
                let n = restart_counts(&d).get(&full).copied()?;
                let created = events
                    .all()
                    .iter()
                    .filter(|e| e.uid == uid && e.container == "app" && e.action == "create")
                    .count() as i64;
                (created >= 2 && n == created - 1).then_some(())
            },
        );
    }
}
