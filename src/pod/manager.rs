//! The pod manager: owns the workers.
//!
//! It consumes source snapshots through the [`Merger`], and for the merged
//! desired set starts a worker per new UID, tells workers of vanished UIDs to
//! terminate, and makes a replacement wait until the pod it replaces (same
//! namespace/name, older UID) is fully stopped — two pods with one name never
//! overlap. On its first complete desired set it adopts what already runs
//! (workers re-observe by UID, so matching containers are left alone) and
//! terminates orphans: containers of UIDs no source defines any more.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::worker::{kill_pod, PodWorker, WorkerContext, WorkerHandle};
use crate::pleg::Routes;
use crate::source::{Desired, Diagnostics, Merger, Snapshot};

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
}

impl Manager {
    pub fn new(
        ctx: Arc<WorkerContext>,
        sources: Vec<String>,
        routes: Arc<Routes>,
        diagnostics: Arc<RwLock<Diagnostics>>,
    ) -> Self {
        Manager {
            ctx,
            merger: Merger::new(sources),
            routes,
            diagnostics,
            workers: HashMap::new(),
            by_name: HashMap::new(),
            adopted: false,
        }
    }

    /// Runs until `shutdown`; then waits (bounded) for workers to stop.
    pub async fn run(mut self, mut snapshots: mpsc::Receiver<Snapshot>, shutdown: CancellationToken) {
        let mut prune = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                snap = snapshots.recv() => match snap {
                    Some(snap) => self.on_snapshot(snap, &shutdown).await,
                    None => break,
                },
                _ = prune.tick() => self.prune(),
            }
        }
        let done = self.workers.values().map(|w| w.done.clone()).collect::<Vec<_>>();
        let all = futures_util::future::join_all(done.iter().map(|d| d.cancelled()));
        let _ = tokio::time::timeout(Duration::from_secs(5), all).await;
    }

    async fn on_snapshot(&mut self, snap: Snapshot, shutdown: &CancellationToken) {
        let (desired, diag) = self.merger.update(snap);
        if let Ok(mut d) = self.diagnostics.write() {
            if *d != diag {
                for c in diag.conflicts.iter().filter(|c| !d.conflicts.contains(c)) {
                    tracing::error!(conflict = %c, "duplicate pod name");
                }
                *d = diag;
            }
        }
        if !desired.complete {
            return;
        }
        if !self.adopted {
            self.adopted = true;
            self.clean_orphans(&desired, shutdown).await;
        }
        self.reconcile(&desired, shutdown);
    }

    /// Terminates containers (and pod directories) of UIDs nobody defines.
    async fn clean_orphans(&mut self, desired: &Desired, shutdown: &CancellationToken) {
        let containers = match self.ctx.runtime.list_containers(None).await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "cannot list containers to adopt; orphans stay until restart");
                return;
            }
        };
        let mut orphans: HashMap<String, String> = HashMap::new();
        let mut known: BTreeSet<String> = BTreeSet::new();
        let ours = containers
            .iter()
            .filter(|c| crate::runtime::labels::node_of(&c.labels) == Some(self.ctx.node_name.as_str()));
        for c in ours {
            let Some(m) = c.meta() else { continue };
            known.insert(m.pod.uid.clone());
            if !desired.pods.contains_key(&m.pod.uid) {
                orphans.insert(m.pod.uid.clone(), format!("{}/{}", m.pod.namespace, m.pod.name));
            }
        }
        let adopted = known.len() - orphans.len();
        tracing::info!(adopted, orphans = orphans.len(), "initial sync");
        for (uid, full_name) in orphans {
            tracing::info!(pod = %full_name, %uid, "terminating orphaned pod");
            let handle = spawn_orphan_killer(self.ctx.clone(), uid.clone(), full_name.clone(), shutdown.clone());
            self.by_name.insert(full_name, handle.clone());
            self.workers.insert(uid, handle);
        }
        // Pod directories left behind by pods that have no containers.
        let pods_dir = self.ctx.root_dir.join("pods");
        if let Ok(entries) = std::fs::read_dir(&pods_dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if !desired.pods.contains_key(&name) && !known.contains(&name) {
                    if let Err(err) = std::fs::remove_dir_all(e.path()) {
                        tracing::warn!(dir = %e.path().display(), error = %err,
                            "cannot remove stale pod directory");
                    }
                }
            }
        }
    }

    fn reconcile(&mut self, desired: &Desired, shutdown: &CancellationToken) {
        for (uid, w) in &self.workers {
            if !desired.pods.contains_key(uid) && !w.terminate.is_cancelled() {
                tracing::info!(pod = %w.full_name, %uid, "pod removed from its source");
                w.terminate.cancel();
                self.routes.wake(uid);
            }
        }
        for (uid, sp) in &desired.pods {
            if self.workers.contains_key(uid) {
                continue;
            }
            let full_name = sp.full_name();
            let previous = self
                .by_name
                .get(&full_name)
                .filter(|h| &h.uid != uid && !h.done.is_cancelled())
                .map(|h| h.done.clone());
            if previous.is_some() {
                tracing::info!(pod = %full_name, %uid, "pod changed; the new one starts after the old one stopped");
            }
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
        let mut attempt = 0u32;
        loop {
            let kill = kill_pod(ctx.runtime.as_ref(), &ctx.root_dir, &uid, None);
            let r = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = kill => r,
            };
            match r {
                Ok(()) => return,
                Err(e) => {
                    attempt += 1;
                    tracing::warn!(%uid, error = %e, "cannot remove orphaned pod yet");
                    let delay = Duration::from_millis(500 * 2u64.pow(attempt.min(6)));
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    });
    handle
}
