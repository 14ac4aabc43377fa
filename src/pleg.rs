//! Observation: the runtime's events stream, waking pod workers.
//!
//! Docker tells us within ~45 ms when a container starts, dies or is
//! destroyed; the event names the pod UID (from the container's labels) and
//! [`Routes`] wakes that pod's worker, which re-observes and re-plans. When the
//! stream breaks (daemon restart), it reconnects with backoff, resuming from
//! the last event's time, and wakes every worker to cover the gap. A slow
//! relist is the safety net for anything missed. Nothing polls in a tight loop.
//! When the runtime answers again after an outage ([`RuntimeHealth`]), the
//! stream reconnects and the relist runs at once, waking every worker.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::backoff::Retry;
use crate::runtime::health::RuntimeHealth;
use crate::runtime::{ContainerRuntime, ContainerState, RuntimeError};

/// Pod UID → the waker of its worker.
#[derive(Debug, Default)]
pub struct Routes {
    map: Mutex<HashMap<String, Arc<Notify>>>,
}

impl Routes {
    pub fn insert(&self, uid: &str, wake: Arc<Notify>) {
        if let Ok(mut m) = self.map.lock() {
            m.insert(uid.to_string(), wake);
        }
    }
    pub fn remove(&self, uid: &str) {
        if let Ok(mut m) = self.map.lock() {
            m.remove(uid);
        }
    }
    /// Wakes the worker of `uid`, if there is one.
    pub fn wake(&self, uid: &str) {
        if let Some(n) = self.map.lock().ok().and_then(|m| m.get(uid).cloned()) {
            n.notify_one();
        }
    }
    pub fn wake_all(&self) {
        if let Ok(m) = self.map.lock() {
            m.values().for_each(|n| n.notify_one());
        }
    }
}

/// Actions worth waking a worker for: what happens *to* its containers.
/// `create` and `start` are left out: they are the worker's own doing, and it
/// re-observes right after acting anyway; an extra wake-up per event only
/// cost a list + inspect per pod, which a burst of pods pays in Docker CPU.
/// (A container someone else starts is seen by the relist.)
fn interesting(action: &str) -> bool {
    matches!(action, "die" | "oom" | "destroy" | "kill" | "stop")
}

/// Reconnecting to the events stream: 0.5 s, doubling up to 5 s (and at
/// once when the runtime answers again).
const RECONNECT: Retry = Retry::new(Duration::from_millis(500), Duration::from_secs(5));

/// Follows the events stream until `shutdown`, reconnecting as needed.
pub async fn watch_events(
    runtime: Arc<dyn ContainerRuntime>,
    routes: Arc<Routes>,
    health: Arc<RuntimeHealth>,
    shutdown: CancellationToken,
) {
    let mut since: Option<i64> = None;
    let mut retry = RECONNECT;
    let mut recovered = health.recovered();
    loop {
        let mut stream = runtime.events(since);
        health.set_events_connected(true);
        if since.is_some() {
            // We may have missed events while disconnected.
            routes.wake_all();
        }
        loop {
            let next = tokio::select! {
                _ = shutdown.cancelled() => return,
                n = stream.next() => n,
            };
            match next {
                Some(Ok(ev)) => {
                    retry.reset();
                    health.answered();
                    since = Some(ev.time_nanos);
                    if let Some(uid) = ev.pod_uid.as_deref().filter(|_| interesting(&ev.action)) {
                        tracing::debug!(pod_uid = uid, action = %ev.action, id = %ev.container_id,
                            "container event");
                        routes.wake(uid);
                    }
                }
                Some(Err(e)) => {
                    health.set_events_connected(false);
                    if matches!(e, RuntimeError::Unavailable(_)) {
                        // The outage is logged once, by the health.
                        health.unreachable(&e);
                        tracing::debug!(error = %e, "runtime events stream failed; reconnecting");
                    } else {
                        tracing::warn!(error = %e, "runtime events stream failed; reconnecting");
                    }
                    break;
                }
                None => {
                    health.set_events_connected(false);
                    tracing::debug!("runtime events stream ended; reconnecting");
                    break;
                }
            }
        }
        if since.is_none() {
            since = Some(k8s_openapi::jiff::Timestamp::now().as_nanosecond() as i64);
        }
        let delay = retry.next_delay();
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
            _ = recovered.changed() => retry.reset(),
        }
    }
}

