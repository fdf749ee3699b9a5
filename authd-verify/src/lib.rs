//! Verify authd access tokens in your own Rust API, and refuse a revoked session at once, with no call to
//! authd per request.
//!
//! A [`Verifier`] fetches authd's JWKS (and again, at most once a second, when a token names a key it does not
//! hold), checks each token's signature with the algorithm of the key its `kid` names, its `typ` (`at+jwt`),
//! `iss`, `aud`, `exp` and `nbf`, and keeps the set of ended sessions in memory from authd's revocation feed
//! (`GET /api/revocations/stream`, with a backend key), reconnecting with `Last-Event-ID` so it misses nothing.
//! When the feed has been down longer than [`Config::max_feed_outage`], every token is refused with
//! [`VerifyError::FeedStale`] (fail closed), unless [`Config::fail_open`] is set.
//!
//! The core is framework-agnostic; the `actix` feature adds the [`actix::AuthdUser`] extractor.
//!
//! ```no_run
//! # async fn run() -> Result<(), authd_verify::StartError> {
//! let verifier = authd_verify::Verifier::start(authd_verify::Config::new(
//!     "http://127.0.0.1:5000", // where authd is
//!     "authd",                 // its JWT_ISSUER
//!     "authd_bk_...",          // a key from `authd backend-keys create`
//! ))
//! .await?;
//! # let token = "";
//! let claims = verifier.verify(token).await;
//! # Ok(()) }
//! ```

mod feed;
mod keys;

#[cfg(feature = "actix")]
pub mod actix;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, RwLock},
    time::{Duration, Instant},
};

use serde::Deserialize;
use uuid::Uuid;

/// At most this many verified tokens are remembered (a few hundred bytes each).
const VERIFIED_CAPACITY: usize = 65_536;

/// Where authd is and how to reach it.
#[derive(Debug, Clone)]
pub struct Config {
    /// authd's base URL, e.g. `https://auth.example.com` (https needs the `rustls` feature).
    pub authd_url: String,
    /// authd's `JWT_ISSUER`: the `iss` and `aud` every token must carry.
    pub issuer: String,
    /// A key from `authd backend-keys create`.
    pub backend_key: String,
    /// How long the feed may be down before tokens are refused (or, with `fail_open`, accepted without the
    /// revocation check). 30 s by default.
    pub max_feed_outage: Duration,
    /// Accept tokens while the feed is down past `max_feed_outage` (a revoked session may then pass until its
    /// token expires). Off by default.
    pub fail_open: bool,
    /// Tolerated clock skew on `exp` and `nbf`: 30 s by default, as authd's.
    pub leeway: Duration,
}

impl Config {
    pub fn new(authd_url: &str, issuer: &str, backend_key: &str) -> Self {
        Self {
            authd_url: authd_url.trim_end_matches('/').to_owned(),
            issuer: issuer.to_owned(),
            backend_key: backend_key.to_owned(),
            max_feed_outage: Duration::from_secs(30),
            fail_open: false,
            leeway: Duration::from_secs(30),
        }
    }
}

/// What an access token says, once verified.
#[derive(Debug, Clone, Deserialize)]
pub struct Claims {
    /// The user.
    pub sub: Uuid,
    /// The session.
    pub sid: Uuid,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: Uuid,
    /// How the session was authenticated (RFC 8176: `pwd`, `otp`, `hwk`, and `mfa` for two factors). Empty in
    /// tokens of versions before second factors.
    #[serde(default)]
    pub amr: Vec<String>,
    /// When the session's user last authenticated (its sign-in or latest reauthentication), Unix seconds.
    #[serde(default)]
    pub auth_time: Option<i64>,
}

impl Claims {
    /// Whether the session was signed in with two factors: an endpoint of the app that wants that refuses the
    /// others.
    pub fn is_multi_factor(&self) -> bool {
        self.amr.iter().any(|method| method == "mfa")
    }

    /// Whether the user authenticated within `age` of `now` (Unix seconds): an app's own step-up for sensitive
    /// actions. A token without `auth_time` never counts as recent.
    pub fn authenticated_within(&self, age: Duration, now: i64) -> bool {
        let age = i64::try_from(age.as_secs()).unwrap_or(i64::MAX);
        self.auth_time.is_some_and(|at| at.saturating_add(age) >= now)
    }
}

/// Why a token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the token is not a JWT")]
    Malformed,
    #[error("the token names a key authd does not publish")]
    UnknownKey,
    #[error("the token's signature or claims are invalid")]
    Invalid,
    #[error("the token has expired")]
    Expired,
    #[error("the token's session has ended")]
    Revoked,
    #[error("the revocation feed has been down too long to trust any token")]
    FeedStale,
}

/// Why a verifier could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot fetch authd's keys: {0}")]
    Keys(String),
}

