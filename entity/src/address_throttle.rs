use sea_orm::entity::prelude::*;

/// Consecutive failures and back-off for one address and one kind of check (`login:<email>` or
/// `otp:<purpose>:<email>`), whether or not an account exists, and the last mail sent for it.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "address_throttles")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    pub failures: i32,
    /// How many locks so far in this run of failures: the next one lasts 2^level minutes, at most an hour.
    pub lock_level: i32,
    pub locked_until_ms: Option<i64>,
    pub last_mail_ms: Option<i64>,
    pub last_failure_ms: Option<i64>,
    /// For `otp:` keys: tries at the code of the last mail slot when the address holds no live code of
    /// that purpose (no account, or not eligible), answered as tries at a real code would be.
    pub code_attempts: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
