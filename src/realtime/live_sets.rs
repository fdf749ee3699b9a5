//! Sets the request path reads without awaiting the actor or touching the database. The `SessionManager`
//! holds the only writer of each; handlers get read-only views.
//!
//! The manager holds the only `RevokedSessions` handle; handlers hold `RevokedSessionsView`, which can only read.
//! Each entry is kept until `revoked_at + ACCESS_TOKEN_TTL + 60 s` (the leeway twice: a token's `iat` may run 30 s
//! ahead), after which no access token of the session can pass `AccessTokens::check_life` on this node: its `iat`
//! bound makes that true even for a token issued under a longer `ACCESS_TOKEN_TTL` (before a restart that
//! lowered it, or by a node set otherwise). The manager prunes expired entries every 60 seconds.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::RevocationReason;

/// Sessions ended recently enough that one of their access tokens could still be presented, each with
/// the time after which that is no longer possible and why it ended.
pub struct RevokedSessions {
    entries: Arc<RwLock<HashMap<Uuid, Ended>>>,
}

#[derive(Clone)]
pub struct RevokedSessionsView {
    entries: Arc<RwLock<HashMap<Uuid, Ended>>>,
}

#[derive(Clone, Copy)]
struct Ended {
    forget_at: DateTime<Utc>,
    reason: RevocationReason,
}

impl RevokedSessions {
    pub fn new() -> (Self, RevokedSessionsView) {
        let entries = Arc::new(RwLock::new(HashMap::new()));
        (
            Self {
                entries: entries.clone(),
            },
            RevokedSessionsView { entries },
        )
    }

    /// Marks a session ended for `reason` until `forget_at`; true when it was not marked before.
    pub fn insert(&self, session: Uuid, forget_at: DateTime<Utc>, reason: RevocationReason) -> bool {
        let mut entries = self.entries.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        entries.insert(session, Ended { forget_at, reason }).is_none()
    }

    /// Why the session ended, while it is marked.
    pub fn reason_of(&self, session: &Uuid) -> Option<RevocationReason> {
        self.entries
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(session)
            .map(|ended| ended.reason)
    }

    /// Drops entries whose tokens have all expired.
    pub fn prune(&self, now: DateTime<Utc>) {
        let mut entries = self.entries.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        entries.retain(|_, ended| ended.forget_at > now);
    }

    pub fn len(&self) -> usize {
        self.entries
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl RevokedSessionsView {
    pub fn contains(&self, session: &Uuid) -> bool {
        self.reason_of(session).is_some()
    }

    /// Why the session ended, while it is marked.
    pub fn reason_of(&self, session: &Uuid) -> Option<RevocationReason> {
        self.entries
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(session)
            .map(|ended| ended.reason)
    }
}

/// Sessions with at least one WebSocket open on this node, with how many.
pub struct LocalPresence {
    counts: Arc<RwLock<HashMap<Uuid, usize>>>,
}

#[derive(Clone)]
pub struct LocalPresenceView {
    counts: Arc<RwLock<HashMap<Uuid, usize>>>,
}

impl LocalPresence {
    pub fn new() -> (Self, LocalPresenceView) {
        let counts = Arc::new(RwLock::new(HashMap::new()));
        (Self { counts: counts.clone() }, LocalPresenceView { counts })
    }

    /// Counts one more socket; true when the session just came online here.
    pub fn add(&self, session: Uuid) -> bool {
        let mut counts = self.counts.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = counts.entry(session).or_insert(0);
        *count += 1;
        *count == 1
    }

    /// Counts one socket fewer; true when the session just went offline here.
    pub fn remove(&self, session: Uuid) -> bool {
        let mut counts = self.counts.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        match counts.get_mut(&session) {
            Some(count) if *count > 1 => {
                *count -= 1;
                false
            }
            Some(_) => {
                counts.remove(&session);
                true
            }
            None => false,
        }
    }
}

impl LocalPresenceView {
    pub fn is_online(&self, session: &Uuid) -> bool {
        self.counts
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .contains_key(session)
    }

    pub fn socket_count(&self) -> usize {
        self.counts
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .values()
            .sum()
    }
}
