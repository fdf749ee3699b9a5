//! The road every session change travels after the database has recorded it: to this node's
//! `SessionManager` in process, and on PostgreSQL through `LISTEN/NOTIFY` to every other node. A node
//! whose listening connection drops, or goes silent (its own heartbeat stops arriving), listens on a new
//! connection at once and catches up from the revocation log.
//!
//! What happens on the other nodes (PostgreSQL only) after a change commits on node A (node A's side: see
//! `services::revocation`), and when a node loses its listening connection:
//!
//! ```text
//! COMMIT on node A ──► NOTIFY delivered to every listener
//! PgListener task (own connection, application_name authd-listener-<node>)
//!   skips envelopes whose origin is itself
//!   manager.do_send(event)
//! SessionManager (B): the same handler as on node A
//!
//! B's listening connection drops, or goes silent (every 2 s B notifies its own channel
//! authd_heartbeat_<node> through the shared pool; 6 s without hearing anything, heartbeat included,
//! means a half-open connection that will never report an error):
//!   try_recv ends or times out ──► a new one-connection pool (the old connection is never handed back)
//!   ──► connect, LISTEN authd_events and the heartbeat channel ──► catch up:
//!   SELECT * FROM session_revocations WHERE revoked_at >= now - (ACCESS_TOKEN_TTL + 60 s)
//!   ──► manager.do_send(each) ──► already-marked sessions are skipped, missed ones are marked and pushed
//!   At once after a connection that served a while; 1 s apart while attempts fail right away. A catch-up
//!   that fails fails the attempt, so it is retried rather than skipped; the whole start has a 6 s limit.
//!
//! Start-up (every node, SQLite included): the same window is loaded and sent to the manager before the
//! server binds, so a restarted node refuses tokens of sessions that ended while it was down.
//! ```
//!
//! `notify_in_transaction` runs `pg_notify` inside the caller's transaction, so PostgreSQL delivers the message
//! only if the change commits; on SQLite it does nothing. A revocation payload carries at most 150 session ids.
//!
//! The cluster tests (`tests/api/cluster.rs`) check catch-up after the listening connection is terminated with
//! `pg_terminate_backend` and after its backend is stopped with SIGSTOP (a silent connection).

use std::time::Duration;

use actix::Addr;
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, Statement};
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgListener, PgPoolOptions};
use uuid::Uuid;

use super::{
    events::{Publisher, SecurityChanged, SessionCreated, SessionEvent, SessionsRevoked},
    session_lists::SessionLists,
    session_manager::SessionManager,
};

/// The PostgreSQL channel the nodes share.
const CHANNEL: &str = "authd_events";
/// PostgreSQL refuses NOTIFY payloads of 8000 bytes or more; revocations are split below this.
const SESSIONS_PER_NOTIFICATION: usize = 150;
/// The wait before listening again after an attempt that failed at once (the database is down, say); a
/// connection that served a while and dropped is replaced without waiting.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);
/// How often a node sends itself a notification on its own channel, through the shared pool.
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(2);
/// A listening connection that hears nothing for this long, not even its node's heartbeat, is taken for
/// dead (a half-open TCP connection never reports an error) and replaced.
const SILENCE_LIMIT: Duration = Duration::from_secs(6);

/// The format of the messages this version writes. A reader takes any version: fields it does not know are
/// ignored and an unknown revocation reason reads as `revoked`, so nodes of two versions can run side by side.
const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Envelope {
    /// Absent from the messages of versions before it was added, which are format 1.
    #[serde(default = "first_format")]
    version: u32,
    origin: Uuid,
    message: SessionEvent,
}

fn first_format() -> u32 {
    1
}

/// The `Publisher` of a node: its manager in process, the other nodes through PostgreSQL.
#[derive(Clone)]
pub struct EventBus {
    manager: Addr<SessionManager>,
    node: Uuid,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
    /// Every change that travels the bus drops the user's copy of the session list.
    lists: std::sync::Arc<SessionLists>,
    /// Counts the session ends this node has heard of, so the revocation feed reads the log at once.
    log_changed: tokio::sync::watch::Sender<u64>,
}

