//! Every adapter conformance scenario of steadfast-testkit, against steadfast-tokio.

use futures_util::future::BoxFuture;
use std::time::Duration;
use steadfast_testkit::{Adapter, AdapterHandle, EventStream, StartOptions};
use steadfast_tokio::core::{
    AckError, CloseCode, CloseError, Message, MessageId, SendError, State, Stats,
};
use steadfast_tokio::{Builder, Handle, default_websocket_config};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

struct Tokio;

/// The adapter's handle, wrapped to implement the testkit's trait.
#[derive(Clone)]
struct TokioHandle(Handle);

impl Adapter for Tokio {
    type Handle = TokioHandle;

    fn start(&self, options: StartOptions) -> (TokioHandle, EventStream) {
        let ws_config = default_websocket_config()
            .max_message_size(options.max_message_size.or(Some(64 << 20)));
        let mut request = options
            .url
            .as_str()
            .into_client_request()
            .expect("valid url");
        if !options.subprotocols.is_empty() {
            let offered = options.subprotocols.join(", ");
            request.headers_mut().insert(
                http::header::SEC_WEBSOCKET_PROTOCOL,
                offered.parse().expect("valid subprotocols"),
            );
        }
        let mut builder = Builder::new(request)
            .expect("valid request")
            .config(options.config)
            .websocket_config(ws_config);
        if let Some(tls) = options.tls {
            builder = builder.tls_config(tls);
        }
        let (handle, events) = builder.connect();
        (TokioHandle(handle), Box::pin(events))
    }
}

impl AdapterHandle for TokioHandle {
    fn send(&self, msg: Message) -> Result<MessageId, SendError> {
        self.0.send(msg)
    }
    fn ack(&self, id: MessageId) -> Result<(), AckError> {
        self.0.ack(id)
    }
    fn set_online(&self, online: bool) {
        self.0.set_online(online)
    }
    fn state(&self) -> State {
        self.0.state()
    }
    fn stats(&self) -> Stats {
        self.0.stats()
    }
    fn close(&self, code: CloseCode, reason: &str) -> BoxFuture<'static, Result<(), CloseError>> {
        let (handle, reason) = (self.0.clone(), reason.to_owned());
        Box::pin(async move { handle.close(code, &reason).await })
    }
    fn close_when_delivered(
        &self,
        code: CloseCode,
        reason: &str,
        within: Duration,
    ) -> BoxFuture<'static, Result<(), CloseError>> {
        let (handle, reason) = (self.0.clone(), reason.to_owned());
        Box::pin(async move { handle.close_when_delivered(code, &reason, within).await })
    }
}

steadfast_testkit::conformance_tests!(Tokio);
