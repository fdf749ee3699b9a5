//! authd-bench: starts authd (the `authd` binary beside this one) on a fresh SQLite file or PostgreSQL
//! database, prepares users and sessions directly in the database, drives each scenario with a fixed number
//! of connections for a fixed time, and reports requests/s, latency percentiles and errors as a Markdown
//! table and a JSON file. Any non-2xx answer or unexpected body counts as an error.
//!
//! Build both binaries in release mode first: `cargo build --release --workspace --bins`.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use authd::{
    passwords::{self, PasswordHasher},
    secret::Secret,
    signing::{
        key_ring::{KeyAlgorithm, KeyRing},
        rotation::{self, Schedule},
    },
    store,
    tokens::{AccessTokens, hash_token, new_opaque_token},
};
use clap::Parser;
use entity::{refresh_token, session, user};
use futures_util::StreamExt;
use sea_orm::{ActiveValue::Set, ConnectionTrait, Database, DatabaseConnection, EntityTrait};
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

const JWT_SECRET: &str = "bench-jwt-secret-that-is-at-least-32-bytes-long";
const OTP_SECRET: &str = "bench-otp-secret-that-is-at-least-32-bytes-long";
const KEY_ENCRYPTION_SECRET: &str = "bench-key-encryption-secret-at-least-32-bytes";
const PASSWORD: &str = "correct horse battery staple";
const ALL: &[&str] = &[
    "baseline",
    "me",
    "me-hs256",
    "introspect",
    "refresh",
    "sessions",
    "logout",
    "login",
    "registrations",
    "isolation",
    "fanout",
    "sockets",
    "cross-node",
    "api-refusal",
    "verifier",
    "timing",
];

#[derive(Parser, Clone)]
#[command(name = "authd-bench", about = "Measures authd on this machine")]
struct Options {
    /// Scenarios to run (comma list), or `all`.
    #[arg(long, default_value = "all")]
    scenario: String,
    /// Connections per HTTP scenario.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Seconds per HTTP scenario.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// A PostgreSQL server URL: run on a fresh database there instead of SQLite (needed for cross-node).
    #[arg(long)]
    postgres_url: Option<String>,
    /// A short pass that only proves every scenario still runs (seconds, small sizes).
    #[arg(long)]
    smoke: bool,
    /// Where the JSON results go.
    #[arg(long, default_value = "bench-results.json")]
    json: PathBuf,
    /// Load-generator threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// The server's argon2 threads (`PASSWORD_HASH_THREADS`); its default is one per core. Every row of
    /// a run that sets it says so.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
    hash_threads: Option<u16>,
}

#[derive(Serialize, Clone, Default)]
struct Row {
    scenario: String,
    backend: String,
    connections: usize,
    requests: u64,
    errors: u64,
    requests_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    note: String,
}

/// A running authd process.
struct Node {
    child: Child,
    base: String,
    port: u16,
}

