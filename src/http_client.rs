//! The shared HTTP client setup (reqwest over rustls with the `ring`
//! provider), and the checks of the user's URL and header flags.
//!
//! PITFALLS: with `rustls-no-provider`, a crypto provider must be installed
//! before the first client is built, or reqwest panics. [`client_builder`]
//! does that once, so every HTTP user (manifest URL, probes, hooks, CLI) goes
//! through it.

use std::sync::Once;

use reqwest::header::{HeaderName, HeaderValue};

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

/// A `--manifest-url-header` that cannot be sent. The messages never show
/// a header's value (it may be a credential).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// No `:` between name and value.
    #[error(
        "--manifest-url-header: expected Name:Value (example: 'Authorization: Bearer abc'); got {} characters without a colon (not shown: they may hold a credential)",
        flag.chars().count()
    )]
    NoColon { flag: String },
    /// The name is not an HTTP header name.
    #[error("--manifest-url-header: {name:?} is not a valid header name")]
    Name { flag: String, name: String },
    /// The value has characters a header cannot carry.
    #[error("--manifest-url-header {name}: the value contains characters not allowed in a header (not shown)")]
    Value { flag: String, name: String },
}

/// Parses one `--manifest-url-header 'Name: Value'`.
///
/// Fails, naming the flag, when there is no colon or the name or value is
/// not valid in HTTP.
pub fn parse_header(s: &str) -> Result<(String, String), HeaderError> {
    let Some((name, value)) = s.split_once(':') else {
        return Err(HeaderError::NoColon {
            flag: s.to_string(),
        });
    };
    let (name, value) = (name.trim(), value.trim());
    if HeaderName::from_bytes(name.as_bytes()).is_err() {
        return Err(HeaderError::Name {
            flag: s.to_string(),
            name: name.to_string(),
        });
    }
    if HeaderValue::from_str(value).is_err() {
        return Err(HeaderError::Value {
            flag: s.to_string(),
            name: name.to_string(),
        });
    }
    Ok((name.to_string(), value.to_string()))
}

/// A `--manifest-url` rkubelet cannot fetch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// A URL with another scheme, or without a host.
    #[error("--manifest-url {url:?}: the scheme must be http or https, not {scheme:?}")]
    Scheme { url: String, scheme: String },
    /// Not a URL at all.
    #[error("--manifest-url {url:?}: not a URL ({reason})")]
    NotAUrl { url: String, reason: String },
}

/// Checks a `--manifest-url`: an absolute `http://` or `https://` URL.
///
/// Fails, naming the flag, for anything else.
pub fn check_url(url: &str) -> Result<(), UrlError> {
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        Ok(u) => Err(UrlError::Scheme {
            url: crate::manifest::redact_url(url),
            scheme: u.scheme().to_string(),
        }),
        Err(e) => Err(UrlError::NotAUrl {
            url: crate::manifest::redact_url(url),
            reason: e.to_string(),
        }),
    }
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

    #[test]
    fn header_flags_need_a_colon_and_valid_names() {
        assert_eq!(
            parse_header("Authorization: Bearer a:b").expect("valid"),
            ("Authorization".into(), "Bearer a:b".into())
        );
        assert_eq!(
            parse_header("X-A:1,2").expect("valid"),
            ("X-A".into(), "1,2".into())
        );
        for bad in ["NoColon", "Bad Name: x", ": x", "X: a\nb"] {
            let e = parse_header(bad).expect_err(bad).to_string();
            assert!(e.contains("--manifest-url-header"), "{e}");
        }
        // A value, or a flag without a colon, may be a credential.
        for (bad, secret) in [
            ("Authorization Bearer s3cr3t", "s3cr3t"),
            ("Authorization: Bearer s3cr3t\u{7f}", "s3cr3t"),
        ] {
            let e = parse_header(bad).expect_err(bad).to_string();
            assert!(!e.contains(secret), "{e}");
        }
        assert_eq!(
            parse_header("Bad Name: x"),
            Err(HeaderError::Name {
                flag: "Bad Name: x".into(),
                name: "Bad Name".into()
            })
        );
    }

    #[test]
    fn only_http_and_https_urls_are_accepted() {
        assert!(check_url("http://127.0.0.1:8080/pods").is_ok());
        assert!(check_url("https://example.com/p.yaml").is_ok());
        for bad in ["ftp://x/y", "/etc/kubelet.d", "file:///x", "nope"] {
            let e = check_url(bad).expect_err(bad).to_string();
            assert!(e.contains("--manifest-url"), "{e}");
        }
    }
}
