use authd::{
    config::Settings,
    descriptors,
    services::backend_keys as backend_key_store,
    signing::rotation,
    startup::{self, Application},
    store, telemetry,
};
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
    /// The keys that sign access tokens (with ACCESS_TOKEN_ALG EdDSA or ES256).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Keys of apps' backends, for the revocation feed and introspection.
    BackendKeys {
        #[command(subcommand)]
        command: BackendKeysCommand,
    },
}

#[derive(Subcommand)]
enum BackendKeysCommand {
    /// Create a key; the key alone is the last line of standard output, shown this once.
    Create { name: String },
    /// List the keys (never the keys themselves): id, name, created, state.
    List,
    /// Revoke a key by its id; every node refuses it within 5 s.
    Revoke { id: uuid::Uuid },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Rotate at once: a new key signs from now on every node (within seconds); the old keys stay published
    /// until their tokens expire. Prints the new key's id.
    Rotate,
    /// List the keys (never a private part): id, generation, algorithm, state, created, signing from.
    List,
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
                migrated_database(&settings).await?;
                tracing::info!("migrations applied");
                Ok(())
            }
            Command::Keys { command } => keys(&settings, command).await,
            Command::BackendKeys { command } => backend_keys(&settings, command).await,
        }
    });
    if let Err(error) = outcome {
        eprintln!("authd: {error}");
        std::process::exit(1);
    }
}

async fn keys(settings: &Settings, command: KeysCommand) -> Result<(), String> {
    let Some(algorithm) = startup::key_algorithm(settings) else {
        return Err("ACCESS_TOKEN_ALG=HS256 signs with JWT_ACCESS_SECRET: there are no keys".to_owned());
    };
    let connection = migrated_database(settings).await?;
    let now = authd::clock::now();
    match command {
        KeysCommand::Rotate => {
            let sealer = startup::key_sealer(settings).map_err(|error| error.to_string())?;
            match rotation::rotate_now(&connection, &sealer, algorithm, now)
                .await
                .map_err(|error| error.to_string())?
            {
                Some(key) => println!("{}", key.kid),
                None => return Err("another rotation took place at the same moment: run `authd keys list`".to_owned()),
            }
        }
        KeysCommand::List => {
            let keys = rotation::all(&connection).await.map_err(|error| error.to_string())?;
            let signing = keys
                .iter()
                .filter(|key| key.active_from <= now)
                .map(|key| key.generation)
                .max();
            println!("kid\tgeneration\talgorithm\tstate\tcreated_at\tactive_from");
            for key in &keys {
                let state = match signing {
                    Some(generation) if key.generation == generation => "signing",
                    _ if key.active_from > now => "next",
                    _ => "retired",
                };
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    key.kid,
                    key.generation,
                    key.algorithm,
                    state,
                    key.created_at.to_rfc3339(),
                    key.active_from.to_rfc3339()
                );
            }
        }
    }
    Ok(())
}

async fn backend_keys(settings: &Settings, command: BackendKeysCommand) -> Result<(), String> {
    let connection = migrated_database(settings).await?;
    let now = authd::clock::now();
    match command {
        BackendKeysCommand::Create { name } => {
            let (model, key) = backend_key_store::create(&connection, &name, now)
                .await
                .map_err(|error| error.to_string())?;
            println!(
                "backend key {} ({}) created; it is shown this once:",
                model.id, model.name
            );
            println!("{key}");
        }
        BackendKeysCommand::List => {
            println!("id\tname\tcreated_at\tstate");
            for key in backend_key_store::list(&connection)
                .await
                .map_err(|error| error.to_string())?
            {
                let state = key
                    .revoked_at
                    .map_or_else(|| "live".to_owned(), |at| format!("revoked {}", at.to_rfc3339()));
                println!("{}\t{}\t{}\t{state}", key.id, key.name, key.created_at.to_rfc3339());
            }
        }
        BackendKeysCommand::Revoke { id } => {
            if !backend_key_store::revoke(&connection, id, now)
                .await
                .map_err(|error| error.to_string())?
            {
                return Err(format!("no live backend key has the id {id}"));
            }
            println!("backend key {id} revoked");
        }
    }
    Ok(())
}

/// The database of `settings`, migrated.
async fn migrated_database(settings: &Settings) -> Result<sea_orm::DatabaseConnection, String> {
    let connection = store::connect(&settings.database_url)
        .await
        .map_err(|error| error.to_string())?;
    store::migrate(&connection).await.map_err(|error| error.to_string())?;
    Ok(connection)
}
