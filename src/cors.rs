//! The CORS preset for ChatKit, and [`AllowedOrigins`], the one origin list the kit checks.
//!
//! [`CorsPreset`] builds a [`CorsLayer`] that allows the headers ChatKit's front end sends
//! (`authorization`, `content-type`, `x-auth-token`, `chatkit-frame-instance-id`,
//! `accept-language`), exposes `x-request-id`, and caches preflights. Unlike tower-http's
//! `CorsLayer`, which panics when the layer is applied to a wildcard origin combined with
//! credentials (tower-http#272), [`CorsPreset::build`] returns a [`ConfigError`] for every
//! setting browsers would refuse.
//!
//! Preflights (`OPTIONS`) are answered by [`tower_http::cors::Cors`]. Every other request gets
//! the same headers tower-http would add, but from values computed once when the layer is
//! built: tower-http builds and merges a header map for each request, which on a short request
//! such as creating a session costs as much as the rest of the layer stack.
//!
//! Put the CORS layer **outermost**: preflight requests are answered by it and never reach the
//! authentication layer, which would otherwise refuse them for lack of a credential.
//!
//! CORS does not reject anything on the server: a disallowed origin simply gets no
//! `Access-Control-Allow-Origin`, and the browser withholds the answer from the page.
//!
//! ```
//! use chatkit_tower::cors::{AllowedOrigins, CorsPreset};
//!
//! let origins = AllowedOrigins::list(["https://app.example.com", "http://localhost:5173"]).unwrap();
//! let cors = CorsPreset::new(origins).allow_credentials(true).build().unwrap();
//!
//! // A wildcard with credentials is an error value, not a panic.
//! assert!(CorsPreset::new(AllowedOrigins::any()).allow_credentials(true).build().is_err());
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::header::{
    HeaderName, HeaderValue, ACCEPT, ACCEPT_LANGUAGE, ACCESS_CONTROL_ALLOW_CREDENTIALS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_REQUEST_HEADERS,
    ACCESS_CONTROL_REQUEST_METHOD, AUTHORIZATION, CONTENT_TYPE, ORIGIN, VARY,
};
use http::{Method, Request, Response};
use pin_project_lite::pin_project;
use tower_http::cors::AllowOrigin;
use tower_layer::Layer;
use tower_service::Service;

use crate::error::ConfigError;

/// The request headers ChatKit's front end and the seed's snippets send.
pub const CHATKIT_REQUEST_HEADERS: [HeaderName; 6] = [
    AUTHORIZATION,
    CONTENT_TYPE,
    ACCEPT,
    ACCEPT_LANGUAGE,
    HeaderName::from_static("x-auth-token"),
    HeaderName::from_static("chatkit-frame-instance-id"),
];

/// Which browser origins may call the kit: used by the CORS preset and by the WebSocket
/// endpoint's `Origin` check. Cheap to clone.
///
/// ```
/// use chatkit_tower::cors::AllowedOrigins;
/// use http::HeaderValue;
///
/// let origins = AllowedOrigins::list(["https://App.Example.com/"]).unwrap();
/// assert!(origins.allows(&HeaderValue::from_static("https://app.example.com")));
/// assert!(!origins.allows(&HeaderValue::from_static("https://evil.example")));
///
/// assert!(AllowedOrigins::list(["not an origin"]).is_err());
/// assert!(AllowedOrigins::list(["https://a.example/path"]).is_err());
/// ```
#[derive(Clone)]
pub struct AllowedOrigins(OriginsInner);

#[derive(Clone)]
enum OriginsInner {
    Any,
    List(Arc<[HeaderValue]>),
    Predicate(Arc<dyn Fn(&HeaderValue) -> bool + Send + Sync>),
}

impl AllowedOrigins {
    /// Every origin (`*`). Refused together with credentials.
    pub fn any() -> Self {
        Self(OriginsInner::Any)
    }

