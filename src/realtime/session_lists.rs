//! The node's copies behind `GET /api/auth/sessions`, so a list costs no query while nothing changes.
//! Every change a node learns of drops the user's rows at once: its own sign-ins, revocations and refreshes,
//! and the other nodes' sign-ins and revocations through the bus. What the bus does not carry (another
//! node's refresh moving `last_used_at`) shows within a second. Expiry and local `online` are worked out on
//! every read. Which sessions have a socket on another node (PostgreSQL only) is copied apart, for 250 ms:
//! it changes without any event here, and a session seen from another node's heartbeat is already that
//! node's last word.

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
