//! Accounts and sign-in: register, verify-email, login, refresh, logout, logout-all.

use actix_web::{HttpRequest, HttpResponse, http::header, web};
use serde::{Deserialize, Serialize};

use super::{
    client::client_info,
    extract::{AuthUser, JsonBody, OptionalJsonBody, bearer_token},
    rate_limit::IpBudget,
    token_response::{cleared_refresh_cookie, refresh_cookie_value, token_response, verified_response},
};
use crate::{
    domain::{EmailAddress, Password, is_code_shaped},
    error::{AppError, AppResult, FieldError},
    services::{
        AppState, account,
        challenges::LoginOutcome,
        login, refresh,
        registration::{self, NewRegistration},
        users::parse_name,
    },
    tokens::is_well_formed,
};

#[derive(Deserialize, utoipa::ToSchema)]
pub struct RegisterRequest {
    #[schema(format = Email, min_length = 3, max_length = 254)]
    pub email: String,
    #[schema(format = Password, min_length = 8, max_length = 128)]
    pub password: String,
    /// Trimmed; at most 100 characters and no control characters. Empty means none.
    #[schema(max_length = 100, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub name: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct StatusResponse {
    pub status: &'static str,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RegisterResponse {
    /// Always `verification_sent`.
    pub status: &'static str,
    /// The registration's handle: present it with the mailed code at `verify-email` to set the password
    /// chosen here. Made for every registration, whether or not the address is taken.
    pub registration: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct VerifyEmailRequest {
    #[schema(format = Email, min_length = 3, max_length = 254)]
    pub email: String,
    #[schema(pattern = "^[0-9]{6}$")]
    pub code: String,
    /// The handle `register` answered, from the same client: sets the password chosen there.
    #[schema(pattern = "^[A-Za-z0-9_-]{43}$")]
    pub registration: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct LoginRequest {
    pub email: String,
    #[schema(format = Password)]
    pub password: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct RefreshRequest {
    pub refresh_token: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct LogoutAllRequest {
    #[serde(default)]
    pub keep_current: bool,
}

/// Collects every field problem before answering, so a client learns them all at once.
#[derive(Default)]
pub struct Problems(Vec<FieldError>);

impl Problems {
    pub fn check<T>(&mut self, field: &str, result: Result<T, &'static str>) -> Option<T> {
        result
            .map_err(|message| self.0.push(FieldError::new(field, message)))
            .ok()
    }

    pub fn finish(self) -> AppResult<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(AppError::ValidationFailed(self.0))
        }
    }
}

/// `Password::parse_new` on a blocking thread: the common-password estimate takes up to about 20 ms, too long
/// to hold one of the few async workers that serve every other request. `user_inputs` are what the service
/// knows of the owner (address, name), which the password may not be built from.
pub async fn parse_new_password(raw: String, user_inputs: Vec<String>) -> AppResult<Result<Password, &'static str>> {
    actix_web::web::block(move || {
        let inputs: Vec<&str> = user_inputs.iter().map(String::as_str).collect();
        Password::parse_new(&raw, &inputs)
    })
    .await
    .map_err(|_| AppError::Internal("the password check did not finish".to_owned()))
}

pub fn parse_code(code: &str) -> AppResult<&str> {
    if is_code_shaped(code) {
        Ok(code)
    } else {
        Err(AppError::validation("code", "must be 6 digits"))
    }
}

/// Register an account; a code to verify the address is mailed.
#[utoipa::path(post, path = "/api/auth/register", tag = "accounts", request_body = RegisterRequest,
    responses((status = 202, body = RegisterResponse), (status = 422, body = crate::http::problems::Problem)))]
pub async fn register(
    state: web::Data<AppState>,
    _: IpBudget,
    request: HttpRequest,
    body: JsonBody<RegisterRequest>,
) -> AppResult<HttpResponse> {
    let body = body.0;
    let mut problems = Problems::default();
    let email = problems.check("email", EmailAddress::parse(&body.email));
    let name = problems.check("name", parse_name(body.name.as_deref()));
    let owner = [Some(body.email.clone()), body.name.clone()]
        .into_iter()
        .flatten()
        .collect();
    let password = problems.check("password", parse_new_password(body.password, owner).await?);
    problems.finish()?;
    let (Some(email), Some(password), Some(name)) = (email, password, name) else {
        return Err(AppError::Internal("validated fields missing".to_owned()));
    };
    // Every registration hashes, whether or not the address is taken, and the rest happens after the answer,
    // so neither the answer nor its time depends on the address.
    let password_hash = state.passwords.hash(&password).await?;
    let handle = registration::new_handle();
    let stored = NewRegistration {
        email,
        password_hash,
        name,
        client: client_info(&request, &state.settings),
    };
    let worker = state.clone();
    let kept = handle.clone();
    actix_web::rt::spawn(async move {
        if let Err(error) = registration::register(&worker, &kept, stored).await {
            tracing::error!(%error, "a registration failed");
        }
    });
    Ok(HttpResponse::Accepted().json(RegisterResponse {
        status: "verification_sent",
        registration: handle,
    }))
}

/// Confirm the address with its code and sign this device in.
#[utoipa::path(post, path = "/api/auth/verify-email", tag = "accounts", request_body = VerifyEmailRequest,
    responses((status = 200, body = super::token_response::TokenResponse), (status = 400, body = crate::http::problems::Problem)))]
