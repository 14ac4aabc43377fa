//! End-to-end: `batch/v1` Jobs with the real `rkubelet` binary, the real
//! Docker daemon and the real kubectl: completions and parallelism (sampled
//! from Docker's events), the backoff limit, `kill -9` in the middle of a
//! Job, a finished Job across restarts (also after its ttl removed its
//! pods), a corrupt record, bad manifests.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use common::daemon::{wait_until, Ctr, Daemon, DockerEvents, IMAGE};
use serde_json::Value;

const SECS30: Duration = Duration::from_secs(30);

fn job(name: &str, spec: &str, command: &str) -> String {
    format!(
        r#"apiVersion: batch/v1
kind: Job
metadata: {{name: {name}}}
spec:
{spec}
  template:
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: {IMAGE}
        command: ["sh", "-c", "{command}"]
"#
    )
}

fn api_job(d: &Daemon, name: &str) -> Option<Value> {
    let body = d
        .get(&format!("/apis/batch/v1/namespaces/default/jobs/{name}"))
        .ok()?;
    serde_json::from_str(&body).ok()
}

/// Waits until the API serves the Job (`kubectl wait` fails on a Job not
/// there yet).
fn wait_served(d: &Daemon, name: &str) -> Value {
    wait_until(&format!("Job {name} served"), SECS30, || api_job(d, name))
}

fn condition(j: &Value, type_: &str) -> Option<Value> {
    (j["status"]["conditions"].as_array().into_iter().flatten())
        .find(|c| c["type"] == type_ && c["status"] == "True")
        .cloned()
}

/// The `main` containers of the Job's pods (any state).
fn job_containers(d: &Daemon, name: &str) -> Vec<Ctr> {
    (d.containers().into_iter())
        .filter(|c| c.cname() == "main")
        .filter(|c| {
            c.label("io.kubernetes.pod.name")
                .strip_prefix(&format!("{name}-"))
                .is_some_and(|s| s.len() == 5)
        })
        .collect()
}

fn pod_uids(cs: &[Ctr]) -> BTreeSet<String> {
    cs.iter().map(|c| c.uid().to_string()).collect()
}

fn record_files(d: &Daemon) -> Vec<PathBuf> {
    std::fs::read_dir(d.root_dir().join("jobs"))
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default()
}

