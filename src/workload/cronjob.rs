//! The CronJob controller: when to create a Job, which Jobs to delete, and
//! the CronJob's status.
//!
//! [`sync`] is the cronjob controller's `syncCronJob` followed by its
//! `cleanupFinishedJobs`, as a pure function of the CronJob's spec, its
//! remembered state (creation time, `lastScheduleTime`,
//! `lastSuccessfulTime`, the `active` list), the Jobs it owns and `now`:
//!
//! * finished Jobs leave `active` (`SawCompletedJob`), a succeeded one
//!   moves `lastSuccessfulTime`; an active Job that no longer exists leaves
//!   it too (`MissingJob`);
//! * `suspend` (and a schedule without a next time) creates nothing;
//! * the scheduled time to run is the most recent one missed since
//!   `lastScheduleTime` (or the creation time), no earlier than
//!   `startingDeadlineSeconds` before now: at most one catch-up run however
//!   long rkubelet was down, with a `TooManyMissedTimes` warning past 100
//!   missed times, and `MissSchedule` when that time is past the deadline;
//! * `concurrencyPolicy`: `Allow` runs alongside active Jobs, `Forbid`
//!   skips the run while one is active (`JobAlreadyActive`), `Replace`
//!   deletes the active ones first;
//! * the Job is named `<cronjob>-<scheduled time in minutes since the
//!   epoch>`, so one scheduled time never makes two Jobs;
//! * finished Jobs beyond `successfulJobsHistoryLimit` /
//!   `failedJobsHistoryLimit` are deleted, oldest start first.
//!
//! [`job_for`] builds the Job from the `jobTemplate` as the controller
//! does. Pure: no clock reads, no IO; the shell persists the state and
//! runs the Jobs.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::tz::TimeZone;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::cron::Schedule;

/// The annotation with a cron-made Job's scheduled time (RFC 3339, in the
/// CronJob's time zone).
pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";
/// The annotation `kubectl create job --from=cronjob/x` puts on the Job.
pub const INSTANTIATE: &str = "cronjob.kubernetes.io/instantiate";
/// More missed times than this since the last run: `TooManyMissedTimes`.
const MANY_MISSED: i64 = 100;

/// `spec.concurrencyPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Concurrency {
    Allow,
    Forbid,
    Replace,
}

impl Concurrency {
    /// From the field's value (validated before; unset is `Allow`).
    pub fn from_field(value: Option<&str>) -> Concurrency {
        match value {
            Some("Forbid") => Concurrency::Forbid,
            Some("Replace") => Concurrency::Replace,
            _ => Concurrency::Allow,
        }
    }
}

/// The parts of a CronJob's spec the controller reads.
#[derive(Debug, Clone)]
pub struct Spec {
    pub schedule: Schedule,
    /// `spec.timeZone`, or the node's zone when unset.
    pub tz: TimeZone,
    pub suspend: bool,
    pub concurrency: Concurrency,
    pub starting_deadline_seconds: Option<i64>,
    pub successful_history: Option<i32>,
    pub failed_history: Option<i32>,
}

/// A Job in the `active` list.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ActiveRef {
    pub name: String,
    pub uid: String,
}

/// What the controller remembers of a CronJob between syncs (its status,
/// and the creation time its first schedule counts from).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    pub created: Timestamp,
    pub last_schedule: Option<Timestamp>,
    pub last_successful: Option<Timestamp>,
    pub active: Vec<ActiveRef>,
}

/// How a Job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Complete,
    Failed,
}

/// One Job the CronJob owns, as observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobView {
    pub name: String,
    pub uid: String,
    pub start_time: Option<Timestamp>,
    /// Set once it finished, with its `completionTime` when it completed.
    pub finished: Option<(Outcome, Option<Timestamp>)>,
}

/// An event about the CronJob (source `cronjob-controller`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub warning: bool,
    pub reason: &'static str,
    pub message: String,
}

