//! Types that only hold valid values: handlers parse raw input into these once, services never see raw strings.

mod email_address;
mod password;
mod revocation_reason;

pub use email_address::EmailAddress;
pub use password::Password;
pub use revocation_reason::RevocationReason;

mod otp_purpose;
pub use otp_purpose::{OtpPurpose, is_code_shaped};
