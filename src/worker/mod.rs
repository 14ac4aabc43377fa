//! The imperative shell around the pure pod core: one task per pod, the
//! manager owning them, probers and hooks, volumes on the host.

pub mod atomic_writer;
pub mod hooks;
pub mod manager;
pub mod pod_worker;
pub mod prober;
pub mod store;
pub mod volumes;
