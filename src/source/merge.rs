//! The merger: per-source snapshots in, one desired set out (pure).
//!
//! It keeps the newest [`Snapshot`] of every source and turns them into one
//! [`Desired`] set keyed by pod UID. A pod whose namespace/name an earlier
//! source (or an earlier file) already claims is rejected as a conflict naming
//! both origins ([`Conflict`]); ConfigMaps and Secrets follow the same
//! first-wins rule. `rkubelet validate` runs the same merger, so it reports
//! exactly the conflicts the daemon would.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};

use super::{object_key, Desired, Diagnostics, Snapshot, SourceObject};
use crate::manifest::Origin;

/// What a [`Conflict`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    Pod,
    ConfigMap,
    Secret,
    Workload,
}

impl ObjectKind {
    /// The lower-case name used in messages: `pod`, `configmap`, `secret`.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Pod => "pod",
            ObjectKind::ConfigMap => "configmap",
            ObjectKind::Secret => "secret",
            ObjectKind::Workload => "workload",
        }
    }
}

/// A definition the merger ignored because an earlier one (an earlier
/// source, or an earlier file) already claims its namespace/name. Shown
/// (and served) as `pod default/web-node1 from /d/b.yaml is ignored:
/// /d/a.yaml already defines it`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub kind: ObjectKind,
    /// `namespace/name`.
    pub name: String,
    /// Where the ignored definition comes from.
    pub ignored: Origin,
    /// Where the definition in effect comes from.
    pub first: Origin,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} from {} is ignored: {} already defines it",
            self.kind.as_str(),
            self.name,
            self.ignored.location,
            self.first.location
        )
    }
}

impl serde::Serialize for Conflict {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Merges per-source snapshots into one desired set.
#[derive(Debug)]
pub struct Merger {
    order: Vec<String>,
    snapshots: HashMap<String, Snapshot>,
}

impl Merger {
    /// `sources` in priority order: on a name conflict the earlier wins.
    pub fn new(sources: Vec<String>) -> Self {
        Merger {
            order: sources,
            snapshots: HashMap::new(),
        }
    }

    /// Takes a new snapshot and returns the merged state and diagnostics.
    pub fn update(&mut self, snapshot: Snapshot) -> (Desired, Diagnostics) {
        self.snapshots.insert(snapshot.source.clone(), snapshot);
        self.merge()
    }

    fn merge(&self) -> (Desired, Diagnostics) {
        let mut desired = Desired {
            complete: self.order.iter().all(|s| self.snapshots.contains_key(s)),
            ..Default::default()
        };
        let mut diag = Diagnostics::default();
        let mut by_name: HashMap<String, Origin> = HashMap::new();
        for source in &self.order {
            let Some(snap) = self.snapshots.get(source) else {
                continue;
            };
            diag.errors
                .extend(snap.errors.iter().map(ToString::to_string));
            diag.warnings.extend(snap.warnings.iter().cloned());
            diag.pods.insert(source.clone(), snap.pods.len());
            if let Some(why) = &snap.failing {
                diag.failing.insert(source.clone(), why.clone());
            }
            desired
                .keep_origins
                .extend(snap.keep_origins.iter().cloned());
            for p in &snap.pods {
                let name = p.full_name();
                match by_name.get(&name) {
                    Some(first) => diag.conflicts.push(Conflict {
                        kind: ObjectKind::Pod,
                        name,
                        ignored: p.origin.clone(),
                        first: first.clone(),
                    }),
                    None => {
                        by_name.insert(name, p.origin.clone());
                        desired.pods.insert(p.uid().to_string(), p.clone());
                    }
                }
            }
        }
        let mut origins = HashMap::new();
        for snap in self.order.iter().filter_map(|s| self.snapshots.get(s)) {
            merge_objects(
                ObjectKind::ConfigMap,
                &snap.configmaps,
                &mut desired.configmaps,
                &mut origins,
                &mut diag,
            );
        }
        origins.clear();
        for snap in self.order.iter().filter_map(|s| self.snapshots.get(s)) {
            merge_objects(
                ObjectKind::Secret,
                &snap.secrets,
                &mut desired.secrets,
                &mut origins,
                &mut diag,
            );
        }
        origins.clear();
        for snap in self.order.iter().filter_map(|s| self.snapshots.get(s)) {
            for w in &snap.workloads {
                let key = format!("{}/{}", w.object.kind(), w.object.key());
                match origins.get(&key) {
                    Some(first) => diag.conflicts.push(Conflict {
                        kind: ObjectKind::Workload,
                        name: key,
                        ignored: w.origin.clone(),
                        first: first.clone(),
                    }),
                    None => {
                        origins.insert(key.clone(), w.origin.clone());
                        desired.workloads.insert(key, w.clone());
                    }
                }
            }
        }
        (desired, diag)
    }
}

/// Adds `objects` to `into` by namespace/name; the first definition wins and
/// a later one is reported as a conflict naming both origins.
fn merge_objects<T: HasMeta>(
    kind: ObjectKind,
    objects: &[SourceObject<T>],
    into: &mut BTreeMap<String, Arc<T>>,
    origins: &mut HashMap<String, Origin>,
    diag: &mut Diagnostics,
) {
    for o in objects {
        let key = object_key(o.object.meta());
        match origins.get(&key) {
            Some(first) => diag.conflicts.push(Conflict {
                kind,
                name: key,
                ignored: o.origin.clone(),
                first: first.clone(),
            }),
            None => {
                origins.insert(key.clone(), o.origin.clone());
                into.insert(key, o.object.clone());
            }
        }
    }
}

/// Objects with metadata (ConfigMap, Secret).
trait HasMeta {
    fn meta(&self) -> &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
}

impl HasMeta for ConfigMap {
    fn meta(&self) -> &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
        &self.metadata
    }
}

