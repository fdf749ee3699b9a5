//! An actix-web extractor: a handler that takes [`AuthdUser`] runs only for a request with a valid access token
//! of a live session. Register the [`Verifier`] with `App::app_data(web::Data::new(verifier))`.

use std::{future::Future, pin::Pin};

use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, dev::Payload, http::StatusCode, web};

use crate::{Claims, Verifier, VerifyError};

/// The verified claims of the request's `Authorization: Bearer` token.
pub struct AuthdUser(pub Claims);

/// A refused request: 401 with `{"error": "..."}` naming why, and `WWW-Authenticate`; 503 when the verifier is
/// missing from the app data.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("a bearer token is required")]
    Missing,
    #[error("{0}")]
    Token(VerifyError),
    #[error("no authd verifier is registered")]
    NoVerifier,
}

impl Refused {
    fn code(&self) -> &'static str {
        match self {
            Self::Missing => "unauthorized",
            Self::Token(VerifyError::Expired) => "token_expired",
            Self::Token(VerifyError::Revoked) => "session_revoked",
            Self::Token(VerifyError::FeedStale) => "revocations_unavailable",
            Self::Token(_) => "invalid_token",
            Self::NoVerifier => "misconfigured",
        }
    }
}

impl ResponseError for Refused {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::NoVerifier => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code())
            .insert_header((
                "WWW-Authenticate",
                format!("Bearer error=\"invalid_token\", error_description=\"{}\"", self.code()),
            ))
            .json(serde_json::json!({ "error": self.code() }))
    }
}

impl FromRequest for AuthdUser {
    type Error = Refused;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Refused>>>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let verifier = request.app_data::<web::Data<Verifier>>().cloned();
        let token = request
            .headers()
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim().to_owned());
        Box::pin(async move {
            let verifier = verifier.ok_or(Refused::NoVerifier)?;
            let token = token.filter(|token| !token.is_empty()).ok_or(Refused::Missing)?;
            verifier.verify(&token).await.map(AuthdUser).map_err(Refused::Token)
        })
    }
}
