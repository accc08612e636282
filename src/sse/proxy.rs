//! [`ProxyBody`]: an upstream stream passed on byte for byte, with bursts written together, an
//! idle timeout, keep-alive comments between events, and a clean end on failure.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http_body::{Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::Instant;

use super::body::MAX_BATCH;
use super::event::{error_event, KeepAlive};
use super::timer::Quiet;
use crate::error::{BoxError, Error, ErrorCode};

/// The most upstream frames taken in one poll (a bound for upstreams sending empty frames).
const MAX_POLLS: usize = 1024;

/// How a proxied stream behaves once it has started.
#[derive(Debug, Clone)]
pub(crate) struct ProxySettings {
    /// No upstream bytes for this long ends the stream with an error event.
    pub(crate) idle_timeout: Duration,
    /// Comments toward the client while the upstream is quiet (SSE answers only).
    pub(crate) keep_alive: Option<KeepAlive>,
}

pin_project! {
    /// The upstream's body, passed on unchanged.
    ///
    /// - Chunks that are ready when polled are concatenated into one frame (up to 64 KiB), so a
    ///   burst costs one write; the first pending poll ends the batch, so nothing waits.
    /// - No bytes from the upstream for `idle_timeout` → an `event: error` (`BACKEND_TIMEOUT`),
    ///   then the end.
    /// - An upstream failure → an `event: error` (`BACKEND_UNREACHABLE`), then a clean end.
    /// - Keep-alive comments go out only between events (never inside a half-sent one), and only
    ///   on `text/event-stream` answers.
    ///
    /// Dropping it drops the upstream body, which closes the upstream request at once.
    pub(crate) struct ProxyBody<B> {
        #[pin]
        upstream: B,
        idle_timeout: Duration,
        keep_alive: Option<KeepAlive>,
        timer: Quiet,
        last_received: Instant,
        last_sent: Instant,
        tail: Tail,
        done: bool,
    }
}

impl<B> ProxyBody<B> {
    /// Pass `upstream` on; `event_stream` says whether it is SSE (keep-alive comments allowed).
    pub(crate) fn new(upstream: B, settings: &ProxySettings, event_stream: bool) -> Self {
        let now = Instant::now();
        Self {
            upstream,
            idle_timeout: settings.idle_timeout,
            keep_alive: settings.keep_alive.clone().filter(|_| event_stream),
            timer: Quiet::default(),
            last_received: now,
            last_sent: now,
            tail: Tail::default(),
            done: false,
        }
    }
}

impl<B> http_body::Body for ProxyBody<B>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
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
        let mut batch = Batch::default();
        let mut failure = None;
        let mut polls = 0;
        while batch.len() < MAX_BATCH {
            if polls == MAX_POLLS {
                if batch.is_empty() {
                    // Only empty frames so far: come back later instead of spinning here.
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                break;
            }
            polls += 1;
            match this.upstream.as_mut().poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    // Trailers have no place in an event stream; only data is passed on.
                    if let Ok(data) = frame.into_data() {
                        batch.push(data);
                    }
                }
                Poll::Ready(Some(Err(err))) => {
                    failure = Some(broke_off(err.into()));
                    break;
                }
                Poll::Ready(None) => {
                    *this.done = true;
                    break;
                }
                Poll::Pending => break,
            }
        }
        if let Some(err) = failure {
            tracing::debug!(error = %err, "the stream upstream failed mid-stream");
            *this.done = true;
            let mut out = batch.into_mut();
            this.tail.update(&out);
            end_with_error(&mut out, this.tail, &err);
            return Poll::Ready(Some(Ok(Frame::data(out.freeze()))));
        }
        if !batch.is_empty() {
            let out = batch.into_bytes();
            this.tail.update(&out);
            let now = Instant::now();
            *this.last_received = now;
            *this.last_sent = now;
            return Poll::Ready(Some(Ok(Frame::data(out))));
        }
        if *this.done {
            return Poll::Ready(None);
        }

        // Nothing to send: wait for the idle deadline or the next keep-alive, whichever is first.
        let idle_at = *this.last_received + *this.idle_timeout;
        let keep_alive_at = this
            .keep_alive
            .as_ref()
            .filter(|_| this.tail.at_boundary())
            .map(|k| *this.last_sent + k.interval_duration());
        let deadline = keep_alive_at.map_or(idle_at, |k| k.min(idle_at));
        if this.timer.poll_until(deadline, cx).is_pending() {
            return Poll::Pending;
        }
        if deadline == idle_at {
            *this.done = true;
            let err = Error::new(
                ErrorCode::BackendTimeout,
                format!(
                    "the backend sent nothing for {} ms",
                    this.idle_timeout.as_millis()
                ),
            );
            tracing::debug!(error = %err, "the stream upstream went quiet");
            let mut out = BytesMut::new();
            end_with_error(&mut out, this.tail, &err);
            return Poll::Ready(Some(Ok(Frame::data(out.freeze()))));
        }
        *this.last_sent = deadline;
        let comment = this
            .keep_alive
            .as_ref()
            .map(KeepAlive::to_bytes)
            .unwrap_or_default();
        this.tail.update(&comment);
        Poll::Ready(Some(Ok(Frame::data(comment))))
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

