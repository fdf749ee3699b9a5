//! Single-use WebSocket tickets: 30 s, bound to a session, stored as a hash so any node accepts each once.
//!
//! Admitting a socket (by ticket or Bearer token) requires a live session, and uses the ticket up only after
//! every other check passed. Tickets expired for over 5 minutes are deleted whenever a new one is issued.

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
        .exec(state.store.connection())
        .await?;
    ws_ticket::Entity::insert(ws_ticket::ActiveModel {
        ticket_hash: Set(hash_token(&ticket)),
        session_id: Set(session),
        user_id: Set(user),
        expires_at: Set(at + Duration::seconds(TICKET_SECONDS)),
        used_at: Set(None),
    })
    .exec(state.store.connection())
    .await?;
    Ok(ticket)
}

/// How a socket proves who it is.
pub enum Credential<'a> {
    /// An access token, already verified and checked against the revoked set.
    Bearer {
        user: Uuid,
        session: Uuid,
    },
    Ticket(&'a str),
}

/// A socket allowed in, and when its session ends unless something happens.
pub struct SocketGrant {
    pub user: Uuid,
    pub session: Uuid,
    pub ends_at: chrono::DateTime<chrono::Utc>,
}

/// Lets a socket in for a live session. `reserve` takes what the socket will hold (its place under the caps)
/// once the session is known to be live; a ticket is used up only after that has passed too.
pub async fn admit<Reserved>(
    state: &AppState,
    credential: Credential<'_>,
    reserve: impl FnOnce(Uuid, Uuid) -> AppResult<Reserved>,
) -> AppResult<(SocketGrant, Reserved)> {
    let (user, session, ticket) = match credential {
        Credential::Bearer { user, session } => (user, session, None),
        Credential::Ticket(ticket) => {
            let (user, session) = peek(state, ticket).await?;
            (user, session, Some(ticket))
        }
    };
    if state.live_sets.revoked.contains(&session) {
        return Err(AppError::SessionRevoked);
    }
    let live = super::sessions::live(state, session).await?;
    let reserved = reserve(user, session)?;
    if let Some(ticket) = ticket {
        redeem(state, ticket).await?;
    }
    let grant = SocketGrant {
        user,
        session,
        ends_at: super::sessions::ends_at(state, &live),
    };
    Ok((grant, reserved))
}

/// The user and session of a usable ticket, without using it.
async fn peek(state: &AppState, ticket: &str) -> AppResult<(Uuid, Uuid)> {
    if !is_well_formed(ticket) {
        return Err(AppError::Unauthorized);
    }
    let stored = ws_ticket::Entity::find_by_id(hash_token(ticket))
        .one(state.store.connection())
        .await?
        .ok_or(AppError::Unauthorized)?;
    if stored.used_at.is_some() || stored.expires_at <= now() {
        return Err(AppError::Unauthorized);
    }
    Ok((stored.user_id, stored.session_id))
}

/// Uses a ticket up. A conditional UPDATE lets exactly one of any number of parallel presentations, on
/// any node, succeed.
async fn redeem(state: &AppState, ticket: &str) -> AppResult<()> {
    let used = ws_ticket::Entity::update_many()
        .col_expr(ws_ticket::Column::UsedAt, Expr::value(now()))
        .filter(ws_ticket::Column::TicketHash.eq(hash_token(ticket)))
        .filter(ws_ticket::Column::UsedAt.is_null())
        .exec(state.store.connection())
        .await?;
    if used.rows_affected == 1 {
        Ok(())
    } else {
        Err(AppError::Unauthorized)
    }
}