pub async fn verify_email(
    state: web::Data<AppState>,
    _: IpBudget,
    request: HttpRequest,
    body: JsonBody<VerifyEmailRequest>,
) -> AppResult<HttpResponse> {
    let email = EmailAddress::parse(&body.0.email).map_err(|message| AppError::validation("email", message))?;
    let code = parse_code(&body.0.code)?;
    let handle = match body.0.registration.as_deref() {
        Some(handle) if is_well_formed(handle) => Some(handle),
        Some(_) => {
            return Err(AppError::validation(
                "registration",
                "must be the handle register answered",
            ));
        }
        None => None,
    };
    let client = client_info(&request, &state.settings);
    let verified = registration::verify_email(&state, &email, code, handle, &client).await?;
    Ok(verified_response(
        verified.signed_in,
        verified.password_set,
        &state.settings,
    ))
}

/// Sign in with email and password.
#[utoipa::path(post, path = "/api/auth/login", tag = "accounts", request_body = LoginRequest,
    responses((status = 200, description = "a TokenResponse, or a ChallengeResponse when a second factor is on", body = super::token_response::TokenResponse),
        (status = 401, body = crate::http::problems::Problem),
        (status = 429, description = "rate_limited or account_locked", body = crate::http::problems::Problem)))]
pub async fn login(
    state: web::Data<AppState>,
    _: IpBudget,
    request: HttpRequest,
    body: JsonBody<LoginRequest>,
) -> AppResult<HttpResponse> {
    let client = client_info(&request, &state.settings);
    let outcome = login::login(&state, &body.0.email, &body.0.password, &client).await?;
    Ok(login_answer(outcome, &state.settings))
}

/// Tokens, or the challenge for a second factor.
pub fn login_answer(outcome: LoginOutcome, settings: &crate::config::Settings) -> HttpResponse {
    match outcome {
        LoginOutcome::SignedIn(signed_in) => token_response(signed_in, settings),
        LoginOutcome::SecondFactor(challenge) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(ChallengeResponse {
                mfa_required: true,
                challenge_id: challenge.id,
                methods: challenge.methods,
                expires_in: challenge.expires_in,
                webauthn: challenge.webauthn,
            }),
    }
}

/// The answer to a sign-in step when a second factor is needed: no tokens yet.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ChallengeResponse {
    pub mfa_required: bool,
    pub challenge_id: uuid::Uuid,
    /// The methods that may finish it: `email_otp` (a code was mailed), `totp`, `recovery_code`, `webauthn`.
    pub methods: Vec<&'static str>,
    pub expires_in: u64,
    /// With `webauthn`: the options for `navigator.credentials.get` (`{"publicKey": {...}}`, binary fields in
    /// base64url).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub webauthn: Option<webauthn_rs::prelude::RequestChallengeResponse>,
}

/// Rotate a refresh token (from the body, or the cookie when the body is absent, empty or `{}`).
#[utoipa::path(post, path = "/api/auth/refresh", tag = "accounts", request_body(content = RefreshRequest, description = "optional with the cookie"),
    responses((status = 200, body = super::token_response::TokenResponse), (status = 401, body = crate::http::problems::Problem),
        (status = 403, description = "origin_not_allowed: the cookie without an allowed Origin", body = crate::http::problems::Problem)))]
pub async fn refresh(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: OptionalJsonBody<RefreshRequest>,
) -> AppResult<HttpResponse> {
    let token = match body.0.and_then(|body| body.refresh_token) {
        Some(token) => token,
        None => refresh_cookie_value(&request, &state.settings)?.ok_or(AppError::RefreshTokenInvalid)?,
    };
    let signed_in = refresh::refresh(&state, &token).await?;
    Ok(token_response(signed_in, &state.settings))
}

/// End the current session (by Bearer token, or by the refresh cookie).
#[utoipa::path(post, path = "/api/auth/logout", tag = "accounts",
    responses((status = 204), (status = 401, body = crate::http::problems::Problem),
        (status = 403, description = "origin_not_allowed: the cookie without an allowed Origin", body = crate::http::problems::Problem)),
    security(("bearer" = [])))]
pub async fn logout(state: web::Data<AppState>, request: HttpRequest) -> AppResult<HttpResponse> {
    if let Some(token) = bearer_token(&request) {
        let caller = AuthUser::from_token(&state, token)?;
        account::logout(&state, caller.user, caller.session).await?;
    } else if let Some(token) = refresh_cookie_value(&request, &state.settings)? {
        refresh::logout(&state, &token).await?;
    } else {
        return Err(AppError::Unauthorized);
    }
    Ok(HttpResponse::NoContent()
        .cookie(cleared_refresh_cookie(&state.settings))
        .finish())
}

/// End every session of the user, or all but the current one.
#[utoipa::path(post, path = "/api/auth/logout-all", tag = "accounts", request_body(content = LogoutAllRequest, description = "optional"),
    responses((status = 204), (status = 401, body = crate::http::problems::Problem)), security(("bearer" = [])))]
pub async fn logout_all(
    state: web::Data<AppState>,
    caller: AuthUser,
    body: OptionalJsonBody<LogoutAllRequest>,
) -> AppResult<HttpResponse> {
    let keep_current = body.0.map(|body| body.keep_current).unwrap_or(false);
    account::logout_all(&state, caller.user, caller.session, keep_current).await?;
    let mut response = HttpResponse::NoContent();
    if !keep_current {
        response.cookie(cleared_refresh_cookie(&state.settings));
    }
    response.insert_header((header::CACHE_CONTROL, "no-store"));
    Ok(response.finish())
}
