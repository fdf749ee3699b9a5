use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    TestApp,
    app::{PASSWORD, SAFARI_IPHONE, Tokens, assert_problem, unique_email},
    spawn_app, spawn_app_with,
};

async fn request_code(app: &TestApp, email: &str, purpose: &str) {
    let response = app
        .post_json("/api/auth/otp/request", &json!({"email": email, "purpose": purpose}))
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"status": "sent_if_eligible"})
    );
}

async fn mailed_code(app: &TestApp, email: &str, purpose: &str, subject: &str) -> String {
    let before = app.mail.count_subject(email, subject).await;
    request_code(app, email, purpose).await;
    app.mail
        .wait_for_new_subject(email, subject, before)
        .await
        .code()
        .unwrap()
}

#[actix_web::test]
async fn passwordless_sign_in_with_a_login_code() {
    let app = spawn_app().await;
    let (email, _) = app.user_with_session().await;
    let code = mailed_code(&app, &email, "login", "Your sign-in code").await;
    let response = app
        .post_json("/api/auth/otp/login", &json!({"email": email, "code": code}))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let tokens = Tokens::from_body(response.json().await.unwrap());
    assert_eq!(
        app.get_authed("/api/users/me", &tokens.access).await.status(),
        StatusCode::OK
    );
    // Single use.
    let again = app
        .post_json("/api/auth/otp/login", &json!({"email": email, "code": code}))
        .await;
    assert_problem(again, 400, "otp_invalid").await;
}

/// A verified account, an unverified one (its registration code mailed) and an address with no account.
async fn three_addresses(app: &TestApp) -> (String, String, String) {
    let (verified, _) = app.user_with_session().await;
    let unverified = unique_email();
    app.register(&unverified, PASSWORD).await;
    app.mail.wait_for_mail(&unverified, 0).await;
    (verified, unverified, unique_email())
}

/// Guesses `tries` wrong codes at `path` for `email`, and answers the error codes in order.
async fn wrong_code_answers(app: &TestApp, path: &str, email: &str, not_this: &str, tries: usize) -> Vec<String> {
    let wrong = format!("{}{}", (not_this.as_bytes()[0] - b'0' + 1) % 10, &not_this[1..]);
    let mut answers = Vec::new();
    for _ in 0..tries {
        let body = json!({"email": email, "code": wrong, "new_password": "a fresh new passphrase"});
        let response = app.post_json(path, &body).await;
        let body: Value = response.json().await.unwrap();
        answers.push(body["code"].as_str().unwrap_or("none").to_owned());
    }
    answers
}

#[actix_web::test]
async fn code_checks_answer_alike_whether_or_not_an_address_has_a_code() {
    let app = spawn_app().await;
    let (verified, unverified, unknown) = three_addresses(&app).await;
    // Codes are asked for all three; only the verified account is sent one.
    request_code(&app, &unknown, "password_reset").await;
    request_code(&app, &unknown, "login").await;
    request_code(&app, &unverified, "login").await;
    let code = mailed_code(&app, &verified, "login", "Your sign-in code").await;
    let reset_code = mailed_code(&app, &verified, "password_reset", "Your password reset code").await;

    // OTP_MAX_ATTEMPTS (5) wrong tries, then the code is spent: the same answers for all.
    let mut expected = vec!["otp_invalid".to_owned(); 5];
    expected.push("otp_attempts_exceeded".to_owned());
    for email in [&verified, &unverified, &unknown] {
        assert_eq!(
            wrong_code_answers(&app, "/api/auth/otp/login", email, &code, 6).await,
            expected,
            "login codes for {email}"
        );
    }
    for email in [&verified, &unknown] {
        assert_eq!(
            wrong_code_answers(&app, "/api/auth/password/reset", email, &reset_code, 6).await,
            expected,
            "reset codes for {email}"
        );
    }
    // With no code asked for, there is nothing to spend.
    let never_asked = unique_email();
    assert_eq!(
        wrong_code_answers(&app, "/api/auth/otp/login", &never_asked, &code, 6).await,
        vec!["otp_invalid".to_owned(); 6]
    );
}

#[actix_web::test]
async fn an_expired_code_and_a_missing_one_answer_alike() {
    let app = spawn_app_with(&[("OTP_TTL", "1")]).await;
    let (verified, _) = app.user_with_session().await;
    let unknown = unique_email();
    request_code(&app, &unknown, "login").await;
    let code = mailed_code(&app, &verified, "login", "Your sign-in code").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for email in [&verified, &unknown] {
        assert_eq!(
            wrong_code_answers(&app, "/api/auth/otp/login", email, &code, 1).await,
            vec!["otp_expired".to_owned()],
            "{email}"
        );
    }
}

