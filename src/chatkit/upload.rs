//! [`AttachmentUploadService`]: step 2 of ChatKit's two-phase upload — the URL an
//! [`InMemoryAttachmentStore`]'s upload descriptors point at.

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use tower_service::Service;

use crate::auth::Principal;
use crate::body::{read_limited, Body};
use crate::error::{BoxError, Error, ErrorCode};
use crate::future::ResponseFuture;
use crate::protocol::to_wire_json;

use super::attachments::InMemoryAttachmentStore;
use super::store::Store;
use super::RequestContext;

/// Default largest attachment [`AttachmentUploadService`] accepts: 10 MiB.
pub const DEFAULT_UPLOAD_LIMIT: usize = 10 * 1024 * 1024;

/// Serves `{upload_base}/{attachment_id}`, where an [`InMemoryAttachmentStore`]'s two-phase
/// upload descriptors send the client after `attachments.create`.
///
/// `PUT` or `POST` the file's bytes as the raw request body, or as the `file` field of a
/// `multipart/form-data` body (as ChatKit's docs describe): the bytes go to
/// [`InMemoryAttachmentStore::put_bytes`], the attachment record loses its upload descriptor
/// and is saved in the [`Store`], and the answer is `200` with the attachment as the SDK
/// serializes it. The attachment id is the last segment of the path, so mount the service
/// at any prefix (the example server uses `/chatkit/uploads/`).
///
/// Failures are the kit's JSON errors: no [`Principal`] in the request extensions (put an
/// [`AuthLayer`](crate::auth::AuthLayer) in front) is `401`; an unknown attachment, or another
/// user's, `404`; a body over the [limit](Self::body_limit) `413`; a form without a `file` field
/// `400`; another `multipart/*` type `415`; another method `405`.
///
/// Always ready; cheap to clone.
///
/// ```
/// use chatkit_tower::chatkit::{
///     AttachmentStore, AttachmentUploadService, InMemoryAttachmentStore, InMemoryStore,
///     RequestContext, Store,
/// };
/// use chatkit_tower::protocol::AttachmentCreateParams;
/// use chatkit_tower::Principal;
/// use tower::ServiceExt;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let files = InMemoryAttachmentStore::new("http://127.0.0.1:3000/chatkit/uploads");
/// let store = InMemoryStore::new();
/// let ctx = RequestContext::new("alice");
/// let params = AttachmentCreateParams { name: "a.txt".into(), size: 2, mime_type: "text/plain".into() };
/// let attachment = files.create_attachment(&params, &ctx).await.unwrap();
/// store.save_attachment(&attachment, &ctx).await.unwrap();
///
/// let uploads = AttachmentUploadService::new(files.clone(), store);
/// let mut req = http::Request::put(format!("/chatkit/uploads/{}", attachment.id()))
///     .body("hi".to_owned())
///     .unwrap();
/// req.extensions_mut().insert(Principal::new("alice")); // what AuthLayer does
/// let res = uploads.oneshot(req).await.unwrap();
/// assert_eq!(res.status(), 200);
/// assert_eq!(files.bytes(attachment.id(), &ctx).unwrap(), "hi");
/// # });
/// ```
#[derive(Clone)]
pub struct AttachmentUploadService {
    inner: Arc<Inner>,
}

struct Inner {
    files: InMemoryAttachmentStore,
    store: Arc<dyn Store>,
    body_limit: usize,
}

impl fmt::Debug for AttachmentUploadService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttachmentUploadService")
            .field("files", &self.inner.files)
            .field("body_limit", &self.inner.body_limit)
            .finish_non_exhaustive()
    }
}

impl AttachmentUploadService {
    /// Uploads into `files`, with the attachment records kept in `store` (the same store the
    /// [`ChatKitService`](super::ChatKitService) saves them in).
    pub fn new(files: InMemoryAttachmentStore, store: impl Store) -> Self {
        Self {
            inner: Arc::new(Inner {
                files,
                store: Arc::new(store),
                body_limit: DEFAULT_UPLOAD_LIMIT,
            }),
        }
    }

    /// Refuse uploads over `bytes` with `413` (default [`DEFAULT_UPLOAD_LIMIT`]).
    #[must_use]
    pub fn body_limit(self, bytes: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                files: self.inner.files.clone(),
                store: self.inner.store.clone(),
                body_limit: bytes,
            }),
        }
    }
}

impl<B> Service<Request<B>> for AttachmentUploadService
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