impl Event {
    fn normal(reason: &'static str, message: String) -> Event {
        Event {
            warning: false,
            reason,
            message,
        }
    }
    fn warning(reason: &'static str, message: String) -> Event {
        Event {
            warning: true,
            reason,
            message,
        }
    }
}

/// What one sync decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The state to remember (and serve as status).
    pub state: State,
    /// Create the Job for this scheduled time ([`job_for`]; its name is
    /// [`job_name`]). The caller adds it to `state.active` once created
    /// (it knows the Job's uid) — [`Step::state`] already has
    /// `lastScheduleTime` set to it.
    pub create: Option<Timestamp>,
    /// Jobs to delete (with their pods), by name: the active ones a
    /// `Replace` run replaces, then finished ones beyond the history limits.
    pub delete: Vec<String>,
    pub events: Vec<Event>,
    /// When to sync again: the next scheduled time plus 100 ms, as the
    /// controller requeues; `None` when suspended or when the schedule has
    /// no next time.
    pub wake: Option<Timestamp>,
}

/// `<cronjob>-<scheduled time in minutes since the epoch>`.
pub fn job_name(cronjob: &str, scheduled: Timestamp) -> String {
    format!("{cronjob}-{}", scheduled.as_second().div_euclid(60))
}

/// The most recent scheduled time at or before `now` not yet run, from
/// `lastScheduleTime` (or creation), no earlier than the starting deadline
/// when `with_deadline`, with the number of missed times
/// (`mostRecentScheduleTime`). `Err` when two consecutive times are less
/// than a second apart (no next time).
fn most_recent(
    spec: &Spec,
    state: &State,
    now: Timestamp,
    with_deadline: bool,
) -> Result<(Timestamp, Option<Timestamp>, i64), String> {
    let mut earliest = state.last_schedule.unwrap_or(state.created);
    if let (true, Some(d)) = (with_deadline, spec.starting_deadline_seconds) {
        let deadline = now - SignedDuration::from_secs(d);
        if deadline > earliest {
            earliest = deadline;
        }
    }
    let next = |t: Timestamp| spec.schedule.next(t, &spec.tz);
    let Some(t1) = next(earliest) else {
        return Ok((earliest, None, 0));
    };
    if now < t1 {
        return Ok((earliest, None, 0));
    }
    let Some(t2) = next(t1) else {
        return Ok((earliest, Some(t1), 1));
    };
    if now < t2 {
        return Ok((earliest, Some(t1), 0));
    }
    let between = (t2 - t1).get_seconds();
    if between < 1 {
        return Err("time difference between two schedules is less than 1 second".into());
    }
    let elapsed = (now - t1).get_seconds();
    let missed = elapsed / between + 1;
    // Start two intervals before the estimate and step forward: exact for
    // irregular schedules (`30 6-16/4 * * 1-5`) too.
    let start = t1 + SignedDuration::from_secs((missed - 2) * between);
    let mut most_recent = None;
    let mut t = next(start);
    while let Some(at) = t.filter(|at| *at <= now) {
        most_recent = Some(at);
        t = next(at);
    }
    Ok((earliest, most_recent, missed))
}

/// The controller's requeue time: the next scheduled time after the most
/// recent one (`nextScheduleTimeDuration`), plus 100 ms.
fn wake_at(spec: &Spec, state: &State, now: Timestamp) -> Option<Timestamp> {
    let from = match most_recent(spec, state, now, false) {
        Err(_) => now,
        Ok((_, Some(recent), _)) => recent,
        Ok((earliest, None, _)) => earliest,
    };
    let at = spec.schedule.next(from, &spec.tz)?;
    Some(at + SignedDuration::from_millis(100))
}

