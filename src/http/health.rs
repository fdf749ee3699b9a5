//! Liveness and readiness.

use actix_web::{HttpResponse, web};
use serde::Serialize;

use crate::{
    error::{AppError, AppResult},
    services::AppState,
};

#[derive(Serialize, utoipa::ToSchema)]
pub struct HealthStatus {
    pub status: &'static str,
}

/// Always 200 while the process serves.
#[utoipa::path(get, path = "/health/live", tag = "operations", responses((status = 200, body = HealthStatus)))]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(HealthStatus { status: "ok" })
}

/// 200 when the database answers, else 503.
#[utoipa::path(get, path = "/health/ready", tag = "operations",
    responses((status = 200, body = HealthStatus), (status = 503, body = crate::http::problems::Problem)))]
pub async fn ready(state: web::Data<AppState>) -> AppResult<HttpResponse> {
    state
        .store
        .connection()
        .ping()
        .await
        .map_err(|_| AppError::ServiceUnavailable("database".to_owned()))?;
    Ok(HttpResponse::Ok().json(HealthStatus { status: "ok" }))
}

/// Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain")))]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    state
        .metrics
        .password_hash_queue
        .set(i64::try_from(state.passwords.queue_depth()).unwrap_or(i64::MAX));
    HttpResponse::Ok()
        .insert_header((
            actix_web::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        ))
        .body(state.metrics.render())
}
