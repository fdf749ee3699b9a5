use sea_orm::entity::prelude::*;

/// The log of ended sessions. Every node loads the recent part at start and catches up from it after
/// losing its event bus, so no access token of an ended session slips through a restart or a reconnect.
/// It outlives the session rows (an account deletion removes those).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "session_revocations")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub reason: String,
    #[sea_orm(indexed)]
    pub revoked_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
