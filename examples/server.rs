//! The main job: every endpoint of the kit on one server, working with no configuration.
//!
//! ```text
//! cargo run --example server
//! curl -X POST http://localhost:3000/api/custom/session -H "Authorization: Bearer test-token"
//! ```
//!
//! Settings come from the environment (see `chatkit_tower::config`): `CUSTOM_BACKEND_URL` and
//! `CUSTOM_BACKEND_KEY` make it a real proxy; `HOST` / `PORT` move it; `CHATKIT_STORE_URL` says
//! where ChatKit threads are kept (default `sqlite://data/chatkit.db` under the working folder;
//! `postgres://…` to share them between instances; `memory:`). `RUST_LOG` sets the log level
//! (default `info`).

use std::process::ExitCode;

use chatkit_tower::{App, Config, Kit};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();

    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("configuration error: {err}");
            return ExitCode::from(2);
        }
    };
    // Opens (and migrates) the ChatKit store: SQLite in data/chatkit.db unless configured.
    let app = match Kit::open(&config).await {
        Ok(kit) => App::from_kit(&kit, &config.models),
        Err(err) => {
            eprintln!("configuration error: {err}");
            return ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind((config.host, config.port)).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("cannot listen on {}:{}: {err}", config.host, config.port);
            return ExitCode::from(1);
        }
    };
    tracing::info!("listening on http://{}:{}", config.host, config.port);

    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
    };
    match app.serve(listener, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("server error: {err}");
            ExitCode::from(1)
        }
    }
}
