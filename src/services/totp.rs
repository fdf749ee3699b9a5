//! Authenticator apps (RFC 6238): SHA-1, 6 digits, 30-second steps, one step of drift either way, which is
//! what every common app reads from an `otpauth://` URI.
//!
//! - Enrolment: `start_enrolment` makes a 160-bit secret, seals it (`AppState::factor_sealer`, the user id as
//!   associated data, so a sealed secret copied to another row does not open) and answers it once with its URI
//!   and QR code. The app is on only after `confirm` checks one code; a pending secret lives `OTP_TTL`.
//! - A code is accepted once: its step must be newer than the factor's `last_used_step`, and the request that
//!   moves `last_used_step` with a conditional UPDATE is the one that passes. So a replay inside the code's
//!   window, or two parallel submissions of one code, pass once.
//! - Wrong codes count under the account's `mfa:` throttle key, with the lock schedule of mailed codes
//!   (`3 x OTP_MAX_ATTEMPTS` in a row), wherever they are typed: sign-in, reauthentication, turning the app off.

use base64::{Engine, engine::general_purpose::STANDARD};
use entity::{totp_factor, user};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, EntityTrait, QueryFilter,
    sea_query::{Expr, ExprTrait},
};
use totp_rs::{Algorithm, TOTP};
use uuid::Uuid;

use super::{
    AppState, now,
    otp::constant_time_equal,
    recovery_codes,
    revocation::Change,
    seconds,
    throttle::{self, ThrottleKey},
    users,
};
use crate::{
    email::Mail,
    error::{AppError, AppResult},
    realtime::events::{SecurityChange, SecurityChanged},
};

const STEP_SECONDS: u64 = 30;
const DIGITS: usize = 6;
/// Steps of drift accepted either way.
const DRIFT_STEPS: i64 = 1;
/// RFC 4226 recommends 160 bits.
const SECRET_BYTES: usize = 20;

/// What a user needs to add the account to an authenticator app; shown once.
pub struct Enrolment {
    /// Base32, no padding: for typing in by hand.
    pub secret: String,
    pub otpauth_uri: String,
    /// `data:image/svg+xml;base64,...`
    pub qr_code: String,
}

fn authenticator(state: &AppState, secret: Vec<u8>, account: &str) -> AppResult<TOTP> {
    TOTP::new(
        Algorithm::SHA1,
        DIGITS,
        // Drift is checked step by step below, to learn which step matched; the crate's own skew is unused.
        0,
        STEP_SECONDS,
        secret,
        Some(state.settings.service_name.clone()),
        account.to_owned(),
    )
    .map_err(|error| AppError::Internal(format!("authenticator parameters refused: {error}")))
}

/// The code of `step` (a 30-second step number since the Unix epoch).
fn code_at(totp: &TOTP, step: i64) -> String {
    totp.generate(u64::try_from(step).unwrap_or(0).saturating_mul(STEP_SECONDS))
}

fn current_step() -> i64 {
    now().timestamp().div_euclid(STEP_SECONDS as i64)
}

fn open_secret(state: &AppState, factor: &totp_factor::Model) -> AppResult<Vec<u8>> {
    state
        .factor_sealer
        .open(&factor.secret, factor.user_id.as_bytes())
        .ok_or_else(|| AppError::Internal("an authenticator secret does not open under OTP_SECRET".to_owned()))
}

/// Starts (or restarts) setting up an authenticator app; the app is on only after `confirm`.
pub async fn start_enrolment(state: &AppState, account: &user::Model) -> AppResult<Enrolment> {
    if account.mfa_totp {
        return Err(AppError::TotpAlreadyEnabled);
    }
    let mut secret = vec![0u8; SECRET_BYTES];
    crate::random::fill_random(&mut secret);
    let sealed = state.factor_sealer.seal(&secret, account.id.as_bytes());
    let totp = authenticator(state, secret, &account.email)?;
    let transaction = state.store.begin_write().await?;
    // Read again under the account's lock: an app confirmed meanwhile stays, and parallel setups take turns.
    if users::lock(&transaction, account.id).await?.mfa_totp {
        return Err(AppError::TotpAlreadyEnabled);
    }
    // With the app off, a row here is a pending setup: it is replaced.
    totp_factor::Entity::delete_by_id(account.id).exec(&transaction).await?;
    totp_factor::Entity::insert(totp_factor::ActiveModel {
        user_id: Set(account.id),
        secret: Set(sealed),
        confirmed_at: Set(None),
        last_used_step: Set(None),
        created_at: Set(now()),
    })
    .exec(&transaction)
    .await?;
    transaction.commit().await?;
    let otpauth_uri = totp.get_url();
    Ok(Enrolment {
        secret: totp.get_secret_base32(),
        qr_code: qr_code(&otpauth_uri)?,
        otpauth_uri,
    })
}

fn qr_code(text: &str) -> AppResult<String> {
    let code = qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M)
        .map_err(|error| AppError::Internal(format!("the QR code cannot hold the URI: {error}")))?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .build();
    Ok(format!("data:image/svg+xml;base64,{}", STANDARD.encode(svg)))
}

