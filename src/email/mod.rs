//! Mail: message templates, and a durable outbox. A mail is written to the outbox in the transaction of
//! the change that caused it and sent by a background worker with retries, over lettre's SMTP transport or,
//! in development, as `.eml` files. Nothing is sent on the request path.

mod outbox;
mod templates;

pub use outbox::{Mailer, MailerError};
pub use templates::Mail;
