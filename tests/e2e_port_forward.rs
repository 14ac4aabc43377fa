//! End-to-end: `kubectl port-forward pod/P LOCAL:80` with the real kubectl
//! 1.32 (SPDY tunnelled over a WebSocket) serves busybox httpd from the pod:
//! 100 sequential and 20 parallel requests, each answered in full.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::Duration;

use common::daemon::{wait_until, Daemon, IMAGE};

/// One HTTP/1.0 GET through the forwarded port; the whole response.
fn get(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(b"GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n")
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// A pod serving `hello-from-pod` on port 80, ready; its full name.
fn web_pod(d: &Daemon) -> String {
    d.write(
        "web.yaml",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: web}}\nspec:\n  containers:\n  - name: h\n    image: {IMAGE}\n    command: [sh, -c, 'mkdir -p /www; echo hello-from-pod > /www/index.html; exec httpd -f -p 80 -h /www']\n    readinessProbe: {{tcpSocket: {{port: 80}}, periodSeconds: 1}}\n"
        ),
    );
    d.wait_running("web", &["h"], Duration::from_secs(30));
    let pod = format!("web-{}", d.node);
    wait_until("the pod is ready", Duration::from_secs(30), || {
        let (ok, out, _) = d.kubectl_auth(&["get", "pod", &pod]);
        (ok && out.contains("1/1")).then_some(())
    });
    pod
}

#[test]
fn kubectl_port_forward_serves_100_sequential_and_20_parallel_requests() {
    let d = Daemon::start();
    let pod = web_pod(&d);
    let local = common::free_port();
    let mut pf = d
        .kubectl_auth_cmd(&[
            "port-forward",
            &format!("pod/{pod}"),
            &format!("{local}:80"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl port-forward");
    let first = wait_until(
        "the forwarded port answers",
        Duration::from_secs(20),
        || {
            if let Ok(Some(status)) = pf.try_wait() {
                let mut err = String::new();
                let _ = pf.stderr.take().map(|mut e| e.read_to_string(&mut err));
                panic!("kubectl port-forward exited with {status}: {err}");
            }
            get(local).filter(|r| r.contains("hello-from-pod"))
        },
    );
    assert!(
        first.starts_with("HTTP/1.") && first.contains(" 200 "),
        "{first}"
    );
    for i in 0..100 {
        let r = get(local).unwrap_or_default();
        assert!(
            r.contains("hello-from-pod"),
            "sequential request {i}: {r:?}"
        );
    }
    let parallel: Vec<_> = (0..20)
        .map(|_| std::thread::spawn(move || get(local).unwrap_or_default()))
        .collect();
    for (i, t) in parallel.into_iter().enumerate() {
        let r = t.join().expect("thread");
        assert!(r.contains("hello-from-pod"), "parallel request {i}: {r:?}");
    }
    let _ = pf.kill();
    let _ = pf.wait();
}

#[test]
fn rkubelet_port_forward_serves_sequential_and_parallel_requests() {
    let d = Daemon::start();
    web_pod(&d);
    let local = common::free_port();
    let mut pf = std::process::Command::new(env!("CARGO_BIN_EXE_rkubelet"))
        .args(["port-forward", "web", &format!("{local}:80")])
        .arg("--kubeconfig")
        .arg(d.kubeconfig())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rkubelet port-forward");
    wait_until(
        "the forwarded port answers",
        Duration::from_secs(20),
        || {
            if let Ok(Some(status)) = pf.try_wait() {
                let mut err = String::new();
                let _ = pf.stderr.take().map(|mut e| e.read_to_string(&mut err));
                panic!("rkubelet port-forward exited with {status}: {err}");
            }
            get(local).filter(|r| r.contains("hello-from-pod"))
        },
    );
    for i in 0..50 {
        let r = get(local).unwrap_or_default();
        assert!(
            r.contains("hello-from-pod"),
            "sequential request {i}: {r:?}"
        );
    }
    let parallel: Vec<_> = (0..20)
        .map(|_| std::thread::spawn(move || get(local).unwrap_or_default()))
        .collect();
    for (i, t) in parallel.into_iter().enumerate() {
        let r = t.join().expect("thread");
        assert!(r.contains("hello-from-pod"), "parallel request {i}: {r:?}");
    }
    let _ = pf.kill();
    let _ = pf.wait();
}
