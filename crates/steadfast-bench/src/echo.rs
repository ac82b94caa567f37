//! The echo server both clients talk to: tungstenite on a current-thread runtime.

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;

pub(crate) fn serve(port: u16) {
    let rt = crate::runtime();
    rt.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
        println!("{}", listener.local_addr().expect("addr"));
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                let (mut tx, mut rx) = ws.split();
                while let Some(Ok(msg)) = rx.next().await {
                    if (msg.is_text() || msg.is_binary()) && tx.send(msg).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
}
