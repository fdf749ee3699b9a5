//! Emailed one-time codes: six CSPRNG digits, stored only as an HMAC bound to user, purpose and challenge;
//! single use, limited life, and a hard cap on wrong tries, each enforced by a conditional UPDATE.
//!
//! - A code is six digits from the operating system's CSPRNG, by rejection sampling (values of 4,294,000,000 or
//!   more are drawn again), so every code is equally likely.
//! - Only `HMAC-SHA256(code key, user id, purpose, challenge id or empty, code)` is stored. A code checked for
//!   another user, purpose or challenge cannot match.
//! - Issuing a code deletes the user's older codes of the same purpose in the same transaction that inserts the
//!   new code and queues its mail.
//! - Checking a code: find the newest unconsumed code of that user and purpose (and challenge); refuse it when
//!   consumed (`otp_invalid`), expired (`otp_expired`) or out of tries (`otp_attempts_exceeded`). Then reserve a
//!   try with `UPDATE otps SET attempts = attempts + 1 WHERE id = ? AND consumed_at IS NULL AND attempts < max`.
//!   Only if that changed a row is the HMAC compared (in constant time). A right code is then consumed with
//!   `UPDATE otps SET consumed_at = now WHERE id = ? AND consumed_at IS NULL`; only the request that changed the
//!   row signs in. So parallel wrong guesses never get more than `OTP_MAX_ATTEMPTS` tries, and parallel right
//!   submissions make one session.

use chrono::{DateTime, Utc};
use entity::otp;
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    sea_query::{Expr, ExprTrait},
};
use uuid::Uuid;

use super::{
    AppState, now, seconds,
    throttle::{self, ThrottleKey},
};
use crate::{
    domain::OtpPurpose,
    error::{AppError, AppResult},
    tokens::{fill_random, hex},
};

/// Six uniformly random digits.
pub fn generate_code() -> String {
    // 4_294_000_000 is the largest multiple of 10^6 below 2^32: rejecting above it keeps every code equally likely.
    loop {
        let mut bytes = [0u8; 4];
        fill_random(&mut bytes);
        let value = u32::from_be_bytes(bytes);
        if value < 4_294_000_000 {
            return format!("{:06}", value % 1_000_000);
        }
    }
}

fn code_hash(state: &AppState, user: Uuid, purpose: OtpPurpose, challenge: Option<Uuid>, code: &str) -> String {
    let challenge = challenge.map(|id| id.as_bytes().to_vec()).unwrap_or_default();
    hex(&state.otp_keys.mac(&[
        user.as_bytes(),
        purpose.as_str().as_bytes(),
        &challenge,
        code.as_bytes(),
    ]))
}

/// Makes a new code for `user` and `purpose`, replacing any older one of that purpose; answers the code,
/// which only the mail ever carries.
pub async fn issue(
    state: &AppState,
    connection: &impl ConnectionTrait,
    user: Uuid,
    purpose: OtpPurpose,
    challenge: Option<Uuid>,
) -> Result<String, DbErr> {
    let code = generate_code();
    let created_at = now();
    otp::Entity::delete_many()
        .filter(otp::Column::UserId.eq(user))
        .filter(otp::Column::Purpose.eq(purpose.as_str()))
        .exec(connection)
        .await?;
    otp::Entity::insert(otp::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user),
        purpose: Set(purpose.as_str().to_owned()),
        challenge_id: Set(challenge),
        code_hash: Set(code_hash(state, user, purpose, challenge, &code)),
        attempts: Set(0),
        expires_at: Set(created_at + seconds(state.settings.otp_ttl)),
        consumed_at: Set(None),
        created_at: Set(created_at),
    })
    .exec(connection)
    .await?;
    Ok(code)
}

/// Checks a code for `purpose` against the address's back-off: `account_locked` while locked; a wrong code
/// counts toward the lock (`3 x OTP_MAX_ATTEMPTS` in a row); a right one resets the count. An address
/// without an account fails like a wrong code.
pub async fn check(
    state: &AppState,
    email: &str,
    user: Option<Uuid>,
    purpose: OtpPurpose,
    challenge: Option<Uuid>,
    code: &str,
) -> AppResult<otp::Model> {
    let key = ThrottleKey::code(purpose, email);
    let standing = throttle::ensure_unlocked(state, &key).await?;
    let consumed = match user {
        Some(user) => consume(state, &key, user, purpose, challenge, code).await,
        None => Ok(None),
    };
    let outcome = match consumed {
        Ok(Some(used)) => Ok(used),
        // A challenge's code needs the password first, so only mailed purposes answer as if a code existed.
        Ok(None) if purpose == OtpPurpose::LoginChallenge => Err(AppError::OtpInvalid),
        Ok(None) => {
            Err(
                throttle::decoy_code_answer(state, &key, state.settings.otp_ttl, state.settings.otp_max_attempts)
                    .await?,
            )
        }
        Err(error) => Err(error),
    };
    match &outcome {
        Ok(_) => standing.clear_failures(state, &key).await?,
        Err(AppError::OtpInvalid | AppError::OtpAttemptsExceeded) => {
            throttle::record_failure(state, &key, state.settings.otp_max_attempts.saturating_mul(3)).await?
        }
        Err(_) => {}
    }
    outcome
}

