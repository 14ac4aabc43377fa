//! `DockerRuntime` against the real Docker daemon: the pause image without a
//! registry, pods sharing namespaces, listing, events, stopping, errors and
//! host ports. Every test uses its own pod UID and names, and removes what it
//! created (even when it fails), so the tests run in parallel.

mod common;

use std::time::{Duration, Instant};

use common::{
    container_logs, container_pid, eventually, namespace_of, now_nanos, runtime, unique,
    wait_exited, wait_running, ImageCleanup, TestPod,
};
use futures_util::StreamExt;
use rkubelet::runtime::docker::DockerRuntime;
use rkubelet::runtime::{
    ContainerRuntime, ContainerState, PortMapping, RuntimeError, RuntimeEvent,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const START_TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn the_runtime_reports_its_docker_version() {
    let rt = runtime().await;
    let version = rt.version().await.expect("version");
    assert!(version.starts_with("docker://"), "{version}");
    assert!(version.len() > "docker://".len(), "{version}");
}

#[tokio::test]
async fn connecting_to_a_missing_daemon_fails_with_advice() {
    let err = DockerRuntime::connect("unix:///nonexistent/rkubelet-test/docker.sock")
        .await
        .expect_err("there is no daemon there");
    match err {
        RuntimeError::Unavailable(message) => {
            assert!(
                message.contains("/nonexistent/rkubelet-test/docker.sock"),
                "{message}"
            );
            assert!(message.contains("systemctl start docker"), "{message}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    let err = DockerRuntime::connect("tcp://127.0.0.1:1")
        .await
        .expect_err("nothing listens on port 1");
    assert!(matches!(err, RuntimeError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn the_pause_image_is_provisioned_without_a_registry_and_stops_promptly() {
    let rt = runtime().await;
    let image = format!("rkubelet-test/pause:{}", common::random_hex(6));
    let _image = ImageCleanup(image.clone());
    assert_eq!(rt.inspect_image(&image).await.expect("inspect"), None);

    let info = rt
        .ensure_infra_image(&image)
        .await
        .expect("provision the pause image");
    assert!(info.id.starts_with("sha256:"), "{info:?}");
    assert!(info.repo_tags.contains(&image), "{info:?}");
    let inspect = rt.client().inspect_image(&image).await.expect("inspect");
    let entrypoint = inspect.config.and_then(|c| c.entrypoint);
    assert_eq!(entrypoint, Some(vec!["/pause".to_string()]));
    // Present now: a second call finds it and provisions nothing new.
    let again = rt.ensure_infra_image(&image).await.expect("present");
    assert_eq!(again.id, info.id);

    let pod = TestPod::new("pause");
    let mut config = pod.sandbox_config();
    config.image = image.clone();
    let sandbox = rt.run_sandbox(&config).await.expect("run the sandbox");
    wait_running(&rt, pod.uid(), &sandbox, START_TIMEOUT).await;

    let started = Instant::now();
    rt.stop_container(&sandbox, Duration::from_secs(10))
        .await
        .expect("stop");
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(8),
        "the pause container should exit on SIGTERM, not after the 10 s grace: took {took:?}"
    );
    let code = wait_exited(&rt, pod.uid(), &sandbox, START_TIMEOUT).await;
    assert_eq!(code, Some(0));
}

/// A pod of a sandbox, `web` (busybox httpd on :8080) and `client`, which
/// fetches the page over localhost and exits. Returns (sandbox, web, client).
async fn start_web_pod(rt: &DockerRuntime, pod: &TestPod) -> (String, String, String) {
    let sandbox = pod.run_sandbox(rt).await;
    let web = pod
        .start_container(
            rt,
            "web",
            &sandbox,
            &["httpd", "-f", "-p", "8080", "-h", "/var/www"],
        )
        .await;
    let client = pod
        .start_container(
            rt,
            "client",
            &sandbox,
            &[
                "sh",
                "-c",
                "for i in $(seq 1 100); do wget -qO- http://127.0.0.1:8080/ && exit 0; sleep 0.1; done; exit 1",
            ],
        )
        .await;
    (sandbox, web, client)
}

#[tokio::test]
async fn a_sandbox_and_two_app_containers_share_localhost_and_ipc() {
    let rt = runtime().await;
    let pod = TestPod::new("share");
    let (sandbox, web, client) = start_web_pod(&rt, &pod).await;

    let code = wait_exited(&rt, pod.uid(), &client, START_TIMEOUT).await;
    let logs = container_logs(&rt, &client).await;
    assert_eq!(
        code,
        Some(0),
        "client could not reach the web container: {logs}"
    );
    assert!(logs.contains("hello from rkubelet"), "{logs}");

    let sandbox_pid = container_pid(&rt, &sandbox).await;
    let web_pid = container_pid(&rt, &web).await;
    assert_eq!(
        namespace_of(sandbox_pid, "ipc"),
        namespace_of(web_pid, "ipc")
    );
    assert_eq!(
        namespace_of(sandbox_pid, "net"),
        namespace_of(web_pid, "net")
    );
    // ... and the pod's namespaces are its own, not the host's.
    let own = std::process::id() as i64;
    assert_ne!(namespace_of(sandbox_pid, "ipc"), namespace_of(own, "ipc"));
    assert_ne!(namespace_of(sandbox_pid, "net"), namespace_of(own, "net"));
}

#[tokio::test]
async fn listing_a_pod_returns_its_three_containers_with_labels_states_and_ip() {
    let rt = runtime().await;
    let pod = TestPod::new("list");
    let other = TestPod::new("list-other");
    let (sandbox, web, client) = start_web_pod(&rt, &pod).await;
    let _other_sandbox = other.run_sandbox(&rt).await;
    wait_exited(&rt, pod.uid(), &client, START_TIMEOUT).await;

    let infos = rt.list_containers(Some(pod.uid())).await.expect("list");
    assert_eq!(infos.len(), 3, "{infos:#?}");
    let by_id = |id: &str| {
        infos
            .iter()
            .find(|c| c.id == id)
            .unwrap_or_else(|| panic!("{id} is not listed: {infos:#?}"))
    };

    let sb = by_id(&sandbox);
    let meta = sb.meta().expect("sandbox labels");
    assert!(meta.is_sandbox);
    assert_eq!(meta.container_name, "POD");
    assert_eq!(meta.pod, pod.pod);
    assert_eq!(sb.state, ContainerState::Running);
    assert_eq!(sb.name, pod.sandbox_config().name);
    let ip: std::net::Ipv4Addr = sb
        .ip
        .as_deref()
        .expect("the sandbox has an IP")
        .parse()
        .expect("an IPv4 address");
    assert!(!ip.is_loopback() && !ip.is_unspecified(), "{ip}");
    assert!(sb.started_at.is_some() && sb.created_at.is_some());
    assert_eq!(sb.finished_at, None);
    assert!(sb.image_id.starts_with("sha256:"), "{}", sb.image_id);

    let w = by_id(&web);
    let meta = w.meta().expect("web labels");
    assert!(!meta.is_sandbox);
    assert_eq!(meta.container_name, "web");
    assert_eq!(meta.sandbox_id.as_deref(), Some(sandbox.as_str()));
    assert_eq!(meta.spec_hash.as_deref(), Some("testhash"));
    assert_eq!(w.state, ContainerState::Running);
    assert_eq!(w.ip, None, "app containers use the sandbox's network");
    assert_eq!(w.image, common::TEST_IMAGE);

    let c = by_id(&client);
    assert_eq!(c.meta().expect("client labels").container_name, "client");
    assert_eq!(c.state, ContainerState::Exited);
    assert_eq!(c.exit_code, Some(0));
    let (started, finished) = (
        c.started_at.expect("started"),
        c.finished_at.expect("finished"),
    );
    assert!(started <= finished);

    // The brief list (no inspect) has the same containers, names, labels
    // and states, without the details only inspect knows.
    let brief = rt.list_brief(Some(pod.uid())).await.expect("brief list");
    let key = |c: &rkubelet::runtime::ContainerInfo| {
        (c.id.clone(), c.name.clone(), c.state, c.labels.clone())
    };
    let mut full: Vec<_> = infos.iter().map(key).collect();
    let mut short: Vec<_> = brief.iter().map(key).collect();
    full.sort_by(|a, b| a.0.cmp(&b.0));
    short.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(short, full);
    assert!(brief
        .iter()
        .all(|c| c.created_at.is_some() && c.ip.is_none()));
    assert!(rt
        .list_brief(None)
        .await
        .expect("brief list all")
        .iter()
        .any(|c| c.meta().map(|m| m.pod.uid) == Some(other.uid().to_string())));

    // Without a UID the listing holds both pods' containers.
    let all = rt.list_containers(None).await.expect("list all");
    assert!(all.iter().any(|c| c.id == sandbox));
    assert!(all
        .iter()
        .any(|c| c.meta().map(|m| m.pod.uid) == Some(other.uid().to_string())));
    assert!(
        all.iter().all(|c| c.meta().is_some()),
        "only rkubelet's containers"
    );
}

/// Collects the events of one pod into a channel, from a task started now.
fn subscribe(
    rt: &DockerRuntime,
    pod_uid: &str,
    since_nanos: Option<i64>,
) -> tokio::sync::mpsc::UnboundedReceiver<Result<RuntimeEvent, RuntimeError>> {
    let mut events = rt.events(since_nanos);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let uid = pod_uid.to_string();
    tokio::spawn(async move {
        while let Some(event) = events.next().await {
            let ours = match &event {
                Ok(e) => e.pod_uid.as_deref() == Some(uid.as_str()),
                Err(_) => true,
            };
            if ours && tx.send(event).is_err() {
                return;
            }
        }
    });
    rx
}

/// Waits for an event with `action` about container `id`.
async fn next_event(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Result<RuntimeEvent, RuntimeError>>,
    id: &str,
    action: &str,
) -> RuntimeEvent {
    let wait = async {
        while let Some(event) = rx.recv().await {
            let event = event.unwrap_or_else(|e| panic!("events stream failed: {e}"));
            if event.container_id == id && event.action == action {
                return event;
            }
        }
        panic!("the events stream ended before {action} of {id}");
    };
    tokio::time::timeout(START_TIMEOUT, wait)
        .await
        .unwrap_or_else(|_| panic!("no {action} event for {id} within {START_TIMEOUT:?}"))
}

#[tokio::test]
async fn the_events_stream_reports_start_and_die_with_the_exit_code() {
    let rt = runtime().await;
    let pod = TestPod::new("events");
    // Subscribe first; `since` makes sure nothing between now and the moment
    // the daemon registers the subscription is lost.
    let since = now_nanos();
    let mut rx = subscribe(&rt, pod.uid(), Some(since));

    let sandbox = pod.run_sandbox(&rt).await;
    let id = pod
        .start_container(&rt, "exit3", &sandbox, &["sh", "-c", "exit 3"])
        .await;

    let start = next_event(&mut rx, &id, "start").await;
    assert_eq!(start.pod_uid.as_deref(), Some(pod.uid()));
    assert!(
        start.time_nanos >= since - 1_000_000_000,
        "{start:?} vs {since}"
    );
    let die = next_event(&mut rx, &id, "die").await;
    assert_eq!(die.exit_code, Some(3));
    assert!(die.time_nanos >= start.time_nanos);
}

#[tokio::test]
async fn the_events_stream_outlives_the_request_timeout() {
    let endpoint = common::docker_endpoint();
    // Prerequisites, and a client with the normal timeout for the calls
    // that do work (a create can exceed 1 s on a loaded machine).
    let setup = runtime().await;
    let rt = DockerRuntime::connect_with_timeout(&endpoint, Duration::from_secs(1))
        .await
        .expect("connect");
    let pod = TestPod::new("idle-events");
    let mut rx = subscribe(&rt, pod.uid(), None);
    // Deliberately idle for longer than the 1 s request timeout: the stream
    // must neither end nor fail meanwhile.
    let idle = tokio::time::timeout(Duration::from_millis(2500), rx.recv()).await;
    assert!(idle.is_err(), "the idle stream yielded or ended: {idle:?}");

    let sandbox = pod.run_sandbox(&setup).await;
    let event = next_event(&mut rx, &sandbox, "start").await;
    assert_eq!(event.pod_uid.as_deref(), Some(pod.uid()));
}

#[tokio::test]
async fn stopping_a_container_that_ignores_sigterm_waits_the_grace_then_kills() {
    let rt = runtime().await;
    let pod = TestPod::new("stubborn");
    let sandbox = pod.run_sandbox(&rt).await;
    let id = pod
        .start_container(
            &rt,
            "stubborn",
            &sandbox,
            &[
                "sh",
                "-c",
                "trap '' TERM; echo ready; while true; do sleep 1; done",
            ],
        )
        .await;
    eventually("the trap to be installed", START_TIMEOUT, || async {
        container_logs(&rt, &id)
            .await
            .contains("ready")
            .then_some(())
    })
    .await;

    let started = Instant::now();
    rt.stop_container(&id, Duration::from_secs(2))
        .await
        .expect("stop");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2),
        "stopped after {took:?}, before the grace period"
    );
    let code = wait_exited(&rt, pod.uid(), &id, START_TIMEOUT).await;
    assert_eq!(code, Some(137), "SIGKILL");
}

#[tokio::test]
async fn a_container_that_traps_sigterm_exits_promptly_and_its_log_shows_it() {
    let rt = runtime().await;
    let pod = TestPod::new("polite");
    let sandbox = pod.run_sandbox(&rt).await;
    let id = pod
        .start_container(
            &rt,
            "polite",
            &sandbox,
            &[
                "sh",
                "-c",
                "trap 'echo got SIGTERM; exit 0' TERM; echo ready; while true; do sleep 1 & wait $!; done",
            ],
        )
        .await;
    eventually("the trap to be installed", START_TIMEOUT, || async {
        container_logs(&rt, &id)
            .await
            .contains("ready")
            .then_some(())
    })
    .await;

    let started = Instant::now();
    rt.stop_container(&id, Duration::from_secs(10))
        .await
        .expect("stop");
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(8),
        "took {took:?} for a 10 s grace"
    );
    let code = wait_exited(&rt, pod.uid(), &id, START_TIMEOUT).await;
    assert_eq!(code, Some(0));
    let logs = container_logs(&rt, &id).await;
    assert!(logs.contains("got SIGTERM"), "{logs}");
}

#[tokio::test]
async fn stopping_and_removing_are_idempotent() {
    let rt = runtime().await;
    let pod = TestPod::new("idempotent");
    let sandbox = pod.run_sandbox(&rt).await;
    rt.stop_container(&sandbox, Duration::from_secs(5))
        .await
        .expect("stop");
    rt.stop_container(&sandbox, Duration::from_secs(5))
        .await
        .expect("stopping a stopped container");
    rt.remove_container(&sandbox).await.expect("remove");
    rt.remove_container(&sandbox)
        .await
        .expect("removing a removed container");
    rt.stop_container(&sandbox, Duration::from_secs(5))
        .await
        .expect("stopping a missing container");
    assert!(rt
        .list_containers(Some(pod.uid()))
        .await
        .expect("list")
        .is_empty());
}

#[tokio::test]
async fn pulling_a_missing_image_fails_with_image_pull() {
    let rt = runtime().await;
    let image = format!("rkubelet-test/does-not-exist-{}:v1", common::random_hex(4));
    match rt.pull_image(&image).await {
        Err(RuntimeError::ImagePull {
            image: named,
            reason,
        }) => {
            assert_eq!(named, image);
            assert!(!reason.is_empty());
        }
        other => panic!("expected ImagePull, got {other:?}"),
    }
    assert_eq!(rt.inspect_image(&image).await.expect("inspect"), None);
}

#[tokio::test]
async fn a_container_with_a_missing_image_fails_to_create_with_not_found() {
    let rt = runtime().await;
    let pod = TestPod::new("noimage");
    let sandbox = pod.run_sandbox(&rt).await;
    let mut config = pod.container_config("app", &sandbox, &["true"]);
    config.image = format!("rkubelet-test/absent-{}:v1", common::random_hex(4));
    match rt.create_container(&config).await {
        Err(RuntimeError::NotFound(what)) => assert!(what.contains(&config.image), "{what}"),
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[tokio::test]
async fn a_container_joining_a_missing_sandbox_fails_with_not_found() {
    let rt = runtime().await;
    let pod = TestPod::new("nosandbox");
    let missing = format!("rkubelet-test-missing-{}", common::random_hex(4));
    let config = pod.container_config("app", &missing, &["true"]);
    match rt.create_container(&config).await {
        Err(RuntimeError::NotFound(what)) => assert!(what.contains(&missing), "{what}"),
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[tokio::test]
async fn a_container_with_a_missing_executable_fails_to_start_with_cannot_run() {
    let rt = runtime().await;
    let pod = TestPod::new("noexec");
    let sandbox = pod.run_sandbox(&rt).await;
    let config = pod.container_config("app", &sandbox, &["/no/such/program"]);
    let id = rt.create_container(&config).await.expect("create");
    match rt.start_container(&id).await {
        Err(RuntimeError::CannotRun(message)) => {
            assert!(message.contains("/no/such/program"), "{message}")
        }
        other => panic!("expected CannotRun, got {other:?}"),
    }
    let infos = rt.list_containers(Some(pod.uid())).await.expect("list");
    let info = infos.iter().find(|c| c.id == id).expect("listed");
    assert_ne!(info.state, ContainerState::Running);
    assert!(info.error.is_some(), "{info:?}");

    // A second container with the same name is a conflict, not a crash.
    match rt.create_container(&config).await {
        Err(RuntimeError::Other(message)) => assert!(message.contains(&config.name), "{message}"),
        other => panic!("expected Other (name conflict), got {other:?}"),
    }
}

#[tokio::test]
async fn a_host_port_on_the_sandbox_reaches_the_app_container() {
    let rt = runtime().await;
    let pod = TestPod::new("hostport");
    let port = common::free_port();
    let mut config = pod.sandbox_config();
    config.port_mappings = vec![PortMapping {
        container_port: 8080,
        host_port: port,
        protocol: "tcp".to_string(),
        host_ip: "127.0.0.1".to_string(),
    }];
    let sandbox = rt.run_sandbox(&config).await.expect("run the sandbox");
    pod.start_container(
        &rt,
        "web",
        &sandbox,
        &["httpd", "-f", "-p", "8080", "-h", "/var/www"],
    )
    .await;

    let body = eventually(
        &format!("http://127.0.0.1:{port}/ to answer"),
        START_TIMEOUT,
        || async move {
            let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()?;
            stream
                .write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
                .await
                .ok()?;
            let mut response = String::new();
            stream.read_to_string(&mut response).await.ok()?;
            response.contains("hello from rkubelet").then_some(response)
        },
    )
    .await;
    assert!(
        body.starts_with("HTTP/1.") && body.contains(" 200 "),
        "{body}"
    );
}

#[tokio::test]
async fn a_sandbox_that_cannot_start_is_removed_and_reported() {
    let rt = runtime().await;
    let pod = TestPod::new("badport");
    // Hold a port on the host so Docker cannot publish it.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let mut config = pod.sandbox_config();
    config.port_mappings = vec![PortMapping {
        container_port: 80,
        host_port: port,
        protocol: "tcp".to_string(),
        host_ip: "127.0.0.1".to_string(),
    }];
    match rt.run_sandbox(&config).await {
        Err(RuntimeError::CannotRun(message)) => {
            assert!(message.contains(&config.name), "{message}")
        }
        other => panic!("expected CannotRun, got {other:?}"),
    }
    assert!(
        rt.list_containers(Some(pod.uid()))
            .await
            .expect("list")
            .is_empty(),
        "the failed sandbox must be removed"
    );
    drop(taken);
}

#[tokio::test]
async fn the_cleanup_guards_remove_what_a_test_created() {
    // Guards the helpers every other test relies on for isolation.
    assert_ne!(unique("x"), unique("x"));
    assert_eq!(common::new_uid().len(), 32);

    let rt = runtime().await;
    let by_uid = TestPod::new("cleanup-uid");
    let node = unique("node");
    let mut by_suffix = TestPod::new("cleanup-suffix");
    by_suffix.pod.name = format!("web-{node}");
    by_suffix.run_sandbox(&rt).await;
    by_uid.run_sandbox(&rt).await;
    let (uid_a, uid_b) = (by_uid.uid().to_string(), by_suffix.uid().to_string());
    let count = |uid: String| {
        let rt = rt.clone();
        async move { rt.list_containers(Some(&uid)).await.expect("list").len() }
    };
    assert_eq!(count(uid_a.clone()).await, 1);

    drop(by_uid);
    assert_eq!(count(uid_a).await, 0);
    let guard =
        common::Cleanup::label_suffix(rkubelet::runtime::labels::POD_NAME, &format!("-{node}"));
    drop(guard);
    assert_eq!(count(uid_b).await, 0);
}

#[tokio::test]
async fn exec_returns_the_exit_code_and_capped_output_and_enforces_its_timeout() {
    let rt = runtime().await;
    let pod = TestPod::new("exec");
    let sandbox = pod.run_sandbox(&rt).await;
    let id = pod
        .start_container(&rt, "app", &sandbox, &["sleep", "3600"])
        .await;
    let cmd = |args: &[&str]| args.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    let ok = rt
        .exec(
            &id,
            &cmd(&["sh", "-c", "echo out; echo err >&2; exit 3"]),
            Duration::from_secs(5),
        )
        .await
        .expect("exec");
    assert_eq!(ok.exit_code, Some(3));
    assert!(
        ok.output.contains("out") && ok.output.contains("err"),
        "{ok:?}"
    );
    assert!(!ok.timed_out);

    let big = rt
        .exec(
            &id,
            &cmd(&["sh", "-c", "head -c 100000 /dev/zero | tr '\\0' x"]),
            Duration::from_secs(5),
        )
        .await
        .expect("exec");
    assert_eq!(big.exit_code, Some(0));
    assert_eq!(big.output.len(), rkubelet::runtime::EXEC_OUTPUT_LIMIT);

    let started = Instant::now();
    let slow = rt
        .exec(&id, &cmd(&["sleep", "10"]), Duration::from_millis(500))
        .await
        .expect("exec");
    assert!(slow.timed_out && slow.exit_code.is_none(), "{slow:?}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "the 500 ms timeout was not enforced on a 10 s command"
    );
}

#[tokio::test]
async fn logs_return_stdout_and_stderr_and_honour_tail() {
    let rt = runtime().await;
    let pod = TestPod::new("logs");
    let sandbox = pod.run_sandbox(&rt).await;
    let id = pod
        .start_container(
            &rt,
            "app",
            &sandbox,
            &["sh", "-c", "echo one; echo two; echo three >&2; sleep 3600"],
        )
        .await;
    let read = |tail: Option<usize>| {
        let rt = rt.clone();
        let id = id.clone();
        async move {
            let opts = rkubelet::runtime::LogOptions {
                tail,
                ..Default::default()
            };
            let chunks: Vec<_> = rt.logs(&id, opts).collect().await;
            chunks
                .into_iter()
                .map(|c| String::from_utf8_lossy(&c.expect("log chunk")).into_owned())
                .collect::<String>()
        }
    };
    let all = eventually("three lines logged", START_TIMEOUT, || async move {
        Some(read(None).await).filter(|l| l.contains("three"))
    })
    .await;
    // stdout and stderr are separate streams: only stdout's order is fixed.
    assert!(
        all.starts_with("one\ntwo\n")
            || all.starts_with("one\nthree\ntwo\n")
            || all.starts_with("three\n"),
        "{all:?}"
    );
    assert_eq!(all.lines().count(), 3, "{all:?}");
    assert!(all.contains("three"), "stderr is included: {all:?}");
    assert_eq!(read(Some(1)).await.lines().count(), 1);
}
