use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{
    TestApp,
    app::{PASSWORD, assert_problem, unique_email},
    spawn_app, spawn_app_with,
};

fn retry_after(response: &reqwest::Response) -> u64 {
    response.headers()["retry-after"].to_str().unwrap().parse().unwrap()
}

#[actix_web::test]
async fn the_ip_budget_is_shared_and_its_retry_after_is_honest() {
    let app = spawn_app_with(&[("RATE_LIMIT_IP_PER_MINUTE", "60")]).await;
    // Malformed bodies still spend the budget: the limit comes before any other work.
    for _ in 0..60 {
        assert_eq!(app.post_json("/api/auth/register", &json!({})).await.status(), 422);
    }
    let limited = app.login(&unique_email(), PASSWORD).await;
    let wait = retry_after(&limited);
    assert!((1..=2).contains(&wait), "Retry-After {wait}");
    assert_problem(limited, 429, "rate_limited").await;
    assert_problem(
        app.post_json("/api/auth/otp/request", &json!({})).await,
        429,
        "rate_limited",
    )
    .await;
    // Authenticated and operational endpoints are not in this budget.
    assert_eq!(
        app.client.get(app.url("/health/live")).send().await.unwrap().status(),
        200
    );

    tokio::time::sleep(Duration::from_secs(wait)).await;
    assert_eq!(
        app.post_json("/api/auth/register", &json!({})).await.status(),
        422,
        "the budget refilled as promised"
    );
}

#[actix_web::test]
async fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
    let app = spawn_app_with(&[("RATE_LIMIT_IP_PER_MINUTE", "2"), ("TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    let from = |client: &'static str| {
        app.client
            .post(app.url("/api/auth/register"))
            .header("x-forwarded-for", format!("203.0.113.9, {client}"))
            .json(&json!({}))
    };
    for _ in 0..2 {
        assert_eq!(from("198.51.100.1").send().await.unwrap().status(), 422);
    }
    assert_eq!(from("198.51.100.1").send().await.unwrap().status(), 429);
    // The right-most untrusted address is the client: another client has its own budget.
    assert_eq!(from("198.51.100.2").send().await.unwrap().status(), 422);

    let untrusted = spawn_app_with(&[("RATE_LIMIT_IP_PER_MINUTE", "2")]).await;
    for client in ["198.51.100.1", "198.51.100.2"] {
        let response = untrusted
            .client
            .post(untrusted.url("/api/auth/register"))
            .header("x-forwarded-for", client)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 422);
    }
    let spoofed = untrusted
        .client
        .post(untrusted.url("/api/auth/register"))
        .header("x-forwarded-for", "198.51.100.3")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(spoofed.status(), 429, "a header from an untrusted peer changes nothing");
}

async fn fail_logins(app: &TestApp, email: &str, times: usize) {
    for _ in 0..times {
        assert_problem(
            app.login(email, "a wrong password here").await,
            401,
            "invalid_credentials",
        )
        .await;
    }
}

#[actix_web::test]
async fn back_off_locks_an_existing_and_an_unknown_address_alike() {
    let app = spawn_app_with(&[("LOGIN_LOCKOUT_THRESHOLD", "3")]).await;
    let (email, _) = app.user_with_session().await;
    let unknown = unique_email();
    for address in [&email, &unknown] {
        fail_logins(&app, address, 3).await;
        let locked = app.login(address, PASSWORD).await;
        let wait = retry_after(&locked);
        assert!((50..=60).contains(&wait), "Retry-After {wait}");
        assert_problem(locked, 429, "account_locked").await;
    }
    // Locked attempts do not count, so they cannot stretch the lock.
    for _ in 0..5 {
        assert_eq!(app.login(&email, "a wrong password here").await.status(), 429);
    }
    assert!(retry_after(&app.login(&email, PASSWORD).await) <= 60);
    // Other addresses are untouched.
    let (other, _) = app.user_with_session().await;
    assert_eq!(app.login(&other, PASSWORD).await.status(), StatusCode::OK);
}

