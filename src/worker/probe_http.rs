//! A probe's plain-HTTP request: one `GET` over a fresh TCP connection,
//! `Connection: close`, the response's head parsed with `httparse`.
//!
//! The kubelet's HTTP prober opens a new connection per probe (no
//! keep-alive) and reads at most 10 KiB of body; building a full HTTP
//! client for that costs more CPU than the probe itself. This module does
//! only what one probe needs: it writes the request, reads the status line
//! and headers, and reads the body only of a redirect (one that is not
//! followed carries it in its warning). HTTPS probes and hooks keep the
//! full client ([`super::actions`]). It does not follow redirects: the
//! caller decides ([`super::actions`] follows same-host ones).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The largest response head read (status line and headers).
const MAX_HEAD: usize = 64 * 1024;
/// The most headers a response may have.
const MAX_HEADERS: usize = 64;

/// What a probe needs from a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// The `Location` header, if any.
    pub location: Option<String>,
    /// At most the asked-for bytes of a redirect's decoded body (empty for
    /// any other status).
    pub body: Vec<u8>,
}

/// Why a probe request got no response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("dial tcp {addr}: {reason}")]
    Dial { addr: String, reason: String },
    #[error("{0}")]
    Io(String),
    #[error("malformed HTTP response: {0}")]
    Malformed(String),
    #[error("context deadline exceeded (Client.Timeout exceeded)")]
    Timeout,
}

/// The request's bytes. `headers` are the probe's own (`httpHeaders`); one
/// named like a default (`Host`, `User-Agent`, `Accept`) replaces it, as
/// with the kubelet.
pub fn request(
    host_port: &str,
    path_and_query: &str,
    user_agent: &str,
    headers: &[(&str, &str)],
) -> Vec<u8> {
    let given = |name: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
    let mut r = Vec::with_capacity(160);
    r.extend_from_slice(b"GET ");
    r.extend_from_slice(path_and_query.as_bytes());
    r.extend_from_slice(b" HTTP/1.1\r\n");
    let mut line = |k: &str, v: &str| {
        r.extend_from_slice(k.as_bytes());
        r.extend_from_slice(b": ");
        r.extend_from_slice(v.as_bytes());
        r.extend_from_slice(b"\r\n");
    };
    if !given("host") {
        line("Host", host_port);
    }
    if !given("user-agent") {
        line("User-Agent", user_agent);
    }
    if !given("accept") {
        line("Accept", "*/*");
    }
    for (k, v) in headers {
        if k.eq_ignore_ascii_case("connection") {
            continue;
        }
        line(k, v);
    }
    line("Connection", "close");
    r.extend_from_slice(b"\r\n");
    r
}

/// The parsed head of a response: status, `Location`, how the body is
/// framed, and where the body starts in the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Head {
    status: u16,
    location: Option<String>,
    chunked: bool,
    content_length: Option<usize>,
    len: usize,
}

/// Parses the head in `buf`; `None` while it is incomplete.
fn parse_head(buf: &[u8]) -> Result<Option<Head>, RequestError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(RequestError::Malformed(e.to_string())),
    };
    let status = resp
        .code
        .ok_or_else(|| RequestError::Malformed("no status code".into()))?;
    let value = |name: &str| {
        resp.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_string())
    };
    Ok(Some(Head {
        status,
        location: value("location"),
        chunked: value("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked")),
        content_length: value("content-length").and_then(|v| v.parse().ok()),
        len,
    }))
}

/// Decodes as much of a chunked body as `raw` holds, up to `limit` bytes.
fn dechunk(mut raw: &[u8], limit: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < limit {
        let Some(nl) = raw.iter().position(|&b| b == b'\n') else {
            break;
        };
        let size_line = String::from_utf8_lossy(&raw[..nl]);
        let size_text = size_line.split(';').next().unwrap_or_default().trim();
        let Ok(size) = usize::from_str_radix(size_text, 16) else {
            break;
        };
        raw = &raw[nl + 1..];
        if size == 0 {
            break;
        }
        let take = size.min(raw.len());
        out.extend_from_slice(&raw[..take]);
        if take < size {
            break;
        }
        raw = raw[size..].strip_prefix(b"\r\n").unwrap_or(&raw[size..]);
    }
    out.truncate(limit);
    out
}

