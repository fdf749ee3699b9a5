//! Registration and email verification, answering alike whether or not the address is taken.
//!
//! A password chosen at registration becomes the account's password only through a code presented together
//! with that registration's handle: the code proves the mailbox, the handle proves which client chose the
//! password. A code presented without a matching handle verifies the address and signs in, but sets no
//! password, so a stranger who registered the same unverified address cannot have the owner set theirs.
//!
//! Register gives the same answer and a handle whether or not the address is taken; the work runs after the
//! answer. The submitted password's hash and the name are kept in a `registrations` row found by the hash of the
//! opaque handle that only the registering client receives. Until a registration's password is applied, the
//! account holds a placeholder hash and login treats it as having no password (one dummy verification,
//! `invalid_credentials`), so login cannot tell a free address from a taken one either.

use entity::{otp as otp_entity, registration, user};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, sea_query::Expr};
use uuid::Uuid;

use super::{
    AppState, ClientInfo, now, otp, seconds,
    sessions::{self, SignedIn},
    throttle::{self, ThrottleKey},
};
use crate::{
    domain::{EmailAddress, OtpPurpose},
    email::Mail,
    error::{AppError, AppResult},
    tokens::{hash_token, new_opaque_token},
};

/// How long a registration's handle can set its password: long enough for a code sent again the next day.
pub const REGISTRATION_LIFE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// What a registration asks for, once its password is hashed.
pub struct NewRegistration {
    pub email: EmailAddress,
    pub password_hash: String,
    pub name: Option<String>,
    pub client: ClientInfo,
}

/// The opaque handle the registering client keeps and presents with the code. Made for every registration,
/// whether or not the address is taken, so the answer tells nothing.
pub fn new_handle() -> String {
    new_opaque_token()
}

/// Stores a registration under `handle` and mails a code. A new or unverified address keeps this
/// registration's password and name until a code is presented with the handle; a verified owner gets a notice
/// instead and nothing is kept. Inside the address's mail cooldown nothing is mailed, but the registration is
/// still kept: the code already mailed then works with this handle too.
pub async fn register(state: &AppState, handle: &str, registration: NewRegistration) -> AppResult<()> {
    let NewRegistration {
        email,
        password_hash,
        name,
        client,
    } = registration;
    let user = match find_by_email(state, &email).await? {
        Some(user) => user,
        None => {
            let created_at = now();
            user::Entity::insert(user::ActiveModel {
                id: Set(Uuid::now_v7()),
                email: Set(email.as_str().to_owned()),
                // No usable password until a verification applies one.
                password_hash: Set(state.passwords.placeholder_hash()),
                name: Set(None),
                email_verified_at: Set(None),
                mfa_email_otp: Set(false),
                mfa_totp: Set(false),
                created_at: Set(created_at),
                updated_at: Set(created_at),
            })
            .on_conflict_do_nothing_on([user::Column::Email])
            .exec(state.store.connection())
            .await?;
            // A parallel registration of the same address may have won: either way the row is there now.
            find_by_email(state, &email)
                .await?
                .ok_or_else(|| AppError::Internal("registered user vanished".to_owned()))?
        }
    };
    if user.email_verified_at.is_some() {
        if throttle::take_mail_slot(state, &ThrottleKey::code(OtpPurpose::VerifyEmail, email.as_str())).await? {
            let transaction = state.store.begin_write().await?;
            state
                .mailer
                .queue(&transaction, email.as_str(), &Mail::AlreadyRegistered)
                .await?;
            transaction.commit().await?;
            state.mailer.wake();
        }
        return Ok(());
    }
    let at = now();
    let stored = registration::Model {
        handle_hash: hash_token(handle),
        user_id: user.id,
        password_hash,
        name,
        ip: client.ip.clone(),
        device: sessions::device_label(&client.user_agent),
        created_at: at,
    };
    registration::Entity::delete_many()
        .filter(registration::Column::UserId.eq(user.id))
        .filter(registration::Column::CreatedAt.lt(at - seconds(REGISTRATION_LIFE)))
        .exec(state.store.connection())
        .await?;
    registration::Entity::insert(registration::ActiveModel::from(stored.clone()))
        .exec(state.store.connection())
        .await?;
    if !throttle::take_mail_slot(state, &ThrottleKey::code(OtpPurpose::VerifyEmail, email.as_str())).await? {
        return Ok(());
    }
    let transaction = state.store.begin_write().await?;
    // The address may have been verified since it was read: then no code, and no password waiting.
    let still_unverified = user::Entity::find_by_id(user.id)
        .one(&transaction)
        .await?
        .is_some_and(|user| user.email_verified_at.is_none());
    if !still_unverified {
        end_pending_registrations(&transaction, user.id).await?;
        transaction.commit().await?;
        return Ok(());
    }
    let code = otp::issue(state, &transaction, user.id, OtpPurpose::VerifyEmail, None).await?;
    let minutes = state.settings.otp_ttl.as_secs() / 60;
    state
        .mailer
        .queue(
            &transaction,
            email.as_str(),
            &verification_mail(code, minutes, Some(&stored)),
        )
        .await?;
    transaction.commit().await?;
    state.mailer.wake();
    Ok(())
}

