use sea_orm::entity::prelude::*;

/// A passkey ceremony between its options and its answer, so that any node can finish it. Used once.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webauthn_ceremonies")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The user registering a passkey; `None` for a passwordless sign-in, whose user the passkey names.
    pub user_id: Option<Uuid>,
    /// `registration` or `sign_in`.
    pub purpose: String,
    /// The ceremony's state as webauthn-rs keeps it (the challenge sent), JSON.
    pub state: String,
    pub expires_at: DateTimeUtc,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
