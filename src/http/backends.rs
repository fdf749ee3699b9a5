//! What apps' backends call with a backend key (`Authorization: Bearer authd_bk_...`, made with
//! `authd backend-keys create`): token introspection, and the revocation feed.

use actix_web::{FromRequest, HttpRequest, HttpResponse, dev::Payload, web};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::extract::{JsonBody, bearer_token};
use crate::{
    error::{AppError, AppResult},
    services::{
        AppState, introspection,
        revocation_feed::{Cursor, FeedEvent},
    },
};

/// A caller that presented a live backend key. A user's access token is not one.
pub struct Backend {
    pub key: Uuid,
}

impl FromRequest for Backend {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, AppError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let backend = request
            .app_data::<web::Data<AppState>>()
            .ok_or_else(|| AppError::Internal("application state missing".to_owned()))
            .and_then(|state| {
                let key = bearer_token(request).ok_or(AppError::Unauthorized)?;
                state.backend_keys.check(key).ok_or(AppError::Unauthorized)
            })
            .map(|key| Backend { key });
        std::future::ready(backend)
    }
}

/// RFC 7662's request: the token. A `token_type_hint`, like any other field, is ignored: authd introspects
/// access tokens only.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct IntrospectionRequest {
    pub token: String,
}

/// RFC 7662's answer: `active`, and for an active token what it says. An inactive token (malformed, forged,
/// expired, or of an ended session) answers `{"active": false}` alone.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Introspection {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<Uuid>,
    /// The session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
}

/// Whether an access token is active now, answered from memory (no database read): its signature and claims,
/// and whether its session has ended, on any node.
#[utoipa::path(post, path = "/api/auth/introspect", tag = "backends",
    request_body(content = IntrospectionRequest, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = Introspection),
        (status = 401, description = "unauthorized: no live backend key", body = crate::http::problems::Problem)),
    security(("bearer" = [])))]
pub async fn introspect(
    _backend: Backend,
    state: web::Data<AppState>,
    form: web::Form<IntrospectionRequest>,
) -> AppResult<HttpResponse> {
    let answer = match introspection::active_claims(&state, &form.token) {
        Some(claims) => Introspection {
            active: true,
            sub: Some(claims.sub),
            sid: Some(claims.sid),
            iss: Some(claims.iss),
            aud: Some(claims.aud),
            iat: Some(claims.iat),
            exp: Some(claims.exp),
            jti: Some(claims.jti),
            token_type: Some("access_token"),
        },
        None => Introspection {
            active: false,
            sub: None,
            sid: None,
            iss: None,
            aud: None,
            iat: None,
            exp: None,
            jti: None,
            token_type: None,
        },
    };
    Ok(HttpResponse::Ok()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(answer))
}

/// Where a backend wants its back-channel logout tokens.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct ReceiverRequest {
    /// An `http://` or `https://` URL.
    pub url: String,
}

/// Registers the URL that receives a back-channel logout token for every session end, for the calling backend
/// key (replacing its earlier one). Deliveries start with the next end; they stop when the key is revoked.
#[utoipa::path(put, path = "/api/backchannel/receiver", tag = "backends", request_body = ReceiverRequest,
    responses((status = 204),
        (status = 401, description = "unauthorized: no live backend key", body = crate::http::problems::Problem),
        (status = 422, description = "validation_failed: not an http:// or https:// URL", body = crate::http::problems::Problem)),
    security(("bearer" = [])))]
pub async fn register_receiver(
    backend: Backend,
    state: web::Data<AppState>,
    body: JsonBody<ReceiverRequest>,
) -> AppResult<HttpResponse> {
    let url = body.0.url.trim();
    if url.len() > 2048 || !crate::config::is_backchannel_url(url) {
        return Err(AppError::validation("url", "must be an http:// or https:// URL"));
    }
    crate::backchannel::register_for_key(state.store.connection(), backend.key, url).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Stops the calling backend key's back-channel logout deliveries.
#[utoipa::path(delete, path = "/api/backchannel/receiver", tag = "backends",
    responses((status = 204),
        (status = 401, description = "unauthorized: no live backend key", body = crate::http::problems::Problem),
        (status = 404, description = "not_found: the key has no receiver", body = crate::http::problems::Problem)),
    security(("bearer" = [])))]
