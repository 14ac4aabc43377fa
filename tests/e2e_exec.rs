//! End-to-end: the real kubectl's `exec`, `attach` and `cp` against the
//! authenticated port (WebSocket `v5.channel.k8s.io`): output, stdin, exit
//! codes, a TTY driven through `script`, a byte-identical 1 MiB round trip,
//! clear errors for missing pods, containers and executables, no exec
//! process left behind by a client that goes away, and 50 sessions at once.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::daemon::{require_no_shell_image, wait_until, Daemon, IMAGE, NO_SHELL_IMAGE};
use common::terminal::Terminal;

fn shell_pod(d: &Daemon) -> String {
    d.write(
        "sh.yaml",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: sh}}\nspec:\n  containers:\n  - {{name: a, image: {IMAGE}, command: [sleep, '3600']}}\n"
        ),
    );
    d.wait_running("sh", &["a"], Duration::from_secs(30));
    let pod = format!("sh-{}", d.node);
    wait_until("the pod reports Running", Duration::from_secs(20), || {
        let (ok, out, _) = d.kubectl_auth(&["get", "pod", &pod]);
        (ok && out.contains("Running")).then_some(())
    });
    pod
}

/// Runs kubectl against the authenticated port with `input` on stdin:
/// (exit code, stdout, stderr).
fn kubectl_with_input(d: &Daemon, args: &[&str], input: &[u8]) -> (i32, Vec<u8>, String) {
    let mut child = d
        .kubectl_auth_cmd(args)
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
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Processes of the container whose command line contains `needle`.
fn processes_with(ctr: &str, needle: &str) -> usize {
    let out = Command::new("docker")
        .args(["top", ctr, "-o", "pid,args"])
        .output()
        .expect("docker top");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(needle))
        .count()
}

#[test]
fn kubectl_exec_runs_commands_with_output_stdin_and_exit_codes() {
    let d = Daemon::start();
    let pod = shell_pod(&d);
    let (ok, out, err) = d.kubectl_auth(&["exec", &pod, "--", "ls", "/"]);
    assert!(ok, "{err}");
    assert!(
        out.lines().any(|l| l == "etc") && out.lines().any(|l| l == "bin"),
        "{out}"
    );

    let (code, out, err) = kubectl_with_input(
        &d,
        &[
            "exec",
            &pod,
            "-c",
            "a",
            "--",
            "sh",
            "-c",
            "echo to-out; echo to-err >&2; exit 3",
        ],
        b"",
    );
    assert_eq!(code, 3, "{err}");
    assert_eq!(String::from_utf8_lossy(&out), "to-out\n");
    assert!(err.contains("to-err"), "{err}");

    let (code, out, err) = kubectl_with_input(&d, &["exec", "-i", &pod, "--", "cat"], b"hi\n");
    assert_eq!((code, out.as_slice()), (0, &b"hi\n"[..]), "{err}");

    // A missing pod, container or executable: a clear error, non-zero exit.
    let (ok, _, err) = d.kubectl_auth(&["exec", "nope", "--", "ls"]);
    assert!(!ok && err.contains("pods \"nope\" not found"), "{err}");
    let (ok, _, err) = d.kubectl_auth(&["exec", &pod, "-c", "nope", "--", "ls"]);
    assert!(!ok && err.contains("container \"nope\" not found"), "{err}");
    let (code, out, err) = kubectl_with_input(&d, &["exec", &pod, "--", "no-such-binary"], b"");
    assert_eq!(code, 126, "{err}");
    assert!(
        String::from_utf8_lossy(&out).contains("executable file not found"),
        "{out:?} {err}"
    );
}

#[test]
fn exec_into_a_shell_less_image_fails_with_a_clear_error() {
    require_no_shell_image();
    let d = Daemon::start();
    d.write(
        "web.yaml",
        &format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: web}}\nspec:\n  containers:\n  - {{name: web, image: {NO_SHELL_IMAGE}}}\n"),
    );
    d.wait_running("web", &["web"], Duration::from_secs(30));
    let pod = format!("web-{}", d.node);
    let (code, out, err) = wait_until(
        "exec reaches the container",
        Duration::from_secs(20),
        || {
            let r = kubectl_with_input(&d, &["exec", &pod, "--", "sh"], b"");
            (!r.2.contains("not running")).then_some(r)
        },
    );
    assert_ne!(code, 0);
    let text = format!("{}{err}", String::from_utf8_lossy(&out));
    assert!(text.contains("\"sh\": executable file not found"), "{text}");
}