#[actix_web::test]
async fn each_lock_after_the_first_doubles() {
    use sea_orm::{ConnectionTrait, Statement};
    let app = spawn_app_with(&[("LOGIN_LOCKOUT_THRESHOLD", "2")]).await;
    let email = unique_email();
    fail_logins(&app, &email, 2).await;
    let database = app.application_state.store.connection();
    let backend = database.get_database_backend();
    // Time passes: the first lock ends.
    let end_lock = || {
        Statement::from_string(
            backend,
            "UPDATE address_throttles SET locked_until_ms = 1 WHERE key LIKE 'login:%'".to_owned(),
        )
    };
    database.execute_raw(end_lock()).await.unwrap();
    fail_logins(&app, &email, 1).await;
    let wait = retry_after(&app.login(&email, PASSWORD).await);
    assert!((110..=120).contains(&wait), "second lock Retry-After {wait}");
    database.execute_raw(end_lock()).await.unwrap();
    fail_logins(&app, &email, 1).await;
    let wait = retry_after(&app.login(&email, PASSWORD).await);
    assert!((230..=240).contains(&wait), "third lock Retry-After {wait}");
}

#[actix_web::test]
async fn a_success_resets_the_count() {
    let app = spawn_app_with(&[("LOGIN_LOCKOUT_THRESHOLD", "3")]).await;
    let (email, _) = app.user_with_session().await;
    fail_logins(&app, &email, 2).await;
    assert_eq!(app.login(&email, PASSWORD).await.status(), StatusCode::OK);
    fail_logins(&app, &email, 2).await;
    assert_eq!(app.login(&email, PASSWORD).await.status(), StatusCode::OK);
}

#[actix_web::test]
async fn wrong_current_passwords_count_as_failed_logins() {
    let app = spawn_app_with(&[("LOGIN_LOCKOUT_THRESHOLD", "2")]).await;
    let (email, tokens) = app.user_with_session().await;
    for _ in 0..2 {
        let body = json!({"current_password": "not it at all", "new_password": "a brand new passphrase"});
        assert_problem(
            app.post_authed("/api/users/me/password", &tokens.access, Some(&body))
                .await,
            403,
            "invalid_password",
        )
        .await;
    }
    assert_problem(app.login(&email, PASSWORD).await, 429, "account_locked").await;
}

#[actix_web::test]
async fn a_burst_of_guesses_learns_no_more_answers_than_the_threshold_allows() {
    let threshold = 3;
    let app = spawn_app_with(&[("LOGIN_LOCKOUT_THRESHOLD", "3")]).await;
    let (email, _) = app.user_with_session().await;
    let wrong = "a wrong password here";
    // Logins for unknown addresses keep the hashing threads busy first, so every guess below is checked
    // against the lock before the first of them is hashed: a check before the hash alone lets all through.
    let strangers: Vec<String> = (0..40).map(|_| unique_email()).collect();
    let filler = futures_util::future::join_all(strangers.iter().map(|stranger| app.login(stranger, wrong)));
    let guesses = async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        futures_util::future::join_all((0..20).map(|_| app.login(&email, wrong))).await
    };
    let right = async {
        tokio::time::sleep(Duration::from_millis(60)).await;
        app.login(&email, PASSWORD).await
    };
    let (_, guesses, right) = tokio::join!(filler, guesses, right);

    let mut answered = Vec::new();
    for guess in guesses {
        let status = guess.status().as_u16();
        let body: serde_json::Value = guess.json().await.unwrap();
        answered.push((status, body["code"].as_str().unwrap_or_default().to_owned()));
    }
    let told = answered
        .iter()
        .filter(|(status, code)| *status == 401 && code == "invalid_credentials")
        .count();
    let locked = answered
        .iter()
        .filter(|(status, code)| *status == 429 && code == "account_locked")
        .count();
    // Failures that finish at the same moment on different hashing threads may both be told before the
    // lock is written; no more than that.
    let hashing_threads = std::thread::available_parallelism().map_or(2, usize::from);
    assert!(told >= threshold, "{answered:?}");
    assert!(
        told < threshold + hashing_threads,
        "{told} guesses were answered: {answered:?}"
    );
    assert_eq!(told + locked, answered.len(), "{answered:?}");
    // The right password, checked before the lock and hashed after it, signs nobody in.
    assert_problem(right, 429, "account_locked").await;
    assert_problem(app.login(&email, PASSWORD).await, 429, "account_locked").await;
}

