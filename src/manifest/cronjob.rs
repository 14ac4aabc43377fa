//! `batch/v1` CronJobs validated and defaulted as the API server does.
//!
//! Owns the CronJob-specific checks with the API server's messages: the
//! name fits a Job name with its 11-character suffix (≤ 52), `schedule`
//! parses as the cronjob controller parses it ([`Schedule::parse`]) and
//! carries no `TZ=`/`CRON_TZ=`, `timeZone` names a zone of the system
//! time zone database (`/usr/share/zoneinfo`; looking one up is the only
//! read this module does), `concurrencyPolicy` is `Allow`, `Forbid` or
//! `Replace`, the deadline and history limits are ≥ 0, and the
//! `jobTemplate` is a valid Job template (`restartPolicy` `Never` or
//! `OnFailure`, its pod spec valid like a pod's, fields under
//! `spec.jobTemplate.spec.`). Defaults: `concurrencyPolicy: Allow`,
//! `suspend: false`, history limits 3 and 1.
//!
//! It does not schedule anything: [`crate::workload::cronjob`] does.

use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::jiff::tz::TimeZone;

use super::ManifestError;
use crate::workload::cron::Schedule;

/// A CronJob's name leaves room for `-<minutes since the epoch>`.
pub const MAX_NAME: usize = 52;

/// Is `name` a time zone of the system database, spelled as stored there
/// (Go's `time.LoadLocation` is case-sensitive on Linux)? `UTC` always is.
pub fn known_time_zone(name: &str) -> bool {
    if name == "UTC" {
        return true;
    }
    TimeZone::get(name).is_ok_and(|tz| tz.iana_name() == Some(name))
}

/// Checks a CronJob as the API server does (see the module doc).
///
/// Fails with every problem found, the first one's field in
/// [`ManifestError::field`], all joined by `; `.
pub fn validate(cj: &CronJob) -> Result<(), ManifestError> {
    let mut errs: Vec<(String, String)> = Vec::new();
    let mut push = |field: &str, reason: String| errs.push((field.to_string(), reason));
    let name = cj.metadata.name.as_deref().unwrap_or_default();
    if name.len() > MAX_NAME {
        push(
            "metadata.name",
            format!("Invalid value: {name:?}: must be no more than {MAX_NAME} characters"),
        );
    }
    let Some(spec) = cj.spec.as_ref() else {
        push("spec.schedule", "Required value".into());
        push("spec.jobTemplate", "Required value".into());
        return render(errs);
    };
    let schedule = spec.schedule.as_str();
    if schedule.is_empty() {
        push("spec.schedule", "Required value".into());
    } else if schedule.contains("TZ") {
        push(
            "spec.schedule",
            format!("Invalid value: {schedule:?}: cannot use TZ or CRON_TZ in schedule, use timeZone field instead"),
        );
    } else if let Err(e) = Schedule::parse(schedule) {
        push("spec.schedule", format!("Invalid value: {schedule:?}: {e}"));
    }
    if let Some(tz) = spec.time_zone.as_deref() {
        if tz.eq_ignore_ascii_case("Local") {
            push(
                "spec.timeZone",
                format!("Invalid value: {tz:?}: timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones"),
            );
        } else if !known_time_zone(tz) {
            push(
                "spec.timeZone",
                format!("Invalid value: {tz:?}: unknown time zone {tz}"),
            );
        }
    }
    match spec.concurrency_policy.as_deref() {
        None | Some("Allow" | "Forbid" | "Replace") => {}
        Some(other) => push(
            "spec.concurrencyPolicy",
            format!("Unsupported value: {other:?}: supported values: \"Allow\", \"Forbid\", \"Replace\""),
        ),
    }
    for (field, value) in [
        (
            "spec.startingDeadlineSeconds",
            spec.starting_deadline_seconds,
        ),
        (
            "spec.successfulJobsHistoryLimit",
            spec.successful_jobs_history_limit.map(i64::from),
        ),
        (
            "spec.failedJobsHistoryLimit",
            spec.failed_jobs_history_limit.map(i64::from),
        ),
    ] {
        if let Some(v) = value.filter(|v| *v < 0) {
            push(
                field,
                format!("Invalid value: {v}: must be greater than or equal to 0"),
            );
        }
    }
    match spec.job_template.spec.as_ref() {
        None => push("spec.jobTemplate.spec.template", "Required value".into()),
        Some(job) => {
            for (field, value) in [
                ("parallelism", job.parallelism),
                ("completions", job.completions),
                ("backoffLimit", job.backoff_limit),
                ("ttlSecondsAfterFinished", job.ttl_seconds_after_finished),
            ] {
                if let Some(v) = value.filter(|v| *v < 0) {
                    push(
                        &format!("spec.jobTemplate.spec.{field}"),
                        format!("Invalid value: {v}: must be greater than or equal to 0"),
                    );
                }
            }
            if let Some(v) = job.active_deadline_seconds.filter(|v| *v <= 0) {
                push(
                    "spec.jobTemplate.spec.activeDeadlineSeconds",
                    format!("Invalid value: {v}: must be greater than 0"),
                );
            }
            match job.template.spec.as_ref() {
                None => push(
                    "spec.jobTemplate.spec.template.spec.containers",
                    "Required value".into(),
                ),
                Some(pod) => {
                    // Unset is the pod default, `Always`, as the API server sees it.
                    let policy = (pod.restart_policy.as_deref())
                        .filter(|p| !p.is_empty())
                        .unwrap_or("Always");
                    if policy != "Never" && policy != "OnFailure" {
                        push(
                            "spec.jobTemplate.spec.template.spec.restartPolicy",
                            format!("Unsupported value: {policy:?}: supported values: \"OnFailure\", \"Never\""),
                        );
                    }
                    if let Err(e) = super::validate::validate_template_spec(
                        pod,
                        "spec.jobTemplate.spec.template.",
                    ) {
                        let field = e
                            .field
                            .as_deref()
                            .unwrap_or("spec.jobTemplate.spec.template");
                        push(field, e.reason);
                    }
                }
            }
        }
    }
    render(errs)
}

