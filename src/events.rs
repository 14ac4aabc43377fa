//! Events: an in-memory, bounded record of what happened to each pod.
//!
//! Kubernetes-shaped (`v1` `Event`: reason, message, type, count, first and
//! last timestamp, involved object with field path), recorded by workers and
//! the manager, deduplicated the way the kubelet's event correlator does
//! (same object, field, reason and message ⇒ count + 1), served by the API
//! and logged. Bounded in total and per object so a crash loop cannot grow
//! memory without limit. Nothing is persisted: events are about the recent
//! past, as in Kubernetes.
//!
//! Every recorded, counted or evicted event is also a change in a versioned
//! [`watch::Store`] (keyed by `namespace/name`), which the API lists and
//! watches: a repeat is `MODIFIED`, an eviction `DELETED`. An event keeps
//! its name (`<object>.<16 hex digits>`) across repeats.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;

use crate::watch::{self, Versions};

/// At most this many events in total; the oldest go first.
pub const MAX_EVENTS: usize = 2000;
/// At most this many distinct events per involved object.
pub const MAX_PER_OBJECT: usize = 100;

/// What an event is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Involved {
    /// `Pod` or `Node`.
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// e.g. `spec.containers{web}`.
    pub field_path: Option<String>,
}

impl Involved {
    pub fn pod(namespace: &str, name: &str, uid: &str) -> Self {
        Involved {
            kind: "Pod".into(),
            namespace: namespace.into(),
            name: name.into(),
            uid: uid.into(),
            field_path: None,
        }
    }
    pub fn node(name: &str) -> Self {
        Involved {
            kind: "Node".into(),
            namespace: String::new(),
            name: name.into(),
            uid: name.into(),
            field_path: None,
        }
    }
    /// The same object, narrowed to one container (`spec.containers{name}`
    /// or `spec.initContainers{name}`).
    pub fn container(&self, name: &str, init: bool) -> Self {
        let list = if init { "initContainers" } else { "containers" };
        Involved {
            field_path: Some(format!("spec.{list}{{{name}}}")),
            ..self.clone()
        }
    }
}

/// An event's `type`: `Normal` or `Warning`, as in Kubernetes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    seq: u64,
    /// The event's name suffix, fixed when first recorded.
    id: u64,
    involved: Involved,
    type_: EventType,
    reason: String,
    message: String,
    count: i32,
    first: Timestamp,
    last: Timestamp,
}

#[derive(Debug, Default)]
struct Store {
    entries: VecDeque<Entry>,
    seq: u64,
}

/// The event recorder shared by everything that reports.
#[derive(Debug)]
pub struct Recorder {
    node: String,
    store: Mutex<Store>,
    objects: watch::Store<Event>,
}

impl Recorder {
    pub fn new(node: &str) -> Self {
        Recorder::with_versions(node, Arc::new(Versions::default()))
    }

    /// A recorder drawing resourceVersions from the node's counter.
    pub fn with_versions(node: &str, versions: Arc<Versions>) -> Self {
        Recorder {
            node: node.into(),
            store: Mutex::new(Store::default()),
            objects: watch::Store::new(versions),
        }
    }

    /// The versioned events, for the API's lists and watches.
    pub fn objects(&self) -> &watch::Store<Event> {
        &self.objects
    }

    fn publish(&self, e: &Entry) {
        let event = self.to_event(e);
        self.objects.put(&event_key(&event), event);
    }

    fn unpublish(&self, e: &Entry) {
        self.objects.remove(&event_key(&self.to_event(e)));
    }

    pub fn normal(&self, involved: &Involved, reason: &str, message: impl Into<String>) {
        self.record(involved, EventType::Normal, reason, message.into());
    }

    pub fn warning(&self, involved: &Involved, reason: &str, message: impl Into<String>) {
        self.record(involved, EventType::Warning, reason, message.into());
    }

