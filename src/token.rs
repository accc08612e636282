//! The sealed client secret: a token the kit signs and later verifies by itself.
//!
//! A sealed secret carries the backend session id, the user id and an expiry, signed with
//! HMAC-SHA256. The stream and WebSocket endpoints verify it locally — a forged or expired token
//! is refused with no upstream call — and forward the backend session id.
//!
//! Wire form: `ck1.<base64url(JSON claims)>.<base64url(HMAC-SHA256)>`. The claims are signed,
//! not encrypted: the holder can read its own session id, user id and expiry, as with a JWT.
//!
//! [`SessionKeys`] is a key ring: it signs with the first key and accepts any, so keys rotate
//! without logging anybody out (put the new key first, drop the old one once its tokens expired).
//!
//! ```
//! use chatkit_tower::token::{SessionClaims, SessionKeys};
//!
//! let keys = SessionKeys::new(["a-long-random-secret-of-32-bytes-or-more"]).unwrap();
//! let claims = SessionClaims::new("sess_1", "user_1", u64::MAX / 2);
//! let secret = keys.seal(&claims);
//! assert_eq!(keys.verify(&secret).unwrap(), claims);
//! assert!(keys.verify("ck1.forged.token").is_err());
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::ConfigError;

type HmacSha256 = Hmac<Sha256>;

const PREFIX: &str = "ck1.";
/// Shortest key accepted: 32 bytes, the size of the HMAC-SHA256 output.
pub const MIN_KEY_LEN: usize = 32;
/// Longest token looked at; anything longer is refused before any decoding.
const MAX_TOKEN_LEN: usize = 8 * 1024;

/// What a sealed secret says: which backend session, which user, until when.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SessionClaims {
    /// The backend's session id, forwarded to the backend on stream and WebSocket calls.
    #[serde(rename = "sid")]
    pub session_id: String,
    /// The authenticated user the session was issued to.
    #[serde(rename = "sub")]
    pub user_id: String,
    /// Expiry, in seconds since the Unix epoch.
    #[serde(rename = "exp")]
    pub expires_at: u64,
}

impl SessionClaims {
    /// Claims for `session_id` and `user_id`, valid until `expires_at` (Unix seconds).
    pub fn new(session_id: impl Into<String>, user_id: impl Into<String>, expires_at: u64) -> Self {
        Self {
            session_id: session_id.into(),
            user_id: user_id.into(),
            expires_at,
        }
    }
}

/// Why a token was refused. Every variant answers `401 UNAUTHORIZED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenError {
    /// Not a sealed secret at all (wrong shape, bad base64, too long).
    Malformed,
    /// No key of the ring signed it: forged, altered or signed with a retired key.
    BadSignature,
    /// Signed by us, but past its expiry.
    Expired,
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Malformed => "the session token is malformed",
            Self::BadSignature => "the session token's signature is not valid",
            Self::Expired => "the session token has expired",
        })
    }
}

impl std::error::Error for TokenError {}

/// The key ring that seals and verifies client secrets. Cheap to clone.
///
/// Its `Debug` output never shows a key.
#[derive(Clone)]
pub struct SessionKeys {
    macs: Arc<[HmacSha256]>,
}

impl SessionKeys {
    /// A ring of `keys`; the first one signs, all of them verify. Each key must be at least
    /// [`MIN_KEY_LEN`] bytes, and there must be at least one.
    ///
    /// ```
    /// use chatkit_tower::token::SessionKeys;
    /// assert!(SessionKeys::new(["too short"]).is_err());
    /// assert!(SessionKeys::new(Vec::<String>::new()).is_err());
    /// ```
    pub fn new<I, K>(keys: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = K>,
        K: AsRef<[u8]>,
    {
        let mut macs = Vec::new();
        for (i, key) in keys.into_iter().enumerate() {
            let key = key.as_ref();
            if key.len() < MIN_KEY_LEN {
                return Err(ConfigError::new(format!(
                    "session key #{} is {} bytes; at least {MIN_KEY_LEN} are needed",
                    i + 1,
                    key.len()
                )));
            }
            // HMAC takes keys of any length; this cannot fail.
            let mac = HmacSha256::new_from_slice(key)
                .map_err(|_| ConfigError::new("session key rejected by HMAC"))?;
            macs.push(mac);
        }
        if macs.is_empty() {
            return Err(ConfigError::new("at least one session key is needed"));
        }
        Ok(Self { macs: macs.into() })
    }

    /// A ring of one fresh random key. Tokens it signs do not survive a restart and are not
    /// accepted by other instances: set a shared secret for that.
    pub fn random() -> Result<Self, ConfigError> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key)
            .map_err(|e| ConfigError::new(format!("no randomness for a session key: {e}")))?;
        Self::new([key])
    }

    /// Parse a comma-separated list of keys, as in `CHATKIT_SESSION_SECRET="new-key,old-key"`.
    pub fn from_list(list: &str) -> Result<Self, ConfigError> {
        Self::new(list.split(',').map(str::trim).filter(|k| !k.is_empty()))
    }

    /// Sign `claims` with the first key.
    pub fn seal(&self, claims: &SessionClaims) -> String {
        // Serializing two strings and a number cannot fail.
        let json = serde_json::to_vec(claims).unwrap_or_default();
        let mut token = String::with_capacity(PREFIX.len() + json.len() * 4 / 3 + 48);
        token.push_str(PREFIX);
        URL_SAFE_NO_PAD.encode_string(json, &mut token);
        let mut mac = self.macs[0].clone();
        mac.update(token.as_bytes());
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(mac.finalize().into_bytes(), &mut token);
        token
    }

    /// Verify `token` now: its signature against every key (in constant time), then its expiry.
    pub fn verify(&self, token: &str) -> Result<SessionClaims, TokenError> {
        self.verify_at(token, unix_now())
    }

    /// Verify `token` as of `now` (Unix seconds).
    pub fn verify_at(&self, token: &str, now: u64) -> Result<SessionClaims, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let rest = token.strip_prefix(PREFIX).ok_or(TokenError::Malformed)?;
        let (payload, tag) = rest.split_once('.').ok_or(TokenError::Malformed)?;
        if payload.is_empty() || tag.contains('.') {
            return Err(TokenError::Malformed);
        }
        let signed = &token[..PREFIX.len() + payload.len()];
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| TokenError::Malformed)?;
        let signed_by_us = self.macs.iter().any(|mac| {
            let mut mac = mac.clone();
            mac.update(signed.as_bytes());
            mac.verify_slice(&tag).is_ok()
        });
        if !signed_by_us {
            return Err(TokenError::BadSignature);
        }
        let json = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenError::Malformed)?;
        let claims: SessionClaims =
            serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
        if claims.expires_at <= now {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

impl fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionKeys")
            .field("keys", &self.macs.len())
            .finish_non_exhaustive()
    }
}