#[test]
fn completions_three_parallelism_two_runs_three_pods_two_at_a_time_and_kubectl_follows() {
    let d = Daemon::start();
    let mut events = DockerEvents::start(&d.node);
    d.write(
        "work.yaml",
        &job(
            "work",
            "  completions: 3\n  parallelism: 2",
            "echo did $HOSTNAME; sleep 2",
        ),
    );
    wait_served(&d, "work");
    let (ok, out, err) = d.kubectl(&[
        "wait",
        "--for=condition=complete",
        "job/work",
        "--timeout=90s",
    ]);
    assert!(ok, "kubectl wait: {out}{err}\n{}", d.log());
    assert!(out.contains("job.batch/work condition met"), "{out}");
    let j = api_job(&d, "work").expect("served");
    assert_eq!(j["status"]["succeeded"], 3, "{j}");
    assert!(j["status"]["failed"].is_null(), "{j}");
    assert!(condition(&j, "SuccessCriteriaMet").is_some(), "{j}");
    // Exactly three pods ran, each once, all succeeded.
    let cs = job_containers(&d, "work");
    assert_eq!(pod_uids(&cs).len(), 3, "{cs:?}");
    assert_eq!(cs.len(), 3, "one container each: {cs:?}");
    assert!(cs.iter().all(|c| !c.running && c.exit_code == 0), "{cs:?}");
    // Never more than two at once, from Docker's own events.
    let uids = pod_uids(&cs);
    let mut seq: Vec<(u128, i32)> = (events.all().iter())
        .filter(|e| e.container == "main" && uids.contains(&e.uid))
        .filter_map(|e| match e.action.as_str() {
            "start" => Some((e.nanos, 1)),
            "die" => Some((e.nanos, -1)),
            _ => None,
        })
        .collect();
    seq.sort();
    let starts = seq.iter().filter(|(_, s)| *s == 1).count();
    assert_eq!(starts, 3, "{seq:?}");
    let (mut now, mut most) = (0, 0);
    for (_, step) in &seq {
        now += step;
        most = most.max(now);
    }
    assert_eq!(most, 2, "two at once, never three: {seq:?}");
    // kubectl's views.
    let (ok, out, err) = d.kubectl(&["get", "jobs"]);
    assert!(ok, "{err}");
    let line = out.lines().find(|l| l.starts_with("work ")).expect(&out);
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(&cols[..3], ["work", "Complete", "3/3"], "{out}");
    assert!(out.starts_with("NAME"), "{out}");
    assert!(
        out.lines().next().is_some_and(|h| h.contains("STATUS")
            && h.contains("COMPLETIONS")
            && h.contains("DURATION")),
        "{out}"
    );
    let (ok, out, err) = d.kubectl(&["logs", "job/work"]);
    assert!(ok, "kubectl logs: {err}");
    assert!(out.contains("did work-"), "{out}");
    let (ok, out, err) = d.kubectl(&["describe", "job", "work"]);
    assert!(ok, "kubectl describe: {err}");
    assert!(out.contains("Completions:"), "{out}");
    assert!(out.contains("3 Succeeded"), "{out}");
    assert!(out.contains("SuccessfulCreate"), "events: {out}");
    assert!(
        out.contains("job-controller"),
        "events from the job controller: {out}"
    );
    assert!(out.contains("Completed"), "{out}");
    let (ok, out, err) = d.ctl(&["get", "jobs.batch"]);
    assert!(ok, "rkubelet get jobs: {err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("work ") && l.contains("Complete") && l.contains("3/3")),
        "{out}"
    );
    let (ok, out, err) = d.ctl(&["get", "job", "work"]);
    assert!(ok && out.contains("work"), "{out}{err}");
    // The finished pods stay, as Completed.
    let (ok, out, _) = d.kubectl(&["get", "pods", "-l", "job-name=work"]);
    assert!(ok);
    assert_eq!(out.matches("Completed").count(), 3, "{out}");
}

#[test]
fn a_failing_job_stops_at_its_backoff_limit() {
    let d = Daemon::start();
    d.write(
        "fail.yaml",
        &job("fail", "  backoffLimit: 2", "echo failing; exit 3"),
    );
    // Failures wait 10 s, then 20 s before the next pod.
    wait_served(&d, "fail");
    let (ok, out, err) = d.kubectl(&[
        "wait",
        "--for=condition=failed",
        "job/fail",
        "--timeout=90s",
    ]);
    assert!(ok, "kubectl wait: {out}{err}\n{}", d.log());
    let j = api_job(&d, "fail").expect("served");
    let failed = condition(&j, "Failed").expect("Failed");
    assert_eq!(failed["reason"], "BackoffLimitExceeded", "{j}");
    assert!(condition(&j, "FailureTarget").is_some(), "{j}");
    assert_eq!(j["status"]["failed"], 3, "{j}");
    let cs = job_containers(&d, "fail");
    assert_eq!(pod_uids(&cs).len(), 3, "three pods, no fourth: {cs:?}");
    assert!(cs.iter().all(|c| c.exit_code == 3), "{cs:?}");
    let (ok, out, _) = d.kubectl(&["get", "job", "fail"]);
    assert!(ok && out.contains("Failed"), "{out}");
    let (ok, out, _) = d.kubectl(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.kind=Job",
    ]);
    assert!(ok && out.contains("BackoffLimitExceeded"), "{out}");
}

