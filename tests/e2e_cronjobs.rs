//! End-to-end: `batch/v1` CronJobs on the real binary and real Docker.
//! A `* * * * *` CronJob with `concurrencyPolicy: Forbid` and a 20 s
//! starting deadline whose pod sleeps 90 s skips the run that would overlap (the real one-minute schedule:
//! this test takes about three minutes); `rkubelet create job
//! --from=cronjob/X` and `kubectl create job --from=cronjob/X` run a
//! CronJob now, and a finished manual Job does not run again after a
//! restart; invalid schedules and time zones are reported with file and
//! field while other pods run on; `kubectl get cronjobs` prints kubectl's
//! columns.

mod common;

use std::process::Command;
use std::time::Duration;

use common::daemon::{wait_until, Daemon, IMAGE};
use serde_json::Value;

const SECS30: Duration = Duration::from_secs(30);

fn cronjob(name: &str, schedule: &str, policy: &str, command: &str) -> String {
    format!(
        r#"apiVersion: batch/v1
kind: CronJob
metadata: {{name: {name}}}
spec:
  schedule: "{schedule}"
  concurrencyPolicy: {policy}
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          terminationGracePeriodSeconds: 1
          containers:
          - name: work
            image: {IMAGE}
            command: ["sh", "-c", "{command}"]
"#
    )
}

fn jobs(d: &Daemon) -> Vec<Value> {
    d.get_json("/apis/batch/v1/namespaces/default/jobs")["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn job_names(d: &Daemon, prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = (jobs(d).iter())
        .filter_map(|j| j["metadata"]["name"].as_str())
        .filter(|n| n.starts_with(prefix))
        .map(String::from)
        .collect();
    names.sort();
    names
}

fn events_of(d: &Daemon, reason: &str) -> Vec<String> {
    (d.get_json("/api/v1/events")["items"]
        .as_array()
        .into_iter()
        .flatten())
    .filter(|e| e["reason"] == reason)
    .filter_map(|e| e["message"].as_str().map(String::from))
    .collect()
}

#[test]
fn forbid_skips_the_run_that_would_overlap_on_the_real_schedule() {
    let d = Daemon::start();
    let mut events = common::daemon::DockerEvents::start(&d.node);
    // With Forbid, a run skipped while the previous one is active would
    // still start late, when that one finishes, as on a cluster — unless
    // it is past `startingDeadlineSeconds` by then.
    d.write(
        "every-minute.yaml",
        &cronjob("tick", "* * * * *", "Forbid", "sleep 90").replace(
            "  concurrencyPolicy",
            "  startingDeadlineSeconds: 20\n  concurrencyPolicy",
        ),
    );
    // The first run comes at the next whole minute.
    let first = wait_until("the first Job", Duration::from_secs(75), || {
        job_names(&d, "tick-").into_iter().next()
    });
    let cj = d.get_json("/apis/batch/v1/namespaces/default/cronjobs/tick");
    assert_eq!(cj["status"]["active"][0]["name"], first.as_str(), "{cj}");
    assert!(cj["status"]["lastScheduleTime"].is_string(), "{cj}");
    let (ok, out, err) = d.kubectl(&["get", "cronjobs"]);
    assert!(ok, "{err}");
    let header: Vec<&str> = out
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST", "SCHEDULE", "AGE"],
        "{out}"
    );
    let row: Vec<&str> = out
        .lines()
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(&row[..1], ["tick"], "{out}");
    assert!(out.contains("* * * * *") && out.contains("<none>"), "{out}");
    let (ok, out, err) = d.ctl(&["get", "cj"]);
    assert!(ok && out.contains("tick"), "{out}{err}");

    // One minute later the first still sleeps: that run is skipped.
    wait_until("the skipped run", Duration::from_secs(75), || {
        (!events_of(&d, "JobAlreadyActive").is_empty()).then_some(())
    });
    assert_eq!(
        job_names(&d, "tick-"),
        [first.as_str()],
        "no second Job while one runs"
    );

    // After it finished (90 s), the next minute runs again: two minutes
    // after the first, not one.
    let second = wait_until("the second Job", Duration::from_secs(90), || {
        job_names(&d, "tick-").into_iter().find(|n| *n != first)
    });
    let minute = |n: &str| -> i64 { n.trim_start_matches("tick-").parse().expect("minutes") };
    assert_eq!(minute(&second) - minute(&first), 2, "{first} then {second}");
    let finished = events_of(&d, "SawCompletedJob");
    assert!(
        finished
            .iter()
            .any(|m| m.contains(&first) && m.ends_with("Complete")),
        "{finished:?}"
    );
    // Never two `work` containers at once: every start after the first
    // follows a die.
    let all = events.all().to_vec();
    let mut running = 0;
    for e in all.iter().filter(|e| e.container == "work") {
        match e.action.as_str() {
            "start" => running += 1,
            "die" => running -= 1,
            _ => {}
        }
        assert!(running <= 1, "two runs at once: {all:?}");
    }
    let cj = d.get_json("/apis/batch/v1/namespaces/default/cronjobs/tick");
    assert!(cj["status"]["lastSuccessfulTime"].is_string(), "{cj}");
}

