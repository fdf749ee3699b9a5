use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .if_not_exists()
                    .col(pk_uuid(Users::Id))
                    .col(string_uniq(Users::Email))
                    .col(text(Users::PasswordHash))
                    .col(string_null(Users::Name))
                    .col(timestamp_with_time_zone_null(Users::EmailVerifiedAt))
                    .col(boolean(Users::MfaEmailOtp).default(false))
                    .col(timestamp_with_time_zone(Users::CreatedAt))
                    .col(timestamp_with_time_zone(Users::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Sessions::Table)
                    .if_not_exists()
                    .col(pk_uuid(Sessions::Id))
                    .col(uuid(Sessions::UserId))
                    .col(string(Sessions::Ip))
                    .col(text(Sessions::UserAgent))
                    .col(string(Sessions::Device))
                    .col(timestamp_with_time_zone(Sessions::CreatedAt))
                    .col(timestamp_with_time_zone(Sessions::LastUsedAt))
                    .col(timestamp_with_time_zone(Sessions::ExpiresAt))
                    .col(timestamp_with_time_zone_null(Sessions::RevokedAt))
                    .col(string_null(Sessions::RevokedReason))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Sessions::Table, Sessions::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        create_index(manager, "idx_sessions_user_id", Sessions::Table, Sessions::UserId).await?;

        manager
            .create_table(
                Table::create()
                    .table(RefreshTokens::Table)
                    .if_not_exists()
                    .col(pk_uuid(RefreshTokens::Id))
                    .col(uuid(RefreshTokens::SessionId))
                    .col(string_uniq(RefreshTokens::TokenHash))
                    .col(timestamp_with_time_zone(RefreshTokens::CreatedAt))
                    .col(timestamp_with_time_zone_null(RefreshTokens::RotatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(RefreshTokens::Table, RefreshTokens::SessionId)
                            .to(Sessions::Table, Sessions::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "idx_refresh_tokens_session_id",
            RefreshTokens::Table,
            RefreshTokens::SessionId,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Otps::Table)
                    .if_not_exists()
                    .col(pk_uuid(Otps::Id))
                    .col(uuid(Otps::UserId))
                    .col(string(Otps::Purpose))
                    .col(uuid_null(Otps::ChallengeId))
                    .col(string(Otps::CodeHash))
                    .col(integer(Otps::Attempts).default(0))
                    .col(timestamp_with_time_zone(Otps::ExpiresAt))
                    .col(timestamp_with_time_zone_null(Otps::ConsumedAt))
                    .col(timestamp_with_time_zone(Otps::CreatedAt))
                    .col(text_null(Otps::PasswordHash))
                    .col(string_null(Otps::Name))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Otps::Table, Otps::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        create_index(manager, "idx_otps_user_id", Otps::Table, Otps::UserId).await?;

        manager
            .create_table(
                Table::create()
                    .table(SessionRevocations::Table)
                    .if_not_exists()
                    .col(big_pk_auto(SessionRevocations::Id))
                    .col(uuid(SessionRevocations::SessionId))
                    .col(uuid(SessionRevocations::UserId))
                    .col(string(SessionRevocations::Reason))
                    .col(timestamp_with_time_zone(SessionRevocations::RevokedAt))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "idx_session_revocations_revoked_at",
            SessionRevocations::Table,
            SessionRevocations::RevokedAt,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(WsTickets::Table)
                    .if_not_exists()
                    .col(string(WsTickets::TicketHash).primary_key())
                    .col(uuid(WsTickets::SessionId))
                    .col(uuid(WsTickets::UserId))
                    .col(timestamp_with_time_zone(WsTickets::ExpiresAt))
                    .col(timestamp_with_time_zone_null(WsTickets::UsedAt))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WsTickets::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(SessionRevocations::Table).to_owned())
            .await?;
        manager.drop_table(Table::drop().table(Otps::Table).to_owned()).await?;
        manager
            .drop_table(Table::drop().table(RefreshTokens::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Sessions::Table).to_owned())
            .await?;
        manager.drop_table(Table::drop().table(Users::Table).to_owned()).await
    }
}

async fn create_index<T, C>(manager: &SchemaManager<'_>, name: &str, table: T, column: C) -> Result<(), DbErr>
where
    T: Iden + 'static,
    C: Iden + 'static,
{
    manager
        .create_index(
            Index::create()
                .if_not_exists()
                .name(name)
                .table(table)
                .col(column)
                .to_owned(),
        )
        .await
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Email,
    PasswordHash,
    Name,
    EmailVerifiedAt,
    MfaEmailOtp,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
    UserId,
    Ip,
    UserAgent,
    Device,
    CreatedAt,
    LastUsedAt,
    ExpiresAt,
    RevokedAt,
    RevokedReason,
}

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    Id,
    SessionId,
    TokenHash,
    CreatedAt,
    RotatedAt,
}

#[derive(DeriveIden)]
enum Otps {
    Table,
    Id,
    UserId,
    Purpose,
    ChallengeId,
    CodeHash,
    Attempts,
    ExpiresAt,
    ConsumedAt,
    CreatedAt,
    PasswordHash,
    Name,
}

#[derive(DeriveIden)]
enum SessionRevocations {
    Table,
    Id,
    SessionId,
    UserId,
    Reason,
    RevokedAt,
}

#[derive(DeriveIden)]
enum WsTickets {
    Table,
    TicketHash,
    SessionId,
    UserId,
    ExpiresAt,
    UsedAt,
}
