//! The shell around the CronJob controller: CronJobs hand Jobs to the Job
//! controller on their schedule, and each CronJob's state is kept on disk.
//!
//! Owns the durable cron records (`<root-dir>/cronjobs/<namespace>_<name>.json`,
//! versioned JSON written atomically: temporary file, fsync, rename, fsync
//! of the directory) and the CronJobs as served (with status).
//! [`CronJobs::expand`] runs the pure controller
//! ([`crate::workload::cronjob::sync`]) for every CronJob of the desired
//! set, before the Job controller runs: it creates the Job of a due
//! scheduled time, and hands every Job the CronJob still keeps (active
//! ones, finished ones within the history limits, and manual ones from
//! `rkubelet create job --from=cronjob/X`) to the Job controller
//! ([`super::jobs::hand_in`]) in every pass. A Job no longer handed in is
//! deleted there, pods and record.
//!
//! The record holds what the controller's status holds in Kubernetes —
//! the first time rkubelet saw the CronJob (its creation time, from which
//! the first schedule counts), `lastScheduleTime`, `lastSuccessfulTime`,
//! the `active` list — and the Jobs it keeps, whole (so a Job made before a
//! `jobTemplate` edit is still that Job after it). After a restart the
//! missed schedules follow the controller's rules from that
//! `lastScheduleTime` (at most one catch-up run, none past
//! `startingDeadlineSeconds`), and a scheduled time that made its Job is
//! never run again. The Jobs' outcomes come from the Job controller (its
//! served Jobs and its records), not from here. A record of a CronJob no
//! longer defined is removed once every source has reported.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::batch::v1::{CronJob, CronJobStatus, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::tz::TimeZone;
use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::jobs::{hand_in, Jobs};
use crate::events::Involved;
use crate::manifest::workload::Workload;
use crate::source::Desired;
use crate::workload::cronjob::{self, ActiveRef, JobView, Outcome, State, INSTANTIATE};
use crate::workload::pods::derived_uid;

/// The record format this version writes; newer ones are read as far as
/// their fields are known.
const VERSION: u32 = 1;

/// What is kept on disk for one CronJob.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    version: u32,
    /// The CronJob's UID; a record of another UID is of another CronJob.
    uid: String,
    /// When rkubelet first saw it.
    created: Time,
    #[serde(default)]
    last_schedule_time: Option<Time>,
    #[serde(default)]
    last_successful_time: Option<Time>,
    #[serde(default)]
    active: Vec<ActiveRef>,
    /// Every Job it keeps, as handed to the Job controller.
    #[serde(default)]
    jobs: Vec<Job>,
}

impl Record {
    fn new(uid: &str, now: Timestamp) -> Self {
        Record {
            version: VERSION,
            uid: uid.to_string(),
            created: Time(now),
            last_schedule_time: None,
            last_successful_time: None,
            active: Vec::new(),
            jobs: Vec::new(),
        }
    }

    fn state(&self) -> State {
        State {
            created: self.created.0,
            last_schedule: self.last_schedule_time.as_ref().map(|t| t.0),
            last_successful: self.last_successful_time.as_ref().map(|t| t.0),
            active: self.active.clone(),
        }
    }
}

/// Jobs asked for by `POST /apis/batch/v1/namespaces/{ns}/jobs` with an
/// owner CronJob (`kubectl create job --from=cronjob/x`), waiting for the
/// next controller pass; the manager is woken by [`ManualJobs::notified`].
#[derive(Debug, Default)]
pub struct ManualJobs {
    pending: Mutex<Vec<Job>>,
    notify: tokio::sync::Notify,
}

impl ManualJobs {
    /// Queues `job` (owned by a CronJob) and wakes the manager.
    pub fn push(&self, job: Job) {
        if let Ok(mut p) = self.pending.lock() {
            p.push(job);
        }
        self.notify.notify_one();
    }

    /// Resolves when a Job was queued.
    pub async fn notified(&self) {
        self.notify.notified().await
    }

    fn take(&self) -> Vec<Job> {
        self.pending
            .lock()
            .map(|mut p| std::mem::take(&mut *p))
            .unwrap_or_default()
    }
}

