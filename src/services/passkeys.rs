//! Passkeys (WebAuthn, with webauthn-rs): registering them, naming and deleting them, and checking them as a
//! second factor after a password or alone for a passwordless sign-in.
//!
//! - Every ceremony has two requests. Its state (the challenge sent) waits in the database between them, in
//!   `webauthn_ceremonies` or, for a login challenge, in `login_challenges.webauthn_state`, so any node finishes
//!   what another started. A ceremony is used once: the request whose conditional DELETE (or UPDATE of the
//!   challenge) removes it is the one that goes on.
//! - Registration asks for a discoverable credential (so it can sign in without an address) and user
//!   verification; assertions require user verification too, so a passkey alone is two factors.
//! - Signature counters (WebAuthn §6.1.1): an authenticator that counts must show a higher count each time.
//!   webauthn-rs refuses a count at or below the stored one, and the stored one moves only forward through a
//!   conditional UPDATE, so two parallel assertions of one count (a cloned authenticator) pass once.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use entity::{passkey, user, webauthn_ceremony};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    sea_query::Expr,
};
use serde::{Serialize, de::DeserializeOwned};
use uuid::Uuid;
use webauthn_rs::prelude::{
    AuthenticationResult, CreationChallengeResponse, DiscoverableAuthentication, Passkey, PasskeyAuthentication,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential, RequestChallengeResponse,
};
use webauthn_rs_proto::ResidentKeyRequirement;

use super::{AppState, now, revocation::Change, users};
use crate::{
    email::Mail,
    error::{AppError, AppResult},
    realtime::events::{SecurityChange, SecurityChanged},
};

/// How long the two requests of a ceremony may be apart.
const CEREMONY_MINUTES: i64 = 5;
const REGISTRATION: &str = "registration";
const SIGN_IN: &str = "sign_in";

/// A passkey as the account page lists it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PasskeyView {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<&passkey::Model> for PasskeyView {
    fn from(model: &passkey::Model) -> Self {
        Self {
            id: model.id,
            name: model.name.clone(),
            created_at: model.created_at,
            last_used_at: model.last_used_at,
        }
    }
}

/// The options a browser passes to `navigator.credentials`, with the id of the ceremony they start.
pub struct Ceremony<Options> {
    pub id: Uuid,
    pub options: Options,
}

/// A passkey name as typed: trimmed, 1 to 64 characters, no control characters.
pub fn parse_name(raw: &str) -> Result<String, &'static str> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 64 {
        return Err("must be 1 to 64 characters");
    }
    if name.chars().any(char::is_control) {
        return Err("must not contain control characters");
    }
    Ok(name.to_owned())
}

fn to_json<T: Serialize>(value: &T) -> AppResult<String> {
    serde_json::to_string(value)
        .map_err(|error| AppError::Internal(format!("a passkey value does not serialise: {error}")))
}

fn from_json<T: DeserializeOwned>(text: &str) -> AppResult<T> {
    serde_json::from_str(text)
        .map_err(|error| AppError::Internal(format!("a stored passkey value does not read: {error}")))
}

fn refused(error: webauthn_rs::prelude::WebauthnError) -> AppError {
    // The reason is for the log only: what failed tells an attacker which part to change.
    tracing::info!(%error, "a passkey was refused");
    AppError::PasskeyInvalid
}

/// The user's passkeys, newest first.
pub async fn of_user(connection: &impl ConnectionTrait, user: Uuid) -> AppResult<Vec<passkey::Model>> {
    Ok(passkey::Entity::find()
        .filter(passkey::Column::UserId.eq(user))
        .order_by_desc(passkey::Column::CreatedAt)
        .all(connection)
        .await?)
}

const HAS_PASSKEYS: &str = "has_passkeys";

/// Whether the user whose id is `user_id` has a passkey, as a column of a larger read (a password sign-in reads
/// it with the account, in its one round trip).
pub fn exists_column(user_id: sea_orm::sea_query::Expr) -> (sea_orm::sea_query::Expr, &'static str) {
    use sea_orm::sea_query::{ExprTrait, Query};
    let of_user = Query::select()
        .expr(Expr::val(1))
        .from(passkey::Entity)
        .and_where(Expr::col((passkey::Entity, passkey::Column::UserId)).eq(user_id))
        .to_owned();
    (Expr::exists(of_user), HAS_PASSKEYS)
}

