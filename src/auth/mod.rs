//! Authentication: take a credential from the request, resolve it to a [`Principal`], put the
//! principal in the request's extensions — or answer `401` JSON.
//!
//! The credential is looked for, in order, in `Authorization: Bearer <token>`, in
//! `X-Auth-Token: <token>` (the seed's "Custom Authentication"), and in a named cookie when one is
//! configured. What the credential means is up to an [`Authenticate`] implementation:
//!
//! - [`StaticTokens`]: a fixed token → user map (the example server's `CHATKIT_USER_TOKENS`);
//! - [`auth_fn`]: any async closure (a database lookup, a JWT check);
//! - your own type implementing [`Authenticate`].
//!
//! An authenticator that answers "no such user" gives `401 UNAUTHORIZED`; one that itself fails
//! (the database is down) gives `503 AUTH_UNAVAILABLE`, so a person is not told their valid
//! credential is wrong.
//!
//! ```
//! use chatkit_tower::auth::{AuthLayer, Principal, StaticTokens};
//! use http::{Request, Response};
//! use std::convert::Infallible;
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let tokens = StaticTokens::parse("test-token=demo-user").unwrap();
//! let svc = ServiceBuilder::new()
//!     .layer(AuthLayer::new(tokens))
//!     .service(service_fn(|req: Request<String>| async move {
//!         let user = req.extensions().get::<Principal>().unwrap().id().to_owned();
//!         Ok::<_, Infallible>(Response::new(user))
//!     }));
//!
//! let req = Request::post("/").header("x-auth-token", "test-token").body(String::new()).unwrap();
//! let res = svc.clone().oneshot(req).await.unwrap();
//! assert_eq!(res.status(), 200);
//!
//! let res = svc.oneshot(Request::post("/").body(String::new()).unwrap()).await.unwrap();
//! assert_eq!(res.status(), 401);
//! # });
//! ```

mod authenticate;
mod credential;
mod layer;
mod service;

pub use authenticate::{auth_fn, AuthFn, Authenticate, BoxFuture, StaticTokens};
pub use credential::{bearer_token, Credential, CredentialSource};
pub use layer::AuthLayer;
pub use service::{Auth, ResponseFuture};

/// The authenticated user, put in request extensions by [`AuthLayer`].
///
/// Services downstream read it with `req.extensions().get::<Principal>()`; the session service
/// sends its id upstream as the user id, never one from the request body.
///
/// ```
/// use chatkit_tower::auth::Principal;
/// let user = Principal::new("user_123");
/// assert_eq!(user.id(), "user_123");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal {
    id: String,
}

impl Principal {
    /// A user with this id.
    pub fn new(id: impl Into<String>) -> Self {
        Self { id: id.into() }
    }

    /// The user's id, as sent upstream.
    pub fn id(&self) -> &str {
        &self.id
    }
}
