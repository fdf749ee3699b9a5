use sea_orm::entity::prelude::*;

/// A passkey (WebAuthn credential) of a user. Public keys only: nothing here signs anything.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "passkeys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(indexed)]
    pub user_id: Uuid,
    pub name: String,
    /// Base64url of the credential id the authenticator chose.
    #[sea_orm(unique)]
    pub credential_id: String,
    /// The credential as webauthn-rs keeps it (public key, algorithm, flags), JSON.
    pub credential: String,
    /// The authenticator's signature counter as last seen; 0 for authenticators that keep none.
    pub sign_count: i64,
    pub created_at: DateTimeUtc,
    pub last_used_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
