//! The TLS client configuration for `wss://`: the application's own
//! ([`Builder::tls_config`](crate::Builder::tls_config)), or a default
//! built here once per process, with the webpki roots and the ring
//! provider named explicitly. The process-default `CryptoProvider` is never
//! consulted: it is ambiguous when another crate in the application enables
//! rustls's `aws-lc-rs` feature too (rustls then panics instead of choosing),
//! and whatever the application installed there is its own business.

use std::sync::{Arc, OnceLock};
use tracing::warn;

/// The default client configuration, built on first use and shared by
/// every connection of the process; `None` if it could not be built.
pub(crate) fn default_config() -> Option<Arc<rustls::ClientConfig>> {
    static DEFAULT: OnceLock<Option<Arc<rustls::ClientConfig>>> = OnceLock::new();
    DEFAULT
        .get_or_init(|| match build_default() {
            Ok(config) => Some(Arc::new(config)),
            Err(error) => {
                warn!(%error, "no default TLS configuration");
                None
            }
        })
        .clone()
}

/// The webpki roots, the ring provider, its safe default protocol versions.
fn build_default() -> Result<rustls::ClientConfig, rustls::Error> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_built_once_and_shared() {
        let first = default_config().expect("a default configuration");
        let second = default_config().expect("a default configuration");
        assert!(Arc::ptr_eq(&first, &second));
        assert!(!first.alpn_protocols.iter().any(|p| p == b"h2"));
    }
}
