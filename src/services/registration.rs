//! Registration and email verification, answering alike whether or not the address is taken.

use entity::user;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};
use uuid::Uuid;

use super::{
    AppState, ClientInfo, now,
    otp::{self, Binding},
    sessions::{self, SignedIn},
};
use crate::{
    domain::{EmailAddress, OtpPurpose, Password},
    email::Mail,
    error::{AppError, AppResult},
};

/// Registers `email`. A new or unverified address gets a code bound to this request's password and name
/// (verifying with it sets them); a verified owner gets a notice instead. The caller answers the same in
/// every case, and the password is hashed in every case so the time is the same too.
pub async fn register(
    state: &AppState,
    email: &EmailAddress,
    password: &Password,
    name: Option<String>,
) -> AppResult<()> {
    let password_hash = state.passwords.hash(password).await?;
    let existing = find_by_email(state, email).await?;
    let user = match existing {
        Some(user) => user,
        None => {
            let created_at = now();
            user::Entity::insert(user::ActiveModel {
                id: Set(Uuid::now_v7()),
                email: Set(email.as_str().to_owned()),
                password_hash: Set(password_hash.clone()),
                name: Set(name.clone()),
                email_verified_at: Set(None),
                mfa_email_otp: Set(false),
                created_at: Set(created_at),
                updated_at: Set(created_at),
            })
            .on_conflict_do_nothing_on([user::Column::Email])
            .exec(&state.database)
            .await?;
            // A parallel registration of the same address may have won: either way the row is there now.
            find_by_email(state, email)
                .await?
                .ok_or_else(|| AppError::Internal("registered user vanished".to_owned()))?
        }
    };
    if user.email_verified_at.is_some() {
        state.mailer.send(email.as_str(), Mail::AlreadyRegistered);
        return Ok(());
    }
    let transaction = state.database.begin().await?;
    let code = otp::issue(
        state,
        &transaction,
        user.id,
        OtpPurpose::VerifyEmail,
        None,
        Binding {
            password_hash: Some(password_hash),
            name,
        },
    )
    .await?;
    transaction.commit().await?;
    state.mailer.send(
        email.as_str(),
        Mail::VerifyEmail {
            code,
            minutes: state.settings.otp_ttl.as_secs() / 60,
        },
    );
    Ok(())
}

/// Confirms the address with its code, applies the password and name bound to that code, and signs the
/// device in.
pub async fn verify_email(
    state: &AppState,
    email: &EmailAddress,
    code: &str,
    client: &ClientInfo,
) -> AppResult<SignedIn> {
    let user = find_by_email(state, email)
        .await?
        .ok_or(AppError::OtpInvalid)?;
    let used = otp::consume(state, user.id, OtpPurpose::VerifyEmail, None, code).await?;
    let at = now();
    let mut active: user::ActiveModel = user.clone().into();
    if user.email_verified_at.is_none() {
        active.email_verified_at = Set(Some(at));
    }
    if let Some(password_hash) = used.password_hash {
        active.password_hash = Set(password_hash);
        active.name = Set(used.name);
    }
    active.updated_at = Set(at);
    let user = sea_orm::ActiveModelTrait::update(active, &state.database).await?;
    sessions::sign_in(state, &user, client).await
}

pub async fn find_by_email(
    state: &AppState,
    email: &EmailAddress,
) -> AppResult<Option<user::Model>> {
    Ok(user::Entity::find()
        .filter(user::Column::Email.eq(email.as_str()))
        .one(&state.database)
        .await?)
}
