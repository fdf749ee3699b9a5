//! How many WebSockets one session and one user may hold open on this node. A slot is taken before the
//! upgrade, so a connection over the cap is refused with 429 instead of costing a descriptor, and it is given
//! back when the connection's actor is dropped, however the connection ends.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use uuid::Uuid;

#[derive(Default)]
struct Counts {
    users: HashMap<Uuid, usize>,
    sessions: HashMap<Uuid, usize>,
}

/// The open sockets of this node by user and session, with the caps.
#[derive(Clone)]
pub struct SocketSlots {
    counts: Arc<Mutex<Counts>>,
    per_session: usize,
    per_user: usize,
}

/// One open socket's place; dropping it frees the place.
pub struct SocketSlot {
    counts: Arc<Mutex<Counts>>,
    user: Uuid,
    session: Uuid,
}

impl SocketSlots {
    pub fn new(per_session: usize, per_user: usize) -> Self {
        Self {
            counts: Arc::default(),
            per_session,
            per_user,
        }
    }

    /// A slot for one more socket of `session`, or `None` when the session or its user is at the cap.
    pub fn take(&self, user: Uuid, session: Uuid) -> Option<SocketSlot> {
        let mut counts = self.counts.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let of_user = counts.users.get(&user).copied().unwrap_or(0);
        let of_session = counts.sessions.get(&session).copied().unwrap_or(0);
        if of_user >= self.per_user || of_session >= self.per_session {
            return None;
        }
        counts.users.insert(user, of_user + 1);
        counts.sessions.insert(session, of_session + 1);
        Some(SocketSlot {
            counts: self.counts.clone(),
            user,
            session,
        })
    }
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        release(&mut counts.users, self.user);
        release(&mut counts.sessions, self.session);
    }
}

fn release(counts: &mut HashMap<Uuid, usize>, key: Uuid) {
    if let Some(count) = counts.get_mut(&key) {
        *count -= 1;
        if *count == 0 {
            counts.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_hold_per_session_and_per_user_and_slots_come_back() {
        let slots = SocketSlots::new(2, 3);
        let (user, first, second) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let a = slots.take(user, first).unwrap();
        let _b = slots.take(user, first).unwrap();
        assert!(slots.take(user, first).is_none(), "the session is at its cap");
        let _c = slots.take(user, second).unwrap();
        assert!(slots.take(user, second).is_none(), "the user is at its cap");
        assert!(
            slots.take(Uuid::now_v7(), Uuid::now_v7()).is_some(),
            "other users are not affected"
        );
        drop(a);
        assert!(slots.take(user, second).is_some(), "a closed socket frees its slot");
    }
}
