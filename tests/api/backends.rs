//! What apps' backends call with a backend key: introspection and the revocation feed.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{
    TestApp,
    app::{PASSWORD, SAFARI_IPHONE, assert_problem},
    spawn_app,
};

async fn introspect(app: &TestApp, key: &str, token: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/auth/introspect"))
        .bearer_auth(key)
        .header("content-type", "application/x-www-form-urlencoded")
        // Tokens are base64url and dots: nothing to escape.
        .body(format!("token={token}"))
        .send()
        .await
        .unwrap()
}

/// A subscriber of the revocation feed, reading events as they come.
struct Feed {
    response: reqwest::Response,
    buffer: String,
}

impl Feed {
    async fn open(app: &TestApp, key: &str, last_event_id: Option<&str>) -> Feed {
        let mut request = app.client.get(app.url("/api/revocations/stream")).bearer_auth(key);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Feed {
            response,
            buffer: String::new(),
        }
    }

    /// The next event (`id`, `data`), or `None` when none comes within `wait`; comments are skipped.
    async fn next(&mut self, wait: Duration) -> Option<(String, Value)> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let field = |name: &str| {
                    block
                        .lines()
                        .find_map(|line| line.strip_prefix(name))
                        .map(|value| value.trim().to_owned())
                };
                if let (Some(id), Some(data)) = (field("id:"), field("data:")) {
                    assert_eq!(field("event:").as_deref(), Some("revoked"), "{block}");
                    return Some((id, serde_json::from_str(&data).unwrap()));
                }
                continue;
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            match tokio::time::timeout(left, self.response.chunk()).await {
                Ok(Ok(Some(chunk))) => self.buffer.push_str(std::str::from_utf8(&chunk).unwrap()),
                Ok(_) => panic!("the feed ended"),
                Err(_) => return None,
            }
        }
    }
}