/// The API server's field errors as one [`ManifestError`].
fn render(errs: Vec<(String, String)>) -> Result<(), ManifestError> {
    let mut iter = errs.into_iter();
    let Some((field, mut text)) = iter.next() else {
        return Ok(());
    };
    for (f, r) in iter {
        text.push_str(&format!("; {f}: {r}"));
    }
    let mut err = ManifestError::new("", text);
    err.field = Some(field);
    Err(err)
}

/// Defaults what the API server defaults for a CronJob: namespace
/// `default`, `concurrencyPolicy: Allow`, `suspend: false`,
/// `successfulJobsHistoryLimit: 3`, `failedJobsHistoryLimit: 1`.
pub fn apply_defaults(cj: &mut CronJob) {
    if cj.metadata.namespace.as_deref().is_none_or(str::is_empty) {
        cj.metadata.namespace = Some("default".into());
    }
    let spec = cj.spec.get_or_insert_with(Default::default);
    spec.concurrency_policy
        .get_or_insert_with(|| "Allow".into());
    spec.suspend.get_or_insert(false);
    spec.successful_jobs_history_limit.get_or_insert(3);
    spec.failed_jobs_history_limit.get_or_insert(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    const NIGHTLY: &str = r#"
metadata: {name: nightly}
spec:
  schedule: "30 2 * * *"
  timeZone: Europe/Berlin
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: c, image: busybox}]
"#;

    fn cronjob(yaml: &str) -> CronJob {
        serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("{e}"))
    }

    fn err(yaml: &str) -> ManifestError {
        validate(&cronjob(yaml)).expect_err("invalid")
    }

    #[test]
    fn a_plain_cronjob_is_valid_and_defaulted_like_the_api_server_does() {
        let mut cj = cronjob(NIGHTLY);
        validate(&cj).unwrap_or_else(|e| panic!("{e}"));
        apply_defaults(&mut cj);
        let spec = cj.spec.as_ref().expect("spec");
        assert_eq!(cj.metadata.namespace.as_deref(), Some("default"));
        assert_eq!(spec.concurrency_policy.as_deref(), Some("Allow"));
        assert_eq!(spec.successful_jobs_history_limit, Some(3));
        assert_eq!(spec.failed_jobs_history_limit, Some(1));
        assert_eq!(spec.suspend, Some(false));
        for macro_ in ["@hourly", "@daily", "@weekly", "@monthly", "@yearly"] {
            let yaml = NIGHTLY.replace("30 2 * * *", macro_);
            validate(&cronjob(&yaml)).unwrap_or_else(|e| panic!("{macro_}: {e}"));
        }
    }

    #[test]
    fn a_bad_schedule_is_named_with_the_parsers_reason() {
        let e = err(&NIGHTLY.replace("30 2 * * *", "61 2 * * *"));
        assert_eq!(e.field.as_deref(), Some("spec.schedule"));
        assert_eq!(
            e.reason,
            "Invalid value: \"61 2 * * *\": end of range (61) above maximum (59): 61"
        );
        let e = err(&NIGHTLY.replace("\"30 2 * * *\"", "\"@reboot\""));
        assert_eq!(
            e.reason,
            "Invalid value: \"@reboot\": unrecognized descriptor: @reboot"
        );
        let e = err(&NIGHTLY.replace("\"30 2 * * *\"", "\"@every 5m\""));
        assert_eq!(e.field.as_deref(), Some("spec.schedule"));
        let e = err(&NIGHTLY.replace("30 2 * * *", "CRON_TZ=UTC 30 2 * * *"));
        assert!(
            e.reason
                .ends_with("cannot use TZ or CRON_TZ in schedule, use timeZone field instead"),
            "{e}"
        );
    }

    #[test]
    fn an_unknown_time_zone_is_named() {
        let e = err(&NIGHTLY.replace("Europe/Berlin", "Mars/Base"));
        assert_eq!(e.field.as_deref(), Some("spec.timeZone"));
        assert_eq!(
            e.reason,
            "Invalid value: \"Mars/Base\": unknown time zone Mars/Base"
        );
        let e = err(&NIGHTLY.replace("Europe/Berlin", "europe/berlin"));
        assert_eq!(e.field.as_deref(), Some("spec.timeZone"), "case matters");
        let e = err(&NIGHTLY.replace("Europe/Berlin", "Local"));
        assert!(e.reason.contains("must be an explicit time zone"), "{e}");
        validate(&cronjob(&NIGHTLY.replace("Europe/Berlin", "UTC"))).expect("UTC");
    }

    #[test]
    fn negative_limits_and_deadlines_and_unknown_policies_are_rejected() {
        let e = err(&NIGHTLY.replace(
            "  timeZone: Europe/Berlin\n",
            "  startingDeadlineSeconds: -5\n  successfulJobsHistoryLimit: -1\n",
        ));
        assert_eq!(e.field.as_deref(), Some("spec.startingDeadlineSeconds"));
        assert_eq!(
            e.reason,
            "Invalid value: -5: must be greater than or equal to 0; spec.successfulJobsHistoryLimit: Invalid value: -1: must be greater than or equal to 0"
        );
        let e = err(&NIGHTLY.replace(
            "  timeZone: Europe/Berlin\n",
            "  concurrencyPolicy: Sometimes\n",
        ));
        assert_eq!(e.field.as_deref(), Some("spec.concurrencyPolicy"));
        let e = err(&NIGHTLY.replace(
            "    spec:\n      template:",
            "    spec:\n      completions: -2\n      template:",
        ));
        assert_eq!(
            e.field.as_deref(),
            Some("spec.jobTemplate.spec.completions")
        );
    }

    #[test]
    fn the_job_template_must_not_restart_always_and_must_be_a_valid_pod() {
        let e = err(&NIGHTLY.replace("restartPolicy: OnFailure", "restartPolicy: Always"));
        assert_eq!(
            e.field.as_deref(),
            Some("spec.jobTemplate.spec.template.spec.restartPolicy")
        );
        assert_eq!(
            e.reason,
            "Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\""
        );
        let e = err(&NIGHTLY.replace("          restartPolicy: OnFailure\n", ""));
        assert!(e.reason.starts_with("Unsupported value: \"Always\""), "{e}");
        let e = err(&NIGHTLY.replace("image: busybox", "image: \"\""));
        assert_eq!(
            e.field.as_deref(),
            Some("spec.jobTemplate.spec.template.spec.containers[0].image"),
            "{e}"
        );
    }

    #[test]
    fn a_name_too_long_for_its_jobs_is_rejected() {
        let long = "n".repeat(53);
        let e = err(&NIGHTLY.replace("name: nightly", &format!("name: {long}")));
        assert_eq!(e.field.as_deref(), Some("metadata.name"));
        assert!(
            e.reason.ends_with("must be no more than 52 characters"),
            "{e}"
        );
    }
}
