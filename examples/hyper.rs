//! The kit on bare hyper 1 + hyper-util, with no framework: a small router over the kit's
//! services, served with upgrades enabled (HTTP/1.1 and HTTP/2, WebSockets on both).
//!
//! ```text
//! cargo run --example hyper     # http://127.0.0.1:3003
//! ```

use std::convert::Infallible;

use chatkit_tower::{Body, Config, Error, Kit};
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tower::util::BoxCloneSyncService;
use tower::{Layer, ServiceExt};

type Endpoint = BoxCloneSyncService<Request<Incoming>, Response<Body>, Infallible>;

/// Route by path to the kit's services, with CORS around all of them.
pub fn service(
    kit: &Kit,
) -> impl tower::Service<
    Request<Incoming>,
    Response = Response<Body>,
    Error = Infallible,
    Future = impl Send,
> + Clone
       + Send
       + 'static {
    let session: Endpoint = BoxCloneSyncService::new(kit.session());
    let stream: Endpoint = BoxCloneSyncService::new(kit.stream());
    let ws: Endpoint = BoxCloneSyncService::new(kit.ws());
    let router = tower::service_fn(move |req: Request<Incoming>| {
        let endpoint = match req.uri().path() {
            "/api/custom/session" => Some(session.clone()),
            "/api/custom/stream" => Some(stream.clone()),
            p if p.starts_with("/api/ws/chat/") => Some(ws.clone()),
            _ => None,
        };
        async move {
            match endpoint {
                Some(endpoint) => endpoint.oneshot(req).await,
                None => Ok(
                    Error::new(chatkit_tower::ErrorCode::NotFound, "no such path").into_response(),
                ),
            }
        }
    });
    kit.cors().layer(router)
}

#[allow(dead_code)] // the tests include this file for `service` only
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = Config::from_env()?;
    if std::env::var_os("PORT").is_none() {
        config.port = 3003;
    }
    let kit = Kit::from_config(&config)?;
    let svc = service(&kit);
    let listener = tokio::net::TcpListener::bind((config.host, config.port)).await?;
    println!("bare hyper on http://{}", listener.local_addr()?);

    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http2().enable_connect_protocol(); // WebSockets over HTTP/2 (RFC 8441)
    loop {
        let (tcp, _) = listener.accept().await?;
        let svc = TowerToHyperService::new(svc.clone());
        let builder = builder.clone();
        tokio::spawn(async move {
            // `_with_upgrades`: without it, WebSocket handshakes get a 101 and a dead socket.
            let _ = builder
                .serve_connection_with_upgrades(TokioIo::new(tcp), svc)
                .await;
        });
    }
}
