//! Every URL on one screen.

use actix_web::web;

use super::{account, auth, docs, health, openapi, problems, sessions};

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .route("/health/live", web::get().to(health::live))
        .route("/health/ready", web::get().to(health::ready))
        .route("/api/openapi.json", web::get().to(openapi::document))
        .route("/docs", web::get().to(docs::page))
        .service(
            web::scope("/api/auth")
                .route("/register", web::post().to(auth::register))
                .route("/verify-email", web::post().to(auth::verify_email))
                .route("/login", web::post().to(auth::login))
                .route("/refresh", web::post().to(auth::refresh))
                .route("/logout", web::post().to(auth::logout))
                .route("/logout-all", web::post().to(auth::logout_all))
                .route("/sessions", web::get().to(sessions::list))
                .route("/sessions/{id}", web::delete().to(sessions::revoke))
                .default_service(web::to(problems::not_found)),
        )
        .service(
            web::resource("/api/users/me")
                .route(web::get().to(account::me))
                .route(web::patch().to(account::update_me))
                .route(web::delete().to(account::delete_me)),
        )
        .route("/api/users/me/password", web::post().to(account::change_password));
}
