use sea_orm::entity::prelude::*;

/// A registration of a not-yet-verified address: the password and name its client chose, applied only when
/// a verification code is presented together with the registration's handle, which only that client holds.
/// Only a SHA-256 of the handle is stored.
#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "registrations")]
pub struct Model {
    /// Hex SHA-256 of the handle.
    #[sea_orm(primary_key, auto_increment = false)]
    pub handle_hash: String,
    #[sea_orm(indexed)]
    pub user_id: Uuid,
    pub password_hash: String,
    pub name: Option<String>,
    /// Where the registration came from, named in the verification mails.
    pub ip: String,
    pub device: String,
    pub created_at: DateTimeUtc,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Registration")
            .field("user_id", &self.user_id)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