    /// Records an event (or bumps the count of an identical one) and logs it.
    pub fn record(&self, involved: &Involved, type_: EventType, reason: &str, message: String) {
        let object = format!("{}/{}", involved.namespace, involved.name);
        let field = involved.field_path.as_deref().unwrap_or("");
        match type_ {
            EventType::Normal => tracing::info!(%object, field, reason, %message, "event"),
            EventType::Warning => tracing::warn!(%object, field, reason, %message, "event"),
        }
        let now = Timestamp::now();
        let Ok(mut store) = self.store.lock() else {
            return;
        };
        store.seq += 1;
        let seq = store.seq;
        let same = store.entries.iter().position(|e| {
            e.involved == *involved
                && e.type_ == type_
                && e.reason == reason
                && e.message == message
        });
        if let Some(i) = same {
            if let Some(mut e) = store.entries.remove(i) {
                e.count += 1;
                e.last = now;
                e.seq = seq;
                self.publish(&e);
                store.entries.push_back(e);
            }
            return;
        }
        let per_object = store
            .entries
            .iter()
            .filter(|e| e.involved.uid == involved.uid)
            .count();
        if per_object >= MAX_PER_OBJECT {
            if let Some(i) = store
                .entries
                .iter()
                .position(|e| e.involved.uid == involved.uid)
            {
                if let Some(old) = store.entries.remove(i) {
                    self.unpublish(&old);
                }
            }
        }
        if store.entries.len() >= MAX_EVENTS {
            if let Some(old) = store.entries.pop_front() {
                self.unpublish(&old);
            }
        }
        let entry = Entry {
            seq,
            id: seq,
            involved: involved.clone(),
            type_,
            reason: reason.into(),
            message,
            count: 1,
            first: now,
            last: now,
        };
        self.publish(&entry);
        store.entries.push_back(entry);
    }

    fn to_event(&self, e: &Entry) -> Event {
        let inv = &e.involved;
        // Workload events come from the controller that would write them on
        // a cluster (kubectl describe's `From` column).
        let (api_version, component) = match inv.kind.as_str() {
            "Deployment" => ("apps/v1", "deployment-controller"),
            "ReplicaSet" => ("apps/v1", "replicaset-controller"),
            "DaemonSet" => ("apps/v1", "daemonset-controller"),
            "Job" => ("batch/v1", "job-controller"),
            _ => ("v1", "kubelet"),
        };
        Event {
            metadata: ObjectMeta {
                name: Some(format!("{}.{:016x}", inv.name, e.id)),
                namespace: Some(if inv.namespace.is_empty() {
                    "default".into()
                } else {
                    inv.namespace.clone()
                }),
                ..Default::default()
            },
            involved_object: ObjectReference {
                api_version: Some(api_version.into()),
                kind: Some(inv.kind.clone()),
                name: Some(inv.name.clone()),
                namespace: (!inv.namespace.is_empty()).then(|| inv.namespace.clone()),
                uid: Some(inv.uid.clone()),
                field_path: inv.field_path.clone(),
                ..Default::default()
            },
            reason: Some(e.reason.clone()),
            message: Some(e.message.clone()),
            type_: Some(e.type_.as_str().into()),
            count: Some(e.count),
            first_timestamp: Some(Time(e.first)),
            last_timestamp: Some(Time(e.last)),
            source: Some(EventSource {
                component: Some(component.into()),
                host: Some(self.node.clone()),
            }),
            reporting_component: Some(component.into()),
            reporting_instance: Some(self.node.clone()),
            ..Default::default()
        }
    }

    /// Every event, oldest first (by last occurrence), optionally only of
    /// one namespace.
    pub fn list(&self, namespace: Option<&str>) -> Vec<Event> {
        let Ok(store) = self.store.lock() else {
            return Vec::new();
        };
        store
            .entries
            .iter()
            .filter(|e| namespace.is_none_or(|ns| e.involved.namespace == ns))
            .map(|e| self.to_event(e))
            .collect()
    }

    /// The events of one object (pod UID), oldest first.
    pub fn for_uid(&self, uid: &str) -> Vec<Event> {
        let Ok(store) = self.store.lock() else {
            return Vec::new();
        };
        store
            .entries
            .iter()
            .filter(|e| e.involved.uid == uid)
            .map(|e| self.to_event(e))
            .collect()
    }
}

