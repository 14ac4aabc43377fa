//! The pod manager: owns the workers.
//!
//! It consumes source snapshots through the [`Merger`], and for the merged
//! desired set starts a worker per new UID, tells workers of vanished UIDs to
//! terminate, and makes a replacement wait until the pod it replaces (same
//! namespace/name, older UID) is fully stopped — two pods with one name never
//! overlap. A pod put back while its worker still terminates gets a new
//! worker that starts once the old one is done (the kubelet's restart of a
//! pod re-added while terminating). On its first complete desired set it adopts what already runs
//! (workers re-observe by UID, so matching containers are left alone) and
//! terminates orphans: containers of UIDs no source defines any more —
//! except those of origins a source asks to keep (a manifest URL that has not
//! answered yet); they are cleaned up once that source answers.
//!
//! Admission happens here, between the merger and the workers: a pod this
//! node may not run (another `spec.nodeName`, a node selector or required
//! node affinity that does not match) gets no worker; it is published as a
//! `Failed` pod with the kubelet's reason and message until its manifest goes
//! away, and counts as not desired for orphan cleanup.
//! After admission, the [`PortGate`] holds back pods whose `hostPort`
//! another pod of this node holds (`Pending`, as the scheduler leaves them).
//! After every merge it publishes the merged ConfigMaps and Secrets to the
//! workers' shared object store.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::host_ports::{all_done, PortGate};
use super::pod_worker::{kill_pod_until_done, PodWorker, WorkerContext, WorkerHandle};
use super::store::PodRecord;
use super::workloads::{Controllers, WorkloadObjects};
use crate::admission;
use crate::events::Involved;
use crate::node::NodeInfo;
use crate::pleg::Routes;
use crate::source::{Desired, Diagnostics, Merger, ObjectKind, Snapshot};

/// Which of this node's containers an orphan sweep may terminate.
enum Sweep {
    /// The first complete desired set after a start: every origin except
    /// those a source asks to keep (a manifest URL that has not answered).
    Initial,
    /// Later, only these origins: kept at the initial sweep, their source
    /// has answered since.
    Answered(Vec<String>),
}

impl Sweep {
    /// Does the sweep cover a container from `source` (its origin label)?
    fn covers(&self, source: Option<&str>, desired: &Desired) -> bool {
        match self {
            Sweep::Initial => !source.is_some_and(|s| {
                (desired.keep_origins.iter()).any(|kept| crate::source::origin_kept(kept, s))
            }),
            Sweep::Answered(origins) => {
                source.is_some_and(|s| origins.iter().any(|o| crate::source::origin_kept(o, s)))
            }
        }
    }
}

/// Owns every pod worker.
pub struct Manager {
    ctx: Arc<WorkerContext>,
    merger: Merger,
    routes: Arc<Routes>,
    diagnostics: Arc<RwLock<Diagnostics>>,
    /// By UID, including terminating ones until they are done.
    workers: HashMap<String, WorkerHandle>,
    /// Newest worker per `namespace/name`.
    by_name: HashMap<String, WorkerHandle>,
    adopted: bool,
    /// This node's name and labels, for admission.
    node: NodeInfo,
    /// Pods refused by admission (UID to `namespace/name`), published as
    /// `Failed` in the pod store, or, a ReplicaSet's pods the node's taints
    /// keep off, `Pending`.
    rejected: HashMap<String, String>,
    /// UIDs of the workload pods with containers at start (a `NoSchedule`
    /// taint does not evict them).
    ran_at_start: BTreeSet<String>,
    /// Origins whose containers the initial orphan cleanup left alone; they
    /// are cleaned once their source answers.
    kept: BTreeSet<String>,
    /// Readiness after the initial sync and the main loop's heartbeat
    /// ([`crate::service`]).
    health: Arc<crate::service::Health>,
    /// Host ports held by workers' pods and pods waiting for one.
    ports: PortGate,
    /// The workload controllers and the pods they made.
    controllers: Controllers,
    /// The last merged desired set (before the controllers), to run them
    /// again when a workload's pod changes.
    last: Option<Desired>,
    /// Have the controllers been told which pods run at start?
    seeded: bool,
    /// The workload records as last written (or read at start).
    records: super::workload_records::Records,
    /// Where the workloads are published for the API.
    served: Option<Arc<WorkloadObjects>>,
}

impl Manager {
    pub fn new(
        ctx: Arc<WorkerContext>,
        sources: Vec<String>,
        routes: Arc<Routes>,
        diagnostics: Arc<RwLock<Diagnostics>>,
    ) -> Self {
        let node_name = ctx.node_name.clone();
        let job_records = ctx.root_dir.join("jobs");
        let cron_records = ctx.root_dir.join("cronjobs");
        Manager {
            ctx,
            merger: Merger::new(sources),
            routes,
            diagnostics,
            workers: HashMap::new(),
            by_name: HashMap::new(),
            adopted: false,
            node: NodeInfo::new(&node_name),
            rejected: HashMap::new(),
            ran_at_start: BTreeSet::new(),
            kept: BTreeSet::new(),
            health: crate::service::Health::new(),
            ports: PortGate::default(),
            controllers: Controllers::new(&node_name)
                .with_job_records(job_records)
                .with_cronjob_records(cron_records),
            last: None,
            seeded: false,
            records: Default::default(),
            served: None,
        }
    }

    /// Shares the daemon's health: marked ready after the initial sync,
    /// and the main loop answers its heartbeat pokes.
    pub fn with_health(mut self, health: Arc<crate::service::Health>) -> Self {
        self.health = health;
        self
    }

    /// Sets the node's labels used for admission (default: the built-in
    /// labels of the worker context's node name).
    pub fn with_node(mut self, node: NodeInfo) -> Self {
        self.node = node;
        self
    }

    /// Publishes the workloads with their status to `served` (the API's
    /// `/apis/apps/v1`).
    pub fn with_workload_objects(mut self, served: Arc<WorkloadObjects>) -> Self {
        self.controllers.cronjobs.manual = served.manual.clone();
        self.served = Some(served);
        self
    }

    /// Lets at most `max_pods` pods run at once (`--max-pods`; default 110).
    pub fn with_max_pods(mut self, max_pods: usize) -> Self {
        self.ports = PortGate::new(max_pods);
        self
    }

