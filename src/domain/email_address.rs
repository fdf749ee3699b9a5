use unicode_normalization::UnicodeNormalization;

/// An email address in its one normal form: trimmed, NFKC, lower-cased; at most 254 bytes, local part at
/// most 64. Two spellings of one address are one account.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let normalised: String = raw.trim().nfkc().collect::<String>().to_lowercase();
        if normalised.is_empty() {
            return Err("is required");
        }
        if normalised.len() > 254 {
            return Err("must be at most 254 bytes");
        }
        let Some((local, domain)) = normalised.rsplit_once('@') else {
            return Err("must be an email address");
        };
        if local.is_empty() || domain.is_empty() {
            return Err("must be an email address");
        }
        if local.len() > 64 {
            return Err("local part must be at most 64 bytes");
        }
        if !is_dot_atom(local) {
            return Err("must be an email address");
        }
        if !domain.contains('.') || domain.starts_with('.') || domain.ends_with('.') {
            return Err("must be an email address");
        }
        if lettre::Address::new(local, domain).is_err() {
            return Err("must be an email address");
        }
        Ok(Self(normalised))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether a local part is a dot-atom (RFC 5322): atoms of letters, digits and ``!#$%&'*+/=?^_`{|}~-`` (or
/// any non-ASCII letter, digit or combining mark) joined by single dots. Quoted local parts, spaces and control characters are
/// refused: a mail to such an address cannot be delivered, so the account could never be verified.
fn is_dot_atom(local: &str) -> bool {
    local.split('.').all(|atom| {
        !atom.is_empty()
            && atom.chars().all(|character| {
                character.is_ascii_alphanumeric()
                    || "!#$%&'*+/=?^_`{|}~-".contains(character)
                    || (!character.is_ascii() && is_international_letter(character))
            })
    })
}

/// A letter, digit or combining mark of any script (Devanagari's virama, Thai tone marks), or the zero-width
/// joiners some scripts need: what an internationalised address (RFC 6531) is made of.
fn is_international_letter(character: char) -> bool {
    character.is_alphanumeric()
        || unicode_normalization::char::is_combining_mark(character)
        || matches!(character, '\u{200C}' | '\u{200D}')
}

impl std::fmt::Debug for EmailAddress {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Addresses are personal data: logs see only the domain.
        let domain = self.0.rsplit_once('@').map(|(_, domain)| domain).unwrap_or_default();
        write!(formatter, "EmailAddress(***@{domain})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_address_normalise_alike() {
        let plain = EmailAddress::parse("alice@example.com").unwrap();
        assert_eq!(EmailAddress::parse("  Alice@EXAMPLE.com ").unwrap(), plain);
        // Fullwidth letters fold to ASCII under NFKC.
        assert_eq!(EmailAddress::parse("ａｌｉｃｅ@example.com").unwrap(), plain);
        for deliverable in [
            "first.last+tag@example.com",
            "o'brien@example.com",
            "jörg@example.com",
            "\u{939}\u{93f}\u{928}\u{94d}\u{926}\u{940}@example.com",
            "\u{e2a}\u{e27}\u{e31}\u{e2a}\u{e14}\u{e35}@example.com",
        ] {
            assert!(EmailAddress::parse(deliverable).is_ok(), "{deliverable:?} was refused");
        }
    }

    #[test]
    fn malformed_and_oversized_addresses_are_refused() {
        for raw in [
            "",
            "alice",
            "alice@",
            "@example.com",
            "alice@localhost",
            "a b@example.com",
            "\"a b\"@example.com",
            "\"alice\"@example.com",
            "a\u{0}b@example.com",
            "\u{0}",
            ".alice@example.com",
            "alice.@example.com",
            "al..ice@example.com",
            "al\u{7f}ice@example.com",
        ] {
            assert!(EmailAddress::parse(raw).is_err(), "{raw:?} was accepted");
        }
        let long_local = format!("{}@example.com", "a".repeat(65));
        assert!(EmailAddress::parse(&long_local).is_err());
        let long_domain = format!("a@{}.com", "b".repeat(250));
        assert!(EmailAddress::parse(&long_domain).is_err());
    }
}
