//! End-to-end: liveness, readiness and startup probes with exec, httpGet,
//! tcpSocket and grpc, run from the host by the real binary against real
//! containers.

mod common;

use std::time::{Duration, Instant};

use common::daemon::{
    docker_exec, require_no_shell_image, wait_until, Daemon, Opts, IMAGE, NO_SHELL_IMAGE,
};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

const SECS30: Duration = Duration::from_secs(30);

fn daemon() -> Daemon {
    let mut opts = Opts::default();
    opts.extra_args.extend(
        [
            "--crash-loop-backoff-base",
            "1s",
            "--crash-loop-backoff-max",
            "4s",
        ]
        .map(String::from),
    );
    Daemon::start_with(opts)
}

fn status(pod: &Pod, container: &str) -> ContainerStatus {
    pod.status
        .clone()
        .unwrap_or_default()
        .container_statuses
        .into_iter()
        .flatten()
        .find(|c| c.name == container)
        .unwrap_or_else(|| panic!("no status for {container}"))
}

fn restarts(d: &Daemon, pod: &str, container: &str) -> Option<i32> {
    Some(status(&d.k8s_pod(pod)?, container).restart_count)
}

fn ready(d: &Daemon, pod: &str, container: &str) -> Option<bool> {
    Some(status(&d.k8s_pod(pod)?, container).ready)
}

fn pod_yaml(name: &str, grace: u32, container: &str) -> String {
    format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  terminationGracePeriodSeconds: {grace}\n  containers:\n{container}")
}

fn events_with(d: &Daemon, reason: &str) -> Vec<serde_json::Value> {
    let v = d.get_json("/api/v1/namespaces/default/events");
    v["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["reason"] == reason)
        .cloned()
        .collect()
}

#[test]
fn a_failing_exec_liveness_probe_restarts_the_container_and_a_passing_one_does_not() {
    let d = daemon();
    let probe = "    livenessProbe: {exec: {command: [cat, /tmp/healthy]}, periodSeconds: 1, failureThreshold: 2}\n";
    d.write("sick.yaml", &pod_yaml("sick", 1, &format!(
        "  - name: app\n    image: {IMAGE}\n    command: [sh, -c, 'touch /tmp/healthy; sleep 3; rm /tmp/healthy; sleep 3600']\n{probe}")));
    d.write("well.yaml", &pod_yaml("well", 1, &format!(
        "  - name: app\n    image: {IMAGE}\n    command: [sh, -c, 'touch /tmp/healthy; sleep 3600']\n{probe}")));
    wait_until("sick restarted", SECS30, || {
        (restarts(&d, "sick", "app")? >= 1).then_some(())
    });
    // Over the same window (and a little more) the healthy one never restarted.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(restarts(&d, "well", "app"), Some(0));
    let unhealthy = events_with(&d, "Unhealthy");
    assert!(
        unhealthy.iter().any(|e| e["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Liveness probe failed"))),
        "{unhealthy:?}"
    );
    let killing = events_with(&d, "Killing");
    assert!(killing.iter().any(|e| e["message"]
        .as_str()
        .is_some_and(|m| m.contains("failed liveness probe, will be restarted"))));
}

/// A busybox httpd whose /cgi-bin/health answers 200 until /tmp/bad exists, then 500.
fn flaky_server(probe: &str) -> String {
    format!(
        r#"  - name: web
    image: {IMAGE}
    command: [sh, -c, "mkdir -p /www/cgi-bin; printf '#!/bin/sh\nif [ -f /tmp/bad ]; then echo Status: 500 Internal Server Error; echo; echo bad; else echo Content-Type: text/plain; echo; echo ok; fi\n' > /www/cgi-bin/health; chmod +x /www/cgi-bin/health; (sleep 3; touch /tmp/bad) & exec httpd -f -p 8080 -h /www"]
    ports: [{{name: http, containerPort: 8080}}]
{probe}"#
    )
}

#[test]
fn an_http_liveness_probe_restarts_a_server_that_answers_500_and_a_tcp_probe_does_not() {
    let d = daemon();
    d.write("http.yaml", &pod_yaml("http", 1, &flaky_server(
        "    livenessProbe: {httpGet: {path: /cgi-bin/health, port: http}, periodSeconds: 1, failureThreshold: 2}\n")));
    d.write("tcp.yaml", &pod_yaml("tcp", 1, &flaky_server(
        "    livenessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1, failureThreshold: 2}\n")));
    wait_until("the http-probed server restarted", SECS30, || {
        (restarts(&d, "http", "web")? >= 1).then_some(())
    });
    let msgs: Vec<String> = events_with(&d, "Unhealthy")
        .iter()
        .filter_map(|e| e["message"].as_str().map(String::from))
        .collect();
    assert!(
        msgs.iter()
            .any(|m| m.contains("HTTP probe failed with statuscode: 500")),
        "{msgs:?}"
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        restarts(&d, "tcp", "web"),
        Some(0),
        "the TCP probe only checks that the port opens"
    );
}