impl EventBus {
    pub fn new(
        manager: Addr<SessionManager>,
        node: Uuid,
        metrics: std::sync::Arc<crate::metrics::Metrics>,
        lists: std::sync::Arc<SessionLists>,
        log_changed: tokio::sync::watch::Sender<u64>,
    ) -> Self {
        Self {
            manager,
            node,
            metrics,
            lists,
            log_changed,
        }
    }

    /// Splits a revocation of many sessions into notifications PostgreSQL accepts.
    fn notifications(event: SessionEvent) -> Vec<SessionEvent> {
        match event {
            SessionEvent::Revoked(event) if event.sessions.len() > SESSIONS_PER_NOTIFICATION => event
                .sessions
                .chunks(SESSIONS_PER_NOTIFICATION)
                .map(|sessions| {
                    SessionEvent::Revoked(SessionsRevoked {
                        sessions: sessions.to_vec(),
                        ..event.clone()
                    })
                })
                .collect(),
            other => vec![other],
        }
    }

    /// The text other nodes receive for `event` (one notification).
    fn payload(&self, event: SessionEvent) -> Result<String, DbErr> {
        serde_json::to_string(&Envelope {
            version: FORMAT_VERSION,
            origin: self.node,
            message: event,
        })
        .map_err(|error| DbErr::Custom(format!("cannot write an event bus message: {error}")))
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
        let (manager, node, lists, log_changed) = (
            self.manager.clone(),
            self.node,
            self.lists.clone(),
            self.log_changed.clone(),
        );
        tokio::spawn(async move {
            loop {
                let started = std::time::Instant::now();
                // A pool of its own each time, so a connection taken for dead is never handed back.
                let pool = PgPoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(SILENCE_LIMIT)
                    .connect_lazy_with(options.clone());
                match listen(&pool, &manager, &lists, &log_changed, node, &catch_up).await {
                    Ok(()) => tracing::warn!("lost the event bus connection; listening again"),
                    Err(error) => tracing::warn!(%error, "the event bus failed; listening again"),
                }
                // While deaf, this node accepts tokens other nodes have revoked: listen again at once,
                // unless the last attempt failed right away.
                if started.elapsed() < SILENCE_LIMIT {
                    tokio::time::sleep(RECONNECT_DELAY).await;
                }
            }
        });
        spawn_heartbeat(database.clone(), node);
    }
}

impl Publisher for EventBus {
    /// A no-op on SQLite (one node).
    fn notify_in_transaction<'a>(
        &'a self,
        transaction: &'a DatabaseTransaction,
        event: SessionEvent,
    ) -> futures_util::future::BoxFuture<'a, Result<(), DbErr>> {
        Box::pin(async move {
            if transaction.get_database_backend() != DbBackend::Postgres {
                return Ok(());
            }
            for event in Self::notifications(event) {
                let payload = self.payload(event)?;
                transaction
                    .execute_raw(Statement::from_sql_and_values(
                        DbBackend::Postgres,
                        "SELECT pg_notify($1, $2)",
                        [CHANNEL.into(), payload.into()],
                    ))
                    .await?;
            }
            Ok(())
        })
    }

    fn sessions_revoked(&self, event: SessionsRevoked) -> futures_util::future::BoxFuture<'_, ()> {
        Box::pin(async move {
            if event.sessions.is_empty() {
                return;
            }
            self.lists.rows.invalidate(&event.user);
            self.metrics
                .revocations
                .with_label_values(&[event.reason.as_str()])
                .inc_by(event.sessions.len() as u64);
            if let Err(error) = self.manager.send(event).await {
                tracing::error!(%error, "the session manager did not take a revocation");
            }
            self.log_changed.send_modify(|count| *count += 1);
        })
    }

    fn session_created(&self, event: SessionCreated) {
        self.lists.rows.invalidate(&event.user);
        self.manager.do_send(event);
    }

    fn security_changed(&self, event: SecurityChanged) {
        self.manager.do_send(event);
    }

    /// As if it came from the other node: counted there, not here.
    fn missed_revocation(&self, event: SessionsRevoked) {
        self.lists.rows.invalidate(&event.user);
        self.manager.do_send(event);
        self.log_changed.send_modify(|count| *count += 1);
    }
}

/// The channel only `node` listens on, for its heartbeat.
fn heartbeat_channel(node: Uuid) -> String {
    format!("authd_heartbeat_{}", node.simple())
}

