//! `rkubelet port-forward POD [LOCAL:]REMOTE...`: listens on 127.0.0.1 and
//! forwards each accepted connection through the authenticated port, as
//! kubectl does (SPDY/3.1 tunnelled over one WebSocket: an error stream and
//! a data stream per connection, sharing a `requestID`).

use std::collections::HashMap;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::{secure, CtlError, Result};
use crate::api::spdy::{self, Decoder, Encoder, Frame};
use crate::cli::PortForwardArgs;

/// A remote stream's bytes for a local connection: `None` at FIN.
type Inbound = mpsc::Sender<Option<Vec<u8>>>;

/// What a local connection asks of the session.
enum Request {
    Open {
        port: u16,
        data: Inbound,
        error: Inbound,
        ids: tokio::sync::oneshot::Sender<u32>,
    },
    Data(u32, Vec<u8>, bool),
}

fn parse_ports(specs: &[String]) -> Result<Vec<(u16, u16)>> {
    specs
        .iter()
        .map(|s| {
            let (local, remote) = s.split_once(':').unwrap_or((s, s));
            let port = |p: &str| {
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| CtlError(format!("error: invalid port {s:?}: use LOCAL:REMOTE")))
            };
            Ok((port(local)?, port(remote)?))
        })
        .collect()
}

/// Runs until interrupted or the connection to rkubelet ends.
pub async fn run(args: &PortForwardArgs) -> Result<()> {
    let ports = parse_ports(&args.ports)?;
    let client = secure::client(&args.secure)?;
    let ns = args.namespace.as_deref().unwrap_or("default");
    let pod = client.find(ns, &args.pod).await?;
    let name = pod.metadata.name.clone().unwrap_or_default();
    let query: Vec<String> = ports.iter().map(|(_, r)| format!("ports={r}")).collect();
    let path = format!(
        "/api/v1/namespaces/{ns}/pods/{name}/portforward?{}",
        query.join("&")
    );
    let ws = super::stream::open(&args.secure, &path, crate::api::portforward::PROTOCOL).await?;
    let (req_tx, req_rx) = mpsc::channel::<Request>(64);
    let mut listeners = Vec::new();
    for (local, remote) in ports {
        let listener = TcpListener::bind(("127.0.0.1", local))
            .await
            .map_err(|e| CtlError(format!("error: cannot listen on 127.0.0.1:{local}: {e}")))?;
        println!("Forwarding from 127.0.0.1:{local} -> {remote}");
        listeners.push(tokio::spawn(accept(listener, remote, req_tx.clone())));
    }
    drop(req_tx);
    let result = session(ws, req_rx).await;
    for l in listeners {
        l.abort();
    }
    result
}

async fn accept(listener: TcpListener, remote: u16, requests: mpsc::Sender<Request>) {
    while let Ok((conn, _)) = listener.accept().await {
        let requests = requests.clone();
        tokio::spawn(async move {
            let (data_tx, mut data_rx) = mpsc::channel(64);
            let (error_tx, mut error_rx) = mpsc::channel(8);
            let (ids_tx, ids_rx) = tokio::sync::oneshot::channel();
            let open = Request::Open {
                port: remote,
                data: data_tx,
                error: error_tx,
                ids: ids_tx,
            };
            if requests.send(open).await.is_err() {
                return;
            }
            let Ok(data_id) = ids_rx.await else { return };
            let (mut read, mut write) = conn.into_split();
            let up = async {
                let mut buf = vec![0u8; 32 * 1024];
                loop {
                    match read.read(&mut buf).await {
                        Ok(0) | Err(_) => {
                            let _ = requests
                                .send(Request::Data(data_id, Vec::new(), true))
                                .await;
                            break;
                        }
                        Ok(n) => {
                            if requests
                                .send(Request::Data(data_id, buf[..n].to_vec(), false))
                                .await
                                .is_err()
                            {
                                break;
                            }
                        }
                    }
                }
            };
            let down = async {
                while let Some(Some(bytes)) = data_rx.recv().await {
                    if write.write_all(&bytes).await.is_err() {
                        break;
                    }
                }
                let _ = write.shutdown().await;
            };
            let errors = async {
                let mut text = Vec::new();
                while let Some(Some(bytes)) = error_rx.recv().await {
                    text.extend_from_slice(&bytes);
                }
                if !text.is_empty() {
                    eprintln!("error: {}", String::from_utf8_lossy(&text));
                }
            };
            tokio::join!(up, down, errors);
        });
    }
}

