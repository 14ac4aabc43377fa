//! The Job controller: run pods to completion.
//!
//! Owns what `pkg/controller/job` decides for one Job, as a pure step
//! ([`sync`]): from the Job's [`Spec`], its durable [`Record`] (every pod
//! it made and how each ended, its conditions and times), the pods as
//! observed now and `now`, which pods to create and delete, the events, the
//! Job's status and when to look again. Semantics follow the job
//! controller: `parallelism` pods at once until `completions` succeed (when
//! `completions` is unset: until one succeeds and none is active);
//! `backoffLimit` against failed pods (`restartPolicy: Never`) or against
//! the container restarts of active pods (`OnFailure`); the failure backoff
//! before a new pod (10 s doubling per failure since the last success,
//! capped at 6 min); `activeDeadlineSeconds`; `suspend` (active pods
//! deleted, not counted as failed; the deadline starts anew on resume);
//! `ttlSecondsAfterFinished` (the pods and the served Job go away, the
//! record stays so the Job never runs again); `Indexed` completion mode;
//! `podFailurePolicy` rules on exit codes (`FailJob`, `Ignore`, `Count`;
//! rules on pod conditions never match here).
//!
//! The [`Record`] is what survives a restart (the shell stores it as
//! versioned JSON; unknown fields are ignored, so a newer rkubelet reads an
//! older record and an older one reads a newer record's known fields).
//!
//! Pure: no tasks, no files, no clock reads.

use std::collections::BTreeSet;

use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::free_pod_name;

/// The record format this version writes.
pub const RECORD_VERSION: u32 = 1;

/// The first failure backoff; it doubles per failure since the last success.
pub const FAILURE_BACKOFF: SignedDuration = SignedDuration::from_secs(10);
/// The longest failure backoff.
pub const MAX_FAILURE_BACKOFF: SignedDuration = SignedDuration::from_secs(360);

/// The annotation and label with an Indexed Job's pod's index.
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
/// The environment variable with an Indexed Job's pod's index.
pub const COMPLETION_INDEX_ENV: &str = "JOB_COMPLETION_INDEX";

/// What the controller reads of a Job's spec (defaulted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub completions: Option<i32>,
    pub parallelism: i32,
    pub backoff_limit: i32,
    pub active_deadline_seconds: Option<i64>,
    pub ttl_seconds_after_finished: Option<i32>,
    pub indexed: bool,
    pub suspend: bool,
    /// The template's `restartPolicy` is `OnFailure` (else `Never`).
    pub on_failure: bool,
    /// `podFailurePolicy` rules on exit codes, in order.
    pub failure_rules: Vec<FailureRule>,
}

/// One `podFailurePolicy` rule on exit codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureRule {
    /// `FailJob`, `Ignore` or `Count`.
    pub action: String,
    /// Only this container's exit code, when set.
    pub container: Option<String>,
    /// `In` (else `NotIn`).
    pub in_values: bool,
    pub values: Vec<i32>,
}

impl FailureRule {
    /// The first terminated container of `exits` (name, exit code) this
    /// rule matches (exit code 0 never matches, as upstream).
    fn matches<'a>(&self, exits: &'a [(String, i32)]) -> Option<&'a (String, i32)> {
        exits.iter().find(|(name, code)| {
            *code != 0
                && self.container.as_ref().is_none_or(|c| c == name)
                && self.values.contains(code) == self.in_values
        })
    }
}

impl Spec {
    /// The spec of a validated, defaulted Job.
    pub fn of(job: &Job) -> Spec {
        let s = job.spec.clone().unwrap_or_default();
        let policy = (s.template.spec.as_ref()).and_then(|p| p.restart_policy.as_deref());
        Spec {
            completions: s.completions,
            parallelism: s.parallelism.unwrap_or(1).max(0),
            backoff_limit: s.backoff_limit.unwrap_or(6).max(0),
            active_deadline_seconds: s.active_deadline_seconds,
            ttl_seconds_after_finished: s.ttl_seconds_after_finished,
            indexed: s.completion_mode.as_deref() == Some("Indexed"),
            suspend: s.suspend.unwrap_or(false),
            on_failure: policy == Some("OnFailure"),
            failure_rules: (s.pod_failure_policy.iter().flat_map(|p| p.rules.iter()))
                .filter_map(|r| {
                    let e = r.on_exit_codes.as_ref()?;
                    Some(FailureRule {
                        action: r.action.clone(),
                        container: e.container_name.clone(),
                        in_values: e.operator == "In",
                        values: e.values.clone(),
                    })
                })
                .collect(),
        }
    }
}

/// How a pod of the Job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Succeeded,
    Failed,
}

