//! Typed settings, read from the environment (and `.env`) and validated once, at start.
//!
//! Every problem with the settings is named; no value is printed.

use std::{net::IpAddr, path::PathBuf, time::Duration};

use ipnet::IpNet;

use crate::secret::Secret;

/// The shortest secret accepted, in bytes.
pub const MINIMUM_SECRET_BYTES: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

/// What signs access tokens (`ACCESS_TOKEN_ALG`), spelled as JWT headers spell it (`as_str`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenAlgorithm {
    /// Ed25519 key pairs from the database, rotated, published as a JWKS (the default).
    EdDsa,
    /// P-256 key pairs, otherwise as `EdDsa`.
    Es256,
    /// The shared `JWT_ACCESS_SECRET`: whoever verifies can also mint. Kept for deployments that rely on it.
    Hs256,
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub host: String,
    pub port: u16,
    pub database_url: String,
    pub data_dir: PathBuf,
    pub environment: Environment,
    pub jwt_access_secret: Secret,
    pub jwt_issuer: String,
    /// `ACCESS_TOKEN_ALG`: `EdDSA` (default), `ES256` or `HS256`.
    pub access_token_algorithm: TokenAlgorithm,
    /// `KEY_ENCRYPTION_SECRET`: seals the signing keys' private parts in the database. Read unless `HS256`.
    pub key_encryption_secret: Option<Secret>,
    /// How long a signing key signs before the next takes over (`SIGNING_KEY_ROTATION`, 30 days).
    pub signing_key_rotation: Duration,
    /// `Cache-Control: max-age` of the JWKS (`JWKS_MAX_AGE`, 300 s); a new key is published twice this long
    /// before it signs.
    pub jwks_max_age: Duration,
    pub otp_secret: Secret,
    /// `BACKCHANNEL_LOGOUT_URLS`: where every session end is POSTed as an OpenID Connect logout token.
    pub backchannel_logout_urls: Vec<String>,
    /// `BACKCHANNEL_CA_FILE`: PEM certificates of authorities trusted for `https://` receivers besides the public
    /// roots (a deployment's own CA).
    pub backchannel_ca_file: Option<PathBuf>,
    pub smtp_url: Option<Secret>,
    pub mail_from: String,
    pub allowed_origins: Vec<String>,
    pub trusted_proxies: Vec<IpNet>,
    pub access_token_ttl: Duration,
    pub session_ttl: Duration,
    pub session_idle_ttl: Duration,
    pub refresh_grace: Duration,
    pub otp_ttl: Duration,
    pub otp_max_attempts: u32,
    pub otp_resend_cooldown: Duration,
    pub rate_limit_ip_per_minute: u32,
    pub login_lockout_threshold: u32,
    /// How often the server pings each WebSocket (`WS_PING_INTERVAL`, 15 s).
    pub ws_ping_interval: Duration,
    /// How long a silent WebSocket is kept (`WS_CLIENT_TIMEOUT`, 45 s).
    pub ws_client_timeout: Duration,
    /// Open WebSockets one session may hold on a node (`WS_MAX_SOCKETS_PER_SESSION`, 8).
    pub ws_max_sockets_per_session: usize,
    /// Open WebSockets one user may hold on a node (`WS_MAX_SOCKETS_PER_USER`, 64).
    pub ws_max_sockets_per_user: usize,
    /// Tickets and upgrades one user may ask for per minute on a node (`WS_CONNECTS_PER_MINUTE`, 60).
    pub ws_connects_per_minute: u32,
    /// Threads that run argon2 (`PASSWORD_HASH_THREADS`, one per core, at most 256). Fewer leave cores free during a
    /// login flood, for a database on the same machine: its commits slow down whenever every core is busy,
    /// even with work of the lowest priority.
    pub password_hash_threads: usize,
    /// How recent a session's last authentication must be for a sensitive change made without the password in
    /// the same request (`REAUTHENTICATION_MAX_AGE`, 600 s).
    pub reauthentication_max_age: Duration,
    /// The name authenticator apps and passkey prompts show for the account (`SERVICE_NAME`, `authd`).
    pub service_name: String,
    /// The relying party id of passkeys (`WEBAUTHN_RP_ID`, `localhost`): the site's domain, or a parent of it.
    pub webauthn_rp_id: String,
    /// The origins passkeys may be used from (`WEBAUTHN_ORIGINS`, `http://localhost:<PORT>`).
    pub webauthn_origins: Vec<url::Url>,
}

