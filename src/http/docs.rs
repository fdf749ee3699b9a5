//! `/docs`: a self-contained page that renders `/api/openapi.json` (no CDN, no build step).

use actix_web::{HttpResponse, http::header};

const PAGE: &str = include_str!("../../static/docs.html");

pub async fn page() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'",
        ))
        .body(PAGE)
}
