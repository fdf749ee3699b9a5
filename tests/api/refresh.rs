use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    TestApp,
    app::{PASSWORD, Tokens, assert_problem},
    spawn_app, spawn_app_with, spawn_node_of,
};

#[actix_web::test]
async fn refresh_rotates_and_a_reuse_after_the_grace_window_revokes_the_session() {
    let app = spawn_app_with(&[("REFRESH_GRACE", "1")]).await;
    let (email, first) = app.user_with_session().await;

    let response = app.refresh(&first.refresh).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let second = Tokens::from_body(response.json().await.unwrap());
    assert_ne!(second.refresh, first.refresh);
    assert_ne!(second.access, first.access);
    assert_eq!(second.session, first.session);
    assert_eq!(second.body["user"]["email"], email.as_str());

    let third = Tokens::from_body(app.refresh(&second.refresh).await.json().await.unwrap());
    assert_eq!(
        app.get_authed("/api/users/me", &third.access).await.status(),
        StatusCode::OK
    );

    tokio::time::sleep(Duration::from_millis(1600)).await;
    // The first token was rotated out long ago: showing it now means it was copied.
    assert_problem(app.refresh(&first.refresh).await, 401, "refresh_token_reused").await;
    assert_problem(
        app.get_authed("/api/users/me", &third.access).await,
        401,
        "session_revoked",
    )
    .await;
    assert_problem(app.refresh(&third.refresh).await, 401, "refresh_token_invalid").await;
    let sessions = app
        .client
        .post(app.url("/api/auth/login"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let other = Tokens::from_body(sessions.json().await.unwrap());
    assert!(!app.session_ids(&other.access).await.contains(&first.session));
    app.mail
        .wait_for_subject(&email, "A session of yours was ended for your safety")
        .await;
}

#[actix_web::test]
async fn an_ended_token_inside_the_grace_window_answers_the_same_successor() {
    let app = spawn_app().await;
    let (_, first) = app.user_with_session().await;
    let once: Value = app.refresh(&first.refresh).await.json().await.unwrap();
    let again: Value = app.refresh(&first.refresh).await.json().await.unwrap();
    assert_eq!(once["refresh_token"], again["refresh_token"]);
    assert_eq!(once["session_id"], again["session_id"]);
}

#[actix_web::test]
async fn twenty_concurrent_refreshes_with_one_token_all_answer_the_same_successor() {
    let app = spawn_app_with(&[("REFRESH_GRACE", "1")]).await;
    let (_, first) = app.user_with_session().await;
    let attempts = (0..20).map(|_| app.refresh(&first.refresh));
    let responses = futures_util::future::join_all(attempts).await;
    let mut successors = std::collections::HashSet::new();
    for response in responses {
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        successors.insert(body["refresh_token"].as_str().unwrap().to_owned());
    }
    assert_eq!(successors.len(), 1, "racing refreshes answered different successors");
    let successor = successors.into_iter().next().unwrap();

    tokio::time::sleep(Duration::from_millis(1600)).await;
    let next = app.refresh(&successor).await;
    assert_eq!(
        next.status(),
        StatusCode::OK,
        "the successor keeps working after the window"
    );
    let next = Tokens::from_body(next.json().await.unwrap());
    assert_eq!(
        app.get_authed("/api/users/me", &next.access).await.status(),
        StatusCode::OK
    );
}

/// The console's origin, allowed by default.
const CONSOLE_ORIGIN: &str = "http://localhost:5000";

/// A client that keeps cookies and sends the `Origin` a browser sends from the console.
fn browser_client() -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("origin", reqwest::header::HeaderValue::from_static(CONSOLE_ORIGIN));
    reqwest::Client::builder()
        .cookie_store(true)
        .default_headers(headers)
        .build()
        .unwrap()
}

/// A browser sends the refresh cookie on any request to the service, even a plain form post from a sibling
/// subdomain: the cookie counts only with an allowed `Origin` or `Sec-Fetch-Site: same-origin`.
#[actix_web::test]
async fn the_refresh_cookie_counts_only_from_an_allowed_origin() {
    let app = spawn_app().await;
    let (_, tokens) = app.user_with_session().await;
    let cookie = format!("refresh_token={}", tokens.refresh);
    let post = |path: &'static str, headers: Vec<(&'static str, &'static str)>| {
        let mut request = app.client.post(app.url(path)).header("cookie", cookie.clone());
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.send()
    };
    for headers in [
        vec![],
        vec![("origin", "https://evil.example.com")],
        vec![("origin", "http://localhost:5001")],
        vec![("sec-fetch-site", "same-site")],
    ] {
        assert_problem(
            post("/api/auth/refresh", headers.clone()).await.unwrap(),
            403,
            "origin_not_allowed",
        )
        .await;
        assert_problem(
            post("/api/auth/logout", headers).await.unwrap(),
            403,
            "origin_not_allowed",
        )
        .await;
    }
    // Nothing above ended or rotated the session.
    let same_origin = post("/api/auth/refresh", vec![("sec-fetch-site", "same-origin")])
        .await
        .unwrap();
    assert_eq!(same_origin.status(), StatusCode::OK);
    let from_console = post("/api/auth/logout", vec![("origin", CONSOLE_ORIGIN)])
        .await
        .unwrap();
    assert_eq!(from_console.status(), StatusCode::NO_CONTENT);
}

