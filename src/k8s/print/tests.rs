use super::*;
use serde_json::json;

fn now() -> Timestamp {
    "2026-01-01T00:10:00Z".parse().expect("time")
}

fn pod(v: serde_json::Value) -> Pod {
    let mut base = json!({
        "metadata": {"name": "web-n1", "namespace": "default", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"nodeName": "n1", "containers": [{"name": "a"}]},
        "status": {"phase": "Running", "podIP": "172.17.0.2"}
    });
    merge(&mut base, v);
    serde_json::from_value(base).expect("pod")
}

fn merge(a: &mut serde_json::Value, b: serde_json::Value) {
    match (a, b) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

fn running(name: &str, ready: bool) -> serde_json::Value {
    json!({"name": name, "image": "i", "imageID": "", "ready": ready, "restartCount": 0,
           "state": {"running": {"startedAt": "2026-01-01T00:00:01Z"}}})
}

fn waiting(name: &str, reason: &str, restarts: i32) -> serde_json::Value {
    json!({"name": name, "image": "i", "imageID": "", "ready": false, "restartCount": restarts,
           "state": {"waiting": {"reason": reason}},
           "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": "2026-01-01T00:09:30Z"}}})
}

fn terminated(name: &str, code: i32, reason: &str) -> serde_json::Value {
    json!({"name": name, "image": "i", "imageID": "", "ready": false, "restartCount": 0,
           "state": {"terminated": {"exitCode": code, "reason": reason}}})
}

#[test]
fn a_running_pod_shows_ready_count_and_running() {
    let p = pod(
        json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]},
                       "status": {"containerStatuses": [running("a", true), running("b", true)]}}),
    );
    let r = pod_row(&p, now());
    assert_eq!(
        (
            r.ready.as_str(),
            r.status.as_str(),
            r.restarts.as_str(),
            r.age.as_str()
        ),
        ("2/2", "Running", "0", "10m")
    );
    assert_eq!((r.ip.as_str(), r.node.as_str()), ("172.17.0.2", "n1"));
}

#[test]
fn a_completed_pod_shows_completed() {
    let p = pod(
        json!({"status": {"phase": "Succeeded", "containerStatuses": [terminated("a", 0, "Completed")]}}),
    );
    assert_eq!(pod_row(&p, now()).status, "Completed");
    assert_eq!(pod_row(&p, now()).ready, "0/1");
}

#[test]
fn a_crash_looping_container_shows_crash_loop_back_off_and_when_it_last_restarted() {
    let p = pod(json!({"status": {"containerStatuses": [waiting("a", "CrashLoopBackOff", 3)]}}));
    let r = pod_row(&p, now());
    assert_eq!(r.status, "CrashLoopBackOff");
    assert_eq!(r.restarts, "3 (30s ago)");
}