pub async fn remove_receiver(backend: Backend, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    if crate::backchannel::remove_for_key(state.store.connection(), backend.key).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(AppError::NotFound)
    }
}

/// How often a feed reads the log when it has heard of nothing (a safety net: every end this node hears of wakes
/// it at once).
const FEED_POLL: std::time::Duration = std::time::Duration::from_secs(1);
/// How often a quiet feed sends a comment, so proxies keep it open.
const FEED_HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(15);

/// The revocation feed (Server-Sent Events): first every ended session whose access tokens could still be
/// presented, then each session end as it happens, on any node. Each event is `event: revoked`, `id:` its
/// position, `data:` a `FeedEvent`; resume with `Last-Event-ID`. The comment `: live` follows the snapshot (or,
/// on a resume, what was missed); `: heartbeat` every 15 s keeps proxies from closing a quiet stream.
#[utoipa::path(get, path = "/api/revocations/stream", tag = "backends",
    params(("Last-Event-ID" = Option<i64>, Header, description = "the id of the last event received: resume after it")),
    responses((status = 200, content_type = "text/event-stream", body = crate::services::revocation_feed::FeedEvent,
            description = "a stream of `event: revoked` events whose `data` is this object"),
        (status = 400, description = "malformed_request: a Last-Event-ID that is not a number", body = crate::http::problems::Problem),
        (status = 401, description = "unauthorized: no live backend key", body = crate::http::problems::Problem)),
    security(("bearer" = [])))]
pub async fn revocation_stream(
    _backend: Backend,
    state: web::Data<AppState>,
    request: HttpRequest,
) -> AppResult<HttpResponse> {
    let last_event_id = match request.headers().get("last-event-id") {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|text| text.trim().parse::<i64>().ok())
                .filter(|id| *id >= 0)
                .ok_or_else(|| AppError::MalformedRequest("Last-Event-ID must be an event id.".to_owned()))?,
        ),
    };
    let life = state.settings.access_token_ttl;
    let cursor = Cursor::start(state.store.connection(), last_event_id, life).await?;
    let mut heartbeat = tokio::time::interval(FEED_HEARTBEAT);
    heartbeat.reset();
    let feed = Feed {
        changes: state.revocation_log.clone(),
        state,
        cursor,
        pending: std::collections::VecDeque::new(),
        heartbeat,
        read_now: true,
        live: false,
    };
    let stream = futures_util::stream::unfold(feed, |mut feed| async move {
        let chunk = feed.next_chunk().await?;
        Some((Ok::<_, actix_web::Error>(chunk), feed))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        // Nginx and others buffer answers by default; this one must flow.
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(stream))
}

/// One subscriber's stream.
struct Feed {
    state: web::Data<AppState>,
    cursor: Cursor,
    pending: std::collections::VecDeque<FeedEvent>,
    changes: tokio::sync::watch::Receiver<u64>,
    heartbeat: tokio::time::Interval,
    read_now: bool,
    /// Whether `: live` has been sent: the snapshot (or, on a resume, what was missed) is complete.
    live: bool,
}

impl Feed {
    /// The next bytes to send; `None` ends the stream (the log cannot be read: the subscriber reconnects).
    async fn next_chunk(&mut self) -> Option<actix_web::web::Bytes> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                let data = serde_json::to_string(&event).ok()?;
                return Some(format!("id: {}\nevent: revoked\ndata: {data}\n\n", event.id).into());
            }
            if !self.read_now && !self.live {
                self.live = true;
                return Some(actix_web::web::Bytes::from_static(b": live\n\n"));
            }
            if !self.read_now {
                tokio::select! {
                    changed = self.changes.changed() => {
                        if changed.is_err() {
                            tokio::time::sleep(FEED_POLL).await;
                        }
                    }
                    () = tokio::time::sleep(FEED_POLL) => {}
                    _ = self.heartbeat.tick() => return Some(actix_web::web::Bytes::from_static(b": heartbeat\n\n")),
                }
            }
            self.read_now = false;
            match self
                .cursor
                .next(self.state.store.connection(), self.state.settings.access_token_ttl)
                .await
            {
                Ok(events) => {
                    // More may wait behind a full page: read again at once.
                    self.read_now = !events.is_empty();
                    self.pending.extend(events);
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot read the revocation log for a feed");
                    return None;
                }
            }
        }
    }
}