/// Every problem found in the configuration, each naming its variable and never its value.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  {}", .problems.join("\n  "))]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl TokenAlgorithm {
    pub const ALL: [Self; 3] = [Self::EdDsa, Self::Es256, Self::Hs256];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::EdDsa => "EdDSA",
            Self::Es256 => "ES256",
            Self::Hs256 => "HS256",
        }
    }
}

impl Settings {
    /// Reads the process environment after loading `.env` from the working directory (variables already set
    /// win over the file).
    pub fn from_environment() -> Result<Self, ConfigError> {
        let _ = dotenvy::dotenv();
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Builds settings from any source of variables; development secrets are generated into `DATA_DIR` once.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut reader = Reader {
            lookup: &lookup,
            problems: Vec::new(),
        };
        let environment = match reader.text("APP_ENV", "development").as_str() {
            "production" => Environment::Production,
            "development" => Environment::Development,
            _ => {
                reader
                    .problems
                    .push("APP_ENV must be `development` or `production`".to_owned());
                Environment::Development
            }
        };
        let data_dir = PathBuf::from(reader.text("DATA_DIR", "data"));
        let host = reader.text("HOST", "127.0.0.1");
        let port = reader.number("PORT", 5000u16);
        // The default SQLite file lives in DATA_DIR, like everything else of a development instance.
        let default_database = format!("sqlite://{}?mode=rwc", data_dir.join("authd.db").display());
        let database_url = reader.text("DATABASE_URL", &default_database);
        let jwt_issuer = reader.text("JWT_ISSUER", "authd");
        let named = reader.text("ACCESS_TOKEN_ALG", TokenAlgorithm::EdDsa.as_str());
        let access_token_algorithm = match TokenAlgorithm::ALL
            .into_iter()
            .find(|algorithm| algorithm.as_str() == named)
        {
            Some(algorithm) => algorithm,
            None => {
                reader
                    .problems
                    .push("ACCESS_TOKEN_ALG must be `EdDSA`, `ES256` or `HS256`".to_owned());
                TokenAlgorithm::EdDsa
            }
        };
        let signing_key_rotation = reader.seconds("SIGNING_KEY_ROTATION", 2_592_000);
        let jwks_max_age = reader.seconds("JWKS_MAX_AGE", 300);
        let backchannel_logout_urls: Vec<String> = reader
            .text("BACKCHANNEL_LOGOUT_URLS", "")
            .split(',')
            .map(|url| url.trim().to_owned())
            .filter(|url| !url.is_empty())
            .collect();
        if !backchannel_logout_urls.iter().all(|url| is_backchannel_url(url)) {
            reader
                .problems
                .push("BACKCHANNEL_LOGOUT_URLS must be a comma list of http:// or https:// URLs".to_owned());
        }
        let backchannel_ca_file = (reader.lookup)("BACKCHANNEL_CA_FILE")
            .map(|path| path.trim().to_owned())
            .filter(|path| !path.is_empty())
            .map(PathBuf::from);
        let mail_from = reader.text("MAIL_FROM", "authd <no-reply@localhost>");
        if mail_from.parse::<lettre::message::Mailbox>().is_err() {
            reader.problems.push("MAIL_FROM is not a valid mailbox".to_owned());
        }
        let smtp_url = lookup("SMTP_URL")
            .filter(|value| !value.trim().is_empty())
            .map(Secret::new);
        if let Some(url) = &smtp_url
            && url::Url::parse(url.expose())
                .map(|url| !matches!(url.scheme(), "smtp" | "smtps"))
                .unwrap_or(true)
        {
            reader
                .problems
                .push("SMTP_URL must be an smtp:// or smtps:// URL".to_owned());
        }
        let allowed_origins = reader
            .text("ALLOWED_ORIGINS", "http://localhost:5000,http://127.0.0.1:5000")
            .split(',')
            .map(|origin| origin.trim().trim_end_matches('/').to_owned())
            .filter(|origin| !origin.is_empty())
            .collect();
        let trusted_proxies = reader.networks("TRUSTED_PROXIES");
        let access_token_ttl = reader.seconds("ACCESS_TOKEN_TTL", 900);
        let session_ttl = reader.seconds("SESSION_TTL", 2_592_000);
        let session_idle_ttl = reader.seconds("SESSION_IDLE_TTL", 604_800);
        let refresh_grace = reader.seconds("REFRESH_GRACE", 10);
        let otp_ttl = reader.seconds("OTP_TTL", 600);
        let otp_max_attempts = reader.number("OTP_MAX_ATTEMPTS", 5u32);
        let otp_resend_cooldown = reader.seconds("OTP_RESEND_COOLDOWN", 60);
        let rate_limit_ip_per_minute = reader.number("RATE_LIMIT_IP_PER_MINUTE", 60u32);
        let login_lockout_threshold = reader.number("LOGIN_LOCKOUT_THRESHOLD", 10u32);
        let ws_ping_interval = reader.seconds("WS_PING_INTERVAL", 15);
        let ws_client_timeout = reader.seconds("WS_CLIENT_TIMEOUT", 45);
        let ws_max_sockets_per_session = reader.number("WS_MAX_SOCKETS_PER_SESSION", 8usize);
        let ws_max_sockets_per_user = reader.number("WS_MAX_SOCKETS_PER_USER", 64usize);
        let ws_connects_per_minute = reader.number("WS_CONNECTS_PER_MINUTE", 60u32);
        let reauthentication_max_age = reader.seconds("REAUTHENTICATION_MAX_AGE", 600);
        let webauthn_rp_id = reader.text("WEBAUTHN_RP_ID", "localhost").to_ascii_lowercase();
        let webauthn_origins: Vec<url::Url> = reader
            .text("WEBAUTHN_ORIGINS", &format!("http://localhost:{port}"))
            .split(',')
            .map(str::trim)
            .filter(|origin| !origin.is_empty())
            .filter_map(|origin| match url::Url::parse(origin) {
                Ok(url)
                    if url.domain().is_some_and(|domain| {
                        domain == webauthn_rp_id || domain.ends_with(&format!(".{webauthn_rp_id}"))
                    }) =>
                {
                    Some(url)
                }
                _ => {
                    reader.problems.push(
                        "WEBAUTHN_ORIGINS must list http(s) origins whose host is WEBAUTHN_RP_ID or under it \
                         (WebAuthn refuses IP addresses)"
                            .to_owned(),
                    );
                    None
                }
            })
            .collect();
        if webauthn_origins.is_empty() {
            reader
                .problems
                .push("WEBAUTHN_ORIGINS must name at least one origin".to_owned());
        }
        let service_name = reader.text("SERVICE_NAME", "authd").trim().to_owned();
        // The otpauth label is `issuer:account`: a colon would move the split.
        if service_name.is_empty() || service_name.contains(':') {
            reader
                .problems
                .push("SERVICE_NAME must be a non-empty name without ':'".to_owned());
        }
        for (name, value) in [
            ("WS_MAX_SOCKETS_PER_SESSION", ws_max_sockets_per_session),
            ("WS_MAX_SOCKETS_PER_USER", ws_max_sockets_per_user),
        ] {
            if value == 0 {
                reader.problems.push(format!("{name} must be at least 1"));
            }
        }
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        let password_hash_threads = reader.number("PASSWORD_HASH_THREADS", cores.min(MOST_HASH_THREADS));
        // Each thread keeps 19 MiB of argon2 memory: a value past any machine's cores is refused, not obeyed.
        if !(1..=MOST_HASH_THREADS).contains(&password_hash_threads) {
            reader.problems.push(format!(
                "PASSWORD_HASH_THREADS must be between 1 and {MOST_HASH_THREADS}"
            ));
        }
        for (name, value) in [
            ("ACCESS_TOKEN_TTL", access_token_ttl),
            ("SESSION_TTL", session_ttl),
            ("SESSION_IDLE_TTL", session_idle_ttl),
            ("WS_PING_INTERVAL", ws_ping_interval),
            ("WS_CLIENT_TIMEOUT", ws_client_timeout),
            ("SIGNING_KEY_ROTATION", signing_key_rotation),
            ("JWKS_MAX_AGE", jwks_max_age),
            ("REAUTHENTICATION_MAX_AGE", reauthentication_max_age),
        ] {
            if value.is_zero() {
                reader.problems.push(format!("{name} must be at least 1 second"));
            }
        }
        if otp_max_attempts == 0 {
            reader.problems.push("OTP_MAX_ATTEMPTS must be at least 1".to_owned());
        }
        if login_lockout_threshold == 0 {
            reader
                .problems
                .push("LOGIN_LOCKOUT_THRESHOLD must be at least 1".to_owned());
        }

        let jwt_access_secret = reader.secret("JWT_ACCESS_SECRET", environment, &data_dir);
        let otp_secret = reader.secret("OTP_SECRET", environment, &data_dir);
        let key_encryption_secret = (access_token_algorithm != TokenAlgorithm::Hs256)
            .then(|| reader.secret("KEY_ENCRYPTION_SECRET", environment, &data_dir))
            .flatten();
        if environment == Environment::Production && smtp_url.is_none() {
            reader
                .problems
                .push("SMTP_URL is required when APP_ENV=production".to_owned());
        }

        let Reader { problems, .. } = reader;
        match (jwt_access_secret, otp_secret) {
            (Some(jwt_access_secret), Some(otp_secret)) if problems.is_empty() => Ok(Self {
                host,
                port,
                database_url,
                data_dir,
                environment,
                jwt_access_secret,
                jwt_issuer,
                access_token_algorithm,
                key_encryption_secret,
                signing_key_rotation,
                jwks_max_age,
                otp_secret,
                backchannel_logout_urls,
                backchannel_ca_file,
                smtp_url,
                mail_from,
                allowed_origins,
                trusted_proxies,
                access_token_ttl,
                session_ttl,
                session_idle_ttl,
                refresh_grace,
                otp_ttl,
                otp_max_attempts,
                otp_resend_cooldown,
                rate_limit_ip_per_minute,
                login_lockout_threshold,
                ws_ping_interval,
                ws_client_timeout,
                ws_max_sockets_per_session,
                ws_max_sockets_per_user,
                ws_connects_per_minute,
                password_hash_threads,
                reauthentication_max_age,
                service_name,
                webauthn_rp_id,
                webauthn_origins,
            }),
            _ => Err(ConfigError { problems }),
        }
    }

