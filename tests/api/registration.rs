use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    app::{FIREFOX, PASSWORD, TestApp, Tokens, assert_problem, unique_email},
    spawn_app, spawn_app_with,
};

#[actix_web::test]
async fn register_mails_a_code_that_verifies_and_signs_in() {
    let app = spawn_app().await;
    let email = unique_email();
    let response = app.register(&email, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "verification_sent");
    let handle = body["registration"].as_str().unwrap().to_owned();
    assert_eq!(handle.len(), 43, "256 random bits, base64url");

    let mail = app.mail.wait_for_mail(&email, 0).await;
    assert_eq!(mail.subject(), "Confirm your email address");
    // The mail names the registration it confirms, so an owner can tell a stranger's sign-up from theirs.
    assert!(
        mail.text().contains("from Firefox on Linux (127.0.0.1)"),
        "{}",
        mail.data
    );
    let code = mail.code().expect("the mail carries a code");

    let response = app.verify_email_with(&email, &code, &handle).await;
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
    assert_eq!(tokens.body["password_set"], true);
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
    assert_eq!(app.login(&email, PASSWORD).await.status(), StatusCode::OK);
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
    let (taken, new): (Value, Value) = (taken.json().await.unwrap(), new.json().await.unwrap());
    assert_eq!(taken["status"], new["status"]);
    assert_eq!(taken.as_object().unwrap().len(), new.as_object().unwrap().len());
    assert_eq!(taken["registration"].as_str().unwrap().len(), 43);
    assert_eq!(new["registration"].as_str().unwrap().len(), 43);

    let notice = app.mail.wait_for_mail(&email, 1).await;
    assert_eq!(notice.subject(), "You already have an account");
    assert!(notice.code().is_none(), "the notice carries no code");
    // The owner's password did not change.
    assert_eq!(app.login(&email, PASSWORD).await.status(), StatusCode::OK);
}

const OWNER: &str = "the owner's own passphrase";
const ATTACKER: &str = "attacker chosen passphrase";
const CHROME_WINDOWS: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36";

