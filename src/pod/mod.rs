//! Pods: desired state to running containers.
//!
//! * [`convert`] — Pod spec to runtime configs (pure), with [`expand`]
//!   (`$(VAR)` references) and [`quantity`] (resource quantities).
//! * [`plan`] — what to do now (pure).
//! * [`worker`] — one task per pod UID executing plans.
//! * [`manager`] — owns the workers: starts, replaces and terminates them as
//!   the desired set changes, cleans up orphans, routes runtime events.
//! * [`status`] — Kubernetes `PodStatus` from spec + observations (pure).
//! * [`objects`] — the shared, versioned ConfigMaps and Secrets.
//! * [`volumes`] — volume setup, refresh and teardown on the host, with the
//!   [`atomic_writer`] for API-data volumes; [`downward`] — downward API
//!   values (pure).

pub mod atomic_writer;
pub mod convert;
pub mod downward;
pub mod expand;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod handlers;
pub mod manager;
pub mod objects;
pub mod plan;
pub mod probe;
pub mod prober;
pub mod quantity;
pub mod status;
pub mod volumes;
pub mod worker;
