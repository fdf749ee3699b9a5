use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Which node has a WebSocket open for which session, refreshed by each node's heartbeat, so `online`
/// is right across nodes and a crashed node's rows go stale on their own.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SessionPresence::Table)
                    .if_not_exists()
                    .col(uuid(SessionPresence::NodeId))
                    .col(uuid(SessionPresence::SessionId))
                    .col(uuid(SessionPresence::UserId))
                    .col(timestamp_with_time_zone(SessionPresence::SeenAt))
                    .primary_key(
                        Index::create()
                            .col(SessionPresence::NodeId)
                            .col(SessionPresence::SessionId),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_session_presence_user_id")
                    .table(SessionPresence::Table)
                    .col(SessionPresence::UserId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SessionPresence::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum SessionPresence {
    Table,
    NodeId,
    SessionId,
    UserId,
    SeenAt,
}
