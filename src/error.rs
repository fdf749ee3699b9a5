//! The one error type and its problem+json (RFC 9457) mapping. 5xx bodies are fixed; causes are logged.
//!
//! `AppError` has one variant per thing a client should learn, plus internal causes (`Database`, `Password`,
//! `Signing`, `Internal`) that all answer 500 `internal` with a fixed sentence; the cause is logged. A database
//! error that says the database cannot be reached (refused or dropped connections, a pool that waited in vain,
//! SQLSTATE classes 08 and 57P) becomes `ServiceUnavailable` at its conversion: 503 with `Retry-After: 1`, logged
//! as a warning.
//!
//! Its `ResponseError` impl writes `application/problem+json` with `type`, `title`, `status`, `code`, `detail`
//! and, for `validation_failed`, `errors: [{field, message}]`. It sets `Cache-Control: no-store`,
//! `WWW-Authenticate` on every 401 (plain `Bearer` for `unauthorized`, otherwise `Bearer error="invalid_token"`
//! with the code as `error_description`), and `Retry-After` on 429.
//!
//! Error answers that actix produces itself are not built from `AppError`: see `http::problems`.

use actix_web::{
    HttpResponse, ResponseError,
    http::{StatusCode, header},
};
use serde::Serialize;

pub const PROBLEM_JSON: &str = "application/problem+json";

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

/// What the client should learn, plus internal causes that it should not.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request cannot be read at all; carries the sentence the client is told (never any of the input).
    #[error("malformed request")]
    MalformedRequest(String),
    #[error("validation failed")]
    ValidationFailed(Vec<FieldError>),
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("unauthorized")]
    Unauthorized,
    #[error("token expired")]
    TokenExpired,
    #[error("session revoked")]
    SessionRevoked,
    #[error("session expired")]
    SessionExpired,
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("invalid password")]
    InvalidPassword,
    #[error("origin not allowed")]
    OriginNotAllowed,
    #[error("invalid code")]
    OtpInvalid,
    #[error("expired code")]
    OtpExpired,
    #[error("too many attempts")]
    OtpAttemptsExceeded,
    #[error("invalid challenge")]
    ChallengeInvalid,
    #[error("invalid refresh token")]
    RefreshTokenInvalid,
    #[error("refresh token reused")]
    RefreshTokenReused,
    #[error("rate limited")]
    RateLimited { retry_after_seconds: u64 },
    #[error("account locked")]
    AccountLocked { retry_after_seconds: u64 },
    #[error("service unavailable: {0}")]
    ServiceUnavailable(String),
    #[error("database error: {0}")]
    Database(sea_orm::DbErr),
    #[error("password hashing error: {0}")]
    Password(crate::passwords::PasswordError),
    #[error("token signing error: {0}")]
    Signing(#[from] jsonwebtoken::errors::Error),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<sea_orm::DbErr> for AppError {
    /// A database that cannot be reached (refused or dropped connections, a pool that waited in vain, a server
    /// shutting down) is an outage to wait out (503, try again shortly); anything else is a fault.
    fn from(error: sea_orm::DbErr) -> Self {
        if is_unreachable(&error) {
            Self::ServiceUnavailable(format!("database unreachable: {error}"))
        } else {
            Self::Database(error)
        }
    }
}

/// Whether a database error says the database could not be reached, rather than that a statement failed.
fn is_unreachable(error: &sea_orm::DbErr) -> bool {
    use sea_orm::{DbErr, RuntimeErr};
    match error {
        // Failures to get a connection at all.
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(error)) | DbErr::Query(RuntimeErr::SqlxError(error)) => {
            match error.as_ref() {
                sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::Protocol(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed => true,
                // SQLSTATE class 08 (connection exception) and 57P (the server is shutting down or starting).
                sqlx::Error::Database(error) => error
                    .code()
                    .is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
                _ => false,
            }
        }
        _ => false,
    }
}

impl From<crate::passwords::PasswordError> for AppError {
    /// A full hashing queue is load to shed (503, try again shortly); anything else is a fault.
    fn from(error: crate::passwords::PasswordError) -> Self {
        match error {
            crate::passwords::PasswordError::Busy => Self::ServiceUnavailable(error.to_string()),
            other => Self::Password(other),
        }
    }
}

impl AppError {
    pub fn validation(field: &str, message: impl Into<String>) -> Self {
        Self::ValidationFailed(vec![FieldError::new(field, message)])
    }

