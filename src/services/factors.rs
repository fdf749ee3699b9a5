//! The second factors of an account as a whole: checking whichever one the user offers, turning the
//! authenticator app off, replacing recovery codes, and the overview the account page shows.
//!
//! Every check of an app or recovery code counts under the account's `mfa:` throttle key (see `totp`). A used
//! recovery code mails the owner with the number left. Each change of factors is announced to the owner's other
//! devices (`security_changed`) through the change that records it.

use entity::user;
use sea_orm::EntityTrait;
use serde::Serialize;
use uuid::Uuid;

use super::{AppState, passkeys, recovery_codes, revocation::Change, throttle, totp, users};
use crate::{
    email::Mail,
    error::{AppError, AppResult},
    realtime::events::{SecurityChange, SecurityChanged},
};

/// A second factor a user can present as a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeFactor {
    Totp,
    RecoveryCode,
}

/// What the account page shows.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FactorsView {
    pub email_otp: bool,
    pub totp: bool,
    pub recovery_codes_left: u64,
    pub passkeys: u64,
}

pub async fn overview(state: &AppState, account: &user::Model) -> AppResult<FactorsView> {
    let recovery_codes_left = if account.mfa_totp {
        recovery_codes::count_left(state, account.id).await?
    } else {
        0
    };
    Ok(FactorsView {
        email_otp: account.mfa_email_otp,
        totp: account.mfa_totp,
        recovery_codes_left,
        passkeys: passkeys::count(state, account.id).await?,
    })
}

/// Checks a code of `factor` and uses it up; `otp_invalid` for a wrong code or a factor the account lacks.
pub async fn verify(state: &AppState, account: &user::Model, factor: CodeFactor, code: &str) -> AppResult<()> {
    match factor {
        CodeFactor::Totp => {
            let Some(stored) = totp::confirmed_factor(state, account).await? else {
                return Err(AppError::OtpInvalid);
            };
            totp::check_code(state, account, &stored, code).await
        }
        CodeFactor::RecoveryCode => use_recovery_code(state, account, code).await,
    }
}

/// A code as typed where either kind is taken: six digits are an app code, anything else a recovery code.
pub async fn verify_any(state: &AppState, account: &user::Model, code: &str) -> AppResult<()> {
    let factor = if crate::domain::is_code_shaped(code) {
        CodeFactor::Totp
    } else {
        CodeFactor::RecoveryCode
    };
    verify(state, account, factor, code).await
}

async fn use_recovery_code(state: &AppState, account: &user::Model, code: &str) -> AppResult<()> {
    throttle::second_factor_attempt(state, &account.email, async |key| {
        if account.mfa_totp {
            recovery_codes::use_code(state, key, account.id, code).await
        } else {
            Err(AppError::OtpInvalid)
        }
    })
    .await?;
    let left = recovery_codes::count_left(state, account.id).await?;
    let transaction = state.store.begin_write().await?;
    state
        .mailer
        .queue(&transaction, &account.email, &Mail::RecoveryCodeUsed { left })
        .await?;
    transaction.commit().await?;
    state.mailer.wake();
    Ok(())
}

/// Turns the authenticator app off; the caller checked the password, `code` is an app or a recovery code.
/// The recovery codes go with it, and the owner is mailed.
pub async fn disable_totp(state: &AppState, account: &user::Model, session: Uuid, code: &str) -> AppResult<()> {
    if !account.mfa_totp {
        return Err(AppError::TotpNotEnabled);
    }
    verify_any(state, account, code).await?;
    let mut change = Change::begin(state).await?;
    if !users::lock(change.connection(), account.id).await?.mfa_totp {
        return Err(AppError::TotpNotEnabled);
    }
    entity::totp_factor::Entity::delete_by_id(account.id)
        .exec(change.connection())
        .await?;
    recovery_codes::delete_all(change.connection(), account.id).await?;
    totp::set_flag(&change, account.id, false).await?;
    change.queue_mail(&account.email, &Mail::AuthenticatorRemoved).await?;
    change
        .security_changed(SecurityChanged {
            user: account.id,
            session,
            change: SecurityChange::TotpDisabled,
        })
        .await?;
    change.commit().await
}

/// A new set of recovery codes; the old set stops working. Only with the authenticator app on.
pub async fn replace_recovery_codes(state: &AppState, account: &user::Model, session: Uuid) -> AppResult<Vec<String>> {
    if !account.mfa_totp {
        return Err(AppError::TotpNotEnabled);
    }
    let mut change = Change::begin(state).await?;
    // Two parallel replacements take turns, so the second deletes the first's set: one set lives.
    if !users::lock(change.connection(), account.id).await?.mfa_totp {
        return Err(AppError::TotpNotEnabled);
    }
    let codes = recovery_codes::replace(state, change.connection(), account.id).await?;
    change.queue_mail(&account.email, &Mail::RecoveryCodesReplaced).await?;
    change
        .security_changed(SecurityChanged {
            user: account.id,
            session,
            change: SecurityChange::RecoveryCodesRegenerated,
        })
        .await?;
    change.commit().await?;
    Ok(codes)
}
