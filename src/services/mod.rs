//! Domain logic over the database. Services return plain values and `AppError`; they never touch HTTP.

pub mod account;
pub mod codes;
pub mod login;
pub mod otp;
pub mod refresh;
pub mod registration;
pub mod retention;
pub mod revocation;
pub mod sessions;
pub mod throttle;
pub mod tickets;
pub mod users;

use sea_orm::DatabaseConnection;

use crate::{
    config::Settings,
    email::Mailer,
    passwords::PasswordHasher,
    realtime::{bus::EventBus, session_manager::LiveSets},
    tokens::{AccessTokens, HmacKey},
};

/// Everything a request needs, built once by `Application::build` and shared by every worker.
pub struct AppState {
    pub settings: Settings,
    pub database: DatabaseConnection,
    pub passwords: PasswordHasher,
    pub access_tokens: AccessTokens,
    /// Derives each refresh token's successor.
    pub refresh_keys: HmacKey,
    /// Keys the stored HMAC of each emailed code.
    pub otp_keys: HmacKey,
    pub mailer: Mailer,
    pub bus: EventBus,
    pub live_sets: LiveSets,
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
    /// A short-lived copy of `user` views for `GET /api/users/me`, the hottest read, and the refresh answer.
    /// Local changes drop an entry at once; a change made on another node shows within its life.
    pub user_cache: crate::cache::Cache<users::UserView>,
    /// SQLite has one writer: the hot writes (sign-in, refresh, logout) take turns here instead of colliding in
    /// the database, where a busy writer sleeps and retries. Take the turn before any pooled connection, never
    /// while holding one. `None` on PostgreSQL, whose writers do not block each other.
    pub sqlite_writer: Option<tokio::sync::Mutex<()>>,
}

impl AppState {
    /// Waits for this process's turn to write, on SQLite; hold the guard until the commit.
    pub async fn sqlite_write_lock(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.sqlite_writer {
            Some(turns) => Some(turns.lock().await),
            None => None,
        }
    }
}

/// Where a request came from, as the session records it.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub ip: String,
    pub user_agent: String,
}

pub use crate::clock::{now, now_ms, seconds};
