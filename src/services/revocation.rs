//! The one road every session end takes: record it in the database (session row, revocation log, and on
//! PostgreSQL a notification to the other nodes, all in one transaction), then hand it to this node's
//! `SessionManager`, which refuses the session's tokens and tells its devices.

use chrono::{DateTime, Utc};
use entity::{session, session_revocation};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, EntityTrait, QueryFilter, TransactionTrait,
    sea_query::{Expr, ExprTrait},
};
use uuid::Uuid;

use super::{AppState, now};
use crate::{
    domain::RevocationReason,
    email::Mail,
    error::AppResult,
    realtime::{
        bus::{BusMessage, EventBus},
        events::SessionsRevoked,
    },
};

/// Which sessions of a user end.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    One(Uuid),
    All,
    AllExcept(Uuid),
}

/// Ends the live sessions of `user` in `scope`; answers the ids that were live and are now ended.
pub async fn end_sessions(
    state: &AppState,
    user: Uuid,
    scope: Scope,
    reason: RevocationReason,
) -> AppResult<Vec<Uuid>> {
    end_sessions_telling(state, user, scope, reason, None).await
}

/// Like `end_sessions`, and queues `notice` to `address` in the same transaction when a session ended.
pub async fn end_sessions_telling(
    state: &AppState,
    user: Uuid,
    scope: Scope,
    reason: RevocationReason,
    notice: Option<(&str, &Mail)>,
) -> AppResult<Vec<Uuid>> {
    let mut mail_queued = false;
    let event = if notice.is_none() && state.database.get_database_backend() == DbBackend::Sqlite {
        // One statement, its log rows written by the trigger: it takes its turn like the other hot writes.
        let turn = state.write_turn().await;
        let event = end_rows(&state.database, user, scope, reason, now()).await?;
        drop(turn);
        event
    } else {
        let transaction = state.database.begin().await?;
        let event = record(&state.bus, &transaction, user, scope, reason, now()).await?;
        if let Some((address, mail)) = notice
            && !event.sessions.is_empty()
        {
            state.mailer.queue(&transaction, address, mail).await?;
            mail_queued = true;
        }
        transaction.commit().await?;
        event
    };
    // Waking the sender costs it a read of the outbox, so only a queued mail does.
    if mail_queued {
        state.mailer.wake();
    }
    let ended = event.sessions.clone();
    state.bus.sessions_revoked(event).await;
    Ok(ended)
}

/// What `end_if_over` found.
pub enum Expiry {
    /// The session lives; it could end at this moment next.
    Later(DateTime<Utc>),
    /// The session is over: ended now for its age, or earlier (gone with its account counts as `revoked`).
    Over {
        reason: RevocationReason,
        at: DateTime<Utc>,
    },
}

/// Ends a session that has reached its absolute or idle limit. When it has not, answers the moment it
/// next could.
pub async fn end_if_over(state: &AppState, id: Uuid) -> AppResult<Expiry> {
    let Some(model) = session::Entity::find_by_id(id).one(&state.database).await? else {
        return Ok(Expiry::Over {
            reason: RevocationReason::Revoked,
            at: now(),
        });
    };
    if let Some(at) = model.revoked_at {
        let reason = model
            .revoked_reason
            .as_deref()
            .and_then(RevocationReason::parse)
            .unwrap_or(RevocationReason::Revoked);
        return Ok(Expiry::Over { reason, at });
    }
    if super::sessions::is_expired(state, &model, now()) {
        end_sessions(state, model.user_id, Scope::One(model.id), RevocationReason::Expired).await?;
        return Ok(Expiry::Over {
            reason: RevocationReason::Expired,
            at: now(),
        });
    }
    Ok(Expiry::Later(super::sessions::ends_at(state, &model)))
}

/// The database half of a revocation, inside the caller's transaction: the sessions' rows, the revocation
/// log and, on PostgreSQL, the notification to the other nodes. The first statement writes, so SQLite takes
/// its write lock at once instead of failing a read-then-write upgrade.
pub async fn record(
    bus: &EventBus,
    transaction: &DatabaseTransaction,
    user: Uuid,
    scope: Scope,
    reason: RevocationReason,
    at: DateTime<Utc>,
) -> Result<SessionsRevoked, DbErr> {
    let event = end_rows(transaction, user, scope, reason, at).await?;
    if event.sessions.is_empty() || transaction.get_database_backend() == DbBackend::Sqlite {
        // On SQLite the log is the trigger's (migration `log_revocations_in_sqlite`), and there is no other node.
        return Ok(event);
    }
    session_revocation::Entity::insert_many(event.sessions.iter().map(|session| session_revocation::ActiveModel {
        id: NotSet,
        session_id: Set(*session),
        user_id: Set(user),
        reason: Set(reason.as_str().to_owned()),
        revoked_at: Set(at),
    }))
    .exec(transaction)
    .await?;
    bus.notify_in_transaction(transaction, BusMessage::Revoked(event.clone()))
        .await?;
    Ok(event)
}

/// Marks the live sessions of `user` in `scope` ended; answers the ids it ended.
async fn end_rows(
    connection: &impl ConnectionTrait,
    user: Uuid,
    scope: Scope,
    reason: RevocationReason,
    at: DateTime<Utc>,
) -> Result<SessionsRevoked, DbErr> {
    let update = session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(at))
        .col_expr(session::Column::RevokedReason, Expr::value(reason.as_str()))
        .filter(session::Column::UserId.eq(user))
        .filter(session::Column::RevokedAt.is_null());
    let update = match scope {
        Scope::One(id) => update.filter(session::Column::Id.eq(id)),
        Scope::All => update,
        Scope::AllExcept(keep) => update.filter(session::Column::Id.ne(keep)),
    };
    let sessions: Vec<Uuid> = update
        .exec_with_returning(connection)
        .await?
        .into_iter()
        .map(|model| model.id)
        .collect();
    Ok(SessionsRevoked {
        user,
        sessions,
        reason,
        revoked_at: at,
    })
}

/// Revocations recent enough that their sessions' access tokens may still be presented, grouped into
/// events: loaded at start and after the bus reconnects, so neither opens a window.
pub async fn recent(
    connection: &impl sea_orm::ConnectionTrait,
    since: DateTime<Utc>,
) -> Result<Vec<SessionsRevoked>, DbErr> {
    let rows = session_revocation::Entity::find()
        .filter(session_revocation::Column::RevokedAt.gte(since))
        .all(connection)
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| SessionsRevoked {
            user: row.user_id,
            sessions: vec![row.session_id],
            reason: RevocationReason::parse(&row.reason).unwrap_or(RevocationReason::Revoked),
            revoked_at: row.revoked_at,
        })
        .collect())
}

/// Ends the sessions past their absolute or idle limit that nobody noticed (no socket open, no refresh),
/// so their devices elsewhere hear of it and lists stay true.
pub async fn end_expired(state: &AppState) -> AppResult<usize> {
    let at = now();
    let idle_since = at - super::seconds(state.settings.session_idle_ttl);
    let expired = session::Entity::find()
        .filter(session::Column::RevokedAt.is_null())
        .filter(
            session::Column::ExpiresAt
                .lte(at)
                .or(session::Column::LastUsedAt.lte(idle_since)),
        )
        .all(&state.database)
        .await?;
    let mut ended = 0;
    for model in expired {
        ended += end_sessions(state, model.user_id, Scope::One(model.id), RevocationReason::Expired)
            .await?
            .len();
    }
    Ok(ended)
}
