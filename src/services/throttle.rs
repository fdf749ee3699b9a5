//! Per-address back-off and mail cooldown, stored in the database so every node enforces them. Keys are
//! the normalised address whether or not an account exists, so an answer reveals nothing.
//! Every counter moves by a single conditional statement, so parallel requests cannot skip a step.
//!
//! - Locks (`record_failure`): one upsert counts the failure (`failures = failures + 1`) and, when that reaches
//!   the threshold, sets the lock and takes the next level in the same statement, so no other failure is
//!   counted between the two. The first lock lasts 1 minute and each later one doubles, up to 1 hour. Failures
//!   are not reset by a lock, so each failure after a lock ends locks again at the next level. While locked, attempts
//!   answer `account_locked` with `Retry-After` before any other work, and do not count.
//! - The lock is read again after the hash, because parallel attempts all pass the first check: the failure
//!   upsert counts only while unlocked (`ON CONFLICT ... DO UPDATE ... WHERE` the lock is over) and answers
//!   `account_locked` when it counted nothing, the success reset applies only while unlocked, and the sign-in's
//!   write checks the lock itself (on PostgreSQL inside its one statement). A success resets the failures, the
//!   level and the lock; when the lock check read no failures, a success writes nothing (most sign-ins). Pruning
//!   keeps a row while its last failure is under a day old.
//! - Mail cooldown (`take_mail_slot`): an upsert,
//!
//!   ```text
//!   INSERT INTO address_throttles ... ON CONFLICT (key) DO UPDATE
//!   SET last_mail_ms = now, code_attempts = 0
//!   WHERE (last_mail_ms IS NULL OR last_mail_ms <= now - cooldown)
//!     AND (locked_until_ms IS NULL OR locked_until_ms <= now)
//!   ```
//!
//!   Only when it writes a row is a mail queued; registration and code requests answer 202 either way.

use entity::address_throttle;
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryResult,
    sea_query::{Expr, ExprTrait, OnConflict, Query},
};

use super::{AppState, now_ms};
use crate::{
    domain::{EmailAddress, OtpPurpose},
    error::{AppError, AppResult},
};

/// The first lock lasts a minute; each one after doubles, up to an hour.
const FIRST_LOCK_MS: i64 = 60_000;
const LONGEST_LOCK_MS: i64 = 3_600_000;

/// What is being throttled for one address.
#[derive(Debug, Clone)]
pub struct ThrottleKey(String);

impl ThrottleKey {
    /// Password sign-in (and wrong current passwords on authenticated endpoints).
    pub fn login(email: &str) -> Self {
        Self(format!("login:{}", normalise(email)))
    }

    /// Code verification and code mail for one purpose.
    pub fn code(purpose: OtpPurpose, email: &str) -> Self {
        Self(format!("otp:{}:{}", purpose.as_str(), normalise(email)))
    }

    /// Authenticator-app and recovery codes of one account, wherever they are checked (sign-in, reauthentication,
    /// turning the app off).
    pub fn second_factor(email: &str) -> Self {
        Self(format!("mfa:{}", normalise(email)))
    }

