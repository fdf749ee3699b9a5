//! OpenID Connect Back-Channel Logout 1.0: every session end is POSTed to each URL of `BACKCHANNEL_LOGOUT_URLS`
//! as `application/x-www-form-urlencoded` `logout_token=<JWT>`, signed with the key that signs access tokens
//! (header `typ: logout+jwt`; claims `iss`, `aud` (both `JWT_ISSUER`), `iat`, `exp` (two minutes later), `jti`,
//! `sid`, `sub` and the back-channel `events` claim; no `nonce`).
//!
//! Deliveries read the revocation log, like the revocation feed: each receiver's row in `backchannel_receivers`
//! holds the id of the last log row delivered to it, so deliveries survive restarts and a receiver that is down
//! gets every end, in order, once it is back (at least once: a node that stops between a delivery and its
//! record sends that token again). A failure backs off (1 s, doubling, at most a minute) and holds the
//! receiver's later tokens behind it. One node at a time delivers to a receiver (a 30 s claim on its row).
//! A receiver added to the setting, or registered by a backend with its key (`PUT /api/backchannel/receiver`),
//! starts at the log's end; a revoked key's receiver gets nothing more.
//!
//! Receivers may be `http://` (inside the deployment's network) or `https://`: the server's certificate must
//! chain to a public root (webpki-roots) or to a certificate of `BACKCHANNEL_CA_FILE`, and name the URL's host.

use std::{collections::HashMap, sync::Arc, time::Duration};

use entity::{backchannel_receiver, session_revocation};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    sea_query::{Expr, ExprTrait, OnConflict},
};
use serde::Serialize;
use uuid::Uuid;

use crate::services::{
    AppState, now, now_ms,
    revocation_feed::{Cursor, FeedEvent},
};

/// The `typ` of a logout token.
pub const LOGOUT_TOKEN_TYPE: &str = "logout+jwt";
/// The member of the `events` claim that makes a JWT a logout token.
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
const CLAIM: Duration = Duration::from_secs(30);
const LONGEST_BACK_OFF: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_secs(1);
const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Serialize)]
struct LogoutClaims {
    iss: String,
    aud: String,
    iat: i64,
    exp: i64,
    jti: Uuid,
    sid: Uuid,
    sub: Uuid,
    events: serde_json::Value,
}

