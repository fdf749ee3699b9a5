//! Authenticator apps (TOTP), recovery codes, step-up and the sign-in challenges they make, through the real
//! endpoints. Codes are computed here from the secret the enrolment answers, as an authenticator app would.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use reqwest::StatusCode;
use serde_json::{Value, json};
use totp_rs::{Algorithm, Secret, TOTP};

use crate::helpers::{
    TestApp,
    app::{PASSWORD, Tokens, assert_problem},
    spawn_app, spawn_app_with,
};

/// An authenticator app holding one account's secret.
struct Authenticator(TOTP);

impl Authenticator {
    fn new(base32: &str) -> Self {
        let secret = Secret::Encoded(base32.to_owned()).to_bytes().unwrap();
        Self(TOTP::new_unchecked(
            Algorithm::SHA1,
            6,
            0,
            30,
            secret,
            None,
            String::new(),
        ))
    }

    /// The code `offset` steps from now.
    fn code(&self, offset: i64) -> String {
        let now = i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()).unwrap();
        self.0.generate(u64::try_from(now + offset * 30).unwrap())
    }
}

/// Waits while the current 30-second step is about to end, so a code computed now is of the step the server
/// sees too.
async fn settled_step() {
    let second = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() % 30;
    if second >= 26 {
        tokio::time::sleep(Duration::from_secs(31 - second)).await;
    }
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

async fn enrol(app: &TestApp, access: &str) -> (Authenticator, Vec<String>) {
    let response = app.post_authed("/api/users/me/mfa/totp", access, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let enrolment: Value = response.json().await.unwrap();
    let secret = enrolment["secret"].as_str().unwrap();
    let uri = enrolment["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/authd:"), "{uri}");
    assert!(
        uri.contains(&format!("secret={secret}")) && uri.contains("issuer=authd"),
        "{uri}"
    );
    let qr = enrolment["qr_code"].as_str().unwrap();
    let svg = base64::engine::general_purpose::STANDARD
        .decode(qr.strip_prefix("data:image/svg+xml;base64,").unwrap())
        .unwrap();
    assert!(String::from_utf8(svg).unwrap().contains("<svg"));
    let authenticator = Authenticator::new(secret);
    settled_step().await;
    let response = app
        .post_authed(
            "/api/users/me/mfa/totp/confirm",
            access,
            Some(&json!({"code": authenticator.code(0)})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user"]["mfa"]["totp"], true);
    let codes: Vec<String> = body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|code| code.as_str().unwrap().to_owned())
        .collect();
    (authenticator, codes)
}

/// A password sign-in of an account with an app: the challenge's id.
async fn challenge(app: &TestApp, email: &str, methods: Value) -> String {
    let response = app.login(email, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["mfa_required"], true, "{body}");
    assert_eq!(body["methods"], methods);
    assert!(body.get("access_token").is_none());
    body["challenge_id"].as_str().unwrap().to_owned()
}

async fn answer(app: &TestApp, challenge: &str, method: &str, code: &str) -> reqwest::Response {
    app.post_json(
        "/api/auth/login/verify",
        &json!({"challenge_id": challenge, "method": method, "code": code}),
    )
    .await
}

async fn factors(app: &TestApp, access: &str) -> Value {
    let response = app.get_authed("/api/users/me/mfa", access).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

#[actix_web::test]
async fn an_authenticator_app_is_on_only_after_a_confirmed_code() {
    let app = spawn_app().await;
    let (email, tokens) = app.user_with_session().await;
    let response = app.post_authed("/api/users/me/mfa/totp", &tokens.access, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let secret = response.json::<Value>().await.unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    // Pending: sign-in still takes the password alone, and the account says the app is off.
    assert_eq!(app.login(&email, PASSWORD).await.status(), StatusCode::OK);
    assert_eq!(
        factors(&app, &tokens.access).await,
        json!({"email_otp": false, "totp": false, "recovery_codes_left": 0, "passkeys": 0})
    );
    let wrong = app
        .post_authed(
            "/api/users/me/mfa/totp/confirm",
            &tokens.access,
            Some(&json!({"code": "000000"})),
        )
        .await;
    assert_problem(wrong, 400, "otp_invalid").await;

    // The secret is sealed at rest: neither its base32 nor its bytes are in the row.
    let raw = Secret::Encoded(secret.clone()).to_bytes().unwrap();
    let stored: Vec<u8> = {
        use sea_orm::EntityTrait;
        let state = &app.application_state;
        let row = entity::totp_factor::Entity::find()
            .one(state.store.connection())
            .await
            .unwrap()
            .unwrap();
        row.secret.into_bytes()
    };
    assert!(!stored.windows(secret.len()).any(|window| window == secret.as_bytes()));
    assert!(!stored.windows(raw.len()).any(|window| window == raw.as_slice()));

    let authenticator = Authenticator::new(&secret);
    settled_step().await;
    let response = app
        .post_authed(
            "/api/users/me/mfa/totp/confirm",
            &tokens.access,
            Some(&json!({"code": authenticator.code(0)})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let codes = body["recovery_codes"].as_array().unwrap();
    assert_eq!(codes.len(), 10);
    assert!(codes.iter().all(|code| code.as_str().unwrap().len() == 11));
    assert_eq!(
        factors(&app, &tokens.access).await,
        json!({"email_otp": false, "totp": true, "recovery_codes_left": 10, "passkeys": 0})
    );
    app.mail
        .wait_for_subject(&email, "An authenticator app was added to your account")
        .await;
    let again = app.post_authed("/api/users/me/mfa/totp", &tokens.access, None).await;
    assert_problem(again, 409, "totp_already_enabled").await;
    let me: Value = app
        .get_authed("/api/users/me", &tokens.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["mfa"]["totp"], true);
}

#[actix_web::test]
async fn sign_in_takes_an_app_code_once_with_one_step_of_drift() {
    let app = spawn_app().await;
    let (email, tokens) = app.user_with_session().await;
    let (authenticator, _) = enrol(&app, &tokens.access).await;
    let methods = json!(["totp", "recovery_code"]);

    // The confirmation used this step's code: it does not sign in again (a replay in its window).
    let first = challenge(&app, &email, methods.clone()).await;
    let replay = answer(&app, &first, "totp", &authenticator.code(0)).await;
    assert_problem(replay, 400, "otp_invalid").await;
    // Two steps ahead is outside the drift.
    let far = answer(&app, &first, "totp", &authenticator.code(2)).await;
    assert_problem(far, 400, "otp_invalid").await;
    // The method must be one the challenge offers.
    let mailed = answer(&app, &first, "email_otp", "123456").await;
    assert_problem(mailed, 400, "challenge_invalid").await;
    // The next step's code is within the drift.
    let response = answer(&app, &first, "totp", &authenticator.code(1)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let signed_in = Tokens::from_body(response.json().await.unwrap());
    let claims = claims_of(&signed_in.access);
    assert_eq!(claims["amr"], json!(["pwd", "otp", "mfa"]));
    let auth_time = claims["auth_time"].as_i64().unwrap();
    assert!((claims["iat"].as_i64().unwrap() - auth_time).abs() <= 1);
    // The challenge is used up, and so is that step.
    let again = answer(&app, &first, "totp", &authenticator.code(1)).await;
    assert_problem(again, 400, "challenge_invalid").await;
    let second = challenge(&app, &email, methods).await;
    let replay = answer(&app, &second, "totp", &authenticator.code(1)).await;
    assert_problem(replay, 400, "otp_invalid").await;
    // A refreshed token says the same of how the session was authenticated.
    let refreshed: Value = app.refresh(&signed_in.refresh).await.json().await.unwrap();
    let claims = claims_of(refreshed["access_token"].as_str().unwrap());
    assert_eq!(claims["amr"], json!(["pwd", "otp", "mfa"]));
    assert_eq!(claims["auth_time"].as_i64(), Some(auth_time));
}

#[actix_web::test]
async fn two_parallel_sign_ins_with_one_app_code_make_one_session() {
    let app = spawn_app().await;
    let (email, tokens) = app.user_with_session().await;
    let (authenticator, _) = enrol(&app, &tokens.access).await;
    let methods = json!(["totp", "recovery_code"]);
    let challenges = [
        challenge(&app, &email, methods.clone()).await,
        challenge(&app, &email, methods).await,
    ];
    let code = authenticator.code(1);
    let (left, right) = tokio::join!(
        answer(&app, &challenges[0], "totp", &code),
        answer(&app, &challenges[1], "totp", &code)
    );
    let mut statuses = [left.status().as_u16(), right.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 400]);
}

#[actix_web::test]
async fn a_recovery_code_works_once_even_in_parallel_and_a_new_set_kills_the_old() {
    let app = spawn_app().await;
    let (email, tokens) = app.user_with_session().await;
    let (_, codes) = enrol(&app, &tokens.access).await;
    let methods = json!(["totp", "recovery_code"]);
    let challenges = [
        challenge(&app, &email, methods.clone()).await,
        challenge(&app, &email, methods.clone()).await,
    ];
    // Typed in capitals and without the hyphen: the same code.
    let typed = codes[0].replace('-', "").to_uppercase();
    let (left, right) = tokio::join!(
        answer(&app, &challenges[0], "recovery_code", &codes[0]),
        answer(&app, &challenges[1], "recovery_code", &typed)
    );
    let mut statuses = [left.status().as_u16(), right.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 400]);
    assert_eq!(factors(&app, &tokens.access).await["recovery_codes_left"], 9);
    let mail = app
        .mail
        .wait_for_subject(&email, "A recovery code of yours was used")
        .await;
    assert!(mail.text().contains("Codes left: 9"), "{}", mail.text());

    // A new set: the old codes stop working, the new ones work.
    let response = app
        .post_authed("/api/users/me/mfa/recovery-codes", &tokens.access, None)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let fresh: Value = response.json().await.unwrap();
    let fresh = fresh["recovery_codes"].as_array().unwrap();
    assert_eq!(fresh.len(), 10);
    assert_eq!(factors(&app, &tokens.access).await["recovery_codes_left"], 10);
    let old = challenge(&app, &email, methods.clone()).await;
    assert_problem(answer(&app, &old, "recovery_code", &codes[1]).await, 400, "otp_invalid").await;
    let response = answer(&app, &old, "recovery_code", fresh[0].as_str().unwrap()).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[actix_web::test]
async fn wrong_app_codes_lock_the_second_factor_on_the_mailed_codes_schedule() {
    let app = spawn_app_with(&[("OTP_MAX_ATTEMPTS", "2")]).await;
    let (email, tokens) = app.user_with_session().await;
    let (authenticator, _) = enrol(&app, &tokens.access).await;
    let methods = json!(["totp", "recovery_code"]);
    let id = challenge(&app, &email, methods).await;
    // 3 x OTP_MAX_ATTEMPTS wrong codes in a row, of either kind, lock the account's second factor.
    for attempt in 0..6 {
        let (method, code) = if attempt % 2 == 0 {
            ("totp", "000000")
        } else {
            ("recovery_code", "aaaaa-aaaaa")
        };
        assert_problem(answer(&app, &id, method, code).await, 400, "otp_invalid").await;
    }
    let locked = answer(&app, &id, "totp", &authenticator.code(1)).await;
    assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(locked.headers().contains_key("retry-after"));
    assert_problem(locked, 429, "account_locked").await;
}

#[actix_web::test]
async fn a_mailed_code_sign_in_with_an_app_on_asks_for_the_app() {
    let app = spawn_app().await;
    let (email, tokens) = app.user_with_session().await;
    let (authenticator, _) = enrol(&app, &tokens.access).await;
    let before = app.mail.count_subject(&email, "Your sign-in code").await;
    let requested = app
        .post_json("/api/auth/otp/request", &json!({"email": email, "purpose": "login"}))
        .await;
    assert_eq!(requested.status(), StatusCode::ACCEPTED);
    let code = app
        .mail
        .wait_for_new_subject(&email, "Your sign-in code", before)
        .await
        .code()
        .unwrap();
    let response = app
        .post_json("/api/auth/otp/login", &json!({"email": email, "code": code}))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["mfa_required"], true,
        "the mailed code alone must not sign in: {body}"
    );
    assert_eq!(body["methods"], json!(["totp", "recovery_code"]));
    assert!(body.get("access_token").is_none());
    let response = answer(
        &app,
        body["challenge_id"].as_str().unwrap(),
        "totp",
        &authenticator.code(1),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let signed_in: Value = response.json().await.unwrap();
    assert_eq!(
        claims_of(signed_in["access_token"].as_str().unwrap())["amr"],
        json!(["otp", "mfa"])
    );
}

#[actix_web::test]
async fn sensitive_changes_need_a_recent_authentication() {
    let app = spawn_app_with(&[("REAUTHENTICATION_MAX_AGE", "1")]).await;
    let (_, tokens) = app.user_with_session().await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let stale = app.post_authed("/api/users/me/mfa/totp", &tokens.access, None).await;
    assert_problem(stale, 403, "reauthentication_required").await;
    // The password in the request stands for a recent authentication; a wrong one does not.
    let wrong = app
        .post_authed(
            "/api/users/me/mfa/totp",
            &tokens.access,
            Some(&json!({"password": "not the password"})),
        )
        .await;
    assert_problem(wrong, 403, "invalid_password").await;
    let with_password = app
        .post_authed(
            "/api/users/me/mfa/totp",
            &tokens.access,
            Some(&json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(with_password.status(), StatusCode::OK);

    // Or the session reauthenticates, which moves its auth_time.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let neither = app
        .post_authed("/api/auth/reauthenticate", &tokens.access, Some(&json!({})))
        .await;
    assert_problem(neither, 422, "validation_failed").await;
    let response = app
        .post_authed(
            "/api/auth/reauthenticate",
            &tokens.access,
            Some(&json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert!(body["valid_until"].as_str().unwrap() > body["authenticated_at"].as_str().unwrap());
    let fresh = app.post_authed("/api/users/me/mfa/totp", &tokens.access, None).await;
    assert_eq!(fresh.status(), StatusCode::OK);
    let refreshed: Value = app.refresh(&tokens.refresh).await.json().await.unwrap();
    let signed_in_at = claims_of(&tokens.access)["auth_time"].as_i64().unwrap();
    let reauthenticated_at = claims_of(refreshed["access_token"].as_str().unwrap())["auth_time"]
        .as_i64()
        .unwrap();
    assert!(reauthenticated_at > signed_in_at);
}

#[actix_web::test]
async fn turning_the_app_off_needs_password_and_code_and_tells_the_other_devices() {
    let app = spawn_app().await;
    let (email, tokens) = app.user_with_session().await;
    let other = app.login_as(&email, PASSWORD, crate::helpers::app::FIREFOX).await;
    let mut other_device = app.socket(&other.access).await;
    let (authenticator, codes) = enrol(&app, &tokens.access).await;
    assert_eq!(
        other_device.next_json_ignoring(&["session_created"]).await,
        json!({"type": "security_changed", "change": "totp_enabled"})
    );

    let wrong_password = app
        .delete_authed(
            "/api/users/me/mfa/totp",
            &tokens.access,
            Some(&json!({"password": "not the password", "code": authenticator.code(1)})),
        )
        .await;
    assert_problem(wrong_password, 403, "invalid_password").await;
    let wrong_code = app
        .delete_authed(
            "/api/users/me/mfa/totp",
            &tokens.access,
            Some(&json!({"password": PASSWORD, "code": "000000"})),
        )
        .await;
    assert_problem(wrong_code, 400, "otp_invalid").await;
    // A recovery code does too.
    let response = app
        .delete_authed(
            "/api/users/me/mfa/totp",
            &tokens.access,
            Some(&json!({"password": PASSWORD, "code": codes[3]})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap()["mfa"]["totp"], false);
    assert_eq!(
        other_device.next_json().await,
        json!({"type": "security_changed", "change": "totp_disabled"})
    );
    app.mail
        .wait_for_subject(&email, "Two-step verification by authenticator app was turned off")
        .await;
    assert_eq!(
        factors(&app, &tokens.access).await,
        json!({"email_otp": false, "totp": false, "recovery_codes_left": 0, "passkeys": 0})
    );
    // The password alone signs in again.
    let response = app.login(&email, PASSWORD).await;
    assert!(response.json::<Value>().await.unwrap()["access_token"].is_string());
    let off = app
        .delete_authed(
            "/api/users/me/mfa/totp",
            &tokens.access,
            Some(&json!({"password": PASSWORD, "code": "000000"})),
        )
        .await;
    assert_problem(off, 409, "totp_not_enabled").await;
}

#[actix_web::test]
async fn with_both_second_factors_either_finishes_the_sign_in() {
    let app = spawn_app().await;
    let (email, tokens) = app.user_with_session().await;
    let response = app
        .client
        .put(app.url("/api/users/me/mfa/email-otp"))
        .bearer_auth(&tokens.access)
        .json(&json!({"enabled": true, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (_, codes) = enrol(&app, &tokens.access).await;
    let id = challenge(&app, &email, json!(["email_otp", "totp", "recovery_code"])).await;
    let response = answer(&app, &id, "recovery_code", &codes[0]).await;
    assert_eq!(response.status(), StatusCode::OK);
    // The mailed code of that challenge is dead with it.
    let code = app
        .mail
        .wait_for_subject(&email, "Your sign-in code")
        .await
        .code()
        .unwrap();
    assert_problem(answer(&app, &id, "email_otp", &code).await, 400, "challenge_invalid").await;
}

#[actix_web::test]
async fn reauthentication_takes_an_app_or_recovery_code_once() {
    let app = spawn_app_with(&[("REAUTHENTICATION_MAX_AGE", "1")]).await;
    let (email, tokens) = app.user_with_session().await;
    let (authenticator, codes) = enrol(&app, &tokens.access).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let stale = app
        .post_authed("/api/users/me/mfa/recovery-codes", &tokens.access, None)
        .await;
    assert_problem(stale, 403, "reauthentication_required").await;
    let reauthenticate = |code: String| {
        let app = &app;
        let access = tokens.access.clone();
        async move {
            app.post_authed("/api/auth/reauthenticate", &access, Some(&json!({"code": code})))
                .await
        }
    };
    assert_eq!(reauthenticate(authenticator.code(1)).await.status(), StatusCode::OK);
    // The same app code again is a replay.
    assert_problem(reauthenticate(authenticator.code(1)).await, 400, "otp_invalid").await;
    assert_eq!(reauthenticate(codes[0].clone()).await.status(), StatusCode::OK);
    assert_problem(reauthenticate(codes[0].clone()).await, 400, "otp_invalid").await;
    app.mail
        .wait_for_subject(&email, "A recovery code of yours was used")
        .await;
    let fresh = app
        .post_authed("/api/users/me/mfa/recovery-codes", &tokens.access, None)
        .await;
    assert_eq!(fresh.status(), StatusCode::OK);
}

#[actix_web::test]
async fn parallel_new_sets_of_recovery_codes_leave_one_set() {
    let app = spawn_app().await;
    let (_, tokens) = app.user_with_session().await;
    let (_, _) = enrol(&app, &tokens.access).await;
    let path = "/api/users/me/mfa/recovery-codes";
    let (left, right) = tokio::join!(
        app.post_authed(path, &tokens.access, None),
        app.post_authed(path, &tokens.access, None)
    );
    assert_eq!((left.status(), right.status()), (StatusCode::OK, StatusCode::OK));
    assert_eq!(factors(&app, &tokens.access).await["recovery_codes_left"], 10);
}

#[actix_web::test]
async fn other_devices_hear_of_every_change_of_factors() {
    let app = spawn_app().await;
    let (email, tokens) = app.user_with_session().await;
    let other = app.login_as(&email, PASSWORD, crate::helpers::app::FIREFOX).await;
    let mut other_device = app.socket(&other.access).await;
    let set_email_code = |enabled: bool| {
        app.client
            .put(app.url("/api/users/me/mfa/email-otp"))
            .bearer_auth(&tokens.access)
            .json(&json!({"enabled": enabled, "password": PASSWORD}))
            .send()
    };
    assert_eq!(set_email_code(true).await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        other_device.next_json_ignoring(&["session_created"]).await,
        json!({"type": "security_changed", "change": "email_otp_enabled"})
    );
    assert_eq!(set_email_code(false).await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        other_device.next_json().await,
        json!({"type": "security_changed", "change": "email_otp_disabled"})
    );
    enrol(&app, &tokens.access).await;
    assert_eq!(other_device.next_json().await["change"], "totp_enabled");
    let response = app
        .post_authed("/api/users/me/mfa/recovery-codes", &tokens.access, None)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        other_device.next_json().await,
        json!({"type": "security_changed", "change": "recovery_codes_regenerated"})
    );
    app.mail
        .wait_for_subject(&email, "Your recovery codes were replaced")
        .await;
}

#[actix_web::test]
async fn a_setup_not_confirmed_in_time_is_gone_and_codes_of_others_do_not_count() {
    let app = spawn_app_with(&[("OTP_TTL", "1")]).await;
    let (_, tokens) = app.user_with_session().await;
    let response = app.post_authed("/api/users/me/mfa/totp", &tokens.access, None).await;
    let secret = response.json::<Value>().await.unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let late = app
        .post_authed(
            "/api/users/me/mfa/totp/confirm",
            &tokens.access,
            Some(&json!({"code": Authenticator::new(&secret).code(0)})),
        )
        .await;
    assert_problem(late, 409, "totp_not_enabled").await;
    let no_app = app
        .post_authed("/api/users/me/mfa/recovery-codes", &tokens.access, None)
        .await;
    assert_problem(no_app, 409, "totp_not_enabled").await;

    // Another account's app and recovery codes do not finish this account's challenge.
    let spawned = spawn_app().await;
    let (owner_email, owner) = spawned.user_with_session().await;
    let (_, owner_codes) = enrol(&spawned, &owner.access).await;
    let (_, stranger) = spawned.user_with_session().await;
    let (stranger_app, stranger_codes) = enrol(&spawned, &stranger.access).await;
    let methods = json!(["totp", "recovery_code"]);
    let id = challenge(&spawned, &owner_email, methods).await;
    assert_problem(
        answer(&spawned, &id, "totp", &stranger_app.code(1)).await,
        400,
        "otp_invalid",
    )
    .await;
    assert_problem(
        answer(&spawned, &id, "recovery_code", &stranger_codes[0]).await,
        400,
        "otp_invalid",
    )
    .await;
    assert_eq!(
        answer(&spawned, &id, "recovery_code", &owner_codes[0]).await.status(),
        StatusCode::OK
    );
}
