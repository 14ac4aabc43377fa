//! The authenticated port's TLS: its serving certificate and the client CA.
//!
//! With `--tls-cert-file` and `--tls-private-key-file` those are served.
//! Without them rkubelet does what the kubelet does: it generates a
//! self-signed CA and a serving certificate signed by it on first start, and
//! keeps them under `--root-dir`/`pki/` (`ca.crt`, `kubelet.crt`, and
//! `kubelet.key` with mode 0600; the CA's key is never written). The CA is
//! what `rkubelet kubeconfig` puts in `certificate-authority-data`.
//! `--client-ca-file` turns on client-certificate authentication: a client
//! certificate is optional (tokens work without one), but one that is sent
//! must chain to that CA.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::ServerConfig;

use super::tokens::write_private;

/// A certificate or key that cannot be used, naming the file.
#[derive(Debug, thiserror::Error)]
#[error("{what} {path}: {reason}")]
pub struct PkiError {
    /// The flag or role of the file, e.g. `--tls-cert-file`.
    pub what: &'static str,
    pub path: PathBuf,
    pub reason: String,
}

fn err(what: &'static str, path: &Path, reason: impl ToString) -> PkiError {
    PkiError {
        what,
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// Where the generated files live.
pub struct Generated {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The generated files' paths under `root_dir`.
pub fn generated_paths(root_dir: &Path) -> Generated {
    let dir = root_dir.join("pki");
    Generated {
        ca: dir.join("ca.crt"),
        cert: dir.join("kubelet.crt"),
        key: dir.join("kubelet.key"),
    }
}

/// The serving certificate chain and key files: the flags' when given, else
/// the generated ones (created when absent). Fails naming the file.
pub fn serving_files(
    root_dir: &Path,
    cert: Option<&Path>,
    key: Option<&Path>,
    node_name: &str,
    address: IpAddr,
) -> Result<(PathBuf, PathBuf), PkiError> {
    match (cert, key) {
        (Some(c), Some(k)) => Ok((c.to_path_buf(), k.to_path_buf())),
        (Some(c), None) => Err(err(
            "--tls-cert-file",
            c,
            "needs --tls-private-key-file too",
        )),
        (None, Some(k)) => Err(err(
            "--tls-private-key-file",
            k,
            "needs --tls-cert-file too",
        )),
        (None, None) => {
            let g = generated_paths(root_dir);
            if !(g.cert.exists() && g.key.exists() && g.ca.exists()) {
                generate(&g, node_name, address)?;
            }
            Ok((g.cert, g.key))
        }
    }
}

/// Generates a CA and a serving certificate for `localhost`, the loopback
/// addresses, the node name and `address`.
fn generate(g: &Generated, node_name: &str, address: IpAddr) -> Result<(), PkiError> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let fail = |e: rcgen::Error| err("generated certificate", &g.cert, e);
    let key_ca = KeyPair::generate().map_err(fail)?;
    let mut ca = CertificateParams::default();
    ca.distinguished_name
        .push(DnType::CommonName, format!("{node_name}-ca@rkubelet"));
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::CrlSign,
    ];
    let ca_cert = ca.self_signed(&key_ca).map_err(fail)?;
    let issuer = Issuer::new(ca, key_ca);

    let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    names.push(node_name.to_string());
    if !address.is_unspecified() && !address.is_loopback() {
        names.push(address.to_string());
    }
    let mut leaf = CertificateParams::new(names).map_err(fail)?;
    leaf.distinguished_name
        .push(DnType::CommonName, format!("{node_name}@rkubelet"));
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().map_err(fail)?;
    let cert = leaf.signed_by(&key, &issuer).map_err(fail)?;

    let dir = g.cert.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| err("generated certificate", dir, e))?;
    // The key first: a crash in between leaves no certificate without a key.
    write_private(&g.key, key.serialize_pem().as_bytes())
        .map_err(|e| err("generated key", &g.key, e))?;
    let chain = format!("{}{}", cert.pem(), ca_cert.pem());
    std::fs::write(&g.cert, chain).map_err(|e| err("generated certificate", &g.cert, e))?;
    std::fs::write(&g.ca, ca_cert.pem()).map_err(|e| err("generated CA", &g.ca, e))?;
    Ok(())
}

fn read_certs(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(what, path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(what, path, e))?;
    if certs.is_empty() {
        return Err(err(what, path, "no PEM certificate in the file"));
    }
    Ok(certs)
}

/// The TLS configuration: HTTP/1.1 only (kubectl's WebSocket streams need
/// it), client certificates verified against `client_ca` when given.
/// Fails naming the file that cannot be read or used.
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<ServerConfig, PkiError> {
    crate::http_client::install_crypto_provider();
    let chain = read_certs("--tls-cert-file", cert)?;
    let key_der =
        PrivateKeyDer::from_pem_file(key).map_err(|e| err("--tls-private-key-file", key, e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| err("--tls-cert-file", cert, e))?;
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in read_certs("--client-ca-file", ca)? {
                roots.add(c).map_err(|e| err("--client-ca-file", ca, e))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|e| err("--client-ca-file", ca, e))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key_der).map_err(|e| {
        err(
            "--tls-private-key-file",
            key,
            format!("does not fit the certificate: {e}"),
        )
    })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_generated_key_is_private_and_the_config_loads() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = serving_files(
            dir.path(),
            None,
            None,
            "node1",
            "127.0.0.1".parse().unwrap(),
        )
        .unwrap();
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(generated_paths(dir.path()).ca.exists());
        server_config(&cert, &key, None).unwrap();
        // A second start reuses the files.
        let before = std::fs::read(&cert).unwrap();
        serving_files(
            dir.path(),
            None,
            None,
            "node1",
            "127.0.0.1".parse().unwrap(),
        )
        .unwrap();
        assert_eq!(before, std::fs::read(&cert).unwrap());
    }

    #[test]
    fn a_missing_client_ca_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) =
            serving_files(dir.path(), None, None, "n", "127.0.0.1".parse().unwrap()).unwrap();
        let e = server_config(&cert, &key, Some(Path::new("/nonexistent/ca.pem")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--client-ca-file /nonexistent/ca.pem"), "{e}");
    }

    #[test]
    fn a_cert_without_its_key_is_refused() {
        let e = serving_files(
            Path::new("/tmp"),
            Some(Path::new("/x.crt")),
            None,
            "n",
            "127.0.0.1".parse().unwrap(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("--tls-private-key-file"), "{e}");
    }
}
