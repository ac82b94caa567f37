//! Each attempt's handshake request: a fixed request's template (a fresh
//! key per attempt), what a builder adds to it, and the typed error of an
//! application's request provider. The providers themselves (async or
//! blocking) are the adapters'.

use crate::tls::Tls;
use http::header::{AUTHORIZATION, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL};
use http::{HeaderMap, HeaderName, HeaderValue, Uri};
use steadfast_core::HandshakeError;
use tracing::{debug, info};
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::client::Request;

/// Why the application's request provider built no request, and whether
/// the attempt should be retried.
///
/// Any error converts into a retryable one, so `?` works in a provider;
/// [`ProviderError::fatal`] says not to retry (the credentials were
/// revoked, say): the connection then fails with
/// [`Error::RequestRefused`](steadfast_core::Error::RequestRefused).
pub struct ProviderError {
    retry: bool,
    source: Box<dyn std::error::Error + Send + Sync + 'static>,
}

impl ProviderError {
    /// A failure worth retrying with the ordinary backoff (the token
    /// service was unreachable, say).
    pub fn retry(source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        ProviderError {
            retry: true,
            source: source.into(),
        }
    }

    /// A failure that retrying will not heal: the connection fails at once.
    pub fn fatal(source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        ProviderError {
            retry: false,
            source: source.into(),
        }
    }

    /// Whether the attempt is retried.
    pub fn is_retryable(&self) -> bool {
        self.retry
    }

    /// What went wrong. (steadfast never logs it: it may quote a URL
    /// with a token.)
    pub fn source(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.source
    }
}

impl<E: Into<Box<dyn std::error::Error + Send + Sync + 'static>>> From<E> for ProviderError {
    fn from(source: E) -> Self {
        ProviderError::retry(source)
    }
}

impl std::fmt::Debug for ProviderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderError")
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Display for ProviderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = if self.retry { "retryable" } else { "fatal" };
        write!(f, "request provider failed ({kind}): {}", self.source)
    }
}

/// What an adapter's `Builder` adds to every attempt's request: headers (a
/// bearer token, subprotocols among them) and query parameters. Header
/// values are never logged.
#[derive(Clone, Default)]
pub struct RequestExtras {
    /// Boxed, and only once there is one: a connection keeps its extras for
    /// life, and most have none (an empty `HeaderMap` is 96 bytes inline).
    headers: Option<Box<HeaderMap>>,
    /// Already form-encoded `key=value` pairs.
    query: Vec<String>,
}

impl RequestExtras {
    /// Add header `name: value` (beside any of the same name).
    pub fn header(&mut self, name: &str, value: &str) -> Result<(), crate::InvalidRequest> {
        let invalid = || crate::InvalidRequest::Header {
            name: name.to_owned(),
        };
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?;
        let value = HeaderValue::from_str(value).map_err(|_| invalid())?;
        self.headers_mut().append(name, value);
        Ok(())
    }

    /// `Authorization: Bearer <token>`, marked sensitive (never logged).
    pub fn bearer(&mut self, token: &str) -> Result<(), crate::InvalidRequest> {
        let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            crate::InvalidRequest::Header {
                name: AUTHORIZATION.to_string(),
            }
        })?;
        value.set_sensitive(true);
        self.headers_mut().insert(AUTHORIZATION, value);
        Ok(())
    }

    /// `Sec-WebSocket-Protocol` offering `protocols`, in order.
    pub fn subprotocols(&mut self, protocols: &[&str]) -> Result<(), crate::InvalidRequest> {
        if protocols.is_empty() || protocols.iter().any(|p| p.is_empty()) {
            return Err(crate::InvalidRequest::Header {
                name: SEC_WEBSOCKET_PROTOCOL.to_string(),
            });
        }
        let offered = protocols.join(", ");
        let value = HeaderValue::from_str(&offered).map_err(|_| crate::InvalidRequest::Header {
            name: SEC_WEBSOCKET_PROTOCOL.to_string(),
        })?;
        self.headers_mut().insert(SEC_WEBSOCKET_PROTOCOL, value);
        Ok(())
    }

    fn headers_mut(&mut self) -> &mut HeaderMap {
        self.headers.get_or_insert_with(Box::default)
    }

    /// Query parameter `key=value`, form-encoded.
    pub fn query(&mut self, key: &str, value: &str) {
        let pair = form_urlencoded::Serializer::new(String::new())
            .append_pair(key, value)
            .finish();
        self.query.push(pair);
    }

    /// Add all this to `request`.
    pub fn apply(&self, request: &mut Request) -> Result<(), http::Error> {
        for (name, value) in self.headers.iter().flat_map(|headers| headers.iter()) {
            request.headers_mut().append(name.clone(), value.clone());
        }
        if !self.query.is_empty() {
            let mut parts = request.uri().clone().into_parts();
            let (path, query) = parts
                .path_and_query
                .as_ref()
                .map_or(("/", None), |pq| (pq.path(), pq.query()));
            let added = self.query.join("&");
            let query = match query {
                Some(q) if !q.is_empty() => format!("{q}&{added}"),
                _ => added,
            };
            parts.path_and_query = Some(format!("{path}?{query}").parse()?);
            *request.uri_mut() = Uri::from_parts(parts)?;
        }
        Ok(())
    }
}

