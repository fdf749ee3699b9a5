//! Mail: message templates and a background sender over lettre (SMTP, or `.eml` files in development).
//! Nothing is sent on the request path, so an answer takes the same time whether or not a mail goes out.

mod sender;
mod templates;

pub use sender::{Mailer, MailerError};
pub use templates::Mail;
