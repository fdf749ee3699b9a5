//! Domain logic over the database. Services return plain values and `AppError`; they never touch HTTP.

pub mod account;
pub mod backend_keys;
pub mod challenges;
pub mod codes;
pub mod factors;
pub mod introspection;
pub mod login;
pub mod otp;
pub mod passkeys;
pub mod recovery_codes;
pub mod refresh;
pub mod registration;
pub mod retention;
pub mod revocation;
pub mod revocation_feed;
pub mod sessions;
pub mod step_up;
pub mod throttle;
pub mod tickets;
pub mod totp;
pub mod users;

use std::sync::Arc;

use crate::{
    config::Settings,
    email::Mailer,
    passwords::PasswordHasher,
    realtime::{events::Publisher, session_lists::SessionLists, session_manager::LiveSets},
    store::Store,
    tokens::{AccessTokens, HmacKey},
};

/// Everything a request needs, built once by `Application::build` and shared by every worker.
pub struct AppState {
    pub settings: Settings,
    /// The database, and what its kind needs of writers (see `store`).
    pub store: Store,
    /// This node's id; it names the node's presence rows and its listening connection.
    pub node: uuid::Uuid,
    pub passwords: PasswordHasher,
    /// Shared with the task that keeps the signing keys current.
    pub access_tokens: Arc<AccessTokens>,
    /// Derives each refresh token's successor.
    pub refresh_keys: HmacKey,
    /// Keys the stored HMAC of each emailed code.
    pub otp_keys: HmacKey,
    /// Keys the stored HMAC of each recovery code.
    pub factor_keys: HmacKey,
    /// Seals authenticator-app secrets at rest.
    pub factor_sealer: crate::sealing::Sealer,
    /// Passkey ceremonies for `WEBAUTHN_RP_ID` and `WEBAUTHN_ORIGINS`.
    pub webauthn: Arc<webauthn_rs::Webauthn>,
    pub mailer: Mailer,
    /// Announces session changes to this node's devices and the other nodes.
    pub publisher: Arc<dyn Publisher>,
    pub live_sets: LiveSets,
    /// The node's copies of session lists; every change the publisher carries drops the user's copy.
    pub session_lists: Arc<SessionLists>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// A short-lived copy of `user` views for `GET /api/users/me`, the hottest read, and the refresh answer.
    /// Local changes drop an entry at once; a change made on another node shows within its life.
    pub user_cache: crate::cache::Cache<users::UserView>,
    /// The live keys of apps' backends (revocation feed, introspection).
    pub backend_keys: Arc<backend_keys::BackendKeyring>,
    /// Changes whenever this node hears of a session end: the revocation feed then reads the log.
    pub revocation_log: tokio::sync::watch::Receiver<u64>,
}

/// Where a request came from, as the session records it.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub ip: String,
    pub user_agent: String,
}

pub use crate::clock::{now, now_ms, seconds};
