//! The remote-command protocol kubectl speaks for `exec` and `attach` over a
//! WebSocket (`v5.channel.k8s.io`, and `v4.channel.k8s.io` without the
//! close signal): every binary message starts with a channel byte — 0 stdin,
//! 1 stdout, 2 stderr, 3 the error channel (one v1 `Status` when the command
//! ends), 4 terminal resize (`{"Width":W,"Height":H}`) — and, in v5, the
//! message `[255, channel]` closes that channel (kubectl closes stdin that
//! way at end of input). Pure: the request's options, the frames and the
//! final `Status`.

use serde_json::{json, Value};

pub const PROTOCOL_V5: &str = "v5.channel.k8s.io";
pub const PROTOCOL_V4: &str = "v4.channel.k8s.io";
pub const PROTOCOL_V3: &str = "v3.channel.k8s.io";
pub const PROTOCOL_V2: &str = "v2.channel.k8s.io";
/// The protocols rkubelet speaks on a plain SPDY upgrade (kubectl's
/// fallback), best first: each of the client's streams (`streamType`
/// `error`, `stdin`, `stdout`, `stderr`, `resize`) is one SPDY stream; v4's
/// error stream carries a `Status`, v2's and v3's the failure's message
/// (nothing on success); v2 has no resize stream.
pub const SPDY_PROTOCOLS: [&str; 3] = [PROTOCOL_V4, PROTOCOL_V3, PROTOCOL_V2];

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const ERROR: u8 = 3;
pub const RESIZE: u8 = 4;
/// v5: `[CLOSE, channel]` closes a channel.
pub const CLOSE: u8 = 255;

/// What an exec or attach request asks for, from its query string.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamRequest {
    /// `command` (repeated); empty for attach.
    pub command: Vec<String>,
    pub container: Option<String>,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

fn truthy(v: &str) -> bool {
    matches!(v, "1" | "true" | "True" | "TRUE" | "t" | "T")
}

impl StreamRequest {
    /// Parses `command=…&container=…&stdin=true&stdout=true&stderr=true&tty=true`.
    /// Fails with the API server's message when no stream is asked for, or
    /// (for exec) no command, or stderr together with a tty.
    pub fn parse(params: &[(String, String)], exec: bool) -> Result<StreamRequest, String> {
        let mut r = StreamRequest::default();
        for (k, v) in params {
            match k.as_str() {
                "command" => r.command.push(v.clone()),
                "container" if !v.is_empty() => r.container = Some(v.clone()),
                "stdin" | "input" => r.stdin = truthy(v),
                "stdout" | "output" => r.stdout = truthy(v),
                "stderr" | "error" => r.stderr = truthy(v),
                "tty" => r.tty = truthy(v),
                _ => {}
            }
        }
        if exec && r.command.is_empty() {
            return Err("you must specify at least 1 command".into());
        }
        if !(r.stdin || r.stdout || r.stderr) {
            return Err("you must specify at least one of stdin, stdout, stderr".into());
        }
        if r.tty && r.stderr {
            // kubectl never asks for both; the kubelet drops stderr then.
            r.stderr = false;
        }
        Ok(r)
    }
}

/// One frame: the channel byte, then the data.
pub fn frame(channel: u8, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 1);
    out.push(channel);
    out.extend_from_slice(data);
    out
}

/// A terminal resize frame (channel 4), as kubectl sends it.
pub fn resize(width: u16, height: u16) -> Vec<u8> {
    frame(
        RESIZE,
        format!("{{\"Width\":{width},\"Height\":{height}}}").as_bytes(),
    )
}

/// A message from the client, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientFrame<'a> {
    Stdin(&'a [u8]),
    Resize {
        width: u16,
        height: u16,
    },
    /// The client closed a channel (v5).
    Close(u8),
    /// Empty, a resize that does not parse, or a channel the client does
    /// not write.
    Ignored,
}

/// Decodes a binary message from the client.
pub fn decode(message: &[u8]) -> ClientFrame<'_> {
    let Some((&channel, data)) = message.split_first() else {
        return ClientFrame::Ignored;
    };
    match channel {
        STDIN => ClientFrame::Stdin(data),
        RESIZE => {
            #[derive(serde::Deserialize)]
            #[serde(rename_all = "PascalCase")]
            struct Size {
                width: u16,
                height: u16,
            }
            match serde_json::from_slice::<Size>(data) {
                Ok(s) => ClientFrame::Resize {
                    width: s.width,
                    height: s.height,
                },
                Err(_) => ClientFrame::Ignored,
            }
        }
        CLOSE => data
            .first()
            .map_or(ClientFrame::Ignored, |&c| ClientFrame::Close(c)),
        _ => ClientFrame::Ignored,
    }
}

/// The error channel's `Status` when a command ended with `exit_code`
/// (`None`: unknown). Zero is `Success`; anything else is the
/// `NonZeroExitCode` failure kubectl turns into its own exit code.
pub fn exit_status(command: &[String], exit_code: Option<i64>) -> Value {
    match exit_code {
        Some(0) => json!({"metadata": {}, "status": "Success"}),
        Some(code) => json!({
            "metadata": {},
            "status": "Failure",
            "message": format!(
                "command terminated with non-zero exit code: error executing command [{}], exit code {code}",
                command.join(" ")
            ),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
        }),
        None => failure_status("the command's exit code is unknown"),
    }
}

/// What a SPDY session's error stream carries for the final `status`: the
/// `Status` itself in v4; in v2 and v3 its message, or nothing on success.
pub fn spdy_error_payload(protocol: &str, status: &Value) -> Vec<u8> {
    if protocol == PROTOCOL_V4 {
        return status.to_string().into_bytes();
    }
    if status["status"] == "Success" {
        return Vec::new();
    }
    status["message"]
        .as_str()
        .unwrap_or("error executing remote command")
        .as_bytes()
        .to_vec()
}