#[test]
fn readiness_respects_the_initial_delay_and_an_always_failing_probe_never_makes_the_pod_ready() {
    let d = daemon();
    d.write("delayed.yaml", &pod_yaml("delayed", 1, &format!(
        "  - name: app\n    image: {IMAGE}\n    command: [sleep, '3600']\n    readinessProbe: {{exec: {{command: ['true']}}, initialDelaySeconds: 4, periodSeconds: 1}}\n")));
    d.write("never.yaml", &pod_yaml("never", 1, &format!(
        "  - name: app\n    image: {IMAGE}\n    command: [sleep, '3600']\n    readinessProbe: {{exec: {{command: ['false']}}, periodSeconds: 1}}\n")));
    let cs = d.wait_running("delayed", &["app"], SECS30);
    let running_since = Instant::now();
    let started_at = cs
        .iter()
        .find(|c| c.cname() == "app")
        .expect("app")
        .started_at
        .clone();
    assert_eq!(ready(&d, "delayed", "app"), Some(false));
    wait_until("delayed ready", SECS30, || {
        ready(&d, "delayed", "app")?.then_some(())
    });
    let waited = running_since.elapsed();
    assert!(
        waited >= Duration::from_millis(2500),
        "ready after {waited:?}, container started at {started_at}"
    );
    let pod = d.k8s_pod("delayed").expect("pod");
    let cond = pod
        .status
        .clone()
        .unwrap_or_default()
        .conditions
        .unwrap_or_default();
    assert!(cond
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True"));

    std::thread::sleep(Duration::from_secs(3));
    let pod = d.k8s_pod("never").expect("pod");
    let st = status(&pod, "app");
    assert!(!st.ready && st.restart_count == 0, "{st:?}");
    let ready_cond = pod
        .status
        .unwrap_or_default()
        .conditions
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .expect("Ready");
    assert_eq!(ready_cond.status, "False");
    assert_eq!(
        ready_cond.message.as_deref(),
        Some("containers with unready status: [app]")
    );
    let (_, table, _) = d.ctl(&["get", "pods", "never"]);
    assert!(
        table.contains("0/1") && table.contains("Running"),
        "{table}"
    );
}

#[test]
fn an_exec_probe_slower_than_its_timeout_counts_as_a_failure() {
    let d = daemon();
    d.write("slow.yaml", &pod_yaml("slow", 1, &format!(
        "  - name: app\n    image: {IMAGE}\n    command: [sleep, '3600']\n    readinessProbe: {{exec: {{command: [sleep, '5']}}, timeoutSeconds: 1, periodSeconds: 1}}\n")));
    let event = wait_until("a timeout reported", SECS30, || {
        events_with(&d, "Unhealthy").into_iter().find(|e| {
            e["message"]
                .as_str()
                .is_some_and(|m| m.contains("timed out"))
        })
    });
    assert!(
        event["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Readiness probe failed")),
        "{event}"
    );
    assert_eq!(ready(&d, "slow", "app"), Some(false));
}

#[test]
fn a_failing_startup_probe_restarts_the_container_and_a_slow_one_holds_off_liveness_until_it_succeeds(
) {
    let d = daemon();
    d.write("nostart.yaml", &pod_yaml("nostart", 1, &format!(
        "  - name: app\n    image: {IMAGE}\n    command: [sleep, '3600']\n    startupProbe: {{exec: {{command: ['false']}}, periodSeconds: 1, failureThreshold: 2}}\n    livenessProbe: {{exec: {{command: ['true']}}, periodSeconds: 1}}\n")));
    d.write("slowstart.yaml", &pod_yaml("slowstart", 1, &format!(
        "  - name: app\n    image: {IMAGE}\n    command: [sh, -c, 'sleep 8; touch /tmp/started; sleep 3600']\n    startupProbe: {{exec: {{command: [test, -f, /tmp/started]}}, periodSeconds: 1, failureThreshold: 30}}\n    livenessProbe: {{exec: {{command: ['false']}}, periodSeconds: 1, failureThreshold: 1}}\n")));
    wait_until("nostart restarted", SECS30, || {
        (restarts(&d, "nostart", "app")? >= 1).then_some(())
    });
    let cs = d.wait_running("slowstart", &["app"], SECS30);
    let app = cs
        .iter()
        .find(|c| c.cname() == "app" && c.running)
        .expect("app")
        .clone();
    // While the startup probe has not succeeded, the failing liveness probe
    // (period 1 s, threshold 1) does nothing. Every sample reads the status
    // first and then checks that the startup file is still absent, so the
    // status it read predates the startup probe's success.
    let watching = Instant::now();
    let mut unstarted_for = Duration::ZERO;
    loop {
        let st = status(&d.k8s_pod("slowstart").expect("pod"), "app");
        if docker_exec(&app.id, &["test", "-f", "/tmp/started"]).0 {
            break;
        }
        assert_eq!(st.restart_count, 0, "liveness ran before startup succeeded: {st:?}");
        assert_eq!(st.started, Some(false), "started is reported as false: {st:?}");
        unstarted_for = watching.elapsed();
        assert!(unstarted_for < SECS30, "the startup file never appeared");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        unstarted_for >= Duration::from_secs(3),
        "too short a window to show liveness held off: {unstarted_for:?}"
    );
    // Then liveness runs, fails and restarts it.
    wait_until("slowstart restarted by liveness", SECS30, || {
        (restarts(&d, "slowstart", "app")? >= 1).then_some(())
    });
}

