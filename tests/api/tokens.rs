use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::helpers::{
    TestApp,
    app::{JWT_SECRET, PASSWORD, SAFARI_IPHONE, Tokens, assert_problem},
    spawn_app, spawn_app_with, spawn_node_of,
};

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn header_of(token: &str) -> Value {
    let header = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap()
}

fn sign(header: &Header, claims: &Value, key: &EncodingKey) -> String {
    jsonwebtoken::encode(header, claims, key).unwrap()
}

fn secret_key(secret: &str) -> EncodingKey {
    EncodingKey::from_secret(secret.as_bytes())
}

fn access_header() -> Header {
    let mut header = Header::new(Algorithm::HS256);
    header.typ = Some("at+jwt".to_owned());
    header
}

/// The key `app` signs with now and the header of its tokens, read from its database and opened with the
/// test's `KEY_ENCRYPTION_SECRET`, as a node does: the tests below forge tokens a node would have made.
async fn server_key(app: &TestApp) -> (EncodingKey, Header) {
    let state = &app.application_state;
    let sealer = authd::startup::key_sealer(&state.settings).unwrap();
    let rows = authd::signing::rotation::all(state.store.connection()).await.unwrap();
    let ring = authd::signing::key_ring::KeyRing::from_rows(&rows, &sealer, chrono::Utc::now()).unwrap();
    let key = ring.signing.unwrap();
    let mut header = Header::new(key.algorithm.jwt_algorithm());
    header.typ = Some("at+jwt".to_owned());
    header.kid = Some(key.kid);
    (key.encoding, header)
}

async fn jwks(app: &TestApp) -> Value {
    let response = app.get("/.well-known/jwks.json").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/jwk-set+json");
    assert_eq!(response.headers()["cache-control"], "public, max-age=300");
    response.json().await.unwrap()
}

#[actix_web::test]
async fn issued_tokens_carry_the_contract_claims() {
    let app = spawn_app().await;
    let (_, tokens) = app.user_with_session().await;
    let header = header_of(&tokens.access);
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["typ"], "at+jwt");
    let claims = claims_of(&tokens.access);
    assert_eq!(claims["iss"], "authd");
    assert_eq!(claims["aud"], "authd");
    assert_eq!(claims["sub"], tokens.body["user"]["id"]);
    assert_eq!(claims["sid"], tokens.session.as_str());
    assert!(claims["jti"].is_string());
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 900);
    // The published key named by `kid` verifies it, as an app's own API would, with no secret of authd's.
    let keys = jwks(&app).await;
    let jwk = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["kid"] == header["kid"])
        .expect("the token's key is published");
    assert_eq!(jwk["kty"], "OKP");
    assert!(jwk.get("d").is_none(), "a private part was published: {jwk}");
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(Algorithm::EdDSA);
    validation.set_audience(&["authd"]);
    validation.set_issuer(&["authd"]);
    jsonwebtoken::decode::<Value>(
        &tokens.access,
        &jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap(),
        &validation,
    )
    .expect("the token verifies against the JWKS");
    // A token we sign ourselves with the same claims and key is accepted: the forgeries below fail for their one
    // flaw.
    let (key, header) = server_key(&app).await;
    assert_eq!(
        app.get_authed("/api/users/me", &sign(&header, &claims, &key))
            .await
            .status(),
        200
    );
}

/// `ACCESS_TOKEN_ALG=HS256` keeps the tokens of earlier versions: signed with `JWT_ACCESS_SECRET`, no `kid`,
/// and nothing published.
#[actix_web::test]
async fn hs256_keeps_the_shared_secret_tokens() {
    let app = spawn_app_with(&[("ACCESS_TOKEN_ALG", "HS256")]).await;
    let (_, tokens) = app.user_with_session().await;
    let header = header_of(&tokens.access);
    assert_eq!(header["alg"], "HS256");
    assert!(header.get("kid").is_none(), "{header}");
    let claims = claims_of(&tokens.access);
    assert_eq!(
        app.get_authed(
            "/api/users/me",
            &sign(&access_header(), &claims, &secret_key(JWT_SECRET))
        )
        .await
        .status(),
        200
    );
    assert_eq!(jwks(&app).await, json!({"keys": []}));
    let mut wrong_key = access_header();
    wrong_key.alg = Algorithm::HS512;
    assert_problem(
        app.get_authed("/api/users/me", &sign(&wrong_key, &claims, &secret_key(JWT_SECRET)))
            .await,
        401,
        "unauthorized",
    )
    .await;
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
    let (key, header) = server_key(&app).await;
    let mut plain_header = header.clone();
    plain_header.typ = Some("JWT".to_owned());
    let mut unknown_kid = header.clone();
    unknown_kid.kid = Some("no-such-key".to_owned());
    // Another Ed25519 key that claims the server key's id.
    let sealer = authd::sealing::Sealer::new([9; 32]);
    let now = chrono::Utc::now();
    let stranger =
        authd::signing::key_ring::generate(authd::signing::key_ring::KeyAlgorithm::EdDsa, &sealer, 1, now, now)
            .unwrap();
    let stranger = authd::signing::key_ring::KeyRing::from_rows(&[stranger], &sealer, now)
        .unwrap()
        .signing
        .unwrap()
        .encoding;
    // The public key used as an HMAC secret: the algorithm confusion of RFC 8725, section 2.1.
    let published = jwks(&app).await;
    let public_x = URL_SAFE_NO_PAD
        .decode(published["keys"][0]["x"].as_str().unwrap())
        .unwrap();
    let confused = Header {
        alg: Algorithm::HS256,
        ..header.clone()
    };

    let cases = [
        ("tampered payload", tampered),
        ("alg none", unsigned),
        ("wrong key under the server's kid", sign(&header, &claims, &stranger)),
        ("unknown kid", sign(&unknown_kid, &claims, &key)),
        ("wrong audience", sign(&header, &wrong_audience, &key)),
        ("wrong issuer", sign(&header, &wrong_issuer, &key)),
        ("wrong typ", sign(&plain_header, &claims, &key)),
        (
            "HS256 with the shared secret",
            sign(&access_header(), &claims, &secret_key(JWT_SECRET)),
        ),
        (
            "HS256 keyed with the public key",
            sign(&confused, &claims, &EncodingKey::from_secret(&public_x)),
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
    let (key, header) = server_key(&app).await;
    let expired = sign(&header, &claims, &key);
    assert_problem(app.get_authed("/api/users/me", &expired).await, 401, "token_expired").await;
    // Inside the leeway it still works.
    claims["iat"] = json!(now - 910);
    claims["exp"] = json!(now - 10);
    let lenient = sign(&header, &claims, &key);
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
    let (key, header) = server_key(&app).await;
    for flawed in [not_before, issued_later] {
        let token = sign(&header, &flawed, &key);
        assert_problem(app.get_authed("/api/users/me", &token).await, 401, "unauthorized").await;
    }
    // Inside the leeway for clock skew, both are accepted.
    let mut skewed = claims.clone();
    skewed["nbf"] = json!(now + 5);
    skewed["iat"] = json!(now + 5);
    let token = sign(&header, &skewed, &key);
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
    let (key, header) = server_key(&before).await;
    let issued_earlier = sign(&header, &claims, &key);

    let after = spawn_node_of(&before, &[("ACCESS_TOKEN_TTL", "5")]).await;
    assert_problem(
        after.get_authed("/api/users/me", &issued_earlier).await,
        401,
        "token_expired",
    )
    .await;
}
