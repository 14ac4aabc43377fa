//! The streams benchmark: rkubelet's authenticated port against raw Docker
//! and a direct connection, in one run.
//!
//! `cargo bench --bench streams` starts the release binary (the test
//! harness's `Daemon`: its own node name, directories and ports) with a
//! busybox httpd pod, and measures
//!
//! 1. exec latency: `kubectl exec POD -- true` (WebSocket `v5.channel.k8s.io`
//!    through rkubelet) against `docker exec CTR true` on the same
//!    container, interleaved, each as a whole command run (process start
//!    included) — the target is ≤ 1.2×; and the server's own share
//!    of it: an in-process WebSocket client's time from the upgrade request
//!    to the exit `Status` frame (the TLS handshake reported apart) against
//!    the same exec through bollard (create, start attached, read to the
//!    end, inspect) — no process start, no kubectl;
//! 2. port-forward throughput: one HTTP GET of a 100 MiB file through
//!    `kubectl port-forward` (SPDY over a WebSocket, then TCP from the host
//!    to the pod IP; and again on the plain SPDY upgrade) against the same
//!    GET straight to the pod IP — the target is ≥ 0.8× — with the CPU time
//!    rkubelet and kubectl spend per GiB forwarded.
//!
//! The table goes to stdout, the figures to `target/bench/streams.json`.
//! Without `--bench` (as `cargo test --all-targets` runs it) it is a smoke
//! run: 3 execs each and a 4 MiB file.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../tests/common/mod.rs"]
mod common;

use common::daemon::{wait_until, Daemon, IMAGE};

/// GETs `/big` from `addr`, reading the whole body; (bytes, seconds).
fn fetch(addr: &str) -> (usize, f64) {
    let started = Instant::now();
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    s.write_all(b"GET /big HTTP/1.0\r\nHost: x\r\n\r\n")
        .expect("request");
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0;
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => total += n,
            Err(e) => panic!("reading from {addr}: {e}"),
        }
    }
    (total, started.elapsed().as_secs_f64())
}

/// CPU seconds (user and system) process `pid` has used so far (0 once it
/// is gone), from `/proc/PID/stat` in USER_HZ (100) ticks.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After the command's closing parenthesis: field 3 (state) first, so
    // utime (14) and stime (15) are the 12th and 13th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn timed(cmd: &mut Command) -> f64 {
    let started = Instant::now();
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    started.elapsed().as_secs_f64()
}

