//! The read-only objects besides pods and events — `nodes`, `namespaces`,
//! `configmaps` and `secrets` — kept in versioned [`watch::Store`]s
//! ([`Stores`]) and served like pods by [`super::watch`]: list, get and
//! watch, with label and field selectors, resourceVersions and Tables.
//!
//! [`sync`] fills the stores once before the API serves; [`feed`] keeps
//! them current until shutdown:
//!
//! * ConfigMaps and Secrets follow the [`ObjectStore`] the pod manager
//!   publishes to after every merge. A Secret is only ever stored as its
//!   [`resources::secret_view`]: no value reaches a list, a get or a watch.
//! * Namespaces are derived from the pods, ConfigMaps, Secrets and events
//!   (plus `default`), recomputed when one of them is added or deleted; a
//!   namespace appearing or disappearing is `ADDED` or `DELETED`.
//! * The node object is refreshed every [`NODE_HEARTBEAT`] (its Ready
//!   heartbeat and the runtime version), the lease-like period after which
//!   the node controller would call a silent node unknown; every refresh is
//!   a `MODIFIED` for node watchers.
//!
//! The objects themselves are built by the pure functions of
//! [`super::resources`].

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;

use super::resources::{self, NodeFacts};
use super::watch::{self as api_watch, Kind};
use super::ApiState;
use crate::node::NodeInfo;
use crate::pod::objects::Objects;
use crate::watch::{self, ChangeType, Object, Versions};

/// How often the node object's Ready heartbeat is refreshed.
pub const NODE_HEARTBEAT: Duration = Duration::from_secs(40);
/// How long a heartbeat waits for the runtime's version.
const RUNTIME_VERSION_TIMEOUT: Duration = Duration::from_secs(2);

/// What the API knows about this node beyond the machine's own facts.
#[derive(Debug, Clone)]
pub struct NodeView {
    /// Name and labels (built-in plus `--node-labels`).
    pub info: NodeInfo,
    pub host_ip: String,
    /// `--max-pods`: the node's `pods` capacity.
    pub max_pods: usize,
    /// When the daemon started.
    pub started: Timestamp,
}

/// The versioned stores of this module's kinds.
#[derive(Debug)]
pub struct Stores {
    pub nodes: watch::Store<Node>,
    pub namespaces: watch::Store<Namespace>,
    pub configmaps: watch::Store<ConfigMap>,
    pub secrets: watch::Store<Secret>,
}

impl Stores {
    /// Empty stores drawing resourceVersions from the node's counter.
    pub fn new(versions: Arc<Versions>) -> Self {
        Stores {
            nodes: watch::Store::new(versions.clone()),
            namespaces: watch::Store::new(versions.clone()),
            configmaps: watch::Store::new(versions.clone()),
            secrets: watch::Store::new(versions),
        }
    }
}

const NODES: Kind<Node> = Kind {
    resource: "nodes",
    table: resources::node_table,
};
const NAMESPACES: Kind<Namespace> = Kind {
    resource: "namespaces",
    table: resources::namespace_table,
};
const CONFIGMAPS: Kind<ConfigMap> = Kind {
    resource: "configmaps",
    table: resources::configmap_table,
};
const SECRETS: Kind<Secret> = Kind {
    resource: "secrets",
    table: resources::secret_table,
};

/// The key of an object in its store: `namespace/name`, or `name` for a
/// cluster-scoped kind.
fn key(meta: &ObjectMeta) -> String {
    let name = meta.name.as_deref().unwrap_or_default();
    match meta.namespace.as_deref() {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_string(),
    }
}

/// Makes `store` hold exactly `objects`: puts each (a no-op when unchanged)
/// and removes the rest.
fn replace_all<T: Object>(store: &watch::Store<T>, objects: Vec<T>) {
    let keep: BTreeSet<String> = objects.iter().map(|o| key(o.meta())).collect();
    for o in objects {
        store.put(&key(o.meta()), o);
    }
    for old in store.list().0 {
        let k = key(old.meta());
        if !keep.contains(&k) {
            store.remove(&k);
        }
    }
}

