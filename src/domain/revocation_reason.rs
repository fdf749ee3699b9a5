use std::fmt;

/// Why a session ended: the `reason` of the real-time events and of the stored revocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RevocationReason {
    Logout,
    LogoutAll,
    Revoked,
    RefreshTokenReused,
    PasswordChanged,
    PasswordReset,
    Expired,
}

impl RevocationReason {
    pub const ALL: [Self; 7] = [
        Self::Logout,
        Self::LogoutAll,
        Self::Revoked,
        Self::RefreshTokenReused,
        Self::PasswordChanged,
        Self::PasswordReset,
        Self::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Logout => "logout",
            Self::LogoutAll => "logout_all",
            Self::Revoked => "revoked",
            Self::RefreshTokenReused => "refresh_token_reused",
            Self::PasswordChanged => "password_changed",
            Self::PasswordReset => "password_reset",
            Self::Expired => "expired",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|reason| reason.as_str() == text)
    }
}

impl fmt::Display for RevocationReason {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}
