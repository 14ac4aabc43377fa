//! Taking a pod down: stopping in the planner's order, removing every
//! container, deleting the pod's directory.
//!
//! [`PodWorker::terminate`] is a worker's last act (manifest removed or
//! replaced); [`kill_pod`] and [`kill_pod_until_done`] do the same for a pod
//! nobody runs any more (an orphan found at start-up), with only the labels
//! to go by.

use std::path::Path;
use std::time::Duration;

use futures_util::future::join_all;
use k8s_openapi::jiff::Timestamp;
use tokio_util::sync::CancellationToken;

use super::PodWorker;
use crate::backoff::Retry;
use crate::clock::elapsed;
use crate::pod::layout::pod_dir;
use crate::pod::observed::Observed;
use crate::pod::plan::{self, Plan, Step};
use crate::runtime::{ContainerInfo, ContainerRuntime, RuntimeError};
use crate::worker::volumes;

/// How long a terminating pod keeps its teardown slot while its containers
/// exit; past it the slot goes to the next pod until this one's are down.
const SLOW_STOP: Duration = Duration::from_secs(1);

/// Retrying a failed teardown: 1 s, doubling up to 32 s.
const TEARDOWN_RETRY: Retry = Retry::new(Duration::from_secs(1), Duration::from_secs(32));

/// Stops and removes every container of pod `uid` — in the planner's stop
/// order, which without the spec is the app containers in parallel, then
/// the sandbox — and deletes the pod's directory. `grace` defaults to each
/// container's grace-period label. Fails only if the runtime fails (the
/// caller retries).
pub async fn kill_pod(
    runtime: &dyn ContainerRuntime,
    root_dir: &Path,
    uid: &str,
    grace: Option<Duration>,
) -> Result<(), RuntimeError> {
    // The brief list is enough here: ids, labels and whether to stop (a
    // container that just died may read running; stopping it is a no-op).
    let containers = runtime.list_brief(Some(uid)).await?;
    let grace_of = |c: &ContainerInfo| {
        grace.unwrap_or_else(|| {
            let secs = c.meta().map(|m| m.pod.grace_period_seconds).unwrap_or(30);
            Duration::from_secs(secs.max(0) as u64)
        })
    };
    let observed = Observed::new(&containers);
    let running = observed.iter().filter(|s| s.is_running());
    for batch in plan::stop_batches(None, running) {
        let stops = batch
            .iter()
            .filter_map(|s| match s {
                Step::StopContainer { id, .. } => containers.iter().find(|c| c.id == *id),
                _ => None,
            })
            .map(|c| runtime.stop_container(&c.id, grace_of(c)));
        for r in join_all(stops).await {
            r?;
        }
    }
    remove_pod(runtime, root_dir, uid, &containers).await
}

/// Removes the given (stopped) containers of pod `uid` in parallel and
/// deletes the pod's directory.
async fn remove_pod(
    runtime: &dyn ContainerRuntime,
    root_dir: &Path,
    uid: &str,
    containers: &[ContainerInfo],
) -> Result<(), RuntimeError> {
    for r in join_all(containers.iter().map(|c| runtime.remove_container(&c.id))).await {
        r?;
    }
    let dir = pod_dir(root_dir, uid);
    if let Err(e) = volumes::teardown(&dir) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot remove pod directory");
    }
    Ok(())
}

