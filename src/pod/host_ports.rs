//! Host ports on one node: which pods may start, which must wait.
//!
//! A node can bind each `hostPort` once per protocol and address, so the
//! Kubernetes scheduler (its `NodePorts` filter) never puts two pods whose
//! host ports overlap on one node; the second one stays `Pending` with
//! `PodScheduled=False`, reason `Unschedulable`. rkubelet is the only
//! "scheduler" of its node, so it does the same instead of letting Docker
//! fail the second sandbox forever.
//!
//! Owns the port sets of a pod ([`HostPort::of`]), the overlap rule (same
//! protocol and port; addresses overlap when equal or either is the wildcard
//! `0.0.0.0`), the allocation of a batch of new pods against the ports
//! already held ([`allocate`]) and the `Pending` status of a waiting pod
//! ([`unschedulable_status`]). Pure: it does not know which pods run (the
//! pod manager tells it).

use k8s_openapi::api::core::v1::{Pod, PodCondition, PodStatus};

/// The condition reason the scheduler gives a pod no node can take.
pub const REASON_UNSCHEDULABLE: &str = "Unschedulable";
/// The scheduler's event reason for it.
pub const EVENT_FAILED_SCHEDULING: &str = "FailedScheduling";
/// The scheduler's message for a port conflict on a one-node cluster (its
/// `NodePorts` filter's reason, prefixed with the node count).
pub const MESSAGE_NO_FREE_PORTS: &str =
    "0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod ports.";
/// The scheduler's message when the node already runs its `--max-pods`
/// (its `NodeResourcesFit` filter's reason for the `pods` resource).
pub const MESSAGE_TOO_MANY_PODS: &str = "0/1 nodes are available: 1 Too many pods.";

/// The wildcard address a `hostPort` without `hostIP` binds.
const ANY_IP: &str = "0.0.0.0";

/// One bound host port: protocol, address and port number.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct HostPort {
    pub protocol: String,
    pub ip: String,
    pub port: i32,
}

impl HostPort {
    /// The host ports a pod binds: every non-zero `hostPort` of its
    /// containers and of its sidecars (init containers with
    /// `restartPolicy: Always`, which run alongside them), with the
    /// protocol defaulted to TCP and the address to `0.0.0.0`. With
    /// `hostNetwork` the defaulting already set `hostPort` = `containerPort`.
    pub fn of(pod: &Pod) -> Vec<HostPort> {
        let Some(spec) = pod.spec.as_ref() else {
            return Vec::new();
        };
        let sidecars = (spec.init_containers.iter().flatten())
            .filter(|c| c.restart_policy.as_deref() == Some("Always"));
        let mut ports: Vec<HostPort> = (spec.containers.iter().chain(sidecars))
            .flat_map(|c| c.ports.iter().flatten())
            .filter_map(|p| {
                let port = p.host_port.filter(|&h| h > 0)?;
                Some(HostPort {
                    protocol: p
                        .protocol
                        .clone()
                        .filter(|s| !s.is_empty())
                        .unwrap_or_else(|| "TCP".to_string()),
                    ip: p
                        .host_ip
                        .clone()
                        .filter(|s| !s.is_empty())
                        .unwrap_or_else(|| ANY_IP.to_string()),
                    port,
                })
            })
            .collect();
        ports.sort();
        ports.dedup();
        ports
    }

    /// Do two bindings compete for the same socket?
    pub fn overlaps(&self, other: &HostPort) -> bool {
        self.port == other.port
            && self.protocol == other.protocol
            && (self.ip == other.ip || self.ip == ANY_IP || other.ip == ANY_IP)
    }
}

/// Does any port of `a` overlap any port of `b`?
pub fn conflict(a: &[HostPort], b: &[HostPort]) -> bool {
    a.iter().any(|x| b.iter().any(|y| x.overlaps(y)))
}

/// What [`allocate`] decides for one candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allocation<K> {
    /// Its ports are free (or it has none): it may start.
    Free,
    /// Its ports are held by these holders, all of them on their way out
    /// (terminating): it may start once they are gone.
    After(Vec<K>),
    /// It stays `Pending`, for this reason.
    Wait(Wait),
}

/// Why a candidate stays `Pending`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// A holder that stays (or a candidate allocated before it) has one of
    /// its host ports.
    Ports,
    /// The node already runs `--max-pods` pods.
    TooManyPods,
}

