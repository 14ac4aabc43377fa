//! The shell around the workload controllers: Deployments, ReplicaSets and
//! DaemonSets become pods of the desired set.
//!
//! Owns the pods made for workloads (by UID, with their ReplicaSet and
//! creation time) and feeds the pure controllers ([`crate::workload`]) what
//! they observe: those pods with their status from the [`PodStore`]
//! (running, ready since, restarts) and whether a deleted one still
//! terminates. [`Controllers::expand`] runs them and adds the pods that
//! should exist to the merged desired set, so the manager runs them like
//! static pods; the pods a controller deletes are left out, so the manager
//! terminates them. The manager calls it on every snapshot and on every
//! change of a workload pod in the store (readiness): nothing polls.
//!
//! Pod names and UIDs are deterministic, so pods found in Docker at start
//! ([`Controllers::seed`]) are rebuilt identically and adopted: those of
//! the current template from the manifest, those of a Deployment's older
//! templates from the templates kept in the workload records
//! ([`super::workload_records`], restored by [`Controllers::restore`],
//! kept current from [`Controllers::records`]), which also carry the
//! generations across a restart.
//! A DaemonSet runs one pod here when the pod would pass admission on this
//! node (node selector, required node affinity against `--node-labels`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::jiff::Timestamp;

use super::pod_worker::WorkerHandle;
use super::store::PodStore;
use super::workload_records::Records;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};

use crate::events::Involved;
use crate::manifest::workload::Workload;
use crate::node::NodeInfo;
use crate::source::{Desired, SourcePod, SourceWorkload};
use crate::workload::objects as served;
use crate::workload::pods::{derived_uid, pod_for, Owner, Site};
use crate::workload::{
    daemonset, deployment, replicaset, template_hash, PodView, CONTROLLER_REVISION_HASH,
    POD_TEMPLATE_HASH,
};

/// One pod made for a workload.
#[derive(Debug, Clone)]
struct Made {
    pod: SourcePod,
    /// `Kind/namespace/name` of the workload.
    owner: String,
    /// Its ReplicaSet's `pod-template-hash` (empty for a standalone one).
    hash: String,
    created: Timestamp,
    /// Deleted by its controller; kept while its worker terminates it.
    deleted: bool,
}

/// The workloads as the API serves them, kept current by the manager after
/// every controller run.
#[derive(Debug)]
pub struct WorkloadObjects {
    pub deployments: crate::watch::Store<Deployment>,
    pub replicasets: crate::watch::Store<ReplicaSet>,
    pub daemonsets: crate::watch::Store<DaemonSet>,
    pub jobs: crate::watch::Store<Job>,
    pub cronjobs: crate::watch::Store<k8s_openapi::api::batch::v1::CronJob>,
    /// Jobs created from a CronJob through the API, for the controllers.
    pub manual: Arc<super::cronjobs::ManualJobs>,
}

impl WorkloadObjects {
    /// Empty stores drawing resourceVersions from the node's counter.
    pub fn new(versions: Arc<crate::watch::Versions>) -> Self {
        WorkloadObjects {
            deployments: crate::watch::Store::new(versions.clone()),
            replicasets: crate::watch::Store::new(versions.clone()),
            daemonsets: crate::watch::Store::new(versions.clone()),
            jobs: crate::watch::Store::new(versions.clone()),
            cronjobs: crate::watch::Store::new(versions),
            manual: Arc::default(),
        }
    }

    /// Makes the stores hold what the last controller run saw.
    pub fn publish(&self, c: &Controllers) {
        replace_all(&self.deployments, &c.deployments);
        replace_all(&self.replicasets, &c.replica_sets);
        replace_all(&self.daemonsets, &c.daemon_sets);
        replace_all(&self.jobs, c.jobs.served());
        replace_all(&self.cronjobs, c.cronjobs.served());
    }
}

/// Makes `store` hold exactly `objects` (unchanged ones are no-ops).
fn replace_all<T: crate::watch::Object>(store: &crate::watch::Store<T>, objects: &[T]) {
    let key = |m: &ObjectMeta| {
        format!(
            "{}/{}",
            m.namespace.as_deref().unwrap_or_default(),
            m.name.as_deref().unwrap_or_default()
        )
    };
    let keep: std::collections::BTreeSet<String> = objects.iter().map(|o| key(o.meta())).collect();
    for o in objects {
        store.put(&key(o.meta()), o.clone());
    }
    for old in store.list().0 {
        let k = key(old.meta());
        if !keep.contains(&k) {
            store.remove(&k);
        }
    }
}

/// What a Deployment's progress looks like: its template hash and its
/// updated, ready and available pods. A change is progress.
type Progress = (String, i32, i32, i32);

