//! The example server's session path, end to end over real TCP: what a browser's
//! `getClientSecret()` and the seed's `curl` see.

mod common;

use chatkit_tower::token::SessionKeys;
use common::{post, serve_app, within};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SECRET: &str = "test-session-secret-0123456789abcdef";

#[tokio::test]
async fn seed_curl_gets_a_client_secret_and_expiry() {
    let server = serve_app(&[("CHATKIT_SESSION_SECRET", SECRET)]).await;
    // curl -X POST http://localhost:3000/api/custom/session -H "Authorization: Bearer test-token"
    //      -H "Content-Type: application/json"   (and no body)
    let res = post(
        &server.url("/api/custom/session"),
        &[
            ("authorization", "Bearer test-token"),
            ("content-type", "application/json"),
        ],
        "",
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.headers["cache-control"], "no-store");
    let json = res.json();
    let secret = json["client_secret"].as_str().unwrap();
    let expires_at = json["expires_at"].as_str().unwrap();
    assert!(
        expires_at.ends_with('Z') && expires_at.contains('T'),
        "{expires_at}"
    );

    // The secret is sealed for the authenticated user and verifies with the shared key.
    let claims = SessionKeys::new([SECRET]).unwrap().verify(secret).unwrap();
    assert_eq!(claims.user_id, "demo-user");
    assert!(claims.session_id.starts_with("sess_"));
}

#[tokio::test]
async fn missing_or_wrong_credential_is_401_json() {
    let server = serve_app(&[]).await;
    let url = server.url("/api/custom/session");
    let res = post(&url, &[], "").await;
    res.assert_error(401, "UNAUTHORIZED");
    assert_eq!(res.headers["www-authenticate"], "Bearer");
    post(&url, &[("authorization", "Bearer wrong-token")], "")
        .await
        .assert_error(401, "UNAUTHORIZED");
    post(&url, &[("authorization", "Basic dGVzdDp0ZXN0")], "")
        .await
        .assert_error(401, "UNAUTHORIZED");
}

#[tokio::test]
async fn x_auth_token_header_works() {
    let server = serve_app(&[("CHATKIT_USER_TOKENS", "tok-a=alice,tok-b=bob")]).await;
    let res = post(
        &server.url("/api/custom/session"),
        &[("x-auth-token", "tok-b")],
        "",
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.text());
    // The demo token is off once real tokens are configured.
    post(
        &server.url("/api/custom/session"),
        &[("x-auth-token", "test-token")],
        "",
    )
    .await
    .assert_error(401, "UNAUTHORIZED");
}

#[tokio::test]
async fn wrong_method_is_405_with_allow() {
    let server = serve_app(&[]).await;
    let req = http::Request::get(server.url("/api/custom/session"))
        .header("authorization", "Bearer test-token")
        .body(Default::default())
        .unwrap();
    let res = common::send(req).await;
    res.assert_error(405, "METHOD_NOT_ALLOWED");
    assert_eq!(res.headers["allow"], "POST");
}

#[tokio::test]
async fn malformed_json_is_400() {
    let server = serve_app(&[]).await;
    let url = server.url("/api/custom/session");
    let auth = [("authorization", "Bearer test-token")];
    let json = post(&url, &auth, "{\"model\": ")
        .await
        .assert_error(400, "BAD_REQUEST");
    assert!(json["details"].as_str().unwrap().contains("JSON"), "{json}");
    post(&url, &auth, "[1, 2]")
        .await
        .assert_error(400, "BAD_REQUEST");
    post(&url, &auth, r#"{"model": 42}"#)
        .await
        .assert_error(400, "BAD_REQUEST");
}

#[tokio::test]
async fn model_outside_the_allow_list_is_403_and_inside_is_echoed() {
    let server = serve_app(&[("CHATKIT_MODELS", "custom-v1,custom-v2")]).await;
    let url = server.url("/api/custom/session");
    let auth = [("authorization", "Bearer test-token")];
    post(&url, &auth, r#"{"model":"gpt-9"}"#)
        .await
        .assert_error(403, "MODEL_NOT_ALLOWED");
    let res = post(&url, &auth, r#"{"model":"custom-v2"}"#).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.json()["model"], "custom-v2");
}

/// Send raw bytes and read whatever the server answers before it closes.
async fn raw_exchange(addr: std::net::SocketAddr, head: &str, body: &[u8]) -> String {
    within(async {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(head.as_bytes()).await.unwrap();
        // The server may answer and close before all of this is written; that is the point.
        let _ = tcp.write_all(body).await;
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    answer.extend_from_slice(&buf[..n]);
                    if answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}") {
                        break;
                    }
                }
            }
        }
        String::from_utf8_lossy(&answer).into_owned()
    })
    .await
}