impl Node {
    fn start(database_url: &str, data_dir: &std::path::Path, extra: &[(&str, &str)]) -> Node {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let binary = std::env::current_exe().unwrap().with_file_name("authd");
        assert!(
            binary.exists(),
            "{} is missing: run `cargo build --release --bins`",
            binary.display()
        );
        let mut command = Command::new(binary);
        command
            .env_clear()
            .env("PORT", port.to_string())
            .env("DATABASE_URL", database_url)
            .env("DATA_DIR", data_dir)
            .env("JWT_ACCESS_SECRET", JWT_SECRET)
            .env("OTP_SECRET", OTP_SECRET)
            .env("KEY_ENCRYPTION_SECRET", KEY_ENCRYPTION_SECRET)
            .env("RATE_LIMIT_IP_PER_MINUTE", "0")
            // `fanout` opens 100 sockets for one user, past the default per-user cap of 64, and every scenario
            // opens sockets faster than a person would.
            .env("WS_MAX_SOCKETS_PER_USER", "1000")
            .env("WS_MAX_SOCKETS_PER_SESSION", "1000")
            .env("WS_CONNECTS_PER_MINUTE", "0")
            .env("LOGIN_LOCKOUT_THRESHOLD", "1000000000")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (name, value) in extra {
            command.env(name, value);
        }
        let child = command.spawn().expect("authd starts");
        let node = Node {
            child,
            base: format!("http://127.0.0.1:{port}"),
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "authd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        node
    }

    /// Resident memory now and at its peak, in KiB.
    fn memory(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The database and the fixtures written straight into it.
struct Fixtures {
    database: DatabaseConnection,
    url: String,
    backend: String,
    tokens: AccessTokens,
    /// Made before the server starts, so it holds the key from its first request.
    backend_key: String,
    password_hash: String,
    data_dir: PathBuf,
    /// The PostgreSQL server the run's database was made on.
    server_url: Option<String>,
}

/// A signed-in device, made without going through argon2.
#[derive(Clone)]
struct Device {
    session: Uuid,
    access: String,
    refresh: String,
}

impl Fixtures {
    async fn create(options: &Options) -> Fixtures {
        let data_dir = std::env::temp_dir().join(format!("authd-bench-{}", Uuid::now_v7()));
        std::fs::create_dir_all(&data_dir).unwrap();
        let (url, backend) = match &options.postgres_url {
            Some(server) => {
                let name = format!("authd_bench_{}", Uuid::now_v7().simple());
                let connection = Database::connect(server).await.expect("the PostgreSQL server answers");
                connection
                    .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                    .await
                    .unwrap();
                let mut url = url::Url::parse(server).unwrap();
                url.set_path(&format!("/{name}"));
                (url.to_string(), "postgres".to_owned())
            }
            None => (
                format!("sqlite://{}?mode=rwc", data_dir.join("authd.db").display()),
                "sqlite".to_owned(),
            ),
        };
        let database = store::connect(&url).await.unwrap();
        store::migrate(&database).await.unwrap();
        let hasher = PasswordHasher::new(1).unwrap();
        let password = authd::domain::Password::parse_new(PASSWORD, &[]).unwrap();
        let password_hash = hasher.hash(&password).await.unwrap();
        // The first signing key, made as a node makes it at its first start, so the tokens written here are
        // the server's own (EdDSA, the default).
        let sealer = authd::startup::signing_key_sealer(&Secret::new(KEY_ENCRYPTION_SECRET));
        let schedule = Schedule {
            algorithm: KeyAlgorithm::EdDsa,
            rotation: chrono::Duration::days(30),
            lead: chrono::Duration::minutes(10),
            token_window: chrono::Duration::minutes(16),
        };
        let now = authd::clock::now();
        rotation::maintain(&database, &sealer, &schedule, now).await.unwrap();
        let keys = rotation::all(&database).await.unwrap();
        let ring = KeyRing::from_rows(&keys, &sealer, now).unwrap();
        let tokens = AccessTokens::with_key_ring(ring, "authd", Duration::from_secs(900));
        let (_, backend_key) = authd::services::backend_keys::create(&database, "authd-bench", now)
            .await
            .unwrap();
        Fixtures {
            database,
            url,
            backend,
            tokens,
            backend_key,
            password_hash,
            data_dir,
            server_url: options.postgres_url.clone(),
        }
    }

    /// Drops the run's PostgreSQL database and deletes its data folder, so runs leave nothing behind.
    async fn remove(self) {
        if let Some(server) = &self.server_url {
            let name = url::Url::parse(&self.url)
                .unwrap()
                .path()
                .trim_start_matches('/')
                .to_owned();
            self.database.close().await.unwrap();
            let connection = Database::connect(server).await.unwrap();
            connection
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .await
                .unwrap();
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }

    async fn user(&self) -> (Uuid, String) {
        let id = Uuid::now_v7();
        let email = format!("bench-{}@example.com", id.simple());
        let now = chrono::Utc::now();
        user::Entity::insert(user::ActiveModel {
            id: Set(id),
            email: Set(email.clone()),
            password_hash: Set(self.password_hash.clone()),
            name: Set(None),
            email_verified_at: Set(Some(now)),
            mfa_email_otp: Set(false),
            mfa_totp: Set(false),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec(&self.database)
        .await
        .unwrap();
        (id, email)
    }

    async fn devices(&self, user: Uuid, count: usize) -> Vec<Device> {
        let now = chrono::Utc::now();
        let mut devices = Vec::with_capacity(count);
        for chunk in (0..count).collect::<Vec<_>>().chunks(500) {
            let mut sessions = Vec::new();
            let mut refreshes = Vec::new();
            for _ in chunk {
                let id = Uuid::now_v7();
                let expires = now + chrono::Duration::days(30);
                sessions.push(session::ActiveModel {
                    id: Set(id),
                    user_id: Set(user),
                    ip: Set("127.0.0.1".to_owned()),
                    user_agent: Set("authd-bench".to_owned()),
                    device: Set("authd-bench".to_owned()),
                    created_at: Set(now),
                    last_used_at: Set(now),
                    expires_at: Set(expires),
                    revoked_at: Set(None),
                    revoked_reason: Set(None),
                    auth_methods: Set("pwd".to_owned()),
                    authenticated_at: Set(Some(now)),
                });
                let refresh = new_opaque_token();
                refreshes.push(refresh_token::ActiveModel {
                    id: Set(Uuid::now_v7()),
                    session_id: Set(id),
                    token_hash: Set(hash_token(&refresh)),
                    created_at: Set(now),
                    rotated_at: Set(None),
                    parent_id: Set(None),
                });
                let (access, _) = self.tokens.issue(user, id, expires, now).unwrap();
                devices.push(Device {
                    session: id,
                    access,
                    refresh,
                });
            }
            session::Entity::insert_many(sessions)
                .exec(&self.database)
                .await
                .unwrap();
            refresh_token::Entity::insert_many(refreshes)
                .exec(&self.database)
                .await
                .unwrap();
        }
        devices
    }
}

/// What one connection does, request after request.
#[derive(Clone)]
enum Job {
    Get {
        path: &'static str,
        token: Option<String>,
    },
    Refresh {
        token: String,
    },
    /// Asks whether `token` is active, with a backend key; the answer must say it is.
    Introspect {
        key: String,
        token: String,
    },
    Logout {
        tokens: Vec<String>,
    },
    Login {
        email: String,
    },
    /// Registers a new address at each step: `{prefix}-{next}@example.com`.
    Register {
        prefix: String,
        next: u64,
    },
}

#[derive(Default)]
struct Tally {
    latencies: Vec<u32>,
    errors: u64,
}

/// Runs one request of `job` and records its latency from `started` (now, or the moment a paced request was
/// due); false when the job has nothing left to do.
async fn step(client: &awc::Client, base: &str, job: &mut Job, tally: &mut Tally, started: Instant) -> bool {
    let ok = match job {
        Job::Get { path, token } => {
            let mut request = client.get(format!("{base}{path}"));
            if let Some(token) = token {
                request = request.bearer_auth(token.as_str());
            }
            match request.send().await {
                Ok(mut response) => response.status().is_success() && response.body().await.is_ok(),
                Err(_) => false,
            }
        }
        Job::Introspect { key, token } => match client
            .post(format!("{base}/api/auth/introspect"))
            .bearer_auth(key.as_str())
            .content_type("application/x-www-form-urlencoded")
            .send_body(format!("token={token}"))
            .await
        {
            Ok(mut response) if response.status().is_success() => {
                matches!(response.json::<Value>().await, Ok(body) if body["active"] == true)
            }
            _ => false,
        },
        Job::Refresh { token } => match client
            .post(format!("{base}/api/auth/refresh"))
            .send_json(&json!({"refresh_token": token}))
            .await
        {
            Ok(mut response) if response.status().is_success() => match response.json::<Value>().await {
                Ok(body) => match body["refresh_token"].as_str() {
                    Some(next) => {
                        *token = next.to_owned();
                        true
                    }
                    None => false,
                },
                Err(_) => false,
            },
            _ => false,
        },
        Job::Logout { tokens } => {
            let Some(token) = tokens.pop() else { return false };
            match client
                .post(format!("{base}/api/auth/logout"))
                .bearer_auth(token)
                .send()
                .await
            {
                Ok(response) => response.status().as_u16() == 204,
                Err(_) => false,
            }
        }
        Job::Register { prefix, next } => {
            *next += 1;
            let email = format!("{prefix}-{next}@example.com");
            match client
                .post(format!("{base}/api/auth/register"))
                .send_json(&json!({"email": email, "password": PASSWORD}))
                .await
            {
                Ok(mut response) => response.status().as_u16() == 202 && response.body().await.is_ok(),
                Err(_) => false,
            }
        }
        Job::Login { email } => {
            match client
                .post(format!("{base}/api/auth/login"))
                .send_json(&json!({"email": email, "password": PASSWORD}))
                .await
            {
                Ok(mut response) => {
                    response.status().is_success()
                        && response
                            .json::<Value>()
                            .await
                            .is_ok_and(|body| body["access_token"].is_string())
                }
                Err(_) => false,
            }
        }
    };
    tally
        .latencies
        .push(u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX));
    if !ok {
        tally.errors += 1;
    }
    true
}

/// Drives `jobs` (one per connection) against `base` for `duration` on `threads` load threads, each
/// connection sending its next request as soon as the last one is answered.
fn drive(base: &str, jobs: Vec<Job>, duration: Duration, threads: usize) -> (Tally, Duration) {
    drive_at(base, jobs, duration, threads, None)
}

/// `drive`, or with `rate` a fixed schedule: `rate` requests per second in all, spread evenly over the
/// connections. A paced request's latency counts from when it was due, so a late answer also counts
/// against the requests that had to wait for it.
fn drive_at(base: &str, jobs: Vec<Job>, duration: Duration, threads: usize, rate: Option<f64>) -> (Tally, Duration) {
    let connections = jobs.len().max(1);
    let lanes = threads.max(1);
    let mut per_thread: Vec<Vec<(usize, Job)>> = (0..lanes).map(|_| Vec::new()).collect();
    for (index, job) in jobs.into_iter().enumerate() {
        per_thread[index % lanes].push((index, job));
    }
    let started = Instant::now();
    let deadline = started + duration;
    let handles: Vec<_> = per_thread
        .into_iter()
        .map(|jobs| {
            let base = base.to_owned();
            std::thread::spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    let tasks = jobs.into_iter().map(|(index, mut job)| {
                        let base = base.clone();
                        async move {
                            let client = awc::Client::builder().timeout(Duration::from_secs(30)).finish();
                            let mut tally = Tally::default();
                            match rate {
                                None => {
                                    while Instant::now() < deadline
                                        && step(&client, &base, &mut job, &mut tally, Instant::now()).await
                                    {
                                    }
                                }
                                Some(rate) => {
                                    let interval = Duration::from_secs_f64(connections as f64 / rate);
                                    // Connections take turns, so the requests arrive evenly.
                                    let mut due = started + interval.mul_f64(index as f64 / connections as f64);
                                    while due < deadline {
                                        actix_web::rt::time::sleep_until(due.into()).await;
                                        if !step(&client, &base, &mut job, &mut tally, due).await {
                                            break;
                                        }
                                        due += interval;
                                    }
                                }
                            }
                            tally
                        }
                    });
                    futures_util::future::join_all(tasks).await
                })
            })
        })
        .collect();
    let mut total = Tally::default();
    for handle in handles {
        for tally in handle.join().unwrap() {
            total.latencies.extend(tally.latencies);
            total.errors += tally.errors;
        }
    }
    (total, started.elapsed())
}

fn percentile(sorted: &[u32], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 * fraction).ceil() as usize)
        .saturating_sub(1)
        .min(sorted.len() - 1);
    f64::from(sorted[index]) / 1000.0
}

