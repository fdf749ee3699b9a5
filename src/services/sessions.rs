//! Signing a device in, and the caller's list of sessions.
//!
//! A sign-in writes the session row and its first refresh token in one write transaction (`Store::begin_write`),
//! queues a mail when the device label is new for the account, and announces `session_created` the way
//! revocations travel: to the other nodes inside the transaction, then to the local manager (without waiting),
//! which tells the user's other sockets.

use chrono::{DateTime, Utc};
use entity::{refresh_token, session, user};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QueryResult,
    sea_query::{Expr, Query},
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    AppState, ClientInfo, now, seconds,
    throttle::{self, ThrottleKey},
    users::UserView,
};
use crate::{
    domain::Authentication,
    email::Mail,
    error::AppResult,
    realtime::{
        events::{SessionCreated, SessionEvent, SessionSnapshot},
        presence,
    },
    tokens::{AuthenticationClaims, hash_token, new_opaque_token},
};

/// The `Session` of the contract.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SessionSummary {
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

impl SessionSummary {
    pub fn new(model: &session::Model, current: bool, online: bool) -> Self {
        Self {
            id: model.id,
            ip: model.ip.clone(),
            user_agent: model.user_agent.clone(),
            device: model.device.clone(),
            created_at: model.created_at,
            last_used_at: model.last_used_at,
            expires_at: model.expires_at,
            current,
            online,
        }
    }
}

/// The session as events carry it to other devices and nodes; each receiving manager sets `current` and
/// `online` for its devices.
fn snapshot(model: &session::Model) -> SessionSnapshot {
    SessionSnapshot {
        id: model.id,
        ip: model.ip.clone(),
        user_agent: model.user_agent.clone(),
        device: model.device.clone(),
        created_at: model.created_at,
        last_used_at: model.last_used_at,
        expires_at: model.expires_at,
        current: false,
        online: false,
    }
}

/// A token pair for one session: what every sign-in and refresh answers.
#[derive(Clone)]
pub struct SignedIn {
    pub user: UserView,
    pub session_id: Uuid,
    pub access_token: String,
    pub expires_in: i64,
    pub refresh_token: String,
    pub refresh_expires_in: i64,
}

/// Never the tokens: a `{:?}` in a log line must not hand out a session.
impl std::fmt::Debug for SignedIn {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SignedIn")
            .field("user", &self.user.id)
            .field("session_id", &self.session_id)
            .field("access_token", &"[redacted]")
            .field("refresh_token", &"[redacted]")
            .finish_non_exhaustive()
    }
}

/// Whether a session is past its absolute or idle limit at `at`.
pub fn is_expired(state: &AppState, model: &session::Model, at: DateTime<Utc>) -> bool {
    model.expires_at <= at || model.last_used_at + seconds(state.settings.session_idle_ttl) <= at
}

/// When the session ends if nothing happens: its absolute end, or its idle end if that comes first.
pub fn ends_at(state: &AppState, model: &session::Model) -> DateTime<Utc> {
    model
        .expires_at
        .min(model.last_used_at + seconds(state.settings.session_idle_ttl))
}

/// When the session's user last authenticated: its sign-in, or its latest reauthentication.
pub fn authenticated_at(model: &session::Model) -> DateTime<Utc> {
    model.authenticated_at.unwrap_or(model.created_at)
}

/// A session that has not ended.
pub async fn live(state: &AppState, id: Uuid) -> AppResult<session::Model> {
    session::Entity::find_by_id(id)
        .one(state.store.connection())
        .await?
        .filter(|model| model.revoked_at.is_none() && !is_expired(state, model, now()))
        .ok_or(crate::error::AppError::SessionRevoked)
}

/// The calling device's label, and whether the user has signed in before and on a device of this label:
/// a sign-in on a new device sends the account a mail.
#[derive(Debug, Clone)]
pub struct DeviceHistory {
    device: String,
    any_sessions: bool,
    known_device: bool,
}

const ANY_SESSIONS: &str = "history_any_sessions";
const KNOWN_DEVICE: &str = "history_known_device";

