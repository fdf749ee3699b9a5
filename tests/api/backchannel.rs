//! OpenID Connect back-channel logout: every session end POSTed as a logout token to a real HTTP or HTTPS
//! receiver, verifiable with the JWKS, delivered once the receiver is back.

use std::{
    net::TcpListener,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use actix_web::{App, HttpResponse, HttpServer, web};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::Deserialize;
use serde_json::Value;

use crate::helpers::{TestApp, app::PASSWORD, spawn_app_with};

#[derive(Deserialize)]
struct LogoutForm {
    logout_token: String,
}

/// An HTTP server that records every logout token POSTed to `/logout`.
fn start_receiver(listener: TcpListener, tokens: Arc<Mutex<Vec<String>>>) {
    start_receiver_with(listener, tokens, None);
}

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/api/fixtures")
        .join(name)
}

/// The receiver's TLS settings: a certificate for 127.0.0.1 signed by the tests' own CA
/// (`fixtures/receivers-ca.pem`), which no public root vouches for.
fn receiver_tls() -> rustls::ServerConfig {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
    let chain = CertificateDer::pem_file_iter(fixture("receiver-cert.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(fixture("receiver-key.pem")).unwrap();
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap()
}

/// `start_receiver`, over HTTPS when `tls` is given.
fn start_receiver_with(listener: TcpListener, tokens: Arc<Mutex<Vec<String>>>, tls: Option<rustls::ServerConfig>) {
    let tokens = web::Data::from(tokens);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(tokens.clone())
            .route(
                "/logout",
                web::post().to(
                    |form: web::Form<LogoutForm>, tokens: web::Data<Mutex<Vec<String>>>| async move {
                        tokens.lock().unwrap().push(form.into_inner().logout_token);
                        HttpResponse::Ok().finish()
                    },
                ),
            )
            // Sends the sender elsewhere, keeping the method and body.
            .route(
                "/moved",
                web::post().to(|| async {
                    HttpResponse::TemporaryRedirect()
                        .insert_header(("location", "/logout"))
                        .finish()
                }),
            )
    })
    .workers(1);
    let server = match tls {
        Some(tls) => server.listen_rustls_0_23(listener, tls),
        None => server.listen(listener),
    };
    actix_web::rt::spawn(server.unwrap().run());
}

/// The claims of `token` once verified with the published key its `kid` names.
async fn verified_claims(app: &TestApp, token: &str) -> Value {
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap()).unwrap();
    assert_eq!(header["typ"], "logout+jwt");
    let jwks: Value = app.get("/.well-known/jwks.json").await.json().await.unwrap();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["kid"] == header["kid"])
        .expect("the token's key is published");
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_audience(&["authd"]);
    validation.set_issuer(&["authd"]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    jsonwebtoken::decode::<Value>(token, &jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap(), &validation)
        .expect("the logout token verifies against the JWKS")
        .claims
}

/// What the node recorded of its last failed delivery to `url`.
async fn last_failure(app: &TestApp, url: &str) -> String {
    use sea_orm::EntityTrait;
    entity::backchannel_receiver::Entity::find_by_id(url.to_owned())
        .one(app.application_state.store.connection())
        .await
        .unwrap()
        .expect("the receiver is registered")
        .last_error
        .unwrap_or_default()
}