/// Seconds since the Unix epoch, now.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "key-a-0123456789abcdef0123456789abcdef";
    const KEY_B: &str = "key-b-0123456789abcdef0123456789abcdef";

    fn claims() -> SessionClaims {
        SessionClaims::new("sess_42", "user_7", 2_000)
    }

    #[test]
    fn valid_token_verifies() {
        let keys = SessionKeys::new([KEY_A]).unwrap();
        let token = keys.seal(&claims());
        assert!(token.starts_with("ck1."));
        assert_eq!(keys.verify_at(&token, 1_000), Ok(claims()));
    }

    #[test]
    fn altered_token_is_refused() {
        let keys = SessionKeys::new([KEY_A]).unwrap();
        let token = keys.seal(&claims());
        // Change the user id inside the payload and keep the old signature.
        let (_, tag) = token.rsplit_once('.').unwrap();
        let forged_claims = SessionClaims::new("sess_42", "admin", 2_000);
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged_claims).unwrap());
        let forged = format!("{PREFIX}{forged_payload}.{tag}");
        assert_eq!(
            keys.verify_at(&forged, 1_000),
            Err(TokenError::BadSignature)
        );
        // Flip one character of the signature.
        let mut bytes = token.into_bytes();
        let last = bytes.len() - 2;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(bytes).unwrap();
        assert!(keys.verify_at(&flipped, 1_000).is_err());
    }

    #[test]
    fn token_signed_with_another_key_is_refused() {
        let ours = SessionKeys::new([KEY_A]).unwrap();
        let theirs = SessionKeys::new([KEY_B]).unwrap();
        let token = theirs.seal(&claims());
        assert_eq!(ours.verify_at(&token, 1_000), Err(TokenError::BadSignature));
    }

    #[test]
    fn expired_token_is_refused() {
        let keys = SessionKeys::new([KEY_A]).unwrap();
        let token = keys.seal(&claims());
        assert_eq!(keys.verify_at(&token, 2_000), Err(TokenError::Expired));
        assert_eq!(keys.verify_at(&token, 3_000), Err(TokenError::Expired));
    }

    #[test]
    fn old_key_still_verifies_after_rotation() {
        let before = SessionKeys::new([KEY_A]).unwrap();
        let token = before.seal(&claims());
        let after = SessionKeys::from_list(&format!("{KEY_B}, {KEY_A}")).unwrap();
        assert_eq!(after.verify_at(&token, 1_000), Ok(claims()));
        // New tokens are signed with the new first key only.
        let fresh = after.seal(&claims());
        assert_eq!(
            before.verify_at(&fresh, 1_000),
            Err(TokenError::BadSignature)
        );
        assert!(SessionKeys::new([KEY_B])
            .unwrap()
            .verify_at(&fresh, 1_000)
            .is_ok());
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        let keys = SessionKeys::new([KEY_A]).unwrap();
        for junk in [
            "",
            "ck1.",
            "ck1..",
            "ck1.a.b.c",
            "ck1.!!!.???",
            "Bearer x",
            "ck1.e30.AAAA",
            &"ck1.".repeat(5_000),
        ] {
            assert!(keys.verify_at(junk, 0).is_err(), "{junk:?}");
        }
    }

    #[test]
    fn debug_shows_no_key() {
        let keys = SessionKeys::new([KEY_A]).unwrap();
        let shown = format!("{keys:?}");
        assert!(!shown.contains("key-a"), "{shown}");
    }

    #[test]
    fn short_and_missing_keys_are_config_errors() {
        assert!(SessionKeys::new(["short"]).is_err());
        assert!(SessionKeys::from_list(" , ").is_err());
        assert!(SessionKeys::random().is_ok());
    }
}