/// Turns the app on with one valid code of the pending secret; answers the first set of recovery codes.
pub async fn confirm(state: &AppState, account: &user::Model, session: Uuid, code: &str) -> AppResult<Vec<String>> {
    let pending = totp_factor::Entity::find_by_id(account.id)
        .one(state.store.connection())
        .await?
        .filter(|factor| factor.confirmed_at.is_none() && factor.created_at + seconds(state.settings.otp_ttl) > now())
        .ok_or(AppError::TotpNotEnabled)?;
    check_code(state, account, &pending, code).await?;
    let mut change = Change::begin(state).await?;
    users::lock(change.connection(), account.id).await?;
    // Only the secret the code was checked against: a setup restarted meanwhile has another.
    let confirmed = totp_factor::Entity::update_many()
        .col_expr(totp_factor::Column::ConfirmedAt, Expr::value(now()))
        .filter(totp_factor::Column::UserId.eq(account.id))
        .filter(totp_factor::Column::ConfirmedAt.is_null())
        .filter(totp_factor::Column::Secret.eq(pending.secret.clone()))
        .exec(change.connection())
        .await?;
    if confirmed.rows_affected == 0 {
        // A parallel confirmation won, or the enrolment was restarted: this one changes nothing.
        return Err(AppError::TotpNotEnabled);
    }
    set_flag(&change, account.id, true).await?;
    let codes = recovery_codes::replace(state, change.connection(), account.id).await?;
    change.queue_mail(&account.email, &Mail::AuthenticatorAdded).await?;
    change
        .security_changed(SecurityChanged {
            user: account.id,
            session,
            change: SecurityChange::TotpEnabled,
        })
        .await?;
    change.commit().await?;
    Ok(codes)
}

/// Sets `users.mfa_totp` as part of `change`.
pub async fn set_flag(change: &Change<'_>, user: Uuid, enabled: bool) -> AppResult<()> {
    user::Entity::update_many()
        .col_expr(user::Column::MfaTotp, Expr::value(enabled))
        .col_expr(user::Column::UpdatedAt, Expr::value(now()))
        .filter(user::Column::Id.eq(user))
        .exec(change.connection())
        .await?;
    Ok(())
}

/// The confirmed factor of `account`, if it has one.
pub async fn confirmed_factor(state: &AppState, account: &user::Model) -> AppResult<Option<totp_factor::Model>> {
    if !account.mfa_totp {
        return Ok(None);
    }
    Ok(totp_factor::Entity::find_by_id(account.id)
        .one(state.store.connection())
        .await?
        .filter(|factor| factor.confirmed_at.is_some()))
}

/// Checks an app code against `factor` and uses up its step, under the account's back-off: `account_locked`
/// while locked; a wrong or replayed code is `otp_invalid` and counts; a right one resets the count.
pub async fn check_code(
    state: &AppState,
    account: &user::Model,
    factor: &totp_factor::Model,
    code: &str,
) -> AppResult<()> {
    throttle::second_factor_attempt(state, &account.email, async |key| {
        use_code(state, key, account, factor, code).await
    })
    .await
}

async fn use_code(
    state: &AppState,
    key: &ThrottleKey,
    account: &user::Model,
    factor: &totp_factor::Model,
    code: &str,
) -> AppResult<()> {
    // A malformed code cannot match; it still counts as a wrong one.
    if !crate::domain::is_code_shaped(code) {
        return Err(AppError::OtpInvalid);
    }
    let totp = authenticator(state, open_secret(state, factor)?, &account.email)?;
    let current = current_step();
    // Every step of the window is computed and compared, so the time taken does not tell which one matched.
    let matched = (current - DRIFT_STEPS..=current + DRIFT_STEPS).fold(None, |found, step| {
        let equal = constant_time_equal(code_at(&totp, step).as_bytes(), code.as_bytes());
        if equal { Some(step) } else { found }
    });
    let Some(step) = matched else {
        return Err(AppError::OtpInvalid);
    };
    // Only a step newer than the last one used passes, and only for the request whose UPDATE moves it; the
    // lock is checked in the same statement, so a burst a parallel failure locked out cannot use a code.
    let used = totp_factor::Entity::update_many()
        .col_expr(totp_factor::Column::LastUsedStep, Expr::value(step))
        .filter(totp_factor::Column::UserId.eq(factor.user_id))
        .filter(
            totp_factor::Column::LastUsedStep
                .is_null()
                .or(totp_factor::Column::LastUsedStep.lt(step)),
        )
        .filter(throttle::unlocked(key))
        .exec(state.store.connection())
        .await?;
    if used.rows_affected == 0 {
        throttle::refuse_if_locked(state.store.connection(), key).await?;
        return Err(AppError::OtpInvalid);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 rows (8 digits there; the same HOTP values truncated to 6 here are the last
    /// six digits, since both take the value modulo a power of ten).
    #[test]
    fn codes_match_the_rfc_6238_test_vectors() {
        let secret = b"12345678901234567890".to_vec();
        let totp = TOTP::new_unchecked(Algorithm::SHA1, 8, 0, 30, secret.clone(), None, String::new());
        let short = TOTP::new_unchecked(Algorithm::SHA1, 6, 0, 30, secret, None, String::new());
        for (time, expected) in [
            (59u64, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(totp.generate(time), expected, "at {time}");
            assert_eq!(short.generate(time), expected[2..], "at {time}");
            let step = i64::try_from(time / 30).unwrap();
            assert_eq!(code_at(&short, step), expected[2..], "step of {time}");
        }
    }
}