/// One sync of a CronJob (see the module doc).
pub fn sync(spec: &Spec, state: &State, jobs: &[JobView], now: Timestamp) -> Step {
    let mut state = state.clone();
    let mut events = Vec::new();
    let mut delete = Vec::new();

    for job in jobs {
        let in_active = state.active.iter().any(|a| a.uid == job.uid);
        match job.finished {
            None if !in_active => events.push(Event::warning(
                "UnexpectedJob",
                format!(
                    "Saw a job that the controller did not create or forgot: {}",
                    job.name
                ),
            )),
            None => {}
            Some((outcome, completed)) => {
                if in_active {
                    state.active.retain(|a| a.uid != job.uid);
                    let condition = match outcome {
                        Outcome::Complete => "Complete",
                        Outcome::Failed => "Failed",
                    };
                    events.push(Event::normal(
                        "SawCompletedJob",
                        format!("Saw completed job: {}, condition: {condition}", job.name),
                    ));
                }
                if let (Outcome::Complete, Some(at)) = (outcome, completed) {
                    if state.last_successful.is_none_or(|l| at > l) {
                        state.last_successful = Some(at);
                    }
                }
            }
        }
    }
    let missing: Vec<ActiveRef> = (state.active.iter())
        .filter(|a| !jobs.iter().any(|j| j.uid == a.uid))
        .cloned()
        .collect();
    for gone in missing {
        events.push(Event::normal(
            "MissingJob",
            format!("Active job went missing: {}", gone.name),
        ));
        state.active.retain(|a| a.uid != gone.uid);
    }

    let create = decide(spec, &mut state, now, &mut events, &mut delete);
    let wake = (!spec.suspend)
        .then(|| wake_at(spec, &state, now))
        .flatten();
    delete.extend(history_cleanup(spec, jobs));
    for name in &delete {
        events.push(Event::normal(
            "SuccessfulDelete",
            format!("Deleted job {name}"),
        ));
    }
    Step {
        state,
        create,
        delete,
        events,
        wake,
    }
}

/// The scheduling half of `syncCronJob`: the time to create a Job for, if
/// any; updates `lastScheduleTime` and, for `Replace`, the active list and
/// `delete`.
fn decide(
    spec: &Spec,
    state: &mut State,
    now: Timestamp,
    events: &mut Vec<Event>,
    delete: &mut Vec<String>,
) -> Option<Timestamp> {
    if spec.suspend {
        return None;
    }
    let scheduled = match most_recent(spec, state, now, true) {
        Err(e) => {
            events.push(Event::warning(
                "InvalidSchedule",
                format!("invalid schedule: {e}"),
            ));
            return None;
        }
        Ok((_, None, _)) => return None,
        Ok((_, Some(t), missed)) => {
            if missed > MANY_MISSED {
                events.push(Event::warning(
                    "TooManyMissedTimes",
                    "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew".into(),
                ));
            }
            t
        }
    };
    if let Some(d) = spec.starting_deadline_seconds {
        if scheduled + SignedDuration::from_secs(d) < now {
            events.push(Event::warning(
                "MissSchedule",
                format!(
                    "Missed scheduled time to start a job: {}",
                    rfc1123z(scheduled)
                ),
            ));
            return None;
        }
    }
    // The Job of this time is already active (its name ends in the time).
    let suffix = job_name("", scheduled);
    let taken = state.active.iter().any(|a| a.name.ends_with(&suffix));
    if state.last_schedule == Some(scheduled) || taken {
        return None;
    }
    match spec.concurrency {
        Concurrency::Forbid if !state.active.is_empty() => {
            events.push(Event::normal(
                "JobAlreadyActive",
                "Not starting job because prior execution is running and concurrency policy is Forbid".into(),
            ));
            return None;
        }
        Concurrency::Replace => {
            delete.extend(state.active.drain(..).map(|a| a.name));
        }
        _ => {}
    }
    state.last_schedule = Some(scheduled);
    Some(scheduled)
}

