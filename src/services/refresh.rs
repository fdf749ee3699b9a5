//! Refresh token rotation. A token's successor is derived from it, and each row names its parent under a
//! unique index, so rotating is one statement: insert the successor's row, which exactly one presentation
//! can do. Every presentation inside the grace window answers the same successor; a presentation after it
//! means the token was copied, and the session ends.
//!
//! Step by step:
//!
//! 1. The token must be 43 base64url characters. The successor is computed, not drawn:
//!    `base64url(HMAC-SHA256(successor key, presented token))`. The same token always yields the same successor,
//!    so every racing presentation can be answered with it, and no token is ever stored in clear.
//! 2. One query reads the rows whose SHA-256 is the presented token's or its successor's, each joined to its
//!    session. No presented row, or an ended session: `refresh_token_invalid` (`session_expired` when it ended
//!    for its age). Every successor row names its parent (`parent_id`, unique), so a token is rotated exactly
//!    when a row names it; with today's successor key that row is the successor this query found, and its
//!    `created_at` is the moment of rotation. (`rotated_at`, set by earlier versions, is still honoured.)
//! 3. A session past its absolute end or its idle limit (`last_used_at + SESSION_IDLE_TTL`) is ended (`expired`)
//!    and the answer is `session_expired`.
//! 4. Not rotated yet: one statement is the compare-and-swap,
//!    `INSERT INTO refresh_tokens (id, session_id, token_hash, created_at, parent_id) SELECT ..., presented id
//!    WHERE EXISTS (live session) ON CONFLICT DO NOTHING RETURNING id`. The unique parent lets exactly one of the
//!    presentations racing with one token insert, on any node, whatever its clock and even while nodes disagree
//!    on the successor key (after a `JWT_ACCESS_SECRET` change); nothing compares times to order the chain. The
//!    one request that inserted moves `sessions.last_used_at` when it is older than a tenth of the idle limit (a
//!    minute at most; a separate statement, since a lost write only leaves the last use a little early) and
//!    answers the new pair. A request that inserted nothing reads the creation time of the row naming the
//!    presented token as parent, in a live session (none: the session ended meanwhile, `refresh_token_invalid`)
//!    and goes on to step 5. On SQLite the statement, like sign-in's transaction, waits for the process's write
//!    turn (`Store::write_lock`), so parallel writers queue in process instead of sleeping in SQLite's
//!    busy handler; the turn is taken before any pooled connection, never while holding one. Without a
//!    transaction a rotation is two round trips to the database: the read and the insert. Nodes of this version
//!    and of versions that rotated with `rotated_at` must not serve one database at once: those would not see a
//!    rotation made here. The answer's `user` comes from the node's one-second copy of user views (see
//!    `services::users`).
//! 5. If the token was rotated no more than `REFRESH_GRACE` seconds ago (10 by default), the answer is the same
//!    successor with a fresh access token; nothing is written.
//! 6. Later, the presentation means the token was copied: the session ends with `refresh_token_reused`, the
//!    owner is mailed, and the answer is 401 `refresh_token_reused`.
//!
//! The refresh cookie and where a refresh may read it: see `http::token_response`.
//!
//! `tests/api/refresh.rs` starts a second application with another `JWT_ACCESS_SECRET` (the chain goes on from
//! its newest token, an older one is still a reuse) and stamps a successor an hour early in the database (a node
//! with a lagging clock).

use chrono::{DateTime, Utc};
use entity::{refresh_token, session};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    sea_query::{Expr, OnConflict, Query},
};
use uuid::Uuid;

use super::{
    AppState, now,
    revocation::{self, Scope},
    seconds,
    sessions::{self, SignedIn},
    users,
};
use crate::{
    domain::RevocationReason,
    email::Mail,
    error::{AppError, AppResult},
    tokens::{hash_token, is_well_formed},
};

/// A presented token, its live session, and its successor's row when the token has been rotated.
struct Link {
    presented: refresh_token::Model,
    owner: session::Model,
    successor: Option<refresh_token::Model>,
}

