//! The seed's "Fallback Pattern" on the server: the custom backend first, OpenAI's hosted
//! sessions second — and the fallback layer on plain HTTP services.

mod common;

use std::time::Duration;

use bytes::Bytes;
use chatkit_tower::auth::{AuthLayer, Principal, StaticTokens};
use chatkit_tower::client::HttpClient;
use chatkit_tower::fallback::{Answered, DefaultPolicy, FallbackLayer};
use chatkit_tower::session::{CustomBackend, HostedSessions, SessionRequest, SessionService};
use chatkit_tower::token::SessionKeys;
use common::{post, serve, within, Answer, TestServer};
use http::Request;
use http_body_util::Full;
use serde_json::json;
use tower::{Layer, ServiceExt};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const BACKEND_KEY: &str = "backend-key-do-not-leak";
const API_KEY: &str = "sk-openai-key-do-not-leak";

fn custom(url: &str) -> CustomBackend {
    CustomBackend::builder(url, BACKEND_KEY)
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap()
}

fn hosted(url: &str) -> HostedSessions {
    HostedSessions::builder(API_KEY, "wf_1")
        .base_url(url)
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap()
}

/// An OpenAI stand-in that creates one session.
async fn openai(expected_calls: u64) -> MockServer {
    let api = MockServer::start().await;
    let expires_at = time::OffsetDateTime::now_utc().unix_timestamp() + 600;
    Mock::given(method("POST"))
        .and(path("/v1/chatkit/sessions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "cksess_1", "client_secret": "ek_from_openai", "expires_at": expires_at
        })))
        .expect(expected_calls)
        .mount(&api)
        .await;
    api
}

async fn backend(template: ResponseTemplate) -> MockServer {
    let backend = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/sessions"))
        .respond_with(template)
        .expect(1)
        .mount(&backend)
        .await;
    backend
}

async fn kit_with(backend_url: &str, api_url: &str, policy: DefaultPolicy) -> TestServer {
    let upstream = FallbackLayer::new(hosted(api_url))
        .policy(policy)
        .layer(custom(backend_url));
    let session = SessionService::builder(upstream)
        .keys(SessionKeys::random().unwrap())
        .build()
        .unwrap();
    serve(AuthLayer::new(StaticTokens::new().with("t", "alice")).layer(session)).await
}

async fn ask(kit: &TestServer) -> Answer {
    let res = post(
        &kit.url("/api/custom/session"),
        &[("authorization", "Bearer t")],
        "",
    )
    .await;
    for secret in [BACKEND_KEY, API_KEY] {
        assert!(
            !res.text().contains(secret),
            "secret leaked: {}",
            res.text()
        );
    }
    res
}

#[tokio::test]
async fn refused_primary_falls_back_to_hosted_sessions() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let api = openai(1).await;
    let kit = kit_with(
        &format!("http://{closed}"),
        &api.uri(),
        DefaultPolicy::default(),
    )
    .await;
    let res = ask(&kit).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["client_secret"], "ek_from_openai");
}

#[tokio::test]
async fn primary_500_falls_back() {
    let backend = backend(ResponseTemplate::new(500)).await;
    let api = openai(1).await;
    let kit = kit_with(&backend.uri(), &api.uri(), DefaultPolicy::default()).await;
    assert_eq!(ask(&kit).await.json()["client_secret"], "ek_from_openai");
}

#[tokio::test]
async fn timed_out_primary_falls_back() {
    let slow = ResponseTemplate::new(200)
        .set_body_json(json!({"session_id": "late"}))
        .set_delay(Duration::from_secs(3));
    let backend = backend(slow).await;
    let api = openai(1).await;
    let kit = kit_with(&backend.uri(), &api.uri(), DefaultPolicy::default()).await;
    assert_eq!(ask(&kit).await.json()["client_secret"], "ek_from_openai");
}

#[tokio::test]
async fn primary_401_does_not_fall_back_by_default() {
    let backend = backend(ResponseTemplate::new(401)).await;
    let api = openai(0).await;
    let kit = kit_with(&backend.uri(), &api.uri(), DefaultPolicy::default()).await;
    ask(&kit).await.assert_error(502, "SESSION_ERROR");
}

#[tokio::test]
async fn primary_401_falls_back_when_configured() {
    let backend = backend(ResponseTemplate::new(401)).await;
    let api = openai(1).await;
    let policy = DefaultPolicy::default().also_on(http::StatusCode::UNAUTHORIZED);
    let kit = kit_with(&backend.uri(), &api.uri(), policy).await;
    assert_eq!(ask(&kit).await.json()["client_secret"], "ek_from_openai");
}

#[tokio::test]
async fn both_down_is_one_clear_error_naming_no_secret() {
    let backend = backend(ResponseTemplate::new(503)).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let kit = kit_with(
        &backend.uri(),
        &format!("http://{closed}"),
        DefaultPolicy::default(),
    )
    .await;
    let json = ask(&kit).await.assert_error(502, "BACKEND_UNREACHABLE");
    assert!(
        json["details"].as_str().unwrap().contains("connect"),
        "{json}"
    );
}

#[tokio::test]
async fn which_side_answered_is_visible_to_the_callers_code() {
    let backend = backend(ResponseTemplate::new(503)).await;
    let api = openai(1).await;
    let upstream = FallbackLayer::new(hosted(&api.uri())).layer(custom(&backend.uri()));
    let session = within(upstream.oneshot(SessionRequest::new(Principal::new("alice"))))
        .await
        .unwrap();
    assert_eq!(
        session.extensions.get::<Answered>(),
        Some(&Answered::Secondary)
    );

    let healthy = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"session_id": "s1"})))
        .mount(&healthy)
        .await;
    let upstream = FallbackLayer::new(hosted(&api.uri())).layer(custom(&healthy.uri()));
    let session = within(upstream.oneshot(SessionRequest::new(Principal::new("alice"))))
        .await
        .unwrap();
    assert_eq!(
        session.extensions.get::<Answered>(),
        Some(&Answered::Primary)
    );
}

#[tokio::test]
async fn http_services_fall_back_on_5xx_with_a_response_extension() {
    let primary = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(502))
        .expect(1)
        .mount(&primary)
        .await;
    let secondary = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("spare"))
        .expect(1)
        .mount(&secondary)
        .await;
    // Both sides get the same request: rewrite the authority toward each mock.
    let to = |base: String| {
        let client = HttpClient::new();
        tower::service_fn(move |mut req: Request<Full<Bytes>>| {
            let uri = format!("{base}{}", req.uri().path());
            *req.uri_mut() = uri.parse().unwrap();
            let mut client = client.clone();
            async move { tower::Service::call(&mut client, req).await }
        })
    };
    let svc = FallbackLayer::new(to(secondary.uri())).layer(to(primary.uri()));
    let req = Request::get("http://placeholder/status")
        .body(Full::default())
        .unwrap();
    let res = within(svc.oneshot(req)).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.extensions().get::<Answered>(),
        Some(&Answered::Secondary)
    );
}