/// The pods made for workloads.
#[derive(Debug)]
pub struct Controllers {
    node: String,
    made: BTreeMap<String, Made>,
    /// Pods found in Docker at start: `namespace/name` → UID.
    found: BTreeMap<String, String>,
    /// When a ready pod becomes available (`minReadySeconds`): the
    /// controllers must look again then.
    wake: Option<Timestamp>,
    /// First seen, by workload or ReplicaSet key (their creation time).
    seen: BTreeMap<String, Timestamp>,
    /// The replica count last given to each ReplicaSet of a Deployment
    /// (`namespace/name`), for `ScalingReplicaSet` events.
    targets: BTreeMap<String, i32>,
    /// Per Deployment: what its progress looked like and since when, for
    /// `progressDeadlineSeconds`.
    progress: BTreeMap<String, (Progress, Timestamp)>,
    /// `metadata.generation` by served object key (`Kind/namespace/name`):
    /// the spec it was counted for (JSON) and the count. See
    /// [`Controllers::generation`].
    generations: BTreeMap<String, (String, i64)>,
    /// The generations of the previous pass (objects not served again are
    /// forgotten).
    last_generations: BTreeMap<String, (String, i64)>,
    /// Generations read back from the Docker labels of the pods found at
    /// start ([`crate::workload::pods::GENERATION_ANNOTATION`]): the highest per workload key.
    restored: BTreeMap<String, (String, i64)>,
    /// Per Deployment key: the templates of its ReplicaSets that have pods,
    /// and the current one, by `pod-template-hash` (kept in the records).
    templates: BTreeMap<String, BTreeMap<String, PodTemplateSpec>>,
    /// Templates read back from the records at start, not yet claimed by
    /// their Deployment.
    restored_templates: BTreeMap<String, BTreeMap<String, PodTemplateSpec>>,
    /// Events of the last run, for the manager to record.
    events: Vec<(Involved, &'static str, String)>,
    /// The objects with status, as of the last run.
    deployments: Vec<Deployment>,
    replica_sets: Vec<ReplicaSet>,
    daemon_sets: Vec<DaemonSet>,
    /// The Job controller's shell (`batch/v1` Jobs and their records).
    pub jobs: super::jobs::Jobs,
    /// The CronJob controller's shell (CronJobs and their records).
    pub cronjobs: super::cronjobs::CronJobs,
}

impl Controllers {
    pub fn new(node: &str) -> Self {
        Controllers {
            node: node.to_string(),
            made: BTreeMap::new(),
            found: BTreeMap::new(),
            wake: None,
            seen: BTreeMap::new(),
            targets: BTreeMap::new(),
            progress: BTreeMap::new(),
            generations: BTreeMap::new(),
            last_generations: BTreeMap::new(),
            restored: BTreeMap::new(),
            templates: BTreeMap::new(),
            restored_templates: BTreeMap::new(),
            events: Vec::new(),
            deployments: Vec::new(),
            replica_sets: Vec::new(),
            daemon_sets: Vec::new(),
            jobs: super::jobs::Jobs::new(node),
            cronjobs: super::cronjobs::CronJobs::new(node, local_zone()),
        }
    }

    /// Keeps the CronJob records in `dir` (`<root-dir>/cronjobs`).
    pub fn with_cronjob_records(mut self, dir: std::path::PathBuf) -> Self {
        self.cronjobs = self.cronjobs.with_records(dir);
        self
    }

    /// Keeps the Job records in `dir` (`<root-dir>/jobs`).
    pub fn with_job_records(mut self, dir: std::path::PathBuf) -> Self {
        self.jobs = self.jobs.with_records(dir);
        self
    }

    /// The metadata of an object rkubelet serves for a workload: UID,
    /// generation (see [`Controllers::generation`]), creation time. `spec`
    /// is the object's spec as served.
    fn served_meta(
        &mut self,
        mut meta: ObjectMeta,
        kind: &str,
        spec: &impl serde::Serialize,
        origin: &crate::manifest::Origin,
        now: Timestamp,
    ) -> ObjectMeta {
        let namespace = meta.namespace.clone().unwrap_or_default();
        let name = meta.name.clone().unwrap_or_default();
        let key = format!("{kind}/{namespace}/{name}");
        let created = *self.seen.entry(key.clone()).or_insert(now);
        meta.uid = Some(derived_uid(&[kind, &namespace, &name], &self.node, origin));
        let spec = serde_json::to_string(spec).unwrap_or_default();
        meta.generation = Some(self.generation(key, spec));
        meta.creation_timestamp = Some(Time(created));
        meta
    }

    /// `metadata.generation` of the object `key` whose spec is now `spec`:
    /// 1 when first seen, one more each time its spec changes (a manifest
    /// edit, or a Deployment scaling one of its ReplicaSets), as the API
    /// server counts. The controllers act on the spec in the same pass that
    /// serves it, so `status.observedGeneration` is always this number: a
    /// `kubectl rollout status` started after rkubelet read an edit sees
    /// the new generation observed together with the new rollout's counts.
    ///
    /// Counted in memory while rkubelet runs. Across a restart it goes on
    /// from what was kept: the workload records
    /// ([`super::workload_records`], every served object's generation and
    /// spec fingerprint, restored by [`Controllers::restore`]) and, for a
    /// workload's own key, the stamps on its pods (the annotation
    /// [`crate::workload::pods::GENERATION_ANNOTATION`], written into the
    /// Docker label `io.rkubelet.workload-generation`, read back by
    /// [`Controllers::seed`]); the highest one wins. The count goes on from
    /// it: the same number when the spec is still the one recorded, one
    /// more when the manifest changed meanwhile. So a change that made no
    /// pod (a scale-down, `paused`) is not lost; without the records file
    /// the pods' stamps alone can give a lower number.
    /// `observedGeneration == generation` holds throughout. Entries of
    /// objects no longer served are dropped (see [`Controllers::expand`]).
    fn generation(&mut self, key: String, spec: String) -> i64 {
        let previous = self
            .generations
            .get(&key)
            .or_else(|| self.last_generations.get(&key));
        let generation = match previous {
            Some((s, g)) if *s == spec => *g,
            Some((_, g)) => g + 1,
            None => match self.restored.remove(&key) {
                // First seen after a restart: on from what its pods carry.
                Some((print, g)) if print == fingerprint(&spec) => g,
                Some((_, g)) => g + 1,
                None => 1,
            },
        };
        self.generations.insert(key, (spec, generation));
        generation
    }

