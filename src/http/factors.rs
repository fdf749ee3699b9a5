//! Second factors of the signed-in user (authenticator app, recovery codes) and reauthentication for step-up.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use entity::user;
use serde::{Deserialize, Serialize};

use super::extract::{AuthUser, JsonBody, OptionalJsonBody};
use crate::{
    error::{AppError, AppResult},
    services::{
        AppState,
        factors::{self, FactorsView},
        login,
        step_up::{self, Proof},
        totp, users,
        users::UserView,
    },
};

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ReauthenticateRequest {
    /// The account's password; or give `code` instead.
    #[schema(format = Password)]
    pub password: Option<String>,
    /// A current authenticator-app code, or an unused recovery code.
    #[schema(min_length = 6, max_length = 32)]
    pub code: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ReauthenticateResponse {
    /// The session's new `auth_time`.
    pub authenticated_at: DateTime<Utc>,
    /// Until when sensitive changes go through without the password (`REAUTHENTICATION_MAX_AGE`).
    pub valid_until: DateTime<Utc>,
}

/// Optional: the password in the request stands for a recent authentication.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct StepUpRequest {
    #[schema(format = Password)]
    pub password: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TotpEnrolmentResponse {
    /// Base32 without padding, for typing into an app by hand. Shown this once.
    pub secret: String,
    /// `otpauth://totp/...`: SHA-1, 6 digits, 30 s.
    pub otpauth_uri: String,
    /// The URI as a QR code: `data:image/svg+xml;base64,...`.
    pub qr_code: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct TotpConfirmRequest {
    #[schema(pattern = "^[0-9]{6}$")]
    pub code: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TotpConfirmResponse {
    /// Ten single-use codes (`xxxxx-xxxxx`), shown this once.
    pub recovery_codes: Vec<String>,
    pub user: UserView,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct TotpDisableRequest {
    #[schema(format = Password)]
    pub password: String,
    /// A current authenticator-app code, or an unused recovery code.
    #[schema(min_length = 6, max_length = 32)]
    pub code: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RecoveryCodesResponse {
    /// Ten single-use codes (`xxxxx-xxxxx`), shown this once; the earlier set no longer works.
    pub recovery_codes: Vec<String>,
}

/// A code field as long as any code can be: longer is a mistake, answered before any work.
fn bounded_code(code: &str) -> AppResult<&str> {
    if (6..=32).contains(&code.chars().count()) {
        Ok(code)
    } else {
        Err(AppError::validation(
            "code",
            "must be a 6-digit code or a recovery code (xxxxx-xxxxx)",
        ))
    }
}

/// The password in the body, or else a recent authentication of the session; answers the caller's account,
/// which the change then acts on.
pub async fn step_up(state: &AppState, caller: &AuthUser, body: Option<StepUpRequest>) -> AppResult<user::Model> {
    match body.and_then(|body| body.password) {
        Some(password) => {
            let account = users::current(state, caller.user).await?;
            login::confirm_password(state, &account, &password).await?;
            Ok(account)
        }
        None => {
            step_up::require_recent(state, caller.session).await?;
            users::current(state, caller.user).await
        }
    }
}

/// Confirm the password or a second factor again, so that sensitive changes go through for a while.
#[utoipa::path(post, path = "/api/auth/reauthenticate", tag = "factors", request_body = ReauthenticateRequest,
    responses((status = 200, body = ReauthenticateResponse),
        (status = 400, description = "otp_invalid", body = crate::http::problems::Problem),
        (status = 403, description = "invalid_password", body = crate::http::problems::Problem),
        (status = 429, description = "account_locked (with Retry-After)", body = crate::http::problems::Problem)),
    security(("bearer" = [])))]
pub async fn reauthenticate(
    state: web::Data<AppState>,
    caller: AuthUser,
    body: JsonBody<ReauthenticateRequest>,
) -> AppResult<HttpResponse> {
    let proof = match (&body.0.password, &body.0.code) {
        (Some(password), None) => Proof::Password(password),
        (None, Some(code)) => Proof::Code(bounded_code(code)?),
        _ => return Err(AppError::validation("password", "give either password or code")),
    };
    let at = step_up::reauthenticate(&state, caller.user, caller.session, proof).await?;
    Ok(HttpResponse::Ok().json(ReauthenticateResponse {
        authenticated_at: at,
        valid_until: step_up::recent_until(&state, at),
    }))
}

/// The account's second factors.
#[utoipa::path(get, path = "/api/users/me/mfa", tag = "factors",
    responses((status = 200, body = FactorsView), (status = 401, body = crate::http::problems::Problem)), security(("bearer" = [])))]
pub async fn overview(state: web::Data<AppState>, caller: AuthUser) -> AppResult<HttpResponse> {
    let account = users::current(&state, caller.user).await?;
    Ok(HttpResponse::Ok().json(factors::overview(&state, &account).await?))
}

/// Start setting up an authenticator app (it is on only after a confirmed code).
#[utoipa::path(post, path = "/api/users/me/mfa/totp", tag = "factors", request_body(content = StepUpRequest, description = "optional"),
    responses(
        (status = 429, description = "account_locked: too many wrong passwords or codes for this account (with Retry-After)", body = crate::http::problems::Problem),
        (status = 200, body = TotpEnrolmentResponse),
        (status = 403, description = "reauthentication_required, or invalid_password", body = crate::http::problems::Problem),
        (status = 409, description = "totp_already_enabled", body = crate::http::problems::Problem)),
    security(("bearer" = [])))]
