//! The one road every session end takes: record it in the database (session row, revocation log, and on
//! PostgreSQL a notification to the other nodes, all in one transaction), then hand it to this node's
//! `SessionManager` through the `Publisher`, which refuses the session's tokens and tells its devices.
//!
//! A change that ends sessions is a `Change`: it owns its write transaction (`Store::begin_write`), so the only
//! way to commit it is `Change::commit`, which also runs what must follow the commit (publishing each end to this
//! node, waking the mail sender, dropping cached user views). A `Change` dropped without `commit` rolls back and
//! ends nothing. Forgetting to publish does not compile, because there is nothing to forget:
//!
//! ```text
//! let mut change = Change::begin(state).await?;           // #[must_use]; the transaction is private
//! change.end_sessions(user, Scope::All, reason, now()).await?;
//! change.commit().await?;                                  // commit, then publish: the only way out
//! ```
//!
//! The module's functions: `end_sessions`; `end_sessions_telling`, which also queues a notice mail in the same
//! transaction; `record`, the database half (session rows and notification; the log rows are the trigger's),
//! private to this module; `recent` (the log's recent window, read at start and at catch-up); `end_if_over`;
//! `end_expired` (absolute and idle limits). With one node (SQLite) and no notice mail, `end_sessions` is one
//! `UPDATE ... RETURNING` under the write lock instead of a transaction, published at once.
//!
//! What happens on node A, where the request arrives (the other nodes: see `realtime::bus`):
//!
//! ```text
//! handler ──► service
//! BEGIN
//!   UPDATE sessions SET revoked_at = now, revoked_reason = r
//!    WHERE user_id = u AND revoked_at IS NULL [AND id = / <> s]
//!    RETURNING id                         ── ids actually ended now
//!     └ trigger session_revocation_log:
//!       INSERT INTO session_revocations   ── one row per id, in the same statement
//!   [other rows of the same change, before or after: password hash, user delete, mail_outbox row]
//!   SELECT pg_notify('authd_events', {origin: A, Revoked{...}})
//!                                         ── PostgreSQL only; split into 150 ids per payload
//! COMMIT ──► NOTIFY delivered to every listener
//! Publisher::sessions_revoked(event)      ── EventBus
//!   revocations_total += n
//!   await manager.send(event)             ── waits for the handler
//! SessionManager (A)
//!   for each id: insert into the revoked set; an id already there is skipped (idempotent)
//!   sockets of that session: session_revoked frame, then close 4001
//!   the user's other sockets: session_ended frame
//! HTTP answer (204, 401 refresh_token_reused, ...)
//! ```
//!
//! What the road relies on:
//!
//! - On SQLite the transaction waits for the process's write lock before it takes a connection, and starts
//!   with a write (the `UPDATE ... RETURNING` itself), so SQLite takes its write lock at once instead of failing
//!   a read-then-write upgrade. `WHERE revoked_at IS NULL`
//!   makes two racing ends of one session produce one log row and one event: the loser's `RETURNING` is empty
//!   and nothing is published.
//! - `pg_notify` inside the transaction means PostgreSQL delivers the message only if the change commits, and
//!   never for a rolled-back change. On SQLite `notify_in_transaction` does nothing: a SQLite deployment is one
//!   node.
//! - `Publisher::sessions_revoked` awaits `Addr::send`, which resolves after the manager's handler has run, so the
//!   node that ended a session refuses its tokens before the HTTP answer leaves. Other nodes use `do_send`; the
//!   cluster tests measure the refusal on the second node within 100 ms.
//! - Each manager pushes only to the sockets open on its own node. Because the same handler serves local
//!   delivery, the bus, catch-up and start-up, and skips sessions already in the set, a device is told once even
//!   when an event arrives by several routes.
//! - A socket opening at the moment of revocation is safe: its `Connect` message goes through the same actor and
//!   is refused (close 4001 before `hello`) if the session is already in the set.
//!
//! Every reason, where it starts, and its scope:
//!
//! - `logout`: `POST /api/auth/logout` → `account::logout` (Bearer) or `refresh::logout` (refresh cookie; a
//!   token rotated out more than `REFRESH_GRACE` ago ends the session as `refresh_token_reused` instead, with the
//!   owner's notice). The caller's session.
//! - `logout_all`: `POST /api/auth/logout-all` → `account::logout_all`. All sessions, or all but the caller's
//!   with `keep_current`.
//! - `revoked`: `DELETE /api/auth/sessions/{id}` → `account::revoke_session` (one session);
//!   `DELETE /api/users/me` → `account::delete_account`, whose transaction records the end of every session and
//!   deletes the user (all sessions).
//! - `refresh_token_reused`: `POST /api/auth/refresh` with a rotated-out token after the grace window →
//!   `services::refresh`. The token's session.
//! - `password_changed`: `POST /api/users/me/password` → `account::change_password`, in the transaction that
//!   stores the new hash and queues the notice mail. Every session but the caller's.
//! - `password_reset`: `POST /api/auth/password/reset` → `codes::reset_password`, in the transaction that stores
//!   the new hash and queues the notice mail. Every session.
//! - `expired`, one session, from three places:
//!   1. each `WsSession` sets a timer for the moment its session ends if nothing happens (the absolute end, or
//!      `last_used_at + SESSION_IDLE_TTL` if sooner) and then calls `end_if_over`, which ends the session or,
//!      after a refresh moved the idle limit, answers the next moment to check (`realtime::ws_session`); a
//!      session it finds already ended, which this socket was never told of (its node's bus was down for longer
//!      than the catch-up reaches back), is handed to the manager with its recorded reason, which marks it and
//!      tells every socket as if it had just heard;
//!   2. the sweeper started in `startup` calls `end_expired` every 30 s, which ends sessions past either limit
//!      that are not yet revoked;
//!   3. a refresh of a session past its absolute or idle limit ends it and answers `session_expired`.
//!
//! The sweeper runs on every node; the conditional `UPDATE` makes each session end once. A session with a socket
//! open is told within a moment of its end; one without is ended within 30 s by the sweeper.