#[test]
fn a_pod_failure_policy_rule_fails_the_job_on_its_exit_code_at_once() {
    let d = Daemon::start();
    d.write(
        "policy.yaml",
        &job(
            "policy",
            "  backoffLimit: 6\n  podFailurePolicy:\n    rules:\n    - {action: FailJob, onExitCodes: {containerName: main, operator: In, values: [42]}}",
            "exit 42",
        ),
    );
    let j = wait_until("the Job failed", SECS30, || {
        api_job(&d, "policy").filter(|j| condition(j, "Failed").is_some())
    });
    let failed = condition(&j, "Failed").expect("Failed");
    assert_eq!(failed["reason"], "PodFailurePolicy", "{j}");
    let message = failed["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("Container main for pod default/policy-")
            && message.ends_with("failed with exit code 42 matching FailJob rule at index 0"),
        "{message}"
    );
    assert_eq!(pod_uids(&job_containers(&d, "policy")).len(), 1, "no retry");
}

#[test]
fn kill_9_mid_job_loses_and_duplicates_no_completion_and_a_finished_job_never_reruns() {
    let mut d = Daemon::start();
    d.write(
        "steps.yaml",
        &job("steps", "  completions: 3\n  parallelism: 1", "sleep 3"),
    );
    wait_until("the first step succeeded", SECS30, || {
        (api_job(&d, "steps")?["status"]["succeeded"] == 1).then_some(())
    });
    // The second runs; it finishes while rkubelet is down.
    let running = wait_until("the second step runs", SECS30, || {
        job_containers(&d, "steps").into_iter().find(|c| c.running)
    });
    d.kill9();
    wait_until(
        "the second step exits while rkubelet is down",
        SECS30,
        || {
            (job_containers(&d, "steps").iter())
                .any(|c| c.id == running.id && !c.running)
                .then_some(())
        },
    );
    d.spawn();
    wait_served(&d, "steps");
    let (ok, out, err) = d.kubectl(&[
        "wait",
        "--for=condition=complete",
        "job/steps",
        "--timeout=60s",
    ]);
    assert!(ok, "kubectl wait: {out}{err}\n{}", d.log());
    let j = api_job(&d, "steps").expect("served");
    assert_eq!(j["status"]["succeeded"], 3, "{j}");
    let before = job_containers(&d, "steps");
    assert_eq!(pod_uids(&before).len(), 3, "exactly three pods: {before:?}");
    assert_eq!(before.len(), 3, "none ran twice: {before:?}");
    assert!(before.iter().all(|c| c.exit_code == 0));
    // Restarted again: the finished Job is served as finished, nothing runs.
    d.kill9();
    d.spawn();
    let j = wait_until("the Job served after the restart", SECS30, || {
        api_job(&d, "steps").filter(|j| condition(j, "Complete").is_some())
    });
    assert_eq!(j["status"]["succeeded"], 3, "{j}");
    let ids = |cs: &[Ctr]| cs.iter().map(|c| c.id.clone()).collect::<BTreeSet<_>>();
    assert_eq!(ids(&job_containers(&d, "steps")), ids(&before));
    assert_eq!(record_files(&d).len(), 1, "{:?}", record_files(&d));
}

#[test]
fn after_its_ttl_a_job_is_gone_and_a_restart_does_not_run_it_again() {
    let mut d = Daemon::start();
    d.write(
        "short.yaml",
        &job("short", "  ttlSecondsAfterFinished: 2", "echo once"),
    );
    wait_until("the Job completes", SECS30, || {
        api_job(&d, "short").filter(|j| condition(j, "Complete").is_some())
    });
    wait_until("the ttl removed the pod and the Job", SECS30, || {
        (job_containers(&d, "short").is_empty() && api_job(&d, "short").is_none()).then_some(())
    });
    let records = record_files(&d);
    assert_eq!(records.len(), 1, "the record stays: {records:?}");
    let record: Value =
        serde_json::from_slice(&std::fs::read(&records[0]).expect("read")).expect("json");
    assert_eq!(record["version"], 1);
    assert_eq!(record["removed"], true, "{record}");
    // A restart with a marker pod: once it runs, the Job was looked at.
    d.write(
        "marker.yaml",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: marker}}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - {{name: m, image: {IMAGE}, command: [sleep, '3600']}}\n"
        ),
    );
    d.wait_running("marker", &["m"], SECS30);
    d.kill9();
    d.spawn();
    d.wait_running("marker", &["m"], SECS30);
    wait_until("the restarted rkubelet synced", SECS30, || {
        d.api_pod("marker")
            .filter(|p| p["status"]["phase"] == "Running")
    });
    assert!(job_containers(&d, "short").is_empty(), "not rerun");
    assert!(api_job(&d, "short").is_none());
}

