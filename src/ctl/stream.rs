//! `rkubelet exec` and `rkubelet attach`: the authenticated port's WebSocket
//! streams (`v5.channel.k8s.io`, see [`crate::k8s::remotecommand`]) from the
//! command line, as kubectl does them: stdin (with `-i`; its end closes the
//! remote stdin), stdout and stderr, a raw local terminal with `-t`, and the
//! remote exit code as rkubelet's own. With `-t` the terminal's size goes
//! along at the start and after every `SIGWINCH` (the resize channel).

use std::io::{IsTerminal, Write};
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::AsyncReadExt;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

use super::{secure, CtlError, Result};
use crate::cli::StreamArgs;
use crate::k8s::remotecommand as rc;

/// Restores the terminal's mode when dropped.
struct RawTerminal(Option<nix::sys::termios::Termios>);

impl RawTerminal {
    fn enable(on: bool) -> RawTerminal {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        if !on || !std::io::stdin().is_terminal() {
            return RawTerminal(None);
        }
        let stdin = std::io::stdin();
        let Ok(saved) = tcgetattr(&stdin) else {
            return RawTerminal(None);
        };
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        let _ = tcsetattr(&stdin, SetArg::TCSANOW, &raw);
        RawTerminal(Some(saved))
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin(),
                nix::sys::termios::SetArg::TCSANOW,
                saved,
            );
        }
    }
}

