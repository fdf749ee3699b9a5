use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    app::{PASSWORD, SAFARI_IPHONE, assert_problem},
    spawn_app,
};

#[actix_web::test]
async fn patch_me_sets_the_name_and_ignores_unknown_fields() {
    let app = spawn_app().await;
    let (email, tokens) = app.user_with_session().await;
    // Read once so the node holds a copy of the view: a change must replace it at once.
    assert_eq!(
        app.get_authed("/api/users/me", &tokens.access)
            .await
            .json::<Value>()
            .await
            .unwrap()["name"],
        Value::Null
    );
    let response = app
        .client
        .patch(app.url("/api/users/me"))
        .bearer_auth(&tokens.access)
        .json(&json!({"name": "Ada", "email": "evil@example.com", "email_verified": false, "id": "x", "mfa": {"email_otp": true}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let user: Value = response.json().await.unwrap();
    assert_eq!(user["name"], "Ada");
    assert_eq!(user["email"], email.as_str());
    assert_eq!(user["email_verified"], true);
    assert_eq!(user["mfa"]["email_otp"], false);
    assert_eq!(
        app.get_authed("/api/users/me", &tokens.access)
            .await
            .json::<Value>()
            .await
            .unwrap()["name"],
        "Ada"
    );

    let cleared: Value = app
        .client
        .patch(app.url("/api/users/me"))
        .bearer_auth(&tokens.access)
        .json(&json!({"name": null}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cleared["name"], Value::Null);
    let too_long = app
        .client
        .patch(app.url("/api/users/me"))
        .bearer_auth(&tokens.access)
        .json(&json!({"name": "n".repeat(101)}))
        .send()
        .await
        .unwrap();
    let body = assert_problem(too_long, 422, "validation_failed").await;
    assert_eq!(body["errors"][0]["field"], "name");
}

#[actix_web::test]
async fn changing_the_password_ends_the_other_sessions() {
    let app = spawn_app().await;
    let (email, laptop) = app.user_with_session().await;
    let phone = app.login_as(&email, PASSWORD, SAFARI_IPHONE).await;

    let wrong = app
        .post_authed(
            "/api/users/me/password",
            &phone.access,
            Some(&json!({"current_password": "not it at all", "new_password": "a brand new passphrase"})),
        )
        .await;
    assert_problem(wrong, 403, "invalid_password").await;
    let weak = app
        .post_authed(
            "/api/users/me/password",
            &phone.access,
            Some(&json!({"current_password": PASSWORD, "new_password": "password1"})),
        )
        .await;
    let body = assert_problem(weak, 422, "validation_failed").await;
    assert_eq!(body["errors"][0]["field"], "new_password");

    let changed = app
        .post_authed(
            "/api/users/me/password",
            &phone.access,
            Some(&json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"})),
        )
        .await;
    assert_eq!(changed.status(), StatusCode::NO_CONTENT);
    assert_problem(
        app.get_authed("/api/users/me", &laptop.access).await,
        401,
        "session_revoked",
    )
    .await;
    assert_problem(app.refresh(&laptop.refresh).await, 401, "refresh_token_invalid").await;
    assert_eq!(
        app.get_authed("/api/users/me", &phone.access).await.status(),
        StatusCode::OK
    );
    assert_problem(app.login(&email, PASSWORD).await, 401, "invalid_credentials").await;
    assert_eq!(
        app.login(&email, "a brand new passphrase").await.status(),
        StatusCode::OK
    );
    app.mail.wait_for_subject(&email, "Your password was changed").await;
}

#[actix_web::test]
async fn deleting_the_account_needs_the_password_and_ends_everything() {
    let app = spawn_app().await;
    let (email, tokens) = app.user_with_session().await;
    let wrong = app
        .delete_authed(
            "/api/users/me",
            &tokens.access,
            Some(&json!({"password": "not it at all"})),
        )
        .await;
    assert_problem(wrong, 403, "invalid_password").await;
    let deleted = app
        .delete_authed("/api/users/me", &tokens.access, Some(&json!({"password": PASSWORD})))
        .await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_problem(
        app.get_authed("/api/users/me", &tokens.access).await,
        401,
        "session_revoked",
    )
    .await;
    assert_problem(app.refresh(&tokens.refresh).await, 401, "refresh_token_invalid").await;
    assert_problem(app.login(&email, PASSWORD).await, 401, "invalid_credentials").await;
    // The address is free again.
    assert_eq!(app.register(&email, PASSWORD).await.status(), StatusCode::ACCEPTED);
}