/// Checks `code` and uses it up. Each try first takes one of the code's attempts with a conditional
/// UPDATE, so parallel guesses never get more tries than allowed; a right code is then consumed by a
/// second conditional UPDATE, so parallel right submissions succeed exactly once. Both writes also require
/// that `key` is not locked, so a guess of a burst that a parallel failure locked out is neither tried nor
/// able to clear that lock. `None` when the user holds no live code of the purpose.
pub async fn consume(
    state: &AppState,
    key: &ThrottleKey,
    user: Uuid,
    purpose: OtpPurpose,
    challenge: Option<Uuid>,
    code: &str,
) -> AppResult<Option<otp::Model>> {
    let at = now();
    let mut query = otp::Entity::find()
        .filter(otp::Column::UserId.eq(user))
        .filter(otp::Column::Purpose.eq(purpose.as_str()))
        .filter(otp::Column::ConsumedAt.is_null());
    if let Some(challenge) = challenge {
        query = query.filter(otp::Column::ChallengeId.eq(challenge));
    }
    let Some(stored) = query
        .order_by_desc(otp::Column::CreatedAt)
        .one(state.store.connection())
        .await?
    else {
        return Ok(None);
    };
    check_usable(state, &stored, at)?;

    let maximum = i32::try_from(state.settings.otp_max_attempts).unwrap_or(i32::MAX);
    let reserved = otp::Entity::update_many()
        .col_expr(otp::Column::Attempts, Expr::col(otp::Column::Attempts).add(1))
        .filter(otp::Column::Id.eq(stored.id))
        .filter(otp::Column::ConsumedAt.is_null())
        .filter(otp::Column::Attempts.lt(maximum))
        .filter(throttle::unlocked(key))
        .exec(state.store.connection())
        .await?;
    if reserved.rows_affected == 0 {
        // A parallel attempt may have locked the address since this one's first check.
        throttle::refuse_if_locked(state.store.connection(), key).await?;
        // Another request used the last try or the code itself in the meantime.
        let current = otp::Entity::find_by_id(stored.id)
            .one(state.store.connection())
            .await?
            .ok_or(AppError::OtpInvalid)?;
        check_usable(state, &current, at)?;
        return Err(AppError::OtpInvalid);
    }

    let expected = code_hash(state, user, purpose, challenge, code);
    if !constant_time_equal(expected.as_bytes(), stored.code_hash.as_bytes()) {
        return Err(AppError::OtpInvalid);
    }
    let consumed = otp::Entity::update_many()
        .col_expr(otp::Column::ConsumedAt, Expr::value(at))
        .filter(otp::Column::Id.eq(stored.id))
        .filter(otp::Column::ConsumedAt.is_null())
        .filter(throttle::unlocked(key))
        .exec(state.store.connection())
        .await?;
    if consumed.rows_affected == 0 {
        throttle::refuse_if_locked(state.store.connection(), key).await?;
        return Err(AppError::OtpInvalid);
    }
    Ok(Some(stored))
}

fn check_usable(state: &AppState, stored: &otp::Model, at: DateTime<Utc>) -> AppResult<()> {
    if stored.consumed_at.is_some() {
        return Err(AppError::OtpInvalid);
    }
    if stored.expires_at <= at {
        return Err(AppError::OtpExpired);
    }
    if i64::from(stored.attempts) >= i64::from(state.settings.otp_max_attempts) {
        return Err(AppError::OtpAttemptsExceeded);
    }
    Ok(())
}

pub fn constant_time_equal(left: &[u8], right: &[u8]) -> bool {
    left.len() == right.len()
        && left
            .iter()
            .zip(right)
            .fold(0u8, |difference, (a, b)| difference | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_vary() {
        let codes: std::collections::HashSet<String> = (0..200).map(|_| generate_code()).collect();
        assert!(
            codes
                .iter()
                .all(|code| code.len() == 6 && code.bytes().all(|byte| byte.is_ascii_digit()))
        );
        assert!(codes.len() > 190, "codes repeat far too often");
    }
}