/// The CronJobs, their records and the Jobs they keep.
#[derive(Debug)]
pub struct CronJobs {
    node: String,
    /// `<root-dir>/cronjobs`, or none (records in memory only).
    dir: Option<PathBuf>,
    loaded: bool,
    /// The zone of CronJobs without `timeZone` (the node's).
    local: TimeZone,
    /// Records by `namespace/name`.
    records: BTreeMap<String, Record>,
    served: Vec<CronJob>,
    wake: Option<Timestamp>,
    events: Vec<(Involved, &'static str, String)>,
    warnings: Vec<(Involved, &'static str, String)>,
    /// Manual Jobs from the API.
    pub manual: Arc<ManualJobs>,
}

/// `namespace/name` of a CronJob.
fn key_of(cj: &CronJob) -> (String, String) {
    (
        cj.metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into()),
        cj.metadata.name.clone().unwrap_or_default(),
    )
}

/// The CronJob a Job names as its controller, if any.
fn owner_cronjob(job: &Job) -> Option<&str> {
    (job.metadata.owner_references.iter().flatten())
        .find(|o| o.kind == "CronJob" && o.controller == Some(true))
        .map(|o| o.name.as_str())
}

impl CronJobs {
    /// No records on disk; CronJobs without `timeZone` run in `local`.
    pub fn new(node: &str, local: TimeZone) -> Self {
        CronJobs {
            node: node.to_string(),
            dir: None,
            loaded: false,
            local,
            records: BTreeMap::new(),
            served: Vec::new(),
            wake: None,
            events: Vec::new(),
            warnings: Vec::new(),
            manual: Arc::new(ManualJobs::default()),
        }
    }

    /// Keeps the records in `dir` (`<root-dir>/cronjobs`).
    pub fn with_records(mut self, dir: PathBuf) -> Self {
        self.dir = Some(dir);
        self
    }

    /// The CronJobs as served, with status, as of the last run.
    pub fn served(&self) -> &[CronJob] {
        &self.served
    }

    /// When a CronJob's next scheduled time comes.
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

    fn file(dir: &Path, key: &str) -> PathBuf {
        dir.join(format!("{}.json", key.replace('/', "_")))
    }