use chrono::{DateTime, Utc};
use entity::{session, session_revocation};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter,
    sea_query::{Expr, ExprTrait},
};
use uuid::Uuid;

use super::{AppState, now};
use crate::{
    domain::RevocationReason,
    email::Mail,
    error::AppResult,
    realtime::events::{Expiry, Publisher, SecurityChanged, SessionEvent, SessionsRevoked},
    store::WriteTransaction,
};

/// Which sessions of a user end.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    One(Uuid),
    All,
    AllExcept(Uuid),
}

/// A unit of work that may end sessions, with the effects its commit must run.
#[must_use = "a change takes effect only through `commit`: dropped, it rolls back and ends nothing"]
pub struct Change<'a> {
    state: &'a AppState,
    transaction: WriteTransaction<'a>,
    ended: Vec<SessionsRevoked>,
    mail_queued: bool,
    changed_users: Vec<Uuid>,
    security_changes: Vec<SecurityChanged>,
}

impl<'a> Change<'a> {
    pub async fn begin(state: &'a AppState) -> AppResult<Self> {
        Ok(Self {
            state,
            transaction: state.store.begin_write().await?,
            ended: Vec::new(),
            mail_queued: false,
            changed_users: Vec::new(),
            security_changes: Vec::new(),
        })
    }

    /// The transaction, for the change's own writes.
    pub fn connection(&self) -> &DatabaseTransaction {
        &self.transaction
    }

    /// Ends the live sessions of `user` in `scope` as part of this change; answers the ids it ended.
    pub async fn end_sessions(
        &mut self,
        user: Uuid,
        scope: Scope,
        reason: RevocationReason,
        at: DateTime<Utc>,
    ) -> AppResult<Vec<Uuid>> {
        let event = record(&*self.state.publisher, &self.transaction, user, scope, reason, at).await?;
        let ended = event.sessions.clone();
        self.ended.push(event);
        Ok(ended)
    }

