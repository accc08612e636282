//! An existing axum 0.8 app that adds ChatKit's endpoints next to its own routes.
//!
//! ```text
//! cargo run --example axum      # http://127.0.0.1:3001
//! ```
//!
//! The kit's services mount with `route_service` (they are tower services with
//! `Error = Infallible`); authentication goes in a `route_layer`, so it runs only for the routes
//! it guards and unknown paths stay `404`; CORS goes last, around everything.

use axum::routing::get;
use axum::{Json, Router};
use chatkit_tower::{Config, Kit};

/// Your app's routes plus the kit's.
pub fn app(kit: &Kit) -> Router {
    // The routes the app already had.
    let existing = Router::new()
        .route("/", get(|| async { "my existing app" }))
        .route(
            "/api/status",
            get(|| async { Json(serde_json::json!({ "ok": true })) }),
        );

    // The kit: ten lines.
    let session = Router::new()
        .route_service("/api/custom/session", kit.session_service())
        .route_layer(kit.auth()); // or AuthLayer::new(your_authenticator)
    existing
        .merge(session)
        .route_service("/api/custom/stream", kit.stream())
        .route_service("/api/ws/chat/{secret}", kit.ws()) // any method: HTTP/2 uses CONNECT
        .layer(kit.cors())
}

#[allow(dead_code)] // the tests include this file for `app` only
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let mut config = Config::from_env()?;
    if std::env::var_os("PORT").is_none() {
        config.port = 3001;
    }
    let kit = Kit::from_config(&config)?;
    let listener = tokio::net::TcpListener::bind((config.host, config.port)).await?;
    tracing::info!("axum app on http://{}", listener.local_addr()?);
    let shutdown = kit.ws_shutdown();
    axum::serve(listener, app(&kit))
        .with_graceful_shutdown(async move {
            let _ = tokio::signal::ctrl_c().await;
            shutdown.trigger(); // close open WebSockets with 1001
        })
        .await?;
    Ok(())
}
