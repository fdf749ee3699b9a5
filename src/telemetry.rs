//! Logging. Request lines carry method, path (never the query, which may hold a ticket), status and time.
//!
//! The access-log middleware also records the request-duration histogram by route pattern.

use std::time::Instant;

use actix_web::{
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    middleware::Next,
};
use actix_web::{http::Method, web};
use tracing_subscriber::EnvFilter;

use crate::services::AppState;

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}

/// The standard methods by name and any other as `other`: a label value is a series kept for the life of
/// the process, and a client can invent methods without end.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

pub async fn access_log(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.path().to_owned();
    let response = next.call(request).await?;
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    let micros = elapsed.as_micros() as u64;
    if let Some(state) = response.request().app_data::<web::Data<AppState>>() {
        let route = response
            .request()
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned());
        state
            .metrics
            .http_request_duration
            .with_label_values(&[method_label(&method), route.as_str(), &status.to_string()])
            .observe(elapsed.as_secs_f64());
    }
    if response.status().is_server_error() {
        tracing::warn!(%method, %path, status, micros, "request");
    } else {
        tracing::debug!(%method, %path, status, micros, "request");
    }
    Ok(response)
}
