use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    app::{FIREFOX, PASSWORD, SAFARI_IPHONE, Tokens, assert_problem},
    spawn_app, spawn_app_with,
};

#[actix_web::test]
async fn two_devices_are_listed_newest_first_with_labels_and_current() {
    let app = spawn_app().await;
    let (email, _) = app.user_with_session().await;
    let laptop = app.login_as(&email, PASSWORD, FIREFOX).await;
    let phone = app.login_as(&email, PASSWORD, SAFARI_IPHONE).await;
    let response = app.get_authed("/api/auth/sessions", &phone.access).await;
    assert_eq!(response.status(), StatusCode::OK);
    let sessions = response.json::<Value>().await.unwrap()["sessions"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(sessions.len(), 3);
    assert_eq!(sessions[0]["id"], phone.session.as_str());
    assert_eq!(sessions[0]["device"], "Safari on iPhone");
    assert_eq!(sessions[0]["current"], true);
    assert_eq!(sessions[0]["user_agent"], SAFARI_IPHONE);
    assert_eq!(sessions[0]["ip"], "127.0.0.1");
    assert_eq!(sessions[0]["online"], false);
    assert_eq!(sessions[1]["id"], laptop.session.as_str());
    assert_eq!(sessions[1]["device"], "Firefox on Linux");
    assert_eq!(sessions[1]["current"], false);
    for key in ["created_at", "last_used_at", "expires_at"] {
        assert!(
            chrono::DateTime::parse_from_rfc3339(sessions[0][key].as_str().unwrap()).is_ok(),
            "{key}"
        );
    }
}

#[actix_web::test]
async fn revoking_a_session_by_id_refuses_its_tokens_at_once() {
    let app = spawn_app().await;
    let (email, laptop) = app.user_with_session().await;
    let phone = app.login_as(&email, PASSWORD, SAFARI_IPHONE).await;
    let response = app
        .delete_authed(&format!("/api/auth/sessions/{}", laptop.session), &phone.access, None)
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
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
    // Already ended: nothing left to end.
    let again = app
        .delete_authed(&format!("/api/auth/sessions/{}", laptop.session), &phone.access, None)
        .await;
    assert_problem(again, 404, "not_found").await;
}

#[actix_web::test]
async fn another_users_session_id_is_not_found_and_stays_alive() {
    let app = spawn_app().await;
    let (_, alice) = app.user_with_session().await;
    let (_, mallory) = app.user_with_session().await;
    let response = app
        .delete_authed(&format!("/api/auth/sessions/{}", alice.session), &mallory.access, None)
        .await;
    assert_problem(response, 404, "not_found").await;
    assert_eq!(
        app.get_authed("/api/users/me", &alice.access).await.status(),
        StatusCode::OK
    );
    let malformed = app
        .delete_authed("/api/auth/sessions/not-a-uuid", &mallory.access, None)
        .await;
    assert_problem(malformed, 404, "not_found").await;
}

#[actix_web::test]
async fn logout_ends_the_current_session_only() {
    let app = spawn_app().await;
    let (email, laptop) = app.user_with_session().await;
    let phone = app.login_as(&email, PASSWORD, SAFARI_IPHONE).await;
    let response = app.post_authed("/api/auth/logout", &laptop.access, None).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
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
}

#[actix_web::test]
async fn logout_without_a_token_or_cookie_is_unauthorized() {
    let app = spawn_app().await;
    assert_problem(
        app.client.post(app.url("/api/auth/logout")).send().await.unwrap(),
        401,
        "unauthorized",
    )
    .await;
}

#[actix_web::test]
async fn logout_all_ends_every_session() {
    let app = spawn_app().await;
    let (email, laptop) = app.user_with_session().await;
    let phone = app.login_as(&email, PASSWORD, SAFARI_IPHONE).await;
    let response = app.post_authed("/api/auth/logout-all", &phone.access, None).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    for tokens in [&laptop, &phone] {
        assert_problem(
            app.get_authed("/api/users/me", &tokens.access).await,
            401,
            "session_revoked",
        )
        .await;
        assert_problem(app.refresh(&tokens.refresh).await, 401, "refresh_token_invalid").await;
    }
}

#[actix_web::test]
async fn logout_all_can_keep_the_current_session() {
    let app = spawn_app().await;
    let (email, laptop) = app.user_with_session().await;
    let phone = app.login_as(&email, PASSWORD, SAFARI_IPHONE).await;
    let response = app
        .post_authed(
            "/api/auth/logout-all",
            &phone.access,
            Some(&json!({"keep_current": true})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
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
    assert_eq!(app.refresh(&phone.refresh).await.status(), StatusCode::OK);
    let listed: Value = app
        .get_authed("/api/auth/sessions", &phone.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["sessions"].as_array().unwrap().len(), 1);
    // `false` said outright behaves as the default.
    let response = app
        .post_authed(
            "/api/auth/logout-all",
            &phone.access,
            Some(&json!({"keep_current": false})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_problem(
        app.get_authed("/api/users/me", &phone.access).await,
        401,
        "session_revoked",
    )
    .await;
}

#[actix_web::test]
async fn a_restarted_node_still_refuses_tokens_of_sessions_ended_before() {
    let first = spawn_app().await;
    let (_, tokens) = first.user_with_session().await;
    assert_eq!(
        first
            .post_authed("/api/auth/logout", &tokens.access, None)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    // A second application on the same database stands for the node after a restart.
    let restarted = crate::helpers::spawn_node_of(&first, &[]).await;
    assert_problem(
        restarted.get_authed("/api/users/me", &tokens.access).await,
        401,
        "session_revoked",
    )
    .await;
}

#[actix_web::test]
async fn a_list_read_a_moment_ago_shows_every_change_at_once() {
    let app = spawn_app().await;
    let (email, laptop) = app.user_with_session().await;
    assert_eq!(app.session_ids(&laptop.access).await, [laptop.session.as_str()]);

    // The node keeps each list for a second; every change inside that second must show in the next read.
    let phone = app.login_as(&email, PASSWORD, SAFARI_IPHONE).await;
    assert_eq!(
        app.session_ids(&laptop.access).await,
        [phone.session.as_str(), laptop.session.as_str()]
    );
    let response = app
        .delete_authed(&format!("/api/auth/sessions/{}", phone.session), &laptop.access, None)
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.session_ids(&laptop.access).await, [laptop.session.as_str()]);

    let tablet = app.login_as(&email, PASSWORD, FIREFOX).await;
    assert_eq!(app.session_ids(&laptop.access).await.len(), 2);
    let response = app
        .post_authed(
            "/api/auth/logout-all",
            &laptop.access,
            Some(&json!({"keep_current": true})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.session_ids(&laptop.access).await, [laptop.session.as_str()]);
    assert_problem(
        app.get_authed("/api/auth/sessions", &tablet.access).await,
        401,
        "session_revoked",
    )
    .await;
}

#[actix_web::test]
async fn a_refresh_that_records_the_last_use_shows_in_the_list_at_once() {
    // An idle limit of 3 s records the last use at a precision of 0.3 s.
    let app = spawn_app_with(&[("SESSION_IDLE_TTL", "3")]).await;
    let (_, first) = app.user_with_session().await;
    let last_used = |listed: Value| listed["sessions"][0]["last_used_at"].as_str().unwrap().to_owned();
    let before = last_used(
        app.get_authed("/api/auth/sessions", &first.access)
            .await
            .json()
            .await
            .unwrap(),
    );
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let second = Tokens::from_body(app.refresh(&first.refresh).await.json().await.unwrap());
    let after = last_used(
        app.get_authed("/api/auth/sessions", &second.access)
            .await
            .json()
            .await
            .unwrap(),
    );
    let (before, after) = (
        chrono::DateTime::parse_from_rfc3339(&before).unwrap(),
        chrono::DateTime::parse_from_rfc3339(&after).unwrap(),
    );
    assert!(
        after - before >= chrono::Duration::milliseconds(400),
        "{before} -> {after}"
    );
}