impl HasMeta for Secret {
    fn meta(&self) -> &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
        &self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{SourceConfigMap, SourcePod};
    use k8s_openapi::api::core::v1::Pod;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod(name: &str, uid: &str, file: &str) -> SourcePod {
        SourcePod {
            pod: Arc::new(Pod {
                metadata: ObjectMeta {
                    name: Some(name.into()),
                    namespace: Some("default".into()),
                    uid: Some(uid.into()),
                    ..Default::default()
                },
                ..Default::default()
            }),
            origin: Origin::file(file),
        }
    }

    fn snap(source: &str, pods: Vec<SourcePod>) -> Snapshot {
        Snapshot {
            source: source.into(),
            pods,
            ..Default::default()
        }
    }

    #[test]
    fn the_first_manifest_wins_a_name_conflict_and_both_files_are_named() {
        let mut m = Merger::new(vec!["file".into()]);
        let (d, diag) = m.update(snap(
            "file",
            vec![
                pod("web-n", "u1", "/d/a.yaml"),
                pod("web-n", "u2", "/d/b.yaml"),
            ],
        ));
        assert_eq!(d.pods.keys().collect::<Vec<_>>(), vec!["u1"]);
        assert_eq!(diag.conflicts.len(), 1);
        assert_eq!(
            diag.conflicts[0].to_string(),
            "pod default/web-n from /d/b.yaml is ignored: /d/a.yaml already defines it"
        );
    }

    #[test]
    fn desired_is_complete_only_after_every_source_reported() {
        let mut m = Merger::new(vec!["file".into(), "http".into()]);
        let (d, _) = m.update(snap("file", vec![pod("a-n", "u1", "/d/a.yaml")]));
        assert!(!d.complete);
        let (d, _) = m.update(snap("http", vec![]));
        assert!(d.complete);
        assert_eq!(d.pods.len(), 1);
    }

    fn configmap(name: &str, value: &str, file: &str) -> SourceConfigMap {
        SourceObject {
            object: Arc::new(ConfigMap {
                metadata: ObjectMeta {
                    name: Some(name.into()),
                    namespace: Some("default".into()),
                    ..Default::default()
                },
                data: Some([("k".to_string(), value.to_string())].into()),
                ..Default::default()
            }),
            origin: Origin::file(file),
        }
    }

    #[test]
    fn config_maps_and_secrets_are_merged_by_namespace_and_name_first_wins() {
        let mut m = Merger::new(vec!["file".into(), "http".into()]);
        m.update(Snapshot {
            source: "http".into(),
            configmaps: vec![
                configmap("app", "from-url", "http://x/"),
                configmap("other", "o", "http://x/"),
            ],
            ..Default::default()
        });
        let secret = SourceObject {
            object: Arc::new(Secret {
                metadata: ObjectMeta {
                    name: Some("s".into()),
                    namespace: Some("prod".into()),
                    ..Default::default()
                },
                ..Default::default()
            }),
            origin: Origin::file("/d/s.yaml"),
        };
        let (d, diag) = m.update(Snapshot {
            source: "file".into(),
            configmaps: vec![
                configmap("app", "from-a", "/d/a.yaml"),
                configmap("app", "from-b", "/d/b.yaml"),
            ],
            secrets: vec![secret.clone(), secret],
            ..Default::default()
        });
        assert_eq!(
            d.configmaps.keys().collect::<Vec<_>>(),
            ["default/app", "default/other"]
        );
        let data = d.configmaps["default/app"].data.clone().expect("data");
        assert_eq!(data["k"], "from-a");
        assert_eq!(d.secrets.keys().collect::<Vec<_>>(), ["prod/s"]);
        assert_eq!(diag.conflicts.len(), 3, "{:?}", diag.conflicts);
        let conflicts: Vec<String> = diag.conflicts.iter().map(ToString::to_string).collect();
        assert!(conflicts.iter().any(|c| c
            == "configmap default/app from /d/b.yaml is ignored: /d/a.yaml already defines it"));
        assert!(conflicts
            .iter()
            .any(|c| c.contains("http://x/") && c.contains("/d/a.yaml")));
        assert!(conflicts.iter().any(|c| c.starts_with("secret prod/s")));
        assert!(diag
            .conflicts
            .iter()
            .any(|c| c.kind == ObjectKind::Secret && c.name == "prod/s"));
    }

    #[test]
    fn earlier_sources_win_over_later_ones() {
        let mut m = Merger::new(vec!["file".into(), "http".into()]);
        m.update(snap("http", vec![pod("a-n", "u2", "http://x/")]));
        let (d, diag) = m.update(snap("file", vec![pod("a-n", "u1", "/d/a.yaml")]));
        assert_eq!(d.pods.keys().collect::<Vec<_>>(), vec!["u1"]);
        assert_eq!(diag.conflicts[0].ignored.location, "http://x/");
    }

    #[test]
    fn kept_origins_and_failing_sources_are_carried_into_desired_and_diagnostics() {
        let mut m = Merger::new(vec!["file".into(), "http".into()]);
        m.update(snap("file", vec![pod("a-n", "u1", "/d/a.yaml")]));
        let failing = Snapshot {
            source: "http".into(),
            keep_origins: vec!["url:http://x/".into()],
            failing: Some("cannot connect".into()),
            ..Default::default()
        };
        let (d, diag) = m.update(failing);
        assert!(d.complete, "a failed first fetch counts as an answer");
        assert!(d.keep_origins.contains("url:http://x/"));
        assert_eq!(diag.failing["http"], "cannot connect");
        let (d, diag) = m.update(snap("http", vec![]));
        assert!(d.keep_origins.is_empty() && diag.failing.is_empty());
    }
}
