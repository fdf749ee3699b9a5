use unicode_normalization::UnicodeNormalization;

pub const MINIMUM_LENGTH: usize = 8;
pub const MAXIMUM_LENGTH: usize = 128;

/// A password after NFKC normalisation, never truncated. `Debug` prints nothing.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// A new password: 8 to 128 code points after NFKC, not one of the common passwords, and not built from
    /// what the service knows of its owner (`user_inputs`: the address, the name).
    pub fn parse_new(raw: &str, user_inputs: &[&str]) -> Result<Self, &'static str> {
        let password = Self::normalise(raw);
        let length = password.0.chars().count();
        if length < MINIMUM_LENGTH {
            return Err("must be at least 8 characters");
        }
        if length > MAXIMUM_LENGTH {
            return Err("must be at most 128 characters");
        }
        if contains_user_input(&password.0, user_inputs) {
            return Err("must not contain your email address or name");
        }
        if is_common(&password.0, user_inputs) {
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

/// How much of a password the estimate reads. zxcvbn's time grows steeply with length (a 64-character run of
/// substitutable symbols took 250 ms here, 128 characters up to 2 s), while a password whose first 20 code
/// points are not common is not common as a whole: this bounds the estimate to about 20 ms.
const SCORED_PREFIX: usize = 20;

/// Whether the password is on (or trivially near) the list of frequent passwords, or guessable from the
/// owner's address or name.
fn is_common(password: &str, user_inputs: &[&str]) -> bool {
    let prefix: String = password.chars().take(SCORED_PREFIX).collect();
    zxcvbn::zxcvbn(&prefix, user_inputs).guesses() < COMMON_BELOW_GUESSES
}

/// Whether the password, case aside, contains the whole address, its local part or the name (parts of at
/// least three characters: shorter ones occur by chance).
fn contains_user_input(password: &str, user_inputs: &[&str]) -> bool {
    let password = password.to_lowercase();
    user_inputs.iter().any(|input| {
        let input = input.trim().to_lowercase();
        let local = input.rsplit_once('@').map_or(input.as_str(), |(local, _)| local);
        [input.as_str(), local]
            .iter()
            .any(|part| part.chars().count() >= 3 && password.contains(part))
    })
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
            assert!(Password::parse_new(common, &[]).is_err(), "{common} was accepted");
        }
    }

    #[test]
    fn length_counts_code_points_after_normalisation() {
        assert!(Password::parse_new("short", &[]).is_err());
        assert!(Password::parse_new("äöüßéèçñ", &[]).is_ok(), "eight code points");
        // Seven code points once the combining accents compose: too short.
        assert!(Password::parse_new("a\u{301}o\u{301}u\u{301}i\u{301}e\u{301}n\u{303}c\u{327}", &[]).is_err());
        assert!(Password::parse_new(&"x".repeat(129), &[]).is_err());
        assert!(Password::parse_new("correct horse battery staple", &[]).is_ok());
        // The ligature "ﬁ" is two code points after NFKC.
        assert_eq!(
            Password::parse_new("ﬁ ligature 9", &[]).unwrap().as_str(),
            "fi ligature 9"
        );
    }

    #[test]
    fn the_owners_address_and_name_are_refused() {
        let inputs = ["ada.lovelace@example.com", "Ada Byron"];
        for guessable in [
            "ada.lovelace@example.com",
            "ADA.LOVELACE@example.com!",
            "my ada.lovelace 2024",
            "I am ada byron, hi",
        ] {
            assert!(
                Password::parse_new(guessable, &inputs).is_err(),
                "{guessable} was accepted"
            );
        }
        assert!(Password::parse_new("plum-otter-lantern-42", &inputs).is_ok());
    }

    #[test]
    fn long_passwords_are_judged_by_their_start() {
        // The estimate reads the first 20 code points: a weak start is refused however long the rest...
        assert!(Password::parse_new(&"password".repeat(16), &[]).is_err());
        assert!(Password::parse_new(&format!("{}{}", "a".repeat(20), "Zq7!mK2#vL9@"), &[]).is_err());
        // ...and a strong one is taken, whatever follows.
        assert!(Password::parse_new(&format!("plum-otter-lantern-42{}", "4@8(6<3{9!1|".repeat(8)), &[]).is_ok());
    }
}