    /// The events of the last run (`ScalingReplicaSet`, `SuccessfulCreate`,
    /// `SuccessfulDelete`), taken out.
    pub fn take_events(&mut self) -> Vec<(Involved, &'static str, String)> {
        std::mem::take(&mut self.events)
    }

    /// Events for the pods `plan` creates and deletes, on their owner.
    fn record_pods(&mut self, owner: &Involved, created: &[String], deleted: &[String]) {
        for n in created {
            self.events.push((
                owner.clone(),
                "SuccessfulCreate",
                format!("Created pod: {n}"),
            ));
        }
        for n in deleted {
            self.events.push((
                owner.clone(),
                "SuccessfulDelete",
                format!("Deleted pod: {n}"),
            ));
        }
    }

    /// When the controllers must run again without any event: the next time
    /// a ready pod has been ready for its `minReadySeconds`.
    pub fn next_wake(&self) -> Option<Timestamp> {
        [self.wake, self.jobs.next_wake(), self.cronjobs.next_wake()]
            .into_iter()
            .flatten()
            .min()
    }

    /// UIDs of the pods a controller deleted that still terminate: when one
    /// is gone, the controllers must look again (a DaemonSet's or a
    /// `Recreate` Deployment's new pod waits for it).
    pub fn terminating(&self) -> impl Iterator<Item = &str> {
        (self.made.iter())
            .filter(|(_, m)| m.deleted)
            .map(|(uid, _)| uid.as_str())
    }

    /// Notes when the ready but not yet available pods become available.
    fn note_min_ready(&mut self, pods: &[PodView], min_ready: i32, now: Timestamp) {
        if min_ready <= 0 {
            return;
        }
        let secs = k8s_openapi::jiff::SignedDuration::from_secs(i64::from(min_ready));
        for p in pods.iter().filter(|p| !p.terminating) {
            if let Some(at) = p.ready_since.map(|s| s + secs).filter(|at| *at > now) {
                self.wake = Some(self.wake.map_or(at, |w| w.min(at)));
            }
        }
    }

    /// Remembers the pods running at start (`namespace/name`, UID), to adopt
    /// those a controller would make again.
    /// `found`: `namespace/name`, UID and the pod's generation stamp (the
    /// Docker label [`crate::runtime::labels::WORKLOAD_GENERATION`]).
    pub fn seed(&mut self, found: impl IntoIterator<Item = (String, String, Option<String>)>) {
        let found: Vec<_> = found.into_iter().collect();
        (self.jobs).seed(
            found
                .iter()
                .map(|(full, uid, _)| (full.clone(), uid.clone())),
        );
        for (full, uid, stamp) in found {
            self.found.insert(full, uid);
            let Some((generation, fingerprint, key)) = stamp.as_deref().and_then(parse_stamp)
            else {
                continue;
            };
            let best = self.restored.get(key).map_or(0, |(_, g)| *g);
            if generation > best {
                self.restored
                    .insert(key.to_string(), (fingerprint.to_string(), generation));
            }
        }
    }

    /// Takes in the workload records read at start: generations go on from
    /// them (the higher of theirs and the pods' stamps) and the pods of a
    /// Deployment's older templates can be rebuilt and adopted.
    pub fn restore(&mut self, records: Records) {
        for (key, (print, generation)) in records.generations {
            let best = self.restored.get(&key).map_or(0, |(_, g)| *g);
            if generation >= best {
                self.restored.insert(key, (print, generation));
            }
        }
        self.restored_templates = records.templates;
    }

    /// What must survive a restart, as of the last run: the generations of
    /// the served objects and the Deployments' templates that still have
    /// pods. Until every source has reported (`complete`), what was
    /// restored and not yet claimed is kept too.
    pub fn records(&self, complete: bool) -> Records {
        let mut records = Records {
            generations: (self.generations.iter())
                .map(|(k, (spec, g))| (k.clone(), (fingerprint(spec), *g)))
                .collect(),
            templates: self.templates.clone(),
        };
        if !complete {
            for (k, v) in &self.restored {
                records.generations.entry(k.clone()).or_insert(v.clone());
            }
            for (k, v) in &self.restored_templates {
                records.templates.entry(k.clone()).or_insert(v.clone());
            }
        }
        records
    }