impl Wait {
    /// The scheduler's message.
    pub fn message(self) -> &'static str {
        match self {
            Wait::Ports => MESSAGE_NO_FREE_PORTS,
            Wait::TooManyPods => MESSAGE_TOO_MANY_PODS,
        }
    }
}

/// A pod that holds host ports now.
#[derive(Debug, Clone)]
pub struct Holder<K> {
    pub key: K,
    pub ports: Vec<HostPort>,
    /// Being terminated: its ports free up once it is gone.
    pub leaving: bool,
}

/// Decides, for each candidate in order (the caller's priority: pods that
/// already run first, then the oldest), whether it may start: its host
/// ports must not overlap those of a staying holder or of an earlier
/// candidate that was given them, and at most `room` candidates start (the
/// node's `--max-pods` less the pods that stay). Overlapping only leaving
/// holders means it starts after them.
pub fn allocate<K: Clone>(
    holders: &[Holder<K>],
    candidates: &[(K, Vec<HostPort>)],
    mut room: usize,
) -> Vec<Allocation<K>> {
    let mut taken: Vec<&[HostPort]> = Vec::new();
    let mut out = Vec::with_capacity(candidates.len());
    for (_, ports) in candidates {
        let clashing: Vec<&Holder<K>> = holders
            .iter()
            .filter(|h| conflict(&h.ports, ports))
            .collect();
        let allocation =
            if clashing.iter().any(|h| !h.leaving) || taken.iter().any(|t| conflict(t, ports)) {
                Allocation::Wait(Wait::Ports)
            } else if room == 0 {
                Allocation::Wait(Wait::TooManyPods)
            } else if clashing.is_empty() {
                Allocation::Free
            } else {
                Allocation::After(clashing.iter().map(|h| h.key.clone()).collect())
            };
        if !matches!(allocation, Allocation::Wait(_)) {
            taken.push(ports);
            room -= 1;
        }
        out.push(allocation);
    }
    out
}

/// The status of a pod waiting for a host port or for room: `Pending` with
/// `PodScheduled=False`, reason `Unschedulable` and the scheduler's
/// message, as a pod no node has room for. `now` is the transition time.
pub fn unschedulable_status(pod: &Pod, why: Wait, now: k8s_openapi::jiff::Timestamp) -> PodStatus {
    pending_status(pod, why.message(), now)
}

