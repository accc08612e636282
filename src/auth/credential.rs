use std::fmt;

use http::header::{AUTHORIZATION, COOKIE};
use http::HeaderMap;

/// Longest credential looked at; longer ones are refused without calling the authenticator.
const MAX_CREDENTIAL_LEN: usize = 4096;

/// Where a [`Credential`] was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CredentialSource {
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// `X-Auth-Token: <token>`.
    AuthTokenHeader,
    /// A cookie with the configured name.
    Cookie,
}

/// A credential taken from a request, handed to an [`Authenticate`](super::Authenticate) impl.
///
/// Its `Debug` output hides the token.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    token: String,
    source: CredentialSource,
}

impl Credential {
    /// A credential (mostly for tests of your own authenticator).
    pub fn new(token: impl Into<String>, source: CredentialSource) -> Self {
        Self {
            token: token.into(),
            source,
        }
    }

    /// The token itself. Keep it out of logs.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Where it came from.
    pub fn source(&self) -> CredentialSource {
        self.source
    }

    /// Find the credential in `headers`: bearer first, then `X-Auth-Token`, then the cookie
    /// `cookie_name` when given. `Err` means a credential was sent but cannot be valid (too long,
    /// not visible ASCII); `Ok(None)` means none was sent.
    pub(crate) fn from_headers(
        headers: &HeaderMap,
        cookie_name: Option<&str>,
    ) -> Result<Option<Self>, &'static str> {
        if let Some(token) = bearer_token(headers) {
            return Self::checked(token, CredentialSource::Bearer).map(Some);
        }
        if let Some(value) = headers.get("x-auth-token") {
            let token = value.to_str().map_err(|_| "X-Auth-Token is not ASCII")?;
            return Self::checked(token.trim(), CredentialSource::AuthTokenHeader).map(Some);
        }
        if let Some(name) = cookie_name {
            for header in headers.get_all(COOKIE) {
                let Ok(header) = header.to_str() else {
                    continue;
                };
                for pair in header.split(';') {
                    if let Some((k, v)) = pair.trim().split_once('=') {
                        if k == name {
                            let v = v.trim_matches('"');
                            return Self::checked(v, CredentialSource::Cookie).map(Some);
                        }
                    }
                }
            }
        }
        Ok(None)
    }

    fn checked(token: &str, source: CredentialSource) -> Result<Self, &'static str> {
        if token.is_empty() {
            return Err("the credential is empty");
        }
        if token.len() > MAX_CREDENTIAL_LEN {
            return Err("the credential is too long");
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("the credential holds characters a token cannot have");
        }
        Ok(Self::new(token, source))
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("source", &self.source)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// The token of an `Authorization: Bearer <token>` header, if there is one (the scheme is
/// matched without regard to case).
///
/// ```
/// use chatkit_tower::auth::bearer_token;
/// let mut headers = http::HeaderMap::new();
/// headers.insert("authorization", "bearer abc".parse().unwrap());
/// assert_eq!(bearer_token(&headers), Some("abc"));
/// ```
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn bearer_wins_over_header_and_cookie() {
        let h = headers(&[
            ("authorization", "Bearer one"),
            ("x-auth-token", "two"),
            ("cookie", "sid=three"),
        ]);
        let c = Credential::from_headers(&h, Some("sid")).unwrap().unwrap();
        assert_eq!((c.token(), c.source()), ("one", CredentialSource::Bearer));
    }

    #[test]
    fn cookie_is_found_among_others() {
        let h = headers(&[("cookie", "a=1; sid=three; b=2")]);
        let c = Credential::from_headers(&h, Some("sid")).unwrap().unwrap();
        assert_eq!((c.token(), c.source()), ("three", CredentialSource::Cookie));
        assert_eq!(Credential::from_headers(&h, None).unwrap(), None);
    }

    #[test]
    fn basic_auth_is_not_a_bearer() {
        let h = headers(&[("authorization", "Basic dXNlcjpwYXNz")]);
        assert_eq!(Credential::from_headers(&h, None).unwrap(), None);
    }

    #[test]
    fn empty_and_oversized_credentials_are_refused() {
        assert!(Credential::from_headers(&headers(&[("authorization", "Bearer ")]), None).is_err());
        let mut h = HeaderMap::new();
        h.insert("x-auth-token", "a".repeat(5000).parse().unwrap());
        assert!(Credential::from_headers(&h, None).is_err());
    }

    #[test]
    fn debug_hides_the_token() {
        let c = Credential::new("secret-value", CredentialSource::Bearer);
        assert!(!format!("{c:?}").contains("secret-value"));
    }
}
