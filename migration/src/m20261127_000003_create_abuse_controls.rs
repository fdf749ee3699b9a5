use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Failure counters and back-off per address (for logins and for each code purpose), the mail cooldown per
/// address and purpose, and the durable mail outbox. Times compared inside SQL are Unix milliseconds, which
/// order the same on SQLite and PostgreSQL.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AddressThrottles::Table)
                    .if_not_exists()
                    .col(string(AddressThrottles::Key).primary_key())
                    .col(integer(AddressThrottles::Failures).default(0))
                    .col(integer(AddressThrottles::LockLevel).default(0))
                    .col(big_integer_null(AddressThrottles::LockedUntilMs))
                    .col(big_integer_null(AddressThrottles::LastMailMs))
                    .col(big_integer_null(AddressThrottles::LastFailureMs))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(MailOutbox::Table)
                    .if_not_exists()
                    .col(big_pk_auto(MailOutbox::Id))
                    .col(string(MailOutbox::Recipient))
                    .col(string(MailOutbox::Kind))
                    .col(text_null(MailOutbox::Payload))
                    .col(timestamp_with_time_zone(MailOutbox::CreatedAt))
                    .col(integer(MailOutbox::Attempts).default(0))
                    .col(big_integer(MailOutbox::NextAttemptMs))
                    .col(big_integer_null(MailOutbox::ClaimedUntilMs))
                    .col(timestamp_with_time_zone_null(MailOutbox::SentAt))
                    .col(string_null(MailOutbox::LastError))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_mail_outbox_due")
                    .table(MailOutbox::Table)
                    .col(MailOutbox::SentAt)
                    .col(MailOutbox::NextAttemptMs)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(MailOutbox::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(AddressThrottles::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum AddressThrottles {
    Table,
    Key,
    Failures,
    LockLevel,
    LockedUntilMs,
    LastMailMs,
    LastFailureMs,
}

#[derive(DeriveIden)]
enum MailOutbox {
    Table,
    Id,
    Recipient,
    Kind,
    Payload,
    CreatedAt,
    Attempts,
    NextAttemptMs,
    ClaimedUntilMs,
    SentAt,
    LastError,
}
