//! The fault proxy's faults, over a raw TCP echo upstream.

use std::time::Duration;
use steadfast_testkit::FaultProxy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, timeout};

async fn echo_upstream() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

async fn setup() -> (FaultProxy, TcpStream) {
    let proxy = FaultProxy::start(echo_upstream().await)
        .await
        .expect("proxy");
    let stream = TcpStream::connect(proxy.addr()).await.expect("connect");
    (proxy, stream)
}

async fn read_exact(s: &mut TcpStream, n: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; n];
    timeout(Duration::from_secs(5), s.read_exact(&mut buf))
        .await
        .map_err(|_| std::io::Error::other("timed out"))??;
    Ok(buf)
}

#[tokio::test]
async fn healthy_proxy_forwards_both_ways() {
    let (_proxy, mut s) = setup().await;
    s.write_all(b"hello").await.expect("write");
    assert_eq!(read_exact(&mut s, 5).await.expect("echo"), b"hello");
}

#[tokio::test]
async fn slicer_and_latency_deliver_data_intact_and_late() {
    let (proxy, mut s) = setup().await;
    proxy.update(|f| {
        f.slice = Some(3);
        f.latency = Duration::from_millis(50);
    });
    let payload: Vec<u8> = (0..200u8).collect();
    let start = Instant::now();
    s.write_all(&payload).await.expect("write");
    assert_eq!(
        read_exact(&mut s, payload.len()).await.expect("echo"),
        payload
    );
    assert!(
        start.elapsed() >= Duration::from_millis(100),
        "latency applied each way"
    );
}

#[tokio::test]
async fn blackhole_swallows_traffic_until_lifted() {
    let (proxy, mut s) = setup().await;
    proxy.set_blackhole(true);
    s.write_all(b"lost").await.expect("write");
    let mut buf = [0u8; 4];
    assert!(
        timeout(Duration::from_millis(300), s.read_exact(&mut buf))
            .await
            .is_err(),
        "blackholed data arrived"
    );
    proxy.set_blackhole(false);
    s.write_all(b"back").await.expect("write");
    assert_eq!(read_exact(&mut s, 4).await.expect("echo"), b"back");
}

#[tokio::test]
async fn stalled_direction_holds_data_until_the_stall_lifts() {
    let (proxy, mut s) = setup().await;
    proxy.update(|f| f.stall_up = true);
    s.write_all(b"held").await.expect("write");
    let mut buf = [0u8; 4];
    assert!(
        timeout(Duration::from_millis(300), s.read_exact(&mut buf))
            .await
            .is_err()
    );
    proxy.update(|f| f.stall_up = false);
    assert_eq!(read_exact(&mut s, 4).await.expect("released"), b"held");
}

#[tokio::test]
async fn reset_all_resets_open_connections() {
    let (proxy, mut s) = setup().await;
    s.write_all(b"x").await.expect("write");
    read_exact(&mut s, 1).await.expect("echo");
    proxy.reset_all();
    let mut buf = [0u8; 1];
    let read = timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("reset arrives");
    assert!(
        matches!(&read, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
        "expected RST, got {read:?}"
    );
}

#[tokio::test]
async fn cut_after_n_bytes_resets_the_connection() {
    let (proxy, mut s) = setup().await;
    proxy.update(|f| f.cut_after = Some(10));
    s.write_all(&[1u8; 50]).await.expect("write");
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    let end = timeout(Duration::from_secs(5), async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) => return Ok(()),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => return Err(e),
            }
        }
    })
    .await
    .expect("the cut arrives");
    assert!(got.len() <= 10, "more than the cut crossed: {}", got.len());
    assert!(end.is_err(), "expected a reset");
}

#[tokio::test]
async fn down_proxy_refuses_new_connections() {
    let proxy = FaultProxy::start(echo_upstream().await)
        .await
        .expect("proxy");
    proxy.set_down(true);
    let mut s = TcpStream::connect(proxy.addr()).await.expect("tcp accept");
    let mut buf = [0u8; 1];
    let read = timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("refusal arrives");
    assert!(read.is_err() || matches!(read, Ok(0)), "{read:?}");
}

#[tokio::test]
async fn bandwidth_limit_slows_transfers() {
    let (proxy, mut s) = setup().await;
    proxy.update(|f| f.bandwidth = Some(10_000)); // 10 kB/s each way
    let start = Instant::now();
    s.write_all(&[7u8; 2_000]).await.expect("write");
    read_exact(&mut s, 2_000).await.expect("echo");
    assert!(
        start.elapsed() >= Duration::from_millis(200),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn slow_close_holds_the_servers_fin() {
    let upstream = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = upstream.local_addr().expect("addr");
    tokio::spawn(async move {
        if let Ok((s, _)) = upstream.accept().await {
            drop(s); // the server closes at once
        }
    });
    let proxy = FaultProxy::start(addr).await.expect("proxy");
    proxy.update(|f| f.slow_close = Duration::from_millis(300));
    let mut s = TcpStream::connect(proxy.addr()).await.expect("connect");
    let start = Instant::now();
    let mut buf = [0u8; 1];
    let read = timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("FIN arrives");
    assert!(matches!(read, Ok(0)));
    assert!(
        start.elapsed() >= Duration::from_millis(250),
        "{:?}",
        start.elapsed()
    );
}
