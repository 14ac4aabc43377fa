//! The shell around the Job controller: Jobs become pods of the desired
//! set, and each Job's outcome is kept on disk.
//!
//! Owns the durable Job records (`<root-dir>/jobs/<namespace>_<name>_<uid>.json`,
//! [`crate::workload::job::Record`] as versioned JSON, written atomically:
//! temporary file, fsync, rename, fsync of the directory), the Jobs as
//! served (with status) and the pods made for them. [`Jobs::expand`] runs
//! the pure controller ([`crate::workload::job::sync`]) for every Job of
//! the desired set, feeding it its pods' status from the [`PodStore`], and
//! adds the pods that should exist to the desired set: finished pods stay
//! (for `kubectl logs job/x`) until the Job's ttl or the Job is gone — as
//! long as their containers do (a finished pod whose containers were
//! removed while rkubelet was down is not made again).
//!
//! A Job's identity is its UID, a hash of its manifest content (without
//! `suspend` and `parallelism`, which a cluster lets one change): the same
//! manifest is the same Job across restarts and re-reads, and a finished
//! one never runs again; an edit is a new Job. At start the records are
//! read; a Job without a (readable) record is rebuilt from what Docker
//! still has of it (its pods' containers, adopted with their exit codes)
//! and only a Job with no trace at all starts afresh. Records of Jobs no
//! longer defined are removed once every source has reported.
//!
//! Jobs made by another controller (a CronJob) are handed in the same way
//! as Jobs from files: as [`SourceWorkload`]s in [`Desired::workloads`]
//! ([`hand_in`]); they are the same Jobs with the same records.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{EnvVar, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::store::PodStore;
use crate::events::Involved;
use crate::manifest::workload::{self, Workload};
use crate::manifest::{ManifestError, Origin};
use crate::source::{Desired, SourcePod, SourceWorkload};
use crate::workload::job::{self, Observed, Record, COMPLETION_INDEX, COMPLETION_INDEX_ENV};
use crate::workload::pods::{pod_for, Owner, Site};

/// Hands a Job made by another controller (a CronJob) to the Job
/// controller: validated and defaulted as a Job from a file (its UID, when
/// unset, is a hash of its content), then put into `desired.workloads`
/// under `Job/<namespace>/<name>`. Call it before [`Jobs::expand`] in every
/// pass for as long as the Job should exist: a Job not handed in any more
/// is deleted (its pods terminated, its record removed).
pub fn hand_in(
    desired: &mut Desired,
    mut job: Job,
    origin: &Origin,
) -> Result<String, ManifestError> {
    workload::validate_job(&job)?;
    workload::default_job(&mut job);
    let w = Workload::Job(job);
    let key = format!("Job/{}", w.key());
    desired.workloads.insert(
        key.clone(),
        SourceWorkload {
            object: Arc::new(w),
            origin: origin.clone(),
        },
    );
    Ok(key)
}

