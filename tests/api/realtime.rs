use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{
    Message,
    client::IntoClientRequest,
    http::HeaderValue,
    protocol::frame::{
        Frame,
        coding::{Data, OpCode},
    },
};

use crate::helpers::{
    TestApp,
    app::{PASSWORD, SAFARI_IPHONE, Tokens, assert_problem},
    spawn_app, spawn_app_with,
    ws::Socket,
};

const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// A user with two devices, each with a socket open.
async fn two_devices(app: &TestApp) -> (String, Tokens, Socket, Tokens, Socket) {
    let (email, laptop) = app.user_with_session().await;
    let phone = app.login_as(&email, PASSWORD, SAFARI_IPHONE).await;
    let laptop_socket = app.socket(&laptop.access).await;
    let phone_socket = app.socket(&phone.access).await;
    (email, laptop, laptop_socket, phone, phone_socket)
}

/// The ended device's socket hears `session_revoked` with `reason` and closes with 4001.
async fn assert_revoked(socket: &mut Socket, session: &str, reason: &str) {
    let event = socket.next_json().await;
    assert_eq!(
        event,
        json!({"type": "session_revoked", "session_id": session, "reason": reason})
    );
    assert_eq!(socket.close_code(CLOSE_WAIT).await, 4001);
}

async fn assert_ended(socket: &mut Socket, session: &str, reason: &str) {
    let event = socket.next_json().await;
    assert_eq!(
        event,
        json!({"type": "session_ended", "session_id": session, "reason": reason})
    );
}

#[actix_web::test]
async fn logout_is_pushed_to_the_session_and_to_the_other_devices() {
    let app = spawn_app().await;
    let (_, laptop, mut laptop_socket, phone, mut phone_socket) = two_devices(&app).await;
    assert_eq!(
        app.post_authed("/api/auth/logout", &laptop.access, None).await.status(),
        204
    );
    assert_revoked(&mut laptop_socket, &laptop.session, "logout").await;
    assert_ended(&mut phone_socket, &laptop.session, "logout").await;
    assert_problem(
        app.get_authed("/api/users/me", &laptop.access).await,
        401,
        "session_revoked",
    )
    .await;
    assert_eq!(app.get_authed("/api/users/me", &phone.access).await.status(), 200);
}

#[actix_web::test]
async fn logout_all_is_pushed_to_every_ended_session_and_the_kept_one_hears_of_them() {
    let app = spawn_app().await;
    let (email, laptop, mut laptop_socket, phone, mut phone_socket) = two_devices(&app).await;
    let tablet = app.login_as(&email, PASSWORD, "TabletApp/1.0").await;
    let mut tablet_socket = app.socket(&tablet.access).await;
    // The new sign-in was announced to the sockets already open.
    for socket in [&mut laptop_socket, &mut phone_socket] {
        let created = socket.next_json().await;
        assert_eq!(created["type"], "session_created");
    }
    let response = app
        .post_authed(
            "/api/auth/logout-all",
            &tablet.access,
            Some(&json!({"keep_current": true})),
        )
        .await;
    assert_eq!(response.status(), 204);
    assert_revoked(&mut laptop_socket, &laptop.session, "logout_all").await;
    assert_revoked(&mut phone_socket, &phone.session, "logout_all").await;
    let mut ended = [tablet_socket.next_json().await, tablet_socket.next_json().await];
    ended.sort_by_key(|event| event["session_id"].as_str().unwrap().to_owned());
    let mut expected = vec![laptop.session.clone(), phone.session.clone()];
    expected.sort();
    for (event, session) in ended.iter().zip(expected) {
        assert_eq!(
            event,
            &json!({"type": "session_ended", "session_id": session, "reason": "logout_all"})
        );
    }
    for tokens in [&laptop, &phone] {
        assert_problem(
            app.get_authed("/api/users/me", &tokens.access).await,
            401,
            "session_revoked",
        )
        .await;
    }
}

