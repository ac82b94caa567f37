//! Certificates for `wss://` tests: a certificate authority generated in
//! the process, leaf certificates it signs, and rustls configurations for
//! both ends, all on the ring provider (named explicitly, never the
//! process default).
//!
//! ```no_run
//! use steadfast_testkit::{Behaviour, Server, TestCa};
//!
//! # async fn run() -> std::io::Result<()> {
//! let ca = TestCa::new()?;
//! let server = Server::start_tls(Behaviour::serve(), ca.server_config(&["127.0.0.1"])?).await?;
//! // server.url() is wss://127.0.0.1:PORT/; a client trusts ca.client_config().
//! # let _ = (server, ca.client_config());
//! # Ok(()) }
//! ```

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::io;
use std::sync::Arc;

/// The ring provider, named explicitly: these configurations work whatever
/// provider the process installed as its default.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A certificate authority for one test: a self-signed CA certificate, the
/// key that signs leaf certificates, and a client configuration that
/// trusts it (and nothing else).
pub struct TestCa {
    cert: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
    client_config: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

impl TestCa {
    /// A fresh CA with its own key.
    pub fn new() -> io::Result<TestCa> {
        let key = KeyPair::generate().map_err(io::Error::other)?;
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "steadfast test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).map_err(io::Error::other)?;
        let cert = cert.der().clone();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert.clone()).map_err(io::Error::other)?;
        let client_config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(TestCa {
            cert,
            issuer: Issuer::new(params, key),
            client_config: Arc::new(client_config),
        })
    }

    /// The CA certificate (DER), for a client to trust.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    /// A client configuration that trusts this CA alone, on the ring provider.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        self.client_config.clone()
    }

    /// A server configuration presenting a new leaf certificate, signed by
    /// this CA, for `names` (DNS names or IP addresses, e.g. `"localhost"`,
    /// `"127.0.0.1"`).
    pub fn server_config(&self, names: &[&str]) -> io::Result<Arc<rustls::ServerConfig>> {
        let key = KeyPair::generate().map_err(io::Error::other)?;
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).map_err(io::Error::other)?;
        params
            .distinguished_name
            .push(DnType::CommonName, "steadfast test server");
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf = params
            .signed_by(&key, &self.issuer)
            .map_err(io::Error::other)?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_no_client_auth()
            .with_single_cert(vec![leaf.der().clone()], key)
            .map_err(io::Error::other)?;
        Ok(Arc::new(config))
    }
}