async fn wait_for_tokens(tokens: &Mutex<Vec<String>>, count: usize, within: Duration) -> Vec<String> {
    let deadline = Instant::now() + within;
    loop {
        let received = tokens.lock().unwrap().clone();
        if received.len() >= count {
            return received;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {count} logout tokens arrived",
            received.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn every_session_end_reaches_the_receiver_once_even_after_it_was_down() {
    // The receiver's address, with nothing listening there yet.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/logout");
    let app = spawn_app_with(&[("BACKCHANNEL_LOGOUT_URLS", url.as_str())]).await;
    let (email, laptop) = app.user_with_session().await;
    let phone = app.login_as(&email, PASSWORD, crate::helpers::app::SAFARI_IPHONE).await;
    assert_eq!(
        app.post_authed("/api/auth/logout", &laptop.access, None).await.status(),
        204
    );

    // Delivery fails while the receiver is down, and is retried with back-off.
    let connection = app.application_state.store.connection();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        use sea_orm::EntityTrait;
        let receiver = entity::backchannel_receiver::Entity::find_by_id(url.clone())
            .one(connection)
            .await
            .unwrap()
            .unwrap();
        if receiver.attempts >= 1 {
            assert!(receiver.last_error.is_some());
            break;
        }
        assert!(Instant::now() < deadline, "no failed attempt was recorded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let tokens = Arc::new(Mutex::new(Vec::new()));
    start_receiver(TcpListener::bind(("127.0.0.1", port)).unwrap(), tokens.clone());
    let received = wait_for_tokens(&tokens, 1, Duration::from_secs(10)).await;
    let claims = verified_claims(&app, &received[0]).await;
    assert_eq!(claims["sid"], laptop.session.as_str());
    assert_eq!(claims["sub"], laptop.body["user"]["id"]);
    assert!(claims["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object());
    assert!(claims.get("nonce").is_none());
    assert!(claims["jti"].is_string());
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 120);

    // With the receiver up, the next end arrives at once; nothing comes twice.
    assert_eq!(
        app.post_authed("/api/auth/logout", &phone.access, None).await.status(),
        204
    );
    let received = wait_for_tokens(&tokens, 2, Duration::from_secs(3)).await;
    let claims = verified_claims(&app, &received[1]).await;
    assert_eq!(claims["sid"], phone.session.as_str());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(tokens.lock().unwrap().len(), 2, "a logout token was delivered twice");
}

#[test]
fn only_http_and_https_receivers_are_taken() {
    for value in ["ftp://receiver.example/logout", "not a url", "http://"] {
        let lookup = |name: &str| match name {
            "BACKCHANNEL_LOGOUT_URLS" => Some(value.to_owned()),
            "DATA_DIR" => Some(
                std::env::temp_dir()
                    .join("authd-tests")
                    .join("backchannel")
                    .display()
                    .to_string(),
            ),
            _ => None,
        };
        let error = authd::config::Settings::from_lookup(lookup).unwrap_err().to_string();
        assert!(error.contains("BACKCHANNEL_LOGOUT_URLS"), "{value}: {error}");
    }
}

#[actix_web::test]
async fn a_delivery_owed_by_a_node_that_died_is_made_by_the_restarted_one() {
    use crate::helpers::app::{JWT_SECRET, KEY_ENCRYPTION_SECRET, OTP_SECRET, fresh_database_url};
    let database_url = fresh_database_url().await;
    let receiver_port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{receiver_port}/logout");
    let setup = spawn_app_with(&[("DATABASE_URL", database_url.as_str())]).await;
    let (_, tokens) = setup.user_with_session().await;

    // A node of the compiled binary delivers to the receiver, which is down; the session ends there.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let data_dir = std::env::temp_dir()
        .join("authd-tests")
        .join(uuid::Uuid::now_v7().to_string());
    let mut node = tokio::process::Command::new(env!("CARGO_BIN_EXE_authd"))
        .env_clear()
        .env("PORT", port.to_string())
        .env("DATABASE_URL", &database_url)
        .env("DATA_DIR", &data_dir)
        .env("JWT_ACCESS_SECRET", JWT_SECRET)
        .env("OTP_SECRET", OTP_SECRET)
        .env("KEY_ENCRYPTION_SECRET", KEY_ENCRYPTION_SECRET)
        .env("BACKCHANNEL_LOGOUT_URLS", &url)
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while client.get(format!("{base}/health/live")).send().await.is_err() {
        assert!(Instant::now() < deadline, "the node did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let logout = client
        .post(format!("{base}/api/auth/logout"))
        .bearer_auth(&tokens.access)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        use sea_orm::EntityTrait;
        let receiver = entity::backchannel_receiver::Entity::find_by_id(url.clone())
            .one(setup.application_state.store.connection())
            .await
            .unwrap();
        if receiver.is_some_and(|receiver| receiver.attempts >= 1) {
            break;
        }
        assert!(Instant::now() < deadline, "the node made no attempt");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    node.kill().await.unwrap();

    // The receiver comes back, and so does a node: the token owed is delivered.
    let received = Arc::new(Mutex::new(Vec::new()));
    start_receiver(
        TcpListener::bind(("127.0.0.1", receiver_port)).unwrap(),
        received.clone(),
    );
    let restarted = spawn_app_with(&[
        ("DATABASE_URL", database_url.as_str()),
        ("BACKCHANNEL_LOGOUT_URLS", url.as_str()),
    ])
    .await;
    // The dead node's claim on the receiver lasts at most 30 s.
    let received = wait_for_tokens(&received, 1, Duration::from_secs(40)).await;
    let claims = verified_claims(&restarted, &received[0]).await;
    assert_eq!(claims["sid"], tokens.session.as_str());
}

#[actix_web::test]
async fn a_backend_registers_its_receiver_with_its_key_and_revoking_the_key_stops_it() {
    let app = spawn_app_with(&[]).await;
    let key = app.backend_key().await;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/logout", listener.local_addr().unwrap());
    let tokens = Arc::new(Mutex::new(Vec::new()));
    start_receiver(listener, tokens.clone());
    let register = |credential: Option<String>, body: Value| {
        let mut request = app.client.put(app.url("/api/backchannel/receiver")).json(&body);
        if let Some(credential) = credential {
            request = request.bearer_auth(credential);
        }
        request.send()
    };
    for refused in ["ftp://receiver.example/logout", "receiver", ""] {
        let response = register(Some(key.clone()), serde_json::json!({"url": refused}))
            .await
            .unwrap();
        crate::helpers::app::assert_problem(response, 422, "validation_failed").await;
    }
    let response = register(None, serde_json::json!({"url": url})).await.unwrap();
    crate::helpers::app::assert_problem(response, 401, "unauthorized").await;
    assert_eq!(
        register(Some(key.clone()), serde_json::json!({"url": url}))
            .await
            .unwrap()
            .status(),
        204
    );

    let (email, laptop) = app.user_with_session().await;
    let phone = app.login_as(&email, PASSWORD, crate::helpers::app::SAFARI_IPHONE).await;
    assert_eq!(
        app.post_authed("/api/auth/logout", &laptop.access, None).await.status(),
        204
    );
    let received = wait_for_tokens(&tokens, 1, Duration::from_secs(3)).await;
    assert_eq!(
        verified_claims(&app, &received[0]).await["sid"],
        laptop.session.as_str()
    );

    // The key is revoked: its receiver hears of nothing more.
    let state = &app.application_state;
    let id = authd::services::backend_keys::list(state.store.connection())
        .await
        .unwrap()
        .into_iter()
        .find(|row| row.name == "notes-api")
        .unwrap()
        .id;
    assert!(
        authd::services::backend_keys::revoke(state.store.connection(), id, chrono::Utc::now())
            .await
            .unwrap()
    );
    state.backend_keys.reload(state.store.connection()).await.unwrap();
    assert_eq!(
        app.post_authed("/api/auth/logout", &phone.access, None).await.status(),
        204
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        tokens.lock().unwrap().len(),
        1,
        "a revoked key's receiver was still told"
    );

    // A live key without a receiver has nothing to remove.
    let other = app.backend_key().await;
    let response = app
        .client
        .delete(app.url("/api/backchannel/receiver"))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    crate::helpers::app::assert_problem(response, 404, "not_found").await;
}

/// An HTTPS receiver gets its tokens when its certificate chains to `BACKCHANNEL_CA_FILE`; without that CA, its
/// certificate is refused and nothing is delivered.
#[actix_web::test]
async fn an_https_receiver_is_delivered_to_only_with_a_trusted_certificate() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}/logout", listener.local_addr().unwrap());
    let tokens = Arc::new(Mutex::new(Vec::new()));
    start_receiver_with(listener, tokens.clone(), Some(receiver_tls()));

    // Public roots only: the receiver's certificate is refused.
    let untrusting = spawn_app_with(&[("BACKCHANNEL_LOGOUT_URLS", url.as_str())]).await;
    let (_, refused) = untrusting.user_with_session().await;
    assert_eq!(
        untrusting
            .post_authed("/api/auth/logout", &refused.access, None)
            .await
            .status(),
        204
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        tokens.lock().unwrap().is_empty(),
        "delivered over an untrusted certificate"
    );
    let failure = last_failure(&untrusting, &url).await;
    assert!(failure.to_lowercase().contains("certificate"), "{failure}");

    let ca = fixture("receivers-ca.pem");
    let app = spawn_app_with(&[
        ("BACKCHANNEL_LOGOUT_URLS", url.as_str()),
        ("BACKCHANNEL_CA_FILE", ca.to_str().unwrap()),
    ])
    .await;
    let (_, laptop) = app.user_with_session().await;
    assert_eq!(
        app.post_authed("/api/auth/logout", &laptop.access, None).await.status(),
        204
    );
    let received = wait_for_tokens(&tokens, 1, Duration::from_secs(5)).await;
    assert_eq!(received.len(), 1);
    assert_eq!(
        verified_claims(&app, &received[0]).await["sid"],
        laptop.session.as_str()
    );
}

#[test]
fn a_ca_file_that_holds_no_certificate_stops_the_start() {
    let empty = std::env::temp_dir().join(format!("authd-empty-ca-{}.pem", uuid::Uuid::now_v7()));
    std::fs::write(&empty, "not a certificate").unwrap();
    let error = authd::backchannel::tls_config(Some(&empty)).unwrap_err().to_string();
    assert!(error.contains("BACKCHANNEL_CA_FILE"), "{error}");
    assert!(authd::backchannel::tls_config(Some(&fixture("receivers-ca.pem"))).is_ok());
    assert!(authd::backchannel::tls_config(None).is_ok());
}

/// A redirect is not followed: it could carry the token to another host, or over plain HTTP.
#[actix_web::test]
async fn a_receiver_that_redirects_gets_no_token_anywhere() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/moved", listener.local_addr().unwrap());
    let tokens = Arc::new(Mutex::new(Vec::new()));
    start_receiver(listener, tokens.clone());
    let app = spawn_app_with(&[("BACKCHANNEL_LOGOUT_URLS", url.as_str())]).await;
    let (_, session) = app.user_with_session().await;
    assert_eq!(
        app.post_authed("/api/auth/logout", &session.access, None)
            .await
            .status(),
        204
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(tokens.lock().unwrap().is_empty(), "the redirect was followed");
    let failure = last_failure(&app, &url).await;
    assert!(failure.contains("307"), "{failure}");
}
