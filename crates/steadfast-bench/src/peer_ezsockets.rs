//! ezsockets, the nearest Rust peer with reconnect and heartbeat, under the
//! same load (feature `ezsockets`). Its client connects with tungstenite's
//! default `WebSocketConfig` (128 KiB read buffer) and takes no other, so it
//! is compared against raw tokio-tungstenite at that same default.

use crate::exec::Exec;
use crate::throughput::{Load, Meter, Round, Until, collect, histogram};
use async_trait::async_trait;
use hdrhistogram::Histogram;
use std::time::Instant;
use steadfast_tokio::core::Bytes;
use tokio::sync::{mpsc, oneshot};

/// One connection's side of the load: on each echo, record the round trip
/// and send the next message from the callback, as ezsockets intends.
struct Echo {
    handle: ezsockets::Client<Echo>,
    payload: Bytes,
    until: Until,
    sent_at: Instant,
    hist: Histogram<u64>,
    connected: Option<mpsc::UnboundedSender<()>>,
    done: Option<oneshot::Sender<Histogram<u64>>>,
}

impl Echo {
    fn send_next(&mut self) -> Result<(), ezsockets::Error> {
        if self.until.more(self.hist.len() as usize) {
            self.sent_at = Instant::now();
            self.handle.binary(self.payload.clone())?;
        } else if let Some(done) = self.done.take() {
            let _ = done.send(std::mem::replace(&mut self.hist, histogram()));
        }
        Ok(())
    }
}

#[async_trait]
impl ezsockets::ClientExt for Echo {
    /// Start sending until this.
    type Call = Until;

    async fn on_text(&mut self, _text: ezsockets::Utf8Bytes) -> Result<(), ezsockets::Error> {
        Ok(())
    }

    async fn on_binary(&mut self, _bytes: Bytes) -> Result<(), ezsockets::Error> {
        let _ = self.hist.record(self.sent_at.elapsed().as_micros() as u64);
        self.send_next()
    }

    async fn on_call(&mut self, until: Until) -> Result<(), ezsockets::Error> {
        self.until = until;
        self.send_next()
    }

    async fn on_connect(&mut self) -> Result<(), ezsockets::Error> {
        if let Some(connected) = self.connected.take() {
            let _ = connected.send(());
        }
        Ok(())
    }
}

/// One round of `load` (its `WebSocketConfig` aside: ezsockets' client
/// takes none and uses tungstenite's default). On tokio only: ezsockets
/// spawns its own tasks with `tokio::spawn`.
pub(crate) async fn round(exec: &Exec, load: &Load<'_>) -> Round {
    let Load {
        url,
        conns,
        ref payload,
        count,
        ..
    } = *load;
    let (connected_tx, mut connected_rx) = mpsc::unbounded_channel();
    let mut clients = Vec::with_capacity(conns);
    let mut done = Vec::with_capacity(conns);
    for _ in 0..conns {
        let (done_tx, done_rx) = oneshot::channel();
        let config = ezsockets::ClientConfig::new(url);
        let (payload, connected) = (payload.clone(), connected_tx.clone());
        let (handle, future) = ezsockets::connect(
            move |handle| Echo {
                handle,
                payload,
                until: Until::Count(0),
                sent_at: Instant::now(),
                hist: histogram(),
                connected: Some(connected),
                done: Some(done_tx),
            },
            config,
        )
        .await;
        let _ = connected_rx.recv().await;
        clients.push((handle, tokio::spawn(future)));
        done.push(done_rx);
    }
    let until = Until::of(count);
    let meter = Meter::start();
    for (handle, _) in &clients {
        let _ = handle.call(until);
    }
    let tasks: Vec<_> = done
        .into_iter()
        .map(|rx| exec.spawn(async move { rx.await.unwrap_or_else(|_| histogram()) }))
        .collect();
    let round = collect(meter, tasks).await;
    for (handle, future) in clients {
        let _ = handle.close(None);
        drop(handle);
        let _ = future.await;
    }
    round
}
