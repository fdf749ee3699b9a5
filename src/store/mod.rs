//! The seam between the services and the two databases authd runs on. Everything that differs between SQLite
//! and PostgreSQL is decided here (and, for the notifications between nodes, in `realtime::bus`): services ask
//! the `Store` for a connection or a write transaction and read as the rule they implement.
//!
//! What differs, and where it is handled:
//!
//! - **One writer.** SQLite lets one connection write at a time; a second writer sleeps and retries in SQLite's
//!   busy handler, and a transaction that read before writing fails outright when another connection wrote in
//!   between. So the hot writes take turns in process first: `Store::begin_write` and `Store::write_lock`
//!   wait for the process's write lock on SQLite and only then take a pooled connection. The order is the rule
//!   ("take the lock before any pooled connection, never while holding one"; otherwise every pooled connection
//!   can end up held by a request waiting for the lock): the API gives no other way to a locked write. On
//!   PostgreSQL, whose writers do not block each other, both take no lock.
//! - **One node.** A SQLite file serves one process; a PostgreSQL database may be shared by several nodes
//!   (`shared_by_nodes`), which then tell each other of changes (`realtime::bus`) and share presence rows.
//! - **The revocation log** is written by a trigger on both (`session_revocation_log`), when `revoked_at` is set.
//! - **Connecting** (`connect`): pool sizes and SQLite's pragmas, and SQLite's checkpoints off the request path.

mod connect;

use std::ops::Deref;

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, ExecResult, QueryResult, Statement,
    TransactionTrait,
};
use tokio::sync::{Mutex, MutexGuard};

pub use connect::{connect, migrate, spawn_checkpointer};

/// The database pool, with what its kind of database needs of writers.
pub struct Store {
    connection: DatabaseConnection,
    /// SQLite only: held by the one request writing at a time.
    write_lock: Option<Mutex<()>>,
}

impl Store {
    pub fn new(connection: DatabaseConnection) -> Self {
        let write_lock = (connection.get_database_backend() == DbBackend::Sqlite).then(|| Mutex::new(()));
        Self { connection, write_lock }
    }

    /// The pool, for reads and for single statements that need no turn.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.connection
    }

    /// Whether other nodes may serve the same database (PostgreSQL); a SQLite file has one process.
    pub fn shared_by_nodes(&self) -> bool {
        self.write_lock.is_none()
    }

    /// Waits for this process's turn to write (SQLite), then begins a transaction; the turn ends with it.
    pub async fn begin_write(&self) -> Result<WriteTransaction<'_>, DbErr> {
        let lock = self.lock().await;
        let transaction = self.connection.begin().await?;
        Ok(WriteTransaction {
            transaction,
            _lock: lock,
        })
    }

    /// Waits for this process's turn to write (SQLite), for statements that are atomic on their own; the turn
    /// ends when the answer is dropped.
    pub async fn write_lock(&self) -> WriteLock<'_> {
        WriteLock {
            connection: &self.connection,
            _lock: self.lock().await,
        }
    }

    async fn lock(&self) -> Option<MutexGuard<'_, ()>> {
        match &self.write_lock {
            Some(lock) => Some(lock.lock().await),
            None => None,
        }
    }
}

/// A transaction holding the process's write lock on SQLite. Dropped without `commit`, it rolls back.
pub struct WriteTransaction<'a> {
    // Declared first, so it is dropped (rolled back, its connection back in the pool) before the turn ends.
    transaction: DatabaseTransaction,
    _lock: Option<MutexGuard<'a, ()>>,
}

impl WriteTransaction<'_> {
    pub async fn commit(self) -> Result<(), DbErr> {
        self.transaction.commit().await
    }
}

impl Deref for WriteTransaction<'_> {
    type Target = DatabaseTransaction;

    fn deref(&self) -> &DatabaseTransaction {
        &self.transaction
    }
}

/// Statements run in the transaction, as on a `DatabaseTransaction`.
#[async_trait::async_trait]
impl ConnectionTrait for WriteTransaction<'_> {
    fn get_database_backend(&self) -> DbBackend {
        self.transaction.get_database_backend()
    }

    async fn execute_raw(&self, statement: Statement) -> Result<ExecResult, DbErr> {
        self.transaction.execute_raw(statement).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.transaction.execute_unprepared(sql).await
    }

    async fn query_one_raw(&self, statement: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.transaction.query_one_raw(statement).await
    }

    async fn query_all_raw(&self, statement: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.transaction.query_all_raw(statement).await
    }

    fn support_returning(&self) -> bool {
        self.transaction.support_returning()
    }
}

/// The process's write lock on SQLite, with the pool to write through while holding it.
pub struct WriteLock<'a> {
    connection: &'a DatabaseConnection,
    _lock: Option<MutexGuard<'a, ()>>,
}

impl WriteLock<'_> {
    pub fn connection(&self) -> &DatabaseConnection {
        self.connection
    }
}
