use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Tries at the code an address would hold if it had one: an address with no account, or none of the
/// purpose asked, answers code checks as an address with a code does (`otp_attempts_exceeded` after the
/// last try), so the answers tell nothing about which addresses have accounts.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(AddressThrottles::Table)
                    .add_column(integer(AddressThrottles::CodeAttempts).default(0))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(AddressThrottles::Table)
                    .drop_column(AddressThrottles::CodeAttempts)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum AddressThrottles {
    Table,
    CodeAttempts,
}
