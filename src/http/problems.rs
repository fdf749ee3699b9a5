//! Makes actix's own rejections (unknown route, wrong method, oversized or unreadable body) speak
//! problem+json like every other error.
//!
//! The `problem_bodies` middleware rewrites any 4xx or 5xx answer that is not problem+json yet: 404, 405, 413,
//! 415 and 400 to the matching code, any 5xx to `internal`. Unknown paths reach a default service answering
//! `not_found`, and each resource's default service answers `method_not_allowed` (405 with `Allow`).

use actix_web::{
    ResponseError,
    body::{BoxBody, EitherBody},
    dev::{ServiceRequest, ServiceResponse},
    http::{StatusCode, header},
    middleware::Next,
};

use crate::error::{AppError, PROBLEM_JSON};

/// 405 with the `Allow` header RFC 9110 asks for.
pub async fn method_not_allowed(allowed: &'static str) -> actix_web::HttpResponse {
    let mut response = AppError::MethodNotAllowed.error_response();
    response
        .headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static(allowed));
    response
}

pub async fn not_found() -> Result<actix_web::HttpResponse, AppError> {
    Err(AppError::NotFound)
}

/// Rewrites an error response that is not problem+json yet.
pub async fn problem_bodies(
    request: ServiceRequest,
    next: Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<BoxBody>>, actix_web::Error> {
    let response = next.call(request).await?;
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with(PROBLEM_JSON));
    let replacement = match status {
        _ if is_problem || !(status.is_client_error() || status.is_server_error()) => None,
        StatusCode::NOT_FOUND => Some(AppError::NotFound),
        StatusCode::METHOD_NOT_ALLOWED => Some(AppError::MethodNotAllowed),
        StatusCode::PAYLOAD_TOO_LARGE => Some(AppError::PayloadTooLarge),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => Some(AppError::UnsupportedMediaType),
        StatusCode::BAD_REQUEST => Some(AppError::MalformedRequest("The request could not be read.".to_owned())),
        status if status.is_server_error() => Some(AppError::Internal(format!("unhandled {status}"))),
        _ => None,
    };
    Ok(match replacement {
        Some(error) => {
            let (request, _) = response.into_parts();
            ServiceResponse::new(request, error.error_response()).map_into_right_body()
        }
        None => response.map_into_boxed_body().map_into_left_body(),
    })
}
