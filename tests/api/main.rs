//! Integration tests: the real server on port 0, a fresh database (SQLite, or PostgreSQL when
//! `TEST_POSTGRES_URL` is set), a real HTTP client and a real SMTP listener.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod abuse;
mod backchannel;
mod backends;
mod bad_input;
mod browser;
mod cluster;
mod codes;
mod configuration;
mod factors;
mod login;
mod operations;
mod otp;
mod passkeys;
mod protected_api;
mod realtime;
mod refresh;
mod registration;
mod sessions;
mod signing_keys;
mod tokens;
mod users;
