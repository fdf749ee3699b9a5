//! Recovery codes: ten single-use codes made when an authenticator app is turned on, for the day the phone is
//! lost. Each is 10 characters of an alphabet without look-alikes (about 49 bits), shown once as
//! `xxxxx-xxxxx`; only an HMAC bound to the user is stored. Using one is a conditional UPDATE of its
//! `used_at`, so two parallel uses of one code pass once. A new set deletes the old one.

use entity::recovery_code;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, sea_query::Expr,
};
use uuid::Uuid;

use super::{
    AppState, now,
    throttle::{self, ThrottleKey},
};
use crate::{
    error::{AppError, AppResult},
    tokens::hex,
};

/// Codes in a set.
const SET_SIZE: usize = 10;
const CODE_LENGTH: usize = 10;
/// No `i`, `l`, `o`, `0` or `1`: nothing a reader can mistake for another character.
const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

fn new_code() -> String {
    let mut code = String::with_capacity(CODE_LENGTH + 1);
    // The largest multiple of the alphabet's size below 256: rejecting above it keeps every character equally
    // likely.
    let limit = (256 / ALPHABET.len() * ALPHABET.len()) as u8;
    while code.len() < CODE_LENGTH + 1 {
        let mut byte = [0u8; 1];
        crate::random::fill_random(&mut byte);
        if byte[0] < limit {
            if code.len() == CODE_LENGTH / 2 {
                code.push('-');
            }
            code.push(char::from(ALPHABET[usize::from(byte[0]) % ALPHABET.len()]));
        }
    }
    code
}

/// A code as typed, in its stored form: hyphens and spaces dropped, lower case. `None` when it cannot be one.
pub fn normalise(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|character| *character != '-' && !character.is_whitespace())
        .map(|character| character.to_ascii_lowercase())
        .collect();
    (code.len() == CODE_LENGTH && code.bytes().all(|byte| ALPHABET.contains(&byte))).then_some(code)
}

fn code_hash(state: &AppState, user: Uuid, normalised: &str) -> String {
    hex(&state.factor_keys.mac(&[user.as_bytes(), normalised.as_bytes()]))
}

/// Replaces the user's set with a new one inside `connection`'s transaction; answers the codes, shown once.
pub async fn replace(state: &AppState, connection: &impl ConnectionTrait, user: Uuid) -> Result<Vec<String>, DbErr> {
    delete_all(connection, user).await?;
    let created_at = now();
    let codes: Vec<String> = (0..SET_SIZE).map(|_| new_code()).collect();
    let rows = codes.iter().map(|code| {
        let normalised = normalise(code).unwrap_or_default();
        recovery_code::ActiveModel {
            id: Set(Uuid::now_v7()),
            user_id: Set(user),
            code_hash: Set(code_hash(state, user, &normalised)),
            used_at: Set(None),
            created_at: Set(created_at),
        }
    });
    recovery_code::Entity::insert_many(rows).exec(connection).await?;
    Ok(codes)
}

pub async fn delete_all(connection: &impl ConnectionTrait, user: Uuid) -> Result<(), DbErr> {
    recovery_code::Entity::delete_many()
        .filter(recovery_code::Column::UserId.eq(user))
        .exec(connection)
        .await?;
    Ok(())
}

/// Codes of the user's set not used yet.
pub async fn count_left(state: &AppState, user: Uuid) -> AppResult<u64> {
    Ok(recovery_code::Entity::find()
        .filter(recovery_code::Column::UserId.eq(user))
        .filter(recovery_code::Column::UsedAt.is_null())
        .count(state.store.connection())
        .await?)
}

/// Uses up `typed` if it is one of the user's unused codes; `otp_invalid` otherwise. The UPDATE also requires
/// that `key` is not locked, so a guess of a burst a parallel failure locked out is not tried.
pub async fn use_code(state: &AppState, key: &ThrottleKey, user: Uuid, typed: &str) -> AppResult<()> {
    let normalised = normalise(typed).ok_or(AppError::OtpInvalid)?;
    let used = recovery_code::Entity::update_many()
        .col_expr(recovery_code::Column::UsedAt, Expr::value(now()))
        .filter(recovery_code::Column::UserId.eq(user))
        .filter(recovery_code::Column::CodeHash.eq(code_hash(state, user, &normalised)))
        .filter(recovery_code::Column::UsedAt.is_null())
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

    #[test]
    fn codes_are_ten_unambiguous_characters_and_read_back_however_typed() {
        let codes: std::collections::HashSet<String> = (0..200).map(|_| new_code()).collect();
        assert_eq!(codes.len(), 200, "codes repeat");
        for code in &codes {
            assert_eq!(code.len(), 11);
            assert_eq!(&code[5..6], "-");
            let normalised = normalise(code).unwrap();
            assert_eq!(normalise(&code.to_uppercase()).as_deref(), Some(normalised.as_str()));
            assert_eq!(normalise(&normalised).as_deref(), Some(normalised.as_str()));
        }
        assert_eq!(normalise("abcde-fghi1"), None, "1 is not in the alphabet");
        assert_eq!(normalise("abcde-fghi"), None, "too short");
        assert_eq!(normalise("123456"), None);
    }
}
