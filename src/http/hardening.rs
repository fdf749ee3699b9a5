//! Response headers every answer carries, and CORS for `ALLOWED_ORIGINS` only.
//!
//! Every answer gets `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`, `X-Frame-Options: DENY`,
//! `Cache-Control: no-store` unless the handler set one, and `Vary: Origin`. For an `Origin` in `ALLOWED_ORIGINS`
//! it adds `Access-Control-Allow-Origin` (that origin) and `Access-Control-Allow-Credentials: true`. A preflight
//! (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is answered in the middleware: 204 with the
//! allowed methods, headers `authorization, content-type` and a 600 s max age, or 403 `origin_not_allowed`.

use actix_web::{
    HttpResponse, ResponseError,
    body::{BoxBody, EitherBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::{
        Method,
        header::{self, HeaderValue},
    },
    middleware::Next,
    web,
};

use crate::{error::AppError, services::AppState};

pub async fn secure_headers(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<BoxBody>>, actix_web::Error> {
    let origin = request.headers().get(header::ORIGIN).cloned();
    let allowed = match (&origin, request.app_data::<web::Data<AppState>>()) {
        (Some(origin), Some(state)) => {
            let origin = origin.to_str().unwrap_or_default().trim_end_matches('/');
            Some(state.settings.allowed_origins.iter().any(|allowed| allowed == origin))
        }
        _ => None,
    };
    let is_preflight = request.method() == Method::OPTIONS
        && request.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        && origin.is_some();
    let mut response = if is_preflight {
        let (http_request, _) = request.into_parts();
        let answer = if allowed == Some(true) {
            HttpResponse::NoContent()
                .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST, PATCH, PUT, DELETE"))
                .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, "authorization, content-type"))
                .insert_header((header::ACCESS_CONTROL_MAX_AGE, "600"))
                .finish()
        } else {
            AppError::OriginNotAllowed.error_response()
        };
        ServiceResponse::new(http_request, answer).map_into_right_body()
    } else {
        next.call(request).await?.map_into_boxed_body().map_into_left_body()
    };
    let headers = response.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !headers.contains_key(header::CACHE_CONTROL) {
        // Nothing authd answers is meant for a shared cache.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if let (Some(origin), Some(true)) = (origin, allowed) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    Ok(response)
}
