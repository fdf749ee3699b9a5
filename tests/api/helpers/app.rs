//! Starts the real application for one test and talks to it over HTTP.

use std::collections::HashMap;

use authd::{config::Settings, startup::Application};
use reqwest::{Response, StatusCode};
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
use serde_json::{Value, json};
use uuid::Uuid;

use super::smtp::MailServer;

pub const JWT_SECRET: &str = "test-jwt-secret-that-is-at-least-32-bytes-long";
pub const OTP_SECRET: &str = "test-otp-secret-that-is-at-least-32-bytes-long";
/// Shared by every application a test starts on one database, as by the nodes of one deployment.
pub const KEY_ENCRYPTION_SECRET: &str = "test-key-encryption-secret-at-least-32-bytes";
pub const PASSWORD: &str = "correct horse battery staple";
pub const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
pub const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub mail: MailServer,
    pub database_url: String,
    pub application_state: actix_web::web::Data<authd::services::AppState>,
    /// Stops this node as SIGTERM would.
    pub shutdown: authd::startup::Shutdown,
}

/// A token pair as a test holds it.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
    pub session: String,
    pub body: Value,
}

impl Tokens {
    pub fn from_body(body: Value) -> Self {
        Self {
            access: body["access_token"].as_str().expect("access_token").to_owned(),
            refresh: body["refresh_token"].as_str().expect("refresh_token").to_owned(),
            session: body["session_id"].as_str().expect("session_id").to_owned(),
            body,
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// A fresh database: a new SQLite file, or a new PostgreSQL database when `TEST_POSTGRES_URL` is set.
pub async fn fresh_database_url() -> String {
    match std::env::var("TEST_POSTGRES_URL") {
        Ok(server_url) if !server_url.is_empty() => {
            let name = format!("authd_test_{}", Uuid::now_v7().simple());
            let server = Database::connect(&server_url)
                .await
                .expect("TEST_POSTGRES_URL does not answer");
            drop_stale_databases(&server).await;
            server
                .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                .await
                .unwrap();
            let mut url = url::Url::parse(&server_url).unwrap();
            url.set_path(&format!("/{name}"));
            url.to_string()
        }
        _ => {
            let folder = std::env::temp_dir()
                .join("authd-tests")
                .join(Uuid::now_v7().to_string());
            std::fs::create_dir_all(&folder).unwrap();
            format!("sqlite://{}?mode=rwc", folder.join("authd.db").display())
        }
    }
}

/// Test databases are not dropped when their test ends (its nodes may still hold connections), so each new
/// one drops those of earlier runs: a name carries a UUIDv7, whose first 48 bits are its creation time in
/// milliseconds, and a database older than half an hour belongs to no running test.
async fn drop_stale_databases(server: &sea_orm::DatabaseConnection) {
    const STALE_MS: u128 = 30 * 60 * 1000;
    let listing = Statement::from_string(
        DbBackend::Postgres,
        r"SELECT datname FROM pg_database WHERE datname LIKE 'authd\_test\_%'",
    );
    let Ok(rows) = server.query_all_raw(listing).await else {
        return;
    };
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    for row in rows {
        let Ok(name) = row.try_get::<String>("", "datname") else {
            continue;
        };
        let Some(created_ms) = name
            .strip_prefix("authd_test_")
            .and_then(|hex| u128::from_str_radix(hex, 16).ok())
            .map(|uuid| uuid >> 80)
        else {
            continue;
        };
        if now_ms.saturating_sub(created_ms) > STALE_MS {
            // Parallel tests may race to drop the same one; whoever loses has nothing to do.
            let _ = server
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .await;
        }
    }
}

/// Starts an application with `overrides` on top of the test defaults; the database is fresh unless
/// `DATABASE_URL` is among the overrides (two nodes sharing one database).
pub async fn spawn_app_with(overrides: &[(&str, &str)]) -> TestApp {
    spawn(overrides, MailServer::start().await).await
}

/// Another node of `first`'s deployment: the same database and the same mail relay (any node's outbox
/// sender may deliver a mail that another node queued).
/// Two applications on one PostgreSQL database, as two nodes of one deployment.
pub async fn two_nodes() -> (TestApp, TestApp) {
    assert!(
        std::env::var("TEST_POSTGRES_URL").is_ok_and(|url| !url.is_empty()),
        "two nodes share a PostgreSQL database: set TEST_POSTGRES_URL"
    );
    let first = spawn_app().await;
    let second = spawn_node_of(&first, &[]).await;
    (first, second)
}

pub async fn spawn_node_of(first: &TestApp, overrides: &[(&str, &str)]) -> TestApp {
    let mut overrides = overrides.to_vec();
    overrides.push(("DATABASE_URL", &first.database_url));
    spawn(&overrides, first.mail.clone()).await
}

async fn spawn(overrides: &[(&str, &str)], mail: MailServer) -> TestApp {
    // With RUST_LOG set, the application's log lines land in the output of the test that caused them.
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .try_init();
    }
    let data_dir = std::env::temp_dir()
        .join("authd-tests")
        .join(format!("data-{}", Uuid::now_v7()));
    let mut variables: HashMap<String, String> = HashMap::from([
        ("PORT".to_owned(), "0".to_owned()),
        ("DATA_DIR".to_owned(), data_dir.display().to_string()),
        ("JWT_ACCESS_SECRET".to_owned(), JWT_SECRET.to_owned()),
        ("KEY_ENCRYPTION_SECRET".to_owned(), KEY_ENCRYPTION_SECRET.to_owned()),
        (
            "OTP_SECRET".to_owned(),
            "test-otp-secret-that-is-at-least-32-bytes-long".to_owned(),
        ),
        ("SMTP_URL".to_owned(), format!("smtp://127.0.0.1:{}", mail.port)),
        ("RATE_LIMIT_IP_PER_MINUTE".to_owned(), "0".to_owned()),
        ("WS_CONNECTS_PER_MINUTE".to_owned(), "0".to_owned()),
        ("OTP_RESEND_COOLDOWN".to_owned(), "0".to_owned()),
        // The port is picked at start; passkeys are answered from the page the software authenticator names.
        ("WEBAUTHN_ORIGINS".to_owned(), super::passkey::ORIGIN.to_owned()),
    ]);
    for (name, value) in overrides {
        variables.insert((*name).to_owned(), (*value).to_owned());
    }
    if !variables.contains_key("DATABASE_URL") {
        variables.insert("DATABASE_URL".to_owned(), fresh_database_url().await);
    }
    let settings = Settings::from_lookup(|name| variables.get(name).cloned()).expect("test settings are valid");
    let database_url = settings.database_url.clone();
    let application = Application::build(settings).await.expect("the application starts");
    let port = application.port();
    let application_state = application.state();
    let shutdown = application.shutdown();
    actix_web::rt::spawn(application.run_until_stopped());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        client: reqwest::Client::builder().user_agent(FIREFOX).build().unwrap(),
        mail,
        database_url,
        application_state,
        shutdown,
    }
}

pub fn unique_email() -> String {
    format!("user-{}@example.com", Uuid::now_v7().simple())
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client.post(self.url(path)).json(body).send().await.unwrap()
    }