/// Reads the presented token, its session and (when `successor_hash` is given) its successor in one query.
async fn read_link(state: &AppState, presented_hash: &str, successor_hash: Option<&str>) -> AppResult<Link> {
    let hashes: Vec<&str> = std::iter::once(presented_hash).chain(successor_hash).collect();
    let rows = refresh_token::Entity::find()
        .find_also_related(session::Entity)
        .filter(refresh_token::Column::TokenHash.is_in(hashes))
        .all(state.store.connection())
        .await?;
    let mut presented = None;
    let mut successor = None;
    for (token, owner) in rows {
        if token.token_hash == presented_hash {
            presented = owner.map(|owner| (token, owner));
        } else {
            successor = Some(token);
        }
    }
    let (presented, owner) = presented.ok_or(AppError::RefreshTokenInvalid)?;
    if owner.revoked_at.is_some() {
        // A session the sweeper ended for its age still says so, as one found expired here would.
        let expired = owner.revoked_reason.as_deref() == Some(RevocationReason::Expired.as_str());
        return Err(if expired {
            AppError::SessionExpired
        } else {
            AppError::RefreshTokenInvalid
        });
    }
    // A successor always belongs to the session of the token it follows.
    let successor = successor.filter(|successor| successor.session_id == owner.id);
    Ok(Link {
        presented,
        owner,
        successor,
    })
}

pub async fn refresh(state: &AppState, token: &str) -> AppResult<SignedIn> {
    let outcome = rotate(state, token).await;
    let label = match &outcome {
        Ok(_) => "success",
        Err(error) => error.code().as_str(),
    };
    state.metrics.refreshes.with_label_values(&[label]).inc();
    if matches!(outcome, Err(AppError::RefreshTokenReused)) {
        state.metrics.refresh_reuse_detected.inc();
    }
    outcome
}

async fn rotate(state: &AppState, token: &str) -> AppResult<SignedIn> {
    if !is_well_formed(token) {
        return Err(AppError::RefreshTokenInvalid);
    }
    let successor = state.refresh_keys.refresh_successor(token);
    let successor_hash = hash_token(&successor);
    let link = read_link(state, &hash_token(token), Some(&successor_hash)).await?;
    let owner = link.owner;
    let at = now();
    if sessions::is_expired(state, &owner, at) {
        revocation::end_sessions(state, owner.user_id, Scope::One(owner.id), RevocationReason::Expired).await?;
        return Err(AppError::SessionExpired);
    }
    // The answer's `user` comes from the node's short-lived copy, as `GET /api/users/me` does.
    // An account deleted meanwhile makes the token worthless; a failing database is a 500, not a dead token.
    let user = users::view(state, owner.user_id).await.map_err(|error| match error {
        AppError::SessionRevoked => AppError::RefreshTokenInvalid,
        other => other,
    })?;

    let rotated_at = match link.successor.map(|row| row.created_at).or(link.presented.rotated_at) {
        Some(rotated_at) => rotated_at,
        None => {
            let writer = state.store.write_lock().await;
            if swap(writer.connection(), &link.presented, &successor_hash, at).await? {
                let owner = touch(state, writer.connection(), owner, at).await?;
                drop(writer);
                return sessions::token_pair(state, user, &owner, successor, at);
            }
            drop(writer);
            // A parallel refresh with the same token won the swap (answer as it did), or the session ended.
            let child = stored_successor(state, &link.presented)
                .await?
                .ok_or(AppError::RefreshTokenInvalid)?;
            // A successor made under another key (the access secret changed meanwhile) is not the one this
            // node would answer, and the one it would does not exist: inside the grace there is nothing
            // true to answer; after it, this is a reuse like any other.
            if child.token_hash != successor_hash && at - child.created_at <= seconds(state.settings.refresh_grace) {
                return Err(AppError::RefreshTokenInvalid);
            }
            child.created_at
        }
    };

    if at - rotated_at <= seconds(state.settings.refresh_grace) {
        return sessions::token_pair(state, user, &owner, successor, at);
    }
    end_for_reuse(state, &owner, &user.email).await?;
    Err(AppError::RefreshTokenReused)
}

/// Ends the session of a token shown again after its rotation's grace, and tells the owner by mail.
async fn end_for_reuse(state: &AppState, owner: &session::Model, email: &str) -> AppResult<()> {
    let notice = Mail::RefreshTokenReused {
        device: owner.device.clone(),
    };
    revocation::end_sessions_telling(
        state,
        owner.user_id,
        Scope::One(owner.id),
        RevocationReason::RefreshTokenReused,
        Some((email, &notice)),
    )
    .await?;
    Ok(())
}