    /// Runs until `shutdown`; then waits (bounded) for workers to stop.
    pub async fn run(
        mut self,
        mut snapshots: mpsc::Receiver<Snapshot>,
        shutdown: CancellationToken,
    ) {
        let mut prune = tokio::time::interval(Duration::from_secs(5));
        let store = self.ctx.store.clone();
        let mut pods = store.pods().watch(Some(store.pods().list().1)).ok();
        let manual = self.controllers.cronjobs.manual.clone();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                snap = snapshots.recv() => match snap {
                    Some(snap) => self.on_snapshot(snap, &shutdown).await,
                    None => break,
                },
                change = next_change(&mut pods) => {
                    // A workload's pod changed (readiness, gone): its
                    // controller decides again.
                    let is_owned = |c: &crate::watch::Change<k8s_openapi::api::core::v1::Pod>| {
                        c.object.metadata.owner_references.as_ref().is_some_and(|o| !o.is_empty())
                    };
                    let mut owned = change.as_ref().is_none_or(|c| is_owned(c));
                    let mut lagged = change.is_none();
                    // Changes that are already there make one run, not one each.
                    while let Some(w) = pods.as_mut().filter(|_| !lagged) {
                        match futures_util::FutureExt::now_or_never(w.next()) {
                            Some(Ok(c)) => owned |= is_owned(&c),
                            Some(Err(_)) => lagged = true,
                            None => break,
                        }
                    }
                    if lagged {
                        owned = true;
                        pods = store.pods().watch(Some(store.pods().list().1)).ok();
                    }
                    if owned && self.last.as_ref().is_some_and(|d| !d.workloads.is_empty()) {
                        self.resync(&shutdown).await;
                    }
                }
                _ = any_done(self.terminating_workload_pods()) => {
                    // A pod a controller deleted is gone.
                    self.resync(&shutdown).await;
                }
                _ = manual.notified() => {
                    // A Job created from a CronJob through the API.
                    self.resync(&shutdown).await;
                }
                _ = wake_at(self.controllers.next_wake(), self.ctx.clock.now()) => {
                    // A pod has been ready for its minReadySeconds.
                    self.resync(&shutdown).await;
                }
                _ = prune.tick() => self.prune(),
                _ = self.health.poked() => self.health.beat(),
            }
        }
        let done = self
            .workers
            .values()
            .map(|w| w.done.clone())
            .collect::<Vec<_>>();
        let all = futures_util::future::join_all(done.iter().map(|d| d.cancelled()));
        let _ = tokio::time::timeout(Duration::from_secs(5), all).await;
    }

    async fn on_snapshot(&mut self, snap: Snapshot, shutdown: &CancellationToken) {
        let (desired, diag) = self.merger.update(snap);
        self.ctx
            .objects
            .publish(desired.configmaps.clone(), desired.secrets.clone());
        if let Ok(mut d) = self.diagnostics.write() {
            if *d != diag {
                // New problems become events on the node (an invalid manifest
                // has no pod to attach them to).
                let node = Involved::node(&self.ctx.node_name);
                // A failing source (the manifest URL) reports its own
                // problems, with backoff on the noise.
                let own = |e: &String| diag.failing.values().any(|f| f == e);
                for e in diag
                    .errors
                    .iter()
                    .filter(|e| !d.errors.contains(e) && !own(e))
                {
                    self.ctx
                        .recorder
                        .warning(&node, "FailedValidation", e.clone());
                }
                for c in diag.conflicts.iter().filter(|c| !d.conflicts.contains(c)) {
                    let reason = match c.kind {
                        ObjectKind::Pod => "DuplicatePod",
                        ObjectKind::ConfigMap | ObjectKind::Secret | ObjectKind::Workload => {
                            "DuplicateObject"
                        }
                    };
                    self.ctx.recorder.warning(&node, reason, c.to_string());
                }
                *d = diag;
            }
        }
        self.last = Some(desired);
        self.resync(shutdown).await;
    }

    /// Runs the workload controllers on the last merged desired set, then
    /// admission, the host-port gate and the workers.
    async fn resync(&mut self, shutdown: &CancellationToken) {
        let Some(mut desired) = self.last.clone() else {
            return;
        };
        if !desired.workloads.is_empty() && !self.seeded {
            self.seeded = true;
            self.restore_workload_records();
            self.seed_workload_pods().await;
        }
        let now = self.ctx.clock.now();
        (self.controllers).expand(
            &mut desired,
            &self.ctx.store,
            &self.workers,
            &self.node,
            now,
        );
        if self.seeded {
            self.save_workload_records(desired.complete);
        }
        if let Some(served) = &self.served {
            served.publish(&self.controllers);
        }
        for (involved, reason, message) in self.controllers.take_events() {
            self.ctx.recorder.normal(&involved, reason, message);
        }
        for (involved, reason, message) in self.controllers.jobs.take_events() {
            self.ctx.recorder.normal(&involved, reason, message);
        }
        for (involved, reason, message) in self.controllers.jobs.take_warnings() {
            self.ctx.recorder.warning(&involved, reason, message);
        }
        for (involved, reason, message) in self.controllers.cronjobs.take_events() {
            self.ctx.recorder.normal(&involved, reason, message);
        }
        for (involved, reason, message) in self.controllers.cronjobs.take_warnings() {
            self.ctx.recorder.warning(&involved, reason, message);
        }
        let mut desired = self.admit(desired);
        if !desired.complete {
            return;
        }
        if !self.adopted {
            self.adopted = true;
            self.clean_orphans(Sweep::Initial, &desired, shutdown).await;
        } else {
            // Origins kept at the initial sweep whose source has answered since.
            let answered: Vec<String> = self
                .kept
                .iter()
                .filter(|o| !desired.keep_origins.contains(*o))
                .cloned()
                .collect();
            if !answered.is_empty() {
                self.clean_orphans(Sweep::Answered(answered), &desired, shutdown)
                    .await;
            }
        }
        let after = self.ports.gate(&mut desired, &self.workers, &self.ctx);
        self.apply_desired(&desired, after, shutdown);
        self.health
            .set_ready(desired.pods.keys().cloned().collect());
    }

    /// The `done` tokens of the workers of pods the controllers deleted.
    /// A worker that finished (or was pruned) before the controllers looked
    /// again gives a token that is already cancelled, so they look again at
    /// once: skipping it would leave them waiting for a pod that is gone
    /// (a DaemonSet's replacement was never made).
    fn terminating_workload_pods(&self) -> Vec<CancellationToken> {
        (self.controllers.terminating())
            .map(|uid| match self.workers.get(uid) {
                Some(w) => w.done.clone(),
                None => {
                    let gone = CancellationToken::new();
                    gone.cancel();
                    gone
                }
            })
            .collect()
    }

    /// Gives the workload controllers what they recorded before a restart.
    fn restore_workload_records(&mut self) {
        match super::workload_records::load(&self.ctx.root_dir) {
            Ok(records) => {
                self.controllers.restore(records.clone());
                self.records = records;
            }
            Err(e) => tracing::warn!(error = %e,
                "cannot read the workload records; generations go on from the pods' labels, \
                 pods of older Deployment templates are replaced"),
        }
    }

    /// Writes the workload records when they changed. Before any pod of a
    /// new template starts (the workers start after this), so its template
    /// is on disk once its pods exist.
    fn save_workload_records(&mut self, complete: bool) {
        let records = self.controllers.records(complete);
        if records == self.records {
            return;
        }
        match super::workload_records::save(&self.ctx.root_dir, &records) {
            Ok(()) => self.records = records,
            Err(e) => tracing::warn!(error = %e,
                path = %super::workload_records::path(&self.ctx.root_dir).display(),
                "cannot write the workload records"),
        }
    }

    /// Tells the workload controllers which pods run at start, so they adopt
    /// them instead of making new ones.
    async fn seed_workload_pods(&mut self) {
        match self.ctx.runtime.list_containers(None).await {
            Ok(containers) => {
                let node = self.ctx.node_name.as_str();
                let found: Vec<_> = (containers.iter())
                    .filter(|c| crate::runtime::labels::node_of(&c.labels) == Some(node))
                    .filter_map(|c| c.meta())
                    .map(|m| {
                        (
                            format!("{}/{}", m.pod.namespace, m.pod.name),
                            m.pod.uid.clone(),
                            m.pod.workload_generation.clone(),
                        )
                    })
                    .collect();
                (self.ran_at_start).extend(found.iter().map(|(_, uid, _)| uid.clone()));
                self.controllers.seed(found);
            }
            Err(e) => tracing::warn!(error = %e,
                "cannot list containers; workload pods running from before may be replaced"),
        }
    }

    /// Runs admission on the merged pods: returns the admitted ones, and
    /// publishes the rejected ones as `Failed` pods (removing those whose
    /// manifest went away). A ReplicaSet's pod the node's taints keep off
    /// is published `Pending` / `Unschedulable` instead, as the scheduler
    /// leaves it, with one `FailedScheduling` event.
    fn admit(&mut self, mut desired: Desired) -> Desired {
        let mut rejected = HashMap::new();
        let node = &self.node;
        let ctx = &self.ctx;
        let before = &self.rejected;
        let ran_at_start = &self.ran_at_start;
        desired.pods.retain(|uid, sp| {
            if let Some(message) =
                admission::unschedulable(&sp.pod, node, ran_at_start.contains(uid))
            {
                let full_name = sp.full_name();
                if !before.contains_key(uid) {
                    tracing::warn!(pod = %full_name, %uid, %message,
                        "pod does not tolerate this node's taints; it stays pending");
                    let meta = &sp.pod.metadata;
                    let involved = crate::events::Involved::pod(
                        crate::k8s::meta::namespace_of(meta),
                        meta.name.as_deref().unwrap_or_default(),
                        uid,
                    );
                    ctx.recorder.warning(
                        &involved,
                        crate::pod::host_ports::EVENT_FAILED_SCHEDULING,
                        message.clone(),
                    );
                    let mut pod = (*sp.pod).clone();
                    pod.status = Some(crate::pod::host_ports::pending_status(
                        &sp.pod,
                        &message,
                        ctx.clock.now(),
                    ));
                    ctx.store.put(
                        uid,
                        PodRecord {
                            pod,
                            source: sp.origin.key(),
                            probes: Vec::new(),
                        },
                    );
                }
                rejected.insert(uid.clone(), full_name);
                return false;
            }
            let Err(why) = admission::admit(&sp.pod, node) else {
                return true;
            };
            let full_name = sp.full_name();
            if !before.contains_key(uid) {
                tracing::warn!(pod = %full_name, %uid, reason = %why.reason, message = %why.message,
                    "pod rejected by admission; it will not run");
                let meta = &sp.pod.metadata;
                let involved = crate::events::Involved::pod(
                    crate::k8s::meta::namespace_of(meta),
                    meta.name.as_deref().unwrap_or_default(),
                    uid,
                );
                ctx.recorder
                    .warning(&involved, &why.reason, why.message.clone());
                let mut pod = (*sp.pod).clone();
                pod.status = Some(admission::rejected_status(&sp.pod, &why, &ctx.host_ip));
                ctx.store.put(
                    uid,
                    PodRecord {
                        pod,
                        source: sp.origin.key(),
                        probes: Vec::new(),
                    },
                );
            }
            rejected.insert(uid.clone(), full_name);
            false
        });
        for (uid, full_name) in &self.rejected {
            if !rejected.contains_key(uid) {
                tracing::info!(pod = %full_name, %uid, "rejected pod removed from its source");
                self.ctx.store.remove(uid);
            }
        }
        self.rejected = rejected;
        desired
    }

    /// Terminates the pods that run on this node but that no source defines
    /// (and no worker owns), among the containers `sweep` covers. The initial
    /// sweep also removes pod directories that belong to no pod.
    async fn clean_orphans(
        &mut self,
        sweep: Sweep,
        desired: &Desired,
        shutdown: &CancellationToken,
    ) {
        let containers = match self.ctx.runtime.list_containers(None).await {
            Ok(c) => c,
            Err(e) => {
                match sweep {
                    Sweep::Initial => tracing::error!(error = %e,
                        "cannot list containers to adopt; orphans stay until restart"),
                    Sweep::Answered(_) => tracing::warn!(error = %e,
                        "cannot list containers; will retry cleaning up after the source answered"),
                }
                return;
            }
        };
        let mut orphans: HashMap<String, String> = HashMap::new();
        let mut known: BTreeSet<String> = BTreeSet::new();
        let mut left_alone = 0usize;
        let ours = containers.iter().filter(|c| {
            crate::runtime::labels::node_of(&c.labels) == Some(self.ctx.node_name.as_str())
        });
        for c in ours {
            let Some(m) = c.meta() else { continue };
            known.insert(m.pod.uid.clone());
            let source = c.labels.get(crate::runtime::labels::SOURCE);
            if !sweep.covers(source.map(String::as_str), desired) {
                left_alone += 1;
                continue;
            }
            if !desired.pods.contains_key(&m.pod.uid) && !self.workers.contains_key(&m.pod.uid) {
                orphans.insert(
                    m.pod.uid.clone(),
                    format!("{}/{}", m.pod.namespace, m.pod.name),
                );
            }
        }
        match &sweep {
            Sweep::Initial => {
                self.kept = desired.keep_origins.clone();
                self.ports.adopted(known.iter().cloned());
                let adopted = known.len() - orphans.len();
                tracing::info!(
                    adopted,
                    orphans = orphans.len(),
                    kept_containers = left_alone,
                    "initial sync"
                );
                if left_alone > 0 {
                    tracing::warn!(origins = ?desired.keep_origins,
                        "leaving pods of a source that has not answered yet (a manifest URL, an unreadable manifest directory) running until it does");
                }
            }
            Sweep::Answered(origins) => {
                for origin in origins {
                    self.kept.remove(origin);
                }
            }
        }
        for (uid, full_name) in orphans {
            match sweep {
                Sweep::Initial => {
                    tracing::info!(pod = %full_name, %uid, "terminating orphaned pod")
                }
                Sweep::Answered(_) => tracing::info!(pod = %full_name, %uid,
                    "terminating a pod its source no longer defines"),
            }
            self.spawn_orphan_killer(uid, full_name, shutdown);
        }
        if matches!(sweep, Sweep::Initial) {
            self.remove_stale_pod_dirs(desired, &known);
        }
    }

    /// Removes pod directories left behind by pods that have no containers.
    fn remove_stale_pod_dirs(&self, desired: &Desired, known: &BTreeSet<String>) {
        let pods_dir = crate::pod::layout::pods_dir(&self.ctx.root_dir);
        if let Ok(entries) = std::fs::read_dir(&pods_dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if !desired.pods.contains_key(&name) && !known.contains(&name) {
                    if let Err(err) = super::volumes::teardown(&e.path()) {
                        tracing::warn!(dir = %e.path().display(), error = %err,
                            "cannot remove stale pod directory");
                    }
                }
            }
        }
    }

    fn spawn_orphan_killer(
        &mut self,
        uid: String,
        full_name: String,
        shutdown: &CancellationToken,
    ) {
        let handle = spawn_orphan_killer(
            self.ctx.clone(),
            uid.clone(),
            full_name.clone(),
            shutdown.clone(),
        );
        self.by_name.insert(full_name, handle.clone());
        self.workers.insert(uid, handle);
    }

    /// Makes the workers match the desired pods: vanished UIDs are told to
    /// terminate, new UIDs get a worker (after the pod they replace stopped),
    /// and so does a UID whose worker is terminating (after it stopped).
    /// A UID in `after` also waits for those workers (the holders of its
    /// host ports).
    fn apply_desired(
        &mut self,
        desired: &Desired,
        mut after: HashMap<String, Vec<CancellationToken>>,
        shutdown: &CancellationToken,
    ) {
        for (uid, w) in &self.workers {
            if !desired.pods.contains_key(uid) && !w.terminate.is_cancelled() {
                tracing::info!(pod = %w.full_name, %uid, "pod removed from its source");
                w.terminate.cancel();
                self.routes.wake(uid);
            }
        }
        for (uid, sp) in &desired.pods {
            // A pod re-added while its worker still terminates (manifest
            // removed and put back) starts again once that worker is done.
            let restart = match self.workers.get(uid) {
                Some(w) if w.terminate.is_cancelled() => Some(w.done.clone()),
                Some(_) => continue,
                None => None,
            };
            let full_name = sp.full_name();
            let previous = if restart.is_some() {
                tracing::info!(pod = %full_name, %uid,
                    "pod re-added while terminating; it starts again once stopped");
                crate::metrics::global().restarted_pods.inc();
                restart
            } else {
                let previous = self
                    .by_name
                    .get(&full_name)
                    .filter(|h| &h.uid != uid && !h.done.is_cancelled())
                    .map(|h| h.done.clone());
                if previous.is_some() {
                    tracing::info!(pod = %full_name, %uid, "pod changed; the new one starts after the old one stopped");
                }
                previous
            };
            let waits = previous
                .into_iter()
                .chain(after.remove(uid).into_iter().flatten());
            let previous = all_done(waits.collect());
            let handle = PodWorker::spawn(
                self.ctx.clone(),
                sp.pod.clone(),
                sp.origin.key(),
                previous,
                shutdown.clone(),
            );
            self.routes.insert(uid, handle.wake.clone());
            self.by_name.insert(full_name, handle.clone());
            self.workers.insert(uid.clone(), handle);
        }
        self.prune();
    }

    /// Forgets workers that have finished.
    fn prune(&mut self) {
        let finished: Vec<String> = self
            .workers
            .iter()
            .filter(|(_, w)| w.done.is_cancelled())
            .map(|(uid, _)| uid.clone())
            .collect();
        for uid in finished {
            self.routes.remove(&uid);
            self.workers.remove(&uid);
        }
        self.by_name.retain(|_, w| !w.done.is_cancelled());
    }
}

