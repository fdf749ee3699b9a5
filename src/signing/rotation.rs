//! Keeping the signing keys in the database: the first key, the scheduled rotation, the emergency rotation,
//! and deleting keys no live token needs. Every node runs `maintain` at start and every few seconds; the unique
//! `generation` makes nodes that rotate at once create one key, and every node then signs with the newest
//! active key.

use chrono::{DateTime, Utc};
use entity::signing_key;
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, QueryOrder, sea_query::OnConflict};

use super::key_ring::{KeyAlgorithm, KeyError, generate};
use crate::sealing::Sealer;

/// When keys are made and retired.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    pub algorithm: KeyAlgorithm,
    /// How long a key signs before the next one takes over (`SIGNING_KEY_ROTATION`).
    pub rotation: chrono::Duration,
    /// How long a new key is published before it signs: JWKS caches must have seen it first.
    pub lead: chrono::Duration,
    /// How long after a key stops signing one of its tokens may still be presented.
    pub token_window: chrono::Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    #[error(transparent)]
    Database(#[from] DbErr),
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// Every key, oldest generation first.
pub async fn all(connection: &impl ConnectionTrait) -> Result<Vec<signing_key::Model>, DbErr> {
    signing_key::Entity::find()
        .order_by_asc(signing_key::Column::Generation)
        .all(connection)
        .await
}

/// Makes what the schedule asks for at `now`: a first key (signing at once), the next key one lead before the
/// active one's turn ends (or at once, signing after the lead, when the configured algorithm changed), and
/// deletes keys whose every token has expired. Answers whether anything changed.
pub async fn maintain(
    connection: &impl ConnectionTrait,
    sealer: &Sealer,
    schedule: &Schedule,
    now: DateTime<Utc>,
) -> Result<bool, RotationError> {
    let keys = all(connection).await?;
    let Some(newest) = keys.last() else {
        return insert(connection, generate(schedule.algorithm, sealer, 1, now, now)?).await;
    };
    let mut changed = false;
    if newest.active_from <= now {
        let switching = newest.algorithm != schedule.algorithm.as_str();
        let due = newest.active_from + schedule.rotation - schedule.lead;
        if switching || due <= now {
            let active_from = if switching {
                now + schedule.lead
            } else {
                (newest.active_from + schedule.rotation).max(now + schedule.lead)
            };
            let next = generate(schedule.algorithm, sealer, newest.generation + 1, now, active_from)?;
            changed |= insert(connection, next).await?;
        }
    }
    changed |= prune(connection, &keys, schedule, now).await?;
    Ok(changed)
}

/// An emergency rotation: a new key that signs from now on every node (as each reloads, within seconds);
/// the keys before it stay published until their tokens expire. Answers the new key, or `None` when another
/// rotation took the same generation at the same moment (its key is the one that signs).
pub async fn rotate_now(
    connection: &impl ConnectionTrait,
    sealer: &Sealer,
    algorithm: KeyAlgorithm,
    now: DateTime<Utc>,
) -> Result<Option<signing_key::Model>, RotationError> {
    let generation = all(connection).await?.last().map_or(1, |key| key.generation + 1);
    let key = generate(algorithm, sealer, generation, now, now)?;
    Ok(insert(connection, key.clone()).await?.then_some(key))
}

/// Inserts `key` unless its generation exists; answers whether it did.
async fn insert(connection: &impl ConnectionTrait, key: signing_key::Model) -> Result<bool, RotationError> {
    let inserted = signing_key::Entity::insert(signing_key::ActiveModel::from(key))
        .on_conflict(
            OnConflict::column(signing_key::Column::Generation)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(connection)
        .await?;
    Ok(inserted == 1)
}

/// Deletes each key whose successor has signed for longer than a token lives: nothing it signed can be
/// presented any more.
async fn prune(
    connection: &impl ConnectionTrait,
    keys: &[signing_key::Model],
    schedule: &Schedule,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let signing_since = |generation: i64| {
        keys.iter()
            .filter(|key| key.generation > generation && key.active_from <= now)
            .map(|key| key.active_from)
            .min()
    };
    let expired: Vec<String> = keys
        .iter()
        .filter(|key| signing_since(key.generation).is_some_and(|since| since + schedule.token_window < now))
        .map(|key| key.kid.clone())
        .collect();
    if expired.is_empty() {
        return Ok(false);
    }
    use sea_orm::{ColumnTrait, QueryFilter};
    signing_key::Entity::delete_many()
        .filter(signing_key::Column::Kid.is_in(expired))
        .exec(connection)
        .await?;
    Ok(true)
}
