//! Single-use WebSocket tickets: 30 s, bound to a session, stored as a hash so any node accepts each once.

use chrono::Duration;
use entity::ws_ticket;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
use uuid::Uuid;

use super::{AppState, now};
use crate::{
    error::{AppError, AppResult},
    tokens::{hash_token, is_well_formed, new_opaque_token},
};

pub const TICKET_SECONDS: i64 = 30;

pub async fn issue(state: &AppState, user: Uuid, session: Uuid) -> AppResult<String> {
    let ticket = new_opaque_token();
    let at = now();
    // Old tickets are of no use to anyone: clear them on the way.
    ws_ticket::Entity::delete_many()
        .filter(ws_ticket::Column::ExpiresAt.lt(at - Duration::minutes(5)))
        .exec(&state.database)
        .await?;
    ws_ticket::Entity::insert(ws_ticket::ActiveModel {
        ticket_hash: Set(hash_token(&ticket)),
        session_id: Set(session),
        user_id: Set(user),
        expires_at: Set(at + Duration::seconds(TICKET_SECONDS)),
        used_at: Set(None),
    })
    .exec(&state.database)
    .await?;
    Ok(ticket)
}

/// Uses a ticket up and answers its user and session. A conditional UPDATE lets exactly one of any
/// number of parallel presentations, on any node, succeed.
pub async fn redeem(state: &AppState, ticket: &str) -> AppResult<(Uuid, Uuid)> {
    if !is_well_formed(ticket) {
        return Err(AppError::Unauthorized);
    }
    let hash = hash_token(ticket);
    let stored = ws_ticket::Entity::find_by_id(hash.clone())
        .one(&state.database)
        .await?
        .ok_or(AppError::Unauthorized)?;
    let at = now();
    if stored.used_at.is_some() || stored.expires_at <= at {
        return Err(AppError::Unauthorized);
    }
    let used = ws_ticket::Entity::update_many()
        .col_expr(ws_ticket::Column::UsedAt, Expr::value(at))
        .filter(ws_ticket::Column::TicketHash.eq(hash))
        .filter(ws_ticket::Column::UsedAt.is_null())
        .exec(&state.database)
        .await?;
    if used.rows_affected == 1 {
        Ok((stored.user_id, stored.session_id))
    } else {
        Err(AppError::Unauthorized)
    }
}