#[test]
fn a_corrupt_record_is_named_and_the_job_rebuilt_from_docker_without_rerunning() {
    let mut d = Daemon::start();
    d.write("once.yaml", &job("once", "  completions: 1", "echo once"));
    wait_until("the Job completes", SECS30, || {
        api_job(&d, "once").filter(|j| condition(j, "Complete").is_some())
    });
    let before = job_containers(&d, "once");
    assert_eq!(before.len(), 1);
    let records = record_files(&d);
    assert_eq!(records.len(), 1);
    d.kill9();
    std::fs::write(&records[0], b"{\"version\": 1, \"uid\": ").expect("corrupt");
    d.spawn();
    let j = wait_until("the Job served again", SECS30, || {
        api_job(&d, "once").filter(|j| condition(j, "Complete").is_some())
    });
    assert_eq!(j["status"]["succeeded"], 1, "{j}");
    let after = job_containers(&d, "once");
    assert_eq!(
        after.iter().map(|c| &c.id).collect::<Vec<_>>(),
        before.iter().map(|c| &c.id).collect::<Vec<_>>(),
        "not rerun"
    );
    let log = d.last_log();
    let name = records[0].display().to_string();
    assert!(
        log.contains(&name) && log.contains("could not be read"),
        "the file is named:\n{log}"
    );
}

#[test]
fn bad_jobs_are_named_with_file_and_field_and_other_pods_stay() {
    let d = Daemon::start();
    d.write(
        "keep.yaml",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: keep}}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - {{name: k, image: {IMAGE}, command: [sleep, '3600']}}\n"
        ),
    );
    let kept = d.wait_running("keep", &["k"], SECS30);
    d.write(
        "always.yaml",
        &job("always", "  completions: 1", "true").replace("Never", "Always"),
    );
    d.write(
        "negative.yaml",
        &job("negative", "  completions: -1\n  parallelism: 1", "true"),
    );
    let errors = wait_until("both errors", SECS30, || {
        let v = d.get_json("/manifests");
        let errors: Vec<String> = (v["errors"].as_array()?.iter())
            .filter_map(|e| e.as_str().map(String::from))
            .collect();
        (errors.len() == 2).then_some(errors)
    });
    let always = errors
        .iter()
        .find(|e| e.contains("always.yaml"))
        .expect("always");
    assert!(
        always.ends_with(
            "always.yaml: document 1: spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\""
        ),
        "{always}"
    );
    let negative = errors
        .iter()
        .find(|e| e.contains("negative.yaml"))
        .expect("negative");
    assert!(
        negative.ends_with(
            "negative.yaml: document 1: spec.completions: Invalid value: -1: must be greater than or equal to 0"
        ),
        "{negative}"
    );
    assert!(api_job(&d, "always").is_none() && api_job(&d, "negative").is_none());
    let now = d.wait_running("keep", &["k"], SECS30);
    let ids = |cs: &[Ctr]| cs.iter().map(|c| c.id.clone()).collect::<BTreeSet<_>>();
    assert_eq!(ids(&now), ids(&kept), "the other pod is untouched");
    assert!(d
        .containers()
        .iter()
        .all(|c| c.label("io.kubernetes.pod.name") == format!("keep-{}", d.node)));
}
