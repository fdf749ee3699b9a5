use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// A password chosen at registration waits in a row of its own, found by the hash of the opaque handle that
/// only the registering client holds. A verification code no longer carries a password: the code proves the
/// address, the handle proves which registration's password to set. The codes' `password_hash` and `name`
/// columns are no longer read or written, but stay for now: nodes of the earlier version, still running during
/// a rolling upgrade, write them. A later migration drops them.
///
/// Also an index for counting an address's recent mail of one kind (the cap on sign-in challenge mails).
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
        manager
            .create_index(
                Index::create()
                    .name("idx_mail_outbox_recipient_kind_created_at")
                    .table(MailOutbox::Table)
                    .col(MailOutbox::Recipient)
                    .col(MailOutbox::Kind)
                    .col(MailOutbox::CreatedAt)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_mail_outbox_recipient_kind_created_at")
                    .table(MailOutbox::Table)
                    .to_owned(),
            )
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

#[derive(DeriveIden)]
enum MailOutbox {
    Table,
    Recipient,
    Kind,
    CreatedAt,
}
