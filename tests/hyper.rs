//! The kit on bare hyper-util (examples/hyper.rs), over real TCP.

mod common;

#[path = "../examples/hyper.rs"]
#[allow(dead_code)]
mod example;

use common::{chat_round_trips, post, serve, test_kit, within};

#[tokio::test]
async fn session_stream_and_websocket_on_bare_hyper() {
    let server = serve(example::service(&test_kit())).await;
    within(chat_round_trips(server.addr)).await;
    post(&server.url("/elsewhere"), &[], "")
        .await
        .assert_error(404, "NOT_FOUND");
}
