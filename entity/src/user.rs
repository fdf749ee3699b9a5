use sea_orm::entity::prelude::*;

#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Normalised form: trimmed, NFKC, lower-cased.
    #[sea_orm(unique)]
    pub email: String,
    /// PHC string of the argon2id hash.
    pub password_hash: String,
    pub name: Option<String>,
    pub email_verified_at: Option<DateTimeUtc>,
    pub mfa_email_otp: bool,
    /// An authenticator app is confirmed (its secret is in `totp_factors`).
    pub mfa_totp: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("User")
            .field("id", &self.id)
            .field("email_verified", &self.email_verified_at.is_some())
            .finish_non_exhaustive()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