/// Waits until one of `tokens` is cancelled; forever when there is none.
async fn any_done(tokens: Vec<CancellationToken>) {
    if tokens.is_empty() {
        return std::future::pending().await;
    }
    let waits = tokens.into_iter().map(|t| Box::pin(t.cancelled_owned()));
    futures_util::future::select_all(waits).await;
}

/// Sleeps until `at` (measured from `now`); forever when `None`.
async fn wake_at(at: Option<k8s_openapi::jiff::Timestamp>, now: k8s_openapi::jiff::Timestamp) {
    match at {
        Some(at) => {
            let wait = Duration::try_from(at.duration_since(now)).unwrap_or_default();
            // A little after, so the pod is available when looked at.
            tokio::time::sleep(wait + Duration::from_millis(10)).await;
        }
        None => std::future::pending().await,
    }
}

/// The next change of the pod store's watch; `None` when the watch lagged
/// (the caller subscribes again). Pending forever without a watch.
async fn next_change(
    watch: &mut Option<crate::watch::Watch<k8s_openapi::api::core::v1::Pod>>,
) -> Option<Arc<crate::watch::Change<k8s_openapi::api::core::v1::Pod>>> {
    match watch {
        Some(w) => w.next().await.ok(),
        None => std::future::pending().await,
    }
}