#[actix_web::test]
async fn the_refresh_cookie_works_without_a_body_or_with_an_empty_object() {
    let app = spawn_app().await;
    let email = crate::helpers::app::unique_email();
    app.signed_up_user(&email).await;
    let browser = browser_client();
    let login = browser
        .post(app.url("/api/auth/login"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    let session = login.json::<Value>().await.unwrap()["session_id"].clone();

    let bare = browser.post(app.url("/api/auth/refresh")).send().await.unwrap();
    assert_eq!(bare.status(), StatusCode::OK);
    assert_eq!(bare.json::<Value>().await.unwrap()["session_id"], session);
    let empty_object = browser
        .post(app.url("/api/auth/refresh"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(empty_object.status(), StatusCode::OK);

    let logout = browser.post(app.url("/api/auth/logout")).send().await.unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    let after = app.client.post(app.url("/api/auth/refresh")).send().await.unwrap();
    assert_problem(after, 401, "refresh_token_invalid").await;
}

#[actix_web::test]
async fn a_cookie_logout_with_a_rotated_out_token_ends_the_session_as_a_reuse() {
    let app = spawn_app_with(&[("REFRESH_GRACE", "1")]).await;
    let (email, first) = app.user_with_session().await;
    let second = Tokens::from_body(app.refresh(&first.refresh).await.json().await.unwrap());
    let mut socket = app.socket(&second.access).await;
    tokio::time::sleep(Duration::from_millis(1600)).await;
    // Someone holding the first token, rotated out long ago, signs "out" with it.
    let logout = app
        .client
        .post(app.url("/api/auth/logout"))
        .header("cookie", format!("refresh_token={}", first.refresh))
        .header("origin", CONSOLE_ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    let event = socket.next_json().await;
    assert_eq!(event["type"], "session_revoked");
    assert_eq!(event["reason"], "refresh_token_reused");
    app.mail
        .wait_for_subject(&email, "A session of yours was ended for your safety")
        .await;
}

#[actix_web::test]
async fn unknown_or_malformed_refresh_tokens_are_invalid() {
    let app = spawn_app().await;
    assert_problem(app.refresh("not-a-token").await, 401, "refresh_token_invalid").await;
    assert_problem(app.refresh(&"A".repeat(43)).await, 401, "refresh_token_invalid").await;
    assert_problem(
        app.post_json("/api/auth/refresh", &json!({})).await,
        401,
        "refresh_token_invalid",
    )
    .await;
}

#[actix_web::test]
async fn an_idle_session_expires() {
    let app = spawn_app_with(&[("SESSION_IDLE_TTL", "1")]).await;
    let (_, tokens) = app.user_with_session().await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_problem(app.refresh(&tokens.refresh).await, 401, "session_expired").await;
}

#[actix_web::test]
async fn a_session_past_its_absolute_life_expires_and_its_tokens_never_outlive_it() {
    let app = spawn_app_with(&[("SESSION_TTL", "2")]).await;
    let (_, tokens) = app.user_with_session().await;
    assert!(tokens.body["expires_in"].as_i64().unwrap() <= 2);
    assert!(tokens.body["refresh_expires_in"].as_i64().unwrap() <= 2);
    tokio::time::sleep(Duration::from_millis(2600)).await;
    assert_problem(app.refresh(&tokens.refresh).await, 401, "session_expired").await;
}

/// A session whose first token was rotated on one node, and a second node on its database with another
/// JWT_ACCESS_SECRET, from which the successor key comes: there every token's successor is another.
async fn rotated_then_another_secret(grace: &str) -> (TestApp, TestApp, Tokens, Tokens) {
    let before = spawn_app_with(&[("REFRESH_GRACE", grace)]).await;
    let (_, first) = before.user_with_session().await;
    let second = Tokens::from_body(before.refresh(&first.refresh).await.json().await.unwrap());
    let after = spawn_node_of(
        &before,
        &[
            ("REFRESH_GRACE", grace),
            ("JWT_ACCESS_SECRET", "another-jwt-secret-that-is-at-least-32-bytes-long"),
        ],
    )
    .await;
    (before, after, first, second)
}

#[actix_web::test]
async fn after_a_secret_change_the_newest_token_goes_on_and_an_older_one_is_still_a_reuse() {
    let (_before, after, first, second) = rotated_then_another_secret("1").await;
    tokio::time::sleep(Duration::from_millis(1200)).await;

    let response = after.refresh(&second.refresh).await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "the newest token of the chain keeps working"
    );
    let third = Tokens::from_body(response.json().await.unwrap());
    assert_eq!(third.session, first.session);
    // The first token's successor under the new key was never issued; the chain must not fork from it.
    assert_problem(after.refresh(&first.refresh).await, 401, "refresh_token_reused").await;
    assert_problem(after.refresh(&third.refresh).await, 401, "refresh_token_invalid").await;
}

#[actix_web::test]
async fn inside_the_grace_a_node_with_another_secret_hands_out_no_token_that_does_not_exist() {
    let (_before, after, first, second) = rotated_then_another_secret("30").await;
    // A second tab retries the first token on the other node within the grace: that node would derive a
    // successor the chain does not hold.
    assert_problem(after.refresh(&first.refresh).await, 401, "refresh_token_invalid").await;
    // The chain itself goes on, and nothing was ended.
    let third = after.refresh(&second.refresh).await;
    assert_eq!(third.status(), StatusCode::OK);
    assert_eq!(Tokens::from_body(third.json().await.unwrap()).session, first.session);
}

#[actix_web::test]
async fn the_chain_order_does_not_depend_on_the_clocks_of_the_nodes_that_rotated_it() {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
    let app = spawn_app_with(&[("REFRESH_GRACE", "1")]).await;
    let (_, first) = app.user_with_session().await;
    let second = Tokens::from_body(app.refresh(&first.refresh).await.json().await.unwrap());
    // As if another node whose clock runs an hour behind had made the successor.
    let database = sea_orm::Database::connect(&app.database_url).await.unwrap();
    entity::refresh_token::Entity::update_many()
        .col_expr(
            entity::refresh_token::Column::CreatedAt,
            Expr::value(chrono::Utc::now() - chrono::Duration::hours(1)),
        )
        .filter(entity::refresh_token::Column::ParentId.is_not_null())
        .exec(&database)
        .await
        .unwrap();

    let response = app.refresh(&second.refresh).await;
    assert_eq!(response.status(), StatusCode::OK, "the newest token is refused");
    let third = Tokens::from_body(response.json().await.unwrap());
    assert_eq!(
        app.get_authed("/api/users/me", &third.access).await.status(),
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_problem(app.refresh(&second.refresh).await, 401, "refresh_token_reused").await;
}