    /// Exactly these origins (`scheme://host[:port]`, no path). Each is checked and normalized
    /// (lower case, default port dropped, trailing `/` dropped); `*` is refused here — use
    /// [`AllowedOrigins::any`].
    pub fn list<I, S>(origins: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut list = Vec::new();
        for origin in origins {
            let origin = normalize_origin(origin.as_ref())?;
            if !list.contains(&origin) {
                list.push(origin);
            }
        }
        Ok(Self(OriginsInner::List(list.into())))
    }

    /// Parse a comma-separated list (the format of `CHATKIT_ALLOWED_ORIGINS`); a lone `*` means
    /// any origin.
    pub fn parse(list: &str) -> Result<Self, ConfigError> {
        if list.trim() == "*" {
            return Ok(Self::any());
        }
        Self::list(list.split(',').map(str::trim).filter(|s| !s.is_empty()))
    }

    /// Origins for which `f` answers `true`.
    ///
    /// ```
    /// use chatkit_tower::cors::AllowedOrigins;
    /// let origins = AllowedOrigins::predicate(|origin| {
    ///     origin.as_bytes().ends_with(b".example.com")
    /// });
    /// assert!(origins.allows(&"https://a.example.com".parse().unwrap()));
    /// ```
    pub fn predicate(f: impl Fn(&HeaderValue) -> bool + Send + Sync + 'static) -> Self {
        Self(OriginsInner::Predicate(Arc::new(f)))
    }

    /// Add one more exact origin (the server's own, say). A no-op for [`AllowedOrigins::any`];
    /// a predicate keeps answering for the others.
    pub fn with_origin(self, origin: &str) -> Result<Self, ConfigError> {
        let origin = normalize_origin(origin)?;
        Ok(match self.0 {
            OriginsInner::Any => self,
            OriginsInner::List(list) => {
                let mut list = list.to_vec();
                if !list.contains(&origin) {
                    list.push(origin);
                }
                Self(OriginsInner::List(list.into()))
            }
            OriginsInner::Predicate(f) => {
                Self::predicate(move |candidate| *candidate == origin || f(candidate))
            }
        })
    }

    /// Whether `origin` (an `Origin` header's value) is allowed.
    pub fn allows(&self, origin: &HeaderValue) -> bool {
        match &self.0 {
            OriginsInner::Any => true,
            OriginsInner::List(list) => list.contains(origin),
            OriginsInner::Predicate(f) => f(origin),
        }
    }

    /// Whether every origin is allowed.
    pub fn is_any(&self) -> bool {
        matches!(self.0, OriginsInner::Any)
    }

    fn to_allow_origin(&self) -> AllowOrigin {
        match &self.0 {
            OriginsInner::Any => AllowOrigin::any(),
            OriginsInner::List(list) => AllowOrigin::list(list.iter().cloned()),
            OriginsInner::Predicate(f) => {
                let f = f.clone();
                AllowOrigin::predicate(move |origin, _| f(origin))
            }
        }
    }
}

impl fmt::Debug for AllowedOrigins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            OriginsInner::Any => f.write_str("AllowedOrigins(*)"),
            OriginsInner::List(list) => f.debug_tuple("AllowedOrigins").field(list).finish(),
            OriginsInner::Predicate(_) => f.write_str("AllowedOrigins(<predicate>)"),
        }
    }
}

fn normalize_origin(raw: &str) -> Result<HeaderValue, ConfigError> {
    let bad = |why: &str| ConfigError::new(format!("allowed origin {raw:?} {why}"));
    let trimmed = raw.trim().trim_end_matches('/');
    if trimmed == "*" || trimmed.contains('*') {
        return Err(bad(
            "is a wildcard; use AllowedOrigins::any() without credentials",
        ));
    }
    let uri: http::Uri = trimmed
        .parse()
        .map_err(|_| bad("is not of the form scheme://host[:port]"))?;
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return Err(bad("is not of the form scheme://host[:port]"));
    };
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(bad("has a path; an origin is only scheme://host[:port]"));
    }
    if authority.as_str().contains('@') {
        return Err(bad(
            "has user information; an origin is only scheme://host[:port]",
        ));
    }
    let scheme = scheme.to_ascii_lowercase();
    let host = authority.host().to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    };
    let origin = match authority.port_u16() {
        Some(port) if Some(port) != default_port => format!("{scheme}://{host}:{port}"),
        _ => format!("{scheme}://{host}"),
    };
    HeaderValue::from_str(&origin).map_err(|_| bad("is not a valid header value"))
}