    /// The generation stamp of the workload `kind` `namespace/name` whose
    /// spec is `spec` (see [`crate::workload::pods::GENERATION_ANNOTATION`]).
    fn stamp(
        &mut self,
        kind: &str,
        namespace: &str,
        name: &str,
        spec: &impl serde::Serialize,
    ) -> String {
        let key = format!("{kind}/{namespace}/{name}");
        let spec = serde_json::to_string(spec).unwrap_or_default();
        let print = fingerprint(&spec);
        let generation = self.generation(key.clone(), spec);
        format!("{generation} {print} {key}")
    }

    /// Runs the controllers of `desired`'s workloads and adds their pods to
    /// `desired.pods`. `workers` tells which pods still have a worker (a
    /// deleted pod counts as terminating until its worker is done).
    pub fn expand(
        &mut self,
        desired: &mut Desired,
        store: &PodStore,
        workers: &HashMap<String, WorkerHandle>,
        node: &NodeInfo,
        now: Timestamp,
    ) {
        self.wake = None;
        self.deployments.clear();
        self.replica_sets.clear();
        self.daemon_sets.clear();
        self.last_generations = std::mem::take(&mut self.generations);
        let alive = |uid: &str| workers.get(uid).is_some_and(|w| !w.done.is_cancelled());
        self.made.retain(|uid, m| !m.deleted || alive(uid));
        for m in self.made.values_mut() {
            if !desired.workloads.contains_key(&m.owner) {
                m.deleted = true;
            }
        }
        self.progress
            .retain(|key, _| desired.workloads.contains_key(key));
        self.templates
            .retain(|key, _| desired.workloads.contains_key(key));
        for (key, sw) in &desired.workloads {
            match &*sw.object {
                Workload::Deployment(_) => self.deployment(key, sw, store, now),
                Workload::ReplicaSet(_) => self.replica_set(key, sw, store, now),
                Workload::DaemonSet(_) => self.daemon_set(key, sw, store, node, now),
                Workload::CronJob(_) => {}
                Workload::Job(_) => {}
            }
        }
        // CronJobs hand their Jobs in (reading the Jobs' outcomes of the
        // previous pass), then the Jobs run: from manifests and from CronJobs.
        self.cronjobs.expand(desired, &self.jobs, now);
        self.jobs.expand(desired, store, now);
        for (uid, m) in &self.made {
            if !m.deleted {
                desired.pods.insert(uid.clone(), m.pod.clone());
            }
        }
    }

    fn views(&self, owner: &str, hash: Option<&str>, store: &PodStore) -> Vec<PodView> {
        (self.made.iter())
            .filter(|(_, m)| m.owner == owner && hash.is_none_or(|h| m.hash == h))
            .map(|(uid, m)| view(uid, m, store))
            .collect()
    }

    /// Adopts pods found at start that `make` builds again identically.
    fn adopt(
        &mut self,
        key: &str,
        hash: &str,
        namespace: &str,
        prefix: &str,
        make: impl Fn(&str) -> SourcePod,
        now: Timestamp,
    ) {
        let candidates: Vec<(String, String)> = (self.found.iter())
            .filter(|(full, _)| {
                full.strip_prefix(&format!("{namespace}/{prefix}-"))
                    .is_some_and(|suffix| suffix.len() == 5 && !suffix.contains('-'))
            })
            .map(|(f, u)| (f.clone(), u.clone()))
            .collect();
        for (full, uid) in candidates {
            let name = full.split_once('/').map(|(_, n)| n).unwrap_or_default();
            let pod = make(name);
            if pod.uid() == uid && !self.made.contains_key(&uid) {
                self.found.remove(&full);
                self.remember(pod, key, hash, now);
            }
        }
    }

