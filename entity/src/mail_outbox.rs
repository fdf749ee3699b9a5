use sea_orm::entity::prelude::*;

/// A mail waiting to be sent, written in the transaction of the change that caused it. The payload is
/// encrypted (it may carry a code) and erased once sent.
#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "mail_outbox")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub recipient: String,
    pub kind: String,
    pub payload: Option<String>,
    pub created_at: DateTimeUtc,
    pub attempts: i32,
    pub next_attempt_ms: i64,
    /// A sender holds the row until then; another may take it over after.
    pub claimed_until_ms: Option<i64>,
    pub sent_at: Option<DateTimeUtc>,
    pub last_error: Option<String>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("MailOutbox")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
