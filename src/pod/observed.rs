//! The containers observed for one pod, indexed by their labels.
//!
//! The planner, the status and the worker all ask the same questions of a
//! runtime listing — which instances does a container have, which is the
//! newest, which sandbox is current — and [`Observed`] answers them once:
//! labels are parsed a single time and "newest" means one thing everywhere
//! (highest restart count or attempt, then latest creation).

use crate::runtime::labels::ContainerMeta;
use crate::runtime::{ContainerInfo, ContainerState};

/// One observed container with its parsed labels.
#[derive(Debug, Clone)]
pub struct Seen<'a> {
    pub info: &'a ContainerInfo,
    pub meta: ContainerMeta,
}

impl Seen<'_> {
    pub fn id(&self) -> &str {
        &self.info.id
    }

    pub fn state(&self) -> ContainerState {
        self.info.state
    }

    pub fn is_running(&self) -> bool {
        self.info.is_running()
    }

    /// The key "newest" sorts by: restart count (attempt for sandboxes), then
    /// creation time.
    fn age_key(&self) -> (u32, Option<k8s_openapi::jiff::Timestamp>) {
        (self.meta.restart_count, self.info.created_at)
    }
}

/// A pod's observed containers (those carrying rkubelet's labels).
#[derive(Debug, Clone, Default)]
pub struct Observed<'a> {
    seen: Vec<Seen<'a>>,
}

impl<'a> Observed<'a> {
    /// Indexes `containers`; those without rkubelet's labels are left out.
    pub fn new(containers: &'a [ContainerInfo]) -> Self {
        let seen = containers
            .iter()
            .filter_map(|info| info.meta().map(|meta| Seen { info, meta }))
            .collect();
        Observed { seen }
    }

    /// Every indexed container, in listing order.
    pub fn iter(&self) -> impl Iterator<Item = &Seen<'a>> {
        self.seen.iter()
    }

    /// The sandboxes, in listing order.
    pub fn sandboxes(&self) -> impl Iterator<Item = &Seen<'a>> {
        self.seen.iter().filter(|s| s.meta.is_sandbox)
    }

    /// The app and init containers (not sandboxes), in listing order.
    pub fn containers(&self) -> impl Iterator<Item = &Seen<'a>> {
        self.seen.iter().filter(|s| !s.meta.is_sandbox)
    }

    /// The newest sandbox that was ever started (running or exited): the
    /// current one if it runs. A sandbox still in `created` (rkubelet killed
    /// between its create and start, or Docker's answer to the create lost)
    /// is never current: it is garbage, as the kubelet's non-ready sandboxes.
    pub fn newest_sandbox(&self) -> Option<&Seen<'a>> {
        self.sandboxes()
            .filter(|s| matches!(s.state(), ContainerState::Running | ContainerState::Exited))
            .max_by_key(|s| s.age_key())
    }

    /// The attempt number a new sandbox gets: one above every sandbox seen
    /// (never-started ones included, so names never collide).
    pub fn next_sandbox_attempt(&self) -> u32 {
        self.sandboxes()
            .map(|s| s.meta.restart_count + 1)
            .max()
            .unwrap_or(0)
    }

    /// The newest sandbox if it is running.
    pub fn running_sandbox(&self) -> Option<&Seen<'a>> {
        self.newest_sandbox().filter(|s| s.is_running())
    }

    /// The instances of container `name`, newest first.
    pub fn instances(&self, name: &str) -> Vec<&Seen<'a>> {
        let mut v: Vec<&Seen<'a>> = self
            .containers()
            .filter(|s| s.meta.container_name == name)
            .collect();
        v.sort_by_key(|s| std::cmp::Reverse(s.age_key()));
        v
    }

    /// The newest instance of container `name`.
    pub fn newest(&self, name: &str) -> Option<&Seen<'a>> {
        self.instances(name).into_iter().next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod::fixtures::{container, sandbox};
    use ContainerState::{Exited, Running};

    #[test]
    fn the_newest_instance_has_the_highest_restart_count() {
        let obs = [
            container("c1", "a", 1, "s", Exited, Some(1)),
            container("c2", "a", 2, "s", Running, None),
            container("c0", "a", 0, "s", Exited, Some(1)),
            container("b0", "b", 5, "s", Running, None),
        ];
        let o = Observed::new(&obs);
        let ids: Vec<&str> = o.instances("a").iter().map(|s| s.id()).collect();
        assert_eq!(ids, vec!["c2", "c1", "c0"]);
        assert_eq!(o.newest("b").map(|s| s.id()), Some("b0"));
        assert!(o.newest("nope").is_none());
    }

    #[test]
    fn the_newest_sandbox_is_the_highest_attempt_and_only_counts_when_running() {
        let obs = [
            sandbox("s0", 0, Running),
            sandbox("s1", 1, Exited),
            container("c", "a", 0, "s0", Running, None),
        ];
        let o = Observed::new(&obs);
        assert_eq!(o.newest_sandbox().map(|s| s.id()), Some("s1"));
        assert!(o.running_sandbox().is_none());
        assert_eq!(o.containers().count(), 1);
    }
}
