//! Prometheus metrics: the kubelet's names where one exists, rkubelet's own
//! where the kubelet has none.
//!
//! One process-wide set ([`global`]), like the kubelet's registry: the
//! places that see an event (the pod worker, the prober, the relist, the
//! URL source, the Docker runtime through [`runtime::Metered`]) record it in
//! one line. Gauges that describe the current state (running pods and
//! containers, manifest errors) are computed at scrape time from the status
//! store and the diagnostics by [`Metrics::refresh`], so they can never drift.
//!
//! Served by the API as `GET /metrics` (everything) and `GET
//! /metrics/probes` (the probe metrics alone, as the kubelet serves them), in
//! the OpenMetrics text format that Prometheus asks for, or the classic text
//! format (curl, `promtool check metrics`). Encoding is `prometheus-client`'s.
//! [`stats`] keeps the cached Docker stats behind `/stats/summary`.
//!

pub mod process;
pub mod runtime;
pub mod stats;

use std::collections::{HashMap, HashSet};
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::source::Diagnostics;
use crate::worker::store::PodStore;

/// The content type of [`Metrics::encode`]'s output.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The content type of [`to_text_format`]'s output (what the kubelet
/// serves, and what `promtool check metrics` reads).
pub const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Whether a scraper's `Accept` header asks for OpenMetrics (Prometheus
/// does); everyone else gets the classic text format.
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains("application/openmetrics-text"))
}

