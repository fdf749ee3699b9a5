pub mod app;
pub mod smtp;

pub use app::{TestApp, spawn_app, spawn_app_with};
