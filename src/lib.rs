//! rkubelet: a standalone static-pod kubelet on Docker.
//!
//! Layout (data flows top to bottom):
//!
//! * [`cli`] — flags and sub-commands; [`config`] — the validated settings.
//! * [`ctl`] — the client commands (`get`, `describe`, `logs`) over the API.
//! * [`manifest`] — bytes to validated, identified, defaulted `Pod`s,
//!   `ConfigMap`s and `Secret`s.
//! * [`source`] — the manifest directory (inotify + rescan) and the manifest
//!   URL (polling, ETag) producing complete snapshots, and the merger turning
//!   snapshots into desired pods and objects.
//! * [`admission`] — node labels and the kubelet's admission predicates
//!   (nodeName, nodeSelector, required node affinity).
//! * [`pod`] — desired state per pod: spec-to-config conversion, the pure
//!   planner, the per-pod worker executing plans, the manager owning workers,
//!   volumes on the host and the shared ConfigMap/Secret store.
//! * [`runtime`] — the container runtime trait, Docker (bollard) and a fake.
//! * [`pleg`] — the runtime's events stream, waking pod workers.
//! * [`backoff`] — restart backoff as data.
//! * [`events`] — the bounded, deduplicated pod event record.
//! * [`kubeapi`] — discovery, Tables and field selectors for real kubectl.
//! * [`api`] — the read-only local HTTP API.
//! * [`http`] — the shared HTTP client setup (rustls).
//! * [`app`] — wiring it all together; `main.rs` is a thin shell around it.
//! * [`validate_cmd`] — `rkubelet validate`: parse, validate and admit
//!   manifests without running anything.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod admission;
pub mod api;
pub mod app;
pub mod backoff;
pub mod cli;
pub mod config;
pub mod ctl;
pub mod events;
pub mod http;
pub mod kubeapi;
pub mod manifest;
pub mod pleg;
pub mod pod;
pub mod runtime;
pub mod source;
pub mod validate_cmd;
