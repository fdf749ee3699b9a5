use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Keys of apps' backends, for the revocation feed and introspection (see the entity).
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(BackendKeys::Table)
                    .if_not_exists()
                    .col(uuid(BackendKeys::Id).primary_key())
                    .col(string(BackendKeys::Name))
                    .col(string(BackendKeys::KeyHash).unique_key())
                    .col(timestamp_with_time_zone(BackendKeys::CreatedAt))
                    .col(timestamp_with_time_zone_null(BackendKeys::RevokedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(BackendKeys::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum BackendKeys {
    Table,
    Id,
    Name,
    KeyHash,
    CreatedAt,
    RevokedAt,
}
