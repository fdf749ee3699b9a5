//! The demo console at `/`: one static page, its script and its style, under a strict CSP.
//! In development the files are read from `static/` when present, so the page can be edited live.
//!
//! The pages are compiled into the binary with `include_str!`. Outside production, `/`, `/console.js` and
//! `/console.css` are read from `static/` in the working directory when the files exist. They carry
//! `Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self';
//! img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'`.
//!
//! The browser tests (`tests/api/browser.rs`, scripts in `tests/browser/`, sharing `common.mjs`) drive this page
//! in Debian's `/usr/bin/chromium` through playwright-core: `console.mjs` signs two isolated browser contexts in
//! as one user, and "sign out everywhere" in one must show as signed out, with the reason, in the other within
//! one second; `register.mjs` registers through the form, types the mailed code the test passes on its standard
//! input, and signs in again with the password chosen there; `second-factor.mjs` sets up an authenticator app in
//! one context (computing its codes from the key the page shows), sees it on in the other without a reload, and
//! signs in again with an app code and with a recovery code; `passkeys.mjs` (on `localhost`, since WebAuthn
//! refuses IP addresses) adds a passkey through Chromium's virtual authenticator and signs in with it after the
//! password and alone.

use std::borrow::Cow;

use actix_web::{HttpResponse, http::header, web};

use crate::services::AppState;

const PAGE: &str = include_str!("../../static/console.html");
const SCRIPT: &str = include_str!("../../static/console.js");
const STYLE: &str = include_str!("../../static/console.css");

/// No inline script or style, nothing from elsewhere, no framing.
pub const CONSOLE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
     img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

fn asset(state: &AppState, name: &str, embedded: &'static str) -> Cow<'static, str> {
    if !state.settings.is_production()
        && let Ok(text) = std::fs::read_to_string(std::path::Path::new("static").join(name))
    {
        return Cow::Owned(text);
    }
    Cow::Borrowed(embedded)
}

fn respond(content_type: &str, body: Cow<'static, str>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::CONTENT_SECURITY_POLICY, CONSOLE_POLICY))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body.into_owned())
}

pub async fn page(state: web::Data<AppState>) -> HttpResponse {
    respond("text/html; charset=utf-8", asset(&state, "console.html", PAGE))
}

pub async fn script(state: web::Data<AppState>) -> HttpResponse {
    respond("text/javascript; charset=utf-8", asset(&state, "console.js", SCRIPT))
}

pub async fn style(state: web::Data<AppState>) -> HttpResponse {
    respond("text/css; charset=utf-8", asset(&state, "console.css", STYLE))
}
