//! Sealing secrets at rest: XChaCha20-Poly1305 with a random 24-byte nonce, stored as base64 of nonce and
//! ciphertext. The outbox seals mail with it (key derived from `OTP_SECRET`), the signing keys their private
//! parts (key derived from `KEY_ENCRYPTION_SECRET`, bound to the key's id). A random nonce of 192 bits never
//! repeats in practice, so one key seals any number of values.

use base64::{Engine, engine::general_purpose::STANDARD};
use chacha20poly1305::{
    XChaCha20Poly1305, XNonce,
    aead::{Aead, KeyInit, Payload},
};

const NONCE_BYTES: usize = 24;

#[derive(Clone)]
pub struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl Sealer {
    /// A sealer with a 256-bit key (derive it from a secret per purpose, e.g. with `tokens::HmacKey`).
    pub fn new(key: [u8; 32]) -> Self {
        Self {
            cipher: XChaCha20Poly1305::new(&key.into()),
        }
    }

    /// Seals `plain`; `context` (not secret, not stored) must be given again to open it, so a sealed value
    /// copied to another row does not open there.
    pub fn seal(&self, plain: &[u8], context: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_BYTES];
        crate::random::fill_random(&mut nonce);
        let sealed = self.cipher.encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: plain,
                aad: context,
            },
        );
        // Encryption fails only for a message over 256 GiB.
        #[allow(clippy::expect_used)]
        let sealed = sealed.expect("a value of this size always seals");
        STANDARD.encode([nonce.as_slice(), sealed.as_slice()].concat())
    }

    /// The plain value, or `None` when `sealed` was not sealed by this key for `context` or was altered.
    pub fn open(&self, sealed: &str, context: &[u8]) -> Option<Vec<u8>> {
        let bytes = STANDARD.decode(sealed).ok()?;
        let (nonce, sealed) = bytes.split_at_checked(NONCE_BYTES)?;
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().ok()?;
        self.cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: context,
                },
            )
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::Sealer;

    #[test]
    fn opens_only_with_its_key_and_context() {
        let sealer = Sealer::new([7; 32]);
        let other = Sealer::new([8; 32]);
        let sealed = sealer.seal(b"private", b"key-1");
        assert_eq!(sealer.open(&sealed, b"key-1").as_deref(), Some(&b"private"[..]));
        assert_eq!(sealer.open(&sealed, b"key-2"), None);
        assert_eq!(other.open(&sealed, b"key-1"), None);
        assert_ne!(sealer.seal(b"private", b"key-1"), sealed, "a fresh nonce each time");
    }
}
