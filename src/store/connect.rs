//! Connecting to SQLite or PostgreSQL and applying the migrations.
//!
//! SQLite: WAL, synchronous NORMAL, 10 s busy timeout, foreign keys, 8 connections, no automatic checkpoints; a
//! task checkpoints the write-ahead log every half second, off the request path. PostgreSQL: 16 connections.

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr};

/// Opens the pool. SQLite gets WAL (readers never wait for the writer), a busy timeout (writers queue
/// instead of failing), enforced foreign keys and no automatic checkpoints (see `spawn_checkpointer`); its
/// parent folder is created.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url.to_owned());
    // A pooled connection used a moment ago is alive; pinging it before every statement cost a round trip
    // (a hand-off to the connection's thread on SQLite) per statement. Only one idle for a while is checked.
    options
        .sqlx_logging(false)
        .acquire_timeout(Duration::from_secs(10))
        .test_before_acquire_if_idle_for(Duration::from_secs(10));
    if url.starts_with("sqlite:") {
        if let Some(folder) = sqlite_folder(url) {
            std::fs::create_dir_all(&folder)
                .map_err(|error| DbErr::Custom(format!("cannot create {}: {error}", folder.display())))?;
        }
        options
            .max_connections(8)
            .min_connections(1)
            .map_sqlx_sqlite_opts(|sqlite| {
                sqlite
                    .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true)
                    .pragma("wal_autocheckpoint", "0")
            });
    } else {
        options.max_connections(16).min_connections(1);
    }
    Database::connect(options).await
}

/// SQLite's automatic checkpoint runs inside the commit that fills the write-ahead log past 1,000 pages, so
/// that one request, and every write queued behind its write lock, waited for the copy into the database
/// file and its fsync: stalls of up to 800 ms under a burst of sign-ins. Connections turn it off, and this
/// task checkpoints every half second instead, off the request path. A passive checkpoint neither waits for
/// nor blocks readers and writers. PostgreSQL needs none of this.
pub fn spawn_checkpointer(database: DatabaseConnection) {
    if database.get_database_backend() != DbBackend::Sqlite {
        return;
    }
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(CHECKPOINT_INTERVAL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            if let Err(error) = database.execute_unprepared("PRAGMA wal_checkpoint(PASSIVE)").await {
                tracing::warn!(%error, "cannot checkpoint the SQLite write-ahead log");
            }
        }
    });
}

const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(500);

pub async fn migrate(database: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(database, None).await
}

/// The folder of a `sqlite://path?query` URL, when it names a file.
fn sqlite_folder(url: &str) -> Option<std::path::PathBuf> {
    let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = path.split('?').next()?;
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    std::path::Path::new(path)
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .map(ToOwned::to_owned)
}
