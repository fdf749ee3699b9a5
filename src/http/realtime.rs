//! The real-time channel: tickets and the WebSocket upgrade, authenticated and origin-checked before it.

use actix_web::{HttpRequest, HttpResponse, http::header, web};
use serde::{Deserialize, Serialize};

use super::extract::{AuthUser, bearer_token};
use crate::{
    error::{AppError, AppResult},
    realtime::ws_session,
    services::{
        AppState,
        tickets::{self, Credential},
    },
};

#[derive(Serialize, utoipa::ToSchema)]
pub struct TicketResponse {
    pub ticket: String,
    pub expires_in: i64,
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct UpgradeQuery {
    /// A ticket from `POST /api/auth/ws-ticket` (browsers); apps may send `Authorization: Bearer` instead.
    pub ticket: Option<String>,
}

/// A single-use ticket for opening the WebSocket from a browser (30 s, bound to this session).
#[utoipa::path(post, path = "/api/auth/ws-ticket", tag = "realtime",
    responses((status = 200, body = TicketResponse), (status = 401, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn ticket(state: web::Data<AppState>, caller: AuthUser) -> AppResult<HttpResponse> {
    let ticket = tickets::issue(&state, caller.user, caller.session).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(TicketResponse {
            ticket,
            expires_in: tickets::TICKET_SECONDS,
        }))
}

/// Upgrades to the WebSocket that carries `hello`, `session_revoked`, `session_created` and `session_ended`.
#[utoipa::path(get, path = "/api/ws", tag = "realtime", params(UpgradeQuery),
    responses((status = 101, description = "switching to the WebSocket protocol"),
        (status = 400, description = "malformed_request: not a WebSocket upgrade", body = crate::error::Problem),
        (status = 401, body = crate::error::Problem), (status = 403, description = "origin_not_allowed", body = crate::error::Problem)),
    security((), ("bearer" = [])))]
pub async fn upgrade(
    state: web::Data<AppState>,
    request: HttpRequest,
    stream: web::Payload,
    query: web::Query<UpgradeQuery>,
) -> AppResult<HttpResponse> {
    if let Some(origin) = request.headers().get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or_default().trim_end_matches('/');
        if !state.settings.allowed_origins.iter().any(|allowed| allowed == origin) {
            return Err(AppError::OriginNotAllowed);
        }
    }
    let grant = if let Some(token) = bearer_token(&request) {
        let caller = AuthUser::from_token(&state, token)?;
        tickets::admit(
            &state,
            Credential::Bearer {
                user: caller.user,
                session: caller.session,
            },
        )
        .await?
    } else if let Some(ticket) = &query.ticket {
        if !ws_session::is_upgrade(&request) {
            return Err(AppError::MalformedRequest("a WebSocket upgrade is expected".to_owned()));
        }
        tickets::admit(&state, Credential::Ticket(ticket)).await?
    } else {
        return Err(AppError::Unauthorized);
    };
    ws_session::start(
        &request,
        stream,
        state.clone(),
        grant.user,
        grant.session,
        grant.ends_at,
    )
    .map_err(|_| AppError::MalformedRequest("a WebSocket upgrade is expected".to_owned()))
}
