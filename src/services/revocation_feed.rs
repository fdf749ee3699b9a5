//! The revocation feed for apps' backends (`GET /api/revocations/stream`): every ended session whose access
//! tokens could still be presented, then each session end as it happens on any node, read from the revocation
//! log (`session_revocations`, written by a trigger with every end, on every node).
//!
//! Each event's id is its log row's id. A subscriber that reconnects with `Last-Event-ID: N` gets the rows after
//! `N` and nothing before. Ids are handed out when a row is inserted and a transaction may commit after a later
//! one, so rows are delivered in id order only: a row waits while an id below it is missing, until that id
//! appears or `GAP_WAIT` has passed (an id a rolled-back change used never appears). A subscriber therefore
//! never skips a row that commits late and never gets a row twice.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use entity::session_revocation;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::Serialize;
use uuid::Uuid;

use super::{now, seconds};
use crate::tokens::revocation_window;

/// How long a missing id holds back the rows after it.
pub const GAP_WAIT: Duration = Duration::from_secs(5);
/// Rows read at once.
const PAGE: u64 = 500;

/// One ended session, as the feed sends it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FeedEvent {
    #[serde(skip)]
    pub id: i64,
    pub session_id: Uuid,
    pub user_id: Uuid,
    /// A `RevocationReason`.
    pub reason: String,
    pub ended_at: DateTime<Utc>,
    /// Until when an access token of the session could still be presented: after it, forget the session.
    pub valid_until: DateTime<Utc>,
}

/// Where a subscriber is in the log.
#[derive(Debug)]
pub struct Cursor {
    /// Every row up to this id has been delivered (or will never exist).
    position: i64,
    /// The first missing id above `position`, and since when it has been missing.
    gap: Option<(i64, Instant)>,
}

impl Cursor {
    /// Right after the row `position`.
    pub fn at(position: i64) -> Self {
        Self { position, gap: None }
    }

    /// The last row delivered.
    pub fn position(&self) -> i64 {
        self.position
    }

    /// After `last_event_id`, or, for a new subscriber, after the last row older than any token that may still
    /// be presented (the snapshot is the rest).
    pub async fn start(
        connection: &impl ConnectionTrait,
        last_event_id: Option<i64>,
        access_token_life: Duration,
    ) -> Result<Self, DbErr> {
        let position = match last_event_id {
            Some(id) => id,
            None => {
                let since = now() - seconds(revocation_window(access_token_life));
                session_revocation::Entity::find()
                    .filter(session_revocation::Column::RevokedAt.lt(since))
                    .order_by_desc(session_revocation::Column::Id)
                    .one(connection)
                    .await?
                    .map_or(0, |row| row.id)
            }
        };
        Ok(Self { position, gap: None })
    }

    /// The rows to deliver next, in id order; the cursor moves past them.
    pub async fn next(
        &mut self,
        connection: &impl ConnectionTrait,
        access_token_life: Duration,
    ) -> Result<Vec<FeedEvent>, DbErr> {
        let rows = session_revocation::Entity::find()
            .filter(session_revocation::Column::Id.gt(self.position))
            .order_by_asc(session_revocation::Column::Id)
            .limit(PAGE)
            .all(connection)
            .await?;
        let window = seconds(revocation_window(access_token_life));
        Ok(self
            .take(rows.iter().map(|row| row.id), Instant::now())
            .into_iter()
            .filter_map(|id| rows.iter().find(|row| row.id == id))
            .map(|row| FeedEvent {
                id: row.id,
                session_id: row.session_id,
                user_id: row.user_id,
                reason: row.reason.clone(),
                ended_at: row.revoked_at,
                valid_until: row.revoked_at + window,
            })
            .collect())
    }

    /// Of the ids read (ascending), those to deliver now: each next id in turn; past a missing id only once it
    /// has been missing for `GAP_WAIT`.
    fn take(&mut self, ids: impl Iterator<Item = i64>, at: Instant) -> Vec<i64> {
        let mut taken = Vec::new();
        for id in ids {
            let expected = self.position + 1;
            if id != expected {
                let since = match self.gap {
                    Some((missing, since)) if missing == expected => since,
                    _ => {
                        self.gap = Some((expected, at));
                        at
                    }
                };
                if at.duration_since(since) < GAP_WAIT {
                    break;
                }
            }
            self.gap = None;
            self.position = id;
            taken.push(id);
        }
        taken
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{Cursor, GAP_WAIT};

    #[test]
    fn rows_wait_for_a_missing_id_until_it_commits_or_never_will() {
        let start = Instant::now();
        let mut cursor = Cursor {
            position: 10,
            gap: None,
        };
        assert_eq!(cursor.take([11, 12].into_iter(), start), vec![11, 12]);
        // 13 is not committed yet: 14 waits.
        assert_eq!(cursor.take([14].into_iter(), start), Vec::<i64>::new());
        // 13 commits: both go, in order.
        assert_eq!(
            cursor.take([13, 14].into_iter(), start + Duration::from_millis(5)),
            vec![13, 14]
        );
        // 15 never comes (a rolled-back change): 16 goes once the wait is over, and not before.
        assert!(cursor.take([16].into_iter(), start).is_empty());
        assert!(cursor.take([16].into_iter(), start + GAP_WAIT / 2).is_empty());
        assert_eq!(cursor.take([16].into_iter(), start + GAP_WAIT), vec![16]);
        assert!(cursor.take(std::iter::empty(), start + GAP_WAIT).is_empty());
    }
}
