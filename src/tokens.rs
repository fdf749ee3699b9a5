//! Access tokens (HS256 JWTs, algorithm pinned) and the opaque random tokens: refresh tokens, tickets.
//!
//! Access tokens are decoded with `Validation::new(HS256)`, so a token signed with any other algorithm, `none`
//! included, is refused. `AccessTokens::verify` requires `exp`, `iss`, `aud` and `sub`, checks `iss` and `aud`
//! against `JWT_ISSUER`, refuses an `nbf` or `iat` more than 30 s ahead, and requires the header `typ` to be
//! `at+jwt`. `AccessTokens::check_life` answers `session_expired` once `sxp` (the session's absolute or idle end
//! as of the token's issue) has passed, without leeway, and `token_expired` after the earlier of `exp` and
//! `iat + ACCESS_TOKEN_TTL` (this node's setting), plus 30 s.
//!
//! Access tokens never outlive their session: `exp` is the earlier of `now + ACCESS_TOKEN_TTL` and `sxp`, so a
//! session past its end is refused on every node at that moment, before the sweeper or a socket timer writes the
//! end.
//!
//! Opaque tokens are 256 random bits; the database keeps only their SHA-256 hashes. `HmacKey` is HMAC-SHA256
//! under a key derived per purpose from a secret. The keys exist only in memory: the HS256 key
//! (`JWT_ACCESS_SECRET`), the successor key derived from it with HMAC (`"authd refresh token successor"`), and
//! the code and outbox keys derived from `OTP_SECRET` (`"authd one-time code"`, `"authd mail outbox"`).
//! `HmacKey::mac` length-prefixes each part, so different splits of the same bytes never collide.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::Duration,
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use tokio::sync::Notify;

pub use crate::random::fill_random;
use crate::{
    secret::Secret,
    signing::{key_ring::KeyRing, verified::VerifiedTokens},
};

/// The `typ` header of every access token (RFC 9068).
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";
/// Clock skew tolerated on `exp`.
pub const LEEWAY_SECONDS: u64 = 30;
/// How long after a session ends one of its access tokens could still be presented: the token life plus the
/// leeway twice, since a token may carry an `iat` up to the leeway ahead of this node's clock (its issuer's
/// clock ran ahead) and then lives until `iat` plus the life plus the leeway. Revocations matter for this long.
pub fn revocation_window(access_token_life: Duration) -> Duration {
    access_token_life + 2 * Duration::from_secs(LEEWAY_SECONDS)
}

/// Random bytes in a refresh token or a ticket: 256 bits.
const TOKEN_BYTES: usize = 32;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    pub sub: Uuid,
    pub sid: Uuid,
    pub jti: Uuid,
    pub iat: i64,
    pub exp: i64,
    /// When the token's session ends unless it is refreshed first: its absolute end, or its idle end as of
    /// this token's issue. Checked on every request without leeway, so a token stops at its session's end on
    /// every node without a database read. Absent from tokens of earlier versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sxp: Option<i64>,
}

/// An access token as issued: its claims, and how its session was authenticated. authd reads `amr` and
/// `auth_time` from the session row, never from a presented token, so verification leaves them out: the
/// claims kept per verified token, and copied on every request, stay small.
#[derive(Serialize)]
struct IssuedClaims<'a> {
    #[serde(flatten)]
    claims: &'a AccessClaims,
    /// RFC 8176 values: `pwd`, `otp`, `hwk`, `mfa`.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    amr: &'a [&'static str],
    /// The session's sign-in or latest reauthentication (Unix seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_time: Option<i64>,
}