#[test]
fn kubectl_cp_copies_a_mebibyte_both_ways_byte_identical() {
    let d = Daemon::start();
    let pod = shell_pod(&d);
    let dir = tempfile::tempdir().expect("tmp");
    let data: Vec<u8> = (0..1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let src = dir.path().join("big.bin");
    std::fs::write(&src, &data).expect("write");
    let (ok, _, err) = d.kubectl_auth(&[
        "cp",
        src.to_str().expect("utf8"),
        &format!("{pod}:/tmp/big.bin"),
    ]);
    assert!(ok, "{err}");
    let back = dir.path().join("back.bin");
    let (ok, _, err) = d.kubectl_auth(&[
        "cp",
        &format!("{pod}:/tmp/big.bin"),
        back.to_str().expect("utf8"),
    ]);
    assert!(ok, "{err}");
    assert!(
        std::fs::read(&back).expect("copied back") == data,
        "the round trip changed the file"
    );
    let host = dir.path().join("hostname");
    let (ok, _, err) = d.kubectl_auth(&[
        "cp",
        &format!("{pod}:/etc/hostname"),
        host.to_str().expect("utf8"),
    ]);
    assert!(ok, "{err}");
    assert_eq!(
        std::fs::read_to_string(&host).expect("hostname").trim(),
        pod
    );
}

#[test]
fn a_tty_session_shows_a_prompt_and_exit_ends_it() {
    let d = Daemon::start();
    let pod = shell_pod(&d);
    let mut term = Terminal::spawn(
        &format!(
            "kubectl --kubeconfig {} exec -ti {pod} -- sh",
            d.kubeconfig().display()
        ),
        &[],
    );
    term.wait_for("/ # ");
    term.type_line("echo tty-$((6*7)); tty");
    term.wait_for("tty-42");
    term.wait_for("/dev/pts/");
    term.type_line("exit 5");
    let status = term.wait_exit();
    assert_eq!(status.code(), Some(5));
}

#[test]
fn a_client_that_goes_away_leaves_no_exec_process_and_50_sessions_run_at_once() {
    let d = Daemon::start();
    let pod = shell_pod(&d);
    let ctr = d
        .pod_containers("sh")
        .into_iter()
        .find(|c| c.cname() == "a" && c.running)
        .expect("container a")
        .id;
    let mut client = d
        .kubectl_auth_cmd(&["exec", &pod, "--", "sleep", "4321"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl");
    wait_until("the exec process runs", Duration::from_secs(20), || {
        (processes_with(&ctr, "sleep 4321") == 1).then_some(())
    });
    client.kill().expect("kill kubectl");
    let _ = client.wait();
    wait_until("the exec process is gone", Duration::from_secs(20), || {
        (processes_with(&ctr, "sleep 4321") == 0).then_some(())
    });

    let sessions: Vec<_> = (0..50)
        .map(|i| {
            d.kubectl_auth_cmd(&[
                "exec",
                &pod,
                "--",
                "sh",
                "-c",
                &format!("sleep 1; echo session-{i}"),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl")
        })
        .collect();
    for (i, s) in sessions.into_iter().enumerate() {
        let out = s.wait_with_output().expect("kubectl");
        assert!(
            out.status.success(),
            "session {i}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("session-{i}\n")
        );
    }
    wait_until("no session process left", Duration::from_secs(20), || {
        (processes_with(&ctr, "session-") == 0).then_some(())
    });
}

#[test]
fn kubectl_attach_connects_stdin_and_stdout_of_the_main_process() {
    let d = Daemon::start();
    d.write(
        "reader.yaml",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: reader}}\nspec:\n  restartPolicy: Never\n  containers:\n  - {{name: r, image: {IMAGE}, stdin: true, stdinOnce: true, command: [sh, -c, 'read line; echo got-$line']}}\n"
        ),
    );
    d.wait_running("reader", &["r"], Duration::from_secs(30));
    let pod = format!("reader-{}", d.node);
    wait_until("the pod reports Running", Duration::from_secs(20), || {
        let (ok, out, _) = d.kubectl_auth(&["get", "pod", &pod]);
        (ok && out.contains("Running")).then_some(())
    });
    let (code, out, err) = kubectl_with_input(&d, &["attach", "-i", &pod], b"hello\n");
    assert_eq!(code, 0, "{err}");
    assert!(
        String::from_utf8_lossy(&out).contains("got-hello"),
        "{out:?} {err}"
    );
}

/// Runs `rkubelet exec|attach ARGS` with the daemon's kubeconfig and `input`
/// on stdin: (exit code, stdout, stderr).
fn rkubelet_with_input(d: &Daemon, args: &[&str], input: &[u8]) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rkubelet"))
        .args(args)
        .env("KUBECONFIG", d.kubeconfig())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rkubelet");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().expect("rkubelet");
    writer.join().expect("writer");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn rkubelet_exec_runs_commands_with_stdin_exit_codes_and_a_tty() {
    let d = Daemon::start();
    shell_pod(&d);
    let (code, out, err) = rkubelet_with_input(&d, &["exec", "sh", "--", "ls", "/"], b"");
    assert_eq!(code, 0, "{err}");
    assert!(out.lines().any(|l| l == "etc"), "{out}");
    let (code, out, err) = rkubelet_with_input(
        &d,
        &[
            "exec",
            "sh",
            "-c",
            "a",
            "--",
            "sh",
            "-c",
            "echo o; echo e >&2; exit 4",
        ],
        b"",
    );
    assert_eq!((code, out.as_str()), (4, "o\n"), "{err}");
    assert!(err.contains('e'), "{err}");
    let (code, out, err) =
        rkubelet_with_input(&d, &["exec", "-i", "sh", "--", "cat"], b"from-stdin\n");
    assert_eq!((code, out.as_str()), (0, "from-stdin\n"), "{err}");
    let (code, _, err) = rkubelet_with_input(&d, &["exec", "nope", "--", "ls"], b"");
    assert!(code != 0 && err.contains("\"nope\" not found"), "{err}");
    let (code, _, err) = rkubelet_with_input(&d, &["exec", "sh", "-c", "zz", "--", "ls"], b"");
    assert!(
        code != 0 && err.contains("container \"zz\" not found"),
        "{err}"
    );

    // A TTY session through script: the prompt, a command, exit.
    let kubeconfig = d.kubeconfig();
    let mut term = Terminal::spawn(
        &format!("{} exec -ti sh -- sh", env!("CARGO_BIN_EXE_rkubelet")),
        &[("KUBECONFIG", kubeconfig.as_os_str())],
    );
    term.wait_for("/ # ");
    term.type_line("echo tty-$((6*7))");
    term.wait_for("tty-42");
    term.type_line("exit 6");
    let status = term.wait_exit();
    assert_eq!(status.code(), Some(6));
}

#[test]
fn rkubelet_cp_copies_a_mebibyte_both_ways_and_names_a_missing_file() {
    let d = Daemon::start();
    shell_pod(&d);
    let dir = tempfile::tempdir().expect("tmp");
    let data: Vec<u8> = (0..1024 * 1024u32)
        .map(|i| (i.wrapping_mul(40503) >> 7) as u8)
        .collect();
    let src = dir.path().join("big.bin");
    std::fs::write(&src, &data).expect("write");
    let back = dir.path().join("back.bin");
    let (code, _, err) = rkubelet_with_input(
        &d,
        &["cp", src.to_str().expect("utf8"), "sh:/tmp/big.bin"],
        b"",
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = rkubelet_with_input(
        &d,
        &["cp", "sh:/tmp/big.bin", back.to_str().expect("utf8")],
        b"",
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        std::fs::read(&back).expect("copied back") == data,
        "the round trip changed the file"
    );
    let (code, _, err) = rkubelet_with_input(
        &d,
        &["cp", "sh:/no/such/file", back.to_str().expect("utf8")],
        b"",
    );
    assert!(code != 0 && err.contains("sh:/no/such/file"), "{err}");
}

#[test]
fn rkubelet_exec_t_forwards_the_terminal_size_and_its_changes() {
    let d = Daemon::start();
    shell_pod(&d);
    let dir = tempfile::tempdir().expect("tempdir");
    let flag = dir.path().join("resize-now");
    // script gives the command a terminal; the command sizes it 31x97, and
    // once the flag file appears resizes it to 40x120 — the kernel then
    // sends SIGWINCH to the foreground process group, rkubelet among it.
    let inner = format!(
        "stty rows 31 cols 97; (while [ ! -e {flag} ]; do sleep 0.1; done; stty rows 40 cols 120 </dev/tty) & exec {bin} exec -ti sh -- sh",
        flag = flag.display(),
        bin = env!("CARGO_BIN_EXE_rkubelet"),
    );
    let kubeconfig = d.kubeconfig();
    let mut term = Terminal::spawn(
        &format!("sh -c '{inner}'"),
        &[("KUBECONFIG", kubeconfig.as_os_str())],
    );
    term.wait_for("/ # ");
    // Ask the remote terminal its size until it reports `want` (the resize
    // frame and the typed line travel separately through Docker).
    let mut ask_until = |want: &str| {
        let mut last_ask = std::time::Instant::now() - Duration::from_secs(1);
        wait_until(
            &format!("the remote terminal to be {want}"),
            Duration::from_secs(20),
            || {
                if last_ask.elapsed() >= Duration::from_millis(500) {
                    term.type_line("stty size");
                    last_ask = std::time::Instant::now();
                }
                term.screen()
                    .lines()
                    .any(|l| l.trim() == want)
                    .then_some(())
            },
        )
    };
    ask_until("31 97");
    std::fs::write(&flag, b"").expect("flag");
    ask_until("40 120");
    term.type_line("exit");
    let status = term.wait_exit();
    assert_eq!(status.code(), Some(0));
}
