//! What a signed-in user does to their own account and sessions: sign out, change the password, delete it.

use entity::user;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, TransactionTrait,
};
use uuid::Uuid;

use super::{
    AppState, login, now,
    refresh::session_of,
    revocation::{self, Scope},
    throttle, users,
};
use crate::{
    domain::{Password, RevocationReason},
    email::Mail,
    error::{AppError, AppResult},
};

/// Ends the session a refresh token belongs to (a cookie logout).
pub async fn logout_with_refresh_token(state: &AppState, token: &str) -> AppResult<()> {
    let owner = session_of(state, token).await?;
    revocation::end_sessions(state, owner.user_id, Scope::One(owner.id), RevocationReason::Logout).await?;
    Ok(())
}

pub async fn logout(state: &AppState, user: Uuid, session: Uuid) -> AppResult<()> {
    revocation::end_sessions(state, user, Scope::One(session), RevocationReason::Logout).await?;
    Ok(())
}

pub async fn logout_all(state: &AppState, user: Uuid, session: Uuid, keep_current: bool) -> AppResult<()> {
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
    let ended = revocation::end_sessions(state, user, Scope::One(target), RevocationReason::Revoked).await?;
    if ended.is_empty() {
        Err(AppError::NotFound)
    } else {
        Ok(())
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
    login::confirm_password(state, &account, current_password).await?;
    let password_hash = state.passwords.hash(new_password).await?;
    let at = now();
    let email = account.email.clone();
    let transaction = state.database.begin().await?;
    let mut active = account.into_active_model();
    active.password_hash = Set(password_hash);
    active.updated_at = Set(at);
    active.update(&transaction).await?;
    let event = revocation::record(
        &state.bus,
        &transaction,
        user,
        Scope::AllExcept(session),
        RevocationReason::PasswordChanged,
        at,
    )
    .await?;
    state.mailer.queue(&transaction, &email, &Mail::PasswordChanged).await?;
    transaction.commit().await?;
    state.mailer.wake();
    state.bus.sessions_revoked(event).await;
    Ok(())
}

/// Deletes the account and its data after ending every session.
pub async fn delete_account(state: &AppState, user: Uuid, password: &str) -> AppResult<()> {
    let account = users::current(state, user).await?;
    login::confirm_password(state, &account, password).await?;
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
    // Nothing of the address stays behind: its counters and its mail.
    entity::address_throttle::Entity::delete_many()
        .filter(entity::address_throttle::Column::Key.is_in(throttle::keys_of(&account.email)))
        .exec(&transaction)
        .await?;
    entity::mail_outbox::Entity::delete_many()
        .filter(entity::mail_outbox::Column::Recipient.eq(account.email.clone()))
        .exec(&transaction)
        .await?;
    transaction.commit().await?;
    state.user_views.forget(&user);
    state.bus.sessions_revoked(event).await;
    Ok(())
}

/// Turns the email second factor on or off; needs the password.
pub async fn set_email_second_factor(
    state: &AppState,
    user: Uuid,
    enabled: bool,
    password: &str,
) -> AppResult<users::UserView> {
    let account = users::current(state, user).await?;
    login::confirm_password(state, &account, password).await?;
    let mut active = account.into_active_model();
    active.mfa_email_otp = Set(enabled);
    active.updated_at = Set(now());
    let updated = active.update(&state.database).await?;
    state.user_views.forget(&user);
    Ok(users::UserView::from(&updated))
}
