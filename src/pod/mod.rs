//! The pure pod core: what should happen to a pod, and what its status is.
//!
//! No tasks, no file system, no Docker, no clock reads — time and
//! observations come in as arguments, so every rule is unit-tested without
//! Docker or sleeping. The shell that executes it is [`crate::worker`].
//!
//! * [`plan`] — the planner: (pod, observed containers, backoff, failures,
//!   probe verdicts, start time, sandbox hold, now) → ordered batches of
//!   steps and when to look again; also the stop order and the postStart
//!   start batches.
//! * [`status`] — the Kubernetes `PodStatus` from spec + observations.
//! * [`observed`] — one index over observed containers (newest sandbox,
//!   newest instance of each container).
//! * [`convert`] — pod spec to runtime container configs, with the
//!   [`downward`] API values.
//! * [`probe`] — probe result tracking (thresholds, initial results).
//! * [`objects`] — the ConfigMaps and Secrets pods refer to, versioned.
//! * [`volumes`] — volume payloads (configMap, secret, downwardAPI,
//!   projected), the hosts file, volume plugin selection.
//! * [`layout`] — every path under `--root-dir/pods`.
//! * [`host_ports`] — which pods may bind their `hostPort`s, which wait
//!   `Pending` as the scheduler would leave them.

pub mod convert;
pub mod downward;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod host_ports;
pub mod layout;
pub mod objects;
pub mod observed;
pub mod plan;
pub mod probe;
pub mod status;
pub mod volumes;
