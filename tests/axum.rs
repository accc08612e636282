//! The kit mounted in an axum 0.8 router (examples/axum.rs), over real TCP.

mod common;

#[path = "../examples/axum.rs"]
#[allow(dead_code)]
mod example;

use common::{chat_round_trips, post, send, test_kit, within};

async fn serve_axum() -> std::net::SocketAddr {
    let app = example::app(&test_kit());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test]
async fn session_stream_and_websocket_through_axum() {
    let addr = serve_axum().await;
    within(chat_round_trips(addr)).await;
}

#[tokio::test]
async fn the_apps_own_routes_still_work_and_unknown_paths_stay_404() {
    let addr = serve_axum().await;
    let get = |path: &str| {
        http::Request::get(format!("http://{addr}{path}"))
            .body(Default::default())
            .unwrap()
    };
    let res = send(get("/")).await;
    assert_eq!(
        (res.status.as_u16(), res.text()),
        (200, "my existing app".into())
    );
    assert_eq!(send(get("/api/status")).await.json()["ok"], true);
    // Authentication is a route layer: it does not turn unknown paths into 401.
    assert_eq!(send(get("/api/nope")).await.status, 404);
    assert_eq!(
        post(&format!("http://{addr}/api/custom/nope"), &[], "")
            .await
            .status,
        404
    );
}
