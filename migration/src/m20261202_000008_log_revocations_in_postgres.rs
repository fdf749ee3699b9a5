use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The revocation log is written by a trigger on PostgreSQL too, as on SQLite since
/// `log_revocations_in_sqlite`: setting `revoked_at` writes the session's log row in the same statement, so no
/// caller can end a session without logging it, and the code that ends sessions is the same on both databases.
/// Nodes of the earlier version, still running during a rolling upgrade, also insert the row themselves; the
/// duplicate row is harmless (a revocation applied twice is applied once).
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let connection = manager.get_connection();
        connection
            .execute_unprepared(
                "CREATE OR REPLACE FUNCTION log_session_revocation() RETURNS trigger AS $$
                 BEGIN
                     INSERT INTO session_revocations (session_id, user_id, reason, revoked_at)
                     VALUES (NEW.id, NEW.user_id, NEW.revoked_reason, NEW.revoked_at);
                     RETURN NULL;
                 END
                 $$ LANGUAGE plpgsql",
            )
            .await?;
        connection
            .execute_unprepared(
                "CREATE TRIGGER session_revocation_log
                 AFTER UPDATE OF revoked_at ON sessions
                 FOR EACH ROW
                 WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL)
                 EXECUTE FUNCTION log_session_revocation()",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let connection = manager.get_connection();
        connection
            .execute_unprepared("DROP TRIGGER IF EXISTS session_revocation_log ON sessions")
            .await?;
        connection
            .execute_unprepared("DROP FUNCTION IF EXISTS log_session_revocation()")
            .await?;
        Ok(())
    }
}