/// What `exists_column` read.
pub fn exists_of(row: &sea_orm::QueryResult) -> Result<bool, sea_orm::DbErr> {
    row.try_get("", HAS_PASSKEYS)
}

pub async fn count(state: &AppState, user: Uuid) -> AppResult<u64> {
    Ok(passkey::Entity::find()
        .filter(passkey::Column::UserId.eq(user))
        .count(state.store.connection())
        .await?)
}

async fn store_ceremony(
    state: &AppState,
    user: Option<Uuid>,
    purpose: &str,
    ceremony_state: String,
) -> AppResult<Uuid> {
    let id = Uuid::now_v7();
    let at = now();
    let transaction = state.store.begin_write().await?;
    // Ceremonies nobody finished go with each new one, so the table stays small.
    webauthn_ceremony::Entity::delete_many()
        .filter(webauthn_ceremony::Column::ExpiresAt.lt(at))
        .exec(&transaction)
        .await?;
    webauthn_ceremony::Entity::insert(webauthn_ceremony::ActiveModel {
        id: Set(id),
        user_id: Set(user),
        purpose: Set(purpose.to_owned()),
        state: Set(ceremony_state),
        expires_at: Set(at + chrono::Duration::minutes(CEREMONY_MINUTES)),
        created_at: Set(at),
    })
    .exec(&transaction)
    .await?;
    transaction.commit().await?;
    Ok(id)
}

/// Takes a live ceremony of `purpose` (and `user`, for a registration) for this request alone.
async fn take_ceremony(state: &AppState, id: Uuid, purpose: &str, user: Option<Uuid>) -> AppResult<String> {
    let mut query = webauthn_ceremony::Entity::find_by_id(id)
        .filter(webauthn_ceremony::Column::Purpose.eq(purpose))
        .filter(webauthn_ceremony::Column::ExpiresAt.gt(now()));
    query = match user {
        Some(user) => query.filter(webauthn_ceremony::Column::UserId.eq(user)),
        None => query.filter(webauthn_ceremony::Column::UserId.is_null()),
    };
    let stored = query
        .one(state.store.connection())
        .await?
        .ok_or(AppError::PasskeyInvalid)?;
    let taken = webauthn_ceremony::Entity::delete_by_id(id)
        .exec(state.store.connection())
        .await?;
    if taken.rows_affected == 0 {
        return Err(AppError::PasskeyInvalid);
    }
    Ok(stored.state)
}

/// Starts registering a passkey for `account` (the caller checked a recent authentication).
pub async fn start_registration(
    state: &AppState,
    account: &user::Model,
) -> AppResult<Ceremony<CreationChallengeResponse>> {
    let existing = of_user(state.store.connection(), account.id).await?;
    let exclude = existing
        .iter()
        .filter_map(|model| URL_SAFE_NO_PAD.decode(&model.credential_id).ok())
        .collect::<Vec<_>>();
    let display_name = account.name.clone().unwrap_or_else(|| account.email.clone());
    let (mut options, registration) = state
        .webauthn
        .start_passkey_registration(account.id, &account.email, &display_name, Some(exclude))
        .map_err(|error| AppError::Internal(format!("a passkey registration did not start: {error}")))?;
    // A discoverable credential, so the passkey can also sign in without an address. webauthn-rs leaves this to
    // the authenticator; the check of the answer is the same either way.
    if let Some(selection) = options.public_key.authenticator_selection.as_mut() {
        selection.resident_key = Some(ResidentKeyRequirement::Required);
        selection.require_resident_key = true;
    }
    let id = store_ceremony(state, Some(account.id), REGISTRATION, to_json(&registration)?).await?;
    Ok(Ceremony { id, options })
}

