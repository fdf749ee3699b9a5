//! The real-time channel: tickets and the WebSocket upgrade, authenticated and origin-checked before it.
//!
//! The upgrade checks `Origin` first: present and not in `ALLOWED_ORIGINS` is 403 `origin_not_allowed`; absent
//! means a non-browser client and passes. Then come the credentials (`tickets::admit`). The upgrade also reads the
//! session row through `sessions::live` and refuses a session whose `revoked_at` is set or that is past its
//! absolute or idle limit, because a session ended long ago may have left the in-memory revoked set.

use actix_web::{HttpRequest, HttpResponse, http::header, web};
use serde::{Deserialize, Serialize};

use super::{
    extract::{AuthUser, bearer_token},
    rate_limit::SocketRateLimiter,
};
use crate::{
    error::{AppError, AppResult},
    realtime::{
        socket_slots::SocketSlots,
        ws_session::{self, SocketContext},
    },
    services::{
        AppState,
        tickets::{self, Credential},
    },
};

const NOT_AN_UPGRADE: &str = "This path takes only a WebSocket upgrade.";

/// The wait suggested when a session or user holds as many sockets as allowed: one closes when a device does.
const SOCKET_CAP_RETRY_SECONDS: u64 = 30;

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
    responses((status = 200, body = TicketResponse), (status = 401, body = crate::http::problems::Problem),
        (status = 429, description = "rate_limited: past the user's budget of tickets and upgrades", body = crate::http::problems::Problem)),
    security(("bearer" = [])))]
pub async fn ticket(
    state: web::Data<AppState>,
    budget: web::Data<SocketRateLimiter>,
    caller: AuthUser,
) -> AppResult<HttpResponse> {
    budget.check(caller.user)?;
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
        (status = 400, description = "malformed_request: not a WebSocket upgrade", body = crate::http::problems::Problem),
        (status = 401, body = crate::http::problems::Problem), (status = 403, description = "origin_not_allowed", body = crate::http::problems::Problem),
        (status = 429, description = "rate_limited: past the user's budget, or the session or user already holds as many sockets as allowed", body = crate::http::problems::Problem)),
    security((), ("bearer" = [])))]
pub async fn upgrade(
    state: web::Data<AppState>,
    budget: web::Data<SocketRateLimiter>,
    slots: web::Data<SocketSlots>,
    sockets: web::Data<SocketContext>,
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
    // A place under the per-session and per-user caps, taken before the upgrade and before a ticket is used.
    let reserve = |user, session| {
        slots.take(user, session).ok_or(AppError::RateLimited {
            retry_after_seconds: SOCKET_CAP_RETRY_SECONDS,
        })
    };
    // Nothing is spent or read for a request that is no upgrade.
    if !ws_session::is_upgrade(&request) {
        return Err(AppError::MalformedRequest(NOT_AN_UPGRADE.to_owned()));
    }
    let (grant, slot) = if let Some(token) = bearer_token(&request) {
        let caller = AuthUser::from_token(&state, token)?;
        // A ticket was paid for from the user's budget when it was issued; a Bearer upgrade pays here.
        budget.check(caller.user)?;
        let credential = Credential::Bearer {
            user: caller.user,
            session: caller.session,
        };
        tickets::admit(&state, credential, reserve).await?
    } else if let Some(ticket) = &query.ticket {
        tickets::admit(&state, Credential::Ticket(ticket), reserve).await?
    } else {
        return Err(AppError::Unauthorized);
    };
    ws_session::start(
        &request,
        stream,
        sockets.get_ref().clone(),
        slot,
        grant.user,
        grant.session,
        grant.ends_at,
    )
    .map_err(|_| AppError::MalformedRequest(NOT_AN_UPGRADE.to_owned()))
}
