use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    app::{PASSWORD, Tokens, assert_problem, unique_email},
    spawn_app,
};

#[actix_web::test]
async fn register_mails_a_code_that_verifies_and_signs_in() {
    let app = spawn_app().await;
    let email = unique_email();
    let response = app.register(&email, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"status": "verification_sent"})
    );

    let mail = app.mail.wait_for_mail(&email, 0).await;
    assert_eq!(mail.subject(), "Confirm your email address");
    // The mail names the request it answers, so an owner can tell a stranger's sign-up from theirs.
    assert!(mail.data.contains("from Firefox on Linux (127.0.0.1)"), "{}", mail.data);
    let code = mail.code().expect("the mail carries a code");

    let response = app.verify_email(&email, &code).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let cookie = response.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("refresh_token="), "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/api/auth"] {
        assert!(cookie.contains(attribute), "cookie lacks {attribute}: {cookie}");
    }
    assert!(!cookie.contains("Secure"), "development cookies are not Secure");
    let tokens = Tokens::from_body(response.json().await.unwrap());
    assert_eq!(tokens.body["token_type"], "Bearer");
    assert_eq!(tokens.body["expires_in"], 900);
    assert!(tokens.body["refresh_expires_in"].as_i64().unwrap() > 2_500_000);
    assert!(tokens.refresh.len() >= 43, "at least 256 bits");
    assert!(cookie.contains(&tokens.refresh));
    let user = &tokens.body["user"];
    assert_eq!(user["email"], email.as_str());
    assert_eq!(user["email_verified"], true);
    assert_eq!(user["name"], Value::Null);
    assert_eq!(user["mfa"], json!({"email_otp": false, "totp": false}));

    let me = app.get_authed("/api/users/me", &tokens.access).await;
    assert_eq!(me.status(), StatusCode::OK);
    assert_eq!(me.json::<Value>().await.unwrap()["id"], user["id"]);
}

#[actix_web::test]
async fn a_taken_address_gets_the_same_answer_and_the_owner_a_notice() {
    let app = spawn_app().await;
    let (email, _) = app.user_with_session().await;
    let fresh = unique_email();

    let taken = app.register(&email.to_uppercase(), "another good passphrase").await;
    let new = app.register(&fresh, "another good passphrase").await;
    assert_eq!(taken.status(), StatusCode::ACCEPTED);
    assert_eq!(new.status(), StatusCode::ACCEPTED);
    assert_eq!(taken.headers().get("content-type"), new.headers().get("content-type"));
    assert_eq!(taken.text().await.unwrap(), new.text().await.unwrap());

    let notice = app.mail.wait_for_mail(&email, 1).await;
    assert_eq!(notice.subject(), "You already have an account");
    assert!(notice.code().is_none(), "the notice carries no code");
    // The owner's password did not change.
    assert_eq!(app.login(&email, PASSWORD).await.status(), StatusCode::OK);
}

#[actix_web::test]
async fn a_repeated_registration_binds_its_own_password_to_its_code() {
    let app = spawn_app().await;
    let email = unique_email();
    // Someone who cannot read the mailbox registers first with their password...
    assert_eq!(
        app.register(&email, "attacker chosen passphrase").await.status(),
        StatusCode::ACCEPTED
    );
    let first = app.mail.wait_for_mail(&email, 0).await.code().unwrap();
    // ...then the owner registers with theirs and verifies with the code they receive.
    assert_eq!(app.register(&email, PASSWORD).await.status(), StatusCode::ACCEPTED);
    let second = app.mail.wait_for_mail(&email, 1).await.code().unwrap();

    assert_problem(app.verify_email(&email, &first).await, 400, "otp_invalid").await;
    assert_eq!(app.verify_email(&email, &second).await.status(), StatusCode::OK);
    assert_problem(
        app.login(&email, "attacker chosen passphrase").await,
        401,
        "invalid_credentials",
    )
    .await;
    assert_eq!(app.login(&email, PASSWORD).await.status(), StatusCode::OK);
}

#[actix_web::test]
async fn a_password_set_before_verification_does_not_outlive_its_code() {
    use sea_orm::{ConnectionTrait, Statement};
    let app = spawn_app().await;
    let email = unique_email();
    // Someone who cannot read the mailbox registers first; their code, and the password bound to it, are
    // later pruned.
    app.register(&email, "attacker chosen passphrase").await;
    app.mail.wait_for_mail(&email, 0).await;
    let database = &app.application_state.database;
    database
        .execute_raw(Statement::from_string(
            database.get_database_backend(),
            "DELETE FROM otps".to_owned(),
        ))
        .await
        .unwrap();
    // The owner asks for a code and proves the address with it: the code carries no password.
    let requested = app
        .post_json(
            "/api/auth/otp/request",
            &json!({"email": email, "purpose": "verify_email"}),
        )
        .await;
    assert_eq!(requested.status(), StatusCode::ACCEPTED);
    let code = app.mail.wait_for_mail(&email, 1).await.code().unwrap();
    assert_eq!(app.verify_email(&email, &code).await.status(), StatusCode::OK);
    // The first registrant's password is gone with it.
    assert_problem(
        app.login(&email, "attacker chosen passphrase").await,
        401,
        "invalid_credentials",
    )
    .await;
}

#[actix_web::test]
async fn login_before_verification_says_so_only_with_the_right_password() {
    let app = spawn_app().await;
    let email = unique_email();
    app.register(&email, PASSWORD).await;
    assert_problem(app.login(&email, PASSWORD).await, 403, "email_not_verified").await;
    assert_problem(
        app.login(&email, "not the password at all").await,
        401,
        "invalid_credentials",
    )
    .await;
}

#[actix_web::test]
async fn spellings_of_one_address_are_one_account() {
    let app = spawn_app().await;
    let local = format!("Mixed.Case-{}", uuid::Uuid::now_v7().simple());
    let spelled = format!("  {local}@EXAMPLE.com ");
    let normal = format!("{}@example.com", local.to_lowercase());
    assert_eq!(app.register(&spelled, PASSWORD).await.status(), StatusCode::ACCEPTED);
    let code = app.mail.wait_for_mail(&normal, 0).await.code().unwrap();
    let tokens = Tokens::from_body(app.verify_email(&normal, &code).await.json().await.unwrap());
    assert_eq!(tokens.body["user"]["email"], normal.as_str());
    assert_eq!(
        app.login(&format!("{}@Example.Com", local.to_uppercase()), PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
}

#[actix_web::test]
async fn registration_name_is_trimmed_and_kept_verbatim() {
    let app = spawn_app().await;
    let email = unique_email();
    let response = app
        .post_json(
            "/api/auth/register",
            &json!({"email": email, "password": PASSWORD, "name": "  Ada <Lovelace>  "}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let code = app.mail.wait_for_mail(&email, 0).await.code().unwrap();
    let tokens = Tokens::from_body(app.verify_email(&email, &code).await.json().await.unwrap());
    assert_eq!(tokens.body["user"]["name"], "Ada <Lovelace>");
}