#[tokio::test]
async fn ten_megabyte_body_is_refused_with_413_before_it_is_sent() {
    let server = serve_app(&[]).await;
    // Declares 10 MB but sends only 64 KiB and never the rest: an answer can only come from a
    // server that refused without waiting for (or buffering) the whole body.
    let head = format!(
        "POST /api/custom/session HTTP/1.1\r\nhost: x\r\nauthorization: Bearer test-token\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n",
        10 * 1024 * 1024
    );
    let answer = raw_exchange(server.addr, &head, &vec![b' '; 64 * 1024]).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("PAYLOAD_TOO_LARGE"), "{answer}");
}

#[tokio::test]
async fn chunked_body_over_the_limit_is_413_while_still_streaming() {
    let server = serve_app(&[]).await;
    let head =
        "POST /api/custom/session HTTP/1.1\r\nhost: x\r\nauthorization: Bearer test-token\r\n\
                transfer-encoding: chunked\r\n\r\n";
    // 64 chunks of 1 KiB, no final chunk: the body never ends.
    let mut chunks = Vec::new();
    for _ in 0..64 {
        chunks.extend_from_slice(b"400\r\n");
        chunks.extend_from_slice(&[b' '; 1024]);
        chunks.extend_from_slice(b"\r\n");
    }
    let answer = raw_exchange(server.addr, head, &chunks).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
}

#[tokio::test]
async fn healthz_readyz_and_unknown_paths() {
    let server = serve_app(&[]).await;
    // Alive, and ready: the (in-memory) ChatKit store answers.
    for (path, status) in [("/healthz", "ok"), ("/readyz", "ready")] {
        let res = common::send(
            http::Request::get(server.url(path))
                .body(Default::default())
                .unwrap(),
        )
        .await;
        assert_eq!(res.status, 200, "{path}");
        assert_eq!(res.json()["status"], status, "{path}");
    }
    post(&server.url("/readyz"), &[], "")
        .await
        .assert_error(405, "METHOD_NOT_ALLOWED");
    let res = post(&server.url("/nope"), &[], "").await;
    res.assert_error(404, "NOT_FOUND");
}

