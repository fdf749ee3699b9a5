//! The OpenAPI 3.1 description, generated from the handlers' annotations.

use actix_web::HttpResponse;
use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

#[derive(OpenApi)]
#[openapi(
    info(title = "authd", description = "Email and password or email-code sign-in, rotating refresh tokens, per-device sessions, and instant revocation over WebSockets."),
    paths(
        super::auth::register,
        super::auth::verify_email,
        super::auth::login,
        super::codes::finish_login,
        super::codes::request_code,
        super::codes::login_with_code,
        super::codes::reset_password,
        super::auth::refresh,
        super::auth::logout,
        super::auth::logout_all,
        super::realtime::ticket,
        super::realtime::upgrade,
        super::sessions::list,
        super::sessions::revoke,
        super::account::me,
        super::account::update_me,
        super::account::change_password,
        super::account::set_email_second_factor,
        super::account::delete_me,
        super::health::live,
        super::health::ready,
        super::health::metrics,
    ),
    components(schemas(super::auth::ChallengeResponse, crate::error::Problem, crate::error::FieldError, crate::domain::RevocationReason)),
    modifiers(&BearerScheme),
)]
pub struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

pub async fn document() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