    /// Reads the records once; an unreadable one is reported and the
    /// CronJob starts afresh (its next schedule counts from now: a missed
    /// run is skipped rather than a run repeated).
    fn load(&mut self) {
        if self.loaded {
            return;
        }
        self.loaded = true;
        let Some(dir) = self.dir.clone() else { return };
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let read = std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<Record>(&b).map_err(|e| e.to_string()));
            match read {
                Ok(r) => {
                    // `<namespace>_<name>.json`: neither may contain `_`.
                    let stem = path
                        .file_stem()
                        .and_then(|s| s.to_str())
                        .unwrap_or_default();
                    let Some((ns, name)) = stem.split_once('_') else {
                        continue;
                    };
                    let key = format!("{ns}/{name}");
                    self.records.insert(key, r);
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "unreadable CronJob record: its CronJob starts afresh");
                    self.warnings.push((
                        Involved::node(&self.node),
                        "UnreadableCronJobRecord",
                        format!("cannot read the CronJob record {}: {e}; the CronJob's schedule starts afresh from now", path.display()),
                    ));
                }
            }
        }
    }

    fn save(&mut self, key: &str) {
        let (Some(dir), Some(record)) = (self.dir.as_ref(), self.records.get(key)) else {
            return;
        };
        let write = serde_json::to_vec_pretty(record)
            .map_err(std::io::Error::other)
            .and_then(|bytes| {
                std::fs::create_dir_all(dir)?;
                super::jobs::write_atomic(&Self::file(dir, key), &bytes)
            });
        if let Err(e) = write {
            tracing::warn!(cronjob = key, error = %e, "cannot write the CronJob record");
            self.warnings.push((
                Involved::node(&self.node),
                "FailedCronJobRecord",
                format!("cannot write the record of CronJob {key}: {e}"),
            ));
        }
    }

    /// What the Job controller knows of `job` (as of its last run).
    fn view(job: &Job, jobs: &Jobs) -> JobView {
        let name = job.metadata.name.clone().unwrap_or_default();
        let namespace = job.metadata.namespace.clone().unwrap_or_default();
        let uid = job.metadata.uid.clone().unwrap_or_default();
        let served = jobs.job(&namespace, &name).and_then(|j| j.status.as_ref());
        let condition = |t: &str| {
            (served
                .and_then(|s| s.conditions.as_ref())
                .into_iter()
                .flatten())
            .any(|c| c.type_ == t && c.status == "True")
        };
        let finished = if condition("Complete") {
            Some((
                Outcome::Complete,
                served.and_then(|s| s.completion_time.as_ref()).map(|t| t.0),
            ))
        } else if condition("Failed") {
            Some((Outcome::Failed, None))
        } else {
            jobs.record(&uid)
                .and_then(|r| r.finished())
                .map(|(kind, at)| match kind {
                    "Complete" => (Outcome::Complete, Some(at)),
                    _ => (Outcome::Failed, None),
                })
        };
        JobView {
            name,
            uid,
            start_time: (served.and_then(|s| s.start_time.as_ref()))
                .map(|t| t.0)
                .or_else(|| job.metadata.creation_timestamp.as_ref().map(|t| t.0)),
            finished,
        }
    }

    /// Runs the CronJob controller for every CronJob of `desired` and
    /// hands the Jobs they keep to the Job controller (see the module doc).
    /// `jobs` is the Job controller as of its last run.
    pub fn expand(&mut self, desired: &mut Desired, jobs: &Jobs, now: Timestamp) {
        self.load();
        self.wake = None;
        self.served.clear();
        let mut manual = self.manual.take();
        let cronjobs: Vec<_> = (desired.workloads.values())
            .filter_map(|sw| match &*sw.object {
                Workload::CronJob(cj) => Some((cj.clone(), sw.origin.clone())),
                _ => None,
            })
            .collect();
        let mut defined = std::collections::BTreeSet::new();
        for (cj, origin) in cronjobs {
            let (namespace, name) = key_of(&cj);
            let key = format!("{namespace}/{name}");
            defined.insert(key.clone());
            let uid = derived_uid(&["CronJob", &namespace, &name], &self.node, &origin);
            let involved = Involved {
                kind: "CronJob".into(),
                namespace: namespace.clone(),
                name: name.clone(),
                uid: uid.clone(),
                field_path: None,
            };
            let before = self.records.get(&key).cloned();
            let record = (self.records.entry(key.clone()))
                .and_modify(|r| {
                    if r.uid != uid {
                        *r = Record::new(&uid, now);
                    }
                })
                .or_insert_with(|| Record::new(&uid, now));

            // Manual Jobs for this CronJob join the ones it keeps.
            let (mine, rest): (Vec<Job>, Vec<Job>) = manual.into_iter().partition(|j| {
                j.metadata.namespace.as_deref() == Some(namespace.as_str())
                    && owner_cronjob(j) == Some(name.as_str())
            });
            manual = rest;
            for mut job in mine {
                let job_name = job.metadata.name.clone().unwrap_or_default();
                if record
                    .jobs
                    .iter()
                    .any(|j| j.metadata.name.as_deref() == Some(job_name.as_str()))
                {
                    continue;
                }
                job.metadata.uid = Some(derived_uid(
                    &["Job", &namespace, &job_name, &uid],
                    &self.node,
                    &origin,
                ));
                job.metadata.creation_timestamp = Some(Time(now));
                record.jobs.push(job);
            }

            match cronjob::spec_of(&cj, &self.local) {
                Err(e) => self.warnings.push((
                    involved.clone(),
                    "InvalidSchedule",
                    format!("invalid schedule: {e}"),
                )),
                Ok(spec) => {
                    let views: Vec<JobView> =
                        record.jobs.iter().map(|j| Self::view(j, jobs)).collect();
                    let step = cronjob::sync(&spec, &record.state(), &views, now);
                    record.jobs.retain(|j| {
                        !step
                            .delete
                            .iter()
                            .any(|d| j.metadata.name.as_deref() == Some(d))
                    });
                    record.last_schedule_time = step.state.last_schedule.map(Time);
                    record.last_successful_time = step.state.last_successful.map(Time);
                    record.active = step.state.active.clone();
                    if let Some(at) = step.create {
                        let mut job = cronjob::job_for(&cj, &uid, at);
                        let job_name = job.metadata.name.clone().unwrap_or_default();
                        let job_uid =
                            derived_uid(&["Job", &namespace, &job_name, &uid], &self.node, &origin);
                        job.metadata.uid = Some(job_uid.clone());
                        job.metadata.creation_timestamp = Some(Time(now));
                        record.active.push(ActiveRef {
                            name: job_name.clone(),
                            uid: job_uid,
                        });
                        record.jobs.push(job);
                        self.events.push((
                            involved.clone(),
                            "SuccessfulCreate",
                            format!("Created job {job_name}"),
                        ));
                    }
                    for e in step.events {
                        let to = if e.warning {
                            &mut self.warnings
                        } else {
                            &mut self.events
                        };
                        to.push((involved.clone(), e.reason, e.message));
                    }
                    if let Some(w) = step.wake {
                        self.wake = Some(self.wake.map_or(w, |x| x.min(w)));
                    }
                }
            }

            for job in &record.jobs {
                if let Err(e) = hand_in(desired, job.clone(), &origin) {
                    self.warnings.push((
                        involved.clone(),
                        "FailedCreate",
                        format!("Error creating job: {e}"),
                    ));
                }
            }
            self.served.push(served(&cj, record, &uid));
            if before.as_ref() != Some(&*record) {
                self.save(&key);
            }
        }
        for job in manual {
            tracing::warn!(job = ?job.metadata.name, "a manual Job names a CronJob that is not defined; dropped");
        }
        if desired.complete {
            let gone: Vec<String> = (self.records.keys())
                .filter(|k| !defined.contains(*k))
                .cloned()
                .collect();
            for key in gone {
                self.records.remove(&key);
                if let Some(dir) = &self.dir {
                    let _ = std::fs::remove_file(Self::file(dir, &key));
                }
            }
        }
    }
}

