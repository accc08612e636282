//! The session endpoint against a custom backend (wiremock), over real TCP: what goes upstream,
//! and how every way the backend can fail reaches the browser.

mod common;

use std::time::Duration;

use chatkit_tower::auth::{AuthLayer, StaticTokens};
use chatkit_tower::session::{CustomBackend, SessionService, SessionServiceBuilder};
use chatkit_tower::token::SessionKeys;
use common::{post, serve, Answer, TestServer};
use serde_json::json;
use tower::Layer;
use wiremock::matchers::{body_json, body_partial_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const BACKEND_KEY: &str = "backend-secret-key-do-not-leak";
const SEALING_KEY: &str = "sealing-key-0123456789abcdef0123456789";
const USER_TOKEN: &str = "alice-token";

fn keys() -> SessionKeys {
    SessionKeys::new([SEALING_KEY]).unwrap()
}

/// The kit's session endpoint (auth + session service) proxying to `backend_url`.
async fn kit_with(
    backend_url: &str,
    configure: impl FnOnce(SessionServiceBuilder) -> SessionServiceBuilder,
) -> TestServer {
    let backend = CustomBackend::builder(backend_url, BACKEND_KEY)
        .timeout(Duration::from_millis(700))
        .build()
        .unwrap();
    let session = configure(SessionService::builder(backend).keys(keys()))
        .build()
        .unwrap();
    let tokens = StaticTokens::new().with(USER_TOKEN, "alice");
    serve(AuthLayer::new(tokens).layer(session)).await
}

async fn kit(backend_url: &str) -> TestServer {
    kit_with(backend_url, |b| b).await
}

async fn ask(kit: &TestServer, body: &str) -> Answer {
    let auth = format!("Bearer {USER_TOKEN}");
    post(
        &kit.url("/api/custom/session"),
        &[("authorization", &auth)],
        body,
    )
    .await
}

fn in_an_hour_rfc3339() -> (String, u64) {
    let at = time::OffsetDateTime::now_utc() + time::Duration::minutes(30);
    let at = at.replace_nanosecond(0).unwrap();
    (
        at.format(&time::format_description::well_known::Rfc3339)
            .unwrap(),
        at.unix_timestamp() as u64,
    )
}

fn assert_no_backend_key(res: &Answer) {
    assert!(
        !res.text().contains(BACKEND_KEY),
        "the backend key leaked: {}",
        res.text()
    );
}

#[tokio::test]
async fn upstream_request_carries_backend_key_authenticated_user_model_and_metadata() {
    let backend = MockServer::start().await;
    let (expiry_text, expiry_unix) = in_an_hour_rfc3339();
    Mock::given(method("POST"))
        .and(path("/api/sessions"))
        .and(header(
            "authorization",
            format!("Bearer {BACKEND_KEY}").as_str(),
        ))
        .and(header("content-type", "application/json"))
        .and(query_param("user_id", "alice"))
        .and(body_json(json!({
            "user_id": "alice",
            "model": "custom-v1",
            "metadata": {"plan": "pro"}
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "session_id": "sess-123",
            "expires_at": expiry_text,
            "model": "custom-v1"
        })))
        .expect(1)
        .mount(&backend)
        .await;
    let kit = kit_with(&backend.uri(), |b| b.models(["custom-v1", "custom-v2"])).await;

    // The browser tries to choose its user id: it is ignored.
    let res = ask(
        &kit,
        r#"{"model":"custom-v1","metadata":{"plan":"pro"},"user_id":"mallory"}"#,
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let json = res.json();
    assert_eq!(json["model"], "custom-v1");
    assert_eq!(json["expires_at"], expiry_text.replace("+00:00", "Z"));
    let claims = keys()
        .verify(json["client_secret"].as_str().unwrap())
        .unwrap();
    assert_eq!(claims.session_id, "sess-123");
    assert_eq!(claims.user_id, "alice");
    assert_eq!(claims.expires_at, expiry_unix);
    assert_no_backend_key(&res);
}

#[tokio::test]
async fn backend_reading_user_id_only_from_the_query_string_works() {
    let backend = MockServer::start().await;
    Mock::given(method("POST"))
        .and(query_param("user_id", "alice"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"session_id": "q-1"})))
        .expect(1)
        .mount(&backend)
        .await;
    let kit = kit(&backend.uri()).await;
    let res = ask(&kit, "").await;
    assert_eq!(res.status, 200, "{}", res.text());
    let claims = keys()
        .verify(res.json()["client_secret"].as_str().unwrap())
        .unwrap();
    assert_eq!(claims.session_id, "q-1");
}

#[tokio::test]
async fn backend_reading_user_id_only_from_the_json_body_works() {
    let backend = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({"user_id": "alice"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"session_id": "b-1"})))
        .expect(1)
        .mount(&backend)
        .await;
    let kit = kit(&backend.uri()).await;
    let res = ask(&kit, "").await;
    assert_eq!(res.status, 200, "{}", res.text());
}

