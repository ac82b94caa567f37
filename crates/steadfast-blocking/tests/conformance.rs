//! The whole conformance suite against steadfast-blocking, in both modes,
//! over real loopback sockets. The testkit's `Adapter` trait is async; the
//! bridge here is threads: the connection's own I/O stays blocking, and a
//! thread forwards its events into a channel the scenarios read as a stream.

use futures_channel::{mpsc, oneshot};
use futures_util::future::BoxFuture;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use steadfast_blocking::RequestError;
use steadfast_blocking::core::{
    AckError, CloseCode, CloseError, Message, MessageId, SendError, State, Stats,
};
use steadfast_blocking::{Builder, Status, default_websocket_config};
use steadfast_testkit::{Adapter, AdapterHandle, EventStream, StartOptions};

/// The builder for a scenario's options.
fn builder(options: StartOptions) -> Builder {
    let ws_config =
        default_websocket_config().max_message_size(options.max_message_size.or(Some(64 << 20)));
    let mut builder = Builder::new(options.url.as_str())
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
    builder
}

/// Run `f` on a thread of its own; resolves with its result.
fn off_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> BoxFuture<'static, T> {
    let (tx, rx) = oneshot::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    Box::pin(async move { rx.await.expect("the closing thread ended") })
}

/// Background mode: `Builder::spawn`, events forwarded by a thread.
struct Background;

#[derive(Clone)]
struct BackgroundHandle(steadfast_blocking::Handle);

impl Adapter for Background {
    type Handle = BackgroundHandle;

    fn start(&self, options: StartOptions) -> (BackgroundHandle, EventStream) {
        let (handle, events) = builder(options).spawn().expect("spawn");
        let (tx, rx) = mpsc::unbounded();
        std::thread::spawn(move || {
            for ev in events {
                if tx.unbounded_send(ev).is_err() {
                    return;
                }
            }
        });
        (BackgroundHandle(handle), Box::pin(rx))
    }
}

impl AdapterHandle for BackgroundHandle {
    fn send(&self, msg: Message) -> Result<MessageId, SendError> {
        self.0.send(msg)
    }
    fn send_keyed(&self, key: u64, msg: Message) -> Result<MessageId, SendError> {
        self.0.send_keyed(key, msg)
    }
    fn request(
        &self,
        key: u64,
        msg: Message,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Message, RequestError>> {
        let handle = self.0.clone();
        off_thread(move || handle.request(key, msg, timeout))
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
        off_thread(move || handle.close_with(code, &reason))
    }
    fn close_when_delivered(
        &self,
        code: CloseCode,
        reason: &str,
        within: Duration,
    ) -> BoxFuture<'static, Result<(), CloseError>> {
        let (handle, reason) = (self.0.clone(), reason.to_owned());
        off_thread(move || handle.close_when_delivered(code, &reason, within))
    }
}

/// Caller-driven mode: a thread owns the `Connection` and calls
/// `next_event` in a loop, forwarding events; commands reach it through a
/// channel it drains between calls, so in this bridge a command waits up
/// to `TURN` for the call under way to end (caller-driven mode has no
/// waker: the caller owns the thread). State and counters are read from a
/// snapshot the thread keeps.
struct CallerDriven;

/// How long the bridge's thread waits in one `next_event`.
const TURN: Duration = Duration::from_millis(10);

enum Command {
    Send(
        Message,
        std::sync::mpsc::Sender<Result<MessageId, SendError>>,
    ),
    Ack(MessageId, std::sync::mpsc::Sender<Result<(), AckError>>),
    SendKeyed(
        u64,
        Message,
        std::sync::mpsc::Sender<Result<MessageId, SendError>>,
    ),
    Request(
        u64,
        Message,
        Duration,
        oneshot::Sender<Result<Message, RequestError>>,
    ),
    SetOnline(bool, std::sync::mpsc::Sender<()>),
    Close {
        code: CloseCode,
        reason: String,
        within: Option<Duration>,
        reply: oneshot::Sender<Result<(), CloseError>>,
    },
}

#[derive(Clone)]
struct CallerHandle(Arc<CallerInner>);

struct CallerInner {
    commands: std::sync::mpsc::Sender<Command>,
    status: Arc<Mutex<Status>>,
}

impl CallerHandle {
    fn ask<T>(&self, make: impl FnOnce(std::sync::mpsc::Sender<T>) -> Command) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        self.0
            .commands
            .send(make(tx))
            .expect("the connection's thread ended");
        rx.recv().expect("the connection's thread ended")
    }

    fn status(&self) -> Status {
        *self.0.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn close_with(
        &self,
        code: CloseCode,
        reason: &str,
        within: Option<Duration>,
    ) -> BoxFuture<'static, Result<(), CloseError>> {
        let (reply, done) = oneshot::channel();
        let sent = self.0.commands.send(Command::Close {
            code,
            reason: reason.to_owned(),
            within,
            reply,
        });
        Box::pin(async move {
            sent.expect("the connection's thread ended");
            done.await.expect("the connection's thread ended")
        })
    }
}

impl Adapter for CallerDriven {
    type Handle = CallerHandle;