#[tokio::test]
async fn embedded_backend_endpoint_reads_user_from_query_or_body() {
    let server = serve_app(&[
        ("CUSTOM_BACKEND_KEY", "backend-key-1"),
        ("CHATKIT_SESSION_SECRET", SECRET),
    ])
    .await;
    let keys = SessionKeys::new([SECRET]).unwrap();
    let auth = [("authorization", "Bearer backend-key-1")];

    // FastAPI-style: user_id in the query string.
    let res = post(&server.url("/api/sessions?user_id=alice"), &auth, "").await;
    assert_eq!(res.status, 200, "{}", res.text());
    let id = res.json()["session_id"].as_str().unwrap().to_owned();
    assert_eq!(keys.verify(&id).unwrap().user_id, "alice");

    // Express-style: user_id in the JSON body.
    let res = post(&server.url("/api/sessions"), &auth, r#"{"user_id":"bob"}"#).await;
    let id = res.json()["session_id"].as_str().unwrap().to_owned();
    assert_eq!(keys.verify(&id).unwrap().user_id, "bob");

    // Neither: 400. Wrong key: 401.
    post(&server.url("/api/sessions"), &auth, "")
        .await
        .assert_error(400, "BAD_REQUEST");
    post(
        &server.url("/api/sessions?user_id=alice"),
        &[("authorization", "Bearer guessed")],
        "",
    )
    .await
    .assert_error(401, "UNAUTHORIZED");
}

#[tokio::test]
async fn example_server_retries_a_flaky_backend_then_falls_back_to_openai() {
    use serde_json::json;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    // A backend that fails twice, then answers: retried, never reaching OpenAI.
    let backend = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/sessions"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .expect(2)
        .mount(&backend)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/sessions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"session_id": "sess-9"})))
        .expect(1)
        .mount(&backend)
        .await;
    let api = MockServer::start().await;
    let expires_at = time::OffsetDateTime::now_utc().unix_timestamp() + 600;
    Mock::given(method("POST"))
        .and(path("/v1/chatkit/sessions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "cksess_1", "client_secret": "ek_fallback", "expires_at": expires_at
        })))
        .expect(1)
        .mount(&api)
        .await;
    let backend_url = backend.uri();
    let api_url = api.uri();
    let vars = [
        ("CUSTOM_BACKEND_URL", backend_url.as_str()),
        ("CUSTOM_BACKEND_KEY", "backend-key"),
        ("OPENAI_API_KEY", "sk-test"),
        ("CHATKIT_WORKFLOW_ID", "wf_1"),
        ("CHATKIT_API_BASE", api_url.as_str()),
        ("CHATKIT_SESSION_SECRET", SECRET),
    ];
    let server = serve_app(&vars).await;
    let auth = [("authorization", "Bearer test-token")];
    let res = post(&server.url("/api/custom/session"), &auth, "").await;
    assert_eq!(res.status, 200, "{}", res.text());
    let claims = SessionKeys::new([SECRET])
        .unwrap()
        .verify(res.json()["client_secret"].as_str().unwrap())
        .unwrap();
    assert_eq!(claims.session_id, "sess-9");

    // The backend starts failing for good: after the retries, the session comes from OpenAI.
    backend.verify().await;
    backend.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .expect(3)
        .mount(&backend)
        .await;
    let res = post(&server.url("/api/custom/session"), &auth, "").await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["client_secret"], "ek_fallback");
}