/// Registers `email` from `user_agent` and answers the handle.
async fn register_from(app: &TestApp, email: &str, password: &str, name: &str, user_agent: &str) -> String {
    let response = app
        .post_json_as(
            "/api/auth/register",
            &json!({"email": email, "password": password, "name": name}),
            user_agent,
        )
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    response.json::<Value>().await.unwrap()["registration"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The review's takeover: the owner registers, a stranger registers the same address later, and the owner,
/// refused at login, asks for a new code and types it. The stranger's password must never become the
/// account's.
#[actix_web::test]
async fn a_later_stranger_registration_cannot_set_the_owners_password() {
    let app = spawn_app().await;
    let email = unique_email();
    let owner = register_from(&app, &email, OWNER, "Ada", FIREFOX).await;
    app.mail.wait_for_mail(&email, 0).await;
    let attacker = register_from(&app, &email, ATTACKER, "Mallory", CHROME_WINDOWS).await;
    assert_ne!(owner, attacker);
    app.mail.wait_for_mail(&email, 1).await;

    // Not verified yet: the owner's right password answers exactly as a wrong one.
    let refused = assert_problem(app.login(&email, OWNER).await, 401, "invalid_credentials").await;
    let wrong = assert_problem(
        app.login(&email, "not the password at all").await,
        401,
        "invalid_credentials",
    )
    .await;
    assert_eq!(refused, wrong);

    // The console asks for a new code; its mail names the newest registration, not the one asking.
    let asked = app
        .post_json(
            "/api/auth/otp/request",
            &json!({"email": email, "purpose": "verify_email"}),
        )
        .await;
    assert_eq!(asked.status(), StatusCode::ACCEPTED);
    let mail = app.mail.wait_for_mail(&email, 2).await;
    assert!(
        mail.text().contains("from Chrome on Windows 10 (127.0.0.1)"),
        "{}",
        mail.data
    );
    let code = mail.code().unwrap();

    let verified = app.verify_email_with(&email, &code, &owner).await;
    assert_eq!(verified.status(), StatusCode::OK);
    let body: Value = verified.json().await.unwrap();
    assert_eq!(body["password_set"], true);
    assert_eq!(body["user"]["name"], "Ada");
    assert_problem(app.login(&email, ATTACKER).await, 401, "invalid_credentials").await;
    assert_eq!(app.login(&email, OWNER).await.status(), StatusCode::OK);
}

/// The variant: the stranger registers first and the owner inside the cooldown, so the only code in the
/// mailbox came from the stranger's registration. Typed by the owner's client, it sets the owner's password.
#[actix_web::test]
async fn the_only_code_of_a_stranger_registration_sets_the_owners_password() {
    let app = spawn_app_with(&[("OTP_RESEND_COOLDOWN", "60")]).await;
    let email = unique_email();
    register_from(&app, &email, ATTACKER, "Mallory", CHROME_WINDOWS).await;
    let mail = app.mail.wait_for_mail(&email, 0).await;
    assert!(
        mail.text().contains("from Chrome on Windows 10 (127.0.0.1)"),
        "{}",
        mail.data
    );
    let owner = register_from(&app, &email, OWNER, "Ada", FIREFOX).await;
    app.mail.assert_no_new_mail(&email, 1).await;

    let verified = app.verify_email_with(&email, &mail.code().unwrap(), &owner).await;
    assert_eq!(verified.status(), StatusCode::OK);
    let body: Value = verified.json().await.unwrap();
    assert_eq!(body["password_set"], true);
    assert_eq!(body["user"]["name"], "Ada");
    assert_problem(app.login(&email, ATTACKER).await, 401, "invalid_credentials").await;
    assert_eq!(app.login(&email, OWNER).await.status(), StatusCode::OK);
}

/// A code typed in a browser that did not register (or with a handle of another address) proves the address
/// and signs in, but sets no password: the user chooses one with a reset.
#[actix_web::test]
async fn a_code_without_its_registration_sets_no_password() {
    let app = spawn_app().await;
    let email = unique_email();
    register_from(&app, &email, ATTACKER, "Mallory", CHROME_WINDOWS).await;
    let code = app.mail.wait_for_mail(&email, 0).await.code().unwrap();
    let elsewhere = app.register_for_handle(&unique_email(), OWNER).await;

    let verified = app.verify_email_with(&email, &code, &elsewhere).await;
    assert_eq!(verified.status(), StatusCode::OK);
    let body: Value = verified.json().await.unwrap();
    assert_eq!(body["password_set"], false);
    assert_eq!(body["user"]["email_verified"], true);
    assert_eq!(
        body["user"]["name"],
        Value::Null,
        "the stranger's name is not kept either"
    );
    assert_problem(app.login(&email, ATTACKER).await, 401, "invalid_credentials").await;
    assert_problem(app.login(&email, OWNER).await, 401, "invalid_credentials").await;

    // The owner sets a password with a reset.
    reset_password(&app, &email, 1, OWNER).await;
    assert_eq!(app.login(&email, OWNER).await.status(), StatusCode::OK);
}

/// Asks for a reset code (the address's mail number `already`) and sets `password` with it.
async fn reset_password(app: &TestApp, email: &str, already: usize, password: &str) {
    app.post_json(
        "/api/auth/otp/request",
        &json!({"email": email, "purpose": "password_reset"}),
    )
    .await;
    let code = app.mail.wait_for_mail(email, already).await.code().unwrap();
    let reset = app
        .post_json(
            "/api/auth/password/reset",
            &json!({"email": email, "code": code, "new_password": password}),
        )
        .await;
    assert_eq!(reset.status(), StatusCode::NO_CONTENT);
}

#[actix_web::test]
async fn a_malformed_registration_handle_is_refused() {
    let app = spawn_app().await;
    let body = assert_problem(
        app.verify_email_with(&unique_email(), "123456", "not a handle").await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "registration");
}

/// Registering a free address with a password and then signing in with it answers as for a taken address:
/// the login tells nothing about whether the registration created the account.
#[actix_web::test]
async fn login_before_verification_answers_as_a_wrong_password() {
    let app = spawn_app().await;
    let (taken, _) = app.user_with_session().await;
    let free = unique_email();
    app.register(&free, OWNER).await;
    app.register(&taken, OWNER).await;
    app.mail.wait_for_mail(&free, 0).await;
    app.mail.wait_for_mail(&taken, 1).await;
    let on_free = assert_problem(app.login(&free, OWNER).await, 401, "invalid_credentials").await;
    let on_taken = assert_problem(app.login(&taken, OWNER).await, 401, "invalid_credentials").await;
    assert_eq!(on_free, on_taken);
}

/// Pending registrations and verification codes die with a reset: a code mailed before it no longer verifies.
#[actix_web::test]
async fn a_reset_ends_pending_verification_codes() {
    let app = spawn_app().await;
    let email = unique_email();
    let handle = app.register_for_handle(&email, ATTACKER).await;
    let verification = app.mail.wait_for_mail(&email, 0).await.code().unwrap();
    reset_password(&app, &email, 1, OWNER).await;
    assert_problem(
        app.verify_email_with(&email, &verification, &handle).await,
        400,
        "otp_invalid",
    )
    .await;
    assert_problem(app.login(&email, ATTACKER).await, 401, "invalid_credentials").await;
    assert_eq!(app.login(&email, OWNER).await.status(), StatusCode::OK);
}

#[actix_web::test]
async fn spellings_of_one_address_are_one_account() {
    let app = spawn_app().await;
    let local = format!("Mixed.Case-{}", uuid::Uuid::now_v7().simple());
    let spelled = format!("  {local}@EXAMPLE.com ");
    let normal = format!("{}@example.com", local.to_lowercase());
    let handle = app.register_for_handle(&spelled, PASSWORD).await;
    let code = app.mail.wait_for_mail(&normal, 0).await.code().unwrap();
    let tokens = Tokens::from_body(
        app.verify_email_with(&normal, &code, &handle)
            .await
            .json()
            .await
            .unwrap(),
    );
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
    let handle = response.json::<Value>().await.unwrap()["registration"]
        .as_str()
        .unwrap()
        .to_owned();
    let code = app.mail.wait_for_mail(&email, 0).await.code().unwrap();
    let tokens = Tokens::from_body(
        app.verify_email_with(&email, &code, &handle)
            .await
            .json()
            .await
            .unwrap(),
    );
    assert_eq!(tokens.body["user"]["name"], "Ada <Lovelace>");
}
