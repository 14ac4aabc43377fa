//! An in-memory [`ContainerRuntime`] for unit tests of pod logic.
//!
//! Containers are records in a map; "processes" never run: a started
//! container stays running until a test calls [`FakeRuntime::exit`] or stops
//! it. Every mutating call is recorded ([`FakeRuntime::calls`]) so tests can
//! assert what a worker did and in which order. Events are broadcast like
//! Docker's. [`FakeRuntime::set_unavailable`] simulates a daemon that went away.
//! Times (`createdAt`, `finishedAt`, event times) come from a [`Clock`]: the
//! system's by default, tokio's paused time with [`FakeRuntime::with_clock`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::stream::{self, BoxStream, StreamExt};
use tokio::sync::broadcast;

use super::labels;
use super::{
    ContainerConfig, ContainerInfo, ContainerRuntime, ContainerState, ExecResult, ImageInfo,
    LogOptions, Result, RuntimeError, RuntimeEvent, SandboxConfig,
};
use crate::clock::{Clock, SystemClock};

#[derive(Debug, Default)]
struct State {
    containers: BTreeMap<String, ContainerInfo>,
    images: BTreeSet<String>,
    next_id: u64,
    calls: Vec<String>,
    lists: usize,
    stops: Vec<(ContainerInfo, Duration)>,
    unavailable: bool,
    stop_delay: Duration,
    start_delay: Duration,
    starts_in_flight: usize,
    max_starts_in_flight: usize,
}

/// The fake runtime.
#[derive(Debug)]
pub struct FakeRuntime {
    state: Mutex<State>,
    events: Mutex<broadcast::Sender<RuntimeEvent>>,
    clock: Arc<dyn Clock>,
}

impl Default for FakeRuntime {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeRuntime {
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }

    /// A fake whose times come from `clock`.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        FakeRuntime {
            state: Mutex::new(State::default()),
            events: Mutex::new(broadcast::channel(1024).0),
            clock,
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut guard = match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }

    fn check(&self) -> Result<()> {
        if self.with(|s| s.unavailable) {
            return Err(RuntimeError::Unavailable("fake daemon is down".into()));
        }
        Ok(())
    }

    fn sender(&self) -> broadcast::Sender<RuntimeEvent> {
        match self.events.lock() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Ends every open events stream, as a daemon restart does.
    pub fn break_event_streams(&self) {
        if let Ok(mut g) = self.events.lock() {
            *g = broadcast::channel(1024).0;
        }
    }

    fn emit(&self, c: &ContainerInfo, action: &str) {
        let _ = self.sender().send(RuntimeEvent {
            container_id: c.id.clone(),
            pod_uid: c.labels.get(labels::POD_UID).cloned(),
            action: action.into(),
            exit_code: c.exit_code,
            time_nanos: self.clock.now().as_nanosecond() as i64,
        });
    }

    /// Makes an image present.
    pub fn add_image(&self, image: &str) {
        self.with(|s| s.images.insert(image.to_string()));
    }

    /// Every mutating call so far, like `create k8s_web_…` or `stop <id>`.
    pub fn calls(&self) -> Vec<String> {
        self.with(|s| s.calls.clone())
    }

    /// How many full listings (`list_containers`) were made so far.
    pub fn lists(&self) -> usize {
        self.with(|s| s.lists)
    }

    /// Every stop of a running container so far: the container as it was
    /// and the grace period it was given.
    pub fn stops(&self) -> Vec<(ContainerInfo, Duration)> {
        self.with(|s| s.stops.clone())
    }

    /// All containers.
    pub fn containers(&self) -> Vec<ContainerInfo> {
        self.with(|s| s.containers.values().cloned().collect())
    }

    /// Simulates the process of container `id` exiting with `code`.
    pub fn exit(&self, id: &str, code: i64) {
        let now = self.clock.now();
        let c = self.with(|s| {
            let c = s.containers.get_mut(id)?;
            c.state = ContainerState::Exited;
            c.exit_code = Some(code);
            c.finished_at = Some(now);
            Some(c.clone())
        });
        if let Some(c) = c {
            self.emit(&c, "die");
        }
    }

    /// Makes every stop of a running container take `delay` (a process that
    /// takes its grace period to exit).
    pub fn set_stop_delay(&self, delay: Duration) {
        self.with(|s| s.stop_delay = delay);
    }

    /// Makes every start take `delay` (Docker's starts take ~0.2–0.3 s).
    pub fn set_start_delay(&self, delay: Duration) {
        self.with(|s| s.start_delay = delay);
    }

    /// The most starts that were in flight at once so far.
    pub fn max_starts_in_flight(&self) -> usize {
        self.with(|s| s.max_starts_in_flight)
    }

    /// Simulates the daemon going away (every call fails) or coming back.
    pub fn set_unavailable(&self, down: bool) {
        self.with(|s| s.unavailable = down);
    }

    fn insert(
        &self,
        name: &str,
        image: &str,
        labels: BTreeMap<String, String>,
        ip: Option<String>,
    ) -> String {
        let now = self.clock.now();
        let info = self.with(|s| {
            s.next_id += 1;
            let id = format!("{:064x}", s.next_id);
            s.calls.push(format!("create {name}"));
            let info = ContainerInfo {
                id: id.clone(),
                name: name.to_string(),
                labels,
                image: image.to_string(),
                image_id: format!("sha256:{image}"),
                state: ContainerState::Created,
                exit_code: None,
                oom_killed: false,
                error: None,
                created_at: Some(now),
                started_at: None,
                finished_at: None,
                ip,
            };
            s.containers.insert(id, info.clone());
            info
        });
        self.emit(&info, "create");
        info.id
    }
}