/// `namespace/name` of an event, its key in the versioned store.
fn event_key(e: &Event) -> String {
    crate::k8s::meta::object_key(&e.metadata)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Involved {
        Involved::pod("default", "web-n", "uid1")
    }

    #[test]
    fn identical_events_are_counted_not_repeated() {
        let r = Recorder::new("n");
        let c = pod().container("app", false);
        r.warning(&c, "BackOff", "Back-off restarting failed container app");
        r.normal(&c, "Started", "Started container app");
        r.warning(&c, "BackOff", "Back-off restarting failed container app");
        let events = r.for_uid("uid1");
        assert_eq!(events.len(), 2);
        let last = events.last().expect("event");
        assert_eq!(last.reason.as_deref(), Some("BackOff"));
        assert_eq!(last.count, Some(2));
        assert_eq!(
            last.involved_object.field_path.as_deref(),
            Some("spec.containers{app}")
        );
        assert_eq!(last.type_.as_deref(), Some("Warning"));
        assert!(last.first_timestamp <= last.last_timestamp);
    }

    #[test]
    fn events_are_bounded_per_object_and_in_total() {
        let r = Recorder::new("n");
        for i in 0..(MAX_PER_OBJECT + 10) {
            r.normal(&pod(), "Pulled", format!("message {i}"));
        }
        let events = r.for_uid("uid1");
        assert_eq!(events.len(), MAX_PER_OBJECT);
        assert_eq!(
            events.last().and_then(|e| e.message.clone()).as_deref(),
            Some(format!("message {}", MAX_PER_OBJECT + 9).as_str())
        );
        for i in 0..(MAX_EVENTS + 5) {
            r.normal(
                &Involved::pod("default", "p", &format!("u{i}")),
                "Created",
                "x",
            );
        }
        assert_eq!(r.list(None).len(), MAX_EVENTS);
    }

    #[test]
    fn workload_events_come_from_their_controller() {
        let r = Recorder::new("n");
        let d = Involved {
            kind: "Deployment".into(),
            namespace: "default".into(),
            name: "web".into(),
            uid: "d1".into(),
            field_path: None,
        };
        r.normal(
            &d,
            "ScalingReplicaSet",
            "Scaled up replica set web-abc to 1",
        );
        r.normal(&pod(), "Pulled", "a");
        let events = r.list(None);
        let from = |e: &Event| e.source.as_ref().and_then(|s| s.component.clone());
        assert_eq!(from(&events[0]).as_deref(), Some("deployment-controller"));
        assert_eq!(
            events[0].involved_object.api_version.as_deref(),
            Some("apps/v1")
        );
        assert_eq!(from(&events[1]).as_deref(), Some("kubelet"));
    }

    #[test]
    fn events_can_be_listed_by_namespace() {
        let r = Recorder::new("n");
        r.normal(&pod(), "Scheduled", "a");
        r.normal(&Involved::pod("kube-system", "x", "u2"), "Scheduled", "b");
        assert_eq!(r.list(Some("kube-system")).len(), 1);
        assert_eq!(r.list(None).len(), 2);
    }

    #[test]
    fn recording_counting_and_evicting_are_versioned_changes() {
        let r = Recorder::new("n");
        r.normal(&pod(), "Pulled", "a");
        let (items, v1) = r.objects().list();
        assert_eq!(items.len(), 1);
        let name = items[0].metadata.name.clone();
        r.normal(&pod(), "Pulled", "a");
        let (items, v2) = r.objects().list();
        assert!(v2 > v1);
        assert_eq!(items[0].metadata.name, name, "a repeat keeps its name");
        assert_eq!(items[0].count, Some(2));
        for i in 0..MAX_PER_OBJECT {
            r.normal(&pod(), "Pulled", format!("m{i}"));
        }
        assert_eq!(r.objects().list().0.len(), MAX_PER_OBJECT);
        assert!(r.objects().list().0.iter().all(|e| e.metadata.name != name));
    }
}