fn put_node(s: &ApiState, runtime_version: String) {
    let node = resources::node_object(&NodeFacts {
        info: s.node.info.clone(),
        host_ip: s.node.host_ip.clone(),
        capacity: crate::node::capacity(),
        max_pods: s.node.max_pods,
        kernel_version: crate::node::kernel_version(),
        os_image: crate::node::os_image(),
        runtime_version,
        started: s.node.started,
        now: Timestamp::now(),
    });
    s.served.nodes.put(&key(&node.metadata), node);
}

fn sync_objects(s: &ApiState, objects: &Objects) {
    let started = s.node.started;
    let configmaps = (objects.configmaps.values())
        .map(|c| ConfigMap {
            metadata: resources::object_meta_with_age(&c.metadata, started),
            ..(**c).clone()
        })
        .collect();
    replace_all(&s.served.configmaps, configmaps);
    let secrets = (objects.secrets.values())
        .map(|c| {
            let mut view = resources::secret_view(c);
            view.metadata = resources::object_meta_with_age(&view.metadata, started);
            view
        })
        .collect();
    replace_all(&s.served.secrets, secrets);
}

/// Every namespace that holds a pod, ConfigMap, Secret or event, plus
/// `default`.
fn sync_namespaces(s: &ApiState) {
    let mut used: BTreeSet<String> = BTreeSet::new();
    used.extend((s.store.pods().list().0.iter()).filter_map(|p| p.metadata.namespace.clone()));
    used.extend((s.served.configmaps.list().0.iter()).filter_map(|c| c.metadata.namespace.clone()));
    used.extend((s.served.secrets.list().0.iter()).filter_map(|c| c.metadata.namespace.clone()));
    used.extend(
        (s.recorder.objects().list().0.iter()).filter_map(|e| e.metadata.namespace.clone()),
    );
    replace_all(
        &s.served.namespaces,
        resources::namespaces(used, s.node.started),
    );
}

/// Fills the stores from what the daemon knows now (`runtime_version` is
/// the node's until the first heartbeat asks the runtime again).
pub fn sync(s: &ApiState, runtime_version: String) {
    put_node(s, runtime_version);
    sync_objects(s, &s.objects.current());
    sync_namespaces(s);
}

/// A watch of `store` that starts now (no replay of current objects).
fn watch_from_now<T: Object>(store: &watch::Store<T>) -> Option<watch::Watch<T>> {
    let (_, now) = store.list();
    store.watch(Some(now)).ok()
}

/// Whether a change can add or remove a namespace.
fn namespace_change<T>(change: &Result<Arc<watch::Change<T>>, watch::Lagged>) -> bool {
    match change {
        Ok(c) => c.type_ != ChangeType::Modified,
        Err(_) => true,
    }
}

/// The next change of an optional watch (never, without one).
async fn next_change<T: Object>(
    w: &mut Option<watch::Watch<T>>,
) -> Result<Arc<watch::Change<T>>, watch::Lagged> {
    match w {
        Some(w) => w.next().await,
        None => std::future::pending().await,
    }
}