/// OpenMetrics text to the Prometheus text format 0.0.4: the two differ in
/// counters' family names (`x` with samples `x_total` vs. `x_total`
/// throughout), `# UNIT` and `# EOF`. Samples are identical.
pub fn to_text_format(openmetrics: &str) -> String {
    let counters: HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line.starts_with("# EOF") || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| line.strip_prefix(p).map(|rest| (p, rest)));
        match meta {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let tail = if tail == "unknown" { "untyped" } else { tail };
                let suffix = if counters.contains(name) {
                    "_total"
                } else {
                    ""
                };
                out.push_str(&format!("{prefix}{name}{suffix} {tail}\n"));
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub container_state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabel {
    pub operation_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ContainerTypeLabel {
    pub container_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StartErrorLabels {
    pub container_type: String,
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProbeLabels {
    pub probe_type: String,
    pub result: String,
    pub container: String,
    pub pod: String,
    pub namespace: String,
    pub pod_uid: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProbeDurationLabels {
    pub probe_type: String,
    pub container: String,
    pub pod: String,
    pub namespace: String,
}

/// One probe's series, looked up once and kept by its task: a run then
/// only counts and observes (no label strings built, no family lookup). The
/// counters and histogram share their values with the registry's.
#[derive(Debug)]
pub struct ProbeSeries {
    labels: ProbeDurationLabels,
    pod_uid: String,
    successful: Option<Counter>,
    failed: Option<Counter>,
    duration: Option<Histogram>,
}

impl ProbeSeries {
    pub fn new(labels: ProbeDurationLabels, pod_uid: &str) -> Self {
        ProbeSeries {
            labels,
            pod_uid: pod_uid.to_string(),
            successful: None,
            failed: None,
            duration: None,
        }
    }

    /// One probe run: its result and duration. A result's series appears
    /// at its first run, as before.
    pub fn record(&mut self, metrics: &Metrics, ok: bool, took: Duration) {
        let slot = if ok {
            &mut self.successful
        } else {
            &mut self.failed
        };
        slot.get_or_insert_with(|| metrics.probe_counter(&self.labels, &self.pod_uid, ok))
            .inc();
        self.duration
            .get_or_insert_with(|| metrics.probe_duration.get_or_create(&self.labels).clone())
            .observe(took.as_secs_f64());
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: String,
    pub path: String,
    pub server_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabel {
    pub source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: String,
}

/// Every metric rkubelet exports.
pub struct Metrics {
    registry: Registry,
    probes: Registry,
    /// Serialises scrapes (refresh + encode).
    scrape: Mutex<()>,
    /// The probe series of each pod UID, to forget them with the pod.
    probe_series: Mutex<HashMap<String, HashSet<ProbeLabels>>>,
    pub running_pods: Gauge,
    pub running_containers: Family<StateLabel, Gauge>,
    pub pod_start_duration: Histogram,
    pub pod_worker_duration: Family<OperationLabel, Histogram>,
    pub restarted_pods: Counter,
    pub started_containers: Family<ContainerTypeLabel, Counter>,
    pub started_containers_errors: Family<StartErrorLabels, Counter>,
    pub probe_total: Family<ProbeLabels, Counter>,
    pub probe_duration: Family<ProbeDurationLabels, Histogram>,
    pub http_requests: Family<HttpLabels, Counter>,
    pub pleg_relist_duration: Histogram,
    pub manifest_errors: Family<SourceLabel, Gauge>,
    pub url_fetches: Family<ResultLabel, Counter>,
    pub docker_duration: Family<OperationLabel, Histogram>,
    pub docker_errors: Family<OperationLabel, Counter>,
}

/// Latency buckets from 5 ms to ~80 s.
fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

/// Pod start buckets, 0.5 s to ~17 min (the kubelet's range).
fn pod_start() -> Histogram {
    Histogram::new(exponential_buckets(0.5, 2.0, 12))
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::default();
        let mut probes = Registry::default();
        let m = Metrics {
            registry: Registry::default(),
            probes: Registry::default(),
            scrape: Mutex::new(()),
            probe_series: Mutex::default(),
            running_pods: Gauge::default(),
            running_containers: Family::default(),
            pod_start_duration: pod_start(),
            pod_worker_duration: Family::new_with_constructor(latency),
            restarted_pods: Counter::default(),
            started_containers: Family::default(),
            started_containers_errors: Family::default(),
            probe_total: Family::default(),
            probe_duration: Family::new_with_constructor(latency),
            http_requests: Family::default(),
            pleg_relist_duration: latency(),
            manifest_errors: Family::default(),
            url_fetches: Family::default(),
            docker_duration: Family::new_with_constructor(latency),
            docker_errors: Family::default(),
        };
        let r = &mut registry;
        r.register(
            "kubelet_running_pods",
            "Number of pods that have a running pod sandbox",
            m.running_pods.clone(),
        );
        r.register(
            "kubelet_running_containers",
            "Number of containers currently running",
            m.running_containers.clone(),
        );
        r.register(
            "kubelet_pod_start_duration_seconds",
            "Duration in seconds from rkubelet seeing a pod for the first time to the pod starting to run",
            m.pod_start_duration.clone(),
        );
        r.register(
            "kubelet_pod_worker_duration_seconds",
            "Duration in seconds to sync a single pod",
            m.pod_worker_duration.clone(),
        );
        r.register(
            "kubelet_restarted_pods",
            "Number of pods that have been restarted because they were deleted and recreated with the same UID while the kubelet was watching them",
            m.restarted_pods.clone(),
        );
        r.register(
            "kubelet_started_containers",
            "Cumulative number of containers started",
            m.started_containers.clone(),
        );
        r.register(
            "kubelet_started_containers_errors",
            "Cumulative number of errors when starting containers",
            m.started_containers_errors.clone(),
        );
        r.register(
            "kubelet_http_requests",
            "Number of the http requests received since the server started",
            m.http_requests.clone(),
        );
        r.register(
            "kubelet_pleg_relist_duration_seconds",
            "Duration in seconds for relisting pods in PLEG",
            m.pleg_relist_duration.clone(),
        );
        r.register(
            "rkubelet_manifest_errors",
            "Manifest errors currently reported, per source (file, http)",
            m.manifest_errors.clone(),
        );
        r.register(
            "rkubelet_manifest_url_fetches",
            "Fetches of --manifest-url by result (changed, unchanged, not_modified, failed)",
            m.url_fetches.clone(),
        );
        r.register(
            "rkubelet_docker_request_duration_seconds",
            "Latency of Docker API calls by operation",
            m.docker_duration.clone(),
        );
        r.register(
            "rkubelet_docker_request_errors",
            "Failed Docker API calls by operation",
            m.docker_errors.clone(),
        );
        r.register_collector(Box::new(process::ProcessCollector));
        probes.register(
            "prober_probe",
            "Cumulative number of a liveness, readiness or startup probe for a container by result",
            m.probe_total.clone(),
        );
        probes.register(
            "prober_probe_duration_seconds",
            "Duration in seconds for a probe response",
            m.probe_duration.clone(),
        );
        Metrics {
            registry,
            probes,
            ..m
        }
    }

    /// Sets the state gauges from the status store and the diagnostics.
    pub fn refresh(&self, store: &PodStore, diagnostics: &Diagnostics) {
        let pods = store.pods().list().0;
        let mut running_pods = 0;
        let (mut running, mut exited, mut created) = (0, 0, 0);
        for pod in &pods {
            let Some(status) = &pod.status else { continue };
            if status.phase.as_deref() == Some("Running") {
                running_pods += 1;
            }
            let statuses = (status.container_statuses.iter().flatten())
                .chain(status.init_container_statuses.iter().flatten());
            for c in statuses {
                let state = c.state.as_ref();
                if state.is_some_and(|s| s.running.is_some()) {
                    running += 1;
                } else if state.is_some_and(|s| s.terminated.is_some()) {
                    exited += 1;
                } else if c.container_id.is_some() {
                    created += 1;
                }
            }
        }
        self.running_pods.set(running_pods);
        for (state, n) in [
            ("running", running),
            ("exited", exited),
            ("created", created),
        ] {
            self.running_containers
                .get_or_create(&StateLabel {
                    container_state: state.into(),
                })
                .set(n);
        }
        self.manifest_errors.clear();
        for source in diagnostics.pods.keys() {
            self.manifest_errors
                .get_or_create(&SourceLabel {
                    source: source.clone(),
                })
                .set(0);
        }
        for e in &diagnostics.errors {
            let source = error_source(e);
            self.manifest_errors
                .get_or_create(&SourceLabel { source })
                .inc();
        }
    }

    /// `/metrics`: every metric, probes included.
    pub fn encode(&self, store: &PodStore, diagnostics: &Diagnostics) -> String {
        let _one = self.scrape.lock();
        self.refresh(store, diagnostics);
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode_registry(&mut out, &self.registry);
        let _ = encode_registry(&mut out, &self.probes);
        let _ = encode_eof(&mut out);
        out
    }

    /// `/metrics/probes`: the probe metrics alone.
    pub fn encode_probes(&self) -> String {
        let mut out = String::new();
        let _ = encode_registry(&mut out, &self.probes);
        let _ = encode_eof(&mut out);
        out
    }

    /// One probe run: its result (`successful`, `failed`) and duration.
    pub fn probe(&self, labels: ProbeDurationLabels, pod_uid: &str, ok: bool, took: Duration) {
        ProbeSeries::new(labels, pod_uid).record(self, ok, took);
    }

    /// The `prober_probe_total` counter of one probe and result, created
    /// (and remembered for [`forget_pod`](Self::forget_pod)) on first use.
    fn probe_counter(&self, labels: &ProbeDurationLabels, pod_uid: &str, ok: bool) -> Counter {
        let series = ProbeLabels {
            probe_type: labels.probe_type.clone(),
            result: if ok { "successful" } else { "failed" }.into(),
            container: labels.container.clone(),
            pod: labels.pod.clone(),
            namespace: labels.namespace.clone(),
            pod_uid: pod_uid.to_string(),
        };
        let counter = self.probe_total.get_or_create(&series).clone();
        if let Ok(mut s) = self.probe_series.lock() {
            s.entry(pod_uid.to_string()).or_default().insert(series);
        }
        counter
    }

    /// Forgets the probe series of a pod that is gone (bounded
    /// cardinality, as the kubelet does).
    pub fn forget_pod(&self, pod_uid: &str) {
        let Ok(mut series) = self.probe_series.lock() else {
            return;
        };
        for labels in series.remove(pod_uid).unwrap_or_default() {
            self.probe_total.remove(&labels);
            self.probe_duration.remove(&ProbeDurationLabels {
                probe_type: labels.probe_type,
                container: labels.container,
                pod: labels.pod,
                namespace: labels.namespace,
            });
        }
    }

    /// A container start (`container_type` is `container` or
    /// `init_container`); `error` is the waiting reason when it failed.
    pub fn container_started(&self, container_type: &str, error: Option<&str>) {
        match error {
            None => self
                .started_containers
                .get_or_create(&ContainerTypeLabel {
                    container_type: container_type.into(),
                })
                .inc(),
            Some(code) => self
                .started_containers_errors
                .get_or_create(&StartErrorLabels {
                    container_type: container_type.into(),
                    code: code.into(),
                })
                .inc(),
        };
    }

    /// One pod worker sync.
    pub fn pod_synced(&self, took: Duration) {
        self.pod_worker_duration
            .get_or_create(&OperationLabel {
                operation_type: "sync".into(),
            })
            .observe(took.as_secs_f64());
    }

    /// One HTTP request to the API (`path` is the first path segment).
    pub fn http_request(&self, method: &str, path: &str, server_type: &str) {
        self.http_requests
            .get_or_create(&HttpLabels {
                method: method.into(),
                path: path.into(),
                server_type: server_type.into(),
            })
            .inc();
    }

    /// One `--manifest-url` fetch.
    pub fn url_fetch(&self, result: &str) {
        self.url_fetches
            .get_or_create(&ResultLabel {
                result: result.into(),
            })
            .inc();
    }
}

/// The source (`file` or `http`) a diagnostics error line is about.
fn error_source(error: &str) -> String {
    if error.starts_with("http") || error.contains("--manifest-url") {
        "http".into()
    } else {
        "file".into()
    }
}

/// The kubelet's `path` label: the first segment of the request path,
/// from a fixed set (bounded cardinality); anything else is `other`.
pub fn path_label(path: &str) -> &'static str {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    match first {
        "" => "",
        "healthz" => "healthz",
        "pods" => "pods",
        "metrics" => "metrics",
        "stats" => "stats",
        "api" => "api",
        "apis" => "apis",
        "version" => "version",
        "manifests" => "manifests",
        "containerLogs" => "containerLogs",
        _ => "other",
    }
}

/// Follows the status store: observes `kubelet_pod_start_duration_seconds`
/// when a pod first runs (from when its worker first published it) and
/// forgets a deleted pod's probe series. Runs until `shutdown`.
pub async fn feed(store: std::sync::Arc<PodStore>, shutdown: tokio_util::sync::CancellationToken) {
    use crate::watch::ChangeType;
    let m = global();
    // UID → when first seen; `None` once its start was observed.
    let mut seen: HashMap<String, Option<tokio::time::Instant>> = HashMap::new();
    loop {
        let Ok(mut watch) = store.pods().watch(None) else {
            return;
        };
        loop {
            let change = tokio::select! {
                _ = shutdown.cancelled() => return,
                c = watch.next() => c,
            };
            let Ok(change) = change else { break }; // lagged: watch again
            let uid = change.object.metadata.uid.clone().unwrap_or_default();
            if change.type_ == ChangeType::Deleted {
                seen.remove(&uid);
                m.forget_pod(&uid);
                continue;
            }
            let running = change
                .object
                .status
                .as_ref()
                .is_some_and(|s| s.phase.as_deref() == Some("Running"));
            let entry = seen
                .entry(uid)
                .or_insert_with(|| (!running).then(tokio::time::Instant::now));
            if running {
                if let Some(first) = entry.take() {
                    m.pod_start_duration.observe(first.elapsed().as_secs_f64());
                }
            }
        }
    }
}

static GLOBAL: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn global() -> &'static Metrics {
    &GLOBAL
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_get_total_and_probe_metrics_appear_on_both_endpoints() {
        let m = Metrics::new();
        m.container_started("container", None);
        m.container_started("container", Some("RunContainerError"));
        m.probe(
            ProbeDurationLabels {
                probe_type: "Readiness".into(),
                container: "c".into(),
                pod: "p".into(),
                namespace: "default".into(),
            },
            "u1",
            false,
            Duration::from_millis(3),
        );
        let store = PodStore::new(std::sync::Arc::new(crate::watch::Versions::default()));
        let text = m.encode(&store, &Diagnostics::default());
        assert!(text.contains("kubelet_started_containers_total{container_type=\"container\"} 1"));
        assert!(text.contains(
            "kubelet_started_containers_errors_total{container_type=\"container\",code=\"RunContainerError\"} 1"
        ));
        let line = "prober_probe_total{probe_type=\"Readiness\",result=\"failed\",container=\"c\",pod=\"p\",namespace=\"default\",pod_uid=\"u1\"} 1";
        assert!(text.contains(line), "{text}");
        assert!(m.encode_probes().contains(line));
        assert!(!m.encode_probes().contains("kubelet_started"));
        assert!(text.contains("kubelet_running_pods 0"));
        assert!(text.ends_with("# EOF\n"));
        assert_eq!(text.matches("# EOF").count(), 1);
    }

    #[test]
    fn the_text_format_names_counter_families_with_total_and_has_no_eof() {
        let om = "# HELP a_things Things.\n# TYPE a_things counter\na_things_total 3\n\
                  # HELP b Bytes.\n# TYPE b gauge\n# UNIT b bytes\nb 1\n# EOF\n";
        assert_eq!(
            to_text_format(om),
            "# HELP a_things_total Things.\n# TYPE a_things_total counter\na_things_total 3\n\
             # HELP b Bytes.\n# TYPE b gauge\nb 1\n"
        );
        assert!(wants_openmetrics(Some(
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
        )));
        assert!(!wants_openmetrics(Some("*/*")));
        assert!(!wants_openmetrics(None));
    }

    #[test]
    fn path_labels_are_bounded() {
        assert_eq!(path_label("/api/v1/pods"), "api");
        assert_eq!(path_label("/metrics/probes"), "metrics");
        assert_eq!(path_label("/x/y"), "other");
        assert_eq!(path_label("/"), "");
    }
}