/// [`kill_pod`], retried with backoff until it succeeds. Returns false if
/// `shutdown` came first (the pod is then left for the next start to clean up).
pub async fn kill_pod_until_done(
    runtime: &dyn ContainerRuntime,
    root_dir: &Path,
    uid: &str,
    grace: Option<Duration>,
    shutdown: &CancellationToken,
) -> bool {
    let mut retry = TEARDOWN_RETRY;
    loop {
        let result = tokio::select! {
            _ = shutdown.cancelled() => return false,
            r = kill_pod(runtime, root_dir, uid, grace) => r,
        };
        let Err(e) = result else { return true };
        let delay = retry.next_delay();
        if matches!(e, RuntimeError::Unavailable(_)) {
            tracing::debug!(%uid, error = %e, retry_in = ?delay, "cannot remove pod containers yet");
        } else {
            tracing::warn!(%uid, error = %e, retry_in = ?delay, "cannot remove pod containers yet");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return false,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// Whether a stop batch stops sandboxes only (the planner's last batch).
fn stops_sandboxes_only(batch: &[Step], observed: &[ContainerInfo]) -> bool {
    batch.iter().all(|step| match step {
        Step::StopContainer { id, .. } => observed
            .iter()
            .find(|c| c.id == *id)
            .and_then(|c| c.meta())
            .is_some_and(|m| m.is_sandbox),
        _ => false,
    })
}

impl PodWorker {
    /// Stops and removes the pod — in the planner's stop order, within what
    /// is left of the grace period since `started` — retrying until done
    /// (returns true) or daemon shutdown (false). The last sync's list is
    /// used when it is still true (the sync had nothing to do and was not
    /// cut off): only this worker creates and removes this pod's containers,
    /// and one that died since stops as a no-op. Otherwise the containers
    /// are listed first. When a sync was `interrupted` (or on a retry) they
    /// are listed again before removing them, in case a create was still in
    /// flight; otherwise what was observed is all there is.
    pub(super) async fn terminate(
        &mut self,
        shutdown: &CancellationToken,
        started: Timestamp,
        interrupted: bool,
    ) -> bool {
        self.prober.stop_all();
        // A create cut off with its sync still runs in the runtime: wait for
        // it, so the listing below sees what it created.
        self.in_flight.close();
        tokio::select! {
            _ = shutdown.cancelled() => return false,
            _ = self.in_flight.wait() => {}
        }
        let mut retry = TEARDOWN_RETRY;
        loop {
            let relist = interrupted || retry.failures() > 0;
            // In a mass removal, listing every pod first (a list and an
            // inspect per container) held up the first stop by hundreds of
            // Docker calls.
            let mut known = if relist { None } else { self.known.take() };
            let step = async {
                let observed = match known.take() {
                    Some(known) => known,
                    None => self.ctx.runtime.list_containers(Some(&self.uid)).await?,
                };
                self.publish(&observed, &Plan::default());
                // One teardown slot per pod, from its first signal to its
                // removal, as many pods in flight as there are slots. When
                // every pod of a mass removal signalled at once, Docker
                // handled the kills and exits of all of them together, each
                // stop ended late, and no sandbox could go until the last
                // one had. The wait for a slot does not count against the
                // grace period; a pod whose containers take longer than
                // `SLOW_STOP` to exit gives its slot back meanwhile, so one
                // slow pod never holds up the others.
                let queued = self.ctx.clock.now();
                let slot = self.ctx.teardown_slot().await?;
                let left = self.grace().saturating_sub(elapsed(started, queued));
                let (apps, sandboxes): (Vec<_>, Vec<_>) = plan::stop_all(&self.pod, &observed)
                    .into_iter()
                    .partition(|batch| !stops_sandboxes_only(batch, &observed));
                let stopping = self.stop(&apps, &observed, left, false);
                tokio::pin!(stopping);
                let kept = tokio::select! {
                    r = &mut stopping => r.map(|()| Some(slot))?,
                    _ = tokio::time::sleep(SLOW_STOP) => {
                        drop(slot);
                        stopping.await?;
                        None
                    }
                };
                let _slot = match kept {
                    Some(slot) => slot,
                    None => self.ctx.teardown_slot().await?,
                };
                let runtime = self.ctx.runtime.as_ref();
                if relist {
                    self.stop(&sandboxes, &observed, left, true).await?;
                    kill_pod(runtime, &self.ctx.root_dir, &self.uid, Some(left)).await
                } else {
                    // The sandbox has nothing to wind down (its process is
                    // the pause binary): its forced removal kills and
                    // removes it in one call, alongside the apps' removal.
                    remove_pod(runtime, &self.ctx.root_dir, &self.uid, &observed).await
                }
            };
            let result = tokio::select! {
                _ = shutdown.cancelled() => return false,
                r = step => r,
            };
            match result {
                Ok(()) => break,
                Err(e) => {
                    let delay = retry.next_delay();
                    if matches!(e, RuntimeError::Unavailable(_)) {
                        tracing::debug!(error = %e, retry_in = ?delay, "cannot terminate pod yet");
                    } else {
                        tracing::warn!(error = %e, retry_in = ?delay, "cannot terminate pod yet");
                    }
                    tokio::select! {
                        _ = shutdown.cancelled() => return false,
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
        self.ctx.store.remove(&self.uid);
        tracing::info!("pod terminated");
        true
    }
}
