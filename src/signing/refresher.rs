//! The task on every node that keeps its keys current: rotates when due and reloads the ring every
//! `RELOAD_INTERVAL`, and at once (at most once a second) when a token names a key the node does not hold.

use std::{sync::Arc, time::Duration};

use sea_orm::DatabaseConnection;

use super::{
    RELOAD_INTERVAL,
    key_ring::KeyRing,
    rotation::{self, RotationError, Schedule},
};
use crate::{sealing::Sealer, tokens::AccessTokens};

/// What the task needs; `refresh` runs one round.
#[derive(Clone)]
pub struct KeyRefresher {
    pub database: DatabaseConnection,
    pub sealer: Sealer,
    pub schedule: Schedule,
}

impl KeyRefresher {
    /// Rotates if due, then answers the keys of now.
    pub async fn refresh(&self) -> Result<KeyRing, RotationError> {
        let now = crate::clock::now();
        rotation::maintain(&self.database, &self.sealer, &self.schedule, now).await?;
        let rows = rotation::all(&self.database).await?;
        Ok(KeyRing::from_rows(&rows, &self.sealer, now)?)
    }

    /// Runs for as long as the process lives, putting each new ring into `tokens`.
    pub fn spawn(self, tokens: Arc<AccessTokens>) {
        tokio::spawn(async move {
            // Start-up loaded them a moment ago: the first round is one interval away.
            let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + RELOAD_INTERVAL, RELOAD_INTERVAL);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = interval.tick() => {}
                    () = tokens.unknown_key_seen() => {
                        // A burst of tokens under an unknown key reloads once a second at most.
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
                match self.refresh().await {
                    Ok(ring) => tokens.replace_key_ring(ring),
                    Err(error) => tracing::warn!(%error, "cannot refresh the signing keys"),
                }
            }
        });
    }
}
