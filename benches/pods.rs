//! The pod benchmark: rkubelet against raw Docker, in one run.
//!
//! `cargo bench --bench pods` builds the release binary, starts it on a
//! private manifest directory with its own node name (`bench-<random>`), and
//! measures — each rkubelet figure next to a raw-Docker baseline that the
//! benchmark itself performs through bollard with the minimal work for the
//! same pod (pause container, then the apps in parallel, joined to it):
//!
//! 1. pod start: manifest written → every container running (pause + 2 apps);
//! 2. bursts of 50 and 100 pods (pause + 1 app); the baseline uses the best
//!    pod concurrency found by a short search;
//! 3. teardown: manifest removed → every container gone (SIGTERM-aware apps),
//!    and the 100-pod burst removed at once;
//! 4. crash recovery: an app's process exits (`kill -USR1 1` through an
//!    exec) → its replacement runs; the baseline restarts the container
//!    itself on the `die` event;
//! 5. footprint: rkubelet's RSS and CPU over 60 s with 100 idle pods, the
//!    same while `/metrics` is scraped every second (as Prometheus would),
//!    and with 100 httpGet readiness probes every second; the binary size;
//! 6. manifest reaction: file renamed into place → first Docker `create`;
//! 7. watches: 100 idle pods (pause + 1 app) with 20 open watches on
//!    `/api/v1/pods?watch=true` read by the benchmark — rkubelet's RSS and
//!    CPU over 30 s, then 20 pod status changes (an app's process exits,
//!    `kill -USR1 1` through an exec) and, for each watcher, the time from
//!    Docker's `die` event to the arrival of the first `MODIFIED` whose
//!    object shows the exit.
//!
//! 8. scale curve (`curve`): bursts of 10, 50, 100, 200 and 300 pods
//!    (pause + 1 app; `--curve=10,50` or `RKUBELET_BENCH_CURVE=10,50`
//!    chooses the sizes), each against raw Docker in the same run: time to
//!    all running, time to all removed at once, rkubelet's idle RSS and CPU
//!    at that size over 31 s (one relist), the relists' time and the Docker
//!    calls per relist (from rkubelet's `/metrics`), per-pod figures; a
//!    table, and a plot in `target/bench/curve.svg`.
//!
//! Everything is observed on Docker's events stream (`timeNano`), never
//! through rkubelet's API — except the watch latencies, which are what a
//! watcher of the API receives. The table goes to stdout, the results to
//! `target/bench/pods.json`. `-- --smoke` (also what `cargo test
//! --all-targets` runs, with the debug binary) is a one-minute check that
//! the benchmark still works: few repetitions, tiny bursts, 2 s footprint
//! windows, no probe footprint (the watch scenario with 2 pods, 2 watches, 2 changes and a 2 s window;
//! the workloads scenario with 2 replicas; the curve at 2 and 4 pods).
//! `-- --only=watch,bursts` runs only the named scenarios (`start`, `crash`,
//! `bursts`, `probes`, `watch`, `workloads`, `curve`, `podman`) and writes
//! `pods-only-<names>.json`.
//!
//! `podman`: the pod start scenario's pod, alternately through rkubelet
//! and `podman kube play` / `kube down` (wall-clock), podman run privately
//! (own storage and `containers.conf` in a temporary directory, removed
//! afterwards); skipped with the reason printed and recorded when podman
//! is absent or does not work (`RKUBELET_BENCH_PODMAN` chooses the binary).
//!
//! `workloads`: a 50-replica Deployment written → all its containers
//! started, against 50 static pods written at once in the same run (≤ 1.10×);
//! a rolling update of 10 replicas (`maxSurge: 2, maxUnavailable: 0`, no
//! readiness probe) per step, against the same steps (2 pods created and
//! started) done one after the other on raw Docker; the difference is the
//! overhead per step (≤ 30 ms).
//!
//! Every container it creates carries either its rkubelet's node label or
//! `io.rkubelet.bench=<run>`, and only those are removed — on success, on a
//! panic (a drop guard) and on Ctrl-C.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, EventsOptions, RemoveContainerOptionsBuilder,
    StopContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::future::join_all;
use futures_util::StreamExt;
use rkubelet::runtime::pause;
use serde_json::{json, Value};
use tokio::sync::{Notify, Semaphore};

// The integration tests' helpers: Docker connection and images, random
// names, free ports, clock.
#[path = "../tests/common/mod.rs"]
mod common;

use common::{free_port, now_nanos, random_hex, TEST_IMAGE as IMAGE};

const BENCH_LABEL: &str = "io.rkubelet.bench";
const BENCH_POD_LABEL: &str = "io.rkubelet.bench.pod";
const NODE_LABEL: &str = "io.rkubelet.node";
const POD_NAME_LABEL: &str = "io.kubernetes.pod.name";
const CONTAINER_NAME_LABEL: &str = "io.kubernetes.container.name";
/// Exits 0 on SIGTERM (so a stop is prompt) and 1 on SIGUSR1 (a crash).
const SLEEPER: &str = "trap 'exit 0' TERM; trap 'exit 1' USR1; sleep 3600 & wait";
/// busybox httpd on 8080 for the readiness probes, exiting on SIGTERM.
const HTTPD: &str = "trap 'exit 0' TERM; httpd -f -p 8080 -h /var/www & wait";

// ------------------------------------------------------------------ settings

#[derive(Debug, Clone)]
struct Settings {
    smoke: bool,
    start_reps: usize,
    crash_pods: usize,
    search_pods: usize,
    search_concurrency: Vec<usize>,
    bursts: Vec<usize>,
    footprint: Option<Duration>,
    probe_pods: usize,
    /// Exec probes: pods with an exec readiness probe every 1 s, window.
    exec_probe_pods: usize,
    exec_window: Duration,
    /// Watch scenario: idle pods, open watches, status changes, footprint window.
    watch_pods: usize,
    watchers: usize,
    watch_changes: usize,
    watch_window: Duration,
    /// Workloads scenario: Deployment replicas against as many static pods;
    /// replicas of the rolling update (`maxSurge: 2, maxUnavailable: 0`).
    deployment_replicas: usize,
    rollout_replicas: usize,
    /// Scale curve: burst sizes (`--curve=10,50` or `RKUBELET_BENCH_CURVE`)
    /// and the idle window at each size (long enough for one relist).
    curve: Vec<usize>,
    curve_window: Duration,
    /// `podman` scenario: repetitions of the pod up and down, alternating
    /// rkubelet and `podman kube play`.
    podman_reps: usize,
    /// The scenarios to run (`--only=`); all when `None`.
    only: Option<BTreeSet<String>>,
}

/// The scenarios, in the order they run (`--only=` names).
const SCENARIOS: [&str; 8] = [
    "start",
    "crash",
    "bursts",
    "probes",
    "watch",
    "workloads",
    "curve",
    "podman",
];

impl Settings {
    fn full() -> Self {
        Settings {
            smoke: false,
            start_reps: 20,
            crash_pods: 10,
            search_pods: 20,
            search_concurrency: vec![2, 4, 8],
            bursts: vec![50, 100],
            footprint: Some(Duration::from_secs(60)),
            probe_pods: 100,
            exec_probe_pods: 10,
            exec_window: Duration::from_secs(30),
            watch_pods: 100,
            watchers: 20,
            watch_changes: 20,
            watch_window: Duration::from_secs(30),
            deployment_replicas: 50,
            rollout_replicas: 10,
            curve: vec![10, 50, 100, 200, 300],
            // rkubelet relists every 30 s: a 31 s window holds one.
            curve_window: Duration::from_secs(31),
            podman_reps: 10,
            only: None,
        }
    }
    fn smoke() -> Self {
        Settings {
            smoke: true,
            start_reps: 3,
            crash_pods: 1,
            search_pods: 3,
            search_concurrency: vec![4],
            bursts: vec![4],
            footprint: Some(Duration::from_secs(2)),
            probe_pods: 0,
            exec_probe_pods: 0,
            exec_window: Duration::from_secs(2),
            watch_pods: 2,
            watchers: 2,
            watch_changes: 2,
            watch_window: Duration::from_secs(2),
            deployment_replicas: 2,
            rollout_replicas: 2,
            curve: vec![2, 4],
            curve_window: Duration::from_secs(2),
            podman_reps: 2,
            only: None,
        }
    }

    /// Whether scenario `name` runs.
    fn runs(&self, name: &str) -> bool {
        self.only.as_ref().is_none_or(|o| o.contains(name))
    }
}

// ------------------------------------------------------------------ cleanup

/// What must be undone however the benchmark ends.
struct CleanupState {
    node: String,
    run: String,
    child: Option<Child>,
    dirs: Vec<PathBuf>,
    /// The `podman` scenario's private podman, while it is set up.
    podman: Option<Podman>,
}

static CLEANUP: Mutex<Option<CleanupState>> = Mutex::new(None);

/// Kills the benchmark's rkubelet and removes every container of its node and
/// of its baseline (by label only). Idempotent.
fn cleanup_now() {
    let state = match CLEANUP.lock() {
        Ok(mut g) => g.take(),
        Err(p) => p.into_inner().take(),
    };
    let Some(mut state) = state else { return };
    if let Some(child) = state.child.as_mut() {
        let _ = child.kill();
        let _ = child.wait();
    }
    for filter in [
        format!("label={NODE_LABEL}={}", state.node),
        format!("label={BENCH_LABEL}={}", state.run),
    ] {
        let out = Command::new("docker")
            .args(["ps", "-aq", "--filter", &filter])
            .output();
        let ids: Vec<String> = out
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        if !ids.is_empty() {
            let _ = Command::new("docker")
                .args(["rm", "-f", "-v"])
                .args(&ids)
                .stdout(Stdio::null())
                .status();
        }
    }
    if let Some(podman) = &state.podman {
        podman.teardown();
    }
    for d in &state.dirs {
        let _ = std::fs::remove_dir_all(d);
    }
}

struct CleanupGuard;

impl Drop for CleanupGuard {
    fn drop(&mut self) {
        cleanup_now();
    }
}

fn with_cleanup<T>(f: impl FnOnce(&mut CleanupState) -> T) -> Option<T> {
    CLEANUP.lock().ok()?.as_mut().map(f)
}

// ------------------------------------------------------------------ helpers

fn ms(nanos: i64) -> f64 {
    nanos as f64 / 1e6
}

/// Nearest-rank percentile of `v` (milliseconds).
fn pct(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * s.len() as f64).ceil() as usize;
    s[rank.clamp(1, s.len()) - 1]
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn parse_docker_time(s: &str) -> Option<i64> {
    let t: k8s_openapi::jiff::Timestamp = s.parse().ok()?;
    i64::try_from(t.as_nanosecond()).ok()
}

/// CPU ticks (user + system, with reaped children) of dockerd, containerd
/// and the containerd shims: Docker's side of the work. Includes what other
/// users of the daemon cause.
fn docker_cpu_ticks() -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut total = 0;
    for entry in dir.flatten() {
        let path = entry.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        let comm = comm.trim();
        if !(comm == "dockerd" || comm == "containerd" || comm.starts_with("containerd-shim")) {
            continue;
        }
        let stat = std::fs::read_to_string(path.join("stat")).unwrap_or_default();
        let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
        let f: Vec<u64> = after
            .split_whitespace()
            .map(|v| v.parse().unwrap_or(0))
            .collect();
        // utime, stime, cutime, cstime: fields 14–17 (11–14 after the command).
        total += f.get(11..15).map_or(0, |v| v.iter().sum());
    }
    total
}

/// Prometheus series summed over their labels.
const RELIST_COUNT: &str = "kubelet_pleg_relist_duration_seconds_count";
const RELIST_SUM: &str = "kubelet_pleg_relist_duration_seconds_sum";
const DOCKER_CALLS: &str = "rkubelet_docker_request_duration_seconds_count";

/// The sum of every sample of series `name` (any labels) in a
/// Prometheus text exposition.
fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

// ------------------------------------------------------------------ curve

