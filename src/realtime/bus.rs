//! The road every session change travels after the database has recorded it: to this node's
//! `SessionManager` in process, and on PostgreSQL through `LISTEN/NOTIFY` to every other node.

use actix::Addr;
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, Statement};
use serde::{Deserialize, Serialize};

use super::{
    events::{SessionCreated, SessionsRevoked},
    session_manager::SessionManager,
};

/// The PostgreSQL channel the nodes share.
pub const CHANNEL: &str = "authd_events";
/// PostgreSQL refuses NOTIFY payloads of 8000 bytes or more; events are split below this.
const SESSIONS_PER_NOTIFICATION: usize = 150;

/// What one node tells the others.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BusMessage {
    Revoked(SessionsRevoked),
    Created(SessionCreated),
}

#[derive(Clone)]
pub struct EventBus {
    manager: Addr<SessionManager>,
}

impl EventBus {
    pub fn new(manager: Addr<SessionManager>) -> Self {
        Self { manager }
    }

    /// Delivers a revocation to this node's manager and returns once its revoked set holds the sessions,
    /// so the revoking request answers only after its node refuses their tokens.
    pub async fn sessions_revoked(&self, event: SessionsRevoked) {
        if event.sessions.is_empty() {
            return;
        }
        if let Err(error) = self.manager.send(event).await {
            tracing::error!(%error, "the session manager did not take a revocation");
        }
    }

    pub fn session_created(&self, event: SessionCreated) {
        self.manager.do_send(event);
    }

    pub fn manager(&self) -> &Addr<SessionManager> {
        &self.manager
    }
}

/// Queues the message for the other nodes inside the transaction that records the change: PostgreSQL
/// delivers it on commit and never for a rolled-back change. A no-op on SQLite (one node).
pub async fn notify_in_transaction(
    transaction: &DatabaseTransaction,
    message: &BusMessage,
) -> Result<(), DbErr> {
    if transaction.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    let messages = match message {
        BusMessage::Revoked(event) if event.sessions.len() > SESSIONS_PER_NOTIFICATION => event
            .sessions
            .chunks(SESSIONS_PER_NOTIFICATION)
            .map(|sessions| {
                BusMessage::Revoked(SessionsRevoked {
                    sessions: sessions.to_vec(),
                    ..event.clone()
                })
            })
            .collect(),
        other => vec![other.clone()],
    };
    for message in messages {
        let payload =
            serde_json::to_string(&message).map_err(|error| DbErr::Custom(error.to_string()))?;
        transaction
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_notify($1, $2)",
                [CHANNEL.into(), payload.into()],
            ))
            .await?;
    }
    Ok(())
}
