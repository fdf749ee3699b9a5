//! The signed-in user's own account: `/api/users/me`.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::{
    auth::{Problems, parse_new_password},
    extract::{AuthUser, JsonBody},
};
use crate::{
    error::{AppError, AppResult},
    services::{AppState, account, users, users::UserView},
};

#[derive(Deserialize, utoipa::ToSchema)]
pub struct UpdateMeRequest {
    /// `null` or empty clears the name; absent leaves it. Trimmed; at most 100 characters and no control
    /// characters.
    #[serde(default, deserialize_with = "present")]
    #[schema(max_length = 100, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub name: Option<Option<String>>,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Option<String>>, D::Error> {
    Ok(Some(Option::deserialize(deserializer)?))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ChangePasswordRequest {
    #[schema(format = Password)]
    pub current_password: String,
    #[schema(format = Password, min_length = 8, max_length = 128)]
    pub new_password: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct DeleteMeRequest {
    pub password: String,
}

#[utoipa::path(get, path = "/api/users/me", tag = "user",
    responses((status = 200, body = UserView), (status = 401, body = crate::http::problems::Problem)), security(("bearer" = [])))]
pub async fn me(state: web::Data<AppState>, caller: AuthUser) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(users::view(&state, caller.user).await?))
}

#[utoipa::path(patch, path = "/api/users/me", tag = "user", request_body = UpdateMeRequest,
    responses((status = 200, body = UserView), (status = 422, body = crate::http::problems::Problem)), security(("bearer" = [])))]
pub async fn update_me(
    state: web::Data<AppState>,
    caller: AuthUser,
    body: JsonBody<UpdateMeRequest>,
) -> AppResult<HttpResponse> {
    let Some(name) = body.0.name else {
        let user = users::current(&state, caller.user).await?;
        return Ok(HttpResponse::Ok().json(UserView::from(&user)));
    };
    let name = users::parse_name(name.as_deref()).map_err(|message| AppError::validation("name", message))?;
    Ok(HttpResponse::Ok().json(users::update_name(&state, caller.user, name).await?))
}

/// Change the password; every other session ends (`password_changed`).
#[utoipa::path(post, path = "/api/users/me/password", tag = "user", request_body = ChangePasswordRequest,
    responses((status = 204), (status = 403, description = "invalid_password", body = crate::http::problems::Problem),
        (status = 429, description = "account_locked: too many wrong passwords for this account (with Retry-After)", body = crate::http::problems::Problem),
        (status = 422, body = crate::http::problems::Problem)), security(("bearer" = [])))]
pub async fn change_password(
    state: web::Data<AppState>,
    caller: AuthUser,
    body: JsonBody<ChangePasswordRequest>,
) -> AppResult<HttpResponse> {
    let mut problems = Problems::default();
    let account = users::view(&state, caller.user).await?;
    let owner = [Some(account.email), account.name].into_iter().flatten().collect();
    let new_password = problems.check(
        "new_password",
        parse_new_password(body.0.new_password.clone(), owner).await?,
    );
    problems.finish()?;
    let new_password = new_password.ok_or_else(|| AppError::Internal("validated field missing".to_owned()))?;
    account::change_password(
        &state,
        caller.user,
        caller.session,
        &body.0.current_password,
        &new_password,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Delete the account and its data; every session ends (`revoked`).
#[utoipa::path(delete, path = "/api/users/me", tag = "user", request_body = DeleteMeRequest,
    responses((status = 204), (status = 403, description = "invalid_password", body = crate::http::problems::Problem),
        (status = 429, description = "account_locked: too many wrong passwords for this account (with Retry-After)", body = crate::http::problems::Problem)), security(("bearer" = [])))]
pub async fn delete_me(
    state: web::Data<AppState>,
    caller: AuthUser,
    body: JsonBody<DeleteMeRequest>,
) -> AppResult<HttpResponse> {
    account::delete_account(&state, caller.user, &body.0.password).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct EmailSecondFactorRequest {
    pub enabled: bool,
    pub password: String,
}

/// Turn the email second factor on or off.
#[utoipa::path(put, path = "/api/users/me/mfa/email-otp", tag = "user", request_body = EmailSecondFactorRequest,
    responses((status = 200, body = UserView), (status = 403, description = "invalid_password", body = crate::http::problems::Problem),
        (status = 429, description = "account_locked: too many wrong passwords for this account (with Retry-After)", body = crate::http::problems::Problem)),
    security(("bearer" = [])))]
pub async fn set_email_second_factor(
    state: web::Data<AppState>,
    caller: AuthUser,
    body: JsonBody<EmailSecondFactorRequest>,
) -> AppResult<HttpResponse> {
    let user =
        account::set_email_second_factor(&state, caller.user, caller.session, body.0.enabled, &body.0.password).await?;
    Ok(HttpResponse::Ok().json(user))
}
