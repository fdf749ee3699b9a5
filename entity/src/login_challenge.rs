use sea_orm::entity::prelude::*;

/// A sign-in that proved one factor and waits for a second. No secret: its id is the handle the client holds,
/// worthless without the second factor.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "login_challenges")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(indexed)]
    pub user_id: Uuid,
    /// The methods that may finish it, space-separated (`email_otp totp recovery_code`).
    pub methods: String,
    /// What the first step proved, space-separated `amr` values (`pwd` or `otp`).
    pub auth_methods: String,
    pub expires_at: DateTimeUtc,
    pub consumed_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    /// When `webauthn` is among the methods: the passkey ceremony's state (the challenge it sent, the
    /// credentials it allows), which the answer is checked against. Not secret: the challenge is public.
    pub webauthn_state: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