/// One size of the scale curve (times in ms).
#[derive(Debug, Clone)]
struct CurvePoint {
    pods: usize,
    rk_up: f64,
    raw_up: f64,
    rk_down: f64,
    raw_down: f64,
    /// rkubelet's CPU seconds during the burst.
    burst_cpu_s: f64,
    idle_cpu_pct: f64,
    idle_rss_mib: f64,
    /// Mean time of the relists in the idle window.
    relist_ms: Option<f64>,
    /// Docker calls in the idle window per relist (the relist's list and
    /// whatever else ran).
    docker_calls_per_relist: Option<f64>,
    docker_calls_idle: f64,
    relists: f64,
    /// Idle RSS above the RSS before the curve, per pod.
    rss_per_pod_kib: f64,
}

impl CurvePoint {
    fn json(&self) -> Value {
        json!({
            "pods": self.pods,
            "up_ms": {"rkubelet": self.rk_up, "raw": self.raw_up, "ratio": self.rk_up / self.raw_up},
            "down_ms": {"rkubelet": self.rk_down, "raw": self.raw_down, "ratio": self.rk_down / self.raw_down},
            "burst_cpu_s": self.burst_cpu_s,
            "idle_cpu_pct": self.idle_cpu_pct,
            "idle_rss_mib": self.idle_rss_mib,
            "relist_ms": self.relist_ms,
            "relists_in_window": self.relists,
            "docker_calls_in_window": self.docker_calls_idle,
            "docker_calls_per_relist": self.docker_calls_per_relist,
            "per_pod": {
                "up_ms": self.rk_up / self.pods as f64,
                "down_ms": self.rk_down / self.pods as f64,
                "rss_kib": self.rss_per_pod_kib,
                "burst_cpu_ms": self.burst_cpu_s * 1e3 / self.pods as f64,
            },
        })
    }
}

/// The curve as a markdown table.
fn curve_table(points: &[CurvePoint], rss0: f64) -> String {
    let opt = |v: Option<f64>| v.map_or("—".to_string(), fmt_num);
    let mut t = format!(
        "| pods | all running: rkubelet / raw (ratio) | all removed: rkubelet / raw (ratio) | \
         per pod up / down | idle RSS (per pod above {} MiB) | idle CPU | one relist: time, Docker calls |\n\
         |---:|---:|---:|---:|---:|---:|---:|\n",
        fmt_num(rss0)
    );
    for p in points {
        let n = p.pods as f64;
        t.push_str(&format!(
            "| {} | {} / {} ms ({:.2}×) | {} / {} ms ({:.2}×) | {} / {} ms | {} MiB ({} KiB) | {} % | {} ms, {} |\n",
            p.pods,
            fmt_num(p.rk_up),
            fmt_num(p.raw_up),
            p.rk_up / p.raw_up,
            fmt_num(p.rk_down),
            fmt_num(p.raw_down),
            p.rk_down / p.raw_down,
            fmt_num(p.rk_up / n),
            fmt_num(p.rk_down / n),
            fmt_num(p.idle_rss_mib),
            fmt_num(p.rss_per_pod_kib),
            fmt_num(p.idle_cpu_pct),
            opt(p.relist_ms),
            opt(p.docker_calls_per_relist),
        ));
    }
    t
}

