//! The `user` object and the account's own data.
//!
//! User views are served from the node's one-second copy (`AppState::user_cache`, a `Cache` of `crate::cache`),
//! which answers `GET /api/users/me` and the `user` of a refresh answer, and is dropped at once on a local change.
//! Another node's change (a new name, the second factor) shows when the copy ages: within a second, or five while
//! the database is slow to answer; the end of a session or account reaches every node at once over the bus and
//! its tokens are refused before the view is read. A view that only aged is served up to 4 s more to the
//! requests that come while one request reloads it, so a slow database holds up that one request instead of
//! every `me` of the user; a reload that finds the account gone drops the copy.

use chrono::{DateTime, Utc};
use entity::user;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, sea_query::Expr,
};
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
                totp: model.mfa_totp,
            },
            created_at: model.created_at,
        }
    }
}

/// The user's row, locked until `transaction` ends: changes of one account's factors take turns, so two parallel
/// ones cannot both act on what they read before the other wrote. The lock is taken by a write that changes
/// nothing, which locks the row on PostgreSQL, and on SQLite makes the transaction a writer from its first
/// statement (a transaction that reads first fails when another connection writes before its own first write).
pub async fn lock(transaction: &impl sea_orm::ConnectionTrait, user: Uuid) -> AppResult<user::Model> {
    let locked = user::Entity::update_many()
        .col_expr(user::Column::UpdatedAt, Expr::col(user::Column::UpdatedAt))
        .filter(user::Column::Id.eq(user))
        .exec(transaction)
        .await?;
    if locked.rows_affected == 0 {
        return Err(AppError::SessionRevoked);
    }
    user::Entity::find_by_id(user)
        .one(transaction)
        .await?
        .ok_or(AppError::SessionRevoked)
}

/// The user behind a valid access token. A deleted account reads as an ended session.
pub async fn current(state: &AppState, user: Uuid) -> AppResult<user::Model> {
    user::Entity::find_by_id(user)
        .one(state.store.connection())
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
    let updated = active.update(state.store.connection()).await?;
    state.user_cache.invalidate(&user);
    Ok(UserView::from(&updated))
}

/// The caller's `user` view, from the node's one-second copy (`AppState::user_cache`) while it is fresh.
pub async fn view(state: &AppState, user: Uuid) -> AppResult<UserView> {
    let view = state
        .user_cache
        .get_or_load(user, async {
            Ok::<_, AppError>(UserView::from(&current(state, user).await?))
        })
        .await;
    match view {
        Ok(view) => Ok(UserView::clone(&view)),
        Err(AppError::SessionRevoked) => {
            // The account is gone: the aged copy must not be served while its window lasts.
            state.user_cache.invalidate(&user);
            Err(AppError::SessionRevoked)
        }
        Err(error) => Err(error),
    }
}
