//! rkubelet: a standalone kubelet on Docker — Kubernetes Pods from a manifest
//! directory and a URL, no API server.
//!
//! # Layout
//!
//! The crate is a pure core wrapped in an imperative shell. Data flows top to
//! bottom; a module imports only from modules below it (and from [`k8s`]).
//!
//! * `main.rs`, [`app`] — flags to wiring: build everything, spawn it, drain.
//!   [`cli`] parses flags, [`config`] validates them, [`node`] is this node
//!   (name, labels, architecture, capacity, host IP, kernel and OS image).
//!   [`logging`] maps `--v` onto log filters (no secrets at any level);
//!   [`service`] talks to systemd (`READY=1`, `STATUS=`, the watchdog fed
//!   by the pod manager's heartbeat, `STOPPING=1`).
//! * [`metrics`] — Prometheus metrics (one process-wide set, recorded where
//!   things happen; state gauges computed at scrape time), the Docker-call
//!   timing wrapper and the cached stats behind `/stats/summary`.
//! * [`registry`] — registry credentials for pulls: `imagePullSecrets` and
//!   the node's Docker config, matched by registry host as the kubelet does.
//! * [`ctl`] — the client commands (`get`, `describe`, `logs`, `top`,
//!   `validate`, `completion`, and on the authenticated port `exec`,
//!   `attach`, `cp`, `port-forward`, `restart`); they speak to the API over
//!   HTTP(S) and WebSockets and share only [`k8s`] vocabulary (and
//!   [`api::spdy`]'s codec) with the daemon (`validate` reuses the daemon's
//!   file listing and merger).
//! * [`api`] — the HTTP APIs: the read-only port and the authenticated
//!   HTTPS port ([`api::secure`]: TLS, tokens, client certificates,
//!   kubeconfig) with exec/attach ([`api::stream`] over
//!   [`k8s::remotecommand`]), port-forward ([`api::portforward`] over
//!   [`api::spdy`]) and restart ([`api::lifecycle`]); routes, [`api::kube`] for
//!   Kubernetes discovery and server-side Tables, [`api::query`] for list
//!   options, [`api::watch`] for generic lists and watches, [`api::logs`]
//!   for the log options, [`api::apps`] for `/apis/apps/v1` (workloads),
//!   [`api::resources`] (pure builders and Tables of
//!   the node, namespaces, ConfigMaps and value-less Secrets) served by
//!   [`api::objects`].
//! * [`source`] — the manifest directory ([`source::file`]) and URL
//!   ([`source::url`]) producing complete snapshots; [`source::merge`] is the
//!   pure merger turning snapshots into the desired set.
//! * [`manifest`] — bytes to validated, identified, defaulted objects (pure).
//! * [`admission`] — the kubelet's admission predicates (pure).
//! * [`worker`] — THE SHELL: the [`worker::manager`] owning one task per pod
//!   ([`worker::pod_worker`]: one lifecycle enum, executing the planner's
//!   ordered batches), probers and hooks through one action runner
//!   ([`worker::actions`]), volumes on the host, the atomic writer, and the
//!   status store ([`worker::store`]).
//! * [`pod`] — THE PURE CORE: the planner ([`pod::plan`]), status
//!   ([`pod::status`]), spec to container config ([`pod::convert`]), the
//!   downward API, probe tracking, the ConfigMap/Secret set, volume payloads and
//!   the layout of `--root-dir/pods`. No tasks, no file system, no Docker, no
//!   clock reads: time comes in as an argument.
//! * [`workload`] — the workload controllers as pure functions: the
//!   ReplicaSet controller ([`workload::replicaset`]: pod names, scale-down
//!   order, counts) and the Deployment controller
//!   ([`workload::deployment`]: rolling update, Recreate, paused, status),
//!   the pods they make ([`workload::pods`]); run by
//!   [`worker::workloads`] between the merger and the manager.
//! * [`runtime`] — the container runtime trait; Docker (bollard), a fake for
//!   unit tests, container labels, the pause image, the runtime's health
//!   (outages, `/healthz`'s runtime check); [`startup`] — waiting for Docker
//!   at start.
//! * [`pleg`] — the runtime's events stream, waking pod workers;
//!   [`events`] — the bounded event record; [`watch`] — the versioned,
//!   watchable object store (one resourceVersion counter per node, a
//!   bounded history, broadcast to watchers); [`backoff`] — backoff and retry
//!   curves as data; [`clock`] — the injected time source (the system clock,
//!   or tokio's for paused-time tests); [`http_client`] — the shared HTTP
//!   client setup and URL/header checks.
//! * [`k8s`] — pure Kubernetes vocabulary used by everyone: names, quantities,
//!   `$(VAR)` expansion, namespace helpers, QoS, probe settings, lifecycle
//!   enums (restart policy, waiting and terminated reasons), label and
//!   field selectors, kubectl-style printing.
//!
//! # Where the next pieces go
//!
//! * **Workload controllers** (Deployment and ReplicaSet started in
//!   [`workload`]; DaemonSet, Job, CronJob to come): pure functions —
//!   (workload spec, observed pods with status, now) → pods to create, pods to
//!   delete, workload status. They sit between [`source::merge`] and
//!   [`worker::manager`]: the merger's desired workloads go in, desired pods
//!   come out, and the manager runs them like static pods. A thin executor in
//!   `worker/` feeds them pod status from the store.
//! * **More kinds in the API**: hold them in a [`watch::Store`] (drawing
//!   from the node's [`watch::Versions`]), implement [`watch::Object`] and
//!   [`k8s::selector::Selectable`], and route the collection and object to
//!   [`api::watch::list_or_watch`] and [`api::watch::get_one`] with an
//!   [`api::watch::Kind`] (resource name and Table printer).
//!
//! The purity of the core is checked by `scripts/check-pure` (run by
//! `scripts/test`): no `tokio::spawn`, `std::fs`, `bollard` or clock reads in
//! `pod/`, `k8s/`, `manifest/`, `workload/`, `admission.rs` and `source/merge.rs` outside
//! tests.

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
pub mod logging;
pub mod manifest;
pub mod memory;
pub mod metrics;
pub mod node;
pub mod pleg;
pub mod pod;
pub mod registry;
pub mod runtime;
pub mod service;
pub mod source;
pub mod startup;
pub mod watch;
pub mod worker;
pub mod workload;
