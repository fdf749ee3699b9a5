//! The caller's sessions: list and revoke.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use uuid::Uuid;

use super::extract::AuthUser;
use crate::{
    error::{AppError, AppResult},
    services::{AppState, account, sessions, sessions::SessionSummary},
};

#[derive(Serialize, utoipa::ToSchema)]
pub struct SessionList {
    pub sessions: Vec<SessionSummary>,
}

/// The caller's live sessions, newest first.
#[utoipa::path(get, path = "/api/auth/sessions", tag = "sessions",
    responses((status = 200, body = SessionList), (status = 401, body = crate::http::problems::Problem)), security(("bearer" = [])))]
pub async fn list(state: web::Data<AppState>, caller: AuthUser) -> AppResult<HttpResponse> {
    let sessions = sessions::list(&state, caller.user, caller.session).await?;
    Ok(HttpResponse::Ok().json(SessionList { sessions }))
}

/// End one of the caller's sessions (the current one included).
#[utoipa::path(delete, path = "/api/auth/sessions/{id}", tag = "sessions", params(("id" = Uuid, Path, description = "session id")),
    responses((status = 204), (status = 401, body = crate::http::problems::Problem), (status = 404, body = crate::http::problems::Problem)),
    security(("bearer" = [])))]
pub async fn revoke(state: web::Data<AppState>, caller: AuthUser, path: web::Path<String>) -> AppResult<HttpResponse> {
    let target = Uuid::parse_str(&path.into_inner()).map_err(|_| AppError::NotFound)?;
    account::revoke_session(&state, caller.user, target).await?;
    Ok(HttpResponse::NoContent().finish())
}
