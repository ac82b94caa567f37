//! The HTTP side of a connection: telling an upgrade from a plain page
//! request, serving the page, and translating the upgrade request and the
//! hub's rejections.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use steadfast_async::adapter_api::tungstenite::handshake::server::{ErrorResponse, Request};
use steadfast_hub::Rejection;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// The most a request head may take.
const MAX_HEAD: usize = 16 * 1024;
/// How long a client may take to send its request head.
pub(crate) const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// One page served on plain `GET` requests to its path.
#[derive(Debug, Clone)]
pub(crate) struct Page {
    pub(crate) path: String,
    pub(crate) content_type: String,
    pub(crate) body: bytes::Bytes,
}

/// A TCP stream whose first bytes were already read: they are replayed to
/// the WebSocket handshake before the rest of the stream.
#[derive(Debug)]
pub(crate) struct Replayed {
    head: Vec<u8>,
    pos: usize,
    stream: TcpStream,
}

impl AsyncRead for Replayed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.pos < self.head.len() {
            let n = buf.remaining().min(self.head.len() - self.pos);
            let start = self.pos;
            buf.put_slice(&self.head[start..start + n]);
            self.pos += n;
            if self.pos == self.head.len() {
                self.head = Vec::new();
                self.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Replayed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// What the first request on a connection is.
pub(crate) enum Sniffed {
    /// A WebSocket upgrade: hand the stream to the handshake.
    Upgrade(Replayed),
    /// A plain request, already answered.
    Answered,
}

/// Reads the request head. A WebSocket upgrade goes on to the handshake
/// (with the head replayed); a plain `GET` of the page's path gets the
/// page, anything else `404`.
pub(crate) async fn sniff(mut stream: TcpStream, page: Option<&Page>) -> io::Result<Sniffed> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    let is_upgrade = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&head) {
            Ok(httparse::Status::Complete(_)) => {
                let upgrade = req.headers.iter().any(|h| {
                    h.name.eq_ignore_ascii_case("upgrade")
                        && String::from_utf8_lossy(h.value).eq_ignore_ascii_case("websocket")
                });
                if upgrade {
                    break true;
                }
                let path = req.path.unwrap_or("/").split('?').next().unwrap_or("/");
                let page = page.filter(|p| req.method == Some("GET") && path == p.path);
                answer(&mut stream, page).await?;
                break false;
            }
            Ok(httparse::Status::Partial) if head.len() < MAX_HEAD => continue,
            _ => {
                stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await?;
                break false;
            }
        }
    };
    Ok(if is_upgrade {
        Sniffed::Upgrade(Replayed {
            head,
            pos: 0,
            stream,
        })
    } else {
        Sniffed::Answered
    })
}

async fn answer(stream: &mut TcpStream, page: Option<&Page>) -> io::Result<()> {
    let (status, content_type, body): (&str, &str, &[u8]) = match page {
        Some(page) => ("200 OK", &page.content_type, &page.body),
        None => ("404 Not Found", "text/plain", b"not found"),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.shutdown().await
}

/// The parts of an upgrade request the application decides on.
pub(crate) fn to_hub_request(req: &Request) -> steadfast_hub::Request {
    let protocols = req
        .headers()
        .get_all(http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect();
    steadfast_hub::Request {
        path: req.uri().path().to_owned(),
        query: req.uri().query().map(str::to_owned),
        headers: req
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        protocols,
    }
}

/// A rejection as the HTTP response that refuses the upgrade.
pub(crate) fn rejection_response(rejection: &Rejection) -> ErrorResponse {
    let mut response = http::Response::new(Some(rejection.reason.clone()));
    *response.status_mut() = http::StatusCode::from_u16(rejection.sent_status())
        .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        http::header::CONTENT_LENGTH,
        http::HeaderValue::from(rejection.reason.len()),
    );
    headers.insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    if let Some(secs) = rejection.retry_after_secs() {
        response
            .headers_mut()
            .insert(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
    }
    response
}