/// A validated builder for the ChatKit CORS layer; see the [module docs](self).
#[derive(Debug, Clone)]
#[must_use]
pub struct CorsPreset {
    origins: AllowedOrigins,
    credentials: bool,
    max_age: Duration,
    extra_headers: Vec<HeaderName>,
}

impl CorsPreset {
    /// A preset for `origins`, without credentials, caching preflights for 10 minutes.
    pub fn new(origins: AllowedOrigins) -> Self {
        Self {
            origins,
            credentials: false,
            max_age: Duration::from_secs(600),
            extra_headers: Vec::new(),
        }
    }

    /// Let the browser send cookies and `Authorization` cross-origin
    /// (`Access-Control-Allow-Credentials: true`). Needs explicit origins or a predicate.
    pub fn allow_credentials(mut self, allow: bool) -> Self {
        self.credentials = allow;
        self
    }

    /// How long browsers may cache a preflight answer (browsers cap it: Chromium at 2 hours).
    ///
    /// ```
    /// use chatkit_tower::cors::{AllowedOrigins, CorsPreset};
    /// use std::time::Duration;
    /// let preset = CorsPreset::new(AllowedOrigins::any()).max_age(Duration::from_secs(60));
    /// assert!(preset.build().is_ok());
    /// ```
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Allow one more request header besides ChatKit's own.
    pub fn allow_header(mut self, name: HeaderName) -> Self {
        if !self.extra_headers.contains(&name) && !CHATKIT_REQUEST_HEADERS.contains(&name) {
            self.extra_headers.push(name);
        }
        self
    }

    /// The origins this preset allows (shared with the WebSocket `Origin` check).
    pub fn origins(&self) -> &AllowedOrigins {
        &self.origins
    }

    /// Build the layer, or say why the settings cannot work.
    pub fn build(self) -> Result<CorsLayer, ConfigError> {
        let origins = self.origins.clone();
        let credentials = self.credentials;
        let preflight = self.build_tower_http()?;
        Ok(CorsLayer {
            preflight,
            simple: Arc::new(SimpleHeaders {
                origins,
                credentials,
            }),
        })
    }

    /// The same settings as a plain [`tower_http::cors::CorsLayer`], which builds its headers
    /// for every request.
    ///
    /// ```
    /// use chatkit_tower::cors::{AllowedOrigins, CorsPreset};
    /// let layer: tower_http::cors::CorsLayer =
    ///     CorsPreset::new(AllowedOrigins::any()).build_tower_http().unwrap();
    /// ```
    pub fn build_tower_http(self) -> Result<tower_http::cors::CorsLayer, ConfigError> {
        if self.credentials && self.origins.is_any() {
            return Err(ConfigError::new(
                "CORS: a wildcard origin cannot be combined with credentials \
                 (browsers refuse it); list the allowed origins instead",
            ));
        }
        if self.max_age > Duration::from_secs(24 * 3600) {
            return Err(ConfigError::new(
                "CORS: max_age over 24 hours is ignored by browsers",
            ));
        }
        let mut headers = CHATKIT_REQUEST_HEADERS.to_vec();
        headers.extend(self.extra_headers);
        Ok(tower_http::cors::CorsLayer::new()
            .allow_origin(self.origins.to_allow_origin())
            .allow_methods([Method::GET, Method::POST])
            .allow_headers(headers)
            .allow_credentials(self.credentials)
            .expose_headers([HeaderName::from_static(EXPOSE_VALUE)])
            .vary([
                ORIGIN,
                ACCESS_CONTROL_REQUEST_METHOD,
                ACCESS_CONTROL_REQUEST_HEADERS,
            ])
            .max_age(self.max_age))
    }
}

/// `Vary` on every answer: the three request headers a CORS answer depends on.
const VARY_VALUE: &str = "origin, access-control-request-method, access-control-request-headers";
/// The response header the front end may read.
const EXPOSE_VALUE: &str = "x-request-id";