/// What a fixed request is rebuilt from on every attempt: its URI and the
/// headers the application added. Only those are kept between attempts;
/// the ones tungstenite generates (a fresh `Sec-WebSocket-Key`, RFC 6455
/// §4.1) are generated anew.
///
/// Every connection keeps its template for as long as it lives, so it is
/// kept small: the URI as text, parsed again per attempt (a parsed `Uri`
/// holds about 90 bytes inline and several allocations), and the added
/// headers only when there are any.
pub struct RequestTemplate {
    uri: Box<str>,
    /// Headers the application set that tungstenite would not generate
    /// (or would generate with another value).
    added: Option<Box<HeaderMap>>,
}

impl std::fmt::Debug for RequestTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Requests carry credentials: never print them.
        f.write_str("RequestTemplate(..)")
    }
}

impl RequestTemplate {
    /// The template of `request`.
    pub fn of(request: Request) -> Self {
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
        RequestTemplate {
            uri: parts.uri.to_string().into_boxed_str(),
            added: (!added.is_empty()).then(|| Box::new(added)),
        }
    }

    /// A new request: the URI, a fresh key, the added headers.
    pub fn build(&self) -> Result<Request, tungstenite::Error> {
        let mut request = (*self.uri).into_client_request()?;
        if let Some(added) = &self.added {
            let headers = request.headers_mut();
            for name in added.keys() {
                headers.remove(name);
            }
            for (name, value) in added.iter() {
                headers.append(name.clone(), value.clone());
            }
        }
        Ok(request)
    }
}

/// `request` as a WebSocket handshake request, refused at once when no
/// attempt could ever use it (a scheme other than `ws` or `wss`, no host):
/// a connection would otherwise retry it for as long as its budget lasts.
///
/// ```
/// use steadfast_wire::request::websocket_request;
///
/// assert!(websocket_request("wss://example.test/chat?room=1").is_ok());
/// assert!(websocket_request("http://example.test/chat").is_err());
/// assert!(websocket_request("ws:///chat").is_err());
/// assert!(websocket_request("not a url").is_err());
/// ```
pub fn websocket_request(
    request: impl IntoClientRequest,
) -> Result<Request, crate::InvalidRequest> {
    let request = request.into_client_request()?;
    Target::of(request.uri())?;
    Ok(request)
}

/// Where a WebSocket URL connects: the host and port, and whether TLS
/// runs over the connection.
///
/// ```
/// use steadfast_wire::request::Target;
///
/// let uri = "wss://[::1]/chat".parse().unwrap();
/// let target = Target::of(&uri).unwrap();
/// assert_eq!((target.host.as_str(), target.port, target.secure), ("::1", 443, true));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The host, an IPv6 literal without its brackets.
    pub host: String,
    /// The URL's port, or its scheme's (80 for `ws`, 443 for `wss`).
    pub port: u16,
    /// `wss`: TLS over the TCP connection.
    pub secure: bool,
}