    /// Queues `mail` to `to` with this change.
    pub async fn queue_mail(&mut self, to: &str, mail: &Mail) -> AppResult<()> {
        self.state.mailer.queue(&self.transaction, to, mail).await?;
        self.mail_queued = true;
        Ok(())
    }

    /// Notes that this change writes `user`'s row, so cached views of it are dropped at the commit.
    pub fn user_changed(&mut self, user: Uuid) {
        self.changed_users.push(user);
    }

    /// Tells the user's other devices, on every node, that their second factors changed (once it commits).
    pub async fn security_changed(&mut self, event: SecurityChanged) -> AppResult<()> {
        self.state
            .publisher
            .notify_in_transaction(&self.transaction, SessionEvent::SecurityChanged(event.clone()))
            .await?;
        self.changed_users.push(event.user);
        self.security_changes.push(event);
        Ok(())
    }

    /// Commits, then runs what the commit makes true: each ended session is handed to this node's manager
    /// (the other nodes hear of it through the notification committed with it), cached views of changed users
    /// are dropped, and the mail sender is woken when a mail was queued.
    pub async fn commit(self) -> AppResult<()> {
        let Self {
            state,
            transaction,
            ended,
            mail_queued,
            changed_users,
            security_changes,
        } = self;
        transaction.commit().await?;
        for event in security_changes {
            state.publisher.security_changed(event);
        }
        for user in &changed_users {
            state.user_cache.invalidate(user);
        }
        // Waking the sender costs it a read of the outbox, so only a queued mail does.
        if mail_queued {
            state.mailer.wake();
        }
        for event in ended {
            state.publisher.sessions_revoked(event).await;
        }
        Ok(())
    }
}

/// Ends the live sessions of `user` in `scope`; answers the ids that were live and are now ended.
pub async fn end_sessions(
    state: &AppState,
    user: Uuid,
    scope: Scope,
    reason: RevocationReason,
) -> AppResult<Vec<Uuid>> {
    end_sessions_telling(state, user, scope, reason, None).await
}

/// Like `end_sessions`, and queues `notice` to `address` in the same transaction when a session ended.
pub async fn end_sessions_telling(
    state: &AppState,
    user: Uuid,
    scope: Scope,
    reason: RevocationReason,
    notice: Option<(&str, &Mail)>,
) -> AppResult<Vec<Uuid>> {
    if notice.is_none() && !state.store.shared_by_nodes() {
        // With one node there is nothing to tell other nodes in a transaction, and the update is atomic on its
        // own (its log rows are the trigger's, in the same statement): one statement under the write lock
        // instead of a transaction, which on SQLite holds the lock for three round trips instead of one.
        let writer = state.store.write_lock().await;
        let event = end_rows(writer.connection(), user, scope, reason, now()).await?;
        drop(writer);
        let ended = event.sessions.clone();
        state.publisher.sessions_revoked(event).await;
        return Ok(ended);
    }
    let mut change = Change::begin(state).await?;
    let ended = change.end_sessions(user, scope, reason, now()).await?;
    if let Some((address, mail)) = notice
        && !ended.is_empty()
    {
        change.queue_mail(address, mail).await?;
    }
    change.commit().await?;
    Ok(ended)
}

/// Ends a session of `user` that has reached its absolute or idle limit. When it has not, answers the moment it
/// next could. A session found ended already (or gone with its account) is one this node should have heard of
/// and did not (its bus was down longer than its catch-up reaches back): it is handed to the manager now, as if
/// it had just arrived, so the devices still on it are told.
pub async fn end_if_over(state: &AppState, user: Uuid, id: Uuid) -> AppResult<Expiry> {
    let model = session::Entity::find_by_id(id).one(state.store.connection()).await?;
    let ended = match &model {
        None => Some((RevocationReason::Revoked, now())),
        Some(model) => model.revoked_at.map(|at| {
            let reason = model.revoked_reason.as_deref().and_then(RevocationReason::parse);
            (reason.unwrap_or(RevocationReason::Revoked), at)
        }),
    };
    if let Some((reason, revoked_at)) = ended {
        state.publisher.missed_revocation(SessionsRevoked {
            user,
            sessions: vec![id],
            reason,
            revoked_at,
        });
        return Ok(Expiry::Over);
    }
    match model {
        Some(model) if !super::sessions::is_expired(state, &model, now()) => {
            Ok(Expiry::Later(super::sessions::ends_at(state, &model)))
        }
        _ => {
            end_sessions(state, user, Scope::One(id), RevocationReason::Expired).await?;
            Ok(Expiry::Over)
        }
    }
}