/// Ends the session a refresh token belongs to (a cookie logout). A token already rotated out for longer
/// than the grace is a reuse, as it would be at `/refresh`: the session ends for that reason and its owner
/// is told, though the caller, who asked for the session to end, is answered as for any logout.
pub async fn logout(state: &AppState, token: &str) -> AppResult<()> {
    if !is_well_formed(token) {
        return Err(AppError::RefreshTokenInvalid);
    }
    let Link { presented, owner, .. } = read_link(state, &hash_token(token), None).await?;
    let rotated_at = match stored_successor(state, &presented).await? {
        Some(child) => Some(child.created_at),
        None => presented.rotated_at,
    };
    if rotated_at.is_some_and(|rotated_at| now() - rotated_at > seconds(state.settings.refresh_grace)) {
        let email = users::view(state, owner.user_id).await?.email;
        return end_for_reuse(state, &owner, &email).await;
    }
    revocation::end_sessions(state, owner.user_id, Scope::One(owner.id), RevocationReason::Logout).await?;
    Ok(())
}

/// The compare-and-swap: inserts the successor's row, naming `presented` as its parent, while the session is
/// live. The unique parent (and the unique hash) let one insert win however many presentations race, on any
/// node and whatever its clock or successor key; a lost race inserts nothing.
async fn swap(
    connection: &impl ConnectionTrait,
    presented: &refresh_token::Model,
    successor_hash: &str,
    at: DateTime<Utc>,
) -> AppResult<bool> {
    let live_session = Query::select()
        .expr(Expr::value(1))
        .from(session::Entity)
        .and_where(session::Column::Id.eq(presented.session_id))
        .and_where(session::Column::RevokedAt.is_null())
        .to_owned();
    let row = Query::select()
        .exprs([
            Expr::value(Uuid::now_v7()),
            Expr::value(presented.session_id),
            Expr::value(successor_hash.to_owned()),
            Expr::value(at),
            Expr::value(presented.id),
        ])
        .and_where(Expr::exists(live_session))
        .to_owned();
    let insert = Query::insert()
        .into_table(refresh_token::Entity)
        .columns([
            refresh_token::Column::Id,
            refresh_token::Column::SessionId,
            refresh_token::Column::TokenHash,
            refresh_token::Column::CreatedAt,
            refresh_token::Column::ParentId,
        ])
        .select_from(row)
        .map_err(|error| AppError::Internal(format!("refresh swap statement: {error}")))?
        .on_conflict(OnConflict::new().do_nothing().to_owned())
        .returning_col(refresh_token::Column::Id)
        .to_owned();
    Ok(connection.query_one(&insert).await?.is_some())
}

/// Records the session's last use when it has moved by more than the precision kept. The idle limit is long:
/// a tenth of it (a minute at most) spares most refreshes this write. It is not in one transaction with the
/// swap: at worst a crash between the two leaves the last use a little early.
async fn touch(
    state: &AppState,
    connection: &impl ConnectionTrait,
    owner: session::Model,
    at: DateTime<Utc>,
) -> AppResult<session::Model> {
    let precision = (seconds(state.settings.session_idle_ttl) / 10).min(chrono::Duration::minutes(1));
    if at - owner.last_used_at < precision {
        return Ok(owner);
    }
    session::Entity::update_many()
        .col_expr(session::Column::LastUsedAt, Expr::value(at))
        .filter(session::Column::Id.eq(owner.id))
        .filter(session::Column::LastUsedAt.lt(at))
        .exec(connection)
        .await?;
    state.session_lists.rows.invalidate(&owner.user_id);
    Ok(session::Model {
        last_used_at: at,
        ..owner
    })
}

/// When `presented` was rotated: the creation of the token that names it as parent, in its live session.
/// `None` when it has not been, or its session has ended.
async fn stored_successor(
    state: &AppState,
    presented: &refresh_token::Model,
) -> AppResult<Option<refresh_token::Model>> {
    Ok(refresh_token::Entity::find()
        .inner_join(session::Entity)
        .filter(session::Column::RevokedAt.is_null())
        .filter(refresh_token::Column::ParentId.eq(presented.id))
        .one(state.store.connection())
        .await?)
}
