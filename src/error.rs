//! The one error type of the services, and the stable codes of the contract.
//!
//! `AppError` has one variant per thing a client should learn, plus internal causes (`Database`, `Password`,
//! `Signing`, `Internal`) that all answer 500 `internal`; the cause is logged with where it arose (`?` records
//! its caller through `#[track_caller]`). A database error that says the database cannot be reached (refused or
//! dropped connections, a pool that waited in vain, SQLSTATE classes 08 and 57P) becomes `ServiceUnavailable` at
//! its conversion: 503 with `Retry-After: 1`, logged as a warning.
//!
//! `ErrorCode` is the contract's list of codes, each spelled once. Nothing here knows HTTP: statuses, headers
//! and problem+json bodies are `http::problems`'s.

use std::panic::Location;

use serde::Serialize;

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
    #[error("reauthentication required")]
    ReauthenticationRequired,
    #[error("authenticator app already on")]
    TotpAlreadyEnabled,
    #[error("authenticator app not on")]
    TotpNotEnabled,
    #[error("passkey refused")]
    PasskeyInvalid,
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
    #[error("database error at {location}: {source}")]
    Database {
        source: sea_orm::DbErr,
        location: &'static Location<'static>,
    },
    #[error("password hashing error at {location}: {source}")]
    Password {
        source: crate::passwords::PasswordError,
        location: &'static Location<'static>,
    },
    #[error("token signing error at {location}: {source}")]
    Signing {
        source: jsonwebtoken::errors::Error,
        location: &'static Location<'static>,
    },
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<sea_orm::DbErr> for AppError {
    /// A database that cannot be reached (refused or dropped connections, a pool that waited in vain, a server
    /// shutting down) is an outage to wait out (503, try again shortly); anything else is a fault.
    #[track_caller]
    fn from(error: sea_orm::DbErr) -> Self {
        let location = Location::caller();
        if is_unreachable(&error) {
            Self::ServiceUnavailable(format!("database unreachable at {location}: {error}"))
        } else {
            Self::Database {
                source: error,
                location,
            }
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
    #[track_caller]
    fn from(error: crate::passwords::PasswordError) -> Self {
        match error {
            crate::passwords::PasswordError::Busy => Self::ServiceUnavailable(error.to_string()),
            other => Self::Password {
                source: other,
                location: Location::caller(),
            },
        }
    }
}

impl From<jsonwebtoken::errors::Error> for AppError {
    #[track_caller]
    fn from(error: jsonwebtoken::errors::Error) -> Self {
        Self::Signing {
            source: error,
            location: Location::caller(),
        }
    }
}

impl AppError {
    pub fn validation(field: &str, message: impl Into<String>) -> Self {
        Self::ValidationFailed(vec![FieldError::new(field, message)])
    }

    /// The stable machine-readable code of the contract.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::MalformedRequest(_) => ErrorCode::MalformedRequest,
            Self::ValidationFailed(_) => ErrorCode::ValidationFailed,
            Self::UnsupportedMediaType => ErrorCode::UnsupportedMediaType,
            Self::PayloadTooLarge => ErrorCode::PayloadTooLarge,
            Self::NotFound => ErrorCode::NotFound,
            Self::MethodNotAllowed => ErrorCode::MethodNotAllowed,
            Self::Unauthorized => ErrorCode::Unauthorized,
            Self::TokenExpired => ErrorCode::TokenExpired,
            Self::SessionRevoked => ErrorCode::SessionRevoked,
            Self::SessionExpired => ErrorCode::SessionExpired,
            Self::InvalidCredentials => ErrorCode::InvalidCredentials,
            Self::InvalidPassword => ErrorCode::InvalidPassword,
            Self::OriginNotAllowed => ErrorCode::OriginNotAllowed,
            Self::OtpInvalid => ErrorCode::OtpInvalid,
            Self::OtpExpired => ErrorCode::OtpExpired,
            Self::OtpAttemptsExceeded => ErrorCode::OtpAttemptsExceeded,
            Self::ChallengeInvalid => ErrorCode::ChallengeInvalid,
            Self::ReauthenticationRequired => ErrorCode::ReauthenticationRequired,
            Self::TotpAlreadyEnabled => ErrorCode::TotpAlreadyEnabled,
            Self::TotpNotEnabled => ErrorCode::TotpNotEnabled,
            Self::PasskeyInvalid => ErrorCode::PasskeyInvalid,
            Self::RefreshTokenInvalid => ErrorCode::RefreshTokenInvalid,
            Self::RefreshTokenReused => ErrorCode::RefreshTokenReused,
            Self::RateLimited { .. } => ErrorCode::RateLimited,
            Self::AccountLocked { .. } => ErrorCode::AccountLocked,
            Self::ServiceUnavailable(_) => ErrorCode::ServiceUnavailable,
            Self::Database { .. } | Self::Password { .. } | Self::Signing { .. } | Self::Internal(_) => {
                ErrorCode::Internal
            }
        }
    }
}

/// The codes of the contract (`docs/API.md`, "Errors"), each spelled once, in `as_str`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    MalformedRequest,
    ValidationFailed,
    UnsupportedMediaType,
    PayloadTooLarge,
    NotFound,
    MethodNotAllowed,
    Unauthorized,
    TokenExpired,
    SessionRevoked,
    SessionExpired,
    InvalidCredentials,
    InvalidPassword,
    OriginNotAllowed,
    OtpInvalid,
    OtpExpired,
    OtpAttemptsExceeded,
    ChallengeInvalid,
    ReauthenticationRequired,
    TotpAlreadyEnabled,
    TotpNotEnabled,
    PasskeyInvalid,
    RefreshTokenInvalid,
    RefreshTokenReused,
    RateLimited,
    AccountLocked,
    ServiceUnavailable,
    Internal,
}

impl ErrorCode {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::MalformedRequest => "malformed_request",
            Self::ValidationFailed => "validation_failed",
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
            Self::ReauthenticationRequired => "reauthentication_required",
            Self::TotpAlreadyEnabled => "totp_already_enabled",
            Self::TotpNotEnabled => "totp_not_enabled",
            Self::PasskeyInvalid => "passkey_invalid",
            Self::RefreshTokenInvalid => "refresh_token_invalid",
            Self::RefreshTokenReused => "refresh_token_reused",
            Self::RateLimited => "rate_limited",
            Self::AccountLocked => "account_locked",
            Self::ServiceUnavailable => "service_unavailable",
            Self::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

pub type AppResult<T> = Result<T, AppError>;
