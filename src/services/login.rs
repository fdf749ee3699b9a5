//! Password sign-in, with the same answer in the same time for an unknown email and a wrong password.

use entity::user;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, IntoActiveModel};

use super::{
    AppState, ClientInfo, now,
    registration::find_by_email,
    sessions::{self, SignedIn},
};
use crate::{
    domain::{EmailAddress, Password},
    error::{AppError, AppResult},
};

/// Checks the password of the account behind `email`. Every path that fails spends one argon2
/// verification, so an unknown email and a wrong password take the same time.
pub async fn check_password(
    state: &AppState,
    email: &str,
    password: &str,
) -> AppResult<user::Model> {
    let (Ok(email), Some(password)) = (EmailAddress::parse(email), Password::for_login(password))
    else {
        state.passwords.verify_dummy().await?;
        return Err(AppError::InvalidCredentials);
    };
    let Some(user) = find_by_email(state, &email).await? else {
        state.passwords.verify_dummy().await?;
        return Err(AppError::InvalidCredentials);
    };
    let verification = state
        .passwords
        .verify(&user.password_hash, &password)
        .await?;
    if !verification.matches {
        return Err(AppError::InvalidCredentials);
    }
    if verification.needs_rehash {
        return rehash(state, user, &password).await;
    }
    Ok(user)
}

pub async fn login(
    state: &AppState,
    email: &str,
    password: &str,
    client: &ClientInfo,
) -> AppResult<SignedIn> {
    let user = check_password(state, email, password).await?;
    if user.email_verified_at.is_none() {
        return Err(AppError::EmailNotVerified);
    }
    sessions::sign_in(state, &user, client).await
}

/// Replaces a hash made with older parameters, now that the password is known to be right.
async fn rehash(
    state: &AppState,
    user: user::Model,
    password: &Password,
) -> AppResult<user::Model> {
    let password_hash = state.passwords.hash(password).await?;
    let mut active = user.into_active_model();
    active.password_hash = Set(password_hash);
    active.updated_at = Set(now());
    Ok(active.update(&state.database).await?)
}