#[actix_web::test]
async fn codes_are_only_mailed_to_eligible_addresses() {
    let app = spawn_app().await;
    let (verified, unverified, unknown) = three_addresses(&app).await;

    request_code(&app, &unknown, "login").await;
    request_code(&app, &unknown, "password_reset").await;
    request_code(&app, &unverified, "login").await;
    request_code(&app, &verified, "verify_email").await;
    app.mail.assert_no_new_mail(&unknown, 0).await;
    app.mail.assert_no_new_mail(&unverified, 1).await;
    app.mail.assert_no_new_mail(&verified, 1).await;

    // An unverified address may ask again, and may reset.
    assert_eq!(
        mailed_code(&app, &unverified, "verify_email", "Confirm your email address")
            .await
            .len(),
        6
    );
    let bad_purpose = app
        .post_json(
            "/api/auth/otp/request",
            &json!({"email": verified, "purpose": "login_challenge"}),
        )
        .await;
    assert_problem(bad_purpose, 422, "validation_failed").await;
}

#[actix_web::test]
async fn a_code_sent_again_sets_the_registration_password_with_its_handle() {
    let app = spawn_app().await;
    let email = unique_email();
    let handle = app.register_for_handle(&email, PASSWORD).await;
    app.mail.wait_for_mail(&email, 0).await;
    let code = mailed_code(&app, &email, "verify_email", "Confirm your email address").await;
    let verified = app.verify_email_with(&email, &code, &handle).await;
    assert_eq!(verified.status(), StatusCode::OK);
    assert_eq!(verified.json::<Value>().await.unwrap()["password_set"], true);
    assert_eq!(app.login(&email, PASSWORD).await.status(), StatusCode::OK);
}

#[actix_web::test]
async fn a_password_change_in_flight_does_not_undo_a_reset() {
    let app = spawn_app().await;
    let (email, tokens) = app.user_with_session().await;
    let code = mailed_code(&app, &email, "password_reset", "Your password reset code").await;
    // Logins for unknown addresses keep the hashing threads busy, so the change below has confirmed the
    // caller and waits for its hashes while the reset, sent just after, is written.
    let strangers: Vec<String> = (0..60).map(|_| unique_email()).collect();
    let filler = futures_util::future::join_all(
        strangers
            .iter()
            .map(|stranger| app.login(stranger, "a wrong password here")),
    );
    let change = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        app.post_authed(
            "/api/users/me/password",
            &tokens.access,
            Some(&json!({"current_password": PASSWORD, "new_password": "the changer's passphrase"})),
        )
        .await
    };
    let reset = async {
        tokio::time::sleep(Duration::from_millis(130)).await;
        app.post_json(
            "/api/auth/password/reset",
            &json!({"email": email, "code": code, "new_password": "the owner's new passphrase"}),
        )
        .await
    };
    let (_, change, reset) = tokio::join!(filler, change, reset);
    assert_eq!(reset.status(), StatusCode::NO_CONTENT);
    // Either the change was written first and the reset replaced it, or the reset ended the changer's
    // session first and the change was refused: the reset's password is the one that holds.
    if change.status() != StatusCode::NO_CONTENT {
        assert_problem(change, 401, "session_revoked").await;
    }
    assert_eq!(
        app.login(&email, "the owner's new passphrase").await.status(),
        StatusCode::OK
    );
    assert_problem(
        app.login(&email, "the changer's passphrase").await,
        401,
        "invalid_credentials",
    )
    .await;
}

#[actix_web::test]
async fn a_password_reset_ends_every_session_and_the_old_password() {
    let app = spawn_app().await;
    let (email, laptop) = app.user_with_session().await;
    let phone = app.login_as(&email, PASSWORD, SAFARI_IPHONE).await;
    let mut laptop_socket = app.socket(&laptop.access).await;
    let code = mailed_code(&app, &email, "password_reset", "Your password reset code").await;

    let weak = app
        .post_json(
            "/api/auth/password/reset",
            &json!({"email": email, "code": code, "new_password": "password"}),
        )
        .await;
    assert_problem(weak, 422, "validation_failed").await;
    let wrong = app
        .post_json(
            "/api/auth/password/reset",
            &json!({"email": email, "code": "000000", "new_password": "a fresh new passphrase"}),
        )
        .await;
    if code != "000000" {
        assert_problem(wrong, 400, "otp_invalid").await;
    }
    let reset = app
        .post_json(
            "/api/auth/password/reset",
            &json!({"email": email, "code": code, "new_password": "a fresh new passphrase"}),
        )
        .await;
    assert_eq!(reset.status(), StatusCode::NO_CONTENT);
    assert!(reset.headers().get("set-cookie").is_none(), "a reset does not sign in");

    let event = laptop_socket.next_json().await;
    assert_eq!(
        event,
        json!({"type": "session_revoked", "session_id": laptop.session, "reason": "password_reset"})
    );
    assert_eq!(laptop_socket.close_code(Duration::from_secs(5)).await, 4001);
    for tokens in [&laptop, &phone] {
        assert_problem(
            app.get_authed("/api/users/me", &tokens.access).await,
            401,
            "session_revoked",
        )
        .await;
        assert_problem(app.refresh(&tokens.refresh).await, 401, "refresh_token_invalid").await;
    }
    assert_problem(app.login(&email, PASSWORD).await, 401, "invalid_credentials").await;
    assert_eq!(
        app.login(&email, "a fresh new passphrase").await.status(),
        StatusCode::OK
    );
}