/// `GET /api/users/me` on the `me` devices and refresh chains on the `refresh` devices at once, for `window`:
/// flat out, or with `rates` at (me, refresh) requests per second.
fn me_and_refresh(
    base: &str,
    me: &[Device],
    refresh: &[Device],
    window: Duration,
    rates: Option<(f64, f64)>,
) -> (Tally, Tally, Duration) {
    let me_jobs = me
        .iter()
        .map(|device| Job::Get {
            path: "/api/users/me",
            token: Some(device.access.clone()),
        })
        .collect();
    let refresh_jobs = refresh
        .iter()
        .map(|device| Job::Refresh {
            token: device.refresh.clone(),
        })
        .collect();
    let me_base = base.to_owned();
    let me_thread = std::thread::spawn(move || drive_at(&me_base, me_jobs, window, 1, rates.map(|rates| rates.0)));
    let (refresh_tally, elapsed) = drive_at(base, refresh_jobs, window, 1, rates.map(|rates| rates.1));
    let (me_tally, _) = me_thread.join().unwrap();
    (me_tally, refresh_tally, elapsed)
}

fn row(scenario: &str, backend: &str, connections: usize, mut tally: Tally, elapsed: Duration, note: String) -> Row {
    tally.latencies.sort_unstable();
    let requests = tally.latencies.len() as u64;
    Row {
        scenario: scenario.to_owned(),
        backend: backend.to_owned(),
        connections,
        requests,
        errors: tally.errors,
        requests_per_second: requests as f64 / elapsed.as_secs_f64(),
        p50_ms: percentile(&tally.latencies, 0.50),
        p99_ms: percentile(&tally.latencies, 0.99),
        max_ms: tally
            .latencies
            .last()
            .map(|max| f64::from(*max) / 1000.0)
            .unwrap_or(0.0),
        note,
    }
}

