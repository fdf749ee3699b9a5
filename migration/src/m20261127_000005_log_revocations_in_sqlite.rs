use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// On SQLite the revocation log is written by a trigger, so ending sessions is one statement: the update
/// of `sessions` and the log rows commit together without a transaction, and SQLite's one write lock is
/// held for one round trip to the connection's thread instead of four. PostgreSQL writes the log in the
/// revoking transaction, next to the notification to the other nodes.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Sqlite {
            return Ok(());
        }
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE TRIGGER IF NOT EXISTS session_revocation_log
                 AFTER UPDATE OF revoked_at ON sessions
                 WHEN OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL
                 BEGIN
                     INSERT INTO session_revocations (session_id, user_id, reason, revoked_at)
                     VALUES (NEW.id, NEW.user_id, NEW.revoked_reason, NEW.revoked_at);
                 END",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Sqlite {
            return Ok(());
        }
        manager
            .get_connection()
            .execute_unprepared("DROP TRIGGER IF EXISTS session_revocation_log")
            .await?;
        Ok(())
    }
}