/// The Jobs, their records and their pods.
#[derive(Debug)]
pub struct Jobs {
    node: String,
    /// `<root-dir>/jobs`, or none (records in memory only).
    dir: Option<PathBuf>,
    /// Have the records on disk been read?
    loaded: bool,
    /// Records by Job UID.
    records: BTreeMap<String, Record>,
    /// Record files that could not be read, by Job UID (from the name).
    unreadable: BTreeMap<String, PathBuf>,
    /// Pods found in Docker at start: `namespace/name` → UID.
    found: BTreeMap<String, String>,
    /// The UIDs of the pods found in Docker at start.
    in_docker: BTreeSet<String>,
    /// The Job UID of every pod the last run wanted, by pod UID.
    made: BTreeMap<String, String>,
    served: Vec<Job>,
    wake: Option<Timestamp>,
    events: Vec<(Involved, &'static str, String)>,
    warnings: Vec<(Involved, &'static str, String)>,
}

impl Jobs {
    pub fn new(node: &str) -> Self {
        Jobs {
            node: node.to_string(),
            dir: None,
            loaded: false,
            records: BTreeMap::new(),
            unreadable: BTreeMap::new(),
            found: BTreeMap::new(),
            in_docker: BTreeSet::new(),
            made: BTreeMap::new(),
            served: Vec::new(),
            wake: None,
            events: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Keeps the records in `dir` (`<root-dir>/jobs`).
    pub fn with_records(mut self, dir: PathBuf) -> Self {
        self.dir = Some(dir);
        self
    }

    /// Remembers the pods found in Docker at start (`namespace/name`, UID).
    pub fn seed(&mut self, found: impl IntoIterator<Item = (String, String)>) {
        for (full, uid) in found {
            self.in_docker.insert(uid.clone());
            self.found.insert(full, uid);
        }
    }

    /// The Jobs as served, with status, as of the last run.
    pub fn served(&self) -> &[Job] {
        &self.served
    }

    /// The served Job `namespace/name`, with its status.
    pub fn job(&self, namespace: &str, name: &str) -> Option<&Job> {
        self.served.iter().find(|j| {
            j.metadata.namespace.as_deref() == Some(namespace)
                && j.metadata.name.as_deref() == Some(name)
        })
    }

    /// The record of the Job with `uid` (also after its ttl removed it).
    pub fn record(&self, uid: &str) -> Option<&Record> {
        self.records.get(uid)
    }

    /// When a Job must be looked at again (deadline, failure backoff, ttl).
    pub fn next_wake(&self) -> Option<Timestamp> {
        self.wake
    }

    /// Normal events of the last run, taken out.
    pub fn take_events(&mut self) -> Vec<(Involved, &'static str, String)> {
        std::mem::take(&mut self.events)
    }

    /// Warning events of the last run, taken out.
    pub fn take_warnings(&mut self) -> Vec<(Involved, &'static str, String)> {
        std::mem::take(&mut self.warnings)
    }

    /// Runs the Job controller for every Job in `desired` and adds their
    /// pods to `desired.pods`.
    pub fn expand(&mut self, desired: &mut Desired, store: &PodStore, now: Timestamp) {
        self.load();
        self.wake = None;
        self.served.clear();
        let jobs: Vec<SourceWorkload> = (desired.workloads.values())
            .filter(|sw| matches!(&*sw.object, Workload::Job(_)))
            .cloned()
            .collect();
        let mut live: BTreeSet<String> = BTreeSet::new();
        let previous = std::mem::take(&mut self.made);
        for sw in &jobs {
            let Workload::Job(j) = &*sw.object else {
                continue;
            };
            if let Some(uid) = j.metadata.uid.clone() {
                live.insert(uid);
                self.sync(j, sw, desired, store, &previous, now);
            }
        }
        if desired.complete {
            let gone: Vec<Record> = (self.records.values())
                .filter(|r| !live.contains(&r.uid))
                .cloned()
                .collect();
            for r in gone {
                self.records.remove(&r.uid);
                self.remove_file(&r);
            }
            let unreadable: Vec<(String, PathBuf)> = (self.unreadable.iter())
                .filter(|(uid, _)| !live.contains(*uid))
                .map(|(u, p)| (u.clone(), p.clone()))
                .collect();
            for (uid, path) in unreadable {
                self.unreadable.remove(&uid);
                let _ = std::fs::remove_file(&path);
            }
        }
    }

    fn sync(
        &mut self,
        j: &Job,
        sw: &SourceWorkload,
        desired: &mut Desired,
        store: &PodStore,
        previous: &BTreeMap<String, String>,
        now: Timestamp,
    ) {
        let uid = j.metadata.uid.clone().unwrap_or_default();
        let namespace = j
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let name = j.metadata.name.clone().unwrap_or_default();
        let spec = job::Spec::of(j);
        let template = j
            .spec
            .as_ref()
            .map(|s| s.template.clone())
            .unwrap_or_default();
        let owner = Owner {
            kind: "Job".into(),
            name: name.clone(),
            uid: uid.clone(),
        };
        let node = self.node.clone();
        let make = |pod_name: &str, index: Option<i32>, seen: Timestamp| -> SourcePod {
            let t = indexed_template(&template, &name, index);
            let index_label = index.map(|i| i.to_string());
            let extra: Vec<(&str, &str)> = index_label
                .as_deref()
                .map(|i| vec![(COMPLETION_INDEX, i)])
                .unwrap_or_default();
            SourcePod {
                pod: Arc::new(pod_for(
                    &namespace,
                    pod_name,
                    &t,
                    &extra,
                    &owner,
                    Site {
                        node: &node,
                        origin: &sw.origin,
                        seen,
                        generation: "",
                    },
                )),
                origin: sw.origin.clone(),
            }
        };
        let involved = Involved {
            kind: "Job".into(),
            namespace: namespace.clone(),
            name: name.clone(),
            uid: uid.clone(),
            field_path: None,
        };
        let fresh = !self.records.contains_key(&uid);
        let mut record = match self.records.get(&uid) {
            Some(r) => r.clone(),
            None => {
                let mut r = Record::new(&uid, &namespace, &name, now);
                // No record: what Docker still has of the Job's pods.
                let prefix = format!("{namespace}/{name}-");
                let traces: Vec<(String, String)> = (self.found.iter())
                    .filter(|(full, _)| full.starts_with(&prefix))
                    .map(|(f, u)| (f.clone(), u.clone()))
                    .collect();
                for (full, pod_uid) in traces {
                    let pod_name = full.split_once('/').map(|(_, n)| n).unwrap_or_default();
                    let index = index_of(&name, pod_name);
                    if make(pod_name, index, now).uid() == pod_uid {
                        self.found.remove(&full);
                        r.pods.push(job::RecordPod {
                            name: pod_name.to_string(),
                            index,
                            created: Time(now),
                            outcome: None,
                            finished: None,
                            deleted: false,
                            ignored: false,
                        });
                    }
                }
                if !r.pods.is_empty() || r.start_time.is_some() {
                    r.start_time = Some(Time(now));
                }
                if let Some(path) = self.unreadable.remove(&uid) {
                    let how = if r.pods.is_empty() {
                        "no trace of it in Docker: it starts as a new Job".to_string()
                    } else {
                        format!("rebuilt from {} pod(s) found in Docker", r.pods.len())
                    };
                    let message = format!("Job record {} could not be read; {how}", path.display());
                    tracing::warn!(job = %format!("{namespace}/{name}"), "{message}");
                    self.warnings
                        .push((involved.clone(), "FailedRecord", message));
                } else if !r.pods.is_empty() {
                    tracing::warn!(job = %format!("{namespace}/{name}"), pods = r.pods.len(),
                        "Job has no record; rebuilt from its pods found in Docker");
                }
                r
            }
        };
        let before = record.clone();
        let observed: Vec<Observed> = (record.pods.iter())
            .filter(|p| !p.deleted)
            .map(|p| observe(&make(&p.name, p.index, now), store))
            .collect();
        let owner_key = format!("{namespace}/{name}/{uid}");
        let plan = job::sync(&owner_key, &spec, &mut record, &observed, now);
        if let Some(at) = plan.wake {
            self.wake = Some(self.wake.map_or(at, |w| w.min(at)));
        }
        for p in &plan.create {
            self.events.push((
                involved.clone(),
                "SuccessfulCreate",
                format!("Created pod: {}", p.name),
            ));
        }
        for n in &plan.delete {
            self.events.push((
                involved.clone(),
                "SuccessfulDelete",
                format!("Deleted pod: {n}"),
            ));
        }
        for (reason, message, warning) in plan.events {
            if warning {
                self.warnings.push((involved.clone(), reason, message));
            } else {
                self.events.push((involved.clone(), reason, message));
            }
        }
        if fresh || record != before {
            self.store(&record);
        }
        if !record.removed {
            for p in record.pods.iter().filter(|p| !p.deleted) {
                let pod = make(&p.name, p.index, p.created.0);
                let pod_uid = pod.uid().to_string();
                // A finished pod is shown while its containers exist; one
                // whose containers went away (pruned while rkubelet was
                // down) is not made again: it would run again.
                let shown = previous.contains_key(&pod_uid) || self.in_docker.contains(&pod_uid);
                if p.outcome.is_some() && !shown {
                    continue;
                }
                desired.pods.insert(pod_uid.clone(), pod);
                self.made.insert(pod_uid, uid.clone());
            }
            let mut served = j.clone();
            served.metadata.creation_timestamp = Some(record.created.clone());
            served.metadata.generation = Some(1);
            served.status = Some(job::status(&spec, &record, &observed));
            self.served.push(served);
        }
        self.records.insert(uid, record);
    }

    /// Reads the records on disk, once.
    fn load(&mut self) {
        if self.loaded {
            return;
        }
        self.loaded = true;
        let Some(dir) = self.dir.clone() else { return };
        if let Err(e) = std::fs::create_dir_all(&dir) {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot create the Job record directory; Job outcomes will not survive a restart");
            return;
        }
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot read the Job records");
                return;
            }
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(file) = path.file_name().and_then(|f| f.to_str()) else {
                continue;
            };
            if file.ends_with(".tmp") {
                let _ = std::fs::remove_file(&path);
                continue;
            }
            let Some(stem) = file.strip_suffix(".json") else {
                continue;
            };
            let uid_of_name = stem.rsplit('_').next().unwrap_or_default().to_string();
            match std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| Record::from_json(&b))
            {
                Ok(r) => {
                    self.records.insert(r.uid.clone(), r);
                }
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e,
                        "Job record cannot be read; the Job is rebuilt from Docker if it runs there");
                    self.unreadable.insert(uid_of_name, path);
                }
            }
        }
    }

    fn path(&self, r: &Record) -> Option<PathBuf> {
        (self.dir.as_ref()).map(|d| d.join(format!("{}_{}_{}.json", r.namespace, r.name, r.uid)))
    }

    /// Writes `r` atomically (temporary file, fsync, rename, fsync dir).
    fn store(&self, r: &Record) {
        let Some(path) = self.path(r) else { return };
        if let Err(e) = write_atomic(&path, &r.to_json()) {
            tracing::warn!(file = %path.display(), error = %e,
                "cannot write the Job record; its outcome may not survive a restart");
        }
    }

    fn remove_file(&self, r: &Record) {
        if let Some(path) = self.path(r) {
            match std::fs::remove_file(&path) {
                Ok(()) => tracing::info!(file = %path.display(), "Job gone: its record removed"),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "cannot remove the Job record")
                }
            }
        }
    }

    /// The UIDs of the pods the last run put in the desired set, with
    /// their Job's UID.
    pub fn pods(&self) -> impl Iterator<Item = (&str, &str)> {
        (self.made.iter()).map(|(uid, job)| (uid.as_str(), job.as_str()))
    }
}

