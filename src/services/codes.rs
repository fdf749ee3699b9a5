//! The emailed-code flows: asking for a code, passwordless sign-in, password reset, and the second factor
//! of a password sign-in. Every check counts failures per address and purpose across codes.
//!
//! - Failures count per address and purpose in `address_throttles` (key `otp:<purpose>:<email>`), across codes:
//!   a resend does not reset them, a success does. After `3 x OTP_MAX_ATTEMPTS` failures in a row the address is
//!   locked for that purpose. An address without an account fails like a wrong code and counts alike.
//! - An address sent no code (no account, not eligible, or its code already used) still takes the mail slot at
//!   its request, and its checks answer as that slot's code would: `otp_expired` after `OTP_TTL`, else a try
//!   counted in `code_attempts` (reset with each slot) by a conditional UPDATE, `otp_attempts_exceeded` past
//!   `OTP_MAX_ATTEMPTS`. So no sequence of answers tells which addresses have accounts.
//! - The second factor: a password sign-in of an account with `mfa_email_otp` answers a challenge id instead of
//!   tokens and mails a `login_challenge` code bound to that id; `POST /api/auth/login/verify` checks it like any
//!   code (an expired challenge answers `challenge_invalid`). Codes for login challenges take no mail slot,
//!   because they need the password.

use entity::{otp as otp_entity, user};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use super::{
    AppState, ClientInfo, now, otp,
    registration::{end_pending_registrations, find_by_email, latest_registration, verification_mail},
    revocation::{Change, Scope},
    sessions::{self, SignedIn},
    throttle::{self, ThrottleKey},
};
use crate::{
    domain::{EmailAddress, OtpPurpose, Password, RevocationReason},
    email::Mail,
    error::{AppError, AppResult},
};

/// Mails a code for `purpose` if the address is eligible and outside its cooldown and back-off. The
/// caller answers 202 whatever happens here, and runs this off the request path.
pub async fn request(state: &AppState, email: &EmailAddress, purpose: OtpPurpose) -> AppResult<()> {
    let key = ThrottleKey::code(purpose, email.as_str());
    let account = find_by_email(state, email).await?;
    let eligible = account.as_ref().is_some_and(|user| {
        let verified = user.email_verified_at.is_some();
        match purpose {
            OtpPurpose::VerifyEmail => !verified,
            OtpPurpose::Login => verified,
            OtpPurpose::PasswordReset => true,
            OtpPurpose::LoginChallenge => false,
        }
    });
    let (Some(user), true) = (account, eligible) else {
        // No mail, but the slot is taken as for a code: checks then answer as if one had been sent.
        if purpose != OtpPurpose::LoginChallenge {
            throttle::take_mail_slot(state, &key).await?;
        }
        return Ok(());
    };
    if !throttle::take_mail_slot(state, &key).await? {
        return Ok(());
    }
    let registration = if purpose == OtpPurpose::VerifyEmail {
        latest_registration(state, user.id).await?
    } else {
        None
    };
    let transaction = state.store.begin_write().await?;
    let code = otp::issue(state, &transaction, user.id, purpose, None).await?;
    let minutes = state.settings.otp_ttl.as_secs() / 60;
    let mail = match purpose {
        OtpPurpose::VerifyEmail => verification_mail(code, minutes, registration.as_ref()),
        OtpPurpose::Login => Mail::LoginCode { code, minutes },
        OtpPurpose::LoginChallenge => Mail::ChallengeCode { code, minutes },
        OtpPurpose::PasswordReset => Mail::PasswordResetCode { code, minutes },
    };
    state.mailer.queue(&transaction, email.as_str(), &mail).await?;
    transaction.commit().await?;
    state.mailer.wake();
    Ok(())
}

/// Passwordless sign-in with a `login` code.
pub async fn login_with_code(
    state: &AppState,
    email: &EmailAddress,
    code: &str,
    client: &ClientInfo,
) -> AppResult<SignedIn> {
    let user = find_by_email(state, email).await?;
    otp::check(
        state,
        email.as_str(),
        user.as_ref().map(|user| user.id),
        OtpPurpose::Login,
        None,
        code,
    )
    .await?;
    let user = user.ok_or(AppError::OtpInvalid)?;
    sessions::sign_in(state, &user, client).await
}

/// Sets a new password with a `password_reset` code and ends every session of the user. The address is
/// proven by the code, so it counts as verified, and its login back-off is lifted.
pub async fn reset_password(
    state: &AppState,
    email: &EmailAddress,
    code: &str,
    new_password: &Password,
) -> AppResult<()> {
    let user = find_by_email(state, email).await?;
    otp::check(
        state,
        email.as_str(),
        user.as_ref().map(|user| user.id),
        OtpPurpose::PasswordReset,
        None,
        code,
    )
    .await?;
    let user = user.ok_or(AppError::OtpInvalid)?;
    let password_hash = state.passwords.hash(new_password).await?;
    let at = now();
    let mut change = Change::begin(state).await?;
    let user_id = user.id;
    let mut active = user.into_active_model();
    active.password_hash = Set(password_hash);
    if active.email_verified_at.as_ref().is_none() {
        active.email_verified_at = Set(Some(at));
    }
    active.updated_at = Set(at);
    sea_orm::ActiveModelTrait::update(active, change.connection()).await?;
    // The address is proven now: a registration's password or a verification code can no longer apply.
    end_pending_registrations(change.connection(), user_id).await?;
    change
        .end_sessions(user_id, Scope::All, RevocationReason::PasswordReset, at)
        .await?;
    change.queue_mail(email.as_str(), &Mail::PasswordChanged).await?;
    change.user_changed(user_id);
    change.commit().await?;
    throttle::clear_failures(state, &ThrottleKey::login(email.as_str())).await?;
    Ok(())
}

