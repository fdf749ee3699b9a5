//! The `TokenResponse` every sign-in and refresh answers, with its refresh cookie.
//!
//! The refresh token travels in the JSON body and in a cookie `refresh_token` (HttpOnly, SameSite=Strict,
//! `Path=/api/auth`, `Secure` when `APP_ENV=production`, `Max-Age` up to the session's absolute end). `/refresh`
//! and `/logout` read the cookie when the body has no token; on logout a Bearer token wins over the cookie. A
//! request that relies on the cookie must carry an `Origin` in `ALLOWED_ORIGINS` or `Sec-Fetch-Site: same-origin`
//! (`refresh_cookie_value`): `SameSite=Strict` alone lets a sibling subdomain's form post send it.

use actix_web::{
    HttpRequest, HttpResponse,
    cookie::{Cookie, SameSite, time::Duration as CookieDuration},
    http::header,
};
use serde::Serialize;
use uuid::Uuid;

use crate::{
    config::Settings,
    error::AppError,
    services::{sessions::SignedIn, users::UserView},
};

pub const REFRESH_COOKIE: &str = "refresh_token";
const COOKIE_PATH: &str = "/api/auth";

#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds of the access token.
    pub expires_in: i64,
    pub refresh_token: String,
    /// Seconds until the session's absolute end.
    pub refresh_expires_in: i64,
    pub session_id: Uuid,
    pub user: UserView,
    /// Only at `verify-email`: whether the password chosen at registration was set. `false` when the code came
    /// without the registration's handle (another browser, or a code asked for later): the account then has no
    /// password until a reset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_set: Option<bool>,
}

pub fn token_response(signed_in: SignedIn, settings: &Settings) -> HttpResponse {
    respond(signed_in, None, settings)
}

/// The answer to `verify-email`: a `TokenResponse` that says whether the registration's password was set.
pub fn verified_response(signed_in: SignedIn, password_set: bool, settings: &Settings) -> HttpResponse {
    respond(signed_in, Some(password_set), settings)
}

fn respond(signed_in: SignedIn, password_set: Option<bool>, settings: &Settings) -> HttpResponse {
    let cookie = refresh_cookie(&signed_in.refresh_token, signed_in.refresh_expires_in, settings);
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .cookie(cookie)
        .json(TokenResponse {
            access_token: signed_in.access_token,
            token_type: "Bearer",
            expires_in: signed_in.expires_in,
            refresh_token: signed_in.refresh_token,
            refresh_expires_in: signed_in.refresh_expires_in,
            session_id: signed_in.session_id,
            user: signed_in.user,
            password_set,
        })
}

fn refresh_cookie(token: &str, max_age_seconds: i64, settings: &Settings) -> Cookie<'static> {
    Cookie::build(REFRESH_COOKIE, token.to_owned())
        .http_only(true)
        .same_site(SameSite::Strict)
        .path(COOKIE_PATH)
        .secure(settings.is_production())
        .max_age(CookieDuration::seconds(max_age_seconds))
        .finish()
}

/// A cookie that tells the browser to drop the refresh cookie.
pub fn cleared_refresh_cookie(settings: &Settings) -> Cookie<'static> {
    let mut cookie = refresh_cookie("", 0, settings);
    cookie.make_removal();
    cookie
}

/// The refresh token of the cookie, when the request comes from a page the service trusts. A browser sends
/// the cookie by itself, even on a plain form post from a sibling subdomain or another port, where
/// `SameSite=Strict` does not stop it; so a request carrying it must show an `Origin` in `ALLOWED_ORIGINS`, or
/// `Sec-Fetch-Site: same-origin`. Otherwise `origin_not_allowed`.
pub fn refresh_cookie_value(request: &HttpRequest, settings: &Settings) -> Result<Option<String>, AppError> {
    let Some(token) = request
        .cookie(REFRESH_COOKIE)
        .map(|cookie| cookie.value().to_owned())
        .filter(|value| !value.is_empty())
    else {
        return Ok(None);
    };
    let header_value = |name: header::HeaderName| {
        request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(|value| value.trim_end_matches('/').to_owned())
    };
    let same_origin = header_value(header::HeaderName::from_static("sec-fetch-site")).as_deref() == Some("same-origin");
    let allowed_origin = header_value(header::ORIGIN).is_some_and(|origin| settings.allowed_origins.contains(&origin));
    if same_origin || allowed_origin {
        Ok(Some(token))
    } else {
        Err(AppError::OriginNotAllowed)
    }
}
