//! The `user` object and the account's own data.

use chrono::{DateTime, Utc};
use entity::user;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait, IntoActiveModel};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::AppState;
use crate::error::{AppError, AppResult};

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MfaView {
    pub email_otp: bool,
    pub totp: bool,
}

/// The `user` of the contract.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UserView {
    pub id: Uuid,
    pub email: String,
    pub name: Option<String>,
    pub email_verified: bool,
    pub mfa: MfaView,
    pub created_at: DateTime<Utc>,
}

impl From<&user::Model> for UserView {
    fn from(model: &user::Model) -> Self {
        Self {
            id: model.id,
            email: model.email.clone(),
            name: model.name.clone(),
            email_verified: model.email_verified_at.is_some(),
            mfa: MfaView {
                email_otp: model.mfa_email_otp,
                totp: false,
            },
            created_at: model.created_at,
        }
    }
}

/// The user behind a valid access token. A deleted account reads as an ended session.
pub async fn current(state: &AppState, user: Uuid) -> AppResult<user::Model> {
    user::Entity::find_by_id(user)
        .one(&state.database)
        .await?
        .ok_or(AppError::SessionRevoked)
}

/// A display name: trimmed, at most 100 characters, no control characters; empty means none.
pub fn parse_name(raw: Option<&str>) -> Result<Option<String>, &'static str> {
    let Some(raw) = raw else { return Ok(None) };
    let name = raw.trim();
    if name.is_empty() {
        return Ok(None);
    }
    if name.chars().count() > 100 {
        return Err("must be at most 100 characters");
    }
    if name.chars().any(char::is_control) {
        return Err("must not contain control characters");
    }
    Ok(Some(name.to_owned()))
}

pub async fn update_name(state: &AppState, user: Uuid, name: Option<String>) -> AppResult<UserView> {
    let model = current(state, user).await?;
    let mut active = model.into_active_model();
    active.name = Set(name);
    active.updated_at = Set(super::now());
    let updated = active.update(&state.database).await?;
    state.user_views.forget(&user);
    Ok(UserView::from(&updated))
}

/// A short-lived per-node copy of `user` views for `GET /api/users/me`, the hottest read: it spares the
/// database a query per call. Local changes drop the entry at once; a change made on another node shows
/// here within `VIEW_LIFE`.
pub struct ViewCache {
    entries: std::sync::RwLock<std::collections::HashMap<Uuid, (UserView, std::time::Instant)>>,
}

const VIEW_LIFE: std::time::Duration = std::time::Duration::from_secs(1);
const VIEW_CACHE_LIMIT: usize = 100_000;

impl ViewCache {
    pub fn new() -> Self {
        Self {
            entries: std::sync::RwLock::new(std::collections::HashMap::new()),
        }
    }

    fn fresh(&self, user: &Uuid) -> Option<UserView> {
        let entries = self.entries.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        entries
            .get(user)
            .filter(|(_, stored)| stored.elapsed() < VIEW_LIFE)
            .map(|(view, _)| view.clone())
    }

    fn store(&self, view: &UserView) {
        let mut entries = self.entries.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if entries.len() >= VIEW_CACHE_LIMIT {
            entries.retain(|_, (_, stored)| stored.elapsed() < VIEW_LIFE);
        }
        entries.insert(view.id, (view.clone(), std::time::Instant::now()));
    }

    pub fn forget(&self, user: &Uuid) {
        self.entries
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(user);
    }
}

impl Default for ViewCache {
    fn default() -> Self {
        Self::new()
    }
}

/// The caller's `user` view, from the cache when it is fresh.
pub async fn view(state: &AppState, user: Uuid) -> AppResult<UserView> {
    if let Some(view) = state.user_views.fresh(&user) {
        return Ok(view);
    }
    let view = UserView::from(&current(state, user).await?);
    state.user_views.store(&view);
    Ok(view)
}
