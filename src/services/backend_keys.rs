//! Keys of apps' backends: what `GET /api/revocations/stream` and `POST /api/auth/introspect` require. A key is
//! `authd_bk_` and 43 base64url characters (256 random bits): it cannot be mistaken for a user's token, and a
//! user's token is never one. Only its SHA-256 is stored.
//!
//! Each node keeps the hashes of the live keys in memory (`BackendKeyring`), reloaded every 5 s, so checking a
//! key reads no database; a key created or revoked on any node counts there within 5 s.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::Duration,
};

use chrono::{DateTime, Utc};
use entity::backend_key;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, sea_query::Expr,
};
use uuid::Uuid;

use crate::tokens::{hash_token, new_opaque_token};

const PREFIX: &str = "authd_bk_";
/// How often every node reloads the live keys.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(5);

/// Creates a key named `name`; answers its row and the key itself, which is shown this once.
pub async fn create(
    connection: &impl ConnectionTrait,
    name: &str,
    now: DateTime<Utc>,
) -> Result<(backend_key::Model, String), DbErr> {
    let key = format!("{PREFIX}{}", new_opaque_token());
    let model = backend_key::Model {
        id: Uuid::now_v7(),
        name: name.to_owned(),
        key_hash: hash_token(&key),
        created_at: now,
        revoked_at: None,
    };
    backend_key::Entity::insert(backend_key::ActiveModel::from(model.clone()))
        .exec_without_returning(connection)
        .await?;
    Ok((model, key))
}

/// Every key, oldest first.
pub async fn list(connection: &impl ConnectionTrait) -> Result<Vec<backend_key::Model>, DbErr> {
    backend_key::Entity::find()
        .order_by_asc(backend_key::Column::CreatedAt)
        .all(connection)
        .await
}

/// Revokes a key; answers whether a live key had that id.
pub async fn revoke(connection: &impl ConnectionTrait, id: Uuid, now: DateTime<Utc>) -> Result<bool, DbErr> {
    let result = backend_key::Entity::update_many()
        .col_expr(backend_key::Column::RevokedAt, Expr::value(Some(now)))
        .filter(backend_key::Column::Id.eq(id))
        .filter(backend_key::Column::RevokedAt.is_null())
        .exec(connection)
        .await?;
    Ok(result.rows_affected == 1)
}

/// The live keys of this node, by hash.
#[derive(Default)]
pub struct BackendKeyring {
    live: RwLock<HashMap<String, Uuid>>,
}

impl BackendKeyring {
    /// The id of the live key `presented`, if it is one.
    pub fn check(&self, presented: &str) -> Option<Uuid> {
        if !presented.starts_with(PREFIX) {
            return None;
        }
        self.live.read().ok()?.get(&hash_token(presented)).copied()
    }

    /// Whether the key with this id is live.
    pub fn is_live(&self, id: Uuid) -> bool {
        self.live
            .read()
            .is_ok_and(|live| live.values().any(|live_id| *live_id == id))
    }

    pub async fn reload(&self, connection: &impl ConnectionTrait) -> Result<(), DbErr> {
        let live = backend_key::Entity::find()
            .filter(backend_key::Column::RevokedAt.is_null())
            .all(connection)
            .await?
            .into_iter()
            .map(|key| (key.key_hash, key.id))
            .collect();
        if let Ok(mut current) = self.live.write() {
            *current = live;
        }
        Ok(())
    }

    /// Reloads every `RELOAD_INTERVAL` for as long as the process lives.
    pub fn spawn_reloader(self: &Arc<Self>, database: DatabaseConnection) {
        let keyring = Arc::clone(self);
        tokio::spawn(async move {
            // Start-up loaded them a moment ago: the first round is one interval away.
            let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + RELOAD_INTERVAL, RELOAD_INTERVAL);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                if let Err(error) = keyring.reload(&database).await {
                    tracing::warn!(%error, "cannot reload the backend keys");
                }
            }
        });
    }
}