#[actix_web::test]
async fn a_session_revoked_from_another_device_is_told_at_once() {
    let app = spawn_app().await;
    let (_, laptop, mut laptop_socket, phone, mut phone_socket) = two_devices(&app).await;
    let response = app
        .delete_authed(&format!("/api/auth/sessions/{}", laptop.session), &phone.access, None)
        .await;
    assert_eq!(response.status(), 204);
    assert_revoked(&mut laptop_socket, &laptop.session, "revoked").await;
    assert_ended(&mut phone_socket, &laptop.session, "revoked").await;
    assert_problem(
        app.get_authed("/api/users/me", &laptop.access).await,
        401,
        "session_revoked",
    )
    .await;
}

#[actix_web::test]
async fn refresh_token_reuse_is_pushed() {
    let app = spawn_app_with(&[("REFRESH_GRACE", "1")]).await;
    let (_, laptop, mut laptop_socket, _, mut phone_socket) = two_devices(&app).await;
    assert_eq!(app.refresh(&laptop.refresh).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_problem(app.refresh(&laptop.refresh).await, 401, "refresh_token_reused").await;
    assert_revoked(&mut laptop_socket, &laptop.session, "refresh_token_reused").await;
    assert_ended(&mut phone_socket, &laptop.session, "refresh_token_reused").await;
    assert_problem(
        app.get_authed("/api/users/me", &laptop.access).await,
        401,
        "session_revoked",
    )
    .await;
}

#[actix_web::test]
async fn a_password_change_is_pushed_to_the_other_sessions() {
    let app = spawn_app().await;
    let (_, laptop, mut laptop_socket, phone, mut phone_socket) = two_devices(&app).await;
    let body = json!({"current_password": PASSWORD, "new_password": "an entirely new passphrase"});
    assert_eq!(
        app.post_authed("/api/users/me/password", &phone.access, Some(&body))
            .await
            .status(),
        204
    );
    assert_revoked(&mut laptop_socket, &laptop.session, "password_changed").await;
    assert_ended(&mut phone_socket, &laptop.session, "password_changed").await;
    assert_problem(
        app.get_authed("/api/users/me", &laptop.access).await,
        401,
        "session_revoked",
    )
    .await;
}

#[actix_web::test]
async fn account_deletion_is_pushed_to_every_session() {
    let app = spawn_app().await;
    let (_, laptop, mut laptop_socket, phone, mut phone_socket) = two_devices(&app).await;
    let response = app
        .delete_authed("/api/users/me", &phone.access, Some(&json!({"password": PASSWORD})))
        .await;
    assert_eq!(response.status(), 204);
    assert_revoked(&mut laptop_socket, &laptop.session, "revoked").await;
    assert_revoked(&mut phone_socket, &phone.session, "revoked").await;
}

#[actix_web::test]
async fn a_session_reaching_its_absolute_life_is_pushed_as_expired() {
    let app = spawn_app_with(&[("SESSION_TTL", "3")]).await;
    let (_, laptop, mut laptop_socket, phone, mut phone_socket) = two_devices(&app).await;
    let expires_at = chrono::Utc::now() + chrono::Duration::seconds(3);
    let event = laptop_socket.next_json().await;
    let late = chrono::Utc::now() - expires_at;
    assert!(late < chrono::Duration::milliseconds(1000), "told {late} after the end");
    assert_eq!(event["type"], "session_revoked");
    assert_eq!(event["reason"], "expired");
    assert_eq!(laptop_socket.close_code(CLOSE_WAIT).await, 4001);
    // The phone hears of the laptop first (it signed in first), then its own end.
    assert_ended(&mut phone_socket, &laptop.session, "expired").await;
    assert_revoked(&mut phone_socket, &phone.session, "expired").await;
    assert_problem(app.refresh(&laptop.refresh).await, 401, "session_expired").await;
}

#[actix_web::test]
async fn a_socket_whose_node_missed_the_end_of_its_session_is_told_at_its_next_check() {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
    let app = spawn_app_with(&[("SESSION_TTL", "3")]).await;
    let (_, tokens) = app.user_with_session().await;
    let mut socket = app.socket(&tokens.access).await;
    // The session ends in the database alone, as another node would end it while this one's bus is down
    // for longer than the catch-up reaches back.
    let session: uuid::Uuid = tokens.session.parse().unwrap();
    entity::session::Entity::update_many()
        .col_expr(entity::session::Column::RevokedAt, Expr::value(chrono::Utc::now()))
        .col_expr(entity::session::Column::RevokedReason, Expr::value("logout"))
        .filter(entity::session::Column::Id.eq(session))
        .exec(app.application_state.store.connection())
        .await
        .unwrap();
    // When the socket checks its session at the session's time limit, it finds the end it missed.
    let event = tokio::time::timeout(Duration::from_secs(8), socket.next_json())
        .await
        .expect("the socket is told");
    assert_eq!(
        event,
        json!({"type": "session_revoked", "session_id": tokens.session, "reason": "logout"})
    );
    assert_eq!(socket.close_code(CLOSE_WAIT).await, 4001);
    assert_problem(
        app.get_authed("/api/users/me", &tokens.access).await,
        401,
        "session_revoked",
    )
    .await;
}

#[actix_web::test]
async fn an_idle_session_ends_and_its_socket_is_told_but_a_refresh_keeps_it() {
    let app = spawn_app_with(&[("SESSION_IDLE_TTL", "2")]).await;
    let (email, idle) = app.user_with_session().await;
    let active = app.login_as(&email, PASSWORD, SAFARI_IPHONE).await;
    let mut idle_socket = app.socket(&idle.access).await;
    let mut active_socket = app.socket(&active.access).await;
    // The active device refreshes before its idle limit; the other does nothing.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let active = Tokens::from_body(app.refresh(&active.refresh).await.json().await.unwrap());
    assert_revoked(&mut idle_socket, &idle.session, "expired").await;
    assert_ended(&mut active_socket, &idle.session, "expired").await;
    assert_eq!(app.get_authed("/api/users/me", &active.access).await.status(), 200);
    assert_problem(
        app.get_authed("/api/users/me", &idle.access).await,
        401,
        "session_expired",
    )
    .await;
    // Ended by the sweeper, the idle session's refresh token still tells why.
    assert_problem(app.refresh(&idle.refresh).await, 401, "session_expired").await;
}

#[actix_web::test]
async fn a_new_sign_in_is_announced_to_the_existing_sockets() {
    let app = spawn_app().await;
    let (email, laptop) = app.user_with_session().await;
    let mut socket = app.socket(&laptop.access).await;
    let phone = app.login_as(&email, PASSWORD, SAFARI_IPHONE).await;
    let event = socket.next_json().await;
    assert_eq!(event["type"], "session_created");
    assert_eq!(event["session"]["id"], phone.session.as_str());
    assert_eq!(event["session"]["device"], "Safari on iPhone");
    assert_eq!(event["session"]["current"], false);
    socket.assert_quiet().await;
}

#[actix_web::test]
async fn hello_names_the_session_and_user() {
    let app = spawn_app().await;
    let (_, tokens) = app.user_with_session().await;
    let ticket = app.ticket(&tokens.access).await;
    let mut socket = app
        .try_socket(&format!("?ticket={ticket}"), &[("origin", "http://localhost:5000")])
        .await
        .unwrap();
    let hello = socket.next_json().await;
    assert_eq!(
        hello,
        json!({"type": "hello", "session_id": tokens.session, "user_id": tokens.body["user"]["id"]})
    );
}

#[actix_web::test]
async fn upgrades_are_refused_before_the_handshake_for_bad_origins_and_credentials() {
    let app = spawn_app().await;
    let (_, tokens) = app.user_with_session().await;
    let bearer = format!("Bearer {}", tokens.access);

    let bad_origin = app
        .try_socket("", &[("authorization", &bearer), ("origin", "https://evil.example")])
        .await
        .err()
        .unwrap();
    assert_eq!(bad_origin.status, 403);
    assert_eq!(bad_origin.body["code"], "origin_not_allowed");
    let ticket = app.ticket(&tokens.access).await;
    let origin_first = app
        .try_socket(&format!("?ticket={ticket}"), &[("origin", "https://evil.example")])
        .await
        .err()
        .unwrap();
    assert_eq!(
        origin_first.status, 403,
        "the origin is checked first, and the ticket stays unused"
    );
    assert!(
        app.try_socket(&format!("?ticket={ticket}"), &[("origin", "http://127.0.0.1:5000")])
            .await
            .is_ok()
    );

    let missing = app.try_socket("", &[]).await.err().unwrap();
    assert_eq!(
        (missing.status, missing.body["code"].as_str()),
        (401, Some("unauthorized"))
    );
    let used = app.try_socket(&format!("?ticket={ticket}"), &[]).await.err().unwrap();
    assert_eq!((used.status, used.body["code"].as_str()), (401, Some("unauthorized")));
    let unknown = app
        .try_socket(&format!("?ticket={}", "x".repeat(43)), &[])
        .await
        .err()
        .unwrap();
    assert_eq!(unknown.status, 401);

    let stale = app.ticket(&tokens.access).await;
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    let database = app.application_state.store.connection();
    let past = chrono::Utc::now() - chrono::Duration::seconds(1);
    database
        .execute_raw(Statement::from_sql_and_values(
            database.get_database_backend(),
            if database.get_database_backend() == DbBackend::Postgres {
                "UPDATE ws_tickets SET expires_at = $1"
            } else {
                "UPDATE ws_tickets SET expires_at = ?"
            },
            [past.into()],
        ))
        .await
        .unwrap();
    let expired = app.try_socket(&format!("?ticket={stale}"), &[]).await.err().unwrap();
    assert_eq!(expired.status, 401);

    assert_eq!(
        app.post_authed("/api/auth/logout", &tokens.access, None).await.status(),
        204
    );
    let revoked = app.try_socket("", &[("authorization", &bearer)]).await.err().unwrap();
    assert_eq!(
        (revoked.status, revoked.body["code"].as_str()),
        (401, Some("session_revoked"))
    );
}

#[actix_web::test]
async fn a_ticket_is_single_use_under_concurrency() {
    let app = spawn_app().await;
    let (_, tokens) = app.user_with_session().await;
    let ticket = app.ticket(&tokens.access).await;
    let query = format!("?ticket={ticket}");
    let attempts = (0..5).map(|_| app.try_socket(&query, &[]));
    let accepted = futures_util::future::join_all(attempts)
        .await
        .into_iter()
        .filter(Result::is_ok)
        .count();
    assert_eq!(accepted, 1);
}

/// A frame header announcing 2^60 bytes is refused by its header, without waiting for the payload.
#[actix_web::test]
async fn a_frame_announcing_a_huge_payload_closes_with_1009_at_once() {
    use tokio::io::AsyncWriteExt;
    let app = spawn_app().await;
    let (_, tokens) = app.user_with_session().await;
    let mut socket = app.socket(&tokens.access).await;
    let tokio_tungstenite::MaybeTlsStream::Plain(connection) = socket.stream.get_mut() else {
        panic!("a plain connection");
    };
    let mut header = vec![0x82, 0x80 | 127];
    header.extend_from_slice(&(1u64 << 60).to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]);
    connection.write_all(&header).await.unwrap();
    assert_eq!(socket.close_code(Duration::from_secs(1)).await, 1009);
}

