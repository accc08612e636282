//! Hostile input: property tests over what an attacker controls (credentials, tokens, JSON
//! bodies, event text) — no panic, no forged token ever verifies — and raw-socket abuse of the
//! server (oversized headers, slow loris, idle connections, dribbled bodies).

mod common;

use std::time::Duration;

use bytes::Bytes;
use chatkit_tower::auth::{bearer_token, AuthLayer, StaticTokens};
use chatkit_tower::backend::SessionIssuer;
use chatkit_tower::protocol::ChatKitRequest;
use chatkit_tower::session::SessionService;
use chatkit_tower::sse::Event;
use chatkit_tower::token::{SessionClaims, SessionKeys};
use chatkit_tower::{App, Config};
use http::{HeaderMap, HeaderValue, Request};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tower::{Layer, ServiceExt};

const KEY: &str = "hostile-input-key-0123456789abcdef0123";

fn keys() -> SessionKeys {
    SessionKeys::new([KEY]).unwrap()
}

/// Decode an SSE event's `data:` lines the way a browser's parser does.
fn sse_data(wire: &str) -> String {
    let lines: Vec<&str> = wire
        .split('\n')
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .collect();
    lines.join("\n")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn credential_parsing_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(value) = HeaderValue::from_bytes(&raw) {
            let mut headers = HeaderMap::new();
            headers.insert("authorization", value.clone());
            headers.insert("x-auth-token", value.clone());
            headers.insert("cookie", value);
            let _ = bearer_token(&headers);
        }
    }

    #[test]
    fn arbitrary_strings_never_verify(token in ".{0,400}") {
        prop_assert!(keys().verify(&token).is_err());
        let prefixed = format!("ck1.{token}");
        prop_assert!(keys().verify(&prefixed).is_err());
    }

    #[test]
    fn any_change_to_a_sealed_secret_is_refused(
        position in any::<prop::sample::Index>(),
        byte in 0x21u8..0x7f,
        user in "[a-z0-9_]{1,40}",
    ) {
        let keys = keys();
        let token = keys.seal(&SessionClaims::new("sess_1", user, u64::MAX / 4));
        let mut bytes = token.clone().into_bytes();
        let i = position.index(bytes.len());
        prop_assume!(bytes[i] != byte);
        bytes[i] = byte;
        let altered = String::from_utf8(bytes).unwrap();
        // Base64 has a few encodings of the same bytes in its last character; any that decodes
        // to the same signed bytes is the same token, not a forgery.
        if let Ok(claims) = keys.verify(&altered) {
            prop_assert_eq!(keys.verify(&token).unwrap(), claims);
            prop_assert_eq!(i, token.len() - 1);
        }
    }

    #[test]
    fn chatkit_requests_of_any_shape_never_panic(body in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = ChatKitRequest::from_json(&body);
    }

    #[test]
    fn chatkit_requests_with_any_type_and_params_never_panic(
        kind in prop::sample::select(vec![
            "threads.create", "threads.add_user_message", "threads.list", "items.list",
            "threads.update", "threads.delete", "items.feedback", "attachments.create",
            "input.transcribe", "threads.custom_action", "nope",
        ]),
        params in r#"\{("[a-z_]{1,12}": ?(1|"x"|null|\[\]|\{\}|true|-5|1e400),? ?){0,4}\}"#,
    ) {
        let body = format!(r#"{{"type":"{kind}","params":{params}}}"#);
        let _ = ChatKitRequest::from_json(body.as_bytes());
    }

    #[test]
    fn event_data_round_trips_through_the_encoder(text in "[^\r]{0,200}") {
        let wire = Event::new().data(&text).to_bytes();
        let wire = std::str::from_utf8(&wire).unwrap();
        prop_assert!(wire.ends_with("\n\n"));
        prop_assert_eq!(sse_data(wire), text);
    }

    #[test]
    fn carriage_returns_in_event_data_become_line_breaks(text in "[a-z\r\n]{0,60}") {
        let wire = Event::new().data(&text).to_bytes();
        let wire = std::str::from_utf8(&wire).unwrap();
        // Exactly one blank line: the event's end. Nothing in the data can end it early.
        prop_assert_eq!(wire.matches("\n\n").count(), 1);
        prop_assert!(!wire.contains('\r'));
        let expected = text.replace("\r\n", "\n").replace('\r', "\n");
        prop_assert_eq!(sse_data(wire), expected);
    }
}

