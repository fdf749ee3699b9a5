//! Emailed-code endpoints: request a code, sign in with one, reset the password; and finishing a challenged
//! sign-in with a second factor.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use uuid::Uuid;

use super::{
    auth::{Problems, StatusResponse, login_answer, parse_code, parse_new_password},
    client::client_info,
    extract::JsonBody,
    rate_limit::IpBudget,
    token_response::token_response,
};
use crate::{
    domain::{EmailAddress, OtpPurpose},
    error::{AppError, AppResult},
    services::{
        AppState,
        challenges::{self, Answer, ChallengeMethod},
        codes,
    },
};

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CodeRequest {
    #[schema(format = Email, min_length = 3, max_length = 254)]
    pub email: String,
    /// `verify_email`, `login` or `password_reset`.
    pub purpose: OtpPurpose,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CodeLoginRequest {
    #[schema(format = Email, min_length = 3, max_length = 254)]
    pub email: String,
    #[schema(pattern = "^[0-9]{6}$")]
    pub code: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ResetRequest {
    #[schema(format = Email, min_length = 3, max_length = 254)]
    pub email: String,
    #[schema(pattern = "^[0-9]{6}$")]
    pub code: String,
    #[schema(format = Password, min_length = 8, max_length = 128)]
    pub new_password: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ChallengeAnswer {
    pub challenge_id: Uuid,
    /// One of the challenge's `methods`.
    pub method: SecondFactorMethod,
    /// Six digits (`email_otp`, `totp`), or a recovery code (`xxxxx-xxxxx`, hyphen and case optional); not with
    /// `webauthn`.
    #[schema(min_length = 6, max_length = 32)]
    pub code: Option<String>,
    /// With `webauthn`: the passkey's answer to the challenge's `webauthn` options, as `PublicKeyCredential.toJSON()`
    /// gives it (binary fields in base64url).
    #[schema(value_type = Option<Object>)]
    pub credential: Option<serde_json::Value>,
}

/// How a challenged sign-in is finished.
#[derive(Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SecondFactorMethod {
    EmailOtp,
    Totp,
    RecoveryCode,
    Webauthn,
}

impl From<SecondFactorMethod> for ChallengeMethod {
    fn from(method: SecondFactorMethod) -> Self {
        match method {
            SecondFactorMethod::EmailOtp => Self::EmailOtp,
            SecondFactorMethod::Totp => Self::Totp,
            SecondFactorMethod::RecoveryCode => Self::RecoveryCode,
            SecondFactorMethod::Webauthn => Self::Webauthn,
        }
    }
}

fn parse_email(raw: &str) -> AppResult<EmailAddress> {
    EmailAddress::parse(raw).map_err(|message| AppError::validation("email", message))
}

/// Mail a code if the address is eligible: always 202, mail or not.
#[utoipa::path(post, path = "/api/auth/otp/request", tag = "codes", request_body = CodeRequest,
    responses((status = 202, body = StatusResponse), (status = 422, body = crate::http::problems::Problem), (status = 429, body = crate::http::problems::Problem)))]
pub async fn request_code(
    state: web::Data<AppState>,
    _: IpBudget,
    body: JsonBody<CodeRequest>,
) -> AppResult<HttpResponse> {
    let email = parse_email(&body.0.email)?;
    if body.0.purpose == OtpPurpose::LoginChallenge {
        return Err(AppError::validation(
            "purpose",
            "must be verify_email, login or password_reset",
        ));
    }
    let purpose = body.0.purpose;
    // The answer may not depend on the address: all the work happens after it.
    let worker = state.clone();
    actix_web::rt::spawn(async move {
        if let Err(error) = codes::request(&worker, &email, purpose).await {
            tracing::error!(%error, "a code request failed");
        }
    });
    Ok(HttpResponse::Accepted().json(StatusResponse {
        status: "sent_if_eligible",
    }))
}

/// Passwordless sign-in with a `login` code; an account with an authenticator app answers a challenge for it.
#[utoipa::path(post, path = "/api/auth/otp/login", tag = "codes", request_body = CodeLoginRequest,
    responses((status = 200, description = "a TokenResponse, or a ChallengeResponse when an authenticator app is on", body = super::token_response::TokenResponse), (status = 400, body = crate::http::problems::Problem),
        (status = 429, body = crate::http::problems::Problem)))]
pub async fn login_with_code(
    state: web::Data<AppState>,
    _: IpBudget,
    request: HttpRequest,
    body: JsonBody<CodeLoginRequest>,
) -> AppResult<HttpResponse> {
    let email = parse_email(&body.0.email)?;
    let code = parse_code(&body.0.code)?;
    let outcome = codes::login_with_code(&state, &email, code, &client_info(&request, &state.settings)).await?;
    Ok(login_answer(outcome, &state.settings))
}

/// Set a new password with a `password_reset` code; every session ends (`password_reset`).
#[utoipa::path(post, path = "/api/auth/password/reset", tag = "codes", request_body = ResetRequest,
    responses((status = 204), (status = 400, body = crate::http::problems::Problem), (status = 422, body = crate::http::problems::Problem),
        (status = 429, body = crate::http::problems::Problem)))]
pub async fn reset_password(
    state: web::Data<AppState>,
    _: IpBudget,
    body: JsonBody<ResetRequest>,
) -> AppResult<HttpResponse> {
    let body = body.0;
    let mut problems = Problems::default();
    // The cheap checks first: the password's estimate runs only for a well-formed address and code.
    let email = parse_email(&body.email)?;
    let code = parse_code(&body.code)?;
    let owner = vec![email.as_str().to_owned()];
    let new_password = problems.check(
        "new_password",
        parse_new_password(body.new_password.clone(), owner).await?,
    );
    problems.finish()?;
    let new_password = new_password.ok_or_else(|| AppError::Internal("validated field missing".to_owned()))?;
    codes::reset_password(&state, &email, code, &new_password).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Finish a sign-in that asked for a second factor.
#[utoipa::path(post, path = "/api/auth/login/verify", tag = "codes", request_body = ChallengeAnswer,
    responses((status = 200, body = super::token_response::TokenResponse), (status = 400, body = crate::http::problems::Problem),
        (status = 429, body = crate::http::problems::Problem)))]
pub async fn finish_login(
    state: web::Data<AppState>,
    _: IpBudget,
    request: HttpRequest,
    body: JsonBody<ChallengeAnswer>,
) -> AppResult<HttpResponse> {
    let ChallengeAnswer {
        challenge_id,
        method,
        code,
        credential,
    } = body.0;
    let credential = match method {
        SecondFactorMethod::Webauthn => Some(super::passkeys::parse_assertion(credential)?),
        _ => None,
    };
    let code = code.unwrap_or_default();
    let answer = match (method, &credential) {
        (SecondFactorMethod::Webauthn, Some(credential)) => Answer::Passkey(credential),
        (SecondFactorMethod::EmailOtp | SecondFactorMethod::Totp, _) => Answer::Code(parse_code(&code)?),
        (SecondFactorMethod::RecoveryCode, _) if (1..=32).contains(&code.chars().count()) => Answer::Code(&code),
        _ => return Err(AppError::validation("code", "must be a recovery code (xxxxx-xxxxx)")),
    };
    let client = client_info(&request, &state.settings);
    let signed_in = challenges::finish(&state, challenge_id, method.into(), answer, &client).await?;
    Ok(token_response(signed_in, &state.settings))
}
