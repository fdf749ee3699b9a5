use unicode_normalization::UnicodeNormalization;

pub const MINIMUM_LENGTH: usize = 8;
pub const MAXIMUM_LENGTH: usize = 128;

/// A password after NFKC normalisation, never truncated. `Debug` prints nothing.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// A new password: 8 to 128 code points after NFKC, not one of the common passwords.
    pub fn parse_new(raw: &str) -> Result<Self, &'static str> {
        let password = Self::normalise(raw);
        let length = password.0.chars().count();
        if length < MINIMUM_LENGTH {
            return Err("must be at least 8 characters");
        }
        if length > MAXIMUM_LENGTH {
            return Err("must be at most 128 characters");
        }
        if is_common(&password.0) {
            return Err("is too common: it is on a list of frequently used passwords or as easy to guess");
        }
        Ok(password)
    }

    /// A password presented to sign in: normalised like a new one, but no policy applies beyond the length
    /// cap (which bounds the hashing work an attacker can ask for).
    pub fn for_login(raw: &str) -> Option<Self> {
        let password = Self::normalise(raw);
        (password.0.chars().count() <= MAXIMUM_LENGTH && !password.0.is_empty()).then_some(password)
    }

    fn normalise(raw: &str) -> Self {
        Self(raw.nfkc().collect())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Password([redacted])")
    }
}

/// zxcvbn's estimate of guesses below which a password counts as common. Every entry of its list of
/// 30,000 frequent passwords (11,611 of them 8 characters or longer) scores at most its rank, under 30,000,
/// so all of them fall below this line, with their capitalised variants and other trivial guesses.
const COMMON_BELOW_GUESSES: u64 = 100_000;

/// Whether the password is on (or trivially near) the list of frequent passwords.
fn is_common(password: &str) -> bool {
    zxcvbn::zxcvbn(password, &[]).guesses() < COMMON_BELOW_GUESSES
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_passwords_are_refused_in_any_case() {
        for common in [
            "password",
            "PASSWORD1",
            "baseball",
            "qwertyuiop",
            "iloveyou123",
            "football1",
            "sunshine1",
            "aaaaaaaaaa",
        ] {
            assert!(Password::parse_new(common).is_err(), "{common} was accepted");
        }
    }

    #[test]
    fn length_counts_code_points_after_normalisation() {
        assert!(Password::parse_new("short").is_err());
        assert!(Password::parse_new("äöüßéèçñ").is_ok(), "eight code points");
        // Seven code points once the combining accents compose: too short.
        assert!(Password::parse_new("a\u{301}o\u{301}u\u{301}i\u{301}e\u{301}n\u{303}c\u{327}").is_err());
        assert!(Password::parse_new(&"x".repeat(129)).is_err());
        assert!(Password::parse_new("correct horse battery staple").is_ok());
        // The ligature "ﬁ" is two code points after NFKC.
        assert_eq!(Password::parse_new("ﬁ ligature 9").unwrap().as_str(), "fi ligature 9");
    }
}
