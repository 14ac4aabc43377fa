//! The prober: one task per (container, probe kind), run from the host.
//!
//! A probe's `exec`, `httpGet`, `tcpSocket` or `grpc` action runs through
//! the shared action runner ([`super::actions`]) with the probe's HTTP
//! manners: no keep-alive, redirects followed only on the same host — a
//! redirect elsewhere is a success with a `ProbeWarning` —, at most 10 KiB of
//! body read, `User-Agent: kube-probe/…`; 200 ≤ status < 400 is success.
//! Failure output is worded like the kubelet prober's. Because probes run
//! from the host they work in images without a shell.
//!
//! Semantics as the kubelet's: liveness and readiness wait for the startup
//! probe; once startup succeeds readiness is checked at once; `initialDelay`
//! counts from the container's start; after an rkubelet restart the first run
//! is jittered within one period, and a container that was started or ready
//! before stays so (its saved result, [`Prober::restore`]) until its probes
//! say otherwise. A changed result is stored in [`Results`]
//! and wakes the pod worker, which kills on liveness/startup failure and
//! reports readiness; every run's report (result, time, output) is
//! published to the status store at once. Every failure records an
//! `Unhealthy` event.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::jiff::Timestamp;
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

use super::actions::{self, Action, ActionError, Purpose, Target};
use super::store::PodStore;
use crate::events::{Involved, Recorder};
use crate::k8s::probe::ProbeReport;
use crate::pod::probe::{Params, ProbeKind, ProbeResult, SavedResults, Tracker};
use crate::runtime::{ContainerInfo, ContainerRuntime};

/// What one probe run found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub success: bool,
    /// Failure output or message (trimmed, bounded).
    pub output: String,
    /// A success with a caveat (`ProbeWarning`).
    pub warning: Option<String>,
}

impl Outcome {
    fn fail(output: impl Into<String>) -> Self {
        Outcome {
            success: false,
            output: output.into(),
            warning: None,
        }
    }
}

/// Probe results by container id, shared with the worker.
///
/// With [`Results::published_to`], every new report also goes straight to
/// the status store's probe reports of the pod (not its status: a probe
/// run that changes no result does not wake the worker), so `describe`
/// shows the current result even while a failing probe has not reached its
/// threshold yet.
#[derive(Debug, Default)]
pub struct Results {
    map: Mutex<HashMap<(String, ProbeKind), (ProbeResult, ProbeReport)>>,
    /// The store and pod UID the reports are published to.
    publish: Option<(Arc<PodStore>, String)>,
}

impl Results {
    /// Results whose reports are published to `store` under `uid`.
    pub fn published_to(store: Arc<PodStore>, uid: &str) -> Self {
        Results {
            map: Mutex::default(),
            publish: Some((store, uid.to_string())),
        }
    }

    fn publish(&self) {
        if let Some((store, uid)) = &self.publish {
            store.set_probes(uid, self.reports());
        }
    }

    fn set(&self, id: &str, kind: ProbeKind, result: ProbeResult, report: ProbeReport) {
        if let Ok(mut m) = self.map.lock() {
            m.insert((id.to_string(), kind), (result, report));
        }
        self.publish();
    }
    fn forget(&self, id: &str) {
        if let Ok(mut m) = self.map.lock() {
            m.retain(|(cid, _), _| cid != id);
        }
        self.publish();
    }
    /// The current result of a container's probe, if it has one.
    pub fn get(&self, id: &str, kind: ProbeKind) -> Option<ProbeResult> {
        self.map
            .lock()
            .ok()?
            .get(&(id.to_string(), kind))
            .map(|(r, _)| *r)
    }
    /// Every probe's last report, by container and kind.
    pub fn reports(&self) -> Vec<ProbeReport> {
        let mut v: Vec<ProbeReport> = self
            .map
            .lock()
            .map(|m| m.values().map(|(_, r)| r.clone()).collect())
            .unwrap_or_default();
        v.sort_by(|a, b| (&a.container, &a.kind).cmp(&(&b.container, &b.kind)));
        v
    }
}