#[tokio::test]
async fn each_backend_failure_maps_to_its_code_and_status() {
    let oversized = json!({"session_id": "x", "padding": "a".repeat(100 * 1024)});
    let cases: Vec<(&str, ResponseTemplate, u16, &str)> = vec![
        (
            "404",
            ResponseTemplate::new(404).set_body_json(json!({"detail": "Not Found"})),
            404,
            "SESSION_ERROR",
        ),
        (
            "422",
            ResponseTemplate::new(422).set_body_json(json!({"error": "user_id missing"})),
            422,
            "SESSION_ERROR",
        ),
        ("500", ResponseTemplate::new(500), 502, "SESSION_ERROR"),
        (
            "503",
            ResponseTemplate::new(503).set_body_string("down"),
            502,
            "SESSION_ERROR",
        ),
        (
            "our key refused",
            ResponseTemplate::new(401).set_body_json(json!({"error": "bad key"})),
            502,
            "SESSION_ERROR",
        ),
        (
            "html",
            ResponseTemplate::new(200)
                .set_body_raw("<html><body>Welcome to nginx</body></html>", "text/html"),
            502,
            "SESSION_ERROR",
        ),
        (
            "json without session_id",
            ResponseTemplate::new(200).set_body_json(json!({"id": "sess-1"})),
            502,
            "SESSION_ERROR",
        ),
        (
            "oversized answer",
            ResponseTemplate::new(200).set_body_json(oversized),
            502,
            "SESSION_ERROR",
        ),
        (
            "slow",
            ResponseTemplate::new(200)
                .set_body_json(json!({"session_id": "late"}))
                .set_delay(Duration::from_secs(3)),
            504,
            "BACKEND_TIMEOUT",
        ),
    ];
    for (name, template, status, code) in cases {
        let backend = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(template)
            .expect(1)
            .named(name)
            .mount(&backend)
            .await;
        let kit = kit(&backend.uri()).await;
        let res = ask(&kit, "").await;
        assert_eq!(res.status.as_u16(), status, "{name}: {}", res.text());
        res.assert_error(status, code);
        assert_no_backend_key(&res);
    }
}

#[tokio::test]
async fn rate_limited_backend_is_429_with_retry_after_passed_on() {
    let backend = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "7"))
        .expect(1)
        .mount(&backend)
        .await;
    let kit = kit(&backend.uri()).await;
    let res = ask(&kit, "").await;
    res.assert_error(429, "RATE_LIMITED");
    assert_eq!(res.headers["retry-after"], "7");
}

#[tokio::test]
async fn backend_echoing_our_key_does_not_leak_it() {
    let backend = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": format!("invalid key Bearer {BACKEND_KEY} for tenant")
        })))
        .mount(&backend)
        .await;
    let kit = kit(&backend.uri()).await;
    let res = ask(&kit, "").await;
    let json = res.assert_error(400, "SESSION_ERROR");
    assert_no_backend_key(&res);
    assert!(
        json["details"].as_str().unwrap().contains("[redacted]"),
        "{json}"
    );
}

#[tokio::test]
async fn refused_connection_is_502_backend_unreachable() {
    // A port that was just free: nothing listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let kit = kit(&format!("http://{addr}")).await;
    let json = ask(&kit, "").await.assert_error(502, "BACKEND_UNREACHABLE");
    assert!(
        json["details"].as_str().unwrap().contains("connect"),
        "{json}"
    );
}

#[tokio::test]
async fn reset_connection_is_502_backend_unreachable() {
    // A backend that reads the request and resets the connection without answering.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let resetter = tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            tcp.readable().await.unwrap();
            let _ = tcp.try_read(&mut buf);
            tcp.set_zero_linger().unwrap();
            drop(tcp);
        }
    });
    let kit = kit(&format!("http://{addr}")).await;
    ask(&kit, "").await.assert_error(502, "BACKEND_UNREACHABLE");
    resetter.abort();
}

#[tokio::test]
async fn model_not_on_the_allow_list_never_reaches_the_backend() {
    let backend = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"session_id": "s"})))
        .expect(0)
        .mount(&backend)
        .await;
    let kit = kit_with(&backend.uri(), |b| b.models(["custom-v1"])).await;
    ask(&kit, r#"{"model":"gpt-5"}"#)
        .await
        .assert_error(403, "MODEL_NOT_ALLOWED");
}

#[tokio::test]
async fn oversized_metadata_is_413_without_an_upstream_call() {
    let backend = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"session_id": "s"})))
        .expect(0)
        .mount(&backend)
        .await;
    let kit = kit_with(&backend.uri(), |b| b.metadata_limit(100)).await;
    let body = json!({"metadata": {"note": "x".repeat(200)}}).to_string();
    ask(&kit, &body)
        .await
        .assert_error(413, "PAYLOAD_TOO_LARGE");
}

#[tokio::test]
async fn hard_coded_past_expiry_is_replaced_by_the_ttl() {
    // The seed's FastAPI template answers "2024-12-31T23:59:59Z" forever.
    let backend = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "session_id": "old", "expires_at": "2024-12-31T23:59:59Z"
        })))
        .mount(&backend)
        .await;
    let kit = kit_with(&backend.uri(), |b| b.ttl(Duration::from_secs(600))).await;
    let res = ask(&kit, "").await;
    assert_eq!(res.status, 200, "{}", res.text());
    let claims = keys()
        .verify(res.json()["client_secret"].as_str().unwrap())
        .unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp() as u64;
    assert!(
        (now + 590..=now + 610).contains(&claims.expires_at),
        "{claims:?}"
    );
}

#[tokio::test]
async fn passthrough_hands_the_backend_session_id_to_the_browser() {
    let backend = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"session_id": "sess-raw"})))
        .mount(&backend)
        .await;
    let backend_client = CustomBackend::builder(backend.uri(), BACKEND_KEY)
        .build()
        .unwrap();
    let session = SessionService::builder(backend_client)
        .passthrough()
        .build()
        .unwrap();
    let kit =
        serve(AuthLayer::new(StaticTokens::new().with(USER_TOKEN, "alice")).layer(session)).await;
    let res = ask(&kit, "").await;
    assert_eq!(res.json()["client_secret"], "sess-raw");
}
