//! [`Kit`]: every endpoint service of the kit, built from one [`Config`], ready to mount in your
//! own router — axum, warp or bare hyper. [`App`](crate::App) is the same kit with a router of
//! its own.
//!
//! ```
//! use chatkit_tower::{Config, Kit};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let kit = Kit::from_config(&Config::from_lookup(|_| None).unwrap()).unwrap();
//! let session = kit.session(); // POST /api/custom/session, authenticated
//! let stream = kit.stream();   // POST /api/custom/stream
//! let ws = kit.ws();           // GET  /api/ws/chat/{secret}
//! let chatkit = kit.chatkit(); // POST /chatkit (ChatKit's own protocol), authenticated
//! let cors = kit.cors();       // around all of them, outermost
//! # });
//! ```
//!
//! # Where ChatKit threads are kept
//!
//! [`Kit::open`] opens the store that `CHATKIT_STORE_URL` names — SQLite in `data/chatkit.db`
//! when it is unset, as the example server does — and fails, naming the variable, when it cannot
//! (a bad path, a server out of reach): never a silent fallback to memory.
//! [`Kit::from_config`] is synchronous and opens no database: it keeps threads in memory, and
//! refuses a configured SQLite or PostgreSQL URL rather than ignore it.
//! [`Kit::with_store`] takes any [`Store`] you built yourself.
//!
//! ```no_run
//! use chatkit_tower::{App, Config, Kit};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::from_env()?;
//! let kit = Kit::open(&config).await?; // sqlite://data/chatkit.db unless CHATKIT_STORE_URL says
//! let app = App::from_kit(&kit, &config.models);
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::Arc;

use tower_layer::Layer;

use crate::auth::{Auth, AuthLayer};
use crate::backend::{DemoResponder, IssuerService, SessionIssuer};
use crate::chatkit::{
    AttachmentUploadService, ChatKitService, EchoAssistant, InMemoryAttachmentStore, InMemoryStore,
    Store, StoreUrl,
};
use crate::client::HttpClient;
use crate::config::Config;
use crate::cors::{AllowedOrigins, CorsLayer, CorsPreset};
use crate::error::ConfigError;
use crate::fallback::FallbackLayer;
use crate::retry::{RetryLayer, RetryPolicy};
use crate::session::{CustomBackend, SessionService};
use crate::sse::{StreamBackend, StreamService};
use crate::token::SessionKeys;
use crate::ws::{Shutdown, WsService};

/// The kit's endpoint services, built from a [`Config`]; see the [module docs](self).
///
/// Every service is cheap to clone, always ready, and answers every failure as JSON.
#[derive(Clone)]
pub struct Kit {
    keys: SessionKeys,
    session: SessionService,
    auth: AuthLayer,
    issuer: IssuerService,
    stream: StreamService,
    ws: WsService,
    chatkit: ChatKitService,
    uploads: AttachmentUploadService,
    origins: AllowedOrigins,
    cors: CorsLayer,
}

impl fmt::Debug for Kit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kit")
            .field("session", &self.session)
            .field("origins", &self.origins)
            .finish_non_exhaustive()
    }
}

impl Kit {
    /// Build every service `config` describes. Must be called inside a tokio runtime.
    ///
    /// - sessions: the custom backend behind retry (falling back to OpenAI's hosted sessions
    ///   when configured), OpenAI's hosted sessions alone, or the embedded issuer;
    /// - streams: proxied to the custom backend's `/api/stream`, or the demo responder;
    /// - WebSocket chat: the demo responder;
    /// - ChatKit's protocol (`/chatkit`): the echo assistant over an in-memory store
    ///   (`CHATKIT_STORE_URL` unset or `memory:`; a database URL is refused here: use
    ///   [`open`](Self::open));
    /// - allowed origins: `CHATKIT_ALLOWED_ORIGINS` plus the server's own.
    pub fn from_config(config: &Config) -> Result<Self, ConfigError> {
        match &config.store {
            None | Some(StoreUrl::Memory) => Self::with_store(config, InMemoryStore::new()),
            Some(url) => Err(ConfigError::variable(
                "CHATKIT_STORE_URL",
                format!("{url} is a database: open it with Kit::open(&config).await"),
            )),
        }
    }