    pub fn is_production(&self) -> bool {
        self.environment == Environment::Production
    }

    /// Whether `address` is a proxy whose `X-Forwarded-For` is believed.
    pub fn is_trusted_proxy(&self, address: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|network| network.contains(&address))
    }
}

/// Whether `url` can receive back-channel logout tokens: an `http://` or `https://` URL with a host.
pub fn is_backchannel_url(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
}

const LONGEST_SECONDS: u64 = 10 * 365 * 24 * 60 * 60;
const MOST_HASH_THREADS: usize = 256;

struct Reader<'a, F: Fn(&str) -> Option<String>> {
    lookup: &'a F,
    problems: Vec<String>,
}

impl<F: Fn(&str) -> Option<String>> Reader<'_, F> {
    fn text(&self, name: &str, default: &str) -> String {
        (self.lookup)(name)
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty())
            .unwrap_or_else(|| default.to_owned())
    }

    fn number<T: std::str::FromStr>(&mut self, name: &str, default: T) -> T {
        match (self.lookup)(name)
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty())
        {
            None => default,
            Some(value) => value.parse().unwrap_or_else(|_| {
                self.problems.push(format!("{name} must be a whole number"));
                default
            }),
        }
    }

    /// A duration in whole seconds, at most ten years: every one is added to a timestamp on some request,
    /// and a value past the calendar's range would fail there instead of here.
    fn seconds(&mut self, name: &str, default: u64) -> Duration {
        let seconds = self.number(name, default);
        if seconds > LONGEST_SECONDS {
            self.problems
                .push(format!("{name} must be at most {LONGEST_SECONDS} seconds (ten years)"));
            return Duration::from_secs(default);
        }
        Duration::from_secs(seconds)
    }

    fn networks(&mut self, name: &str) -> Vec<IpNet> {
        let text = self.text(name, "");
        let mut networks = Vec::new();
        for item in text.split(',').map(str::trim).filter(|item| !item.is_empty()) {
            match item
                .parse::<IpNet>()
                .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
            {
                Ok(network) => networks.push(network),
                Err(_) => self
                    .problems
                    .push(format!("{name} must be a comma list of CIDRs or addresses")),
            }
        }
        networks
    }

    /// A secret from the environment; in development a missing one is generated once into `DATA_DIR` and
    /// reused, so tokens survive a restart.
    fn secret(&mut self, name: &str, environment: Environment, data_dir: &std::path::Path) -> Option<Secret> {
        match (self.lookup)(name).filter(|value| !value.is_empty()) {
            Some(value) if environment == Environment::Production && !looks_random(value.as_bytes()) => {
                self.problems.push(format!(
                    "{name} does not look random (too few distinct bytes, or a short pattern repeated): \
                     generate one, e.g. with `openssl rand -base64 48`"
                ));
                None
            }
            Some(value) if value.len() >= MINIMUM_SECRET_BYTES => Some(Secret::new(value)),
            Some(_) => {
                self.problems
                    .push(format!("{name} must be at least {MINIMUM_SECRET_BYTES} bytes"));
                None
            }
            None if environment == Environment::Production => {
                self.problems
                    .push(format!("{name} is required when APP_ENV=production"));
                None
            }
            None => match development_secret(name, data_dir) {
                Ok(secret) => Some(secret),
                Err(error) => {
                    self.problems.push(format!(
                        "{name}: cannot keep a development secret in {}: {error}",
                        data_dir.display()
                    ));
                    None
                }
            },
        }
    }
}

