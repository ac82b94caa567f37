//! Where each attempt's handshake request comes from: a fixed request, or an
//! application function called once per attempt (so tokens stay fresh).

use futures_util::future::BoxFuture;
use http::header::SEC_WEBSOCKET_KEY;
use http::{HeaderMap, Uri};
use std::future::Future;
use std::sync::Arc;
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::client::Request;

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
    /// The same request for every attempt, with a fresh
    /// `Sec-WebSocket-Key` each time (RFC 6455 §4.1). Only the URI and the
    /// headers the application added are kept between attempts; the ones
    /// tungstenite generates are generated anew.
    pub fn fixed(request: Request) -> Self {
        let template = Arc::new(Template::of(request));
        RequestProvider::from_fn(move || {
            let template = template.clone();
            async move { template.build().map_err(ProviderError::from) }
        })
    }

    /// An async function called once per attempt, e.g. to fetch a fresh token:
    ///
    /// ```
    /// use steadfast_async::RequestProvider;
    /// use steadfast_async::tungstenite::client::IntoClientRequest;
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

/// What a fixed request is rebuilt from on every attempt.
struct Template {
    uri: Uri,
    /// Headers the application set that tungstenite would not generate
    /// (or would generate with another value).
    added: HeaderMap,
}

impl Template {
    fn of(request: Request) -> Self {
        let (parts, ()) = request.into_parts();
        let generated = parts
            .uri
            .clone()
            .into_client_request()
            .map(Request::into_parts)
            .map(|(generated, ())| generated.headers)
            .unwrap_or_default();
        // Per header name: the application's values replace the generated
        // ones whenever they differ (a second `Connection` value keeps both).
        let mut added = HeaderMap::new();
        for name in parts.headers.keys() {
            let own: Vec<_> = parts.headers.get_all(name).iter().collect();
            let generated_values: Vec<_> = generated.get_all(name).iter().collect();
            if name != SEC_WEBSOCKET_KEY && own != generated_values {
                for value in own {
                    added.append(name.clone(), value.clone());
                }
            }
        }
        Template {
            uri: parts.uri,
            added,
        }
    }

    fn build(&self) -> Result<Request, tungstenite::Error> {
        let mut request = self.uri.clone().into_client_request()?;
        let headers = request.headers_mut();
        for name in self.added.keys() {
            headers.remove(name);
        }
        for (name, value) in &self.added {
            headers.append(name.clone(), value.clone());
        }
        Ok(request)
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
) -> Result<RequestProvider, tungstenite::Error> {
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

    #[tokio::test]
    async fn fixed_request_gets_a_fresh_key_per_attempt_and_keeps_added_headers() {
        let mut req = "ws://127.0.0.1:9/chat?id=1"
            .into_client_request()
            .expect("valid");
        req.headers_mut()
            .insert("authorization", "Bearer t".parse().expect("header"));
        req.headers_mut()
            .append("x-tag", "one".parse().expect("header"));
        req.headers_mut()
            .append("x-tag", "two".parse().expect("header"));
        req.headers_mut()
            .insert("host", "example.test".parse().expect("header"));
        let provider = RequestProvider::fixed(req);
        let first = provider.request().await.expect("built");
        let second = provider.request().await.expect("built");
        let key = |r: &Request| r.headers()[SEC_WEBSOCKET_KEY].clone();
        assert_ne!(key(&first), key(&second), "a fresh key per attempt");
        for r in [&first, &second] {
            assert_eq!(r.uri(), "ws://127.0.0.1:9/chat?id=1");
            assert_eq!(r.headers()["authorization"], "Bearer t");
            let tags: Vec<_> = r.headers().get_all("x-tag").iter().collect();
            assert_eq!(tags, ["one", "two"]);
            assert_eq!(r.headers().get_all("host").iter().count(), 1);
            assert_eq!(r.headers()["host"], "example.test", "an override is kept");
            assert_eq!(r.headers()["upgrade"], "websocket");
        }
    }

    #[tokio::test]
    async fn an_added_value_keeps_the_generated_one_beside_it() {
        let mut req = "ws://127.0.0.1:9/".into_client_request().expect("valid");
        req.headers_mut()
            .append("connection", "keep-alive".parse().expect("header"));
        let built = RequestProvider::fixed(req).request().await.expect("built");
        let values: Vec<_> = built.headers().get_all("connection").iter().collect();
        assert_eq!(values, ["Upgrade", "keep-alive"]);
    }
}