/// A task that terminates an orphaned pod, shaped like a worker so that a
/// new pod of the same name waits for it.
fn spawn_orphan_killer(
    ctx: Arc<WorkerContext>,
    uid: String,
    full_name: String,
    shutdown: CancellationToken,
) -> WorkerHandle {
    let handle = WorkerHandle {
        uid: uid.clone(),
        full_name,
        wake: Default::default(),
        terminate: CancellationToken::new(),
        done: CancellationToken::new(),
    };
    handle.terminate.cancel();
    let done = handle.done.clone();
    tokio::spawn(async move {
        let _done = done.drop_guard();
        kill_pod_until_done(ctx.runtime.as_ref(), &ctx.root_dir, &uid, None, &shutdown).await;
    });
    handle
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::backoff::BackoffPolicy;
    use crate::manifest::Origin;
    use crate::runtime::fake::FakeRuntime;
    use crate::runtime::labels;
    use crate::runtime::ContainerRuntime;
    use crate::source::{Defined, SourcePod};
    use crate::worker::store::PodStore;

    const NODE: &str = "node1";

    fn pod(name: &str, image_tag: &str) -> SourcePod {
        let yaml = format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  containers:\n  - {{name: app, image: 'img:{image_tag}'}}\n"
        );
        pod_from(&yaml, Origin::file(format!("/m/{name}.yaml")))
    }

    /// The first pod of a manifest, loaded as the daemon's sources do.
    fn pod_from(yaml: &str, origin: Origin) -> SourcePod {
        let loaded = crate::pod::fixtures::load(yaml, NODE, &origin);
        Defined::new(loaded, &origin).pods.remove(0)
    }

    struct Harness {
        fake: Arc<FakeRuntime>,
        recorder: Arc<crate::events::Recorder>,
        tx: mpsc::Sender<Snapshot>,
        shutdown: CancellationToken,
        task: tokio::task::JoinHandle<()>,
        _root: Arc<tempfile::TempDir>,
    }

    fn start(fake: Arc<FakeRuntime>) -> Harness {
        start_with(fake, &["file"], NodeInfo::new(NODE)).0
    }

    /// A manager with the given sources and node labels; also returns the pod store.
    fn start_with(
        fake: Arc<FakeRuntime>,
        sources: &[&str],
        node: NodeInfo,
    ) -> (Harness, Arc<PodStore>) {
        start_with_slots(fake, sources, node, 64, 110)
    }

    /// [`start_with`] with `slots` containers allowed to start at once.
    fn start_with_slots(
        fake: Arc<FakeRuntime>,
        sources: &[&str],
        node: NodeInfo,
        slots: usize,
        max_pods: usize,
    ) -> (Harness, Arc<PodStore>) {
        let root = Arc::new(tempfile::tempdir().expect("tmp"));
        start_full(fake, sources, node, slots, max_pods, root)
    }

    /// A manager on the root directory `root` (a restart keeps it).
    fn start_in(fake: Arc<FakeRuntime>, root: Arc<tempfile::TempDir>) -> (Harness, Arc<PodStore>) {
        start_full(fake, &["file"], NodeInfo::new(NODE), 64, 110, root)
    }

    fn start_full(
        fake: Arc<FakeRuntime>,
        sources: &[&str],
        node: NodeInfo,
        slots: usize,
        max_pods: usize,
        root: Arc<tempfile::TempDir>,
    ) -> (Harness, Arc<PodStore>) {
        let store = Arc::new(PodStore::default());
        let recorder = Arc::new(crate::events::Recorder::new(NODE));
        let ctx = Arc::new(WorkerContext {
            runtime: fake.clone(),
            node_name: NODE.into(),
            infra_image: "pause:1".into(),
            root_dir: PathBuf::from(root.path()),
            backoff: BackoffPolicy::default(),
            host_ip: "192.0.2.1".into(),
            store: store.clone(),
            objects: Default::default(),
            recorder: recorder.clone(),
            start_slots: Arc::new(tokio::sync::Semaphore::new(slots)),
            teardown_slots: Arc::new(tokio::sync::Semaphore::new(slots)),
            clock: Arc::new(crate::clock::SystemClock),
            health: crate::runtime::health::RuntimeHealth::new(),
        });
        let routes = Arc::new(Routes::default());
        let shutdown = CancellationToken::new();
        tokio::spawn(crate::pleg::watch_events(
            fake.clone(),
            routes.clone(),
            crate::runtime::health::RuntimeHealth::new(),
            shutdown.clone(),
        ));
        let sources = sources.iter().map(|s| s.to_string()).collect();
        let manager = Manager::new(ctx, sources, routes, Default::default())
            .with_node(node)
            .with_max_pods(max_pods);
        let (tx, rx) = mpsc::channel(4);
        let task = tokio::spawn(manager.run(rx, shutdown.clone()));
        (
            Harness {
                fake,
                recorder,
                tx,
                shutdown,
                task,
                _root: root,
            },
            store,
        )
    }

    impl Harness {
        async fn send(&self, pods: Vec<SourcePod>) {
            let snap = Snapshot {
                source: "file".into(),
                pods,
                ..Default::default()
            };
            self.tx.send(snap).await.expect("manager alive");
        }
        async fn send_snapshot(&self, snap: Snapshot) {
            self.tx.send(snap).await.expect("manager alive");
        }
        async fn stop(self) -> Arc<FakeRuntime> {
            self.shutdown.cancel();
            let _ = self.task.await;
            self.fake
        }
    }

    async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !f() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn running(fake: &FakeRuntime, uid: &str) -> usize {
        fake.containers()
            .iter()
            .filter(|c| {
                c.is_running() && c.labels.get(labels::POD_UID).map(String::as_str) == Some(uid)
            })
            .count()
    }

    #[tokio::test]
    async fn manifest_errors_and_name_conflicts_become_node_events_once() {
        let fake = Arc::new(FakeRuntime::new());
        let h = start(fake.clone());
        let recorder = h.recorder.clone();
        let snap = || Snapshot {
            source: "file".into(),
            errors: vec![crate::manifest::ManifestError::new(
                "/m/bad.yaml",
                "line 1: bad",
            )],
            ..Default::default()
        };
        h.tx.send(snap()).await.expect("send");
        h.tx.send(snap()).await.expect("send");
        eventually("the event", || !recorder.list(None).is_empty()).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let events = recorder.list(None);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].reason.as_deref(), Some("FailedValidation"));
        assert_eq!(
            events[0].count,
            Some(1),
            "an unchanged error is not reported again"
        );
        assert!(events[0]
            .message
            .as_deref()
            .is_some_and(|m| m.contains("/m/bad.yaml")));
        assert_eq!(events[0].involved_object.kind.as_deref(), Some("Node"));
        h.stop().await;
    }

    #[tokio::test]
    async fn a_new_pod_gets_a_sandbox_and_its_container_labelled_with_the_node() {
        let fake = Arc::new(FakeRuntime::new());
        fake.add_image("img:1");
        let h = start(fake.clone());
        let p = pod("web", "1");
        let uid = p.uid().to_string();
        h.send(vec![p]).await;
        eventually("pod running", || running(&fake, &uid) == 2).await;
        assert!(fake
            .containers()
            .iter()
            .all(|c| labels::node_of(&c.labels) == Some(NODE)));
        h.stop().await;
    }

    #[tokio::test]
    async fn a_burst_of_pods_starts_at_most_the_allowed_containers_at_once() {
        let fake = Arc::new(FakeRuntime::new());
        fake.add_image("img:1");
        fake.set_start_delay(Duration::from_millis(30));
        let (h, _) = start_with_slots(fake.clone(), &["file"], NodeInfo::new(NODE), 3, 110);
        let pods: Vec<SourcePod> = (0..8).map(|i| pod(&format!("p{i}"), "1")).collect();
        let uids: Vec<String> = pods.iter().map(|p| p.uid().to_string()).collect();
        h.send(pods).await;
        eventually("all pods running", || {
            uids.iter().all(|uid| running(&fake, uid) == 2)
        })
        .await;
        assert_eq!(
            fake.max_starts_in_flight(),
            3,
            "16 starts with 3 slots: exactly 3 at a time"
        );
        h.stop().await;
    }

    #[tokio::test]
    async fn a_restarted_manager_adopts_running_containers_without_creating_any() {
        let fake = Arc::new(FakeRuntime::new());
        fake.add_image("img:1");
        let p = pod("web", "1");
        let uid = p.uid().to_string();
        let h = start(fake.clone());
        h.send(vec![p.clone()]).await;
        eventually("pod running", || running(&fake, &uid) == 2).await;
        let fake = h.stop().await;
        let creates_before = fake
            .calls()
            .iter()
            .filter(|c| c.starts_with("create"))
            .count();

        let h = start(fake.clone());
        h.send(vec![p]).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let fake = h.stop().await;
        let creates_after = fake
            .calls()
            .iter()
            .filter(|c| c.starts_with("create"))
            .count();
        assert_eq!(creates_before, creates_after, "{:?}", fake.calls());
        assert_eq!(running(&fake, &uid), 2);
    }

    #[tokio::test]
    async fn a_changed_pod_starts_only_after_the_old_one_is_fully_removed() {
        let fake = Arc::new(FakeRuntime::new());
        fake.add_image("img:1");
        fake.add_image("img:2");
        let h = start(fake.clone());
        let old = pod("web", "1");
        let new = pod("web", "2");
        assert_ne!(old.uid(), new.uid());
        let old_ids: Vec<String> = {
            h.send(vec![old.clone()]).await;
            eventually("old running", || running(&fake, old.uid()) == 2).await;
            fake.containers().iter().map(|c| c.id.clone()).collect()
        };
        let mark = fake.calls().len();
        fake.set_stop_delay(Duration::from_millis(300));
        h.send(vec![new.clone()]).await;
        eventually("new running", || running(&fake, new.uid()) == 2).await;
        let calls = fake.calls()[mark..].to_vec();
        let last_old_removal = calls
            .iter()
            .rposition(|c| old_ids.iter().any(|id| c == &format!("remove {id}")))
            .expect("old containers removed");
        let first_new_create = calls
            .iter()
            .position(|c| c.starts_with("create"))
            .expect("created");
        assert!(last_old_removal < first_new_create, "{calls:?}");
        h.stop().await;
    }

    /// The kubelet's `podWorkers.UpdatePod` (pkg/kubelet/pod_workers.go)
    /// records `restartRequested` for a pod re-added while it terminates and
    /// starts it again once termination finished.
    #[tokio::test]
    async fn a_pod_re_added_while_terminating_runs_again_after_it_stopped() {
        let fake = Arc::new(FakeRuntime::new());
        fake.add_image("img:1");
        let h = start(fake.clone());
        let p = pod("web", "1");
        let uid = p.uid().to_string();
        h.send(vec![p.clone()]).await;
        eventually("pod running", || running(&fake, &uid) == 2).await;
        let old_ids: Vec<String> = fake.containers().iter().map(|c| c.id.clone()).collect();
        fake.set_stop_delay(Duration::from_millis(300));
        h.send(vec![]).await;
        eventually("termination under way", || {
            fake.calls().iter().any(|c| c.starts_with("stop"))
        })
        .await;
        h.send(vec![p.clone()]).await;
        eventually("pod running again", || {
            fake.containers()
                .iter()
                .filter(|c| c.is_running() && !old_ids.contains(&c.id))
                .filter(|c| c.labels.get(labels::POD_UID) == Some(&uid))
                .count()
                == 2
        })
        .await;
        assert!(
            fake.containers().iter().all(|c| !old_ids.contains(&c.id)),
            "the old containers were removed first"
        );
        h.stop().await;
    }

    #[tokio::test]
    async fn orphans_of_this_node_are_removed_and_other_nodes_containers_are_left_alone() {
        let fake = Arc::new(FakeRuntime::new());
        fake.add_image("img:1");
        // A pod of this node that no manifest defines any more, and one of another node.
        for (node, name) in [(NODE, "gone"), ("other", "theirs")] {
            let p = pod(name, "1");
            let pod_ref = crate::pod::convert::pod_ref(&p.pod, "file:/m/x.yaml");
            let mut cfg = crate::pod::convert::sandbox_config(&p.pod, &pod_ref, "pause:1", 0);
            cfg.labels.insert(labels::NODE.into(), node.into());
            fake.run_sandbox(&cfg).await.expect("sandbox");
        }
        let h = start(fake.clone());
        h.send(vec![]).await;
        eventually("orphan removed", || fake.containers().len() == 1).await;
        let left = fake.containers();
        assert_eq!(labels::node_of(&left[0].labels), Some("other"));
        h.stop().await;
    }

    #[tokio::test]
    async fn a_crashed_container_is_restarted_at_once_the_first_time_with_a_higher_restart_count() {
        let fake = Arc::new(FakeRuntime::new());
        fake.add_image("img:1");
        let h = start(fake.clone());
        let p = pod("web", "1");
        let uid = p.uid().to_string();
        h.send(vec![p]).await;
        eventually("running", || running(&fake, &uid) == 2).await;
        let app = fake
            .containers()
            .into_iter()
            .find(|c| c.meta().is_some_and(|m| !m.is_sandbox))
            .expect("app");
        fake.exit(&app.id, 1);
        eventually("restarted", || {
            fake.containers().iter().any(|c| {
                c.is_running()
                    && c.meta()
                        .is_some_and(|m| !m.is_sandbox && m.restart_count == 1)
            })
        })
        .await;
        h.stop().await;
    }

    #[tokio::test]
    async fn a_pod_whose_image_cannot_be_pulled_waits_with_err_image_pull_and_creates_nothing() {
        let fake = Arc::new(FakeRuntime::new());
        let h = start(fake.clone());
        h.send(vec![pod("web", "missing")]).await;
        eventually("pull attempted", || {
            fake.calls().iter().any(|c| c.starts_with("pull"))
        })
        .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let apps = fake
            .containers()
            .iter()
            .filter(|c| c.meta().is_some_and(|m| !m.is_sandbox))
            .count();
        assert_eq!(apps, 0);
        let pulls = fake
            .calls()
            .iter()
            .filter(|c| c.starts_with("pull"))
            .count();
        assert_eq!(pulls, 1, "backoff holds the next pull back");
        h.stop().await;
    }

    fn url_pod(name: &str, url: &str) -> SourcePod {
        let yaml = format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  containers:\n  - {{name: app, image: 'img:1'}}\n"
        );
        pod_from(&yaml, Origin::url(url))
    }

    fn http_snapshot(pods: Vec<SourcePod>, keep: Option<&str>) -> Snapshot {
        Snapshot {
            source: "http".into(),
            pods,
            keep_origins: keep.map(|u| format!("url:{u}")).into_iter().collect(),
            failing: keep.map(|_| "cannot connect".to_string()),
            ..Default::default()
        }
    }

    fn file_snapshot(pods: Vec<SourcePod>) -> Snapshot {
        Snapshot {
            source: "file".into(),
            pods,
            ..Default::default()
        }
    }

    fn phase_of(store: &PodStore, uid: &str) -> Option<(String, String, String)> {
        store
            .list()
            .into_iter()
            .find(|r| r.pod.metadata.uid.as_deref() == Some(uid))
            .and_then(|r| r.pod.status)
            .map(|s| {
                (
                    s.phase.unwrap_or_default(),
                    s.reason.unwrap_or_default(),
                    s.message.unwrap_or_default(),
                )
            })
    }

    #[tokio::test]
    async fn a_pod_refused_by_admission_gets_no_container_and_is_failed_in_the_store_until_its_manifest_goes_away(
    ) {
        let fake = Arc::new(FakeRuntime::new());
        fake.add_image("img:1");
        let node = NodeInfo::with_labels(
            NODE,
            &std::collections::BTreeMap::from([("disktype".to_string(), "ssd".to_string())]),
        );
        let (h, store) = start_with(fake.clone(), &["file"], node);
        let hdd = pod_from(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: hdd}\nspec:\n  nodeSelector: {disktype: hdd}\n  containers:\n  - {name: app, image: 'img:1'}\n",
            Origin::file("/m/hdd.yaml"),
        );
        let elsewhere = pod_from(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: elsewhere}\nspec:\n  nodeName: node2\n  containers:\n  - {name: app, image: 'img:1'}\n",
            Origin::file("/m/elsewhere.yaml"),
        );
        let ssd = pod_from(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: ssd}\nspec:\n  nodeSelector: {disktype: ssd}\n  containers:\n  - {name: app, image: 'img:1'}\n",
            Origin::file("/m/ssd.yaml"),
        );
        let (hdd_uid, other_uid, ssd_uid) = (
            hdd.uid().to_string(),
            elsewhere.uid().to_string(),
            ssd.uid().to_string(),
        );
        h.send(vec![hdd, elsewhere, ssd.clone()]).await;
        eventually("admitted pod running", || running(&fake, &ssd_uid) == 2).await;
        let (phase, reason, message) = phase_of(&store, &hdd_uid).expect("rejected pod listed");
        assert_eq!(
            (phase.as_str(), reason.as_str()),
            ("Failed", "NodeAffinity")
        );
        assert!(
            message.starts_with("Pod was rejected: Predicate NodeAffinity failed")
                && message.contains("disktype=hdd"),
            "{message}"
        );
        let (phase, reason, _) = phase_of(&store, &other_uid).expect("rejected pod listed");
        assert_eq!((phase.as_str(), reason.as_str()), ("Failed", "NodeName"));
        assert!(fake.containers().iter().all(|c| {
            let uid = c.labels.get(labels::POD_UID).map(String::as_str);
            uid != Some(hdd_uid.as_str()) && uid != Some(other_uid.as_str())
        }));

        h.send(vec![ssd]).await;
        eventually("rejected pods leave the store", || {
            phase_of(&store, &hdd_uid).is_none() && phase_of(&store, &other_uid).is_none()
        })
        .await;
        h.stop().await;
    }

    #[tokio::test]
    async fn a_pod_that_no_longer_passes_admission_after_a_restart_is_terminated() {
        let fake = Arc::new(FakeRuntime::new());
        fake.add_image("img:1");
        let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: ssd}\nspec:\n  nodeSelector: {disktype: ssd}\n  containers:\n  - {name: app, image: 'img:1'}\n";
        let p = pod_from(yaml, Origin::file("/m/ssd.yaml"));
        let uid = p.uid().to_string();
        let labelled = NodeInfo::with_labels(
            NODE,
            &std::collections::BTreeMap::from([("disktype".to_string(), "ssd".to_string())]),
        );
        let (h, _) = start_with(fake.clone(), &["file"], labelled);
        h.send(vec![p.clone()]).await;
        eventually("running", || running(&fake, &uid) == 2).await;
        let fake = h.stop().await;

        // Restarted with other labels: the same manifest is refused now.
        let (h, store) = start_with(fake.clone(), &["file"], NodeInfo::new(NODE));
        h.send(vec![p]).await;
        eventually("terminated", || {
            !fake
                .containers()
                .iter()
                .any(|c| c.labels.get(labels::POD_UID) == Some(&uid))
        })
        .await;
        eventually("listed as failed", || {
            phase_of(&store, &uid).is_some_and(|(phase, _, _)| phase == "Failed")
        })
        .await;
        h.stop().await;
    }

    fn host_port_pod(name: &str, port: u16) -> SourcePod {
        pod_from(
            &format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  containers:\n  - {{name: app, image: 'img:1', ports: [{{containerPort: 80, hostPort: {port}}}]}}\n"),
            Origin::file(format!("/m/{name}.yaml")),
        )
    }

    fn scheduled_condition(store: &PodStore, uid: &str) -> Option<(String, String, String)> {
        let record =
            (store.list().into_iter()).find(|r| r.pod.metadata.uid.as_deref() == Some(uid))?;
        let status = record.pod.status?;
        let c = (status.conditions?.into_iter()).find(|c| c.type_ == "PodScheduled")?;
        Some((
            format!("{}/{}", status.phase.unwrap_or_default(), c.status),
            c.reason.unwrap_or_default(),
            c.message.unwrap_or_default(),
        ))
    }

    #[tokio::test]
    async fn a_pod_whose_host_port_is_held_stays_pending_unschedulable_and_starts_once_the_holder_is_gone(
    ) {
        let fake = Arc::new(FakeRuntime::new());
        fake.add_image("img:1");
        let (h, store) = start_with(fake.clone(), &["file"], NodeInfo::new(NODE));
        let first = host_port_pod("first", 8080);
        let other_port = host_port_pod("other", 8081);
        let (first_uid, other_uid) = (first.uid().to_string(), other_port.uid().to_string());
        h.send(vec![first.clone(), other_port.clone()]).await;
        eventually("first running", || running(&fake, &first_uid) == 2).await;
        let second = host_port_pod("second", 8080);
        let second_uid = second.uid().to_string();
        h.send(vec![first, other_port.clone(), second.clone()])
            .await;
        eventually("second pending", || {
            scheduled_condition(&store, &second_uid).is_some()
        })
        .await;
        let (phase, reason, message) = scheduled_condition(&store, &second_uid).expect("listed");
        assert_eq!(
            (phase.as_str(), reason.as_str()),
            ("Pending/False", "Unschedulable")
        );
        assert_eq!(
            message,
            "0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod ports."
        );
        assert_eq!(
            running(&fake, &second_uid),
            0,
            "no sandbox for the waiting pod"
        );
        assert_eq!(running(&fake, &other_uid), 2, "another port is free");
        let failed_scheduling = h
            .recorder
            .list(None)
            .into_iter()
            .filter(|e| e.reason.as_deref() == Some("FailedScheduling"))
            .count();
        assert_eq!(failed_scheduling, 1, "one event");
        // The same snapshot again changes nothing: no second event.
        h.send(vec![
            host_port_pod("first", 8080),
            other_port.clone(),
            second.clone(),
        ])
        .await;
        h.send(vec![other_port, second]).await;
        eventually("second running after first is gone", || {
            running(&fake, &second_uid) == 2 && running(&fake, &first_uid) == 0
        })
        .await;
        let starts_first_gone = fake
            .containers()
            .iter()
            .filter(|c| c.labels.get(labels::POD_UID) == Some(&first_uid))
            .count();
        assert_eq!(starts_first_gone, 0, "the holder was removed before");
        let failed_scheduling = (h.recorder.list(None).into_iter())
            .filter(|e| e.reason.as_deref() == Some("FailedScheduling"))
            .count();
        assert_eq!(failed_scheduling, 1, "still one event");
        h.stop().await;
    }

    #[tokio::test]
    async fn pods_beyond_max_pods_stay_pending_with_too_many_pods_until_another_goes() {
        let fake = Arc::new(FakeRuntime::new());
        fake.add_image("img:1");
        let (h, store) = start_with_slots(fake.clone(), &["file"], NodeInfo::new(NODE), 8, 2);
        let (a, b, c) = (pod("a", "1"), pod("b", "1"), pod("c", "1"));
        let uids = [
            a.uid().to_string(),
            b.uid().to_string(),
            c.uid().to_string(),
        ];
        h.send(vec![a.clone(), b.clone(), c.clone()]).await;
        eventually("two running", || {
            uids.iter().filter(|u| running(&fake, u) == 2).count() == 2
        })
        .await;
        let waiting: Vec<&String> = (uids.iter())
            .filter(|u| {
                scheduled_condition(&store, u).is_some_and(|(p, _, _)| p.ends_with("/False"))
            })
            .collect();
        assert_eq!(waiting.len(), 1, "one waits");
        let (phase, reason, message) = scheduled_condition(&store, waiting[0]).expect("listed");
        assert_eq!(
            (phase.as_str(), reason.as_str()),
            ("Pending/False", "Unschedulable")
        );
        assert_eq!(message, "0/1 nodes are available: 1 Too many pods.");
        assert_eq!(running(&fake, waiting[0]), 0);
        let waiting = waiting[0].clone();
        let stays = uids
            .iter()
            .find(|u| **u != waiting)
            .expect("a running pod")
            .clone();
        let keep: Vec<SourcePod> = [a, b, c]
            .into_iter()
            .filter(|p| p.uid() == waiting || p.uid() == stays)
            .collect();
        h.send(keep).await;
        eventually("the waiting pod runs once another is gone", || {
            running(&fake, &waiting) == 2
        })
        .await;
        h.stop().await;
    }

    fn deployment_snapshot(replicas: u32, version: &str, min_ready: u32) -> Snapshot {
        deployment_with(
            replicas,
            version,
            min_ready,
            "{rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}",
        )
    }

    fn deployment_with(replicas: u32, version: &str, min_ready: u32, strategy: &str) -> Snapshot {
        let yaml = format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web}}\nspec:\n  replicas: {replicas}\n  minReadySeconds: {min_ready}\n  selector: {{matchLabels: {{app: web}}}}\n  strategy: {strategy}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec:\n      containers: [{{name: app, image: 'img:1', env: [{{name: V, value: '{version}'}}]}}]\n"
        );
        let origin = Origin::file("/m/web.yaml");
        let loaded = crate::pod::fixtures::load(&yaml, NODE, &origin);
        Snapshot {
            source: "file".into(),
            workloads: Defined::new(loaded, &origin).workloads,
            ..Default::default()
        }
    }

    /// Names of the Deployment `web`'s pods in the store that are not
    /// being deleted (as the controllers count them).
    fn web_pods(store: &PodStore) -> Vec<String> {
        let mut names: Vec<String> = (store.list().into_iter())
            .filter(|r| r.pod.metadata.deletion_timestamp.is_none())
            .filter_map(|r| r.pod.metadata.name)
            .filter(|n| n.starts_with("web-"))
            .collect();
        names.sort();
        names
    }

    #[tokio::test]
    async fn a_recreate_rollout_starts_new_pods_only_once_every_old_container_is_gone() {
        let fake = Arc::new(FakeRuntime::new());
        fake.add_image("img:1");
        let (h, store) = start_with(fake.clone(), &["file"], NodeInfo::new(NODE));
        h.send_snapshot(deployment_with(2, "1", 0, "{type: Recreate}"))
            .await;
        eventually("two pods", || web_pods(&store).len() == 2).await;
        let old_prefix = web_pods(&store)[0][..web_pods(&store)[0].len() - 5].to_string();
        // Old containers take a while to stop: the new ones must wait.
        fake.set_stop_delay(Duration::from_millis(300));
        h.send_snapshot(deployment_with(2, "2", 0, "{type: Recreate}"))
            .await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let (mut old, mut new) = (0, 0);
            for c in fake.containers().iter().filter(|c| c.is_running()) {
                let name = c.labels.get(labels::POD_NAME).cloned().unwrap_or_default();
                if name.starts_with(&old_prefix) {
                    old += 1;
                } else if name.starts_with("web-") {
                    new += 1;
                }
            }
            assert!(
                old == 0 || new == 0,
                "{old} old and {new} new containers together"
            );
            let pods = web_pods(&store);
            if old == 0
                && pods.len() == 2
                && pods.iter().all(|n| !n.starts_with(&old_prefix))
                && new == 4
            {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "rollout stalled: {pods:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        h.stop().await;
    }

    #[tokio::test]
    async fn a_rollout_interrupted_by_a_restart_goes_on_by_the_rolling_update_rules() {
        let fake = Arc::new(FakeRuntime::new());
        fake.add_image("img:1");
        let root = Arc::new(tempfile::tempdir().expect("tmp"));
        let (h, store) = start_in(fake.clone(), root.clone());
        h.send_snapshot(deployment_snapshot(3, "1", 1)).await;
        eventually("three pods", || web_pods(&store).len() == 3).await;
        let old = web_pods(&store);
        let old_prefix = old[0][..old[0].len() - 5].to_string();
        h.send_snapshot(deployment_snapshot(3, "2", 1)).await;
        eventually("the surge pod", || web_pods(&store).len() == 4).await;
        // A crash mid-rollout; the restarted rkubelet reads the new manifest.
        let fake = h.stop().await;
        let (h, store) = start_in(fake.clone(), root.clone());
        h.send_snapshot(deployment_snapshot(3, "2", 1)).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let mut old_running: Vec<String> = (fake.containers().into_iter())
                .filter(|c| c.is_running())
                .filter_map(|c| c.labels.get(labels::POD_NAME).cloned())
                .filter(|n| n.starts_with(&old_prefix))
                .collect();
            old_running.sort();
            old_running.dedup();
            let now = k8s_openapi::jiff::Timestamp::now();
            let records = store.list();
            let new_available = (records.iter())
                .filter(|r| r.pod.metadata.deletion_timestamp.is_none())
                .filter(|r| {
                    !(r.pod.metadata.name.as_deref()).is_some_and(|n| n.starts_with(&old_prefix))
                })
                .filter(|r| {
                    (r.pod
                        .status
                        .iter()
                        .flat_map(|s| s.conditions.iter().flatten()))
                    .any(|c| {
                        c.type_ == "Ready"
                            && c.status == "True"
                            && c.last_transition_time.as_ref().is_some_and(|t| {
                                t.0 + k8s_openapi::jiff::SignedDuration::from_secs(1) <= now
                            })
                    })
                })
                .count();
            let pods = web_pods(&store);
            assert!(pods.len() <= 4, "at most 3 + 1: {pods:?}");
            assert!(
                old_running.len() + new_available >= 3,
                "an old pod went before a new one was available: old {old_running:?}, \
                 {new_available} new available"
            );
            if old_running.is_empty()
                && pods.len() == 3
                && pods.iter().all(|n| !n.starts_with(&old_prefix))
            {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "rollout stalled: {pods:?}, old running {old_running:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        h.stop().await;
    }

    #[tokio::test]
    async fn a_deployment_rolls_out_once_new_pods_were_ready_for_min_ready_seconds() {
        let fake = Arc::new(FakeRuntime::new());
        fake.add_image("img:1");
        let (h, store) = start_with(fake.clone(), &["file"], NodeInfo::new(NODE));
        h.send_snapshot(deployment_snapshot(2, "1", 1)).await;
        eventually("two pods", || web_pods(&store).len() == 2).await;
        let first = web_pods(&store);
        h.send_snapshot(deployment_snapshot(2, "2", 1)).await;
        // Nothing but the clock can move it on once the new pods are ready.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let pods = web_pods(&store);
            assert!(pods.len() <= 3, "at most 2 + 1: {pods:?}");
            if pods.len() == 2 && pods.iter().all(|n| !first.contains(n)) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "rollout stalled: {pods:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        h.stop().await;
    }

    #[tokio::test]
    async fn a_restarted_manager_keeps_the_host_port_with_the_pod_that_runs() {
        let fake = Arc::new(FakeRuntime::new());
        fake.add_image("img:1");
        let (h, _) = start_with(fake.clone(), &["file"], NodeInfo::new(NODE));
        // "b" sorts after "a" but it is the one running.
        let b = host_port_pod("b", 9090);
        let b_uid = b.uid().to_string();
        h.send(vec![b.clone()]).await;
        eventually("b running", || running(&fake, &b_uid) == 2).await;
        let fake = h.stop().await;
        let created = fake.containers().len();
        let (h, store) = start_with(fake.clone(), &["file"], NodeInfo::new(NODE));
        let a = host_port_pod("a", 9090);
        let a_uid = a.uid().to_string();
        h.send(vec![a, b]).await;
        eventually("a pending", || {
            scheduled_condition(&store, &a_uid).is_some()
        })
        .await;
        assert_eq!(running(&fake, &b_uid), 2);
        assert_eq!(fake.containers().len(), created, "nothing created");
        h.stop().await;
    }

    #[tokio::test]
    async fn pods_of_a_url_that_has_not_answered_survive_the_initial_sync_and_go_once_it_answers_without_them(
    ) {
        const URL: &str = "http://192.0.2.9/pods.yaml";
        let fake = Arc::new(FakeRuntime::new());
        fake.add_image("img:1");
        let from_url = url_pod("remote", URL);
        let url_uid = from_url.uid().to_string();
        let gone_file = pod("stale", "1");
        let stale_uid = gone_file.uid().to_string();
        let (h, _) = start_with(fake.clone(), &["file", "http"], NodeInfo::new(NODE));
        h.send_snapshot(file_snapshot(vec![gone_file])).await;
        h.send_snapshot(http_snapshot(vec![from_url], None)).await;
        eventually("both running", || {
            running(&fake, &url_uid) == 2 && running(&fake, &stale_uid) == 2
        })
        .await;
        let fake = h.stop().await;

        // Restart: the file pod is gone, the URL is down.
        let (h, _) = start_with(fake.clone(), &["file", "http"], NodeInfo::new(NODE));
        let local = pod("local", "1");
        let local_uid = local.uid().to_string();
        h.send_snapshot(file_snapshot(vec![local])).await;
        h.send_snapshot(http_snapshot(vec![], Some(URL))).await;
        eventually("file pods go on and the stale one is removed", || {
            running(&fake, &local_uid) == 2 && running(&fake, &stale_uid) == 0
        })
        .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(running(&fake, &url_uid), 2, "{:?}", fake.calls());

        // The URL answers, without that pod: now it goes.
        h.send_snapshot(http_snapshot(vec![], None)).await;
        eventually("URL pod removed", || {
            !fake
                .containers()
                .iter()
                .any(|c| c.labels.get(labels::POD_UID) == Some(&url_uid))
        })
        .await;
        h.stop().await;
    }

    #[tokio::test]
    async fn a_kept_url_pod_is_adopted_when_the_url_answers_with_it_again() {
        const URL: &str = "http://192.0.2.9/pods.yaml";
        let fake = Arc::new(FakeRuntime::new());
        fake.add_image("img:1");
        let from_url = url_pod("remote", URL);
        let uid = from_url.uid().to_string();
        let (h, _) = start_with(fake.clone(), &["file", "http"], NodeInfo::new(NODE));
        h.send_snapshot(file_snapshot(vec![])).await;
        h.send_snapshot(http_snapshot(vec![from_url.clone()], None))
            .await;
        eventually("running", || running(&fake, &uid) == 2).await;
        let fake = h.stop().await;
        let creates =
            |f: &FakeRuntime| f.calls().iter().filter(|c| c.starts_with("create")).count();
        let before = creates(&fake);

        let (h, _) = start_with(fake.clone(), &["file", "http"], NodeInfo::new(NODE));
        h.send_snapshot(file_snapshot(vec![])).await;
        h.send_snapshot(http_snapshot(vec![], Some(URL))).await;
        h.send_snapshot(http_snapshot(vec![from_url], None)).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let fake = h.stop().await;
        assert_eq!(running(&fake, &uid), 2);
        assert_eq!(creates(&fake), before, "{:?}", fake.calls());
    }
}