/// Finishes a registration: the credential must answer the ceremony's challenge from an allowed origin.
pub async fn finish_registration(
    state: &AppState,
    account: &user::Model,
    session: Uuid,
    ceremony: Uuid,
    name: String,
    credential: &RegisterPublicKeyCredential,
) -> AppResult<PasskeyView> {
    let registration: PasskeyRegistration =
        from_json(&take_ceremony(state, ceremony, REGISTRATION, Some(account.id)).await?)?;
    let passkey = state
        .webauthn
        .finish_passkey_registration(credential, &registration)
        .map_err(refused)?;
    let credential_id = URL_SAFE_NO_PAD.encode(passkey.cred_id());
    let at = now();
    let model = passkey::Model {
        id: Uuid::now_v7(),
        user_id: account.id,
        name,
        credential_id: credential_id.clone(),
        credential: to_json(&passkey)?,
        sign_count: 0,
        created_at: at,
        last_used_at: None,
    };
    let mut change = Change::begin(state).await?;
    // The account's lock first: it makes the transaction a writer before it reads (SQLite), and parallel
    // changes of the account's passkeys take turns.
    users::lock(change.connection(), account.id).await?;
    // A credential id names one passkey of one account (WebAuthn §7.1 step 22): a second registration of it,
    // here or on another account, is refused.
    let taken = passkey::Entity::find()
        .filter(passkey::Column::CredentialId.eq(credential_id))
        .count(change.connection())
        .await?;
    if taken > 0 {
        return Err(AppError::PasskeyInvalid);
    }
    let inserted = passkey::Entity::insert(passkey::ActiveModel {
        id: Set(model.id),
        user_id: Set(model.user_id),
        name: Set(model.name.clone()),
        credential_id: Set(model.credential_id.clone()),
        credential: Set(model.credential.clone()),
        sign_count: Set(0),
        created_at: Set(at),
        last_used_at: Set(None),
    })
    .exec(change.connection())
    .await;
    // Another account's registration of the same credential, committed since the check above.
    if let Err(error) = inserted {
        return Err(match error.sql_err() {
            Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => AppError::PasskeyInvalid,
            _ => error.into(),
        });
    }
    change
        .queue_mail(
            &account.email,
            &Mail::PasskeyAdded {
                name: model.name.clone(),
            },
        )
        .await?;
    announce(&mut change, account.id, session, SecurityChange::PasskeyAdded).await?;
    change.commit().await?;
    Ok(PasskeyView::from(&model))
}

async fn announce(change: &mut Change<'_>, user: Uuid, session: Uuid, what: SecurityChange) -> AppResult<()> {
    change
        .security_changed(SecurityChanged {
            user,
            session,
            change: what,
        })
        .await
}

pub async fn rename(state: &AppState, user: Uuid, session: Uuid, id: Uuid, name: String) -> AppResult<PasskeyView> {
    let mut change = Change::begin(state).await?;
    users::lock(change.connection(), user).await?;
    let renamed = passkey::Entity::update_many()
        .col_expr(passkey::Column::Name, Expr::value(name))
        .filter(passkey::Column::Id.eq(id))
        .filter(passkey::Column::UserId.eq(user))
        .exec(change.connection())
        .await?;
    if renamed.rows_affected == 0 {
        return Err(AppError::NotFound);
    }
    let model = passkey::Entity::find_by_id(id)
        .one(change.connection())
        .await?
        .ok_or(AppError::NotFound)?;
    announce(&mut change, user, session, SecurityChange::PasskeyRenamed).await?;
    change.commit().await?;
    Ok(PasskeyView::from(&model))
}

/// Deletes one of the user's passkeys (the caller checked a recent authentication); the owner is mailed.
pub async fn delete(state: &AppState, account: &user::Model, session: Uuid, id: Uuid) -> AppResult<()> {
    let mut change = Change::begin(state).await?;
    users::lock(change.connection(), account.id).await?;
    let model = passkey::Entity::find_by_id(id)
        .filter(passkey::Column::UserId.eq(account.id))
        .one(change.connection())
        .await?
        .ok_or(AppError::NotFound)?;
    passkey::Entity::delete_by_id(id).exec(change.connection()).await?;
    change
        .queue_mail(&account.email, &Mail::PasskeyRemoved { name: model.name })
        .await?;
    announce(&mut change, account.id, session, SecurityChange::PasskeyRemoved).await?;
    change.commit().await
}

fn credentials(models: &[passkey::Model]) -> AppResult<Vec<Passkey>> {
    models.iter().map(|model| from_json(&model.credential)).collect()
}

/// Options and state for a passkey as the second step of a sign-in: `None` when the account has no passkey.
pub async fn second_step_options(
    state: &AppState,
    user: Uuid,
) -> AppResult<Option<(RequestChallengeResponse, String)>> {
    let models = of_user(state.store.connection(), user).await?;
    if models.is_empty() {
        return Ok(None);
    }
    let (options, authentication) = state
        .webauthn
        .start_passkey_authentication(&credentials(&models)?)
        .map_err(|error| AppError::Internal(format!("a passkey sign-in did not start: {error}")))?;
    Ok(Some((options, to_json(&authentication)?)))
}

