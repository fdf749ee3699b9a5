//! Passkeys: the signed-in user's list (add, rename, delete) and passwordless sign-in with one.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

use super::{
    client::client_info,
    extract::{AuthUser, JsonBody, OptionalJsonBody},
    factors::{StepUpRequest, step_up},
    rate_limit::IpBudget,
    token_response::token_response,
};
use crate::{
    domain::Authentication,
    error::{AppError, AppResult},
    services::{
        AppState,
        passkeys::{self, PasskeyView},
        sessions, users,
    },
};

/// A passkey's answer as JSON: the type webauthn-rs checks, or 422 naming the field.
fn parse_credential<T: serde::de::DeserializeOwned>(value: Option<serde_json::Value>) -> AppResult<T> {
    let value = value.ok_or_else(|| AppError::validation("credential", "is required"))?;
    serde_json::from_value(value).map_err(|_| {
        AppError::validation(
            "credential",
            "must be a PublicKeyCredential as JSON, binary fields in base64url",
        )
    })
}

pub fn parse_assertion(value: Option<serde_json::Value>) -> AppResult<PublicKeyCredential> {
    parse_credential(value)
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PasskeyList {
    pub passkeys: Vec<PasskeyView>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PasskeyOptions {
    /// Names this ceremony in the request that finishes it (5 minutes, once).
    pub ceremony_id: Uuid,
    /// `{"publicKey": {...}}` for `navigator.credentials.create` or `.get`, binary fields in base64url.
    #[schema(value_type = Object)]
    pub options: serde_json::Value,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct AddPasskeyRequest {
    pub ceremony_id: Uuid,
    /// 1 to 64 characters, trimmed.
    #[schema(min_length = 1, max_length = 64)]
    pub name: String,
    /// The new credential as `PublicKeyCredential.toJSON()` gives it.
    #[schema(value_type = Object)]
    pub credential: Option<serde_json::Value>,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct RenamePasskeyRequest {
    #[schema(min_length = 1, max_length = 64)]
    pub name: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct PasskeySignInRequest {
    pub ceremony_id: Uuid,
    /// The passkey's answer as `PublicKeyCredential.toJSON()` gives it.
    #[schema(value_type = Object)]
    pub credential: Option<serde_json::Value>,
}

fn options_json<T: Serialize>(options: &T) -> AppResult<serde_json::Value> {
    serde_json::to_value(options).map_err(|error| AppError::Internal(format!("passkey options: {error}")))
}

fn parse_passkey_name(raw: &str) -> AppResult<String> {
    passkeys::parse_name(raw).map_err(|message| AppError::validation("name", message))
}

/// The account's passkeys, newest first.
#[utoipa::path(get, path = "/api/users/me/passkeys", tag = "passkeys",
    responses((status = 200, body = PasskeyList), (status = 401, body = crate::http::problems::Problem)), security(("bearer" = [])))]
pub async fn list(state: web::Data<AppState>, caller: AuthUser) -> AppResult<HttpResponse> {
    let models = passkeys::of_user(state.store.connection(), caller.user).await?;
    Ok(HttpResponse::Ok().json(PasskeyList {
        passkeys: models.iter().map(PasskeyView::from).collect(),
    }))
}

/// Start adding a passkey: options for `navigator.credentials.create`.
#[utoipa::path(post, path = "/api/users/me/passkeys/options", tag = "passkeys", request_body(content = StepUpRequest, description = "optional"),
    responses(
        (status = 429, description = "account_locked: too many wrong passwords or codes for this account (with Retry-After)", body = crate::http::problems::Problem),
        (status = 200, body = PasskeyOptions),
        (status = 403, description = "reauthentication_required, or invalid_password", body = crate::http::problems::Problem)),
    security(("bearer" = [])))]
pub async fn registration_options(
    state: web::Data<AppState>,
    caller: AuthUser,
    body: OptionalJsonBody<StepUpRequest>,
) -> AppResult<HttpResponse> {
    let account = step_up(&state, &caller, body.0).await?;
    let ceremony = passkeys::start_registration(&state, &account).await?;
    Ok(HttpResponse::Ok().json(PasskeyOptions {
        ceremony_id: ceremony.id,
        options: options_json(&ceremony.options)?,
    }))
}

/// Finish adding a passkey with the authenticator's answer.
#[utoipa::path(post, path = "/api/users/me/passkeys", tag = "passkeys", request_body = AddPasskeyRequest,
    responses((status = 201, body = PasskeyView),
        (status = 400, description = "passkey_invalid", body = crate::http::problems::Problem)),
    security(("bearer" = [])))]
