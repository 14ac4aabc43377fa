//! Kubernetes vocabulary shared by every layer: name syntaxes, quantities,
//! `$(VAR)` expansion, namespace and `namespace/name` helpers, the QoS
//! class, probe settings, the lifecycle enums (restart and pull policy,
//! waiting and terminated reasons), label and field selectors and
//! kubectl-style printing. Pure: no IO, no clock reads, no Docker.

pub mod expand;
pub mod lifecycle;
pub mod meta;
pub mod names;
pub mod print;
pub mod probe;
pub mod qos;
pub mod quantity;
pub mod remotecommand;
pub mod selector;
pub mod taints;
