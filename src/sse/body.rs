//! [`SseBody`]: a response body that encodes a stream of [`Event`]s.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use http::header::{HeaderMap, HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http::Response;
use http_body::{Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::Instant;

use super::event::{error_event, Event, KeepAlive};
use super::timer::Quiet;
use crate::body::Body;
use crate::error::{BoxError, Error, ErrorCode};

/// The most bytes written in one frame when events are already waiting.
pub(crate) const MAX_BATCH: usize = 64 * 1024;

pin_project! {
    /// An [`http_body::Body`] that writes each [`Event`] of a stream in its exact wire form.
    ///
    /// Events are written as soon as the stream yields them; events that are already waiting
    /// when the body is polled go out together in one frame (up to 64 KiB), so a burst costs one
    /// write, and a lone event is never held back. With [`keep_alive`](Self::keep_alive), a
    /// comment goes out after each quiet interval.
    ///
    /// The stream may yield `Event`s or `Result<Event, E>`s (see [`SseItem`]). An `Err` ends
    /// the body cleanly after one `event: error` event whose data is a
    /// [`ChatFrame::Error`](crate::backend::ChatFrame::Error): a stream that has started
    /// cannot change its status any more, and a broken chunked encoding tells the browser
    /// nothing. The body itself therefore never fails.
    ///
    /// Keep-alive needs a tokio runtime with time enabled (the timer is created on first poll).
    ///
    /// ```
    /// use chatkit_tower::sse::{Event, KeepAlive, SseBody};
    /// use futures_util::{stream, StreamExt};
    /// use http_body_util::BodyExt;
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let events = stream::iter(["Hel", "lo"]).map(|text| Event::new().data(text));
    /// let body = SseBody::new(events).keep_alive(KeepAlive::new());
    /// let bytes = body.collect().await.unwrap().to_bytes();
    /// assert_eq!(bytes, "data: Hel\n\ndata: lo\n\n");
    /// # });
    /// ```
    pub struct SseBody<S> {
        #[pin]
        stream: S,
        keep_alive: Option<KeepAlive>,
        timer: Quiet,
        last_sent: Option<Instant>,
        buf: BytesMut,
        done: bool,
    }
}

impl<S> SseBody<S> {
    /// A body writing the events of `stream`, without keep-alive comments.
    pub fn new(stream: S) -> Self {
        Self {
            stream,
            keep_alive: None,
            timer: Quiet::default(),
            last_sent: None,
            buf: BytesMut::new(),
            done: false,
        }
    }

    /// Send `keep_alive`'s comment whenever the stream has been quiet for its interval.
    #[must_use]
    pub fn keep_alive(mut self, keep_alive: KeepAlive) -> Self {
        self.keep_alive = Some(keep_alive);
        self
    }

    /// A `200` response with this body and the SSE headers: `Content-Type: text/event-stream`,
    /// `Cache-Control: no-cache`, and `X-Accel-Buffering: no` (so nginx does not buffer it).
    ///
    /// ```
    /// use chatkit_tower::sse::{Event, SseBody};
    /// use futures_util::stream;
    ///
    /// let res = SseBody::new(stream::iter([Event::new().data("hi")])).into_response();
    /// assert_eq!(res.headers()["content-type"], "text/event-stream");
    /// assert_eq!(res.headers()["x-accel-buffering"], "no");
    /// ```
    pub fn into_response(self) -> Response<Body>
    where
        S: Stream + Send + 'static,
        S::Item: SseItem,
    {
        let mut res = Response::new(Body::new(self));
        set_stream_headers(res.headers_mut(), None);
        res
    }
}

impl<S> fmt::Debug for SseBody<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SseBody")
            .field("keep_alive", &self.keep_alive)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<S> http_body::Body for SseBody<S>
where
    S: Stream,
    S::Item: SseItem,
{
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let mut this = self.project();
        if *this.done {
            return Poll::Ready(None);
        }
        // Take every event that is ready now; stop at the first pending poll, never wait.
        while this.buf.len() < MAX_BATCH {
            match this.stream.as_mut().poll_next(cx) {
                Poll::Ready(Some(item)) => match item.into_event() {
                    Ok(event) => event.write_to(this.buf),
                    Err(err) => {
                        let err = Error::from_boxed(err, ErrorCode::Internal);
                        tracing::debug!(error = %err, "event stream failed");
                        error_event(&err).write_to(this.buf);
                        *this.done = true;
                        break;
                    }
                },
                Poll::Ready(None) => {
                    *this.done = true;
                    break;
                }
                Poll::Pending => break,
            }
        }
        if !this.buf.is_empty() {
            if this.keep_alive.is_some() {
                *this.last_sent = Some(Instant::now());
            }
            return Poll::Ready(Some(Ok(Frame::data(this.buf.split().freeze()))));
        }
        if *this.done {
            return Poll::Ready(None);
        }
        if let Some(keep_alive) = this.keep_alive {
            let last = *this.last_sent.get_or_insert_with(Instant::now);
            let due = last + keep_alive.interval_duration();
            if this.timer.poll_until(due, cx).is_ready() {
                *this.last_sent = Some(due);
                return Poll::Ready(Some(Ok(Frame::data(keep_alive.to_bytes()))));
            }
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.buf.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// An item an [`SseBody`] accepts from its stream: an [`Event`], or a `Result<Event, E>` whose
/// error ends the stream with an `event: error`. Sealed: implemented for these two only.
pub trait SseItem: sealed::Sealed {
    /// The event, or why the stream failed.
    fn into_event(self) -> Result<Event, BoxError>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Event {}
    impl<E> Sealed for Result<super::Event, E> {}
}

impl SseItem for Event {
    #[inline]
    fn into_event(self) -> Result<Event, BoxError> {
        Ok(self)
    }
}

impl<E: Into<BoxError>> SseItem for Result<Event, E> {
    #[inline]
    fn into_event(self) -> Result<Event, BoxError> {
        self.map_err(Into::into)
    }
}

/// The stream headers: `content_type` (default `text/event-stream`), `Cache-Control:
/// no-cache`, `X-Accel-Buffering: no`.
pub(crate) fn set_stream_headers(headers: &mut HeaderMap, content_type: Option<HeaderValue>) {
    headers.insert(
        CONTENT_TYPE,
        content_type.unwrap_or(HeaderValue::from_static("text/event-stream")),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::{stream, StreamExt};
    use http_body::Body as _;
    use http_body_util::BodyExt;
    use std::time::Duration;

    async fn frames<B>(mut body: B) -> Vec<Bytes>
    where
        B: http_body::Body<Data = Bytes> + Unpin,
        B::Error: fmt::Debug,
    {
        let mut out = Vec::new();
        while let Some(frame) = body.frame().await {
            out.push(frame.unwrap().into_data().unwrap());
        }
        out
    }

    #[tokio::test]
    async fn ready_events_go_out_together() {
        let events = stream::iter(["a", "b\nc"]).map(|t| Event::new().data(t));
        let body = SseBody::new(events);
        assert_eq!(frames(body).await, ["data: a\n\ndata: b\ndata: c\n\n"]);
    }

    #[tokio::test]
    async fn a_lone_event_is_not_held_back() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Event>();
        let mut body = SseBody::new(tokio_stream(rx));
        tx.send(Event::new().data("first")).unwrap();
        let frame = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(frame, "data: first\n\n");
        tx.send(Event::new().id("2").unwrap()).unwrap();
        drop(tx);
        assert_eq!(frames(body).await, ["id: 2\n\n"]);
    }

    #[tokio::test]
    async fn an_error_item_ends_with_an_error_event() {
        let items: Vec<Result<Event, std::io::Error>> = vec![
            Ok(Event::new().data("x")),
            Err(std::io::Error::other("disk on fire")),
            Ok(Event::new().data("never")),
        ];
        let body = SseBody::new(stream::iter(items));
        let all: Vec<u8> = frames(body).await.concat();
        assert_eq!(
            String::from_utf8(all).unwrap(),
            "data: x\n\nevent: error\ndata: {\"type\":\"error\",\"code\":\"INTERNAL\",\"error\":\"disk on fire\"}\n\n"
        );
    }

    #[tokio::test]
    async fn big_bursts_are_cut_into_frames_of_at_most_the_cap_plus_one_event() {
        let line = "x".repeat(1000);
        let events = stream::iter(0..200).map(move |_| Event::new().data(&line));
        let out = frames(SseBody::new(events)).await;
        assert!(out.len() > 1);
        assert!(out.iter().all(|f| f.len() < MAX_BATCH + 1010));
        assert_eq!(out.iter().map(Bytes::len).sum::<usize>(), 200 * 1008);
    }

    #[tokio::test(start_paused = true)]
    async fn keep_alive_comments_fill_the_quiet_and_restart_after_each_event() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Event>();
        let interval = Duration::from_secs(15);
        let mut body = SseBody::new(tokio_stream(rx)).keep_alive(KeepAlive::new());
        let start = Instant::now();
        let frame = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(frame, ":\n\n");
        assert_eq!(Instant::now() - start, interval);

        tokio::time::sleep(Duration::from_secs(10)).await;
        tx.send(Event::new().data("e")).unwrap();
        let frame = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(frame, "data: e\n\n");
        let sent = Instant::now();
        let frame = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(frame, ":\n\n");
        assert_eq!(Instant::now() - sent, interval);
        drop(tx);
        assert!(body.frame().await.is_none());
        assert!(body.is_end_stream());
    }

    #[test]
    fn stream_headers() {
        let res = SseBody::new(stream::empty::<Event>()).into_response();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()[CONTENT_TYPE], "text/event-stream");
        assert_eq!(res.headers()[CACHE_CONTROL], "no-cache");
        assert_eq!(res.headers()["x-accel-buffering"], "no");
    }

    fn tokio_stream<T>(
        mut rx: tokio::sync::mpsc::UnboundedReceiver<T>,
    ) -> impl Stream<Item = T> + Unpin {
        stream::poll_fn(move |cx| rx.poll_recv(cx))
    }
}
