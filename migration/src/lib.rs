//! One set of migrations for SQLite and PostgreSQL.

pub use sea_orm_migration::prelude::*;

mod m20261127_000001_create_accounts;
mod m20261127_000002_create_session_presence;
mod m20261127_000003_create_abuse_controls;
mod m20261127_000004_link_refresh_chain;
mod m20261127_000005_log_revocations_in_sqlite;
mod m20261127_000006_count_decoy_code_attempts;
mod m20261202_000007_bind_passwords_to_registrations;
mod m20261202_000008_log_revocations_in_postgres;
mod m20261202_000009_create_signing_keys;
mod m20261202_000010_create_backend_keys;
mod m20261202_000011_create_backchannel_receivers;
mod m20261202_000012_add_second_factors;
mod m20261202_000013_add_passkeys;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261127_000001_create_accounts::Migration),
            Box::new(m20261127_000002_create_session_presence::Migration),
            Box::new(m20261127_000003_create_abuse_controls::Migration),
            Box::new(m20261127_000004_link_refresh_chain::Migration),
            Box::new(m20261127_000005_log_revocations_in_sqlite::Migration),
            Box::new(m20261127_000006_count_decoy_code_attempts::Migration),
            Box::new(m20261202_000007_bind_passwords_to_registrations::Migration),
            Box::new(m20261202_000008_log_revocations_in_postgres::Migration),
            Box::new(m20261202_000009_create_signing_keys::Migration),
            Box::new(m20261202_000010_create_backend_keys::Migration),
            Box::new(m20261202_000011_create_backchannel_receivers::Migration),
            Box::new(m20261202_000012_add_second_factors::Migration),
            Box::new(m20261202_000013_add_passkeys::Migration),
        ]
    }
}
