//! What is kept, and for how long: rows that no check can need any more are deleted.
//!
//! It runs hourly from the sweeper: revocation log rows go a day after no access token of their session can be
//! valid; ended sessions (and with them their refresh tokens) after 30 days; codes a day after they expired; sent
//! mail after 7 days; throttle rows with no lock and no mail in the last 24 hours; login challenges and passkey
//! ceremonies a day after they expired, and authenticator-app setups never confirmed a day after they began.
//! Deleting an account also deletes its throttle rows and its mail in the same transaction.

use entity::{
    address_throttle, login_challenge, mail_outbox, otp, registration, session, session_revocation, totp_factor,
    webauthn_ceremony,
};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::ExprTrait};

use super::{AppState, now, now_ms, seconds};
use crate::{error::AppResult, tokens::revocation_window};

/// Ended sessions (and with them their refresh tokens) stay this long for the session history.
const ENDED_SESSIONS_KEPT: chrono::Duration = chrono::Duration::days(30);
const SENT_MAIL_KEPT: chrono::Duration = chrono::Duration::days(7);
const IDLE_THROTTLE_KEPT_MS: i64 = 24 * 3_600_000;

pub async fn prune(state: &AppState) -> AppResult<()> {
    let at = now();
    let database = state.store.connection();
    // A revocation matters while an access token of its session could still be shown.
    let token_window = seconds(revocation_window(state.settings.access_token_ttl));
    session_revocation::Entity::delete_many()
        .filter(session_revocation::Column::RevokedAt.lt(at - token_window - chrono::Duration::days(1)))
        .exec(database)
        .await?;
    session::Entity::delete_many()
        .filter(session::Column::RevokedAt.lt(at - ENDED_SESSIONS_KEPT))
        .exec(database)
        .await?;
    otp::Entity::delete_many()
        .filter(otp::Column::ExpiresAt.lt(at - chrono::Duration::days(1)))
        .exec(database)
        .await?;
    registration::Entity::delete_many()
        .filter(registration::Column::CreatedAt.lt(at - seconds(super::registration::REGISTRATION_LIFE)))
        .exec(database)
        .await?;
    let a_day_ago = at - chrono::Duration::days(1);
    login_challenge::Entity::delete_many()
        .filter(login_challenge::Column::ExpiresAt.lt(a_day_ago))
        .exec(database)
        .await?;
    webauthn_ceremony::Entity::delete_many()
        .filter(webauthn_ceremony::Column::ExpiresAt.lt(a_day_ago))
        .exec(database)
        .await?;
    totp_factor::Entity::delete_many()
        .filter(totp_factor::Column::ConfirmedAt.is_null())
        .filter(totp_factor::Column::CreatedAt.lt(a_day_ago))
        .exec(database)
        .await?;
    mail_outbox::Entity::delete_many()
        .filter(mail_outbox::Column::SentAt.lt(at - SENT_MAIL_KEPT))
        .exec(database)
        .await?;
    let quiet_since = now_ms() - IDLE_THROTTLE_KEPT_MS;
    address_throttle::Entity::delete_many()
        .filter(
            address_throttle::Column::LockedUntilMs
                .is_null()
                .or(address_throttle::Column::LockedUntilMs.lt(quiet_since)),
        )
        .filter(
            address_throttle::Column::LastMailMs
                .is_null()
                .or(address_throttle::Column::LastMailMs.lt(quiet_since)),
        )
        // A run of failures is kept while it is recent: deleting it would let a guesser stay under the
        // threshold by waiting for the next prune.
        .filter(
            address_throttle::Column::LastFailureMs
                .is_null()
                .or(address_throttle::Column::LastFailureMs.lt(quiet_since)),
        )
        .exec(database)
        .await?;
    Ok(())
}