#[async_trait]
impl ContainerRuntime for FakeRuntime {
    async fn version(&self) -> Result<String> {
        self.check()?;
        Ok("fake://1.0".into())
    }

    async fn list_containers(&self, pod_uid: Option<&str>) -> Result<Vec<ContainerInfo>> {
        self.check()?;
        Ok(self.with(|s| {
            s.lists += 1;
            s.containers
                .values()
                .filter(|c| c.labels.get(labels::MANAGED).map(String::as_str) == Some("true"))
                .filter(|c| {
                    pod_uid.is_none()
                        || c.labels.get(labels::POD_UID).map(String::as_str) == pod_uid
                })
                .cloned()
                .collect()
        }))
    }

    async fn inspect_container(&self, id: &str) -> Result<Option<ContainerInfo>> {
        self.check()?;
        Ok(self.with(|s| s.containers.get(id).cloned()))
    }

    async fn inspect_image(&self, image: &str) -> Result<Option<ImageInfo>> {
        self.check()?;
        Ok(self.with(|s| s.images.contains(image)).then(|| ImageInfo {
            id: format!("sha256:{image}"),
            repo_tags: vec![image.to_string()],
            repo_digests: vec![],
        }))
    }

    async fn pull_image_with_auth(
        &self,
        image: &str,
        _auth: Option<&crate::registry::RegistryAuth>,
        _progress: &super::PullProgressFn<'_>,
    ) -> Result<ImageInfo> {
        self.pull_image(image).await
    }

    async fn stats(&self, id: &str) -> Result<super::ContainerStats> {
        self.check()?;
        Err(RuntimeError::NotFound(format!(
            "stats of container {id} (the fake has none)"
        )))
    }

    async fn pull_image(&self, image: &str) -> Result<ImageInfo> {
        self.check()?;
        self.with(|s| s.calls.push(format!("pull {image}")));
        Err(RuntimeError::ImagePull {
            image: image.into(),
            reason: "no registry in the fake".into(),
        })
    }

    async fn ensure_infra_image(&self, image: &str) -> Result<ImageInfo> {
        self.check()?;
        self.add_image(image);
        Ok(ImageInfo {
            id: format!("sha256:{image}"),
            ..Default::default()
        })
    }

    async fn run_sandbox(&self, config: &SandboxConfig) -> Result<String> {
        self.check()?;
        let ip = (!config.host_network).then(|| "10.0.0.2".to_string());
        let id = self.insert(&config.name, &config.image, config.labels.clone(), ip);
        self.start_container(&id).await?;
        Ok(id)
    }

    async fn create_container(&self, config: &ContainerConfig) -> Result<String> {
        self.check()?;
        if !self.with(|s| s.images.contains(&config.image)) {
            return Err(RuntimeError::NotFound(format!("image {}", config.image)));
        }
        Ok(self.insert(&config.name, &config.image, config.labels.clone(), None))
    }

    async fn start_container(&self, id: &str) -> Result<()> {
        self.check()?;
        let delay = self.with(|s| {
            s.starts_in_flight += 1;
            s.max_starts_in_flight = s.max_starts_in_flight.max(s.starts_in_flight);
            s.start_delay
        });
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        self.with(|s| s.starts_in_flight -= 1);
        let now = self.clock.now();
        let c = self.with(|s| {
            s.calls.push(format!("start {id}"));
            let c = s.containers.get_mut(id)?;
            c.state = ContainerState::Running;
            c.started_at = Some(now);
            Some(c.clone())
        });
        match c {
            Some(c) => {
                self.emit(&c, "start");
                Ok(())
            }
            None => Err(RuntimeError::NotFound(format!("container {id}"))),
        }
    }

    async fn stop_container(&self, id: &str, grace: Duration) -> Result<()> {
        self.check()?;
        let (running, delay) = self.with(|s| {
            s.calls.push(format!("stop {id}"));
            let running = s.containers.get(id).filter(|c| c.is_running()).cloned();
            if let Some(c) = &running {
                s.stops.push((c.clone(), grace));
            }
            (running.is_some(), s.stop_delay)
        });
        if running {
            tokio::time::sleep(delay).await;
            self.exit(id, 0);
        }
        Ok(())
    }

    async fn remove_container(&self, id: &str) -> Result<()> {
        self.check()?;
        let c = self.with(|s| {
            s.calls.push(format!("remove {id}"));
            s.containers.remove(id)
        });
        if let Some(c) = c {
            self.emit(&c, "destroy");
        }
        Ok(())
    }

    async fn exec(&self, id: &str, cmd: &[String], _timeout: Duration) -> Result<ExecResult> {
        self.check()?;
        let running = self.with(|s| {
            s.calls.push(format!("exec {id} {}", cmd.join(" ")));
            s.containers.get(id).is_some_and(|c| c.is_running())
        });
        if !running {
            return Err(RuntimeError::Other(format!(
                "container {id} is not running"
            )));
        }
        // `false` fails, everything else succeeds and echoes its command.
        let code = i64::from(cmd.first().map(String::as_str) == Some("false"));
        Ok(ExecResult {
            exit_code: Some(code),
            output: cmd.join(" "),
            timed_out: false,
        })
    }

    fn logs(&self, id: &str, _options: LogOptions) -> BoxStream<'static, Result<bytes::Bytes>> {
        let line = bytes::Bytes::from(format!("logs of {id}\n"));
        stream::once(async move { Ok(line) }).boxed()
    }

    fn events(&self, since_nanos: Option<i64>) -> BoxStream<'static, Result<RuntimeEvent>> {
        self.with(|s| s.calls.push(format!("events since={since_nanos:?}")));
        let rx = self.sender().subscribe();
        stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(ev) => return Some((Ok(ev), rx)),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
        .boxed()
    }
}
