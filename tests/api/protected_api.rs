//! The example API of `examples/notes-api`, protected with `authd-verify`, started here beside the real server:
//! it refuses a session ended at authd at once, with no request to authd per call, and stays right across a
//! feed outage.

use std::{
    net::TcpListener,
    time::{Duration, Instant},
};

use authd_verify::{Config, Verifier, VerifyError};
use serde_json::Value;

use crate::helpers::{TestApp, app::PASSWORD, spawn_app, spawn_app_with, spawn_node_of};

/// The notes API in front of `verifier`; answers its address.
fn notes_api(verifier: &Verifier) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    actix_web::rt::spawn(notes_api::serve(verifier.clone(), listener).unwrap());
    address
}

async fn notes(api: &str, token: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .get(format!("{api}/notes"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

/// Requests authd has answered so far, from its `/metrics` (this read itself is counted once it is answered).
async fn authd_requests(app: &TestApp) -> u64 {
    let text = app.get("/metrics").await.text().await.unwrap();
    text.lines()
        .filter(|line| line.starts_with("authd_http_request_duration_seconds_count"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[actix_web::test]
async fn the_api_refuses_a_logged_out_session_at_once_and_asks_authd_nothing_per_call() {
    let app = spawn_app().await;
    let verifier = Verifier::start(Config::new(&app.address, "authd", &app.backend_key().await))
        .await
        .unwrap();
    assert!(verifier.feed_is_connected());
    let api = notes_api(&verifier);
    let (_, tokens) = app.user_with_session().await;

    let before = authd_requests(&app).await;
    for _ in 0..20 {
        let (status, body) = notes(&api, &tokens.access).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["user"], tokens.body["user"]["id"]);
        assert_eq!(body["session"], tokens.session.as_str());
    }
    // The one more request authd counted is the first `/metrics` read.
    assert_eq!(
        authd_requests(&app).await,
        before + 1,
        "the API asked authd during its calls"
    );

    assert_eq!(
        app.post_authed("/api/auth/logout", &tokens.access, None).await.status(),
        204
    );
    let started = Instant::now();
    loop {
        let (status, body) = notes(&api, &tokens.access).await;
        if status == 401 {
            assert_eq!(body["error"], "session_revoked");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the API still serves a logged-out session"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // A token that is not authd's, or none, is refused too.
    assert_eq!(notes(&api, "not.a.token").await.0, 401);
    let (status, body) = notes(&api, "").await;
    assert_eq!((status, body["error"].as_str()), (401, Some("unauthorized")));
}

/// The verifier hands the app what authd says of how the session was authenticated, for its own step-up.
#[actix_web::test]
async fn the_verifier_tells_how_and_when_the_user_authenticated() {
    let app = spawn_app().await;
    let (email, _) = app.user_with_session().await;
    let signed_in = app.login_as(&email, PASSWORD, crate::helpers::app::FIREFOX).await;
    let verifier = Verifier::start(Config::new(&app.address, "authd", &app.backend_key().await))
        .await
        .unwrap();
    let claims = verifier.verify(&signed_in.access).await.unwrap();
    assert_eq!(claims.amr, ["pwd"]);
    assert!(!claims.is_multi_factor());
    let now = chrono::Utc::now().timestamp();
    assert!(claims.authenticated_within(Duration::from_secs(60), now));
    assert!(!claims.authenticated_within(Duration::from_secs(60), now + 120));
}

#[actix_web::test]
async fn an_api_started_after_the_revocation_refuses_it() {
    let app = spawn_app().await;
    let (_, tokens) = app.user_with_session().await;
    assert_eq!(
        app.post_authed("/api/auth/logout", &tokens.access, None).await.status(),
        204
    );
    let verifier = Verifier::start(Config::new(&app.address, "authd", &app.backend_key().await))
        .await
        .unwrap();
    assert_eq!(verifier.verify(&tokens.access).await.unwrap_err(), VerifyError::Revoked);
    let (status, body) = notes(&notes_api(&verifier), &tokens.access).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("session_revoked")));
}

#[actix_web::test]
async fn a_session_ended_while_the_feed_was_down_is_refused_once_it_is_back() {
    let first = spawn_app().await;
    let port = first.address.rsplit(':').next().unwrap().to_owned();
    let mut config = Config::new(&first.address, "authd", &first.backend_key().await);
    config.max_feed_outage = Duration::from_secs(60);
    let verifier = Verifier::start(config).await.unwrap();
    let api = notes_api(&verifier);
    let (email, laptop) = first.user_with_session().await;
    let phone = first
        .login_as(&email, PASSWORD, crate::helpers::app::SAFARI_IPHONE)
        .await;

    // The node the API listens to stops; the session ends through another node of the same database.
    first.shutdown.run().await;
    let other = spawn_node_of(&first, &[]).await;
    let revoked = other
        .delete_authed(&format!("/api/auth/sessions/{}", laptop.session), &phone.access, None)
        .await;
    assert_eq!(revoked.status(), 204);
    // Still within the outage bound and not told yet: the API goes on serving (fail-closed comes later).
    assert_eq!(notes(&api, &phone.access).await.0, 200);

    // The node comes back on its address; the API resumes after its last event and hears of the end.
    let back = spawn_node_of(&first, &[("PORT", port.as_str())]).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while notes(&api, &laptop.access).await.0 != 401 {
        assert!(
            Instant::now() < deadline,
            "the end made while the feed was down was never applied"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(notes(&api, &phone.access).await.0, 200);
    drop(back);
}

#[actix_web::test]
async fn a_feed_down_too_long_fails_closed_unless_configured_open() {
    let app = spawn_app_with(&[]).await;
    let key = app.backend_key().await;
    let mut closed = Config::new(&app.address, "authd", &key);
    closed.max_feed_outage = Duration::from_millis(500);
    let mut open = closed.clone();
    open.fail_open = true;
    let closed = Verifier::start(closed).await.unwrap();
    let open = Verifier::start(open).await.unwrap();
    let api = notes_api(&closed);
    let (_, tokens) = app.user_with_session().await;
    assert_eq!(notes(&api, &tokens.access).await.0, 200);

    // Stopping ends the feed's stream within its 5 s of grace; then the bound runs.
    app.shutdown.run().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = notes(&api, &tokens.access).await;
        if status == 401 {
            assert_eq!(body["error"], "revocations_unavailable");
            break;
        }
        assert!(Instant::now() < deadline, "a stale feed still let tokens through");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(closed.feed_is_stale());
    assert_eq!(
        open.verify(&tokens.access).await.unwrap().sid.to_string(),
        tokens.session
    );
}

#[actix_web::test]
#[ignore = "two nodes share a PostgreSQL database: set TEST_POSTGRES_URL"]
async fn the_api_refuses_a_session_revoked_on_another_node() {
    let (first, second) = crate::helpers::app::two_nodes().await;
    let verifier = Verifier::start(Config::new(&first.address, "authd", &first.backend_key().await))
        .await
        .unwrap();
    let api = notes_api(&verifier);
    let (_, tokens) = second.user_with_session().await;
    assert_eq!(notes(&api, &tokens.access).await.0, 200);
    assert_eq!(
        second
            .post_authed("/api/auth/logout", &tokens.access, None)
            .await
            .status(),
        204
    );
    let started = Instant::now();
    while notes(&api, &tokens.access).await.0 != 401 {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the API still serves a session revoked elsewhere"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