/// What a token says of how its session was authenticated.
#[derive(Debug, Clone, Default)]
pub struct AuthenticationClaims {
    pub methods: Vec<&'static str>,
    pub at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AccessTokenError {
    #[error("the access token has expired")]
    Expired,
    #[error("the access token's session has reached its end")]
    SessionExpired,
    #[error("the access token is invalid")]
    Invalid,
}

/// Signs and verifies access tokens.
pub struct AccessTokens {
    keys: Keys,
    issuer: String,
    lifetime: Duration,
}

/// What signs: one shared secret (HS256), or the rotating key pairs of the database (EdDSA, ES256).
// One value per process: the size of its variants does not matter.
#[allow(clippy::large_enum_variant)]
enum Keys {
    Shared {
        encoding: EncodingKey,
        decoding: DecodingKey,
        validation: Validation,
        header: Header,
    },
    Rotating {
        ring: RwLock<Arc<KeyRing>>,
        /// One per algorithm, each accepting that algorithm alone: a token is checked with its key's.
        validations: HashMap<Algorithm, Validation>,
        verified: VerifiedTokens<AccessClaims>,
        /// Woken by a token whose `kid` is not in the ring: another node may have rotated a moment ago.
        unknown_kid: Notify,
    },
}

fn validation(algorithm: Algorithm, issuer: &str) -> Validation {
    let mut validation = Validation::new(algorithm);
    validation.leeway = LEEWAY_SECONDS;
    // `exp` is checked by `check_life`, after the session's end, which answers differently.
    validation.validate_exp = false;
    validation.validate_nbf = true;
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[issuer]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation
}

impl AccessTokens {
    /// HS256 under one shared secret: every holder of the secret can verify and mint tokens.
    pub fn new(secret: &Secret, issuer: &str, lifetime: Duration) -> Self {
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some(ACCESS_TOKEN_TYPE.to_owned());
        Self {
            keys: Keys::Shared {
                encoding: EncodingKey::from_secret(secret.expose().as_bytes()),
                decoding: DecodingKey::from_secret(secret.expose().as_bytes()),
                validation: validation(Algorithm::HS256, issuer),
                header,
            },
            issuer: issuer.to_owned(),
            lifetime,
        }
    }

    /// Key pairs from the database, published as a JWKS; `ring` holds them until `replace_key_ring`.
    pub fn with_key_ring(ring: KeyRing, issuer: &str, lifetime: Duration) -> Self {
        let validations = [Algorithm::EdDSA, Algorithm::ES256]
            .into_iter()
            .map(|algorithm| (algorithm, validation(algorithm, issuer)))
            .collect();
        Self {
            keys: Keys::Rotating {
                ring: RwLock::new(Arc::new(ring)),
                validations,
                verified: VerifiedTokens::default(),
                unknown_kid: Notify::new(),
            },
            issuer: issuer.to_owned(),
            lifetime,
        }
    }

    /// Puts the keys of this moment in place (rotating keys only).
    pub fn replace_key_ring(&self, new_ring: KeyRing) {
        if let Keys::Rotating { ring, .. } = &self.keys
            && let Ok(mut current) = ring.write()
        {
            *current = Arc::new(new_ring);
        }
    }

    /// Resolves when a token named a key this node does not hold (rotating keys only; never otherwise).
    pub async fn unknown_key_seen(&self) {
        match &self.keys {
            Keys::Rotating { unknown_kid, .. } => unknown_kid.notified().await,
            Keys::Shared { .. } => std::future::pending().await,
        }
    }

