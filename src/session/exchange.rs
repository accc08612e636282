//! The plumbing both HTTP session upstreams share: one bounded exchange with the upstream, and
//! the mapping of a refusal to the kit's error.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{Request, Response, StatusCode};
use http_body_util::combinators::Collect;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use pin_project_lite::pin_project;
use serde_json::Value;
use tower::util::Oneshot;
use tower::ServiceExt;
use tower_service::Service;

use crate::error::{BoxError, Error, ErrorCode};

/// Largest answer read from a session upstream.
pub(crate) const MAX_ANSWER: usize = 64 * 1024;
/// Longest upstream message quoted in `details`.
const MAX_QUOTE: usize = 200;

const X_REQUEST_ID: &str = "x-request-id";

/// Send `req` through `client` and read the answer whole, all within `timeout`.
pub(crate) fn exchange<S, B>(
    client: S,
    req: Request<Full<Bytes>>,
    timeout: Duration,
) -> Exchange<S, B>
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>>,
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    Exchange {
        state: State::Calling {
            call: client.oneshot(req),
        },
        deadline: tokio::time::sleep(timeout),
        timeout,
    }
}

pin_project! {
    /// The future of [`exchange`]: written out rather than an `async fn`, whose state would
    /// keep the request twice (as its argument and inside the call it awaits) on the hot path
    /// of every session.
    pub(crate) struct Exchange<S, B>
    where
        S: Service<Request<Full<Bytes>>>,
        B: http_body::Body,
        B::Error: Into<BoxError>,
    {
        #[pin]
        state: State<S, B>,
        #[pin]
        deadline: tokio::time::Sleep,
        timeout: Duration,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B>
    where
        S: Service<Request<Full<Bytes>>>,
        B: http_body::Body,
        B::Error: Into<BoxError>,
    {
        Calling { #[pin] call: Oneshot<S, Request<Full<Bytes>>> },
        Reading { parts: Option<http::response::Parts>, #[pin] body: Collect<Limited<B>> },
    }
}

impl<S, B> Future for Exchange<S, B>
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>>,
    S::Error: Into<BoxError>,
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Output = Result<(http::response::Parts, Bytes), Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Calling { call } => match call.poll(cx) {
                    Poll::Ready(Ok(res)) => {
                        let (parts, body) = res.into_parts();
                        this.state.set(State::Reading {
                            parts: Some(parts),
                            body: Limited::new(body, MAX_ANSWER).collect(),
                        });
                    }
                    Poll::Ready(Err(e)) => {
                        return Poll::Ready(Err(Error::from_boxed(
                            e.into(),
                            ErrorCode::BackendUnreachable,
                        )))
                    }
                    Poll::Pending => break,
                },
                StateProj::Reading { parts, body } => match body.poll(cx) {
                    Poll::Ready(result) => {
                        let parts = parts
                            .take()
                            .expect("an exchange is not polled after it ends");
                        return Poll::Ready(match result {
                            Ok(body) => Ok((parts, body.to_bytes())),
                            Err(err) if err.is::<LengthLimitError>() => Err(Error::new(
                                ErrorCode::SessionError,
                                format!("the upstream's answer is over {MAX_ANSWER} bytes"),
                            )),
                            Err(err) => Err(Error::from_boxed(err, ErrorCode::BackendUnreachable)),
                        });
                    }
                    Poll::Pending => break,
                },
            }
        }
        match this.deadline.poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Error::new(
                ErrorCode::BackendTimeout,
                format!(
                    "the upstream did not answer within {} ms",
                    this.timeout.as_millis()
                ),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The answer as a JSON object, or a `SESSION_ERROR` saying what it was instead.
pub(crate) fn json_object(
    parts: &http::response::Parts,
    body: &[u8],
) -> Result<serde_json::Map<String, Value>, Error> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => {
            let kind = parts
                .headers
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("no content type");
            Err(Error::new(
                ErrorCode::SessionError,
                format!("the upstream answered {kind}, not a JSON object"),
            ))
        }
    }
}

/// Map a non-2xx answer: 429 → `RATE_LIMITED` (with `Retry-After`); our own key refused
/// (401/403) → 502 naming `key_variable`; other 4xx → `SESSION_ERROR` with that status; 5xx →
/// `SESSION_ERROR` 502. The upstream's message is quoted (short, with `secret` scrubbed).
pub(crate) fn failure(
    name: &str,
    parts: &http::response::Parts,
    body: &[u8],
    secret: &str,
    key_variable: &str,
) -> Error {
    let status = parts.status;
    let quoted = quote_upstream(body, secret)
        .map(|m| format!(": {m}"))
        .unwrap_or_default();
    let err = if status == StatusCode::TOO_MANY_REQUESTS {
        let err = Error::new(
            ErrorCode::RateLimited,
            format!("{name} is rate limiting session creation{quoted}"),
        );
        match parts.headers.get(RETRY_AFTER) {
            Some(v) => err.with_retry_after(v.clone()),
            None => err,
        }
    } else if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        // Our own key being refused is a server problem, not the browser's credential.
        Error::new(
            ErrorCode::SessionError,
            format!(
                "{name} refused the server's credentials ({}){quoted}; check {key_variable}",
                status.as_u16()
            ),
        )
    } else {
        let err = Error::new(
            ErrorCode::SessionError,
            format!("{name} answered {}{quoted}", status.as_u16()),
        );
        if status.is_client_error() {
            err.with_status(status)
        } else {
            err
        }
    };
    with_request_id(err.with_upstream_status(status), parts)
}

/// Pass the upstream's `x-request-id` on with `err`.
pub(crate) fn with_request_id(err: Error, parts: &http::response::Parts) -> Error {
    match parts.headers.get(X_REQUEST_ID) {
        Some(id) => err.with_request_id(id.clone()),
        None => err,
    }
}

/// An upstream's own words from an error answer, shortened, never holding `secret`.
pub(crate) fn quote_upstream(body: &[u8], secret: &str) -> Option<String> {
    let json: Value = serde_json::from_slice(body).ok()?;
    upstream_message(&json).map(|m| scrub(m, secret))
}

/// The human message in an error answer: `error` (a string or `{message}`), `message`, `detail`.
pub(crate) fn upstream_message(json: &Value) -> Option<&str> {
    match json.get("error") {
        Some(Value::String(s)) => return Some(s),
        Some(Value::Object(o)) => {
            if let Some(Value::String(s)) = o.get("message") {
                return Some(s);
            }
        }
        _ => {}
    }
    ["message", "detail", "details"]
        .iter()
        .find_map(|k| json.get(*k).and_then(Value::as_str))
}

/// Cut `message` short and never quote `secret` back, even if the upstream echoes it.
fn scrub(message: &str, secret: &str) -> String {
    let mut quoted: String = message.chars().take(MAX_QUOTE).collect();
    if quoted.len() < message.len() {
        quoted.push('…');
    }
    if !secret.is_empty() {
        quoted = quoted.replace(secret, "[redacted]");
    }
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_messages_are_found_in_common_shapes() {
        let j = serde_json::json!({"error": {"message": "nope"}});
        assert_eq!(upstream_message(&j), Some("nope"));
        let j = serde_json::json!({"detail": "missing"});
        assert_eq!(upstream_message(&j), Some("missing"));
        assert_eq!(upstream_message(&serde_json::json!([1])), None);
    }

    #[test]
    fn secrets_are_scrubbed_and_long_messages_cut() {
        assert_eq!(scrub("key sk-123 bad", "sk-123"), "key [redacted] bad");
        assert!(scrub(&"x".repeat(500), "").ends_with('…'));
    }
}