/// What decides the headers of a non-preflight answer.
struct SimpleHeaders {
    origins: AllowedOrigins,
    credentials: bool,
}

impl SimpleHeaders {
    /// `Access-Control-Allow-Origin` for a request from `origin`, if it gets one.
    fn allow_origin(&self, origin: Option<&HeaderValue>) -> Option<HeaderValue> {
        if self.origins.is_any() {
            return Some(HeaderValue::from_static("*"));
        }
        origin.filter(|o| self.origins.allows(o)).cloned()
    }
}

/// The headers tower-http adds to a non-preflight answer (a static `HeaderValue` is copied
/// without touching any shared count).
fn apply_simple<B>(res: &mut Response<B>, allow_origin: Option<HeaderValue>, credentials: bool) {
    let headers = res.headers_mut();
    // `Vary` may already hold values of the service's own: add to them.
    headers.append(VARY, HeaderValue::from_static(VARY_VALUE));
    if credentials {
        headers.insert(
            ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    if let Some(origin) = allow_origin {
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    }
    headers.insert(
        ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSE_VALUE),
    );
}

/// The ChatKit CORS layer, from [`CorsPreset::build`]. Put it outermost.
///
/// ```
/// use chatkit_tower::cors::{AllowedOrigins, CorsPreset};
/// use futures_util::FutureExt;
/// use http::{Request, Response};
/// use tower::{service_fn, Layer, ServiceExt};
///
/// let origins = AllowedOrigins::list(["https://app.example.com"]).unwrap();
/// let cors = CorsPreset::new(origins).allow_credentials(true).build().unwrap();
/// let app = cors.layer(service_fn(|_req: Request<()>| async {
///     Ok::<_, std::convert::Infallible>(Response::new(String::from("hi")))
/// }));
///
/// let req = Request::post("/api/custom/session")
///     .header("origin", "https://app.example.com")
///     .body(())
///     .unwrap();
/// let res = app.oneshot(req).now_or_never().unwrap().unwrap();
/// assert_eq!(res.headers()["access-control-allow-origin"], "https://app.example.com");
/// assert_eq!(res.headers()["access-control-allow-credentials"], "true");
/// ```
#[derive(Clone)]
pub struct CorsLayer {
    preflight: tower_http::cors::CorsLayer,
    simple: Arc<SimpleHeaders>,
}

impl fmt::Debug for CorsLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CorsLayer")
            .field("origins", &self.simple.origins)
            .field("credentials", &self.simple.credentials)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for CorsLayer {
    type Service = Cors<S>;

    fn layer(&self, inner: S) -> Cors<S> {
        Cors {
            inner: self.preflight.layer(inner),
            simple: self.simple.clone(),
        }
    }
}

/// The service of [`CorsLayer`]: tower-http's [`Cors`](tower_http::cors::Cors) for preflights,
/// precomputed headers for every other request.
#[derive(Clone)]
pub struct Cors<S> {
    inner: tower_http::cors::Cors<S>,
    simple: Arc<SimpleHeaders>,
}

impl<S: fmt::Debug> fmt::Debug for Cors<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cors")
            .field("inner", self.inner.get_ref())
            .finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Cors<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = CorsFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // tower-http's own `poll_ready` re-asserts its settings on every request;
        // `CorsPreset::build` has checked them once.
        self.inner.get_mut().poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        if req.method() == Method::OPTIONS {
            // tower-http answers every OPTIONS request itself, as a preflight.
            return CorsFuture {
                kind: Kind::Preflight {
                    future: self.inner.call(req),
                },
            };
        }
        let allow_origin = self.simple.allow_origin(req.headers().get(ORIGIN));
        CorsFuture {
            kind: Kind::Simple {
                future: self.inner.get_mut().call(req),
                allow_origin,
                credentials: self.simple.credentials,
            },
        }
    }
}

