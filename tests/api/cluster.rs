//! Two nodes on one PostgreSQL database: what ends on one is told and refused on the other.
//! These need PostgreSQL; `.ci/run` runs them with `TEST_POSTGRES_URL` set.

use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
use serde_json::{Value, json};

use crate::helpers::{
    TestApp,
    app::two_nodes,
    app::{PASSWORD, SAFARI_IPHONE, Tokens, assert_problem},
    spawn_node_of,
    ws::Socket,
};

#[actix_web::test]
#[ignore = "two nodes share a PostgreSQL database: set TEST_POSTGRES_URL"]
async fn a_revocation_on_one_node_closes_the_socket_and_refuses_the_token_on_the_other() {
    let (node_a, node_b) = two_nodes().await;
    let (email, laptop) = node_a.user_with_session().await;
    let phone = node_a.login_as(&email, PASSWORD, SAFARI_IPHONE).await;
    let mut laptop_socket = node_b.socket(&laptop.access).await;
    let mut phone_socket = node_a.socket(&phone.access).await;

    let response = node_a
        .delete_authed(&format!("/api/auth/sessions/{}", laptop.session), &phone.access, None)
        .await;
    assert_eq!(response.status(), 204);
    let answered = Instant::now();
    // Node A refuses before its revoking request answered.
    assert_problem(
        node_a.get_authed("/api/users/me", &laptop.access).await,
        401,
        "session_revoked",
    )
    .await;

    let event = laptop_socket.next_json_ignoring(&["session_created"]).await;
    let told = answered.elapsed();
    assert_eq!(
        event,
        json!({"type": "session_revoked", "session_id": laptop.session, "reason": "revoked"})
    );
    assert_eq!(laptop_socket.close_code(Duration::from_secs(5)).await, 4001);
    assert_problem(
        node_b.get_authed("/api/users/me", &laptop.access).await,
        401,
        "session_revoked",
    )
    .await;
    assert!(told < Duration::from_secs(1), "node B was told after {told:?}");
    let ended = phone_socket.next_json_ignoring(&["session_created"]).await;
    assert_eq!(ended["type"], "session_ended");
}

#[actix_web::test]
#[ignore = "two nodes share a PostgreSQL database: set TEST_POSTGRES_URL"]
async fn a_token_is_refused_on_the_other_node_within_100_ms() {
    let (node_a, node_b) = two_nodes().await;
    let (email, _) = node_a.user_with_session().await;
    let mut delays = Vec::new();
    for _ in 0..10 {
        let tokens = node_a.login_as(&email, PASSWORD, SAFARI_IPHONE).await;
        assert_eq!(node_b.get_authed("/api/users/me", &tokens.access).await.status(), 200);
        assert_eq!(
            node_a
                .post_authed("/api/auth/logout", &tokens.access, None)
                .await
                .status(),
            204
        );
        let answered = Instant::now();
        while node_b.get_authed("/api/users/me", &tokens.access).await.status() != 401 {
            assert!(
                answered.elapsed() < Duration::from_secs(1),
                "node B still accepted the token after 1 s"
            );
        }
        delays.push(answered.elapsed());
    }
    delays.sort();
    println!("node B refused the token after: {delays:?}");
    // The median holds the contract's 100 ms even on a loaded machine; no trial may come near a second.
    assert!(
        delays[delays.len() / 2] < Duration::from_millis(100),
        "median {:?}",
        delays[delays.len() / 2]
    );
}

#[actix_web::test]
#[ignore = "two nodes share a PostgreSQL database: set TEST_POSTGRES_URL"]
async fn a_ticket_from_one_node_works_on_the_other_once() {
    let (node_a, node_b) = two_nodes().await;
    let (_, tokens) = node_a.user_with_session().await;
    let ticket = node_a.ticket(&tokens.access).await;
    let mut socket = node_b
        .try_socket(&format!("?ticket={ticket}"), &[])
        .await
        .expect("node B accepts node A's ticket");
    assert_eq!(socket.next_json().await["type"], "hello");
    let again = node_a
        .try_socket(&format!("?ticket={ticket}"), &[])
        .await
        .err()
        .expect("used up");
    assert_eq!(again.status, 401);
}

#[actix_web::test]
#[ignore = "two nodes share a PostgreSQL database: set TEST_POSTGRES_URL"]
async fn presence_and_new_sign_ins_cross_nodes() {
    let (node_a, node_b) = two_nodes().await;
    let (email, laptop) = node_a.user_with_session().await;
    let mut socket = node_b.socket(&laptop.access).await;
    crate::realtime::wait_for_online(&node_a, &laptop.access, &laptop.session, true).await;

    let phone = node_a.login_as(&email, PASSWORD, SAFARI_IPHONE).await;
    let created = socket.next_json().await;
    assert_eq!(created["type"], "session_created");
    assert_eq!(created["session"]["id"], phone.session.as_str());
    socket.assert_quiet().await;

    socket.send(tokio_tungstenite::tungstenite::Message::Close(None)).await;
    let _ = socket.close_code(Duration::from_secs(5)).await;
    crate::realtime::wait_for_online(&node_a, &laptop.access, &laptop.session, false).await;
}

