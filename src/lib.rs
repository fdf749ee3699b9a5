//! authd: email and password or email-code sign-in, rotating refresh tokens, per-device sessions, and
//! instant session revocation pushed to every connected device over WebSockets.

pub mod backchannel;
pub mod cache;
pub mod clock;
pub mod config;
pub mod descriptors;
pub mod domain;
pub mod email;
pub mod error;
pub mod http;
pub mod metrics;
pub mod passwords;
pub mod random;
pub mod realtime;
pub mod sealing;
pub mod secret;
pub mod services;
pub mod signing;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod tokens;
