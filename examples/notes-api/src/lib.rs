//! An API of your own protected by authd: each user's notes, kept in memory. Every route takes
//! `authd_verify::actix::AuthdUser`, so it runs only for a valid access token of a live session; a session ended
//! at authd (logout, revocation from another device, password change, ...) is refused here at once, with no
//! call to authd per request.

use std::{collections::HashMap, net::TcpListener, sync::Mutex};

use actix_web::{App, HttpResponse, HttpServer, dev::Server, web};
use authd_verify::{Verifier, actix::AuthdUser};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Notes by user.
#[derive(Default)]
pub struct Notes(Mutex<HashMap<Uuid, Vec<String>>>);

#[derive(Serialize)]
struct NoteList {
    user: Uuid,
    session: Uuid,
    notes: Vec<String>,
}

#[derive(Deserialize)]
struct NewNote {
    text: String,
}

async fn list(user: AuthdUser, notes: web::Data<Notes>) -> HttpResponse {
    let AuthdUser(claims) = user;
    let notes = notes
        .0
        .lock()
        .map(|notes| notes.get(&claims.sub).cloned().unwrap_or_default())
        .unwrap_or_default();
    HttpResponse::Ok().json(NoteList {
        user: claims.sub,
        session: claims.sid,
        notes,
    })
}

async fn add(user: AuthdUser, notes: web::Data<Notes>, note: web::Json<NewNote>) -> HttpResponse {
    let AuthdUser(claims) = user;
    match notes.0.lock() {
        Ok(mut notes) => {
            notes.entry(claims.sub).or_default().push(note.into_inner().text);
            HttpResponse::Created().finish()
        }
        Err(_) => HttpResponse::InternalServerError().finish(),
    }
}

/// The routes, for any actix-web app that holds a `web::Data<Verifier>` and a `web::Data<Notes>`.
pub fn configure(config: &mut web::ServiceConfig) {
    config.service(
        web::resource("/notes")
            .route(web::get().to(list))
            .route(web::post().to(add)),
    );
}

/// Serves the notes API on `listener` with `verifier`.
pub fn serve(verifier: Verifier, listener: TcpListener) -> std::io::Result<Server> {
    let verifier = web::Data::new(verifier);
    let notes = web::Data::new(Notes::default());
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(verifier.clone())
            .app_data(notes.clone())
            .configure(configure)
    })
    .workers(1)
    .listen(listener)?
    .run())
}
