//! The auth layer in front of a service, over real TCP: where credentials are found, and what
//! the browser sees when they are missing, wrong, or cannot be checked.

mod common;

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use chatkit_tower::auth::{auth_fn, AuthLayer, Credential, CredentialSource, Principal};
use chatkit_tower::Body;
use common::{post, serve};
use http::{Request, Response};
use tower::{service_fn, Layer};

/// A service that answers with the authenticated user's id.
fn whoami() -> impl tower::Service<
    Request<hyper::body::Incoming>,
    Response = Response<Body>,
    Error = Infallible,
    Future = impl Send,
> + Clone
       + Send
       + 'static {
    service_fn(|req: Request<hyper::body::Incoming>| async move {
        let user = req
            .extensions()
            .get::<Principal>()
            .map(|p| p.id().to_owned());
        Ok::<_, Infallible>(Response::new(Body::from(user.unwrap_or_default())))
    })
}

#[tokio::test]
async fn async_closure_authenticator_resolves_users_from_any_source() {
    let layer = AuthLayer::new(auth_fn(|cred: Credential| async move {
        // A stand-in for a database lookup.
        let user = match (cred.token(), cred.source()) {
            ("db-token", _) => Some(Principal::new("db-user")),
            ("cookie-token", CredentialSource::Cookie) => Some(Principal::new("cookie-user")),
            _ => None,
        };
        Ok::<_, std::io::Error>(user)
    }))
    .cookie("chatkit_token");
    let server = serve(layer.layer(whoami())).await;
    let url = server.url("/");

    let res = post(&url, &[("authorization", "Bearer db-token")], "").await;
    assert_eq!((res.status.as_u16(), res.text()), (200, "db-user".into()));
    let res = post(&url, &[("x-auth-token", "db-token")], "").await;
    assert_eq!(res.text(), "db-user");
    let res = post(
        &url,
        &[("cookie", "theme=dark; chatkit_token=cookie-token")],
        "",
    )
    .await;
    assert_eq!(res.text(), "cookie-user");
    post(&url, &[("authorization", "Bearer nobody")], "")
        .await
        .assert_error(401, "UNAUTHORIZED");
}

#[tokio::test]
async fn failing_authenticator_is_503_not_401() {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let layer = AuthLayer::new(auth_fn(move |_cred: Credential| {
        seen.fetch_add(1, Ordering::SeqCst);
        async move {
            Err::<Option<Principal>, _>(std::io::Error::other("connection to users-db refused"))
        }
    }));
    let server = serve(layer.layer(whoami())).await;
    let res = post(
        &server.url("/"),
        &[("authorization", "Bearer anything")],
        "",
    )
    .await;
    let json = res.assert_error(503, "AUTH_UNAVAILABLE");
    // The internal failure is not described to the browser.
    assert!(!res.text().contains("users-db"), "{json}");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn missing_credential_never_calls_the_authenticator() {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let layer = AuthLayer::new(auth_fn(move |_cred: Credential| {
        seen.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, Infallible>(Some(Principal::new("x"))) }
    }));
    let server = serve(layer.layer(whoami())).await;
    post(&server.url("/"), &[], "")
        .await
        .assert_error(401, "UNAUTHORIZED");
    let long = format!("Bearer {}", "a".repeat(5000));
    post(&server.url("/"), &[("authorization", &long)], "")
        .await
        .assert_error(401, "UNAUTHORIZED");
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}
