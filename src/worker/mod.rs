//! The imperative shell around the pure pod core ([`crate::pod`]).
//!
//! * [`manager`] — owns one worker per pod UID: starts, replaces and
//!   terminates them as the desired set changes, sweeps orphans, routes
//!   runtime events.
//! * [`pod_worker`] — one task per pod: a lifecycle enum, observe → plan →
//!   execute the plan's ordered batches; termination.
//! * [`prober`] — one task per container probe; [`actions`] — the one runner
//!   of exec / httpGet / tcpSocket / grpc / sleep actions for hooks and probes;
//!   [`probe_http`] — a probe's plain-HTTP request, without an HTTP client.
//! * [`volumes`] — volumes on the host (mounts, writes, teardown, size
//!   limits), with the [`atomic_writer`] for API-data volumes.
//! * [`store`] — the status store the API reads.
//! * [`host_ports`] — the gate holding back pods whose host port is taken.
//! * [`workloads`] — runs the workload controllers: Deployments and
//!   ReplicaSets to pods of the desired set; [`workload_records`] — the
//!   small file of what they must know after a restart; [`jobs`] — Jobs to
//!   pods, with their durable records.

pub mod actions;
pub mod atomic_writer;
pub mod cronjobs;
pub mod host_ports;
pub mod jobs;
pub mod manager;
pub mod pod_worker;
pub mod probe_http;
pub mod prober;
pub mod store;
pub mod volumes;
pub mod workload_records;
pub mod workloads;
