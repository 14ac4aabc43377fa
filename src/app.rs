//! The daemon, wired together.
//!
//! [`App::build`] binds the API, waits for Docker to answer
//! ([`startup`](crate::startup): one log line, a retry growing from 0.5 s to
//! 5 s, `/healthz` served meanwhile), then does everything that can fail for
//! a reason the user must fix (infra image unusable, API port taken) and
//! reports it as an [`AppError`] naming what to do. [`App::spawn`] starts the tasks —
//! file source, pod manager, event watcher, relist, API and the feed of its
//! object stores — and cannot fail.
//! Cancelling the shutdown token stops rkubelet and leaves pods running.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::api::{self, ApiState};
use crate::config::Config;
use crate::events::Recorder;
use crate::pleg::{self, Routes};
use crate::runtime::health::{self, Monitored, RuntimeHealth};
use crate::runtime::{ContainerRuntime, RuntimeError};
use crate::source::file::{self, FileSource};
use crate::source::url::{self as http_source, Fetcher, HttpSource};
use crate::source::Diagnostics;
use crate::worker::manager::Manager;
use crate::worker::pod_worker::WorkerContext;
use crate::worker::store::PodStore;

/// Why the daemon cannot start.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The container runtime is unreachable or unusable.
    #[error("{0}")]
    Runtime(#[from] RuntimeError),
    /// A local resource (root dir, listen address) is unusable.
    #[error("{0}")]
    Io(String),
}

/// A daemon ready to run.
pub struct App {
    config: Config,
    runtime: Arc<dyn ContainerRuntime>,
    listener: Option<TcpListener>,
    /// The authenticated port, unless `--port 0`.
    secure: Option<api::secure::SecurePort>,
    host_ip: String,
    /// The manifest URL's fetcher, when `--manifest-url` is set.
    fetcher: Option<Fetcher>,
    /// The runtime's version at start, for the node object.
    runtime_version: String,
    /// The runtime's reachability, fed by every call through `runtime`.
    health: Arc<RuntimeHealth>,
}

/// Binds the API's address (non-blocking, for tokio), when enabled.
fn bind_api(config: &Config) -> Result<Option<std::net::TcpListener>, AppError> {
    let Some(addr) = config.api_address else {
        return Ok(None);
    };
    let taken = |e: std::io::Error| {
        AppError::Io(format!(
            "cannot listen on {addr}: {e}; pick another --read-only-port (0 disables the API)"
        ))
    };
    let listener = std::net::TcpListener::bind(addr).map_err(taken)?;
    listener.set_nonblocking(true).map_err(taken)?;
    Ok(Some(listener))
}

impl App {
    /// Binds the API, connects to Docker (waiting for it, see
    /// [`startup`](crate::startup)), provisions the infra image and prepares
    /// the root dir. Fails with a message saying what to do.
    pub async fn build(config: Config) -> Result<App, AppError> {
        let health = RuntimeHealth::new();
        let listener = bind_api(&config)?;
        let docker =
            crate::startup::wait_for_docker(&config.docker_endpoint, &health, listener.as_ref())
                .await?;
        let runtime = Arc::new(crate::metrics::runtime::Metered::new(Arc::new(docker)));
        App::assemble(config, runtime, health, listener).await
    }

    /// Like [`App::build`] with a given runtime (which is wrapped to report
    /// its reachability).
    pub async fn with_runtime(
        config: Config,
        runtime: Arc<dyn ContainerRuntime>,
    ) -> Result<App, AppError> {
        let listener = bind_api(&config)?;
        App::assemble(config, runtime, RuntimeHealth::new(), listener).await
    }

    async fn assemble(
        config: Config,
        runtime: Arc<dyn ContainerRuntime>,
        health: Arc<RuntimeHealth>,
        listener: Option<std::net::TcpListener>,
    ) -> Result<App, AppError> {
        let runtime: Arc<dyn ContainerRuntime> = Arc::new(Monitored::new(runtime, health.clone()));
        let version = runtime.version().await?;
        health.set_version(&version);
        tracing::info!(runtime = %version, node = %config.node_name, "connected to the container runtime");
        runtime
            .ensure_infra_image(&config.infra_image)
            .await
            .map_err(|e| {
                AppError::Io(format!(
                    "cannot provide the pod infra image {:?}: {e}",
                    config.infra_image
                ))
            })?;
        std::fs::create_dir_all(crate::pod::layout::pods_dir(&config.root_dir)).map_err(|e| {
            AppError::Io(format!(
                "cannot create --root-dir {}: {e}",
                config.root_dir.display()
            ))
        })?;
        let listener = match listener {
            Some(l) => Some(
                TcpListener::from_std(l)
                    .map_err(|e| AppError::Io(format!("cannot serve the API: {e}")))?,
            ),
            None => None,
        };
        let secure = match &config.secure {
            Some(settings) => Some(
                api::secure::SecurePort::bind(settings, &config.root_dir, &config.node_name)
                    .await
                    .map_err(|e| AppError::Io(e.to_string()))?,
            ),
            None => None,
        };
        let fetcher = match &config.manifest_url {
            Some(url) => Some(
                Fetcher::new(url, &config.manifest_url_headers, config.http_timeout).map_err(
                    |e| {
                        let url = crate::manifest::redact_url(url);
                        AppError::Io(format!("--manifest-url {url}: {e}"))
                    },
                )?,
            ),
            None => None,
        };
        Ok(App {
            config,
            runtime,
            listener,
            secure,
            host_ip: crate::node::host_ip(),
            fetcher,
            runtime_version: version,
            health,
        })
    }

