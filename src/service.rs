//! rkubelet as a systemd service: `sd_notify` readiness, status, watchdog
//! and stopping notifications.
//!
//! * [`Health`] is shared by the pod manager and the notifier. The manager
//!   marks it ready after its initial sync (every source read once, running
//!   pods adopted, orphans handed to killers, workers started) and answers
//!   heartbeat pokes from its main loop.
//! * [`run`] is the notifier task. With `NOTIFY_SOCKET` set (systemd's
//!   `Type=notify`) it sends `READY=1` once the manager is ready, `STATUS=`
//!   with pod counts when they change, `WATCHDOG=1` every half
//!   `WATCHDOG_USEC` **only if the manager answered the previous poke** (a
//!   wedged manager loop stops the pings, so systemd restarts rkubelet), and
//!   `STOPPING=1` at shutdown. Without `NOTIFY_SOCKET` it does nothing.
//!
//! It does not decide anything about pods; it reads the status store.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sd_notify::NotifyState;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::worker::store::PodStore;

/// Liveness and readiness of the daemon's main loop.
#[derive(Debug, Default)]
pub struct Health {
    ready: AtomicBool,
    /// The UIDs of the pods the initial sync handed to workers.
    expected: std::sync::Mutex<Vec<String>>,
    ready_notify: Notify,
    /// Counts the pokes the main loop answered.
    beats: AtomicU64,
    poke: Notify,
}

impl Health {
    pub fn new() -> Arc<Health> {
        Arc::new(Health::default())
    }