#[actix_web::test]
async fn pruning_keeps_a_recent_run_of_failures_and_forgets_a_quiet_one() {
    use sea_orm::{ConnectionTrait, Statement};
    let app = spawn_app_with(&[("LOGIN_LOCKOUT_THRESHOLD", "3")]).await;
    let (email, _) = app.user_with_session().await;
    fail_logins(&app, &email, 2).await;
    authd::services::retention::prune(&app.application_state).await.unwrap();
    fail_logins(&app, &email, 1).await;
    assert_problem(app.login(&email, PASSWORD).await, 429, "account_locked").await;

    // A day and more later, with the lock long over, the address starts afresh.
    let database = app.application_state.store.connection();
    let two_days_ago = chrono::Utc::now().timestamp_millis() - 2 * 86_400_000;
    database
        .execute_raw(Statement::from_string(
            database.get_database_backend(),
            format!("UPDATE address_throttles SET locked_until_ms = {two_days_ago}, last_failure_ms = {two_days_ago}"),
        ))
        .await
        .unwrap();
    authd::services::retention::prune(&app.application_state).await.unwrap();
    let left = database
        .query_one_raw(Statement::from_string(
            database.get_database_backend(),
            "SELECT COUNT(*) AS count FROM address_throttles WHERE key LIKE 'login:%'".to_owned(),
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "count")
        .unwrap();
    assert_eq!(left, 0);
    fail_logins(&app, &email, 2).await;
    assert_eq!(app.login(&email, PASSWORD).await.status(), StatusCode::OK);
}

#[actix_web::test]
async fn wrong_codes_lock_the_address_and_a_resend_does_not_reset_the_count() {
    let app = spawn_app().await;
    let email = unique_email();
    app.register(&email, PASSWORD).await;
    let mut code = app.mail.wait_for_mail(&email, 0).await.code().unwrap();
    let wrong = |code: &str| format!("{}{}", (code.as_bytes()[0] - b'0' + 1) % 10, &code[1..]);
    // Three codes, five wrong tries each: 15 = 3 x OTP_MAX_ATTEMPTS in a row.
    for round in 0..3 {
        for _ in 0..5 {
            assert_eq!(app.verify_email(&email, &wrong(&code)).await.status(), 400);
        }
        if round < 2 {
            let before = app.mail.mails_to(&email).await.len();
            app.post_json(
                "/api/auth/otp/request",
                &json!({"email": email, "purpose": "verify_email"}),
            )
            .await;
            code = app.mail.wait_for_mail(&email, before).await.code().unwrap();
        }
    }
    let before = app.mail.mails_to(&email).await.len();
    app.post_json(
        "/api/auth/otp/request",
        &json!({"email": email, "purpose": "verify_email"}),
    )
    .await;
    app.mail.assert_no_new_mail(&email, before).await;
    assert_problem(app.verify_email(&email, &code).await, 429, "account_locked").await;
}

#[actix_web::test]
async fn code_mail_is_limited_to_one_per_cooldown() {
    let app = spawn_app_with(&[("OTP_RESEND_COOLDOWN", "60")]).await;
    let (email, _) = app.user_with_session().await;
    // Parallel requests take the one slot between them.
    let body = json!({"email": email, "purpose": "login"});
    let requests = (0..5).map(|_| app.post_json("/api/auth/otp/request", &body));
    for response in futures_util::future::join_all(requests).await {
        assert_eq!(response.status(), StatusCode::ACCEPTED);
    }
    app.mail.wait_for_subject(&email, "Your sign-in code").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.mail.count_subject(&email, "Your sign-in code").await, 1);
    // Each purpose has its own cooldown.
    app.post_json(
        "/api/auth/otp/request",
        &json!({"email": email, "purpose": "password_reset"}),
    )
    .await;
    app.mail.wait_for_subject(&email, "Your password reset code").await;
}

