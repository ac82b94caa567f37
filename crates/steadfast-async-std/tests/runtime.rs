//! The async-io [`Runtime`] under both executors: every scenario runs once
//! under `async_std::task::block_on` with [`AsyncStd`] and once under
//! `smol::block_on` with [`Smol`]. The testkit's servers run on a tokio
//! runtime of their own (on its worker threads), as a remote peer would.

#![allow(clippy::unwrap_used)]

use futures_util::future::{self, Either};
use futures_util::{SinkExt, StreamExt};
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;
use steadfast_async::{Runtime, Tls};
use steadfast_testkit::{Behaviour, Server, TestCa};
use tungstenite::client::IntoClientRequest;
use tungstenite::error::UrlError;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Error, Message};

/// How long any one step may take before the test fails: generous, since
/// the machine is shared. Nothing asserts how fast a step was.
const LIMIT: Duration = Duration::from_secs(10);

/// A testkit server and the tokio runtime it runs on (the server is
/// dropped first: fields drop in order).
struct Remote {
    server: Server,
    _rt: tokio::runtime::Runtime,
}

impl Remote {
    fn plain() -> Remote {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let server = rt.block_on(Server::start(Behaviour::serve())).unwrap();
        Remote { server, _rt: rt }
    }

    fn tls(config: Arc<rustls::ServerConfig>) -> Remote {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let server = rt
            .block_on(Server::start_tls(Behaviour::serve(), config))
            .unwrap();
        Remote { server, _rt: rt }
    }

    fn url(&self) -> String {
        self.server.url()
    }
}

/// `f`'s output, or a panic once [`LIMIT`] has passed.
async fn within<F: Future>(f: F) -> F::Output {
    match future::select(pin!(f), async_io::Timer::after(LIMIT)).await {
        Either::Left((out, _)) => out,
        Either::Right(_) => panic!("not done within {LIMIT:?}"),
    }
}

async fn connect<R: Runtime>(url: &str, tls: Tls) -> Result<R::Socket, Error> {
    let request = url.into_client_request()?;
    let (socket, _response) = within(R::connect(request, WebSocketConfig::default(), tls)).await?;
    Ok(socket)
}

/// Send a text frame and read its echo back.
async fn echo<R: Runtime>(socket: &mut R::Socket, text: &str) {
    within(socket.send(Message::text(text))).await.unwrap();
    loop {
        match within(socket.next()).await {
            Some(Ok(Message::Text(echoed))) => {
                assert_eq!(echoed.as_str(), text);
                return;
            }
            Some(Ok(_)) => continue,
            other => panic!("expected the echo, got {other:?}"),
        }
    }
}

async fn echoes_over_ws<R: Runtime>() {
    let remote = Remote::plain();
    let mut socket = connect::<R>(&remote.url(), Tls::default()).await.unwrap();
    echo::<R>(&mut socket, "hello over ws").await;
    within(socket.close()).await.unwrap();
}

async fn echoes_over_wss<R: Runtime>() {
    let ca = TestCa::new().unwrap();
    let remote = Remote::tls(ca.server_config(&["127.0.0.1"]).unwrap());
    assert!(remote.url().starts_with("wss://"));
    let mut socket = connect::<R>(&remote.url(), Tls::rustls(ca.client_config()))
        .await
        .unwrap();
    echo::<R>(&mut socket, "hello over wss").await;
    within(socket.close()).await.unwrap();
}

async fn refuses_an_untrusted_certificate<R: Runtime>() {
    let server_ca = TestCa::new().unwrap();
    let other_ca = TestCa::new().unwrap();
    let remote = Remote::tls(server_ca.server_config(&["127.0.0.1"]).unwrap());
    match connect::<R>(&remote.url(), Tls::rustls(other_ca.client_config())).await {
        Err(Error::Io(e)) => assert!(
            e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()),
            "not a rustls error inside: {e:?}"
        ),
        Err(other) => panic!("expected an I/O error wrapping rustls's, got {other:?}"),
        Ok(_) => panic!("connected to a server the client does not trust"),
    }
}

