//! What a signed-in user does to their own account and sessions: sign out, change the password, delete it.

use entity::user;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait, IntoActiveModel, TransactionTrait};
use uuid::Uuid;

use super::{
    AppState, now,
    refresh::session_of,
    revocation::{self, Scope},
    users,
};
use crate::{
    domain::{Password, RevocationReason},
    email::Mail,
    error::{AppError, AppResult},
};

/// Ends the session a refresh token belongs to (a cookie logout).
pub async fn logout_with_refresh_token(state: &AppState, token: &str) -> AppResult<()> {
    let (_, owner) = session_of(state, token).await?;
    revocation::end_sessions(
        state,
        owner.user_id,
        Scope::One(owner.id),
        RevocationReason::Logout,
    )
    .await?;
    Ok(())
}

pub async fn logout(state: &AppState, user: Uuid, session: Uuid) -> AppResult<()> {
    revocation::end_sessions(state, user, Scope::One(session), RevocationReason::Logout).await?;
    Ok(())
}

pub async fn logout_all(
    state: &AppState,
    user: Uuid,
    session: Uuid,
    keep_current: bool,
) -> AppResult<()> {
    let scope = if keep_current {
        Scope::AllExcept(session)
    } else {
        Scope::All
    };
    revocation::end_sessions(state, user, scope, RevocationReason::LogoutAll).await?;
    Ok(())
}

/// Ends one of the caller's sessions; anyone else's id is `not_found`.
pub async fn revoke_session(state: &AppState, user: Uuid, target: Uuid) -> AppResult<()> {
    let ended =
        revocation::end_sessions(state, user, Scope::One(target), RevocationReason::Revoked)
            .await?;
    if ended.is_empty() {
        Err(AppError::NotFound)
    } else {
        Ok(())
    }
}

/// Checks the current password of a signed-in user.
async fn confirm_password(
    state: &AppState,
    account: &user::Model,
    password: &str,
) -> AppResult<()> {
    let Some(password) = Password::for_login(password) else {
        state.passwords.verify_dummy().await?;
        return Err(AppError::InvalidPassword);
    };
    if state
        .passwords
        .verify(&account.password_hash, &password)
        .await?
        .matches
    {
        Ok(())
    } else {
        Err(AppError::InvalidPassword)
    }
}

/// Sets a new password and ends every other session of the user.
pub async fn change_password(
    state: &AppState,
    user: Uuid,
    session: Uuid,
    current_password: &str,
    new_password: &Password,
) -> AppResult<()> {
    let account = users::current(state, user).await?;
    confirm_password(state, &account, current_password).await?;
    let password_hash = state.passwords.hash(new_password).await?;
    let email = account.email.clone();
    let mut active = account.into_active_model();
    active.password_hash = Set(password_hash);
    active.updated_at = Set(now());
    active.update(&state.database).await?;
    revocation::end_sessions(
        state,
        user,
        Scope::AllExcept(session),
        RevocationReason::PasswordChanged,
    )
    .await?;
    state.mailer.send(&email, Mail::PasswordChanged);
    Ok(())
}

/// Deletes the account and its data after ending every session.
pub async fn delete_account(state: &AppState, user: Uuid, password: &str) -> AppResult<()> {
    let account = users::current(state, user).await?;
    confirm_password(state, &account, password).await?;
    let transaction = state.database.begin().await?;
    let event = revocation::record(
        &state.bus,
        &transaction,
        user,
        Scope::All,
        RevocationReason::Revoked,
        now(),
    )
    .await?;
    user::Entity::delete_by_id(user).exec(&transaction).await?;
    transaction.commit().await?;
    state.bus.sessions_revoked(event).await;
    Ok(())
}