    fn deployment(&mut self, key: &str, sw: &SourceWorkload, store: &PodStore, now: Timestamp) {
        let Workload::Deployment(d) = &*sw.object else {
            return;
        };
        let (Some(spec), Some(name)) = (&d.spec, d.metadata.name.as_deref()) else {
            return;
        };
        let namespace = d.metadata.namespace.as_deref().unwrap_or("default");
        let new_hash = template_hash(&spec.template);
        let strategy = match spec.strategy.as_ref().and_then(|s| s.type_.as_deref()) {
            Some("Recreate") => deployment::Strategy::Recreate,
            _ => {
                let ru = spec
                    .strategy
                    .as_ref()
                    .and_then(|s| s.rolling_update.as_ref());
                let pct = || {
                    k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String("25%".into())
                };
                deployment::Strategy::RollingUpdate {
                    max_surge: ru.and_then(|r| r.max_surge.clone()).unwrap_or_else(pct),
                    max_unavailable: ru
                        .and_then(|r| r.max_unavailable.clone())
                        .unwrap_or_else(pct),
                }
            }
        };
        let dspec = deployment::Spec {
            replicas: spec.replicas.unwrap_or(1),
            strategy,
            paused: spec.paused.unwrap_or(false),
            min_ready_seconds: spec.min_ready_seconds.unwrap_or(0),
        };
        let node = self.node.clone();
        let stamp = self.stamp("Deployment", namespace, name, &d.spec);
        let make = |hash: &str, template: &PodTemplateSpec, pod_name: &str| {
            let rs = format!("{name}-{hash}");
            let owner = Owner {
                kind: "ReplicaSet".into(),
                uid: derived_uid(&["ReplicaSet", namespace, &rs], &node, &sw.origin),
                name: rs,
            };
            let pod = pod_for(
                namespace,
                pod_name,
                template,
                &[(POD_TEMPLATE_HASH, hash)],
                &owner,
                Site {
                    node: &node,
                    origin: &sw.origin,
                    seen: now,
                    generation: &stamp,
                },
            );
            SourcePod {
                pod: Arc::new(pod),
                origin: sw.origin.clone(),
            }
        };
        // Its templates: the current one, and older ones whose pods may
        // still run (restored from the records after a restart).
        let mut templates = self.templates.remove(key).unwrap_or_default();
        for (h, t) in self.restored_templates.remove(key).unwrap_or_default() {
            templates.entry(h).or_insert(t);
        }
        templates.insert(new_hash.clone(), spec.template.clone());
        for (hash, template) in &templates {
            let prefix = format!("{name}-{hash}");
            self.adopt(
                key,
                hash,
                namespace,
                &prefix,
                |n| make(hash, template, n),
                now,
            );
        }
        // The ReplicaSets, oldest first.
        let mut hashes: Vec<(Timestamp, String)> = Vec::new();
        for m in self.made.values().filter(|m| m.owner == key) {
            match hashes.iter_mut().find(|(_, h)| *h == m.hash) {
                Some((t, _)) => *t = (*t).min(m.created),
                None => hashes.push((m.created, m.hash.clone())),
            }
        }
        hashes.sort();
        let sets: Vec<deployment::ReplicaSetView> = (hashes.iter())
            .map(|(_, h)| {
                let pods = self.views(key, Some(h), store);
                deployment::ReplicaSetView {
                    hash: h.clone(),
                    replicas: pods.iter().filter(|p| !p.terminating).count() as i32,
                    pods,
                }
            })
            .collect();
        // The Deployment and its ReplicaSets as served, with their status.
        let status = deployment::status(&dspec, &new_hash, &sets, now);
        let mut served_d = d.clone();
        served_d.metadata =
            self.served_meta(d.metadata.clone(), "Deployment", &d.spec, &sw.origin, now);
        // Progress: the new template, more updated, ready or available pods.
        let shape = (
            new_hash.clone(),
            status.updated,
            status.ready,
            status.available,
        );
        let since = match self.progress.get(key) {
            Some((s, t)) if *s == shape => *t,
            _ => now,
        };
        self.progress.insert(key.to_string(), (shape, since));
        let deadline = k8s_openapi::jiff::SignedDuration::from_secs(i64::from(
            spec.progress_deadline_seconds.unwrap_or(600),
        ));
        let stalled = !status.complete && !dspec.paused && since + deadline <= now;
        if !status.complete && !dspec.paused && !stalled {
            let at = since + deadline;
            self.wake = Some(self.wake.map_or(at, |w| w.min(at)));
        }
        if let Some(spec) = served_d.spec.as_mut() {
            crate::manifest::defaults::apply_template(&mut spec.template);
        }
        served_d.status = Some(served::deployment_status(
            &status,
            &format!("{name}-{new_hash}"),
            served_d.metadata.generation.unwrap_or(1),
            stalled,
        ));
        let d_involved = involved("Deployment", &served_d.metadata);
        let d_owner = OwnerReference {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            name: name.to_string(),
            uid: served_d.metadata.uid.clone().unwrap_or_default(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        };
        self.deployments.push(served_d);
        for (hash, replicas) in deployment::scale(&dspec, &new_hash, &sets, now) {
            let rs = format!("{name}-{hash}");
            let pods = self.views(key, Some(&hash), store);
            self.note_min_ready(&pods, dspec.min_ready_seconds, now);
            let mut labels = (spec.template.metadata.as_ref())
                .and_then(|m| m.labels.clone())
                .unwrap_or_default();
            labels.insert(POD_TEMPLATE_HASH.into(), hash.clone());
            let mut selector = spec.selector.clone();
            (selector.match_labels.get_or_insert_with(Default::default))
                .insert(POD_TEMPLATE_HASH.into(), hash.clone());
            let meta = ObjectMeta {
                name: Some(rs.clone()),
                namespace: Some(namespace.to_string()),
                labels: Some(labels.clone()),
                owner_references: Some(vec![d_owner.clone()]),
                ..Default::default()
            };
            let mut template = (hash == new_hash).then(|| spec.template.clone());
            if let Some(t) = template.as_mut() {
                t.metadata.get_or_insert_with(Default::default).labels = Some(labels);
            }
            let counts = replicaset::count(&pods, dspec.min_ready_seconds, now);
            let rs_spec = Some(ReplicaSetSpec {
                replicas: Some(replicas),
                min_ready_seconds: Some(dspec.min_ready_seconds),
                selector,
                template,
            });
            let metadata = self.served_meta(meta, "ReplicaSet", &rs_spec, &sw.origin, now);
            let generation = metadata.generation.unwrap_or(1);
            let mut rs_spec = rs_spec;
            if let Some(t) = rs_spec.as_mut().and_then(|s| s.template.as_mut()) {
                crate::manifest::defaults::apply_template(t);
            }
            let served_rs = ReplicaSet {
                metadata,
                spec: rs_spec,
                status: Some(served::replica_set_status(&counts, generation)),
            };
            let rs_involved = involved("ReplicaSet", &served_rs.metadata);
            self.replica_sets.push(served_rs);
            let rs_key = format!("{namespace}/{rs}");
            let live = pods.iter().filter(|p| !p.terminating).count() as i32;
            let before = self.targets.insert(rs_key, replicas).unwrap_or(live);
            if before != replicas {
                let how = if replicas > before { "up" } else { "down" };
                self.events.push((
                    d_involved.clone(),
                    "ScalingReplicaSet",
                    format!("Scaled {how} replica set {rs} from {before} to {replicas}"),
                ));
            }
            let plan = replicaset::reconcile(
                &format!("{namespace}/{rs}"),
                &rs,
                replicas,
                dspec.min_ready_seconds,
                &pods,
                now,
            );
            let created: &[String] = if hash == new_hash { &plan.create } else { &[] };
            self.record_pods(&rs_involved, created, &plan.delete);
            if hash == new_hash {
                for pod_name in plan.create {
                    let pod = make(&hash, &spec.template, &pod_name);
                    self.remember(pod, key, &hash, now);
                }
            }
            self.delete(key, &plan.delete);
        }
        // Keep the templates whose ReplicaSets still have pods.
        let made = &self.made;
        templates
            .retain(|h, _| *h == new_hash || made.values().any(|m| m.owner == key && m.hash == *h));
        self.templates.insert(key.to_string(), templates);
    }

    fn replica_set(&mut self, key: &str, sw: &SourceWorkload, store: &PodStore, now: Timestamp) {
        let Workload::ReplicaSet(r) = &*sw.object else {
            return;
        };
        let (Some(spec), Some(name)) = (&r.spec, r.metadata.name.as_deref()) else {
            return;
        };
        let Some(template) = &spec.template else {
            return;
        };
        let namespace = r.metadata.namespace.as_deref().unwrap_or("default");
        let node = self.node.clone();
        let stamp = self.stamp("ReplicaSet", namespace, name, &r.spec);
        let owner = Owner {
            kind: "ReplicaSet".into(),
            uid: derived_uid(&["ReplicaSet", namespace, name], &node, &sw.origin),
            name: name.to_string(),
        };
        let make = |pod_name: &str| SourcePod {
            pod: Arc::new(pod_for(
                namespace,
                pod_name,
                template,
                &[],
                &owner,
                Site {
                    node: &node,
                    origin: &sw.origin,
                    seen: now,
                    generation: &stamp,
                },
            )),
            origin: sw.origin.clone(),
        };
        self.adopt(key, "", namespace, name, make, now);
        let pods = self.views(key, None, store);
        self.note_min_ready(&pods, spec.min_ready_seconds.unwrap_or(0), now);
        let plan = replicaset::reconcile(
            &format!("{namespace}/{name}"),
            name,
            spec.replicas.unwrap_or(1),
            spec.min_ready_seconds.unwrap_or(0),
            &pods,
            now,
        );
        let mut served_rs = r.clone();
        served_rs.metadata =
            self.served_meta(r.metadata.clone(), "ReplicaSet", &r.spec, &sw.origin, now);
        let generation = served_rs.metadata.generation.unwrap_or(1);
        served_rs.status = Some(served::replica_set_status(&plan.status, generation));
        if let Some(t) = served_rs.spec.as_mut().and_then(|s| s.template.as_mut()) {
            crate::manifest::defaults::apply_template(t);
        }
        let rs_involved = involved("ReplicaSet", &served_rs.metadata);
        self.replica_sets.push(served_rs);
        self.record_pods(&rs_involved, &plan.create, &plan.delete);
        for pod_name in plan.create {
            let pod = make(&pod_name);
            self.remember(pod, key, "", now);
        }
        self.delete(key, &plan.delete);
    }

    fn daemon_set(
        &mut self,
        key: &str,
        sw: &SourceWorkload,
        store: &PodStore,
        node_info: &NodeInfo,
        now: Timestamp,
    ) {
        let Workload::DaemonSet(ds_object) = &*sw.object else {
            return;
        };
        let (Some(spec), Some(name)) = (&ds_object.spec, ds_object.metadata.name.as_deref()) else {
            return;
        };
        let namespace = ds_object.metadata.namespace.as_deref().unwrap_or("default");
        let hash = template_hash(&spec.template);
        let node = self.node.clone();
        let stamp = self.stamp("DaemonSet", namespace, name, &ds_object.spec);
        let owner = Owner {
            kind: "DaemonSet".into(),
            uid: derived_uid(&["DaemonSet", namespace, name], &node, &sw.origin),
            name: name.to_string(),
        };
        // Its pods tolerate the node conditions, as the DaemonSet
        // controller's do (not part of the hash: the template is the user's).
        let mut template = spec.template.clone();
        crate::k8s::taints::add_daemon_tolerations(
            template.spec.get_or_insert_with(Default::default),
        );
        let make = |pod_name: &str| SourcePod {
            pod: Arc::new(pod_for(
                namespace,
                pod_name,
                &template,
                &[(CONTROLLER_REVISION_HASH, &hash)],
                &owner,
                Site {
                    node: &node,
                    origin: &sw.origin,
                    seen: now,
                    generation: &stamp,
                },
            )),
            origin: sw.origin.clone(),
        };
        self.adopt(key, &hash, namespace, name, make, now);
        // The node fits when the pod would pass admission here (which
        // checks NoExecute taints for a controller's pod) and tolerates its
        // NoSchedule taints (the scheduler's `TaintToleration` filter the
        // DaemonSet controller runs). A pod already here only needs to pass
        // admission: a NoSchedule taint does not evict.
        let probe = make(name).pod;
        let keeps = crate::admission::admit(&probe, node_info).is_ok();
        let fits = keeps && crate::admission::tolerates_node_taints(&probe, node_info).is_ok();
        let strategy = spec.update_strategy.as_ref();
        let update = match strategy.and_then(|s| s.type_.as_deref()) {
            Some("OnDelete") => daemonset::Update::OnDelete,
            _ => {
                let surge = (strategy.and_then(|s| s.rolling_update.as_ref()))
                    .and_then(|r| r.max_surge.as_ref())
                    .is_some_and(|s| crate::workload::scaled_value(s, 1, true) > 0);
                daemonset::Update::Rolling { surge }
            }
        };
        let min_ready = spec.min_ready_seconds.unwrap_or(0);
        let pods: Vec<daemonset::DaemonPod> = (self.made.iter())
            .filter(|(_, m)| m.owner == key)
            .map(|(uid, m)| daemonset::DaemonPod {
                view: view(uid, m, store),
                hash: m.hash.clone(),
            })
            .collect();
        let views: Vec<PodView> = pods.iter().map(|p| p.view.clone()).collect();
        self.note_min_ready(&views, min_ready, now);
        // Names follow the template: a replaced pod gets a new name.
        let owner_key = format!("{namespace}/{name}/{hash}");
        let ds = daemonset::Daemon {
            owner: &owner_key,
            prefix: name,
            fits,
            keeps,
            hash: &hash,
            update,
            min_ready_seconds: min_ready,
        };
        let plan = daemonset::reconcile(&ds, &pods, now);
        let mut served_ds = ds_object.clone();
        served_ds.metadata = self.served_meta(
            ds_object.metadata.clone(),
            "DaemonSet",
            &ds_object.spec,
            &sw.origin,
            now,
        );
        let generation = served_ds.metadata.generation.unwrap_or(1);
        served_ds.status = Some(served::daemon_set_status(&plan.status, generation));
        if let Some(spec) = served_ds.spec.as_mut() {
            crate::manifest::defaults::apply_template(&mut spec.template);
        }
        let ds_involved = involved("DaemonSet", &served_ds.metadata);
        self.daemon_sets.push(served_ds);
        let created: Vec<String> = plan.create.iter().cloned().collect();
        self.record_pods(&ds_involved, &created, &plan.delete);
        if let Some(pod_name) = plan.create {
            let pod = make(&pod_name);
            self.remember(pod, key, &hash, now);
        }
        self.delete(key, &plan.delete);
    }

    /// Keeps `pod` as made by workload `owner` (its ReplicaSet's
    /// `pod-template-hash`, empty for a standalone one) at `now`.
    fn remember(&mut self, pod: SourcePod, owner: &str, hash: &str, created: Timestamp) {
        self.made.insert(
            pod.uid().to_string(),
            Made {
                pod,
                owner: owner.to_string(),
                hash: hash.to_string(),
                created,
                deleted: false,
            },
        );
    }

    fn delete(&mut self, key: &str, names: &[String]) {
        for m in self.made.values_mut().filter(|m| m.owner == key) {
            if names
                .iter()
                .any(|n| Some(n.as_str()) == m.pod.pod.metadata.name.as_deref())
            {
                m.deleted = true;
            }
        }
    }
}

/// An event's object: a served workload.
fn involved(kind: &str, meta: &ObjectMeta) -> Involved {
    Involved {
        kind: kind.into(),
        namespace: meta.namespace.clone().unwrap_or_default(),
        name: meta.name.clone().unwrap_or_default(),
        uid: meta.uid.clone().unwrap_or_default(),
        field_path: None,
    }
}

/// What the controller sees of a made pod: its status from the store.
fn view(uid: &str, m: &Made, store: &PodStore) -> PodView {
    let pod: Option<Arc<Pod>> = store.pods().get(uid);
    let status = pod.as_ref().and_then(|p| p.status.as_ref());
    let ready_since = (status
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten())
    .find(|c| c.type_ == "Ready" && c.status == "True")
    .map(|c| c.last_transition_time.as_ref().map_or(m.created, |t| t.0));
    PodView {
        name: m.pod.pod.metadata.name.clone().unwrap_or_default(),
        created: m.created,
        running: status.and_then(|s| s.phase.as_deref()) == Some("Running"),
        ready_since: ready_since.filter(|_| !m.deleted),
        restarts: (status
            .and_then(|s| s.container_statuses.as_ref())
            .into_iter()
            .flatten())
        .map(|c| c.restart_count)
        .sum(),
        terminating: m.deleted,
    }
}

/// A spec's fingerprint in a generation stamp: 16 hex digits of its
/// SHA-256.
fn fingerprint(spec: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(spec.as_bytes())[..8])
}

/// `(generation, fingerprint, key)` of a generation stamp.
fn parse_stamp(stamp: &str) -> Option<(i64, &str, &str)> {
    let mut parts = stamp.splitn(3, ' ');
    let generation = parts.next()?.parse().ok()?;
    Some((generation, parts.next()?, parts.next()?))
}

/// The node's time zone (`/etc/localtime`, `$TZ`), for CronJobs without
/// `timeZone`; UTC when it cannot be read.
fn local_zone() -> k8s_openapi::jiff::tz::TimeZone {
    k8s_openapi::jiff::tz::TimeZone::try_system().unwrap_or(k8s_openapi::jiff::tz::TimeZone::UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generation_counts_spec_changes_and_forgets_objects_no_longer_served() {
        let mut c = Controllers::new("n1");
        let key = || "Deployment/default/web".to_string();
        assert_eq!(c.generation(key(), "{replicas:1}".into()), 1);
        // A new pass: the same spec keeps the number, a change adds one.
        c.last_generations = std::mem::take(&mut c.generations);
        assert_eq!(c.generation(key(), "{replicas:1}".into()), 1);
        c.last_generations = std::mem::take(&mut c.generations);
        assert_eq!(c.generation(key(), "{replicas:3}".into()), 2);
        assert_eq!(c.generation(key(), "{replicas:3}".into()), 2, "same pass");
        c.last_generations = std::mem::take(&mut c.generations);
        assert_eq!(c.generation(key(), "{replicas:1}".into()), 3, "edited back");
        // Not served in one pass: forgotten, as a deleted object.
        c.last_generations = std::mem::take(&mut c.generations);
        c.last_generations = std::mem::take(&mut c.generations);
        assert_eq!(c.generation(key(), "{replicas:1}".into()), 1);
    }

    #[test]
    fn the_records_keep_a_generation_no_pod_was_stamped_with() {
        let key = || "Deployment/default/web".to_string();
        let mut before = Controllers::new("n1");
        let stamp = before.stamp(
            "Deployment",
            "default",
            "web",
            &serde_json::json!({"replicas": 3}),
        );
        // A scale-down: a new generation, no new pod carries it.
        before.last_generations = std::mem::take(&mut before.generations);
        let down = serde_json::json!({"replicas": 1}).to_string();
        assert_eq!(before.generation(key(), down.clone()), 2);
        let records = before.records(true);
        // After a restart: the records and the pods' older stamps.
        let mut after = Controllers::new("n1");
        after.restore(records.clone());
        after.seed([("default/web-a-1".to_string(), "u1".to_string(), Some(stamp))]);
        assert_eq!(after.generation(key(), down), 2, "never lower");
        // Not claimed yet while a source has not reported: still recorded.
        let mut waiting = Controllers::new("n1");
        waiting.restore(records.clone());
        assert_eq!(waiting.records(false), records);
        assert_eq!(waiting.records(true), Records::default());
    }

    #[test]
    fn after_a_restart_the_generation_goes_on_from_the_stamps_on_the_pods() {
        let spec = "{replicas:3}".to_string();
        let mut before = Controllers::new("n1");
        assert_eq!(
            before.generation("Deployment/default/web".into(), "{replicas:1}".into()),
            1
        );
        before.last_generations = std::mem::take(&mut before.generations);
        let stamp = before.stamp(
            "Deployment",
            "default",
            "web",
            &serde_json::json!({"replicas": 3}),
        );
        assert!(
            stamp.starts_with("2 ") && stamp.ends_with(" Deployment/default/web"),
            "{stamp}"
        );
        let (_, print, _) = parse_stamp(&stamp).expect("stamp");
        assert_eq!(
            print,
            fingerprint(&serde_json::json!({"replicas": 3}).to_string())
        );
        // A restarted rkubelet finds pods stamped 1 and 2.
        let seeded = |c: &mut Controllers| {
            c.seed([
                (
                    "default/web-a-1".to_string(),
                    "u1".to_string(),
                    Some(format!(
                        "1 {} Deployment/default/web",
                        fingerprint("{replicas:1}")
                    )),
                ),
                (
                    "default/web-a-2".to_string(),
                    "u2".to_string(),
                    Some(stamp.clone()),
                ),
                ("default/other".to_string(), "u3".to_string(), None),
                (
                    "default/junk".to_string(),
                    "u4".to_string(),
                    Some("x y".into()),
                ),
            ]);
        };
        let mut after = Controllers::new("n1");
        seeded(&mut after);
        let same = serde_json::json!({"replicas": 3}).to_string();
        assert_eq!(
            after.generation("Deployment/default/web".into(), same),
            2,
            "unchanged spec"
        );
        let mut edited = Controllers::new("n1");
        seeded(&mut edited);
        assert_eq!(
            edited.generation("Deployment/default/web".into(), spec),
            3,
            "edited while down"
        );
        assert_eq!(
            edited.generation("DaemonSet/default/web".into(), "{}".into()),
            1
        );
    }
}
