//! Registration and email verification, answering alike whether or not the address is taken.

use entity::{otp as otp_entity, user};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, TransactionTrait};
use uuid::Uuid;

use super::{
    AppState, ClientInfo, codes, now,
    otp::{self, Binding},
    sessions::{self, SignedIn},
    throttle::{self, ThrottleKey},
};
use crate::{
    domain::{EmailAddress, OtpPurpose, Password},
    email::Mail,
    error::{AppError, AppResult},
};

/// Registers `email`. A new or unverified address gets a code bound to this request's password and name
/// (verifying with it sets them); a verified owner gets a notice instead. Inside the address's mail
/// cooldown nothing changes and nothing is sent. The password is hashed in every case, so every answer
/// takes the same time.
pub async fn register(
    state: &AppState,
    client: &ClientInfo,
    email: &EmailAddress,
    password: &Password,
    name: Option<String>,
) -> AppResult<()> {
    let password_hash = state.passwords.hash(password).await?;
    let user = match find_by_email(state, email).await? {
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
    if !throttle::take_mail_slot(state, &ThrottleKey::code(OtpPurpose::VerifyEmail, email.as_str())).await? {
        return Ok(());
    }
    let transaction = state.database.begin().await?;
    if user.email_verified_at.is_some() {
        state
            .mailer
            .queue(&transaction, email.as_str(), &Mail::AlreadyRegistered)
            .await?;
    } else {
        let binding = Binding {
            password_hash: Some(password_hash),
            name,
        };
        let code = otp::issue(state, &transaction, user.id, OtpPurpose::VerifyEmail, None, binding).await?;
        let minutes = state.settings.otp_ttl.as_secs() / 60;
        state
            .mailer
            .queue(&transaction, email.as_str(), &verification_mail(code, minutes, client))
            .await?;
    }
    transaction.commit().await?;
    state.mailer.wake();
    Ok(())
}

/// The binding of the newest registration of an unverified user, for a code sent again on request.
pub async fn pending_binding(state: &AppState, user: Uuid) -> AppResult<Binding> {
    let pending = otp_entity::Entity::find()
        .filter(otp_entity::Column::UserId.eq(user))
        .filter(otp_entity::Column::Purpose.eq(OtpPurpose::VerifyEmail.as_str()))
        .order_by_desc(otp_entity::Column::CreatedAt)
        .one(&state.database)
        .await?;
    Ok(pending
        .map(|row| Binding {
            password_hash: row.password_hash,
            name: row.name,
        })
        .unwrap_or_default())
}

/// Confirms the address with its code, applies the password and name bound to that code, and signs the
/// device in.
pub async fn verify_email(
    state: &AppState,
    email: &EmailAddress,
    code: &str,
    client: &ClientInfo,
) -> AppResult<SignedIn> {
    let user = find_by_email(state, email).await?;
    let used = codes::check(
        state,
        email.as_str(),
        user.as_ref().map(|user| user.id),
        OtpPurpose::VerifyEmail,
        None,
        code,
    )
    .await?;
    let user = user.ok_or(AppError::OtpInvalid)?;
    let at = now();
    let mut active: user::ActiveModel = user.clone().into();
    if user.email_verified_at.is_none() {
        active.email_verified_at = Set(Some(at));
    }
    if let Some(password_hash) = used.password_hash {
        active.password_hash = Set(password_hash);
        active.name = Set(used.name);
    } else if user.email_verified_at.is_none() {
        // The code carries no password (its registration's code is gone), so the one on the row was set by
        // whoever registered first, maybe not the owner now proving the address: it must not survive. The
        // owner sets a password with a reset.
        active.password_hash = Set(state.passwords.unusable_hash().await?);
    }
    active.updated_at = Set(at);
    let user = sea_orm::ActiveModelTrait::update(active, &state.database).await?;
    state.user_views.forget(&user.id);
    sessions::sign_in(state, &user, client).await
}

pub async fn find_by_email(state: &AppState, email: &EmailAddress) -> AppResult<Option<user::Model>> {
    Ok(user::Entity::find()
        .filter(user::Column::Email.eq(email.as_str()))
        .one(&state.database)
        .await?)
}

/// The verification mail for a code asked for by `client`.
pub fn verification_mail(code: String, minutes: u64, client: &ClientInfo) -> Mail {
    let ip = if client.ip.is_empty() {
        "an unknown address".to_owned()
    } else {
        client.ip.clone()
    };
    Mail::VerifyEmail {
        code,
        minutes,
        device: sessions::device_label(&client.user_agent),
        ip,
        at: now(),
    }
}
