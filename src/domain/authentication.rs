//! How a session was authenticated, as the `amr` claim (RFC 8176) tells it: `pwd` for the password, `otp` for a
//! one-time code (mailed, from an authenticator app, or a recovery code), `hwk` for a passkey (a key held by an
//! authenticator), and `mfa` once two factors were shown: a second factor after the first, or a passkey, whose
//! user verification (a PIN or a biometric on the device) is the second. Stored on the session space-separated,
//! so every token of it says the same.

/// The factors a sign-in proved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Authentication {
    password: bool,
    code: bool,
    hardware_key: bool,
    multi_factor: bool,
}

impl Authentication {
    pub fn password() -> Self {
        Self {
            password: true,
            ..Self::default()
        }
    }

    pub fn code() -> Self {
        Self {
            code: true,
            ..Self::default()
        }
    }

    /// A passkey alone: possession of the authenticator and its user verification.
    pub fn passkey() -> Self {
        Self {
            hardware_key: true,
            multi_factor: true,
            ..Self::default()
        }
    }

    /// This authentication after a second factor, a one-time code, was shown too. A mailed code followed by an
    /// authenticator code is `otp` twice, but two factors all the same (the inbox and the device).
    pub fn and_second_code(&self) -> Self {
        Self {
            code: true,
            multi_factor: true,
            ..self.clone()
        }
    }

    /// This authentication after a passkey was shown as the second factor.
    pub fn and_passkey(&self) -> Self {
        Self {
            hardware_key: true,
            multi_factor: true,
            ..self.clone()
        }
    }

    /// The `amr` values.
    pub fn methods(&self) -> Vec<&'static str> {
        [
            (self.password, "pwd"),
            (self.code, "otp"),
            (self.hardware_key, "hwk"),
            (self.multi_factor, "mfa"),
        ]
        .into_iter()
        .filter_map(|(shown, method)| shown.then_some(method))
        .collect()
    }

    /// As stored on sessions and challenges.
    pub fn to_stored(&self) -> String {
        self.methods().join(" ")
    }

    /// A stored value; an unknown word is skipped (a later version may know more methods).
    pub fn parse(stored: &str) -> Self {
        let words: Vec<&str> = stored.split_whitespace().collect();
        Self {
            password: words.contains(&"pwd"),
            code: words.contains(&"otp"),
            hardware_key: words.contains(&"hwk"),
            multi_factor: words.contains(&"mfa"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_factor_makes_it_multi_factor_and_survives_storage() {
        assert_eq!(Authentication::password().methods(), ["pwd"]);
        let both = Authentication::password().and_second_code();
        assert_eq!(both.methods(), ["pwd", "otp", "mfa"]);
        assert_eq!(Authentication::parse(&both.to_stored()), both);
        assert_eq!(Authentication::code().and_second_code().methods(), ["otp", "mfa"]);
        assert_eq!(
            Authentication::password().and_passkey().methods(),
            ["pwd", "hwk", "mfa"]
        );
        assert_eq!(Authentication::passkey().methods(), ["hwk", "mfa"]);
        assert_eq!(Authentication::parse("pwd face"), Authentication::password());
    }
}
