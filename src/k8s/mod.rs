//! Kubernetes vocabulary shared by every layer: quantities, `$(VAR)`
//! expansion and kubectl-style printing. Pure: no IO, no clock reads, no
//! Docker.

pub mod expand;
pub mod lifecycle;
pub mod print;
pub mod quantity;
