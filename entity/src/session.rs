use sea_orm::entity::prelude::*;

/// One signed-in device. The access token's `sid` claim points here.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sessions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(indexed)]
    pub user_id: Uuid,
    pub ip: String,
    pub user_agent: String,
    pub device: String,
    pub created_at: DateTimeUtc,
    pub last_used_at: DateTimeUtc,
    /// Absolute end of the session (`SESSION_TTL` after sign-in).
    pub expires_at: DateTimeUtc,
    pub revoked_at: Option<DateTimeUtc>,
    pub revoked_reason: Option<String>,
    /// How the device signed in: the `amr` values of its tokens, space-separated (`pwd`, `otp`, `mfa`).
    pub auth_methods: String,
    /// Its sign-in, or its latest reauthentication; `None` for sessions of earlier versions (then
    /// `created_at`).
    pub authenticated_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
