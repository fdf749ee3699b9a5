//! Signing keys: the JWKS, rotation (scheduled, emergency through the CLI, by two nodes at once), sealing at
//! rest, and ES256.

use std::time::{Duration, Instant};

use authd::signing::{
    key_ring::{KeyAlgorithm, KeyRing},
    rotation::{self, Schedule},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::Value;

use crate::helpers::{TestApp, app::PASSWORD, spawn_app, spawn_app_with, spawn_node_of};

fn kid_of(token: &str) -> String {
    let header = token.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

async fn published_kids(app: &TestApp) -> Vec<String> {
    let jwks: Value = app.get("/.well-known/jwks.json").await.json().await.unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| key["kid"].as_str().unwrap().to_owned())
        .collect()
}

#[actix_web::test]
async fn an_emergency_rotation_signs_at_once_and_keeps_earlier_tokens_valid() {
    let app = spawn_app().await;
    let (email, before) = app.user_with_session().await;
    let old_kid = kid_of(&before.access);

    let printed = app.command_line(&["keys", "rotate"]);
    let new_kid = printed.lines().last().unwrap().trim().to_owned();
    assert_ne!(new_kid, old_kid);

    // Every node signs with it within seconds (this one reloads every 5 s).
    let deadline = Instant::now() + Duration::from_secs(8);
    let after = loop {
        let response = app.login(&email, PASSWORD).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        let token = body["access_token"].as_str().unwrap().to_owned();
        if kid_of(&token) == new_kid {
            break token;
        }
        assert!(Instant::now() < deadline, "the node still signs with the old key");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(app.get_authed("/api/users/me", &after).await.status(), 200);
    // The token signed before the rotation lives on until it expires, and its key stays published.
    assert_eq!(app.get_authed("/api/users/me", &before.access).await.status(), 200);
    let kids = published_kids(&app).await;
    assert!(kids.contains(&old_kid) && kids.contains(&new_kid), "{kids:?}");

    let listed = app.command_line(&["keys", "list"]);
    let state_of = |kid: &str| {
        listed
            .lines()
            .find(|line| line.starts_with(kid))
            .and_then(|line| line.split('\t').nth(3))
            .map(str::to_owned)
    };
    assert_eq!(state_of(&new_kid).as_deref(), Some("signing"), "{listed}");
    assert_eq!(state_of(&old_kid).as_deref(), Some("retired"), "{listed}");
    assert!(!listed.contains("private"), "{listed}");
}

#[actix_web::test]
async fn a_node_that_has_not_reloaded_yet_accepts_a_key_made_elsewhere() {
    let first = spawn_app().await;
    let second = spawn_node_of(&first, &[]).await;
    let (email, _) = first.user_with_session().await;
    let sealer = authd::startup::key_sealer(&first.application_state.settings).unwrap();
    let key = rotation::rotate_now(
        first.application_state.store.connection(),
        &sealer,
        KeyAlgorithm::EdDsa,
        chrono::Utc::now(),
    )
    .await
    .unwrap()
    .unwrap();
    // The first node picks it up, then the second meets a token under a key it does not hold yet: it reloads
    // at once and accepts it, well before its next scheduled reload.
    let deadline = Instant::now() + Duration::from_secs(8);
    let token = loop {
        let body: Value = first.login(&email, PASSWORD).await.json().await.unwrap();
        let token = body["access_token"].as_str().unwrap().to_owned();
        if kid_of(&token) == key.kid {
            break token;
        }
        assert!(
            Instant::now() < deadline,
            "the first node never signed with the new key"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let deadline = Instant::now() + Duration::from_secs(3);
    while second.get_authed("/api/users/me", &token).await.status() != 200 {
        assert!(Instant::now() < deadline, "the second node did not learn the new key");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every node runs the schedule; when a rotation falls due, nodes running it at the same moment make one key,
/// whichever reads and writes first.
#[actix_web::test]
async fn nodes_rotating_at_once_make_one_key() {
    let first = spawn_app().await;
    let second = spawn_node_of(&first, &[]).await;
    let sealer = authd::startup::key_sealer(&first.application_state.settings).unwrap();
    let schedule = Schedule {
        algorithm: KeyAlgorithm::EdDsa,
        rotation: chrono::Duration::days(30),
        lead: chrono::Duration::minutes(10),
        token_window: chrono::Duration::minutes(16),
    };
    let start = rotation::all(first.application_state.store.connection()).await.unwrap()[0].active_from;
    for turn in 1..=3 {
        // One lead before each key's turn ends.
        let due = start + chrono::Duration::days(30 * turn) - chrono::Duration::minutes(10);
        let (one, other) = tokio::join!(
            rotation::maintain(first.application_state.store.connection(), &sealer, &schedule, due),
            rotation::maintain(second.application_state.store.connection(), &sealer, &schedule, due),
        );
        one.unwrap();
        other.unwrap();
        let keys = rotation::all(first.application_state.store.connection()).await.unwrap();
        let newest = keys.last().unwrap();
        assert_eq!(newest.generation, turn + 1, "turn {turn}: {keys:?}");
        assert_eq!(newest.active_from, start + chrono::Duration::days(30 * turn));
        // Past the first turn, the key two generations back has no live token left and is gone.
        assert!(keys.len() <= 2, "turn {turn}: {keys:?}");
    }
}

#[actix_web::test]
async fn a_scheduled_key_is_published_a_lead_before_it_signs_and_retired_keys_leave() {
    let app = spawn_app().await;
    let connection = app.application_state.store.connection();
    let sealer = authd::startup::key_sealer(&app.application_state.settings).unwrap();
    let schedule = Schedule {
        algorithm: KeyAlgorithm::EdDsa,
        rotation: chrono::Duration::days(30),
        lead: chrono::Duration::minutes(10),
        token_window: chrono::Duration::minutes(16),
    };
    let first = rotation::all(connection).await.unwrap().remove(0);
    let ring_at = async |moment| {
        let rows = rotation::all(connection).await.unwrap();
        KeyRing::from_rows(&rows, &sealer, moment).unwrap()
    };
    // Not due yet: nothing changes.
    let early = first.active_from + chrono::Duration::days(29);
    assert!(!rotation::maintain(connection, &sealer, &schedule, early).await.unwrap());
    // One lead before the turn ends, the next key is made: published, not signing.
    let due = first.active_from + chrono::Duration::days(30) - chrono::Duration::minutes(10);
    assert!(rotation::maintain(connection, &sealer, &schedule, due).await.unwrap());
    let keys = rotation::all(connection).await.unwrap();
    let next = keys.last().unwrap().clone();
    assert_eq!(next.active_from, first.active_from + chrono::Duration::days(30));
    let ring = ring_at(due).await;
    assert!(ring.verifying.contains_key(&next.kid));
    assert_eq!(ring.signing.as_ref().unwrap().kid, first.kid);
    // At its turn it signs; the first stays published while its tokens may live, then it is deleted.
    let ring = ring_at(next.active_from).await;
    assert_eq!(ring.signing.as_ref().unwrap().kid, next.kid);
    assert!(ring.verifying.contains_key(&first.kid));
    let gone = next.active_from + chrono::Duration::minutes(17);
    rotation::maintain(connection, &sealer, &schedule, gone).await.unwrap();
    let kids: Vec<String> = rotation::all(connection)
        .await
        .unwrap()
        .into_iter()
        .map(|key| key.kid)
        .collect();
    assert_eq!(kids, vec![next.kid]);
}

#[actix_web::test]
async fn private_keys_are_unreadable_without_the_key_encryption_secret() {
    let app = spawn_app().await;
    let connection = app.application_state.store.connection();
    let sealer = authd::startup::key_sealer(&app.application_state.settings).unwrap();
    let row = rotation::all(connection).await.unwrap().remove(0);
    let pkcs8 = sealer
        .open(&row.private_key, row.kid.as_bytes())
        .expect("opens with the secret");
    // The Ed25519 seed sits at bytes 16..48 of the PKCS #8 document.
    let seed = &pkcs8[16..48];
    let stored = base64::engine::general_purpose::STANDARD
        .decode(&row.private_key)
        .unwrap();
    assert!(
        !stored.windows(seed.len()).any(|window| window == seed),
        "the seed is stored in clear"
    );
    if let Some(path) = app.database_url.strip_prefix("sqlite://") {
        let file = std::fs::read(path.split('?').next().unwrap()).unwrap();
        assert!(
            !file.windows(seed.len()).any(|window| window == seed),
            "the seed is in the file"
        );
    }
    // Another secret opens nothing, and a node given it does not start.
    let other = authd::sealing::Sealer::new([1; 32]);
    assert!(other.open(&row.private_key, row.kid.as_bytes()).is_none());
    assert!(
        sealer.open(&row.private_key, b"another-kid").is_none(),
        "a sealed key copied to another id opens"
    );
    let mut settings = app.application_state.settings.clone();
    settings.key_encryption_secret = Some(authd::secret::Secret::new(
        "another-key-encryption-secret-32-bytes-long",
    ));
    let refused = authd::startup::Application::build(settings).await;
    assert!(refused.is_err(), "a node started with keys it cannot open");
}

#[actix_web::test]
async fn es256_signs_and_publishes_p256_keys() {
    let app = spawn_app_with(&[("ACCESS_TOKEN_ALG", "ES256")]).await;
    let (_, tokens) = app.user_with_session().await;
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(tokens.access.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "ES256");
    assert_eq!(app.get_authed("/api/users/me", &tokens.access).await.status(), 200);
    let jwks: Value = app.get("/.well-known/jwks.json").await.json().await.unwrap();
    let jwk = &jwks["keys"][0];
    assert_eq!((jwk["kty"].as_str(), jwk["crv"].as_str()), (Some("EC"), Some("P-256")));
    assert!(jwk.get("d").is_none());
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&["authd"]);
    jsonwebtoken::decode::<Value>(
        &tokens.access,
        &jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap(),
        &validation,
    )
    .expect("the token verifies against the JWKS");
}

#[actix_web::test]
async fn discovery_names_the_issuer_and_the_keys() {
    let app = spawn_app_with(&[("JWT_ISSUER", "https://auth.example.com/")]).await;
    let response = app.get("/.well-known/openid-configuration").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "public, max-age=300");
    let document: Value = response.json().await.unwrap();
    assert_eq!(document["issuer"], "https://auth.example.com/");
    assert_eq!(document["jwks_uri"], "https://auth.example.com/.well-known/jwks.json");
    assert_eq!(document["id_token_signing_alg_values_supported"][0], "EdDSA");
    // An issuer that is not a URL: the keys are where this request went, and no cache keeps that.
    let app = spawn_app().await;
    let response = app.get("/.well-known/openid-configuration").await;
    assert_eq!(response.headers()["cache-control"], "no-store");
    let document: Value = response.json().await.unwrap();
    assert_eq!(document["jwks_uri"], app.url("/.well-known/jwks.json"));
}
