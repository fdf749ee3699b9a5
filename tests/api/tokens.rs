use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::helpers::{
    app::{JWT_SECRET, assert_problem},
    spawn_app,
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
    claims["iat"] = json!(now - 1000);
    claims["exp"] = json!(now - 60);
    let expired = sign(&access_header(), &claims, JWT_SECRET);
    assert_problem(app.get_authed("/api/users/me", &expired).await, 401, "token_expired").await;
    // Inside the leeway it still works.
    claims["exp"] = json!(now - 10);
    let lenient = sign(&access_header(), &claims, JWT_SECRET);
    assert_eq!(app.get_authed("/api/users/me", &lenient).await.status(), 200);
}
