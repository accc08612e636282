//! The crate's one error type and the JSON error body every endpoint answers with.
//!
//! Every failure of every endpoint becomes
//!
//! ```json
//! {"error": "Session creation failed", "code": "SESSION_ERROR", "details": "Backend unreachable"}
//! ```
//!
//! with the status that [`ErrorCode`] documents. `details` is written for a person who can act on
//! it; it never carries a secret, a token or a long raw upstream body.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use http::header::{
    HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE,
};
use http::{Response, StatusCode};

use crate::body::Body;

/// A boxed error, as tower and hyper use them.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

const X_REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");

/// The longest `details` text the kit puts in a response, in bytes.
const MAX_DETAILS: usize = 300;

/// The machine-readable `code` of an error body.
///
/// Each code has a default HTTP status ([`ErrorCode::status`]); upstream errors may carry the
/// upstream's own 4xx status instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// 401: no or bad credential, an expired or forged session token.
    Unauthorized,
    /// 403: the request's `Origin` is not allowed.
    Forbidden,
    /// 403: the requested model is not on the allow-list.
    ModelNotAllowed,
    /// 400: malformed JSON or wrong field types.
    BadRequest,
    /// 413: the request body is over the limit.
    PayloadTooLarge,
    /// 405: wrong method (the response carries `Allow`).
    MethodNotAllowed,
    /// 408: the request body did not arrive in time (a slow-loris client).
    RequestTimeout,
    /// 404: no endpoint at this path (only where the kit does the routing, as in [`App`](crate::App)).
    NotFound,
    /// 429: the upstream said 429 (its `Retry-After` is passed on).
    RateLimited,
    /// Upstream 4xx status or 502: the session upstream refused or answered nonsense.
    SessionError,
    /// Upstream 4xx status or 502: the stream upstream refused before streaming began.
    UpstreamError,
    /// 502: the upstream could not be reached (connect or transport failure).
    BackendUnreachable,
    /// 504: the upstream did not answer in time.
    BackendTimeout,
    /// 503: the authenticator itself failed (a database or identity provider is down), so the
    /// credential could not be checked either way.
    AuthUnavailable,
    /// 503: the ChatKit store is unreachable or timed out.
    StoreUnavailable,
    /// 500: anything else.
    Internal,
}

