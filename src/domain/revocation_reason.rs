use std::fmt;

/// Why a session ended: the `reason` of the real-time events and of the stored revocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, utoipa::ToSchema)]
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

/// A reason this version does not know (a newer node's, during a rolling deploy) reads as `revoked`: the
/// session still ends everywhere, only its device is told a more general reason. Dropping the whole message
/// instead would leave the session's tokens valid on this node.
impl<'de> serde::Deserialize<'de> for RevocationReason {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Ok(Self::parse(&text).unwrap_or(Self::Revoked))
    }
}

impl fmt::Display for RevocationReason {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_reads_back_and_an_unknown_one_reads_as_revoked() {
        for reason in RevocationReason::ALL {
            let text = serde_json::to_string(&reason).unwrap();
            assert_eq!(serde_json::from_str::<RevocationReason>(&text).unwrap(), reason);
        }
        assert_eq!(
            serde_json::from_str::<RevocationReason>("\"banned_by_admin\"").unwrap(),
            RevocationReason::Revoked
        );
    }
}
