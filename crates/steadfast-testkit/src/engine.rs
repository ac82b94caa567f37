//! The conformance [`Adapter`] for every adapter built on the
//! `steadfast-async` engine, whatever its runtime: `Engine::<Tokio>::new()`,
//! `Engine::<Smol>::new()`, ...

use crate::adapter::{Adapter, AdapterHandle, EventStream, StartOptions};
use futures_util::future::BoxFuture;
use std::marker::PhantomData;
use std::time::Duration;
use steadfast_async::{Builder, Handle, Runtime, default_websocket_config};
use steadfast_core::{
    AckError, CloseCode, CloseError, Message, MessageId, SendError, State, Stats,
};

/// Starts connections on the engine with runtime `R`.
#[derive(Debug)]
pub struct Engine<R>(PhantomData<fn() -> R>);

impl<R> Engine<R> {
    /// The adapter for runtime `R`.
    pub fn new() -> Self {
        Engine(PhantomData)
    }
}

impl<R> Default for Engine<R> {
    fn default() -> Self {
        Engine::new()
    }
}

/// The engine's handle, wrapped to implement the testkit's trait.
#[derive(Debug)]
pub struct EngineHandle<R: Runtime>(pub Handle<R>);

impl<R: Runtime> Clone for EngineHandle<R> {
    fn clone(&self) -> Self {
        EngineHandle(self.0.clone())
    }
}

impl<R: Runtime> Adapter for Engine<R> {
    type Handle = EngineHandle<R>;

    fn start(&self, options: StartOptions) -> (EngineHandle<R>, EventStream) {
        let ws_config = default_websocket_config()
            .max_message_size(options.max_message_size.or(Some(64 << 20)));
        let mut builder = Builder::<R>::new(options.url.as_str())
            .unwrap_or_else(|e| panic!("invalid url {}: {e}", options.url))
            .config(options.config)
            .websocket_config(ws_config);
        if !options.subprotocols.is_empty() {
            let offered: Vec<&str> = options.subprotocols.iter().map(String::as_str).collect();
            builder = builder
                .subprotocols(&offered)
                .unwrap_or_else(|e| panic!("invalid subprotocols: {e}"));
        }
        if let Some(tls) = options.tls {
            builder = builder.tls_config(tls);
        }
        let (handle, events) = builder.connect();
        (EngineHandle(handle), Box::pin(events))
    }
}

impl<R: Runtime> AdapterHandle for EngineHandle<R> {
    fn send(&self, msg: Message) -> Result<MessageId, SendError> {
        self.0.send(msg)
    }
    fn ack(&self, id: MessageId) -> Result<(), AckError> {
        self.0.ack(id)
    }
    fn send_keyed(&self, key: u64, msg: Message) -> Result<MessageId, SendError> {
        self.0.send_keyed(key, msg)
    }
    fn request(
        &self,
        key: u64,
        msg: Message,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Message, steadfast_async::RequestError>> {
        let handle = self.0.clone();
        Box::pin(async move { handle.request(key, msg, timeout).await })
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
        Box::pin(async move { handle.close_with(code, &reason).await })
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