#[actix_web::test]
async fn an_oversized_message_closes_with_1009() {
    let app = spawn_app().await;
    let (_, tokens) = app.user_with_session().await;
    let mut socket = app.socket(&tokens.access).await;
    socket.send(Message::Text("small frames are ignored".into())).await;
    socket.assert_quiet().await;
    socket.send(Message::Text("x".repeat(5000).into())).await;
    assert_eq!(socket.close_code(CLOSE_WAIT).await, 1009);

    // Fragments count together.
    let mut socket = app.socket(&tokens.access).await;
    socket
        .send(Message::Frame(Frame::message(
            vec![b'a'; 3000],
            OpCode::Data(Data::Text),
            false,
        )))
        .await;
    socket
        .send(Message::Frame(Frame::message(
            vec![b'b'; 3000],
            OpCode::Data(Data::Continue),
            true,
        )))
        .await;
    assert_eq!(socket.close_code(CLOSE_WAIT).await, 1009);
}

#[actix_web::test]
async fn invalid_utf8_closes_with_1007() {
    let app = spawn_app().await;
    let (_, tokens) = app.user_with_session().await;
    let mut socket = app.socket(&tokens.access).await;
    socket
        .send(Message::Frame(Frame::message(
            vec![0xff, 0xfe, 0xfd],
            OpCode::Data(Data::Text),
            true,
        )))
        .await;
    assert_eq!(socket.close_code(CLOSE_WAIT).await, 1007);
}

