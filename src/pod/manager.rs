//! The pod manager: owns the workers.
//!
//! It consumes source snapshots through the [`Merger`], and for the merged
//! desired set starts a worker per new UID, tells workers of vanished UIDs to
//! terminate, and makes a replacement wait until the pod it replaces (same
//! namespace/name, older UID) is fully stopped — two pods with one name never
//! overlap. On its first complete desired set it adopts what already runs
//! (workers re-observe by UID, so matching containers are left alone) and
//! terminates orphans: containers of UIDs no source defines any more.
//! After every merge it publishes the merged ConfigMaps and Secrets to the
//! workers' shared object store.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::worker::{kill_pod_until_done, PodWorker, WorkerContext, WorkerHandle};
use crate::events::Involved;
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
    pub async fn run(
        mut self,
        mut snapshots: mpsc::Receiver<Snapshot>,
        shutdown: CancellationToken,
    ) {
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
                for e in diag.errors.iter().filter(|e| !d.errors.contains(e)) {
                    self.ctx
                        .recorder
                        .warning(&node, "FailedValidation", e.clone());
                }
                for c in diag.conflicts.iter().filter(|c| !d.conflicts.contains(c)) {
                    let reason = if c.starts_with("pod ") {
                        "DuplicatePod"
                    } else {
                        "DuplicateObject"
                    };
                    self.ctx.recorder.warning(&node, reason, c.clone());
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
        let ours = containers.iter().filter(|c| {
            crate::runtime::labels::node_of(&c.labels) == Some(self.ctx.node_name.as_str())
        });
        for c in ours {
            let Some(m) = c.meta() else { continue };
            known.insert(m.pod.uid.clone());
            if !desired.pods.contains_key(&m.pod.uid) {
                orphans.insert(
                    m.pod.uid.clone(),
                    format!("{}/{}", m.pod.namespace, m.pod.name),
                );
            }
        }
        let adopted = known.len() - orphans.len();
        tracing::info!(adopted, orphans = orphans.len(), "initial sync");
        for (uid, full_name) in orphans {
            tracing::info!(pod = %full_name, %uid, "terminating orphaned pod");
            let handle = spawn_orphan_killer(
                self.ctx.clone(),
                uid.clone(),
                full_name.clone(),
                shutdown.clone(),
            );
            self.by_name.insert(full_name, handle.clone());
            self.workers.insert(uid, handle);
        }
        // Pod directories left behind by pods that have no containers.
        let pods_dir = self.ctx.root_dir.join("pods");
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
        kill_pod_until_done(ctx.runtime.as_ref(), &ctx.root_dir, &uid, None, &shutdown).await;
    });
    handle
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::backoff::BackoffPolicy;
    use crate::manifest::{self, LoadContext, Origin};
    use crate::pod::worker::PodStore;
    use crate::runtime::fake::FakeRuntime;
    use crate::runtime::labels;
    use crate::runtime::ContainerRuntime;
    use crate::source::SourcePod;
    use k8s_openapi::jiff::Timestamp;

    const NODE: &str = "node1";

    fn pod(name: &str, image_tag: &str) -> SourcePod {
        let yaml = format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  containers:\n  - {{name: app, image: 'img:{image_tag}'}}\n"
        );
        let origin = Origin::file(format!("/m/{name}.yaml"));
        let ctx = LoadContext {
            node_name: NODE,
            origin: &origin,
            now: Timestamp::now(),
        };
        let loaded = manifest::load(yaml.as_bytes(), &ctx).expect("valid manifest");
        SourcePod {
            pod: Arc::new(loaded.pods[0].clone()),
            origin,
        }
    }

    struct Harness {
        fake: Arc<FakeRuntime>,
        recorder: Arc<crate::events::Recorder>,
        tx: mpsc::Sender<Snapshot>,
        shutdown: CancellationToken,
        task: tokio::task::JoinHandle<()>,
        _root: tempfile::TempDir,
    }

    fn start(fake: Arc<FakeRuntime>) -> Harness {
        let root = tempfile::tempdir().expect("tmp");
        let recorder = Arc::new(crate::events::Recorder::new(NODE));
        let ctx = Arc::new(WorkerContext {
            runtime: fake.clone(),
            node_name: NODE.into(),
            infra_image: "pause:1".into(),
            root_dir: PathBuf::from(root.path()),
            backoff: BackoffPolicy::default(),
            host_ip: "192.0.2.1".into(),
            store: Arc::new(PodStore::default()),
            objects: Default::default(),
            recorder: recorder.clone(),
        });
        let routes = Arc::new(Routes::default());
        let shutdown = CancellationToken::new();
        tokio::spawn(crate::pleg::watch_events(
            fake.clone(),
            routes.clone(),
            shutdown.clone(),
        ));
        let manager = Manager::new(ctx, vec!["file".into()], routes, Default::default());
        let (tx, rx) = mpsc::channel(4);
        let task = tokio::spawn(manager.run(rx, shutdown.clone()));
        Harness {
            fake,
            recorder,
            tx,
            shutdown,
            task,
            _root: root,
        }
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
}
