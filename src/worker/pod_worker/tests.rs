//! The worker against the fake runtime on paused tokio time: every delay
//! (backoff, grace, deadline) passes in virtual time, none in real time.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::PodStatus;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{PodWorker, WorkerContext, WorkerHandle};
use crate::backoff::BackoffPolicy;
use crate::clock::TokioClock;
use crate::events::Recorder;
use crate::pleg::{self, Routes};
use crate::pod::fixtures::{load_pod, t};
use crate::runtime::fake::FakeRuntime;
use crate::runtime::{ContainerInfo, ContainerState};
use crate::worker::store::PodStore;

/// One pod worker over a fake runtime sharing the worker's clock, woken by
/// the runtime's events as in the daemon.
struct Harness {
    ctx: Arc<WorkerContext>,
    routes: Arc<Routes>,
    fake: Arc<FakeRuntime>,
    store: Arc<PodStore>,
    recorder: Arc<Recorder>,
    handle: WorkerHandle,
    shutdown: CancellationToken,
    root: tempfile::TempDir,
}

impl Harness {
    fn start(yaml: &str) -> Harness {
        Harness::with_teardown_slots(yaml, 8)
    }

    fn with_teardown_slots(yaml: &str, teardown_slots: usize) -> Harness {
        let clock = Arc::new(TokioClock::starting_at(t(0)));
        let fake = Arc::new(FakeRuntime::with_clock(clock.clone()));
        fake.add_image("img:1");
        let root = tempfile::tempdir().expect("tmp");
        let store = Arc::new(PodStore::default());
        let recorder = Arc::new(Recorder::new("node"));
        let ctx = Arc::new(WorkerContext {
            runtime: fake.clone(),
            node_name: "node".into(),
            infra_image: "pause:1".into(),
            root_dir: root.path().to_path_buf(),
            backoff: BackoffPolicy::default(),
            host_ip: "192.0.2.1".into(),
            store: store.clone(),
            objects: Default::default(),
            recorder: recorder.clone(),
            start_slots: Arc::new(tokio::sync::Semaphore::new(8)),
            teardown_slots: Arc::new(tokio::sync::Semaphore::new(teardown_slots)),
            clock,
            health: crate::runtime::health::RuntimeHealth::new(),
        });
        let shutdown = CancellationToken::new();
        let routes = Arc::new(Routes::default());
        tokio::spawn(pleg::watch_events(
            fake.clone(),
            routes.clone(),
            crate::runtime::health::RuntimeHealth::new(),
            shutdown.clone(),
        ));
        let pod = Arc::new(load_pod(yaml));
        let handle = PodWorker::spawn(ctx.clone(), pod, "file".into(), None, shutdown.clone());
        routes.insert(&handle.uid, handle.wake.clone());
        Harness {
            ctx,
            routes,
            fake,
            store,
            recorder,
            handle,
            shutdown,
            root,
        }
    }

    /// Runs another pod on the same context (slots, runtime, store).
    fn spawn(&self, yaml: &str) -> WorkerHandle {
        let pod = Arc::new(load_pod(yaml));
        let handle = PodWorker::spawn(
            self.ctx.clone(),
            pod,
            "file".into(),
            None,
            self.shutdown.clone(),
        );
        self.routes.insert(&handle.uid, handle.wake.clone());
        handle
    }

    /// The pod's containers named `name` (`POD` for sandboxes), oldest first.
    fn instances(&self, name: &str) -> Vec<ContainerInfo> {
        let mut v: Vec<ContainerInfo> = self
            .fake
            .containers()
            .into_iter()
            .filter(|c| c.meta().is_some_and(|m| m.container_name == name))
            .collect();
        v.sort_by_key(|c| c.meta().map(|m| m.restart_count));
        v
    }

    fn running(&self, name: &str) -> Option<ContainerInfo> {
        self.instances(name).into_iter().find(|c| c.is_running())
    }

    fn status(&self) -> PodStatus {
        let records = self.store.list();
        let record = records.first().expect("a published pod");
        record.pod.status.clone().expect("a status")
    }

    /// Whether a status is published and shows every container running.
    fn all_running_in_status(&self) -> bool {
        let status = self.store.list().first().and_then(|r| r.pod.status.clone());
        let statuses = status
            .and_then(|s| s.container_statuses)
            .unwrap_or_default();
        !statuses.is_empty()
            && statuses
                .iter()
                .all(|c| c.state.as_ref().is_some_and(|s| s.running.is_some()))
    }

