//! The road every session change travels after the database has recorded it: to this node's
//! `SessionManager` in process, and on PostgreSQL through `LISTEN/NOTIFY` to every other node. A node
//! whose listening connection drops catches up from the revocation log once it listens again.

use std::time::Duration;

use actix::Addr;
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, Statement};
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgListener, PgPoolOptions};
use uuid::Uuid;

use super::{
    events::{SessionCreated, SessionsRevoked},
    session_lists::SessionLists,
    session_manager::SessionManager,
};

/// The PostgreSQL channel the nodes share.
pub const CHANNEL: &str = "authd_events";
/// PostgreSQL refuses NOTIFY payloads of 8000 bytes or more; revocations are split below this.
const SESSIONS_PER_NOTIFICATION: usize = 150;
/// The wait before listening again after the connection dropped.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// What one node tells the others.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BusMessage {
    Revoked(SessionsRevoked),
    Created(SessionCreated),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Envelope {
    origin: Uuid,
    message: BusMessage,
}

#[derive(Clone)]
pub struct EventBus {
    manager: Addr<SessionManager>,
    node: Uuid,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
    lists: std::sync::Arc<SessionLists>,
}

impl EventBus {
    pub fn new(manager: Addr<SessionManager>, node: Uuid, metrics: std::sync::Arc<crate::metrics::Metrics>) -> Self {
        Self {
            manager,
            node,
            metrics,
            lists: Default::default(),
        }
    }

    /// The node's copies of session lists; every change that travels the bus drops the user's copy.
    pub fn session_lists(&self) -> &SessionLists {
        &self.lists
    }

    /// This node's id; it names the node's presence rows and its listening connection.
    pub fn node(&self) -> Uuid {
        self.node
    }

    pub fn manager(&self) -> &Addr<SessionManager> {
        &self.manager
    }

    /// Delivers a revocation to this node's manager and returns once its revoked set holds the sessions,
    /// so the revoking request answers only after its node refuses their tokens.
    pub async fn sessions_revoked(&self, event: SessionsRevoked) {
        if event.sessions.is_empty() {
            return;
        }
        self.lists.rows.forget(&event.user);
        self.metrics
            .revocations
            .with_label_values(&[event.reason.as_str()])
            .inc_by(event.sessions.len() as u64);
        if let Err(error) = self.manager.send(event).await {
            tracing::error!(%error, "the session manager did not take a revocation");
        }
    }

    pub fn session_created(&self, event: SessionCreated) {
        self.lists.rows.forget(&event.user);
        self.manager.do_send(event);
    }

    /// Queues the message for the other nodes inside the transaction that records the change: PostgreSQL
    /// delivers it on commit and never for a rolled-back change. A no-op on SQLite (one node).
    pub async fn notify_in_transaction(
        &self,
        transaction: &DatabaseTransaction,
        message: BusMessage,
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
            other => vec![other],
        };
        for message in messages {
            let payload = self.payload(&message)?;
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

    /// The text other nodes receive for `message` (one notification; callers split long revocations).
    pub fn payload(&self, message: &BusMessage) -> Result<String, DbErr> {
        serde_json::to_string(&Envelope {
            origin: self.node,
            message: message.clone(),
        })
        .map_err(|error| DbErr::Custom(error.to_string()))
    }

    /// On PostgreSQL, listens for the other nodes' messages for as long as the process lives.
    /// `catch_up` loads what may have been missed; it runs each time the node listens again.
    pub fn spawn_listener<F, Fut>(&self, database: &DatabaseConnection, catch_up: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<SessionsRevoked>, DbErr>> + Send,
    {
        if database.get_database_backend() != DbBackend::Postgres {
            return;
        }
        let options = database
            .get_postgres_connection_pool()
            .connect_options()
            .as_ref()
            .clone()
            .application_name(&listener_name(self.node));
        let pool = PgPoolOptions::new().max_connections(1).connect_lazy_with(options);
        let (manager, node, lists) = (self.manager.clone(), self.node, self.lists.clone());
        tokio::spawn(async move {
            loop {
                match listen(&pool, &manager, &lists, node, &catch_up).await {
                    Ok(()) => tracing::warn!("lost the event bus connection; listening again"),
                    Err(error) => tracing::warn!(%error, "the event bus failed; listening again"),
                }
                tokio::time::sleep(RECONNECT_DELAY).await;
            }
        });
    }
}

/// The `application_name` of a node's listening connection.
pub fn listener_name(node: Uuid) -> String {
    format!("authd-listener-{}", node.simple())
}

async fn listen<F, Fut>(
    pool: &sqlx::PgPool,
    manager: &Addr<SessionManager>,
    lists: &SessionLists,
    node: Uuid,
    catch_up: &F,
) -> Result<(), sqlx::Error>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Vec<SessionsRevoked>, DbErr>>,
{
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    // Listening again: whatever ended while the node was deaf is in the log. The manager skips what it knows.
    // Sign-ins are not logged, so every list copy goes.
    lists.rows.forget_all();
    match catch_up().await {
        Ok(events) => events.into_iter().for_each(|event| manager.do_send(event)),
        Err(error) => tracing::warn!(%error, "cannot catch up on revocations"),
    }
    while let Some(notification) = listener.try_recv().await? {
        match serde_json::from_str::<Envelope>(notification.payload()) {
            Ok(envelope) if envelope.origin == node => {}
            Ok(Envelope {
                message: BusMessage::Revoked(event),
                ..
            }) => {
                lists.rows.forget(&event.user);
                manager.do_send(event);
            }
            Ok(Envelope {
                message: BusMessage::Created(event),
                ..
            }) => {
                lists.rows.forget(&event.user);
                manager.do_send(event);
            }
            Err(error) => tracing::warn!(%error, "unreadable event bus message"),
        }
    }
    Ok(())
}