    pub async fn post_json_as(&self, path: &str, body: &Value, user_agent: &str) -> Response {
        self.client
            .post(self.url(path))
            .header("user-agent", user_agent)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn register(&self, email: &str, password: &str) -> Response {
        self.post_json("/api/auth/register", &json!({"email": email, "password": password}))
            .await
    }

    /// Verify-email without a registration handle: proves the address, sets no password.
    pub async fn verify_email(&self, email: &str, code: &str) -> Response {
        self.post_json("/api/auth/verify-email", &json!({"email": email, "code": code}))
            .await
    }

    /// Verify-email as the client that registered: with the handle its registration answered.
    pub async fn verify_email_with(&self, email: &str, code: &str, registration: &str) -> Response {
        self.post_json(
            "/api/auth/verify-email",
            &json!({"email": email, "code": code, "registration": registration}),
        )
        .await
    }

    /// Registers `email` with `password` and answers the registration's handle.
    pub async fn register_for_handle(&self, email: &str, password: &str) -> String {
        let response = self.register(email, password).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], "verification_sent");
        body["registration"].as_str().expect("a registration handle").to_owned()
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post_json("/api/auth/login", &json!({"email": email, "password": password}))
            .await
    }

    pub async fn login_as(&self, email: &str, password: &str, user_agent: &str) -> Tokens {
        let response = self
            .post_json_as(
                "/api/auth/login",
                &json!({"email": email, "password": password}),
                user_agent,
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        Tokens::from_body(response.json().await.unwrap())
    }

    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.post_json("/api/auth/refresh", &json!({"refresh_token": refresh_token}))
            .await
    }

    /// Runs the `authd` binary with `arguments` on this application's database, as an operator does; answers
    /// its standard output, after asserting it succeeded.
    pub fn command_line(&self, arguments: &[&str]) -> String {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_authd"))
            .env_clear()
            .env("DATABASE_URL", &self.database_url)
            .env(
                "DATA_DIR",
                std::env::temp_dir()
                    .join("authd-tests")
                    .join(Uuid::now_v7().to_string()),
            )
            .env("KEY_ENCRYPTION_SECRET", KEY_ENCRYPTION_SECRET)
            .env("RUST_LOG", "error")
            .args(arguments)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    }

    /// A live backend key, known to this application at once (as it would be within 5 s).
    pub async fn backend_key(&self) -> String {
        let state = &self.application_state;
        let (_, key) = authd::services::backend_keys::create(state.store.connection(), "notes-api", chrono::Utc::now())
            .await
            .unwrap();
        state.backend_keys.reload(state.store.connection()).await.unwrap();
        key
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn get_authed(&self, path: &str, access_token: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap()
    }

    /// The ids of the caller's sessions, as `GET /api/auth/sessions` lists them.
    pub async fn session_ids(&self, access_token: &str) -> Vec<String> {
        let listed: Value = self
            .get_authed("/api/auth/sessions", access_token)
            .await
            .json()
            .await
            .unwrap();
        listed["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|session| session["id"].as_str().unwrap().to_owned())
            .collect()
    }

    pub async fn post_authed(&self, path: &str, access_token: &str, body: Option<&Value>) -> Response {
        let request = self.client.post(self.url(path)).bearer_auth(access_token);
        let request = match body {
            Some(body) => request.json(body),
            None => request,
        };
        request.send().await.unwrap()
    }

    pub async fn delete_authed(&self, path: &str, access_token: &str, body: Option<&Value>) -> Response {
        let request = self.client.delete(self.url(path)).bearer_auth(access_token);
        let request = match body {
            Some(body) => request.json(body),
            None => request,
        };
        request.send().await.unwrap()
    }

    /// Registers `email`, reads the code from the mail and verifies it: a signed-in, verified user.
    pub async fn signed_up_user(&self, email: &str) -> Tokens {
        let already = self.mail.mails_to(email).await.len();
        let handle = self.register_for_handle(email, PASSWORD).await;
        let code = self
            .mail
            .wait_for_mail(email, already)
            .await
            .code()
            .expect("a code in the mail");
        let response = self.verify_email_with(email, &code, &handle).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["password_set"], true);
        Tokens::from_body(body)
    }

    /// A verified user signed in on a fresh device.
    pub async fn user_with_session(&self) -> (String, Tokens) {
        let email = unique_email();
        let tokens = self.signed_up_user(&email).await;
        (email, tokens)
    }
}

/// Asserts a problem+json answer with `status` and `code`, and answers its body.
pub async fn assert_problem(response: Response, status: u16, code: &str) -> Value {
    assert_eq!(
        response.status().as_u16(),
        status,
        "unexpected status for expected code {code}"
    );
    let content_type = response
        .headers()
        .get("content-type")
        .map(|value| value.to_str().unwrap().to_owned());
    assert_eq!(content_type.as_deref(), Some("application/problem+json"));
    if status == 401 {
        assert!(
            response
                .headers()
                .get("www-authenticate")
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
    }
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], code, "body: {body}");
    assert_eq!(body["status"], status);
    assert_eq!(body["type"], "about:blank");
    assert!(body["title"].is_string() && body["detail"].is_string());
    body
}