/// Keeps the stores current until `s.shutdown` (see the module docs).
pub async fn feed(s: ApiState) {
    let mut objects = s.objects.subscribe();
    let mut pods = watch_from_now(s.store.pods());
    let mut events = watch_from_now(s.recorder.objects());
    let mut heartbeat = tokio::time::interval(NODE_HEARTBEAT);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    heartbeat.tick().await;
    // Changes between `sync` and the watches above.
    sync_objects(&s, &objects.borrow_and_update().clone());
    sync_namespaces(&s);
    loop {
        tokio::select! {
            _ = s.shutdown.cancelled() => return,
            _ = heartbeat.tick() => {
                let version =
                    match tokio::time::timeout(RUNTIME_VERSION_TIMEOUT, s.runtime.version()).await {
                        Ok(Ok(v)) => v,
                        _ => String::new(),
                    };
                put_node(&s, version);
            }
            changed = objects.changed() => {
                if changed.is_err() {
                    return;
                }
                let current = objects.borrow_and_update().clone();
                sync_objects(&s, &current);
                sync_namespaces(&s);
            }
            change = next_change(&mut pods) => {
                if change.is_err() {
                    pods = watch_from_now(s.store.pods());
                }
                if namespace_change(&change) {
                    sync_namespaces(&s);
                }
            }
            change = next_change(&mut events) => {
                if change.is_err() {
                    events = watch_from_now(s.recorder.objects());
                }
                if namespace_change(&change) {
                    sync_namespaces(&s);
                }
            }
        }
    }
}

/// The routes of this module (merged into [`super::router`]).
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/nodes", get(list_nodes))
        .route("/api/v1/nodes/{name}", get(one_node))
        .route("/api/v1/namespaces", get(list_namespaces))
        .route("/api/v1/namespaces/{ns}", get(one_namespace))
        .merge(api_watch::namespaced_routes(&CONFIGMAPS, |s| {
            &s.served.configmaps
        }))
        .merge(api_watch::namespaced_routes(&SECRETS, |s| {
            &s.served.secrets
        }))
}

async fn list_nodes(
    State(s): State<ApiState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    let stop = s.shutdown.clone();
    api_watch::list_or_watch(&s.served.nodes, &NODES, None, q.as_deref(), &headers, stop)
}

async fn one_node(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    api_watch::get_one(&s.served.nodes, &NODES, None, &name, q.as_deref(), &headers)
}

async fn list_namespaces(
    State(s): State<ApiState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    let stop = s.shutdown.clone();
    let store = &s.served.namespaces;
    api_watch::list_or_watch(store, &NAMESPACES, None, q.as_deref(), &headers, stop)
}

async fn one_namespace(
    State(s): State<ApiState>,
    Path(ns): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    let store = &s.served.namespaces;
    api_watch::get_one(store, &NAMESPACES, None, &ns, q.as_deref(), &headers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;

    fn cm(ns: &str, name: &str, value: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(ns.into()),
                ..Default::default()
            },
            data: Some([("k".to_string(), value.to_string())].into()),
            ..Default::default()
        }
    }

    #[test]
    fn objects_are_keyed_by_namespace_and_name_or_name_alone() {
        assert_eq!(key(&cm("prod", "a", "1").metadata), "prod/a");
        let ns = resources::namespaces(["x".to_string()], Timestamp::UNIX_EPOCH);
        assert_eq!(key(&ns[1].metadata), "x");
    }

    #[test]
    fn replacing_all_adds_changes_and_removes_only_what_differs() {
        let store = watch::Store::<ConfigMap>::new(Arc::new(Versions::default()));
        replace_all(&store, vec![cm("a", "one", "1"), cm("a", "two", "2")]);
        let mut w = store.watch(Some(2)).expect("watch");
        replace_all(&store, vec![cm("a", "one", "1"), cm("b", "three", "3")]);
        replace_all(&store, vec![cm("a", "one", "9"), cm("b", "three", "3")]);
        let names: Vec<_> = store.list().0.iter().map(|c| key(&c.metadata)).collect();
        assert_eq!(names, ["a/one", "b/three"]);
        let mut seen = Vec::new();
        while let Some(Ok(c)) = w.next().now_or_never() {
            seen.push((c.type_, key(&c.object.metadata)));
        }
        assert_eq!(
            seen,
            [
                (ChangeType::Added, "b/three".to_string()),
                (ChangeType::Deleted, "a/two".to_string()),
                (ChangeType::Modified, "a/one".to_string()),
            ]
        );
    }
}
