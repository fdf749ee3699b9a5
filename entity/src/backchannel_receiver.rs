use sea_orm::entity::prelude::*;

/// A receiver of OpenID Connect back-channel logout tokens, and how far through the revocation log its
/// deliveries are. No secret.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "backchannel_receivers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub url: String,
    /// The backend key that registered it through the API; `None` for the URLs of `BACKCHANNEL_LOGOUT_URLS`.
    pub backend_key_id: Option<Uuid>,
    /// The id of the last revocation log row delivered (or skipped as too old to matter).
    pub position: i64,
    /// Failed deliveries in a row of the row after `position`.
    pub attempts: i32,
    /// Unix milliseconds before which no delivery is tried (back-off after a failure).
    pub next_attempt_ms: i64,
    /// Unix milliseconds until which one node holds the receiver's deliveries.
    pub claimed_until_ms: Option<i64>,
    pub last_error: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
