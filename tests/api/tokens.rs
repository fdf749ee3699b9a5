use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::helpers::{
    app::{JWT_SECRET, PASSWORD, SAFARI_IPHONE, Tokens, assert_problem},
    spawn_app, spawn_app_with, spawn_node_of,
};

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn sign(header: &Header, claims: &Value, secret: &str) -> String {
    jsonwebtoken::encode(header, claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap()
}

fn access_header() -> Header {
    let mut header = Header::new(Algorithm::HS256);
    header.typ = Some("at+jwt".to_owned());
    header
}

#[actix_web::test]
async fn issued_tokens_carry_the_contract_claims() {
    let app = spawn_app().await;
    let (_, tokens) = app.user_with_session().await;
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(tokens.access.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "HS256");
    assert_eq!(header["typ"], "at+jwt");
    let claims = claims_of(&tokens.access);
    assert_eq!(claims["iss"], "authd");
    assert_eq!(claims["aud"], "authd");
    assert_eq!(claims["sub"], tokens.body["user"]["id"]);
    assert_eq!(claims["sid"], tokens.session.as_str());
    assert!(claims["jti"].is_string());
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 900);
    // A token we sign ourselves with the same claims is accepted: the forgeries below fail for their one flaw.
    assert_eq!(
        app.get_authed("/api/users/me", &sign(&access_header(), &claims, JWT_SECRET))
            .await
            .status(),
        200
    );
}

#[actix_web::test]
async fn forged_and_flawed_tokens_are_refused() {
    let app = spawn_app().await;
    let (_, tokens) = app.user_with_session().await;
    let claims = claims_of(&tokens.access);

    let mut tampered = claims.clone();
    tampered["sub"] = json!(uuid::Uuid::now_v7());
    let parts: Vec<&str> = tokens.access.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(tampered.to_string()),
        parts[2]
    );

    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"at+jwt"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut wrong_audience = claims.clone();
    wrong_audience["aud"] = json!("someone-else");
    let mut wrong_issuer = claims.clone();
    wrong_issuer["iss"] = json!("someone-else");
    let mut plain_header = Header::new(Algorithm::HS256);
    plain_header.typ = Some("JWT".to_owned());

    let cases = [
        ("tampered payload", tampered),
        ("alg none", unsigned),
        (
            "wrong key",
            sign(&access_header(), &claims, "another-secret-that-is-at-least-32-bytes!"),
        ),
        ("wrong audience", sign(&access_header(), &wrong_audience, JWT_SECRET)),
        ("wrong issuer", sign(&access_header(), &wrong_issuer, JWT_SECRET)),
        ("wrong typ", sign(&plain_header, &claims, JWT_SECRET)),
        (
            "HS512",
            sign(
                &Header {
                    alg: Algorithm::HS512,
                    ..access_header()
                },
                &claims,
                JWT_SECRET,
            ),
        ),
        ("garbage", "not.a.token".to_owned()),
    ];
    for (name, token) in cases {
        let response = app.get_authed("/api/users/me", &token).await;
        assert_eq!(response.status(), 401, "{name} was accepted");
        let body = assert_problem(response, 401, "unauthorized").await;
        assert!(!body.to_string().contains(&token), "{name}: the token was echoed");
    }
    assert_problem(
        app.client.get(app.url("/api/users/me")).send().await.unwrap(),
        401,
        "unauthorized",
    )
    .await;
}

#[actix_web::test]
async fn an_expired_access_token_says_token_expired() {
    let app = spawn_app().await;
    let (_, tokens) = app.user_with_session().await;
    let mut claims = claims_of(&tokens.access);
    let now = chrono::Utc::now().timestamp();
    // Past the 30 s leeway.
    claims["iat"] = json!(now - 960);
    claims["exp"] = json!(now - 60);
    let expired = sign(&access_header(), &claims, JWT_SECRET);
    assert_problem(app.get_authed("/api/users/me", &expired).await, 401, "token_expired").await;
    // Inside the leeway it still works.
    claims["iat"] = json!(now - 910);
    claims["exp"] = json!(now - 10);
    let lenient = sign(&access_header(), &claims, JWT_SECRET);
    assert_eq!(app.get_authed("/api/users/me", &lenient).await.status(), 200);
}