/// Replaces `path` with `content` atomically and durably.
pub(super) fn write_atomic(path: &Path, content: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(content)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// The index in an Indexed Job's pod name `<job>-<index>-<suffix>`.
fn index_of(job: &str, pod: &str) -> Option<i32> {
    let rest = pod.strip_prefix(job)?.strip_prefix('-')?;
    let (index, suffix) = rest.split_once('-')?;
    (suffix.len() == 5).then(|| index.parse().ok()).flatten()
}

/// The template of an Indexed Job's pod `index`: the index as annotation,
/// as `JOB_COMPLETION_INDEX` in every container and the hostname
/// `<job>-<index>`.
fn indexed_template(template: &PodTemplateSpec, job: &str, index: Option<i32>) -> PodTemplateSpec {
    let Some(index) = index else {
        return template.clone();
    };
    let mut t = template.clone();
    let meta = t.metadata.get_or_insert_with(Default::default);
    (meta.annotations.get_or_insert_with(Default::default))
        .insert(COMPLETION_INDEX.into(), index.to_string());
    let spec = t.spec.get_or_insert_with(Default::default);
    if spec.hostname.is_none() {
        spec.hostname = Some(format!("{job}-{index}"));
    }
    let env = EnvVar {
        name: COMPLETION_INDEX_ENV.into(),
        value: Some(index.to_string()),
        value_from: None,
    };
    let containers = spec.containers.iter_mut();
    for c in containers.chain(spec.init_containers.iter_mut().flatten()) {
        let list = c.env.get_or_insert_with(Vec::new);
        list.retain(|e| e.name != COMPLETION_INDEX_ENV);
        list.insert(0, env.clone());
    }
    t
}

/// What the controller sees of a pod: its phase, readiness, restarts and
/// when it finished, from the store.
fn observe(pod: &SourcePod, store: &PodStore) -> Observed {
    let name = pod.pod.metadata.name.clone().unwrap_or_default();
    let current: Option<Arc<Pod>> = store.pods().get(pod.uid());
    let status = current.as_ref().and_then(|p| p.status.as_ref());
    let statuses = || {
        (status.and_then(|s| s.container_statuses.as_ref()))
            .into_iter()
            .flatten()
    };
    Observed {
        name,
        phase: status.and_then(|s| s.phase.clone()).unwrap_or_default(),
        ready: (status
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten())
        .any(|c| c.type_ == "Ready" && c.status == "True"),
        restarts: statuses().map(|c| c.restart_count).sum(),
        finished: statuses()
            .filter_map(|c| c.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref())
            .map(|t| t.0)
            .max(),
        exits: statuses()
            .filter_map(|c| {
                let t = c.state.as_ref()?.terminated.as_ref()?;
                Some((c.name.clone(), t.exit_code))
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(yaml: &str) -> Job {
        let mut j: Job = serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("{e}"));
        j.metadata.uid = Some("0123456789abcdef0123456789abcdef".into());
        workload::default_job(&mut j);
        j
    }

    const WORK: &str = "metadata: {name: work}\nspec:\n  completions: 2\n  parallelism: 2\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: c, image: busybox}]\n";

    fn desired_with(j: Job) -> Desired {
        let mut d = Desired {
            complete: true,
            ..Default::default()
        };
        d.workloads.insert(
            format!(
                "Job/default/{}",
                j.metadata.name.clone().unwrap_or_default()
            ),
            SourceWorkload {
                object: Arc::new(Workload::Job(j)),
                origin: Origin::file("/m/work.yaml"),
            },
        );
        d
    }

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(s).expect("ts")
    }

    #[test]
    fn records_are_written_read_back_and_a_corrupt_one_is_named_and_rebuilt_from_docker() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = PodStore::default();
        let mut jobs = Jobs::new("n1").with_records(dir.path().join("jobs"));
        let mut d = desired_with(job(WORK));
        jobs.expand(&mut d, &store, at(0));
        assert_eq!(d.pods.len(), 2, "two pods at once");
        let files: Vec<PathBuf> = std::fs::read_dir(dir.path().join("jobs"))
            .expect("dir")
            .map(|e| e.expect("entry").path())
            .collect();
        assert_eq!(files.len(), 1);
        let file = files[0].clone();
        assert!(file.ends_with("default_work_0123456789abcdef0123456789abcdef.json"));
        let r = Record::from_json(&std::fs::read(&file).expect("read")).expect("record");
        assert_eq!(r.pods.len(), 2);
        // A restart: the same pods, no new ones.
        let mut again = Jobs::new("n1").with_records(dir.path().join("jobs"));
        let mut d2 = desired_with(job(WORK));
        again.expand(&mut d2, &store, at(50));
        let a: BTreeSet<&String> = d.pods.keys().collect();
        let b: BTreeSet<&String> = d2.pods.keys().collect();
        assert_eq!(a, b);
        // Finished pods whose containers are gone are not made again.
        let mut record = Record::from_json(&std::fs::read(&file).expect("read")).expect("record");
        for p in &mut record.pods {
            p.outcome = Some(job::Outcome::Succeeded);
            p.finished = Some(Time(at(10)));
        }
        std::fs::write(&file, record.to_json()).expect("write");
        let mut pruned = Jobs::new("n1").with_records(dir.path().join("jobs"));
        let mut d4 = desired_with(job(WORK));
        pruned.expand(&mut d4, &store, at(55));
        assert!(d4.pods.is_empty(), "{:?}", d4.pods.keys());
        let served = pruned.job("default", "work").expect("served");
        assert_eq!(served.status.as_ref().and_then(|s| s.succeeded), Some(2));
        // With their containers in Docker they are shown again.
        let found: Vec<(String, String)> = (d.pods.iter())
            .map(|(uid, sp)| (sp.full_name(), uid.clone()))
            .collect();
        let mut kept = Jobs::new("n1").with_records(dir.path().join("jobs"));
        kept.seed(found);
        let mut d5 = desired_with(job(WORK));
        kept.expand(&mut d5, &store, at(56));
        assert_eq!(d5.pods.len(), 2);
        // Corrupt: named, and rebuilt from the pods Docker still has.
        std::fs::write(&file, b"{ not json").expect("corrupt");
        let found: Vec<(String, String)> = (d.pods.iter())
            .map(|(uid, sp)| (sp.full_name(), uid.clone()))
            .collect();
        let mut rebuilt = Jobs::new("n1").with_records(dir.path().join("jobs"));
        rebuilt.seed(found);
        let mut d3 = desired_with(job(WORK));
        rebuilt.expand(&mut d3, &store, at(60));
        let c: BTreeSet<&String> = d3.pods.keys().collect();
        assert_eq!(a, c, "adopted, not duplicated");
        let w = rebuilt.take_warnings();
        assert_eq!(w.len(), 1);
        assert!(w[0].2.contains(&file.display().to_string()), "{}", w[0].2);
        assert!(w[0].2.contains("rebuilt from 2 pod(s)"), "{}", w[0].2);
        // Rewritten good.
        assert!(Record::from_json(&std::fs::read(&file).expect("read")).is_ok());
        // The Job gone: its record goes too.
        let mut empty = Desired {
            complete: true,
            ..Default::default()
        };
        rebuilt.expand(&mut empty, &store, at(70));
        assert!(empty.pods.is_empty());
        assert!(!file.exists());
    }

    #[test]
    fn indexed_pods_carry_their_index_and_a_cron_made_job_is_handed_in() {
        let store = PodStore::default();
        let mut jobs = Jobs::new("n1");
        let mut d = Desired {
            complete: true,
            ..Default::default()
        };
        let raw: Job = serde_yaml::from_str(&WORK.replace(
            "  completions: 2\n",
            "  completions: 2\n  completionMode: Indexed\n",
        ))
        .expect("job");
        let key = hand_in(&mut d, raw, &Origin::file("/m/cron.yaml")).expect("valid");
        assert_eq!(key, "Job/default/work");
        jobs.expand(&mut d, &store, at(0));
        let mut pods: Vec<&Pod> = d.pods.values().map(|sp| &*sp.pod).collect();
        pods.sort_by_key(|p| p.metadata.name.clone());
        assert_eq!(pods.len(), 2);
        let p = pods[1];
        assert!(p
            .metadata
            .name
            .as_deref()
            .is_some_and(|n| n.starts_with("work-1-")));
        let ann = p.metadata.annotations.as_ref().expect("ann");
        assert_eq!(ann[COMPLETION_INDEX], "1");
        let labels = p.metadata.labels.as_ref().expect("labels");
        assert_eq!(labels[COMPLETION_INDEX], "1");
        assert_eq!(labels["job-name"], "work");
        assert_eq!(labels["batch.kubernetes.io/job-name"], "work");
        let spec = p.spec.as_ref().expect("spec");
        assert_eq!(spec.hostname.as_deref(), Some("work-1"));
        let env = spec.containers[0].env.as_ref().expect("env");
        assert_eq!(env[0].name, COMPLETION_INDEX_ENV);
        assert_eq!(env[0].value.as_deref(), Some("1"));
        let owner = &p.metadata.owner_references.as_ref().expect("owner")[0];
        assert_eq!(
            (owner.api_version.as_str(), owner.kind.as_str()),
            ("batch/v1", "Job")
        );
        let served = jobs.job("default", "work").expect("served");
        assert_eq!(served.status.as_ref().and_then(|s| s.active), Some(2));
        let uid = served.metadata.uid.clone().expect("uid");
        assert_eq!(jobs.record(&uid).map(|r| r.pods.len()), Some(2));
        let bad: Job = serde_yaml::from_str(&WORK.replace("Never", "Always")).expect("job");
        let e = hand_in(&mut d, bad, &Origin::file("/m/cron.yaml")).expect_err("invalid");
        assert_eq!(e.field.as_deref(), Some("spec.template.spec.restartPolicy"));
    }
}