async fn wss_without_a_configuration_fails<R: Runtime>() {
    let ca = TestCa::new().unwrap();
    let remote = Remote::tls(ca.server_config(&["127.0.0.1"]).unwrap());
    match connect::<R>(&remote.url(), Tls::default()).await {
        Err(Error::Url(UrlError::TlsFeatureNotEnabled)) => {}
        Err(other) => panic!("expected TlsFeatureNotEnabled, got {other:?}"),
        Ok(_) => panic!("connected over wss without a TLS configuration"),
    }
}

async fn fails_on_an_unsupported_scheme<R: Runtime>() {
    let request = "http://127.0.0.1:1/".into_client_request().unwrap();
    match within(R::connect(
        request,
        WebSocketConfig::default(),
        Tls::default(),
    ))
    .await
    {
        Err(Error::Url(UrlError::UnsupportedUrlScheme)) => {}
        Err(other) => panic!("expected UnsupportedUrlScheme, got {other:?}"),
        Ok(_) => panic!("connected over http"),
    }
}

async fn timer_fires_at_its_instant<R: Runtime>() {
    let at = R::now() + Duration::from_millis(30);
    within(R::timer(at)).await;
    assert!(R::now() >= at);
}

async fn reset_moves_the_timer<R: Runtime>() {
    // Later: armed for an hour, moved to 30 ms from now.
    let mut timer = pin!(R::timer(R::now() + Duration::from_secs(3600)));
    let at = R::now() + Duration::from_millis(30);
    R::reset(timer.as_mut(), at);
    within(timer.as_mut()).await;
    assert!(R::now() >= at);

    // A fired timer stays fired until it is reset.
    within(timer.as_mut()).await;

    // Re-armed after firing, and moved later before it fires.
    R::reset(timer.as_mut(), R::now() + Duration::from_millis(10));
    let later = R::now() + Duration::from_millis(80);
    R::reset(timer.as_mut(), later);
    within(timer.as_mut()).await;
    assert!(R::now() >= later);
}

/// A task spawned with `R::spawn` (from outside any executor) runs to
/// completion: it waits on a timer and echoes over a socket, so the
/// reactor drives it wherever the executor runs it.
fn spawn_runs_a_task<R: Runtime>() {
    let remote = Remote::plain();
    let url = remote.url();
    let (done, finished) = std::sync::mpsc::channel();
    R::spawn(async move {
        within(R::timer(R::now() + Duration::from_millis(10))).await;
        let mut socket = connect::<R>(&url, Tls::default()).await.unwrap();
        echo::<R>(&mut socket, "from a spawned task").await;
        done.send(()).unwrap();
    });
    finished
        .recv_timeout(LIMIT)
        .expect("the spawned task did not finish");
}

/// Each scenario as a test under each executor.
macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        mod async_std_runtime {
            use steadfast_async_std::AsyncStd;
            $(
                #[test]
                fn $name() {
                    async_std::task::block_on(super::$name::<AsyncStd>());
                }
            )*
            #[test]
            fn spawn_runs_a_task() {
                super::spawn_runs_a_task::<AsyncStd>();
            }
        }
        mod smol_runtime {
            use steadfast_async_std::Smol;
            $(
                #[test]
                fn $name() {
                    smol::block_on(super::$name::<Smol>());
                }
            )*
            #[test]
            fn spawn_runs_a_task() {
                super::spawn_runs_a_task::<Smol>();
            }
        }
    };
}

scenarios!(
    echoes_over_ws,
    echoes_over_wss,
    refuses_an_untrusted_certificate,
    wss_without_a_configuration_fails,
    fails_on_an_unsupported_scheme,
    timer_fires_at_its_instant,
    reset_moves_the_timer,
);