/// The database half of a revocation, inside a change's transaction: the sessions' rows (their log rows are
/// written by the trigger `session_revocation_log`) and the notification to the other nodes. The first statement
/// writes, so SQLite takes its write lock at once instead of failing a read-then-write upgrade.
async fn record(
    publisher: &dyn Publisher,
    transaction: &DatabaseTransaction,
    user: Uuid,
    scope: Scope,
    reason: RevocationReason,
    at: DateTime<Utc>,
) -> Result<SessionsRevoked, DbErr> {
    let event = end_rows(transaction, user, scope, reason, at).await?;
    if !event.sessions.is_empty() {
        publisher
            .notify_in_transaction(transaction, SessionEvent::Revoked(event.clone()))
            .await?;
    }
    Ok(event)
}

/// Marks the live sessions of `user` in `scope` ended; answers the ids it ended.
async fn end_rows(
    connection: &impl ConnectionTrait,
    user: Uuid,
    scope: Scope,
    reason: RevocationReason,
    at: DateTime<Utc>,
) -> Result<SessionsRevoked, DbErr> {
    let update = session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(at))
        .col_expr(session::Column::RevokedReason, Expr::value(reason.as_str()))
        .filter(session::Column::UserId.eq(user))
        .filter(session::Column::RevokedAt.is_null());
    let update = match scope {
        Scope::One(id) => update.filter(session::Column::Id.eq(id)),
        Scope::All => update,
        Scope::AllExcept(keep) => update.filter(session::Column::Id.ne(keep)),
    };
    let sessions: Vec<Uuid> = update
        .exec_with_returning(connection)
        .await?
        .into_iter()
        .map(|model| model.id)
        .collect();
    Ok(SessionsRevoked {
        user,
        sessions,
        reason,
        revoked_at: at,
    })
}

/// Revocations recent enough that their sessions' access tokens may still be presented, grouped into
/// events: loaded at start and after the bus reconnects, so neither opens a window.
pub async fn recent(
    connection: &impl sea_orm::ConnectionTrait,
    since: DateTime<Utc>,
) -> Result<Vec<SessionsRevoked>, DbErr> {
    let rows = session_revocation::Entity::find()
        .filter(session_revocation::Column::RevokedAt.gte(since))
        .all(connection)
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| SessionsRevoked {
            user: row.user_id,
            sessions: vec![row.session_id],
            reason: RevocationReason::parse(&row.reason).unwrap_or(RevocationReason::Revoked),
            revoked_at: row.revoked_at,
        })
        .collect())
}

/// Ends the sessions past their absolute or idle limit that nobody noticed (no socket open, no refresh),
/// so their devices elsewhere hear of it and lists stay true.
pub async fn end_expired(state: &AppState) -> AppResult<usize> {
    let at = now();
    let idle_since = at - super::seconds(state.settings.session_idle_ttl);
    let expired = session::Entity::find()
        .filter(session::Column::RevokedAt.is_null())
        .filter(
            session::Column::ExpiresAt
                .lte(at)
                .or(session::Column::LastUsedAt.lte(idle_since)),
        )
        .all(state.store.connection())
        .await?;
    let mut ended = 0;
    for model in expired {
        ended += end_sessions(state, model.user_id, Scope::One(model.id), RevocationReason::Expired)
            .await?
            .len();
    }
    Ok(ended)
}