impl ErrorCode {
    /// The code as it appears in the JSON body, e.g. `"SESSION_ERROR"`.
    ///
    /// ```
    /// use chatkit_tower::ErrorCode;
    /// assert_eq!(ErrorCode::ModelNotAllowed.as_str(), "MODEL_NOT_ALLOWED");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Unauthorized => "UNAUTHORIZED",
            Self::Forbidden => "FORBIDDEN",
            Self::ModelNotAllowed => "MODEL_NOT_ALLOWED",
            Self::BadRequest => "BAD_REQUEST",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::RequestTimeout => "REQUEST_TIMEOUT",
            Self::NotFound => "NOT_FOUND",
            Self::RateLimited => "RATE_LIMITED",
            Self::SessionError => "SESSION_ERROR",
            Self::UpstreamError => "UPSTREAM_ERROR",
            Self::BackendUnreachable => "BACKEND_UNREACHABLE",
            Self::BackendTimeout => "BACKEND_TIMEOUT",
            Self::AuthUnavailable => "AUTH_UNAVAILABLE",
            Self::StoreUnavailable => "STORE_UNAVAILABLE",
            Self::Internal => "INTERNAL",
        }
    }

    /// The status this code answers with unless an upstream status overrides it.
    ///
    /// ```
    /// use chatkit_tower::ErrorCode;
    /// use http::StatusCode;
    /// assert_eq!(ErrorCode::BackendTimeout.status(), StatusCode::GATEWAY_TIMEOUT);
    /// ```
    pub const fn status(self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden | Self::ModelNotAllowed => StatusCode::FORBIDDEN,
            Self::BadRequest => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::SessionError | Self::UpstreamError | Self::BackendUnreachable => {
                StatusCode::BAD_GATEWAY
            }
            Self::BackendTimeout => StatusCode::GATEWAY_TIMEOUT,
            Self::AuthUnavailable | Self::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The human headline that goes in the body's `error` field.
    const fn headline(self) -> &'static str {
        match self {
            Self::Unauthorized => "Unauthorized",
            Self::Forbidden => "Forbidden",
            Self::ModelNotAllowed => "Model not allowed",
            Self::BadRequest => "Bad request",
            Self::PayloadTooLarge => "Payload too large",
            Self::MethodNotAllowed => "Method not allowed",
            Self::RequestTimeout => "Request timeout",
            Self::NotFound => "Not found",
            Self::RateLimited => "Rate limited",
            Self::SessionError => "Session creation failed",
            Self::UpstreamError => "Upstream error",
            Self::BackendUnreachable => "Backend unreachable",
            Self::BackendTimeout => "Backend timeout",
            Self::AuthUnavailable => "Authentication unavailable",
            Self::StoreUnavailable => "Store unavailable",
            Self::Internal => "Internal error",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The crate's error: a code, a status, words for a person, and optionally the cause.
///
/// Every service of the kit turns an `Error` into its JSON response with
/// [`Error::into_response`], so services never fail at the tower level.
///
/// ```
/// use chatkit_tower::{Error, ErrorCode};
///
/// let err = Error::new(ErrorCode::BadRequest, "body is not JSON");
/// let res = err.into_response();
/// assert_eq!(res.status(), 400);
/// ```
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    code: ErrorCode,
    status: StatusCode,
    message: Cow<'static, str>,
    details: Cow<'static, str>,
    retry_after: Option<HeaderValue>,
    allow: Option<HeaderValue>,
    request_id: Option<HeaderValue>,
    upstream_status: Option<StatusCode>,
    connect: bool,
    source: Option<BoxError>,
}

impl Error {
    /// An error with `code`, its default status and headline, and `details` (cut to a few hundred
    /// bytes).
    pub fn new(code: ErrorCode, details: impl Into<Cow<'static, str>>) -> Self {
        let mut details = details.into();
        if details.len() > MAX_DETAILS {
            let mut cut = MAX_DETAILS;
            while !details.is_char_boundary(cut) {
                cut -= 1;
            }
            details = Cow::Owned(format!("{}…", &details[..cut]));
        }
        Self {
            inner: Box::new(Inner {
                code,
                status: code.status(),
                message: Cow::Borrowed(code.headline()),
                details,
                retry_after: None,
                allow: None,
                request_id: None,
                upstream_status: None,
                connect: false,
                source: None,
            }),
        }
    }

    /// `401 UNAUTHORIZED`.
    pub fn unauthorized(details: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::Unauthorized, details)
    }

    /// `400 BAD_REQUEST`.
    pub fn bad_request(details: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::BadRequest, details)
    }

    /// `500 INTERNAL`.
    pub fn internal(details: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::Internal, details)
    }

    /// `405 METHOD_NOT_ALLOWED` with an `Allow` header listing `allowed`.
    ///
    /// ```
    /// use chatkit_tower::Error;
    /// let res = Error::method_not_allowed(&[http::Method::POST]).into_response();
    /// assert_eq!(res.headers()["allow"], "POST");
    /// ```
    pub fn method_not_allowed(allowed: &[http::Method]) -> Self {
        let list = allowed
            .iter()
            .map(http::Method::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        let mut err = Self::new(
            ErrorCode::MethodNotAllowed,
            format!("this endpoint accepts {list}"),
        );
        err.inner.allow = HeaderValue::from_str(&list).ok();
        err
    }

    /// Use `status` instead of the code's default (an upstream's own 4xx, say).
    #[must_use]
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.inner.status = status;
        self
    }

    /// Replace the headline in the body's `error` field.
    #[must_use]
    pub fn with_message(mut self, message: impl Into<Cow<'static, str>>) -> Self {
        self.inner.message = message.into();
        self
    }

    /// Attach the underlying cause (kept for logs and [`std::error::Error::source`], never sent).
    #[must_use]
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.inner.source = Some(source.into());
        self
    }

    /// Send this `Retry-After` value with the response.
    #[must_use]
    pub fn with_retry_after(mut self, value: HeaderValue) -> Self {
        self.inner.retry_after = Some(value);
        self
    }

    /// Pass the upstream's `x-request-id` on (what OpenAI staff ask for when debugging).
    #[must_use]
    pub fn with_request_id(mut self, value: HeaderValue) -> Self {
        self.inner.request_id = Some(value);
        self
    }

    /// Record the status the upstream answered with (kept for fallback decisions and logs, even
    /// when the response carries another status).
    #[must_use]
    pub fn with_upstream_status(mut self, status: StatusCode) -> Self {
        self.inner.upstream_status = Some(status);
        self
    }

    /// Mark a transport failure that happened while connecting, so the request never reached the
    /// upstream and is safe to send again.
    #[must_use]
    pub fn connect_failure(mut self) -> Self {
        self.inner.connect = true;
        self
    }

    /// The error's code.
    pub fn code(&self) -> ErrorCode {
        self.inner.code
    }

    /// The status the response will carry.
    pub fn status(&self) -> StatusCode {
        self.inner.status
    }

    /// The words in the body's `details` field.
    pub fn details(&self) -> &str {
        &self.inner.details
    }

    /// The `Retry-After` value passed on, if any.
    pub fn retry_after(&self) -> Option<&HeaderValue> {
        self.inner.retry_after.as_ref()
    }

    /// The status the upstream answered with, when the error is an upstream's answer.
    pub fn upstream_status(&self) -> Option<StatusCode> {
        self.inner.upstream_status
    }

    /// The upstream's `x-request-id`, passed on in the response.
    pub fn request_id(&self) -> Option<&HeaderValue> {
        self.inner.request_id.as_ref()
    }

    /// Whether the request failed before it reached the upstream (refused or failed connect).
    pub fn is_connect(&self) -> bool {
        self.inner.connect
    }

    /// Turn any boxed error into an `Error`: an `Error` inside is unwrapped, anything else
    /// becomes `fallback` with the cause attached.
    pub fn from_boxed(err: BoxError, fallback: ErrorCode) -> Self {
        match err.downcast::<Error>() {
            Ok(err) => *err,
            Err(other) => Self::new(fallback, other.to_string()).with_source(other),
        }
    }

    /// The JSON body's bytes.
    pub fn to_json(&self) -> Bytes {
        #[derive(serde::Serialize)]
        struct Wire<'a> {
            error: &'a str,
            code: &'a str,
            details: &'a str,
        }
        let wire = Wire {
            error: &self.inner.message,
            code: self.inner.code.as_str(),
            details: &self.inner.details,
        };
        // Serializing three strings cannot fail.
        Bytes::from(serde_json::to_vec(&wire).unwrap_or_default())
    }

    /// The response: the status, `Content-Type: application/json`, `Cache-Control: no-store`,
    /// `Allow` / `Retry-After` / `WWW-Authenticate` where they apply, and the JSON body.
    pub fn into_response(self) -> Response<Body> {
        let mut res = Response::new(Body::from(self.to_json()));
        *res.status_mut() = self.inner.status;
        let headers = res.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(allow) = self.inner.allow {
            headers.insert(ALLOW, allow);
        }
        if let Some(retry_after) = self.inner.retry_after {
            headers.insert(RETRY_AFTER, retry_after);
        }
        if let Some(request_id) = self.inner.request_id {
            headers.insert(X_REQUEST_ID, request_id);
        }
        if self.inner.status == StatusCode::UNAUTHORIZED {
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("code", &self.inner.code)
            .field("status", &self.inner.status.as_u16())
            .field("details", &self.inner.details)
            .field("upstream_status", &self.inner.upstream_status)
            .field("source", &self.inner.source)
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.inner.message, self.inner.code, self.inner.details
        )
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// A setting that cannot work: returned by every `build()` and by [`Config::from_env`], never
/// a panic.
///
/// [`Config::from_env`]: crate::Config::from_env
///
/// ```
/// use chatkit_tower::ConfigError;
/// let err = ConfigError::variable("PORT", "not a number: \"abc\"");
/// assert_eq!(err.to_string(), "PORT: not a number: \"abc\"");
/// assert_eq!(err.variable_name(), Some("PORT"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    variable: Option<&'static str>,
    message: String,
}

