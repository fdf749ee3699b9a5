//! Database entities of authd. Rows that hold secrets (password hashes, token and code hashes) derive no
//! `Serialize`, so they cannot be written into a response or a log by accident.

pub mod address_throttle;
pub mod mail_outbox;
pub mod otp;
pub mod refresh_token;
pub mod registration;
pub mod session;
pub mod session_presence;
pub mod session_revocation;
pub mod user;
pub mod ws_ticket;
