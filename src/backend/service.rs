use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tower_service::Service;

use super::SessionIssuer;
use crate::auth::bearer_token;
use crate::body::{json_response, read_limited, Body};
use crate::error::{BoxError, ConfigError, Error};
use crate::future::ResponseFuture;
use crate::session::rfc3339;

const BODY_LIMIT: usize = 16 * 1024;
const MAX_USER_ID: usize = 256;

/// `POST /api/sessions`: the seed's backend session endpoint, answering
/// `{"session_id", "expires_at"}` to callers holding the backend key; see the
/// [module docs](super).
///
/// The user id comes from the JSON body `{user_id, model?, metadata?}` or, as in the seed's
/// FastAPI template, the `user_id` query parameter.
#[derive(Clone)]
pub struct IssuerService {
    inner: Arc<Inner>,
}

struct Inner {
    issuer: SessionIssuer,
    key_digest: [u8; 32],
}

impl fmt::Debug for IssuerService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuerService")
            .field("issuer", &self.inner.issuer)
            .finish_non_exhaustive()
    }
}

impl IssuerService {
    /// Serve `issuer` to callers sending `Authorization: Bearer {backend_key}`.
    pub fn new(issuer: SessionIssuer, backend_key: &str) -> Result<Self, ConfigError> {
        if backend_key.trim().is_empty() {
            return Err(ConfigError::variable(
                "CUSTOM_BACKEND_KEY",
                "the backend key is empty",
            ));
        }
        Ok(Self {
            inner: Arc::new(Inner {
                issuer,
                key_digest: Sha256::digest(backend_key.trim().as_bytes()).into(),
            }),
        })
    }
}

impl<B> Service<Request<B>> for IssuerService
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> ResponseFuture {
        ResponseFuture::new(Inner::handle(self.inner.clone(), req))
    }
}

#[derive(serde::Deserialize, Default)]
struct IssueBody {
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    metadata: Option<Map<String, Value>>,
}

#[derive(serde::Serialize)]
struct Issued {
    session_id: String,
    expires_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<String>,
}

impl Inner {
    async fn handle<B>(self: Arc<Self>, req: Request<B>) -> Result<Response<Body>, Error>
    where
        B: http_body::Body<Data = Bytes>,
        B::Error: Into<BoxError>,
    {
        if req.method() != Method::POST {
            return Err(Error::method_not_allowed(&[Method::POST]));
        }
        let authorized = bearer_token(req.headers()).is_some_and(|token| {
            let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
            bool::from(digest.ct_eq(&self.key_digest))
        });
        if !authorized {
            return Err(Error::unauthorized(
                "send the backend key as Authorization: Bearer <key>",
            ));
        }
        let query_user = req.uri().query().and_then(|q| {
            form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "user_id")
                .map(|(_, v)| v.into_owned())
        });
        let (parts, body) = req.into_parts();
        let bytes = read_limited(&parts.headers, body, BODY_LIMIT).await?;
        let body: IssueBody = if bytes.iter().all(u8::is_ascii_whitespace) {
            IssueBody::default()
        } else {
            serde_json::from_slice(&bytes).map_err(|e| {
                Error::bad_request(format!("the body is not a valid session request: {e}"))
            })?
        };
        let user_id = body
            .user_id
            .or(query_user)
            .filter(|u| !u.trim().is_empty())
            .ok_or_else(|| {
                Error::bad_request("user_id is required, in the JSON body or the query string")
            })?;
        if user_id.len() > MAX_USER_ID {
            return Err(Error::bad_request("user_id is too long"));
        }
        let issued = self.issuer.issue(&user_id)?;
        Ok(json_response(
            StatusCode::OK,
            &Issued {
                session_id: issued.session_id,
                expires_at: rfc3339(issued.expires_at)?,
                model: body.model,
            },
        ))
    }
}
