//! `/.well-known/jwks.json` and `/.well-known/openid-configuration`: what an app's own API needs to verify
//! authd's access tokens without sharing a secret. Libraries that take an issuer URL (Spring, ASP.NET,
//! express-jwt with jwks-rsa, ...) read the configuration, then the keys.

use actix_web::{HttpRequest, HttpResponse, http::header, web};
use serde::Serialize;

use crate::services::AppState;

/// The public signing keys (RFC 7517), never a private part. Empty with `ACCESS_TOKEN_ALG=HS256`, whose shared
/// secret is never published.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Jwks {
    /// JWKs: `kty`, `crv`, `x` (and `y` for P-256), `kid`, `alg`, `use: "sig"`.
    pub keys: Vec<serde_json::Value>,
}

/// The public keys that verify access tokens, including the next key before it signs and retired keys until
/// their last token expires. Cacheable for `JWKS_MAX_AGE`; refetch on an unknown `kid`.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "tokens",
    responses((status = 200, body = Jwks, content_type = "application/jwk-set+json")))]
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((
            header::CACHE_CONTROL,
            format!("public, max-age={}", state.settings.jwks_max_age.as_secs()),
        ))
        .content_type("application/jwk-set+json")
        .body(state.access_tokens.jwks())
}

/// The discovery document (OpenID Connect Discovery 1.0), with what a resource server needs.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Discovery {
    /// `JWT_ISSUER`: the `iss` and `aud` of every access token.
    pub issuer: String,
    pub jwks_uri: String,
    /// The algorithm access tokens are signed with.
    pub id_token_signing_alg_values_supported: Vec<&'static str>,
    pub token_endpoint: String,
    pub revocation_endpoint: String,
    pub subject_types_supported: Vec<&'static str>,
    pub response_types_supported: Vec<&'static str>,
}

/// Where the keys are. When `JWT_ISSUER` is an http(s) URL the addresses are under it (set it to authd's public
/// URL in production); otherwise they are under the address this request reached.
#[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "tokens",
    responses((status = 200, body = Discovery)))]
pub async fn openid_configuration(state: web::Data<AppState>, request: HttpRequest) -> HttpResponse {
    let issuer = &state.settings.jwt_issuer;
    let is_url = issuer.starts_with("https://") || issuer.starts_with("http://");
    let base = if is_url {
        issuer.trim_end_matches('/').to_owned()
    } else {
        let connection = request.connection_info();
        format!("{}://{}", connection.scheme(), connection.host())
    };
    let algorithm = state.settings.access_token_algorithm.as_str();
    let document = Discovery {
        issuer: issuer.clone(),
        jwks_uri: format!("{base}/.well-known/jwks.json"),
        id_token_signing_alg_values_supported: vec![algorithm],
        token_endpoint: format!("{base}/api/auth/refresh"),
        revocation_endpoint: format!("{base}/api/auth/logout"),
        subject_types_supported: vec!["public"],
        response_types_supported: vec!["token"],
    };
    // Built from the request's address when the issuer is not a URL: no shared cache may keep that.
    let cache = if is_url {
        format!("public, max-age={}", state.settings.jwks_max_age.as_secs())
    } else {
        "no-store".to_owned()
    };
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, cache))
        .json(document)
}
