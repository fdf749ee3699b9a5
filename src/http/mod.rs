//! The HTTP layer: parses requests into domain types, calls services, shapes responses.

pub mod account;
pub mod auth;
pub mod backends;
pub mod client;
pub mod codes;
pub mod console;
pub mod docs;
pub mod extract;
pub mod factors;
pub mod hardening;
pub mod health;
pub mod json_shape;
pub mod openapi;
pub mod passkeys;
pub mod problems;
pub mod rate_limit;
pub mod realtime;
pub mod routes;
pub mod sessions;
pub mod token_response;
pub mod well_known;
