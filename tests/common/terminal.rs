//! A command run on a terminal: `script` (util-linux) gives it a pty, the
//! test types lines into it and waits for text on its screen, then for its
//! exit status. Used by the `-ti` exec tests (kubectl and `rkubelet exec`).

#![allow(dead_code)]

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

use super::daemon::wait_until;

/// How long a prompt, an answer or the end of the session may take.
const PATIENCE: Duration = Duration::from_secs(20);

pub struct Terminal {
    child: Child,
    stdin: ChildStdin,
    output: Receiver<Vec<u8>>,
    seen: Vec<u8>,
}

impl Terminal {
    /// Runs the shell command line `command` on a terminal with `env` added.
    pub fn spawn(command: &str, env: &[(&str, &std::ffi::OsStr)]) -> Terminal {
        let mut child = Command::new("script")
            .args(["-qec", command, "/dev/null"])
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("script (util-linux)");
        let mut stdout = child.stdout.take().expect("stdout");
        let stdin = child.stdin.take().expect("stdin");
        let (tx, output) = channel::<Vec<u8>>();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Terminal {
            child,
            stdin,
            output,
            seen: Vec::new(),
        }
    }

    /// Everything on the screen so far.
    pub fn screen(&mut self) -> String {
        self.seen.extend(self.output.try_iter().flatten());
        String::from_utf8_lossy(&self.seen).into_owned()
    }

    /// Waits until `needle` has appeared on the screen.
    pub fn wait_for(&mut self, needle: &str) {
        wait_until(&format!("{needle:?} on the terminal"), PATIENCE, || {
            self.screen().contains(needle).then_some(())
        })
    }

    /// Types `line` and Enter.
    pub fn type_line(&mut self, line: &str) {
        self.stdin
            .write_all(format!("{line}\n").as_bytes())
            .expect("type");
    }

    /// Waits for the session to end; its exit status.
    pub fn wait_exit(&mut self) -> ExitStatus {
        wait_until("the session to end", PATIENCE, || {
            self.child.try_wait().ok().flatten()
        })
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