#[tokio::test]
async fn demo_page_is_served_with_the_model_list() {
    let server = serve_app(&[("CHATKIT_MODELS", "custom-v1,</script><b>")]).await;
    let res = common::send(
        http::Request::get(server.url("/"))
            .body(Default::default())
            .unwrap(),
    )
    .await;
    assert_eq!(res.status, 200);
    assert!(res.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let page = res.text();
    assert!(
        page.contains(r#"const MODELS = ["custom-v1","\u003c/script>\u003cb>"];"#),
        "{}",
        &page[..200]
    );
    assert!(page.contains("/api/custom/stream") && page.contains("/api/ws/chat/"));
}

#[tokio::test]
async fn session_stream_and_websocket_through_the_example_server() {
    let server = serve_app(&[("CHATKIT_DEMO_PACE_MS", "0")]).await;
    within(common::chat_round_trips(server.addr)).await;
}

/// Collects everything the kit logs, at every level.
#[derive(Clone, Default)]
struct LogBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn no_secret_reaches_the_logs_at_any_level() {
    let logs = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    // The test's runtime is single-threaded: every task of the server logs on this thread.
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = serve_app(&[
        ("CHATKIT_SESSION_SECRET", SECRET),
        ("CHATKIT_USER_TOKENS", "user-token-hunter2=alice"),
        ("CUSTOM_BACKEND_KEY", "backend-key-hunter2"),
        ("CHATKIT_DEMO_PACE_MS", "0"),
    ])
    .await;
    let res = post(
        &server.url("/api/custom/session"),
        &[("authorization", "Bearer user-token-hunter2")],
        r#"{"metadata":{"k":"v"}}"#,
    )
    .await;
    let secret = res.json()["client_secret"].as_str().unwrap().to_owned();
    post(
        &server.url("/api/sessions?user_id=bob"),
        &[("authorization", "Bearer backend-key-hunter2")],
        "",
    )
    .await;
    post(
        &server.url("/api/custom/session"),
        &[("authorization", "Bearer wrong-token-hunter2")],
        "",
    )
    .await;
    let url = format!("ws://{}/api/ws/chat/{secret}", server.addr);
    let (mut socket, _) = within(tokio_tungstenite::connect_async(url)).await.unwrap();
    within(socket.close(None)).await.ok();
    drop(socket);
    tokio::task::yield_now().await;

    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("/api/custom/session"),
        "requests are logged: {logs}"
    );
    assert!(logs.contains("/api/ws/chat/…"), "{logs}");
    let signature = secret.rsplit('.').next().unwrap();
    for secret in ["hunter2", SECRET, signature, &secret[..40]] {
        assert!(
            !logs.contains(secret),
            "{secret:?} leaked into the logs:\n{logs}"
        );
    }
}

#[tokio::test]
async fn stream_through_the_example_server_arrives_word_by_word() {
    use http_body_util::BodyExt;

    let server = serve_app(&[("CHATKIT_DEMO_PACE_MS", "20")]).await;
    let secret = common::client_secret(server.addr, "test-token").await;
    // As the seed's stream reader sends it: no content type at all.
    let req = http::Request::post(server.url("/api/custom/stream"))
        .header("authorization", format!("Bearer {secret}"))
        .body(http_body_util::Full::new(bytes::Bytes::from(
            r#"{"message":"one two three"}"#,
        )))
        .unwrap();
    let res = within(common::client().request(req)).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    assert_eq!(res.headers()["x-accel-buffering"], "no");
    let mut body = res.into_body();
    let mut reads = Vec::new();
    while let Some(frame) = within(body.frame()).await {
        if let Ok(data) = frame.unwrap().into_data() {
            reads.push(String::from_utf8(data.to_vec()).unwrap());
        }
    }
    let all = reads.concat();
    assert!(reads.len() > 1, "the reply came in one piece: {reads:?}");
    assert_eq!(
        all,
        "data: {\"type\":\"delta\",\"text\":\"one \"}\n\n\
         data: {\"type\":\"delta\",\"text\":\"two \"}\n\n\
         data: {\"type\":\"delta\",\"text\":\"three\"}\n\n\
         data: {\"type\":\"done\"}\n\n"
    );
    // A forged secret never streams.
    post(
        &server.url("/api/custom/stream"),
        &[("authorization", "Bearer ck1.forged.secret")],
        r#"{"message":"x"}"#,
    )
    .await
    .assert_error(401, "UNAUTHORIZED");
}

#[tokio::test]
async fn example_server_is_a_chatkit_custom_backend_out_of_the_box() {
    let server = serve_app(&[("CHATKIT_DEMO_PACE_MS", "0")]).await;
    let url = server.url("/chatkit");
    let auth = [("authorization", "Bearer test-token")];
    let create = r#"{"type":"threads.create","params":{"input":{"content":[{"type":"input_text","text":"hello chatkit"}],"attachments":[],"inference_options":{}}}}"#;
    let res = post(&url, &auth, create).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.headers["content-type"], "text/event-stream");
    let events: Vec<serde_json::Value> = res
        .text()
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .map(|json| serde_json::from_str(json).unwrap())
        .collect();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        &types[..3],
        ["thread.created", "thread.item.done", "stream_options"]
    );
    assert!(types.contains(&"thread.item.updated"), "{types:?}");
    let done = events
        .iter()
        .rev()
        .find(|e| e["type"] == "thread.item.done" && e["item"]["type"] == "assistant_message")
        .expect("an assistant message");
    assert_eq!(done["item"]["content"][0]["text"], "hello chatkit");
    let thread_id = events[0]["thread"]["id"].as_str().unwrap();

    let list = post(&url, &auth, r#"{"type":"threads.list","params":{}}"#).await;
    assert_eq!(list.json()["data"][0]["id"], thread_id);
    // Without a credential: the kit's 401.
    post(&url, &[], r#"{"type":"threads.list","params":{}}"#)
        .await
        .assert_error(401, "UNAUTHORIZED");
}
