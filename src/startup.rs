//! Builds the application: database, migrations, actors, mailer, and the bound HTTP server.
//!
//! `Application::build` connects, migrates, starts the SQLite checkpointer, starts the manager and loads the
//! recent revocations into it, starts the bus listener, the mailer and the expiry sweeper, then binds
//! (`PORT=0` picks a free port). The sweeper ends expired sessions every 30 s and runs retention hourly.

use std::{net::TcpListener, sync::Arc};

use actix::Actor;
use actix_web::{App, HttpServer, dev::Server, middleware::from_fn, web};

use crate::{
    backchannel,
    config::{Settings, TokenAlgorithm},
    email::{Mailer, MailerError},
    http::{
        extract::BODY_LIMIT,
        hardening, problems,
        rate_limit::{IpRateLimiter, SocketRateLimiter},
        routes,
    },
    metrics::Metrics,
    passwords::{PasswordError, PasswordHasher},
    realtime::{
        bus::EventBus,
        presence::PresenceWriter,
        session_lists::SessionLists,
        session_manager::{CloseAll, SessionManager},
    },
    realtime::{socket_slots::SocketSlots, ws_session::SocketContext},
    sealing::Sealer,
    secret::Secret,
    services::{AppState, backend_keys::BackendKeyring, now, retention, revocation, seconds},
    signing::{
        key_ring::{KeyAlgorithm, KeyError},
        refresher::KeyRefresher,
        rotation::{RotationError, Schedule},
    },
    store::{self, Store},
    telemetry,
    tokens::{AccessTokens, HmacKey, revocation_window},
};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
    #[error("cannot listen: {0}")]
    Listen(#[from] std::io::Error),
    #[error("mail: {0}")]
    Mail(#[from] MailerError),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("passwords: {0}")]
    Password(#[from] PasswordError),
    #[error("session manager: {0}")]
    Manager(String),
    #[error("signing keys: {0}")]
    SigningKeys(#[from] RotationError),
    #[error("passkeys: {0}")]
    Passkeys(String),
    #[error("back-channel logout: {0}")]
    Backchannel(#[from] backchannel::TlsSetupError),
}

/// The WebAuthn relying party: `WEBAUTHN_RP_ID`, its origins, and the name passkey prompts show.
fn relying_party(settings: &Settings) -> Result<webauthn_rs::Webauthn, StartupError> {
    let refused = |error: webauthn_rs::prelude::WebauthnError| StartupError::Passkeys(error.to_string());
    let (first, others) = settings
        .webauthn_origins
        .split_first()
        .ok_or_else(|| StartupError::Passkeys("WEBAUTHN_ORIGINS is empty".to_owned()))?;
    let mut builder = webauthn_rs::WebauthnBuilder::new(&settings.webauthn_rp_id, first)
        .map_err(refused)?
        .rp_name(&settings.service_name);
    for origin in others {
        builder = builder.append_allowed_origin(origin);
    }
    builder.build().map_err(refused)
}

pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
    manager: actix::Addr<SessionManager>,
}

impl Application {
    /// Everything up to a bound socket; `PORT=0` picks a free port (tests). Must run inside an actix System.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let backchannel_tls = backchannel::tls_config(settings.backchannel_ca_file.as_deref())?;
        let database = store::connect(&settings.database_url).await?;
        store::migrate(&database).await?;
        store::spawn_checkpointer(database.clone());

        let metrics = std::sync::Arc::new(Metrics::new()?);
        let node = uuid::Uuid::now_v7();
        let (manager, views) = SessionManager::new(
            settings.access_token_ttl,
            PresenceWriter::start(database.clone(), node),
            metrics.clone(),
        );
        let manager = manager.start();
        // Sessions ended before this start may still have live access tokens: refuse them from the first request.
        let window = revocation_window(settings.access_token_ttl);
        for event in revocation::recent(&database, now() - seconds(window)).await? {
            // A manager that does not take them would serve revoked tokens: the node does not start.
            manager
                .send(event)
                .await
                .map_err(|error| StartupError::Manager(error.to_string()))?;
        }
        let access_tokens = access_tokens(&settings, &database).await?;
        let backend_keys = Arc::new(BackendKeyring::default());
        backend_keys.reload(&database).await?;
        backend_keys.spawn_reloader(database.clone());
        let session_lists = std::sync::Arc::new(SessionLists::default());
        let (log_changed, revocation_log) = tokio::sync::watch::channel(0);
        let bus = EventBus::new(
            manager.clone(),
            node,
            metrics.clone(),
            session_lists.clone(),
            log_changed,
        );
        let catch_up_database = database.clone();
        bus.spawn_listener(&database, move || {
            let database = catch_up_database.clone();
            async move { revocation::recent(&database, now() - seconds(window)).await }
        });

        let state = web::Data::new(AppState {
            passwords: PasswordHasher::new(settings.password_hash_threads)?,
            access_tokens,
            refresh_keys: HmacKey::derive(&settings.jwt_access_secret, "authd refresh token successor"),
            otp_keys: HmacKey::derive(&settings.otp_secret, "authd one-time code"),
            factor_keys: HmacKey::derive(&settings.otp_secret, "authd recovery code"),
            factor_sealer: Sealer::new(HmacKey::derive(&settings.otp_secret, "authd authenticator secret").mac(&[])),
            webauthn: std::sync::Arc::new(relying_party(&settings)?),
            mailer: Mailer::start(
                database.clone(),
                settings.smtp_url.as_ref(),
                &settings.mail_from,
                settings.data_dir.join("mail"),
                &settings.otp_secret,
            )?,
            publisher: std::sync::Arc::new(bus),
            backend_keys,
            revocation_log,
            session_lists,
            node,
            live_sets: views,
            metrics,
            // An aged copy is served up to 4 s more while one request reloads it, so a slow database holds up
            // that request only, not every `me` of the user.
            user_cache: crate::cache::Cache::new(std::time::Duration::from_secs(1))
                .serving_stale_for(std::time::Duration::from_secs(4)),
            store: Store::new(database),
            settings,
        });

        spawn_expiry_sweeper(state.clone());
        backchannel::register(state.store.connection(), &state.settings.backchannel_logout_urls).await?;
        backchannel::spawn(state.clone(), backchannel_tls);

        let listener = TcpListener::bind((state.settings.host.as_str(), state.settings.port))?;
        let port = listener.local_addr()?.port();
        let server_state = state.clone();
        let rate_limiter = web::Data::new(IpRateLimiter::new(state.settings.rate_limit_ip_per_minute));
        let socket_rate_limiter = web::Data::new(SocketRateLimiter::new(state.settings.ws_connects_per_minute));
        let expiry_state = state.clone();
        let socket_context = web::Data::new(SocketContext {
            manager: manager.clone(),
            live_sockets: state.metrics.live_sockets.clone(),
            ping_interval: state.settings.ws_ping_interval,
            client_timeout: state.settings.ws_client_timeout,
            expiry_check: std::sync::Arc::new(move |user, session| {
                let state = expiry_state.clone();
                Box::pin(async move { revocation::end_if_over(&state, user, session).await })
            }),
        });
        let socket_slots = web::Data::new(SocketSlots::new(
            state.settings.ws_max_sockets_per_session,
            state.settings.ws_max_sockets_per_user,
        ));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(server_state.clone())
                .app_data(rate_limiter.clone())
                .app_data(socket_rate_limiter.clone())
                .app_data(socket_slots.clone())
                .app_data(socket_context.clone())
                .app_data(web::PayloadConfig::new(BODY_LIMIT))
                .wrap(from_fn(problems::problem_bodies))
                .wrap(from_fn(hardening::secure_headers))
                .wrap(from_fn(telemetry::access_log))
                .configure(routes::configure)
                .default_service(web::to(problems::not_found))
        })
        .listen(listener)?
        .shutdown_timeout(5)
        // Signals are handled in `run_until_stopped`, which closes the WebSockets before the server stops.
        .disable_signals()
        .run();
        tracing::info!(port, "listening");
        Ok(Self {
            port,
            server,
            state,
            manager,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    pub fn server_handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// What stops this node: closes its sockets, then the server.
    pub fn shutdown(&self) -> Shutdown {
        Shutdown {
            server: self.server.handle(),
            manager: self.manager.clone(),
        }
    }

    /// Serves until SIGTERM or SIGINT, then shuts down as `Shutdown::run` does.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let shutdown = self.shutdown();
        actix_web::rt::spawn(async move {
            if wait_for_stop_signal().await {
                let forced = shutdown.clone();
                // A second signal while stopping gracefully stops at once.
                actix_web::rt::spawn(async move {
                    if wait_for_stop_signal().await {
                        forced.server.stop(false).await;
                    }
                });
                shutdown.run().await;
            }
        });
        self.server.await
    }
}

/// Stops a node the way a client can recover from at once: it stops accepting connections, every WebSocket gets
/// a close frame with 1012 (service restart), so its client reconnects to another node now instead of after a
/// timeout, and the server stops, finishing requests in flight for up to 5 s.
#[derive(Clone)]
pub struct Shutdown {
    server: actix_web::dev::ServerHandle,
    manager: actix::Addr<SessionManager>,
}

impl Shutdown {
    pub async fn run(&self) {
        // New connections first, so a client told to reconnect does not land here again.
        self.server.pause().await;
        match self.manager.send(CloseAll).await {
            Ok(sockets) => tracing::info!(sockets, "shutting down: closing the WebSockets"),
            Err(error) => tracing::warn!(%error, "shutting down: the session manager did not answer"),
        }
        self.server.stop(true).await;
    }
}

/// Waits for SIGTERM or SIGINT; false when no signal can be waited for.
async fn wait_for_stop_signal() -> bool {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut terminate), Ok(mut interrupt)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
        else {
            tracing::warn!("cannot listen for stop signals");
            return false;
        };
        tokio::select! {
            _ = terminate.recv() => true,
            _ = interrupt.recv() => true,
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.is_ok()
    }
}

/// The access-token signer `settings` ask for. With key pairs, the keys are made or rotated as due and loaded
/// before the first request, and a task keeps them current.
async fn access_tokens(
    settings: &Settings,
    database: &sea_orm::DatabaseConnection,
) -> Result<Arc<AccessTokens>, StartupError> {
    let Some(algorithm) = key_algorithm(settings) else {
        return Ok(Arc::new(AccessTokens::new(
            &settings.jwt_access_secret,
            &settings.jwt_issuer,
            settings.access_token_ttl,
        )));
    };
    let refresher = KeyRefresher {
        database: database.clone(),
        sealer: key_sealer(settings)?,
        schedule: key_schedule(settings, algorithm),
    };
    let ring = refresher.refresh().await?;
    let tokens = Arc::new(AccessTokens::with_key_ring(
        ring,
        &settings.jwt_issuer,
        settings.access_token_ttl,
    ));
    refresher.spawn(tokens.clone());
    Ok(tokens)
}

/// The key pairs `ACCESS_TOKEN_ALG` asks for; `None` for the shared secret (HS256), which has none.
pub fn key_algorithm(settings: &Settings) -> Option<KeyAlgorithm> {
    match settings.access_token_algorithm {
        TokenAlgorithm::EdDsa => Some(KeyAlgorithm::EdDsa),
        TokenAlgorithm::Es256 => Some(KeyAlgorithm::Es256),
        TokenAlgorithm::Hs256 => None,
    }
}

/// What seals the signing keys' private parts.
pub fn key_sealer(settings: &Settings) -> Result<Sealer, StartupError> {
    let secret = settings.key_encryption_secret.as_ref().ok_or_else(|| {
        StartupError::SigningKeys(RotationError::Key(KeyError::Sealed(
            "KEY_ENCRYPTION_SECRET is not set".to_owned(),
        )))
    })?;
    Ok(signing_key_sealer(secret))
}

/// The sealer of the signing keys' private parts under `KEY_ENCRYPTION_SECRET`.
pub fn signing_key_sealer(secret: &Secret) -> Sealer {
    Sealer::new(HmacKey::derive(secret, "authd signing keys").mac(&[]))
}

/// When keys are made and retired, from the settings.
pub fn key_schedule(settings: &Settings, algorithm: KeyAlgorithm) -> Schedule {
    Schedule {
        algorithm,
        rotation: seconds(settings.signing_key_rotation),
        lead: seconds(settings.jwks_max_age * 2),
        token_window: seconds(revocation_window(settings.access_token_ttl)),
    }
}

/// Every 30 s, ends sessions past their limits that no socket or refresh has noticed; every hour, deletes
/// what is no longer needed.
fn spawn_expiry_sweeper(state: web::Data<AppState>) {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(std::time::Duration::from_secs(30));
        let mut ticks = 0u64;
        loop {
            interval.tick().await;
            if let Err(error) = revocation::end_expired(&state).await {
                tracing::warn!(%error, "cannot end expired sessions");
            }
            // Pruning waits an hour after start, then runs hourly.
            if ticks > 0
                && ticks.is_multiple_of(120)
                && let Err(error) = retention::prune(&state).await
            {
                tracing::warn!(%error, "cannot prune old rows");
            }
            ticks += 1;
        }
    });
}