#[actix_web::test]
#[ignore = "two nodes share a PostgreSQL database: set TEST_POSTGRES_URL"]
async fn a_lost_presence_row_is_written_again_by_the_next_heartbeat() {
    let (node_a, node_b) = two_nodes().await;
    let (_, laptop) = node_a.user_with_session().await;
    let _socket = node_b.socket(&laptop.access).await;
    crate::realtime::wait_for_online(&node_a, &laptop.access, &laptop.session, true).await;
    // The row goes, as when a write failed or rows were pruned while node B could not reach the database.
    let database = Database::connect(&node_a.database_url).await.unwrap();
    database
        .execute_unprepared("DELETE FROM session_presence")
        .await
        .unwrap();
    let deadline = Instant::now() + authd::realtime::presence::HEARTBEAT + Duration::from_secs(5);
    let mut seen_offline = false;
    loop {
        let online = crate::realtime::online_of(&node_a, &laptop.access, &laptop.session).await;
        seen_offline |= !online;
        if online && seen_offline {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the socket on node B never showed as online again"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[actix_web::test]
#[ignore = "two nodes share a PostgreSQL database: set TEST_POSTGRES_URL"]
async fn a_crashed_nodes_presence_goes_stale() {
    let (node_a, _) = two_nodes().await;
    let (_, tokens) = node_a.user_with_session().await;
    let database = Database::connect(&node_a.database_url).await.unwrap();
    // A row a vanished node left behind 50 s ago, past the 45 s its heartbeat would have refreshed it in.
    let seen_at = chrono::Utc::now() - chrono::Duration::seconds(50);
    database
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO session_presence (node_id, session_id, user_id, seen_at) VALUES ($1, $2, $3, $4)",
            [
                uuid::Uuid::now_v7().into(),
                uuid::Uuid::parse_str(&tokens.session).unwrap().into(),
                uuid::Uuid::parse_str(tokens.body["user"]["id"].as_str().unwrap())
                    .unwrap()
                    .into(),
                seen_at.into(),
            ],
        ))
        .await
        .unwrap();
    let listed: Value = node_a
        .get_authed("/api/auth/sessions", &tokens.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["sessions"][0]["online"], false);
}

/// The process id of `node`'s listening PostgreSQL backend, read through `database`.
async fn listener_pid(database: &sea_orm::DatabaseConnection, node: &TestApp) -> i32 {
    let name = authd::realtime::bus::listener_name(node.application_state.node);
    let pids = database
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1",
            [name.into()],
        ))
        .await
        .unwrap();
    assert_eq!(pids.len(), 1, "the node has one listening connection");
    pids[0].try_get("", "pid").unwrap()
}

/// A session signed in on node A with a socket on node B, and node B's listening backend.
struct Listening {
    node_a: TestApp,
    node_b: TestApp,
    tokens: Tokens,
    socket: Socket,
    /// A connection of the test's own, for reading and signalling the backend.
    database: sea_orm::DatabaseConnection,
    /// Node B's listening backend.
    pid: i32,
}

impl Listening {
    async fn start() -> Self {
        let (node_a, node_b) = two_nodes().await;
        let (_, tokens) = node_a.user_with_session().await;
        let socket = node_b.socket(&tokens.access).await;
        let database = Database::connect(&node_a.database_url).await.unwrap();
        let pid = listener_pid(&database, &node_b).await;
        Self {
            node_a,
            node_b,
            tokens,
            socket,
            database,
            pid,
        }
    }

    async fn log_out_on_node_a(&self) {
        let response = self
            .node_a
            .post_authed("/api/auth/logout", &self.tokens.access, None)
            .await;
        assert_eq!(response.status(), 204);
    }
}

#[actix_web::test]
#[ignore = "two nodes share a PostgreSQL database: set TEST_POSTGRES_URL"]
async fn a_node_that_lost_its_listening_connection_catches_up() {
    let mut listening = Listening::start().await;
    let by_pid = |sql: &'static str| Statement::from_sql_and_values(DbBackend::Postgres, sql, [listening.pid.into()]);
    listening
        .database
        .query_all_raw(by_pid("SELECT pg_terminate_backend($1)"))
        .await
        .unwrap();
    // Revoke once node B is deaf (a connection lost within 6 s of its start is replaced a second later), so
    // the notification is missed.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !listening
        .database
        .query_all_raw(by_pid("SELECT pid FROM pg_stat_activity WHERE pid = $1"))
        .await
        .unwrap()
        .is_empty()
    {
        assert!(Instant::now() < deadline, "the listening connection did not go away");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    listening.log_out_on_node_a().await;

    listening.socket.expect_revoked("logout").await;
    assert_problem(
        listening
            .node_b
            .get_authed("/api/users/me", &listening.tokens.access)
            .await,
        401,
        "session_revoked",
    )
    .await;
}

/// Resumes a stopped PostgreSQL backend, whatever the test's outcome.
struct Stopped(i32);

impl Stopped {
    fn signal(pid: i32, signal: &str) {
        let status = std::process::Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal} {pid}");
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        Self::signal(self.0, "-CONT");
    }
}