/// Sends the node's listening connection a notification every `HEARTBEAT_INTERVAL`, through the shared
/// pool, so a listener that stops hearing anything knows its connection is gone.
fn spawn_heartbeat(database: DatabaseConnection, node: Uuid) {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(HEARTBEAT_INTERVAL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            let beat = Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_notify($1, '')",
                [heartbeat_channel(node).into()],
            );
            if let Err(error) = database.execute_raw(beat).await {
                tracing::warn!(%error, "cannot send the event bus heartbeat");
            }
        }
    });
}

/// Why a node stopped listening.
#[derive(Debug, thiserror::Error)]
enum ListenError {
    #[error(transparent)]
    Connection(#[from] sqlx::Error),
    #[error("cannot catch up on revocations: {0}")]
    CatchUp(DbErr),
    #[error("heard nothing for {0:?}, not even the heartbeat")]
    Silent(Duration),
}

/// The `application_name` of a node's listening connection.
pub fn listener_name(node: Uuid) -> String {
    format!("authd-listener-{}", node.simple())
}

async fn listen<F, Fut>(
    pool: &sqlx::PgPool,
    manager: &Addr<SessionManager>,
    lists: &SessionLists,
    log_changed: &tokio::sync::watch::Sender<u64>,
    node: Uuid,
    catch_up: &F,
) -> Result<(), ListenError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Vec<SessionsRevoked>, DbErr>>,
{
    let start = async {
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen_all([CHANNEL, heartbeat_channel(node).as_str()]).await?;
        // Listening again: whatever ended while the node was deaf is in the log. The manager skips what it
        // knows. Sign-ins are not logged, so every list copy goes. A catch-up that fails is a failed
        // attempt: the node listens again and retries it, rather than going on without what it missed.
        lists.rows.invalidate_all();
        let events = catch_up().await.map_err(ListenError::CatchUp)?;
        events.into_iter().for_each(|event| manager.do_send(event));
        log_changed.send_modify(|count| *count += 1);
        Ok::<_, ListenError>(listener)
    };
    let mut listener = tokio::time::timeout(SILENCE_LIMIT, start)
        .await
        .map_err(|_| ListenError::Silent(SILENCE_LIMIT))??;
    loop {
        // Dropping the wait at the limit loses nothing: the connection is replaced and the log read again.
        let notification = match tokio::time::timeout(SILENCE_LIMIT, listener.try_recv()).await {
            Err(_) => return Err(ListenError::Silent(SILENCE_LIMIT)),
            Ok(received) => match received? {
                Some(notification) => notification,
                None => return Ok(()),
            },
        };
        if notification.channel() != CHANNEL {
            continue;
        }
        match serde_json::from_str::<Envelope>(notification.payload()) {
            Ok(envelope) if envelope.origin == node => {}
            Ok(Envelope {
                message: SessionEvent::Revoked(event),
                ..
            }) => {
                lists.rows.invalidate(&event.user);
                manager.do_send(event);
                log_changed.send_modify(|count| *count += 1);
            }
            Ok(Envelope {
                message: SessionEvent::Created(event),
                ..
            }) => {
                lists.rows.invalidate(&event.user);
                manager.do_send(event);
            }
            Ok(Envelope {
                message: SessionEvent::SecurityChanged(event),
                ..
            }) => manager.do_send(event),
            Err(error) => tracing::warn!(%error, "unreadable event bus message"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_of_other_versions_are_read_not_dropped() {
        let session = Uuid::now_v7();
        // A newer node: a later format, a field this version does not know, and a reason it does not either.
        let newer = format!(
            r#"{{"version": 2, "origin": "{}", "trace": "x", "message": {{"kind": "revoked", "user": "{}",
               "sessions": ["{session}"], "reason": "banned_by_admin", "revoked_at": "2026-12-02T00:00:00Z"}}}}"#,
            Uuid::now_v7(),
            Uuid::now_v7()
        );
        let envelope: Envelope = serde_json::from_str(&newer).unwrap();
        let SessionEvent::Revoked(event) = envelope.message else {
            panic!("a revocation");
        };
        assert_eq!(event.sessions, vec![session]);
        assert_eq!(event.reason, crate::domain::RevocationReason::Revoked);
        // An older node: no version field.
        let older = newer.replace(r#""version": 2, "#, "");
        assert_eq!(serde_json::from_str::<Envelope>(&older).unwrap().version, 1);
    }
}