/// The opcodes and close code of the frames a server sent, from raw bytes.
fn server_frames(mut bytes: &[u8]) -> (Vec<u8>, Option<u16>) {
    let (mut opcodes, mut close) = (Vec::new(), None);
    while bytes.len() >= 2 {
        let opcode = bytes[0] & 0x0f;
        let (length, header) = match bytes[1] & 0x7f {
            126 => (usize::from(u16::from_be_bytes([bytes[2], bytes[3]])), 4),
            127 => panic!("unexpectedly long frame"),
            short => (usize::from(short), 2),
        };
        let payload = &bytes[header..header + length];
        if opcode == 0x8 && payload.len() >= 2 {
            close = Some(u16::from_be_bytes([payload[0], payload[1]]));
        }
        opcodes.push(opcode);
        bytes = &bytes[header + length..];
    }
    (opcodes, close)
}

#[actix_web::test]
async fn a_silent_client_is_dropped_after_the_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app_with(&[("WS_PING_INTERVAL", "1"), ("WS_CLIENT_TIMEOUT", "2")]).await;
    let (_, tokens) = app.user_with_session().await;
    // A raw client that never answers the pings: silence, as a vanished device would keep.
    let port = app.address.rsplit(':').next().unwrap();
    let mut stream = tokio::net::TcpStream::connect(format!("127.0.0.1:{port}"))
        .await
        .unwrap();
    let handshake = format!(
        "GET /api/ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer {}\r\n\r\n",
        tokens.access
    );
    stream.write_all(handshake.as_bytes()).await.unwrap();
    let opened = Instant::now();
    let mut received = Vec::new();
    tokio::time::timeout(Duration::from_secs(6), stream.read_to_end(&mut received))
        .await
        .expect("dropped in time")
        .unwrap();
    let elapsed = opened.elapsed();
    assert!(elapsed >= Duration::from_secs(2), "dropped after {elapsed:?}");
    let split = received.windows(4).position(|window| window == b"\r\n\r\n").unwrap() + 4;
    assert!(received.starts_with(b"HTTP/1.1 101"));
    let (opcodes, close) = server_frames(&received[split..]);
    assert!(opcodes.contains(&0x9), "the server pinged: {opcodes:?}");
    assert_eq!(close, Some(1001));

    // A client that answers pings stays.
    let mut lively = app.socket(&tokens.access).await;
    let kept = tokio::time::timeout(Duration::from_millis(3500), lively.next_json()).await;
    assert!(kept.is_err(), "a lively client was sent something: {kept:?}");
}

