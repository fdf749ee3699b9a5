//! Step-up: sensitive changes need a recent authentication. A session's last authentication is its sign-in or
//! its latest `reauthenticate` (`sessions.authenticated_at`, the tokens' `auth_time`); it is recent for
//! `REAUTHENTICATION_MAX_AGE`. Changes that take the password in the same request (password change, account
//! deletion, the mailed second factor) are checked by that password instead.

use chrono::{DateTime, Utc};
use entity::session;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
use uuid::Uuid;

use super::{AppState, factors, login, now, seconds, sessions, users};
use crate::error::{AppError, AppResult};

/// What a user shows to reauthenticate.
pub enum Proof<'a> {
    Password(&'a str),
    /// An authenticator-app code or a recovery code.
    Code(&'a str),
}

/// Checks `proof` and marks the session as authenticated now; answers until when that counts as recent.
pub async fn reauthenticate(state: &AppState, user: Uuid, session: Uuid, proof: Proof<'_>) -> AppResult<DateTime<Utc>> {
    let account = users::current(state, user).await?;
    match proof {
        Proof::Password(password) => login::confirm_password(state, &account, password).await?,
        Proof::Code(code) => factors::verify_any(state, &account, code).await?,
    }
    let at = now();
    let marked = session::Entity::update_many()
        .col_expr(session::Column::AuthenticatedAt, Expr::value(at))
        .filter(session::Column::Id.eq(session))
        .filter(session::Column::UserId.eq(user))
        .filter(session::Column::RevokedAt.is_null())
        .exec(state.store.connection())
        .await?;
    if marked.rows_affected == 0 {
        return Err(AppError::SessionRevoked);
    }
    state.session_lists.rows.invalidate(&user);
    Ok(at)
}

/// `reauthentication_required` unless the session authenticated within `REAUTHENTICATION_MAX_AGE`.
pub async fn require_recent(state: &AppState, session: Uuid) -> AppResult<()> {
    let model = sessions::live(state, session).await?;
    if is_recent(state, &model) {
        Ok(())
    } else {
        Err(AppError::ReauthenticationRequired)
    }
}

fn is_recent(state: &AppState, model: &session::Model) -> bool {
    sessions::authenticated_at(model) + seconds(state.settings.reauthentication_max_age) > now()
}

/// Until when the reauthentication made `at` counts.
pub fn recent_until(state: &AppState, at: DateTime<Utc>) -> DateTime<Utc> {
    at + seconds(state.settings.reauthentication_max_age)
}