#[test]
fn image_pull_problems_show_their_waiting_reason() {
    for reason in [
        "ErrImagePull",
        "ImagePullBackOff",
        "ContainerCreating",
        "CreateContainerConfigError",
    ] {
        let p = pod(json!({"status": {"phase": "Pending", "containerStatuses": [
            {"name": "a", "image": "i", "imageID": "", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": reason}}}]}}));
        assert_eq!(pod_row(&p, now()).status, reason);
    }
}

#[test]
fn init_containers_show_progress_and_failures() {
    let two_inits = json!({"spec": {"initContainers": [{"name": "i1"}, {"name": "i2"}]}});
    let mut base = two_inits.clone();
    merge(
        &mut base,
        json!({"status": {"phase": "Pending", "initContainerStatuses": [running("i1", false),
        json!({"name": "i2", "image": "i", "imageID": "", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}})],
        "containerStatuses": [json!({"name": "a", "image": "i", "imageID": "", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}})]}}),
    );
    assert_eq!(pod_row(&pod(base), now()).status, "Init:0/2");

    let mut base = two_inits.clone();
    merge(
        &mut base,
        json!({"status": {"phase": "Pending", "initContainerStatuses": [terminated("i1", 0, "Completed"), running("i2", false)]}}),
    );
    assert_eq!(pod_row(&pod(base), now()).status, "Init:1/2");

    let mut base = two_inits.clone();
    merge(
        &mut base,
        json!({"status": {"phase": "Failed", "initContainerStatuses": [terminated("i1", 1, "Error")]}}),
    );
    assert_eq!(pod_row(&pod(base), now()).status, "Init:Error");

    let mut base = two_inits;
    merge(
        &mut base,
        json!({"status": {"phase": "Pending", "initContainerStatuses": [waiting("i1", "CrashLoopBackOff", 2)]}}),
    );
    let r = pod_row(&pod(base), now());
    assert_eq!(r.status, "Init:CrashLoopBackOff");
    assert_eq!(r.restarts, "2 (30s ago)");
}

#[test]
fn a_pod_being_deleted_shows_terminating() {
    let p = pod(
        json!({"metadata": {"deletionTimestamp": "2026-01-01T00:09:59Z"},
                       "status": {"containerStatuses": [running("a", false)]}}),
    );
    assert_eq!(pod_row(&p, now()).status, "Terminating");
}

#[test]
fn a_completed_container_next_to_a_running_one_shows_not_ready_or_running() {
    let p = pod(
        json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]},
                       "status": {"containerStatuses": [terminated("a", 0, "Completed"), running("b", true)],
                                  "conditions": [{"type": "Ready", "status": "False"}]}}),
    );
    assert_eq!(pod_row(&p, now()).status, "NotReady");
}

#[test]
fn sidecars_count_in_ready() {
    let p = pod(
        json!({"spec": {"initContainers": [{"name": "s", "restartPolicy": "Always"}]},
                       "status": {"initContainerStatuses": [{"name": "s", "image": "i", "imageID": "", "ready": true, "started": true, "restartCount": 0, "state": {"running": {}}}],
                                  "containerStatuses": [running("a", true)],
                                  "conditions": [{"type": "Initialized", "status": "True"}]}}),
    );
    let r = pod_row(&p, now());
    assert_eq!((r.ready.as_str(), r.status.as_str()), ("2/2", "Running"));
}

#[test]
fn human_durations_match_kubectl() {
    let d = |s: u64| human_duration(Duration::from_secs(s));
    assert_eq!(d(5), "5s");
    assert_eq!(d(119), "119s");
    assert_eq!(d(125), "2m5s");
    assert_eq!(d(600), "10m");
    assert_eq!(d(3 * 3600 + 5 * 60), "3h5m");
    assert_eq!(d(20 * 3600), "20h");
    assert_eq!(d(3 * 86400 + 3600), "3d1h");
    assert_eq!(d(30 * 86400), "30d");
    assert_eq!(d(3 * 365 * 86400), "3y");
}

#[test]
fn tables_align_columns_like_kubectl() {
    let p = pod(json!({"status": {"containerStatuses": [running("a", true)]}}));
    let out = table(&[pod_row(&p, now())], false, false);
    assert_eq!(
        out,
        "NAME     READY   STATUS    RESTARTS   AGE\nweb-n1   1/1     Running   0          10m\n"
    );
    let wide = table(&[pod_row(&p, now())], true, true);
    assert!(wide.starts_with("NAMESPACE   NAME     READY   STATUS    RESTARTS   AGE   IP           NODE   NOMINATED NODE   READINESS GATES\n"), "{wide}");
}

#[test]
fn server_tables_print_like_kubectl_with_wide_and_namespace_columns() {
    let table = serde_json::json!({
        "columnDefinitions": [
            {"name": "Name", "priority": 0}, {"name": "Data", "priority": 0},
            {"name": "Internal-IP", "priority": 1}],
        "rows": [
            {"cells": ["app-config", 2, "10.0.0.1"], "object": {"metadata": {"namespace": "prod"}}},
            {"cells": ["b", 10, null], "object": {"metadata": {"namespace": "default"}}}]
    });
    assert_eq!(
        server_table(&table, false, false),
        "NAME         DATA\napp-config   2\nb            10\n"
    );
    assert_eq!(
        server_table(&table, true, true),
        "NAMESPACE   NAME         DATA   INTERNAL-IP\nprod        app-config   2      10.0.0.1\ndefault     b            10     <none>\n"
    );
}
