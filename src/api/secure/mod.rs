//! The authenticated port (`--address:--port`, default 127.0.0.1:10250).
//!
//! HTTPS only ([`pki`]), every request authenticated — a client certificate
//! signed by `--client-ca-file`, or a bearer token from `--token-auth-file`
//! or the generated token file ([`tokens`]); anything else is answered `401`
//! with a v1 `Status`, as the kubelet does (no anonymous access). Behind the
//! check it serves the whole read API (the read-only port's router) plus
//! container logs and the streaming verbs ([`crate::api::stream`]).
//!
//! The accept loop is tokio-rustls + hyper (HTTP/1.1 with upgrades, which
//! kubectl's WebSocket streams need); the authenticated [`tokens::User`] is
//! put in the request's extensions for handlers.

pub mod kubeconfig;
pub mod pki;
pub mod tokens;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use tokens::{Tokens, User};

/// The longest a client may take to finish the TLS handshake, or to send a
/// request's headers, before its connection is dropped.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The authenticated port's settings, from the flags.
#[derive(Debug, Clone)]
pub struct SecureSettings {
    pub address: SocketAddr,
    pub tls_cert_file: Option<PathBuf>,
    pub tls_private_key_file: Option<PathBuf>,
    pub client_ca_file: Option<PathBuf>,
    pub token_auth_file: Option<PathBuf>,
}

/// A bound authenticated port, ready to serve.
pub struct SecurePort {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    tokens: Arc<Tokens>,
}

/// Why the authenticated port cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SecureError {
    #[error(transparent)]
    Pki(#[from] pki::PkiError),
    #[error(transparent)]
    Tokens(#[from] tokens::TokenError),
    #[error("cannot listen on {address}: {reason}; pick another --port (0 disables the authenticated port)")]
    Bind { address: SocketAddr, reason: String },
}

impl SecurePort {
    /// Loads (or generates) the certificate, key and tokens and binds the
    /// port. Fails naming the file or address.
    pub async fn bind(
        settings: &SecureSettings,
        root_dir: &std::path::Path,
        node_name: &str,
    ) -> Result<SecurePort, SecureError> {
        let (cert, key) = pki::serving_files(
            root_dir,
            settings.tls_cert_file.as_deref(),
            settings.tls_private_key_file.as_deref(),
            node_name,
            settings.address.ip(),
        )?;
        let config = pki::server_config(&cert, &key, settings.client_ca_file.as_deref())?;
        let tokens = match &settings.token_auth_file {
            Some(path) => Tokens::read(path)?,
            None => tokens::load_or_generate(root_dir)?,
        };
        let listener =
            TcpListener::bind(settings.address)
                .await
                .map_err(|e| SecureError::Bind {
                    address: settings.address,
                    reason: e.to_string(),
                })?;
        Ok(SecurePort {
            listener,
            acceptor: TlsAcceptor::from(Arc::new(config)),
            tokens: Arc::new(tokens),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Serves `router` to authenticated clients until `shutdown`.
    pub async fn serve(self, router: Router, shutdown: CancellationToken) {
        loop {
            let (tcp, peer) = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = self.listener.accept() => match r {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "authenticated port: accept failed");
                        continue;
                    }
                },
            };
            // Small frames (exec's Status, a prompt) go out at once.
            let _ = tcp.set_nodelay(true);
            let acceptor = self.acceptor.clone();
            let tokens = self.tokens.clone();
            let router = router.clone();
            let stop = shutdown.clone();
            tokio::spawn(async move {
                let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp));
                let tls = match handshake.await {
                    Ok(Ok(t)) => t,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "authenticated port: TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "authenticated port: TLS handshake timed out");
                        return;
                    }
                };
                let cert_user = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .map(|c| cert_user(c.as_ref()));
                let service =
                    hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                        let router = router.clone();
                        let user = cert_user.clone().or_else(|| bearer_user(&tokens, &req));
                        async move {
                            let Some(user) = user else {
                                return Ok::<_, std::convert::Infallible>(unauthorized());
                            };
                            let mut req = req.map(Body::new);
                            req.extensions_mut().insert(user);
                            router.oneshot(req).await
                        }
                    });
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(HANDSHAKE_TIMEOUT)
                    .serve_connection(TokioIo::new(tls), service)
                    .with_upgrades();
                tokio::pin!(conn);
                tokio::select! {
                    r = conn.as_mut() => {
                        if let Err(e) = r {
                            tracing::debug!(%peer, error = %e, "authenticated port: connection ended");
                        }
                    }
                    _ = stop.cancelled() => conn.as_mut().graceful_shutdown(),
                }
            });
        }
    }
}

/// The user a verified client certificate names: its CN, with its Os as
/// groups (the API server's convention).
fn cert_user(der: &[u8]) -> User {
    let mut user = User {
        name: String::new(),
        uid: String::new(),
        groups: Vec::new(),
    };
    if let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) {
        let subject = cert.subject();
        user.name = subject
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .unwrap_or_default()
            .to_string();
        user.groups = subject
            .iter_organization()
            .filter_map(|o| o.as_str().ok().map(String::from))
            .collect();
    }
    user
}

/// The user of the request's `Authorization: Bearer` token, if valid.
fn bearer_user<B>(tokens: &Tokens, req: &Request<B>) -> Option<User> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    tokens.authenticate(token.trim()).cloned()
}

/// The API server's answer to an unauthenticated request.
fn unauthorized() -> Response {
    let body = serde_json::json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    });
    (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response()
}
