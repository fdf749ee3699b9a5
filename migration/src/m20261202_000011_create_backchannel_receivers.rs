use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Receivers of back-channel logout tokens and their place in the revocation log (see the entity).
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(BackchannelReceivers::Table)
                    .if_not_exists()
                    .col(string(BackchannelReceivers::Url).primary_key())
                    .col(uuid_null(BackchannelReceivers::BackendKeyId))
                    .col(big_integer(BackchannelReceivers::Position))
                    .col(integer(BackchannelReceivers::Attempts))
                    .col(big_integer(BackchannelReceivers::NextAttemptMs))
                    .col(big_integer_null(BackchannelReceivers::ClaimedUntilMs))
                    .col(text_null(BackchannelReceivers::LastError))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(BackchannelReceivers::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum BackchannelReceivers {
    Table,
    Url,
    BackendKeyId,
    Position,
    Attempts,
    NextAttemptMs,
    ClaimedUntilMs,
    LastError,
}
