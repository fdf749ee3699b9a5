//! Presence shared between nodes: each node records in the database which sessions have a socket open on
//! it, and refreshes those rows on a heartbeat. A row older than `STALE_AFTER` no longer counts, so the
//! sessions of a crashed node go offline within a minute.
//!
//! - The manager counts sockets per session on this node (`LocalPresence`). When a session's first socket opens
//!   here it sends `online` to the node's `PresenceWriter`, and when its last socket closes, `offline`.
//! - The `PresenceWriter` is an unbounded channel into one task per node, so the node's changes reach the
//!   database in order. `online` upserts `(node_id, session_id, user_id, seen_at)`; `offline` deletes the row.
//! - Every 15 s the task sets `seen_at = now` on all of the node's rows (when it has any) and deletes rows of any
//!   node unseen for an hour.
//! - A row counts only if `seen_at` is under 45 s old. A crashed node stops its heartbeat, so its sessions show
//!   offline within 60 s (at most 15 s since its last heartbeat, then 45 s).
//! - `GET /api/auth/sessions` marks a session `online` when the local view has it or a fresh row for it exists
//!   on any node.
//!
//! The cluster tests check presence across nodes, a crashed node's stale presence, and a lost presence row
//! written again by the heartbeat.

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use chrono::{DateTime, Utc};
use entity::session_presence;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, sea_query::OnConflict,
};
use tokio::sync::mpsc;
use uuid::Uuid;

pub const HEARTBEAT: Duration = Duration::from_secs(15);
pub const STALE_AFTER: Duration = Duration::from_secs(45);

#[derive(Debug)]
enum Change {
    Online { session: Uuid, user: Uuid },
    Offline { session: Uuid },
}

/// Sends this node's presence changes, in order, to one writer task.
#[derive(Clone)]
pub struct PresenceWriter {
    changes: mpsc::UnboundedSender<Change>,
}

impl PresenceWriter {
    pub fn start(database: DatabaseConnection, node: Uuid) -> Self {
        let (changes, receiver) = mpsc::unbounded_channel();
        tokio::spawn(write_changes(database, node, receiver));
        Self { changes }
    }

    pub fn online(&self, session: Uuid, user: Uuid) {
        let _ = self.changes.send(Change::Online { session, user });
    }

    pub fn offline(&self, session: Uuid) {
        let _ = self.changes.send(Change::Offline { session });
    }
}

async fn write_changes(database: DatabaseConnection, node: Uuid, mut changes: mpsc::UnboundedReceiver<Change>) {
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    // Each session with a socket here, with its user.
    let mut online: HashMap<Uuid, Uuid> = HashMap::new();
    loop {
        let outcome = tokio::select! {
            change = changes.recv() => match change {
                Some(Change::Online { session, user }) => {
                    online.insert(session, user);
                    upsert(&database, node, [(session, user)]).await
                }
                Some(Change::Offline { session }) => {
                    online.remove(&session);
                    session_presence::Entity::delete_many()
                        .filter(session_presence::Column::NodeId.eq(node))
                        .filter(session_presence::Column::SessionId.eq(session))
                        .exec(&database)
                        .await
                        .map(|_| ())
                }
                None => return,
            },
            _ = heartbeat.tick() => refresh(&database, node, &online).await,
        };
        if let Err(error) = outcome {
            tracing::warn!(%error, "cannot record presence");
        }
    }
}

async fn upsert(
    database: &DatabaseConnection,
    node: Uuid,
    sessions: impl IntoIterator<Item = (Uuid, Uuid)>,
) -> Result<(), DbErr> {
    let seen_at = crate::clock::now();
    let rows: Vec<_> = sessions
        .into_iter()
        .map(|(session, user)| session_presence::ActiveModel {
            node_id: Set(node),
            session_id: Set(session),
            user_id: Set(user),
            seen_at: Set(seen_at),
        })
        .collect();
    // Four parameters a row: chunks keep each statement far below PostgreSQL's 65,535.
    for chunk in rows.chunks(1_000) {
        session_presence::Entity::insert_many(chunk.to_vec())
            .on_conflict(
                OnConflict::columns([session_presence::Column::NodeId, session_presence::Column::SessionId])
                    .update_column(session_presence::Column::SeenAt)
                    .to_owned(),
            )
            .exec(database)
            .await?;
    }
    Ok(())
}

async fn refresh(database: &DatabaseConnection, node: Uuid, online: &HashMap<Uuid, Uuid>) -> Result<(), DbErr> {
    if !online.is_empty() {
        let refreshed = session_presence::Entity::update_many()
            .col_expr(
                session_presence::Column::SeenAt,
                sea_orm::sea_query::Expr::value(crate::clock::now()),
            )
            .filter(session_presence::Column::NodeId.eq(node))
            .exec(database)
            .await?;
        // A row is missing (a write that failed, or rows pruned while this node could not reach the
        // database): write them all again, or other nodes would show a connected session as offline.
        if refreshed.rows_affected < online.len() as u64 {
            upsert(database, node, online.iter().map(|(session, user)| (*session, *user))).await?;
        }
    }
    // Rows of nodes gone for an hour are of no use to anyone.
    session_presence::Entity::delete_many()
        .filter(session_presence::Column::SeenAt.lt(crate::clock::now() - chrono::Duration::hours(1)))
        .exec(database)
        .await?;
    Ok(())
}

/// The sessions among `sessions` that have a socket on any node, as the database last heard.
pub async fn online_elsewhere(
    database: &DatabaseConnection,
    sessions: &[Uuid],
    now: DateTime<Utc>,
) -> Result<HashSet<Uuid>, DbErr> {
    if sessions.is_empty() {
        return Ok(HashSet::new());
    }
    let fresh_after = now - chrono::Duration::from_std(STALE_AFTER).unwrap_or_default();
    let rows = session_presence::Entity::find()
        .filter(session_presence::Column::SessionId.is_in(sessions.iter().copied()))
        .all(database)
        .await?;
    Ok(rows
        .into_iter()
        .filter(|row| row.seen_at > fresh_after)
        .map(|row| row.session_id)
        .collect())
}
