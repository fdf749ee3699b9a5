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
