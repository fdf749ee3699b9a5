//! The emailed-code flows: asking for a code, passwordless sign-in and password reset. Every check counts
//! failures per address and purpose across codes.
//!
//! - Failures count per address and purpose in `address_throttles` (key `otp:<purpose>:<email>`), across codes:
//!   a resend does not reset them, a success does. After `3 x OTP_MAX_ATTEMPTS` failures in a row the address is
//!   locked for that purpose. An address without an account fails like a wrong code and counts alike.
//! - An address sent no code (no account, not eligible, or its code already used) still takes the mail slot at
//!   its request, and its checks answer as that slot's code would: `otp_expired` after `OTP_TTL`, else a try
//!   counted in `code_attempts` (reset with each slot) by a conditional UPDATE, `otp_attempts_exceeded` past
//!   `OTP_MAX_ATTEMPTS`. So no sequence of answers tells which addresses have accounts.
//! - Passwordless sign-in of an account with an authenticator app or a passkey answers a challenge for it (see
//!   `challenges`): the mailed code is one factor, like a password.

use sea_orm::{ActiveValue::Set, IntoActiveModel};

use super::{
    AppState, ClientInfo,
    challenges::{self, LoginOutcome},
    now, otp,
    registration::{end_pending_registrations, find_by_email, latest_registration, verification_mail},
    revocation::{Change, Scope},
    sessions,
    throttle::{self, ThrottleKey},
};
use crate::{
    domain::{Authentication, EmailAddress, OtpPurpose, Password, RevocationReason},
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

/// Passwordless sign-in with a `login` code. An account with an authenticator app or a passkey answers a
/// challenge for it instead: the mailed code alone is one factor.
pub async fn login_with_code(
    state: &AppState,
    email: &EmailAddress,
    code: &str,
    client: &ClientInfo,
) -> AppResult<LoginOutcome> {
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
    let second_steps = challenges::second_steps(state, &user, &Authentication::code()).await?;
    if !second_steps.is_empty() {
        return Ok(LoginOutcome::SecondFactor(
            challenges::start(state, &user, Authentication::code(), second_steps).await?,
        ));
    }
    Ok(LoginOutcome::SignedIn(
        sessions::sign_in(state, &user, client, &Authentication::code()).await?,
    ))
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
    challenges::end_pending(change.connection(), user_id).await?;
    change
        .end_sessions(user_id, Scope::All, RevocationReason::PasswordReset, at)
        .await?;
    change.queue_mail(email.as_str(), &Mail::PasswordChanged).await?;
    change.user_changed(user_id);
    change.commit().await?;
    throttle::clear_failures(state, &ThrottleKey::login(email.as_str())).await?;
    Ok(())
}
