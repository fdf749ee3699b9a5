//! Extractors: the JSON body parser with the contract's errors, and the authenticated caller.
//!
//! `JsonBody` (and `OptionalJsonBody`) reads the body itself: no JSON content type is 415, over 16 KiB is 413,
//! text that is not JSON is 400 with a line and column, and valid JSON of the wrong shape is 422 naming the field
//! (see `json_shape`). No message echoes the input.
//!
//! `AuthUser` is an extractor whose future is ready at once:
//!
//! 1. It takes the token from `Authorization: Bearer` (scheme case-insensitive). None: `unauthorized`.
//! 2. `AccessTokens::verify` checks the algorithm, the claims and `typ` (see `tokens`). Anything wrong answers
//!    `unauthorized`.
//! 3. It reads `views.revoked.reason_of(sid)`: a read lock on a `HashMap` shared with the manager
//!    (`realtime::live_sets`). There is no database query and no message to the actor. A hit answers
//!    `session_expired` for the reason `expired`, `session_revoked` for any other: how a session ended wins over
//!    when its token would have.
//! 4. `AccessTokens::check_life` answers `session_expired` past the session's end and `token_expired` past the
//!    token's (see `tokens`).
//!
//! Handlers that need the account (for example `GET /api/users/me`) then read it; a deleted account reads as
//! `session_revoked`.

use std::future::Future;
use std::pin::Pin;

use actix_web::{FromRequest, HttpRequest, dev::Payload, http::header, web};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::json_shape::{self, ShapeError};
use crate::{domain::RevocationReason, error::AppError, services::AppState, tokens::AccessTokenError};

/// The most a request body may hold.
pub const BODY_LIMIT: usize = 16 * 1024;

/// A JSON body: 415 without `Content-Type: application/json`, 413 over 16 KiB, 400 when not JSON, 422 when
/// JSON of the wrong shape (naming the field). Unknown fields are ignored.
pub struct JsonBody<T>(pub T);

/// A body that may be absent: no body, an empty one, or JSON (the content type is then not required).
pub struct OptionalJsonBody<T>(pub Option<T>);

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_json = is_json_content_type(request);
        let body = web::Bytes::from_request(request, payload);
        Box::pin(async move {
            let body = body.await.map_err(payload_error)?;
            if !is_json {
                return Err(AppError::UnsupportedMediaType);
            }
            parse(&body).map(JsonBody)
        })
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for OptionalJsonBody<T> {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let has_content_type = request.headers().contains_key(header::CONTENT_TYPE);
        let is_json = is_json_content_type(request);
        let body = web::Bytes::from_request(request, payload);
        Box::pin(async move {
            let body = body.await.map_err(payload_error)?;
            if body.iter().all(u8::is_ascii_whitespace) {
                return Ok(OptionalJsonBody(None));
            }
            if has_content_type && !is_json {
                return Err(AppError::UnsupportedMediaType);
            }
            parse(&body).map(|value| OptionalJsonBody(Some(value)))
        })
    }
}

fn is_json_content_type(request: &HttpRequest) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(|essence| {
            let essence = essence.trim().to_ascii_lowercase();
            essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
        })
        .unwrap_or(false)
}

fn payload_error(error: actix_web::Error) -> AppError {
    if error.as_response_error().status_code() == actix_web::http::StatusCode::PAYLOAD_TOO_LARGE {
        AppError::PayloadTooLarge
    } else {
        AppError::MalformedRequest("The request body could not be read.".to_owned())
    }
}

/// JSON first, then the shape (`json_shape`): one rule for every endpoint, whatever the target type. Text that
/// is not JSON is 400; valid JSON of the wrong shape, a key given twice included, is 422 naming the field.
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, AppError> {
    let value = json_shape::parse_text(body).map_err(|error| {
        if error.is_data() {
            AppError::validation("body", "gives a field twice")
        } else {
            not_json(&error)
        }
    })?;
    json_shape::read(value).map_err(shape_error)
}

/// Where the text stopped being JSON, never what it said.
fn not_json(error: &serde_json::Error) -> AppError {
    AppError::MalformedRequest(format!(
        "The request body is not valid JSON (line {}, column {}).",
        error.line(),
        error.column()
    ))
}

/// The contract's error for a body of the wrong shape, naming the field and never echoing the input.
fn shape_error(error: serde_path_to_error::Error<ShapeError>) -> AppError {
    let path = error.path().to_string();
    let at = |field: &str| {
        if path == "." {
            field.to_owned()
        } else {
            format!("{path}.{field}")
        }
    };
    match error.into_inner() {
        ShapeError::Missing(field) => AppError::validation(&at(field), "is required"),
        ShapeError::Wrong { expected } => {
            let field = if path == "." { "body".to_owned() } else { path.clone() };
            AppError::validation(&field, format!("has the wrong type or value: expected {expected}"))
        }
        ShapeError::Refused => {
            let field = if path == "." { "body".to_owned() } else { path.clone() };
            AppError::validation(&field, "has the wrong type or value")
        }
    }
}

/// The caller behind a valid access token whose session has not ended. Checking it reads the manager's
/// revoked set: no database, no awaiting.
#[derive(Debug, Clone, Copy)]
pub struct AuthUser {
    pub user: Uuid,
    pub session: Uuid,
}

impl AuthUser {
    pub fn from_token(state: &AppState, token: &str) -> Result<Self, AppError> {
        let claims = state.access_tokens.verify(token).map_err(token_error)?;
        // How the session ended comes first: a token of a session logged out answers so, even past its expiry.
        match state.live_sets.revoked.reason_of(&claims.sid) {
            Some(RevocationReason::Expired) => return Err(AppError::SessionExpired),
            Some(_) => return Err(AppError::SessionRevoked),
            None => {}
        }
        state
            .access_tokens
            .check_life(&claims, chrono::Utc::now().timestamp())
            .map_err(token_error)?;
        Ok(Self {
            user: claims.sub,
            session: claims.sid,
        })
    }
}

fn token_error(error: AccessTokenError) -> AppError {
    match error {
        AccessTokenError::Expired => AppError::TokenExpired,
        AccessTokenError::SessionExpired => AppError::SessionExpired,
        AccessTokenError::Invalid => AppError::Unauthorized,
    }
}

/// The token of an `Authorization: Bearer` header, if there is one.
pub fn bearer_token(request: &HttpRequest) -> Option<&str> {
    let value = request.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

impl FromRequest for AuthUser {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, AppError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(authenticate(request))
    }
}

fn authenticate(request: &HttpRequest) -> Result<AuthUser, AppError> {
    let state = request
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| AppError::Internal("application state missing".to_owned()))?;
    let token = bearer_token(request).ok_or(AppError::Unauthorized)?;
    AuthUser::from_token(state, token)
}