/// `Pending` with `PodScheduled=False`, reason `Unschedulable` and the
/// scheduler's `message`; `now` is the transition time.
pub fn pending_status(pod: &Pod, message: &str, now: k8s_openapi::jiff::Timestamp) -> PodStatus {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    PodStatus {
        phase: Some("Pending".into()),
        conditions: Some(vec![PodCondition {
            type_: "PodScheduled".into(),
            status: "False".into(),
            reason: Some(REASON_UNSCHEDULABLE.into()),
            message: Some(message.into()),
            last_transition_time: Some(Time(now)),
            ..Default::default()
        }]),
        qos_class: Some(crate::k8s::qos::qos_class(pod).to_string()),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(yaml: &str) -> Pod {
        serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("{e}"))
    }

    fn hp(protocol: &str, ip: &str, port: i32) -> HostPort {
        HostPort {
            protocol: protocol.into(),
            ip: ip.into(),
            port,
        }
    }

    #[test]
    fn a_pods_host_ports_come_from_containers_and_sidecars_with_defaults() {
        let p = pod(r#"
spec:
  initContainers:
  - {name: init, image: i, ports: [{containerPort: 1, hostPort: 7001}]}
  - {name: side, image: i, restartPolicy: Always, ports: [{containerPort: 2, hostPort: 7002, protocol: UDP}]}
  containers:
  - name: a
    image: i
    ports:
    - {containerPort: 80}
    - {containerPort: 81, hostPort: 8081, hostIP: 127.0.0.1}
    - {containerPort: 82, hostPort: 0}
  - {name: b, image: i, ports: [{containerPort: 83, hostPort: 8083, protocol: SCTP}]}
"#);
        assert_eq!(
            HostPort::of(&p),
            [
                hp("SCTP", "0.0.0.0", 8083),
                hp("TCP", "127.0.0.1", 8081),
                hp("UDP", "0.0.0.0", 7002),
            ]
        );
        assert!(HostPort::of(&Pod::default()).is_empty());
    }

    #[test]
    fn ports_overlap_on_the_same_protocol_and_port_when_an_address_is_shared_or_wildcard() {
        let any = hp("TCP", "0.0.0.0", 80);
        let lo = hp("TCP", "127.0.0.1", 80);
        assert!(any.overlaps(&lo) && lo.overlaps(&any));
        assert!(lo.overlaps(&lo));
        assert!(!lo.overlaps(&hp("TCP", "10.0.0.1", 80)));
        assert!(!any.overlaps(&hp("UDP", "0.0.0.0", 80)));
        assert!(!any.overlaps(&hp("TCP", "0.0.0.0", 81)));
        assert!(conflict(&[hp("UDP", "0.0.0.0", 53), any.clone()], &[lo]));
        assert!(!conflict(&[], &[any]));
    }

    fn holder(key: &str, port: i32, leaving: bool) -> Holder<String> {
        Holder {
            key: key.into(),
            ports: vec![hp("TCP", "0.0.0.0", port)],
            leaving,
        }
    }

    fn cand(key: &str, ports: &[i32]) -> (String, Vec<HostPort>) {
        (
            key.into(),
            ports.iter().map(|&p| hp("TCP", "0.0.0.0", p)).collect(),
        )
    }

    #[test]
    fn the_first_candidate_gets_a_free_port_and_the_next_one_waits() {
        let got = allocate(
            &[],
            &[cand("a", &[80]), cand("b", &[80]), cand("c", &[81])],
            10,
        );
        assert_eq!(
            got,
            [
                Allocation::Free,
                Allocation::Wait(Wait::Ports),
                Allocation::Free
            ]
        );
    }

    #[test]
    fn a_port_held_by_a_staying_pod_makes_the_candidate_wait() {
        let got = allocate(
            &[holder("old", 80, false), holder("gone", 81, true)],
            &[
                cand("a", &[80, 81]),
                cand("b", &[81]),
                cand("c", &[]),
                cand("d", &[82]),
            ],
            10,
        );
        assert_eq!(
            got,
            [
                Allocation::Wait(Wait::Ports),
                Allocation::After(vec!["gone".to_string()]),
                Allocation::Free,
                Allocation::Free,
            ]
        );
    }

    #[test]
    fn a_port_held_only_by_leaving_pods_is_taken_after_them_by_the_first_candidate_alone() {
        let got = allocate(
            &[holder("x", 80, true), holder("y", 81, true)],
            &[cand("a", &[80, 81]), cand("b", &[81])],
            10,
        );
        assert_eq!(
            got,
            [
                Allocation::After(vec!["x".to_string(), "y".to_string()]),
                Allocation::Wait(Wait::Ports),
            ]
        );
    }

    #[test]
    fn candidates_beyond_the_room_left_wait_and_a_waiting_one_takes_no_room() {
        let got = allocate(
            &[],
            &[
                cand("a", &[80]),
                cand("b", &[80]),
                cand("c", &[]),
                cand("d", &[81]),
            ],
            2,
        );
        assert_eq!(
            got,
            [
                Allocation::Free,
                Allocation::Wait(Wait::Ports),
                Allocation::Free,
                Allocation::Wait(Wait::TooManyPods),
            ]
        );
        assert_eq!(
            allocate(&[], &[cand("a", &[])], 0),
            [Allocation::Wait(Wait::TooManyPods)]
        );
    }

    #[test]
    fn a_waiting_pod_is_pending_and_unschedulable_with_the_schedulers_message() {
        let epoch = k8s_openapi::jiff::Timestamp::UNIX_EPOCH;
        let s = unschedulable_status(&Pod::default(), Wait::Ports, epoch);
        assert_eq!(s.phase.as_deref(), Some("Pending"));
        let c = &s.conditions.as_ref().expect("conditions")[0];
        assert_eq!(
            (c.type_.as_str(), c.status.as_str(), c.reason.as_deref()),
            ("PodScheduled", "False", Some("Unschedulable"))
        );
        assert_eq!(
            c.message.as_deref(),
            Some("0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod ports.")
        );
        assert_eq!(s.qos_class.as_deref(), Some("BestEffort"));
        let s = unschedulable_status(&Pod::default(), Wait::TooManyPods, epoch);
        let c = &s.conditions.as_ref().expect("conditions")[0];
        assert_eq!(
            c.message.as_deref(),
            Some("0/1 nodes are available: 1 Too many pods.")
        );
    }
}
