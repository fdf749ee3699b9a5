//! What travels: the events between services, managers and nodes, the `Publisher` services announce them
//! through, and the JSON frames sent to devices. This module imports nothing of authd's but the domain words,
//! so services, the manager and the bus can all depend on it.

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use sea_orm::{DatabaseTransaction, DbErr};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::RevocationReason;

/// A session as events carry it between nodes and to devices: the `Session` of the contract, with `current`
/// and `online` as each receiver sees it (the manager sets them per device). A type of its own, so the HTTP
/// answer can change without changing what nodes send each other.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionSnapshot {
    pub id: Uuid,
    pub ip: String,
    pub user_agent: String,
    pub device: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub current: bool,
    pub online: bool,
}

/// Sessions of one user that ended, for one reason. Published after the database records it.
#[derive(Debug, Clone, Serialize, Deserialize, actix::Message)]
#[rtype(result = "()")]
pub struct SessionsRevoked {
    pub user: Uuid,
    pub sessions: Vec<Uuid>,
    pub reason: RevocationReason,
    pub revoked_at: DateTime<Utc>,
}

/// A new sign-in of a user, told to that user's other devices.
#[derive(Debug, Clone, Serialize, Deserialize, actix::Message)]
#[rtype(result = "()")]
pub struct SessionCreated {
    pub user: Uuid,
    pub session: SessionSnapshot,
}

/// What changed in how a user signs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecurityChange {
    TotpEnabled,
    TotpDisabled,
    RecoveryCodesRegenerated,
    EmailOtpEnabled,
    EmailOtpDisabled,
    PasskeyAdded,
    PasskeyRemoved,
    PasskeyRenamed,
}

/// A change of a user's second factors, told to that user's other devices so they can refresh their view.
#[derive(Debug, Clone, Serialize, Deserialize, actix::Message)]
#[rtype(result = "()")]
pub struct SecurityChanged {
    pub user: Uuid,
    /// The session that made the change: its devices know already.
    pub session: Uuid,
    pub change: SecurityChange,
}

/// A change of a user's sessions or sign-in methods, as one node tells the others.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SessionEvent {
    Revoked(SessionsRevoked),
    Created(SessionCreated),
    SecurityChanged(SecurityChanged),
}

/// How services announce what they recorded. A change is announced twice: to the other nodes inside the
/// transaction that records it (so it travels only if it commits), and to this node after the commit. Services
/// reach these through `revocation::Change` and sign-in; the implementation is `realtime::bus::EventBus`.
pub trait Publisher: Send + Sync {
    /// Queues `event` for the other nodes inside `transaction`: delivered on commit, never for a rollback.
    fn notify_in_transaction<'a>(
        &'a self,
        transaction: &'a DatabaseTransaction,
        event: SessionEvent,
    ) -> BoxFuture<'a, Result<(), DbErr>>;

    /// Hands sessions this node ended to its manager; resolves once this node refuses their tokens.
    fn sessions_revoked(&self, event: SessionsRevoked) -> BoxFuture<'_, ()>;

    /// Tells this node's devices of a sign-in, without waiting.
    fn session_created(&self, event: SessionCreated);

    /// Tells this node's devices of a change of second factors, without waiting.
    fn security_changed(&self, event: SecurityChanged);

    /// Hands this node an end it should have heard of from another node and did not (its bus was down longer
    /// than its catch-up reaches back), found in the database: treated as if it had just arrived.
    fn missed_revocation(&self, event: SessionsRevoked);
}

/// What a session's expiry check found (`revocation::end_if_over`, run by a socket at its session's limit).
pub enum Expiry {
    /// The session lives; it could end at this moment next.
    Later(DateTime<Utc>),
    /// The session is over, and the manager has been told (ended now for its age, or found ended earlier).
    Over,
}

/// One text frame to a device.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    Hello { session_id: Uuid, user_id: Uuid },
    SessionRevoked { session_id: Uuid, reason: RevocationReason },
    SessionCreated { session: SessionSnapshot },
    SessionEnded { session_id: Uuid, reason: RevocationReason },
    SecurityChanged { change: SecurityChange },
}

impl ServerMessage {
    #[allow(clippy::expect_used)]
    pub fn to_json(&self) -> String {
        // Strings, ids, times and flags only: serde_json fails only on maps with non-string keys and on
        // failing `Serialize` impls, neither of which a server message has.
        serde_json::to_string(self).expect("a server message is plain data and always serialises")
    }
}