    fn waiting_reason(&self, container: &str) -> Option<String> {
        let statuses = self.status().container_statuses.unwrap_or_default();
        let st = statuses.iter().find(|s| s.name == container)?;
        st.state.as_ref()?.waiting.as_ref()?.reason.clone()
    }

    fn event_reasons(&self) -> Vec<String> {
        self.recorder
            .for_uid(&self.handle.uid)
            .into_iter()
            .map(|e| e.reason.unwrap_or_default())
            .collect()
    }

    fn creates(&self) -> usize {
        let calls = self.fake.calls();
        calls.iter().filter(|c| c.starts_with("create ")).count()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Lets virtual time pass in small steps until `f` holds (at most `limit`).
async fn eventually(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

const CRASHING: &str = "
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  containers:
  - {name: app, image: 'img:1'}
";

#[tokio::test(start_paused = true)]
async fn a_crashing_container_restarts_at_once_then_waits_out_crash_loop_backoff() {
    let h = Harness::start(CRASHING);
    let second = Duration::from_secs(1);
    eventually("the app running", second, || h.running("app").is_some()).await;
    let first = h.running("app").expect("running");

    // The first restart is immediate.
    h.fake.exit(&first.id, 1);
    eventually("the first restart", second, || {
        h.instances("app").len() == 2
    })
    .await;
    let again = h.running("app").expect("restarted");
    assert_eq!(again.meta().map(|m| m.restart_count), Some(1));

    // The next one waits the 10 s base delay, showing CrashLoopBackOff.
    h.fake.exit(&again.id, 1);
    let crashed = Instant::now();
    eventually("CrashLoopBackOff", second, || {
        h.waiting_reason("app").as_deref() == Some("CrashLoopBackOff")
    })
    .await;
    assert!(h.event_reasons().contains(&"BackOff".to_string()));
    tokio::time::sleep(Duration::from_secs(9)).await;
    assert!(h.running("app").is_none(), "no restart within the backoff");
    eventually("the restart after the backoff", 2 * second, || {
        h.running("app").is_some()
    })
    .await;
    let waited = crashed.elapsed();
    assert!(
        waited >= Duration::from_secs(10) && waited < Duration::from_secs(11),
        "restarted after {waited:?}"
    );
    let third = h.running("app").expect("restarted");
    assert_eq!(third.meta().map(|m| m.restart_count), Some(2));
    // Only the newest dead instance is kept.
    assert_eq!(h.instances("app").len(), 2);
}

/// A pod whose last sync had nothing to do is taken down from that sync's
/// list: no listing before the first stop (in a mass removal those
/// listings held every stop up), and still every container removed.
#[tokio::test(start_paused = true)]
async fn termination_after_a_quiet_sync_does_not_list_again() {
    let h = Harness::start(CRASHING);
    eventually(
        "the app running in the status",
        Duration::from_secs(1),
        || h.all_running_in_status(),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let lists = h.fake.lists();
    h.handle.terminate.cancel();
    tokio::time::timeout(Duration::from_secs(60), h.handle.done.cancelled())
        .await
        .expect("the worker finishes");
    assert_eq!(h.fake.lists(), lists, "no listing while terminating");
    assert!(h.fake.containers().is_empty(), "{:?}", h.fake.containers());
    let calls = h.fake.calls();
    let stops = calls.iter().filter(|c| c.starts_with("stop ")).count();
    // The sandbox goes with its (forced) removal, without a stop of its own.
    assert_eq!(stops, 1, "the app: {calls:?}");
    let removes = calls.iter().filter(|c| c.starts_with("remove ")).count();
    assert_eq!(removes, 2, "the app and the sandbox: {calls:?}");
}

/// A new pod is listed once, before anything exists: after creating its
/// sandbox and its containers the worker inspects just those (each listing
/// walks every container in Docker).
#[tokio::test(start_paused = true)]
async fn a_starting_pod_is_listed_once_then_only_what_it_created_is_inspected() {
    let h = Harness::start(CRASHING);
    eventually(
        "the app running in the status",
        Duration::from_secs(1),
        || h.all_running_in_status(),
    )
    .await;
    assert_eq!(h.fake.lists(), 1, "{:?}", h.fake.calls());
    assert!(h.status().pod_ip.is_some(), "the sandbox's IP is known");
    // A death is still seen: the worker lists again and restarts the app.
    let app = h.running("app").expect("running");
    h.fake.exit(&app.id, 1);
    eventually("the restart", Duration::from_secs(1), || {
        h.instances("app").len() == 2 && h.running("app").is_some()
    })
    .await;
}

/// A pod whose containers take long to exit gives its teardown slot back
/// while they do: with one slot, two such pods go down together, not one
/// grace period after the other.
#[tokio::test(start_paused = true)]
async fn a_pod_slow_to_stop_gives_its_teardown_slot_back() {
    let h = Harness::with_teardown_slots(CRASHING, 1);
    let other = h.spawn(&CRASHING.replace("name: web", "name: other"));
    eventually("both apps running", Duration::from_secs(1), || {
        h.fake
            .containers()
            .iter()
            .filter(|c| c.is_running())
            .count()
            == 4
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    h.fake.set_stop_delay(Duration::from_secs(20));
    let began = Instant::now();
    h.handle.terminate.cancel();
    other.terminate.cancel();
    for done in [&h.handle.done, &other.done] {
        tokio::time::timeout(Duration::from_secs(60), done.cancelled())
            .await
            .expect("the worker finishes");
    }
    let took = began.elapsed();
    assert!(
        took < Duration::from_secs(25),
        "both pods down after {took:?} (one after the other would take 40 s)"
    );
    assert!(h.fake.containers().is_empty(), "{:?}", h.fake.containers());
}

const WITH_SIDECARS: &str = "
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  terminationGracePeriodSeconds: 30
  initContainers:
  - {name: s1, image: 'img:1', restartPolicy: Always}
  - {name: s2, image: 'img:1', restartPolicy: Always}
  containers:
  - name: a
    image: 'img:1'
    lifecycle: {preStop: {sleep: {seconds: 5}}}
  - {name: b, image: 'img:1'}
";

#[tokio::test(start_paused = true)]
async fn termination_stops_apps_then_sidecars_in_reverse_then_the_sandbox_within_the_grace() {
    let h = Harness::start(WITH_SIDECARS);
    let all = ["POD", "s1", "s2", "a", "b"];
    eventually("everything running", Duration::from_secs(1), || {
        all.iter().all(|n| h.running(n).is_some())
    })
    .await;
    // Each process takes 3 s to exit after its signal.
    h.fake.set_stop_delay(Duration::from_secs(3));
    h.handle.terminate.cancel();
    let began = Instant::now();
    tokio::time::timeout(Duration::from_secs(60), h.handle.done.cancelled())
        .await
        .expect("the worker finishes");

    let stops: Vec<(String, u64)> = h
        .fake
        .stops()
        .into_iter()
        .map(|(c, grace)| {
            let name = c.meta().map(|m| m.container_name).unwrap_or_default();
            (name, grace.as_secs())
        })
        .collect();
    // b is signalled at once with the full grace; a after its 5 s preStop
    // hook with what is left; the sidecars, one by one in reverse, with what
    // is left of the pod's grace; the sandbox is removed last.
    assert_eq!(
        stops,
        vec![
            ("b".to_string(), 30),
            ("a".to_string(), 25),
            ("s2".to_string(), 22),
            ("s1".to_string(), 19),
        ]
    );
    // a: 5 s hook + 3 s; s2, s1: 3 s each; then the sandbox goes with its
    // forced removal.
    assert_eq!(began.elapsed().as_secs(), 14);
    assert!(h.fake.containers().is_empty(), "everything removed");
    assert!(h.store.list().is_empty(), "the pod is gone from the store");
    let dir = h.root.path().join("pods").join(&h.handle.uid);
    assert!(!dir.exists(), "the pod's directory is deleted");
}

const WITH_DEADLINE: &str = "
apiVersion: v1
kind: Pod
metadata: {name: job}
spec:
  activeDeadlineSeconds: 30
  restartPolicy: Always
  containers:
  - {name: app, image: 'img:1'}
";

#[tokio::test(start_paused = true)]
async fn past_its_deadline_a_pod_fails_with_everything_stopped_for_good() {
    let h = Harness::start(WITH_DEADLINE);
    eventually("the app running", Duration::from_secs(1), || {
        h.running("app").is_some()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(29)).await;
    assert!(h.running("app").is_some(), "still within the deadline");
    eventually("the deadline", Duration::from_secs(2), || {
        h.status().reason.as_deref() == Some("DeadlineExceeded")
    })
    .await;
    let status = h.status();
    assert_eq!(status.phase.as_deref(), Some("Failed"));
    assert_eq!(
        status.message.as_deref(),
        Some("Pod was active on the node longer than the specified deadline")
    );
    eventually("everything stopped", Duration::from_secs(1), || {
        h.fake.containers().iter().all(|c| !c.is_running())
    })
    .await;
    let creates = h.creates();
    let reasons = h.event_reasons();
    assert_eq!(
        reasons.iter().filter(|r| *r == "DeadlineExceeded").count(),
        1,
        "{reasons:?}"
    );

    // Nothing restarts, however long it waits or whatever wakes it.
    tokio::time::sleep(Duration::from_secs(600)).await;
    h.handle.wake.notify_one();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(h.creates(), creates);
    assert!(h
        .fake
        .containers()
        .iter()
        .all(|c| c.state == ContainerState::Exited));
    assert_eq!(h.status().phase.as_deref(), Some("Failed"));
}

#[test]
fn the_lifecycle_answers_what_each_state_allows() {
    use super::Lifecycle;
    let terminating = |after_deadline| Lifecycle::Terminating {
        since: t(5),
        interrupted: false,
        after_deadline,
    };
    assert!(Lifecycle::Running.syncs() && Lifecycle::Running.probes_run());
    assert!(Lifecycle::DeadlineExceeded.syncs());
    assert!(!Lifecycle::DeadlineExceeded.probes_run());
    assert!(!terminating(false).syncs() && !Lifecycle::Done.syncs());
    assert_eq!(terminating(false).terminating_since(), Some(t(5)));
    assert_eq!(Lifecycle::Running.terminating_since(), None);
    // A pod terminated past its deadline stays Failed while it goes.
    assert!(terminating(true).deadline_exceeded());
    assert!(!terminating(false).deadline_exceeded());
}

const POST_START: &str = "
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  containers:
  - name: a
    image: 'img:1'
    lifecycle: {postStart: {exec: {command: [touch, /ready]}}}
  - {name: b, image: 'img:1'}
";

#[tokio::test(start_paused = true)]
async fn the_next_container_starts_only_after_a_post_start_hook_finished() {
    let h = Harness::start(POST_START);
    eventually("both running", Duration::from_secs(1), || {
        h.running("a").is_some() && h.running("b").is_some()
    })
    .await;
    let a = h.running("a").expect("a").id;
    let calls = h.fake.calls();
    let at = |wanted: &dyn Fn(&String) -> bool| {
        calls
            .iter()
            .position(wanted)
            .unwrap_or_else(|| panic!("missing call in {calls:?}"))
    };
    let hook = at(&|c| *c == format!("exec {a} touch /ready"));
    let create_b = at(&|c| c.starts_with("create k8s_b_"));
    assert!(at(&|c| *c == format!("start {a}")) < hook);
    assert!(hook < create_b, "{calls:?}");
}

/// The kubelet reads termination messages with `tail.ReadAtMost(path,
/// MaxContainerTerminationMessageLength)` (pkg/kubelet/kuberuntime
/// `getTerminationMessage`): the last 4096 bytes are kept, not the first.
#[tokio::test]
async fn a_long_termination_message_keeps_its_last_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("log");
    let mut text = "x".repeat(5000).into_bytes();
    text.extend_from_slice(b"the end");
    std::fs::write(&path, &text).expect("write");
    let tail = super::read_tail(&path, 4096).await.expect("read");
    assert_eq!(tail.len(), 4096);
    assert!(tail.ends_with(b"the end"));
    std::fs::write(&path, b"short").expect("write");
    assert_eq!(super::read_tail(&path, 4096).await.expect("read"), b"short");
}

#[tokio::test(start_paused = true)]
async fn a_pod_terminated_while_its_sandbox_start_is_in_flight_leaves_nothing_behind() {
    let h = Harness::start(CRASHING);
    // Docker takes its time to start the sandbox: the pod is superseded
    // between the create and the start's answer.
    h.fake.set_start_delay(Duration::from_secs(2));
    eventually("the sandbox created", Duration::from_secs(5), || {
        h.creates() >= 1
    })
    .await;
    assert!(h.running("POD").is_none(), "still starting");
    h.handle.terminate.cancel();
    tokio::time::timeout(Duration::from_secs(60), h.handle.done.cancelled())
        .await
        .expect("the worker finished");
    assert_eq!(h.fake.containers(), Vec::new(), "nothing left behind");
}
