//! The imperative shell around the pure pod core: one task per pod, the
//! manager owning them, probers, the action runner hooks and probes share,
//! volumes on the host.

pub mod actions;
pub mod atomic_writer;
pub mod manager;
pub mod pod_worker;
pub mod prober;
pub mod store;
pub mod volumes;