/// Status, body and the headers a client could compare.
async fn observable(response: reqwest::Response) -> (u16, String, Vec<(String, String)>) {
    let status = response.status().as_u16();
    let mut headers: Vec<(String, String)> = response
        .headers()
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "date" | "content-length"))
        .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_owned()))
        .collect();
    headers.sort();
    let mut body = response.text().await.unwrap();
    // A registration's handle is fresh random every time: only its shape can be compared.
    if let Ok(mut parsed) = serde_json::from_str::<serde_json::Value>(&body)
        && let Some(handle) = parsed.get_mut("registration")
    {
        let well_formed = handle.as_str().is_some_and(|text| {
            text.len() == 43
                && text
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
        });
        assert!(well_formed, "{handle}");
        *handle = serde_json::Value::from("<handle>");
        body = parsed.to_string();
    }
    (status, body, headers)
}

/// A request body for an address.
type BodyFor = Box<dyn Fn(&str) -> serde_json::Value>;

#[actix_web::test]
async fn existing_and_unknown_addresses_get_identical_answers() {
    let app = spawn_app().await;
    let (known, _) = app.user_with_session().await;
    let unknown = unique_email();
    let requests: [(&str, BodyFor); 5] = [
        (
            "/api/auth/register",
            Box::new(|email| json!({"email": email, "password": "some other passphrase"})),
        ),
        (
            "/api/auth/login",
            Box::new(|email| json!({"email": email, "password": "a wrong password here"})),
        ),
        (
            "/api/auth/otp/request",
            Box::new(|email| json!({"email": email, "purpose": "login"})),
        ),
        (
            "/api/auth/otp/request",
            Box::new(|email| json!({"email": email, "purpose": "password_reset"})),
        ),
        (
            "/api/auth/password/reset",
            Box::new(|email| json!({"email": email, "code": "123456", "new_password": "some other passphrase"})),
        ),
    ];
    for (path, body) in requests {
        let for_known = observable(app.post_json(path, &body(&known)).await).await;
        let for_unknown = observable(app.post_json(path, &body(&unknown)).await).await;
        assert_eq!(for_known, for_unknown, "{path} tells the addresses apart");
    }
}

