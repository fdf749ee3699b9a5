use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const BY_SESSION: &str = "idx_refresh_tokens_session_id";
const BY_SESSION_AND_TIME: &str = "idx_refresh_tokens_session_created";

/// A rotation asks whether its session holds a token newer than the one presented; an index on the session
/// and the creation time answers that with one seek however long the chain is. It also serves every lookup
/// by session alone, so it replaces the index on `session_id`.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create(manager, BY_SESSION_AND_TIME, true).await?;
        drop(manager, BY_SESSION).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create(manager, BY_SESSION, false).await?;
        drop(manager, BY_SESSION_AND_TIME).await
    }
}

async fn create(manager: &SchemaManager<'_>, name: &str, with_time: bool) -> Result<(), DbErr> {
    let mut index = Index::create();
    index
        .if_not_exists()
        .name(name)
        .table(RefreshTokens::Table)
        .col(RefreshTokens::SessionId);
    if with_time {
        index.col(RefreshTokens::CreatedAt);
    }
    manager.create_index(index.to_owned()).await
}

async fn drop(manager: &SchemaManager<'_>, name: &str) -> Result<(), DbErr> {
    manager
        .drop_index(
            Index::drop()
                .if_exists()
                .name(name)
                .table(RefreshTokens::Table)
                .to_owned(),
        )
        .await
}

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    SessionId,
    CreatedAt,
}