    /// The initial sync is done and workers run the pods `uids` (called by
    /// the manager; later calls are no-ops).
    pub fn set_ready(&self, uids: Vec<String>) {
        if self.is_ready() {
            return;
        }
        if let Ok(mut e) = self.expected.lock() {
            *e = uids;
        }
        if !self.ready.swap(true, Ordering::SeqCst) {
            self.ready_notify.notify_waiters();
        }
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    /// Resolves once [`Health::set_ready`] was called.
    pub async fn ready(&self) {
        loop {
            let notified = self.ready_notify.notified();
            if self.is_ready() {
                return;
            }
            notified.await;
        }
    }

    /// The pods of the initial sync ([`Health::set_ready`]).
    pub fn expected(&self) -> Vec<String> {
        self.expected.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// Resolves when the notifier asks the main loop to prove it is alive;
    /// the loop then calls [`Health::beat`]. Select on it in the main loop.
    pub async fn poked(&self) {
        self.poke.notified().await
    }

    /// The main loop's answer to a poke.
    pub fn beat(&self) {
        self.beats.fetch_add(1, Ordering::SeqCst);
    }

    /// How many pokes were answered so far.
    pub fn beats(&self) -> u64 {
        self.beats.load(Ordering::SeqCst)
    }

    /// Asks the main loop for a beat (stored if it is busy right now, so
    /// the next turn of its loop answers).
    pub fn poke(&self) {
        self.poke.notify_one();
    }
}

/// Where notifications go: systemd's socket, or a recorder in tests.
pub trait Notifier: Send + Sync {
    fn send(&self, states: &[NotifyState<'_>]);
}

/// `sd_notify` on `$NOTIFY_SOCKET`; errors are logged, never fatal.
pub struct Systemd;

impl Notifier for Systemd {
    fn send(&self, states: &[NotifyState<'_>]) {
        if let Err(e) = sd_notify::notify(states) {
            tracing::warn!(error = %e, "cannot notify systemd");
        }
    }
}

/// The `STATUS=` text for the pods' phases.
pub fn status_line<'a>(phases: impl IntoIterator<Item = Option<&'a str>>) -> String {
    let (mut total, mut running, mut pending, mut succeeded, mut failed) = (0, 0, 0, 0, 0);
    for phase in phases {
        total += 1;
        match phase {
            Some("Running") => running += 1,
            Some("Succeeded") => succeeded += 1,
            Some("Failed") => failed += 1,
            _ => pending += 1,
        }
    }
    format!(
        "{total} pods: {running} running, {pending} pending, {succeeded} succeeded, {failed} failed"
    )
}

fn pod_status_line(store: &PodStore) -> String {
    let (pods, _) = store.pods().list();
    status_line(
        pods.iter()
            .map(|p| p.status.as_ref().and_then(|s| s.phase.as_deref())),
    )
}

/// How often `STATUS=` is refreshed without a watchdog.
const STATUS_PERIOD: Duration = Duration::from_secs(10);

/// How long readiness waits for the initial pods' first status.
const PUBLISH_LIMIT: Duration = Duration::from_secs(30);

/// Waits (at most `limit`) until every pod in `uids` has a status in the
/// store, i.e. its worker observed it once. False on timeout.
pub async fn published(store: &PodStore, uids: &[String], limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    let all = || uids.iter().all(|u| store.pods().get(u).is_some());
    loop {
        let Ok(mut watch) = store.pods().watch(None) else {
            return all();
        };
        loop {
            if all() {
                return true;
            }
            match tokio::time::timeout_at(deadline, watch.next()).await {
                Ok(Ok(_)) => {}
                Ok(Err(_lagged)) => break,
                Err(_) => return all(),
            }
        }
    }
}

/// Ready once the manager's initial sync is done and its pods have a
/// status (bounded, so a slow Docker delays `READY=1` but never blocks it).
async fn initial_sync(health: &Health, store: &PodStore) {
    health.ready().await;
    let uids = health.expected();
    if !published(store, &uids, PUBLISH_LIMIT).await {
        tracing::warn!(pods = uids.len(), limit = ?PUBLISH_LIMIT,
            "not every adopted pod has a status yet; reporting ready anyway");
    }
}

/// The notifier task: runs only when `NOTIFY_SOCKET` is set.
pub async fn run(health: Arc<Health>, store: Arc<PodStore>, shutdown: CancellationToken) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    let watchdog = sd_notify::watchdog_enabled();
    tracing::info!(watchdog = ?watchdog, "notifying systemd");
    let ready = {
        let (health, store) = (health.clone(), store.clone());
        async move { initial_sync(&health, &store).await }
    };
    let status = move || pod_status_line(&store);
    notify_loop(&Systemd, health, ready, status, watchdog, shutdown).await
}

/// [`run`]'s loop with its IO injected: `ready` resolves at readiness,
/// `status` gives the current `STATUS=` text, `watchdog` is `WATCHDOG_USEC`
/// (pings at half of it, while `health`'s main loop answers).
pub async fn notify_loop(
    notifier: &dyn Notifier,
    health: Arc<Health>,
    ready: impl std::future::Future<Output = ()>,
    status: impl Fn() -> String,
    watchdog: Option<Duration>,
    shutdown: CancellationToken,
) {
    let period = watchdog
        .map(|w| (w / 2).max(Duration::from_millis(1)))
        .unwrap_or(STATUS_PERIOD)
        .min(STATUS_PERIOD);
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ready_sent = false;
    let mut last_status = String::new();
    let mut answered = health.beats();
    let mut wedged = false;
    health.poke();
    tokio::pin!(ready);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = &mut ready, if !ready_sent => {
                ready_sent = true;
                last_status = status();
                tracing::info!(status = %last_status, "initial sync done; notifying systemd READY=1");
                notifier.send(&[NotifyState::Ready, NotifyState::Status(&last_status)]);
            }
            _ = ticks.tick() => {
                if watchdog.is_some() {
                    let beats = health.beats();
                    if beats != answered {
                        answered = beats;
                        if wedged {
                            tracing::info!("the pod manager answers again; resuming watchdog pings");
                            wedged = false;
                        }
                        notifier.send(&[NotifyState::Watchdog]);
                    } else if !wedged {
                        wedged = true;
                        tracing::error!(period = ?period,
                            "the pod manager did not answer within a watchdog period; withholding WATCHDOG=1");
                    }
                    health.poke();
                }
                if ready_sent {
                    let now = status();
                    if now != last_status {
                        notifier.send(&[NotifyState::Status(&now)]);
                        last_status = now;
                    }
                }
            }
        }
    }
    notifier.send(&[
        NotifyState::Stopping,
        NotifyState::Status("stopping; pods keep running"),
    ]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<(tokio::time::Instant, String)>>);

    impl Notifier for Recorder {
        fn send(&self, states: &[NotifyState<'_>]) {
            let text = states
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join("\n");
            let mut v = self.0.lock().unwrap();
            v.push((tokio::time::Instant::now(), text));
        }
    }

    impl Recorder {
        fn sent(&self) -> Vec<String> {
            self.0
                .lock()
                .unwrap()
                .iter()
                .map(|(_, s)| s.clone())
                .collect()
        }
        fn count(&self, what: &str) -> usize {
            self.sent().iter().filter(|s| s.contains(what)).count()
        }
    }

    /// A main loop that answers every poke, until `stop`.
    fn answering(health: Arc<Health>, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = health.poked() => health.beat(),
                }
            }
        })
    }

    #[test]
    fn the_status_line_counts_pods_by_phase() {
        let phases = [
            Some("Running"),
            Some("Running"),
            None,
            Some("Pending"),
            Some("Failed"),
        ];
        assert_eq!(
            status_line(phases),
            "5 pods: 2 running, 2 pending, 0 succeeded, 1 failed"
        );
        assert_eq!(
            status_line([]),
            "0 pods: 0 running, 0 pending, 0 succeeded, 0 failed"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn ready_is_sent_only_after_the_manager_says_so_with_the_status() {
        let rec = Arc::new(Recorder::default());
        let health = Health::new();
        let stop = CancellationToken::new();
        let task = {
            let (rec, health, stop) = (rec.clone(), health.clone(), stop.clone());
            tokio::spawn(async move {
                let ready = {
                    let health = health.clone();
                    async move { health.ready().await }
                };
                notify_loop(&*rec, health, ready, || "1 pods".into(), None, stop).await
            })
        };
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert_eq!(rec.count("READY=1"), 0);
        health.set_ready(Vec::new());
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(rec.sent(), vec!["READY=1\nSTATUS=1 pods".to_string()]);
        stop.cancel();
        task.await.unwrap();
        assert!(rec.sent().last().unwrap().starts_with("STOPPING=1"));
    }

    #[tokio::test(start_paused = true)]
    async fn watchdog_pings_at_half_the_period_while_the_loop_answers() {
        let rec = Arc::new(Recorder::default());
        let health = Health::new();
        let stop = CancellationToken::new();
        let _main = answering(health.clone(), stop.clone());
        let task = {
            let (rec, health, stop) = (rec.clone(), health.clone(), stop.clone());
            tokio::spawn(async move {
                notify_loop(
                    &*rec,
                    health,
                    std::future::pending(),
                    String::new,
                    Some(Duration::from_secs(4)),
                    stop,
                )
                .await
            })
        };
        tokio::time::sleep(Duration::from_millis(10_100)).await;
        let pings: Vec<tokio::time::Instant> = rec
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, s)| s == "WATCHDOG=1")
            .map(|(t, _)| *t)
            .collect();
        // Ticks at 0 (nothing answered yet), 2, 4, 6, 8, 10 s.
        assert_eq!(pings.len(), 5, "{:?}", rec.sent());
        for w in pings.windows(2) {
            assert_eq!(w[1] - w[0], Duration::from_secs(2));
        }
        stop.cancel();
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_wedged_main_loop_stops_the_pings_and_they_resume_when_it_answers() {
        let rec = Arc::new(Recorder::default());
        let health = Health::new();
        let stop = CancellationToken::new();
        let wedge = CancellationToken::new();
        let _main = answering(health.clone(), wedge.clone());
        let task = {
            let (rec, health, stop) = (rec.clone(), health.clone(), stop.clone());
            tokio::spawn(async move {
                notify_loop(
                    &*rec,
                    health,
                    std::future::pending(),
                    String::new,
                    Some(Duration::from_secs(2)),
                    stop,
                )
                .await
            })
        };
        tokio::time::sleep(Duration::from_millis(3_500)).await;
        let before = rec.count("WATCHDOG=1");
        assert!(before >= 2, "{:?}", rec.sent());
        wedge.cancel(); // the main loop stops answering
        tokio::time::sleep(Duration::from_secs(20)).await;
        // At most the ping for a beat already given before the wedge.
        assert!(rec.count("WATCHDOG=1") <= before + 1, "{:?}", rec.sent());
        let wedged_count = rec.count("WATCHDOG=1");
        let _again = answering(health.clone(), stop.clone());
        health.poke();
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(rec.count("WATCHDOG=1") > wedged_count, "{:?}", rec.sent());
        stop.cancel();
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn readiness_waits_for_the_first_status_of_the_initial_pods_but_not_forever() {
        use crate::worker::store::PodRecord;
        let store = Arc::new(PodStore::new(Arc::new(crate::watch::Versions::default())));
        let later = store.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let mut pod = k8s_openapi::api::core::v1::Pod::default();
            pod.metadata.uid = Some("u1".into());
            pod.metadata.name = Some("p".into());
            later.put(
                "u1",
                PodRecord {
                    pod,
                    source: "file".into(),
                    probes: Vec::new(),
                },
            );
        });
        let start = tokio::time::Instant::now();
        assert!(published(&store, &["u1".to_string()], Duration::from_secs(10)).await);
        assert_eq!(start.elapsed(), Duration::from_secs(2));
        let start = tokio::time::Instant::now();
        assert!(!published(&store, &["u2".to_string()], Duration::from_secs(3)).await);
        assert_eq!(start.elapsed(), Duration::from_secs(3));
    }
}
