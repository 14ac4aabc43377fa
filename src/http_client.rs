//! The shared HTTP client setup (reqwest over rustls with the `ring` provider).
//!
//! PITFALLS: with `rustls-no-provider`, a crypto provider must be installed
//! before the first client is built, or reqwest panics. [`client_builder`]
//! does that once, so every HTTP user (manifest URL, probes, hooks, CLI) goes
//! through it.

use std::sync::Once;

static PROVIDER: Once = Once::new();

/// Installs the process-wide rustls crypto provider (idempotent).
pub fn install_crypto_provider() {
    PROVIDER.call_once(|| {
        // Err means another provider is installed already: fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A reqwest client builder with the crypto provider installed.
pub fn client_builder() -> reqwest::ClientBuilder {
    install_crypto_provider();
    reqwest::Client::builder().user_agent(concat!("rkubelet/", env!("CARGO_PKG_VERSION")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_can_be_built_repeatedly() {
        for _ in 0..2 {
            assert!(client_builder().build().is_ok());
        }
    }
}
