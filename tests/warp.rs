//! The kit composed with a warp 0.4 app at the hyper level (examples/warp.rs), over real TCP.

mod common;

#[path = "../examples/warp.rs"]
#[allow(dead_code)]
mod example;

use common::{chat_round_trips, send, serve, test_kit, within};

#[tokio::test]
async fn session_stream_and_websocket_next_to_warp_routes() {
    let server = serve(example::service(&test_kit())).await;
    within(chat_round_trips(server.addr)).await;

    let get = |path: &str| {
        http::Request::get(server.url(path))
            .body(Default::default())
            .unwrap()
    };
    assert_eq!(send(get("/hello/rust")).await.text(), "Hello, rust!");
    assert_eq!(send(get("/")).await.text(), "my existing warp app");
    assert_eq!(send(get("/nope")).await.status, 404);
}
