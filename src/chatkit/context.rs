//! [`RequestContext`]: who is asking, in which language, from which ChatKit frame.

use std::fmt;
use std::sync::Arc;

use http::{Extensions, HeaderMap};

use crate::auth::Principal;
use crate::protocol::Metadata;

/// What the service knows about a request, handed to the [`Store`](super::Store) (which scopes
/// every call by [`user_id`](Self::user_id)) and to the [`Assistant`](super::Assistant).
///
/// Built from the [`Principal`] that [`AuthLayer`](crate::auth::AuthLayer) put in the request's
/// extensions, the `Accept-Language` header (its first language), the
/// `chatkit-frame-instance-id` header, and the request's `metadata`. The request's headers and
/// extensions are kept too, for integrations that read their own (a tenant an earlier layer
/// inserted, an `article-id` header). Cheap to clone.
///
/// ```
/// use chatkit_tower::chatkit::RequestContext;
/// let ctx = RequestContext::new("alice").with_locale("fr-FR");
/// assert_eq!(ctx.user_id(), "alice");
/// assert_eq!(ctx.locale(), Some("fr-FR"));
/// ```
#[derive(Clone)]
pub struct RequestContext {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    principal: Principal,
    locale: Option<String>,
    frame_instance_id: Option<String>,
    metadata: Metadata,
    headers: HeaderMap,
    extensions: Extensions,
}

/// The header ChatKit's front end sends to tell its frames apart.
pub const FRAME_INSTANCE_ID: &str = "chatkit-frame-instance-id";

impl RequestContext {
    /// A context for `user_id` alone (for stores and tests).
    pub fn new(user_id: impl Into<String>) -> Self {
        Self::for_principal(Principal::new(user_id))
    }

    /// A context for `principal` alone.
    pub fn for_principal(principal: Principal) -> Self {
        Self {
            inner: Arc::new(Inner {
                principal,
                locale: None,
                frame_instance_id: None,
                metadata: Metadata::new(),
                headers: HeaderMap::new(),
                extensions: Extensions::new(),
            }),
        }
    }

    /// The context of a request with these parts.
    pub(crate) fn from_request(
        principal: Principal,
        parts: http::request::Parts,
        metadata: Metadata,
    ) -> Self {
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let locale = header("accept-language").and_then(|v| first_language(&v));
        let frame_instance_id = header(FRAME_INSTANCE_ID);
        Self {
            inner: Arc::new(Inner {
                principal,
                locale,
                frame_instance_id,
                metadata,
                headers: parts.headers,
                extensions: parts.extensions,
            }),
        }
    }

    /// The same context with this locale.
    #[must_use]
    pub fn with_locale(mut self, locale: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.inner).locale = Some(locale.into());
        self
    }

    /// The same context with this frame instance id.
    #[must_use]
    pub fn with_frame_instance_id(mut self, id: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.inner).frame_instance_id = Some(id.into());
        self
    }

    /// The same context with this request metadata.
    #[must_use]
    pub fn with_metadata(mut self, metadata: Metadata) -> Self {
        Arc::make_mut(&mut self.inner).metadata = metadata;
        self
    }

    /// The authenticated user's id: the owner every store call is scoped by.
    pub fn user_id(&self) -> &str {
        self.inner.principal.id()
    }

    /// The authenticated user.
    pub fn principal(&self) -> &Principal {
        &self.inner.principal
    }

    /// The first language of `Accept-Language` (`en-US` for `en-US,en;q=0.9`).
    pub fn locale(&self) -> Option<&str> {
        self.inner.locale.as_deref()
    }

    /// The `chatkit-frame-instance-id` header: which ChatKit frame sent the request.
    pub fn frame_instance_id(&self) -> Option<&str> {
        self.inner.frame_instance_id.as_deref()
    }

    /// The request's `metadata` (integration data sent by the client).
    pub fn metadata(&self) -> &Metadata {
        &self.inner.metadata
    }

    /// The request's headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.inner.headers
    }

    /// The request's extensions (whatever earlier layers put there).
    pub fn extensions(&self) -> &Extensions {
        &self.inner.extensions
    }
}

impl fmt::Debug for RequestContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Headers may carry credentials: never print them.
        f.debug_struct("RequestContext")
            .field("user_id", &self.user_id())
            .field("locale", &self.inner.locale)
            .field("frame_instance_id", &self.inner.frame_instance_id)
            .finish_non_exhaustive()
    }
}

fn first_language(header: &str) -> Option<String> {
    let first = header.split(',').next()?.split(';').next()?.trim();
    (!first.is_empty() && first != "*").then(|| first.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_comes_from_principal_and_headers() {
        let req = http::Request::post("/")
            .header("accept-language", "en-US,en;q=0.9")
            .header(FRAME_INSTANCE_ID, "frame-1")
            .header("authorization", "Bearer secret")
            .body(())
            .unwrap();
        let (parts, ()) = req.into_parts();
        let ctx = RequestContext::from_request(Principal::new("alice"), parts, Metadata::new());
        assert_eq!(ctx.user_id(), "alice");
        assert_eq!(ctx.locale(), Some("en-US"));
        assert_eq!(ctx.frame_instance_id(), Some("frame-1"));
        assert!(!format!("{ctx:?}").contains("secret"));
    }
}