/// `GET path_and_query` from `host_port` (`host:port`, IPv6 in brackets)
/// within `timeout`: connect, send, read the head and, for a redirect
/// (3xx), at most `body_limit` bytes of its body — a redirect that is not
/// followed carries it; no other body is read. The connection is closed
/// after.
///
/// Fails when the connection cannot be opened, the response is not HTTP,
/// or `timeout` passes first.
pub async fn get(
    host_port: &str,
    path_and_query: &str,
    user_agent: &str,
    headers: &[(&str, &str)],
    body_limit: usize,
    timeout: Duration,
) -> Result<Response, RequestError> {
    let exchange = async {
        let mut conn = TcpStream::connect(host_port)
            .await
            .map_err(|e| RequestError::Dial {
                addr: host_port.to_string(),
                reason: format!("connect: {e}"),
            })?;
        let _ = conn.set_nodelay(true);
        let req = request(host_port, path_and_query, user_agent, headers);
        conn.write_all(&req)
            .await
            .map_err(|e| RequestError::Io(format!("write: {e}")))?;
        let mut buf: Vec<u8> = Vec::with_capacity(1024);
        let head = loop {
            if buf.len() >= MAX_HEAD {
                return Err(RequestError::Malformed(format!(
                    "the response head is larger than {MAX_HEAD} bytes"
                )));
            }
            let n = conn
                .read_buf(&mut buf)
                .await
                .map_err(|e| RequestError::Io(format!("read: {e}")))?;
            if let Some(head) = parse_head(&buf)? {
                break head;
            }
            if n == 0 {
                return Err(RequestError::Io(
                    "the server closed the connection before a complete response head".into(),
                ));
            }
        };
        let mut body = Vec::new();
        if (300..400).contains(&head.status) && body_limit > 0 {
            // Raw bytes wanted: the body's, plus room for chunk framing.
            let want = match head.content_length {
                Some(n) if !head.chunked => n.min(body_limit),
                _ => body_limit + body_limit / 2,
            };
            let mut raw = buf.split_off(head.len);
            while raw.len() < want {
                match conn.read_buf(&mut raw).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            body = if head.chunked {
                dechunk(&raw, body_limit)
            } else {
                raw.truncate(want);
                raw
            };
        }
        Ok(Response {
            status: head.status,
            location: head.location,
            body,
        })
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(r) => r,
        Err(_) => Err(RequestError::Timeout),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(v: &[u8]) -> String {
        String::from_utf8_lossy(v).into_owned()
    }

    /// The kubelet's prober (pkg/probe/http/request.go) sends `User-Agent:
    /// kube-probe/…` and `Accept: */*` unless the probe names them, and
    /// disables keep-alive.
    #[test]
    fn requests_carry_the_probe_headers_unless_the_probe_names_them() {
        let r = text(&request(
            "10.0.0.5:8080",
            "/healthz?x=1",
            "kube-probe/1.0",
            &[],
        ));
        assert_eq!(
            r,
            "GET /healthz?x=1 HTTP/1.1\r\nHost: 10.0.0.5:8080\r\nUser-Agent: kube-probe/1.0\r\n\
             Accept: */*\r\nConnection: close\r\n\r\n"
        );
        let r = text(&request(
            "h:80",
            "/",
            "kube-probe/1.0",
            &[
                ("Accept", "application/json"),
                ("Host", "example.com"),
                ("X-Custom", "a"),
                ("connection", "keep-alive"),
            ],
        ));
        assert_eq!(
            r,
            "GET / HTTP/1.1\r\nUser-Agent: kube-probe/1.0\r\nAccept: application/json\r\n\
             Host: example.com\r\nX-Custom: a\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn heads_parse_once_complete() {
        let full = b"HTTP/1.1 302 Found\r\nLocation: /next\r\nContent-Length: 5\r\n\r\nhello";
        assert_eq!(parse_head(&full[..20]), Ok(None));
        let head = parse_head(full).expect("parses").expect("complete");
        assert_eq!(head.status, 302);
        assert_eq!(head.location.as_deref(), Some("/next"));
        assert_eq!(head.content_length, Some(5));
        assert!(!head.chunked);
        assert_eq!(&full[head.len..], b"hello");
        assert!(matches!(
            parse_head(b"SSH-2.0-OpenSSH\r\n\r\n"),
            Err(RequestError::Malformed(_))
        ));
    }

    #[test]
    fn chunked_bodies_decode_up_to_the_limit() {
        let raw = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n";
        assert_eq!(dechunk(raw, 100), b"hello world");
        assert_eq!(dechunk(raw, 7), b"hello w");
        // A body cut short keeps what arrived.
        assert_eq!(dechunk(b"5\r\nhel", 100), b"hel");
    }

    async fn serve_once(response: &'static [u8]) -> (String, tokio::task::JoinHandle<Vec<u8>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let task = tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.expect("accept");
            let mut got = Vec::new();
            let mut buf = [0u8; 1024];
            while !got.ends_with(b"\r\n\r\n") {
                match conn.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let _ = conn.write_all(response).await;
            got
        });
        (addr, task)
    }

    #[tokio::test]
    async fn a_get_reads_the_status_and_a_redirects_body() {
        let (addr, server) = serve_once(
            b"HTTP/1.1 301 Moved\r\nLocation: http://elsewhere/\r\nTransfer-Encoding: chunked\r\n\r\n\
              4\r\nmove\r\n0\r\n\r\n",
        )
        .await;
        let resp = get(
            &addr,
            "/a",
            "kube-probe/1.0",
            &[],
            1024,
            Duration::from_secs(10),
        )
        .await
        .expect("a response");
        assert_eq!(resp.status, 301);
        assert_eq!(resp.location.as_deref(), Some("http://elsewhere/"));
        assert_eq!(resp.body, b"move");
        let sent = text(&server.await.expect("server"));
        assert!(sent.starts_with("GET /a HTTP/1.1\r\n"), "{sent}");
        assert!(sent.contains("\r\nConnection: close\r\n"), "{sent}");
    }

    #[tokio::test]
    async fn a_get_fails_on_a_refused_connection_and_on_a_silent_server() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        // Accepts (the kernel does) but never answers.
        let err = get(&addr, "/", "ua", &[], 0, Duration::from_millis(200))
            .await
            .expect_err("no answer");
        assert_eq!(err, RequestError::Timeout);
        drop(listener);
        let err = get(&addr, "/", "ua", &[], 0, Duration::from_secs(10))
            .await
            .expect_err("refused");
        assert!(
            matches!(&err, RequestError::Dial { addr: a, .. } if *a == addr),
            "{err}"
        );
    }
}
