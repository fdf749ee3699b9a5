//! The OpenAPI 3.1 description, generated from the handlers' annotations.
//!
//! Served at `/api/openapi.json` (utoipa). A modifier documents every error as problem+json and adds the 400,
//! 413, 415, 422, 401 and 429 answers each kind of endpoint can give.

use actix_web::HttpResponse;
use utoipa::{
    Modify, OpenApi,
    openapi::{
        Content, RefOr, Response,
        path::Operation,
        security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    },
};

use super::problems::PROBLEM_JSON;

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
        super::factors::reauthenticate,
        super::factors::overview,
        super::factors::start_totp,
        super::factors::confirm_totp,
        super::factors::disable_totp,
        super::factors::replace_recovery_codes,
        super::passkeys::list,
        super::passkeys::registration_options,
        super::passkeys::add,
        super::passkeys::rename,
        super::passkeys::delete,
        super::passkeys::sign_in_options,
        super::passkeys::sign_in,
        super::health::live,
        super::health::ready,
        super::health::metrics,
        super::well_known::jwks,
        super::backends::introspect,
        super::backends::revocation_stream,
        super::backends::register_receiver,
        super::backends::remove_receiver,
        super::well_known::openid_configuration,
    ),
    components(schemas(super::auth::ChallengeResponse, crate::http::problems::Problem, crate::error::FieldError, crate::domain::RevocationReason)),
    modifiers(&BearerScheme, &ProblemAnswers),
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

/// The answers every handler can give without saying so in its annotation: every error is problem+json;
/// a body that is not JSON (415 for its type, 400 for its text), too large (413) or has invalid fields (422); a missing or refused token
/// (401); the per-IP budget (429) on the endpoints that spend it.
struct ProblemAnswers;

/// The endpoints that spend the per-IP budget (`docs/API.md`, rate limits).
const IP_BUDGET_PATHS: [&str; 9] = [
    "/api/auth/register",
    "/api/auth/verify-email",
    "/api/auth/login",
    "/api/auth/login/verify",
    "/api/auth/otp/request",
    "/api/auth/otp/login",
    "/api/auth/password/reset",
    "/api/auth/passkey/options",
    "/api/auth/passkey/login",
];

/// The endpoints that answer without the database (and so without its 503).
const NO_DATABASE_PATHS: [&str; 2] = ["/health/live", "/metrics"];

impl Modify for ProblemAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            let needs_database = !NO_DATABASE_PATHS.contains(&path.as_str());
            for operation in operations.into_iter().flatten() {
                complete(operation, IP_BUDGET_PATHS.contains(&path.as_str()), needs_database);
            }
        }
    }
}

fn complete(operation: &mut Operation, spends_ip_budget: bool, needs_database: bool) {
    let mut implied = Vec::new();
    if operation.request_body.is_some() {
        implied.extend([
            ("400", "malformed_request: the body is not valid JSON"),
            ("413", "the body is too large"),
            ("415", "the body is not JSON"),
            ("422", "validation_failed: `errors` names each field"),
        ]);
    }
    if operation.security.is_some() {
        implied.push(("401", "unauthorized, token_expired, session_revoked or session_expired"));
    }
    if spends_ip_budget {
        implied.push(("429", "rate_limited (with Retry-After)"));
    }
    if needs_database {
        implied.push((
            "503",
            "service_unavailable: the database cannot be reached, or too many password checks wait (with Retry-After)",
        ));
    }
    let responses = &mut operation.responses.responses;
    for (status, description) in implied {
        responses
            .entry(status.to_owned())
            .or_insert_with(|| RefOr::T(Response::new(description)));
    }
    for (status, response) in responses.iter_mut() {
        let RefOr::T(response) = response else { continue };
        if !status.starts_with(['4', '5']) {
            continue;
        }
        let schema = response
            .content
            .shift_remove("application/json")
            .and_then(|content| content.schema);
        let schema = schema.unwrap_or_else(|| RefOr::Ref(utoipa::openapi::Ref::from_schema_name("Problem")));
        response
            .content
            .insert(PROBLEM_JSON.to_owned(), Content::new(Some(schema)));
    }
}

pub async fn document() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