/// Adds the receivers of `urls` (from the setting) that have no row yet, starting at the log's end.
pub async fn register(connection: &impl ConnectionTrait, urls: &[String]) -> Result<(), DbErr> {
    if urls.is_empty() {
        return Ok(());
    }
    let end = log_end(connection).await?;
    for url in urls {
        receiver_row(url, None, end)
            .on_conflict(
                OnConflict::column(backchannel_receiver::Column::Url)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(connection)
            .await?;
    }
    Ok(())
}

/// Makes `url` the receiver of the backend key `key` (`PUT /api/backchannel/receiver`): its deliveries start
/// at the log's end, and the key's earlier receiver, if any, gets nothing more.
pub async fn register_for_key(connection: &impl ConnectionTrait, key: Uuid, url: &str) -> Result<(), DbErr> {
    remove_for_key(connection, key).await?;
    let end = log_end(connection).await?;
    receiver_row(url, Some(key), end)
        .on_conflict(
            OnConflict::column(backchannel_receiver::Column::Url)
                .update_column(backchannel_receiver::Column::BackendKeyId)
                .to_owned(),
        )
        .exec_without_returning(connection)
        .await?;
    Ok(())
}

/// Ends the deliveries to the receiver of the backend key `key`; answers whether it had one.
pub async fn remove_for_key(connection: &impl ConnectionTrait, key: Uuid) -> Result<bool, DbErr> {
    let removed = backchannel_receiver::Entity::delete_many()
        .filter(backchannel_receiver::Column::BackendKeyId.eq(key))
        .exec(connection)
        .await?;
    Ok(removed.rows_affected > 0)
}

/// The id of the newest revocation log row (0 for an empty log).
async fn log_end(connection: &impl ConnectionTrait) -> Result<i64, DbErr> {
    Ok(session_revocation::Entity::find()
        .order_by_desc(session_revocation::Column::Id)
        .one(connection)
        .await?
        .map_or(0, |row| row.id))
}

fn receiver_row(url: &str, key: Option<Uuid>, position: i64) -> sea_orm::Insert<backchannel_receiver::ActiveModel> {
    backchannel_receiver::Entity::insert(backchannel_receiver::ActiveModel {
        url: Set(url.to_owned()),
        backend_key_id: Set(key),
        position: Set(position),
        attempts: Set(0),
        next_attempt_ms: Set(0),
        claimed_until_ms: Set(None),
        last_error: Set(None),
    })
}

/// The receivers to deliver to now, the setting's and those of live backend keys, with their positions.
async fn receivers(state: &AppState) -> Result<Vec<backchannel_receiver::Model>, DbErr> {
    let rows = backchannel_receiver::Entity::find()
        .all(state.store.connection())
        .await?;
    Ok(rows
        .into_iter()
        .filter(|row| match row.backend_key_id {
            None => state.settings.backchannel_logout_urls.contains(&row.url),
            Some(key) => state.backend_keys.is_live(key),
        })
        .collect())
}

/// Why the TLS settings of deliveries cannot be built.
#[derive(Debug, thiserror::Error)]
#[error("BACKCHANNEL_CA_FILE {path}: {reason}")]
pub struct TlsSetupError {
    path: String,
    reason: String,
}

/// The TLS client settings of deliveries: the public roots, and every certificate of `ca_file`. Built at start, so
/// a file that cannot be read stops the start instead of every delivery.
pub fn tls_config(ca_file: Option<&std::path::Path>) -> Result<Arc<rustls::ClientConfig>, TlsSetupError> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = ca_file {
        let failed = |reason: String| TlsSetupError {
            path: path.display().to_string(),
            reason,
        };
        let certificates = CertificateDer::pem_file_iter(path)
            .map_err(|error| failed(error.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| failed(error.to_string()))?;
        if certificates.is_empty() {
            return Err(failed("holds no certificate".to_owned()));
        }
        for certificate in certificates {
            roots.add(certificate).map_err(|error| failed(error.to_string()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| TlsSetupError {
            path: String::new(),
            reason: error.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Delivers to every receiver for as long as the process lives: at once when this node hears of a session end,
/// and every second regardless. Runs on the current actix arbiter (its HTTP client is not `Send`).
pub fn spawn(state: actix_web::web::Data<AppState>, tls: Arc<rustls::ClientConfig>) {
    actix_web::rt::spawn(async move {
        // A redirect is a failed delivery: followed, it could carry the token to another host or over plain
        // HTTP, or turn the POST into a GET whose 2xx would count as delivered.
        let client = awc::Client::builder()
            .connector(awc::Connector::new().rustls_0_23(tls))
            .disable_redirects()
            .timeout(TIMEOUT)
            .finish();
        let mut cursors: HashMap<String, Cursor> = HashMap::new();
        let mut changes = state.revocation_log.clone();
        loop {
            // Two reads a round; a receiver is claimed (a write) only when the log holds something for it.
            match (receivers(&state).await, log_end(state.store.connection()).await) {
                (Ok(receivers), Ok(end)) => {
                    let at = now_ms();
                    let due = receivers
                        .iter()
                        .filter(|receiver| receiver.position < end && receiver.next_attempt_ms <= at);
                    for receiver in due {
                        if let Err(error) = deliver(&state, &client, &receiver.url, &mut cursors).await {
                            tracing::warn!(%error, "cannot deliver back-channel logout tokens");
                        }
                    }
                }
                (Err(error), _) | (_, Err(error)) => tracing::warn!(%error, "cannot read the back-channel receivers"),
            }
            tokio::select! {
                changed = changes.changed() => {
                    if changed.is_err() {
                        tokio::time::sleep(POLL).await;
                    }
                }
                () = tokio::time::sleep(POLL) => {}
            }
        }
    });
}

/// One round for one receiver: claims it, sends what follows its position until one fails, records the outcome.
async fn deliver(
    state: &AppState,
    client: &awc::Client,
    url: &str,
    cursors: &mut HashMap<String, Cursor>,
) -> Result<(), DbErr> {
    let connection = state.store.connection();
    let at = now_ms();
    let claimed = backchannel_receiver::Entity::update_many()
        .col_expr(
            backchannel_receiver::Column::ClaimedUntilMs,
            Expr::value(Some(at + millis(CLAIM))),
        )
        .filter(backchannel_receiver::Column::Url.eq(url))
        .filter(backchannel_receiver::Column::NextAttemptMs.lte(at))
        .filter(
            backchannel_receiver::Column::ClaimedUntilMs
                .is_null()
                .or(backchannel_receiver::Column::ClaimedUntilMs.lt(at)),
        )
        .exec(connection)
        .await?
        .rows_affected
        == 1;
    if !claimed {
        return Ok(());
    }
    let Some(receiver) = backchannel_receiver::Entity::find_by_id(url.to_owned())
        .one(connection)
        .await?
    else {
        return Ok(());
    };
    // Another node may have delivered since this one last did: go on from the recorded position.
    let cursor = cursors
        .entry(url.to_owned())
        .or_insert_with(|| Cursor::at(receiver.position));
    if cursor.position() < receiver.position {
        *cursor = Cursor::at(receiver.position);
    }
    let events = cursor.next(connection, state.settings.access_token_ttl).await?;
    let mut delivered = receiver.position;
    let mut failure = None;
    for event in &events {
        match send(state, client, url, event).await {
            Ok(()) => delivered = event.id,
            Err(error) => {
                failure = Some(error);
                break;
            }
        }
    }
    let (attempts, next_attempt_ms, last_error) = match failure {
        None => (0, 0, receiver.last_error.filter(|_| events.is_empty())),
        Some(error) => {
            // Sent again from the first undelivered row.
            *cursor = Cursor::at(delivered);
            let attempts = receiver.attempts.saturating_add(1);
            let back_off = Duration::from_secs(1u64 << attempts.clamp(1, 7).saturating_sub(1)).min(LONGEST_BACK_OFF);
            (attempts, now_ms() + millis(back_off), Some(error))
        }
    };
    backchannel_receiver::Entity::update_many()
        .col_expr(backchannel_receiver::Column::Position, Expr::value(delivered))
        .col_expr(backchannel_receiver::Column::Attempts, Expr::value(attempts))
        .col_expr(
            backchannel_receiver::Column::NextAttemptMs,
            Expr::value(next_attempt_ms),
        )
        .col_expr(backchannel_receiver::Column::LastError, Expr::value(last_error))
        .col_expr(
            backchannel_receiver::Column::ClaimedUntilMs,
            Expr::value(Option::<i64>::None),
        )
        .filter(backchannel_receiver::Column::Url.eq(url))
        .exec(connection)
        .await?;
    Ok(())
}

/// POSTs one logout token; any answer but 2xx is a failure, described without the token.
async fn send(state: &AppState, client: &awc::Client, url: &str, event: &FeedEvent) -> Result<(), String> {
    let iat = now().timestamp();
    let claims = LogoutClaims {
        iss: state.access_tokens.issuer().to_owned(),
        aud: state.access_tokens.issuer().to_owned(),
        iat,
        exp: iat + 120,
        jti: Uuid::now_v7(),
        sid: event.session_id,
        sub: event.user_id,
        events: serde_json::json!({ BACKCHANNEL_LOGOUT_EVENT: {} }),
    };
    let token = state
        .access_tokens
        .sign_other(LOGOUT_TOKEN_TYPE, &claims)
        .map_err(|error| format!("cannot sign a logout token: {error}"))?;
    let response = client
        .post(url)
        .content_type("application/x-www-form-urlencoded")
        // A JWT is base64url and dots: nothing to escape.
        .send_body(format!("logout_token={token}"))
        .await
        .map_err(|error| format!("cannot reach the receiver: {error}"))?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("the receiver answered {}", response.status()))
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
