use authd::{
    config::{Settings, TokenAlgorithm},
    descriptors,
    signing::{key_ring::KeyAlgorithm, rotation},
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
                let connection = store::connect(&settings.database_url)
                    .await
                    .map_err(|error| error.to_string())?;
                store::migrate(&connection).await.map_err(|error| error.to_string())?;
                tracing::info!("migrations applied");
                Ok(())
            }
            Command::Keys { command } => keys(&settings, command).await,
        }
    });
    if let Err(error) = outcome {
        eprintln!("authd: {error}");
        std::process::exit(1);
    }
}

async fn keys(settings: &Settings, command: KeysCommand) -> Result<(), String> {
    let algorithm = match settings.access_token_algorithm {
        TokenAlgorithm::EdDsa => KeyAlgorithm::EdDsa,
        TokenAlgorithm::Es256 => KeyAlgorithm::Es256,
        TokenAlgorithm::Hs256 => {
            return Err("ACCESS_TOKEN_ALG=HS256 signs with JWT_ACCESS_SECRET: there are no keys".to_owned());
        }
    };
    let connection = store::connect(&settings.database_url)
        .await
        .map_err(|error| error.to_string())?;
    store::migrate(&connection).await.map_err(|error| error.to_string())?;
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
