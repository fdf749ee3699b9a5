use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// A password chosen at registration waits in a row of its own, found by the hash of the opaque handle that
/// only the registering client holds. A verification code no longer carries a password: the code proves the
/// address, the handle proves which registration's password to set. Codes bound to a password by earlier
/// versions lose that binding, so an address verified with one gets no password until a reset.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Registrations::Table)
                    .if_not_exists()
                    .col(string(Registrations::HandleHash).primary_key())
                    .col(uuid(Registrations::UserId))
                    .col(text(Registrations::PasswordHash))
                    .col(string_null(Registrations::Name))
                    .col(string(Registrations::Ip))
                    .col(string(Registrations::Device))
                    .col(timestamp_with_time_zone(Registrations::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_registrations_user_id")
                    .table(Registrations::Table)
                    .col(Registrations::UserId)
                    .to_owned(),
            )
            .await?;
        // Plain SQL: both SQLite (3.35 and later) and PostgreSQL drop a column this way.
        let connection = manager.get_connection();
        connection
            .execute_unprepared("ALTER TABLE otps DROP COLUMN password_hash")
            .await?;
        connection
            .execute_unprepared("ALTER TABLE otps DROP COLUMN name")
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let connection = manager.get_connection();
        connection
            .execute_unprepared("ALTER TABLE otps ADD COLUMN password_hash TEXT")
            .await?;
        connection
            .execute_unprepared("ALTER TABLE otps ADD COLUMN name VARCHAR")
            .await?;
        manager
            .drop_table(Table::drop().table(Registrations::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Registrations {
    Table,
    HandleHash,
    UserId,
    PasswordHash,
    Name,
    Ip,
    Device,
    CreatedAt,
}
