//! Shared plumbing for the integration tests: real TCP servers, a real hyper client, and a
//! timeout around every await.
#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use chatkit_tower::{App, Body, Config};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tower::Service;

/// No await in a test may take longer than this.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Await `f`, failing the test if it takes longer than [`TIMEOUT`].
pub async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(TIMEOUT, f)
        .await
        .expect("the operation did not finish in time")
}

/// [`within`] for tests on tokio's paused clock: the deadline is wall-clock time, kept by a
/// thread, because a tokio timer would be what the paused clock jumps to while real I/O is in
/// flight.
pub async fn within_real<F: Future>(f: F) -> F::Output {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        std::thread::sleep(TIMEOUT);
        let _ = tx.send(());
    });
    tokio::select! {
        out = f => out,
        _ = rx => panic!("the operation did not finish in time (wall clock)"),
    }
}

/// A server on 127.0.0.1:0 that stops when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serve any kit service over real TCP (HTTP/1.1 and HTTP/2, upgrades on).
pub async fn serve<S>(svc: S) -> TestServer
where
    S: Service<Request<Incoming>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let svc = TowerToHyperService::new(svc.clone());
            tokio::spawn(async move {
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    TestServer { addr, task }
}

/// The example server's app, built from these variables, served on an ephemeral port.
pub async fn serve_app(vars: &[(&str, &str)]) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // The app knows its own port (its own origin is always allowed), unless the test says.
    let mut map: HashMap<String, String> =
        HashMap::from([("PORT".into(), addr.port().to_string())]);
    map.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let config = Config::from_lookup(move |k| map.get(k).cloned()).unwrap();
    let app = App::from_config(&config).unwrap();
    let task = tokio::spawn(async move {
        let _ = app.serve(listener, std::future::pending()).await;
    });
    TestServer { addr, task }
}

/// A response read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Assert the kit's error body: `{"error", "code", "details"}` with this status and code.
    pub fn assert_error(&self, status: u16, code: &str) -> serde_json::Value {
        let json = self.json();
        assert_eq!(self.status.as_u16(), status, "body: {json}");
        assert_eq!(json["code"], code, "body: {json}");
        assert!(
            json["error"].is_string() && json["details"].is_string(),
            "{json}"
        );
        assert_eq!(self.headers["content-type"], "application/json");
        json
    }
}

/// A real hyper client.
pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

/// Send `req` with a real client and read the answer whole.
pub async fn send(req: Request<Full<Bytes>>) -> Answer {
    within(async {
        let res = client().request(req).await.expect("request failed");
        let (parts, body) = res.into_parts();
        let body = body.collect().await.expect("body failed").to_bytes();
        Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    })
    .await
}

/// `POST url` with these headers and body.
pub async fn post(url: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let mut req = Request::post(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    send(req.body(Full::new(Bytes::from(body.to_owned()))).unwrap()).await
}

/// A ChatKit request (`body`) to `server`'s `/chatkit`, with `who` as its `Authorization`.
pub async fn chatkit_call(server: &TestServer, who: &str, body: serde_json::Value) -> Answer {
    post(
        &server.url("/chatkit"),
        &[("authorization", who), ("content-type", "application/json")],
        &body.to_string(),
    )
    .await
}

/// A client secret from the session endpoint at `addr`, for the user holding `token`.
pub async fn client_secret(addr: SocketAddr, token: &str) -> String {
    let res = post(
        &format!("http://{addr}/api/custom/session"),
        &[("authorization", &format!("Bearer {token}"))],
        "",
    )
    .await;
    assert_eq!(res.status, 200, "session: {}", res.text());
    res.json()["client_secret"].as_str().unwrap().to_owned()
}

/// The whole browser path against a server at `addr` mounting the kit (demo responder, demo
/// user `test-token`): a client secret, a stream that arrives in order, and a WebSocket chat.
pub async fn chat_round_trips(addr: SocketAddr) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let base = format!("http://{addr}");
    let secret = client_secret(addr, "test-token").await;

    let res = post(
        &format!("{base}/api/custom/stream"),
        &[("authorization", &format!("Bearer {secret}"))],
        r#"{"message":"hi there"}"#,
    )
    .await;
    assert_eq!(res.status, 200, "stream: {}", res.text());
    assert_eq!(res.headers["content-type"], "text/event-stream");
    assert_eq!(
        res.text(),
        "data: {\"type\":\"delta\",\"text\":\"hi \"}\n\n\
         data: {\"type\":\"delta\",\"text\":\"there\"}\n\n\
         data: {\"type\":\"done\"}\n\n"
    );

    let (mut socket, _) = within(tokio_tungstenite::connect_async(format!(
        "ws://{addr}/api/ws/chat/{secret}"
    )))
    .await
    .expect("websocket handshake");
    within(socket.send(Message::text(
        r#"{"type":"message","text":"over the socket"}"#,
    )))
    .await
    .unwrap();
    let mut reply = String::new();
    loop {
        let msg = within(socket.next()).await.unwrap().unwrap();
        let frame: serde_json::Value = serde_json::from_str(msg.to_text().unwrap()).unwrap();
        match frame["type"].as_str() {
            Some("delta") => reply.push_str(frame["text"].as_str().unwrap()),
            Some("done") => break,
            _ => panic!("unexpected frame {frame}"),
        }
    }
    assert_eq!(reply, "over the socket");

    // Without a credential the session endpoint refuses, as JSON.
    post(&format!("{base}/api/custom/session"), &[], "")
        .await
        .assert_error(401, "UNAUTHORIZED");
}

/// A kit for framework tests: demo users, demo responder without pauses.
pub fn test_kit() -> chatkit_tower::Kit {
    let config =
        Config::from_lookup(|k| (k == "CHATKIT_DEMO_PACE_MS").then(|| "0".to_owned())).unwrap();
    chatkit_tower::Kit::from_config(&config).unwrap()
}
