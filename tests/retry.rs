//! The retry layer around a real HTTP client and a wiremock upstream. Time runs on tokio's
//! paused clock: backoffs and `Retry-After` waits pass instantly and are measured exactly.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chatkit_tower::retry::{RetryBudget, RetryLayer, RetryPolicy};
use common::within_real as within;
use http::{Request, StatusCode};
use http_body_util::Full;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tower::{Layer, Service, ServiceExt};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A client with no timers of its own, so the paused clock only moves for the retry waits.
fn plain_client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

fn policy() -> chatkit_tower::retry::RetryPolicyBuilder {
    RetryPolicy::builder()
        .backoff(Duration::from_millis(100), Duration::from_secs(1))
        .jitter(0.0)
        .no_budget()
}

fn post(uri: &str) -> Request<Full<Bytes>> {
    Request::post(uri)
        .body(Full::new(Bytes::from_static(b"{\"user_id\":\"alice\"}")))
        .unwrap()
}

async fn status_of<S>(svc: S, uri: &str) -> StatusCode
where
    S: Service<Request<Full<Bytes>>, Response = http::Response<hyper::body::Incoming>>,
    S::Error: std::fmt::Debug,
{
    within(svc.oneshot(post(uri))).await.unwrap().status()
}

#[tokio::test(start_paused = true)]
async fn retries_twice_on_503_then_succeeds() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .expect(2)
        .mount(&upstream)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&upstream)
        .await;
    let svc = RetryLayer::new(policy().build().unwrap()).layer(plain_client());
    let started = tokio::time::Instant::now();
    assert_eq!(status_of(svc, &upstream.uri()).await, 200);
    // 100 ms, then 200 ms of backoff.
    assert_eq!(started.elapsed(), Duration::from_millis(300));
}

#[tokio::test(start_paused = true)]
async fn client_error_is_sent_exactly_once() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400))
        .expect(1)
        .mount(&upstream)
        .await;
    let svc = RetryLayer::new(policy().build().unwrap()).layer(plain_client());
    assert_eq!(status_of(svc, &upstream.uri()).await, 400);
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured_then_succeeds() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&upstream)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&upstream)
        .await;
    let svc = RetryLayer::new(policy().build().unwrap()).layer(plain_client());
    let started = tokio::time::Instant::now();
    assert_eq!(status_of(svc, &upstream.uri()).await, 200);
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(1),
        "waited as long as asked"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_after_beyond_the_cap_passes_the_429_on() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "120"))
        .expect(1)
        .mount(&upstream)
        .await;
    let policy = policy()
        .max_retry_after(Duration::from_secs(5))
        .build()
        .unwrap();
    let svc = RetryLayer::new(policy).layer(plain_client());
    assert_eq!(status_of(svc, &upstream.uri()).await, 429);
}

/// A port nothing listens on (yet), and a plain client that counts its attempts.
fn closed_port_and_counted_client() -> (
    std::net::SocketAddr,
    impl tower::Service<
            Request<Full<Bytes>>,
            Response = http::Response<hyper::body::Incoming>,
            Error = hyper_util::client::legacy::Error,
            Future = impl Send,
        > + Clone,
    Arc<AtomicUsize>,
) {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let attempts = Arc::new(AtomicUsize::new(0));
    let counter = attempts.clone();
    let client = plain_client();
    let counted = tower::service_fn(move |req: Request<Full<Bytes>>| {
        counter.fetch_add(1, Ordering::SeqCst);
        client.request(req)
    });
    (addr, counted, attempts)
}

#[tokio::test(start_paused = true)]
async fn refused_connection_is_retried_until_the_upstream_is_up() {
    let (addr, counted, attempts) = closed_port_and_counted_client();
    // The upstream comes up 50 ms in: after the first attempt, before the first retry (100 ms).
    let upstream = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let (tcp, _) = listener.accept().await.unwrap();
        let ok = hyper::service::service_fn(|_req| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::new())))
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(tcp), ok)
            .await;
    });
    let svc = RetryLayer::new(policy().build().unwrap()).layer(counted);
    let status = status_of(svc, &format!("http://{addr}/")).await;
    assert_eq!(status, 200);
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
    upstream.abort();
}

#[tokio::test(start_paused = true)]
async fn refused_connection_gives_up_after_max_attempts() {
    let (addr, counted, attempts) = closed_port_and_counted_client();
    let svc = RetryLayer::new(policy().max_attempts(3).build().unwrap()).layer(counted);
    let err = within(svc.oneshot(post(&format!("http://{addr}/"))))
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn exhausted_budget_stops_retrying() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&upstream)
        .await;
    // One retry per ten requests, no floor: a dead backend sees 1.1× its traffic, not 5×.
    let budget = RetryBudget {
        ttl: Duration::from_secs(60),
        min_per_sec: 0,
        retry_percent: 0.1,
    };
    let policy = policy().max_attempts(5).budget(budget).build().unwrap();
    let svc = RetryLayer::new(policy).layer(plain_client());
    for _ in 0..12 {
        assert_eq!(status_of(svc.clone(), &upstream.uri()).await, 503);
    }
    let sent = upstream.received_requests().await.unwrap().len();
    assert_eq!(
        sent, 13,
        "12 requests and the single retry the budget allowed"
    );
}