#[actix_web::test]
#[ignore = "two nodes share a PostgreSQL database: set TEST_POSTGRES_URL"]
async fn a_node_whose_listening_connection_goes_silent_replaces_it_and_catches_up() {
    let mut listening = Listening::start().await;
    // Stopping node B's listening backend leaves its connection open and silent, like a half-open TCP
    // connection after a partition: no error ever reaches the node.
    Stopped::signal(listening.pid, "-STOP");
    let _resume = Stopped(listening.pid);
    listening.log_out_on_node_a().await;

    // Node B notices the silence (its heartbeat does not come back), listens anew and reads the log.
    let started = Instant::now();
    while listening
        .node_b
        .get_authed("/api/users/me", &listening.tokens.access)
        .await
        .status()
        == 200
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "node B never learned of the revocation"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    listening.socket.expect_revoked("logout").await;
}

#[actix_web::test]
#[ignore = "two nodes share a PostgreSQL database: set TEST_POSTGRES_URL"]
async fn delivery_latency_across_two_nodes() {
    let (node_a, node_b) = two_nodes().await;
    let (email, _) = node_a.user_with_session().await;
    let mut latencies = Vec::new();
    for _ in 0..100 {
        let device = node_a.login_as(&email, PASSWORD, SAFARI_IPHONE).await;
        let mut socket = node_b.socket(&device.access).await;
        assert_eq!(
            node_a
                .post_authed("/api/auth/logout", &device.access, None)
                .await
                .status(),
            204
        );
        let answered = Instant::now();
        let event = socket.next_json().await;
        latencies.push(answered.elapsed());
        assert_eq!(event["type"], "session_revoked");
    }
    crate::helpers::report_latency("two nodes", &mut latencies);
}

#[actix_web::test]
#[ignore = "two nodes share a PostgreSQL database: set TEST_POSTGRES_URL"]
async fn back_off_holds_across_nodes() {
    let (node_a, _) = two_nodes().await;
    let node_b = spawn_node_of(&node_a, &[("LOGIN_LOCKOUT_THRESHOLD", "10")]).await;
    let (email, _) = node_a.user_with_session().await;
    // Ten failures spread over both nodes lock the address on both.
    for attempt in 0..10 {
        let node = if attempt % 2 == 0 { &node_a } else { &node_b };
        assert_problem(
            node.login(&email, "a wrong password here").await,
            401,
            "invalid_credentials",
        )
        .await;
    }
    assert_problem(node_a.login(&email, PASSWORD).await, 429, "account_locked").await;
    assert_problem(node_b.login(&email, PASSWORD).await, 429, "account_locked").await;
}

/// The ids node `node` lists, polled until `wanted` holds or `within` passes.
async fn listed_until(
    node: &TestApp,
    access: &str,
    within: Duration,
    wanted: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let deadline = Instant::now() + within;
    loop {
        let ids = node.session_ids(access).await;
        if wanted(&ids) || Instant::now() >= deadline {
            return ids;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_web::test]
#[ignore = "two nodes share a PostgreSQL database: set TEST_POSTGRES_URL"]
async fn a_list_on_one_node_shows_sign_ins_and_revocations_on_the_other_before_its_copy_ages() {
    let (node_a, node_b) = two_nodes().await;
    let (email, laptop) = node_a.user_with_session().await;
    // Node B now holds a one-second copy of the list; only the bus can make it show node A's changes sooner.
    assert_eq!(
        listed_until(&node_b, &laptop.access, Duration::ZERO, |_| true)
            .await
            .len(),
        1
    );

    let phone = node_a.login_as(&email, PASSWORD, SAFARI_IPHONE).await;
    let started = Instant::now();
    let ids = listed_until(&node_b, &laptop.access, Duration::from_millis(500), |ids| {
        ids.len() == 2
    })
    .await;
    assert_eq!(
        ids,
        [phone.session.as_str(), laptop.session.as_str()],
        "after {:?}",
        started.elapsed()
    );

    let response = node_a
        .delete_authed(&format!("/api/auth/sessions/{}", phone.session), &laptop.access, None)
        .await;
    assert_eq!(response.status(), reqwest::StatusCode::NO_CONTENT);
    let started = Instant::now();
    let ids = listed_until(&node_b, &laptop.access, Duration::from_millis(500), |ids| {
        ids.len() == 1
    })
    .await;
    assert_eq!(ids, [laptop.session.as_str()], "after {:?}", started.elapsed());
}
