//! CORS as a browser meets it, through the example server's stack over real TCP.

mod common;

use bytes::Bytes;
use chatkit_tower::cors::{AllowedOrigins, CorsPreset};
use common::{send, serve_app};
use http::Request;
use http_body_util::Full;

const APP_ORIGIN: &str = "https://app.example.com";

fn preflight(url: &str, origin: &str) -> Request<Full<Bytes>> {
    Request::options(url)
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type,x-auth-token,chatkit-frame-instance-id,accept-language",
        )
        .body(Full::default())
        .unwrap()
}

#[tokio::test]
async fn preflight_from_an_allowed_origin_gets_chatkit_headers_with_credentials() {
    let server = serve_app(&[("CHATKIT_ALLOWED_ORIGINS", APP_ORIGIN)]).await;
    // No credential on the preflight: it must not be stopped by authentication.
    let res = send(preflight(&server.url("/api/custom/session"), APP_ORIGIN)).await;
    assert!(res.status.is_success(), "{:?}", res);
    let h = &res.headers;
    assert_eq!(h["access-control-allow-origin"], APP_ORIGIN);
    assert_eq!(h["access-control-allow-credentials"], "true");
    let methods = h["access-control-allow-methods"].to_str().unwrap();
    assert!(methods.contains("POST"), "{methods}");
    let allowed = h["access-control-allow-headers"].to_str().unwrap();
    for name in [
        "authorization",
        "content-type",
        "x-auth-token",
        "chatkit-frame-instance-id",
        "accept-language",
    ] {
        assert!(allowed.contains(name), "{name} missing from {allowed}");
    }
    assert!(h.contains_key("access-control-max-age"));
}

#[tokio::test]
async fn actual_request_from_an_allowed_origin_exposes_request_id() {
    let server = serve_app(&[("CHATKIT_ALLOWED_ORIGINS", APP_ORIGIN)]).await;
    let req = Request::post(server.url("/api/custom/session"))
        .header("origin", APP_ORIGIN)
        .header("authorization", "Bearer test-token")
        .body(Full::default())
        .unwrap();
    let res = send(req).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.headers["access-control-allow-origin"], APP_ORIGIN);
    assert_eq!(res.headers["access-control-expose-headers"], "x-request-id");
    // Errors carry CORS headers too, so the page can read why it failed.
    let req = Request::post(server.url("/api/custom/session"))
        .header("origin", APP_ORIGIN)
        .body(Full::default())
        .unwrap();
    let res = send(req).await;
    assert_eq!(res.status, 401);
    assert_eq!(res.headers["access-control-allow-origin"], APP_ORIGIN);
}

#[tokio::test]
async fn disallowed_origin_gets_no_allow_origin_header() {
    let server = serve_app(&[("CHATKIT_ALLOWED_ORIGINS", APP_ORIGIN)]).await;
    let res = send(preflight(
        &server.url("/api/custom/session"),
        "https://evil.example",
    ))
    .await;
    assert!(!res.headers.contains_key("access-control-allow-origin"));
    // The real request is not rejected by the server (CORS is enforced by the browser), but it
    // carries no Allow-Origin either, so the browser withholds the answer from the page.
    let req = Request::post(server.url("/api/custom/session"))
        .header("origin", "https://evil.example")
        .header("authorization", "Bearer test-token")
        .body(Full::default())
        .unwrap();
    let res = send(req).await;
    assert!(!res.headers.contains_key("access-control-allow-origin"));
}

#[tokio::test]
async fn the_servers_own_origin_is_always_allowed() {
    let server = serve_app(&[("PORT", "3999")]).await;
    let res = send(preflight(
        &server.url("/api/custom/session"),
        "http://localhost:3999",
    ))
    .await;
    assert_eq!(
        res.headers["access-control-allow-origin"],
        "http://localhost:3999"
    );
}

#[test]
fn wildcard_with_credentials_is_an_error_value_not_a_panic() {
    let err = CorsPreset::new(AllowedOrigins::any())
        .allow_credentials(true)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("wildcard"), "{err}");
    assert!(AllowedOrigins::list(["https://ok.example", "*"]).is_err());
    assert!(AllowedOrigins::parse("https://a.example, not-an-origin").is_err());
    // Without credentials a wildcard is fine.
    assert!(CorsPreset::new(AllowedOrigins::any()).build().is_ok());
}