    /// [`from_config`](Self::from_config) with the ChatKit store that `CHATKIT_STORE_URL`
    /// names, opened and migrated — [`StoreUrl::DEFAULT`] (SQLite in `data/chatkit.db`, the
    /// folder created) when it is unset. Must be called inside a tokio runtime.
    ///
    /// A store that cannot be opened (an unwritable path, a server out of reach within the
    /// store's timeout, wrong credentials) is a [`ConfigError`] naming `CHATKIT_STORE_URL`.
    pub async fn open(config: &Config) -> Result<Self, ConfigError> {
        let url = match &config.store {
            Some(url) => url.clone(),
            None => StoreUrl::DEFAULT.parse().map_err(|e| {
                ConfigError::variable(
                    "CHATKIT_STORE_URL",
                    format!("is unset, and its default {}: {e}", StoreUrl::DEFAULT),
                )
            })?,
        };
        let store = url
            .open_with_timeout(config.store_timeout)
            .await
            .map_err(|e| {
                ConfigError::variable("CHATKIT_STORE_URL", format!("cannot open {url}: {e}"))
            })?;
        tracing::info!(store = %url, "ChatKit store opened");
        Self::build(config, store)
    }

    /// [`from_config`](Self::from_config) with your own ChatKit store.
    pub fn with_store(config: &Config, store: impl Store) -> Result<Self, ConfigError> {
        Self::build(config, Arc::new(store))
    }

    fn build(config: &Config, store: Arc<dyn Store>) -> Result<Self, ConfigError> {
        let keys = match &config.session_keys {
            Some(keys) => keys.clone(),
            None => {
                tracing::warn!(
                    "CHATKIT_SESSION_SECRET is not set: client secrets are signed with a random key \
                     and will not survive a restart or be accepted by other instances"
                );
                SessionKeys::random()?
            }
        };
        let issuer = SessionIssuer::new(keys.clone()).ttl(config.session_ttl);
        let session = match (&config.custom_backend, &config.hosted) {
            (Some((url, key)), hosted) => {
                // The custom backend behind retry; OpenAI's hosted sessions as the fallback.
                // No client timeout of its own: the backend's timeout bounds the whole exchange.
                let client = RetryLayer::new(RetryPolicy::interactive())
                    .layer(HttpClient::builder().no_response_timeout().build());
                let backend = CustomBackend::builder(url.clone(), key.clone())
                    .build_with_client(client)?;
                match hosted {
                    Some(hosted) => {
                        tracing::info!(backend = %url, "sessions are proxied to the custom backend, falling back to OpenAI's hosted sessions");
                        SessionService::builder(
                            FallbackLayer::new(hosted.builder().build()?).layer(backend),
                        )
                    }
                    None => {
                        tracing::info!(backend = %url, "sessions are proxied to the custom backend");
                        SessionService::builder(backend)
                    }
                }
            }
            (None, Some(hosted)) => {
                tracing::info!("sessions are created by OpenAI's hosted ChatKit");
                SessionService::builder(hosted.builder().build()?)
            }
            (None, None) => {
                tracing::info!("sessions are issued by the embedded issuer");
                SessionService::builder(issuer.clone())
            }
        }
        .keys(keys.clone())
        .ttl(config.session_ttl)
        .models(config.models.clone())
        .build()?;
        if config.demo_users {
            tracing::warn!(
                "CHATKIT_USER_TOKENS is not set: the demo token test-token (user demo-user) is accepted"
            );
        }
        let auth = AuthLayer::new(config.user_tokens.clone());
        let issuer = IssuerService::new(issuer, &config.backend_key)?;

        let responder = DemoResponder::new(config.demo_pace);
        let stream = StreamService::builder(keys.clone());
        let stream = match &config.custom_backend {
            Some((url, key)) => {
                stream.proxy(StreamBackend::builder(url.clone(), key.clone()).build()?)
            }
            None => stream.responder(responder.clone()),
        }
        .build()?;

        let own = format!("http://{}:{}", config.host, config.port);
        let mut origins = config
            .allowed_origins
            .clone()
            .unwrap_or(AllowedOrigins::list(Vec::<String>::new())?)
            .with_origin(&own)?;
        if config.host.is_loopback() {
            origins = origins
                .with_origin(&format!("http://localhost:{}", config.port))?
                .with_origin(&format!("http://127.0.0.1:{}", config.port))?;
        }
        let credentials = !origins.is_any();
        let cors = CorsPreset::new(origins.clone())
            .allow_credentials(credentials)
            .build()?;
        let ws = WsService::chat(keys.clone(), responder)
            .origins(origins.clone())
            .build()?;
        // Two-phase attachment uploads go to this server's own `/chatkit/uploads/{id}`.
        let files = InMemoryAttachmentStore::new(format!(
            "http://{}/chatkit/uploads",
            std::net::SocketAddr::new(config.host, config.port)
        ));
        let uploads = AttachmentUploadService::new(files.clone(), store.clone());
        let chatkit = ChatKitService::builder(EchoAssistant::new(config.demo_pace), store)
            .attachment_store(files)
            .build()?;

        Ok(Self {
            keys,
            session,
            auth,
            issuer,
            stream,
            ws,
            chatkit,
            uploads,
            origins,
            cors,
        })
    }