/// One `exec POD -- true` spoken by an in-process client (no process start,
/// no kubectl): (TCP connect + TLS handshake, WebSocket upgrade request to
/// the exit `Status` frame), in seconds.
async fn ws_exec(server: &str, ca: &[u8], token: &str, path: &str) -> (f64, f64) {
    use futures_util::StreamExt;
    use rustls::pki_types::pem::PemObject;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;

    let started = Instant::now();
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca).flatten() {
        roots.add(cert).expect("CA");
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let addr = server.trim_start_matches("https://");
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
    let stream = tokio_rustls::TlsConnector::from(std::sync::Arc::new(tls))
        .connect(name, tcp)
        .await
        .expect("TLS");
    let handshake = started.elapsed().as_secs_f64();
    let upgrade = Instant::now();
    let mut request = format!("wss://{addr}{path}")
        .into_client_request()
        .expect("request");
    let h = request.headers_mut();
    h.insert(
        "Authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    h.insert(
        "Sec-WebSocket-Protocol",
        "v5.channel.k8s.io".parse().expect("header"),
    );
    let (mut ws, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .expect("upgrade");
    while let Some(msg) = ws.next().await {
        if let Message::Binary(b) = msg.expect("message") {
            if b.first() == Some(&3) {
                let status: serde_json::Value = serde_json::from_slice(&b[1..]).expect("Status");
                assert_eq!(status["status"], "Success", "{status}");
                return (handshake, upgrade.elapsed().as_secs_f64());
            }
        }
    }
    panic!("no Status frame");
}

/// `docker exec CTR true` as rkubelet does it, through bollard: create,
/// start attached, read to the end, inspect for the exit code; seconds.
async fn bollard_exec(docker: &bollard::Docker, ctr: &str) -> f64 {
    use bollard::exec::{CreateExecOptions, StartExecResults};
    use futures_util::StreamExt;
    let started = Instant::now();
    let exec = docker
        .create_exec(
            ctr,
            CreateExecOptions {
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                cmd: Some(vec!["true".to_string()]),
                ..Default::default()
            },
        )
        .await
        .expect("create exec");
    if let StartExecResults::Attached { mut output, .. } =
        docker.start_exec(&exec.id, None).await.expect("start exec")
    {
        while output.next().await.is_some() {}
    }
    let state = docker.inspect_exec(&exec.id).await.expect("inspect exec");
    assert_eq!(state.exit_code, Some(0));
    started.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let benching = args.iter().any(|a| a == "--bench");
    if !benching && args.iter().any(|a| a == "--list") {
        println!("smoke: test");
        return;
    }
    if let Some(filter) = args.iter().find(|a| !a.starts_with('-')) {
        if !"streams smoke".contains(filter.as_str()) {
            println!("test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 1 filtered out");
            return;
        }
    }
    let (execs, mib) = if benching { (30, 100) } else { (3, 4) };

    let d = Daemon::start();
    d.write(
        "web.yaml",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: web}}\nspec:\n  containers:\n  - {{name: h, image: {IMAGE}, command: [sh, -c, 'mkdir -p /www; exec httpd -f -p 80 -h /www']}}\n"
        ),
    );
    let ctr = d
        .wait_running("web", &["h"], Duration::from_secs(60))
        .into_iter()
        .find(|c| c.cname() == "h")
        .expect("container")
        .id;
    let pod = format!("web-{}", d.node);
    let ip = wait_until("the pod's IP", Duration::from_secs(30), || {
        d.api_pod("web")?["status"]["podIP"]
            .as_str()
            .map(String::from)
    });
    wait_until("kubectl exec works", Duration::from_secs(30), || {
        d.kubectl_auth(&["exec", &pod, "--", "true"])
            .0
            .then_some(())
    });

    // 1. exec latency, interleaved.
    let (mut ours, mut docker) = (Vec::new(), Vec::new());
    for _ in 0..execs {
        ours.push(timed(
            &mut d.kubectl_auth_cmd(&["exec", &pod, "--", "true"]),
        ));
        docker.push(timed(Command::new("docker").args(["exec", &ctr, "true"])));
    }
    let (ours, docker) = (median(ours), median(docker));

    // 1b. The server's own share: an in-process client against bollard.
    let (server, ca, token) =
        rkubelet::api::secure::kubeconfig::read(&d.kubeconfig()).expect("kubeconfig");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (mut tls, mut upgrade, mut direct_exec) = (Vec::new(), Vec::new(), Vec::new());
    let path = format!("/api/v1/namespaces/default/pods/{pod}/exec?command=true&container=h&stdout=true&stderr=true");
    rt.block_on(async {
        rkubelet::http_client::install_crypto_provider();
        let docker = bollard::Docker::connect_with_local_defaults().expect("docker");
        for _ in 0..execs {
            let (t, u) = ws_exec(&server, &ca, &token, &path).await;
            tls.push(t);
            upgrade.push(u);
            direct_exec.push(bollard_exec(&docker, &ctr).await);
        }
    });
    let (tls, upgrade, direct_exec) = (median(tls), median(upgrade), median(direct_exec));

    // 2. port-forward throughput.
    let (ok, out) = common::daemon::docker_exec(
        &ctr,
        &[
            "dd",
            "if=/dev/zero",
            "of=/www/big",
            "bs=1048576",
            &format!("count={mib}"),
        ],
    );
    assert!(ok, "{out}");
    let bytes = (mib * 1024 * 1024) as f64;
    let rate = |addr: &str| {
        let (n, secs) = fetch(addr);
        assert!(n as f64 >= bytes, "{addr}: only {n} bytes");
        bytes / secs / 1e6
    };
    let daemon_pid = d.pid().expect("the daemon runs");
    // One kubectl port-forward per transport: the WebSocket tunnel (the
    // default) and the plain SPDY upgrade.
    let mut forwards = Vec::new();
    for websockets in [true, false] {
        let local = common::free_port();
        let mut pf = d
            .kubectl_auth_cmd(&[
                "port-forward",
                &format!("pod/{pod}"),
                &format!("{local}:80"),
            ])
            .env(
                "KUBECTL_PORT_FORWARD_WEBSOCKETS",
                if websockets { "true" } else { "false" },
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("kubectl port-forward");
        wait_until(
            "the forwarded port answers",
            Duration::from_secs(20),
            || TcpStream::connect(("127.0.0.1", local)).ok(),
        );
        // Interleaved, best of 5 each: the machine's load moves both alike.
        // CPU time of both processes over the forwarded fetches.
        let (mut forwarded, mut direct) = (0.0f64, 0.0f64);
        let (mut ours_cpu, mut kubectl_cpu) = (0.0, 0.0);
        for _ in 0..5 {
            let (a, b) = (cpu_secs(daemon_pid), cpu_secs(pf.id()));
            forwarded = forwarded.max(rate(&format!("127.0.0.1:{local}")));
            ours_cpu += cpu_secs(daemon_pid) - a;
            kubectl_cpu += cpu_secs(pf.id()) - b;
            direct = direct.max(rate(&format!("{ip}:80")));
        }
        let _ = pf.kill();
        let _ = pf.wait();
        let per_gib = 5.0 * bytes / f64::from(1u32 << 30);
        forwards.push((
            websockets,
            forwarded,
            direct,
            ours_cpu / per_gib,
            kubectl_cpu / per_gib,
        ));
    }

    println!("| scenario | rkubelet | baseline | ratio | target |");
    println!("| --- | --- | --- | --- | --- |");
    println!(
        "| exec `true`, median of {execs} (whole command) | kubectl exec {:.1} ms | docker exec {:.1} ms | {:.2}x | <= 1.2x |",
        ours * 1e3,
        docker * 1e3,
        ours / docker
    );
    println!(
        "| exec `true`, server's share, median of {execs} | upgrade to exit Status {:.1} ms (+ TLS handshake {:.1} ms) | bollard create/start/inspect {:.1} ms | {:.2}x ({:.2}x with TLS) | - |",
        upgrade * 1e3,
        tls * 1e3,
        direct_exec * 1e3,
        upgrade / direct_exec,
        (upgrade + tls) / direct_exec
    );
    for (websockets, forwarded, direct, ours_cpu, kubectl_cpu) in &forwards {
        let transport = if *websockets { "WebSocket" } else { "SPDY" };
        println!(
            "| {mib} MiB GET, best of 5, interleaved | kubectl port-forward ({transport}) {forwarded:.0} MB/s | pod IP {direct:.0} MB/s | {:.2}x | >= 0.8x |",
            forwarded / direct
        );
        println!(
            "|   CPU per GiB forwarded ({transport}) | rkubelet {ours_cpu:.2} s | kubectl {kubectl_cpu:.2} s | - | - |"
        );
    }
    let json = serde_json::json!({
        "smoke": !benching,
        "exec": {"runs": execs, "kubectl_exec_ms": ours * 1e3, "docker_exec_ms": docker * 1e3, "ratio": ours / docker},
        "exec_server_share": {"runs": execs, "upgrade_to_status_ms": upgrade * 1e3, "tls_handshake_ms": tls * 1e3, "bollard_exec_ms": direct_exec * 1e3, "ratio": upgrade / direct_exec, "ratio_with_tls": (upgrade + tls) / direct_exec},
        "port_forward": forwards.iter().map(|(websockets, forwarded, direct, ours_cpu, kubectl_cpu)| serde_json::json!({
            "transport": if *websockets { "websocket" } else { "spdy" },
            "mib": mib, "forwarded_mb_s": forwarded, "direct_mb_s": direct, "ratio": forwarded / direct,
            "rkubelet_cpu_s_per_gib": ours_cpu, "kubectl_cpu_s_per_gib": kubectl_cpu,
        })).collect::<Vec<_>>(),
    });
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join("streams.json"), format!("{json:#}\n"));
    if !benching {
        println!("test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out");
    }
}
