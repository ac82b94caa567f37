//! The TLS client configuration for `wss://`: the application's own
//! (an adapter's `Builder::tls_config`), or a default
//! built here once per process, with the webpki roots and the ring
//! provider named explicitly. The process-default `CryptoProvider` is never
//! consulted: it is ambiguous when another crate in the application enables
//! rustls's `aws-lc-rs` feature too (rustls then panics instead of choosing),
//! and whatever the application installed there is its own business.

#[cfg(feature = "rustls")]
use std::sync::{Arc, OnceLock};
#[cfg(feature = "rustls")]
use tracing::warn;

/// The TLS client configuration a connection attempt uses for `wss://`,
/// resolved per attempt: the application's own, or the default (the
/// webpki roots, on the ring provider). An adapter hands it to its TLS
/// connector.
#[derive(Clone, Default)]
pub struct Tls {
    #[cfg(feature = "rustls")]
    config: Option<Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").finish_non_exhaustive()
    }
}

impl Tls {
    /// `wss://` with this configuration.
    #[cfg(feature = "rustls")]
    pub fn rustls(config: Arc<rustls::ClientConfig>) -> Self {
        Tls {
            config: Some(config),
        }
    }

    /// The configuration for `wss://`, if any (none: `ws://`, or no TLS
    /// could be configured, which fails a `wss://` attempt as a TLS error).
    #[cfg(feature = "rustls")]
    pub fn config(&self) -> Option<&Arc<rustls::ClientConfig>> {
        self.config.as_ref()
    }

    /// What an attempt on `uri` uses: for `wss://`, `own` or the default.
    pub fn for_uri(uri: &http::Uri, own: &Tls) -> Tls {
        let secure = matches!(
            tungstenite::client::uri_mode(uri),
            Ok(tungstenite::stream::Mode::Tls)
        );
        if !secure {
            return Tls::default();
        }
        #[cfg(feature = "rustls")]
        if own.config.is_none() {
            return Tls {
                config: default_config(),
            };
        }
        own.clone()
    }
}

/// The default client configuration, built on first use and shared by
/// every connection of the process; `None` if it could not be built.
#[cfg(feature = "rustls")]
pub fn default_config() -> Option<Arc<rustls::ClientConfig>> {
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
#[cfg(feature = "rustls")]
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

#[cfg(all(test, feature = "rustls"))]
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