impl Target {
    /// The target of `uri`; an error for a scheme other than `ws` or
    /// `wss`, or no host.
    pub fn of(uri: &Uri) -> Result<Target, tungstenite::Error> {
        let secure = matches!(
            tungstenite::client::uri_mode(uri)?,
            tungstenite::stream::Mode::Tls
        );
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or(tungstenite::Error::Url(
                tungstenite::error::UrlError::NoHostName,
            ))?;
        // An IPv6 literal comes bracketed: `[::1]`.
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host)
            .to_owned();
        let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
        Ok(Target { host, port, secure })
    }
}

/// The target of a connection, for logs: scheme, host, port and path only.
/// The query and every header are left out, because they may carry tokens.
pub fn loggable_target(request: &Request) -> String {
    let uri = request.uri();
    format!(
        "{}://{}{}",
        uri.scheme_str().unwrap_or("ws"),
        uri.authority()
            .map_or("", |a| a.as_str().rsplit('@').next().unwrap_or("")),
        uri.path()
    )
}

/// The request an attempt sends, from what its provider built: the
/// builder's extras added, the target logged (scheme, host, port, path:
/// never the query or a header), and the TLS configuration it uses
/// ([`Tls::for_uri`]). A provider's failure is [`HandshakeError::Request`]
/// (retried) or [`HandshakeError::RequestRefused`] (fatal); so is a request
/// whose URL no attempt could use (see [`Target::of`]), from whichever
/// provider it came.
pub fn prepare(
    built: Result<Request, ProviderError>,
    extras: &RequestExtras,
    tls: &Tls,
) -> Result<(Request, Tls), HandshakeError> {
    let mut request = match built {
        Ok(request) => request,
        Err(e) => {
            // The error may quote URLs with tokens: leave its text to the application.
            info!(retry = e.is_retryable(), "request provider failed");
            return Err(if e.is_retryable() {
                HandshakeError::Request
            } else {
                HandshakeError::RequestRefused
            });
        }
    };
    if extras.apply(&mut request).is_err() {
        info!("the builder's headers or query do not fit the request");
        return Err(HandshakeError::Request);
    }
    if let Err(e) = Target::of(request.uri()) {
        // No attempt could use it: retrying would only spend the budget.
        info!(error = %e, "the request's URL is not a WebSocket URL with a host");
        return Err(HandshakeError::RequestRefused);
    }
    debug!(target_url = %loggable_target(&request), "connecting");
    // TLS from the URL scheme, always with a configuration of ours or the
    // application's: never one built from the process-default crypto provider.
    let tls = Tls::for_uri(request.uri(), tls);
    Ok((request, tls))
}

