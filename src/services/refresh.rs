//! Refresh token rotation: a compare-and-swap ends the presented token; every presentation inside the grace
//! window answers the same successor; a presentation after it means the token was copied, and the session ends.

use entity::{refresh_token, session};
use sea_orm::{
    ColumnTrait, EntityTrait, QueryFilter, TransactionTrait,
    sea_query::{Expr, Query},
};

use super::{
    AppState, now,
    revocation::{self, Scope},
    seconds,
    sessions::{self, SignedIn, insert_refresh_token},
    users,
};
use crate::{
    domain::RevocationReason,
    email::Mail,
    error::{AppError, AppResult},
    tokens::{hash_token, is_well_formed},
};

/// The live session a refresh token belongs to, or why there is none.
pub async fn session_of(state: &AppState, token: &str) -> AppResult<(refresh_token::Model, session::Model)> {
    if !is_well_formed(token) {
        return Err(AppError::RefreshTokenInvalid);
    }
    let stored = refresh_token::Entity::find()
        .filter(refresh_token::Column::TokenHash.eq(hash_token(token)))
        .one(&state.database)
        .await?
        .ok_or(AppError::RefreshTokenInvalid)?;
    let owner = session::Entity::find_by_id(stored.session_id)
        .one(&state.database)
        .await?
        .filter(|owner| owner.revoked_at.is_none())
        .ok_or(AppError::RefreshTokenInvalid)?;
    Ok((stored, owner))
}

pub async fn refresh(state: &AppState, token: &str) -> AppResult<SignedIn> {
    let outcome = rotate(state, token).await;
    let label = match &outcome {
        Ok(_) => "success",
        Err(error) => error.code(),
    };
    state.metrics.refreshes.with_label_values(&[label]).inc();
    if matches!(outcome, Err(AppError::RefreshTokenReused)) {
        state.metrics.refresh_reuse_detected.inc();
    }
    outcome
}

async fn rotate(state: &AppState, token: &str) -> AppResult<SignedIn> {
    let (stored, owner) = session_of(state, token).await?;
    let at = now();
    if sessions::is_expired(state, &owner, at) {
        revocation::end_sessions(state, owner.user_id, Scope::One(owner.id), RevocationReason::Expired).await?;
        return Err(AppError::SessionExpired);
    }
    // The answer's `user` comes from the node's short-lived copy, as `GET /api/users/me` does.
    let user = users::view(state, owner.user_id)
        .await
        .map_err(|_| AppError::RefreshTokenInvalid)?;
    let successor = state.refresh_keys.refresh_successor(token);

    let rotated_at = match stored.rotated_at {
        Some(rotated_at) => rotated_at,
        None => {
            let turn = state.write_turn().await;
            let transaction = state.database.begin().await?;
            // One statement swaps the token and checks the session is still live: a revocation that
            // committed since the session was read wins, and an ended session never gets a successor.
            let live_session = Query::select()
                .expr(Expr::value(1))
                .from(session::Entity)
                .and_where(session::Column::Id.eq(owner.id))
                .and_where(session::Column::RevokedAt.is_null())
                .to_owned();
            let swapped = refresh_token::Entity::update_many()
                .col_expr(refresh_token::Column::RotatedAt, Expr::value(at))
                .filter(refresh_token::Column::Id.eq(stored.id))
                .filter(refresh_token::Column::RotatedAt.is_null())
                .filter(Expr::exists(live_session))
                .exec(&transaction)
                .await?;
            if swapped.rows_affected == 1 {
                insert_refresh_token(&transaction, owner.id, &successor, at).await?;
                // The idle limit is long: a precision of a tenth of it (a minute at most) spares most
                // refreshes a write.
                let precision = (seconds(state.settings.session_idle_ttl) / 10).min(chrono::Duration::minutes(1));
                let touched = at - owner.last_used_at >= precision;
                if touched {
                    session::Entity::update_many()
                        .col_expr(session::Column::LastUsedAt, Expr::value(at))
                        .filter(session::Column::Id.eq(owner.id))
                        .exec(&transaction)
                        .await?;
                }
                transaction.commit().await?;
                drop(turn);
                let owner = if touched {
                    session::Model {
                        last_used_at: at,
                        ..owner
                    }
                } else {
                    owner
                };
                return sessions::token_pair(state, user, &owner, successor, at);
            }
            transaction.rollback().await?;
            drop(turn);
            // A parallel refresh with the same token won the swap: answer as it did.
            refresh_token::Entity::find_by_id(stored.id)
                .one(&state.database)
                .await?
                .and_then(|current| current.rotated_at)
                .ok_or(AppError::RefreshTokenInvalid)?
        }
    };

    if at - rotated_at <= seconds(state.settings.refresh_grace) {
        return sessions::token_pair(state, user, &owner, successor, at);
    }
    let notice = Mail::RefreshTokenReused {
        device: owner.device.clone(),
    };
    revocation::end_sessions_telling(
        state,
        owner.user_id,
        Scope::One(owner.id),
        RevocationReason::RefreshTokenReused,
        Some((&user.email, &notice)),
    )
    .await?;
    Err(AppError::RefreshTokenReused)
}
