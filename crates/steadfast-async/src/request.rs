//! Where each attempt's handshake request comes from: a fixed request, or an
//! application function called once per attempt (so tokens stay fresh).

use futures_util::future::BoxFuture;
use std::future::Future;
use std::sync::Arc;
pub(crate) use steadfast_wire::RequestExtras;
use steadfast_wire::{InvalidRequest, ProviderError, RequestTemplate};
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::client::Request;

type ProviderFn = dyn Fn(u32) -> BoxFuture<'static, Result<Request, ProviderError>> + Send + Sync;

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
    /// The same request for every attempt, with a fresh
    /// `Sec-WebSocket-Key` each time (RFC 6455 §4.1). Only the URI and the
    /// headers the application added are kept between attempts; the ones
    /// tungstenite generates are generated anew.
    pub fn fixed(request: Request) -> Self {
        // The template lives in the provider itself: one allocation for
        // the life of the connection, each attempt's request built at once.
        let template = RequestTemplate::of(request);
        RequestProvider::from_fn(move |_| {
            std::future::ready(template.build().map_err(ProviderError::from))
        })
    }

    /// An async function called once per attempt with the attempt's number
    /// within the outage (from 1), e.g. to fetch a fresh token. Its error
    /// says whether to retry ([`ProviderError`]):
    ///
    /// ```
    /// use steadfast_async::{ProviderError, RequestProvider};
    /// use steadfast_async::tungstenite::client::IntoClientRequest;
    ///
    /// let provider = RequestProvider::from_fn(|attempt| async move {
    ///     let token = "fresh-token"; // fetched per attempt in real code
    ///     if token.is_empty() {
    ///         return Err(ProviderError::fatal("signed out"));
    ///     }
    ///     let mut req = "ws://127.0.0.1:9/chat?id=1".into_client_request()?;
    ///     req.headers_mut().insert("authorization", format!("Bearer {token}").parse()?);
    ///     req.headers_mut().insert("x-attempt", attempt.to_string().parse()?);
    ///     Ok(req)
    /// });
    /// # let _ = provider;
    /// ```
    pub fn from_fn<F, Fut>(f: F) -> Self
    where
        F: Fn(u32) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Request, ProviderError>> + Send + 'static,
    {
        RequestProvider {
            inner: Arc::new(move |attempt| Box::pin(f(attempt))),
        }
    }

    pub(crate) fn request(
        &self,
        attempt: u32,
    ) -> BoxFuture<'static, Result<Request, ProviderError>> {
        (self.inner)(attempt)
    }
}

/// Turns a URL or request into a fixed provider.
pub(crate) fn fixed<R: IntoClientRequest>(request: R) -> Result<RequestProvider, InvalidRequest> {
    Ok(RequestProvider::fixed(
        steadfast_wire::request::websocket_request(request)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::SEC_WEBSOCKET_KEY;

    #[test]
    fn a_url_no_attempt_could_use_is_refused_when_the_connection_is_built() {
        for url in ["http://example.test/", "ws:///chat", "not a url"] {
            assert!(fixed(url).is_err(), "{url}");
        }
        assert!(fixed("ws://example.test/chat").is_ok());
    }

    #[test]
    fn a_provider_never_prints_its_request() {
        let mut req = "ws://example.test/chat"
            .into_client_request()
            .expect("valid");
        req.headers_mut()
            .insert("authorization", "Bearer xyz".parse().expect("header"));
        assert!(!format!("{:?}", RequestProvider::fixed(req)).contains("xyz"));
    }

    #[tokio::test]
    async fn fixed_request_gets_a_fresh_key_per_attempt() {
        let req = "ws://127.0.0.1:9/chat?id=1"
            .into_client_request()
            .expect("valid");
        let provider = RequestProvider::fixed(req);
        let first = provider.request(1).await.expect("built");
        let second = provider.request(2).await.expect("built");
        let key = |r: &Request| r.headers()[SEC_WEBSOCKET_KEY].clone();
        assert_ne!(key(&first), key(&second), "a fresh key per attempt");
    }

    #[tokio::test]
    async fn the_provider_gets_the_attempt_number_and_its_error_says_whether_to_retry() {
        let provider = RequestProvider::from_fn(|attempt| async move {
            match attempt {
                1 => Err(ProviderError::from("token service down")),
                2 => Err(ProviderError::fatal("signed out")),
                n => Ok(format!("ws://127.0.0.1:9/?n={n}").into_client_request()?),
            }
        });
        assert!(
            provider
                .request(1)
                .await
                .expect_err("retryable")
                .is_retryable()
        );
        let fatal = provider.request(2).await.expect_err("fatal");
        assert!(!fatal.is_retryable());
        assert_eq!(fatal.source().to_string(), "signed out");
        let built = provider.request(3).await.expect("built");
        assert_eq!(built.uri().query(), Some("n=3"));
    }
}