/// One pod the Job made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordPod {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<i32>,
    pub created: Time,
    /// Unset while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<Time>,
    /// Deleted by the controller (suspend, the Job finished): no longer
    /// wanted on the node.
    #[serde(default)]
    pub deleted: bool,
    /// Failed, but a `podFailurePolicy` `Ignore` rule matched: not counted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ignored: bool,
}

impl RecordPod {
    fn active(&self) -> bool {
        self.outcome.is_none() && !self.deleted
    }
}

/// A condition as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordCondition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    pub reason: String,
    pub message: String,
    pub at: Time,
}

/// What survives a restart of one Job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub version: u32,
    pub uid: String,
    pub namespace: String,
    pub name: String,
    /// When rkubelet first saw the Job (its `creationTimestamp`).
    pub created: Time,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
    #[serde(default)]
    pub pods: Vec<RecordPod>,
    #[serde(default)]
    pub succeeded: i32,
    #[serde(default)]
    pub failed: i32,
    /// An Indexed Job's succeeded indexes.
    #[serde(default)]
    pub completed_indexes: Vec<i32>,
    #[serde(default)]
    pub conditions: Vec<RecordCondition>,
    /// Its ttl ran out: pods and served object removed.
    #[serde(default)]
    pub removed: bool,
}

impl Record {
    /// A Job not started yet.
    pub fn new(uid: &str, namespace: &str, name: &str, now: Timestamp) -> Record {
        Record {
            version: RECORD_VERSION,
            uid: uid.into(),
            namespace: namespace.into(),
            name: name.into(),
            created: Time(now),
            start_time: None,
            completion_time: None,
            pods: Vec::new(),
            succeeded: 0,
            failed: 0,
            completed_indexes: Vec::new(),
            conditions: Vec::new(),
            removed: false,
        }
    }

    /// Reads a record (any version: the fields it knows).
    pub fn from_json(bytes: &[u8]) -> Result<Record, String> {
        let r: Record = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if r.version == 0 {
            return Err("version: must be at least 1".into());
        }
        Ok(r)
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    fn condition(&self, type_: &str) -> Option<&RecordCondition> {
        (self.conditions.iter()).find(|c| c.type_ == type_ && c.status == "True")
    }

    /// `Complete` or `Failed`, with when.
    pub fn finished(&self) -> Option<(&str, Timestamp)> {
        (self
            .condition("Complete")
            .or_else(|| self.condition("Failed")))
        .map(|c| (c.type_.as_str(), c.at.0))
    }

    fn set_condition(
        &mut self,
        type_: &str,
        ok: bool,
        reason: &str,
        message: &str,
        now: Timestamp,
    ) {
        let status = if ok { "True" } else { "False" };
        match self.conditions.iter_mut().find(|c| c.type_ == type_) {
            Some(c) if c.status == status => {}
            Some(c) => {
                *c = RecordCondition {
                    type_: type_.into(),
                    status: status.into(),
                    reason: reason.into(),
                    message: message.into(),
                    at: Time(now),
                }
            }
            None => self.conditions.push(RecordCondition {
                type_: type_.into(),
                status: status.into(),
                reason: reason.into(),
                message: message.into(),
                at: Time(now),
            }),
        }
    }

    fn recount(&mut self) {
        let done = |o| (self.pods.iter()).filter(move |p| p.outcome == Some(o));
        self.failed = done(Outcome::Failed).filter(|p| !p.ignored).count() as i32;
        let indexes: BTreeSet<i32> = done(Outcome::Succeeded).filter_map(|p| p.index).collect();
        self.succeeded = if self.pods.iter().any(|p| p.index.is_some()) {
            indexes.len() as i32
        } else {
            done(Outcome::Succeeded).count() as i32
        };
        self.completed_indexes = indexes.into_iter().collect();
    }
}

/// A pod of the Job as observed now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    pub name: String,
    /// `Pending`, `Running`, `Succeeded`, `Failed` (empty: not seen yet).
    pub phase: String,
    pub ready: bool,
    /// Restarts of its containers, summed.
    pub restarts: i32,
    /// When it finished (its last container's end), if it did.
    pub finished: Option<Timestamp>,
    /// Its terminated containers' names and exit codes.
    pub exits: Vec<(String, i32)>,
}

/// A pod to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPod {
    pub name: String,
    pub index: Option<i32>,
}

/// What to do for one Job now.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub create: Vec<NewPod>,
    /// Names of pods to delete (they stay in the record).
    pub delete: Vec<String>,
    /// `(reason, message, warning)` from `job-controller`.
    pub events: Vec<(&'static str, String, bool)>,
    /// When to look again without any change.
    pub wake: Option<Timestamp>,
    /// The ttl after finishing ran out now: remove its pods and the Job.
    pub remove: bool,
}

