use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{
    app::{PASSWORD, assert_problem, unique_email},
    spawn_app,
};

#[actix_web::test]
async fn malformed_json_is_a_400() {
    let app = spawn_app().await;
    for body in [
        "{\"email\": ",
        "not json",
        "{\"email\": \"a@b.co\", \"password\": \"x\"} trailing",
    ] {
        let response = app
            .client
            .post(app.url("/api/auth/login"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let problem = assert_problem(response, 400, "malformed_request").await;
        assert!(!problem.to_string().contains("a@b.co"), "input echoed: {problem}");
    }
}

#[actix_web::test]
async fn a_body_without_the_json_content_type_is_a_415() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/api/auth/login"))
        .header("content-type", "text/plain")
        .body(json!({"email": unique_email(), "password": PASSWORD}).to_string())
        .send()
        .await
        .unwrap();
    assert_problem(response, 415, "unsupported_media_type").await;
    let missing = app
        .client
        .post(app.url("/api/auth/register"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_problem(missing, 415, "unsupported_media_type").await;
}

#[actix_web::test]
async fn a_body_over_16_kib_is_a_413_and_the_server_keeps_serving() {
    let app = spawn_app().await;
    let huge = json!({"email": unique_email(), "password": "x".repeat(17 * 1024)});
    assert_problem(
        app.post_json("/api/auth/register", &huge).await,
        413,
        "payload_too_large",
    )
    .await;
    assert_eq!(
        app.client.get(app.url("/health/live")).send().await.unwrap().status(),
        StatusCode::OK
    );
}

#[actix_web::test]
async fn unknown_routes_and_wrong_methods_speak_problem_json() {
    let app = spawn_app().await;
    assert_problem(app.client.get(app.url("/nope")).send().await.unwrap(), 404, "not_found").await;
    assert_problem(
        app.client.get(app.url("/api/auth/nope")).send().await.unwrap(),
        404,
        "not_found",
    )
    .await;
    // A 405 names the methods the path takes.
    for (method, path, allowed) in [
        (reqwest::Method::GET, "/api/auth/login", "POST"),
        (reqwest::Method::PUT, "/api/users/me", "GET, PATCH, DELETE"),
        (reqwest::Method::TRACE, "/health/live", "GET"),
    ] {
        let response = app.client.request(method, app.url(path)).send().await.unwrap();
        assert_eq!(response.headers()["allow"], allowed, "{path}");
        assert_problem(response, 405, "method_not_allowed").await;
    }
}

#[actix_web::test]
async fn shape_errors_are_422_with_the_field_named() {
    let app = spawn_app().await;
    let missing = assert_problem(
        app.post_json("/api/auth/register", &json!({"email": unique_email()}))
            .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(missing["errors"][0]["field"], "password");
    let wrong_type = assert_problem(
        app.post_json(
            "/api/auth/register",
            &json!({"email": unique_email(), "password": 12345678}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(wrong_type["errors"][0]["field"], "password");
    let not_object = assert_problem(
        app.post_json("/api/auth/register", &json!(["a"])).await,
        422,
        "validation_failed",
    )
    .await;
    assert!(not_object["errors"].is_array());
}

#[actix_web::test]
async fn bad_emails_and_weak_passwords_are_refused_with_reasons() {
    let app = spawn_app().await;
    let response = app
        .post_json("/api/auth/register", &json!({"email": "nobody", "password": "short"}))
        .await;
    let body = assert_problem(response, 422, "validation_failed").await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| error["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["email", "password"]);
    let common = app.register(&unique_email(), "iloveyou123").await;
    let body = assert_problem(common, 422, "validation_failed").await;
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("common"));
    let long = app.register(&unique_email(), &"y".repeat(129)).await;
    assert_problem(long, 422, "validation_failed").await;
    assert!(!body.to_string().contains("iloveyou123"), "the password was echoed");
}

#[actix_web::test]
async fn error_bodies_never_carry_secrets_or_internals() {
    let app = spawn_app().await;
    let (_, tokens) = app.user_with_session().await;
    let responses = [
        app.refresh(&tokens.access).await,
        app.login(&unique_email(), "some password here").await,
        app.get_authed("/api/users/me", &format!("{}x", tokens.access)).await,
    ];
    for response in responses {
        let text = response.text().await.unwrap();
        for needle in [
            tokens.access.as_str(),
            tokens.refresh.as_str(),
            "SELECT",
            "sqlx",
            "panicked",
            "argon2",
        ] {
            assert!(!text.contains(needle), "{needle} leaked in {text}");
        }
    }
}

/// A password built from the owner's address or name is refused wherever a password is chosen.
#[actix_web::test]
async fn passwords_built_from_the_address_or_name_are_refused() {
    let app = spawn_app().await;
    let email = unique_email();
    let local = email.split('@').next().unwrap().to_owned();
    for (password, name) in [
        (email.clone(), None),
        (format!("{local}-2024!"), None),
        ("I am Grace Hopper".to_owned(), Some("Grace Hopper")),
    ] {
        let mut body = json!({"email": email, "password": password});
        if let Some(name) = name {
            body["name"] = json!(name);
        }
        let refused = app.post_json("/api/auth/register", &body).await;
        let body = assert_problem(refused, 422, "validation_failed").await;
        assert_eq!(body["errors"][0]["field"], "password", "{body}");
    }
    let (owner, tokens) = app.user_with_session().await;
    let change = app
        .post_authed(
            "/api/users/me/password",
            &tokens.access,
            Some(&json!({"current_password": PASSWORD, "new_password": format!("{owner}!")})),
        )
        .await;
    assert_problem(change, 422, "validation_failed").await;
}

/// Addresses a mail cannot be delivered to are refused at registration, so no account waits for a code that
/// can never arrive.
#[actix_web::test]
async fn undeliverable_addresses_are_refused() {
    let app = spawn_app().await;
    for address in ["\"a b\"@example.com", "\"alice\"@example.com", "al..ice@example.com"] {
        let body = assert_problem(app.register(address, PASSWORD).await, 422, "validation_failed").await;
        assert_eq!(body["errors"][0]["field"], "email");
    }
}

/// Input the database cannot store (a NUL byte on PostgreSQL) is answered like any wrong address, on both
/// backends, and keeps no row keyed by the raw input.
#[actix_web::test]
async fn addresses_with_nul_bytes_answer_as_wrong_ones() {
    use sea_orm::{EntityTrait, PaginatorTrait};
    let app = spawn_app().await;
    let wrong = assert_problem(
        app.login(&unique_email(), "some password here").await,
        401,
        "invalid_credentials",
    )
    .await;
    for address in ["\u{0}", "a\u{0}b@example.com", &"x".repeat(15_000)] {
        let answer = assert_problem(
            app.login(address, "some password here").await,
            401,
            "invalid_credentials",
        )
        .await;
        assert_eq!(answer, wrong);
    }
    let longest_key = entity::address_throttle::Entity::find()
        .all(app.application_state.store.connection())
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.key.len())
        .max()
        .unwrap();
    assert!(longest_key < 100, "a throttle key of {longest_key} bytes");
    assert!(
        entity::address_throttle::Entity::find()
            .count(app.application_state.store.connection())
            .await
            .unwrap()
            >= 3
    );
}

/// Valid JSON of the wrong shape is 422 on every endpoint, whatever the field's type (an enum, a struct read
/// from an array); only text that is not JSON is 400.
#[actix_web::test]
async fn valid_json_of_the_wrong_shape_is_422_everywhere() {
    let app = spawn_app().await;
    for purpose in [json!(5), json!({}), json!([null, null])] {
        let response = app
            .post_json(
                "/api/auth/otp/request",
                &json!({"email": "a@example.com", "purpose": purpose}),
            )
            .await;
        let body = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(body["errors"][0]["field"], "purpose", "{body}");
    }
    for path in ["/api/auth/refresh", "/api/auth/login", "/api/auth/register"] {
        for shape in [json!([null, null]), json!(["x", {}]), json!(7), json!("text")] {
            let response = app.post_json(path, &shape).await;
            assert_problem(response, 422, "validation_failed").await;
        }
    }
}

/// A field given twice is refused, not read as its last value: a proxy that reads the first one must not see
/// another request than authd does.
#[actix_web::test]
async fn a_field_given_twice_is_refused() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/api/auth/login"))
        .header("content-type", "application/json")
        .body(r#"{"email": "a@example.com", "email": "b@example.com", "password": "some password here"}"#)
        .send()
        .await
        .unwrap();
    assert_problem(response, 422, "validation_failed").await;
}
