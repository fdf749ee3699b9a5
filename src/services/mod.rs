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
    realtime::{bus::EventBus, session_manager::ManagerViews},
    tokens::{AccessTokens, Keyed},
};

/// Everything a request needs, built once by `Application::build` and shared by every worker.
pub struct AppState {
    pub settings: Settings,
    pub database: DatabaseConnection,
    pub passwords: PasswordHasher,
    pub access_tokens: AccessTokens,
    /// Derives each refresh token's successor.
    pub refresh_keys: Keyed,
    /// Keys the stored HMAC of each emailed code.
    pub otp_keys: Keyed,
    pub mailer: Mailer,
    pub bus: EventBus,
    pub views: ManagerViews,
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
}

/// Where a request came from, as the session records it.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub ip: String,
    pub user_agent: String,
}

/// Now, at the microsecond precision both databases keep, so values read back compare equal.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::{SubsecRound, Utc};
    Utc::now().trunc_subsecs(6)
}

pub fn seconds(duration: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}
