//! A warp 0.4 app composed with the kit at the hyper level.
//!
//! ```text
//! cargo run --example warp      # http://127.0.0.1:3002
//! ```
//!
//! `warp::serve` takes only filters, so the two are joined one level down: a small service
//! sends the kit's paths to the kit ([`chatkit_tower::App`]: its endpoints, routed, behind CORS)
//! and everything else to `warp::service(routes)`, and hyper-util serves that with upgrades
//! enabled, so the WebSocket endpoint works too.

use std::convert::Infallible;

use chatkit_tower::{App, Body, Config, Kit};
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tower::ServiceExt;
use warp::Filter;

/// The warp routes the app already had.
fn routes() -> impl Filter<Extract = (impl warp::Reply,), Error = warp::Rejection> + Clone {
    let hello = warp::path!("hello" / String).map(|name: String| format!("Hello, {name}!"));
    let root = warp::path::end().map(|| "my existing warp app");
    hello.or(root)
}

/// Kit paths to the kit, the rest to warp.
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
    let chat = App::from_kit(kit, &[]);
    let web = warp::service(routes());
    tower::service_fn(move |req: Request<Incoming>| {
        let is_kit = ["/api/custom/", "/api/ws/", "/api/sessions"]
            .iter()
            .any(|prefix| req.uri().path().starts_with(prefix));
        let (chat, web) = (chat.clone(), web.clone());
        async move {
            if is_kit {
                chat.oneshot(req).await
            } else {
                let res = web.oneshot(req).await?;
                Ok(res.map(Body::new))
            }
        }
    })
}

#[allow(dead_code)] // the tests include this file for `service` only
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let mut config = Config::from_env()?;
    if std::env::var_os("PORT").is_none() {
        config.port = 3002;
    }
    let kit = Kit::from_config(&config)?;
    let svc = service(&kit);
    let listener = tokio::net::TcpListener::bind((config.host, config.port)).await?;
    tracing::info!("warp app on http://{}", listener.local_addr()?);
    loop {
        let (tcp, _) = listener.accept().await?;
        let svc = TowerToHyperService::new(svc.clone());
        tokio::spawn(async move {
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection_with_upgrades(TokioIo::new(tcp), svc)
                .await;
        });
    }
}