impl Inner {
    async fn handle<B>(self: Arc<Self>, req: Request<B>) -> Result<Response<Body>, Error>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        if req.method() != Method::PUT && req.method() != Method::POST {
            return Err(Error::method_not_allowed(&[Method::PUT, Method::POST]));
        }
        let Some(principal) = req.extensions().get::<Principal>().cloned() else {
            return Err(Error::unauthorized(
                "no authenticated user: the upload endpoint needs an AuthLayer in front of it",
            ));
        };
        let id = req
            .uri()
            .path()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        if id.is_empty() {
            return Err(Error::new(
                ErrorCode::NotFound,
                "no attachment id in the upload path",
            ));
        }
        let ctx = RequestContext::for_principal(principal);
        // The user's own attachment only: another user's is as unknown as a missing one.
        let mut attachment = self.store.load_attachment(&id, &ctx).await?;
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_owned())
            .unwrap_or_default();
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let form = essence == "multipart/form-data";
        if !form && essence.starts_with("multipart/") {
            return Err(Error::bad_request(format!(
                "{essence} is not supported: send multipart/form-data with a file field, or the \
                 file's bytes as the request body"
            ))
            .with_status(StatusCode::UNSUPPORTED_MEDIA_TYPE));
        }
        let (parts, body) = req.into_parts();
        let mut bytes = read_limited(&parts.headers, body, self.body_limit).await?;
        if form {
            bytes = form_file(&content_type, &bytes)?;
        }
        self.files.put_bytes(&id, bytes, &ctx)?;
        attachment.set_upload_descriptor(None);
        self.store.save_attachment(&attachment, &ctx).await?;
        tracing::debug!(attachment = %id, user = ctx.user_id(), "attachment uploaded");
        let json = to_wire_json(&attachment).map_err(|e| {
            Error::internal("the answer could not be encoded as JSON").with_source(e)
        })?;
        let mut res = Response::new(Body::from(json));
        let headers = res.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        Ok(res)
    }
}

/// The `file` field of a `multipart/form-data` body read whole (RFC 7578).
fn form_file(content_type: &str, body: &Bytes) -> Result<Bytes, Error> {
    let boundary = content_type
        .split(';')
        .skip(1)
        .filter_map(|param| param.split_once('='))
        .find(|(key, _)| key.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, value)| value.trim().trim_matches('"'))
        .filter(|b| !b.is_empty() && b.len() <= 70)
        .ok_or_else(|| Error::bad_request("the multipart/form-data body has no boundary"))?;
    let malformed = || Error::bad_request("the multipart/form-data body is malformed");
    let delimiter = [b"--", boundary.as_bytes()].concat();
    let next_delimiter = [b"\r\n--", boundary.as_bytes()].concat();
    let mut at = find(body, &delimiter, 0).ok_or_else(malformed)? + delimiter.len();
    loop {
        if body[at..].starts_with(b"--") {
            return Err(Error::bad_request(
                "the multipart/form-data body has no file field",
            ));
        }
        // Skip transport padding to the end of the delimiter line.
        at = find(body, b"\r\n", at).ok_or_else(malformed)? + 2;
        // A part without headers starts with the blank line at once.
        let headers_end = if body[at..].starts_with(b"\r\n") {
            at
        } else {
            find(body, b"\r\n\r\n", at).ok_or_else(malformed)? + 2
        };
        let headers = String::from_utf8_lossy(&body[at..headers_end]);
        let start = headers_end + 2;
        let end = find(body, &next_delimiter, start).ok_or_else(malformed)?;
        if is_file_field(&headers) {
            return Ok(body.slice(start..end));
        }
        at = end + next_delimiter.len();
    }
}

/// Whether a part's headers name it the form's `file` field.
fn is_file_field(headers: &str) -> bool {
    headers.split("\r\n").any(|line| {
        let Some((name, value)) = line.split_once(':') else {
            return false;
        };
        name.trim().eq_ignore_ascii_case("content-disposition")
            && value
                .split(';')
                .skip(1)
                .filter_map(|param| param.split_once('='))
                .any(|(key, value)| {
                    key.trim().eq_ignore_ascii_case("name")
                        && value.trim().trim_matches('"') == "file"
                })
    })
}

/// The first index at or after `from` where `needle` starts in `haystack`.
fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|window| window == needle)
        .map(|i| i + from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_field_is_found_among_others() {
        let body = Bytes::from_static(
            b"preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nnot this\r\n\
              --XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\n\
              Content-Type: application/octet-stream\r\n\r\nline 1\r\nline 2\r\n--XyZ--\r\n",
        );
        let file = form_file("multipart/form-data; boundary=\"XyZ\"", &body).unwrap();
        assert_eq!(file, "line 1\r\nline 2");
    }

    #[test]
    fn a_form_without_a_file_or_boundary_is_400() {
        let body = Bytes::from_static(
            b"--b\r\nContent-Disposition: form-data; name=\"filename\"\r\n\r\nx\r\n--b--\r\n",
        );
        let err = form_file("multipart/form-data; boundary=b", &body).unwrap_err();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        let err = form_file("multipart/form-data", &body).unwrap_err();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        let err = form_file(
            "multipart/form-data; boundary=b",
            &Bytes::from_static(b"--b\r\n"),
        )
        .unwrap_err();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    }
}