/// Relists every `period` and wakes the workers whose containers changed.
pub async fn relist(
    runtime: Arc<dyn ContainerRuntime>,
    routes: Arc<Routes>,
    health: Arc<RuntimeHealth>,
    period: Duration,
    shutdown: CancellationToken,
) {
    let mut recovered = health.recovered();
    let mut last: BTreeMap<String, Vec<(String, ContainerState)>> = BTreeMap::new();
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        let after_outage = tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => false,
            _ = recovered.changed() => true,
        };
        if after_outage {
            // Whatever happened while the runtime was away: every worker
            // looks again now (their runtime-error backoff is reset too).
            routes.wake_all();
        }
        // Ids and states are all it compares: the list, without inspecting
        // every container, keeps an idle node idle.
        let started = std::time::Instant::now();
        let listed = runtime.list_brief(None).await;
        crate::metrics::global()
            .pleg_relist_duration
            .observe(started.elapsed().as_secs_f64());
        let containers = match listed {
            Ok(c) => c,
            Err(e @ RuntimeError::Unavailable(_)) => {
                tracing::debug!(error = %e, "relist failed");
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "relist failed");
                continue;
            }
        };
        let mut now: BTreeMap<String, Vec<(String, ContainerState)>> = BTreeMap::new();
        for c in &containers {
            if let Some(m) = c.meta() {
                now.entry(m.pod.uid)
                    .or_default()
                    .push((c.id.clone(), c.state));
            }
        }
        for v in now.values_mut() {
            v.sort_by(|a, b| a.0.cmp(&b.0));
        }
        for uid in now.keys().chain(last.keys()) {
            if now.get(uid) != last.get(uid) {
                routes.wake(uid);
            }
        }
        last = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::fake::FakeRuntime;
    use crate::runtime::labels::PodRef;
    use crate::runtime::SandboxConfig;

    fn sandbox(uid: &str) -> SandboxConfig {
        let pod = PodRef {
            name: "p".into(),
            namespace: "default".into(),
            uid: uid.into(),
            source: "file:/p.yaml".into(),
            grace_period_seconds: 30,
            workload_generation: None,
        };
        SandboxConfig {
            name: format!("k8s_POD_p_default_{uid}_0"),
            image: "pause".into(),
            labels: pod.sandbox_labels(0),
            ..Default::default()
        }
    }

    async fn notified(n: &Notify) {
        tokio::time::timeout(Duration::from_secs(5), n.notified())
            .await
            .expect("woken in time");
    }

    #[test]
    fn workers_wake_for_what_happens_to_their_containers_not_for_their_own_starts() {
        for action in ["die", "oom", "destroy", "kill", "stop"] {
            assert!(interesting(action), "{action}");
        }
        for action in ["create", "start", "exec_start", "health_status", "attach"] {
            assert!(!interesting(action), "{action}");
        }
    }

    #[tokio::test]
    async fn an_event_wakes_only_the_worker_of_its_pod() {
        let fake = Arc::new(FakeRuntime::new());
        let routes = Arc::new(Routes::default());
        let (a, b) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        routes.insert("uid-a", a.clone());
        routes.insert("uid-b", b.clone());
        let stop = CancellationToken::new();
        tokio::spawn(watch_events(
            fake.clone(),
            routes.clone(),
            RuntimeHealth::new(),
            stop.clone(),
        ));
        // Wait until subscribed, then create a container of pod a.
        while !fake.calls().iter().any(|c| c.starts_with("events")) {
            tokio::task::yield_now().await;
        }
        let id = fake.run_sandbox(&sandbox("uid-a")).await.expect("sandbox");
        fake.exit(&id, 1);
        notified(&a).await;
        let woke_b = tokio::time::timeout(Duration::from_millis(100), b.notified()).await;
        assert!(woke_b.is_err(), "pod b was woken by pod a's event");
        stop.cancel();
    }

    #[tokio::test]
    async fn a_broken_events_stream_is_resumed_from_the_last_event_and_wakes_every_worker() {
        let fake = Arc::new(FakeRuntime::new());
        let routes = Arc::new(Routes::default());
        let a = Arc::new(Notify::new());
        routes.insert("uid-a", a.clone());
        let stop = CancellationToken::new();
        tokio::spawn(watch_events(
            fake.clone(),
            routes.clone(),
            RuntimeHealth::new(),
            stop.clone(),
        ));
        while !fake.calls().iter().any(|c| c.starts_with("events")) {
            tokio::task::yield_now().await;
        }
        let id = fake.run_sandbox(&sandbox("uid-a")).await.expect("sandbox");
        fake.exit(&id, 1);
        notified(&a).await;
        // A worker no event concerns: only the reconnect's wake-all reaches it.
        let quiet = Arc::new(Notify::new());
        routes.insert("uid-quiet", quiet.clone());
        fake.break_event_streams();
        notified(&quiet).await;
        // The stream was resumed from the last event seen.
        let subscriptions: Vec<String> = fake
            .calls()
            .into_iter()
            .filter(|c| c.starts_with("events"))
            .collect();
        assert_eq!(subscriptions.len(), 2, "{subscriptions:?}");
        assert_eq!(subscriptions[0], "events since=None");
        assert!(
            subscriptions[1].starts_with("events since=Some("),
            "{subscriptions:?}"
        );
        stop.cancel();
    }
}