#[actix_web::test]
async fn introspection_answers_whether_a_token_is_active() {
    let app = spawn_app().await;
    let key = app.backend_key().await;
    let (_, tokens) = app.user_with_session().await;

    let response = introspect(&app, &key, &tokens.access).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["active"], true);
    assert_eq!(answer["sub"], tokens.body["user"]["id"]);
    assert_eq!(answer["sid"], tokens.session.as_str());
    assert_eq!(answer["token_type"], "access_token");
    // RFC 7662's hint is taken and ignored.
    let hinted = app
        .client
        .post(app.url("/api/auth/introspect"))
        .bearer_auth(&key)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={}&token_type_hint=refresh_token", tokens.access))
        .send()
        .await
        .unwrap();
    assert_eq!(hinted.json::<Value>().await.unwrap()["active"], true);

    assert_eq!(
        app.post_authed("/api/auth/logout", &tokens.access, None).await.status(),
        204
    );
    let answer: Value = introspect(&app, &key, &tokens.access).await.json().await.unwrap();
    assert_eq!(answer, serde_json::json!({"active": false}));
    let answer: Value = introspect(&app, &key, "not.a.token").await.json().await.unwrap();
    assert_eq!(answer, serde_json::json!({"active": false}));

    // Only a backend key opens it: not a user's token, not a made-up key.
    let (_, other) = app.user_with_session().await;
    for credential in [
        other.access.as_str(),
        "authd_bk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        assert_problem(introspect(&app, credential, &other.access).await, 401, "unauthorized").await;
    }
    let response = app
        .client
        .post(app.url("/api/auth/introspect"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={}", other.access))
        .send()
        .await
        .unwrap();
    assert_problem(response, 401, "unauthorized").await;
}

#[actix_web::test]
async fn the_feed_sends_the_snapshot_then_each_end_live_and_resumes_after_the_last_id() {
    let app = spawn_app().await;
    let key = app.backend_key().await;
    let (email, first) = app.user_with_session().await;
    let second = app.login_as(&email, PASSWORD, SAFARI_IPHONE).await;
    let third = app.login_as(&email, PASSWORD, SAFARI_IPHONE).await;
    // Ended before the subscriber connects: in the snapshot.
    assert_eq!(
        app.post_authed("/api/auth/logout", &first.access, None).await.status(),
        204
    );

    let mut feed = Feed::open(&app, &key, None).await;
    let (_, event) = feed.next(Duration::from_secs(5)).await.expect("the snapshot");
    assert_eq!(event["session_id"], first.session.as_str());
    assert_eq!(event["user_id"], first.body["user"]["id"]);
    assert_eq!(event["reason"], "logout");
    let ended = chrono::DateTime::parse_from_rfc3339(event["ended_at"].as_str().unwrap()).unwrap();
    let valid_until = chrono::DateTime::parse_from_rfc3339(event["valid_until"].as_str().unwrap()).unwrap();
    assert_eq!((valid_until - ended).num_seconds(), 900 + 60);

    // Ended while it listens: told at once.
    let revoked = app
        .delete_authed(&format!("/api/auth/sessions/{}", second.session), &third.access, None)
        .await;
    assert_eq!(revoked.status(), 204);
    let (second_id, event) = feed.next(Duration::from_secs(2)).await.expect("a live event");
    assert_eq!(event["session_id"], second.session.as_str());
    assert_eq!(event["reason"], "revoked");
    drop(feed);

    // Ended while it was away: after reconnecting with the last id, that end and nothing it had.
    assert_eq!(
        app.post_authed("/api/auth/logout", &third.access, None).await.status(),
        204
    );
    let mut feed = Feed::open(&app, &key, Some(&second_id)).await;
    let (_, event) = feed.next(Duration::from_secs(5)).await.expect("the missed end");
    assert_eq!(event["session_id"], third.session.as_str());
    assert!(
        feed.next(Duration::from_millis(1500)).await.is_none(),
        "an event came twice"
    );

    // A Last-Event-ID that is not one is refused.
    let response = app
        .client
        .get(app.url("/api/revocations/stream"))
        .bearer_auth(&key)
        .header("Last-Event-ID", "yesterday")
        .send()
        .await
        .unwrap();
    assert_problem(response, 400, "malformed_request").await;
}

#[actix_web::test]
async fn backend_keys_are_made_and_revoked_from_the_command_line() {
    let app = spawn_app().await;
    let printed = app.command_line(&["backend-keys", "create", "notes-api"]);
    let key = printed.lines().last().unwrap().trim().to_owned();
    assert!(key.starts_with("authd_bk_"), "{printed}");
    // Every node takes it within 5 s.
    let (_, tokens) = app.user_with_session().await;
    let deadline = Instant::now() + Duration::from_secs(7);
    while introspect(&app, &key, &tokens.access).await.status() != 200 {
        assert!(Instant::now() < deadline, "the key was not taken");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let listed = app.command_line(&["backend-keys", "list"]);
    let id = listed
        .lines()
        .find(|line| line.contains("notes-api"))
        .and_then(|line| line.split('\t').next())
        .unwrap()
        .to_owned();
    assert!(!listed.contains(&key), "the key was listed");
    app.command_line(&["backend-keys", "revoke", &id]);
    let deadline = Instant::now() + Duration::from_secs(7);
    while introspect(&app, &key, &tokens.access).await.status() != 401 {
        assert!(Instant::now() < deadline, "the revoked key still works");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let response = app
        .client
        .get(app.url("/api/revocations/stream"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_problem(response, 401, "unauthorized").await;
}

#[actix_web::test]
#[ignore = "two nodes share a PostgreSQL database: set TEST_POSTGRES_URL"]
async fn the_feed_of_one_node_tells_ends_made_on_another() {
    let (first, second) = crate::helpers::app::two_nodes().await;
    let key = first.backend_key().await;
    let state = &second.application_state;
    state.backend_keys.reload(state.store.connection()).await.unwrap();
    let mut feed = Feed::open(&second, &key, None).await;
    let (_, tokens) = first.user_with_session().await;
    let started = Instant::now();
    assert_eq!(
        first
            .post_authed("/api/auth/logout", &tokens.access, None)
            .await
            .status(),
        204
    );
    // The other node's bus wakes the feed; its one-second poll is not what delivers it.
    let (_, event) = feed
        .next(Duration::from_millis(900))
        .await
        .expect("the end made on the other node");
    assert_eq!(event["session_id"], tokens.session.as_str());
    assert!(started.elapsed() < Duration::from_millis(900));
}