/// Verifications per second on every core, in this process: the ceiling for password logins. Each thread
/// verifies `stored` with the server's own verification, working memory kept between verifications as the
/// server's hashing threads keep it.
fn hash_bound(duration: Duration, stored: &str) -> f64 {
    let cores = std::thread::available_parallelism().map(usize::from).unwrap_or(2);
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let handles: Vec<_> = (0..cores)
        .map(|_| {
            let stored = stored.to_owned();
            std::thread::spawn(move || {
                let mut count = 0u64;
                while Instant::now() < deadline {
                    assert!(passwords::verify_now(&stored, PASSWORD.as_bytes()).matches);
                    count += 1;
                }
                count
            })
        })
        .collect();
    let total: u64 = handles.into_iter().map(|handle| handle.join().unwrap()).sum();
    total as f64 / started.elapsed().as_secs_f64()
}

/// Opens a WebSocket for `device` and answers a receiver of the moment its first event arrives.
async fn open_socket(
    port: u16,
    token: String,
    arrived: Arc<Mutex<Vec<Instant>>>,
) -> actix_web::rt::task::JoinHandle<()> {
    let client = awc::Client::builder().timeout(Duration::from_secs(30)).finish();
    let (_, mut frames) = client
        .ws(format!("ws://127.0.0.1:{port}/api/ws"))
        .bearer_auth(token)
        .connect()
        .await
        .expect("the upgrade succeeds");
    // The hello frame.
    let _ = frames.next().await;
    actix_web::rt::spawn(async move {
        while let Some(Ok(frame)) = frames.next().await {
            if let awc::ws::Frame::Text(text) = frame {
                if text.windows(15).any(|window| window == b"session_revoked") {
                    arrived.lock().unwrap().push(Instant::now());
                }
                if text.windows(13).any(|window| window == b"session_ended") {
                    arrived.lock().unwrap().push(Instant::now());
                }
            }
        }
    })
}

fn summarise(scenario: &str, backend: &str, mut samples: Vec<Duration>, note: String) -> Row {
    samples.sort();
    let micros: Vec<u32> = samples
        .iter()
        .map(|sample| u32::try_from(sample.as_micros()).unwrap_or(u32::MAX))
        .collect();
    Row {
        scenario: scenario.to_owned(),
        backend: backend.to_owned(),
        connections: 0,
        requests: micros.len() as u64,
        errors: 0,
        requests_per_second: 0.0,
        p50_ms: percentile(&micros, 0.5),
        p99_ms: percentile(&micros, 0.99),
        max_ms: micros.last().map(|max| f64::from(*max) / 1000.0).unwrap_or(0.0),
        note,
    }
}

/// Logs every session of one user out at once while `sockets` of them listen: time to the last event.
async fn fanout(fixtures: &Fixtures, node: &Node, sockets: usize, trials: usize) -> Row {
    let mut samples = Vec::new();
    for _ in 0..trials {
        let (user, _) = fixtures.user().await;
        let devices = fixtures.devices(user, sockets + 1).await;
        let arrived = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        for device in &devices[1..] {
            readers.push(open_socket(node.port, device.access.clone(), arrived.clone()).await);
        }
        let client = awc::Client::default();
        let sent = Instant::now();
        let response = client
            .post(format!("{}/api/auth/logout-all", node.base))
            .bearer_auth(&devices[0].access)
            .send()
            .await;
        assert_eq!(response.map(|response| response.status().as_u16()).unwrap_or(0), 204);
        let deadline = Instant::now() + Duration::from_secs(10);
        while arrived.lock().unwrap().len() < sockets && Instant::now() < deadline {
            actix_web::rt::time::sleep(Duration::from_micros(200)).await;
        }
        let last = arrived.lock().unwrap().iter().max().copied();
        if let Some(last) = last {
            samples.push(last - sent);
        }
        for reader in readers {
            reader.abort();
        }
    }
    summarise(
        &format!("fanout {sockets}"),
        &fixtures.backend,
        samples,
        format!("{trials} trials: logout-all to the last socket's event"),
    )
}

/// Opens `users` x `per_user` sockets and reports the server's resident memory per socket.
async fn many_sockets(fixtures: &Fixtures, node: &Node, users: usize, per_user: usize) -> Row {
    let mut devices = Vec::new();
    for _ in 0..users {
        let (user, _) = fixtures.user().await;
        devices.extend(fixtures.devices(user, per_user).await);
    }
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    let (before, _) = node.memory();
    let arrived = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let mut readers = Vec::new();
    for chunk in devices.chunks(200) {
        let opened = futures_util::future::join_all(
            chunk
                .iter()
                .map(|device| open_socket(node.port, device.access.clone(), arrived.clone())),
        )
        .await;
        readers.extend(opened);
    }
    let opening = started.elapsed();
    actix_web::rt::time::sleep(Duration::from_secs(1)).await;
    let (after, peak) = node.memory();
    let count = devices.len();
    let per_socket = (after.saturating_sub(before) as f64 * 1024.0) / count as f64;
    for reader in readers {
        reader.abort();
    }
    Row {
        scenario: format!("sockets {count}"),
        backend: fixtures.backend.clone(),
        connections: count,
        note: format!(
            "{users} users; server RSS {before} KiB -> {after} KiB (peak {peak} KiB): {:.1} KiB per socket; opened in {:.1} s",
            per_socket / 1024.0,
            opening.as_secs_f64()
        ),
        ..Row::default()
    }
}