    /// `POST /api/custom/session` behind the configured authentication.
    pub fn session(&self) -> Auth<SessionService> {
        self.auth.layer(self.session.clone())
    }

    /// `POST /api/custom/session` without authentication: put your own [`AuthLayer`] (or any
    /// layer that inserts a [`Principal`](crate::Principal)) in front of it.
    pub fn session_service(&self) -> SessionService {
        self.session.clone()
    }

    /// The authentication layer built from `CHATKIT_USER_TOKENS`.
    pub fn auth(&self) -> AuthLayer {
        self.auth.clone()
    }

    /// `POST /api/sessions`: the embedded backend.
    pub fn issuer(&self) -> IssuerService {
        self.issuer.clone()
    }

    /// `POST /api/custom/stream`.
    pub fn stream(&self) -> StreamService {
        self.stream.clone()
    }

    /// `GET /api/ws/chat/{secret}` (and HTTP/2 `CONNECT`).
    pub fn ws(&self) -> WsService {
        self.ws.clone()
    }

    /// `POST /chatkit`: ChatKit's own custom-backend protocol (the echo assistant), behind the
    /// configured authentication: every thread belongs to the authenticated user.
    pub fn chatkit(&self) -> Auth<ChatKitService> {
        self.auth.layer(self.chatkit.clone())
    }

    /// `POST /chatkit` without authentication: put your own auth layer in front of it.
    pub fn chatkit_service(&self) -> ChatKitService {
        self.chatkit.clone()
    }

    /// `PUT`/`POST /chatkit/uploads/{attachment_id}`: the bytes of a two-phase attachment
    /// upload, behind the configured authentication (the `/chatkit` service's attachment
    /// descriptors point here).
    pub fn chatkit_uploads(&self) -> Auth<AttachmentUploadService> {
        self.auth.layer(self.uploads.clone())
    }

    /// Closes every open WebSocket with `1001` when triggered: call
    /// [`Shutdown::trigger`] when your server stops.
    pub fn ws_shutdown(&self) -> Shutdown {
        self.ws.shutdown()
    }

    /// The CORS layer: put it outermost, around every endpoint.
    pub fn cors(&self) -> CorsLayer {
        self.cors.clone()
    }

    /// The allowed browser origins (CORS and the WebSocket `Origin` check).
    pub fn origins(&self) -> &AllowedOrigins {
        &self.origins
    }

    /// The keys sealing and verifying client secrets.
    pub fn keys(&self) -> &SessionKeys {
        &self.keys
    }
}