impl ConfigError {
    /// A setting made in code is wrong.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            variable: None,
            message: message.into(),
        }
    }

    /// The environment variable `name` holds a bad value.
    pub fn variable(name: &'static str, message: impl Into<String>) -> Self {
        Self {
            variable: Some(name),
            message: message.into(),
        }
    }

    /// The environment variable at fault, when the setting came from one.
    pub fn variable_name(&self) -> Option<&'static str> {
        self.variable
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.variable {
            Some(name) => write!(f, "{name}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_error_code_and_details() {
        let err = Error::new(ErrorCode::SessionError, "Backend unreachable");
        let json: serde_json::Value = serde_json::from_slice(&err.to_json()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "error": "Session creation failed",
                "code": "SESSION_ERROR",
                "details": "Backend unreachable"
            })
        );
    }

    #[test]
    fn long_details_are_cut_on_a_char_boundary() {
        let err = Error::bad_request("é".repeat(400));
        assert!(err.details().len() <= MAX_DETAILS + '…'.len_utf8());
        assert!(err.details().ends_with('…'));
    }

    #[test]
    fn every_code_has_its_documented_status() {
        use ErrorCode::*;
        let table = [
            (Unauthorized, 401),
            (Forbidden, 403),
            (ModelNotAllowed, 403),
            (BadRequest, 400),
            (PayloadTooLarge, 413),
            (MethodNotAllowed, 405),
            (RequestTimeout, 408),
            (NotFound, 404),
            (RateLimited, 429),
            (SessionError, 502),
            (UpstreamError, 502),
            (BackendUnreachable, 502),
            (BackendTimeout, 504),
            (AuthUnavailable, 503),
            (StoreUnavailable, 503),
            (Internal, 500),
        ];
        for (code, status) in table {
            assert_eq!(code.status().as_u16(), status, "{code}");
            let res = Error::new(code, "x").into_response();
            assert_eq!(res.status().as_u16(), status);
            assert_eq!(res.headers()[CONTENT_TYPE], "application/json");
        }
    }

    #[test]
    fn boxed_error_round_trips() {
        let boxed: BoxError = Box::new(Error::new(ErrorCode::BackendTimeout, "slow"));
        let err = Error::from_boxed(boxed, ErrorCode::Internal);
        assert_eq!(err.code(), ErrorCode::BackendTimeout);
        let other: BoxError = "plain".into();
        assert_eq!(
            Error::from_boxed(other, ErrorCode::BackendUnreachable).code(),
            ErrorCode::BackendUnreachable
        );
    }
}