/// A session past its absolute or idle end refuses its access token at once, before any sweep or socket
/// timer ends it in the database, and says why: `session_expired`.
#[actix_web::test]
async fn an_access_token_stops_at_its_sessions_end() {
    let app = spawn_app_with(&[("SESSION_TTL", "3")]).await;
    let (_, tokens) = app.user_with_session().await;
    assert_eq!(app.get_authed("/api/users/me", &tokens.access).await.status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(3200)).await;
    assert_problem(
        app.get_authed("/api/users/me", &tokens.access).await,
        401,
        "session_expired",
    )
    .await;
}

#[actix_web::test]
async fn an_access_token_stops_at_its_sessions_idle_end_unless_refreshed() {
    let app = spawn_app_with(&[("SESSION_IDLE_TTL", "3")]).await;
    let (email, idle) = app.user_with_session().await;
    let active = app.login_as(&email, PASSWORD, SAFARI_IPHONE).await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let refreshed = app.refresh(&active.refresh).await;
    assert_eq!(refreshed.status(), 200);
    let active = Tokens::from_body(refreshed.json().await.unwrap());
    tokio::time::sleep(std::time::Duration::from_millis(1700)).await;
    assert_problem(
        app.get_authed("/api/users/me", &idle.access).await,
        401,
        "session_expired",
    )
    .await;
    assert_eq!(app.get_authed("/api/users/me", &active.access).await.status(), 200);
}

/// Tokens dated in the future, which no node issues, are refused even with a valid signature.
#[actix_web::test]
async fn tokens_not_yet_valid_are_refused() {
    let app = spawn_app().await;
    let (_, tokens) = app.user_with_session().await;
    let claims = claims_of(&tokens.access);
    let now = chrono::Utc::now().timestamp();

    let mut not_before = claims.clone();
    not_before["nbf"] = json!(now + 120);
    let mut issued_later = claims.clone();
    issued_later["iat"] = json!(now + 120);
    issued_later["exp"] = json!(now + 1020);
    for flawed in [not_before, issued_later] {
        let token = sign(&access_header(), &flawed, JWT_SECRET);
        assert_problem(app.get_authed("/api/users/me", &token).await, 401, "unauthorized").await;
    }
    // Inside the leeway for clock skew, both are accepted.
    let mut skewed = claims.clone();
    skewed["nbf"] = json!(now + 5);
    skewed["iat"] = json!(now + 5);
    let token = sign(&access_header(), &skewed, JWT_SECRET);
    assert_eq!(app.get_authed("/api/users/me", &token).await.status(), 200);
}

/// A token issued under a longer `ACCESS_TOKEN_TTL` stays refused after a restart with a shorter one, although
/// the restarted node remembers revocations only for its own, shorter window: it never accepts a token longer
/// than its own token life after the token's `iat`.
#[actix_web::test]
async fn a_shorter_token_life_after_a_restart_brings_no_revoked_token_back() {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
    let before = spawn_app().await;
    let (_, tokens) = before.user_with_session().await;
    assert_eq!(
        before
            .post_authed("/api/auth/logout", &tokens.access, None)
            .await
            .status(),
        204
    );
    // The logout happened 70 s ago, and the token was issued 74 s ago with a 900 s life: the restarted node's
    // window (5 s plus twice the leeway) no longer reaches back to the logout.
    let now = chrono::Utc::now();
    let session: uuid::Uuid = tokens.session.parse().unwrap();
    entity::session_revocation::Entity::update_many()
        .col_expr(
            entity::session_revocation::Column::RevokedAt,
            Expr::value(now - chrono::Duration::seconds(70)),
        )
        .filter(entity::session_revocation::Column::SessionId.eq(session))
        .exec(before.application_state.store.connection())
        .await
        .unwrap();
    let mut claims = claims_of(&tokens.access);
    claims["iat"] = json!(now.timestamp() - 74);
    claims["exp"] = json!(now.timestamp() - 74 + 900);
    let issued_earlier = sign(&access_header(), &claims, JWT_SECRET);

    let after = spawn_node_of(&before, &[("ACCESS_TOKEN_TTL", "5")]).await;
    assert_problem(
        after.get_authed("/api/users/me", &issued_earlier).await,
        401,
        "token_expired",
    )
    .await;
}
