//! Where each attempt's handshake request comes from: a fixed request, or an
//! application function called once per attempt (so tokens stay fresh).

use futures_util::future::BoxFuture;
use std::future::Future;
use std::sync::Arc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;

/// An error the application's request provider returns.
pub type ProviderError = Box<dyn std::error::Error + Send + Sync + 'static>;

type ProviderFn = dyn Fn() -> BoxFuture<'static, Result<Request, ProviderError>> + Send + Sync;

/// Builds the handshake request for every connection attempt.
#[derive(Clone)]
pub struct RequestProvider {
    inner: Arc<ProviderFn>,
}

impl std::fmt::Debug for RequestProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Requests carry credentials: never print them.
        f.write_str("RequestProvider(..)")
    }
}

impl RequestProvider {
    /// The same request for every attempt.
    pub fn fixed(request: Request) -> Self {
        RequestProvider::from_fn(move || {
            let request = request.clone();
            async move { Ok(request) }
        })
    }

    /// An async function called once per attempt, e.g. to fetch a fresh token:
    ///
    /// ```
    /// use steadfast_tokio::RequestProvider;
    /// use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    ///
    /// let provider = RequestProvider::from_fn(|| async {
    ///     let token = "fresh-token"; // fetched per attempt in real code
    ///     let mut req = "ws://127.0.0.1:9/chat?id=1".into_client_request()?;
    ///     req.headers_mut().insert("authorization", format!("Bearer {token}").parse()?);
    ///     Ok(req)
    /// });
    /// # let _ = provider;
    /// ```
    pub fn from_fn<F, Fut>(f: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Request, ProviderError>> + Send + 'static,
    {
        RequestProvider {
            inner: Arc::new(move || Box::pin(f())),
        }
    }

    pub(crate) fn request(&self) -> BoxFuture<'static, Result<Request, ProviderError>> {
        (self.inner)()
    }
}

/// The target of a connection, for logs: scheme, host, port and path only.
/// The query and every header are left out, because they may carry tokens.
pub(crate) fn loggable_target(request: &Request) -> String {
    let uri = request.uri();
    format!(
        "{}://{}{}",
        uri.scheme_str().unwrap_or("ws"),
        uri.authority()
            .map_or("", |a| a.as_str().rsplit('@').next().unwrap_or("")),
        uri.path()
    )
}

/// Turns a URL or request into a fixed provider.
pub(crate) fn fixed<R: IntoClientRequest>(
    request: R,
) -> Result<RequestProvider, tokio_tungstenite::tungstenite::Error> {
    Ok(RequestProvider::fixed(request.into_client_request()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logged_target_leaves_out_query_userinfo_and_headers() {
        let mut req = "ws://user:secret@example.test:8080/chat?token=abc"
            .into_client_request()
            .expect("valid");
        req.headers_mut()
            .insert("authorization", "Bearer xyz".parse().expect("header"));
        let shown = loggable_target(&req);
        assert_eq!(shown, "ws://example.test:8080/chat");
        assert!(!format!("{:?}", RequestProvider::fixed(req)).contains("xyz"));
    }
}