/// Runs `rkubelet exec` (`command` non-empty) or `rkubelet attach`; returns
/// the exit code to end with.
pub async fn run(args: &StreamArgs, command: &[String]) -> Result<i32> {
    let exec = !command.is_empty();
    let client = secure::client(&args.secure)?;
    let ns = args.namespace.as_deref().unwrap_or("default");
    let pod = client.find(ns, &args.pod).await?;
    let name = pod.metadata.name.clone().unwrap_or_default();
    let container = match &args.container {
        Some(c) => c.clone(),
        None => pod
            .spec
            .as_ref()
            .and_then(|s| s.containers.first())
            .map(|c| c.name.clone())
            .unwrap_or_default(),
    };
    let mut query = form_urlencoded::Serializer::new(String::new());
    for c in command {
        query.append_pair("command", c);
    }
    query.append_pair("container", &container);
    query.append_pair("stdin", &args.stdin.to_string());
    query.append_pair("stdout", "true");
    query.append_pair("stderr", &(!args.tty).to_string());
    query.append_pair("tty", &args.tty.to_string());
    let verb = if exec { "exec" } else { "attach" };
    let path = format!(
        "/api/v1/namespaces/{ns}/pods/{name}/{verb}?{}",
        query.finish()
    );
    let ws = open(&args.secure, &path, rc::PROTOCOL_V5).await?;
    let (mut sink, mut source) = ws.split();

    let _raw = RawTerminal::enable(args.tty && args.stdin);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    if args.stdin {
        tokio::spawn(async move {
            let mut stdin = tokio::io::stdin();
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match stdin.read(&mut buf).await {
                    Ok(0) | Err(_) => {
                        let _ = tx.send(vec![rc::CLOSE, rc::STDIN]).await;
                        break;
                    }
                    Ok(n) => {
                        if tx.send(rc::frame(rc::STDIN, &buf[..n])).await.is_err() {
                            break;
                        }
                    }
                }
            }
        });
    } else {
        drop(tx);
    }
    let mut resizes = if args.tty {
        terminal_resizes()
    } else {
        tokio::sync::mpsc::channel(1).1
    };
    let mut resizing = args.tty;
    let mut code = 0;
    let mut stdin_open = args.stdin;
    loop {
        tokio::select! {
            size = resizes.recv(), if resizing => match size {
                Some((width, height)) => {
                    let f = rc::resize(width, height);
                    if sink.send(Message::Binary(f.into())).await.is_err() {
                        break;
                    }
                }
                None => resizing = false,
            },
            frame = rx.recv(), if stdin_open => match frame {
                Some(f) => {
                    if sink.send(Message::Binary(f.into())).await.is_err() {
                        break;
                    }
                }
                None => stdin_open = false,
            },
            msg = source.next() => {
                let data = match msg {
                    Some(Ok(Message::Binary(b))) => b,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => continue,
                };
                let Some((&channel, payload)) = data.split_first() else { continue };
                match channel {
                    rc::STDOUT => {
                        let mut out = std::io::stdout().lock();
                        let _ = out.write_all(payload);
                        let _ = out.flush();
                    }
                    rc::STDERR => {
                        let _ = std::io::stderr().write_all(payload);
                    }
                    rc::ERROR => {
                        let mut message = Vec::new();
                        code = status_code(payload, &mut message);
                        let _ = std::io::stderr().write_all(&message);
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(code)
}

/// The local terminal's size (columns, rows): now, then after each
/// `SIGWINCH`, as kubectl sends them on the resize channel. Closes at once
/// when stdout is not a terminal.
fn terminal_resizes() -> tokio::sync::mpsc::Receiver<(u16, u16)> {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let size = || {
        terminal_size::terminal_size_of(std::io::stdout())
            .or_else(|| terminal_size::terminal_size_of(std::io::stdin()))
            .map(|(w, h)| (w.0, h.0))
    };
    let Some(first) = size() else {
        return rx;
    };
    let Ok(mut winch) =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
    else {
        let _ = tx.try_send(first);
        return rx;
    };
    tokio::spawn(async move {
        let mut last = first;
        if tx.send(first).await.is_err() {
            return;
        }
        while winch.recv().await.is_some() {
            match size() {
                Some(now) if now != last => {
                    last = now;
                    if tx.send(now).await.is_err() {
                        return;
                    }
                }
                _ => {}
            }
        }
    });
    rx
}

/// A WebSocket on the authenticated port: `path` (with its query) upgraded
/// with subprotocol `protocol`. Fails with the server's `Status` message.
pub(super) async fn open(
    secure_args: &crate::cli::SecureClientArgs,
    path: &str,
    protocol: &'static str,
) -> Result<WebSocket> {
    let (server, ca, token) = secure::endpoint(secure_args)?;
    let base = server.trim_end_matches('/');
    let url = format!("{}{path}", base.replacen("https://", "wss://", 1));
    let uri: reqwest::Url = url
        .parse()
        .map_err(|e| CtlError(format!("bad server URL {server}: {e}")))?;
    let host = uri
        .host_str()
        .unwrap_or("127.0.0.1")
        .trim_matches(['[', ']'])
        .to_string();
    let port = uri.port().unwrap_or(443);
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&ca).flatten() {
        let _ = roots.add(cert);
    }
    crate::http_client::install_crypto_provider();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| CtlError(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let server_name = ServerName::try_from(host.clone())
        .map_err(|e| CtlError(format!("bad server name {host}: {e}")))?;
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| CtlError(format!("cannot reach rkubelet at {server}: {e}")))?;
    let stream = tokio_rustls::TlsConnector::from(Arc::new(tls))
        .connect(server_name, tcp)
        .await
        .map_err(|e| CtlError(format!("TLS with {server}: {e}")))?;
    let mut request = url
        .into_client_request()
        .map_err(|e| CtlError(format!("bad request: {e}")))?;
    let headers = request.headers_mut();
    let bearer = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| CtlError("the token is not a valid header value".into()))?;
    headers.insert("Authorization", bearer);
    headers.insert("Sec-WebSocket-Protocol", HeaderValue::from_static(protocol));
    let (ws, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .map_err(|e| match e {
            tokio_tungstenite::tungstenite::Error::Http(resp) => {
                let body = resp
                    .body()
                    .as_deref()
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default()
                    .to_string();
                let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                let reason = v["reason"].as_str().unwrap_or("Error").to_string();
                let message = v["message"].as_str().map(String::from).unwrap_or(body);
                CtlError(format!("Error from server ({reason}): {message}"))
            }
            e => CtlError(format!("cannot open the stream {path}: {e}")),
        })?;
    Ok(ws)
}

/// A client WebSocket over TLS.
pub(super) type WebSocket =
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

/// The exit code a `Status` on the error channel stands for; its message
/// goes to `message` when it is not a plain non-zero exit.
pub(super) fn status_code(status: &[u8], message: &mut Vec<u8>) -> i32 {
    let v: serde_json::Value = serde_json::from_slice(status).unwrap_or_default();
    if v["status"] == "Success" {
        return 0;
    }
    if v["reason"] == "NonZeroExitCode" {
        if let Some(code) = v["details"]["causes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["reason"] == "ExitCode")
            .and_then(|c| c["message"].as_str())
            .and_then(|m| m.parse().ok())
        {
            return code;
        }
    }
    let text = v["message"].as_str().unwrap_or("the remote command failed");
    message.extend_from_slice(format!("error: {text}\n").as_bytes());
    1
}
