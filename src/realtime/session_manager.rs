//! The `SessionManager` actor: the live state of this node. It is the only writer of the revoked-session
//! set and of local presence, and it pushes session changes to the sockets open on this node.

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use actix::prelude::*;
use uuid::Uuid;

use crate::domain::RevocationReason;

use super::{
    events::{SecurityChanged, ServerMessage, SessionCreated, SessionsRevoked},
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
    /// Close with 1012 (service restart): this node is shutting down, and the client should reconnect to
    /// another at once.
    ShuttingDown,
}

/// Asks every socket of this node to close because the node is shutting down; answers how many were asked.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct CloseAll;

/// A socket opened for a session. Answers why, when that session has already ended (it may have ended
/// between the upgrade's check and this message), so the socket can say so before it closes.
#[derive(Message)]
#[rtype(result = "Admission")]
pub struct Connect {
    pub user: Uuid,
    pub session: Uuid,
    pub socket: u64,
    pub recipient: Recipient<Push>,
}

/// What the manager answers a `Connect`.
#[derive(Debug, Clone, Copy, MessageResponse)]
pub enum Admission {
    Accepted,
    Ended(RevocationReason),
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
pub struct LiveSets {
    pub revoked: RevokedSessionsView,
    pub presence: LocalPresenceView,
}

impl SessionManager {
    pub fn new(
        access_token_life: Duration,
        shared_presence: PresenceWriter,
        metrics: std::sync::Arc<crate::metrics::Metrics>,
    ) -> (Self, LiveSets) {
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
            LiveSets {
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

impl Handler<CloseAll> for SessionManager {
    type Result = usize;

    fn handle(&mut self, _: CloseAll, _: &mut Self::Context) -> usize {
        let mut asked = 0;
        for recipient in self
            .sockets
            .values()
            .flat_map(HashMap::values)
            .flat_map(HashMap::values)
        {
            recipient.do_send(Push::ShuttingDown);
            asked += 1;
        }
        asked
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
            .filter(|session| self.revoked.insert(*session, forget_at, event.reason))
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

impl Handler<SecurityChanged> for SessionManager {
    type Result = ();

    fn handle(&mut self, event: SecurityChanged, _: &mut Self::Context) {
        let skip = HashSet::from([event.session]);
        let text = ServerMessage::SecurityChanged { change: event.change }.to_json();
        self.send_to_user(&event.user, &skip, "security_changed", &text);
    }
}

impl Handler<Connect> for SessionManager {
    type Result = Admission;

    fn handle(&mut self, connect: Connect, _: &mut Self::Context) -> Admission {
        if let Some(reason) = self.revoked.reason_of(&connect.session) {
            return Admission::Ended(reason);
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
        Admission::Accepted
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// A stand-in socket: records what the manager pushes.
    struct Recorder(Arc<std::sync::Mutex<Vec<Push>>>);

    impl Actor for Recorder {
        type Context = Context<Self>;
    }

    impl Handler<Push> for Recorder {
        type Result = ();

        fn handle(&mut self, push: Push, _: &mut Self::Context) {
            self.0.lock().unwrap().push(push);
        }
    }

    #[actix_web::test]
    async fn a_socket_of_a_session_that_ended_before_it_connected_learns_why() {
        let database = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
        let (manager, views) = SessionManager::new(
            Duration::from_secs(900),
            PresenceWriter::start(database, Uuid::now_v7()),
            Arc::new(crate::metrics::Metrics::new().unwrap()),
        );
        let manager = manager.start();
        let (user, session) = (Uuid::now_v7(), Uuid::now_v7());
        let pushed = Arc::new(std::sync::Mutex::new(Vec::new()));
        let socket = Recorder(pushed.clone()).start();
        let connect = |number: u64| Connect {
            user,
            session,
            socket: number,
            recipient: socket.clone().recipient(),
        };

        assert!(matches!(manager.send(connect(1)).await.unwrap(), Admission::Accepted));
        manager
            .send(SessionsRevoked {
                user,
                sessions: vec![session],
                reason: RevocationReason::PasswordChanged,
                revoked_at: chrono::Utc::now(),
            })
            .await
            .unwrap();
        assert!(views.revoked.contains(&session));
        // The socket that was open is told; one that connects after the end learns the same reason.
        assert!(matches!(
            manager.send(connect(2)).await.unwrap(),
            Admission::Ended(RevocationReason::PasswordChanged)
        ));
        tokio::time::sleep(Duration::from_millis(50)).await;
        let pushed = pushed.lock().unwrap();
        assert!(
            matches!(pushed.as_slice(), [Push::Revoked(text)] if text.contains("password_changed")),
            "{pushed:?}"
        );
    }
}
