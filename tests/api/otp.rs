use std::time::Duration;

use reqwest::StatusCode;

use crate::helpers::{
    app::{PASSWORD, assert_problem, unique_email},
    spawn_app, spawn_app_with,
};

/// A registered, unverified address and the code mailed to it.
async fn pending(app: &crate::helpers::TestApp) -> (String, String) {
    let email = unique_email();
    assert_eq!(app.register(&email, PASSWORD).await.status(), StatusCode::ACCEPTED);
    let code = app.mail.wait_for_mail(&email, 0).await.code().unwrap();
    (email, code)
}

fn wrong(code: &str) -> String {
    let digit = (code.as_bytes()[0] - b'0' + 1) % 10;
    format!("{digit}{}", &code[1..])
}

#[actix_web::test]
async fn five_wrong_codes_kill_the_code() {
    let app = spawn_app().await;
    let (email, code) = pending(&app).await;
    for _ in 0..5 {
        assert_problem(app.verify_email(&email, &wrong(&code)).await, 400, "otp_invalid").await;
    }
    assert_problem(app.verify_email(&email, &code).await, 400, "otp_attempts_exceeded").await;
}

#[actix_web::test]
async fn parallel_wrong_guesses_get_no_more_than_the_allowed_tries() {
    let app = spawn_app().await;
    let (email, code) = pending(&app).await;
    let guess = wrong(&code);
    let guesses = (0..12).map(|_| app.verify_email(&email, &guess));
    for response in futures_util::future::join_all(guesses).await {
        let status = response.status();
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
    assert_problem(app.verify_email(&email, &code).await, 400, "otp_attempts_exceeded").await;
}

#[actix_web::test]
async fn an_expired_code_is_refused() {
    let app = spawn_app_with(&[("OTP_TTL", "1")]).await;
    let (email, code) = pending(&app).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_problem(app.verify_email(&email, &code).await, 400, "otp_expired").await;
}

#[actix_web::test]
async fn a_used_code_cannot_be_replayed() {
    let app = spawn_app().await;
    let (email, code) = pending(&app).await;
    assert_eq!(app.verify_email(&email, &code).await.status(), StatusCode::OK);
    assert_problem(app.verify_email(&email, &code).await, 400, "otp_invalid").await;
}

#[actix_web::test]
async fn a_newer_code_replaces_the_older_one() {
    let app = spawn_app().await;
    let (email, older) = pending(&app).await;
    assert_eq!(app.register(&email, PASSWORD).await.status(), StatusCode::ACCEPTED);
    let newer = app.mail.wait_for_mail(&email, 1).await.code().unwrap();
    if newer != older {
        assert_problem(app.verify_email(&email, &older).await, 400, "otp_invalid").await;
    }
    assert_eq!(app.verify_email(&email, &newer).await.status(), StatusCode::OK);
}

#[actix_web::test]
async fn two_parallel_right_submissions_make_one_session() {
    let app = spawn_app().await;
    let (email, code) = pending(&app).await;
    let (first, second) = tokio::join!(app.verify_email(&email, &code), app.verify_email(&email, &code));
    let mut statuses = [first.status().as_u16(), second.status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 400]);
}

#[actix_web::test]
async fn codes_for_unknown_addresses_and_malformed_codes_are_refused() {
    let app = spawn_app().await;
    assert_problem(app.verify_email(&unique_email(), "123456").await, 400, "otp_invalid").await;
    let (email, _) = pending(&app).await;
    let body = assert_problem(app.verify_email(&email, "12ab56").await, 422, "validation_failed").await;
    assert_eq!(body["errors"][0]["field"], "code");
}