impl DeviceHistory {
    /// The question as two columns of a larger read, for the user whose id is `user_id`. EXISTS stops at
    /// the first row, so a user with many sessions costs no more than one with a few.
    pub fn columns(user_id: Expr, device: &str) -> [(Expr, &'static str); 2] {
        use sea_orm::sea_query::ExprTrait;
        let sessions_of_user = || {
            Query::select()
                .expr(Expr::val(1))
                .from(session::Entity)
                .and_where(Expr::col((session::Entity, session::Column::UserId)).eq(user_id.clone()))
                .to_owned()
        };
        [
            (Expr::exists(sessions_of_user()), ANY_SESSIONS),
            (
                Expr::exists(
                    sessions_of_user()
                        .and_where(Expr::col((session::Entity, session::Column::Device)).eq(device))
                        .to_owned(),
                ),
                KNOWN_DEVICE,
            ),
        ]
    }

    /// What `columns` read for `device`.
    pub fn of(row: &QueryResult, device: String) -> Result<Self, sea_orm::DbErr> {
        Ok(Self {
            device,
            any_sessions: row.try_get("", ANY_SESSIONS)?,
            known_device: row.try_get("", KNOWN_DEVICE)?,
        })
    }

    async fn read(state: &AppState, user: Uuid, device: String) -> AppResult<Self> {
        let mut query = Query::select();
        for (expression, alias) in Self::columns(Expr::val(user), &device) {
            query.expr_as(expression, alias);
        }
        let row =
            state.store.connection().query_one(&query).await?.ok_or_else(|| {
                crate::error::AppError::Internal("the device history read returned no row".to_owned())
            })?;
        Ok(Self::of(&row, device)?)
    }

    fn is_new_device(&self) -> bool {
        self.any_sessions && !self.known_device
    }
}

/// Starts a session for a verified user on the calling device and answers its first token pair.
pub async fn sign_in(
    state: &AppState,
    user: &user::Model,
    client: &ClientInfo,
    authentication: &Authentication,
) -> AppResult<SignedIn> {
    let history = DeviceHistory::read(state, user.id, device_label(&client.user_agent)).await?;
    sign_in_with(state, user, client, authentication, history, None).await
}

/// `sign_in` when the device history was read already, with the account. With `unless_locked`, the write
/// itself checks that the address is not locked and answers `account_locked` when it is: a password sign-in
/// checked the lock before its hash, and a parallel attempt may have set one since.
pub async fn sign_in_with(
    state: &AppState,
    user: &user::Model,
    client: &ClientInfo,
    authentication: &Authentication,
    history: DeviceHistory,
    unless_locked: Option<&ThrottleKey>,
) -> AppResult<SignedIn> {
    let created_at = now();
    let new_device = history.is_new_device();
    let device = history.device;
    let model = session::Model {
        id: Uuid::now_v7(),
        user_id: user.id,
        ip: client.ip.clone(),
        user_agent: client.user_agent.chars().take(512).collect(),
        device,
        created_at,
        last_used_at: created_at,
        expires_at: created_at + seconds(state.settings.session_ttl),
        revoked_at: None,
        revoked_reason: None,
        auth_methods: authentication.to_stored(),
        authenticated_at: Some(created_at),
    };
    let refresh_token = new_opaque_token();
    let announcement = SessionCreated {
        user: user.id,
        session: snapshot(&model),
    };
    let transaction = state.store.begin_write().await?;
    session::Entity::insert(session::ActiveModel {
        id: Set(model.id),
        user_id: Set(model.user_id),
        ip: Set(model.ip.clone()),
        user_agent: Set(model.user_agent.clone()),
        device: Set(model.device.clone()),
        created_at: Set(model.created_at),
        last_used_at: Set(model.last_used_at),
        expires_at: Set(model.expires_at),
        revoked_at: Set(None),
        revoked_reason: Set(None),
        auth_methods: Set(model.auth_methods.clone()),
        authenticated_at: Set(model.authenticated_at),
    })
    .exec(&transaction)
    .await?;
    // Checked after the first write, so SQLite already holds its write lock: a read first would make the insert
    // a read-to-write upgrade, which fails at once if another connection wrote in between. A lock found here
    // drops the transaction, and with it the session.
    if let Some(key) = unless_locked {
        throttle::refuse_if_locked(&transaction, key).await?;
    }
    insert_refresh_token(&transaction, model.id, &refresh_token, created_at).await?;
    if new_device {
        let mail = Mail::NewSignIn {
            device: model.device.clone(),
            ip: model.ip.clone(),
            at: created_at,
        };
        state.mailer.queue(&transaction, &user.email, &mail).await?;
    }
    state
        .publisher
        .notify_in_transaction(&transaction, SessionEvent::Created(announcement.clone()))
        .await?;
    transaction.commit().await?;
    // Waking the sender costs it a read of the outbox, so only a queued mail does.
    if new_device {
        state.mailer.wake();
    }
    state.publisher.session_created(announcement);
    token_pair(state, UserView::from(user), &model, refresh_token, created_at)
}

pub async fn insert_refresh_token(
    connection: &impl sea_orm::ConnectionTrait,
    session: Uuid,
    token: &str,
    created_at: DateTime<Utc>,
) -> Result<(), sea_orm::DbErr> {
    refresh_token::Entity::insert(refresh_token::ActiveModel {
        id: Set(Uuid::now_v7()),
        session_id: Set(session),
        token_hash: Set(hash_token(token)),
        created_at: Set(created_at),
        rotated_at: Set(None),
        parent_id: Set(None),
    })
    .exec(connection)
    .await?;
    Ok(())
}

/// Issues an access token for the session and packs it with `refresh_token`.
pub fn token_pair(
    state: &AppState,
    user: UserView,
    model: &session::Model,
    refresh_token: String,
    at: DateTime<Utc>,
) -> AppResult<SignedIn> {
    let authentication = AuthenticationClaims {
        methods: Authentication::parse(&model.auth_methods).methods(),
        at: Some(authenticated_at(model)),
    };
    let (access_token, expires_in) =
        state
            .access_tokens
            .issue_with(user.id, model.id, ends_at(state, model), &authentication, at)?;
    Ok(SignedIn {
        user,
        session_id: model.id,
        access_token,
        expires_in,
        refresh_token,
        refresh_expires_in: (model.expires_at - at).num_seconds().max(0),
    })
}

/// The caller's live sessions, newest first.
pub async fn list(state: &AppState, user: Uuid, current: Uuid) -> AppResult<Vec<SessionSummary>> {
    let at = now();
    let lists = &state.session_lists;
    let models = lists
        .rows
        .get_or_load(user, async {
            session::Entity::find()
                .filter(session::Column::UserId.eq(user))
                .filter(session::Column::RevokedAt.is_null())
                .order_by_desc(session::Column::CreatedAt)
                .all(state.store.connection())
                .await
        })
        .await?;
    let live: Vec<&session::Model> = models.iter().filter(|model| !is_expired(state, model, at)).collect();
    let ids: Vec<Uuid> = live.iter().map(|model| model.id).collect();
    // With one node, local presence is the whole truth.
    let elsewhere = if state.store.shared_by_nodes() {
        lists
            .online_elsewhere
            .get_or_load(user, presence::online_elsewhere(state.store.connection(), &ids, at))
            .await?
    } else {
        Default::default()
    };
    Ok(live
        .into_iter()
        .map(|model| {
            let online = state.live_sets.presence.is_online(&model.id) || elsewhere.contains(&model.id);
            SessionSummary::new(model, model.id == current, online)
        })
        .collect())
}

/// A short label such as "Firefox on Linux"; for apps, the product named first in their user agent.
pub fn device_label(user_agent: &str) -> String {
    const UNKNOWN: &str = "UNKNOWN";
    if let Some(parsed) = woothee::parser::Parser::new().parse(user_agent)
        && parsed.name != UNKNOWN
    {
        return if parsed.os != UNKNOWN {
            format!("{} on {}", parsed.name, parsed.os)
        } else {
            parsed.name.to_owned()
        };
    }
    let product: String = user_agent
        .split(|character: char| character == '/' || character.is_whitespace())
        .find(|part| !part.is_empty())
        .unwrap_or_default()
        .chars()
        .filter(|character| !character.is_control())
        .take(40)
        .collect();
    if product.is_empty() {
        "Unknown device".to_owned()
    } else {
        product
    }
}

#[cfg(test)]
mod tests {
    use super::{SignedIn, device_label};
    use crate::services::users::{MfaView, UserView};

    #[test]
    fn debug_output_never_shows_the_tokens() {
        let signed_in = SignedIn {
            user: UserView {
                id: uuid::Uuid::now_v7(),
                email: "someone@example.com".to_owned(),
                name: None,
                email_verified: true,
                mfa: MfaView {
                    email_otp: false,
                    totp: false,
                },
                created_at: chrono::Utc::now(),
            },
            session_id: uuid::Uuid::now_v7(),
            access_token: "eyJ.secret-access.token".to_owned(),
            expires_in: 900,
            refresh_token: "secret-refresh-token".to_owned(),
            refresh_expires_in: 2_592_000,
        };
        let shown = format!("{signed_in:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains(&signed_in.session_id.to_string()), "{shown}");
    }

    #[test]
    fn labels_browsers_and_apps() {
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
        assert_eq!(device_label(firefox), "Firefox on Linux");
        let chrome_mac = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";
        assert_eq!(device_label(chrome_mac), "Chrome on Mac OSX");
        assert_eq!(device_label("MyNotes/2.1 (iOS 18)"), "MyNotes");
        assert_eq!(device_label(""), "Unknown device");
    }
}