pub async fn start_totp(
    state: web::Data<AppState>,
    caller: AuthUser,
    body: OptionalJsonBody<StepUpRequest>,
) -> AppResult<HttpResponse> {
    let account = step_up(&state, &caller, body.0).await?;
    let enrolment = totp::start_enrolment(&state, &account).await?;
    Ok(HttpResponse::Ok().json(TotpEnrolmentResponse {
        secret: enrolment.secret,
        otpauth_uri: enrolment.otpauth_uri,
        qr_code: enrolment.qr_code,
    }))
}

/// Turn the authenticator app on with one of its codes; answers the recovery codes.
#[utoipa::path(post, path = "/api/users/me/mfa/totp/confirm", tag = "factors", request_body = TotpConfirmRequest,
    responses(
        (status = 429, description = "account_locked: too many wrong passwords or codes for this account (with Retry-After)", body = crate::http::problems::Problem),
        (status = 200, body = TotpConfirmResponse),
        (status = 400, description = "otp_invalid", body = crate::http::problems::Problem),
        (status = 409, description = "totp_not_enabled: no setup started, or it expired", body = crate::http::problems::Problem)),
    security(("bearer" = [])))]
pub async fn confirm_totp(
    state: web::Data<AppState>,
    caller: AuthUser,
    body: JsonBody<TotpConfirmRequest>,
) -> AppResult<HttpResponse> {
    let code = super::auth::parse_code(&body.0.code)?;
    let account = users::current(&state, caller.user).await?;
    let recovery_codes = totp::confirm(&state, &account, caller.session, code).await?;
    let user = user::Model {
        mfa_totp: true,
        ..account
    };
    Ok(HttpResponse::Ok().json(TotpConfirmResponse {
        recovery_codes,
        user: UserView::from(&user),
    }))
}

/// Turn the authenticator app off (password and a current or recovery code); the owner is mailed.
#[utoipa::path(delete, path = "/api/users/me/mfa/totp", tag = "factors", request_body = TotpDisableRequest,
    responses(
        (status = 429, description = "account_locked: too many wrong passwords or codes for this account (with Retry-After)", body = crate::http::problems::Problem),
        (status = 200, body = UserView),
        (status = 400, description = "otp_invalid", body = crate::http::problems::Problem),
        (status = 403, description = "invalid_password", body = crate::http::problems::Problem),
        (status = 409, description = "totp_not_enabled", body = crate::http::problems::Problem)),
    security(("bearer" = [])))]
pub async fn disable_totp(
    state: web::Data<AppState>,
    caller: AuthUser,
    body: JsonBody<TotpDisableRequest>,
) -> AppResult<HttpResponse> {
    let code = bounded_code(&body.0.code)?;
    let account = users::current(&state, caller.user).await?;
    login::confirm_password(&state, &account, &body.0.password).await?;
    factors::disable_totp(&state, &account, caller.session, code).await?;
    let user = user::Model {
        mfa_totp: false,
        ..account
    };
    Ok(HttpResponse::Ok().json(UserView::from(&user)))
}

/// Replace the recovery codes with a new set.
#[utoipa::path(post, path = "/api/users/me/mfa/recovery-codes", tag = "factors", request_body(content = StepUpRequest, description = "optional"),
    responses(
        (status = 429, description = "account_locked: too many wrong passwords or codes for this account (with Retry-After)", body = crate::http::problems::Problem),
        (status = 200, body = RecoveryCodesResponse),
        (status = 403, description = "reauthentication_required, or invalid_password", body = crate::http::problems::Problem),
        (status = 409, description = "totp_not_enabled", body = crate::http::problems::Problem)),
    security(("bearer" = [])))]
pub async fn replace_recovery_codes(
    state: web::Data<AppState>,
    caller: AuthUser,
    body: OptionalJsonBody<StepUpRequest>,
) -> AppResult<HttpResponse> {
    let account = step_up(&state, &caller, body.0).await?;
    let recovery_codes = factors::replace_recovery_codes(&state, &account, caller.session).await?;
    Ok(HttpResponse::Ok().json(RecoveryCodesResponse { recovery_codes }))
}