    /// The public keys as a JWKS document: `{"keys": []}` with a shared secret, which is never published.
    pub fn jwks(&self) -> String {
        match &self.keys {
            Keys::Shared { .. } => r#"{"keys":[]}"#.to_owned(),
            Keys::Rotating { .. } => self
                .ring()
                .map_or_else(|| r#"{"keys":[]}"#.to_owned(), |ring| ring.jwks.clone()),
        }
    }

    fn ring(&self) -> Option<Arc<KeyRing>> {
        match &self.keys {
            Keys::Rotating { ring, .. } => ring.read().ok().map(|ring| Arc::clone(&ring)),
            Keys::Shared { .. } => None,
        }
    }

    /// Issues a token for a session; it never outlives `session_ends_at`, the moment the session ends unless
    /// refreshed (its absolute or idle end, whichever comes first). Returns the token and its life in seconds.
    pub fn issue(
        &self,
        user: Uuid,
        session: Uuid,
        session_ends_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(String, i64), jsonwebtoken::errors::Error> {
        self.issue_with(user, session, session_ends_at, &AuthenticationClaims::default(), now)
    }

    /// `issue`, saying how the session was authenticated (`amr`, `auth_time`).
    pub fn issue_with(
        &self,
        user: Uuid,
        session: Uuid,
        session_ends_at: DateTime<Utc>,
        authentication: &AuthenticationClaims,
        now: DateTime<Utc>,
    ) -> Result<(String, i64), jsonwebtoken::errors::Error> {
        let lifetime = i64::try_from(self.lifetime.as_secs()).unwrap_or(i64::MAX);
        let expires = (now.timestamp().saturating_add(lifetime)).min(session_ends_at.timestamp());
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            aud: self.issuer.clone(),
            sub: user,
            sid: session,
            jti: Uuid::now_v7(),
            iat: now.timestamp(),
            exp: expires,
            sxp: Some(session_ends_at.timestamp()),
        };
        let claims = IssuedClaims {
            claims: &claims,
            amr: &authentication.methods,
            auth_time: authentication.at.map(|at| at.timestamp()),
        };
        let token = match &self.keys {
            Keys::Shared { encoding, header, .. } => jsonwebtoken::encode(header, &claims, encoding)?,
            Keys::Rotating { .. } => {
                let ring = self.ring().ok_or(ErrorKind::InvalidKeyFormat)?;
                let key = ring.signing.as_ref().ok_or(ErrorKind::InvalidKeyFormat)?;
                let mut header = Header::new(key.algorithm.jwt_algorithm());
                header.typ = Some(ACCESS_TOKEN_TYPE.to_owned());
                header.kid = Some(key.kid.clone());
                jsonwebtoken::encode(&header, &claims, &key.encoding)?
            }
        };
        Ok((token, (expires - now.timestamp()).max(0)))
    }

    /// Signs `claims` as a JWT of type `typ` with the key that signs access tokens (another type than an access
    /// token's, so neither passes for the other).
    pub fn sign_other<Claims: Serialize>(
        &self,
        typ: &str,
        claims: &Claims,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        match &self.keys {
            Keys::Shared { encoding, header, .. } => {
                let mut header = header.clone();
                header.typ = Some(typ.to_owned());
                jsonwebtoken::encode(&header, claims, encoding)
            }
            Keys::Rotating { .. } => {
                let ring = self.ring().ok_or(ErrorKind::InvalidKeyFormat)?;
                let key = ring.signing.as_ref().ok_or(ErrorKind::InvalidKeyFormat)?;
                let mut header = Header::new(key.algorithm.jwt_algorithm());
                header.typ = Some(typ.to_owned());
                header.kid = Some(key.kid.clone());
                jsonwebtoken::encode(&header, claims, &key.encoding)
            }
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Checks the signature, algorithm, type, issuer, audience, `nbf` and `iat`. The token's life is left to
    /// `check_life`, because a session that ended earlier answers before its expiry. With rotating keys the
    /// algorithm is the one of the key the `kid` names, and a token verified before costs a lookup.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, AccessTokenError> {
        let claims = match &self.keys {
            Keys::Shared {
                decoding, validation, ..
            } => decode(token, decoding, validation)?,
            Keys::Rotating {
                validations,
                verified,
                unknown_kid,
                ..
            } => match verified.get(token) {
                Some(claims) => claims,
                None => {
                    let header = jsonwebtoken::decode_header(token).map_err(|_| AccessTokenError::Invalid)?;
                    let kid = header.kid.ok_or(AccessTokenError::Invalid)?;
                    let ring = self.ring().ok_or(AccessTokenError::Invalid)?;
                    let Some(key) = ring.verifying.get(&kid) else {
                        unknown_kid.notify_one();
                        return Err(AccessTokenError::Invalid);
                    };
                    let validation = validations
                        .get(&key.algorithm.jwt_algorithm())
                        .ok_or(AccessTokenError::Invalid)?;
                    let claims = decode(token, &key.decoding, validation)?;
                    verified.insert(token, claims.clone(), claims.exp, Utc::now().timestamp());
                    claims
                }
            },
        };
        let leeway = i64::try_from(LEEWAY_SECONDS).unwrap_or(i64::MAX);
        // No node of ours issues a token dated in the future.
        if claims.iat > Utc::now().timestamp().saturating_add(leeway) {
            return Err(AccessTokenError::Invalid);
        }
        Ok(claims)
    }

    /// Whether the token still lives at `now` (Unix seconds): its session's end first, without leeway (a
    /// session over is over on every node at once), then its expiry with the leeway for clock skew. The
    /// expiry is `exp`, but never later than `iat` plus this node's token life: a node keeps revocations for
    /// its token life plus the leeway, so a token issued under a longer life (before the setting was lowered,
    /// or by a node set otherwise) must not outlive what the node remembers.
    pub fn check_life(&self, claims: &AccessClaims, now: i64) -> Result<(), AccessTokenError> {
        if claims.sxp.is_some_and(|ends| ends <= now) {
            return Err(AccessTokenError::SessionExpired);
        }
        let lifetime = i64::try_from(self.lifetime.as_secs()).unwrap_or(i64::MAX);
        let leeway = i64::try_from(LEEWAY_SECONDS).unwrap_or(i64::MAX);
        let expires = claims.exp.min(claims.iat.saturating_add(lifetime));
        if expires.saturating_add(leeway) < now {
            return Err(AccessTokenError::Expired);
        }
        Ok(())
    }

    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }
}

/// Signature, algorithm, claims and `typ` of one token.
fn decode(token: &str, key: &DecodingKey, validation: &Validation) -> Result<AccessClaims, AccessTokenError> {
    let data = jsonwebtoken::decode::<AccessClaims>(token, key, validation).map_err(|error| match error.kind() {
        ErrorKind::ExpiredSignature => AccessTokenError::Expired,
        _ => AccessTokenError::Invalid,
    })?;
    if data.header.typ.as_deref() != Some(ACCESS_TOKEN_TYPE) {
        return Err(AccessTokenError::Invalid);
    }
    Ok(data.claims)
}

/// `bytes` random bytes from the operating system's CSPRNG, base64url without padding.
pub fn random_token(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    fill_random(&mut buffer);
    URL_SAFE_NO_PAD.encode(buffer)
}

/// A new refresh token or ticket: 256 random bits.
pub fn new_opaque_token() -> String {
    random_token(TOKEN_BYTES)
}

/// Hex SHA-256 of a token: what the database stores instead of the token.
pub fn hash_token(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// Whether `token` has the shape of one of ours (43 base64url characters), checked before any lookup.
pub fn is_well_formed(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
}

/// HMAC-SHA256 keyed by a secret, for derived values (refresh successors, code hashes).
#[derive(Clone)]
pub struct HmacKey {
    key: Vec<u8>,
}

impl HmacKey {
    /// A key derived from `secret` for one `purpose`, so one secret serves several uses independently.
    pub fn derive(secret: &Secret, purpose: &str) -> Self {
        let mut mac = new_hmac(secret.expose().as_bytes());
        mac.update(purpose.as_bytes());
        Self {
            key: mac.finalize().into_bytes().to_vec(),
        }
    }

    pub fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = new_hmac(&self.key);
        for part in parts {
            // Length-prefixed so that different splits of the same bytes never collide.
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// The successor of a refresh token: the same token always gives the same successor, so every racing
    /// presentation inside the grace window can be answered alike without storing any token in clear.
    pub fn refresh_successor(&self, token: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(&[token.as_bytes()]))
    }
}

/// An HMAC-SHA256 keyed by `key`.
#[allow(clippy::expect_used)]
fn new_hmac(key: &[u8]) -> Hmac<Sha256> {
    <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes a key of any length")
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut text, byte| {
            let _ = write!(text, "{byte:02x}");
            text
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> AccessTokens {
        AccessTokens::new(&Secret::new("x".repeat(32)), "authd", Duration::from_secs(900))
    }

    #[test]
    fn issued_token_verifies_with_pinned_algorithm() {
        let tokens = tokens();
        let now = Utc::now();
        let (token, expires_in) = tokens
            .issue(Uuid::now_v7(), Uuid::now_v7(), now + chrono::Duration::days(1), now)
            .unwrap();
        assert_eq!(expires_in, 900);
        let claims = tokens.verify(&token).unwrap();
        assert_eq!(claims.iss, "authd");
        assert_eq!(claims.aud, "authd");
    }

    #[test]
    fn token_never_outlives_its_session() {
        let now = Utc::now();
        let (_, expires_in) = tokens()
            .issue(Uuid::now_v7(), Uuid::now_v7(), now + chrono::Duration::seconds(60), now)
            .unwrap();
        assert_eq!(expires_in, 60);
    }

    #[test]
    fn a_token_ends_with_its_session_before_its_expiry() {
        let now = Utc::now();
        let (token, _) = tokens()
            .issue(Uuid::now_v7(), Uuid::now_v7(), now + chrono::Duration::seconds(60), now)
            .unwrap();
        let tokens = tokens();
        let claims = tokens.verify(&token).unwrap();
        let issued = now.timestamp();
        assert_eq!(claims.sxp, Some(issued + 60));
        assert_eq!(tokens.check_life(&claims, issued + 59), Ok(()));
        // No leeway at the session's end; the leeway only forgives clock skew on `exp`.
        assert_eq!(
            tokens.check_life(&claims, issued + 60),
            Err(AccessTokenError::SessionExpired)
        );
        let long = AccessClaims { sxp: None, ..claims };
        assert_eq!(tokens.check_life(&long, issued + 60 + 30), Ok(()));
        assert_eq!(
            tokens.check_life(&long, issued + 60 + 31),
            Err(AccessTokenError::Expired)
        );
    }

    #[test]
    fn a_token_lives_no_longer_than_this_nodes_token_life() {
        let now = Utc::now();
        let issued = now.timestamp();
        let (token, _) = tokens()
            .issue(Uuid::now_v7(), Uuid::now_v7(), now + chrono::Duration::days(1), now)
            .unwrap();
        // A node whose token life is now 5 s treats the 900 s token as issued for 5 s.
        let shorter = AccessTokens::new(&Secret::new("x".repeat(32)), "authd", Duration::from_secs(5));
        let claims = shorter.verify(&token).unwrap();
        assert_eq!(claims.exp, issued + 900);
        assert_eq!(shorter.check_life(&claims, issued + 35), Ok(()));
        assert_eq!(shorter.check_life(&claims, issued + 36), Err(AccessTokenError::Expired));
    }

    #[test]
    fn no_token_outlives_the_revocation_window() {
        let tokens = tokens();
        let revoked_at = Utc::now().timestamp();
        // The latest token a session revoked now can hold: issued now by a node whose clock runs a whole
        // leeway ahead, so its `iat` is as far in the future as `verify` lets through.
        let leeway = i64::try_from(LEEWAY_SECONDS).unwrap();
        let claims = AccessClaims {
            iss: "authd".to_owned(),
            aud: "authd".to_owned(),
            sub: Uuid::now_v7(),
            sid: Uuid::now_v7(),
            jti: Uuid::now_v7(),
            iat: revoked_at + leeway,
            exp: revoked_at + leeway + 900,
            sxp: None,
        };
        let forgotten_at = revoked_at + i64::try_from(revocation_window(tokens.lifetime()).as_secs()).unwrap();
        assert_eq!(tokens.check_life(&claims, forgotten_at - 1), Ok(()));
        assert_eq!(
            tokens.check_life(&claims, forgotten_at + 1),
            Err(AccessTokenError::Expired)
        );
    }

    #[test]
    fn successor_is_deterministic_and_well_formed() {
        let keyed = HmacKey::derive(&Secret::new("y".repeat(32)), "refresh");
        let token = new_opaque_token();
        assert!(is_well_formed(&token));
        let successor = keyed.refresh_successor(&token);
        assert_eq!(successor, keyed.refresh_successor(&token));
        assert_ne!(successor, token);
        assert!(is_well_formed(&successor));
    }
}