/// Revoke on node A, time to the event on node B's socket.
async fn cross_node(fixtures: &Fixtures, trials: usize, settings: &[(&str, &str)]) -> Row {
    let node_a = Node::start(&fixtures.url, &fixtures.data_dir, settings);
    let node_b = Node::start(&fixtures.url, &fixtures.data_dir, settings);
    let (user, _) = fixtures.user().await;
    let mut samples = Vec::new();
    let client = awc::Client::default();
    for _ in 0..trials {
        let device = fixtures.devices(user, 1).await.remove(0);
        let arrived = Arc::new(Mutex::new(Vec::new()));
        let reader = open_socket(node_b.port, device.access.clone(), arrived.clone()).await;
        let sent = Instant::now();
        let response = client
            .post(format!("{}/api/auth/logout", node_a.base))
            .bearer_auth(&device.access)
            .send()
            .await;
        assert_eq!(response.map(|response| response.status().as_u16()).unwrap_or(0), 204);
        let deadline = Instant::now() + Duration::from_secs(5);
        while arrived.lock().unwrap().is_empty() && Instant::now() < deadline {
            actix_web::rt::time::sleep(Duration::from_micros(200)).await;
        }
        if let Some(first) = arrived.lock().unwrap().first() {
            samples.push(*first - sent);
        }
        reader.abort();
    }
    summarise(
        "cross-node",
        &fixtures.backend,
        samples,
        format!("{trials} trials: logout on A to the event on B"),
    )
}

/// The cumulative buckets (upper bound in seconds, count) of authd's own duration histogram for `route`'s 200
/// answers: the time from the request's arrival in the server to its answer, without the client's side.
async fn server_latencies(base: &str, route: &str) -> Vec<(f64, u64)> {
    // A client of its own: a pooled connection left idle through a run has been closed by the server.
    let client = awc::Client::default();
    let text = match client.get(format!("{base}/metrics")).send().await {
        Ok(mut response) => response.body().limit(4 << 20).await.unwrap_or_default(),
        Err(_) => Default::default(),
    };
    let wanted = format!("route=\"{route}\",status=\"200\"");
    String::from_utf8_lossy(&text)
        .lines()
        .filter(|line| line.starts_with("authd_http_request_duration_seconds_bucket") && line.contains(&wanted))
        .filter_map(|line| {
            let bound = line.split("le=\"").nth(1)?.split('"').next()?;
            let bound = if bound == "+Inf" {
                f64::INFINITY
            } else {
                bound.parse().ok()?
            };
            Some((bound, line.rsplit(' ').next()?.parse().ok()?))
        })
        .collect()
}

/// The bucket that holds the server-side p99 of the answers between two readings.
fn server_p99(before: &[(f64, u64)], after: &[(f64, u64)]) -> String {
    let counted = |bound: f64, buckets: &[(f64, u64)]| {
        buckets
            .iter()
            .find(|(upper, _)| *upper == bound)
            .map_or(0, |(_, count)| *count)
    };
    let total = counted(f64::INFINITY, after) - counted(f64::INFINITY, before);
    let p99 = after
        .iter()
        .find(|(bound, count)| (count - counted(*bound, before)) as f64 >= 0.99 * total as f64)
        .map(|(bound, _)| *bound);
    match p99 {
        Some(bound) if bound.is_finite() => format!("server-side p99 <= {} ms", bound * 1000.0),
        _ => "server-side p99 over the last bucket".to_owned(),
    }
}