impl Plan {
    fn wake_at(&mut self, at: Timestamp) {
        self.wake = Some(self.wake.map_or(at, |w| w.min(at)));
    }
}

/// The failure backoff after `failures` failures since the last success.
pub fn failure_backoff(failures: u32) -> SignedDuration {
    if failures == 0 {
        return SignedDuration::ZERO;
    }
    let factor = 1i64 << (failures - 1).min(16);
    let d = FAILURE_BACKOFF.as_secs().saturating_mul(factor);
    SignedDuration::from_secs(d.min(MAX_FAILURE_BACKOFF.as_secs()))
}

/// `0-2,4` of sorted indexes.
pub fn index_ranges(indexes: &[i32]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < indexes.len() {
        let start = indexes[i];
        let mut end = start;
        while i + 1 < indexes.len() && indexes[i + 1] == end + 1 {
            i += 1;
            end = indexes[i];
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    out.join(",")
}

/// The pod name prefix of an Indexed Job's `index`.
fn indexed_prefix(job: &str, index: i32) -> String {
    format!("{job}-{index}")
}

/// One step of the job controller for the Job whose pods are named from
/// `owner` (`namespace/name/uid`, the deterministic name sequence).
/// Updates `record` (the caller stores it when it changed).
pub fn sync(
    owner: &str,
    spec: &Spec,
    record: &mut Record,
    observed: &[Observed],
    now: Timestamp,
) -> Plan {
    let mut plan = Plan::default();
    if record.removed {
        return plan;
    }
    // What the pods did.
    let mut fail_job: Option<String> = None;
    for p in record.pods.iter_mut().filter(|p| p.active()) {
        let Some(o) = observed.iter().find(|o| o.name == p.name) else {
            continue;
        };
        let outcome = match o.phase.as_str() {
            "Succeeded" => Outcome::Succeeded,
            "Failed" => Outcome::Failed,
            _ => continue,
        };
        p.outcome = Some(outcome);
        p.finished = Some(Time(o.finished.unwrap_or(now)));
        if outcome != Outcome::Failed {
            continue;
        }
        let rule = (spec.failure_rules.iter().enumerate())
            .find_map(|(i, r)| r.matches(&o.exits).map(|m| (i, r, m)));
        match rule {
            Some((_, r, _)) if r.action == "Ignore" => p.ignored = true,
            Some((i, r, (container, code))) if r.action == "FailJob" && fail_job.is_none() => {
                fail_job = Some(format!(
                    "Container {container} for pod {}/{} failed with exit code {code} matching FailJob rule at index {i}",
                    record.namespace, p.name
                ));
            }
            _ => {}
        }
    }
    record.recount();
    if let (Some(message), None) = (&fail_job, record.finished()) {
        fail(record, "PodFailurePolicy", message, now, &mut plan);
        finished(spec, record, now, now, &mut plan);
        return plan;
    }
    if let Some((_, at)) = record.finished() {
        finished(spec, record, at, now, &mut plan);
        return plan;
    }
    // Suspend and resume.
    let was_suspended = record.condition("Suspended").is_some();
    if spec.suspend {
        if !was_suspended {
            record.set_condition("Suspended", true, "JobSuspended", "Job suspended", now);
            plan.events
                .push(("Suspended", "Job suspended".into(), false));
        }
        for p in record.pods.iter_mut().filter(|p| p.active()) {
            p.deleted = true;
            plan.delete.push(p.name.clone());
        }
        return plan;
    }
    if was_suspended {
        record.set_condition("Suspended", false, "JobResumed", "Job resumed", now);
        plan.events.push(("Resumed", "Job resumed".into(), false));
        // The deadline starts anew.
        record.start_time = Some(Time(now));
    }
    let start = record.start_time.get_or_insert(Time(now)).0;
    // Failure: too many failures, or past the deadline.
    let restarts: i32 = (record.pods.iter().filter(|p| p.active()))
        .filter_map(|p| observed.iter().find(|o| o.name == p.name))
        .map(|o| o.restarts)
        .sum();
    let past_on_failure = spec.on_failure
        && if spec.backoff_limit == 0 {
            restarts > 0
        } else {
            restarts >= spec.backoff_limit
        };
    let failure = if record.failed > spec.backoff_limit || past_on_failure {
        Some((
            "BackoffLimitExceeded",
            "Job has reached the specified backoff limit",
        ))
    } else {
        match spec.active_deadline_seconds {
            Some(d) if start + SignedDuration::from_secs(d) <= now => Some((
                "DeadlineExceeded",
                "Job was active longer than specified deadline",
            )),
            Some(d) => {
                plan.wake_at(start + SignedDuration::from_secs(d));
                None
            }
            None => None,
        }
    };
    if let Some((reason, message)) = failure {
        fail(record, reason, message, now, &mut plan);
        finished(spec, record, now, now, &mut plan);
        return plan;
    }
    // Success.
    let active: Vec<&RecordPod> = record.pods.iter().filter(|p| p.active()).collect();
    let complete = match spec.completions {
        Some(c) => record.succeeded >= c,
        None => record.succeeded > 0 && active.is_empty(),
    };
    if complete {
        for p in record.pods.iter_mut().filter(|p| p.active()) {
            p.deleted = true;
            plan.delete.push(p.name.clone());
        }
        let message = "Reached expected number of succeeded pods";
        record.set_condition(
            "SuccessCriteriaMet",
            true,
            "CompletionsReached",
            message,
            now,
        );
        record.set_condition("Complete", true, "CompletionsReached", message, now);
        record.completion_time = Some(Time(now));
        plan.events
            .push(("Completed", "Job completed".into(), false));
        finished(spec, record, now, now, &mut plan);
        return plan;
    }
    // More pods: up to parallelism, after the failure backoff.
    let want = match spec.completions {
        Some(c) => spec.parallelism.min(c - record.succeeded),
        None if record.succeeded > 0 => 0,
        None => spec.parallelism,
    };
    let have = active.len() as i32;
    if want <= have {
        return plan;
    }
    let last_success = (record.pods.iter())
        .filter(|p| p.outcome == Some(Outcome::Succeeded))
        .filter_map(|p| p.finished.as_ref().map(|t| t.0))
        .max();
    let failures: Vec<Timestamp> = (record.pods.iter())
        .filter(|p| p.outcome == Some(Outcome::Failed) && !p.deleted && !p.ignored)
        .filter_map(|p| p.finished.as_ref().map(|t| t.0))
        .filter(|t| last_success.is_none_or(|s| *t > s))
        .collect();
    if let Some(last) = failures.iter().max() {
        let at = *last + failure_backoff(failures.len() as u32);
        if at > now {
            plan.wake_at(at);
            return plan;
        }
    }
    let mut taken: Vec<String> = record.pods.iter().map(|p| p.name.clone()).collect();
    let busy: BTreeSet<i32> = active.iter().filter_map(|p| p.index).collect();
    let mut pending = (0..spec.completions.unwrap_or(0))
        .filter(|i| !record.completed_indexes.contains(i) && !busy.contains(i));
    for _ in have..want {
        let refs: Vec<&str> = taken.iter().map(String::as_str).collect();
        let new = if spec.indexed {
            let Some(index) = pending.next() else { break };
            NewPod {
                name: free_pod_name(
                    &format!("{owner}/{index}"),
                    &indexed_prefix(&record.name, index),
                    &refs,
                ),
                index: Some(index),
            }
        } else {
            NewPod {
                name: free_pod_name(owner, &record.name, &refs),
                index: None,
            }
        };
        taken.push(new.name.clone());
        plan.create.push(new);
    }
    for n in &plan.create {
        record.pods.push(RecordPod {
            name: n.name.clone(),
            index: n.index,
            created: Time(now),
            outcome: None,
            finished: None,
            deleted: false,
            ignored: false,
        });
    }
    plan
}

/// Fails the Job: its active pods are terminated and count as failed.
fn fail(record: &mut Record, reason: &'static str, message: &str, now: Timestamp, plan: &mut Plan) {
    for p in record.pods.iter_mut().filter(|p| p.active()) {
        p.deleted = true;
        p.outcome = Some(Outcome::Failed);
        p.finished = Some(Time(now));
        plan.delete.push(p.name.clone());
    }
    record.recount();
    record.set_condition("FailureTarget", true, reason, message, now);
    record.set_condition("Failed", true, reason, message, now);
    plan.events.push((reason, message.into(), true));
}

/// A finished Job: nothing runs; after its ttl its pods and the Job go.
fn finished(spec: &Spec, record: &mut Record, at: Timestamp, now: Timestamp, plan: &mut Plan) {
    for p in record.pods.iter_mut().filter(|p| p.active()) {
        p.deleted = true;
        plan.delete.push(p.name.clone());
    }
    if let Some(ttl) = spec.ttl_seconds_after_finished {
        let expires = at + SignedDuration::from_secs(i64::from(ttl));
        if expires <= now {
            record.removed = true;
            plan.remove = true;
        } else {
            plan.wake_at(expires);
        }
    }
}

/// The Job's status from its record and the pods observed now.
pub fn status(spec: &Spec, record: &Record, observed: &[Observed]) -> JobStatus {
    let active: Vec<&RecordPod> = record.pods.iter().filter(|p| p.active()).collect();
    let ready = (active.iter())
        .filter(|p| observed.iter().any(|o| o.name == p.name && o.ready))
        .count() as i32;
    let conditions: Vec<JobCondition> = (record.conditions.iter())
        .map(|c| JobCondition {
            type_: c.type_.clone(),
            status: c.status.clone(),
            reason: Some(c.reason.clone()),
            message: Some(c.message.clone()),
            last_probe_time: Some(c.at.clone()),
            last_transition_time: Some(c.at.clone()),
        })
        .collect();
    JobStatus {
        active: (!active.is_empty()).then_some(active.len() as i32),
        ready: Some(ready),
        succeeded: (record.succeeded > 0).then_some(record.succeeded),
        failed: (record.failed > 0).then_some(record.failed),
        terminating: None,
        start_time: record.start_time.clone(),
        completion_time: record.completion_time.clone(),
        completed_indexes: (spec.indexed && !record.completed_indexes.is_empty())
            .then(|| index_ranges(&record.completed_indexes)),
        conditions: (!conditions.is_empty()).then_some(conditions),
        uncounted_terminated_pods: Some(Default::default()),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::at;
    use super::*;

    fn spec(completions: Option<i32>, parallelism: i32) -> Spec {
        Spec {
            completions,
            parallelism,
            backoff_limit: 6,
            active_deadline_seconds: None,
            ttl_seconds_after_finished: None,
            indexed: false,
            suspend: false,
            on_failure: false,
            failure_rules: Vec::new(),
        }
    }

    fn record() -> Record {
        Record::new("u1", "default", "work", at(0))
    }

    fn seen(name: &str, phase: &str, restarts: i32, finished: Option<i64>) -> Observed {
        Observed {
            name: name.into(),
            phase: phase.into(),
            ready: phase == "Running",
            restarts,
            finished: finished.map(at),
            exits: if phase == "Failed" {
                vec![("main".into(), 1)]
            } else {
                Vec::new()
            },
        }
    }

    const OWNER: &str = "default/work/u1";

    fn names(plan: &Plan) -> Vec<String> {
        plan.create.iter().map(|p| p.name.clone()).collect()
    }

    #[test]
    fn completions_three_parallelism_two_runs_exactly_three_two_at_a_time() {
        let s = spec(Some(3), 2);
        let mut r = record();
        let first = sync(OWNER, &s, &mut r, &[], at(0));
        let a = names(&first);
        assert_eq!(a.len(), 2);
        assert!(a.iter().all(|n| n.starts_with("work-") && n.len() == 10));
        assert_eq!(r.start_time, Some(Time(at(0))));
        // Both running: nothing to do.
        let running = [
            seen(&a[0], "Running", 0, None),
            seen(&a[1], "Running", 0, None),
        ];
        assert_eq!(sync(OWNER, &s, &mut r, &running, at(1)), Plan::default());
        assert_eq!(status(&s, &r, &running).active, Some(2));
        assert_eq!(status(&s, &r, &running).ready, Some(2));
        // One succeeds: one more (the third), never more than two active.
        let one = [
            seen(&a[0], "Succeeded", 0, Some(2)),
            seen(&a[1], "Running", 0, None),
        ];
        let next = sync(OWNER, &s, &mut r, &one, at(3));
        let b = names(&next);
        assert_eq!(b.len(), 1);
        assert!(!a.contains(&b[0]));
        assert_eq!(r.succeeded, 1);
        // The second succeeds: the remaining one is enough, none new.
        let two = [
            seen(&a[0], "Succeeded", 0, Some(2)),
            seen(&a[1], "Succeeded", 0, Some(4)),
            seen(&b[0], "Running", 0, None),
        ];
        assert!(sync(OWNER, &s, &mut r, &two, at(5)).create.is_empty());
        let all = [
            seen(&a[0], "Succeeded", 0, Some(2)),
            seen(&a[1], "Succeeded", 0, Some(4)),
            seen(&b[0], "Succeeded", 0, Some(6)),
        ];
        let done = sync(OWNER, &s, &mut r, &all, at(7));
        assert!(done.create.is_empty());
        assert_eq!(
            done.events,
            [("Completed", "Job completed".to_string(), false)]
        );
        let st = status(&s, &r, &all);
        assert_eq!(st.succeeded, Some(3));
        assert_eq!(st.active, None);
        assert_eq!(st.completion_time, Some(Time(at(7))));
        let types: Vec<&str> = st
            .conditions
            .iter()
            .flatten()
            .map(|c| c.type_.as_str())
            .collect();
        assert_eq!(types, ["SuccessCriteriaMet", "Complete"]);
        // Finished: never again, whatever is observed.
        assert_eq!(sync(OWNER, &s, &mut r, &[], at(100)), Plan::default());
    }

    #[test]
    fn without_completions_one_success_ends_the_job_once_no_pod_is_active() {
        let s = spec(None, 2);
        let mut r = record();
        let a = names(&sync(OWNER, &s, &mut r, &[], at(0)));
        let one = [
            seen(&a[0], "Succeeded", 0, Some(1)),
            seen(&a[1], "Running", 0, None),
        ];
        let plan = sync(OWNER, &s, &mut r, &one, at(2));
        assert!(plan.create.is_empty() && plan.events.is_empty());
        let both = [
            seen(&a[0], "Succeeded", 0, Some(1)),
            seen(&a[1], "Succeeded", 0, Some(3)),
        ];
        let plan = sync(OWNER, &s, &mut r, &both, at(4));
        assert_eq!(plan.events[0].0, "Completed");
        assert_eq!(r.succeeded, 2);
    }

    #[test]
    fn never_counts_failed_pods_with_a_doubling_backoff_until_the_limit() {
        let mut s = spec(Some(1), 1);
        s.backoff_limit = 2;
        let mut r = record();
        let mut obs: Vec<Observed> = Vec::new();
        let mut t = 0;
        let mut pods = Vec::new();
        let mut delays = Vec::new();
        loop {
            let plan = sync(OWNER, &s, &mut r, &obs, at(t));
            if let Some(p) = plan.create.first() {
                pods.push(p.name.clone());
                // It fails one second later.
                t += 1;
                obs.push(seen(&p.name, "Failed", 0, Some(t)));
                continue;
            }
            if let Some(w) = plan.wake {
                delays.push(w.as_second() - t);
                t = w.as_second();
                continue;
            }
            assert_eq!(
                plan.events,
                [(
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit".to_string(),
                    true
                )]
            );
            break;
        }
        assert_eq!(
            pods.len(),
            3,
            "backoffLimit 2: the third failure fails the Job"
        );
        assert_eq!(delays, [10, 20], "10 s, then 20 s after the second failure");
        assert_eq!(r.failed, 3);
        let st = status(&s, &r, &obs);
        let types: Vec<&str> = st
            .conditions
            .iter()
            .flatten()
            .map(|c| c.type_.as_str())
            .collect();
        assert_eq!(types, ["FailureTarget", "Failed"]);
        assert_eq!(st.completion_time, None);
    }

    #[test]
    fn the_failure_backoff_doubles_and_is_capped_at_six_minutes() {
        let secs: Vec<i64> = (0..8).map(|n| failure_backoff(n).as_secs()).collect();
        assert_eq!(secs, [0, 10, 20, 40, 80, 160, 320, 360]);
        assert_eq!(failure_backoff(60).as_secs(), 360);
    }

    #[test]
    fn a_success_resets_the_failure_backoff() {
        let s = spec(Some(2), 1);
        let mut r = record();
        let a = names(&sync(OWNER, &s, &mut r, &[], at(0)));
        let obs = vec![seen(&a[0], "Failed", 0, Some(1))];
        let plan = sync(OWNER, &s, &mut r, &obs, at(1));
        assert_eq!(plan.wake, Some(at(11)));
        let b = names(&sync(OWNER, &s, &mut r, &obs, at(11)));
        let obs = vec![
            seen(&a[0], "Failed", 0, Some(1)),
            seen(&b[0], "Succeeded", 0, Some(12)),
        ];
        let plan = sync(OWNER, &s, &mut r, &obs, at(12));
        assert_eq!(plan.create.len(), 1, "no wait after a success");
    }

    #[test]
    fn on_failure_counts_container_restarts_of_active_pods() {
        let mut s = spec(Some(1), 1);
        s.on_failure = true;
        s.backoff_limit = 2;
        let mut r = record();
        let a = names(&sync(OWNER, &s, &mut r, &[], at(0)));
        let plan = sync(OWNER, &s, &mut r, &[seen(&a[0], "Running", 1, None)], at(5));
        assert!(plan.events.is_empty());
        let plan = sync(
            OWNER,
            &s,
            &mut r,
            &[seen(&a[0], "Running", 2, None)],
            at(30),
        );
        assert_eq!(plan.events[0].0, "BackoffLimitExceeded");
        assert_eq!(plan.delete, [a[0].clone()]);
        assert_eq!(r.failed, 1, "the terminated active pod counts as failed");
        // backoffLimit 0: the first restart fails it.
        s.backoff_limit = 0;
        let mut r = record();
        let a = names(&sync(OWNER, &s, &mut r, &[], at(0)));
        let plan = sync(OWNER, &s, &mut r, &[seen(&a[0], "Running", 1, None)], at(5));
        assert_eq!(plan.events[0].0, "BackoffLimitExceeded");
    }

    #[test]
    fn the_deadline_fails_the_job_and_deletes_its_active_pods() {
        let mut s = spec(Some(1), 1);
        s.active_deadline_seconds = Some(30);
        let mut r = record();
        let first = sync(OWNER, &s, &mut r, &[], at(100));
        assert_eq!(first.wake, Some(at(130)));
        let a = names(&first);
        let running = [seen(&a[0], "Running", 0, None)];
        assert_eq!(
            sync(OWNER, &s, &mut r, &running, at(129)).wake,
            Some(at(130))
        );
        let plan = sync(OWNER, &s, &mut r, &running, at(130));
        assert_eq!(plan.delete, a);
        assert_eq!(plan.events[0].0, "DeadlineExceeded");
        assert_eq!(r.finished().map(|f| f.0), Some("Failed"));
        let st = status(&s, &r, &running);
        assert_eq!(st.active, None);
        let failed = (st.conditions.iter().flatten()).find(|c| c.type_ == "Failed");
        assert_eq!(
            failed.and_then(|c| c.reason.as_deref()),
            Some("DeadlineExceeded")
        );
    }

    #[test]
    fn suspend_deletes_active_pods_without_failures_and_resume_restarts_the_deadline() {
        let mut s = spec(Some(2), 2);
        s.active_deadline_seconds = Some(60);
        let mut r = record();
        let a = names(&sync(OWNER, &s, &mut r, &[], at(0)));
        s.suspend = true;
        let running = [
            seen(&a[0], "Running", 0, None),
            seen(&a[1], "Running", 0, None),
        ];
        let plan = sync(OWNER, &s, &mut r, &running, at(10));
        assert_eq!(plan.delete, a);
        assert_eq!(
            plan.events,
            [("Suspended", "Job suspended".to_string(), false)]
        );
        assert_eq!(r.failed, 0);
        // Suspended past the deadline: nothing happens.
        let plan = sync(OWNER, &s, &mut r, &[], at(500));
        assert!(plan.create.is_empty() && plan.events.is_empty() && plan.delete.is_empty());
        s.suspend = false;
        let plan = sync(OWNER, &s, &mut r, &[], at(600));
        assert_eq!(plan.events, [("Resumed", "Job resumed".to_string(), false)]);
        assert_eq!(plan.create.len(), 2);
        assert!(plan.create.iter().all(|p| !a.contains(&p.name)));
        assert_eq!(plan.wake, Some(at(660)), "the deadline starts anew");
        let cond = r
            .conditions
            .iter()
            .find(|c| c.type_ == "Suspended")
            .expect("cond");
        assert_eq!(
            (cond.status.as_str(), cond.reason.as_str()),
            ("False", "JobResumed")
        );
    }

    #[test]
    fn indexed_jobs_run_each_index_once_and_retry_failed_indexes() {
        let mut s = spec(Some(3), 2);
        s.indexed = true;
        let mut r = record();
        let first = sync(OWNER, &s, &mut r, &[], at(0));
        let idx: Vec<Option<i32>> = first.create.iter().map(|p| p.index).collect();
        assert_eq!(idx, [Some(0), Some(1)]);
        assert!(first.create[0].name.starts_with("work-0-") && first.create[0].name.len() == 12);
        assert!(first.create[1].name.starts_with("work-1-"));
        let a = names(&first);
        // Index 1 fails, index 0 succeeds: 1 again (after backoff) and 2.
        let obs = vec![
            seen(&a[0], "Succeeded", 0, Some(1)),
            seen(&a[1], "Failed", 0, Some(1)),
        ];
        let plan = sync(OWNER, &s, &mut r, &obs, at(11));
        let idx: Vec<Option<i32>> = plan.create.iter().map(|p| p.index).collect();
        assert_eq!(idx, [Some(1), Some(2)]);
        assert_eq!(status(&s, &r, &obs).completed_indexes.as_deref(), Some("0"));
        let b = names(&plan);
        let mut obs = obs;
        obs.push(seen(&b[0], "Succeeded", 0, Some(12)));
        obs.push(seen(&b[1], "Succeeded", 0, Some(13)));
        let plan = sync(OWNER, &s, &mut r, &obs, at(14));
        assert_eq!(plan.events[0].0, "Completed");
        assert_eq!(
            status(&s, &r, &obs).completed_indexes.as_deref(),
            Some("0-2")
        );
        assert_eq!(status(&s, &r, &obs).succeeded, Some(3));
        assert_eq!(index_ranges(&[0, 1, 2, 4, 6, 7]), "0-2,4,6-7");
    }

    #[test]
    fn the_ttl_removes_a_finished_job_once_and_it_never_runs_again() {
        let mut s = spec(Some(1), 1);
        s.ttl_seconds_after_finished = Some(30);
        let mut r = record();
        let a = names(&sync(OWNER, &s, &mut r, &[], at(0)));
        let done = [seen(&a[0], "Succeeded", 0, Some(5))];
        let plan = sync(OWNER, &s, &mut r, &done, at(6));
        assert_eq!(plan.wake, Some(at(36)));
        assert!(!plan.remove);
        assert!(sync(OWNER, &s, &mut r, &done, at(35)).wake.is_some());
        let plan = sync(OWNER, &s, &mut r, &done, at(36));
        assert!(plan.remove);
        assert!(r.removed);
        // The pods are gone; the record keeps it from running again.
        assert_eq!(sync(OWNER, &s, &mut r, &[], at(1000)), Plan::default());
    }

    #[test]
    fn a_record_round_trips_and_ignores_unknown_fields_and_rejects_garbage() {
        let s = spec(Some(2), 1);
        let mut r = record();
        let a = names(&sync(OWNER, &s, &mut r, &[], at(0)));
        sync(
            OWNER,
            &s,
            &mut r,
            &[seen(&a[0], "Succeeded", 0, Some(3))],
            at(4),
        );
        let json = r.to_json();
        assert_eq!(Record::from_json(&json).as_ref(), Ok(&r));
        let mut v: serde_json::Value = serde_json::from_slice(&json).expect("json");
        assert_eq!(v["version"], 1);
        v["version"] = 2.into();
        v["somethingNew"] = serde_json::json!({"x": 1});
        let newer = Record::from_json(&serde_json::to_vec(&v).expect("json")).expect("newer");
        assert_eq!(newer.pods, r.pods);
        assert!(Record::from_json(b"{\"version\": 1, \"uid\": ").is_err());
        assert!(Record::from_json(b"garbage").is_err());
        let zero = br#"{"version":0,"uid":"u","namespace":"n","name":"x","created":"2020-01-01T00:00:00Z"}"#;
        assert!(Record::from_json(zero).is_err());
        // The restored record goes on where it was: its second pod still
        // runs, no third one.
        assert_eq!(r.pods.len(), 2);
        let mut back = Record::from_json(&json).expect("back");
        let plan = sync(
            OWNER,
            &s,
            &mut back,
            &[seen(&a[0], "Succeeded", 0, Some(3))],
            at(5),
        );
        assert!(plan.create.is_empty());
        assert_eq!(back.pods.len(), 2);
        assert_eq!(back.succeeded, 1);
    }

    #[test]
    fn pod_failure_policy_rules_on_exit_codes_fail_the_job_ignore_or_count() {
        let mut s = spec(Some(1), 1);
        s.backoff_limit = 0;
        s.failure_rules = vec![
            FailureRule {
                action: "Ignore".into(),
                container: None,
                in_values: true,
                values: vec![137],
            },
            FailureRule {
                action: "FailJob".into(),
                container: Some("main".into()),
                in_values: true,
                values: vec![42],
            },
        ];
        let exited = |name: &str, code: i32| Observed {
            name: name.into(),
            phase: "Failed".into(),
            finished: Some(at(1)),
            exits: vec![("main".into(), code)],
            ..Default::default()
        };
        // Ignored: not counted (backoffLimit 0 is not exceeded), replaced.
        let mut r = record();
        let a = names(&sync(OWNER, &s, &mut r, &[], at(0)));
        let plan = sync(OWNER, &s, &mut r, &[exited(&a[0], 137)], at(2));
        assert_eq!(plan.create.len(), 1, "{plan:?}");
        assert_eq!(r.failed, 0);
        // FailJob: at once, with the rule named.
        let b = names(&plan);
        let obs = [exited(&a[0], 137), exited(&b[0], 42)];
        let plan = sync(OWNER, &s, &mut r, &obs, at(3));
        assert_eq!(plan.events.len(), 1);
        assert_eq!(plan.events[0].0, "PodFailurePolicy");
        assert_eq!(
            plan.events[0].1,
            format!("Container main for pod default/{} failed with exit code 42 matching FailJob rule at index 1", b[0])
        );
        assert_eq!(r.finished().map(|f| f.0), Some("Failed"));
        // No rule matches: counted as usual.
        let mut r = record();
        let a = names(&sync(OWNER, &s, &mut r, &[], at(0)));
        let plan = sync(OWNER, &s, &mut r, &[exited(&a[0], 3)], at(2));
        assert_eq!(plan.events[0].0, "BackoffLimitExceeded");
    }
}