    fn start(&self, options: StartOptions) -> (CallerHandle, EventStream) {
        let mut conn = builder(options).connect();
        let status = Arc::new(Mutex::new(conn.status()));
        let (commands, inbox) = std::sync::mpsc::channel();
        let (tx, rx) = mpsc::unbounded();
        let snapshot = status.clone();
        std::thread::spawn(move || {
            let publish = |conn: &steadfast_blocking::Connection| {
                *snapshot.lock().unwrap_or_else(|p| p.into_inner()) = conn.status();
            };
            // Closes under way: answered once closed (or failed).
            let mut closing: Vec<oneshot::Sender<Result<(), CloseError>>> = Vec::new();
            loop {
                if matches!(conn.state(), State::Closed | State::Failed) {
                    for reply in closing.drain(..) {
                        let _ = reply.send(Ok(()));
                    }
                }
                // Every handle gone: close with 1000, as the other adapters do.
                let disconnected = loop {
                    match inbox.try_recv() {
                        Ok(cmd) => run(&mut conn, cmd, &publish, &mut closing),
                        Err(std::sync::mpsc::TryRecvError::Empty) => break false,
                        Err(std::sync::mpsc::TryRecvError::Disconnected) => break true,
                    }
                };
                if disconnected {
                    conn.close();
                    while let Ok(Some(ev)) = conn.next_event(Duration::from_secs(10)) {
                        publish(&conn);
                        let _ = tx.unbounded_send(ev);
                    }
                    return;
                }
                if matches!(conn.state(), State::Closed | State::Failed) {
                    // Nothing more happens but by command.
                    match inbox.recv_timeout(Duration::from_millis(50)) {
                        Ok(cmd) => run(&mut conn, cmd, &publish, &mut closing),
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {}
                    }
                }
                match conn.next_event(TURN) {
                    Ok(Some(ev)) => {
                        publish(&conn);
                        let _ = tx.unbounded_send(ev);
                    }
                    Ok(None) => publish(&conn),
                    Err(e) => panic!("next_event: {e}"),
                }
            }
        });
        (
            CallerHandle(Arc::new(CallerInner { commands, status })),
            Box::pin(rx),
        )
    }
}

/// Run a command; the snapshot is published before the reply, so the
/// caller reads the state the command left. A close is answered once closed.
fn run(
    conn: &mut steadfast_blocking::Connection,
    cmd: Command,
    publish: &impl Fn(&steadfast_blocking::Connection),
    closing: &mut Vec<oneshot::Sender<Result<(), CloseError>>>,
) {
    match cmd {
        Command::Send(msg, reply) => {
            let sent = conn.send(msg);
            publish(conn);
            let _ = reply.send(sent);
        }
        Command::Ack(id, reply) => {
            let acked = conn.ack(id);
            publish(conn);
            let _ = reply.send(acked);
        }
        Command::SendKeyed(key, msg, reply) => {
            let sent = conn.send_keyed(key, msg);
            publish(conn);
            let _ = reply.send(sent);
        }
        Command::Request(key, msg, timeout, reply) => {
            // The bridge's thread runs the connection until the reply.
            let answered = conn.request(key, msg, timeout);
            publish(conn);
            let _ = reply.send(answered);
        }
        Command::SetOnline(online, reply) => {
            conn.set_online(online);
            publish(conn);
            let _ = reply.send(());
        }
        Command::Close {
            code,
            reason,
            within,
            reply,
        } => {
            let started = match within {
                Some(within) => conn.close_when_delivered(code, &reason, within),
                None => conn.close_with(code, &reason),
            };
            publish(conn);
            match started {
                Ok(()) => closing.push(reply),
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            }
        }
    }
}

impl AdapterHandle for CallerHandle {
    fn send(&self, msg: Message) -> Result<MessageId, SendError> {
        self.ask(|reply| Command::Send(msg, reply))
    }
    fn send_keyed(&self, key: u64, msg: Message) -> Result<MessageId, SendError> {
        self.ask(|reply| Command::SendKeyed(key, msg, reply))
    }
    fn request(
        &self,
        key: u64,
        msg: Message,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Message, RequestError>> {
        let (tx, rx) = oneshot::channel();
        let sent = self
            .0
            .commands
            .send(Command::Request(key, msg, timeout, tx));
        Box::pin(async move {
            sent.map_err(|_| RequestError::Failed)?;
            rx.await.unwrap_or(Err(RequestError::Failed))
        })
    }
    fn ack(&self, id: MessageId) -> Result<(), AckError> {
        self.ask(|reply| Command::Ack(id, reply))
    }
    fn set_online(&self, online: bool) {
        self.ask(|reply| Command::SetOnline(online, reply))
    }
    fn state(&self) -> State {
        self.status().state
    }
    fn stats(&self) -> Stats {
        self.status().stats
    }
    fn close(&self, code: CloseCode, reason: &str) -> BoxFuture<'static, Result<(), CloseError>> {
        self.close_with(code, reason, None)
    }
    fn close_when_delivered(
        &self,
        code: CloseCode,
        reason: &str,
        within: Duration,
    ) -> BoxFuture<'static, Result<(), CloseError>> {
        self.close_with(code, reason, Some(within))
    }
}

mod background {
    steadfast_testkit::conformance_tests!(super::Background);
}

mod caller_driven {
    steadfast_testkit::conformance_tests!(super::CallerDriven);
}
