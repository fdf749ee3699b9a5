use sea_orm::entity::prelude::*;

/// One link of a session's refresh token chain. Only the SHA-256 of the token is stored.
#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "refresh_tokens")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(indexed)]
    pub session_id: Uuid,
    /// Hex SHA-256 of the token.
    #[sea_orm(unique)]
    pub token_hash: String,
    /// For a successor, the moment its parent was rotated.
    pub created_at: DateTimeUtc,
    /// Set by the rotation of earlier versions. A token is now rotated when a row names it as its parent.
    pub rotated_at: Option<DateTimeUtc>,
    /// The token this one replaced (unique: a token has one successor at most); none for a chain's first.
    #[sea_orm(unique)]
    pub parent_id: Option<Uuid>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RefreshToken")
            .field("id", &self.id)
            .field("session_id", &self.session_id)
            .field("rotated_at", &self.rotated_at)
            .field("parent_id", &self.parent_id)
            .finish_non_exhaustive()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::session::Entity",
        from = "Column::SessionId",
        to = "super::session::Column::Id",
        on_delete = "Cascade"
    )]
    Session,
}

impl Related<super::session::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Session.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
