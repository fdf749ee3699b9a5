//! Password sign-in: the same answer in the same time for an unknown email and a wrong password, back-off
//! per address, and a challenge instead of tokens when the account has a second factor (see `challenges`).
//!
//! Password sign-in failures count under `login:<email>` in `address_throttles`, and a wrong current password on
//! an authenticated endpoint counts there too. After `LOGIN_LOCKOUT_THRESHOLD` failures the address is locked
//! (the schedule: see `throttle`). A password sign-in reads the address's lock, the account and its device
//! history (for the new-device mail) in one query: a left join from a one-row source, so the lock comes back
//! whether or not the account exists, and an unknown address costs the same round trip and the same dummy hash
//! as a wrong password.

use entity::user;
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ConnectionTrait, FromQueryResult, IntoActiveModel,
    sea_query::{Asterisk, Expr, ExprTrait, Query},
};
use uuid::Uuid;

use super::{
    AppState, ClientInfo,
    challenges::{self, LoginOutcome},
    now, passkeys,
    sessions::{self, DeviceHistory},
    throttle::{self, LockCheck, ThrottleKey, ThrottleState},
};
use crate::{
    domain::{Authentication, EmailAddress, Password},
    error::{AppError, AppResult},
};

/// The address's standing, the account behind it, the account's device history and whether it has passkeys,
/// read in one round trip: a sign-in's first step. The account is looked up only for a well-formed address.
async fn standing_and_account(
    state: &AppState,
    key: &ThrottleKey,
    email: Option<&EmailAddress>,
    client: &ClientInfo,
) -> AppResult<(ThrottleState, Option<Account>)> {
    let mut query = Query::select();
    let user_id = Expr::col((user::Entity, user::Column::Id));
    let device = sessions::device_label(&client.user_agent);
    for (expression, alias) in throttle::standing_columns(key)
        .into_iter()
        .chain(DeviceHistory::columns(user_id.clone(), &device))
        .chain([passkeys::exists_column(user_id)])
    {
        query.expr_as(expression, alias);
    }
    // One row whether or not the account exists, so the throttle columns always come back.
    query
        .column((user::Entity, Asterisk))
        .from_subquery(Query::select().expr_as(Expr::val(1), "one").to_owned(), "one")
        .left_join(
            user::Entity,
            Expr::col((user::Entity, user::Column::Email)).eq(email.map_or("", EmailAddress::as_str)),
        );
    let row = state
        .store
        .connection()
        .query_one(&query)
        .await?
        .ok_or_else(|| AppError::Internal("the sign-in read returned no row".to_owned()))?;
    let standing = throttle::standing_of(&row)?;
    let account = match row.try_get::<Option<Uuid>>("", "id")? {
        Some(_) => Some(Account {
            user: user::Model::from_query_result(&row, "")?,
            history: DeviceHistory::of(&row, device)?,
            has_passkeys: passkeys::exists_of(&row)?,
        }),
        None => None,
    };
    Ok((standing, account))
}

/// An account as a password sign-in reads it.
struct Account {
    user: user::Model,
    history: DeviceHistory,
    has_passkeys: bool,
}

/// Checks the password of `account`. Every path that fails spends one argon2 verification, so an unknown
/// email and a wrong password take the same time. An account never verified has no password yet (the one
/// chosen at registration waits for the code), so it answers as a wrong password would.
async fn check_password(state: &AppState, account: Option<Account>, password: &str) -> AppResult<Account> {
    let account = account.filter(|account| account.user.email_verified_at.is_some());
    let (Some(account), Some(password)) = (account, Password::for_login(password)) else {
        state.passwords.verify_dummy().await?;
        return Err(AppError::InvalidCredentials);
    };
    let verification = state.passwords.verify(&account.user.password_hash, &password).await?;
    if !verification.matches {
        return Err(AppError::InvalidCredentials);
    }
    if verification.needs_rehash {
        return Ok(Account {
            user: rehash(state, account.user, &password).await?,
            ..account
        });
    }
    Ok(account)
}

pub async fn login(state: &AppState, email: &str, password: &str, client: &ClientInfo) -> AppResult<LoginOutcome> {
    let key = ThrottleKey::login(email);
    let outcome = attempt(state, &key, email, password, client).await;
    let label = match &outcome {
        Ok(LoginOutcome::SignedIn(_)) => "success",
        Ok(LoginOutcome::SecondFactor(_)) => "second_factor",
        Err(error) => error.code().as_str(),
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
    let address = EmailAddress::parse(email).ok();
    let (standing, account) = standing_and_account(state, key, address.as_ref(), client).await?;
    let Account {
        user,
        history,
        has_passkeys,
    } = match check_password(state, account, password).await {
        Ok(found) => found,
        Err(AppError::InvalidCredentials) => {
            throttle::record_failure(state, key, state.settings.login_lockout_threshold).await?;
            return Err(AppError::InvalidCredentials);
        }
        Err(other) => return Err(other),
    };
    // A parallel attempt may have locked the address while this one waited for its hash: nothing that tells
    // the password was right is answered then. A plain sign-in's own write checks the lock.
    let second_steps = challenges::second_steps_of(&user, &Authentication::password(), has_passkeys);
    let check = if second_steps.is_empty() {
        LockCheck::InTheWrite
    } else {
        LockCheck::Here
    };
    standing.record_success(state, key, check).await?;
    if !second_steps.is_empty() {
        return Ok(LoginOutcome::SecondFactor(
            challenges::start(state, &user, Authentication::password(), second_steps).await?,
        ));
    }
    Ok(LoginOutcome::SignedIn(
        sessions::sign_in_with(state, &user, client, &Authentication::password(), history, Some(key)).await?,
    ))
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
        // As at sign-in: a lock set by a parallel attempt meanwhile holds.
        standing.record_success(state, &key, LockCheck::Here).await
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
    Ok(active.update(state.store.connection()).await?)
}
