//! Password sign-in: the same answer in the same time for an unknown email and a wrong password, back-off
//! per address, and the email second factor.

use entity::user;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, IntoActiveModel};

use super::{
    AppState, ClientInfo,
    codes::{self, Challenge},
    now,
    registration::find_by_email,
    sessions::{self, SignedIn},
    throttle::{self, ThrottleKey},
};
use crate::{
    domain::{EmailAddress, Password},
    error::{AppError, AppResult},
};

pub enum LoginOutcome {
    SignedIn(SignedIn),
    SecondFactor(Challenge),
}

/// Checks the password of the account behind `email`. Every path that fails spends one argon2
/// verification, so an unknown email and a wrong password take the same time.
async fn check_password(state: &AppState, email: &str, password: &str) -> AppResult<user::Model> {
    let (Ok(email), Some(password)) = (EmailAddress::parse(email), Password::for_login(password)) else {
        state.passwords.verify_dummy().await?;
        return Err(AppError::InvalidCredentials);
    };
    let Some(user) = find_by_email(state, &email).await? else {
        state.passwords.verify_dummy().await?;
        return Err(AppError::InvalidCredentials);
    };
    let verification = state.passwords.verify(&user.password_hash, &password).await?;
    if !verification.matches {
        return Err(AppError::InvalidCredentials);
    }
    if verification.needs_rehash {
        return rehash(state, user, &password).await;
    }
    Ok(user)
}

pub async fn login(state: &AppState, email: &str, password: &str, client: &ClientInfo) -> AppResult<LoginOutcome> {
    let key = ThrottleKey::login(email);
    let outcome = attempt(state, &key, email, password, client).await;
    let label = match &outcome {
        Ok(LoginOutcome::SignedIn(_)) => "success",
        Ok(LoginOutcome::SecondFactor(_)) => "second_factor",
        Err(error) => error.code(),
    };
    state.metrics.logins.with_label_values(&[label]).inc();
    outcome
}

async fn attempt(
    state: &AppState,
    key: &ThrottleKey,
    email: &str,
    password: &str,
    client: &ClientInfo,
) -> AppResult<LoginOutcome> {
    // A locked address is answered before any work: such attempts neither count nor stretch the lock.
    let standing = throttle::ensure_unlocked(state, key).await?;
    let user = match check_password(state, email, password).await {
        Ok(user) => user,
        Err(AppError::InvalidCredentials) => {
            throttle::record_failure(state, key, state.settings.login_lockout_threshold).await?;
            return Err(AppError::InvalidCredentials);
        }
        Err(other) => return Err(other),
    };
    standing.record_success(state, key).await?;
    if user.email_verified_at.is_none() {
        return Err(AppError::EmailNotVerified);
    }
    if user.mfa_email_otp {
        return Ok(LoginOutcome::SecondFactor(codes::start_challenge(state, &user).await?));
    }
    Ok(LoginOutcome::SignedIn(sessions::sign_in(state, &user, client).await?))
}

/// Checks the current password of a signed-in user; a wrong one counts as a failed login of the account.
pub async fn confirm_password(state: &AppState, account: &user::Model, password: &str) -> AppResult<()> {
    let key = ThrottleKey::login(&account.email);
    let standing = throttle::ensure_unlocked(state, &key).await?;
    let matches = match Password::for_login(password) {
        Some(password) => state.passwords.verify(&account.password_hash, &password).await?.matches,
        None => {
            state.passwords.verify_dummy().await?;
            false
        }
    };
    if matches {
        standing.record_success(state, &key).await
    } else {
        throttle::record_failure(state, &key, state.settings.login_lockout_threshold).await?;
        Err(AppError::InvalidPassword)
    }
}

/// Replaces a hash made with older parameters, now that the password is known to be right.
async fn rehash(state: &AppState, user: user::Model, password: &Password) -> AppResult<user::Model> {
    let password_hash = state.passwords.hash(password).await?;
    let mut active = user.into_active_model();
    active.password_hash = Set(password_hash);
    active.updated_at = Set(now());
    Ok(active.update(&state.database).await?)
}