pub async fn add(
    state: web::Data<AppState>,
    caller: AuthUser,
    body: JsonBody<AddPasskeyRequest>,
) -> AppResult<HttpResponse> {
    let AddPasskeyRequest {
        ceremony_id,
        name,
        credential,
    } = body.0;
    let name = parse_passkey_name(&name)?;
    let credential: RegisterPublicKeyCredential = parse_credential(credential)?;
    let account = users::current(&state, caller.user).await?;
    let added = passkeys::finish_registration(&state, &account, caller.session, ceremony_id, name, &credential).await?;
    Ok(HttpResponse::Created().json(added))
}

/// Rename one of the account's passkeys.
#[utoipa::path(patch, path = "/api/users/me/passkeys/{id}", tag = "passkeys", request_body = RenamePasskeyRequest,
    params(("id" = Uuid, Path)),
    responses((status = 200, body = PasskeyView), (status = 404, body = crate::http::problems::Problem)),
    security(("bearer" = [])))]
pub async fn rename(
    state: web::Data<AppState>,
    caller: AuthUser,
    id: web::Path<Uuid>,
    body: JsonBody<RenamePasskeyRequest>,
) -> AppResult<HttpResponse> {
    let name = parse_passkey_name(&body.0.name)?;
    let renamed = passkeys::rename(&state, caller.user, caller.session, id.into_inner(), name).await?;
    Ok(HttpResponse::Ok().json(renamed))
}

/// Delete one of the account's passkeys.
#[utoipa::path(delete, path = "/api/users/me/passkeys/{id}", tag = "passkeys", request_body(content = StepUpRequest, description = "optional"),
    params(("id" = Uuid, Path)),
    responses(
        (status = 429, description = "account_locked: too many wrong passwords or codes for this account (with Retry-After)", body = crate::http::problems::Problem),
        (status = 204), (status = 404, body = crate::http::problems::Problem),
        (status = 403, description = "reauthentication_required, or invalid_password", body = crate::http::problems::Problem)),
    security(("bearer" = [])))]
pub async fn delete(
    state: web::Data<AppState>,
    caller: AuthUser,
    id: web::Path<Uuid>,
    body: OptionalJsonBody<StepUpRequest>,
) -> AppResult<HttpResponse> {
    let account = step_up(&state, &caller, body.0).await?;
    passkeys::delete(&state, &account, caller.session, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Start a passwordless sign-in: options for `navigator.credentials.get`.
#[utoipa::path(post, path = "/api/auth/passkey/options", tag = "passkeys",
    responses((status = 200, body = PasskeyOptions), (status = 429, body = crate::http::problems::Problem)))]
pub async fn sign_in_options(state: web::Data<AppState>, _: IpBudget) -> AppResult<HttpResponse> {
    let ceremony = passkeys::start_sign_in(&state).await?;
    Ok(HttpResponse::Ok().json(PasskeyOptions {
        ceremony_id: ceremony.id,
        options: options_json(&ceremony.options)?,
    }))
}

/// Sign in with a passkey alone.
#[utoipa::path(post, path = "/api/auth/passkey/login", tag = "passkeys", request_body = PasskeySignInRequest,
    responses((status = 200, body = super::token_response::TokenResponse),
        (status = 400, description = "passkey_invalid", body = crate::http::problems::Problem),
        (status = 429, body = crate::http::problems::Problem)))]
pub async fn sign_in(
    state: web::Data<AppState>,
    _: IpBudget,
    request: HttpRequest,
    body: JsonBody<PasskeySignInRequest>,
) -> AppResult<HttpResponse> {
    let PasskeySignInRequest {
        ceremony_id,
        credential,
    } = body.0;
    let credential: PublicKeyCredential = parse_credential(credential)?;
    let account = passkeys::finish_sign_in(&state, ceremony_id, &credential).await?;
    let client = client_info(&request, &state.settings);
    let signed_in = sessions::sign_in(&state, &account, &client, &Authentication::passkey()).await?;
    Ok(token_response(signed_in, &state.settings))
}
