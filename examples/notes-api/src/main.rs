//! `notes-api`: `AUTHD_URL` (default `http://127.0.0.1:5000`), `AUTHD_ISSUER` (authd's `JWT_ISSUER`, default
//! `authd`), `AUTHD_BACKEND_KEY` (from `authd backend-keys create notes-api`), `PORT` (default 5100).

use std::net::TcpListener;

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let variable = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
    let Ok(backend_key) = std::env::var("AUTHD_BACKEND_KEY") else {
        eprintln!("notes-api: set AUTHD_BACKEND_KEY to a key from `authd backend-keys create notes-api`");
        std::process::exit(2);
    };
    let config = authd_verify::Config::new(
        &variable("AUTHD_URL", "http://127.0.0.1:5000"),
        &variable("AUTHD_ISSUER", "authd"),
        &backend_key,
    );
    let verifier = authd_verify::Verifier::start(config)
        .await
        .map_err(|error| std::io::Error::other(error.to_string()))?;
    let listener = TcpListener::bind(("127.0.0.1", variable("PORT", "5100").parse().unwrap_or(5100)))?;
    println!("notes-api on http://{}", listener.local_addr()?);
    notes_api::serve(verifier, listener)?.await
}
