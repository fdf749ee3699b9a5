/// What an emailed code is for. A code only ever works for its own purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OtpPurpose {
    VerifyEmail,
    Login,
    PasswordReset,
    /// The second factor of a password sign-in, bound to its challenge.
    #[serde(skip)]
    LoginChallenge,
}

impl OtpPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::Login => "login",
            Self::PasswordReset => "password_reset",
            Self::LoginChallenge => "login_challenge",
        }
    }
}

/// A code as typed: exactly six ASCII digits.
pub fn is_code_shaped(code: &str) -> bool {
    code.len() == 6 && code.bytes().all(|byte| byte.is_ascii_digit())
}
