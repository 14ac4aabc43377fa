//! rkubelet: a standalone static-pod kubelet on Docker.
//!
//! Layout (data flows top to bottom):
//!
//! * [`cli`] — flags and sub-commands; [`config`] — the validated settings;
//!   [`app`] — wiring it all together; `main.rs` is a thin shell around it.
//! * [`node`] — this node: name, labels, architecture, capacity, host IP.
//! * [`k8s`] — pure Kubernetes vocabulary used by every layer.
//! * [`manifest`] — bytes to validated, identified, defaulted objects (pure).
//! * [`source`] — the manifest directory and URL producing complete
//!   snapshots; [`source::merge`] — the pure merger into desired pods.
//! * [`admission`] — the kubelet's admission predicates (pure).
//! * [`pod`] — the pure pod core: plan, status, spec-to-config conversion.
//! * [`worker`] — the shell: one task per pod executing plans, the manager,
//!   probers and hooks, volumes on the host, the status store.
//! * [`runtime`] — the container runtime trait, Docker (bollard) and a fake.
//! * [`pleg`] — the runtime's events stream, waking pod workers.
//! * [`backoff`] — restart backoff and retry curves as data; [`clock`] — the
//!   injected time source; [`events`] — the event record.
//! * [`api`] — the read-only local HTTP API ([`api::kube`]: discovery and
//!   Tables for kubectl).
//! * [`ctl`] — the client commands (`get`, `describe`, `logs`, `validate`).
//! * [`http_client`] — the shared HTTP client setup (rustls).

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod admission;
pub mod api;
pub mod app;
pub mod backoff;
pub mod cli;
pub mod clock;
pub mod config;
pub mod ctl;
pub mod events;
pub mod http_client;
pub mod k8s;
pub mod manifest;
pub mod node;
pub mod pleg;
pub mod pod;
pub mod runtime;
pub mod source;
pub mod worker;
