//! The stream endpoint over real TCP on both sides: the kit served like any hyper app, and a
//! small hyper server in the test as the streaming backend (wiremock cannot stream). The test
//! drives the backend event by event and reads the client incrementally.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chatkit_tower::backend::DemoResponder;
use chatkit_tower::client::HttpClient;
use chatkit_tower::sse::{KeepAlive, StreamBackend, StreamService, StreamServiceBuilder};
use chatkit_tower::token::{SessionClaims, SessionKeys};
use common::{within, TestServer};
use futures_util::stream;
use http::{Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

const BACKEND_KEY: &str = "backend-secret-key-do-not-leak";
const SEALING_KEY: &str = "sealing-key-0123456789abcdef0123456789";

type Chunk = Result<Frame<Bytes>, std::io::Error>;

fn keys() -> SessionKeys {
    SessionKeys::new([SEALING_KEY]).unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A client secret as the session endpoint hands it out.
fn secret() -> String {
    keys().seal(&SessionClaims::new("sess_42", "user_7", now() + 600))
}

// ---------------------------------------------------------------------------------------------
// The streaming backend.

/// How the test backend answers.
#[derive(Clone)]
enum Behaviour {
    /// `200 text/event-stream` (or this content type), its body fed by the test through
    /// [`Call::tx`].
    Stream(&'static str),
    /// A fixed answer.
    Answer(u16, &'static str),
    /// Headers only after this long.
    SlowHeaders(Duration),
    /// `200 text/event-stream` with this many events, each its own chunk, all ready at once.
    Burst(usize),
}

/// One request the backend received.
struct Call {
    req: http::request::Parts,
    body: Bytes,
    /// Feeds the answer's body; sending fails once the backend dropped it (connection gone).
    tx: mpsc::Sender<Chunk>,
}

struct Backend {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    calls: mpsc::UnboundedReceiver<Call>,
    /// One message per connection that closed.
    closed: mpsc::UnboundedReceiver<()>,
    task: JoinHandle<()>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Backend {
    async fn start(behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let (calls_tx, calls) = mpsc::unbounded_channel();
        let (closed_tx, closed) = mpsc::unbounded_channel();
        let counter = requests.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (behaviour, counter, calls_tx, closed_tx) = (
                    behaviour.clone(),
                    counter.clone(),
                    calls_tx.clone(),
                    closed_tx.clone(),
                );
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let (behaviour, counter, calls_tx) =
                        (behaviour.clone(), counter.clone(), calls_tx.clone());
                    async move {
                        counter.fetch_add(1, Ordering::SeqCst);
                        let (parts, body) = req.into_parts();
                        let body = body.collect().await.unwrap().to_bytes();
                        Ok::<_, Infallible>(answer(behaviour, parts, body, &calls_tx).await)
                    }
                });
                tokio::spawn(async move {
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tcp), svc)
                        .await;
                    let _ = closed_tx.send(());
                });
            }
        });
        Self {
            addr,
            requests,
            calls,
            closed,
            task,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The next request, with the sender of its answer's body.
    /// Keep `call`'s answer talking until sending fails (nobody reads it any more), then wait
    /// for its connection to close. Both under the test timeout.
    async fn closes_while_talking(&mut self, call: &Call) {
        within(async {
            while call
                .tx
                .send(Ok(Frame::data(Bytes::from_static(b": tick\n\n"))))
                .await
                .is_ok()
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        within(self.closed.recv())
            .await
            .expect("the backend connection should close");
    }

    async fn call(&mut self) -> Call {
        within(self.calls.recv())
            .await
            .expect("no request reached the backend")
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

async fn answer(
    behaviour: Behaviour,
    req: http::request::Parts,
    body: Bytes,
    calls: &mpsc::UnboundedSender<Call>,
) -> Response<BoxBody<Bytes, std::io::Error>> {
    match behaviour {
        Behaviour::Stream(content_type) => {
            let (tx, mut rx) = mpsc::channel::<Chunk>(1);
            let _ = calls.send(Call { req, body, tx });
            let body = StreamBody::new(stream::poll_fn(move |cx| rx.poll_recv(cx)));
            Response::builder()
                .header("content-type", content_type)
                .header("x-backend-internal", "not for the browser")
                .body(BodyExt::boxed(body))
                .unwrap()
        }
        Behaviour::Answer(status, body) => Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .header("retry-after", "9")
            .body(BodyExt::boxed(
                Full::new(Bytes::from(body)).map_err(|e| match e {}),
            ))
            .unwrap(),
        Behaviour::Burst(n) => {
            let frames = (0..n).map(|i| Ok(Frame::data(Bytes::from(burst_event(i)))));
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(BodyExt::boxed(StreamBody::new(stream::iter(frames))))
                .unwrap()
        }
        Behaviour::SlowHeaders(delay) => {
            tokio::time::sleep(delay).await;
            Response::new(BodyExt::boxed(
                Full::new(Bytes::new()).map_err(|e| match e {}),
            ))
        }
    }
}

fn burst_event(i: usize) -> String {
    format!("id: {i}\ndata: {{\"type\":\"delta\",\"text\":\"w{i} \"}}\n\n")
}

/// Send `text` as one chunk of the backend's answer.
async fn emit(call: &Call, text: &str) {
    within(call.tx.send(Ok(Frame::data(Bytes::from(text.to_owned())))))
        .await
        .expect("the backend's answer was dropped");
}

// ---------------------------------------------------------------------------------------------
// The kit and the browser.

async fn kit_with(
    backend: &Backend,
    configure: impl FnOnce(StreamServiceBuilder) -> StreamServiceBuilder,
) -> TestServer {
    let upstream = StreamBackend::builder(backend.url(), BACKEND_KEY)
        .timeout(Duration::from_millis(700))
        .build()
        .unwrap();
    let svc = configure(StreamService::builder(keys()).proxy(upstream))
        .build()
        .unwrap();
    common::serve(svc).await
}

async fn kit(backend: &Backend) -> TestServer {
    kit_with(backend, |b| b).await
}

/// `POST /api/custom/stream` with a real client; the answer's body is read incrementally.
async fn open(kit: &TestServer, token: Option<&str>, body: &str) -> Response<Incoming> {
    let mut req = Request::post(kit.url("/api/custom/stream?thread=t1&x=%20y"))
        .header("content-type", "text/plain;charset=UTF-8");
    if let Some(token) = token {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    let req = req.body(Full::new(Bytes::from(body.to_owned()))).unwrap();
    within(common::client().request(req))
        .await
        .expect("request failed")
}

/// Reads a streaming answer piece by piece.
struct Reader {
    body: Incoming,
    got: Vec<u8>,
    reads: usize,
}

impl Reader {
    fn new(res: Response<Incoming>) -> Self {
        Self {
            body: res.into_body(),
            got: Vec::new(),
            reads: 0,
        }
    }

    /// Read until `expected` more bytes arrived, and check they are exactly these.
    async fn expect(&mut self, expected: &str) {
        let start = self.got.len();
        while self.got.len() < start + expected.len() {
            let frame = within(self.body.frame())
                .await
                .expect("the stream ended early")
                .expect("the stream broke");
            if let Ok(data) = frame.into_data() {
                self.got.extend_from_slice(&data);
                self.reads += 1;
            }
        }
        assert_eq!(
            String::from_utf8_lossy(&self.got[start..]),
            expected,
            "after {:?}",
            String::from_utf8_lossy(&self.got[..start])
        );
    }

    /// Read until what came ends with `suffix`; what came.
    async fn until(&mut self, suffix: &str) -> String {
        let start = self.got.len();
        while !self.got[start..].ends_with(suffix.as_bytes()) {
            let frame = within(self.body.frame())
                .await
                .expect("the stream ended early")
                .expect("the stream broke");
            if let Ok(data) = frame.into_data() {
                self.got.extend_from_slice(&data);
                self.reads += 1;
            }
        }
        String::from_utf8(self.got[start..].to_vec()).unwrap()
    }

    /// Read to the end, which must be clean (no broken chunked encoding); what came.
    async fn rest(&mut self) -> String {
        let start = self.got.len();
        while let Some(frame) = within(self.body.frame()).await {
            let frame = frame.expect("the stream must end cleanly, not break");
            if let Ok(data) = frame.into_data() {
                self.got.extend_from_slice(&data);
                self.reads += 1;
            }
        }
        String::from_utf8(self.got[start..].to_vec()).unwrap()
    }
}

async fn whole(res: Response<Incoming>) -> common::Answer {
    let (parts, body) = res.into_parts();
    let body = within(body.collect()).await.unwrap().to_bytes();
    common::Answer {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// The `event: error` the kit ends a failed stream with.
fn error_event(code: &str, details: &str) -> String {
    format!("event: error\ndata: {{\"type\":\"error\",\"code\":\"{code}\",\"error\":\"{details}\"}}\n\n")
}

// ---------------------------------------------------------------------------------------------
// Streaming.

#[tokio::test]
async fn events_reach_the_client_before_the_backend_sends_the_next() {
    let mut backend = Backend::start(Behaviour::Stream("text/event-stream")).await;
    let kit = kit(&backend).await;
    let res = open(&kit, Some(&secret()), r#"{"message":"hi"}"#).await;

    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    assert_eq!(res.headers()["cache-control"], "no-cache");
    assert_eq!(res.headers()["x-accel-buffering"], "no");
    assert!(res.headers().get("x-backend-internal").is_none());

    let call = backend.call().await;
    let mut reader = Reader::new(res);
    for i in 0..5 {
        // The backend sends the next event only once the client holds the previous one.
        let event = format!("id: {i}\ndata: {{\"type\":\"delta\",\"text\":\"w{i} \"}}\n\n");
        emit(&call, &event).await;
        reader.expect(&event).await;
    }
    emit(&call, "data: {\"type\":\"done\"}\n\n").await;
    drop(call.tx);
    assert_eq!(reader.rest().await, "data: {\"type\":\"done\"}\n\n");
}

#[tokio::test]
async fn the_backend_gets_the_session_the_user_the_key_and_the_request_unchanged() {
    let mut backend = Backend::start(Behaviour::Stream("text/event-stream")).await;
    let kit = kit(&backend).await;
    let res = open(&kit, Some(&secret()), r#"{"message":"hi"}"#).await;
    let call = backend.call().await;
    let req = &call.req;
    assert_eq!(req.method, "POST");
    assert_eq!(req.uri.path(), "/api/stream");
    assert_eq!(req.uri.query(), Some("thread=t1&x=%20y"));
    assert_eq!(
        req.headers["authorization"],
        format!("Bearer {BACKEND_KEY}").as_str()
    );
    assert_eq!(req.headers["x-chatkit-session"], "sess_42");
    assert_eq!(req.headers["x-chatkit-user"], "user_7");
    assert_eq!(req.headers["content-type"], "text/plain;charset=UTF-8");
    assert_eq!(call.body, r#"{"message":"hi"}"#);
    drop(call.tx);
    assert_eq!(Reader::new(res).rest().await, "");
}

#[tokio::test]
async fn backend_bytes_pass_through_unchanged() {
    let mut backend = Backend::start(Behaviour::Stream("text/event-stream; charset=utf-8")).await;
    let kit = kit(&backend).await;
    let res = open(&kit, Some(&secret()), "{}").await;
    assert_eq!(
        res.headers()["content-type"],
        "text/event-stream; charset=utf-8"
    );
    let call = backend.call().await;
    // CRLF line ends, comments, retry, multi-line data, an event and a UTF-8 character split
    // across chunks: none of it is the kit's business.
    let chunks = [
        ": hello\r\n\r\n",
        "retry: 1000\r\nevent: delta\r\ndata: line one\r\ndata: line two\r\n\r\n",
        "data: {\"text\":\"caf\u{e9}",
        "\"}\n",
        "\n",
        "data: \u{1F600}",
    ];
    let sent: String = chunks.concat();
    let bytes = sent.as_bytes();
    let emoji_at = sent.len() - 2;
    for chunk in &chunks[..5] {
        emit(&call, chunk).await;
    }
    // Split a four-byte character in the middle.
    let tail_start = sent.len() - chunks[5].len();
    for piece in [&bytes[tail_start..emoji_at], &bytes[emoji_at..], b"\n\n"] {
        within(call.tx.send(Ok(Frame::data(Bytes::copy_from_slice(piece)))))
            .await
            .unwrap();
    }
    drop(call.tx);
    let got = Reader::new(res).rest().await;
    assert_eq!(got, format!("{sent}\n\n"));
}

#[tokio::test]
async fn answers_that_are_not_sse_pass_through_with_their_content_type() {
    let mut backend = Backend::start(Behaviour::Stream("text/plain; charset=utf-8")).await;
    let kit = kit(&backend).await;
    let res = open(&kit, Some(&secret()), "{}").await;
    assert_eq!(res.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(res.headers()["cache-control"], "no-cache");
    let call = backend.call().await;
    let mut reader = Reader::new(res);
    emit(&call, "Hello ").await;
    reader.expect("Hello ").await;
    emit(&call, "world").await;
    drop(call.tx);
    assert_eq!(reader.rest().await, "world");
}

#[tokio::test]
async fn stalled_backend_ends_with_an_error_event_after_the_idle_timeout() {
    let mut backend = Backend::start(Behaviour::Stream("text/event-stream")).await;
    let kit = kit_with(&backend, |b| {
        b.idle_timeout(Duration::from_millis(300)).no_keep_alive()
    })
    .await;
    let res = open(&kit, Some(&secret()), "{}").await;
    let call = backend.call().await;
    let mut reader = Reader::new(res);
    emit(&call, "data: first\n\n").await;
    reader.expect("data: first\n\n").await;
    // The backend keeps the connection open and says nothing more.
    assert_eq!(
        reader.rest().await,
        error_event("BACKEND_TIMEOUT", "the backend sent nothing for 300 ms")
    );
    drop(call);
}

#[tokio::test]
async fn keep_alive_comments_fill_the_quiet_without_counting_as_backend_activity() {
    let mut backend = Backend::start(Behaviour::Stream("text/event-stream")).await;
    let kit = kit_with(&backend, |b| {
        b.idle_timeout(Duration::from_secs(2)).keep_alive(
            KeepAlive::new()
                .interval(Duration::from_millis(100))
                .text("ka"),
        )
    })
    .await;
    let res = open(&kit, Some(&secret()), "{}").await;
    let call = backend.call().await;
    let mut reader = Reader::new(res);
    emit(&call, "data: 1\n\n").await;
    reader.expect("data: 1\n\n").await;
    reader.expect(": ka\n\n").await;
    emit(&call, "data: 2\n\n").await;
    // Whatever comments came in between, the event follows them, unchanged.
    let came = reader.until("data: 2\n\n").await;
    assert_eq!(came.trim_start_matches(": ka\n\n"), "data: 2\n\n");
    // Quiet for good: comments keep coming, and the idle timeout still ends the stream.
    let end = reader.rest().await;
    assert_eq!(
        end.trim_start_matches(": ka\n\n"),
        error_event("BACKEND_TIMEOUT", "the backend sent nothing for 2000 ms")
    );
    drop(call);
}

#[tokio::test]
async fn reset_mid_stream_becomes_an_error_event_then_a_clean_end() {
    let mut backend = Backend::start(Behaviour::Stream("text/event-stream")).await;
    let kit = kit(&backend).await;
    let res = open(&kit, Some(&secret()), "{}").await;
    let call = backend.call().await;
    let mut reader = Reader::new(res);
    emit(&call, "data: before\n\n").await;
    reader.expect("data: before\n\n").await;
    // The backend's body fails: hyper aborts the connection without the final chunk.
    within(call.tx.send(Err(std::io::Error::other("backend crashed"))))
        .await
        .unwrap();
    assert_eq!(
        reader.rest().await,
        error_event(
            "BACKEND_UNREACHABLE",
            "the backend's stream broke off before it was complete"
        )
    );
}

#[tokio::test]
async fn dropping_the_client_closes_the_backend_connection() {
    let mut backend = Backend::start(Behaviour::Stream("text/event-stream")).await;
    let kit = kit(&backend).await;
    let res = open(&kit, Some(&secret()), "{}").await;
    let call = backend.call().await;
    let mut reader = Reader::new(res);
    emit(&call, "data: 1\n\n").await;
    reader.expect("data: 1\n\n").await;

    drop(reader);

    // The backend keeps talking; soon nobody listens: its answer body is dropped (sending
    // fails) and its connection closes.
    backend.closes_while_talking(&call).await;
}

#[tokio::test]
async fn events_that_arrived_together_leave_together() {
    let backend = Backend::start(Behaviour::Burst(200)).await;
    let kit = kit(&backend).await;
    let res = open(&kit, Some(&secret()), "{}").await;
    let mut reader = Reader::new(res);
    let all = reader.rest().await;
    assert_eq!(all, (0..200).map(burst_event).collect::<String>());
    // The backend wrote its 200 chunks in a few writes; the kit must not turn them back into
    // one write per event.
    assert!(
        reader.reads < 100,
        "200 events came in {} reads",
        reader.reads
    );
}

#[tokio::test]
async fn a_pooled_http_client_streams_too_and_a_disconnect_still_closes_the_backend() {
    let mut backend = Backend::start(Behaviour::Stream("text/event-stream")).await;
    let upstream = StreamBackend::builder(backend.url(), BACKEND_KEY)
        .build_with_client(HttpClient::new())
        .unwrap();
    let svc = StreamService::builder(keys())
        .proxy(upstream)
        .build()
        .unwrap();
    let kit = common::serve(svc).await;
    let res = open(&kit, Some(&secret()), "{}").await;
    let call = backend.call().await;
    let mut reader = Reader::new(res);
    for i in 0..3 {
        let event = format!("data: {i}\n\n");
        emit(&call, &event).await;
        reader.expect(&event).await;
    }
    drop(reader);
    backend.closes_while_talking(&call).await;
}

// ---------------------------------------------------------------------------------------------
// Refusals before the stream.

#[tokio::test]
async fn missing_forged_or_expired_secrets_are_401_without_a_backend_call() {
    let backend = Backend::start(Behaviour::Stream("text/event-stream")).await;
    let kit = kit(&backend).await;
    let other_keys = SessionKeys::new(["another-key-0123456789abcdef0123456789"]).unwrap();
    let forged = other_keys.seal(&SessionClaims::new("sess_42", "user_7", now() + 600));
    let expired = keys().seal(&SessionClaims::new("sess_42", "user_7", now() - 1));
    let mut tampered = secret();
    tampered.pop();
    for token in [
        None,
        Some(forged.as_str()),
        Some(expired.as_str()),
        Some(tampered.as_str()),
        Some("not-a-token"),
    ] {
        let answer = whole(open(&kit, token, "{}").await).await;
        answer.assert_error(401, "UNAUTHORIZED");
        assert_eq!(answer.headers["www-authenticate"], "Bearer");
    }
    assert_eq!(backend.requests(), 0);
}

#[tokio::test]
async fn backend_error_statuses_before_the_stream_are_json_errors() {
    let table = [
        (500, r#"{"error":"boom"}"#, 502, "UPSTREAM_ERROR"),
        (404, r#"{"detail":"no such thread"}"#, 404, "UPSTREAM_ERROR"),
        (401, "{}", 502, "UPSTREAM_ERROR"),
        (403, "{}", 502, "UPSTREAM_ERROR"),
        (429, "{}", 429, "RATE_LIMITED"),
    ];
    for (status, body, want_status, want_code) in table {
        let backend = Backend::start(Behaviour::Answer(status, body)).await;
        let kit = kit(&backend).await;
        let answer = whole(open(&kit, Some(&secret()), "{}").await).await;
        let json = answer.assert_error(want_status, want_code);
        let details = json["details"].as_str().unwrap();
        assert!(!details.contains(BACKEND_KEY), "{details}");
        match status {
            500 => assert_eq!(details, "the backend answered 500: boom"),
            404 => assert_eq!(details, "the backend answered 404: no such thread"),
            401 | 403 => assert!(details.contains("CUSTOM_BACKEND_KEY"), "{details}"),
            _ => assert_eq!(answer.headers["retry-after"], "9"),
        }
        assert_eq!(backend.requests(), 1);
    }
}

#[tokio::test]
async fn unreachable_backend_is_502_and_slow_headers_are_504() {
    // A port nobody listens on.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let upstream = StreamBackend::builder(format!("http://127.0.0.1:{port}"), BACKEND_KEY)
        .build()
        .unwrap();
    let svc = StreamService::builder(keys())
        .proxy(upstream)
        .build()
        .unwrap();
    let unreachable = common::serve(svc).await;
    let answer = whole(open(&unreachable, Some(&secret()), "{}").await).await;
    answer.assert_error(502, "BACKEND_UNREACHABLE");

    let backend = Backend::start(Behaviour::SlowHeaders(Duration::from_secs(5))).await;
    let slow = kit(&backend).await;
    let answer = whole(open(&slow, Some(&secret()), "{}").await).await;
    answer.assert_error(504, "BACKEND_TIMEOUT");
}

#[tokio::test]
async fn wrong_method_is_405_and_big_bodies_are_413_without_a_backend_call() {
    let backend = Backend::start(Behaviour::Stream("text/event-stream")).await;
    let kit = kit_with(&backend, |b| b.body_limit(1024)).await;
    let req = Request::get(kit.url("/api/custom/stream"))
        .header("authorization", format!("Bearer {}", secret()))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let answer = common::send(req).await;
    answer.assert_error(405, "METHOD_NOT_ALLOWED");
    assert_eq!(answer.headers["allow"], "POST");

    let big = "x".repeat(2048);
    let answer = whole(open(&kit, Some(&secret()), &big).await).await;
    answer.assert_error(413, "PAYLOAD_TOO_LARGE");
    assert_eq!(backend.requests(), 0);
}

// ---------------------------------------------------------------------------------------------
// The demo responder.

async fn demo_kit(pace: Duration) -> TestServer {
    let svc = StreamService::builder(keys())
        .responder(DemoResponder::new(pace))
        .build()
        .unwrap();
    common::serve(svc).await
}

#[tokio::test]
async fn demo_responder_streams_delta_frames_then_done_in_several_reads() {
    let kit = demo_kit(Duration::from_millis(30)).await;
    let res = open(&kit, Some(&secret()), r#"{"message":"one two three"}"#).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    assert_eq!(res.headers()["x-accel-buffering"], "no");
    let mut reader = Reader::new(res);
    reader
        .expect("data: {\"type\":\"delta\",\"text\":\"one \"}\n\n")
        .await;
    let rest = reader.rest().await;
    assert_eq!(
        rest,
        "data: {\"type\":\"delta\",\"text\":\"two \"}\n\n\
         data: {\"type\":\"delta\",\"text\":\"three\"}\n\n\
         data: {\"type\":\"done\"}\n\n"
    );
    assert!(
        reader.reads > 1,
        "the reply came in {} read(s)",
        reader.reads
    );
}

#[tokio::test]
async fn demo_responder_refuses_bodies_without_a_message() {
    let kit = demo_kit(Duration::ZERO).await;
    for body in ["", "not json", r#"{"text":"hi"}"#] {
        let answer = whole(open(&kit, Some(&secret()), body).await).await;
        answer.assert_error(400, "BAD_REQUEST");
    }
    let answer = whole(open(&kit, None, r#"{"message":"hi"}"#).await).await;
    answer.assert_error(401, "UNAUTHORIZED");
}
