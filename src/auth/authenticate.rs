use std::collections::HashMap;
use std::fmt;
use std::future::Future;

use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::{Credential, Principal};
use crate::error::{BoxError, ConfigError};

pub use crate::BoxFuture;

/// Resolves a [`Credential`] to a [`Principal`].
///
/// - `Ok(Some(principal))`: the credential is good;
/// - `Ok(None)`: it is not (answered with `401 UNAUTHORIZED`);
/// - `Err(_)`: the check itself failed (answered with `503 AUTH_UNAVAILABLE`).
///
/// For most uses [`auth_fn`] is shorter than implementing the trait.
///
/// ```
/// use chatkit_tower::auth::{Authenticate, BoxFuture, Credential, Principal};
/// use chatkit_tower::BoxError;
///
/// struct OnlyAlice;
///
/// impl Authenticate for OnlyAlice {
///     fn authenticate<'a>(
///         &'a self,
///         credential: &'a Credential,
///     ) -> BoxFuture<'a, Result<Option<Principal>, BoxError>> {
///         Box::pin(async move {
///             Ok((credential.token() == "alice-token").then(|| Principal::new("alice")))
///         })
///     }
/// }
/// ```
pub trait Authenticate: Send + Sync + 'static {
    /// Check `credential`.
    fn authenticate<'a>(
        &'a self,
        credential: &'a Credential,
    ) -> BoxFuture<'a, Result<Option<Principal>, BoxError>>;
}

impl<A: Authenticate + ?Sized> Authenticate for Arc<A> {
    fn authenticate<'a>(
        &'a self,
        credential: &'a Credential,
    ) -> BoxFuture<'a, Result<Option<Principal>, BoxError>> {
        (**self).authenticate(credential)
    }
}

/// A fixed map from token to user id.
///
/// Tokens are looked up by their SHA-256 digest, so the lookup's timing says nothing about how
/// much of a guessed token was right. `Debug` shows the user ids, never the tokens.
///
/// ```
/// use chatkit_tower::auth::StaticTokens;
/// let tokens = StaticTokens::parse("test-token=demo-user, ops-token=ops").unwrap();
/// assert_eq!(tokens.len(), 2);
/// assert!(StaticTokens::parse("no-equals-sign").is_err());
/// ```
#[derive(Clone, Default)]
pub struct StaticTokens {
    users: Arc<HashMap<[u8; 32], Principal>>,
}

impl StaticTokens {
    /// An empty map (nobody gets in).
    pub fn new() -> Self {
        Self::default()
    }

    /// Add `token` for the user `user_id`.
    #[must_use]
    pub fn with(mut self, token: &str, user_id: &str) -> Self {
        Arc::make_mut(&mut self.users).insert(digest(token), Principal::new(user_id));
        self
    }

    /// Parse `token=user_id,token=user_id,...` (the format of `CHATKIT_USER_TOKENS`).
    pub fn parse(list: &str) -> Result<Self, ConfigError> {
        let mut tokens = Self::new();
        for (i, pair) in list.split(',').map(str::trim).enumerate() {
            if pair.is_empty() {
                continue;
            }
            let Some((token, user)) = pair.split_once('=') else {
                return Err(ConfigError::new(format!(
                    "entry #{} is not of the form token=user_id",
                    i + 1
                )));
            };
            let (token, user) = (token.trim(), user.trim());
            if token.is_empty() || user.is_empty() {
                return Err(ConfigError::new(format!(
                    "entry #{} has an empty token or user id",
                    i + 1
                )));
            }
            tokens = tokens.with(token, user);
        }
        Ok(tokens)
    }

    /// How many tokens are known.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether no token is known.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

impl fmt::Debug for StaticTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticTokens")
            .field(
                "users",
                &self.users.values().map(Principal::id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Authenticate for StaticTokens {
    fn authenticate<'a>(
        &'a self,
        credential: &'a Credential,
    ) -> BoxFuture<'a, Result<Option<Principal>, BoxError>> {
        let found = self.users.get(&digest(credential.token())).cloned();
        Box::pin(std::future::ready(Ok(found)))
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// An [`Authenticate`] made from an async closure; see [`auth_fn`].
#[derive(Clone)]
pub struct AuthFn<F> {
    f: F,
}

impl<F> fmt::Debug for AuthFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthFn").finish_non_exhaustive()
    }
}

/// Authenticate with any async closure: a database or JWT lookup.
///
/// The closure gets the [`Credential`] by value and answers `Ok(Some(principal))`, `Ok(None)` (no
/// such user: 401) or `Err(_)` (the lookup failed: 503).
///
/// ```
/// use chatkit_tower::auth::{auth_fn, AuthLayer, Credential, Principal};
///
/// let layer = AuthLayer::new(auth_fn(|credential: Credential| async move {
///     // e.g. SELECT user_id FROM api_tokens WHERE token_hash = $1
///     let user = (credential.token() == "secret").then(|| Principal::new("user_1"));
///     Ok::<_, std::io::Error>(user)
/// }));
/// ```
pub fn auth_fn<F, Fut, E>(f: F) -> AuthFn<F>
where
    F: Fn(Credential) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Option<Principal>, E>> + Send + 'static,
    E: Into<BoxError>,
{
    AuthFn { f }
}

impl<F, Fut, E> Authenticate for AuthFn<F>
where
    F: Fn(Credential) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Option<Principal>, E>> + Send + 'static,
    E: Into<BoxError>,
{
    fn authenticate<'a>(
        &'a self,
        credential: &'a Credential,
    ) -> BoxFuture<'a, Result<Option<Principal>, BoxError>> {
        let fut = (self.f)(credential.clone());
        Box::pin(async move { fut.await.map_err(Into::into) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::CredentialSource;

    #[tokio::test]
    async fn static_tokens_find_their_user() {
        let tokens = StaticTokens::parse("a-token=alice,b-token=bob").unwrap();
        let cred = Credential::new("b-token", CredentialSource::Bearer);
        let found = tokens.authenticate(&cred).await.unwrap();
        assert_eq!(found, Some(Principal::new("bob")));
        let cred = Credential::new("b-toke", CredentialSource::Bearer);
        assert_eq!(tokens.authenticate(&cred).await.unwrap(), None);
    }

    #[test]
    fn static_tokens_debug_hides_tokens() {
        let tokens = StaticTokens::parse("hunter2=alice").unwrap();
        let shown = format!("{tokens:?}");
        assert!(
            shown.contains("alice") && !shown.contains("hunter2"),
            "{shown}"
        );
    }

    #[test]
    fn bad_token_lists_name_the_entry() {
        let err = StaticTokens::parse("a=b,=c").unwrap_err();
        assert!(err.to_string().contains("#2"), "{err}");
    }
}