/// The terminal sizes complete in `buf` — a SPDY resize stream's bytes: one
/// `{"Width":W,"Height":H}` JSON object per resize, back to back — removed
/// from it; an incomplete object at the end stays for the next read. Bytes
/// that are not such objects are dropped.
pub fn take_resizes(buf: &mut Vec<u8>) -> Vec<(u16, u16)> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Size {
        width: u16,
        height: u16,
    }
    let mut sizes = Vec::new();
    let mut objects = serde_json::Deserializer::from_slice(buf).into_iter::<Size>();
    let mut used = 0;
    loop {
        match objects.next() {
            Some(Ok(s)) => {
                sizes.push((s.width, s.height));
                used = objects.byte_offset();
            }
            Some(Err(e)) if e.is_eof() => break,
            Some(Err(_)) => {
                used = buf.len();
                break;
            }
            None => {
                used = buf.len();
                break;
            }
        }
    }
    buf.drain(..used);
    sizes
}

/// The error channel's `Status` for a stream that could not run.
pub fn failure_status(message: &str) -> Value {
    json!({
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "InternalError",
        "code": 500,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(q: &[(&str, &str)]) -> Vec<(String, String)> {
        q.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn kubectls_exec_query_is_parsed_with_its_repeated_command() {
        let r = StreamRequest::parse(
            &params(&[
                ("command", "sh"),
                ("command", "-c"),
                ("command", "exit 3"),
                ("container", "app"),
                ("stdin", "true"),
                ("stdout", "true"),
                ("stderr", "true"),
            ]),
            true,
        )
        .unwrap();
        assert_eq!(r.command, vec!["sh", "-c", "exit 3"]);
        assert_eq!(r.container.as_deref(), Some("app"));
        assert!(r.stdin && r.stdout && r.stderr && !r.tty);
    }

    #[test]
    fn an_exec_without_command_or_streams_is_refused() {
        assert!(StreamRequest::parse(&params(&[("stdout", "true")]), true).is_err());
        assert!(StreamRequest::parse(&params(&[("command", "ls")]), true).is_err());
        assert!(StreamRequest::parse(&params(&[("stdout", "1")]), false).is_ok());
    }

    #[test]
    fn a_tty_merges_stderr_into_stdout() {
        let r = StreamRequest::parse(
            &params(&[
                ("command", "sh"),
                ("tty", "true"),
                ("stderr", "true"),
                ("stdout", "true"),
            ]),
            true,
        )
        .unwrap();
        assert!(r.tty && !r.stderr);
    }

    #[test]
    fn client_frames_decode_stdin_resize_and_close() {
        assert_eq!(decode(&[0, b'h', b'i']), ClientFrame::Stdin(b"hi"));
        assert_eq!(
            decode(b"\x04{\"Width\":80,\"Height\":24}"),
            ClientFrame::Resize {
                width: 80,
                height: 24
            }
        );
        assert_eq!(
            decode(&resize(132, 43)),
            ClientFrame::Resize {
                width: 132,
                height: 43
            }
        );
        assert_eq!(decode(&[255, 0]), ClientFrame::Close(0));
        assert_eq!(decode(&[]), ClientFrame::Ignored);
        assert_eq!(decode(b"\x04nonsense"), ClientFrame::Ignored);
        assert_eq!(frame(STDOUT, b"x"), vec![1, b'x']);
    }

    #[test]
    fn a_non_zero_exit_is_a_status_with_the_exit_code_cause() {
        let cmd = vec!["sh".to_string(), "-c".into(), "exit 3".into()];
        let s = exit_status(&cmd, Some(3));
        assert_eq!(s["reason"], "NonZeroExitCode");
        assert_eq!(s["details"]["causes"][0]["reason"], "ExitCode");
        assert_eq!(s["details"]["causes"][0]["message"], "3");
        assert_eq!(exit_status(&cmd, Some(0))["status"], "Success");
        assert_eq!(exit_status(&cmd, None)["status"], "Failure");
    }

    #[test]
    fn resizes_are_read_as_back_to_back_json_objects_across_reads() {
        let mut buf = b"{\"Width\":80,\"Height\":24}{\"Width\":100,\"Hei".to_vec();
        assert_eq!(take_resizes(&mut buf), vec![(80, 24)]);
        buf.extend_from_slice(b"ght\":30}\n");
        assert_eq!(take_resizes(&mut buf), vec![(100, 30)]);
        assert!(buf.is_empty(), "{buf:?}");
        let mut junk = b"nonsense".to_vec();
        assert_eq!(take_resizes(&mut junk), vec![]);
        assert!(junk.is_empty());
    }

    #[test]
    fn the_spdy_error_stream_carries_a_status_in_v4_and_a_message_before() {
        let cmd = vec!["false".to_string()];
        let failed = exit_status(&cmd, Some(1));
        let v4: Value = serde_json::from_slice(&spdy_error_payload(PROTOCOL_V4, &failed)).unwrap();
        assert_eq!(v4["reason"], "NonZeroExitCode");
        let v3 = String::from_utf8(spdy_error_payload(PROTOCOL_V3, &failed)).unwrap();
        assert!(v3.contains("exit code 1"), "{v3}");
        let ok = exit_status(&cmd, Some(0));
        assert!(spdy_error_payload(PROTOCOL_V2, &ok).is_empty());
        assert!(!spdy_error_payload(PROTOCOL_V4, &ok).is_empty());
    }
}
