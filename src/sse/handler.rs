//! [`StreamHandler`]: events generated in Rust instead of proxied.

use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt};
use futures_util::Stream;
use http::Request;

use super::event::Event;
use crate::backend::{ReplyContext, Responder};
use crate::error::Error;
use crate::token::SessionClaims;

/// The events of one stream, as a [`StreamHandler`] returns them.
pub type EventStream = BoxStream<'static, Event>;

/// Generates the events of one stream in Rust: called with the verified session and the
/// request (its body already read, under the size limit).
///
/// An `Err` is answered as the kit's JSON error (a malformed body is `BAD_REQUEST`, say).
/// Once the stream runs, failures are events: send an `event: error` yourself, e.g.
/// `Event::from(&ChatFrame::Error { .. })`. A stream that is dropped early (the client went
/// away) must stop its work.
///
/// Any `Fn(SessionClaims, Request<Bytes>) -> Result<impl Stream<Item = Event>, Error>` is a
/// handler:
///
/// ```
/// use chatkit_tower::sse::{Event, StreamService};
/// use chatkit_tower::token::SessionKeys;
/// use futures_util::stream;
///
/// let keys = SessionKeys::random().unwrap();
/// let svc = StreamService::builder(keys)
///     .handler(|session: chatkit_tower::token::SessionClaims, _req: http::Request<bytes::Bytes>| {
///         let hello = Event::new().data(format!("hello, {}", session.user_id));
///         Ok(stream::iter([hello]))
///     })
///     .build()
///     .unwrap();
/// ```
pub trait StreamHandler: Send + Sync + 'static {
    /// Start the stream for `session`, or refuse the request.
    fn handle(&self, session: SessionClaims, request: Request<Bytes>)
        -> Result<EventStream, Error>;
}

impl<F, S> StreamHandler for F
where
    F: Fn(SessionClaims, Request<Bytes>) -> Result<S, Error> + Send + Sync + 'static,
    S: Stream<Item = Event> + Send + 'static,
{
    fn handle(
        &self,
        session: SessionClaims,
        request: Request<Bytes>,
    ) -> Result<EventStream, Error> {
        self(session, request).map(StreamExt::boxed)
    }
}

/// A [`Responder`] served over SSE: the body is `{"message": "…"}`, each
/// [`ChatFrame`](crate::backend::ChatFrame) is one `data: <json>` event.
pub(crate) struct ResponderHandler<R>(pub(crate) R);

#[derive(serde::Deserialize)]
struct MessageBody {
    message: String,
}

impl<R: Responder> StreamHandler for ResponderHandler<R> {
    fn handle(
        &self,
        session: SessionClaims,
        request: Request<Bytes>,
    ) -> Result<EventStream, Error> {
        let body: MessageBody = serde_json::from_slice(request.body()).map_err(|e| {
            Error::bad_request(format!(
                "the body must be JSON like {{\"message\": \"...\"}} ({e})"
            ))
        })?;
        let ctx = ReplyContext::new(session.session_id, session.user_id);
        Ok(self
            .0
            .respond(ctx, body.message)
            .map(|frame| Event::from(&frame))
            .boxed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::DemoResponder;
    use crate::ErrorCode;
    use std::time::Duration;

    fn request(body: &'static str) -> Request<Bytes> {
        Request::post("/")
            .body(Bytes::from_static(body.as_bytes()))
            .unwrap()
    }

    #[tokio::test]
    async fn responder_frames_become_data_events() {
        let handler = ResponderHandler(DemoResponder::new(Duration::ZERO));
        let claims = SessionClaims::new("s", "u", u64::MAX);
        let events: Vec<Event> = handler
            .handle(claims, request(r#"{"message":"hi there"}"#))
            .unwrap()
            .collect()
            .await;
        let wire: Vec<u8> = events.iter().flat_map(|e| e.to_bytes().to_vec()).collect();
        assert_eq!(
            String::from_utf8(wire).unwrap(),
            "data: {\"type\":\"delta\",\"text\":\"hi \"}\n\n\
             data: {\"type\":\"delta\",\"text\":\"there\"}\n\n\
             data: {\"type\":\"done\"}\n\n"
        );
    }

    #[test]
    fn malformed_bodies_are_bad_requests() {
        let handler = ResponderHandler(DemoResponder::new(Duration::ZERO));
        for body in ["", "{", "[]", r#"{"text":"hi"}"#, r#"{"message":5}"#] {
            let claims = SessionClaims::new("s", "u", u64::MAX);
            let err = handler.handle(claims, request(body)).err().unwrap();
            assert_eq!(err.code(), ErrorCode::BadRequest, "{body}");
        }
    }
}
