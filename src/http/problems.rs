//! Every error answer as problem+json (RFC 9457).
//!
//! `AppError`'s `ResponseError` impl writes `application/problem+json` with `type`, `title`, `status`, `code`,
//! `detail` and, for `validation_failed`, `errors: [{field, message}]`. Status and sentence come from the error's
//! `ErrorCode`; 5xx sentences are fixed and their causes logged. It sets `Cache-Control: no-store`,
//! `WWW-Authenticate` on every 401 (plain `Bearer` for `unauthorized`, otherwise `Bearer error="invalid_token"`
//! with the code as `error_description`), and `Retry-After` on 429 and 503.
//!
//! Actix's own rejections (unknown route, wrong method, oversized or unreadable body) speak it too: the
//! `problem_bodies` middleware rewrites any 4xx or 5xx answer that is not problem+json yet: 404, 405, 413,
//! 415 and 400 to the matching code, any 5xx to `internal`. Unknown paths reach a default service answering
//! `not_found`, and each resource's default service answers `method_not_allowed` (405 with `Allow`).

use actix_web::{
    HttpResponse, ResponseError,
    body::{BoxBody, EitherBody},
    dev::{ServiceRequest, ServiceResponse},
    http::{StatusCode, header},
    middleware::Next,
};
use serde::Serialize;

use crate::error::{AppError, ErrorCode, FieldError};

pub const PROBLEM_JSON: &str = "application/problem+json";

#[derive(Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: String,
    pub status: u16,
    pub code: &'static str,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
}

/// The status of each code, and the sentence people are told (never input, internals or secrets).
fn describe(code: ErrorCode) -> (StatusCode, &'static str) {
    use ErrorCode::*;
    match code {
        MalformedRequest => (StatusCode::BAD_REQUEST, "The request could not be read."),
        ValidationFailed => (StatusCode::UNPROCESSABLE_ENTITY, "The request has invalid fields."),
        UnsupportedMediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "Send the body as application/json."),
        PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "The request body is over 16 KiB."),
        NotFound => (StatusCode::NOT_FOUND, "There is nothing here."),
        MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "This method is not allowed here."),
        Unauthorized => (StatusCode::UNAUTHORIZED, "A valid access token is required."),
        TokenExpired => (
            StatusCode::UNAUTHORIZED,
            "The access token has expired: refresh it and retry.",
        ),
        SessionRevoked => (StatusCode::UNAUTHORIZED, "This session has ended: sign in again."),
        SessionExpired => (
            StatusCode::UNAUTHORIZED,
            "This session reached its time limit: sign in again.",
        ),
        InvalidCredentials => (StatusCode::UNAUTHORIZED, "The email or password is wrong."),
        InvalidPassword => (StatusCode::FORBIDDEN, "The current password is wrong."),
        OriginNotAllowed => (StatusCode::FORBIDDEN, "This origin is not allowed."),
        OtpInvalid => (StatusCode::BAD_REQUEST, "The code is wrong."),
        OtpExpired => (StatusCode::BAD_REQUEST, "The code has expired: request a new one."),
        OtpAttemptsExceeded => (StatusCode::BAD_REQUEST, "Too many wrong tries: request a new code."),
        ChallengeInvalid => (
            StatusCode::BAD_REQUEST,
            "The sign-in challenge is unknown, used or expired.",
        ),
        ReauthenticationRequired => (
            StatusCode::FORBIDDEN,
            "This change needs a recent sign-in: confirm your password or a code first.",
        ),
        TotpAlreadyEnabled => (
            StatusCode::CONFLICT,
            "An authenticator app is already on: turn it off first.",
        ),
        TotpNotEnabled => (
            StatusCode::CONFLICT,
            "No authenticator app is on, or its setup was not started or has expired.",
        ),
        PasskeyInvalid => (
            StatusCode::BAD_REQUEST,
            "The passkey was not accepted: start again with new options.",
        ),
        RefreshTokenInvalid => (StatusCode::UNAUTHORIZED, "The refresh token is not valid."),
        RefreshTokenReused => (
            StatusCode::UNAUTHORIZED,
            "This refresh token was already used: the session has been ended.",
        ),
        RateLimited => (StatusCode::TOO_MANY_REQUESTS, "Too many requests: retry later."),
        AccountLocked => (StatusCode::TOO_MANY_REQUESTS, "Too many failed attempts: retry later."),
        ServiceUnavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            "The service is temporarily unavailable.",
        ),
        Internal => (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong on our side."),
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        describe(self.code()).0
    }

    fn error_response(&self) -> HttpResponse {
        let code = self.code();
        let (status, sentence) = describe(code);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            // An outage or shed load, not a fault: the cause is logged without the weight of an error.
            tracing::warn!(error = %self, "request turned away");
        } else if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let mut response = HttpResponse::build(status);
        response.insert_header((header::CONTENT_TYPE, PROBLEM_JSON));
        response.insert_header((header::CACHE_CONTROL, "no-store"));
        if status == StatusCode::UNAUTHORIZED {
            let challenge = match code {
                ErrorCode::Unauthorized => "Bearer".to_owned(),
                other => format!("Bearer error=\"invalid_token\", error_description=\"{other}\""),
            };
            response.insert_header((header::WWW_AUTHENTICATE, challenge));
        }
        match self {
            AppError::RateLimited { retry_after_seconds } | AppError::AccountLocked { retry_after_seconds } => {
                response.insert_header((header::RETRY_AFTER, retry_after_seconds.max(&1).to_string()));
            }
            AppError::ServiceUnavailable(_) => {
                response.insert_header((header::RETRY_AFTER, "1"));
            }
            _ => {}
        }
        let (detail, errors) = match self {
            // The one sentence that varies: which part of the request could not be read (never its content).
            AppError::MalformedRequest(detail) => (detail.clone(), None),
            AppError::ValidationFailed(errors) => (sentence.to_owned(), Some(errors.clone())),
            _ => (sentence.to_owned(), None),
        };
        response.json(Problem {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            code: code.as_str(),
            detail,
            errors,
        })
    }
}

/// 405 with the `Allow` header RFC 9110 asks for.
pub async fn method_not_allowed(allowed: &'static str) -> actix_web::HttpResponse {
    let mut response = AppError::MethodNotAllowed.error_response();
    response
        .headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static(allowed));
    response
}

pub async fn not_found() -> Result<actix_web::HttpResponse, AppError> {
    Err(AppError::NotFound)
}

/// Rewrites an error response that is not problem+json yet.
pub async fn problem_bodies(
    request: ServiceRequest,
    next: Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<BoxBody>>, actix_web::Error> {
    let response = next.call(request).await?;
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with(PROBLEM_JSON));
    let replacement = match status {
        _ if is_problem || !(status.is_client_error() || status.is_server_error()) => None,
        StatusCode::NOT_FOUND => Some(AppError::NotFound),
        StatusCode::METHOD_NOT_ALLOWED => Some(AppError::MethodNotAllowed),
        StatusCode::PAYLOAD_TOO_LARGE => Some(AppError::PayloadTooLarge),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => Some(AppError::UnsupportedMediaType),
        StatusCode::BAD_REQUEST => Some(AppError::MalformedRequest("The request could not be read.".to_owned())),
        status if status.is_server_error() => Some(AppError::Internal(format!("unhandled {status}"))),
        _ => None,
    };
    Ok(match replacement {
        Some(error) => {
            let (request, _) = response.into_parts();
            ServiceResponse::new(request, error.error_response()).map_into_right_body()
        }
        None => response.map_into_boxed_body().map_into_left_body(),
    })
}
