//! Passkeys through the real endpoints, answered by a software authenticator (`helpers::passkey`): registration,
//! the second step after a password, passwordless sign-in, counters, user verification, step-up.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    TestApp,
    app::{FIREFOX, PASSWORD, assert_problem},
    passkey::SoftPasskey,
    spawn_app, spawn_app_with,
};

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

async fn register(app: &TestApp, access: &str, authenticator: &mut SoftPasskey, name: &str) -> reqwest::Response {
    let response = app.post_authed("/api/users/me/passkeys/options", access, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let ceremony: Value = response.json().await.unwrap();
    let options = &ceremony["options"];
    let selection = &options["publicKey"]["authenticatorSelection"];
    assert_eq!(selection["residentKey"], "required", "{selection}");
    assert_eq!(selection["userVerification"], "required", "{selection}");
    let credential = authenticator.register(options);
    app.post_authed(
        "/api/users/me/passkeys",
        access,
        Some(&json!({"ceremony_id": ceremony["ceremony_id"], "name": name, "credential": credential})),
    )
    .await
}

async fn registered(app: &TestApp, access: &str) -> (SoftPasskey, Value) {
    let mut authenticator = SoftPasskey::new();
    let response = register(app, access, &mut authenticator, "  Laptop  ").await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let passkey: Value = response.json().await.unwrap();
    assert_eq!(passkey["name"], "Laptop");
    (authenticator, passkey)
}

/// A password sign-in of an account with a passkey: its challenge id and passkey options.
async fn challenge(app: &TestApp, email: &str) -> (String, Value) {
    let body: Value = app.login(email, PASSWORD).await.json().await.unwrap();
    assert_eq!(body["mfa_required"], true, "{body}");
    assert_eq!(body["methods"], json!(["webauthn"]));
    (
        body["challenge_id"].as_str().unwrap().to_owned(),
        body["webauthn"].clone(),
    )
}

async fn answer(app: &TestApp, challenge: &str, credential: &Value) -> reqwest::Response {
    app.post_json(
        "/api/auth/login/verify",
        &json!({"challenge_id": challenge, "method": "webauthn", "credential": credential}),
    )
    .await
}

async fn passwordless_options(app: &TestApp) -> Value {
    let response = app.post_json("/api/auth/passkey/options", &json!({})).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn passwordless(app: &TestApp, ceremony: &Value, credential: &Value) -> reqwest::Response {
    app.post_json(
        "/api/auth/passkey/login",
        &json!({"ceremony_id": ceremony["ceremony_id"], "credential": credential}),
    )
    .await
}

#[actix_web::test]
async fn a_registered_passkey_is_listed_announced_and_mailed() {
    let app = spawn_app().await;
    let (email, tokens) = app.user_with_session().await;
    let other = app.login_as(&email, PASSWORD, FIREFOX).await;
    let mut other_device = app.socket(&other.access).await;
    let (_, passkey) = registered(&app, &tokens.access).await;
    assert_eq!(
        other_device.next_json_ignoring(&["session_created"]).await,
        json!({"type": "security_changed", "change": "passkey_added"})
    );
    let list: Value = app
        .get_authed("/api/users/me/passkeys", &tokens.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["passkeys"].as_array().unwrap().len(), 1);
    assert_eq!(list["passkeys"][0]["id"], passkey["id"]);
    assert!(list["passkeys"][0]["last_used_at"].is_null());
    let factors: Value = app
        .get_authed("/api/users/me/mfa", &tokens.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(factors["passkeys"], 1);
    let mail = app
        .mail
        .wait_for_subject(&email, "A passkey was added to your account")
        .await;
    assert!(mail.text().contains("\"Laptop\""));

    // The same credential cannot be registered twice, and a ceremony works once.
    let mut again = SoftPasskey::new();
    let response = app
        .post_authed("/api/users/me/passkeys/options", &tokens.access, None)
        .await;
    let ceremony: Value = response.json().await.unwrap();
    let excluded = &ceremony["options"]["publicKey"]["excludeCredentials"];
    assert_eq!(
        excluded.as_array().unwrap().len(),
        1,
        "the existing passkey is excluded: {excluded}"
    );
    let credential = again.register(&ceremony["options"]);
    let body = json!({"ceremony_id": ceremony["ceremony_id"], "name": "Phone", "credential": credential});
    let first = app
        .post_authed("/api/users/me/passkeys", &tokens.access, Some(&body))
        .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let replay = app
        .post_authed("/api/users/me/passkeys", &tokens.access, Some(&body))
        .await;
    assert_problem(replay, 400, "passkey_invalid").await;
    // An answer from a page of another origin is refused.
    let mut elsewhere = SoftPasskey::new();
    elsewhere.origin = "http://evil.localhost:5000".to_owned();
    assert_problem(
        register(&app, &tokens.access, &mut elsewhere, "Evil").await,
        400,
        "passkey_invalid",
    )
    .await;
}

#[actix_web::test]
async fn a_passkey_is_the_second_step_after_a_password_and_a_clone_is_refused() {
    let app = spawn_app().await;
    let (email, tokens) = app.user_with_session().await;
    let (mut authenticator, _) = registered(&app, &tokens.access).await;
    let (id, options) = challenge(&app, &email).await;
    let allowed = &options["publicKey"]["allowCredentials"];
    assert_eq!(
        allowed[0]["id"].as_str().unwrap(),
        URL_SAFE_NO_PAD.encode(&authenticator.credential_id)
    );
    let clone = authenticator.clone();
    let credential = authenticator.assert(&options);
    let response = answer(&app, &id, &credential).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        claims_of(body["access_token"].as_str().unwrap())["amr"],
        json!(["pwd", "hwk", "mfa"])
    );
    // The same answer again: the challenge is used up.
    assert_problem(answer(&app, &id, &credential).await, 400, "challenge_invalid").await;
    // An answer to one challenge does not finish another.
    let (second, options) = challenge(&app, &email).await;
    assert_problem(answer(&app, &second, &credential).await, 400, "passkey_invalid").await;
    // A copy of the key whose counter stayed behind (a cloned authenticator) is refused.
    let mut clone = clone;
    let cloned = clone.assert(&options);
    assert_problem(answer(&app, &second, &cloned).await, 400, "passkey_invalid").await;
    let (third, options) = challenge(&app, &email).await;
    let response = answer(&app, &third, &authenticator.assert(&options)).await;
    assert_eq!(response.status(), StatusCode::OK);
    // A code in place of the passkey is not an answer to this challenge.
    let (fourth, _) = challenge(&app, &email).await;
    let code = app
        .post_json(
            "/api/auth/login/verify",
            &json!({"challenge_id": fourth, "method": "totp", "code": "123456"}),
        )
        .await;
    assert_problem(code, 400, "challenge_invalid").await;
}

#[actix_web::test]
async fn two_parallel_answers_with_one_counter_make_one_session() {
    let app = spawn_app().await;
    let (email, tokens) = app.user_with_session().await;
    let (mut authenticator, _) = registered(&app, &tokens.access).await;
    let (first, first_options) = challenge(&app, &email).await;
    let (second, second_options) = challenge(&app, &email).await;
    let mut copy = authenticator.clone();
    let (one, other) = (authenticator.assert(&first_options), copy.assert(&second_options));
    let (left, right) = tokio::join!(answer(&app, &first, &one), answer(&app, &second, &other));
    let mut statuses = [left.status().as_u16(), right.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 400]);
}

#[actix_web::test]
async fn a_passkey_signs_in_alone_with_user_verification() {
    let app = spawn_app().await;
    let (_, tokens) = app.user_with_session().await;
    let (mut authenticator, passkey) = registered(&app, &tokens.access).await;
    let ceremony = passwordless_options(&app).await;
    let options = &ceremony["options"];
    assert_eq!(options["publicKey"]["userVerification"], "required");
    assert!(options.get("mediation").is_none_or(Value::is_null), "{options}");
    let credential = authenticator.assert(options);
    let response = passwordless(&app, &ceremony, &credential).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user"]["id"], tokens.body["user"]["id"]);
    assert_eq!(
        claims_of(body["access_token"].as_str().unwrap())["amr"],
        json!(["hwk", "mfa"])
    );
    // The ceremony works once.
    assert_problem(passwordless(&app, &ceremony, &credential).await, 400, "passkey_invalid").await;
    let list: Value = app
        .get_authed("/api/users/me/passkeys", &tokens.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["passkeys"][0]["id"], passkey["id"]);
    assert!(list["passkeys"][0]["last_used_at"].is_string());

    // Without user verification (presence only) a passkey does not sign in.
    authenticator.verifies_user = false;
    let ceremony = passwordless_options(&app).await;
    let credential = authenticator.assert(&ceremony["options"]);
    assert_problem(passwordless(&app, &ceremony, &credential).await, 400, "passkey_invalid").await;
    // A key the server never saw does not either.
    let mut stranger = SoftPasskey::new();
    let ceremony = passwordless_options(&app).await;
    let mut credential = stranger.assert(&ceremony["options"]);
    credential["response"]["userHandle"] = json!(URL_SAFE_NO_PAD.encode(uuid::Uuid::now_v7().as_bytes()));
    assert_problem(passwordless(&app, &ceremony, &credential).await, 400, "passkey_invalid").await;
    // Not JSON of a credential: a field error, not a server error.
    let ceremony = passwordless_options(&app).await;
    let malformed = passwordless(&app, &ceremony, &json!({"id": 5})).await;
    let problem = assert_problem(malformed, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "credential");
}

#[actix_web::test]
async fn a_mailed_code_sign_in_with_a_passkey_asks_for_the_passkey() {
    let app = spawn_app().await;
    let (email, tokens) = app.user_with_session().await;
    let (mut authenticator, _) = registered(&app, &tokens.access).await;
    let before = app.mail.count_subject(&email, "Your sign-in code").await;
    app.post_json("/api/auth/otp/request", &json!({"email": email, "purpose": "login"}))
        .await;
    let code = app
        .mail
        .wait_for_new_subject(&email, "Your sign-in code", before)
        .await
        .code()
        .unwrap();
    let body: Value = app
        .post_json("/api/auth/otp/login", &json!({"email": email, "code": code}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["mfa_required"], true, "{body}");
    assert_eq!(body["methods"], json!(["webauthn"]));
    let credential = authenticator.assert(&body["webauthn"]);
    let response = answer(&app, body["challenge_id"].as_str().unwrap(), &credential).await;
    assert_eq!(response.status(), StatusCode::OK);
    let signed_in: Value = response.json().await.unwrap();
    assert_eq!(
        claims_of(signed_in["access_token"].as_str().unwrap())["amr"],
        json!(["otp", "hwk", "mfa"])
    );
}

#[actix_web::test]
async fn renaming_and_deleting_passkeys_follow_their_rules() {
    let app = spawn_app_with(&[("REAUTHENTICATION_MAX_AGE", "2")]).await;
    let (email, tokens) = app.user_with_session().await;
    let (_, passkey) = registered(&app, &tokens.access).await;
    let path = format!("/api/users/me/passkeys/{}", passkey["id"].as_str().unwrap());
    let renamed = app
        .client
        .patch(app.url(&path))
        .bearer_auth(&tokens.access)
        .json(&json!({"name": "Work laptop"}))
        .send()
        .await
        .unwrap();
    assert_eq!(renamed.status(), StatusCode::OK);
    assert_eq!(renamed.json::<Value>().await.unwrap()["name"], "Work laptop");
    let empty = app
        .client
        .patch(app.url(&path))
        .bearer_auth(&tokens.access)
        .json(&json!({"name": "   "}))
        .send()
        .await
        .unwrap();
    assert_problem(empty, 422, "validation_failed").await;

    // Someone else's passkey is not found, whatever its id.
    let (_, stranger) = app.user_with_session().await;
    assert_problem(app.delete_authed(&path, &stranger.access, None).await, 404, "not_found").await;

    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_problem(
        app.delete_authed(&path, &tokens.access, None).await,
        403,
        "reauthentication_required",
    )
    .await;
    let deleted = app
        .delete_authed(&path, &tokens.access, Some(&json!({"password": PASSWORD})))
        .await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    app.mail
        .wait_for_subject(&email, "A passkey was removed from your account")
        .await;
    // With no passkey left, the password alone signs in again.
    let body: Value = app.login(&email, PASSWORD).await.json().await.unwrap();
    assert!(body["access_token"].is_string(), "{body}");
    // Adding one needs a recent authentication too.
    let stale = app
        .post_authed("/api/users/me/passkeys/options", &tokens.access, None)
        .await;
    assert_problem(stale, 403, "reauthentication_required").await;
}

#[actix_web::test]
async fn an_authenticator_that_counts_nothing_signs_in_but_a_zero_after_a_count_does_not() {
    let app = spawn_app().await;
    let (_, tokens) = app.user_with_session().await;
    let mut synced = SoftPasskey::new();
    synced.counts = false;
    assert_eq!(
        register(&app, &tokens.access, &mut synced, "Synced").await.status(),
        StatusCode::CREATED
    );
    for _ in 0..2 {
        let ceremony = passwordless_options(&app).await;
        let credential = synced.assert(&ceremony["options"]);
        assert_eq!(
            passwordless(&app, &ceremony, &credential).await.status(),
            StatusCode::OK
        );
    }

    let (_, counting_owner) = app.user_with_session().await;
    let (mut counting, _) = registered(&app, &counting_owner.access).await;
    let mut copy = counting.clone();
    copy.counts = false;
    let ceremony = passwordless_options(&app).await;
    let credential = counting.assert(&ceremony["options"]);
    assert_eq!(
        passwordless(&app, &ceremony, &credential).await.status(),
        StatusCode::OK
    );
    // The copy says 0 where the authenticator already said 1.
    let ceremony = passwordless_options(&app).await;
    let credential = copy.assert(&ceremony["options"]);
    assert_problem(passwordless(&app, &ceremony, &credential).await, 400, "passkey_invalid").await;
}

#[actix_web::test]
async fn a_passkey_of_one_account_never_signs_in_to_another() {
    let app = spawn_app().await;
    let (_, owner) = app.user_with_session().await;
    let (mut authenticator, _) = registered(&app, &owner.access).await;
    let (other_email, other) = app.user_with_session().await;
    // The other account cannot register the same credential.
    let mut same = authenticator.clone();
    assert_problem(
        register(&app, &other.access, &mut same, "Borrowed").await,
        400,
        "passkey_invalid",
    )
    .await;
    let (_, other_key) = registered(&app, &other.access).await;
    assert_eq!(other_key["name"], "Laptop");
    // The owner's passkey naming the other account's user handle.
    let ceremony = passwordless_options(&app).await;
    let mut credential = authenticator.assert(&ceremony["options"]);
    credential["response"]["userHandle"] = other.body["user"]["id"]
        .as_str()
        .map(|id| json!(URL_SAFE_NO_PAD.encode(uuid::Uuid::parse_str(id).unwrap().as_bytes())))
        .unwrap();
    assert_problem(passwordless(&app, &ceremony, &credential).await, 400, "passkey_invalid").await;
    // The owner's passkey answering the other account's challenge.
    let (id, options) = challenge(&app, &other_email).await;
    let credential = authenticator.assert(&options);
    assert_problem(answer(&app, &id, &credential).await, 400, "passkey_invalid").await;
}
