//! Pods: desired state, planning and the per-pod workers.
pub mod convert;
pub mod expand;
pub mod quantity;
