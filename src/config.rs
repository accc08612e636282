//! [`Config`]: the example server's settings, read from the environment.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `HOST` | address to listen on | `127.0.0.1` |
//! | `PORT` | port to listen on | `3000` |
//! | `CUSTOM_BACKEND_URL` | the custom backend's base URL; set it to proxy sessions there | unset: the embedded issuer answers |
//! | `CUSTOM_BACKEND_KEY` | bearer key for the custom backend (and for the embedded `POST /api/sessions`) | required with `CUSTOM_BACKEND_URL`; else the demo key `dev-backend-key` |
//! | `OPENAI_API_KEY` + `CHATKIT_WORKFLOW_ID` | OpenAI's hosted ChatKit sessions: the fallback behind the custom backend, or the session upstream when no backend is set | unset |
//! | `CHATKIT_API_BASE` | OpenAI's API origin, without `/v1` | `https://api.openai.com` |
//! | `CHATKIT_WORKFLOW_VERSION` | pin a workflow version (`latest` is refused) | latest deployed |
//! | `CHATKIT_ALLOWED_ORIGINS` | comma list of browser origins allowed by CORS (the server's own origin is always allowed) | none besides the server's own |
//! | `CHATKIT_SESSION_SECRET` | comma list of HMAC keys (≥ 32 bytes each) sealing client secrets; the first signs | a random key per start (with a warning) |
//! | `CHATKIT_SESSION_TTL` | client secret lifetime, seconds | `3600` |
//! | `CHATKIT_MODELS` | comma list of models a client may ask for | any |
//! | `CHATKIT_DEMO_PACE_MS` | pause between words of the demo responder (0: back to back) | `40` |
//! | `CHATKIT_USER_TOKENS` | `token=user_id,...` accepted by the demo authenticator | `test-token=demo-user` |
//! | `CHATKIT_STORE_URL` | where ChatKit threads are kept: `sqlite://PATH`, `postgres://…` or `memory:` ([`StoreUrl`]) | [`Kit::open`](crate::Kit::open) (the example server): `sqlite://data/chatkit.db`; [`Kit::from_config`](crate::Kit::from_config): `memory:` |
//!
//! An empty variable counts as unset. A bad value is an error naming the variable:
//!
//! ```
//! use chatkit_tower::Config;
//!
//! let err = Config::from_lookup(|name| (name == "PORT").then(|| "eighty".to_owned())).unwrap_err();
//! assert_eq!(err.variable_name(), Some("PORT"));
//!
//! let config = Config::from_lookup(|_| None).unwrap();
//! assert_eq!(config.port, 3000);
//! ```

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use crate::auth::StaticTokens;
use crate::chatkit::StoreUrl;
use crate::cors::AllowedOrigins;
use crate::error::ConfigError;
use crate::session::DEFAULT_TTL;
use crate::token::SessionKeys;

/// The demo backend key used for the embedded `POST /api/sessions` when `CUSTOM_BACKEND_KEY`
/// is unset.
pub const DEMO_BACKEND_KEY: &str = "dev-backend-key";
/// The demo user tokens used when `CHATKIT_USER_TOKENS` is unset.
pub const DEMO_USER_TOKENS: &str = "test-token=demo-user";

/// OpenAI hosted sessions settings (`OPENAI_API_KEY`, `CHATKIT_WORKFLOW_ID`,
/// `CHATKIT_WORKFLOW_VERSION`, `CHATKIT_API_BASE`). `Debug` hides the key.
#[derive(Clone)]
#[non_exhaustive]
pub struct HostedConfig {
    /// The API key.
    pub api_key: String,
    /// The Agent Builder workflow.
    pub workflow_id: String,
    /// A pinned workflow version.
    pub workflow_version: Option<String>,
    /// The API origin without `/v1`.
    pub api_base: String,
}

impl fmt::Debug for HostedConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostedConfig")
            .field("workflow_id", &self.workflow_id)
            .field("workflow_version", &self.workflow_version)
            .field("api_base", &self.api_base)
            .finish_non_exhaustive()
    }
}