/// Finished Jobs beyond the history limits, oldest start first (no start
/// time last, then by name), as `cleanupFinishedJobs`.
fn history_cleanup(spec: &Spec, jobs: &[JobView]) -> Vec<String> {
    let mut out = Vec::new();
    for (outcome, limit) in [
        (Outcome::Complete, spec.successful_history),
        (Outcome::Failed, spec.failed_history),
    ] {
        let Some(limit) = limit else { continue };
        let mut finished: Vec<&JobView> = (jobs.iter())
            .filter(|j| j.finished.is_some_and(|(o, _)| o == outcome))
            .collect();
        let excess = finished
            .len()
            .saturating_sub(usize::try_from(limit).unwrap_or(0));
        finished.sort_by(|a, b| {
            let key = |j: &JobView| (j.start_time.is_none(), j.start_time, j.name.clone());
            key(a).cmp(&key(b))
        });
        out.extend(finished.into_iter().take(excess).map(|j| j.name.clone()));
    }
    out
}

/// Go's `time.RFC1123Z` of a time in UTC (`Mon, 02 Jan 2006 15:04:05 +0000`).
fn rfc1123z(t: Timestamp) -> String {
    t.to_zoned(TimeZone::UTC)
        .strftime("%a, %d %b %Y %H:%M:%S +0000")
        .to_string()
}

/// Go's `time.RFC3339` of `t` in `tz` (`Z` for a zero offset).
pub fn rfc3339_in(t: Timestamp, tz: &TimeZone) -> String {
    let zoned = t.to_zoned(tz.clone());
    if zoned.offset().seconds() == 0 {
        zoned.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        zoned.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
    }
}

/// The Job the controller creates for `scheduled` (`getJobFromTemplate2`):
/// the template's labels, annotations and spec, named [`job_name`],
/// annotated with the scheduled time in the CronJob's zone (UTC when
/// `timeZone` is unset, as upstream), owned by the CronJob (`uid`).
pub fn job_for(cronjob: &CronJob, uid: &str, scheduled: Timestamp) -> Job {
    let name = cronjob.metadata.name.clone().unwrap_or_default();
    let spec = cronjob.spec.as_ref();
    let template = spec.map(|s| &s.job_template);
    let template_meta = template.and_then(|t| t.metadata.as_ref());
    let zone = (spec.and_then(|s| s.time_zone.as_deref()))
        .and_then(|z| TimeZone::get(z).ok())
        .unwrap_or(TimeZone::UTC);
    let mut annotations: BTreeMap<String, String> = template_meta
        .and_then(|m| m.annotations.clone())
        .unwrap_or_default();
    annotations.insert(SCHEDULED_TIMESTAMP.into(), rfc3339_in(scheduled, &zone));
    Job {
        metadata: ObjectMeta {
            name: Some(job_name(&name, scheduled)),
            namespace: cronjob.metadata.namespace.clone(),
            labels: template_meta.and_then(|m| m.labels.clone()),
            annotations: Some(annotations),
            owner_references: Some(vec![owner_ref(&name, uid)]),
            ..Default::default()
        },
        spec: template.and_then(|t| t.spec.clone()),
        status: None,
    }
}