/// A password sign-in waiting for its second factor.
#[derive(Debug, Clone)]
pub struct Challenge {
    pub id: Uuid,
    pub methods: Vec<&'static str>,
    pub expires_in: u64,
}

/// Code mails an address may get in an hour from challenged sign-ins: each needs the password, but whoever has
/// it could otherwise mail-bomb the owner.
const CHALLENGE_MAILS_PER_HOUR: u64 = 10;

/// Starts the second step of a password sign-in and mails its code: no cooldown, so a second sign-in a moment
/// after the first gets its own code, but at most `CHALLENGE_MAILS_PER_HOUR` such mails an hour. Past that a
/// sign-in is answered the newest live challenge, whose code was mailed already, and nothing is sent; with no
/// live challenge left, `rate_limited` until the hour's oldest mail ages out.
pub async fn start_challenge(state: &AppState, user: &user::Model) -> AppResult<Challenge> {
    let at = now();
    let window = chrono::Duration::hours(1);
    let recent_mails = entity::mail_outbox::Entity::find()
        .filter(entity::mail_outbox::Column::Recipient.eq(user.email.clone()))
        .filter(entity::mail_outbox::Column::Kind.eq(Mail::CHALLENGE_CODE_KIND))
        .filter(entity::mail_outbox::Column::CreatedAt.gt(at - window));
    if recent_mails.clone().count(state.store.connection()).await? >= CHALLENGE_MAILS_PER_HOUR {
        let live = otp_entity::Entity::find()
            .filter(otp_entity::Column::UserId.eq(user.id))
            .filter(otp_entity::Column::Purpose.eq(OtpPurpose::LoginChallenge.as_str()))
            .filter(otp_entity::Column::ConsumedAt.is_null())
            .filter(otp_entity::Column::ExpiresAt.gt(at))
            .order_by_desc(otp_entity::Column::CreatedAt)
            .one(state.store.connection())
            .await?;
        if let Some(live) = live
            && let Some(id) = live.challenge_id
        {
            return Ok(Challenge {
                id,
                methods: vec!["email_otp"],
                expires_in: u64::try_from((live.expires_at - at).num_seconds()).unwrap_or(0),
            });
        }
        let oldest = recent_mails
            .order_by_asc(entity::mail_outbox::Column::CreatedAt)
            .one(state.store.connection())
            .await?
            .map_or(at, |mail| mail.created_at);
        return Err(AppError::RateLimited {
            retry_after_seconds: u64::try_from((oldest + window - at).num_seconds()).unwrap_or(1),
        });
    }
    let id = Uuid::now_v7();
    let transaction = state.store.begin_write().await?;
    let code = otp::issue(state, &transaction, user.id, OtpPurpose::LoginChallenge, Some(id)).await?;
    let minutes = state.settings.otp_ttl.as_secs() / 60;
    state
        .mailer
        .queue(&transaction, &user.email, &Mail::ChallengeCode { code, minutes })
        .await?;
    transaction.commit().await?;
    state.mailer.wake();
    Ok(Challenge {
        id,
        methods: vec!["email_otp"],
        expires_in: state.settings.otp_ttl.as_secs(),
    })
}

/// Completes a challenged sign-in with its email code.
pub async fn finish_challenge(
    state: &AppState,
    challenge: Uuid,
    code: &str,
    client: &ClientInfo,
) -> AppResult<SignedIn> {
    let stored = otp_entity::Entity::find()
        .filter(otp_entity::Column::ChallengeId.eq(challenge))
        .filter(otp_entity::Column::Purpose.eq(OtpPurpose::LoginChallenge.as_str()))
        .one(state.store.connection())
        .await?
        .filter(|row| row.consumed_at.is_none() && row.expires_at > now())
        .ok_or(AppError::ChallengeInvalid)?;
    let user = user::Entity::find_by_id(stored.user_id)
        .one(state.store.connection())
        .await?
        .ok_or(AppError::ChallengeInvalid)?;
    otp::check(
        state,
        &user.email,
        Some(user.id),
        OtpPurpose::LoginChallenge,
        Some(challenge),
        code,
    )
    .await
    .map_err(|error| match error {
        AppError::OtpExpired => AppError::ChallengeInvalid,
        other => other,
    })?;
    sessions::sign_in(state, &user, client).await
}