/// The example server's settings; see the [module docs](self) for the variables.
#[derive(Clone)]
#[non_exhaustive]
pub struct Config {
    /// Address to listen on.
    pub host: IpAddr,
    /// Port to listen on.
    pub port: u16,
    /// The custom backend: base URL and bearer key. `None` means the embedded issuer.
    pub custom_backend: Option<(String, String)>,
    /// OpenAI's hosted sessions, when `OPENAI_API_KEY` and `CHATKIT_WORKFLOW_ID` are set.
    pub hosted: Option<HostedConfig>,
    /// Bearer key guarding the embedded `POST /api/sessions`.
    pub backend_key: String,
    /// Extra allowed browser origins (the server's own is added by the app).
    pub allowed_origins: Option<AllowedOrigins>,
    /// Keys sealing client secrets; `None` means a random key per start.
    pub session_keys: Option<SessionKeys>,
    /// Client secret lifetime.
    pub session_ttl: Duration,
    /// Models a client may ask for (empty: any).
    pub models: Vec<String>,
    /// Pause between words of the demo responder.
    pub demo_pace: Duration,
    /// Tokens the demo authenticator accepts.
    pub user_tokens: StaticTokens,
    /// Whether `user_tokens` are the built-in demo ones.
    pub demo_users: bool,
    /// Where ChatKit threads are kept (`CHATKIT_STORE_URL`); `None` when unset:
    /// [`Kit::open`](crate::Kit::open) then uses [`StoreUrl::DEFAULT`] (SQLite in
    /// `data/chatkit.db`), [`Kit::from_config`](crate::Kit::from_config) keeps them in memory.
    pub store: Option<StoreUrl>,
    /// The longest a ChatKit store call may take, waiting for a connection included
    /// (`CHATKIT_STORE_TIMEOUT_MS`, default 5 s); past it the request answers
    /// `503 STORE_UNAVAILABLE`.
    pub store_timeout: Duration,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("host", &self.host)
            .field("port", &self.port)
            .field(
                "custom_backend_url",
                &self.custom_backend.as_ref().map(|(url, _)| url),
            )
            .field("hosted", &self.hosted)
            .field("allowed_origins", &self.allowed_origins)
            .field("session_keys", &self.session_keys)
            .field("session_ttl", &self.session_ttl)
            .field("models", &self.models)
            .field("user_tokens", &self.user_tokens)
            .field("store", &self.store)
            .field("store_timeout", &self.store_timeout)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Read the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Read settings through `lookup` (a map in tests, the environment in [`from_env`](Self::from_env)).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };

        let host = match get("HOST") {
            None => IpAddr::from([127, 0, 0, 1]),
            Some(v) if v == "localhost" => IpAddr::from([127, 0, 0, 1]),
            Some(v) => v.parse().map_err(|_| {
                ConfigError::variable("HOST", format!("{v:?} is not an IP address"))
            })?,
        };
        let port = match get("PORT") {
            None => 3000,
            Some(v) => v.parse().map_err(|_| {
                ConfigError::variable("PORT", format!("{v:?} is not a port number"))
            })?,
        };
        let url = get("CUSTOM_BACKEND_URL");
        let key = get("CUSTOM_BACKEND_KEY");
        let custom_backend = match (url, &key) {
            (Some(url), Some(key)) => {
                crate::session::CustomBackend::builder(url.clone(), key.clone()).check()?;
                Some((url, key.clone()))
            }
            (Some(_), None) => {
                return Err(ConfigError::variable(
                    "CUSTOM_BACKEND_KEY",
                    "is required when CUSTOM_BACKEND_URL is set",
                ))
            }
            (None, _) => None,
        };
        let backend_key = key.unwrap_or_else(|| DEMO_BACKEND_KEY.to_owned());
        let hosted = match (get("OPENAI_API_KEY"), get("CHATKIT_WORKFLOW_ID")) {
            (Some(api_key), Some(workflow_id)) => {
                let hosted = HostedConfig {
                    api_key,
                    workflow_id,
                    workflow_version: get("CHATKIT_WORKFLOW_VERSION"),
                    api_base: get("CHATKIT_API_BASE")
                        .unwrap_or_else(|| crate::session::DEFAULT_API_BASE.to_owned()),
                };
                hosted.builder().check()?;
                Some(hosted)
            }
            (Some(_), None) => {
                return Err(ConfigError::variable(
                    "CHATKIT_WORKFLOW_ID",
                    "is required when OPENAI_API_KEY is set",
                ))
            }
            (None, Some(_)) => {
                return Err(ConfigError::variable(
                    "OPENAI_API_KEY",
                    "is required when CHATKIT_WORKFLOW_ID is set",
                ))
            }
            (None, None) => None,
        };
        let allowed_origins = get("CHATKIT_ALLOWED_ORIGINS")
            .map(|v| AllowedOrigins::parse(&v))
            .transpose()
            .map_err(|e| ConfigError::variable("CHATKIT_ALLOWED_ORIGINS", e.to_string()))?;
        let session_keys = get("CHATKIT_SESSION_SECRET")
            .map(|v| SessionKeys::from_list(&v))
            .transpose()
            .map_err(|e| ConfigError::variable("CHATKIT_SESSION_SECRET", e.to_string()))?;
        let session_ttl = match get("CHATKIT_SESSION_TTL") {
            None => DEFAULT_TTL,
            Some(v) => match v.parse::<u64>() {
                Ok(secs) if (1..=30 * 24 * 3600).contains(&secs) => Duration::from_secs(secs),
                _ => {
                    return Err(ConfigError::variable(
                        "CHATKIT_SESSION_TTL",
                        format!("{v:?} is not a number of seconds between 1 and 2592000"),
                    ))
                }
            },
        };
        let models: Vec<String> = get("CHATKIT_MODELS")
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|m| !m.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        let demo_pace = match get("CHATKIT_DEMO_PACE_MS") {
            None => crate::backend::DemoResponder::DEFAULT_PACE,
            Some(v) => match v.parse::<u64>() {
                Ok(ms) if ms <= 60_000 => Duration::from_millis(ms),
                _ => {
                    return Err(ConfigError::variable(
                        "CHATKIT_DEMO_PACE_MS",
                        format!("{v:?} is not a number of milliseconds between 0 and 60000"),
                    ))
                }
            },
        };
        let (user_tokens, demo_users) = match get("CHATKIT_USER_TOKENS") {
            Some(v) => (
                StaticTokens::parse(&v)
                    .map_err(|e| ConfigError::variable("CHATKIT_USER_TOKENS", e.to_string()))?,
                false,
            ),
            None => (StaticTokens::parse(DEMO_USER_TOKENS)?, true),
        };
        let store = get("CHATKIT_STORE_URL")
            .map(|v| v.parse::<StoreUrl>())
            .transpose()
            .map_err(|e| ConfigError::variable("CHATKIT_STORE_URL", e.to_string()))?;
        let store_timeout = match get("CHATKIT_STORE_TIMEOUT_MS") {
            None => StoreUrl::DEFAULT_TIMEOUT,
            Some(v) => match v.parse::<u64>() {
                Ok(ms) if (1..=600_000).contains(&ms) => Duration::from_millis(ms),
                _ => {
                    return Err(ConfigError::variable(
                        "CHATKIT_STORE_TIMEOUT_MS",
                        format!("{v:?} is not a number of milliseconds between 1 and 600000"),
                    ))
                }
            },
        };
        Ok(Self {
            host,
            port,
            custom_backend,
            hosted,
            backend_key,
            allowed_origins,
            session_keys,
            session_ttl,
            models,
            demo_pace,
            user_tokens,
            demo_users,
            store,
            store_timeout,
        })
    }
}