/// Runs one probe once, bounded by `timeout`.
pub async fn run_probe(
    runtime: &dyn ContainerRuntime,
    probe: &Probe,
    target: Target<'_>,
    timeout: Duration,
) -> Outcome {
    let Some(action) = Action::of_probe(probe) else {
        return Outcome::fail("the probe has no handler");
    };
    match actions::run(runtime, action, target, timeout, Purpose::Probe).await {
        Ok(success) => Outcome {
            success: true,
            output: String::new(),
            warning: success.warning,
        },
        Err(e) => Outcome::fail(failure_output(e)),
    }
}

/// A failed probe's output: the kubelet prober's wording where it differs
/// from the hook events'.
fn failure_output(e: ActionError) -> String {
    match e {
        ActionError::Exec { source, .. } => format!("exec failed: {source}"),
        ActionError::ExitCode { output, .. } => output,
        ActionError::HttpStatus { code, .. } => {
            format!("HTTP probe failed with statuscode: {code}")
        }
        other => other.to_string(),
    }
}

/// A random duration below `max` (for jitter).
fn jitter(max: Duration) -> Duration {
    let r = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    Duration::from_millis(r % (max.as_millis().max(1) as u64))
}

/// Everything a probe task needs.
#[derive(Clone)]
pub struct ProbeContext {
    pub runtime: Arc<dyn ContainerRuntime>,
    pub recorder: Arc<Recorder>,
    pub involved: Involved,
    pub wake: Arc<Notify>,
    pub results: Arc<Results>,
}

/// Owns the probe tasks of one pod.
pub struct Prober {
    ctx: ProbeContext,
    /// Container id → cancels its tasks.
    tasks: BTreeMap<String, CancellationToken>,
    /// Probes of containers that were already running when the prober began
    /// (after an rkubelet restart) start with jitter.
    first_sync: bool,
    /// Results from before an rkubelet restart, for the containers running
    /// at the first sync; their probes resume from them.
    restored: SavedResults,
}

impl Prober {
    pub fn new(ctx: ProbeContext) -> Self {
        Prober {
            ctx,
            tasks: BTreeMap::new(),
            first_sync: true,
            restored: SavedResults::default(),
        }
    }

    /// Gives the results saved before an rkubelet restart; the probes of
    /// containers still running at the first sync resume from them (the
    /// rest start from the kubelet's initial values). Call before the first
    /// [`Prober::sync`].
    pub fn restore(&mut self, saved: SavedResults) {
        self.restored = saved;
    }

    pub fn results(&self) -> &Arc<Results> {
        &self.ctx.results
    }

    /// Starts tasks for running containers with probes, stops those of
    /// containers that stopped.
    pub fn sync(&mut self, specs: &[(Container, bool)], observed: &[ContainerInfo], pod_ip: &str) {
        let adopted = std::mem::replace(&mut self.first_sync, false);
        let running: BTreeMap<&str, &ContainerInfo> = observed
            .iter()
            .filter(|c| c.is_running() && c.meta().is_some_and(|m| !m.is_sandbox))
            .map(|c| (c.id.as_str(), c))
            .collect();
        let gone: Vec<String> = self
            .tasks
            .keys()
            .filter(|id| !running.contains_key(id.as_str()))
            .cloned()
            .collect();
        for id in gone {
            if let Some(t) = self.tasks.remove(&id) {
                t.cancel();
            }
            self.ctx.results.forget(&id);
        }
        for (id, info) in running {
            if self.tasks.contains_key(id) {
                continue;
            }
            let Some(meta) = info.meta() else { continue };
            let Some((spec, init)) = specs.iter().find(|(c, _)| c.name == meta.container_name)
            else {
                continue;
            };
            let probed = [
                ProbeKind::Startup,
                ProbeKind::Liveness,
                ProbeKind::Readiness,
            ]
            .into_iter()
            .filter(|k| k.of(spec).is_some())
            .collect::<Vec<_>>();
            if probed.is_empty() || (*init && !crate::pod::plan::is_sidecar(spec)) {
                continue;
            }
            let cancel = CancellationToken::new();
            let resumed = |kind: ProbeKind| adopted.then(|| self.restored.get(id, kind)).flatten();
            let started = spec.startup_probe.is_none()
                || resumed(ProbeKind::Startup) == Some(ProbeResult::Success);
            let (started_tx, started_rx) = watch::channel(started);
            let started_tx = Arc::new(started_tx);
            for kind in probed {
                let task = ProbeTask {
                    ctx: self.ctx.clone(),
                    kind,
                    container: spec.clone(),
                    init: *init,
                    container_id: id.to_string(),
                    pod_ip: pod_ip.to_string(),
                    started_at: info.started_at,
                    adopted,
                    resumed: resumed(kind),
                    started_tx: started_tx.clone(),
                    started_rx: started_rx.clone(),
                };
                if let Some(result) = task.resumed {
                    // Known at once, so the status published next keeps it.
                    task.report(result, None);
                }
                let cancel = cancel.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        _ = cancel.cancelled() => {}
                        _ = task.run() => {}
                    }
                });
            }
            self.tasks.insert(id.to_string(), cancel);
        }
        self.restored = SavedResults::default();
    }

    /// Stops every probe (pod termination).
    pub fn stop_all(&mut self) {
        for (id, t) in std::mem::take(&mut self.tasks) {
            t.cancel();
            self.ctx.results.forget(&id);
        }
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        self.stop_all();
    }
}

