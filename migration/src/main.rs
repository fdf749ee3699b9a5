use sea_orm_migration::prelude::*;

/// The development default of the service, so `cargo run -p migration -- up` works with nothing set.
const DEFAULT_DATABASE_URL: &str = "sqlite://data/authd.db?mode=rwc";

fn main() {
    let _ = dotenvy::dotenv();
    if std::env::var_os("DATABASE_URL").is_none() {
        // SAFETY: set before the runtime starts any thread.
        unsafe { std::env::set_var("DATABASE_URL", DEFAULT_DATABASE_URL) };
        if let Err(error) = std::fs::create_dir_all("data") {
            eprintln!("cannot create the data directory: {error}");
            std::process::exit(1);
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start the runtime: {error}");
            std::process::exit(1);
        }
    };
    runtime.block_on(cli::run_cli(migration::Migrator));
}