/// Draws the curve to an SVG file: time to all running and to all
/// removed (rkubelet and raw Docker) against pods, and rkubelet's idle RSS.
fn plot_curve(points: &[CurvePoint], path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    use plotters::prelude::*;
    let root = SVGBackend::new(path, (1100, 450)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(650);
    let max_pods = points.iter().map(|p| p.pods).max().unwrap_or(1) as f64;
    let max_s = points
        .iter()
        .flat_map(|p| [p.rk_up, p.raw_up, p.rk_down, p.raw_down])
        .fold(1.0f64, f64::max)
        / 1e3;
    let mut chart = ChartBuilder::on(&left)
        .caption(
            "rkubelet vs raw Docker: burst of N pods",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d(0f64..max_pods * 1.05, 0f64..max_s * 1.1)?;
    chart
        .configure_mesh()
        .x_desc("pods (pause + 1 app)")
        .y_desc("seconds")
        .draw()?;
    type Series = (&'static str, RGBColor, fn(&CurvePoint) -> f64);
    let series: [Series; 4] = [
        ("rkubelet: all running", BLUE, |p| p.rk_up),
        ("raw Docker: all running", CYAN, |p| p.raw_up),
        ("rkubelet: all removed", RED, |p| p.rk_down),
        ("raw Docker: all removed", MAGENTA, |p| p.raw_down),
    ];
    for (label, color, f) in series {
        let data: Vec<(f64, f64)> = points.iter().map(|p| (p.pods as f64, f(p) / 1e3)).collect();
        chart
            .draw_series(LineSeries::new(data.clone(), color.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
        chart.draw_series(
            data.into_iter()
                .map(|xy| Circle::new(xy, 3, color.filled())),
        )?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    let max_rss = points.iter().map(|p| p.idle_rss_mib).fold(1.0f64, f64::max);
    let mut chart = ChartBuilder::on(&right)
        .caption("rkubelet idle RSS", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d(0f64..max_pods * 1.05, 0f64..max_rss * 1.2)?;
    chart.configure_mesh().x_desc("pods").y_desc("MiB").draw()?;
    let data: Vec<(f64, f64)> = points
        .iter()
        .map(|p| (p.pods as f64, p.idle_rss_mib))
        .collect();
    chart.draw_series(LineSeries::new(data.clone(), BLUE.stroke_width(2)))?;
    chart.draw_series(data.into_iter().map(|xy| Circle::new(xy, 3, BLUE.filled())))?;
    root.present()?;
    Ok(())
}

// ------------------------------------------------------------------ events

/// One container event of this benchmark's containers.
#[derive(Debug, Clone)]
struct Ev {
    id: String,
    action: String,
    /// Docker's `timeNano`.
    t: i64,
    /// `io.kubernetes.pod.name` (rkubelet) or `io.rkubelet.bench.pod` (baseline).
    pod: String,
    /// `io.kubernetes.container.name`.
    ctr: String,
}

/// What a background reader received, in order, with a wake-up for those
/// waiting on it (Docker's events, the watchers' events).
struct Log<T> {
    items: Mutex<Vec<T>>,
    notify: Notify,
}

impl<T> Log<T> {
    fn new() -> Self {
        Log {
            items: Mutex::new(Vec::new()),
            notify: Notify::new(),
        }
    }

    /// Changes the log (under its lock) and wakes every waiter.
    fn update(&self, f: impl FnOnce(&mut Vec<T>)) {
        if let Ok(mut items) = self.items.lock() {
            f(&mut items);
        }
        self.notify.notify_waiters();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<T>> {
        self.items.lock().expect("log")
    }

    /// Position to look from for what happens next.
    fn cursor(&self) -> usize {
        self.items.lock().map(|l| l.len()).unwrap_or(0)
    }

    /// Waits until `f` finds what it looks for in the entries since `from`;
    /// panics after `timeout` naming `what`.
    async fn wait<R>(
        &self,
        from: usize,
        timeout: Duration,
        what: &str,
        mut f: impl FnMut(&[T]) -> Option<R>,
    ) -> R {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let log = self.lock();
                if let Some(v) = f(&log[from.min(log.len())..]) {
                    return v;
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("timed out after {timeout:?} waiting for {what}");
            }
        }
    }
}

/// Every event of our containers since the benchmark began.
struct Events {
    log: Log<Ev>,
}

impl Events {
    /// Follows Docker's events stream from `since` (so nothing is lost while
    /// it connects), keeping the events of `node`'s and `run`'s containers.
    fn start(docker: Docker, node: String, run: String) -> Arc<Events> {
        let events = Arc::new(Events { log: Log::new() });
        let ev = events.clone();
        let mut since = now_nanos() - 1_000_000_000;
        tokio::spawn(async move {
            for _attempt in 0..100 {
                let filters = HashMap::from([("type".to_string(), vec!["container".to_string()])]);
                let options = EventsOptions {
                    since: Some(format!(
                        "{}.{:09}",
                        since / 1_000_000_000,
                        since % 1_000_000_000
                    )),
                    until: None,
                    filters: Some(filters),
                };
                let mut stream = docker.events(Some(options));
                while let Some(Ok(m)) = stream.next().await {
                    let Some(actor) = m.actor else { continue };
                    let attrs = actor.attributes.unwrap_or_default();
                    let ours = attrs.get(NODE_LABEL) == Some(&node)
                        || attrs.get(BENCH_LABEL) == Some(&run);
                    let t = m.time_nano.unwrap_or(0);
                    since = since.max(t);
                    if !ours {
                        continue;
                    }
                    let action = m.action.unwrap_or_default();
                    let action = action.split(':').next().unwrap_or_default().to_string();
                    let pod = attrs
                        .get(POD_NAME_LABEL)
                        .or_else(|| attrs.get(BENCH_POD_LABEL))
                        .cloned()
                        .unwrap_or_default();
                    let e = Ev {
                        id: actor.id.unwrap_or_default(),
                        action,
                        t,
                        pod,
                        ctr: attrs.get(CONTAINER_NAME_LABEL).cloned().unwrap_or_default(),
                    };
                    ev.log.update(|log| {
                        // Resuming with `since` may repeat an event.
                        let dup = log
                            .iter()
                            .rev()
                            .take(64)
                            .any(|x| x.t == e.t && x.id == e.id && x.action == e.action);
                        if !dup {
                            log.push(e);
                        }
                    });
                }
                eprintln!("bench: docker events stream ended; resuming");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        events
    }

    /// Position to look from for what happens next.
    fn cursor(&self) -> usize {
        self.log.cursor()
    }

    /// Waits until `f` finds what it looks for in the events since `from`;
    /// panics after `timeout` naming `what`.
    async fn wait<T>(
        &self,
        from: usize,
        timeout: Duration,
        what: &str,
        f: impl FnMut(&[Ev]) -> Option<T>,
    ) -> T {
        self.log.wait(from, timeout, what, f).await
    }

    /// Waits for `action` on `n` distinct containers of the given pods; the
    /// container ids and the time of the last one.
    async fn wait_containers(
        &self,
        from: usize,
        pods: &BTreeSet<String>,
        action: &str,
        n: usize,
        timeout: Duration,
    ) -> (Vec<String>, i64) {
        let what = format!("{action} of {n} containers of {} pod(s)", pods.len());
        self.wait(from, timeout, &what, |evs| {
            let mut seen: BTreeMap<&str, i64> = BTreeMap::new();
            for e in evs
                .iter()
                .filter(|e| e.action == action && pods.contains(&e.pod))
            {
                seen.entry(&e.id).or_insert(e.t);
            }
            (seen.len() >= n).then(|| {
                let last = seen.values().copied().max().unwrap_or(0);
                (seen.keys().map(|s| s.to_string()).collect(), last)
            })
        })
        .await
    }

    /// Waits for `action` on every container in `ids`; the last time.
    async fn wait_ids(&self, from: usize, ids: &[String], action: &str, timeout: Duration) -> i64 {
        let want: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
        let what = format!("{action} of {} container(s)", ids.len());
        self.wait(from, timeout, &what, |evs| {
            let mut seen: BTreeMap<&str, i64> = BTreeMap::new();
            for e in evs
                .iter()
                .filter(|e| e.action == action && want.contains(e.id.as_str()))
            {
                seen.entry(&e.id).or_insert(e.t);
            }
            (seen.len() == want.len()).then(|| seen.values().copied().max().unwrap_or(0))
        })
        .await
    }
}

// ------------------------------------------------------------------ the daemon

/// The rkubelet under test.
struct Daemon {
    pid: u32,
    manifests: PathBuf,
    node: String,
    /// The read-only API's port.
    port: u16,
}

impl Daemon {
    fn start(bin: &Path, base: &Path, node: &str, log: &Path) -> Daemon {
        let manifests = base.join("manifests");
        let root = base.join("root");
        std::fs::create_dir_all(&manifests).expect("manifest dir");
        let port = free_port();
        let log_file = std::fs::File::create(log).expect("rkubelet log file");
        let child = Command::new(bin)
            .arg("--config")
            .arg(&manifests)
            .arg("--root-dir")
            .arg(&root)
            .args(["--hostname-override", node])
            .args(["--read-only-port", &port.to_string()])
            .args(["--port", "0"])
            // The scale curve goes to 300 pods (the default is 110).
            .args(["--max-pods", "1000"])
            // More flags to try (e.g. `--max-parallel-teardowns 8`).
            .args(
                std::env::var("RKUBELET_BENCH_DAEMON_ARGS")
                    .unwrap_or_default()
                    .split_whitespace(),
            )
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log"))
            .stderr(log_file)
            .spawn()
            .expect("start rkubelet");
        let pid = child.id();
        with_cleanup(|s| s.child = Some(child));
        // Up when /healthz answers.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ok = std::net::TcpStream::connect(("127.0.0.1", port))
                .and_then(|mut s| {
                    s.set_read_timeout(Some(Duration::from_secs(2)))?;
                    s.write_all(b"GET /healthz HTTP/1.0\r\n\r\n")?;
                    let mut body = String::new();
                    s.read_to_string(&mut body)?;
                    Ok(body.contains("ok"))
                })
                .unwrap_or(false);
            if ok {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "rkubelet did not answer /healthz within 60 s; see {}",
                log.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Daemon {
            pid,
            manifests,
            node: node.to_string(),
            port,
        }
    }

    /// The pod's name as rkubelet runs it (`<name>-<node>`).
    fn pod_name(&self, name: &str) -> String {
        format!("{name}-{}", self.node)
    }

    /// Writes manifests (to hidden temporary names), then renames them all
    /// into place; returns the time right before the first rename.
    fn put(&self, manifests: &[(String, String)]) -> i64 {
        let mut staged = Vec::new();
        for (name, text) in manifests {
            let tmp = self.manifests.join(format!(".{name}.tmp"));
            std::fs::write(&tmp, text).expect("write manifest");
            staged.push((tmp, self.manifests.join(format!("{name}.yaml"))));
        }
        let t0 = now_nanos();
        for (tmp, path) in staged {
            std::fs::rename(tmp, path).expect("rename manifest");
        }
        t0
    }

    /// Removes manifests; the time right before the first removal.
    fn delete(&self, names: &[String]) -> i64 {
        let t0 = now_nanos();
        for name in names {
            std::fs::remove_file(self.manifests.join(format!("{name}.yaml")))
                .expect("remove manifest");
        }
        t0
    }

    /// (utime + stime in clock ticks, VmRSS in KiB, VmHWM in KiB).
    fn usage(&self) -> (u64, u64, u64) {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).unwrap_or_default();
        let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
        // Fields after the command: state is field 3, utime 14, stime 15.
        let f: Vec<&str> = after.split_whitespace().collect();
        let tick = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        let cpu = tick(11) + tick(12);
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        let kib = |key: &str| {
            status
                .lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (cpu, kib("VmRSS:"), kib("VmHWM:"))
    }

    /// rkubelet's `/metrics` (empty when it does not answer).
    fn metrics(&self) -> String {
        std::net::TcpStream::connect(("127.0.0.1", self.port))
            .and_then(|mut s| {
                s.set_read_timeout(Some(Duration::from_secs(10)))?;
                s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n")?;
                let mut body = String::new();
                s.read_to_string(&mut body)?;
                Ok(body)
            })
            .unwrap_or_default()
    }

    fn alive(&self) -> bool {
        Path::new(&format!("/proc/{}/stat", self.pid)).exists()
    }
}

fn clk_tck() -> f64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .map_or(100.0, |v| v as f64)
}

/// A pod manifest: `apps` containers running `script`, optionally with an
/// httpGet readiness probe on 8080 every second.
fn manifest(name: &str, apps: &[&str], script: &str, probe: bool) -> String {
    let command = serde_json::to_string(&["sh", "-c", script]).expect("json");
    let mut y =
        format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  containers:\n");
    for app in apps {
        y.push_str(&format!(
            "  - name: {app}\n    image: {IMAGE}\n    command: {command}\n"
        ));
        if probe {
            y.push_str(
                "    readinessProbe:\n      httpGet: {path: /, port: 8080}\n      periodSeconds: 1\n",
            );
        }
    }
    y
}

/// A Deployment of `replicas` pods (pause + 1 app), `maxSurge: 2,
/// maxUnavailable: 0`; `version` goes into the template (an env var), so a
/// new version is a rollout.
fn deployment(name: &str, replicas: usize, version: &str) -> String {
    let command = serde_json::to_string(&["sh", "-c", SLEEPER]).expect("json");
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}}}\nspec:\n  \
         replicas: {replicas}\n  selector: {{matchLabels: {{app: {name}}}}}\n  strategy:\n    \
         type: RollingUpdate\n    rollingUpdate: {{maxSurge: 2, maxUnavailable: 0}}\n  \
         template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec:\n      \
         terminationGracePeriodSeconds: 2\n      containers:\n      - name: a\n        \
         image: {IMAGE}\n        env: [{{name: VERSION, value: \"{version}\"}}]\n        \
         command: {command}\n"
    )
}

// ------------------------------------------------------------------ raw Docker

/// The baseline: the same pods through the Docker API, minimal work.
struct Raw {
    docker: Docker,
    run: String,
}

/// A baseline pod's containers.
#[derive(Debug, Clone)]
struct RawPod {
    name: String,
    pause: String,
    apps: Vec<String>,
}

impl RawPod {
    fn all(&self) -> Vec<String> {
        let mut v = self.apps.clone();
        v.push(self.pause.clone());
        v
    }
}

impl Raw {
    fn labels(&self, pod: &str, ctr: &str) -> HashMap<String, String> {
        HashMap::from([
            (BENCH_LABEL.to_string(), self.run.clone()),
            (BENCH_POD_LABEL.to_string(), pod.to_string()),
            (CONTAINER_NAME_LABEL.to_string(), ctr.to_string()),
        ])
    }

    async fn create(&self, name: &str, body: ContainerCreateBody) -> String {
        let options = CreateContainerOptionsBuilder::default().name(name).build();
        self.docker
            .create_container(Some(options), body)
            .await
            .unwrap_or_else(|e| panic!("create {name}: {e}"))
            .id
    }

    async fn start(&self, id: &str) {
        self.docker
            .start_container(id, None)
            .await
            .unwrap_or_else(|e| panic!("start {id}: {e}"));
    }

    /// Creates and starts an app container joined to `pause`; the time it took.
    async fn run_app(&self, pod: &str, app: &str, pause: &str, script: &str) -> (String, f64) {
        let t = Instant::now();
        let join = format!("container:{pause}");
        let body = ContainerCreateBody {
            image: Some(IMAGE.into()),
            entrypoint: Some(vec!["sh".into(), "-c".into(), script.into()]),
            labels: Some(self.labels(pod, app)),
            host_config: Some(HostConfig {
                network_mode: Some(join.clone()),
                ipc_mode: Some(join),
                ..Default::default()
            }),
            ..Default::default()
        };
        let id = self
            .create(
                &format!("bench_{}_{pod}_{app}_{}", self.run, random_hex(3)),
                body,
            )
            .await;
        self.start(&id).await;
        (id, t.elapsed().as_secs_f64() * 1e3)
    }

    /// Pause container, then the apps in parallel — what rkubelet does for
    /// a pod, and nothing else.
    async fn start_pod(&self, pod: &str, apps: &[&str], script: &str) -> RawPod {
        let body = ContainerCreateBody {
            image: Some(pause::DEFAULT_IMAGE.into()),
            hostname: Some(pod.into()),
            labels: Some(self.labels(pod, "POD")),
            host_config: Some(HostConfig {
                network_mode: Some("default".into()),
                ipc_mode: Some("shareable".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let pause = self
            .create(&format!("bench_{}_{pod}_POD", self.run), body)
            .await;
        self.start(&pause).await;
        let apps = join_all(
            apps.iter()
                .map(|app| self.run_app(pod, app, &pause, script)),
        )
        .await;
        RawPod {
            name: pod.to_string(),
            pause,
            apps: apps.into_iter().map(|(id, _)| id).collect(),
        }
    }

    async fn stop(&self, id: &str) {
        let options = StopContainerOptionsBuilder::default().t(30).build();
        let _ = self.docker.stop_container(id, Some(options)).await;
    }

    async fn remove(&self, id: &str) {
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        let _ = self.docker.remove_container(id, Some(options)).await;
    }

    /// What rkubelet does to a pod, minimally: stop the apps in parallel,
    /// stop the pause container, remove all of them.
    async fn stop_remove_pod(&self, pod: &RawPod) {
        join_all(pod.apps.iter().map(|id| self.stop(id))).await;
        self.stop(&pod.pause).await;
        join_all(pod.all().iter().map(|id| self.remove(id))).await;
    }

    /// Starts pods with at most `concurrency` in flight.
    async fn start_pods(&self, names: &[String], concurrency: usize, script: &str) -> Vec<RawPod> {
        let sem = Semaphore::new(concurrency);
        join_all(names.iter().map(|n| async {
            let _p = sem.acquire().await.expect("semaphore");
            self.start_pod(n, &["a"], script).await
        }))
        .await
    }

    async fn stop_remove_pods(&self, pods: &[RawPod], concurrency: usize) {
        let sem = Semaphore::new(concurrency);
        join_all(pods.iter().map(|p| async {
            let _p = sem.acquire().await.expect("semaphore");
            self.stop_remove_pod(p).await
        }))
        .await;
    }

    /// Unmeasured clean-up: `rm -f` of every container of these pods.
    async fn discard(&self, pods: &[RawPod]) {
        let ids: Vec<String> = pods.iter().flat_map(RawPod::all).collect();
        let sem = Semaphore::new(8);
        join_all(ids.iter().map(|id| async {
            let _p = sem.acquire().await.expect("semaphore");
            self.remove(id).await
        }))
        .await;
    }

    async fn finished_at(&self, id: &str) -> Option<i64> {
        let c = self.docker.inspect_container(id, None).await.ok()?;
        parse_docker_time(c.state?.finished_at.as_deref()?)
    }

    /// Makes the container's process exit with 1 on its own. Through an
    /// exec of `kill -USR1 1`, not Docker's kill: that emits a `kill` event
    /// before the process dies, which a real crash does not.
    async fn crash(&self, id: &str) {
        use bollard::exec::{CreateExecOptions, StartExecOptions};
        let options = CreateExecOptions::<String> {
            cmd: Some(vec!["kill".into(), "-USR1".into(), "1".into()]),
            ..Default::default()
        };
        let exec = self
            .docker
            .create_exec(id, options)
            .await
            .unwrap_or_else(|e| panic!("exec in {id}: {e}"));
        self.docker
            .start_exec(
                &exec.id,
                Some(StartExecOptions {
                    detach: true,
                    ..Default::default()
                }),
            )
            .await
            .unwrap_or_else(|e| panic!("exec in {id}: {e}"));
    }
}

// ------------------------------------------------------------------ podman

/// Podman, run privately for the `podman` scenario: its own storage
/// (`--root`, `--runroot`, `--tmpdir`) and its own `containers.conf`
/// (`CONTAINERS_CONF`) in `dir`, all removed afterwards.
#[derive(Debug, Clone)]
struct Podman {
    /// The binary (`RKUBELET_BENCH_PODMAN`, else `podman`).
    bin: String,
    dir: PathBuf,
    /// `podman --version`.
    version: String,
    /// Names podman gave the loaded images: (pause, busybox).
    pause_image: String,
    app_image: String,
    /// Host paths podman writes whatever `--root` says (netavark's run dir,
    /// the blob-info cache) that were absent before: removed afterwards.
    host_leftovers: Vec<PathBuf>,
    /// netavark's iptables chains were absent before: removed afterwards.
    remove_chains: bool,
}

/// Where podman 4.3 writes outside its `--root`/`--runroot`/`--tmpdir`.
const PODMAN_HOST_PATHS: [&str; 2] = ["/run/containers/networks", "/var/lib/containers/cache"];

/// A soft limit of this process from `/proc/self/limits` (`Max processes`,
/// `Max open files`).
fn soft_limit(what: &str) -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with(what))?;
    let rest = line.strip_prefix(what)?;
    match rest.split_whitespace().next()? {
        "unlimited" => Some(u64::MAX),
        v => v.parse().ok(),
    }
}

/// Whether netavark's iptables chains exist (any table).
fn netavark_chains() -> bool {
    ["filter", "nat"].iter().any(|t| {
        Command::new("iptables")
            .args(["-t", t, "-S"])
            .stderr(Stdio::null())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).contains("NETAVARK"))
            .unwrap_or(false)
    })
}

/// Removes netavark's iptables chains and the jumps to them (left behind
/// after its last container, even with podman's state removed).
fn remove_netavark_chains() {
    for table in ["filter", "nat"] {
        let Ok(out) = Command::new("iptables")
            .args(["-t", table, "-S"])
            .stderr(Stdio::null())
            .output()
        else {
            continue;
        };
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let mut chains = Vec::new();
        for line in text.lines() {
            if let Some(chain) = line.strip_prefix("-N NETAVARK") {
                chains.push(format!("NETAVARK{chain}"));
            } else if let Some(rule) = line.strip_prefix("-A ") {
                let chain = rule.split_whitespace().next().unwrap_or_default();
                if !chain.starts_with("NETAVARK") && rule.contains("-j NETAVARK") {
                    // `iptables -S` quotes like a shell.
                    let _ = Command::new("sh")
                        .arg("-c")
                        .arg(format!("iptables -t {table} -D {rule}"))
                        .stderr(Stdio::null())
                        .status();
                }
            }
        }
        for op in ["-F", "-X"] {
            for chain in &chains {
                let _ = Command::new("iptables")
                    .args(["-t", table, op, chain])
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}

impl Podman {
    /// A podman command on the private storage and configuration.
    fn command(bin: &str, dir: &Path) -> Command {
        let mut c = Command::new(bin);
        c.env("CONTAINERS_CONF", dir.join("containers.conf"))
            .arg("--root")
            .arg(dir.join("root"))
            .arg("--runroot")
            .arg(dir.join("run"))
            .arg("--tmpdir")
            .arg(dir.join("tmp"))
            .stdin(Stdio::null());
        c
    }

    fn cmd(&self) -> Command {
        Self::command(&self.bin, &self.dir)
    }

    /// Runs a podman command to its end; stdout, or what went wrong.
    fn run(bin: &str, dir: &Path, args: &[&str]) -> Result<String, String> {
        let out = Self::command(bin, dir)
            .args(args)
            .output()
            .map_err(|e| format!("{bin} {}: {e}", args.join(" ")))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).to_string())
        } else {
            Err(format!(
                "{bin} {}: {}: {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// Checks podman is there and works, configures it privately in `dir`,
    /// loads the pause and app images from Docker. The reason when it
    /// cannot.
    fn setup(dir: &Path) -> Result<Podman, String> {
        let bin = std::env::var("RKUBELET_BENCH_PODMAN").unwrap_or_else(|_| "podman".into());
        let version = Command::new(&bin)
            .arg("--version")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{bin}: {e}"))?;
        if !version.status.success() {
            return Err(format!("{bin} --version: {}", version.status));
        }
        let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
        let host_leftovers: Vec<PathBuf> = PODMAN_HOST_PATHS
            .iter()
            .map(PathBuf::from)
            .filter(|p| !p.exists())
            .collect();
        let mut p = Podman {
            bin: bin.clone(),
            dir: dir.to_path_buf(),
            version,
            pause_image: String::new(),
            app_image: String::new(),
            host_leftovers,
            remove_chains: !netavark_chains(),
        };
        std::fs::create_dir_all(dir.join("tmp")).map_err(|e| format!("{}: {e}", dir.display()))?;
        // From here on, whatever podman creates is removed however we end.
        with_cleanup(|s| s.podman = Some(p.clone()));
        // Below this machine's limits: podman's defaults (and its own
        // RLIMIT_NPROC, 32768 here) make runc fail to set them.
        let nofile = soft_limit("Max open files")
            .unwrap_or(1024)
            .div_ceil(2)
            .min(8192);
        let nproc = soft_limit("Max processes")
            .unwrap_or(1024)
            .div_ceil(2)
            .min(8192);
        let conf = |infra: &str| {
            format!(
                "[containers]\ndefault_ulimits = [\"nofile={nofile}:{nofile}\", \"nproc={nproc}:{nproc}\"]\n\
                 [engine]\ninfra_image = \"{infra}\"\ncgroup_manager = \"cgroupfs\"\n\
                 events_logger = \"file\"\n[network]\nnetwork_config_dir = \"{}\"\n",
                dir.join("net").display()
            )
        };
        let write_conf = |text: String| {
            std::fs::write(dir.join("containers.conf"), text)
                .map_err(|e| format!("containers.conf: {e}"))
        };
        write_conf(conf(""))?;
        Self::run(
            &bin,
            dir,
            &["info", "--format", "{{.Host.OCIRuntime.Name}}"],
        )?;
        let load = |image: &str| -> Result<String, String> {
            let mut save = Command::new("docker")
                .args(["save", image])
                .stdout(Stdio::piped())
                .spawn()
                .map_err(|e| format!("docker save {image}: {e}"))?;
            let stdout = save.stdout.take().expect("piped");
            let out = Self::command(&bin, dir)
                .arg("load")
                .stdin(stdout)
                .output()
                .map_err(|e| format!("podman load: {e}"))?;
            let _ = save.wait();
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            if !out.status.success() {
                return Err(format!(
                    "docker save {image} | podman load: {}: {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            text.lines()
                .find_map(|l| l.strip_prefix("Loaded image: "))
                .map(|s| s.trim().to_string())
                .ok_or_else(|| format!("podman load {image}: no image name in {text:?}"))
        };
        p.pause_image = load(pause::DEFAULT_IMAGE)?;
        p.app_image = load(IMAGE)?;
        write_conf(conf(&p.pause_image))?;
        Ok(p)
    }

    /// `args`, timed (ms); fails the benchmark with podman's output.
    async fn timed(&self, args: &[&str]) -> f64 {
        let mut c = tokio::process::Command::from(self.cmd());
        c.args(args);
        let t = Instant::now();
        let out = c
            .output()
            .await
            .unwrap_or_else(|e| panic!("podman {}: {e}", args.join(" ")));
        let elapsed = t.elapsed().as_secs_f64() * 1e3;
        assert!(
            out.status.success(),
            "podman {}: {}\n{}\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        elapsed
    }

    /// Every container podman has: (name, state).
    fn containers(&self) -> Vec<(String, String)> {
        let out = Self::run(&self.bin, &self.dir, &["ps", "-a", "--format", "json"])
            .unwrap_or_else(|e| panic!("{e}"));
        let list: Value = serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("podman ps --format json: {e}: {out:?}"));
        list.as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                let name = c["Names"][0].as_str().unwrap_or_default().to_string();
                (name, c["State"].as_str().unwrap_or_default().to_string())
            })
            .collect()
    }

    fn pods(&self) -> Vec<String> {
        Self::run(&self.bin, &self.dir, &["pod", "ps", "-q"])
            .unwrap_or_else(|e| panic!("{e}"))
            .split_whitespace()
            .map(String::from)
            .collect()
    }

    /// Removes every pod and container, podman's storage and configuration,
    /// and what it left on the host. Idempotent.
    fn teardown(&self) {
        let quiet = |args: &[&str]| {
            let _ = self
                .cmd()
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        };
        quiet(&["pod", "rm", "-a", "-f", "-t", "0"]);
        quiet(&["rm", "-a", "-f", "-t", "0"]);
        quiet(&["system", "reset", "-f"]);
        // Mounts podman may have left (innermost first), then the files.
        if let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") {
            let mut points: Vec<&str> = info
                .lines()
                .filter_map(|l| l.split_whitespace().nth(4))
                .filter(|m| Path::new(m).starts_with(&self.dir))
                .collect();
            points.sort_by_key(|m| std::cmp::Reverse(m.len()));
            for m in points {
                let _ = Command::new("umount").args(["-l", m]).status();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        for p in &self.host_leftovers {
            let _ = std::fs::remove_dir_all(p);
        }
        if self.remove_chains {
            remove_netavark_chains();
        }
    }
}

// ------------------------------------------------------------------ results

/// One line of the table.
#[derive(Debug, Clone)]
struct Row {
    name: String,
    rk: Option<f64>,
    raw: Option<f64>,
    unit: &'static str,
    /// Ratio limit rkubelet / raw, or an absolute limit on rkubelet's figure.
    target: Target,
}

#[derive(Debug, Clone, Copy)]
enum Target {
    None,
    Ratio(f64),
    AtMost(f64),
}

impl Row {
    fn ratio(&self) -> Option<f64> {
        match (self.rk, self.raw) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        }
    }
    fn met(&self) -> Option<bool> {
        match self.target {
            Target::None => None,
            Target::Ratio(r) => self.ratio().map(|x| x <= r),
            Target::AtMost(v) => self.rk.map(|x| x <= v),
        }
    }
    fn target_text(&self) -> String {
        match self.target {
            Target::None => "—".into(),
            Target::Ratio(r) => format!("≤ {r:.2}×"),
            Target::AtMost(v) => format!("≤ {} {}", fmt_num(v), self.unit),
        }
    }
    fn json(&self) -> Value {
        json!({
            "name": self.name,
            "unit": self.unit,
            "rkubelet": self.rk,
            "raw_docker": self.raw,
            "ratio": self.ratio(),
            "target": self.target_text(),
            "met": self.met(),
        })
    }
}

fn fmt_num(v: f64) -> String {
    if v.is_nan() {
        "—".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

#[derive(Default)]
struct Report {
    rows: Vec<Row>,
    extra: serde_json::Map<String, Value>,
}

impl Report {
    fn row(
        &mut self,
        name: impl Into<String>,
        rk: Option<f64>,
        raw: Option<f64>,
        unit: &'static str,
        target: Target,
    ) {
        let row = Row {
            name: name.into(),
            rk,
            raw,
            unit,
            target,
        };
        println!(
            "  {:<52} rkubelet {:>9} {unit:<3}  raw {:>9}",
            row.name,
            row.rk.map_or("—".into(), fmt_num),
            row.raw.map_or("—".into(), fmt_num),
        );
        self.rows.push(row);
    }

    fn table(&self) -> String {
        let mut s = String::new();
        s.push_str("| operation | rkubelet | raw Docker | ratio | target | met? |\n");
        s.push_str("| --- | ---: | ---: | ---: | --- | --- |\n");
        for r in &self.rows {
            let val =
                |v: Option<f64>| v.map_or("—".into(), |v| format!("{} {}", fmt_num(v), r.unit));
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                r.name,
                val(r.rk),
                val(r.raw),
                r.ratio().map_or("—".into(), |x| format!("{x:.2}×")),
                r.target_text(),
                match r.met() {
                    None => "—",
                    Some(true) => "yes",
                    Some(false) => "**no**",
                }
            ));
        }
        s
    }
}

// ------------------------------------------------------------------ watchers

/// One `WatchEvent` a watcher received.
#[derive(Debug, Clone)]
struct Seen {
    watcher: usize,
    /// When its line arrived (wall clock, ns, comparable with `timeNano`).
    t: i64,
    /// `ADDED`, `MODIFIED`, `DELETED`, …
    kind: String,
    pod: String,
    /// The object shows app container `a` exited (terminated now or last,
    /// or restarted).
    exited: bool,
}

/// Whether a pod object shows its container `a` exited at least once.
fn shows_exit(pod: &Value) -> bool {
    let statuses = pod["status"]["containerStatuses"].as_array();
    statuses.into_iter().flatten().any(|c| {
        c["name"] == "a"
            && (c["state"]["terminated"].is_object()
                || c["lastState"]["terminated"].is_object()
                || c["restartCount"].as_u64().unwrap_or(0) > 0)
    })
}

/// Open watches on `/api/v1/pods?watch=true`, read continuously; what
/// every one of them received.
struct Watchers {
    log: Log<Seen>,
}

impl Watchers {
    /// Opens `n` watches (one connection each) on rkubelet's read-only API.
    async fn open(port: u16, n: usize) -> (Arc<Watchers>, Vec<tokio::task::JoinHandle<()>>) {
        let w = Arc::new(Watchers { log: Log::new() });
        let url = format!("http://127.0.0.1:{port}/api/v1/pods?watch=true");
        let mut tasks = Vec::new();
        for i in 0..n {
            let client = rkubelet::http_client::client_builder()
                .build()
                .expect("http client");
            let resp = client
                .get(&url)
                .send()
                .await
                .unwrap_or_else(|e| panic!("watch {url}: {e}"));
            assert!(resp.status().is_success(), "watch {url}: {}", resp.status());
            let w2 = w.clone();
            tasks.push(tokio::spawn(async move {
                let mut stream = resp.bytes_stream();
                let mut buf: Vec<u8> = Vec::new();
                while let Some(Ok(chunk)) = stream.next().await {
                    let t = now_nanos();
                    buf.extend_from_slice(&chunk);
                    let mut got = Vec::new();
                    while let Some(nl) = buf.iter().position(|&b| b == b'\n') {
                        let line: Vec<u8> = buf.drain(..=nl).collect();
                        let Ok(ev) = serde_json::from_slice::<Value>(&line) else {
                            continue;
                        };
                        got.push(Seen {
                            watcher: i,
                            t,
                            kind: ev["type"].as_str().unwrap_or_default().to_string(),
                            pod: ev["object"]["metadata"]["name"]
                                .as_str()
                                .unwrap_or_default()
                                .to_string(),
                            exited: shows_exit(&ev["object"]),
                        });
                    }
                    if !got.is_empty() {
                        w2.log.update(|log| log.extend(got));
                    }
                }
            }));
        }
        (w, tasks)
    }

    /// Waits until `f` finds what it looks for in everything received;
    /// panics after `timeout` naming `what`.
    async fn wait<T>(
        &self,
        timeout: Duration,
        what: &str,
        f: impl FnMut(&[Seen]) -> Option<T>,
    ) -> T {
        self.log.wait(0, timeout, what, f).await
    }
}

// ------------------------------------------------------------------ the phases

struct Ctx {
    settings: Settings,
    events: Arc<Events>,
    raw: Raw,
    daemon: Daemon,
    report: Report,
    seq: usize,
    /// The raw baseline's best pod concurrency, once searched.
    raw_concurrency: Option<usize>,
}

impl Ctx {
    /// Makes container `id`'s main process exit 1 and waits for its `die`
    /// event: the events cursor from before the crash, and the die time.
    async fn crash(&self, id: &String) -> (usize, i64) {
        let from = self.events.cursor();
        self.raw.crash(id).await;
        let ids = std::slice::from_ref(id);
        let died = (self.events)
            .wait_ids(from, ids, "die", Duration::from_secs(30))
            .await;
        (from, died)
    }

    fn name(&mut self, prefix: &str) -> String {
        self.seq += 1;
        format!("{prefix}{}", self.seq)
    }

    /// rkubelet: one pod (pause + 2 apps); (reaction, start, teardown) in ns.
    async fn rk_pod_cycle(&mut self) -> (i64, i64, i64) {
        let name = self.name("ps");
        let pod = self.daemon.pod_name(&name);
        let pods = BTreeSet::from([pod]);
        let from = self.events.cursor();
        let t0 = self
            .daemon
            .put(&[(name.clone(), manifest(&name, &["a", "b"], SLEEPER, false))]);
        let (ids, started) = self
            .events
            .wait_containers(from, &pods, "start", 3, Duration::from_secs(60))
            .await;
        let created = self
            .events
            .wait(from, Duration::from_secs(1), "create", |evs| {
                evs.iter()
                    .filter(|e| e.action == "create" && pods.contains(&e.pod))
                    .map(|e| e.t)
                    .min()
            })
            .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let from = self.events.cursor();
        let t1 = self.daemon.delete(&[name]);
        let gone = self
            .events
            .wait_ids(from, &ids, "destroy", Duration::from_secs(60))
            .await;
        (created - t0, started - t0, gone - t1)
    }

    /// Baseline: the same pod through the API; (start, teardown) in ns.
    async fn raw_pod_cycle(&mut self) -> (i64, i64) {
        let name = self.name("rps");
        let from = self.events.cursor();
        let t0 = now_nanos();
        let pod = self.raw.start_pod(&name, &["a", "b"], SLEEPER).await;
        let started = self
            .events
            .wait_ids(from, &pod.all(), "start", Duration::from_secs(60))
            .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let from = self.events.cursor();
        let t1 = now_nanos();
        self.raw.stop_remove_pod(&pod).await;
        let gone = self
            .events
            .wait_ids(from, &pod.all(), "destroy", Duration::from_secs(60))
            .await;
        (started - t0, gone - t1)
    }

    async fn pod_start(&mut self) {
        let reps = self.settings.start_reps;
        println!("== pod start / teardown / manifest reaction: {reps} repetitions each");
        // Warm-up, not measured.
        self.rk_pod_cycle().await;
        self.raw_pod_cycle().await;
        let (mut react, mut rk_start, mut rk_down, mut raw_start, mut raw_down) =
            (vec![], vec![], vec![], vec![], vec![]);
        for _ in 0..reps {
            let (r, s, d) = self.rk_pod_cycle().await;
            react.push(ms(r));
            rk_start.push(ms(s));
            rk_down.push(ms(d));
            let (s, d) = self.raw_pod_cycle().await;
            raw_start.push(ms(s));
            raw_down.push(ms(d));
        }
        let rep = &mut self.report;
        for p in [50.0, 95.0] {
            rep.row(
                format!("pod start (pause + 2 apps), p{p}"),
                Some(pct(&rk_start, p)),
                Some(pct(&raw_start, p)),
                "ms",
                Target::Ratio(1.10),
            );
        }
        for p in [50.0, 95.0] {
            rep.row(
                format!("teardown (SIGTERM-aware pod), p{p}"),
                Some(pct(&rk_down, p)),
                Some(pct(&raw_down, p)),
                "ms",
                Target::Ratio(1.20),
            );
        }
        for p in [50.0, 95.0] {
            rep.row(
                format!("manifest written → first create, p{p}"),
                Some(pct(&react, p)),
                None,
                "ms",
                Target::AtMost(50.0),
            );
        }
        rep.extra.insert(
            "pod_start_samples_ms".into(),
            json!({"rkubelet": rk_start, "raw": raw_start}),
        );
        rep.extra.insert(
            "teardown_samples_ms".into(),
            json!({"rkubelet": rk_down, "raw": raw_down}),
        );
        rep.extra
            .insert("manifest_reaction_samples_ms".into(), json!(react));
    }

    /// podman: the pod start scenario's pod through `podman kube play`;
    /// (up, down) in ms: the wall-clock of `kube play` (it returns once the
    /// containers are started) and of `kube down`, each checked after.
    async fn podman_pod_cycle(&mut self, p: &Podman) -> (f64, f64) {
        let name = self.name("pm");
        // The same pod, with the images as podman named them (no pulls).
        let yaml = manifest(&name, &["a", "b"], SLEEPER, false).replace(
            &format!("image: {IMAGE}\n"),
            &format!("image: {}\n    imagePullPolicy: Never\n", p.app_image),
        );
        let file = p.dir.join(format!("{name}.yaml"));
        std::fs::write(&file, yaml).expect("write podman pod yaml");
        let file = file.to_string_lossy().to_string();
        let up = p.timed(&["kube", "play", &file]).await;
        let ctrs = p.containers();
        let running = ctrs.iter().filter(|(_, s)| s == "running").count();
        assert!(
            ctrs.len() == 3 && running == 3,
            "podman kube play {name}: want 3 running containers (infra + 2 apps), got {ctrs:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        let down = p.timed(&["kube", "down", &file]).await;
        let (ctrs, pods) = (p.containers(), p.pods());
        assert!(
            ctrs.is_empty() && pods.is_empty(),
            "podman kube down {name}: left containers {ctrs:?}, pods {pods:?}"
        );
        (up, down)
    }

    /// rkubelet against `podman kube play` (private storage and
    /// configuration), alternating, on the pod start scenario's pod.
    /// Skipped, with the reason printed and recorded, without podman.
    async fn podman(&mut self, base: &Path) {
        let reps = self.settings.podman_reps;
        let p = match Podman::setup(&base.join("podman")) {
            Ok(p) => p,
            Err(reason) => {
                println!("== podman: skipped ({reason})");
                self.report
                    .extra
                    .insert("podman".into(), json!({ "skipped": reason }));
                if let Some(Some(p)) = with_cleanup(|s| s.podman.take()) {
                    p.teardown();
                }
                return;
            }
        };
        println!(
            "== vs podman kube play ({}): {reps} repetitions each",
            p.version
        );
        // Warm-up, not measured.
        self.rk_pod_cycle().await;
        self.podman_pod_cycle(&p).await;
        let (mut rk_up, mut rk_down, mut pm_up, mut pm_down) = (vec![], vec![], vec![], vec![]);
        for _ in 0..reps {
            let (_, s, d) = self.rk_pod_cycle().await;
            rk_up.push(ms(s));
            rk_down.push(ms(d));
            let (u, d) = self.podman_pod_cycle(&p).await;
            pm_up.push(u);
            pm_down.push(d);
        }
        // "raw" is podman in these rows; ≤ 1.00×: faster than podman.
        let rep = &mut self.report;
        for p in [50.0, 95.0] {
            rep.row(
                format!("vs podman kube play: pod up (pause + 2 apps), p{p}"),
                Some(pct(&rk_up, p)),
                Some(pct(&pm_up, p)),
                "ms",
                Target::Ratio(1.0),
            );
        }
        for p in [50.0, 95.0] {
            rep.row(
                format!("vs podman kube play: pod down (pause + 2 apps), p{p}"),
                Some(pct(&rk_down, p)),
                Some(pct(&pm_down, p)),
                "ms",
                Target::Ratio(1.0),
            );
        }
        rep.extra.insert(
            "podman".into(),
            json!({
                "version": p.version,
                "images": [p.pause_image, p.app_image],
                "containers_conf": std::fs::read_to_string(p.dir.join("containers.conf")).unwrap_or_default(),
                "up_samples_ms": {"rkubelet": rk_up, "podman": pm_up},
                "down_samples_ms": {"rkubelet": rk_down, "podman": pm_down},
            }),
        );
        if let Some(Some(p)) = with_cleanup(|s| s.podman.take()) {
            p.teardown();
        }
    }

    async fn crash_recovery(&mut self) {
        let n = self.settings.crash_pods;
        println!("== crash recovery: {} crashes each", n * 2);
        // rkubelet: n pods of 2 apps, each app crashed once (its first
        // restart, which is immediate).
        let names: Vec<String> = (0..n).map(|_| self.name("cr")).collect();
        let pods: BTreeSet<String> = names.iter().map(|n| self.daemon.pod_name(n)).collect();
        let from = self.events.cursor();
        self.daemon.put(
            &names
                .iter()
                .map(|n| (n.clone(), manifest(n, &["a", "b"], SLEEPER, false)))
                .collect::<Vec<_>>(),
        );
        self.events
            .wait_containers(from, &pods, "start", 3 * n, Duration::from_secs(120))
            .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let apps: Vec<(String, String, String)> = {
            let log = self.events.log.lock();
            log[from..]
                .iter()
                .filter(|e| e.action == "start" && pods.contains(&e.pod) && e.ctr != "POD")
                .map(|e| (e.id.clone(), e.pod.clone(), e.ctr.clone()))
                .collect()
        };
        let (mut rk, mut rk_die, mut raw, mut raw_die, mut one_start) =
            (vec![], vec![], vec![], vec![], vec![]);
        for (id, pod, ctr) in &apps {
            let (from, died) = self.crash(id).await;
            let what = format!("the replacement of {ctr} in {pod}");
            let started = self
                .events
                .wait(from, Duration::from_secs(30), &what, |evs| {
                    evs.iter()
                        .find(|e| {
                            e.action == "start" && &e.pod == pod && &e.ctr == ctr && &e.id != id
                        })
                        .map(|e| e.t)
                })
                .await;
            if let Some(exited) = self.raw.finished_at(id).await {
                rk.push(ms(started - exited));
                rk_die.push(ms(died - exited));
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let from = self.events.cursor();
        let all: Vec<String> = {
            let log = self.events.log.lock();
            let mut ids: Vec<String> = log
                .iter()
                .filter(|e| e.action == "create" && pods.contains(&e.pod))
                .map(|e| e.id.clone())
                .collect();
            ids.sort();
            ids.dedup();
            ids
        };
        self.daemon.delete(&names);
        self.events
            .wait_ids(from, &all, "destroy", Duration::from_secs(120))
            .await;

        // Baseline: the benchmark restarts the container itself as soon as
        // Docker reports its death.
        let names: Vec<String> = (0..n).map(|_| self.name("rcr")).collect();
        let mut raw_pods = Vec::new();
        for name in &names {
            raw_pods.push(self.raw.start_pod(name, &["a", "b"], SLEEPER).await);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut replacements = Vec::new();
        for pod in &raw_pods {
            for (i, id) in pod.apps.iter().enumerate() {
                let app = ["a", "b"][i];
                let (from, died) = self.crash(id).await;
                let (new, took) = self.raw.run_app(&pod.name, app, &pod.pause, SLEEPER).await;
                let started = self
                    .events
                    .wait_ids(
                        from,
                        std::slice::from_ref(&new),
                        "start",
                        Duration::from_secs(30),
                    )
                    .await;
                one_start.push(took);
                replacements.push(new);
                if let Some(exited) = self.raw.finished_at(id).await {
                    raw.push(ms(started - exited));
                    raw_die.push(ms(died - exited));
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
        self.raw.discard(&raw_pods).await;
        for id in &replacements {
            self.raw.remove(id).await;
        }
        let die = pct(&[rk_die.clone(), raw_die.clone()].concat(), 50.0);
        let start = pct(&one_start, 50.0);
        let limit = die + start + 30.0;
        let rep = &mut self.report;
        for p in [50.0, 95.0] {
            rep.row(
                format!("crash → replacement running, p{p}"),
                Some(pct(&rk, p)),
                Some(pct(&raw, p)),
                "ms",
                Target::AtMost(limit),
            );
        }
        rep.row(
            "  reference: process exit → die event, p50",
            Some(pct(&rk_die, 50.0)),
            Some(pct(&raw_die, 50.0)),
            "ms",
            Target::None,
        );
        rep.row(
            "  reference: one app create + start (joined), p50",
            None,
            Some(start),
            "ms",
            Target::None,
        );
        rep.extra.insert(
            "crash_samples_ms".into(),
            json!({"rkubelet": rk, "raw": raw, "die_latency_rkubelet": rk_die,
                   "die_latency_raw": raw_die, "one_start_raw": one_start,
                   "target_ms": limit}),
        );
    }

    /// Starts `n` pods through rkubelet; (names, time to all running in ms,
    /// rkubelet CPU seconds spent).
    async fn rk_burst(
        &mut self,
        n: usize,
        script: &str,
        probe: bool,
    ) -> (Vec<String>, Vec<String>, f64, f64) {
        let names: Vec<String> = (0..n).map(|_| self.name("b")).collect();
        let pods: BTreeSet<String> = names.iter().map(|n| self.daemon.pod_name(n)).collect();
        let texts: Vec<(String, String)> = names
            .iter()
            .map(|n| (n.clone(), manifest(n, &["a"], script, probe)))
            .collect();
        let cpu0 = self.daemon.usage().0;
        let from = self.events.cursor();
        let t0 = self.daemon.put(&texts);
        let (ids, last) = self
            .events
            .wait_containers(from, &pods, "start", 2 * n, Duration::from_secs(600))
            .await;
        let cpu = (self.daemon.usage().0 - cpu0) as f64 / clk_tck();
        (names, ids, ms(last - t0), cpu)
    }

    async fn rk_teardown(&mut self, names: &[String], ids: &[String]) -> f64 {
        let from = self.events.cursor();
        let t0 = self.daemon.delete(names);
        let gone = self
            .events
            .wait_ids(from, ids, "destroy", Duration::from_secs(600))
            .await;
        ms(gone - t0)
    }

    async fn raw_burst(&mut self, n: usize, concurrency: usize) -> (Vec<RawPod>, f64) {
        let names: Vec<String> = (0..n).map(|_| self.name("rb")).collect();
        let from = self.events.cursor();
        let t0 = now_nanos();
        let pods = self.raw.start_pods(&names, concurrency, SLEEPER).await;
        let ids: Vec<String> = pods.iter().flat_map(RawPod::all).collect();
        let last = self
            .events
            .wait_ids(from, &ids, "start", Duration::from_secs(600))
            .await;
        (pods, ms(last - t0))
    }

    /// The raw baseline's pod concurrency: the best of a short search,
    /// done once per run.
    async fn raw_concurrency(&mut self) -> usize {
        if let Some(c) = self.raw_concurrency {
            return c;
        }
        let s = self.settings.clone();
        println!(
            "== burst: raw concurrency search on {} pods over {:?}",
            s.search_pods, s.search_concurrency
        );
        let mut best = (s.search_concurrency[0], f64::INFINITY);
        let mut search = Vec::new();
        for &c in &s.search_concurrency {
            let (pods, took) = self.raw_burst(s.search_pods, c).await;
            println!("  raw, {c} pods in flight: {took:.0} ms");
            search.push(json!({"concurrency": c, "ms": took}));
            if took < best.1 {
                best = (c, took);
            }
            self.raw.discard(&pods).await;
        }
        let c = best.0;
        self.report
            .extra
            .insert("raw_concurrency_search".into(), json!(search));
        self.report
            .extra
            .insert("raw_best_concurrency".into(), json!(c));
        self.raw_concurrency = Some(c);
        c
    }

    /// Raw Docker: stops and removes `pods` with `concurrency` pods in
    /// flight; the time until the last is destroyed, in ms.
    async fn raw_teardown(&mut self, pods: &[RawPod], concurrency: usize) -> f64 {
        let ids: Vec<String> = pods.iter().flat_map(RawPod::all).collect();
        let from = self.events.cursor();
        let t0 = now_nanos();
        self.raw.stop_remove_pods(pods, concurrency).await;
        let gone = self
            .events
            .wait_ids(from, &ids, "destroy", Duration::from_secs(600))
            .await;
        ms(gone - t0)
    }

    /// The scale curve: at each size, a burst of pods (pause + 1 app) up
    /// and removed at once, against raw Docker in the same run; rkubelet's
    /// idle RSS and CPU at that size and what one relist costs.
    async fn curve(&mut self) {
        let s = self.settings.clone();
        let c = self.raw_concurrency().await;
        let window = s.curve_window;
        let (_, rss0, _) = self.daemon.usage();
        let rss0 = rss0 as f64 / 1024.0;
        let mut points = Vec::new();
        for &n in &s.curve {
            println!("== curve: {n} pods (pause + 1 app); raw with {c} pods in flight");
            let (raw_pods, raw_up) = self.raw_burst(n, c).await;
            tokio::time::sleep(Duration::from_secs(2)).await;
            let raw_down = self.raw_teardown(&raw_pods, c).await;
            tokio::time::sleep(Duration::from_secs(2)).await;
            let (names, ids, rk_up, burst_cpu) = self.rk_burst(n, SLEEPER, false).await;
            tokio::time::sleep(Duration::from_secs(if s.smoke { 1 } else { 5 })).await;
            let before = self.daemon.metrics();
            let (cpu, rss, _) = self.footprint(window).await;
            let after = self.daemon.metrics();
            let rk_down = self.rk_teardown(&names, &ids).await;
            let relists = metric_sum(&after, RELIST_COUNT) - metric_sum(&before, RELIST_COUNT);
            let relist_s = metric_sum(&after, RELIST_SUM) - metric_sum(&before, RELIST_SUM);
            let calls = metric_sum(&after, DOCKER_CALLS) - metric_sum(&before, DOCKER_CALLS);
            let point = CurvePoint {
                pods: n,
                rk_up,
                raw_up,
                rk_down,
                raw_down,
                burst_cpu_s: burst_cpu,
                idle_cpu_pct: cpu,
                idle_rss_mib: rss,
                relist_ms: (relists > 0.0).then(|| relist_s / relists * 1e3),
                docker_calls_per_relist: (relists > 0.0).then(|| calls / relists),
                docker_calls_idle: calls,
                relists,
                rss_per_pod_kib: (rss - rss0) * 1024.0 / n as f64,
            };
            println!(
                "  up {:.0} / {:.0} ms ({:.2}×), removed {:.0} / {:.0} ms ({:.2}×), \
                 idle {:.1} MiB {:.2} %, relists {relists}, Docker calls {calls}",
                point.rk_up,
                point.raw_up,
                point.rk_up / point.raw_up,
                point.rk_down,
                point.raw_down,
                point.rk_down / point.raw_down,
                point.idle_rss_mib,
                point.idle_cpu_pct,
            );
            self.report.row(
                format!("curve: {n} pods → all running"),
                Some(rk_up),
                Some(raw_up),
                "ms",
                Target::Ratio(1.05),
            );
            self.report.row(
                format!("curve: {n} pods removed at once"),
                Some(rk_down),
                Some(raw_down),
                "ms",
                Target::Ratio(1.10),
            );
            points.push(point);
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        let table = curve_table(&points, rss0);
        println!();
        print!("{table}");
        let suffix = if s.smoke { "-smoke" } else { "" };
        let svg = out_dir().join(format!("curve{suffix}.svg"));
        match plot_curve(&points, &svg) {
            Ok(()) => println!("curve plot: {}", svg.display()),
            Err(e) => println!("curve plot: not written ({e})"),
        }
        self.report.extra.insert(
            "curve".into(),
            json!({
                "raw_concurrency": c,
                "idle_window_s": window.as_secs_f64(),
                "rss_before_mib": rss0,
                "points": points.iter().map(CurvePoint::json).collect::<Vec<_>>(),
                "table_markdown": table,
                "plot": svg,
            }),
        );
    }

    async fn bursts(&mut self) {
        let s = self.settings.clone();
        let c = self.raw_concurrency().await;
        let last = *s.bursts.last().expect("a burst size");
        for &n in &s.bursts {
            println!("== burst of {n} pods (pause + 1 app); raw with {c} pods in flight");
            let (raw_pods, raw_ms) = self.raw_burst(n, c).await;
            let mut raw_down = None;
            if n == last {
                raw_down = Some(self.raw_teardown(&raw_pods, c).await);
            } else {
                self.raw.discard(&raw_pods).await;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
            let (names, ids, rk_ms, cpu) = self.rk_burst(n, SLEEPER, false).await;
            self.report.row(
                format!("burst: {n} pods → all running"),
                Some(rk_ms),
                Some(raw_ms),
                "ms",
                Target::Ratio(1.15),
            );
            self.report
                .extra
                .insert(format!("burst_{n}_rkubelet_cpu_s"), json!(cpu));
            if n == last {
                if let Some(window) = s.footprint {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    let (cpu, rss, hwm) = self.footprint(window).await;
                    self.report.row(
                        format!("idle RSS with {n} pods"),
                        Some(rss),
                        None,
                        "MiB",
                        Target::AtMost(30.0),
                    );
                    self.report.row(
                        format!("idle CPU with {n} pods (% of a core)"),
                        Some(cpu),
                        None,
                        "%",
                        Target::AtMost(0.5),
                    );
                    self.report.extra.insert("peak_rss_mib".into(), json!(hwm));
                    // The same pods, now scraped like Prometheus would.
                    let (scraped, scrape_rss, _) = self.footprint_scraped(window).await;
                    self.report.row(
                        format!("idle CPU with {n} pods, /metrics scraped every 1 s (% of a core)"),
                        Some(scraped),
                        None,
                        "%",
                        Target::AtMost(cpu + 0.2),
                    );
                    self.report.row(
                        format!("idle RSS with {n} pods, /metrics scraped every 1 s"),
                        Some(scrape_rss),
                        None,
                        "MiB",
                        Target::AtMost(30.0),
                    );
                    self.report
                        .extra
                        .insert("metrics_scrape_cpu_pct".into(), json!(scraped - cpu));
                }
                let down = self.rk_teardown(&names, &ids).await;
                self.report.row(
                    format!("teardown: {n} pods removed at once"),
                    Some(down),
                    raw_down,
                    "ms",
                    Target::Ratio(1.20),
                );
            } else {
                self.rk_teardown(&names, &ids).await;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }

    /// rkubelet's CPU (% of one core) and RSS (average MiB, peak MiB) over `window`.
    async fn footprint(&mut self, window: Duration) -> (f64, f64, f64) {
        println!("  measuring rkubelet's footprint for {window:?}");
        let (cpu0, _, _) = self.daemon.usage();
        let t0 = Instant::now();
        let mut rss = Vec::new();
        while t0.elapsed() < window {
            tokio::time::sleep(Duration::from_secs(1)).await;
            rss.push(self.daemon.usage().1 as f64 / 1024.0);
        }
        let (cpu1, _, hwm) = self.daemon.usage();
        let cpu = (cpu1 - cpu0) as f64 / clk_tck() / t0.elapsed().as_secs_f64() * 100.0;
        let avg = rss.iter().sum::<f64>() / rss.len().max(1) as f64;
        (cpu, avg, hwm as f64 / 1024.0)
    }

    /// [`Bench::footprint`] while `/metrics` is fetched every second, as a
    /// Prometheus scrape would (a fresh connection each time).
    async fn footprint_scraped(&mut self, window: Duration) -> (f64, f64, f64) {
        let url = format!("http://127.0.0.1:{}/metrics", self.daemon.port);
        let stop = Arc::new(Notify::new());
        let scraper = {
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut scrapes = 0u32;
                loop {
                    let client = rkubelet::http_client::client_builder()
                        .build()
                        .expect("http client");
                    let body = client
                        .get(&url)
                        .send()
                        .await
                        .and_then(|r| r.error_for_status());
                    match body {
                        Ok(r) => {
                            let text = r.text().await.unwrap_or_default();
                            assert!(
                                text.contains("kubelet_running_pods"),
                                "/metrics lacks kubelet_running_pods"
                            );
                            scrapes += 1;
                        }
                        Err(e) => panic!("scrape {url}: {e}"),
                    }
                    tokio::select! {
                        _ = stop.notified() => return scrapes,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            })
        };
        let measured = self.footprint(window).await;
        stop.notify_one();
        let scrapes = scraper.await.expect("scraper");
        println!("  {scrapes} scrapes of /metrics during the window");
        measured
    }

    /// Waits until `n` distinct containers of pods named `<prefix>-…` have
    /// started since `from`; the time of the last one.
    async fn wait_started_by_prefix(&self, from: usize, prefix: &str, n: usize) -> i64 {
        let prefix = format!("{prefix}-");
        let what = format!("start of {n} containers of {prefix}* pods");
        (self.events)
            .wait(from, Duration::from_secs(600), &what, |evs| {
                let mut seen: BTreeMap<&str, i64> = BTreeMap::new();
                for e in evs
                    .iter()
                    .filter(|e| e.action == "start" && e.pod.starts_with(&prefix))
                {
                    seen.entry(&e.id).or_insert(e.t);
                }
                (seen.len() >= n).then(|| seen.values().copied().max().unwrap_or(0))
            })
            .await
    }

    /// Workloads: an N-replica Deployment written → all started, against
    /// N static pods written at once; then a rolling update of M replicas
    /// with `maxSurge: 2, maxUnavailable: 0` (pods Ready once running: no
    /// readiness probe, so no readiness period) against its sequential
    /// steps done on raw Docker (2 pods created and started per step).
    async fn workloads(&mut self) {
        println!("workloads");
        let n = self.settings.deployment_replicas;
        // N static pods (pause + 1 app each), all written at once.
        let names: Vec<String> = (0..n).map(|_| self.name("wst")).collect();
        let pods: BTreeSet<String> = names.iter().map(|p| self.daemon.pod_name(p)).collect();
        let from = self.events.cursor();
        let manifests: Vec<(String, String)> = (names.iter())
            .map(|p| (p.clone(), manifest(p, &["a"], SLEEPER, false)))
            .collect();
        let t0 = self.daemon.put(&manifests);
        let (ids, started) = (self.events)
            .wait_containers(from, &pods, "start", 2 * n, Duration::from_secs(600))
            .await;
        let static_ns = started - t0;
        let from = self.events.cursor();
        self.daemon.delete(&names);
        (self.events)
            .wait_ids(from, &ids, "destroy", Duration::from_secs(600))
            .await;
        // The same as one Deployment.
        let web = self.name("wdep");
        let from = self.events.cursor();
        let t0 = self.daemon.put(&[(web.clone(), deployment(&web, n, "1"))]);
        let started = self.wait_started_by_prefix(from, &web, 2 * n).await;
        self.report.row(
            format!(
                "workloads: {n}-replica Deployment written → all started (raw: {n} static pods)"
            ),
            Some(ms(started - t0)),
            Some(ms(static_ns)),
            "ms",
            Target::Ratio(1.10),
        );
        let from = self.events.cursor();
        self.daemon.delete(std::slice::from_ref(&web));
        (self.events)
            .wait(
                from,
                Duration::from_secs(600),
                "Deployment pods gone",
                |evs| {
                    let gone = (evs.iter())
                        .filter(|e| e.action == "destroy" && e.pod.starts_with(&format!("{web}-")))
                        .count();
                    (gone >= 2 * n).then_some(())
                },
            )
            .await;

        // A rolling update of M replicas, maxSurge 2, maxUnavailable 0.
        let m = self.settings.rollout_replicas;
        let steps = m.div_ceil(2);
        let roll = self.name("wroll");
        let from = self.events.cursor();
        self.daemon
            .put(&[(roll.clone(), deployment(&roll, m, "1"))]);
        self.wait_started_by_prefix(from, &roll, 2 * m).await;
        let from = self.events.cursor();
        let t0 = self
            .daemon
            .put(&[(roll.clone(), deployment(&roll, m, "2"))]);
        let done = self.wait_started_by_prefix(from, &roll, 2 * m).await;
        let per_step = ms(done - t0) / steps as f64;
        // Raw Docker: the same steps one after the other (2 pods each).
        let mut raw_total = 0i64;
        for _ in 0..steps {
            let names: Vec<String> = (0..2.min(m)).map(|_| self.name("wraw")).collect();
            let from = self.events.cursor();
            let t = now_nanos();
            let raw_pods = self.raw.start_pods(&names, 2, SLEEPER).await;
            let ids: Vec<String> = raw_pods.iter().flat_map(|p| p.all()).collect();
            let started = (self.events)
                .wait_ids(from, &ids, "start", Duration::from_secs(120))
                .await;
            raw_total += started - t;
            self.raw.stop_remove_pods(&raw_pods, 2).await;
        }
        let raw_step = ms(raw_total) / steps as f64;
        self.report.row(
            format!("workloads: rolling update of {m} (maxSurge 2, maxUnavailable 0), per step"),
            Some(per_step),
            Some(raw_step),
            "ms",
            Target::None,
        );
        self.report.row(
            "workloads: rollout overhead per step above raw Docker",
            Some(per_step - raw_step),
            None,
            "ms",
            Target::AtMost(30.0),
        );
        let from = self.events.cursor();
        self.daemon.delete(std::slice::from_ref(&roll));
        (self.events)
            .wait(from, Duration::from_secs(600), "rollout pods gone", |evs| {
                let gone = (evs.iter())
                    .filter(|e| e.action == "destroy" && e.pod.starts_with(&format!("{roll}-")))
                    .count();
                (gone >= 2 * m).then_some(())
            })
            .await;
    }

    async fn probes(&mut self) {
        let (n, Some(window)) = (self.settings.probe_pods, self.settings.footprint) else {
            return;
        };
        if n == 0 {
            return;
        }
        println!("== footprint with {n} pods, each with an httpGet readiness probe every 1 s");
        let (names, ids, _, _) = self.rk_burst(n, HTTPD, true).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        let (cpu, rss, hwm) = self.footprint(window).await;
        self.report.row(
            format!("RSS with {n} pods, {n} probes/s"),
            Some(rss),
            None,
            "MiB",
            Target::AtMost(30.0),
        );
        self.report.row(
            format!("CPU with {n} pods, {n} probes/s (% of a core)"),
            Some(cpu),
            None,
            "%",
            Target::AtMost(5.0),
        );
        self.report
            .extra
            .insert("peak_rss_mib_after_probes".into(), json!(hwm));
        self.rk_teardown(&names, &ids).await;
        self.exec_probes().await;
    }

    /// Exec probes: `exec_probe_pods` pods with an exec readiness probe
    /// (`true`) every second, rkubelet's CPU and Docker's (dockerd,
    /// containerd and the shims) per probe; against the same execs done
    /// through the Docker API (create, start attached, inspect — what
    /// `docker exec` does) by the benchmark at the same rate.
    async fn exec_probes(&mut self) {
        let n = self.settings.exec_probe_pods;
        let window = self.settings.exec_window;
        if n == 0 {
            return;
        }
        println!("== exec probes: {n} pods, an exec readiness probe (true) every 1 s, {window:?}");
        let names: Vec<String> = (0..n).map(|_| self.name("x")).collect();
        let pods: BTreeSet<String> = names.iter().map(|x| self.daemon.pod_name(x)).collect();
        let texts: Vec<(String, String)> = names
            .iter()
            .map(|x| {
                let y = manifest(x, &["a"], SLEEPER, false);
                let probe = "    readinessProbe:\n      exec: {command: [\"true\"]}\n      periodSeconds: 1\n";
                (x.clone(), format!("{y}{probe}"))
            })
            .collect();
        let from = self.events.cursor();
        self.daemon.put(&texts);
        let (ids, _) = self
            .events
            .wait_containers(from, &pods, "start", 2 * n, Duration::from_secs(300))
            .await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        let execs_before = self.exec_count(&ids);
        let (rk0, _, _) = self.daemon.usage();
        let docker0 = docker_cpu_ticks();
        let t0 = Instant::now();
        tokio::time::sleep(window).await;
        let elapsed = t0.elapsed().as_secs_f64();
        let (rk1, _, _) = self.daemon.usage();
        let docker1 = docker_cpu_ticks();
        let probes = (self.exec_count(&ids) - execs_before).max(1) as f64;
        let tick_ms = 1e3 / clk_tck();
        let rk_ms = (rk1 - rk0) as f64 * tick_ms / probes;
        let rk_docker_ms = docker1.saturating_sub(docker0) as f64 * tick_ms / probes;
        self.rk_teardown(&names, &ids).await;

        // Raw: the same rate of execs through the Docker API, from the
        // benchmark, into the app containers of as many raw pods.
        let raw_names: Vec<String> = (0..n).map(|_| self.name("rx")).collect();
        let raw_pods = self.raw.start_pods(&raw_names, 4, SLEEPER).await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        let runtime = common::runtime().await;
        let targets: Vec<String> = raw_pods.iter().map(|p| p.apps[0].clone()).collect();
        let docker0 = docker_cpu_ticks();
        let t0 = Instant::now();
        let mut execs = 0u64;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        while t0.elapsed().as_secs_f64() < elapsed {
            tick.tick().await;
            let cmd = ["true".to_string()];
            let runs = join_all(targets.iter().map(|id| {
                use rkubelet::runtime::ContainerRuntime;
                runtime.exec(id, &cmd, Duration::from_secs(10))
            }))
            .await;
            execs += runs.iter().filter(|r| r.is_ok()).count() as u64;
        }
        let docker1 = docker_cpu_ticks();
        let raw_docker_ms = docker1.saturating_sub(docker0) as f64 * tick_ms / execs.max(1) as f64;
        self.raw.discard(&raw_pods).await;
        self.report.row(
            "exec probe: rkubelet CPU per probe",
            Some(rk_ms),
            None,
            "ms",
            Target::None,
        );
        self.report.row(
            "exec probe: Docker's CPU per probe (vs an API exec)",
            Some(rk_docker_ms),
            Some(raw_docker_ms),
            "ms",
            Target::None,
        );
        self.report.extra.insert(
            "exec_probes".into(),
            json!({"pods": n, "window_s": elapsed, "probes": probes, "raw_execs": execs,
                   "rkubelet_cpu_ms_per_probe": rk_ms,
                   "docker_cpu_ms_per_probe": rk_docker_ms,
                   "docker_cpu_ms_per_raw_exec": raw_docker_ms}),
        );
    }

    /// Exec starts Docker reported in these containers so far.
    fn exec_count(&self, ids: &[String]) -> usize {
        let want: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
        let log = self.events.log.lock();
        log.iter()
            .filter(|e| e.action.starts_with("exec_start") && want.contains(e.id.as_str()))
            .count()
    }

    /// Idle pods with open watches: footprint, then status change → the
    /// `MODIFIED` event at every watcher.
    async fn watches(&mut self) {
        let s = self.settings.clone();
        let (n, w, changes) = (s.watch_pods, s.watchers, s.watch_changes.min(s.watch_pods));
        println!("== {n} idle pods with {w} open watches; {changes} status changes");
        let (names, _, _, _) = self.rk_burst(n, SLEEPER, false).await;
        let pods: Vec<String> = names.iter().map(|x| self.daemon.pod_name(x)).collect();
        let (watchers, tasks) = Watchers::open(self.daemon.port, w).await;
        // Every watcher has every pod, Running, before anything is measured.
        let want: BTreeSet<&str> = pods.iter().map(String::as_str).collect();
        watchers
            .wait(
                Duration::from_secs(120),
                "every pod at every watcher",
                |seen| {
                    let mut per: Vec<BTreeSet<&str>> = vec![BTreeSet::new(); w];
                    for e in seen.iter().filter(|e| want.contains(e.pod.as_str())) {
                        per[e.watcher].insert(&e.pod);
                    }
                    per.iter().all(|p| p.len() == want.len()).then_some(())
                },
            )
            .await;
        tokio::time::sleep(Duration::from_secs(if s.smoke { 1 } else { 5 })).await;
        let (cpu, rss, hwm) = self.footprint(s.watch_window).await;
        let idle_events = watchers.log.cursor();

        // The app containers, by pod.
        let apps: BTreeMap<String, String> = {
            let log = self.events.log.lock();
            log.iter()
                .filter(|e| e.action == "start" && e.ctr == "a" && want.contains(e.pod.as_str()))
                .map(|e| (e.pod.clone(), e.id.clone()))
                .collect()
        };
        let (mut lat, mut from_exit, mut first, mut last) = (vec![], vec![], vec![], vec![]);
        for pod in pods.iter().take(changes) {
            let id = apps
                .get(pod)
                .unwrap_or_else(|| panic!("app container of {pod}"));
            let (_, died) = self.crash(id).await;
            let what = format!("MODIFIED {pod} showing the exit at {w} watchers");
            let arrived: Vec<i64> = watchers
                .wait(Duration::from_secs(30), &what, |seen| {
                    let mut at: Vec<Option<i64>> = vec![None; w];
                    for e in seen
                        .iter()
                        .filter(|e| e.kind == "MODIFIED" && e.exited && &e.pod == pod)
                    {
                        at[e.watcher].get_or_insert(e.t);
                    }
                    at.into_iter().collect::<Option<Vec<i64>>>()
                })
                .await;
            let exited = self.raw.finished_at(id).await;
            for &t in &arrived {
                lat.push(ms(t - died));
                if let Some(x) = exited {
                    from_exit.push(ms(t - x));
                }
            }
            first.push(ms(arrived.iter().copied().min().unwrap_or(died) - died));
            last.push(ms(arrived.iter().copied().max().unwrap_or(died) - died));
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        for t in tasks {
            t.abort();
        }
        let rep = &mut self.report;
        rep.row(
            format!("RSS with {n} idle pods, {w} open watches"),
            Some(rss),
            None,
            "MiB",
            Target::AtMost(35.0),
        );
        rep.row(
            format!("CPU with {n} idle pods, {w} open watches (% of a core)"),
            Some(cpu),
            None,
            "%",
            Target::AtMost(0.5),
        );
        for p in [50.0, 95.0] {
            rep.row(
                format!("status change (die event) → MODIFIED at a watcher, p{p}"),
                Some(pct(&lat, p)),
                None,
                "ms",
                Target::AtMost(20.0),
            );
        }
        rep.row(
            "  reference: process exit → MODIFIED at a watcher, p50",
            Some(pct(&from_exit, 50.0)),
            None,
            "ms",
            Target::None,
        );
        rep.extra.insert(
            "watch".into(),
            json!({"pods": n, "watchers": w, "changes": changes,
                   "window_s": s.watch_window.as_secs_f64(),
                   "peak_rss_mib": hwm,
                   "events_received_before_changes": idle_events,
                   "die_to_watcher_ms": lat, "exit_to_watcher_ms": from_exit,
                   "die_to_first_watcher_ms": first, "die_to_last_watcher_ms": last}),
        );
        let ids: Vec<String> = {
            let log = self.events.log.lock();
            let mut ids: Vec<String> = log
                .iter()
                .filter(|e| e.action == "create" && want.contains(e.pod.as_str()))
                .map(|e| e.id.clone())
                .collect();
            ids.sort();
            ids.dedup();
            ids
        };
        self.rk_teardown(&names, &ids).await;
    }
}

// ------------------------------------------------------------------ main

fn out_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join("bench")
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes `--bench`; `cargo test --all-targets` does not
    // and gets the smoke run. A name filter that does not match skips it.
    let benching = args.iter().any(|a| a == "--bench");
    let smoke = args.iter().any(|a| a == "--smoke") || !benching;
    if !benching && args.iter().any(|a| a == "--list") {
        println!("smoke: test");
        return;
    }
    if let Some(filter) = args.iter().find(|a| !a.starts_with('-')) {
        if !"pods smoke".contains(filter.as_str()) {
            println!("test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 1 filtered out");
            return;
        }
    }
    let mut settings = if smoke {
        Settings::smoke()
    } else {
        Settings::full()
    };
    if let Some(list) = args.iter().find_map(|a| a.strip_prefix("--only=")) {
        let only: BTreeSet<String> = list.split(',').map(str::to_string).collect();
        for name in &only {
            assert!(
                SCENARIOS.contains(&name.as_str()),
                "--only: no scenario {name:?}; the scenarios are {SCENARIOS:?}"
            );
        }
        settings.only = Some(only);
    }
    let sizes = args
        .iter()
        .find_map(|a| a.strip_prefix("--curve=").map(str::to_string))
        .or_else(|| std::env::var("RKUBELET_BENCH_CURVE").ok());
    if let Some(list) = sizes {
        settings.curve = list
            .split(',')
            .map(|n| {
                n.trim()
                    .parse()
                    .ok()
                    .filter(|&n: &usize| n > 0)
                    .unwrap_or_else(|| panic!("--curve: {n:?} is not a pod count"))
            })
            .collect();
    }
    let run = random_hex(4);
    let node = format!("bench-{run}");
    let base = std::env::temp_dir().join(format!("rkubelet-bench-{run}"));
    *CLEANUP.lock().expect("cleanup state") = Some(CleanupState {
        node: node.clone(),
        run: run.clone(),
        child: None,
        dirs: vec![base.clone()],
        podman: None,
    });
    let _guard = CleanupGuard;
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    rt.spawn(async {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("bench: interrupted; cleaning up");
            cleanup_now();
            std::process::exit(130);
        }
    });
    let started = Instant::now();
    let code = rt.block_on(bench(settings, run, node, base));
    drop(_guard);
    if !benching {
        // Under `cargo test`, end like a test binary so the summary reads the same.
        println!(
            "\ntest result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in {:.2}s\n",
            started.elapsed().as_secs_f64()
        );
    }
    std::process::exit(code);
}

async fn bench(settings: Settings, run: String, node: String, base: PathBuf) -> i32 {
    let started = Instant::now();
    let load_before = loadavg();
    // Connects (or fails saying how to start Docker) and provisions the
    // test and pause images, exactly as the integration tests do.
    let runtime = common::runtime().await;
    let docker = runtime.client().clone();
    let version = docker
        .version()
        .await
        .ok()
        .and_then(|v| v.version)
        .unwrap_or_default();
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_rkubelet"));
    let binary_size = std::fs::metadata(&bin).map(|m| m.len()).unwrap_or(0);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let out = out_dir();
    std::fs::create_dir_all(&out).expect("target/bench");
    let only = settings
        .only
        .as_ref()
        .map(|o| format!("-only-{}", o.iter().cloned().collect::<Vec<_>>().join("-")))
        .unwrap_or_default();
    let suffix = format!("{}{only}", if settings.smoke { "-smoke" } else { "" });
    let log = out.join(format!("rkubelet{suffix}.log"));
    println!(
        "rkubelet pod benchmark ({}) — {cores} CPUs, Docker {version}, load {load_before}, node {node}",
        if settings.smoke { "smoke" } else { "full" }
    );
    println!(
        "  binary {} ({binary_size} bytes), log {}",
        bin.display(),
        log.display()
    );

    let events = Events::start(docker.clone(), node.clone(), run.clone());
    let daemon = Daemon::start(&bin, &base, &node, &log);
    let mut ctx = Ctx {
        settings: settings.clone(),
        events,
        raw: Raw {
            docker: docker.clone(),
            run,
        },
        daemon,
        report: Report::default(),
        seq: 0,
        raw_concurrency: None,
    };
    if settings.runs("start") {
        ctx.pod_start().await;
    }
    if settings.runs("crash") {
        ctx.crash_recovery().await;
    }
    if settings.runs("bursts") {
        ctx.bursts().await;
    }
    if settings.runs("probes") {
        ctx.probes().await;
    }
    if settings.runs("watch") {
        ctx.watches().await;
    }
    if settings.runs("workloads") {
        ctx.workloads().await;
    }
    if settings.runs("curve") {
        ctx.curve().await;
    }
    if settings.runs("podman") {
        ctx.podman(&base).await;
    }
    assert!(ctx.daemon.alive(), "rkubelet died; see {}", log.display());
    let (_, rss_now, hwm) = ctx.daemon.usage();
    ctx.report.row(
        if cfg!(debug_assertions) {
            "binary size (debug build)"
        } else {
            "binary size (release build, stripped)"
        },
        Some(binary_size as f64 / 1024.0 / 1024.0),
        None,
        "MiB",
        Target::None,
    );
    if settings.smoke {
        ctx.report.row(
            "RSS at the end (smoke; not the footprint)",
            Some(rss_now as f64 / 1024.0),
            None,
            "MiB",
            Target::None,
        );
    }
    let load_after = loadavg();
    let date = k8s_openapi::jiff::Timestamp::now().to_string();
    let elapsed = started.elapsed().as_secs_f64();
    let table = ctx.report.table();
    println!();
    println!(
        "rkubelet vs raw Docker — {date}, {cores} CPUs, Docker {version}, load before {load_before}, after {load_after}, {elapsed:.0} s{}",
        if settings.smoke { " (SMOKE: not a measurement)" } else { "" }
    );
    println!();
    print!("{table}");
    let json = json!({
        "date": date,
        "mode": if settings.smoke { "smoke" } else { "full" },
        "only": settings.only,
        "machine": {
            "cpus": cores,
            "docker": version,
            "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
            "loadavg_before": load_before,
            "loadavg_after": load_after,
        },
        "binary": {"path": bin, "bytes": binary_size},
        "rkubelet_peak_rss_mib": hwm as f64 / 1024.0,
        "elapsed_s": elapsed,
        "results": ctx.report.rows.iter().map(Row::json).collect::<Vec<_>>(),
        "details": Value::Object(ctx.report.extra.clone()),
        "table_markdown": table,
    });
    let path = out.join(format!("pods{suffix}.json"));
    std::fs::write(&path, serde_json::to_string_pretty(&json).expect("json")).expect("write json");
    println!();
    println!("results: {}", path.display());
    0
}
