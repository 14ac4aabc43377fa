//! End-to-end: the real kubectl 1.32 on its SPDY fallback — a plain
//! `Upgrade: SPDY/3.1` instead of a WebSocket, what it sends with
//! `KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false` and
//! `KUBECTL_PORT_FORWARD_WEBSOCKETS=false`: exec with output, stderr, stdin
//! and exit codes, attach, and port-forward with sequential and parallel
//! requests. The daemon's log shows each session was a SPDY one.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::Duration;

use common::daemon::{wait_until, Daemon, IMAGE};
use common::terminal::Terminal;

/// kubectl against the authenticated port on SPDY, `input` on stdin:
/// (exit code, stdout, stderr).
fn kubectl_spdy(d: &Daemon, args: &[&str], input: &[u8]) -> (i32, String, String) {
    let mut child = d
        .kubectl_auth_cmd(args)
        .env("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false")
        .env("KUBECTL_PORT_FORWARD_WEBSOCKETS", "false")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().expect("kubectl");
    writer.join().expect("writer");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn running_pod(d: &Daemon, name: &str, manifest: &str, container: &str) -> String {
    d.write(&format!("{name}.yaml"), manifest);
    d.wait_running(name, &[container], Duration::from_secs(30));
    let pod = format!("{name}-{}", d.node);
    wait_until("the pod reports Running", Duration::from_secs(20), || {
        let (ok, out, _) = d.kubectl_auth(&["get", "pod", &pod]);
        (ok && out.contains("Running")).then_some(())
    });
    pod
}

#[test]
fn kubectl_exec_and_attach_over_spdy_carry_output_stdin_and_exit_codes() {
    let d = Daemon::start();
    let pod = running_pod(
        &d,
        "sh",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: sh}}\nspec:\n  containers:\n  - {{name: a, image: {IMAGE}, command: [sleep, '3600']}}\n"
        ),
        "a",
    );
    let (code, out, err) = kubectl_spdy(
        &d,
        &[
            "exec",
            &pod,
            "--",
            "sh",
            "-c",
            "echo to-out; echo to-err >&2; exit 3",
        ],
        b"",
    );
    assert_eq!(code, 3, "{err}");
    assert_eq!(out, "to-out\n");
    assert!(err.contains("to-err"), "{err}");
    assert!(
        d.log().contains("stream session (SPDY)"),
        "the session was not a SPDY one"
    );

    // stdin to its end, and a mebibyte back.
    let (code, out, err) = kubectl_spdy(&d, &["exec", "-i", &pod, "--", "cat"], b"hi\nthere\n");
    assert_eq!((code, out.as_str()), (0, "hi\nthere\n"), "{err}");
    let (code, out, err) = kubectl_spdy(
        &d,
        &[
            "exec",
            &pod,
            "--",
            "sh",
            "-c",
            "head -c 1048576 /dev/zero | wc -c",
        ],
        b"",
    );
    assert_eq!((code, out.trim()), (0, "1048576"), "{err}");
    let (code, out, err) = kubectl_spdy(
        &d,
        &["exec", &pod, "--", "head", "-c", "1048576", "/dev/zero"],
        b"",
    );
    assert_eq!((code, out.len()), (0, 1_048_576), "{err}");

    let (code, _, err) = kubectl_spdy(&d, &["exec", &pod, "--", "no-such-binary"], b"");
    assert_ne!(code, 0, "{err}");

    let reader = running_pod(
        &d,
        "reader",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: reader}}\nspec:\n  restartPolicy: Never\n  containers:\n  - {{name: r, image: {IMAGE}, stdin: true, stdinOnce: true, command: [sh, -c, 'read line; echo got-$line']}}\n"
        ),
        "r",
    );
    let (code, out, err) = kubectl_spdy(&d, &["attach", "-i", &reader], b"hello\n");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("got-hello"), "{out:?} {err}");
}

/// One HTTP/1.0 GET through the forwarded port; the whole response.
fn get(port: u16, path: &str) -> Option<Vec<u8>> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(20))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    Some(out)
}

#[test]
fn kubectl_port_forward_over_spdy_serves_sequential_parallel_and_large_responses() {
    let d = Daemon::start();
    let pod = running_pod(
        &d,
        "web",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: web}}\nspec:\n  containers:\n  - name: h\n    image: {IMAGE}\n    command: [sh, -c, 'mkdir -p /www; echo hello-from-pod > /www/index.html; head -c 8388608 /dev/urandom > /www/big; exec httpd -f -p 80 -h /www']\n    readinessProbe: {{tcpSocket: {{port: 80}}, periodSeconds: 1}}\n"
        ),
        "h",
    );
    // Ready first: kubectl ends a port-forward whose connection is refused.
    wait_until("the pod is ready", Duration::from_secs(30), || {
        let (ok, out, _) = d.kubectl_auth(&["get", "pod", &pod]);
        (ok && out.contains("1/1")).then_some(())
    });
    let local = common::free_port();
    let mut pf = d
        .kubectl_auth_cmd(&[
            "port-forward",
            &format!("pod/{pod}"),
            &format!("{local}:80"),
        ])
        .env("KUBECTL_PORT_FORWARD_WEBSOCKETS", "false")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl port-forward");
    let hello = |r: &[u8]| String::from_utf8_lossy(r).contains("hello-from-pod");
    wait_until(
        "the forwarded port answers",
        Duration::from_secs(20),
        || {
            if let Ok(Some(status)) = pf.try_wait() {
                let mut err = String::new();
                let _ = pf.stderr.take().map(|mut e| e.read_to_string(&mut err));
                panic!("kubectl port-forward exited with {status}: {err}");
            }
            get(local, "/index.html").filter(|r| hello(r))
        },
    );
    assert!(
        d.log().contains("port-forward session (SPDY)"),
        "the session was not a SPDY one"
    );
    for i in 0..30 {
        let r = get(local, "/index.html").unwrap_or_default();
        assert!(hello(&r), "sequential request {i}: {r:?}");
    }
    let parallel: Vec<_> = (0..10)
        .map(|_| std::thread::spawn(move || get(local, "/index.html").unwrap_or_default()))
        .collect();
    for (i, t) in parallel.into_iter().enumerate() {
        let r = t.join().expect("thread");
        assert!(hello(&r), "parallel request {i}: {r:?}");
    }
    // 8 MiB in full: the body after the headers has the file's length.
    let big = get(local, "/big").unwrap_or_default();
    let body = big
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(0, |at| big.len() - at - 4);
    assert_eq!(body, 8 << 20);
    let _ = pf.kill();
    let _ = pf.wait();
}

#[test]
fn a_tty_session_over_spdy_gets_the_terminal_size_and_its_exit_code() {
    let d = Daemon::start();
    let pod = running_pod(
        &d,
        "sh",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: sh}}\nspec:\n  containers:\n  - {{name: a, image: {IMAGE}, command: [sleep, '3600']}}\n"
        ),
        "a",
    );
    // `script` gives kubectl a terminal of 37 rows and 111 columns; kubectl
    // sends that size on the resize stream.
    let mut term = Terminal::spawn(
        &format!(
            "stty rows 37 cols 111; KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false kubectl --kubeconfig {} exec -ti {pod} -- sh",
            d.kubeconfig().display()
        ),
        &[],
    );
    term.wait_for("/ # ");
    term.type_line("echo size-$(stty size | tr ' ' x)");
    term.wait_for("size-37x111");
    term.type_line("exit 5");
    let status = term.wait_exit();
    assert_eq!(status.code(), Some(5));
    assert!(d.log().contains("stream session (SPDY)"));
}