    /// The key as stored, for a statement that checks the lock itself.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Runs `attempt`, a check of an authenticator-app or recovery code, under the account's second-factor back-off:
/// `account_locked` while locked; a wrong code (`otp_invalid`) counts toward the lock (3 x `OTP_MAX_ATTEMPTS`
/// in a row, the mailed codes' schedule); a right one clears the count.
pub async fn second_factor_attempt(
    state: &AppState,
    email: &str,
    attempt: impl AsyncFnOnce(&ThrottleKey) -> AppResult<()>,
) -> AppResult<()> {
    let key = ThrottleKey::second_factor(email);
    let standing = ensure_unlocked(state, &key).await?;
    match attempt(&key).await {
        Ok(()) => standing.clear_failures(state, &key).await,
        Err(AppError::OtpInvalid) => {
            record_failure(state, &key, state.settings.otp_max_attempts.saturating_mul(3)).await?;
            Err(AppError::OtpInvalid)
        }
        Err(other) => Err(other),
    }
}

/// Every key of one address, to forget it with its account.
pub fn keys_of(email: &str) -> Vec<String> {
    let mut keys = vec![ThrottleKey::login(email).0, ThrottleKey::second_factor(email).0];
    for purpose in [
        OtpPurpose::VerifyEmail,
        OtpPurpose::Login,
        OtpPurpose::PasswordReset,
        OtpPurpose::LoginChallenge,
    ] {
        keys.push(ThrottleKey::code(purpose, email).0);
    }
    keys
}

/// The address in its normal form. Input that is no address is keyed by its SHA-256 instead, so the key has
/// a fixed length and no byte the database refuses (a NUL, say), while such input still does the same work
/// as an address, in the same time.
fn normalise(email: &str) -> String {
    EmailAddress::parse(email)
        .map(|email| email.as_str().to_owned())
        .unwrap_or_else(|_| format!("#{}", crate::tokens::hash_token(email)))
}

/// `account_locked` while the address is locked, with the seconds left.
pub async fn ensure_unlocked(state: &AppState, key: &ThrottleKey) -> AppResult<ThrottleState> {
    ensure_unlocked_on(state.store.connection(), key).await
}

/// `account_locked` while the address is locked, read on `connection` (a caller's transaction, so its
/// write follows from what it read): the check after the work it guards.
pub async fn refuse_if_locked(connection: &impl ConnectionTrait, key: &ThrottleKey) -> AppResult<()> {
    ensure_unlocked_on(connection, key).await.map(|_| ())
}

async fn ensure_unlocked_on(connection: &impl ConnectionTrait, key: &ThrottleKey) -> AppResult<ThrottleState> {
    let row = address_throttle::Entity::find_by_id(key.0.clone())
        .one(connection)
        .await?;
    standing(row.map(|row| (row.locked_until_ms, row.failures)))
}

/// A condition for another table's write: true while `key` is not locked. A write that must not happen during
/// a lock (using up a code) checks it itself, so a lock a parallel attempt set after this one's first check
/// still holds.
pub fn unlocked(key: &ThrottleKey) -> sea_orm::sea_query::SimpleExpr {
    Expr::exists(
        Query::select()
            .expr(Expr::value(1))
            .from(address_throttle::Entity)
            .and_where(address_throttle::Column::Key.eq(key.0.clone()))
            .and_where(address_throttle::Column::LockedUntilMs.gt(now_ms()))
            .to_owned(),
    )
    .not()
}

/// The address's row as the scalar subqueries of a larger read: `(locked_until_ms, failures)`, each NULL
/// when the address has no row. A sign-in reads them with the account, in one round trip.
pub fn standing_columns(key: &ThrottleKey) -> [(Expr, &'static str); 2] {
    let column = |column: address_throttle::Column| {
        Expr::from(
            Query::select()
                .column(column)
                .from(address_throttle::Entity)
                .and_where(address_throttle::Column::Key.eq(key.0.clone()))
                .to_owned(),
        )
    };
    [
        (column(address_throttle::Column::LockedUntilMs), LOCKED_UNTIL_MS),
        (column(address_throttle::Column::Failures), FAILURES),
    ]
}

const LOCKED_UNTIL_MS: &str = "throttle_locked_until_ms";
const FAILURES: &str = "throttle_failures";

/// `ensure_unlocked` on what `standing_columns` read.
pub fn standing_of(row: &QueryResult) -> AppResult<ThrottleState> {
    let locked_until_ms: Option<i64> = row.try_get("", LOCKED_UNTIL_MS)?;
    let failures: Option<i32> = row.try_get("", FAILURES)?;
    standing(failures.map(|failures| (locked_until_ms, failures)))
}

fn standing(row: Option<(Option<i64>, i32)>) -> AppResult<ThrottleState> {
    let Some((locked_until_ms, failures)) = row else {
        return Ok(ThrottleState { failures: false });
    };
    match locked_until_ms {
        Some(until) if until > now_ms() => Err(AppError::AccountLocked {
            retry_after_seconds: u64::try_from((until - now_ms() + 999) / 1000).unwrap_or(1),
        }),
        _ => Ok(ThrottleState { failures: failures > 0 }),
    }
}

/// What `ensure_unlocked` saw of an address that was not locked.
#[must_use]
pub struct ThrottleState {
    failures: bool,
}

/// Where a success checks that no parallel attempt locked the address while this one was being checked.
pub enum LockCheck {
    /// The caller's own next write checks it (a sign-in's session insert), so no read is spent here.
    InTheWrite,
    /// Here: nothing after the success would notice the lock.
    Here,
}

impl ThrottleState {
    /// Clears the address's failures after a success, and answers `account_locked` when a parallel attempt
    /// locked the address meanwhile. An address that had no failures is not written, so most successes write
    /// nothing (on SQLite every write waits for the one writer); its lock is checked as `check` says.
    pub async fn record_success(self, state: &AppState, key: &ThrottleKey, check: LockCheck) -> AppResult<()> {
        match (self.failures, check) {
            // The clear itself happens only while unlocked.
            (true, _) => record_success(state, key).await,
            (false, LockCheck::Here) => refuse_if_locked(state.store.connection(), key).await,
            (false, LockCheck::InTheWrite) => Ok(()),
        }
    }

    /// Like `record_success`, but clears even a lock a parallel attempt set meanwhile: for a success that
    /// has already used something up (a code) and cannot be taken back.
    pub async fn clear_failures(self, state: &AppState, key: &ThrottleKey) -> AppResult<()> {
        if self.failures {
            clear_failures(state, key).await?;
        }
        Ok(())
    }
}

/// Counts one failure; at `threshold` consecutive failures, and at each failure after a lock has ended,
/// locks the address for the next step of the schedule. Counting and locking are one statement that runs only
/// while the address is unlocked, so the failure that reaches the threshold locks it before any other is
/// counted: an attempt that was checked before a parallel one locked the address is answered
/// `account_locked` and not counted, and a burst of guesses sent at once learns exactly `threshold` results.
pub async fn record_failure(state: &AppState, key: &ThrottleKey, threshold: u32) -> AppResult<()> {
    let now = now_ms();
    let column = |column: address_throttle::Column| Expr::col((address_throttle::Entity, column));
    let unlocked = column(address_throttle::Column::LockedUntilMs)
        .is_null()
        .or(column(address_throttle::Column::LockedUntilMs).lte(now));
    let threshold = i32::try_from(threshold).unwrap_or(i32::MAX);
    // The stored row as it was before this failure: its run, one more, reaches the threshold (a run stays at
    // or past it after a lock ends, until a success resets it).
    let reaches = column(address_throttle::Column::Failures).add(1).gte(threshold);
    let mut lock_duration = Expr::case(column(address_throttle::Column::LockLevel).lte(0), FIRST_LOCK_MS);
    for level in 1..6 {
        lock_duration = lock_duration.case(
            column(address_throttle::Column::LockLevel).eq(level),
            Ord::min(FIRST_LOCK_MS << level, LONGEST_LOCK_MS),
        );
    }
    let lock_duration: Expr = lock_duration.finally(LONGEST_LOCK_MS).into();
    let locked_until = Expr::case(reaches.clone(), Expr::value(now).add(lock_duration))
        .finally(column(address_throttle::Column::LockedUntilMs));
    let lock_level = Expr::case(reaches, column(address_throttle::Column::LockLevel).add(1))
        .finally(column(address_throttle::Column::LockLevel));
    let first_locks = threshold <= 1;
    let counted = address_throttle::Entity::insert(address_throttle::ActiveModel {
        key: Set(key.0.clone()),
        failures: Set(1),
        lock_level: Set(i32::from(first_locks)),
        locked_until_ms: Set(first_locks.then_some(now + FIRST_LOCK_MS)),
        last_mail_ms: Set(None),
        last_failure_ms: Set(Some(now)),
        code_attempts: Set(0),
    })
    .on_conflict(
        OnConflict::column(address_throttle::Column::Key)
            .value(
                address_throttle::Column::Failures,
                column(address_throttle::Column::Failures).add(1),
            )
            .value(address_throttle::Column::LockedUntilMs, locked_until)
            .value(address_throttle::Column::LockLevel, lock_level)
            .update_column(address_throttle::Column::LastFailureMs)
            .action_and_where(unlocked)
            .to_owned(),
    )
    .exec_without_returning(state.store.connection())
    .await?;
    if counted == 0 {
        refuse_if_locked(state.store.connection(), key).await?;
    }
    Ok(())
}

/// A success ends the run of failures, unless a parallel attempt locked the address while this one was
/// being checked: then it is answered `account_locked` like any attempt made during the lock.
pub async fn record_success(state: &AppState, key: &ThrottleKey) -> AppResult<()> {
    let now = now_ms();
    let cleared = reset_failures(key)
        .filter(
            address_throttle::Column::LockedUntilMs
                .is_null()
                .or(address_throttle::Column::LockedUntilMs.lte(now)),
        )
        .exec(state.store.connection())
        .await?;
    if cleared.rows_affected == 0 {
        refuse_if_locked(state.store.connection(), key).await?;
    }
    Ok(())
}

/// Ends the run of failures and any lock (a password reset proves the mailbox).
pub async fn clear_failures(state: &AppState, key: &ThrottleKey) -> AppResult<()> {
    reset_failures(key).exec(state.store.connection()).await?;
    Ok(())
}

fn reset_failures(key: &ThrottleKey) -> sea_orm::UpdateMany<address_throttle::Entity> {
    address_throttle::Entity::update_many()
        .col_expr(address_throttle::Column::Failures, Expr::value(0))
        .col_expr(address_throttle::Column::LockLevel, Expr::value(0))
        .col_expr(
            address_throttle::Column::LockedUntilMs,
            Expr::value(Option::<i64>::None),
        )
        .filter(address_throttle::Column::Key.eq(key.0.clone()))
        .filter(address_throttle::Column::Failures.gt(0))
}

/// Takes the address's mail slot for this purpose if the cooldown has passed (and it is not locked);
/// false means send nothing now. One upsert decides, so parallel requests take one slot between them.
pub async fn take_mail_slot(state: &AppState, key: &ThrottleKey) -> AppResult<bool> {
    let now = now_ms();
    let cooldown = i64::try_from(state.settings.otp_resend_cooldown.as_millis()).unwrap_or(i64::MAX);
    let table = address_throttle::Entity;
    let existing = |column: address_throttle::Column| Expr::col((table, column));
    let slot_free = existing(address_throttle::Column::LastMailMs)
        .is_null()
        .or(existing(address_throttle::Column::LastMailMs).lte(now.saturating_sub(cooldown)))
        .and(
            existing(address_throttle::Column::LockedUntilMs)
                .is_null()
                .or(existing(address_throttle::Column::LockedUntilMs).lte(now)),
        );
    let statement = Query::insert()
        .into_table(table)
        .columns([
            address_throttle::Column::Key,
            address_throttle::Column::Failures,
            address_throttle::Column::LockLevel,
            address_throttle::Column::LastMailMs,
            address_throttle::Column::CodeAttempts,
        ])
        .values_panic([key.0.clone().into(), 0.into(), 0.into(), now.into(), 0.into()])
        .on_conflict(
            OnConflict::column(address_throttle::Column::Key)
                .update_columns([
                    address_throttle::Column::LastMailMs,
                    address_throttle::Column::CodeAttempts,
                ])
                .action_and_where(slot_free)
                .to_owned(),
        )
        .to_owned();
    let outcome = state.store.connection().execute(&statement).await?;
    Ok(outcome.rows_affected() == 1)
}

/// The answer to a code checked for an address that holds no live code of this purpose: no account, an
/// account not eligible for it, or its code already used. It is what a code mailed at the address's last
/// mail slot would answer (`otp_invalid` for each of the first `max_attempts` tries, then
/// `otp_attempts_exceeded`, and `otp_expired` once its life is over), so the answers do not tell which
/// addresses have accounts. The tries are counted by one conditional statement, as a real code's are.
pub async fn decoy_code_answer(
    state: &AppState,
    key: &ThrottleKey,
    life: std::time::Duration,
    max_attempts: u32,
) -> AppResult<AppError> {
    let now = now_ms();
    let Some(sent) = address_throttle::Entity::find_by_id(key.0.clone())
        .one(state.store.connection())
        .await?
        .and_then(|row| row.last_mail_ms)
    else {
        return Ok(AppError::OtpInvalid);
    };
    if sent.saturating_add(i64::try_from(life.as_millis()).unwrap_or(i64::MAX)) <= now {
        return Ok(AppError::OtpExpired);
    }
    let maximum = i32::try_from(max_attempts).unwrap_or(i32::MAX);
    let counted = address_throttle::Entity::update_many()
        .col_expr(
            address_throttle::Column::CodeAttempts,
            Expr::col(address_throttle::Column::CodeAttempts).add(1),
        )
        .filter(address_throttle::Column::Key.eq(key.0.clone()))
        .filter(address_throttle::Column::LastMailMs.eq(sent))
        .filter(address_throttle::Column::CodeAttempts.lt(maximum))
        .exec(state.store.connection())
        .await?;
    Ok(if counted.rows_affected == 0 {
        AppError::OtpAttemptsExceeded
    } else {
        AppError::OtpInvalid
    })
}