/// The outcome of a handshake, for the core: the open socket and what the
/// response said, or why it failed (logged).
pub fn handshake_outcome<S>(
    result: Result<(S, tungstenite::handshake::client::Response), tungstenite::Error>,
) -> Result<(S, steadfast_core::Handshake), HandshakeError> {
    match result {
        Ok((ws, response)) => Ok((ws, crate::mapping::handshake(&response))),
        Err(e) => {
            let error = crate::mapping::handshake_error(&e);
            info!(?error, "handshake failed");
            Err(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_no_attempt_could_use_is_refused_for_good_from_any_provider() {
        // A provider may hand over a request built without the builder's check.
        for url in ["http://example.test/", "/chat"] {
            let req = Request::get(url).body(()).expect("a request");
            let prepared = prepare(Ok(req), &RequestExtras::default(), &Tls::default());
            assert_eq!(
                prepared.err(),
                Some(HandshakeError::RequestRefused),
                "{url}"
            );
        }
        let req = "ws://example.test/chat"
            .into_client_request()
            .expect("valid");
        assert!(prepare(Ok(req), &RequestExtras::default(), &Tls::default()).is_ok());
    }

    #[test]
    fn a_target_is_the_host_without_brackets_and_the_schemes_port() {
        let target = |url: &str| Target::of(&url.parse().expect("a URI"));
        let t = target("ws://example.test/chat").expect("ws");
        assert_eq!(
            (t.host.as_str(), t.port, t.secure),
            ("example.test", 80, false)
        );
        let t = target("wss://[::1]:8443/").expect("wss");
        assert_eq!((t.host.as_str(), t.port, t.secure), ("::1", 8443, true));
        assert!(target("https://example.test/").is_err());
        assert!(target("/chat").is_err());
    }

    #[test]
    fn logged_target_leaves_out_query_userinfo_and_headers() {
        let mut req = "ws://user:secret@example.test:8080/chat?token=abc"
            .into_client_request()
            .expect("valid");
        req.headers_mut()
            .insert("authorization", "Bearer xyz".parse().expect("header"));
        let shown = loggable_target(&req);
        assert_eq!(shown, "ws://example.test:8080/chat");
    }

    #[test]
    fn fixed_request_gets_a_fresh_key_per_attempt_and_keeps_added_headers() {
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
        let template = RequestTemplate::of(req);
        let first = template.build().expect("built");
        let second = template.build().expect("built");
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
        assert!(!format!("{template:?}").contains("Bearer"));
    }

    #[test]
    fn a_template_kept_as_text_rebuilds_the_same_uri_and_headers() {
        for url in [
            "ws://127.0.0.1:9/",
            "ws://example.test",
            "wss://example.test:8443/a/b?x=1&y=%20z",
            "ws://[::1]:9/chat",
            "ws://user:pw@example.test/p?token=t",
        ] {
            let req = url.into_client_request().expect("valid");
            let (direct, built) = (
                req.clone(),
                RequestTemplate::of(req).build().expect("built"),
            );
            assert_eq!(built.uri(), direct.uri(), "{url}");
            let names = |r: &Request| {
                let mut n: Vec<String> = r.headers().keys().map(|k| k.to_string()).collect();
                n.sort();
                n
            };
            assert_eq!(names(&built), names(&direct), "{url}");
            assert_eq!(built.headers()["host"], direct.headers()["host"], "{url}");
        }
    }

    #[test]
    fn an_added_value_keeps_the_generated_one_beside_it() {
        let mut req = "ws://127.0.0.1:9/".into_client_request().expect("valid");
        req.headers_mut()
            .append("connection", "keep-alive".parse().expect("header"));
        let built = RequestTemplate::of(req).build().expect("built");
        let values: Vec<_> = built.headers().get_all("connection").iter().collect();
        assert_eq!(values, ["Upgrade", "keep-alive"]);
    }

    #[test]
    fn the_builders_headers_bearer_subprotocols_and_query_are_added_to_the_request() {
        let mut extras = RequestExtras::default();
        extras.header("x-client", "kiosk").expect("valid");
        extras.bearer("t0k3n").expect("valid");
        extras.subprotocols(&["chat.v2", "chat.v1"]).expect("valid");
        extras.query("room", "lobby & friends");
        extras.query("id", "7");
        let mut req = "ws://example.test/chat?v=1"
            .into_client_request()
            .expect("valid");
        extras.apply(&mut req).expect("applies");
        assert_eq!(
            req.uri(),
            "ws://example.test/chat?v=1&room=lobby+%26+friends&id=7"
        );
        assert_eq!(req.headers()["x-client"], "kiosk");
        assert_eq!(req.headers()["authorization"], "Bearer t0k3n");
        assert!(req.headers()["authorization"].is_sensitive());
        assert_eq!(req.headers()["sec-websocket-protocol"], "chat.v2, chat.v1");
        let mut bare = "ws://example.test".into_client_request().expect("valid");
        extras.apply(&mut bare).expect("applies");
        assert_eq!(
            bare.uri().path_and_query().map(|p| p.as_str()),
            Some("/?room=lobby+%26+friends&id=7")
        );
    }

    #[test]
    fn a_bad_header_is_refused_without_showing_its_value() {
        let mut extras = RequestExtras::default();
        let err = extras.header("x-client", "line\nbreak").unwrap_err();
        assert!(!err.to_string().contains("break"), "{err}");
        assert!(extras.header("bad name", "v").is_err());
        assert!(
            extras
                .bearer("secret\n")
                .unwrap_err()
                .to_string()
                .contains("authorization")
        );
    }
}
