use authd::{config::Settings, database, startup::Application, telemetry};
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
    map_large_allocations_apart();
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
                let application = Application::build(settings).await.map_err(|error| error.to_string())?;
                application.run_until_stopped().await.map_err(|error| error.to_string())
            }
            Command::Migrate => {
                let connection = database::connect(&settings.database_url)
                    .await
                    .map_err(|error| error.to_string())?;
                database::migrate(&connection)
                    .await
                    .map_err(|error| error.to_string())?;
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

/// Every connection holds an 8 KiB read and an 8 KiB write buffer (actix-http's fixed sizes) that stay mostly
/// empty on a WebSocket. On the heap, glibc's chunk headers at both ends of each buffer make its pages
/// resident; a buffer mapped on its own takes memory only for the pages written. A fixed threshold also
/// stops glibc from raising it after the first argon2 hash, which kept each 19 MiB block in its arena.
fn map_large_allocations_apart() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const MAPPED_FROM_BYTES: libc::c_int = 8 * 1024;
        // SAFETY: called first in main, before any thread exists; mallopt only sets an allocator parameter.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MAPPED_FROM_BYTES);
        }
    }
}