    /// The stable machine-readable code of the contract.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MalformedRequest(_) => "malformed_request",
            Self::ValidationFailed(_) => "validation_failed",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::PayloadTooLarge => "payload_too_large",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Unauthorized => "unauthorized",
            Self::TokenExpired => "token_expired",
            Self::SessionRevoked => "session_revoked",
            Self::SessionExpired => "session_expired",
            Self::InvalidCredentials => "invalid_credentials",
            Self::InvalidPassword => "invalid_password",
            Self::OriginNotAllowed => "origin_not_allowed",
            Self::OtpInvalid => "otp_invalid",
            Self::OtpExpired => "otp_expired",
            Self::OtpAttemptsExceeded => "otp_attempts_exceeded",
            Self::ChallengeInvalid => "challenge_invalid",
            Self::RefreshTokenInvalid => "refresh_token_invalid",
            Self::RefreshTokenReused => "refresh_token_reused",
            Self::RateLimited { .. } => "rate_limited",
            Self::AccountLocked { .. } => "account_locked",
            Self::ServiceUnavailable(_) => "service_unavailable",
            Self::Database(_) | Self::Password(_) | Self::Signing(_) | Self::Internal(_) => "internal",
        }
    }

    /// A sentence for people; never carries input, internals or secrets.
    fn detail(&self) -> String {
        match self {
            Self::MalformedRequest(detail) => detail.clone(),
            Self::ValidationFailed(_) => "The request has invalid fields.".to_owned(),
            Self::UnsupportedMediaType => "Send the body as application/json.".to_owned(),
            Self::PayloadTooLarge => "The request body is over 16 KiB.".to_owned(),
            Self::NotFound => "There is nothing here.".to_owned(),
            Self::MethodNotAllowed => "This method is not allowed here.".to_owned(),
            Self::Unauthorized => "A valid access token is required.".to_owned(),
            Self::TokenExpired => "The access token has expired: refresh it and retry.".to_owned(),
            Self::SessionRevoked => "This session has ended: sign in again.".to_owned(),
            Self::SessionExpired => "This session reached its time limit: sign in again.".to_owned(),
            Self::InvalidCredentials => "The email or password is wrong.".to_owned(),
            Self::InvalidPassword => "The current password is wrong.".to_owned(),
            Self::OriginNotAllowed => "This origin is not allowed.".to_owned(),
            Self::OtpInvalid => "The code is wrong.".to_owned(),
            Self::OtpExpired => "The code has expired: request a new one.".to_owned(),
            Self::OtpAttemptsExceeded => "Too many wrong tries: request a new code.".to_owned(),
            Self::ChallengeInvalid => "The sign-in challenge is unknown, used or expired.".to_owned(),
            Self::RefreshTokenInvalid => "The refresh token is not valid.".to_owned(),
            Self::RefreshTokenReused => "This refresh token was already used: the session has been ended.".to_owned(),
            Self::RateLimited { .. } => "Too many requests: retry later.".to_owned(),
            Self::AccountLocked { .. } => "Too many failed attempts: retry later.".to_owned(),
            Self::ServiceUnavailable(_) => "The service is temporarily unavailable.".to_owned(),
            Self::Database(_) | Self::Password(_) | Self::Signing(_) | Self::Internal(_) => {
                "Something went wrong on our side.".to_owned()
            }
        }
    }
}

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

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::MalformedRequest(_)
            | Self::OtpInvalid
            | Self::OtpExpired
            | Self::OtpAttemptsExceeded
            | Self::ChallengeInvalid => StatusCode::BAD_REQUEST,
            Self::ValidationFailed(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Unauthorized
            | Self::TokenExpired
            | Self::SessionRevoked
            | Self::SessionExpired
            | Self::InvalidCredentials
            | Self::RefreshTokenInvalid
            | Self::RefreshTokenReused => StatusCode::UNAUTHORIZED,
            Self::InvalidPassword | Self::OriginNotAllowed => StatusCode::FORBIDDEN,
            Self::RateLimited { .. } | Self::AccountLocked { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::ServiceUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Database(_) | Self::Password(_) | Self::Signing(_) | Self::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
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
            let challenge = match self {
                Self::Unauthorized => "Bearer".to_owned(),
                other => format!("Bearer error=\"invalid_token\", error_description=\"{}\"", other.code()),
            };
            response.insert_header((header::WWW_AUTHENTICATE, challenge));
        }
        if let Self::RateLimited { retry_after_seconds } | Self::AccountLocked { retry_after_seconds } = self {
            response.insert_header((header::RETRY_AFTER, retry_after_seconds.max(&1).to_string()));
        }
        if let Self::ServiceUnavailable(_) = self {
            response.insert_header((header::RETRY_AFTER, "1"));
        }
        let errors = match self {
            Self::ValidationFailed(errors) => Some(errors.clone()),
            _ => None,
        };
        response.json(Problem {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            code: self.code(),
            detail: self.detail(),
            errors,
        })
    }
}

pub type AppResult<T> = Result<T, AppError>;