/// Checks a passkey's answer to a login challenge's ceremony (`ceremony_state`) for `user`.
pub async fn finish_second_step(
    state: &AppState,
    user: Uuid,
    ceremony_state: &str,
    credential: &PublicKeyCredential,
) -> AppResult<()> {
    let authentication: PasskeyAuthentication = from_json(ceremony_state)?;
    let result = state
        .webauthn
        .finish_passkey_authentication(credential, &authentication)
        .map_err(refused)?;
    record_use(state, user, &result).await.map(|_| ())
}

/// Starts a passwordless sign-in: any discoverable passkey of this site may answer.
pub async fn start_sign_in(state: &AppState) -> AppResult<Ceremony<RequestChallengeResponse>> {
    let (mut options, authentication) = state
        .webauthn
        .start_discoverable_authentication()
        .map_err(|error| AppError::Internal(format!("a passkey sign-in did not start: {error}")))?;
    // webauthn-rs asks for conditional mediation (autofill); a button press wants the plain dialog.
    options.mediation = None;
    let id = store_ceremony(state, None, SIGN_IN, to_json(&authentication)?).await?;
    Ok(Ceremony { id, options })
}

/// Finishes a passwordless sign-in; answers the account the passkey belongs to.
pub async fn finish_sign_in(
    state: &AppState,
    ceremony: Uuid,
    credential: &PublicKeyCredential,
) -> AppResult<user::Model> {
    let authentication: DiscoverableAuthentication = from_json(&take_ceremony(state, ceremony, SIGN_IN, None).await?)?;
    let (user, credential_id) = state
        .webauthn
        .identify_discoverable_authentication(credential)
        .map_err(refused)?;
    let model = passkey::Entity::find()
        .filter(passkey::Column::CredentialId.eq(URL_SAFE_NO_PAD.encode(credential_id)))
        .filter(passkey::Column::UserId.eq(user))
        .one(state.store.connection())
        .await?
        .ok_or(AppError::PasskeyInvalid)?;
    let stored: Passkey = from_json(&model.credential)?;
    let result = state
        .webauthn
        .finish_discoverable_authentication_v2(credential, authentication, &stored)
        .map_err(refused)?;
    record_use(state, user, &result).await?;
    user::Entity::find_by_id(user)
        .one(state.store.connection())
        .await?
        .ok_or(AppError::PasskeyInvalid)
}

/// Records a verified assertion: the counter moves forward (or the assertion is refused, when a parallel one of
/// the same count got there first), the credential's flags are kept current, and the last use is noted.
async fn record_use(state: &AppState, user: Uuid, result: &AuthenticationResult) -> AppResult<passkey::Model> {
    let credential_id = URL_SAFE_NO_PAD.encode(result.cred_id());
    let model = passkey::Entity::find()
        .filter(passkey::Column::CredentialId.eq(credential_id))
        .filter(passkey::Column::UserId.eq(user))
        .one(state.store.connection())
        .await?
        .ok_or(AppError::PasskeyInvalid)?;
    let mut stored: Passkey = from_json(&model.credential)?;
    stored.update_credential(result);
    let counter = i64::from(result.counter());
    let mut update = passkey::Entity::update_many()
        .col_expr(passkey::Column::Credential, Expr::value(to_json(&stored)?))
        .col_expr(passkey::Column::LastUsedAt, Expr::value(now()))
        .filter(passkey::Column::Id.eq(model.id));
    update = if counter > 0 {
        update
            .col_expr(passkey::Column::SignCount, Expr::value(counter))
            .filter(passkey::Column::SignCount.lt(counter))
    } else {
        // An authenticator that counts nothing always says 0; once one said more, a 0 is a copy answering a
        // ceremony whose state predates the higher count.
        update.filter(passkey::Column::SignCount.eq(0))
    };
    let updated = update.exec(state.store.connection()).await?;
    if updated.rows_affected == 0 {
        tracing::warn!(passkey = %model.id, "a passkey showed a signature count already seen: possibly cloned");
        return Err(AppError::PasskeyInvalid);
    }
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(parse_name("  Laptop  ").as_deref(), Ok("Laptop"));
        assert!(parse_name("   ").is_err());
        assert!(parse_name(&"x".repeat(65)).is_err());
        assert!(parse_name("a\u{0007}b").is_err());
    }
}