/// The controller reference from a Job to its CronJob.
pub fn owner_ref(cronjob: &str, uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: "batch/v1".into(),
        kind: "CronJob".into(),
        name: cronjob.into(),
        uid: uid.into(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// The controller's spec view of a validated CronJob, in `local` when it
/// has no `timeZone`. `Err` with the reason when the schedule or time
/// zone do not parse (validation reports those first).
pub fn spec_of(cronjob: &CronJob, local: &TimeZone) -> Result<Spec, String> {
    let spec = cronjob.spec.as_ref().ok_or("no spec")?;
    let schedule = Schedule::parse(&spec.schedule)?;
    let tz = match spec.time_zone.as_deref() {
        None => local.clone(),
        Some(z) => TimeZone::get(z).map_err(|_| format!("unknown time zone {z}"))?,
    };
    Ok(Spec {
        schedule,
        tz,
        suspend: spec.suspend.unwrap_or(false),
        concurrency: Concurrency::from_field(spec.concurrency_policy.as_deref()),
        starting_deadline_seconds: spec.starting_deadline_seconds,
        successful_history: spec.successful_jobs_history_limit,
        failed_history: spec.failed_jobs_history_limit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn spec(schedule: &str) -> Spec {
        Spec {
            schedule: Schedule::parse(schedule).expect("schedule"),
            tz: TimeZone::UTC,
            suspend: false,
            concurrency: Concurrency::Allow,
            starting_deadline_seconds: None,
            successful_history: Some(3),
            failed_history: Some(1),
        }
    }

    fn state(created: &str) -> State {
        State {
            created: ts(created),
            last_schedule: None,
            last_successful: None,
            active: vec![],
        }
    }

    fn running(name: &str) -> JobView {
        JobView {
            name: name.into(),
            uid: format!("uid-{name}"),
            start_time: None,
            finished: None,
        }
    }

    fn finished(name: &str, start: &str, outcome: Outcome) -> JobView {
        JobView {
            name: name.into(),
            uid: format!("uid-{name}"),
            start_time: Some(ts(start)),
            finished: Some((outcome, Some(ts(start) + SignedDuration::from_secs(5)))),
        }
    }

    fn active(names: &[&str]) -> Vec<ActiveRef> {
        (names.iter())
            .map(|n| ActiveRef {
                name: n.to_string(),
                uid: format!("uid-{n}"),
            })
            .collect()
    }

    fn reasons(step: &Step) -> Vec<&'static str> {
        step.events.iter().map(|e| e.reason).collect()
    }

    #[test]
    fn nothing_runs_before_the_first_scheduled_time_and_the_wake_is_set_for_it() {
        let step = sync(
            &spec("*/5 * * * *"),
            &state("2024-05-01T10:01:30Z"),
            &[],
            ts("2024-05-01T10:04:59Z"),
        );
        assert_eq!(step.create, None);
        assert_eq!(step.wake, Some(ts("2024-05-01T10:05:00.1Z")));
        assert!(step.events.is_empty());
    }

    #[test]
    fn a_due_time_creates_its_job_once_named_by_minutes_since_the_epoch() {
        let s = spec("*/5 * * * *");
        let now = ts("2024-05-01T10:05:00.1Z");
        let step = sync(&s, &state("2024-05-01T10:01:30Z"), &[], now);
        let at = ts("2024-05-01T10:05:00Z");
        assert_eq!(step.create, Some(at));
        assert_eq!(step.state.last_schedule, Some(at));
        assert_eq!(job_name("backup", at), "backup-28575965");
        assert_eq!(step.wake, Some(ts("2024-05-01T10:10:00.1Z")));
        // The same sync again (the Job now active) does not create another.
        let mut st = step.state.clone();
        st.active = active(&["backup-28575965"]);
        let again = sync(&s, &st, &[running("backup-28575965")], now);
        assert_eq!(again.create, None);
        assert!(again.events.is_empty(), "{:?}", again.events);
    }

    #[test]
    fn after_downtime_only_the_most_recent_missed_time_runs() {
        let mut st = state("2024-05-01T00:00:00Z");
        st.last_schedule = Some(ts("2024-05-01T10:00:00Z"));
        // Down from 10:00 to 10:37: 10:05 … 10:35 were missed (7 times).
        let step = sync(&spec("*/5 * * * *"), &st, &[], ts("2024-05-01T10:37:12Z"));
        assert_eq!(step.create, Some(ts("2024-05-01T10:35:00Z")));
        assert_eq!(step.wake, Some(ts("2024-05-01T10:40:00.1Z")));
        assert!(!reasons(&step).contains(&"TooManyMissedTimes"));
    }

    #[test]
    fn more_than_a_hundred_missed_times_warn_and_still_run_the_latest() {
        let mut st = state("2024-05-01T00:00:00Z");
        st.last_schedule = Some(ts("2024-05-01T00:00:00Z"));
        let step = sync(&spec("* * * * *"), &st, &[], ts("2024-05-01T02:00:30Z"));
        assert_eq!(step.create, Some(ts("2024-05-01T02:00:00Z")));
        assert_eq!(reasons(&step), ["TooManyMissedTimes"]);
    }

    #[test]
    fn a_missed_time_past_the_starting_deadline_is_not_run() {
        let mut s = spec("0 * * * *");
        s.starting_deadline_seconds = Some(300);
        let mut st = state("2024-05-01T00:00:00Z");
        st.last_schedule = Some(ts("2024-05-01T08:00:00Z"));
        // 10:00 was missed; at 10:07 it is past the 5-minute deadline.
        let step = sync(&s, &st, &[], ts("2024-05-01T10:07:00Z"));
        assert_eq!(step.create, None);
        assert_eq!(step.state.last_schedule, st.last_schedule);
        assert_eq!(step.wake, Some(ts("2024-05-01T11:00:00.1Z")));
        // Within the deadline it runs, late.
        let step = sync(&s, &st, &[], ts("2024-05-01T10:04:00Z"));
        assert_eq!(step.create, Some(ts("2024-05-01T10:00:00Z")));
        // A deadline shorter than the gap since the last run also bounds the
        // search (no TooManyMissedTimes for a minutely schedule down a day).
        let mut s = spec("* * * * *");
        s.starting_deadline_seconds = Some(30);
        let step = sync(&s, &st, &[], ts("2024-05-02T10:00:20Z"));
        assert_eq!(step.create, Some(ts("2024-05-02T10:00:00Z")));
        assert!(step.events.is_empty(), "{:?}", step.events);
    }

    #[test]
    fn a_short_starting_deadline_bounds_how_late_a_run_may_start() {
        let mut s = spec("0 * * * *");
        s.starting_deadline_seconds = Some(10);
        let mut st = state("2024-05-01T00:00:00Z");
        st.last_schedule = Some(ts("2024-05-01T09:00:00Z"));
        // The search starts at now − 10 s = 10:00:05, after 10:00: nothing
        // due (and no event); 9 s late the run still starts.
        let step = sync(&s, &st, &[], ts("2024-05-01T10:00:15Z"));
        assert_eq!(step.create, None);
        assert!(step.events.is_empty(), "{:?}", step.events);
        let step = sync(&s, &st, &[], ts("2024-05-01T10:00:09Z"));
        assert_eq!(step.create, Some(ts("2024-05-01T10:00:00Z")));
    }

    #[test]
    fn forbid_skips_a_run_while_one_is_active() {
        let mut s = spec("* * * * *");
        s.concurrency = Concurrency::Forbid;
        let mut st = state("2024-05-01T00:00:00Z");
        st.last_schedule = Some(ts("2024-05-01T10:00:00Z"));
        st.active = active(&["c-28576080"]);
        let step = sync(
            &s,
            &st,
            &[running("c-28576080")],
            ts("2024-05-01T10:01:00.1Z"),
        );
        assert_eq!(step.create, None);
        assert_eq!(reasons(&step), ["JobAlreadyActive"]);
        assert_eq!(step.state.last_schedule, st.last_schedule, "not consumed");
        assert_eq!(step.wake, Some(ts("2024-05-01T10:02:00.1Z")));
        // Once it finished, the next time runs (the skipped one is gone:
        // only the most recent time counts).
        let done = finished("c-28576080", "2024-05-01T10:00:01Z", Outcome::Complete);
        let step = sync(&s, &st, &[done], ts("2024-05-01T10:02:00.1Z"));
        assert_eq!(step.create, Some(ts("2024-05-01T10:02:00Z")));
        assert_eq!(reasons(&step), ["SawCompletedJob"]);
        assert!(step.state.active.is_empty());
        assert_eq!(step.state.last_successful, Some(ts("2024-05-01T10:00:06Z")));
    }

    /// As on a cluster: the time skipped while a Job was active is still the
    /// most recent unmet one when that Job finishes, so it runs late then,
    /// unless it is past `startingDeadlineSeconds`.
    #[test]
    fn a_forbidden_run_starts_late_when_the_active_job_ends_within_the_deadline() {
        let mut s = spec("* * * * *");
        s.concurrency = Concurrency::Forbid;
        let mut st = state("2024-05-01T00:00:00Z");
        st.last_schedule = Some(ts("2024-05-01T10:00:00Z"));
        st.active = active(&["c-28576080"]);
        let done = [finished(
            "c-28576080",
            "2024-05-01T10:00:01Z",
            Outcome::Complete,
        )];
        let now = ts("2024-05-01T10:01:30Z");
        let step = sync(&s, &st, &done, now);
        assert_eq!(step.create, Some(ts("2024-05-01T10:01:00Z")));
        s.starting_deadline_seconds = Some(20);
        let step = sync(&s, &st, &done, now);
        assert_eq!(step.create, None);
        assert_eq!(step.wake, Some(ts("2024-05-01T10:02:00.1Z")));
    }

    #[test]
    fn allow_runs_alongside_and_replace_deletes_the_active_job_first() {
        let mut st = state("2024-05-01T00:00:00Z");
        st.last_schedule = Some(ts("2024-05-01T10:00:00Z"));
        st.active = active(&["c-28576080"]);
        let jobs = [running("c-28576080")];
        let now = ts("2024-05-01T10:01:00.1Z");
        let step = sync(&spec("* * * * *"), &st, &jobs, now);
        assert_eq!(step.create, Some(ts("2024-05-01T10:01:00Z")));
        assert!(step.delete.is_empty());
        assert_eq!(step.state.active, st.active, "still active");

        let mut s = spec("* * * * *");
        s.concurrency = Concurrency::Replace;
        let step = sync(&s, &st, &jobs, now);
        assert_eq!(step.create, Some(ts("2024-05-01T10:01:00Z")));
        assert_eq!(step.delete, ["c-28576080"]);
        assert!(step.state.active.is_empty());
        assert_eq!(reasons(&step), ["SuccessfulDelete"]);
    }

    #[test]
    fn suspend_creates_nothing_but_still_tracks_finished_jobs() {
        let mut s = spec("* * * * *");
        s.suspend = true;
        let mut st = state("2024-05-01T00:00:00Z");
        st.active = active(&["c-1"]);
        let step = sync(
            &s,
            &st,
            &[finished("c-1", "2024-05-01T09:00:00Z", Outcome::Failed)],
            ts("2024-05-01T10:01:00Z"),
        );
        assert_eq!(step.create, None);
        assert!(step.state.active.is_empty());
        assert_eq!(step.state.last_successful, None, "a failure is no success");
        assert_eq!(reasons(&step), ["SawCompletedJob"]);
        // Unsuspended later: one catch-up run for the latest time.
        s.suspend = false;
        let step = sync(&s, &step.state, &[], ts("2024-05-01T10:30:10Z"));
        assert_eq!(step.create, Some(ts("2024-05-01T10:30:00Z")));
    }

    #[test]
    fn history_limits_delete_the_oldest_finished_jobs() {
        let jobs = [
            finished("c-5", "2024-05-01T10:05:00Z", Outcome::Complete),
            finished("c-1", "2024-05-01T10:01:00Z", Outcome::Complete),
            finished("c-3", "2024-05-01T10:03:00Z", Outcome::Complete),
            finished("c-4", "2024-05-01T10:04:00Z", Outcome::Complete),
            finished("c-2", "2024-05-01T10:02:00Z", Outcome::Failed),
            finished("c-6", "2024-05-01T10:06:00Z", Outcome::Failed),
            running("c-7"),
        ];
        let mut st = state("2024-05-01T00:00:00Z");
        st.last_schedule = Some(ts("2024-05-01T10:07:00Z"));
        st.active = active(&["c-7"]);
        let step = sync(&spec("* * * * *"), &st, &jobs, ts("2024-05-01T10:07:30Z"));
        assert_eq!(step.delete, ["c-1", "c-2"]);
        assert_eq!(step.state.last_successful, Some(ts("2024-05-01T10:05:05Z")));
        // Limits of 0 keep nothing; unset limits keep everything.
        let mut s = spec("* * * * *");
        s.successful_history = Some(0);
        s.failed_history = None;
        let step = sync(&s, &st, &jobs, ts("2024-05-01T10:07:30Z"));
        assert_eq!(step.delete, ["c-1", "c-3", "c-4", "c-5"]);
    }

    #[test]
    fn an_active_job_that_went_missing_leaves_the_active_list() {
        let mut st = state("2024-05-01T00:00:00Z");
        st.last_schedule = Some(ts("2024-05-01T10:00:00Z"));
        st.active = active(&["c-28576080"]);
        let mut s = spec("0 * * * *");
        s.concurrency = Concurrency::Forbid;
        let step = sync(&s, &st, &[], ts("2024-05-01T10:30:00Z"));
        assert!(step.state.active.is_empty());
        assert_eq!(reasons(&step), ["MissingJob"]);
    }

    #[test]
    fn a_job_it_did_not_create_is_reported_not_adopted() {
        let step = sync(
            &spec("0 * * * *"),
            &state("2024-05-01T10:00:00Z"),
            &[running("c-manual-x")],
            ts("2024-05-01T10:30:00Z"),
        );
        assert_eq!(reasons(&step), ["UnexpectedJob"]);
        assert!(step.state.active.is_empty());
    }

    #[test]
    fn schedules_in_a_named_zone_follow_its_clock_across_dst() {
        let mut s = spec("30 2 * * *");
        s.tz = TimeZone::get("Europe/Berlin").expect("zone");
        let mut st = state("2024-03-01T00:00:00Z");
        st.last_schedule = Some(ts("2024-03-30T01:30:00Z"));
        // 2024-03-31 has no 02:30 in Berlin: nothing is due that day.
        let step = sync(&s, &st, &[], ts("2024-03-31T12:00:00Z"));
        assert_eq!(step.create, None);
        assert_eq!(step.wake, Some(ts("2024-04-01T00:30:00.1Z")));
    }

    #[test]
    fn the_job_carries_the_template_the_schedule_time_and_its_owner() {
        let cj: CronJob = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "report", "namespace": "ops"},
            "spec": {
                "schedule": "30 2 * * *",
                "timeZone": "Europe/Berlin",
                "jobTemplate": {
                    "metadata": {"labels": {"app": "report"}, "annotations": {"note": "n"}},
                    "spec": {"template": {"spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "r", "image": "busybox"}]
                    }}}
                }
            }
        }))
        .expect("cronjob");
        let at = ts("2024-04-01T00:30:00Z");
        let job = job_for(&cj, "cj-uid", at);
        assert_eq!(job.metadata.name.as_deref(), Some("report-28532190"));
        assert_eq!(job.metadata.namespace.as_deref(), Some("ops"));
        let ann = job.metadata.annotations.as_ref().expect("annotations");
        assert_eq!(ann[SCHEDULED_TIMESTAMP], "2024-04-01T02:30:00+02:00");
        assert_eq!(ann["note"], "n");
        assert_eq!(
            job.metadata.labels.as_ref().expect("labels")["app"],
            "report"
        );
        let owner = &job.metadata.owner_references.as_ref().expect("owner")[0];
        assert_eq!(
            (
                owner.api_version.as_str(),
                owner.kind.as_str(),
                owner.name.as_str()
            ),
            ("batch/v1", "CronJob", "report")
        );
        assert_eq!(owner.controller, Some(true));
        assert!(job.spec.is_some());
        assert_eq!(rfc3339_in(at, &TimeZone::UTC), "2024-04-01T00:30:00Z");
        assert_eq!(rfc1123z(at), "Mon, 01 Apr 2024 00:30:00 +0000");
    }
}
