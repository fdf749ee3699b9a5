use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{
    app::{PASSWORD, assert_problem, unique_email},
    spawn_app,
};

#[actix_web::test]
async fn wrong_password_and_unknown_email_answer_identically() {
    let app = spawn_app().await;
    let (email, _) = app.user_with_session().await;
    let wrong = app.login(&email, "a wrong password here").await;
    let unknown = app.login(&unique_email(), "a wrong password here").await;
    assert_eq!(wrong.status(), unknown.status());
    for header in ["content-type", "www-authenticate", "cache-control"] {
        assert_eq!(
            wrong.headers().get(header),
            unknown.headers().get(header),
            "{header} differs"
        );
    }
    let wrong = wrong.text().await.unwrap();
    assert_eq!(wrong, unknown.text().await.unwrap());
    assert!(wrong.contains("invalid_credentials"));
}

#[actix_web::test]
async fn login_answers_a_token_pair_for_a_new_session() {
    let app = spawn_app().await;
    let (email, first) = app.user_with_session().await;
    let response = app.login(&email, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_ne!(body["session_id"], first.session.as_str());
    assert_eq!(body["user"]["email"], email.as_str());
}

#[actix_web::test]
async fn malformed_email_or_oversized_password_at_login_is_just_invalid_credentials() {
    let app = spawn_app().await;
    assert_problem(app.login("not-an-email", PASSWORD).await, 401, "invalid_credentials").await;
    assert_problem(
        app.login(&unique_email(), &"x".repeat(129)).await,
        401,
        "invalid_credentials",
    )
    .await;
    // A missing field or a wrong type is a shape error, not a credential error.
    assert_problem(
        app.post_json("/api/auth/login", &json!({"email": unique_email()}))
            .await,
        422,
        "validation_failed",
    )
    .await;
    assert_problem(
        app.post_json("/api/auth/login", &json!({"email": 5, "password": PASSWORD}))
            .await,
        422,
        "validation_failed",
    )
    .await;
}

#[actix_web::test]
async fn a_new_device_mails_a_sign_in_notice() {
    let app = spawn_app().await;
    let (email, _) = app.user_with_session().await;
    let before = app.mail.mails_to(&email).await.len();
    app.login_as(&email, PASSWORD, crate::helpers::app::SAFARI_IPHONE).await;
    let notice = app.mail.wait_for_mail(&email, before).await;
    assert_eq!(notice.subject(), "New sign-in to your account");
    assert!(notice.data.contains("Safari on iPhone"), "{}", notice.data);
    // The same device again is not news.
    let before = app.mail.mails_to(&email).await.len();
    app.login_as(&email, PASSWORD, crate::helpers::app::SAFARI_IPHONE).await;
    app.mail.assert_no_new_mail(&email, before).await;
}
