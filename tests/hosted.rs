//! OpenAI's hosted ChatKit sessions as the session upstream, against a wiremock stand-in for
//! `api.openai.com`: the exact request the API expects, and how its answers and errors map.

mod common;

use std::time::Duration;

use chatkit_tower::auth::{AuthLayer, StaticTokens};
use chatkit_tower::session::{HostedSessions, HostedSessionsBuilder, SessionService};
use chatkit_tower::token::SessionKeys;
use common::{post, serve, Answer, TestServer};
use serde_json::json;
use tower::Layer;
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const API_KEY: &str = "sk-test-openai-key-do-not-leak";

async fn kit(
    configure: impl FnOnce(HostedSessionsBuilder) -> HostedSessionsBuilder,
    api: &MockServer,
) -> TestServer {
    let hosted = configure(
        HostedSessions::builder(API_KEY, "wf_123")
            .base_url(api.uri())
            .timeout(Duration::from_secs(2)),
    )
    .build()
    .unwrap();
    let session = SessionService::builder(hosted)
        .keys(SessionKeys::random().unwrap())
        .build()
        .unwrap();
    serve(AuthLayer::new(StaticTokens::new().with("alice-token", "alice")).layer(session)).await
}

async fn ask(kit: &TestServer, body: &str) -> Answer {
    post(
        &kit.url("/api/custom/session"),
        &[("authorization", "Bearer alice-token")],
        body,
    )
    .await
}

fn in_ten_minutes() -> u64 {
    time::OffsetDateTime::now_utc().unix_timestamp() as u64 + 600
}

#[tokio::test]
async fn sends_the_exact_request_the_api_expects() {
    let api = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chatkit/sessions"))
        .and(header(
            "authorization",
            format!("Bearer {API_KEY}").as_str(),
        ))
        .and(header("openai-beta", "chatkit_beta=v1"))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({
            "workflow": {"id": "wf_123", "version": "3", "state_variables": {"plan": "pro"}},
            "user": "alice",
            "expires_after": {"anchor": "created_at", "seconds": 600},
            "chatkit_configuration": {"file_upload": {"enabled": true}},
            "rate_limits": {"max_requests_per_1_minute": 10}
        })))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("x-request-id", "req_abc")
                .set_body_json(json!({
                    "id": "cksess_1",
                    "object": "chatkit.session",
                    "client_secret": "ek_secret_1",
                    "expires_at": in_ten_minutes(),
                    "status": "active",
                    "user": "alice"
                })),
        )
        .expect(1)
        .mount(&api)
        .await;
    let kit = kit(
        |b| {
            b.workflow_version("3")
                .state_variable("plan", "pro")
                // An hour is more than the API accepts: clamped to 600 s.
                .expires_after(Duration::from_secs(3600))
                .chatkit_configuration(json!({"file_upload": {"enabled": true}}))
                .rate_limit_per_minute(10)
        },
        &api,
    )
    .await;
    // The browser's user_id is ignored: the user is the authenticated one.
    let res = ask(&kit, r#"{"user_id":"mallory"}"#).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let json = res.json();
    // OpenAI's secret goes to the browser as it is: the widget hands it to OpenAI.
    assert_eq!(json["client_secret"], "ek_secret_1");
    assert_eq!(json["session_id"], "cksess_1");
    let expires = time::OffsetDateTime::parse(
        json["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let delta = expires.unix_timestamp() - time::OffsetDateTime::now_utc().unix_timestamp();
    assert!((590..=600).contains(&delta), "{delta}");
    assert_eq!(res.headers["x-request-id"], "req_abc");
}

#[tokio::test]
async fn api_errors_map_to_the_kit_error_body() {
    let cases = [
        (
            ResponseTemplate::new(404).set_body_json(json!({"error": {
                "message": "Workflow with id 'wf_123' not found.",
                "type": "invalid_request_error", "param": null, "code": null
            }})),
            404,
            "SESSION_ERROR",
            "Workflow with id 'wf_123' not found.",
        ),
        (
            ResponseTemplate::new(401).set_body_json(json!({"error": {
                "message": format!("Incorrect API key provided: {API_KEY}"),
                "type": "invalid_request_error"
            }})),
            502,
            "SESSION_ERROR",
            "OPENAI_API_KEY",
        ),
        (
            ResponseTemplate::new(429)
                .insert_header("retry-after", "20")
                .set_body_json(json!({"error": {"message": "Rate limit reached"}})),
            429,
            "RATE_LIMITED",
            "Rate limit reached",
        ),
        (
            ResponseTemplate::new(500)
                .set_body_json(json!({"error": {"message": "The server had an error"}})),
            502,
            "SESSION_ERROR",
            "500",
        ),
        (
            ResponseTemplate::new(200).set_body_json(json!({"id": "cksess_2"})),
            502,
            "SESSION_ERROR",
            "client_secret",
        ),
    ];
    for (template, status, code, mentions) in cases {
        let api = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(template.insert_header("x-request-id", "req_err"))
            .expect(1)
            .mount(&api)
            .await;
        let kit = kit(|b| b, &api).await;
        let res = ask(&kit, "").await;
        let json = res.assert_error(status, code);
        let details = json["details"].as_str().unwrap();
        assert!(details.contains(mentions), "{details}");
        assert!(!res.text().contains(API_KEY), "key leaked: {}", res.text());
        assert_eq!(res.headers["x-request-id"], "req_err", "{details}");
    }
}

#[tokio::test]
async fn refresh_cancels_the_previous_session_when_asked() {
    let api = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chatkit/sessions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "cksess_new", "client_secret": "ek_new", "expires_at": in_ten_minutes()
        })))
        .expect(1)
        .mount(&api)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/chatkit/sessions/cksess_old/cancel"))
        .and(header("openai-beta", "chatkit_beta=v1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "cksess_old", "status": "cancelled", "user": "alice"
        })))
        .expect(1)
        .mount(&api)
        .await;
    let kit = kit(|b| b.cancel_previous(true), &api).await;
    let res = ask(&kit, r#"{"previous_session_id":"cksess_old"}"#).await;
    assert_eq!(res.json()["client_secret"], "ek_new");
}

#[tokio::test]
async fn without_cancel_previous_nothing_is_cancelled() {
    let api = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chatkit/sessions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "cksess_new", "client_secret": "ek_new", "expires_at": in_ten_minutes()
        })))
        .expect(1)
        .mount(&api)
        .await;
    let kit = kit(|b| b, &api).await;
    let res = ask(&kit, r#"{"previous_session_id":"cksess_old"}"#).await;
    assert_eq!(res.status, 200);
    // Only the creation reached the API.
    assert_eq!(api.received_requests().await.unwrap().len(), 1);
}

#[test]
fn latest_version_and_bad_state_variables_are_refused() {
    let b = || HostedSessions::builder(API_KEY, "wf_1");
    assert!(b()
        .workflow_version("latest")
        .build_with_client(())
        .is_err());
    assert!(b()
        .state_variable("k".repeat(65), "v")
        .build_with_client(())
        .is_err());
    assert!(b()
        .state_variable("k", json!({"nested": 1}))
        .build_with_client(())
        .is_err());
    assert!(HostedSessions::builder("", "wf_1")
        .build_with_client(())
        .is_err());
    assert!(b()
        .base_url("api.openai.com")
        .build_with_client(())
        .is_err());
}
