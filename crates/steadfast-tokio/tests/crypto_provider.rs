//! `wss://` does not depend on the process-default rustls `CryptoProvider`.
//!
//! An application that also enables rustls's `aws-lc-rs` feature has two
//! providers compiled in, and rustls then cannot pick a process default:
//! building a configuration from it panics. Here the process default is a
//! provider that cannot work at all (no cipher suites), installed before
//! any connection: steadfast must not consult it. Its own binary, since
//! the process default is global.

use futures_util::StreamExt;
use std::time::Duration;
use steadfast_testkit::{Behaviour, Server, TestCa};
use steadfast_tokio::core::{Error, Event, Message, State};
use steadfast_tokio::rustls::crypto::{CryptoProvider, ring};
use steadfast_tokio::{Builder, Events};

/// Install a process-default provider with no cipher suites: any
/// configuration built from it fails (rustls's `ClientConfig::builder()`
/// panics). Every test installs it; the first one wins.
fn install_a_broken_default() {
    let broken = CryptoProvider {
        cipher_suites: Vec::new(),
        ..ring::default_provider()
    };
    let _ = broken.install_default();
    let installed = CryptoProvider::get_default().expect("a process default");
    assert!(installed.cipher_suites.is_empty());
}

async fn tls_server(ca: &TestCa) -> Server {
    let config = ca
        .server_config(&["localhost", "127.0.0.1"])
        .expect("server certificate");
    Server::start_tls(Behaviour::serve(), config)
        .await
        .expect("TLS server")
}

/// Every event until the stream ends or `until` holds for one (included).
async fn events_until(events: &mut Events, until: impl Fn(&Event) -> bool) -> Vec<Event> {
    let mut seen = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(15), async {
        while let Some(ev) = events.next().await {
            let done = until(&ev);
            seen.push(ev);
            if done {
                break;
            }
        }
    })
    .await;
    seen
}

/// The default configuration (webpki roots) is built with its own
/// provider: against a server whose CA it does not know, the attempt fails
/// as a typed, fatal TLS error instead of a panic in the driver (which
/// ended the events with no `Failed` and left the state `Connecting`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_tls_config_ignores_a_broken_process_default_provider() {
    install_a_broken_default();
    let ca = TestCa::new().expect("CA");
    let server = tls_server(&ca).await;
    let (handle, mut events) = Builder::new(server.url()).expect("url").connect();
    let seen = events_until(&mut events, |e| matches!(e, Event::Failed { .. })).await;
    let error = seen.iter().find_map(|e| match e {
        Event::Failed { error, .. } => Some(error.clone()),
        _ => None,
    });
    assert_eq!(error, Some(Error::Tls), "events: {seen:?}");
    assert_eq!(handle.state(), State::Failed);
    assert_eq!(handle.stats().attempts, 1);
    assert_eq!(server.connections(), 1);
}

/// With the application's configuration (trusting the local CA, built
/// with an explicit provider) the connection opens and echoes, whatever
/// the process default is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_opens_and_echoes_despite_a_broken_process_default_provider() {
    install_a_broken_default();
    let ca = TestCa::new().expect("CA");
    let server = tls_server(&ca).await;
    let (handle, mut events) = Builder::new(server.url())
        .expect("url")
        .tls_config(ca.client_config())
        .connect();
    handle.send(Message::text("hello")).expect("queued");
    let seen = events_until(&mut events, |e| matches!(e, Event::Message(_))).await;
    assert!(
        seen.contains(&Event::Message(Message::text("hello"))),
        "no echo; events: {seen:?}"
    );
    assert_eq!(handle.state(), State::Open);
}
