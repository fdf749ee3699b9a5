//! The node's copies behind `GET /api/auth/sessions`, so a list costs no query while nothing changes.
//! Every change a node learns of drops the user's rows at once: its own sign-ins, revocations and refreshes,
//! and the other nodes' sign-ins and revocations through the bus. What the bus does not carry (another
//! node's refresh moving `last_used_at`) shows within a second. Expiry and local `online` are worked out on
//! every read. Which sessions have a socket on another node (PostgreSQL only) is copied apart, for 250 ms:
//! it changes without any event here, and a session seen from another node's heartbeat is already that
//! node's last word.
//!
//! The rows are kept one second per user, in a `Cache` of `crate::cache` (which also holds the `user` views). The
//! `EventBus` drops a user's copy on every change it carries: a sign-in or revocation on this node (after the
//! commit, before the answer goes out) and one from another node (on receipt); a refresh that moves
//! `last_used_at` drops it too, and a node that listens again after losing the bus drops every copy. The cache's
//! generation numbers keep a read that raced a drop from being stored.
//!
//! Tested in `tests/api/sessions.rs`, which starts a second application on the first one's database to stand for
//! a restart and checks that a list read a moment ago shows every sign-in, revocation and recorded last use at
//! once, and in `tests/api/cluster.rs`, where a list on one node shows the other's sign-ins and revocations
//! sooner than its copy ages.

use std::{collections::HashSet, time::Duration};

use entity::session;
use uuid::Uuid;

use crate::cache::Cache;

pub struct SessionLists {
    /// Per user: the live session rows, newest first.
    pub rows: Cache<Vec<session::Model>>,
    /// Per user: the sessions with a socket on another node.
    pub online_elsewhere: Cache<HashSet<Uuid>>,
}

impl Default for SessionLists {
    fn default() -> Self {
        Self {
            rows: Cache::new(Duration::from_secs(1)),
            online_elsewhere: Cache::new(Duration::from_millis(250)),
        }
    }
}