pin_project! {
    /// The response future of [`Cors`].
    pub struct CorsFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Preflight {
            #[pin]
            future: tower_http::cors::ResponseFuture<F>,
        },
        Simple {
            #[pin]
            future: F,
            allow_origin: Option<HeaderValue>,
            credentials: bool,
        },
    }
}

impl<F, B, E> Future for CorsFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Default,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Preflight { future } => future.poll(cx),
            KindProj::Simple {
                future,
                allow_origin,
                credentials,
            } => match future.poll(cx) {
                Poll::Ready(Ok(mut res)) => {
                    apply_simple(&mut res, allow_origin.take(), *credentials);
                    Poll::Ready(Ok(res))
                }
                other => other,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalized() {
        let o =
            AllowedOrigins::list(["HTTPS://Example.COM:443/", "http://localhost:3000"]).unwrap();
        assert!(o.allows(&HeaderValue::from_static("https://example.com")));
        assert!(o.allows(&HeaderValue::from_static("http://localhost:3000")));
        assert!(!o.allows(&HeaderValue::from_static("http://localhost:3001")));
    }

    #[test]
    fn wildcards_inside_lists_are_refused() {
        assert!(AllowedOrigins::list(["*"]).is_err());
        assert!(AllowedOrigins::list(["https://*.example.com"]).is_err());
        assert!(AllowedOrigins::parse("*").unwrap().is_any());
    }

    /// Our layer and a plain tower-http layer with the same settings answer every kind of
    /// request with the same headers (the inner service sets a `Vary` of its own, and an
    /// `Access-Control-Allow-Origin` the layer must replace).
    #[tokio::test]
    async fn the_precomputed_headers_are_tower_https_headers() {
        use tower::{service_fn, ServiceExt};

        let presets = || {
            let list = || AllowedOrigins::list(["https://app.example.com"]).unwrap();
            [
                CorsPreset::new(AllowedOrigins::any()),
                CorsPreset::new(list()),
                CorsPreset::new(list()).allow_credentials(true),
                CorsPreset::new(AllowedOrigins::predicate(|o| {
                    o.as_bytes().ends_with(b".test")
                }))
                .allow_credentials(true),
            ]
        };
        let inner = service_fn(|_req: Request<()>| async {
            let mut res = Response::new(String::from("hi"));
            res.headers_mut()
                .insert(VARY, HeaderValue::from_static("accept-encoding"));
            res.headers_mut().insert(
                ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("stale"),
            );
            Ok::<_, std::convert::Infallible>(res)
        });
        let origins = [
            None,
            Some("https://app.example.com"),
            Some("https://evil.example"),
            Some("https://a.test"),
        ];
        for (ours, theirs) in presets().into_iter().zip(presets()) {
            let what = format!("{ours:?}");
            let ours = ours.build().unwrap().layer(inner);
            let theirs = theirs.build_tower_http().unwrap().layer(inner);
            for method in [Method::GET, Method::POST, Method::OPTIONS] {
                for origin in origins {
                    let request = || {
                        let mut req = Request::builder().method(method.clone()).uri("/x");
                        if let Some(origin) = origin {
                            req = req.header(ORIGIN, origin);
                        }
                        if method == Method::OPTIONS {
                            req = req
                                .header(ACCESS_CONTROL_REQUEST_METHOD, "POST")
                                .header(ACCESS_CONTROL_REQUEST_HEADERS, "authorization");
                        }
                        req.body(()).unwrap()
                    };
                    let a = ours.clone().oneshot(request()).await.unwrap();
                    let b = theirs.clone().oneshot(request()).await.unwrap();
                    assert_eq!(a.status(), b.status());
                    assert_eq!(a.headers(), b.headers(), "{what}, {method} from {origin:?}");
                    assert_eq!(a.body(), b.body());
                }
            }
        }
    }

    #[test]
    fn with_origin_extends_lists_and_predicates() {
        let o = AllowedOrigins::predicate(|_| false)
            .with_origin("http://127.0.0.1:3000")
            .unwrap();
        assert!(o.allows(&HeaderValue::from_static("http://127.0.0.1:3000")));
        assert!(!o.allows(&HeaderValue::from_static("http://127.0.0.1:3001")));
    }
}