fn broke_off(err: BoxError) -> Error {
    let err = Error::from_boxed(err, ErrorCode::BackendUnreachable);
    Error::new(
        err.code(),
        "the backend's stream broke off before it was complete",
    )
    .with_source(err)
}

/// Append the error event to `out`, first ending whatever half-sent event the upstream left,
/// so the error is parsed as an event of its own.
fn end_with_error(out: &mut BytesMut, tail: &Tail, err: &Error) {
    if !tail.at_boundary() {
        out.put_slice(b"\n\n");
    }
    error_event(err).write_to(out);
}

/// The chunks of one batch: a lone chunk is passed on as it is, more are copied into one.
#[derive(Default)]
struct Batch {
    first: Option<Bytes>,
    joined: Option<BytesMut>,
}

impl Batch {
    fn push(&mut self, data: Bytes) {
        if data.is_empty() {
            return;
        }
        if let Some(joined) = &mut self.joined {
            joined.put_slice(&data);
        } else if let Some(first) = self.first.take() {
            let mut joined = BytesMut::with_capacity((first.len() + data.len()).max(4096));
            joined.put_slice(&first);
            joined.put_slice(&data);
            self.joined = Some(joined);
        } else {
            self.first = Some(data);
        }
    }

    fn len(&self) -> usize {
        match (&self.joined, &self.first) {
            (Some(joined), _) => joined.len(),
            (None, Some(first)) => first.len(),
            (None, None) => 0,
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn into_bytes(self) -> Bytes {
        match (self.joined, self.first) {
            (Some(joined), _) => joined.freeze(),
            (None, Some(first)) => first,
            (None, None) => Bytes::new(),
        }
    }

    fn into_mut(self) -> BytesMut {
        match (self.joined, self.first) {
            (Some(joined), _) => joined,
            (None, first) => BytesMut::from(&first.unwrap_or_default()[..]),
        }
    }
}

/// The last bytes sent, to tell whether the stream stands between two events.
#[derive(Default, Clone, Copy)]
struct Tail {
    bytes: [u8; 4],
    len: usize,
}

impl Tail {
    fn update(&mut self, data: &[u8]) {
        let take = data.len().min(4);
        let keep = (4 - take).min(self.len);
        self.bytes.copy_within(4 - keep.., 4 - keep - take);
        self.bytes[4 - take..].copy_from_slice(&data[data.len() - take..]);
        self.len = keep + take;
    }

    /// Whether what was sent ends with an empty line (two line ends in a row), or nothing was
    /// sent yet.
    fn at_boundary(&self) -> bool {
        let tail = &self.bytes[4 - self.len..];
        let rest = if tail.ends_with(b"\r\n") {
            &tail[..tail.len() - 2]
        } else if tail.ends_with(b"\n") || tail.ends_with(b"\r") {
            &tail[..tail.len() - 1]
        } else {
            return tail.is_empty();
        };
        // With fewer than four bytes seen, the stream began right there.
        matches!(rest.last(), Some(b'\n' | b'\r')) || (rest.is_empty() && self.len < 4)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::stream;
    use http_body::Body as _;
    use http_body_util::{BodyExt, StreamBody};

    fn settings(idle_ms: u64, keep_alive_ms: Option<u64>) -> ProxySettings {
        ProxySettings {
            idle_timeout: Duration::from_millis(idle_ms),
            keep_alive: keep_alive_ms
                .map(|ms| KeepAlive::new().interval(Duration::from_millis(ms))),
        }
    }

    type Chunk = Result<Frame<Bytes>, std::io::Error>;

    fn data(s: &'static str) -> Chunk {
        Ok(Frame::data(Bytes::from_static(s.as_bytes())))
    }

    /// An upstream fed through a channel, like a network body.
    fn channel() -> (
        tokio::sync::mpsc::UnboundedSender<Chunk>,
        StreamBody<impl futures_util::Stream<Item = Chunk>>,
    ) {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        (
            tx,
            StreamBody::new(stream::poll_fn(move |cx| rx.poll_recv(cx))),
        )
    }

    async fn next(
        body: &mut (impl http_body::Body<Data = Bytes, Error = Error> + Unpin),
    ) -> Option<String> {
        let frame = body.frame().await?.unwrap().into_data().unwrap();
        Some(String::from_utf8(frame.to_vec()).unwrap())
    }

    #[test]
    fn tail_knows_event_boundaries() {
        let at = |chunks: &[&str]| {
            let mut tail = Tail::default();
            for c in chunks {
                tail.update(c.as_bytes());
            }
            tail.at_boundary()
        };
        assert!(at(&[]));
        assert!(at(&["data: a\n\n"]));
        assert!(at(&["data: a\r\n\r\n"]));
        assert!(at(&["data: a\r\r"]));
        assert!(at(&["data: a\n", "\n"]));
        assert!(at(&["data: a\r", "\n", "\r", "\n"]));
        assert!(at(&["a\n", "\r\n"]));
        assert!(at(&["\n"]));
        assert!(!at(&["data: a\n"]));
        assert!(!at(&["data: a\r\n"]));
        assert!(!at(&["data: a"]));
        assert!(!at(&["data: a\n\ndata: b"]));
        assert!(!at(&["x\n\n", "d"]));
    }

    #[tokio::test]
    async fn ready_chunks_are_joined_and_bytes_kept() {
        let (tx, upstream) = channel();
        let mut body = ProxyBody::new(upstream, &settings(1000, None), true);
        tx.send(data("data: 1\n\n")).unwrap();
        tx.send(data("data: 2\r\n\r\n")).unwrap();
        tx.send(data("dat")).unwrap();
        assert_eq!(
            next(&mut body).await.unwrap(),
            "data: 1\n\ndata: 2\r\n\r\ndat"
        );
        tx.send(data("a: 3\n\n")).unwrap();
        assert_eq!(next(&mut body).await.unwrap(), "a: 3\n\n");
        drop(tx);
        assert_eq!(next(&mut body).await, None);
        assert!(body.is_end_stream());
    }

    #[tokio::test]
    async fn a_failure_mid_event_ends_that_event_then_sends_an_error_event() {
        let (tx, upstream) = channel();
        let mut body = ProxyBody::new(upstream, &settings(1000, None), true);
        tx.send(data("data: 1\n\ndata: hal")).unwrap();
        tx.send(Err(std::io::Error::other("reset"))).unwrap();
        let all = next(&mut body).await.unwrap();
        assert_eq!(
            all,
            "data: 1\n\ndata: hal\n\nevent: error\ndata: {\"type\":\"error\",\"code\":\"BACKEND_UNREACHABLE\",\"error\":\"the backend's stream broke off before it was complete\"}\n\n"
        );
        assert_eq!(next(&mut body).await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_quiet_upstream_times_out_with_an_error_event() {
        let (tx, upstream) = channel();
        let mut body = ProxyBody::new(upstream, &settings(300, None), true);
        tx.send(data("data: 1\n\n")).unwrap();
        assert_eq!(next(&mut body).await.unwrap(), "data: 1\n\n");
        let quiet_from = Instant::now();
        let end = next(&mut body).await.unwrap();
        assert_eq!(Instant::now() - quiet_from, Duration::from_millis(300));
        assert_eq!(
            end,
            "event: error\ndata: {\"type\":\"error\",\"code\":\"BACKEND_TIMEOUT\",\"error\":\"the backend sent nothing for 300 ms\"}\n\n"
        );
        assert_eq!(next(&mut body).await, None);
        drop(tx);
    }

    #[tokio::test(start_paused = true)]
    async fn keep_alive_only_between_events_and_separate_from_the_idle_timeout() {
        let (tx, upstream) = channel();
        let mut body = ProxyBody::new(upstream, &settings(1000, Some(400)), true);
        tx.send(data("data: 1\n\n")).unwrap();
        assert_eq!(next(&mut body).await.unwrap(), "data: 1\n\n");
        let t0 = Instant::now();
        assert_eq!(next(&mut body).await.unwrap(), ":\n\n");
        assert_eq!(Instant::now() - t0, Duration::from_millis(400));
        assert_eq!(next(&mut body).await.unwrap(), ":\n\n");
        assert_eq!(Instant::now() - t0, Duration::from_millis(800));
        // Comments do not count as upstream activity: the idle timeout still fires at 1 s.
        let end = next(&mut body).await.unwrap();
        assert_eq!(Instant::now() - t0, Duration::from_millis(1000));
        assert!(end.starts_with("event: error\n"), "{end}");

        // Half an event: no comment may be put inside it.
        let (tx2, upstream) = channel();
        let mut body = ProxyBody::new(upstream, &settings(1000, Some(100)), true);
        tx2.send(data("data: par")).unwrap();
        assert_eq!(next(&mut body).await.unwrap(), "data: par");
        let end = next(&mut body).await.unwrap();
        assert!(end.starts_with("\n\nevent: error\n"), "{end}");
        drop((tx, tx2));
    }

    #[tokio::test(start_paused = true)]
    async fn no_keep_alive_comments_in_answers_that_are_not_sse() {
        let (tx, upstream) = channel();
        let mut body = ProxyBody::new(upstream, &settings(500, Some(100)), false);
        let t0 = Instant::now();
        assert!(next(&mut body).await.unwrap().starts_with("event: error\n"));
        assert_eq!(Instant::now() - t0, Duration::from_millis(500));
        drop(tx);
    }

    #[tokio::test]
    async fn collect_passes_everything() {
        let chunks = vec![data("a"), data(""), data("b"), data("c")];
        let body = ProxyBody::new(
            StreamBody::new(stream::iter(chunks)),
            &settings(1000, None),
            true,
        );
        assert_eq!(body.collect().await.unwrap().to_bytes(), "abc");
    }
}
