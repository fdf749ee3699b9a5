//! Every URL on one screen.

use actix_web::{Resource, web};

use super::{
    account, auth, backends, codes, console, docs, factors, health, openapi, passkeys, problems, realtime, sessions,
    well_known,
};

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(resource("/", "GET").route(web::get().to(console::page)))
        .service(resource("/console.js", "GET").route(web::get().to(console::script)))
        .service(resource("/console.css", "GET").route(web::get().to(console::style)))
        .service(resource("/health/live", "GET").route(web::get().to(health::live)))
        .service(resource("/metrics", "GET").route(web::get().to(health::metrics)))
        .service(resource("/health/ready", "GET").route(web::get().to(health::ready)))
        .service(resource("/api/openapi.json", "GET").route(web::get().to(openapi::document)))
        .service(resource("/docs", "GET").route(web::get().to(docs::page)))
        .service(resource("/.well-known/jwks.json", "GET").route(web::get().to(well_known::jwks)))
        .service(
            resource("/.well-known/openid-configuration", "GET").route(web::get().to(well_known::openid_configuration)),
        )
        .service(resource("/api/auth/register", "POST").route(web::post().to(auth::register)))
        .service(resource("/api/auth/verify-email", "POST").route(web::post().to(auth::verify_email)))
        .service(resource("/api/auth/login", "POST").route(web::post().to(auth::login)))
        .service(resource("/api/auth/login/verify", "POST").route(web::post().to(codes::finish_login)))
        .service(resource("/api/auth/otp/request", "POST").route(web::post().to(codes::request_code)))
        .service(resource("/api/auth/otp/login", "POST").route(web::post().to(codes::login_with_code)))
        .service(resource("/api/auth/password/reset", "POST").route(web::post().to(codes::reset_password)))
        .service(resource("/api/auth/refresh", "POST").route(web::post().to(auth::refresh)))
        .service(resource("/api/auth/logout", "POST").route(web::post().to(auth::logout)))
        .service(resource("/api/auth/logout-all", "POST").route(web::post().to(auth::logout_all)))
        .service(resource("/api/auth/introspect", "POST").route(web::post().to(backends::introspect)))
        .service(resource("/api/revocations/stream", "GET").route(web::get().to(backends::revocation_stream)))
        .service(
            resource("/api/backchannel/receiver", "PUT, DELETE")
                .route(web::put().to(backends::register_receiver))
                .route(web::delete().to(backends::remove_receiver)),
        )
        .service(resource("/api/auth/passkey/options", "POST").route(web::post().to(passkeys::sign_in_options)))
        .service(resource("/api/auth/passkey/login", "POST").route(web::post().to(passkeys::sign_in)))
        .service(resource("/api/auth/reauthenticate", "POST").route(web::post().to(factors::reauthenticate)))
        .service(resource("/api/auth/ws-ticket", "POST").route(web::post().to(realtime::ticket)))
        .service(resource("/api/ws", "GET").route(web::get().to(realtime::upgrade)))
        .service(resource("/api/auth/sessions", "GET").route(web::get().to(sessions::list)))
        .service(resource("/api/auth/sessions/{id}", "DELETE").route(web::delete().to(sessions::revoke)))
        .service(
            resource("/api/users/me", "GET, PATCH, DELETE")
                .route(web::get().to(account::me))
                .route(web::patch().to(account::update_me))
                .route(web::delete().to(account::delete_me)),
        )
        .service(resource("/api/users/me/mfa/email-otp", "PUT").route(web::put().to(account::set_email_second_factor)))
        .service(resource("/api/users/me/mfa", "GET").route(web::get().to(factors::overview)))
        .service(
            resource("/api/users/me/mfa/totp", "POST, DELETE")
                .route(web::post().to(factors::start_totp))
                .route(web::delete().to(factors::disable_totp)),
        )
        .service(resource("/api/users/me/mfa/totp/confirm", "POST").route(web::post().to(factors::confirm_totp)))
        .service(
            resource("/api/users/me/mfa/recovery-codes", "POST").route(web::post().to(factors::replace_recovery_codes)),
        )
        .service(
            resource("/api/users/me/passkeys", "GET, POST")
                .route(web::get().to(passkeys::list))
                .route(web::post().to(passkeys::add)),
        )
        .service(
            resource("/api/users/me/passkeys/options", "POST").route(web::post().to(passkeys::registration_options)),
        )
        .service(
            resource("/api/users/me/passkeys/{id}", "PATCH, DELETE")
                .route(web::patch().to(passkeys::rename))
                .route(web::delete().to(passkeys::delete)),
        )
        .service(resource("/api/users/me/password", "POST").route(web::post().to(account::change_password)));
}

/// A path whose other methods answer 405, naming the `allowed` ones, rather than falling through to the 404 of
/// unknown paths.
fn resource(path: &str, allowed: &'static str) -> Resource {
    web::resource(path).default_service(web::to(move || problems::method_not_allowed(allowed)))
}
