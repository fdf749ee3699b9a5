use authd::{config::Settings, descriptors, startup::Application, store, telemetry};
use clap::{Parser, Subcommand};

/// authd: sign-in, rotating refresh tokens, per-device sessions and instant revocation.
#[derive(Parser)]
#[command(name = "authd", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service (the default).
    Serve,
    /// Apply the database migrations and exit.
    Migrate,
}

fn main() {
    let cli = Cli::parse();
    telemetry::init();
    let settings = match Settings::from_environment() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("authd: {error}");
            std::process::exit(2);
        }
    };
    let outcome = actix_web::rt::System::new().block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => {
                match descriptors::raise_limit() {
                    Ok(limit) => tracing::info!(limit, "open descriptor limit"),
                    Err(error) => tracing::warn!(%error, "cannot raise the open descriptor limit"),
                }
                let application = Application::build(settings).await.map_err(|error| error.to_string())?;
                application.run_until_stopped().await.map_err(|error| error.to_string())
            }
            Command::Migrate => {
                let connection = store::connect(&settings.database_url)
                    .await
                    .map_err(|error| error.to_string())?;
                store::migrate(&connection).await.map_err(|error| error.to_string())?;
                tracing::info!("migrations applied");
                Ok(())
            }
        }
    });
    if let Err(error) = outcome {
        eprintln!("authd: {error}");
        std::process::exit(1);
    }
}