/// The CronJob as served: UID, creation time and status from its record.
fn served(cj: &CronJob, record: &Record, uid: &str) -> CronJob {
    let mut out = cj.clone();
    out.metadata.uid = Some(uid.to_string());
    out.metadata.creation_timestamp = Some(record.created.clone());
    out.metadata.generation.get_or_insert(1);
    let namespace = out.metadata.namespace.clone();
    out.status = Some(CronJobStatus {
        active: Some(
            (record.active.iter())
                .map(|a| ObjectReference {
                    api_version: Some("batch/v1".into()),
                    kind: Some("Job".into()),
                    name: Some(a.name.clone()),
                    namespace: namespace.clone(),
                    uid: Some(a.uid.clone()),
                    ..Default::default()
                })
                .collect(),
        )
        .filter(|v: &Vec<ObjectReference>| !v.is_empty()),
        last_schedule_time: record.last_schedule_time.clone(),
        last_successful_time: record.last_successful_time.clone(),
    });
    out
}

/// The Job `kubectl create job NAME --from=cronjob/X` asks for, checked:
/// it must name a CronJob (controller ownerReference) that `served` has,
/// in `namespace`. Returns the Job to queue, its spec from the CronJob's
/// template when the request carries none, annotated as kubectl does.
pub fn manual_job(mut job: Job, namespace: &str, served: &[CronJob]) -> Result<Job, String> {
    let name = job
        .metadata
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or("metadata.name: Required value")?;
    let owner = owner_cronjob(&job)
        .ok_or("only Jobs created from a CronJob can be created here (kubectl create job NAME --from=cronjob/CRONJOB, or rkubelet create job): the Job's controller ownerReference must name a CronJob")?
        .to_string();
    let cj = (served.iter())
        .find(|c| {
            c.metadata.namespace.as_deref() == Some(namespace)
                && c.metadata.name.as_deref() == Some(owner.as_str())
        })
        .ok_or_else(|| format!("cronjobs.batch {owner:?} not found"))?;
    if crate::manifest::cronjob::MAX_NAME + 11 < name.len() {
        return Err(format!(
            "metadata.name: Invalid value: {name:?}: must be no more than 63 characters"
        ));
    }
    job.metadata.namespace = Some(namespace.to_string());
    let template = cj.spec.as_ref().map(|s| &s.job_template);
    if job.spec.is_none() {
        job.spec = template.and_then(|t| t.spec.clone());
    }
    if job.metadata.labels.is_none() {
        job.metadata.labels = template
            .and_then(|t| t.metadata.as_ref())
            .and_then(|m| m.labels.clone());
    }
    let annotations = job
        .metadata
        .annotations
        .get_or_insert_with(Default::default);
    annotations.insert(INSTANTIATE.into(), "manual".into());
    // The owner reference carries the served CronJob's UID.
    let uid = cj.metadata.uid.clone().unwrap_or_default();
    job.metadata.owner_references = Some(vec![cronjob::owner_ref(&owner, &uid)]);
    job.metadata.uid = None;
    job.metadata.resource_version = None;
    job.status = None;
    Ok(job)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Origin;
    use crate::source::SourceWorkload;

    const EVERY_MINUTE: &str = r#"
metadata: {name: tick, namespace: default}
spec:
  schedule: "* * * * *"
  concurrencyPolicy: Allow
  successfulJobsHistoryLimit: 3
  failedJobsHistoryLimit: 1
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: c, image: busybox}]
"#;

    fn at(s: &str) -> Timestamp {
        s.parse().expect("time")
    }

    fn desired() -> Desired {
        let cj: CronJob = serde_yaml::from_str(EVERY_MINUTE).expect("cronjob");
        let mut d = Desired {
            complete: true,
            ..Default::default()
        };
        d.workloads.insert(
            "CronJob/default/tick".into(),
            SourceWorkload {
                object: Arc::new(Workload::CronJob(Box::new(cj))),
                origin: Origin::file("/etc/kubelet.d/tick.yaml"),
            },
        );
        d
    }

    fn job_keys(d: &Desired) -> Vec<String> {
        (d.workloads.keys())
            .filter(|k| k.starts_with("Job/"))
            .cloned()
            .collect()
    }

    #[test]
    fn a_scheduled_time_runs_once_also_across_a_restart_and_the_jobs_are_handed_in_each_pass() {
        let dir = tempfile::tempdir().expect("tempdir");
        let jobs = Jobs::new("node");
        let mut cron = CronJobs::new("node", TimeZone::UTC).with_records(dir.path().into());
        let mut d = desired();
        cron.expand(&mut d, &jobs, at("2024-05-01T10:00:30Z"));
        assert!(job_keys(&d).is_empty(), "nothing due yet");
        assert_eq!(cron.next_wake(), Some(at("2024-05-01T10:01:00.1Z")));

        let mut d = desired();
        cron.expand(&mut d, &jobs, at("2024-05-01T10:01:00.1Z"));
        assert_eq!(job_keys(&d), ["Job/default/tick-28575961"]);
        let served = &cron.served()[0];
        let status = served.status.as_ref().expect("status");
        assert_eq!(status.active.as_ref().map(Vec::len), Some(1));
        assert_eq!(
            status.last_schedule_time.as_ref().map(|t| t.0),
            Some(at("2024-05-01T10:01:00Z"))
        );
        assert!(dir.path().join("default_tick.json").exists());

        // A restart in the same minute: the record says 10:01 ran.
        let mut again = CronJobs::new("node", TimeZone::UTC).with_records(dir.path().into());
        let mut d = desired();
        again.expand(&mut d, &jobs, at("2024-05-01T10:01:20Z"));
        assert_eq!(
            job_keys(&d),
            ["Job/default/tick-28575961"],
            "kept, not made again"
        );
        assert!(
            !again
                .take_events()
                .iter()
                .any(|e| e.1 == "SuccessfulCreate"),
            "no second run of 10:01"
        );

        // Down until 10:05:30: one catch-up run, for 10:05.
        let mut d = desired();
        again.expand(&mut d, &jobs, at("2024-05-01T10:05:30Z"));
        assert_eq!(
            job_keys(&d),
            ["Job/default/tick-28575961", "Job/default/tick-28575965"]
        );

        // The CronJob leaves the manifests: its record goes.
        let mut empty = Desired {
            complete: true,
            ..Default::default()
        };
        again.expand(&mut empty, &jobs, at("2024-05-01T10:06:00Z"));
        assert!(job_keys(&empty).is_empty());
        assert!(!dir.path().join("default_tick.json").exists());
    }

    #[test]
    fn an_unreadable_record_is_reported_and_the_schedule_starts_afresh() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("default_tick.json"), b"{not json").expect("write");
        let jobs = Jobs::new("node");
        let mut cron = CronJobs::new("node", TimeZone::UTC).with_records(dir.path().into());
        let mut d = desired();
        cron.expand(&mut d, &jobs, at("2024-05-01T10:05:30Z"));
        assert!(job_keys(&d).is_empty(), "no catch-up from an unknown past");
        let warnings = cron.take_warnings();
        assert!(
            warnings
                .iter()
                .any(|w| w.1 == "UnreadableCronJobRecord" && w.2.contains("default_tick.json")),
            "{warnings:?}"
        );
    }

    #[test]
    fn a_manual_job_needs_a_served_cronjob_and_gets_its_template() {
        let cj: CronJob = serde_yaml::from_str(EVERY_MINUTE).expect("cronjob");
        let mut served_cj = cj.clone();
        served_cj.metadata.uid = Some("cj-uid".into());
        let mut job = Job::default();
        job.metadata.name = Some("tick-now".into());
        job.metadata.owner_references = Some(vec![cronjob::owner_ref("tick", "")]);
        let made = manual_job(job.clone(), "default", &[served_cj.clone()]).expect("ok");
        assert!(made.spec.is_some());
        assert_eq!(
            made.metadata.annotations.as_ref().expect("annotations")[INSTANTIATE],
            "manual"
        );
        assert_eq!(
            made.metadata.owner_references.expect("owner")[0].uid,
            "cj-uid"
        );
        let e = manual_job(job.clone(), "other", &[served_cj.clone()]).expect_err("namespace");
        assert!(e.ends_with("not found"), "{e}");
        job.metadata.owner_references = None;
        let e = manual_job(job, "default", &[served_cj]).expect_err("no owner");
        assert!(e.contains("ownerReference"), "{e}");
    }
}