#[actix_web::test]
async fn registration_answers_while_smtp_is_down_and_the_code_arrives_when_it_returns() {
    let app = spawn_app().await;
    app.mail.stop().await;
    let email = unique_email();
    assert_eq!(app.register(&email, PASSWORD).await.status(), StatusCode::ACCEPTED);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(app.mail.mails_to(&email).await.is_empty());
    app.mail.resume().await;
    let code = app.mail.wait_for_mail(&email, 0).await.code().unwrap();
    assert_eq!(app.verify_email(&email, &code).await.status(), StatusCode::OK);
    app.mail.assert_no_new_mail(&email, 1).await;
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[actix_web::test]
async fn the_outbox_survives_a_crash_and_a_restart() {
    use crate::helpers::app::{JWT_SECRET, KEY_ENCRYPTION_SECRET, OTP_SECRET, fresh_database_url};
    // A node whose relay is down takes the registration, then dies without a chance to clean up.
    let database_url = fresh_database_url().await;
    let port = free_port();
    let data_dir = std::env::temp_dir()
        .join("authd-tests")
        .join(uuid::Uuid::now_v7().to_string());
    let mut crashed = tokio::process::Command::new(env!("CARGO_BIN_EXE_authd"))
        .env_clear()
        .env("PORT", port.to_string())
        .env("DATABASE_URL", &database_url)
        .env("DATA_DIR", &data_dir)
        .env("SMTP_URL", format!("smtp://127.0.0.1:{}", free_port()))
        .env("JWT_ACCESS_SECRET", JWT_SECRET)
        .env("OTP_SECRET", OTP_SECRET)
        .env("KEY_ENCRYPTION_SECRET", KEY_ENCRYPTION_SECRET)
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while client.get(format!("{base}/health/live")).send().await.is_err() {
        assert!(std::time::Instant::now() < deadline, "the first node did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let email = unique_email();
    let response = client
        .post(format!("{base}/api/auth/register"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    crashed.kill().await.unwrap();

    let restarted = spawn_app_with(&[("DATABASE_URL", &database_url)]).await;
    let code = restarted.mail.wait_for_mail(&email, 0).await.code().unwrap();
    assert_eq!(restarted.verify_email(&email, &code).await.status(), StatusCode::OK);
}

#[actix_web::test]
async fn every_answer_carries_the_security_headers() {
    let app = spawn_app().await;
    let (_, tokens) = app.user_with_session().await;
    let responses = [
        app.client.get(app.url("/health/live")).send().await.unwrap(),
        app.get_authed("/api/users/me", &tokens.access).await,
        app.login(&unique_email(), PASSWORD).await,
        app.client.get(app.url("/")).send().await.unwrap(),
    ];
    for response in &responses {
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        assert_eq!(response.headers()["referrer-policy"], "no-referrer");
    }
    assert_eq!(responses[1].headers()["cache-control"], "no-store");
    let policy = responses[3].headers()["content-security-policy"].to_str().unwrap();
    for directive in ["default-src 'none'", "script-src 'self'", "frame-ancestors 'none'"] {
        assert!(policy.contains(directive), "{policy}");
    }
    assert!(!policy.contains("unsafe-inline"));
}

#[actix_web::test]
async fn cors_answers_allowed_origins_only() {
    let app = spawn_app().await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/api/auth/login"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let allowed = preflight("http://localhost:5000").await.unwrap();
    assert_eq!(allowed.status(), 204);
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "http://localhost:5000"
    );
    assert_eq!(allowed.headers()["access-control-allow-credentials"], "true");
    assert_problem(
        preflight("https://evil.example").await.unwrap(),
        403,
        "origin_not_allowed",
    )
    .await;
    let simple = app
        .client
        .get(app.url("/health/live"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(simple.headers().get("access-control-allow-origin").is_none());
}

/// Behind a proxy that appends `ip:port`, `[v6]:port` or `unknown`, a forged left-hand entry must not pick the
/// budget; and addresses of one IPv6 /64 share one budget.
#[actix_web::test]
async fn forged_forwarded_entries_and_rotated_ipv6_addresses_share_one_budget() {
    let app = spawn_app_with(&[("RATE_LIMIT_IP_PER_MINUTE", "2"), ("TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    let send = |forwarded: String| {
        app.client
            .post(app.url("/api/auth/register"))
            .header("x-forwarded-for", forwarded)
            .json(&json!({}))
            .send()
    };
    for (appended, label) in [
        ("198.51.100.7:41234", "ip:port"),
        ("[2001:db8::7]:443", "[v6]:port"),
        ("unknown", "unknown"),
    ] {
        let statuses: Vec<u16> =
            futures_util::future::join_all((0..3).map(|forged| send(format!("203.0.113.{forged}, {appended}"))))
                .await
                .into_iter()
                .map(|response| response.unwrap().status().as_u16())
                .collect();
        assert_eq!(
            statuses.iter().filter(|status| **status == 429).count(),
            1,
            "{label}: {statuses:?}"
        );
    }
    let rotated: Vec<u16> = futures_util::future::join_all((1..=3).map(|host| send(format!("2001:db8:5:6::{host}"))))
        .await
        .into_iter()
        .map(|response| response.unwrap().status().as_u16())
        .collect();
    assert_eq!(
        rotated.iter().filter(|status| **status == 429).count(),
        1,
        "{rotated:?}"
    );
}