/// Requests authd has answered so far, from its `/metrics` (the read itself counts once answered).
async fn authd_requests(client: &awc::Client, base: &str) -> u64 {
    let text = match client.get(format!("{base}/metrics")).send().await {
        Ok(mut response) => response.body().limit(4 << 20).await.unwrap_or_default(),
        Err(_) => Default::default(),
    };
    String::from_utf8_lossy(&text)
        .lines()
        .filter(|line| line.starts_with("authd_http_request_duration_seconds_count"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// The example API (`examples/notes-api`, with `authd-verify`) following `node`'s revocation feed: time from a
/// logout at authd (on a second node when `across`) to the API's first refusal of that session, and how many
/// requests the API made to authd meanwhile.
async fn api_refusal(fixtures: &Fixtures, node: &Node, trials: usize, across: bool, settings: &[(&str, &str)]) -> Row {
    let other = across.then(|| Node::start(&fixtures.url, &fixtures.data_dir, settings));
    let logout_base = other.as_ref().map_or(node.base.clone(), |other| other.base.clone());
    let verifier = authd_verify::Verifier::start(authd_verify::Config::new(&node.base, "authd", &fixtures.backend_key))
        .await
        .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let api = format!("http://{}/notes", listener.local_addr().unwrap());
    actix_web::rt::spawn(notes_api::serve(verifier, listener).unwrap());
    let (user, _) = fixtures.user().await;
    let client = awc::Client::default();
    let status =
        |response: Result<awc::ClientResponse<_>, _>| response.map(|response| response.status().as_u16()).unwrap_or(0);
    let mut samples = Vec::new();
    let mut api_calls = 0u64;
    let before = authd_requests(&client, &node.base).await;
    for _ in 0..trials {
        let device = fixtures.devices(user, 1).await.remove(0);
        assert_eq!(status(client.get(&api).bearer_auth(&device.access).send().await), 200);
        api_calls += 1;
        let response = client
            .post(format!("{logout_base}/api/auth/logout"))
            .bearer_auth(&device.access)
            .send()
            .await;
        let sent = Instant::now();
        assert_eq!(status(response), 204);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            api_calls += 1;
            if status(client.get(&api).bearer_auth(&device.access).send().await) == 401 {
                samples.push(sent.elapsed());
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the API never refused the logged-out session"
            );
        }
    }
    // Subtract the logouts made here on this node and the first `/metrics` read.
    let asked = authd_requests(&client, &node.base).await - before - 1 - if across { 0 } else { trials as u64 };
    let place = if across {
        "logout on a second node"
    } else {
        "logout on the API's node"
    };
    summarise(
        if across {
            "api-refusal across nodes"
        } else {
            "api-refusal"
        },
        &fixtures.backend,
        samples,
        format!(
            "{trials} trials, {place}, to the API's first 401; {api_calls} API calls, {asked} requests from the API to authd"
        ),
    )
}

/// What `authd-verify` costs per verification on one core: a token verified before, a token seen the first time
/// (an Ed25519 signature check), and a token of a revoked session.
async fn verifier_costs(fixtures: &Fixtures, node: &Node, iterations: usize) -> Vec<Row> {
    let verifier = authd_verify::Verifier::start(authd_verify::Config::new(&node.base, "authd", &fixtures.backend_key))
        .await
        .unwrap();
    let (user, _) = fixtures.user().await;
    let fresh = fixtures.devices(user, (iterations / 40).clamp(10, 5_000)).await;
    let revoked = fixtures.devices(user, 1).await.remove(0);
    let client = awc::Client::default();
    let response = client
        .post(format!("{}/api/auth/logout", node.base))
        .bearer_auth(&revoked.access)
        .send()
        .await;
    assert_eq!(response.map(|response| response.status().as_u16()).unwrap_or(0), 204);
    while verifier.verify_now(&revoked.access).err() != Some(authd_verify::VerifyError::Revoked) {
        actix_web::rt::time::sleep(Duration::from_millis(1)).await;
    }
    let per_call = |started: Instant, calls: usize| started.elapsed().as_nanos() as f64 / calls as f64;
    let cached = &fresh[0].access;
    assert!(verifier.verify_now(cached).is_ok());
    let started = Instant::now();
    for _ in 0..iterations {
        assert!(verifier.verify_now(cached).is_ok());
    }
    let cached_ns = per_call(started, iterations);
    let started = Instant::now();
    for device in &fresh[1..] {
        assert!(verifier.verify_now(&device.access).is_ok());
    }
    let uncached_ns = per_call(started, fresh.len() - 1);
    let started = Instant::now();
    for _ in 0..iterations {
        assert!(verifier.verify_now(&revoked.access).is_err());
    }
    let revoked_ns = per_call(started, iterations);
    [
        ("verifier: token verified before", cached_ns, iterations),
        (
            "verifier: token seen the first time (Ed25519)",
            uncached_ns,
            fresh.len() - 1,
        ),
        ("verifier: token of a revoked session", revoked_ns, iterations),
    ]
    .into_iter()
    .map(|(scenario, nanoseconds, calls)| Row {
        scenario: scenario.to_owned(),
        backend: fixtures.backend.clone(),
        connections: 1,
        requests: calls as u64,
        errors: 0,
        requests_per_second: 1e9 / nanoseconds,
        p50_ms: nanoseconds / 1e6,
        p99_ms: 0.0,
        max_ms: 0.0,
        note: format!(
            "{:.2} us per verification, one core (p50 column: the mean)",
            nanoseconds / 1e3
        ),
    })
    .collect()
}

/// Login latency for unknown and known addresses (wrong password), interleaved.
async fn timing(fixtures: &Fixtures, node: &Node, samples: usize) -> Vec<Row> {
    let (_, known) = fixtures.user().await;
    let client = awc::Client::default();
    let mut known_samples = Vec::new();
    let mut unknown_samples = Vec::new();
    for index in 0..samples * 2 {
        let email = if index % 2 == 0 {
            known.clone()
        } else {
            format!("nobody-{}@example.com", Uuid::now_v7().simple())
        };
        let started = Instant::now();
        let response = client
            .post(format!("{}/api/auth/login", node.base))
            .send_json(&json!({"email": email, "password": "wrong password"}))
            .await;
        let elapsed = started.elapsed();
        assert_eq!(response.map(|response| response.status().as_u16()).unwrap_or(0), 401);
        if index % 2 == 0 {
            known_samples.push(elapsed)
        } else {
            unknown_samples.push(elapsed)
        }
    }
    vec![
        summarise(
            "timing known email",
            &fixtures.backend,
            known_samples,
            "wrong password, sequential".to_owned(),
        ),
        summarise(
            "timing unknown email",
            &fixtures.backend,
            unknown_samples,
            "sequential".to_owned(),
        ),
    ]
}

fn markdown(rows: &[Row]) -> String {
    let mut text =
        String::from("| scenario | backend | conns | requests | errors | req/s | p50 ms | p99 ms | max ms | note |\n");
    text.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---|\n");
    for row in rows {
        text.push_str(&format!(
            "| {} | {} | {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {} |\n",
            row.scenario,
            row.backend,
            row.connections,
            row.requests,
            row.errors,
            row.requests_per_second,
            row.p50_ms,
            row.p99_ms,
            row.max_ms,
            row.note
        ));
    }
    text
}

fn main() {
    let options = Options::parse();
    let selected: Vec<String> = if options.scenario == "all" {
        ALL.iter().map(|name| (*name).to_owned()).collect()
    } else {
        options.scenario.split(',').map(|name| name.trim().to_owned()).collect()
    };
    for name in &selected {
        assert!(
            ALL.contains(&name.as_str()),
            "unknown scenario {name}; known: {}",
            ALL.join(", ")
        );
    }
    let (connections, duration) = if options.smoke {
        (4, Duration::from_millis(500))
    } else {
        (options.connections, Duration::from_secs(options.duration))
    };
    let threads = options.threads;
    let json_path = options.json.clone();
    let rows = actix_web::rt::System::new().block_on(async move {
        let fixtures = Fixtures::create(&options).await;
        let hash_threads = options.hash_threads.map(|threads| threads.to_string());
        let server_settings: Vec<(&str, &str)> = hash_threads
            .iter()
            .map(|threads| ("PASSWORD_HASH_THREADS", threads.as_str()))
            .collect();
        let node = Node::start(&fixtures.url, &fixtures.data_dir, &server_settings);
        let backend = fixtures.backend.clone();
        let mut rows = Vec::new();
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        eprintln!("authd-bench on {backend}; load average {}", load.trim());
        for name in &selected {
            eprintln!("running {name}");
            let name = name.as_str();
            match name {
                "baseline" => {
                    let jobs = vec![
                        Job::Get {
                            path: "/health/live",
                            token: None
                        };
                        connections
                    ];
                    let (tally, elapsed) = drive(&node.base, jobs, duration, threads);
                    rows.push(row(name, &backend, connections, tally, elapsed, String::new()));
                }
                "me" | "sessions" => {
                    let (user, _) = fixtures.user().await;
                    let devices = fixtures.devices(user, connections.min(10)).await;
                    let path = if name == "me" {
                        "/api/users/me"
                    } else {
                        "/api/auth/sessions"
                    };
                    let jobs = (0..connections)
                        .map(|index| Job::Get {
                            path,
                            token: Some(devices[index % devices.len()].access.clone()),
                        })
                        .collect();
                    let before = server_latencies(&node.base, path).await;
                    let (tally, elapsed) = drive(&node.base, jobs, duration, threads);
                    let inside = server_p99(&before, &server_latencies(&node.base, path).await);
                    let note = if name == "sessions" {
                        format!("{} live sessions listed; {inside}", devices.len())
                    } else {
                        inside
                    };
                    rows.push(row(name, &backend, connections, tally, elapsed, note));
                }
                "introspect" => {
                    let (user, _) = fixtures.user().await;
                    let devices = fixtures.devices(user, connections.min(10)).await;
                    let jobs = (0..connections)
                        .map(|index| Job::Introspect {
                            key: fixtures.backend_key.clone(),
                            token: devices[index % devices.len()].access.clone(),
                        })
                        .collect();
                    let (tally, elapsed) = drive(&node.base, jobs, duration, threads);
                    rows.push(row(name, &backend, connections, tally, elapsed, "active tokens, a backend key".to_owned()));
                }
                "me-hs256" => {
                    // A second node on the same database signing with the shared secret, as earlier versions
                    // did: `me` beside the EdDSA `me` above, in one run.
                    let shared = Node::start(&fixtures.url, &fixtures.data_dir, &[("ACCESS_TOKEN_ALG", "HS256")]);
                    let (user, _) = fixtures.user().await;
                    let devices = fixtures.devices(user, connections.min(10)).await;
                    let hs256 = AccessTokens::new(&Secret::new(JWT_SECRET), "authd", Duration::from_secs(900));
                    let now = authd::clock::now();
                    let jobs = (0..connections)
                        .map(|index| Job::Get {
                            path: "/api/users/me",
                            token: Some(
                                hs256
                                    .issue(user, devices[index % devices.len()].session, now + chrono::Duration::days(1), now)
                                    .unwrap()
                                    .0,
                            ),
                        })
                        .collect();
                    let before = server_latencies(&shared.base, "/api/users/me").await;
                    let (tally, elapsed) = drive(&shared.base, jobs, duration, threads);
                    let inside = server_p99(&before, &server_latencies(&shared.base, "/api/users/me").await);
                    rows.push(row(name, &backend, connections, tally, elapsed, format!("HS256 on a second node; {inside}")));
                }
                "refresh" => {
                    let (user, _) = fixtures.user().await;
                    let devices = fixtures.devices(user, connections).await;
                    let jobs = devices
                        .into_iter()
                        .map(|device| Job::Refresh { token: device.refresh })
                        .collect();
                    let (tally, elapsed) = drive(&node.base, jobs, duration, threads);
                    rows.push(row(
                        name,
                        &backend,
                        connections,
                        tally,
                        elapsed,
                        "each connection rotates its own chain".to_owned(),
                    ));
                }
                "logout" => {
                    let per_connection = if options.smoke {
                        50
                    } else {
                        600 * options.duration as usize / connections.max(1) + 50
                    };
                    let (user, _) = fixtures.user().await;
                    let devices = fixtures.devices(user, per_connection * connections).await;
                    let jobs = devices
                        .chunks(per_connection)
                        .map(|chunk| Job::Logout {
                            tokens: chunk.iter().map(|device| device.access.clone()).collect(),
                        })
                        .collect();
                    let (tally, elapsed) = drive(&node.base, jobs, duration, threads);
                    rows.push(row(
                        name,
                        &backend,
                        connections,
                        tally,
                        elapsed,
                        "each request ends a distinct session".to_owned(),
                    ));
                }
                "login" => {
                    // The bound is measured on both sides of the logins and averaged, so a change in what the
                    // rest of the host takes from this machine during the run moves both figures alike.
                    let before = hash_bound(duration / 2, &fixtures.password_hash);
                    let (_, email) = fixtures.user().await;
                    let logins = 8;
                    let jobs = vec![Job::Login { email }; logins];
                    let (tally, elapsed) = drive(&node.base, jobs, duration, threads);
                    let after = hash_bound(duration / 2, &fixtures.password_hash);
                    let bound = (before + after) / 2.0;
                    let mut result = row(name, &backend, logins, tally, elapsed, String::new());
                    result.note = format!(
                        "hash bound {bound:.1} verifies/s on all cores ({before:.1} before, {after:.1} after); \
                         logins reach {:.0}% of it",
                        100.0 * result.requests_per_second / bound
                    );
                    rows.push(result);
                }
                "registrations" => {
                    // Each registration hashes a new password: the figure that matters is the memory left
                    // behind, which must not grow with the number of registrations.
                    let (before, _) = node.memory();
                    let connections = 4;
                    let jobs = (0..connections)
                        .map(|connection| Job::Register {
                            prefix: format!("bench-{}-{connection}", Uuid::now_v7().simple()),
                            next: 0,
                        })
                        .collect();
                    let (tally, elapsed) = drive(&node.base, jobs, duration, threads);
                    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
                    let (after, peak) = node.memory();
                    let registered = tally.latencies.len();
                    rows.push(row(
                        name,
                        &backend,
                        connections,
                        tally,
                        elapsed,
                        format!(
                            "{registered} new addresses; server RSS {} MiB before, {} MiB after (peak {} MiB)",
                            before / 1024,
                            after / 1024,
                            peak / 1024
                        ),
                    ));
                }
                "isolation" => {
                    let (_, email) = fixtures.user().await;
                    let (user, _) = fixtures.user().await;
                    // Each measured window rotates chains of its own.
                    let devices = fixtures.devices(user, 8 + 4 * 8).await;
                    let mut chains = devices[8..].chunks(8);
                    let window = duration
                        .saturating_sub(Duration::from_millis(400))
                        .max(Duration::from_millis(200));
                    let flood_size = if options.smoke { 20 } else { 200 };
                    // Flat out, the two loads fill the cores themselves, and their latency is mostly their own
                    // queueing. Paced at about the most the alternatives serve in all on this machine (they
                    // answer 250 to 1,560 authenticated requests and rotate 150 to 600 tokens a second), what
                    // the flood adds is what moves. Each load runs without the flood first, for comparison.
                    for (load, rates) in [("flat out", None), ("paced", Some((1_600.0, 600.0)))] {
                        for flooded in [false, true] {
                            let flood = flooded.then(|| {
                                let base = node.base.clone();
                                let jobs = vec![Job::Login { email: email.clone() }; flood_size];
                                std::thread::spawn(move || drive(&base, jobs, duration, 1))
                            });
                            if flooded {
                                actix_web::rt::time::sleep(Duration::from_millis(200)).await;
                            }
                            let chain = chains.next().unwrap();
                            let (me_tally, refresh_tally, elapsed) =
                                me_and_refresh(&node.base, &devices[..8], chain, window, rates);
                            let note = match flood {
                                Some(flood) => {
                                    let (flood_tally, flood_elapsed) = flood.join().unwrap();
                                    let (_, peak) = node.memory();
                                    format!(
                                        "{load}, during a flood of {flood_size} logins ({:.0}/s); server peak RSS {} MiB",
                                        flood_tally.latencies.len() as f64 / flood_elapsed.as_secs_f64(),
                                        peak / 1024
                                    )
                                }
                                None => format!("{load}, without the flood"),
                            };
                            let suffix = match (rates.is_some(), flooded) {
                                (false, false) => ", no flood",
                                (false, true) => "",
                                (true, false) => " paced, no flood",
                                (true, true) => " paced",
                            };
                            rows.push(row(
                                &format!("isolation: me{suffix}"),
                                &backend,
                                8,
                                me_tally,
                                elapsed,
                                note.clone(),
                            ));
                            rows.push(row(
                                &format!("isolation: refresh{suffix}"),
                                &backend,
                                8,
                                refresh_tally,
                                elapsed,
                                note,
                            ));
                        }
                    }
                }
                "fanout" => {
                    let trials = if options.smoke { 2 } else { 20 };
                    for sockets in if options.smoke { vec![10] } else { vec![10, 100] } {
                        rows.push(fanout(&fixtures, &node, sockets, trials).await);
                    }
                }
                "sockets" => {
                    let (users, per_user) = if options.smoke { (10, 10) } else { (1000, 10) };
                    rows.push(many_sockets(&fixtures, &node, users, per_user).await);
                }
                "cross-node" => {
                    if options.postgres_url.is_some() {
                        rows.push(cross_node(&fixtures, if options.smoke { 5 } else { 100 }, &server_settings).await);
                    } else {
                        eprintln!("cross-node needs --postgres-url: not run");
                    }
                }
                "api-refusal" => {
                    let trials = if options.smoke { 5 } else { 100 };
                    rows.push(api_refusal(&fixtures, &node, trials, false, &server_settings).await);
                    if options.postgres_url.is_some() {
                        rows.push(api_refusal(&fixtures, &node, trials, true, &server_settings).await);
                    }
                }
                "verifier" => rows.extend(verifier_costs(&fixtures, &node, if options.smoke { 2_000 } else { 200_000 }).await),
                "timing" => rows.extend(timing(&fixtures, &node, if options.smoke { 10 } else { 200 }).await),
                _ => {}
            }
        }
        drop(node);
        fixtures.remove().await;
        if let Some(threads) = &hash_threads {
            for row in &mut rows {
                row.note = format!("{}; PASSWORD_HASH_THREADS={threads}", row.note).trim_start_matches("; ").to_owned();
            }
        }
        rows
    });
    let table = markdown(&rows);
    println!("{table}");
    std::fs::write(&json_path, serde_json::to_string_pretty(&rows).unwrap()).unwrap();
    let errors: u64 = rows.iter().map(|row| row.errors).sum();
    if errors > 0 {
        eprintln!("the run had {errors} errors");
        std::process::exit(1);
    }
}