#[test]
fn a_probe_level_termination_grace_period_overrides_the_pods() {
    let d = daemon();
    // The pod's grace is 60 s and the process ignores SIGTERM; the probe's 2 s wins.
    d.write("graceful.yaml", &pod_yaml("graceful", 60, &format!(
        "  - name: app\n    image: {IMAGE}\n    command: [sh, -c, \"trap '' TERM; touch /tmp/ok; sleep 2; rm /tmp/ok; while true; do sleep 0.2; done\"]\n    livenessProbe: {{exec: {{command: [cat, /tmp/ok]}}, periodSeconds: 1, failureThreshold: 1, terminationGracePeriodSeconds: 2}}\n")));
    d.wait_running("graceful", &["app"], SECS30);
    let started = Instant::now();
    wait_until("restarted", SECS30, || {
        (restarts(&d, "graceful", "app")? >= 1).then_some(())
    });
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the pod's 60 s grace was used: {:?}",
        started.elapsed()
    );
}

#[test]
fn a_grpc_probe_follows_a_real_grpc_health_server() {
    use tonic_health::ServingStatus;
    let d = daemon();
    let port = common::daemon::free_port();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (reporter, service) = tonic_health::server::health_reporter();
    rt.block_on(reporter.set_service_status("", ServingStatus::Serving));
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    rt.spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve(addr),
    );
    // The server is on the host's loopback: a hostNetwork pod probes 127.0.0.1.
    d.write("grpc.yaml", &format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: grpc}}\nspec:\n  hostNetwork: true\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: app\n    image: {IMAGE}\n    command: [sleep, '3600']\n    readinessProbe: {{grpc: {{port: {port}}}, periodSeconds: 1}}\n"));
    wait_until("ready while SERVING", SECS30, || {
        ready(&d, "grpc", "app")?.then_some(())
    });
    rt.block_on(reporter.set_service_status("", ServingStatus::NotServing));
    wait_until("not ready while NOT_SERVING", SECS30, || {
        (!ready(&d, "grpc", "app")?).then_some(())
    });
    let msgs: Vec<String> = events_with(&d, "Unhealthy")
        .iter()
        .filter_map(|e| e["message"].as_str().map(String::from))
        .collect();
    assert!(msgs.iter().any(|m| m.contains("NOT_SERVING")), "{msgs:?}");
    rt.block_on(reporter.set_service_status("", ServingStatus::Serving));
    wait_until("ready again", SECS30, || {
        ready(&d, "grpc", "app")?.then_some(())
    });
    assert_eq!(restarts(&d, "grpc", "app"), Some(0));
}

#[test]
fn http_and_tcp_probes_work_in_an_image_without_a_shell() {
    require_no_shell_image();
    let d = daemon();
    d.write("noshell.yaml", &pod_yaml("noshell", 1, &format!(
        "  - name: web\n    image: {NO_SHELL_IMAGE}\n    ports: [{{name: http, containerPort: 8080}}]\n    readinessProbe: {{httpGet: {{path: /, port: http}}, periodSeconds: 1}}\n    livenessProbe: {{tcpSocket: {{port: 8080}}, periodSeconds: 1}}\n")));
    let cs = d.wait_running("noshell", &["web"], SECS30);
    let web = cs.iter().find(|c| c.cname() == "web").expect("web");
    let (has_shell, _) = docker_exec(&web.id, &["sh", "-c", "true"]);
    assert!(!has_shell, "the image must have no shell");
    wait_until("ready", SECS30, || {
        ready(&d, "noshell", "web")?.then_some(())
    });
    let (ok, text, _) = d.ctl(&["describe", "pod", "noshell"]);
    assert!(
        ok && text.contains("Readiness:") && text.contains("http-get http://:http/"),
        "{text}"
    );
    assert!(
        text.contains("Last Probe Results:") && text.contains("web/Readiness: Success"),
        "{text}"
    );
    assert_eq!(restarts(&d, "noshell", "web"), Some(0));
}