/// Whether a secret could have come from a random generator: at least 10 distinct bytes, and not a shorter
/// pattern repeated (`aaaa…`, `passwordpassword…`). A guessable secret lets anyone mint tokens. Ten, not more:
/// a random hex secret of 32 characters shows 14 of its 16 digits on average, and must pass.
fn looks_random(secret: &[u8]) -> bool {
    let distinct = secret.iter().collect::<std::collections::HashSet<_>>().len();
    let repeats_a_pattern =
        (1..=secret.len() / 2).any(|period| secret.iter().zip(&secret[period..]).all(|(left, right)| left == right));
    distinct >= 10 && !repeats_a_pattern
}

fn development_secret(name: &str, data_dir: &std::path::Path) -> std::io::Result<Secret> {
    let path = data_dir.join(format!("{}.secret", name.to_lowercase()));
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = existing.trim();
        if existing.len() >= MINIMUM_SECRET_BYTES {
            return Ok(Secret::new(existing));
        }
    }
    std::fs::create_dir_all(data_dir)?;
    let value = crate::tokens::random_token(48);
    write_private_file(&path, &value)?;
    tracing::warn!(variable = name, path = %path.display(), "generated a development secret; set the variable in production");
    Ok(Secret::new(value))
}

#[cfg(unix)]
fn write_private_file(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())
}

#[cfg(not(unix))]
fn write_private_file(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, contents)
}
