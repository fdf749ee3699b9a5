//! Types that only hold valid values: handlers parse raw input into these once, services never see raw strings.
//!
//! - `EmailAddress`: trimmed, NFKC, lower-cased, dot-atom local part.
//! - `Password`: NFKC, 8 to 128 code points, not containing the owner's address or name; common passwords are
//!   refused by zxcvbn on the first 20 code points, which bounds its time to about 20 ms (the handlers run it on
//!   a blocking thread).

mod authentication;
mod email_address;
mod password;
mod revocation_reason;

pub use authentication::Authentication;
pub use email_address::EmailAddress;
pub use password::Password;
pub use revocation_reason::RevocationReason;

mod otp_purpose;
pub use otp_purpose::{OtpPurpose, is_code_shaped};