async fn session(
    ws: super::stream::WebSocket,
    mut requests: mpsc::Receiver<Request>,
) -> Result<()> {
    let (mut sink, mut source) = ws.split();
    let mut decoder = Decoder::default();
    let mut encoder = Encoder::default();
    let mut inbound: HashMap<u32, Inbound> = HashMap::new();
    let mut next_id = 1u32;
    let mut request_id = 0u64;
    let broken = |e: &dyn std::fmt::Display| {
        CtlError(format!("error: lost the connection to rkubelet: {e}"))
    };
    loop {
        tokio::select! {
            req = requests.recv() => {
                let Some(req) = req else { return Ok(()) };
                let frames = match req {
                    Request::Open { port, data, error, ids } => {
                        let (error_id, data_id) = (next_id, next_id + 2);
                        next_id += 4;
                        let rid = request_id.to_string();
                        request_id += 1;
                        let port = port.to_string();
                        let mut frames = Vec::new();
                        for (id, kind) in [(error_id, "error"), (data_id, "data")] {
                            let headers = [("streamType", kind), ("port", port.as_str()), ("requestID", rid.as_str())];
                            frames.push(encoder.syn_stream(id, &headers).map_err(|e| broken(&e))?);
                        }
                        inbound.insert(error_id, error);
                        inbound.insert(data_id, data);
                        // The error stream is read-only for the client.
                        frames.push(spdy::data(error_id, &[], true));
                        let _ = ids.send(data_id);
                        frames
                    }
                    Request::Data(id, bytes, fin) => vec![spdy::data(id, &bytes, fin)],
                };
                for f in frames {
                    sink.send(Message::Binary(f.into())).await.map_err(|e| broken(&e))?;
                }
            }
            msg = source.next() => {
                let bytes = match msg {
                    Some(Ok(Message::Binary(b))) => b,
                    Some(Ok(Message::Close(_))) | None => return Err(broken(&"closed")),
                    Some(Err(e)) => return Err(broken(&e)),
                    Some(Ok(_)) => continue,
                };
                decoder.push(&bytes);
                while let Some(frame) = decoder.next_frame().map_err(|e| broken(&e))? {
                    match frame {
                        Frame::Data { stream_id, data, fin } => {
                            if let Some(tx) = inbound.get(&stream_id) {
                                if !data.is_empty() {
                                    let _ = tx.send(Some(data)).await;
                                }
                                if fin {
                                    let _ = tx.send(None).await;
                                    inbound.remove(&stream_id);
                                }
                            }
                        }
                        Frame::RstStream { stream_id, .. } => {
                            inbound.remove(&stream_id);
                        }
                        Frame::Ping(id) => {
                            sink.send(Message::Binary(spdy::ping(id).into())).await.map_err(|e| broken(&e))?;
                        }
                        Frame::GoAway => return Err(broken(&"the server went away")),
                        Frame::SynStream { .. } | Frame::Ignored => {}
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_local_colon_remote_or_one_for_both() {
        assert_eq!(
            parse_ports(&["18080:80".into(), "9000".into()]).unwrap(),
            vec![(18080, 80), (9000, 9000)]
        );
        assert!(parse_ports(&["x:80".into()]).is_err());
        assert!(parse_ports(&["0:80".into()]).is_err());
    }
}
