//! The `SessionManager` actor: the live state of this node. It is the only writer of the revoked-session
//! set and of local presence, and it pushes session changes to the sockets open on this node.

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use actix::prelude::*;
use uuid::Uuid;

use super::{
    events::{ServerMessage, SessionCreated, SessionsRevoked},
    live_sets::{LocalPresence, LocalPresenceView, RevokedSessions, RevokedSessionsView},
    presence::PresenceWriter,
};

/// What the manager asks a socket to do.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub enum Push {
    /// Send this text frame.
    Text(String),
    /// Send this text frame, then close with 4001: the socket's session has ended.
    Revoked(String),
}

/// A socket opened for a session. Answers false when that session has already ended.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct Connect {
    pub user: Uuid,
    pub session: Uuid,
    pub socket: u64,
    pub recipient: Recipient<Push>,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Disconnect {
    pub user: Uuid,
    pub session: Uuid,
    pub socket: u64,
}

pub struct SessionManager {
    revoked: RevokedSessions,
    presence: LocalPresence,
    /// Records this node's presence for the other nodes.
    shared_presence: PresenceWriter,
    /// How long after its end a session can still have a valid access token: token life plus leeway.
    remember_for: chrono::Duration,
    sockets: HashMap<Uuid, HashMap<Uuid, HashMap<u64, Recipient<Push>>>>,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
}

/// Read-only views of the manager's sets, for the request path.
#[derive(Clone)]
pub struct ManagerViews {
    pub revoked: RevokedSessionsView,
    pub presence: LocalPresenceView,
}

impl SessionManager {
    pub fn new(
        access_token_life: Duration,
        shared_presence: PresenceWriter,
        metrics: std::sync::Arc<crate::metrics::Metrics>,
    ) -> (Self, ManagerViews) {
        let (revoked, revoked_view) = RevokedSessions::new();
        let (presence, presence_view) = LocalPresence::new();
        let remember_for = chrono::Duration::from_std(crate::tokens::revocation_window(access_token_life))
            .unwrap_or(chrono::Duration::days(1));
        let manager = Self {
            revoked,
            presence,
            shared_presence,
            remember_for,
            sockets: HashMap::new(),
            metrics,
        };
        (
            manager,
            ManagerViews {
                revoked: revoked_view,
                presence: presence_view,
            },
        )
    }

    fn send_to_user(&self, user: &Uuid, skip: &HashSet<Uuid>, kind: &str, text: &str) {
        if let Some(sessions) = self.sockets.get(user) {
            for (session, sockets) in sessions {
                if skip.contains(session) {
                    continue;
                }
                for recipient in sockets.values() {
                    recipient.do_send(Push::Text(text.to_owned()));
                    self.metrics.events_pushed.with_label_values(&[kind]).inc();
                }
            }
        }
    }
}

impl Actor for SessionManager {
    type Context = Context<Self>;

    fn started(&mut self, context: &mut Self::Context) {
        context.set_mailbox_capacity(100_000);
        context.run_interval(Duration::from_secs(60), |manager, _| {
            manager.revoked.prune(chrono::Utc::now())
        });
    }
}

impl Handler<SessionsRevoked> for SessionManager {
    type Result = ();

    /// Idempotent: a session already marked is skipped, so the same event arriving in process, over the bus
    /// and again from a catch-up tells each device once.
    fn handle(&mut self, event: SessionsRevoked, _: &mut Self::Context) {
        let forget_at = event.revoked_at + self.remember_for;
        let ended: HashSet<Uuid> = event
            .sessions
            .iter()
            .copied()
            .filter(|session| self.revoked.insert(*session, forget_at))
            .collect();
        if ended.is_empty() {
            return;
        }
        let Some(sessions) = self.sockets.get(&event.user) else {
            return;
        };
        for session in &ended {
            if let Some(sockets) = sessions.get(session) {
                let text = ServerMessage::SessionRevoked {
                    session_id: *session,
                    reason: event.reason,
                }
                .to_json();
                for recipient in sockets.values() {
                    recipient.do_send(Push::Revoked(text.clone()));
                    self.metrics.events_pushed.with_label_values(&["session_revoked"]).inc();
                }
                let latency = (chrono::Utc::now() - event.revoked_at).to_std().unwrap_or_default();
                self.metrics.push_latency.observe(latency.as_secs_f64());
            }
        }
        for session in &ended {
            let text = ServerMessage::SessionEnded {
                session_id: *session,
                reason: event.reason,
            }
            .to_json();
            self.send_to_user(&event.user, &ended, "session_ended", &text);
        }
    }
}

impl Handler<SessionCreated> for SessionManager {
    type Result = ();

    fn handle(&mut self, event: SessionCreated, _: &mut Self::Context) {
        let mut session = event.session;
        session.current = false;
        let skip = HashSet::from([session.id]);
        let text = ServerMessage::SessionCreated { session }.to_json();
        self.send_to_user(&event.user, &skip, "session_created", &text);
    }
}

impl Handler<Connect> for SessionManager {
    type Result = bool;

    fn handle(&mut self, connect: Connect, _: &mut Self::Context) -> bool {
        if self.revoked.contains(&connect.session) {
            return false;
        }
        self.sockets
            .entry(connect.user)
            .or_default()
            .entry(connect.session)
            .or_default()
            .insert(connect.socket, connect.recipient);
        if self.presence.add(connect.session) {
            self.shared_presence.online(connect.session, connect.user);
        }
        true
    }
}

impl Handler<Disconnect> for SessionManager {
    type Result = ();

    fn handle(&mut self, disconnect: Disconnect, _: &mut Self::Context) {
        let Some(sessions) = self.sockets.get_mut(&disconnect.user) else {
            return;
        };
        let Some(sockets) = sessions.get_mut(&disconnect.session) else {
            return;
        };
        if sockets.remove(&disconnect.socket).is_none() {
            return;
        }
        if sockets.is_empty() {
            sessions.remove(&disconnect.session);
        }
        if sessions.is_empty() {
            self.sockets.remove(&disconnect.user);
        }
        if self.presence.remove(disconnect.session) {
            self.shared_presence.offline(disconnect.session);
        }
    }
}