async fn enable_second_factor(app: &TestApp, access: &str) {
    let wrong = app
        .client
        .put(app.url("/api/users/me/mfa/email-otp"))
        .bearer_auth(access)
        .json(&json!({"enabled": true, "password": "not the password"}))
        .send()
        .await
        .unwrap();
    assert_problem(wrong, 403, "invalid_password").await;
    let response = app
        .client
        .put(app.url("/api/users/me/mfa/email-otp"))
        .bearer_auth(access)
        .json(&json!({"enabled": true, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap()["mfa"]["email_otp"], true);
}

async fn challenge(app: &TestApp, email: &str) -> (String, String) {
    let before = app.mail.count_subject(email, "Your sign-in code").await;
    let response = app.login(email, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["mfa_required"], true);
    assert_eq!(body["methods"], json!(["email_otp"]));
    assert!(body["expires_in"].as_u64().unwrap() > 0);
    assert!(body.get("access_token").is_none(), "no tokens before the second factor");
    let code = app
        .mail
        .wait_for_new_subject(email, "Your sign-in code", before)
        .await
        .code()
        .unwrap();
    (body["challenge_id"].as_str().unwrap().to_owned(), code)
}

async fn answer(app: &TestApp, challenge: &str, code: &str) -> reqwest::Response {
    app.post_json(
        "/api/auth/login/verify",
        &json!({"challenge_id": challenge, "method": "email_otp", "code": code}),
    )
    .await
}

#[actix_web::test]
async fn the_email_second_factor_challenges_a_password_sign_in() {
    let app = spawn_app().await;
    let (email, tokens) = app.user_with_session().await;
    enable_second_factor(&app, &tokens.access).await;
    let (challenge_id, code) = challenge(&app, &email).await;

    let wrong = if code == "111111" { "222222" } else { "111111" };
    assert_problem(answer(&app, &challenge_id, wrong).await, 400, "otp_invalid").await;
    let totp = app
        .post_json(
            "/api/auth/login/verify",
            &json!({"challenge_id": challenge_id, "method": "totp", "code": code}),
        )
        .await;
    // A method the challenge does not offer: this account has no authenticator app.
    assert_problem(totp, 400, "challenge_invalid").await;
    let unknown = app
        .post_json(
            "/api/auth/login/verify",
            &json!({"challenge_id": challenge_id, "method": "sms", "code": code}),
        )
        .await;
    assert_problem(unknown, 422, "validation_failed").await;
    let right = answer(&app, &challenge_id, &code).await;
    assert_eq!(right.status(), StatusCode::OK);
    let signed_in = Tokens::from_body(right.json().await.unwrap());
    assert_eq!(
        app.get_authed("/api/users/me", &signed_in.access).await.status(),
        StatusCode::OK
    );
    assert_problem(answer(&app, &challenge_id, &code).await, 400, "challenge_invalid").await;
    let unknown = uuid::Uuid::now_v7().to_string();
    assert_problem(answer(&app, &unknown, &code).await, 400, "challenge_invalid").await;
}

#[actix_web::test]
async fn an_expired_challenge_is_invalid() {
    let app = spawn_app_with(&[("OTP_TTL", "1")]).await;
    let (email, tokens) = app.user_with_session().await;
    enable_second_factor(&app, &tokens.access).await;
    let (challenge_id, code) = challenge(&app, &email).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_problem(answer(&app, &challenge_id, &code).await, 400, "challenge_invalid").await;
}

#[actix_web::test]
async fn two_parallel_right_code_sign_ins_make_one_session() {
    let app = spawn_app().await;
    let (email, _) = app.user_with_session().await;
    let code = mailed_code(&app, &email, "login", "Your sign-in code").await;
    let body = json!({"email": email, "code": code});
    let (first, second) = tokio::join!(
        app.post_json("/api/auth/otp/login", &body),
        app.post_json("/api/auth/otp/login", &body)
    );
    let mut statuses = [first.status().as_u16(), second.status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 400]);
}

/// A guess that passed the first lock check while a parallel failure locked the address is neither tried nor
/// able to use up the code (and so to clear the lock): the consuming writes check the lock themselves.
#[actix_web::test]
async fn a_lock_set_after_the_first_check_holds_at_the_consuming_write() {
    use authd::{
        domain::OtpPurpose,
        error::AppError,
        services::{otp, throttle::ThrottleKey},
    };
    use sea_orm::{ActiveValue::Set, EntityTrait};
    let app = spawn_app().await;
    let (email, tokens) = app.user_with_session().await;
    let state = &app.application_state;
    let user: uuid::Uuid = tokens.body["user"]["id"].as_str().unwrap().parse().unwrap();
    let code = otp::issue(state, state.store.connection(), user, OtpPurpose::Login, None)
        .await
        .unwrap();
    let key = ThrottleKey::code(OtpPurpose::Login, &email);
    let lock = |until_ms: i64| entity::address_throttle::ActiveModel {
        key: Set(key.as_str().to_owned()),
        failures: Set(15),
        lock_level: Set(1),
        locked_until_ms: Set(Some(until_ms)),
        last_mail_ms: Set(None),
        last_failure_ms: Set(Some(until_ms)),
        code_attempts: Set(0),
    };
    let now_ms = chrono::Utc::now().timestamp_millis();
    entity::address_throttle::Entity::insert(lock(now_ms + 60_000))
        .exec(state.store.connection())
        .await
        .unwrap();
    let refused = otp::consume(state, &key, user, OtpPurpose::Login, None, &code).await;
    assert!(matches!(refused, Err(AppError::AccountLocked { .. })), "{refused:?}");
    // Once the lock is over the code is still there: it was neither tried nor used.
    entity::address_throttle::Entity::update(lock(now_ms - 1))
        .exec(state.store.connection())
        .await
        .unwrap();
    let used = otp::consume(state, &key, user, OtpPurpose::Login, None, &code).await;
    assert!(matches!(used, Ok(Some(_))), "{used:?}");
}

/// Anyone with the password could mail-bomb the owner through challenged sign-ins: at most 10 such mails an
/// hour (sign-in codes asked for without a password do not count). Past that, a sign-in is answered the newest
/// live challenge, whose code was already mailed, and nothing is sent.
#[actix_web::test]
async fn challenge_mails_are_capped_per_hour() {
    let app = spawn_app().await;
    let (email, tokens) = app.user_with_session().await;
    enable_second_factor(&app, &tokens.access).await;
    for _ in 0..3 {
        mailed_code(&app, &email, "login", "Your sign-in code").await;
    }
    let (first, _) = challenge(&app, &email).await;
    let (second, second_code) = challenge(&app, &email).await;
    assert_ne!(first, second, "a second sign-in gets a challenge and a code of its own");
    assert_eq!(answer(&app, &second, &second_code).await.status(), StatusCode::OK);
    let mut last = (String::new(), String::new());
    for _ in 2..10 {
        last = challenge(&app, &email).await;
    }
    let mails = app.mail.mails_to(&email).await.len();
    for _ in 0..3 {
        let response = app.login(&email, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["mfa_required"], true);
        assert_eq!(
            body["challenge_id"],
            last.0.as_str(),
            "the live challenge is answered again"
        );
    }
    app.mail.assert_no_new_mail(&email, mails).await;
    assert_eq!(answer(&app, &last.0, &last.1).await.status(), StatusCode::OK);
    // With no live challenge left, the sign-in waits for the hour to free a mail.
    let limited = app.login(&email, PASSWORD).await;
    assert!(limited.headers().contains_key("retry-after"));
    assert_problem(limited, 429, "rate_limited").await;
}

/// A second sign-in's code replaces the first's: the first challenge can no longer be finished by mail, and
/// its code is no wrong guess either.
#[actix_web::test]
async fn a_challenge_whose_code_was_replaced_is_over() {
    let app = spawn_app().await;
    let (email, tokens) = app.user_with_session().await;
    enable_second_factor(&app, &tokens.access).await;
    let (first, first_code) = challenge(&app, &email).await;
    let (second, second_code) = challenge(&app, &email).await;
    assert_problem(answer(&app, &first, &first_code).await, 400, "challenge_invalid").await;
    assert_eq!(answer(&app, &second, &second_code).await.status(), StatusCode::OK);
}
