//! A short-lived per-node copy of each user's live session rows for `GET /api/auth/sessions`, so a list
//! costs no query while nothing changes. Every change a node learns of drops the user's copy at once: its
//! own sign-ins, revocations and refreshes, and the other nodes' sign-ins and revocations through the bus.
//! What the bus does not carry (another node's refresh moving `last_used_at`) shows within `LIST_LIFE`.
//! Expiry and local `online` are worked out on every read. Which sessions have a socket on another node
//! (PostgreSQL only) is copied apart, for `PRESENCE_LIFE`: it changes without any event here, and a session
//! seen from another node's heartbeat is already that node's last word.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use entity::session;
use uuid::Uuid;

const LIST_LIFE: Duration = Duration::from_secs(1);
const LIST_LIMIT: usize = 100_000;
const PRESENCE_LIFE: Duration = Duration::from_millis(250);

/// A shared copy and when it was made.
type Copied<T> = (Arc<T>, Instant);

struct Entry {
    /// Changes with every drop; a read stores its rows only if the entry kept the number it saw before the
    /// query, so rows read before a change never outlive it.
    generation: u64,
    rows: Option<Copied<Vec<session::Model>>>,
}

#[derive(Default)]
pub struct SessionLists {
    entries: RwLock<HashMap<Uuid, Entry>>,
    generations: AtomicU64,
    /// Per user: the sessions with a socket on another node.
    presence: RwLock<HashMap<Uuid, Copied<HashSet<Uuid>>>>,
}

/// Either the copy, or the ticket to store a fresh one.
pub enum Lookup {
    Fresh(Arc<Vec<session::Model>>),
    Missing(u64),
}

impl SessionLists {
    pub fn lookup(&self, user: Uuid) -> Lookup {
        {
            let entries = self.entries.read().unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(Entry {
                rows: Some((rows, stored)),
                ..
            }) = entries.get(&user)
                && stored.elapsed() < LIST_LIFE
            {
                return Lookup::Fresh(rows.clone());
            }
        }
        let mut entries = self.entries.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if entries.len() >= LIST_LIMIT {
            entries.retain(|_, entry| matches!(&entry.rows, Some((_, stored)) if stored.elapsed() < LIST_LIFE));
        }
        let generation = self.next_generation();
        let entry = entries.entry(user).or_insert(Entry { generation, rows: None });
        Lookup::Missing(entry.generation)
    }

    /// Keeps `rows`, read after `lookup` answered `generation`, unless the user's sessions changed since.
    pub fn store(&self, user: Uuid, generation: u64, rows: Arc<Vec<session::Model>>) {
        let mut entries = self.entries.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(entry) = entries.get_mut(&user)
            && entry.generation == generation
        {
            entry.rows = Some((rows, Instant::now()));
        }
    }

    /// The user's sessions changed (call after the change has committed).
    pub fn forget(&self, user: &Uuid) {
        let generation = self.next_generation();
        let mut entries = self.entries.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(entry) = entries.get_mut(user) {
            entry.generation = generation;
            entry.rows = None;
        }
    }

    /// Drops every copy: after the node may have missed changes.
    pub fn forget_all(&self) {
        self.entries
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clear();
    }

    pub fn online_elsewhere(&self, user: Uuid) -> Option<Arc<HashSet<Uuid>>> {
        let presence = self.presence.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        presence
            .get(&user)
            .filter(|(_, stored)| stored.elapsed() < PRESENCE_LIFE)
            .map(|(sessions, _)| sessions.clone())
    }

    pub fn store_online_elsewhere(&self, user: Uuid, sessions: Arc<HashSet<Uuid>>) {
        let mut presence = self.presence.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if presence.len() >= LIST_LIMIT {
            presence.retain(|_, (_, stored)| stored.elapsed() < PRESENCE_LIFE);
        }
        presence.insert(user, (sessions, Instant::now()));
    }

    /// Numbers are never reused, so an entry dropped and made again cannot match an older read.
    fn next_generation(&self) -> u64 {
        self.generations.fetch_add(1, Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(user: Uuid) -> session::Model {
        let at = chrono::Utc::now();
        session::Model {
            id: Uuid::now_v7(),
            user_id: user,
            ip: "127.0.0.1".into(),
            user_agent: "test".into(),
            device: "test".into(),
            created_at: at,
            last_used_at: at,
            expires_at: at,
            revoked_at: None,
            revoked_reason: None,
        }
    }

    /// The ticket a read gets when the copy is missing.
    fn ticket(lists: &SessionLists, user: Uuid) -> u64 {
        match lists.lookup(user) {
            Lookup::Missing(generation) => generation,
            Lookup::Fresh(_) => panic!("an empty copy answered rows"),
        }
    }

    #[test]
    fn a_read_that_raced_a_change_is_not_kept() {
        let lists = SessionLists::default();
        let user = Uuid::now_v7();
        let generation = ticket(&lists, user);
        lists.forget(&user);
        lists.store(user, generation, Arc::new(vec![row(user)]));
        assert!(matches!(lists.lookup(user), Lookup::Missing(_)));
    }

    #[test]
    fn a_read_is_kept_until_a_change() {
        let lists = SessionLists::default();
        let user = Uuid::now_v7();
        let generation = ticket(&lists, user);
        lists.store(user, generation, Arc::new(vec![row(user)]));
        assert!(matches!(lists.lookup(user), Lookup::Fresh(rows) if rows.len() == 1));
        lists.forget(&user);
        assert!(matches!(lists.lookup(user), Lookup::Missing(_)));
    }

    #[test]
    fn a_dropped_entry_made_again_does_not_take_an_older_read() {
        let lists = SessionLists::default();
        let user = Uuid::now_v7();
        let old = ticket(&lists, user);
        lists.forget_all();
        let new = ticket(&lists, user);
        lists.store(user, old, Arc::new(vec![row(user)]));
        assert!(matches!(lists.lookup(user), Lookup::Missing(_)));
        lists.store(user, new, Arc::new(vec![row(user)]));
        assert!(matches!(lists.lookup(user), Lookup::Fresh(_)));
    }
}