fn create(d: &Daemon, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rkubelet"))
        .arg("create")
        .args(args)
        .arg("--kubeconfig")
        .arg(d.kubeconfig())
        .output()
        .expect("rkubelet create");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn complete(d: &Daemon, name: &str) -> bool {
    (jobs(d).iter())
        .filter(|j| j["metadata"]["name"] == name)
        .flat_map(|j| {
            j["status"]["conditions"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .any(|c| c["type"] == "Complete" && c["status"] == "True")
}

#[test]
fn create_job_from_a_cronjob_runs_it_now_and_once() {
    let mut d = Daemon::start();
    // Once a year: never during the test.
    d.write(
        "yearly.yaml",
        &cronjob("yearly", "@yearly", "Allow", "echo ran by hand"),
    );
    wait_until("the CronJob served", SECS30, || {
        d.get("/apis/batch/v1/namespaces/default/cronjobs/yearly")
            .ok()
    });
    let (ok, out, err) = create(&d, &["job", "yearly-now", "--from=cronjob/yearly"]);
    assert!(ok, "{out}{err}");
    assert_eq!(out.trim(), "job.batch/yearly-now created");
    wait_until("the manual Job completes", SECS30, || {
        complete(&d, "yearly-now").then_some(())
    });
    let job = (jobs(&d).into_iter())
        .find(|j| j["metadata"]["name"] == "yearly-now")
        .expect("job");
    assert_eq!(
        job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"],
        "manual"
    );
    assert_eq!(job["metadata"]["ownerReferences"][0]["kind"], "CronJob");
    assert_eq!(job["metadata"]["ownerReferences"][0]["name"], "yearly");

    // The real kubectl sends the same request.
    let (ok, out, err) =
        d.kubectl_auth(&["create", "job", "yearly-kubectl", "--from=cronjob/yearly"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("job.batch/yearly-kubectl created"), "{out}");
    wait_until("kubectl's Job completes", SECS30, || {
        complete(&d, "yearly-kubectl").then_some(())
    });
    // A name taken, a CronJob unknown: refused with a reason.
    let (ok, _, err) = create(&d, &["job", "yearly-now", "--from=cronjob/yearly"]);
    assert!(!ok && err.contains("already exists"), "{err}");
    let (ok, _, err) = create(&d, &["job", "x", "--from=cronjob/nope"]);
    assert!(!ok && err.contains("not found"), "{err}");

    // After a restart the finished manual Jobs are kept, not run again.
    let runs = |d: &Daemon| {
        (d.containers().iter())
            .filter(|c| c.cname() == "work")
            .count()
    };
    let before = runs(&d);
    assert_eq!(before, 2, "one pod per manual Job");
    d.sigterm();
    d.spawn();
    d.wait_healthy();
    wait_until("the Jobs served again", SECS30, || {
        (complete(&d, "yearly-now") && complete(&d, "yearly-kubectl")).then_some(())
    });
    assert_eq!(runs(&d), before, "no manual Job ran again");
}

#[test]
fn invalid_schedules_and_time_zones_are_named_and_other_pods_run_on() {
    let d = Daemon::start();
    d.write(
        "steady.yaml",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: steady}}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: main\n    image: {IMAGE}\n    command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; while true; do sleep 1; done\"]\n"
        ),
    );
    let before = d.wait_running("steady", &["main"], SECS30);
    d.write(
        "bad-cron.yaml",
        &cronjob("badcron", "61 * * * *", "Allow", "true"),
    );
    d.write(
        "bad-tz.yaml",
        &cronjob("badtz", "0 * * * *", "Allow", "true").replace(
            "  concurrencyPolicy",
            "  timeZone: Mars/Base\n  concurrencyPolicy",
        ),
    );
    let errors = wait_until("both errors in /manifests", SECS30, || {
        let v = d.get_json("/manifests");
        let errors: Vec<String> = (v["errors"].as_array()?.iter())
            .filter_map(|e| e.as_str().map(String::from))
            .collect();
        (errors.len() >= 2).then_some(errors)
    });
    let find = |file: &str| {
        errors
            .iter()
            .find(|e| e.contains(file))
            .cloned()
            .unwrap_or_default()
    };
    assert!(
        find("bad-cron.yaml").ends_with(
            "bad-cron.yaml: document 1: spec.schedule: Invalid value: \"61 * * * *\": end of range (61) above maximum (59): 61"
        ),
        "{errors:?}"
    );
    assert!(
        find("bad-tz.yaml").ends_with(
            "bad-tz.yaml: document 1: spec.timeZone: Invalid value: \"Mars/Base\": unknown time zone Mars/Base"
        ),
        "{errors:?}"
    );
    let (ok, out, _) = d.kubectl(&["get", "cronjobs"]);
    assert!(
        ok && !out.contains("badcron") && !out.contains("badtz"),
        "{out}"
    );
    let after = d.pod_containers("steady");
    assert_eq!(
        before.iter().map(|c| c.id.clone()).collect::<Vec<_>>(),
        after.iter().map(|c| c.id.clone()).collect::<Vec<_>>(),
        "the running pod is untouched"
    );
}
