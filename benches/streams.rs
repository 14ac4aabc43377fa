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
//!    included) — the target is ≤ 1.2×;
//! 2. port-forward throughput: one HTTP GET of a 100 MiB file through
//!    `kubectl port-forward` (SPDY over a WebSocket, then TCP from the host
//!    to the pod IP) against the same GET straight to the pod IP — the
//!    target is ≥ 0.8×.
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
    let local = common::free_port();
    let mut pf = d
        .kubectl_auth_cmd(&[
            "port-forward",
            &format!("pod/{pod}"),
            &format!("{local}:80"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl port-forward");
    wait_until(
        "the forwarded port answers",
        Duration::from_secs(20),
        || TcpStream::connect(("127.0.0.1", local)).ok(),
    );
    let bytes = (mib * 1024 * 1024) as f64;
    let best = |addr: &str| {
        (0..3)
            .map(|_| {
                let (n, secs) = fetch(addr);
                assert!(n as f64 >= bytes, "{addr}: only {n} bytes");
                bytes / secs / 1e6
            })
            .fold(0.0, f64::max)
    };
    let forwarded = best(&format!("127.0.0.1:{local}"));
    let direct = best(&format!("{ip}:80"));
    let _ = pf.kill();
    let _ = pf.wait();

    println!("| scenario | rkubelet | baseline | ratio | target |");
    println!("| --- | --- | --- | --- | --- |");
    println!(
        "| exec `true`, median of {execs} (whole command) | kubectl exec {:.1} ms | docker exec {:.1} ms | {:.2}x | <= 1.2x |",
        ours * 1e3,
        docker * 1e3,
        ours / docker
    );
    println!(
        "| {mib} MiB GET, best of 3 | kubectl port-forward {forwarded:.0} MB/s | pod IP {direct:.0} MB/s | {:.2}x | >= 0.8x |",
        forwarded / direct
    );
    let json = serde_json::json!({
        "smoke": !benching,
        "exec": {"runs": execs, "kubectl_exec_ms": ours * 1e3, "docker_exec_ms": docker * 1e3, "ratio": ours / docker},
        "port_forward": {"mib": mib, "forwarded_mb_s": forwarded, "direct_mb_s": direct, "ratio": forwarded / direct},
    });
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join("streams.json"), format!("{json:#}\n"));
    if !benching {
        println!("test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out");
    }
}
