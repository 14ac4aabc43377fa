//! The host-port and `--max-pods` gate between the merged desired pods and
//! the workers.
//!
//! Owns which pods hold host ports on this node (those given a worker) and
//! which pods wait for one: a new pod whose `hostPort` is held by a pod that
//! stays gets no worker and is published `Pending` / `PodScheduled=False`
//! (the scheduler's `Unschedulable` and message) with a `FailedScheduling`
//! event; once every holder is on its way out the pod gets a worker that
//! starts when they are gone. Likewise pods beyond `--max-pods` wait with
//! the scheduler's "Too many pods" until others go. The decisions are [`crate::pod::host_ports`]'s;
//! this module feeds them the workers and the store. It is re-run on every
//! merged snapshot, which is when a holder can go away (its manifest removed
//! or changed); nothing polls.

use std::collections::{BTreeSet, HashMap};

use tokio_util::sync::CancellationToken;

use super::pod_worker::{WorkerContext, WorkerHandle};
use super::store::PodRecord;
use crate::events::Involved;
use crate::pod::host_ports::{self, Allocation, Holder, HostPort, Wait};

/// The kubelet's default `--max-pods`.
pub const DEFAULT_MAX_PODS: usize = 110;
use crate::source::Desired;

/// Host ports held and waited for, and the room for pods, across snapshots.
#[derive(Debug)]
pub struct PortGate {
    /// `--max-pods`: how many pods may run at once.
    max_pods: usize,
    /// The host ports of each pod given a worker, by UID.
    held: HashMap<String, Vec<HostPort>>,
    /// Pods waiting for a port or for room (UID to `namespace/name` and
    /// why), published `Pending` in the store.
    waiting: HashMap<String, (String, Wait)>,
    /// UIDs that had containers when rkubelet started: they already hold
    /// their ports, so they win over pods that never ran.
    running_at_start: BTreeSet<String>,
}

impl Default for PortGate {
    fn default() -> Self {
        PortGate::new(DEFAULT_MAX_PODS)
    }
}

impl PortGate {
    /// A gate letting at most `max_pods` pods run.
    pub fn new(max_pods: usize) -> Self {
        PortGate {
            max_pods,
            held: HashMap::new(),
            waiting: HashMap::new(),
            running_at_start: BTreeSet::new(),
        }
    }

    /// Remembers the pods found running at startup (adoption), so they keep
    /// their ports.
    pub fn adopted(&mut self, uids: impl IntoIterator<Item = String>) {
        self.running_at_start.extend(uids);
    }

    /// Takes the pods that must wait for a host port out of `desired`
    /// (publishing them `Pending`), and returns, per UID to start, the
    /// workers it must wait for (terminating holders of its ports).
    /// `workers` are the manager's workers by UID, terminating ones
    /// included.
    pub fn gate(
        &mut self,
        desired: &mut Desired,
        workers: &HashMap<String, WorkerHandle>,
        ctx: &WorkerContext,
    ) -> HashMap<String, Vec<CancellationToken>> {
        self.held
            .retain(|uid, _| workers.get(uid).is_some_and(|w| !w.done.is_cancelled()));
        let holders: Vec<Holder<String>> = (self.held.iter())
            .filter(|(_, ports)| !ports.is_empty())
            .map(|(uid, ports)| Holder {
                key: uid.clone(),
                ports: ports.clone(),
                leaving: !desired.pods.contains_key(uid)
                    || workers.get(uid).is_none_or(|w| w.terminate.is_cancelled()),
            })
            .collect();
        let mut candidates: Vec<(&String, &crate::source::SourcePod)> = (desired.pods.iter())
            .filter(|(uid, _)| workers.get(*uid).is_none_or(|w| w.terminate.is_cancelled()))
            .collect();
        candidates.sort_by_key(|(uid, sp)| {
            let seen = (sp.pod.metadata.annotations.as_ref())
                .and_then(|a| a.get(crate::manifest::identity::CONFIG_SEEN))
                .cloned()
                .unwrap_or_default();
            (!self.running_at_start.contains(*uid), seen, sp.full_name())
        });
        let with_ports: Vec<(String, Vec<HostPort>)> = (candidates.iter())
            .map(|(uid, sp)| ((*uid).clone(), HostPort::of(&sp.pod)))
            .collect();
        let staying = (workers.iter())
            .filter(|(uid, w)| desired.pods.contains_key(*uid) && !w.terminate.is_cancelled())
            .count();
        let room = self.max_pods.saturating_sub(staying);
        let decisions = host_ports::allocate(&holders, &with_ports, room);
        let mut after = HashMap::new();
        let mut waiting = HashMap::new();
        for ((uid, ports), decision) in with_ports.into_iter().zip(decisions) {
            match decision {
                Allocation::Free => {}
                Allocation::After(keys) => {
                    let tokens = (keys.iter())
                        .filter(|k| **k != uid)
                        .filter_map(|k| workers.get(k))
                        .map(|w| w.done.clone())
                        .collect::<Vec<_>>();
                    after.insert(uid.clone(), tokens);
                }
                Allocation::Wait(why) => {
                    let Some(sp) = desired.pods.remove(&uid) else {
                        continue;
                    };
                    let full_name = sp.full_name();
                    if self.waiting.get(&uid).map(|(_, w)| *w) != Some(why) {
                        match why {
                            Wait::Ports => tracing::warn!(pod = %full_name, %uid, ports = ?ports,
                                "pod waits for a host port another pod of this node holds"),
                            Wait::TooManyPods => {
                                tracing::warn!(pod = %full_name, %uid, max_pods = self.max_pods,
                                "pod waits: this node already runs --max-pods pods")
                            }
                        }
                        let meta = &sp.pod.metadata;
                        let involved = Involved::pod(
                            crate::k8s::meta::namespace_of(meta),
                            meta.name.as_deref().unwrap_or_default(),
                            &uid,
                        );
                        ctx.recorder.warning(
                            &involved,
                            host_ports::EVENT_FAILED_SCHEDULING,
                            why.message(),
                        );
                        let mut pod = (*sp.pod).clone();
                        pod.status = Some(host_ports::unschedulable_status(
                            &sp.pod,
                            why,
                            ctx.clock.now(),
                        ));
                        ctx.store.put(
                            &uid,
                            PodRecord {
                                pod,
                                source: sp.origin.key(),
                                probes: Vec::new(),
                            },
                        );
                    }
                    waiting.insert(uid, (full_name, why));
                    continue;
                }
            }
            self.held.insert(uid, ports);
        }
        for (uid, (full_name, _)) in &self.waiting {
            if waiting.contains_key(uid) {
                continue;
            }
            if desired.pods.contains_key(uid) {
                tracing::info!(pod = %full_name, %uid, "pod no longer waits; it starts");
            } else {
                tracing::info!(pod = %full_name, %uid, "waiting pod removed from its source");
                ctx.store.remove(uid);
            }
        }
        self.waiting = waiting;
        after
    }
}

/// A token cancelled once all of `tokens` are (None when there are none).
pub fn all_done(tokens: Vec<CancellationToken>) -> Option<CancellationToken> {
    match tokens.len() {
        0 => None,
        1 => tokens.into_iter().next(),
        _ => {
            let all = CancellationToken::new();
            let done = all.clone();
            tokio::spawn(async move {
                futures_util::future::join_all(tokens.iter().map(|t| t.cancelled())).await;
                done.cancel();
            });
            Some(all)
        }
    }
}