#[tokio::test]
async fn session_bodies_of_any_bytes_get_a_json_answer() {
    let session = SessionService::builder(SessionIssuer::new(keys()))
        .keys(keys())
        .build()
        .unwrap();
    let svc = AuthLayer::new(StaticTokens::new().with("t", "alice")).layer(session);
    let mut runner = proptest::test_runner::TestRunner::default();
    let strategy = proptest::collection::vec(any::<u8>(), 0..2000);
    for _ in 0..300 {
        let body = strategy.new_tree(&mut runner).unwrap().current();
        let req = Request::post("/")
            .header("authorization", "Bearer t")
            .body(http_body_util::Full::new(Bytes::from(body)))
            .unwrap();
        let res = common::within(svc.clone().oneshot(req)).await.unwrap();
        let status = res.status().as_u16();
        assert!([200, 400].contains(&status), "{status}");
        assert_eq!(res.headers()["content-type"], "application/json");
    }
}

/// The example server, with short connection timeouts.
async fn hardened_app() -> std::net::SocketAddr {
    let config = Config::from_lookup(|_| None).unwrap();
    let app = App::from_config(&config)
        .unwrap()
        .header_read_timeout(Duration::from_millis(500));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(app.serve(listener, std::future::pending()));
    addr
}

/// Read until the server closes the connection (or 5 s pass); what it sent, if anything.
async fn read_until_closed(tcp: &mut TcpStream) -> Option<String> {
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    closed
        .ok()
        .map(|()| String::from_utf8_lossy(&answer).into_owned())
}

async fn healthy(addr: std::net::SocketAddr) {
    let res = common::send(
        Request::get(format!("http://{addr}/healthz"))
            .body(Default::default())
            .unwrap(),
    )
    .await;
    assert_eq!(res.status, 200, "the server stopped serving");
}

#[tokio::test]
async fn oversized_headers_are_refused_and_the_server_keeps_serving() {
    let addr = hardened_app().await;
    let mut tcp = common::within(TcpStream::connect(addr)).await.unwrap();
    let huge = "a".repeat(512 * 1024);
    let head = format!("GET /healthz HTTP/1.1\r\nhost: x\r\nx-huge: {huge}\r\n\r\n");
    let _ = common::within(tcp.write_all(head.as_bytes())).await;
    let answer = read_until_closed(&mut tcp)
        .await
        .expect("the connection was not closed");
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "{}",
        &answer[..answer.len().min(200)]
    );
    healthy(addr).await;
}

#[tokio::test]
async fn slow_loris_headers_and_idle_connections_are_cut_off() {
    let addr = hardened_app().await;
    // Half a request line, then silence.
    let mut slow = common::within(TcpStream::connect(addr)).await.unwrap();
    slow.write_all(b"POST /api/custom/session HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    // A connection that never says anything.
    let mut idle = common::within(TcpStream::connect(addr)).await.unwrap();
    assert!(
        read_until_closed(&mut slow).await.is_some(),
        "the slow client was not cut off"
    );
    assert!(
        read_until_closed(&mut idle).await.is_some(),
        "the idle connection was not closed"
    );
    healthy(addr).await;
}

#[tokio::test]
async fn a_dribbled_body_is_answered_408() {
    let addr = hardened_app().await;
    let mut tcp = common::within(TcpStream::connect(addr)).await.unwrap();
    common::within(tcp.write_all(
        b"POST /api/custom/session HTTP/1.1\r\nhost: x\r\nauthorization: Bearer test-token\r\n\
          content-length: 1000\r\n\r\n{",
    ))
    .await
    .unwrap();
    // One byte a second: the body would take a quarter of an hour.
    let dribble = async {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if tcp.write_all(b" ").await.is_err() {
                break;
            }
            let mut buf = [0u8; 1024];
            if let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_millis(10), tcp.read(&mut buf)).await
            {
                return String::from_utf8_lossy(&buf[..n]).into_owned();
            }
        }
        String::new()
    };
    let answer = tokio::time::timeout(
        chatkit_tower::BODY_READ_TIMEOUT + Duration::from_secs(5),
        dribble,
    )
    .await
    .expect("the dribbling body was never cut off");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("REQUEST_TIMEOUT"), "{answer}");
}