    /// The API's bound address, when enabled.
    pub fn api_address(&self) -> Option<SocketAddr> {
        self.listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The authenticated port's bound address, when enabled.
    pub fn secure_address(&self) -> Option<SocketAddr> {
        self.secure.as_ref().and_then(|s| s.local_addr())
    }

    /// Starts every task. They run until `shutdown` is cancelled; await the
    /// returned set to drain.
    pub fn spawn(self, shutdown: CancellationToken) -> JoinSet<()> {
        let mut tasks = JoinSet::new();
        crate::registry::set_node_credential_file(self.config.image_credential_file.clone());
        crate::registry::set_serialize_pulls(self.config.serialize_image_pulls);
        crate::registry::set_progress_period(self.config.image_pull_progress_period);
        let versions = Arc::new(crate::watch::Versions::default());
        let store = Arc::new(PodStore::new(versions.clone()));
        let diagnostics = Arc::new(RwLock::new(Diagnostics::default()));
        let routes = Arc::new(Routes::default());
        let recorder = Arc::new(Recorder::with_versions(
            &self.config.node_name,
            versions.clone(),
        ));
        let objects = crate::pod::objects::ObjectStore::default();
        let ctx = Arc::new(WorkerContext {
            runtime: self.runtime.clone(),
            node_name: self.config.node_name.clone(),
            infra_image: self.config.infra_image.clone(),
            root_dir: self.config.root_dir.clone(),
            backoff: self.config.backoff,
            host_ip: self.host_ip.clone(),
            store: store.clone(),
            objects: objects.clone(),
            recorder: recorder.clone(),
            start_slots: Arc::new(tokio::sync::Semaphore::new(self.config.max_parallel_starts)),
            teardown_slots: Arc::new(tokio::sync::Semaphore::new(
                self.config.max_parallel_teardowns,
            )),
            clock: Arc::new(crate::clock::SystemClock),
            health: self.health.clone(),
        });

        // Subscribe to events before anything creates containers.
        tasks.spawn(pleg::watch_events(
            self.runtime.clone(),
            routes.clone(),
            self.health.clone(),
            shutdown.clone(),
        ));
        tasks.spawn(pleg::relist(
            self.runtime.clone(),
            routes.clone(),
            self.health.clone(),
            self.config.relist_period,
            shutdown.clone(),
        ));

        tasks.spawn(health::probe_while_down(
            self.runtime.clone(),
            self.health.clone(),
            shutdown.clone(),
        ));

        let (tx, rx) = mpsc::channel(16);
        let source = FileSource::new(
            self.config.manifest_dir.clone(),
            self.config.node_name.clone(),
            self.config.file_check_frequency,
        );
        tasks.spawn(source.run(tx.clone(), shutdown.clone()));
        // Source order is priority on name conflicts: files, then the URL.
        let mut sources = vec![file::SOURCE_NAME.to_string()];
        if let Some(fetcher) = self.fetcher {
            tracing::info!(url = %fetcher.url(), every = ?self.config.http_check_frequency,
                "fetching manifests from a URL");
            let source = HttpSource::new(
                fetcher,
                &self.config.node_name,
                self.config.http_check_frequency,
            )
            .with_recorder(recorder.clone());
            tasks.spawn(source.run(tx, shutdown.clone()));
            sources.push(http_source::SOURCE_NAME.to_string());
        }
        tracing::info!(labels = ?self.config.node_labels, "node labels");
        let health = crate::service::Health::new();
        let workloads = Arc::new(crate::worker::workloads::WorkloadObjects::new(
            versions.clone(),
        ));
        let manager = Manager::new(ctx, sources, routes, diagnostics.clone())
            .with_node(self.config.node())
            .with_health(health.clone())
            .with_max_pods(self.config.max_pods)
            .with_workload_objects(workloads.clone());
        tasks.spawn(manager.run(rx, shutdown.clone()));
        tasks.spawn(crate::service::run(health, store.clone(), shutdown.clone()));
        tasks.spawn(crate::metrics::feed(store.clone(), shutdown.clone()));

        if self.listener.is_some() || self.secure.is_some() {
            let state = ApiState {
                store,
                diagnostics,
                recorder,
                runtime: self.runtime.clone(),
                health: self.health.clone(),
                shutdown: shutdown.clone(),
                objects,
                node: Arc::new(api::objects::NodeView {
                    info: self.config.node(),
                    host_ip: self.host_ip.clone(),
                    max_pods: self.config.max_pods,
                    started: k8s_openapi::jiff::Timestamp::now(),
                }),
                served: Arc::new(api::objects::Stores::new(versions)),
                stats: Arc::new(crate::metrics::stats::StatsCache::new(self.runtime.clone())),
                workloads,
            };
            api::objects::sync(&state, self.runtime_version);
            tasks.spawn(api::objects::feed(state.clone()));
            if let Some(secure) = self.secure {
                let app = api::authenticated_router(state.clone());
                tasks.spawn(secure.serve(app, shutdown.clone()));
            }
            if let Some(listener) = self.listener {
                let app = api::router(state, self.config.read_only_port_logs);
                let stop = shutdown.clone();
                tasks.spawn(async move {
                    let serve = axum::serve(listener, app)
                        .with_graceful_shutdown(async move { stop.cancelled().await });
                    if let Err(e) = serve.await {
                        tracing::error!(error = %e, "API server failed");
                    }
                });
            }
        }
        tasks
    }
}
