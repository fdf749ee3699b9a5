//! What a signed-in user does to their own account and sessions: sign out, change the password, delete it.

use entity::{session, user};
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter,
    sea_query::{Expr, Query},
};
use uuid::Uuid;

use super::{
    AppState, challenges, login, now,
    revocation::{self, Change, Scope},
    throttle, users,
};
use crate::{
    domain::{Password, RevocationReason},
    email::Mail,
    error::{AppError, AppResult},
    realtime::events::{SecurityChange, SecurityChanged},
};

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
    let mut change = Change::begin(state).await?;
    // The check above and the hashes took a while: the write applies only if the password it confirmed is
    // still the stored one and the caller's session still lives, so a reset (or another change) made
    // meanwhile is never overwritten.
    let session_lives = Expr::exists(
        Query::select()
            .expr(Expr::val(1))
            .from(session::Entity)
            .and_where(session::Column::Id.eq(session))
            .and_where(session::Column::RevokedAt.is_null())
            .to_owned(),
    );
    let changed = user::Entity::update_many()
        .col_expr(user::Column::PasswordHash, Expr::value(password_hash))
        .col_expr(user::Column::UpdatedAt, Expr::value(at))
        .filter(user::Column::Id.eq(user))
        .filter(user::Column::PasswordHash.eq(account.password_hash.clone()))
        .filter(session_lives)
        .exec(change.connection())
        .await?;
    if changed.rows_affected == 0 {
        let caller = session::Entity::find_by_id(session).one(change.connection()).await?;
        return Err(if caller.is_some_and(|caller| caller.revoked_at.is_none()) {
            AppError::InvalidPassword
        } else {
            AppError::SessionRevoked
        });
    }
    change
        .end_sessions(user, Scope::AllExcept(session), RevocationReason::PasswordChanged, at)
        .await?;
    challenges::end_pending(change.connection(), user).await?;
    change.queue_mail(&email, &Mail::PasswordChanged).await?;
    change.commit().await
}

/// Deletes the account and its data after ending every session.
pub async fn delete_account(state: &AppState, user: Uuid, password: &str) -> AppResult<()> {
    let account = users::current(state, user).await?;
    login::confirm_password(state, &account, password).await?;
    let mut change = Change::begin(state).await?;
    change
        .end_sessions(user, Scope::All, RevocationReason::Revoked, now())
        .await?;
    user::Entity::delete_by_id(user).exec(change.connection()).await?;
    // No foreign key ties a waiting registration to its account.
    entity::registration::Entity::delete_many()
        .filter(entity::registration::Column::UserId.eq(user))
        .exec(change.connection())
        .await?;
    // Nothing of the address stays behind: its counters and its mail.
    entity::address_throttle::Entity::delete_many()
        .filter(entity::address_throttle::Column::Key.is_in(throttle::keys_of(&account.email)))
        .exec(change.connection())
        .await?;
    entity::mail_outbox::Entity::delete_many()
        .filter(entity::mail_outbox::Column::Recipient.eq(account.email.clone()))
        .exec(change.connection())
        .await?;
    change.user_changed(user);
    change.commit().await
}

/// Turns the email second factor on or off; needs the password. The owner's other devices are told.
pub async fn set_email_second_factor(
    state: &AppState,
    user: Uuid,
    session: Uuid,
    enabled: bool,
    password: &str,
) -> AppResult<users::UserView> {
    let account = users::current(state, user).await?;
    login::confirm_password(state, &account, password).await?;
    let mut change = Change::begin(state).await?;
    let mut active = account.into_active_model();
    active.mfa_email_otp = Set(enabled);
    active.updated_at = Set(now());
    let updated = active.update(change.connection()).await?;
    change
        .security_changed(SecurityChanged {
            user,
            session,
            change: if enabled {
                SecurityChange::EmailOtpEnabled
            } else {
                SecurityChange::EmailOtpDisabled
            },
        })
        .await?;
    change.commit().await?;
    Ok(users::UserView::from(&updated))
}
