//! The versioned, watchable object store behind the API's lists and watches.
//!
//! One [`Versions`] counter per node hands out `resourceVersion`s; every
//! [`Store`] (pods, events, and any kind added later) draws from it, so a
//! resourceVersion orders changes across kinds as the API server's does.
//! A store keeps the latest object of each key (the caller's choice: pods
//! by UID, events by `namespace/name`), stamps `metadata.resourceVersion` on
//! every change, keeps the last [`HISTORY`] changes for resuming a watch, and
//! pushes each change to its watchers through a `tokio::sync::broadcast`
//! ring of [`WATCH_BUFFER`] changes: writers never wait for readers. A
//! watcher that falls more than that behind is ended (as the API server ends
//! a slow watcher) and re-watches from its last resourceVersion, or relists
//! after `410 Gone` when that has left the history.
//!
//! Writing an object equal to the stored one (ignoring its resourceVersion)
//! is not a change: workers republish often and watchers see only real
//! changes. Memory is bounded by the objects, [`HISTORY`] changes (each
//! holding the new and the previous object, shared by `Arc`) and the
//! broadcast ring.
//!
//! It does not parse queries, filter or print: `api/` does, with
//! [`crate::k8s::selector`].

use std::cmp::Ordering;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{ConfigMap, Event, Namespace, Node, Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use tokio::sync::broadcast;

use crate::k8s::selector::Selectable;

/// Changes kept per store for resuming watches.
pub const HISTORY: usize = 1000;
/// Changes a watcher may fall behind before it is ended.
pub const WATCH_BUFFER: usize = 256;

/// The node's resourceVersion counter.
#[derive(Debug, Default)]
pub struct Versions(AtomicU64);

impl Versions {
    /// The last resourceVersion handed out (0 before any).
    pub fn current(&self) -> u64 {
        self.0.load(AtomicOrdering::SeqCst)
    }
    fn next(&self) -> u64 {
        self.0.fetch_add(1, AtomicOrdering::SeqCst) + 1
    }
}

/// A kind the store can hold and the API can serve.
pub trait Object:
    Clone + PartialEq + serde::Serialize + Selectable + Send + Sync + 'static
{
    /// `Pod`, `Event`, …
    const KIND: &'static str;
    /// `v1`, …
    const API_VERSION: &'static str;
    fn meta(&self) -> &ObjectMeta;
    fn meta_mut(&mut self) -> &mut ObjectMeta;
    /// The order lists are served in: by namespace and name unless a kind
    /// says otherwise.
    fn list_order(a: &Self, b: &Self) -> Ordering {
        let key = |o: &Self| (o.meta().namespace.clone(), o.meta().name.clone());
        key(a).cmp(&key(b))
    }
}

impl Object for Pod {
    const KIND: &'static str = "Pod";
    const API_VERSION: &'static str = "v1";
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

impl Object for Event {
    const KIND: &'static str = "Event";
    const API_VERSION: &'static str = "v1";
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
    /// Events oldest first by their last change, as the recorder keeps them.
    fn list_order(a: &Self, b: &Self) -> Ordering {
        version_of(a).cmp(&version_of(b))
    }
}

/// The kinds whose objects are named by their metadata alone, served in
/// namespace-and-name order.
macro_rules! plain_object {
    ($($t:ty => $kind:literal),* $(,)?) => {$(
        impl Object for $t {
            const KIND: &'static str = $kind;
            const API_VERSION: &'static str = "v1";
            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    )*};
}

plain_object!(Node => "Node", Namespace => "Namespace", ConfigMap => "ConfigMap", Secret => "Secret");

/// An object's `metadata.resourceVersion` as a number (0 when unset).
pub fn version_of<T: Object>(o: &T) -> u64 {
    o.meta()
        .resource_version
        .as_deref()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeType {
    Added,
    Modified,
    Deleted,
}

impl ChangeType {
    /// The `WatchEvent` type.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::Added => "ADDED",
            ChangeType::Modified => "MODIFIED",
            ChangeType::Deleted => "DELETED",
        }
    }
}

/// One change: the object after it (for `Deleted`, its last state with the
/// deletion's resourceVersion) and before it.
#[derive(Debug)]
pub struct Change<T> {
    pub version: u64,
    pub type_: ChangeType,
    pub object: Arc<T>,
    pub previous: Option<Arc<T>>,
}

/// A resume point that has left the history.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("too old resource version: {requested} ({oldest})")]
pub struct Expired {
    pub requested: u64,
    /// The oldest resourceVersion a watch may still resume from.
    pub oldest: u64,
}

/// The watcher fell more than [`WATCH_BUFFER`] changes behind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the watcher fell {0} changes behind and was ended; watch again")]
pub struct Lagged(pub u64);

#[derive(Debug)]
struct Inner<T> {
    objects: BTreeMap<String, Arc<T>>,
    history: VecDeque<Arc<Change<T>>>,
    /// Every change after this resourceVersion is in `history`.
    floor: u64,
}

/// The latest object of each key, versioned and watchable.
#[derive(Debug)]
pub struct Store<T> {
    versions: Arc<Versions>,
    inner: Mutex<Inner<T>>,
    tx: broadcast::Sender<Arc<Change<T>>>,
    history: usize,
}

impl<T: Object> Store<T> {
    /// A store drawing resourceVersions from `versions`.
    pub fn new(versions: Arc<Versions>) -> Self {
        Self::with_bounds(versions, HISTORY, WATCH_BUFFER)
    }

    /// A store with its own history length and watch buffer (tests).
    pub fn with_bounds(versions: Arc<Versions>, history: usize, buffer: usize) -> Self {
        let floor = versions.current();
        Store {
            versions,
            inner: Mutex::new(Inner {
                objects: BTreeMap::new(),
                history: VecDeque::new(),
                floor,
            }),
            tx: broadcast::channel(buffer.max(1)).0,
            history: history.max(1),
        }
    }

    fn record(&self, inner: &mut Inner<T>, change: Change<T>) {
        let change = Arc::new(change);
        inner.history.push_back(change.clone());
        while inner.history.len() > self.history {
            if let Some(old) = inner.history.pop_front() {
                inner.floor = old.version;
            }
        }
        // No receivers is fine: nobody watches.
        let _ = self.tx.send(change);
    }

    /// Stores `object` under `key`. Returns its new resourceVersion, or
    /// `None` when it equals the stored object (nothing changed).
    pub fn put(&self, key: &str, mut object: T) -> Option<u64> {
        let Ok(mut inner) = self.inner.lock() else {
            return None;
        };
        let previous = inner.objects.get(key).cloned();
        if let Some(prev) = &previous {
            object.meta_mut().resource_version = prev.meta().resource_version.clone();
            if **prev == object {
                return None;
            }
        }
        let version = self.versions.next();
        object.meta_mut().resource_version = Some(version.to_string());
        let object = Arc::new(object);
        inner.objects.insert(key.to_string(), object.clone());
        let type_ = if previous.is_some() {
            ChangeType::Modified
        } else {
            ChangeType::Added
        };
        self.record(
            &mut inner,
            Change {
                version,
                type_,
                object,
                previous,
            },
        );
        Some(version)
    }

    /// Removes `key` if `keep` says so of its object. Returns the deletion's
    /// resourceVersion, or `None` when nothing was removed.
    pub fn remove_if(&self, key: &str, keep: impl FnOnce(&T) -> bool) -> Option<u64> {
        let Ok(mut inner) = self.inner.lock() else {
            return None;
        };
        if !inner.objects.get(key).is_some_and(|o| keep(o)) {
            return None;
        }
        let previous = inner.objects.remove(key)?;
        let version = self.versions.next();
        let mut last = (*previous).clone();
        last.meta_mut().resource_version = Some(version.to_string());
        self.record(
            &mut inner,
            Change {
                version,
                type_: ChangeType::Deleted,
                object: Arc::new(last),
                previous: Some(previous),
            },
        );
        Some(version)
    }

    /// Removes `key`; see [`Store::remove_if`].
    pub fn remove(&self, key: &str) -> Option<u64> {
        self.remove_if(key, |_| true)
    }

    /// The object stored under `key`.
    pub fn get(&self, key: &str) -> Option<Arc<T>> {
        self.inner.lock().ok()?.objects.get(key).cloned()
    }

    /// Every object in the kind's list order, and the list's resourceVersion
    /// (watch from it to see every later change).
    pub fn list(&self) -> (Vec<Arc<T>>, u64) {
        let Ok(inner) = self.inner.lock() else {
            return (Vec::new(), self.versions.current());
        };
        let mut items: Vec<Arc<T>> = inner.objects.values().cloned().collect();
        items.sort_by(|a, b| T::list_order(a, b));
        (items, self.versions.current())
    }

    /// Starts a watch. With `from`, it replays every change after that
    /// resourceVersion; without (or `0`), it starts with an `Added` for each
    /// current object, as the API server does.
    ///
    /// Fails with [`Expired`] when `from` is older than the history.
    pub fn watch(&self, from: Option<u64>) -> Result<Watch<T>, Expired> {
        let inner = self.inner.lock().map_err(|_| Expired {
            requested: from.unwrap_or(0),
            oldest: 0,
        })?;
        let now = self.versions.current();
        let backlog: VecDeque<Arc<Change<T>>> = match from.filter(|v| *v > 0) {
            Some(v) if v < inner.floor => {
                return Err(Expired {
                    requested: v,
                    oldest: inner.floor,
                })
            }
            Some(v) => inner
                .history
                .iter()
                .filter(|c| c.version > v)
                .cloned()
                .collect(),
            None => {
                let mut items: Vec<Arc<T>> = inner.objects.values().cloned().collect();
                items.sort_by(|a, b| T::list_order(a, b));
                items
                    .into_iter()
                    .map(|o| {
                        Arc::new(Change {
                            version: version_of(&*o),
                            type_: ChangeType::Added,
                            object: o,
                            previous: None,
                        })
                    })
                    .collect()
            }
        };
        // Subscribing under the lock: every later change is in `rx`, none
        // of the backlog is.
        Ok(Watch {
            backlog,
            rx: self.tx.subscribe(),
            seen: from.unwrap_or(0).max(now),
        })
    }

    /// How many watchers are connected.
    pub fn watchers(&self) -> usize {
        self.tx.receiver_count()
    }
}

/// One watcher's view: the backlog, then live changes.
#[derive(Debug)]
pub struct Watch<T> {
    backlog: VecDeque<Arc<Change<T>>>,
    rx: broadcast::Receiver<Arc<Change<T>>>,
    seen: u64,
}

impl<T> Watch<T> {
    /// The next change; waits for one.
    ///
    /// Fails with [`Lagged`] when the watcher fell too far behind (end the
    /// watch), and never otherwise while the store lives.
    pub async fn next(&mut self) -> Result<Arc<Change<T>>, Lagged> {
        if let Some(c) = self.backlog.pop_front() {
            return Ok(c);
        }
        match self.rx.recv().await {
            Ok(c) => {
                self.seen = self.seen.max(c.version);
                Ok(c)
            }
            Err(broadcast::error::RecvError::Lagged(n)) => Err(Lagged(n)),
            // The store is gone: nothing more will change.
            Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
        }
    }

    /// The resourceVersion this watcher is current at (for bookmarks):
    /// every change up to it has been delivered. `None` while the backlog
    /// is still being delivered.
    pub fn seen(&self) -> Option<u64> {
        self.backlog.is_empty().then_some(self.seen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn pod(name: &str, phase: &str) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "default"},
            "status": {"phase": phase}
        }))
        .expect("pod")
    }

    fn store() -> Store<Pod> {
        Store::new(Arc::new(Versions::default()))
    }

    async fn next(w: &mut Watch<Pod>) -> (ChangeType, String, u64) {
        let c = tokio::time::timeout(Duration::from_secs(5), w.next())
            .await
            .expect("a change within 5 s")
            .expect("not lagged");
        (
            c.type_,
            c.object.metadata.name.clone().unwrap_or_default(),
            c.version,
        )
    }

    #[test]
    fn resource_versions_increase_with_every_change_and_are_stamped_on_objects() {
        let s = store();
        let a = s.put("a", pod("a", "Pending")).expect("added");
        let b = s.put("b", pod("b", "Pending")).expect("added");
        let a2 = s.put("a", pod("a", "Running")).expect("modified");
        assert!(a < b && b < a2);
        let (items, rv) = s.list();
        assert_eq!(rv, a2, "the list is at the last change");
        assert_eq!(
            items[0].metadata.resource_version.as_deref(),
            Some(a2.to_string().as_str())
        );
        let d = s.remove("b").expect("deleted");
        assert!(d > a2);
        assert_eq!(s.list().0.len(), 1);
    }

    #[test]
    fn an_unchanged_object_is_not_a_change() {
        let s = store();
        let v = s.put("a", pod("a", "Running")).expect("added");
        assert_eq!(s.put("a", pod("a", "Running")), None);
        assert_eq!(s.list().1, v);
        assert_eq!(s.remove("missing"), None);
    }

    #[test]
    fn stores_share_the_nodes_counter() {
        let versions = Arc::new(Versions::default());
        let pods: Store<Pod> = Store::new(versions.clone());
        let events: Store<Event> = Store::new(versions.clone());
        let a = pods.put("a", pod("a", "Pending")).expect("pod");
        let e = events.put("e", Event::default()).expect("event");
        assert!(e > a);
        assert_eq!(pods.list().1, e, "a list is at the node's resourceVersion");
    }

    #[test]
    fn remove_if_keeps_an_object_the_predicate_protects() {
        let s = store();
        s.put("a", pod("a", "Running"));
        assert_eq!(
            s.remove_if("a", |p| p.metadata.name.as_deref() == Some("x")),
            None
        );
        assert!(s.get("a").is_some());
    }

    #[tokio::test]
    async fn a_watch_without_a_version_starts_with_the_current_objects() {
        let s = store();
        s.put("b", pod("b", "Running"));
        s.put("a", pod("a", "Running"));
        let mut w = s.watch(None).expect("watch");
        assert_eq!(next(&mut w).await.0, ChangeType::Added);
        assert_eq!(next(&mut w).await.1, "b");
        s.put("a", pod("a", "Succeeded"));
        let (t, name, _) = next(&mut w).await;
        assert_eq!((t, name.as_str()), (ChangeType::Modified, "a"));
    }

    #[tokio::test]
    async fn a_watch_resumes_after_a_version_in_order() {
        let s = store();
        let v1 = s.put("a", pod("a", "Pending")).expect("a");
        s.put("a", pod("a", "Running"));
        s.remove("a");
        let mut w = s.watch(Some(v1)).expect("watch");
        assert_eq!(next(&mut w).await.0, ChangeType::Modified);
        let (t, _, v) = next(&mut w).await;
        assert_eq!(t, ChangeType::Deleted);
        s.put("c", pod("c", "Pending"));
        let (t, name, v2) = next(&mut w).await;
        assert_eq!((t, name.as_str()), (ChangeType::Added, "c"));
        assert!(v2 > v);
    }

    #[test]
    fn resuming_from_a_version_older_than_the_history_is_expired() {
        let s = Store::with_bounds(Arc::new(Versions::default()), 3, 8);
        let first = s.put("a", pod("a", "P0")).expect("v");
        for i in 1..=5 {
            s.put("a", pod("a", &format!("P{i}")));
        }
        let e = s.watch(Some(first)).expect_err("too old");
        assert_eq!(e.requested, first);
        assert_eq!(e.oldest, 3);
        assert!(e.to_string().starts_with("too old resource version"));
        assert!(s.watch(Some(3)).is_ok(), "the floor itself is resumable");
        assert!(s.watch(None).is_ok());
    }

    #[tokio::test]
    async fn every_watcher_gets_every_change() {
        let s = store();
        let mut watchers: Vec<Watch<Pod>> = (0..50).map(|_| s.watch(Some(0)).expect("w")).collect();
        assert_eq!(s.watchers(), 50);
        for i in 0..3 {
            s.put(&format!("p{i}"), pod(&format!("p{i}"), "Running"));
        }
        for w in &mut watchers {
            for i in 0..3 {
                assert_eq!(next(w).await.1, format!("p{i}"));
            }
        }
        drop(watchers);
        assert_eq!(s.watchers(), 0);
    }

    #[tokio::test]
    async fn a_slow_watcher_never_blocks_writers_or_other_watchers_and_is_ended() {
        let s = Store::with_bounds(Arc::new(Versions::default()), 100, 4);
        let mut slow = s.watch(Some(0)).expect("slow");
        let mut fast = s.watch(Some(0)).expect("fast");
        for i in 0..20 {
            // Never waits: the writer does not block on the slow reader.
            assert!(s.put("a", pod("a", &format!("P{i}"))).is_some());
            assert_eq!(
                next(&mut fast).await.0,
                if i == 0 {
                    ChangeType::Added
                } else {
                    ChangeType::Modified
                }
            );
        }
        let lagged = tokio::time::timeout(Duration::from_secs(5), slow.next())
            .await
            .expect("answers at once");
        assert!(matches!(lagged, Err(Lagged(n)) if n > 0), "{lagged:?}");
    }

    #[tokio::test]
    async fn the_watchers_position_follows_what_it_was_given() {
        let s = store();
        let v1 = s.put("a", pod("a", "P")).expect("v");
        let v2 = s.put("a", pod("a", "R")).expect("v");
        let mut w = s.watch(Some(v1)).expect("w");
        assert_eq!(w.seen(), None, "the backlog is pending");
        next(&mut w).await;
        assert_eq!(w.seen(), Some(v2));
        let v3 = s.put("a", pod("a", "S")).expect("v");
        next(&mut w).await;
        assert_eq!(w.seen(), Some(v3));
    }

    fn named<T: Object + Default>(ns: Option<&str>, name: &str) -> T {
        let mut o = T::default();
        o.meta_mut().name = Some(name.into());
        o.meta_mut().namespace = ns.map(String::from);
        o
    }

    #[test]
    fn every_kind_draws_from_the_node_counter_and_lists_by_namespace_and_name() {
        let versions = Arc::new(Versions::default());
        let pods = Store::<Pod>::new(versions.clone());
        let configmaps = Store::<ConfigMap>::new(versions.clone());
        let secrets = Store::<Secret>::new(versions.clone());
        let nodes = Store::<Node>::new(versions.clone());
        let namespaces = Store::<Namespace>::new(versions.clone());
        assert_eq!(pods.put("p", pod("p", "Running")), Some(1));
        assert_eq!(configmaps.put("b/x", named(Some("b"), "x")), Some(2));
        assert_eq!(configmaps.put("a/y", named(Some("a"), "y")), Some(3));
        assert_eq!(secrets.put("a/s", named(Some("a"), "s")), Some(4));
        assert_eq!(nodes.put("n", named(None, "n")), Some(5));
        assert_eq!(namespaces.put("a", named(None, "a")), Some(6));
        assert_eq!(configmaps.put("a/y", named(Some("a"), "y")), None);
        let (items, version) = configmaps.list();
        let names: Vec<_> = items.iter().map(|c| c.metadata.name.clone()).collect();
        assert_eq!(names, [Some("y".to_string()), Some("x".to_string())]);
        assert_eq!(version, 6);
        assert_eq!(items[0].metadata.resource_version.as_deref(), Some("3"));
        assert_eq!(
            (ConfigMap::KIND, Secret::KIND, Node::KIND, Namespace::KIND),
            ("ConfigMap", "Secret", "Node", "Namespace")
        );
        assert_eq!(namespaces.remove("a"), Some(7));
        assert!(namespaces.list().0.is_empty());
    }
}