impl HostedConfig {
    /// A [`HostedSessions`](crate::session::HostedSessions) builder with these settings.
    pub fn builder(&self) -> crate::session::HostedSessionsBuilder {
        let builder = crate::session::HostedSessions::builder(&self.api_key, &self.workflow_id)
            .base_url(&self.api_base);
        match &self.workflow_version {
            Some(version) => builder.workflow_version(version),
            None => builder,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(move |k| map.get(k).cloned())
    }

    #[test]
    fn defaults_need_no_environment() {
        let c = config(&[]).unwrap();
        assert_eq!((c.host.to_string(), c.port), ("127.0.0.1".into(), 3000));
        assert!(c.custom_backend.is_none() && c.demo_users);
        assert_eq!(c.session_ttl, DEFAULT_TTL);
    }

    #[test]
    fn each_bad_value_names_its_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("PORT", "99999")], "PORT"),
            (&[("HOST", "my host")], "HOST"),
            (&[("CUSTOM_BACKEND_URL", "http://b")], "CUSTOM_BACKEND_KEY"),
            (
                &[("CUSTOM_BACKEND_URL", "nope"), ("CUSTOM_BACKEND_KEY", "k")],
                "CUSTOM_BACKEND_URL",
            ),
            (
                &[("CHATKIT_SESSION_SECRET", "short")],
                "CHATKIT_SESSION_SECRET",
            ),
            (&[("CHATKIT_SESSION_TTL", "0")], "CHATKIT_SESSION_TTL"),
            (
                &[("CHATKIT_ALLOWED_ORIGINS", "https://a.example/x")],
                "CHATKIT_ALLOWED_ORIGINS",
            ),
            (&[("CHATKIT_USER_TOKENS", "tok")], "CHATKIT_USER_TOKENS"),
            (&[("CHATKIT_DEMO_PACE_MS", "-1")], "CHATKIT_DEMO_PACE_MS"),
            (
                &[("CHATKIT_STORE_TIMEOUT_MS", "0")],
                "CHATKIT_STORE_TIMEOUT_MS",
            ),
            (
                &[("CHATKIT_STORE_TIMEOUT_MS", "5s")],
                "CHATKIT_STORE_TIMEOUT_MS",
            ),
            (
                &[("CHATKIT_STORE_URL", "mysql://db/x")],
                "CHATKIT_STORE_URL",
            ),
            (&[("CHATKIT_STORE_URL", "sqlite://")], "CHATKIT_STORE_URL"),
            (&[("OPENAI_API_KEY", "sk-1")], "CHATKIT_WORKFLOW_ID"),
            (&[("CHATKIT_WORKFLOW_ID", "wf_1")], "OPENAI_API_KEY"),
            (
                &[
                    ("OPENAI_API_KEY", "sk-1"),
                    ("CHATKIT_WORKFLOW_ID", "wf_1"),
                    ("CHATKIT_WORKFLOW_VERSION", "latest"),
                ],
                "CHATKIT_WORKFLOW_VERSION",
            ),
            (
                &[
                    ("OPENAI_API_KEY", "sk-1"),
                    ("CHATKIT_WORKFLOW_ID", "wf_1"),
                    ("CHATKIT_API_BASE", "api.openai.com"),
                ],
                "CHATKIT_API_BASE",
            ),
        ];
        for (vars, name) in cases {
            let err = config(vars).unwrap_err();
            assert_eq!(err.variable_name(), Some(*name), "{vars:?}: {err}");
        }
    }

    #[test]
    fn store_url_takes_each_form_and_hides_a_password() {
        assert_eq!(config(&[]).unwrap().store, None);
        assert_eq!(config(&[]).unwrap().store_timeout, Duration::from_secs(5));
        assert_eq!(
            config(&[("CHATKIT_STORE_TIMEOUT_MS", "1500")])
                .unwrap()
                .store_timeout,
            Duration::from_millis(1500)
        );
        let store = |v: &str| config(&[("CHATKIT_STORE_URL", v)]).map(|c| c.store);
        assert_eq!(store("memory:").unwrap(), Some(StoreUrl::Memory));
        for (url, feature_on) in [
            ("sqlite://data/chatkit.db", cfg!(feature = "sqlite")),
            (
                "postgres://u:hunter2@db/chatkit",
                cfg!(feature = "postgres"),
            ),
        ] {
            match store(url) {
                Ok(found) => assert!(feature_on && found.is_some()),
                // A build without the store says which feature it needs.
                Err(err) => {
                    assert!(!feature_on, "{err}");
                    assert!(err.to_string().contains("cargo feature"), "{err}");
                }
            }
        }
        let shown = format!(
            "{:?}",
            config(&[("CHATKIT_STORE_URL", "postgres://u:hunter2@db/chatkit")])
        );
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn empty_values_count_as_unset() {
        assert_eq!(config(&[("PORT", "")]).unwrap().port, 3000);
    }

    #[test]
    fn debug_shows_no_secret() {
        let c = config(&[
            ("CUSTOM_BACKEND_URL", "http://b.example"),
            ("CUSTOM_BACKEND_KEY", "backend-secret-key"),
            (
                "CHATKIT_SESSION_SECRET",
                "hmac-secret-hmac-secret-hmac-secret-xx",
            ),
            ("CHATKIT_USER_TOKENS", "user-secret-token=alice"),
            ("OPENAI_API_KEY", "sk-openai-secret"),
            ("CHATKIT_WORKFLOW_ID", "wf_1"),
        ])
        .unwrap();
        let shown = format!("{c:?}");
        for secret in [
            "backend-secret-key",
            "hmac-secret",
            "user-secret-token",
            "sk-openai",
        ] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }
}