/// The newest live registration of `user`, which a code sent again names.
pub async fn latest_registration(state: &AppState, user: Uuid) -> AppResult<Option<registration::Model>> {
    Ok(registration::Entity::find()
        .filter(registration::Column::UserId.eq(user))
        .filter(registration::Column::CreatedAt.gt(now() - seconds(REGISTRATION_LIFE)))
        .order_by_desc(registration::Column::CreatedAt)
        .one(state.store.connection())
        .await?)
}

/// A verified address, signed in; `password_set` tells whether a registration's password was applied.
pub struct Verified {
    pub signed_in: SignedIn,
    pub password_set: bool,
}

/// Confirms the address with its code and signs the device in. With the handle of a live registration of
/// this address, that registration's password and name are applied; without one the account has no usable
/// password until a reset. Either way every other pending registration and verification code dies. An address
/// verified meanwhile (a reset, another code) keeps what that set: `password_set` is then false.
pub async fn verify_email(
    state: &AppState,
    email: &EmailAddress,
    code: &str,
    handle: Option<&str>,
    client: &ClientInfo,
) -> AppResult<Verified> {
    let user = find_by_email(state, email).await?;
    otp::check(
        state,
        email.as_str(),
        user.as_ref().map(|user| user.id),
        OtpPurpose::VerifyEmail,
        None,
        code,
    )
    .await?;
    let user = user.ok_or(AppError::OtpInvalid)?;
    let chosen = match (&user.email_verified_at, handle) {
        (None, Some(handle)) => {
            registration::Entity::find_by_id(hash_token(handle))
                .filter(registration::Column::UserId.eq(user.id))
                .filter(registration::Column::CreatedAt.gt(now() - seconds(REGISTRATION_LIFE)))
                .one(state.store.connection())
                .await?
        }
        _ => None,
    };
    // Without its registration the code sets no password: the placeholder, which nothing matches, stays or is
    // put back (no hashing here, so a busy hashing queue cannot fail the request after the code is used).
    let (password_hash, name) = match &chosen {
        Some(registration) => (registration.password_hash.clone(), registration.name.clone()),
        None => (state.passwords.placeholder_hash(), None),
    };
    let at = now();
    let transaction = state.store.begin_write().await?;
    // Only while unverified: a reset or another code that verified the address meanwhile is not undone.
    let verified_now = user::Entity::update_many()
        .col_expr(user::Column::EmailVerifiedAt, Expr::value(Some(at)))
        .col_expr(user::Column::PasswordHash, Expr::value(password_hash))
        .col_expr(user::Column::Name, Expr::value(name))
        .col_expr(user::Column::UpdatedAt, Expr::value(at))
        .filter(user::Column::Id.eq(user.id))
        .filter(user::Column::EmailVerifiedAt.is_null())
        .exec(&transaction)
        .await?
        .rows_affected
        == 1;
    end_pending_registrations(&transaction, user.id).await?;
    transaction.commit().await?;
    state.user_cache.invalidate(&user.id);
    let user = user::Entity::find_by_id(user.id)
        .one(state.store.connection())
        .await?
        .ok_or(AppError::OtpInvalid)?;
    // Only an address verified meanwhile can have a second factor by now; a verification code does not get
    // past it.
    if !super::challenges::second_steps(state, &user, &crate::domain::Authentication::code())
        .await?
        .is_empty()
    {
        return Err(AppError::OtpInvalid);
    }
    let signed_in = sessions::sign_in(state, &user, client, &crate::domain::Authentication::code()).await?;
    Ok(Verified {
        signed_in,
        password_set: verified_now && chosen.is_some(),
    })
}

/// Ends what an unverified address still has pending: every registration's password and every
/// verification code. Run when the address is verified and when its password is reset.
pub async fn end_pending_registrations(connection: &impl ConnectionTrait, user: Uuid) -> AppResult<()> {
    registration::Entity::delete_many()
        .filter(registration::Column::UserId.eq(user))
        .exec(connection)
        .await?;
    otp_entity::Entity::delete_many()
        .filter(otp_entity::Column::UserId.eq(user))
        .filter(otp_entity::Column::Purpose.eq(OtpPurpose::VerifyEmail.as_str()))
        .exec(connection)
        .await?;
    Ok(())
}

pub async fn find_by_email(state: &AppState, email: &EmailAddress) -> AppResult<Option<user::Model>> {
    Ok(user::Entity::find()
        .filter(user::Column::Email.eq(email.as_str()))
        .one(state.store.connection())
        .await?)
}

/// The verification mail for a code, naming the registration it confirms when there is one.
pub fn verification_mail(code: String, minutes: u64, registration: Option<&registration::Model>) -> Mail {
    Mail::VerifyEmail {
        code,
        minutes,
        device: registration.map(|registration| registration.device.clone()),
        ip: registration.map(|registration| {
            if registration.ip.is_empty() {
                "an unknown address".to_owned()
            } else {
                registration.ip.clone()
            }
        }),
        at: registration.map(|registration| registration.created_at),
    }
}
