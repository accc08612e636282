//! WebSocket chat over real TCP, with tokio-tungstenite as the client: the chat itself, every
//! way a handshake is refused before the upgrade, the socket's limits and timers, backpressure,
//! HTTP/2 WebSockets and graceful shutdown.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chatkit_tower::backend::{ChatFrame, DemoResponder, ReplyContext, Responder};
use chatkit_tower::cors::AllowedOrigins;
use chatkit_tower::token::{SessionClaims, SessionKeys};
use chatkit_tower::ws::{ChatHandler, Shutdown, WsService, WsServiceBuilder};
use common::{send, serve, within, TestServer};
use futures_util::stream::{self, BoxStream, StreamExt};
use futures_util::SinkExt;
use http::{Method, Request, Version};
use http_body_util::{Empty, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tower::Service;

const KEY: &str = "ws-sealing-key-0123456789abcdef0123456789";
const APP_ORIGIN: &str = "https://app.example";

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn keys() -> SessionKeys {
    SessionKeys::new([KEY]).unwrap()
}

fn secret_for(user: &str, expires_at: u64) -> String {
    keys().seal(&SessionClaims::new("sess_backend_1", user, expires_at))
}

fn secret() -> String {
    secret_for("alice", unix_now() + 3600)
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The chat endpoint answering with the demo responder at full speed.
fn demo_chat() -> WsServiceBuilder {
    WsService::chat(keys(), DemoResponder::new(Duration::ZERO))
        .origins(AllowedOrigins::list([APP_ORIGIN]).unwrap())
}

async fn chat_server(builder: WsServiceBuilder) -> TestServer {
    serve(builder.build().unwrap()).await
}

fn ws_url(server: &TestServer, path_and_query: &str) -> String {
    format!("ws://{}{}", server.addr, path_and_query)
}

/// Open a socket to `url` with these extra handshake headers.
async fn connect(url: &str, headers: &[(&str, &str)]) -> Result<Client, WsError> {
    let mut req = url.into_client_request().unwrap();
    for (name, value) in headers {
        req.headers_mut().insert(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    within(tokio_tungstenite::connect_async(req))
        .await
        .map(|(ws, _)| ws)
}

/// The refused handshake's status and JSON body.
async fn refused(url: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    match connect(url, headers).await {
        Err(WsError::Http(res)) => {
            let body = res.body().clone().unwrap_or_default();
            let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
            (res.status().as_u16(), json)
        }
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("the handshake was accepted"),
    }
}

async fn say<S>(ws: &mut S, text: &str)
where
    S: futures_util::Sink<Message, Error = WsError> + Unpin,
{
    let frame = json!({"type": "message", "text": text}).to_string();
    within(ws.send(Message::text(frame))).await.unwrap();
}

/// The next JSON text frame (pings and pongs skipped).
async fn next_json<S>(ws: &mut S) -> Value
where
    S: futures_util::Stream<Item = Result<Message, WsError>> + Unpin,
{
    loop {
        match within(ws.next()).await {
            Some(Ok(Message::Text(text))) => return serde_json::from_str(&text).unwrap(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// Frames up to and including `done` or `error`.
async fn reply<S>(ws: &mut S) -> Vec<Value>
where
    S: futures_util::Stream<Item = Result<Message, WsError>> + Unpin,
{
    let mut frames = Vec::new();
    loop {
        let frame = next_json(ws).await;
        let last = frame["type"] == "done" || frame["type"] == "error";
        frames.push(frame);
        if last {
            return frames;
        }
    }
}

fn reply_text(frames: &[Value]) -> String {
    frames
        .iter()
        .filter(|f| f["type"] == "delta")
        .map(|f| f["text"].as_str().unwrap())
        .collect()
}

/// The close frame the server sends next (pings and pongs skipped).
async fn close_frame(ws: &mut Client) -> (u16, String) {
    loop {
        match within(ws.next()).await {
            Some(Ok(Message::Close(Some(frame)))) => {
                return (u16::from(frame.code), frame.reason.as_str().to_owned())
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn chat_round_trip_streams_deltas_then_done() {
    let server = chat_server(demo_chat()).await;
    let url = ws_url(&server, &format!("/api/ws/chat/{}", secret()));
    let mut ws = connect(&url, &[]).await.unwrap();

    say(&mut ws, "hello over a socket").await;
    let frames = reply(&mut ws).await;
    assert_eq!(
        frames,
        [
            json!({"type": "delta", "text": "hello "}),
            json!({"type": "delta", "text": "over "}),
            json!({"type": "delta", "text": "a "}),
            json!({"type": "delta", "text": "socket"}),
            json!({"type": "done"}),
        ]
    );

    // The socket stays open for the next message.
    say(&mut ws, "again").await;
    assert_eq!(reply_text(&reply(&mut ws).await), "again");
}

#[tokio::test]
async fn allowed_origin_is_let_in() {
    let server = chat_server(demo_chat()).await;
    let url = ws_url(&server, &format!("/api/ws/chat/{}", secret()));
    let mut ws = connect(&url, &[("origin", APP_ORIGIN)]).await.unwrap();
    say(&mut ws, "hi").await;
    assert_eq!(reply_text(&reply(&mut ws).await), "hi");
}

#[tokio::test]
async fn secret_in_subprotocol_is_accepted_and_only_chatkit_is_echoed() {
    let server = chat_server(demo_chat()).await;
    let secret = secret();
    let offer = format!("chatkit, {secret}");
    let mut req = ws_url(&server, "/api/ws/chat")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("sec-websocket-protocol", offer.parse().unwrap());
    let (mut ws, res) = within(tokio_tungstenite::connect_async(req)).await.unwrap();
    assert_eq!(res.headers()["sec-websocket-protocol"], "chatkit");
    say(&mut ws, "via protocol").await;
    assert_eq!(reply_text(&reply(&mut ws).await), "via protocol");

    // The secret alone, without `chatkit`, would make browsers fail the handshake.
    let url = ws_url(&server, "/api/ws/chat");
    let (status, body) = refused(&url, &[("sec-websocket-protocol", &secret)]).await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "BAD_REQUEST");
}

#[tokio::test]
async fn secret_in_query_is_accepted() {
    let server = chat_server(demo_chat()).await;
    let url = ws_url(&server, &format!("/api/ws/chat?token={}", secret()));
    let mut ws = connect(&url, &[]).await.unwrap();
    say(&mut ws, "via query").await;
    assert_eq!(reply_text(&reply(&mut ws).await), "via query");
}

#[tokio::test]
async fn forged_expired_or_missing_session_is_refused_with_401_before_the_upgrade() {
    let server = chat_server(demo_chat()).await;

    let other_keys = SessionKeys::new(["another-key-0123456789abcdef0123456789"]).unwrap();
    let forged = other_keys.seal(&SessionClaims::new("s", "alice", unix_now() + 3600));
    let (status, body) = refused(&ws_url(&server, &format!("/api/ws/chat/{forged}")), &[]).await;
    assert_eq!(status, 401);
    assert_eq!(body["code"], "UNAUTHORIZED");
    assert!(body["details"].as_str().unwrap().contains("signature"));

    let expired = secret_for("alice", unix_now() - 1);
    let (status, body) = refused(&ws_url(&server, &format!("/api/ws/chat/{expired}")), &[]).await;
    assert_eq!(status, 401);
    assert!(body["details"].as_str().unwrap().contains("expired"));

    let (status, body) = refused(&ws_url(&server, "/api/ws/chat/"), &[]).await;
    assert_eq!(status, 401);
    assert!(body["details"]
        .as_str()
        .unwrap()
        .contains("no session token"));

    let (status, _) = refused(&ws_url(&server, "/api/ws/chat?token=forged"), &[]).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn foreign_origin_is_refused_with_403() {
    let server = chat_server(demo_chat()).await;
    let url = ws_url(&server, &format!("/api/ws/chat/{}", secret()));
    let (status, body) = refused(&url, &[("origin", "https://evil.example")]).await;
    assert_eq!(status, 403);
    assert_eq!(body["code"], "FORBIDDEN");
    assert!(body["details"]
        .as_str()
        .unwrap()
        .contains("https://evil.example"));
}

#[tokio::test]
async fn requests_that_are_not_websocket_handshakes_get_clear_errors() {
    let server = chat_server(demo_chat()).await;
    let url = server.url(&format!("/api/ws/chat/{}", secret()));
    let handshake = |method: Method| {
        Request::builder()
            .method(method)
            .uri(&url)
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    };

    let res = send(Request::get(&url).body(Full::new(Bytes::new())).unwrap()).await;
    res.assert_error(426, "BAD_REQUEST");
    assert_eq!(res.headers["upgrade"], "websocket");

    let res = send(
        handshake(Method::POST)
            .header("sec-websocket-version", "13")
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await;
    res.assert_error(405, "METHOD_NOT_ALLOWED");
    assert_eq!(res.headers["allow"], "GET, CONNECT");

    let res = send(
        handshake(Method::GET)
            .header("sec-websocket-version", "8")
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await;
    res.assert_error(426, "BAD_REQUEST");
    assert_eq!(res.headers["sec-websocket-version"], "13");

    let res = send(
        Request::get(&url)
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "not base64!")
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await;
    res.assert_error(400, "BAD_REQUEST");
}

#[tokio::test]
async fn the_service_outside_an_upgrading_server_says_how_to_serve_it() {
    let mut svc = demo_chat().build().unwrap();
    let req = Request::get(format!("/api/ws/chat/{}", secret()))
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .body(())
        .unwrap();
    let res = within(svc.call(req)).await.unwrap();
    assert_eq!(res.status(), 500);
    let body = within(http_body_util::BodyExt::collect(res.into_body()))
        .await
        .unwrap()
        .to_bytes();
    let json: Value = serde_json::from_slice(&body).unwrap();
    assert!(json["details"]
        .as_str()
        .unwrap()
        .contains("serve_connection_with_upgrades"));
}

#[tokio::test]
async fn http1_served_without_upgrades_gives_101_then_a_closed_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let svc = demo_chat().build().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let svc = TowerToHyperService::new(svc);
        // No `.with_upgrades()`: the mistake the docs warn about.
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(tcp), svc)
            .await;
    });
    let url = format!("ws://{addr}/api/ws/chat/{}", secret());
    let mut ws = connect(&url, &[]).await.unwrap();
    let _ = ws.send(Message::text("{}")).await;
    match within(ws.next()).await {
        None | Some(Err(_)) | Some(Ok(Message::Close(_))) => {}
        Some(Ok(other)) => panic!("the socket should be dead, got {other:?}"),
    }
    server.abort();
}

#[tokio::test]
async fn oversize_message_is_closed_with_1009() {
    let server = chat_server(demo_chat().max_message_size(1024)).await;
    let url = ws_url(&server, &format!("/api/ws/chat/{}", secret()));
    let mut ws = connect(&url, &[]).await.unwrap();

    say(&mut ws, &"a".repeat(4 * 1024)).await;
    let (code, reason) = close_frame(&mut ws).await;
    assert_eq!(code, 1009);
    assert_eq!(reason, "message too big");
}

#[tokio::test]
async fn malformed_json_gets_an_error_frame_and_the_socket_stays_open() {
    let server = chat_server(demo_chat()).await;
    let url = ws_url(&server, &format!("/api/ws/chat/{}", secret()));
    let mut ws = connect(&url, &[]).await.unwrap();

    within(ws.send(Message::text("{not json"))).await.unwrap();
    let frame = next_json(&mut ws).await;
    assert_eq!(frame["type"], "error");
    assert_eq!(frame["code"], "BAD_REQUEST");
    assert!(frame["error"].is_string());

    within(ws.send(Message::text(r#"{"type":"typing"}"#)))
        .await
        .unwrap();
    let frame = next_json(&mut ws).await;
    assert_eq!(frame["code"], "BAD_REQUEST");

    say(&mut ws, "still here").await;
    assert_eq!(reply_text(&reply(&mut ws).await), "still here");
}

#[tokio::test]
async fn binary_frame_is_closed_with_1003() {
    let server = chat_server(demo_chat()).await;
    let url = ws_url(&server, &format!("/api/ws/chat/{}", secret()));
    let mut ws = connect(&url, &[]).await.unwrap();

    within(ws.send(Message::binary(vec![1, 2, 3])))
        .await
        .unwrap();
    let (code, _) = close_frame(&mut ws).await;
    assert_eq!(code, u16::from(CloseCode::Unsupported));
}

#[tokio::test]
async fn idle_client_is_closed_after_the_timeout() {
    let chat = ChatHandler::builder(DemoResponder::new(Duration::ZERO))
        .idle_timeout(Duration::from_millis(300))
        .ping_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    let server = serve(WsService::builder(keys(), chat).build().unwrap()).await;
    let url = ws_url(&server, &format!("/api/ws/chat/{}", secret()));
    let mut ws = connect(&url, &[]).await.unwrap();

    // Say nothing: the server gives up and closes normally.
    let (code, reason) = close_frame(&mut ws).await;
    assert_eq!(code, 1000);
    assert_eq!(reason, "idle timeout");
}

#[tokio::test]
async fn server_pings_and_a_client_that_answers_stays_open() {
    let chat = ChatHandler::builder(DemoResponder::new(Duration::ZERO))
        .ping_interval(Duration::from_millis(50))
        .idle_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let server = serve(WsService::builder(keys(), chat).build().unwrap()).await;
    let url = ws_url(&server, &format!("/api/ws/chat/{}", secret()));
    let mut ws = connect(&url, &[]).await.unwrap();

    // Reading answers each ping with a pong, which counts as traffic: well past the idle
    // timeout, the socket is still open.
    let mut pings = 0;
    while pings < 40 {
        match within(ws.next()).await {
            Some(Ok(Message::Ping(_))) => pings += 1,
            other => panic!("expected pings, got {other:?}"),
        }
    }
    say(&mut ws, "alive").await;
    assert_eq!(reply_text(&reply(&mut ws).await), "alive");
}

/// A responder that never ends and counts the frames it produced.
struct Firehose {
    produced: Arc<AtomicUsize>,
}

impl Responder for Firehose {
    fn respond(&self, _ctx: ReplyContext, _message: String) -> BoxStream<'static, ChatFrame> {
        let produced = self.produced.clone();
        let chunk = "x".repeat(16 * 1024);
        stream::repeat_with(move || {
            produced.fetch_add(1, Ordering::SeqCst);
            ChatFrame::Delta {
                text: chunk.clone(),
            }
        })
        .boxed()
    }
}

#[tokio::test]
async fn client_that_stops_reading_makes_the_server_stop_producing() {
    let produced = Arc::new(AtomicUsize::new(0));
    let shutdown = Shutdown::new();
    let svc = WsService::chat(
        keys(),
        Firehose {
            produced: produced.clone(),
        },
    )
    .shutdown(shutdown.clone())
    .build()
    .unwrap();
    let server = serve(svc).await;
    let url = ws_url(&server, &format!("/api/ws/chat/{}", secret()));
    let mut ws = connect(&url, &[]).await.unwrap();

    say(&mut ws, "talk forever").await;
    // Never read. The responder is endless, so production only stops if the server waits for
    // the socket: wait until the count holds still.
    let plateau = within(async {
        loop {
            let before = produced.load(Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(300)).await;
            let after = produced.load(Ordering::SeqCst);
            if after > 0 && after == before {
                return after;
            }
        }
    })
    .await;
    // What is in flight is bounded by the socket buffers (a few MB), not by the reply.
    assert!(
        plateau < 2_000,
        "{plateau} frames of 16 KiB were produced for a client that reads nothing"
    );

    // The client goes away: the socket's task ends instead of leaking.
    drop(ws);
    within(shutdown.closed()).await;
    assert_eq!(shutdown.open_sockets(), 0);
}

/// A server with HTTP/2 extended CONNECT enabled, as `App::serve` configures it.
async fn serve_h2(svc: WsService) -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let svc = TowerToHyperService::new(svc.clone());
            tokio::spawn(async move {
                let mut builder =
                    hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                builder.http2().enable_connect_protocol();
                let _ = builder
                    .serve_connection_with_upgrades(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    (addr, task)
}

#[tokio::test]
async fn http2_websocket_round_trip() {
    let (addr, server) = serve_h2(demo_chat().build().unwrap()).await;
    let tcp = within(TcpStream::connect(addr)).await.unwrap();
    let (mut sender, conn) = within(
        hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .handshake::<_, Empty<Bytes>>(TokioIo::new(tcp)),
    )
    .await
    .unwrap();
    let conn = tokio::spawn(conn);

    let connect = || {
        Request::builder()
            .method(Method::CONNECT)
            .version(Version::HTTP_2)
            .uri(format!("http://{addr}/api/ws/chat/{}", secret()))
            .header("sec-websocket-version", "13")
            .header("sec-websocket-protocol", "chatkit")
            .header("origin", APP_ORIGIN)
            .extension(hyper::ext::Protocol::from_static("websocket"))
            .body(Empty::<Bytes>::new())
            .unwrap()
    };
    // The client may send an extended CONNECT only once the server's SETTINGS arrived.
    let mut res = within(async {
        loop {
            within(sender.ready()).await.unwrap();
            match sender.send_request(connect()).await {
                Ok(res) => return res,
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    })
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["sec-websocket-protocol"], "chatkit");
    let upgraded = within(hyper::upgrade::on(&mut res)).await.unwrap();
    let mut ws = within(WebSocketStream::from_raw_socket(
        TokioIo::new(upgraded),
        Role::Client,
        None,
    ))
    .await;

    say(&mut ws, "over h2").await;
    assert_eq!(
        reply(&mut ws).await,
        [
            json!({"type": "delta", "text": "over "}),
            json!({"type": "delta", "text": "h2"}),
            json!({"type": "done"}),
        ]
    );

    // A forged secret is refused before the upgrade on HTTP/2 too.
    let mut forged = connect();
    *forged.uri_mut() = format!("http://{addr}/api/ws/chat/ck1.forged.token")
        .parse()
        .unwrap();
    let res = within(sender.send_request(forged)).await.unwrap();
    assert_eq!(res.status(), 401);

    drop(ws);
    conn.abort();
    server.abort();
}

#[tokio::test]
async fn graceful_shutdown_closes_every_socket_with_1001() {
    let shutdown = Shutdown::new();
    let server = chat_server(demo_chat().shutdown(shutdown.clone())).await;
    let url = ws_url(&server, &format!("/api/ws/chat/{}", secret()));
    let mut first = connect(&url, &[]).await.unwrap();
    let mut second = connect(&url, &[]).await.unwrap();
    say(&mut first, "before").await;
    assert_eq!(reply_text(&reply(&mut first).await), "before");
    assert_eq!(shutdown.open_sockets(), 2);

    shutdown.trigger();
    for ws in [&mut first, &mut second] {
        let (code, reason) = close_frame(ws).await;
        assert_eq!(code, 1001);
        assert_eq!(reason, "server shutting down");
        // Reading on completes the close handshake.
        while let Some(Ok(_)) = within(ws.next()).await {}
    }
    within(shutdown.closed()).await;

    // No new sockets once shutdown began.
    let (status, _) = refused(&url, &[]).await;
    assert_eq!(status, 503);
}

#[tokio::test]
async fn a_thousand_concurrent_sockets_are_all_answered() {
    let server = chat_server(demo_chat()).await;
    let url = ws_url(&server, &format!("/api/ws/chat/{}", secret()));
    let clients: Vec<JoinHandle<()>> = (0..1000)
        .map(|i| {
            let url = url.clone();
            tokio::spawn(async move {
                let mut ws = connect(&url, &[]).await.unwrap();
                for round in 0..2 {
                    let text = format!("client {i} round {round}");
                    say(&mut ws, &text).await;
                    assert_eq!(reply_text(&reply(&mut ws).await), text);
                }
                let _ = within(ws.close(None)).await;
            })
        })
        .collect();
    for client in clients {
        within(client).await.unwrap();
    }
}
