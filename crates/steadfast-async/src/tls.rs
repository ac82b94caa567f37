//! The TLS configuration a connection is handed.

/// The TLS client configuration a connection uses for `wss://` (resolved by the engine: the application's own, or a default with the webpki roots on the ring provider).
#[derive(Clone, Default)]
pub struct Tls {
    #[cfg(feature = "rustls")]
    config: Option<std::sync::Arc<rustls::ClientConfig>>,
}
impl Tls {
    /// For `wss://`, this configuration.
    #[cfg(feature = "rustls")]
    pub fn rustls(config: std::sync::Arc<rustls::ClientConfig>) -> Self {
        Tls {
            config: Some(config),
        }
    }
    /// The configuration for `wss://`, if any (none: `ws://`, or TLS unavailable).
    #[cfg(feature = "rustls")]
    pub fn config(&self) -> Option<&std::sync::Arc<rustls::ClientConfig>> {
        self.config.as_ref()
    }
}
