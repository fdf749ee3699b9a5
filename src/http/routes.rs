//! Every URL on one screen.

use actix_web::{Resource, web};

use super::{account, auth, codes, console, docs, health, openapi, problems, realtime, sessions};

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(resource("/").route(web::get().to(console::page)))
        .service(resource("/console.js").route(web::get().to(console::script)))
        .service(resource("/console.css").route(web::get().to(console::style)))
        .service(resource("/health/live").route(web::get().to(health::live)))
        .service(resource("/metrics").route(web::get().to(health::metrics)))
        .service(resource("/health/ready").route(web::get().to(health::ready)))
        .service(resource("/api/openapi.json").route(web::get().to(openapi::document)))
        .service(resource("/docs").route(web::get().to(docs::page)))
        .service(resource("/api/auth/register").route(web::post().to(auth::register)))
        .service(resource("/api/auth/verify-email").route(web::post().to(auth::verify_email)))
        .service(resource("/api/auth/login").route(web::post().to(auth::login)))
        .service(resource("/api/auth/login/verify").route(web::post().to(codes::finish_login)))
        .service(resource("/api/auth/otp/request").route(web::post().to(codes::request_code)))
        .service(resource("/api/auth/otp/login").route(web::post().to(codes::login_with_code)))
        .service(resource("/api/auth/password/reset").route(web::post().to(codes::reset_password)))
        .service(resource("/api/auth/refresh").route(web::post().to(auth::refresh)))
        .service(resource("/api/auth/logout").route(web::post().to(auth::logout)))
        .service(resource("/api/auth/logout-all").route(web::post().to(auth::logout_all)))
        .service(resource("/api/auth/ws-ticket").route(web::post().to(realtime::ticket)))
        .service(resource("/api/ws").route(web::get().to(realtime::upgrade)))
        .service(resource("/api/auth/sessions").route(web::get().to(sessions::list)))
        .service(resource("/api/auth/sessions/{id}").route(web::delete().to(sessions::revoke)))
        .service(
            resource("/api/users/me")
                .route(web::get().to(account::me))
                .route(web::patch().to(account::update_me))
                .route(web::delete().to(account::delete_me)),
        )
        .service(resource("/api/users/me/mfa/email-otp").route(web::put().to(account::set_email_second_factor)))
        .service(resource("/api/users/me/password").route(web::post().to(account::change_password)));
}

/// A path whose other methods answer 405 rather than falling through to the 404 of unknown paths.
fn resource(path: &str) -> Resource {
    web::resource(path).default_service(web::to(problems::method_not_allowed))
}
