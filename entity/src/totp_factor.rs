use sea_orm::entity::prelude::*;

/// A user's authenticator app (RFC 6238). Pending until the user confirms one code (`confirmed_at`).
#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "totp_factors")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    /// The shared secret, sealed with XChaCha20-Poly1305 under a key derived from `OTP_SECRET`, the user id as
    /// associated data.
    pub secret: String,
    pub confirmed_at: Option<DateTimeUtc>,
    /// The newest 30-second step whose code was accepted: a code of that step or an earlier one is refused.
    pub last_used_step: Option<i64>,
    pub created_at: DateTimeUtc,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("TotpFactor")
            .field("user_id", &self.user_id)
            .field("confirmed_at", &self.confirmed_at)
            .finish_non_exhaustive()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