/// Verifies tokens; cheap to clone, shared by every request.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    client: reqwest::Client,
    keys: RwLock<keys::KeySet>,
    /// Tokens whose signature was checked, so a repeat costs a lookup instead of a signature check.
    verified: RwLock<HashMap<String, Claims>>,
    /// When the keys were last fetched, so an unknown `kid` refetches at most once a second.
    keys_fetched: Mutex<Instant>,
    /// Ended sessions, until their tokens can no longer be presented.
    revoked: RwLock<HashMap<Uuid, chrono::DateTime<chrono::Utc>>>,
    feed: Mutex<feed::FeedState>,
}

impl Verifier {
    /// Fetches the keys, then follows the revocation feed for as long as the verifier lives (in a task of the
    /// current tokio runtime).
    pub async fn start(config: Config) -> Result<Self, StartError> {
        let client = reqwest::Client::new();
        let keys = keys::fetch(&client, &config).await.map_err(StartError::Keys)?;
        let inner = Arc::new(Inner {
            config,
            client,
            keys: RwLock::new(keys),
            verified: RwLock::new(HashMap::new()),
            keys_fetched: Mutex::new(Instant::now()),
            revoked: RwLock::new(HashMap::new()),
            feed: Mutex::new(feed::FeedState::new()),
        });
        feed::spawn(Arc::downgrade(&inner));
        let verifier = Self { inner };
        // The snapshot first: until it has arrived, a session that ended earlier would pass.
        let deadline = Instant::now() + verifier.inner.config.max_feed_outage.min(Duration::from_secs(10));
        while !verifier.feed_is_connected() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(verifier)
    }

    /// Verifies `token`; a token under a key not held yet refetches the keys (at most once a second) first.
    pub async fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        match self.verify_now(token) {
            Err(VerifyError::UnknownKey) if self.may_refetch() => {
                if let Ok(keys) = keys::fetch(&self.inner.client, &self.inner.config).await
                    && let Ok(mut current) = self.inner.keys.write()
                {
                    *current = keys;
                }
                self.verify_now(token)
            }
            outcome => outcome,
        }
    }

    /// Verifies `token` with the keys held now, without any request.
    pub fn verify_now(&self, token: &str) -> Result<Claims, VerifyError> {
        let claims = self.checked_signature(token)?;
        let now = chrono::Utc::now().timestamp();
        let leeway = i64::try_from(self.inner.config.leeway.as_secs()).unwrap_or(i64::MAX);
        if claims.exp.saturating_add(leeway) < now {
            return Err(VerifyError::Expired);
        }
        if self.feed_is_stale() && !self.inner.config.fail_open {
            return Err(VerifyError::FeedStale);
        }
        let revoked = self.inner.revoked.read().map_err(|_| VerifyError::Invalid)?;
        if revoked.contains_key(&claims.sid) {
            return Err(VerifyError::Revoked);
        }
        Ok(claims)
    }

    /// The token's claims once its signature, `typ`, `iss`, `aud` and `nbf` have been checked, from memory when
    /// the same token was checked before (`exp` is checked by the caller every time).
    fn checked_signature(&self, token: &str) -> Result<Claims, VerifyError> {
        if let Some(claims) = self
            .inner
            .verified
            .read()
            .ok()
            .and_then(|verified| verified.get(token).cloned())
        {
            return Ok(claims);
        }
        let claims = {
            let keys = self.inner.keys.read().map_err(|_| VerifyError::Invalid)?;
            keys.verify(token)?
        };
        if let Ok(mut verified) = self.inner.verified.write() {
            if verified.len() >= VERIFIED_CAPACITY {
                let now = chrono::Utc::now().timestamp();
                verified.retain(|_, claims| claims.exp > now);
                if verified.len() >= VERIFIED_CAPACITY {
                    verified.clear();
                }
            }
            verified.insert(token.to_owned(), claims.clone());
        }
        Ok(claims)
    }

    /// Whether the feed has been down longer than the configured bound.
    pub fn feed_is_stale(&self) -> bool {
        self.inner
            .feed
            .lock()
            .map(|feed| feed.down_longer_than(self.inner.config.max_feed_outage))
            .unwrap_or(true)
    }

    /// Whether the feed is connected now.
    pub fn feed_is_connected(&self) -> bool {
        self.inner.feed.lock().map(|feed| feed.is_connected()).unwrap_or(false)
    }

    /// How many sessions the verifier holds as ended.
    pub fn revoked_sessions(&self) -> usize {
        self.inner.revoked.read().map(|revoked| revoked.len()).unwrap_or(0)
    }

    fn may_refetch(&self) -> bool {
        let Ok(mut fetched) = self.inner.keys_fetched.lock() else {
            return false;
        };
        if fetched.elapsed() < Duration::from_secs(1) {
            return false;
        }
        *fetched = Instant::now();
        true
    }
}
