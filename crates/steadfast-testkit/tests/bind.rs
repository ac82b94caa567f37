//! The server and the proxy on addresses the caller chooses (the `steadfast`
//! command's `serve --listen` and `proxy --listen`).

use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::time::Duration;
use steadfast_testkit::{Behaviour, FaultProxy, Server};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

/// A port that was free a moment ago (bound to 0, then released).
fn free_port() -> SocketAddr {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a probe");
    probe.local_addr().expect("probe address")
}

async fn echo_once(url: &str) -> String {
    let (mut ws, _) = timeout(
        Duration::from_secs(5),
        tokio_tungstenite::connect_async(url),
    )
    .await
    .expect("connect in time")
    .expect("handshake");
    ws.send(Message::text("hello")).await.expect("send");
    loop {
        match timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return t.as_str().to_owned(),
            Ok(Some(Ok(_))) => continue,
            other => panic!("no echo: {other:?}"),
        }
    }
}

#[tokio::test]
async fn server_and_proxy_listen_on_the_chosen_ports() {
    let server_addr = free_port();
    let mut server = Server::start_at(
        server_addr,
        Behaviour::Serve {
            echo: true,
            ack: false,
        },
    )
    .await
    .expect("server on the chosen port");
    assert_eq!(server.addr(), server_addr);
    assert_eq!(server.url(), format!("ws://{server_addr}/"));

    let proxy_addr = free_port();
    let proxy = FaultProxy::start_at(proxy_addr, server.addr())
        .await
        .expect("proxy on the chosen port");
    assert_eq!(proxy.addr(), proxy_addr);
    assert_eq!(echo_once(&proxy.url()).await, "hello");

    // A restart keeps the chosen port.
    server.restart().await.expect("restart");
    assert_eq!(server.addr(), server_addr);
    assert_eq!(echo_once(&server.url()).await, "hello");
}

#[tokio::test]
async fn port_zero_still_picks_an_ephemeral_port() {
    let server = Server::start_at(SocketAddr::from(([127, 0, 0, 1], 0)), Behaviour::serve())
        .await
        .expect("server");
    assert_ne!(server.addr().port(), 0);
}

#[tokio::test]
async fn a_restart_waits_for_a_port_held_for_a_moment() {
    let mut server = Server::start(Behaviour::serve()).await.expect("server");
    let addr = server.addr();
    server.stop().await;
    // Something else takes the port while the server is down...
    let squatter = std::net::TcpListener::bind(addr).expect("take the port");
    let released = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        drop(squatter);
    });
    // ...and lets it go: the restart gets it back.
    server
        .restart()
        .await
        .expect("listening again once the port is free");
    released.await.expect("released");
    assert_eq!(server.addr(), addr);
    assert_eq!(echo_once(&server.url()).await, "hello");
}