struct ProbeTask {
    ctx: ProbeContext,
    kind: ProbeKind,
    container: Container,
    init: bool,
    container_id: String,
    pod_ip: String,
    started_at: Option<Timestamp>,
    adopted: bool,
    /// The result before an rkubelet restart, if known.
    resumed: Option<ProbeResult>,
    started_tx: Arc<watch::Sender<bool>>,
    started_rx: watch::Receiver<bool>,
}

impl ProbeTask {
    async fn run(mut self) {
        let Some(probe) = self.kind.of(&self.container).cloned() else {
            return;
        };
        let params = Params::of(&probe);
        let mut tracker = match self.resumed {
            Some(result) => Tracker::resume(params, result),
            None => Tracker::new(self.kind, params),
        };
        self.report(tracker.result(), None);
        if self.kind == ProbeKind::Startup && tracker.result() == ProbeResult::Success {
            // Started before the restart: startup probes are done.
            return;
        }
        // Liveness and readiness wait for the startup probe.
        if self.kind != ProbeKind::Startup && self.started_rx.wait_for(|s| *s).await.is_err() {
            return;
        }
        // initialDelaySeconds counts from the container's start.
        let since_start = self
            .started_at
            .and_then(|s| Duration::try_from(Timestamp::now().duration_since(s)).ok())
            .unwrap_or_default();
        let mut delay = params.initial_delay.saturating_sub(since_start);
        if self.adopted && delay.is_zero() {
            delay = jitter(params.period);
        }
        tokio::time::sleep(delay).await;
        let involved = self.ctx.involved.container(&self.container.name, self.init);
        let metrics = crate::metrics::global();
        let mut series = crate::metrics::ProbeSeries::new(
            crate::metrics::ProbeDurationLabels {
                probe_type: self.kind.name().to_string(),
                container: self.container.name.clone(),
                pod: self.ctx.involved.name.clone(),
                namespace: self.ctx.involved.namespace.clone(),
            },
            &self.ctx.involved.uid,
        );
        loop {
            let target = Target {
                container_id: &self.container_id,
                container: &self.container,
                pod_ip: &self.pod_ip,
            };
            let started = std::time::Instant::now();
            let outcome =
                run_probe(self.ctx.runtime.as_ref(), &probe, target, params.timeout).await;
            series.record(metrics, outcome.success, started.elapsed());
            if let Some(w) = &outcome.warning {
                self.ctx.recorder.warning(
                    &involved,
                    "ProbeWarning",
                    format!("{} probe warning: {w}", self.kind.name()),
                );
            }
            if !outcome.success {
                self.ctx.recorder.warning(
                    &involved,
                    "Unhealthy",
                    format!("{} probe failed: {}", self.kind.name(), outcome.output),
                );
            }
            let changed = tracker.observe(outcome.success);
            self.report(tracker.result(), Some(&outcome));
            if let Some(result) = changed {
                self.ctx.wake.notify_one();
                match (self.kind, result) {
                    // The worker kills the container; nothing more to probe.
                    (ProbeKind::Liveness | ProbeKind::Startup, ProbeResult::Failure) => return,
                    (ProbeKind::Startup, ProbeResult::Success) => {
                        self.started_tx.send_replace(true);
                        return;
                    }
                    _ => {}
                }
            }
            tokio::time::sleep(params.period).await;
        }
    }

