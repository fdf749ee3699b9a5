//! How a session was authenticated, as the `amr` claim (RFC 8176) tells it: `pwd` for the password, `otp` for a
//! one-time code (mailed, from an authenticator app, or a recovery code), and `mfa` once a second factor was
//! shown after the first. Stored on the session space-separated, so every token of it says the same.

/// The factors a sign-in proved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authentication {
    password: bool,
    code: bool,
    multi_factor: bool,
}

impl Authentication {
    pub const fn password() -> Self {
        Self {
            password: true,
            code: false,
            multi_factor: false,
        }
    }

    pub const fn code() -> Self {
        Self {
            password: false,
            code: true,
            multi_factor: false,
        }
    }

    /// This authentication after a second factor, a one-time code, was shown too. A mailed code followed by an
    /// authenticator code is `otp` twice, but two factors all the same (the inbox and the device).
    pub fn and_second_code(&self) -> Self {
        Self {
            password: self.password,
            code: true,
            multi_factor: true,
        }
    }

    /// The `amr` values.
    pub fn methods(&self) -> Vec<&'static str> {
        [(self.password, "pwd"), (self.code, "otp"), (self.multi_factor, "mfa")]
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
        assert_eq!(Authentication::parse("pwd hwk"), Authentication::password());
    }
}