pub async fn online_of(app: &TestApp, access: &str, session: &str) -> bool {
    let listed: Value = app.get_authed("/api/auth/sessions", access).await.json().await.unwrap();
    listed["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["id"] == session)
        .unwrap()["online"]
        .as_bool()
        .unwrap()
}

pub async fn wait_for_online(app: &TestApp, access: &str, session: &str, expected: bool) {
    let deadline = Instant::now() + Duration::from_secs(1);
    while online_of(app, access, session).await != expected {
        assert!(Instant::now() < deadline, "online did not become {expected} within 1 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_web::test]
async fn online_flips_while_a_socket_is_open() {
    let app = spawn_app().await;
    let (email, laptop) = app.user_with_session().await;
    let phone = app.login_as(&email, PASSWORD, SAFARI_IPHONE).await;
    assert!(!online_of(&app, &phone.access, &laptop.session).await);
    let mut socket = app.socket(&laptop.access).await;
    wait_for_online(&app, &phone.access, &laptop.session, true).await;
    socket.send(Message::Close(None)).await;
    let _ = socket.close_code(CLOSE_WAIT).await;
    wait_for_online(&app, &phone.access, &laptop.session, false).await;
}

#[actix_web::test]
async fn the_ticket_endpoint_needs_a_live_session() {
    let app = spawn_app().await;
    assert_problem(
        app.client.post(app.url("/api/auth/ws-ticket")).send().await.unwrap(),
        401,
        "unauthorized",
    )
    .await;
    let (_, tokens) = app.user_with_session().await;
    assert_eq!(
        app.post_authed("/api/auth/logout", &tokens.access, None).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_problem(
        app.post_authed("/api/auth/ws-ticket", &tokens.access, None).await,
        401,
        "session_revoked",
    )
    .await;
}

/// Revoking HTTP response to event received, 100 times; the figures are printed, and a loose bound keeps
/// a regression visible.
#[actix_web::test]
async fn delivery_latency_on_one_node() {
    let app = spawn_app().await;
    let (email, _) = app.user_with_session().await;
    let mut latencies = Vec::new();
    for _ in 0..100 {
        let device = app.login_as(&email, PASSWORD, SAFARI_IPHONE).await;
        let mut socket = app.socket(&device.access).await;
        assert_eq!(
            app.post_authed("/api/auth/logout", &device.access, None).await.status(),
            204
        );
        let answered = Instant::now();
        let event = socket.next_json().await;
        latencies.push(answered.elapsed());
        assert_eq!(event["type"], "session_revoked");
    }
    crate::helpers::report_latency("one node", &mut latencies);
}

/// One session may hold `WS_MAX_SOCKETS_PER_SESSION` sockets and one user `WS_MAX_SOCKETS_PER_USER` on a node;
/// past either, the upgrade is refused with 429 before it happens, and a closed socket frees its place.
#[actix_web::test]
async fn sockets_are_capped_per_session_and_per_user() {
    let app = spawn_app_with(&[("WS_MAX_SOCKETS_PER_SESSION", "2"), ("WS_MAX_SOCKETS_PER_USER", "3")]).await;
    let (email, laptop) = app.user_with_session().await;
    let phone = app.login_as(&email, PASSWORD, SAFARI_IPHONE).await;
    let bearer = |tokens: &Tokens| format!("Bearer {}", tokens.access);

    let first = app.socket(&laptop.access).await;
    let _second = app.socket(&laptop.access).await;
    let refused = app
        .try_socket("", &[("authorization", &bearer(&laptop))])
        .await
        .err()
        .expect("the session is at its cap");
    assert_eq!(refused.status, 429);
    assert_eq!(refused.body["code"], "rate_limited");

    let _third = app.socket(&phone.access).await;
    let refused = app
        .try_socket("", &[("authorization", &bearer(&phone))])
        .await
        .err()
        .expect("the user is at its cap");
    assert_eq!(refused.status, 429);
    // A ticket is not used up by a refused upgrade.
    let ticket = app.ticket(&phone.access).await;
    assert_eq!(
        app.try_socket(&format!("?ticket={ticket}"), &[])
            .await
            .err()
            .unwrap()
            .status,
        429
    );

    drop(first);
    let freed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Ok(socket) = app.try_socket(&format!("?ticket={ticket}"), &[]).await {
                return socket;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("a closed socket frees its place");
    drop(freed);
}

/// Tickets and upgrades share one budget per user: a burst past `WS_CONNECTS_PER_MINUTE` is refused with 429.
#[actix_web::test]
async fn tickets_and_upgrades_share_a_budget_per_user() {
    let app = spawn_app_with(&[("WS_CONNECTS_PER_MINUTE", "5")]).await;
    let (_, tokens) = app.user_with_session().await;
    for _ in 0..4 {
        app.ticket(&tokens.access).await;
    }
    let _socket = app.socket(&tokens.access).await;
    let refused = app.post_authed("/api/auth/ws-ticket", &tokens.access, None).await;
    assert!(refused.headers().contains_key("retry-after"));
    assert_problem(refused, 429, "rate_limited").await;
    let refused = app
        .try_socket("", &[("authorization", &format!("Bearer {}", tokens.access))])
        .await
        .err()
        .expect("past the budget");
    assert_eq!(refused.status, 429);
    // Another user has a budget of its own.
    let (_, other) = app.user_with_session().await;
    app.ticket(&other.access).await;
}

/// A node that stops (SIGTERM runs the same shutdown) closes every WebSocket at once with 1012, so clients
/// reconnect to another node now instead of after a 5 s cut without a close frame.
#[actix_web::test]
async fn shutting_down_closes_every_socket_with_1012_at_once() {
    let app = spawn_app().await;
    let (email, laptop) = app.user_with_session().await;
    let phone = app.login_as(&email, PASSWORD, SAFARI_IPHONE).await;
    let mut laptop_socket = app.socket(&laptop.access).await;
    let mut phone_socket = app.socket(&phone.access).await;
    let shutdown = app.shutdown.clone();
    actix_web::rt::spawn(async move { shutdown.run().await });
    assert_eq!(laptop_socket.close_code(Duration::from_secs(1)).await, 1012);
    assert_eq!(phone_socket.close_code(Duration::from_secs(1)).await, 1012);
}

/// The real binary, stopped with SIGTERM, sends every socket a 1012 close frame at once and exits cleanly.
#[actix_web::test]
async fn sigterm_closes_the_binarys_sockets_with_1012() {
    use crate::helpers::app::{JWT_SECRET, KEY_ENCRYPTION_SECRET, OTP_SECRET};
    let app = spawn_app().await;
    let (_, tokens) = app.user_with_session().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let data_dir = std::env::temp_dir()
        .join("authd-tests")
        .join(uuid::Uuid::now_v7().to_string());
    let mut node = tokio::process::Command::new(env!("CARGO_BIN_EXE_authd"))
        .env_clear()
        .env("PORT", port.to_string())
        .env("DATABASE_URL", &app.database_url)
        .env("DATA_DIR", &data_dir)
        .env("SMTP_URL", format!("smtp://127.0.0.1:{}", app.mail.port))
        .env("JWT_ACCESS_SECRET", JWT_SECRET)
        .env("OTP_SECRET", OTP_SECRET)
        .env("KEY_ENCRYPTION_SECRET", KEY_ENCRYPTION_SECRET)
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while reqwest::get(format!("http://127.0.0.1:{port}/health/live"))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "the node did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut request = format!("ws://127.0.0.1:{port}/api/ws").into_client_request().unwrap();
    request.headers_mut().insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {}", tokens.access)).unwrap(),
    );
    let (stream, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let mut socket = Socket { stream };
    assert_eq!(socket.next_json().await["type"], "hello");

    // SAFETY: kill sends a signal to the child this test started.
    assert_eq!(
        unsafe { libc::kill(i32::try_from(node.id().unwrap()).unwrap(), libc::SIGTERM) },
        0
    );
    assert_eq!(socket.close_code(Duration::from_secs(1)).await, 1012);
    let status = tokio::time::timeout(Duration::from_secs(10), node.wait())
        .await
        .expect("the node stops")
        .unwrap();
    assert!(status.success(), "{status}");
}

/// A request to the upgrade path that is no upgrade is refused before anything is spent or read.
#[actix_web::test]
async fn a_plain_request_to_the_upgrade_path_spends_no_budget() {
    let app = spawn_app_with(&[("WS_CONNECTS_PER_MINUTE", "1")]).await;
    let (_, tokens) = app.user_with_session().await;
    for _ in 0..3 {
        let plain = app.get_authed("/api/ws", &tokens.access).await;
        assert_problem(plain, 400, "malformed_request").await;
    }
    // The one upgrade of the budget is still there.
    let _socket = app.socket(&tokens.access).await;
}