    fn report(&self, result: ProbeResult, outcome: Option<&Outcome>) {
        let report = ProbeReport {
            container: self.container.name.clone(),
            kind: self.kind.name().to_string(),
            result: format!("{result:?}"),
            last_probe: outcome.map(|_| Timestamp::now().to_string()),
            last_output: outcome
                .map(|o| o.output.chars().take(1024).collect())
                .unwrap_or_default(),
        };
        self.ctx
            .results
            .set(&self.container_id, self.kind, result, report);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// After an rkubelet restart a container that was started and ready
    /// stays so: its saved results are known before any probe runs (the
    /// kubelet keeps them in the API server; NodeConformance "should not
    /// change container status on kubelet restart"). A container that was
    /// not running at the first sync starts from the initial values.
    #[tokio::test]
    async fn saved_results_are_known_at_once_for_containers_still_running() {
        use crate::pod::fixtures::container;
        use crate::runtime::ContainerState::Running;
        let ctx = ProbeContext {
            runtime: Arc::new(crate::runtime::fake::FakeRuntime::new()),
            recorder: Arc::new(Recorder::new("n")),
            involved: Involved::pod("default", "p", "u"),
            wake: Arc::new(Notify::new()),
            results: Arc::new(Results::default()),
        };
        let probe = Probe {
            period_seconds: Some(3600),
            ..Default::default()
        };
        let spec = Container {
            name: "a".into(),
            readiness_probe: Some(probe.clone()),
            startup_probe: Some(probe),
            ..Default::default()
        };
        let mut saved = SavedResults::default();
        for id in ["a0", "a1"] {
            for kind in [ProbeKind::Startup, ProbeKind::Readiness] {
                saved.0.insert((id.to_string(), kind), ProbeResult::Success);
            }
        }
        let mut prober = Prober::new(ctx);
        prober.restore(saved);
        let specs = [(spec, false)];
        prober.sync(&specs, &[container("a0", "a", 0, "sb", Running, None)], "");
        let results = prober.results().clone();
        assert_eq!(
            results.get("a0", ProbeKind::Startup),
            Some(ProbeResult::Success)
        );
        assert_eq!(
            results.get("a0", ProbeKind::Readiness),
            Some(ProbeResult::Success)
        );
        // A later container (after a restart of it) is probed from scratch.
        prober.sync(&specs, &[container("a1", "a", 1, "sb", Running, None)], "");
        assert_ne!(
            results.get("a1", ProbeKind::Readiness),
            Some(ProbeResult::Success)
        );
        prober.stop_all();
    }

    fn record() -> crate::worker::store::PodRecord {
        let mut pod = k8s_openapi::api::core::v1::Pod::default();
        pod.metadata.uid = Some("u1".into());
        crate::worker::store::PodRecord {
            pod,
            source: "file".into(),
            probes: Vec::new(),
        }
    }

    fn report(result: &str, output: &str) -> ProbeReport {
        ProbeReport {
            container: "web".into(),
            kind: "Readiness".into(),
            result: result.into(),
            last_probe: Some("2026-01-01T00:00:00Z".into()),
            last_output: output.into(),
        }
    }

    #[test]
    fn every_report_reaches_the_store_without_a_status_change() {
        let store = Arc::new(PodStore::default());
        store.put("u1", record());
        let results = Results::published_to(store.clone(), "u1");
        let probes = || store.list()[0].probes.clone();
        // Failing below the threshold: the result is unchanged, the report is new.
        results.set(
            "c1",
            ProbeKind::Readiness,
            ProbeResult::Failure,
            report("Failure", "not yet"),
        );
        assert_eq!(probes(), [report("Failure", "not yet")]);
        results.set(
            "c1",
            ProbeKind::Readiness,
            ProbeResult::Success,
            report("Success", ""),
        );
        assert_eq!(probes(), [report("Success", "")]);
        results.forget("c1");
        assert!(probes().is_empty());
        // A pod already gone from the store is not brought back.
        store.remove("u1");
        results.set(
            "c1",
            ProbeKind::Readiness,
            ProbeResult::Success,
            report("Success", ""),
        );
        assert!(store.list().is_empty());
    }

    #[test]
    fn jitter_stays_below_the_period() {
        for _ in 0..100 {
            assert!(jitter(Duration::from_secs(1)) < Duration::from_secs(1));
        }
    }
}
