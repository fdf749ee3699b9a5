//! A software passkey authenticator: what a phone or a security key does, in the open, so the tests drive the
//! real WebAuthn checks of the server. One P-256 key (ES256), attestation `none`, a signature counter that
//! counts up, user verification on unless told otherwise.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ring::{
    digest::{SHA256, digest},
    rand::SystemRandom,
    signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair},
};
use serde_json::{Value, json};

/// The origin the server allows by default (`WEBAUTHN_ORIGINS`).
pub const ORIGIN: &str = "http://localhost:5000";

const USER_PRESENT: u8 = 0x01;
const USER_VERIFIED: u8 = 0x04;
const ATTESTED_CREDENTIAL: u8 = 0x40;

pub struct SoftPasskey {
    pkcs8: Vec<u8>,
    pub credential_id: Vec<u8>,
    /// The WebAuthn user handle the registration named (the account's id), sent back in assertions.
    user_handle: Option<String>,
    pub counter: u32,
    /// Whether the authenticator keeps a signature counter; synced passkeys send 0 every time.
    pub counts: bool,
    /// Whether the authenticator says it verified the user (a PIN or a biometric).
    pub verifies_user: bool,
    pub origin: String,
}

impl Clone for SoftPasskey {
    /// A copy of the key, as a cloned authenticator would hold it: same key, same counter.
    fn clone(&self) -> Self {
        Self {
            pkcs8: self.pkcs8.clone(),
            credential_id: self.credential_id.clone(),
            user_handle: self.user_handle.clone(),
            counter: self.counter,
            counts: self.counts,
            verifies_user: self.verifies_user,
            origin: self.origin.clone(),
        }
    }
}

/// Minimal CBOR (RFC 8949): the few types an attestation object and a COSE key need.
fn header(major: u8, length: usize, out: &mut Vec<u8>) {
    let major = major << 5;
    match length {
        0..=23 => out.push(major | length as u8),
        24..=255 => out.extend([major | 24, length as u8]),
        _ => {
            out.push(major | 25);
            out.extend((length as u16).to_be_bytes());
        }
    }
}

fn integer(value: i64, out: &mut Vec<u8>) {
    if value >= 0 {
        header(0, value as usize, out);
    } else {
        header(1, (-1 - value) as usize, out);
    }
}

fn bytes(value: &[u8], out: &mut Vec<u8>) {
    header(2, value.len(), out);
    out.extend(value);
}

fn text(value: &str, out: &mut Vec<u8>) {
    header(3, value.len(), out);
    out.extend(value.as_bytes());
}

fn b64(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

impl SoftPasskey {
    pub fn new() -> Self {
        let random = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &random)
            .unwrap()
            .as_ref()
            .to_vec();
        let mut credential_id = vec![0u8; 32];
        ring::rand::SecureRandom::fill(&random, &mut credential_id).unwrap();
        Self {
            pkcs8,
            credential_id,
            user_handle: None,
            counter: 0,
            counts: true,
            verifies_user: true,
            origin: ORIGIN.to_owned(),
        }
    }

    fn key(&self) -> EcdsaKeyPair {
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &self.pkcs8, &SystemRandom::new()).unwrap()
    }

    fn flags(&self) -> u8 {
        USER_PRESENT | if self.verifies_user { USER_VERIFIED } else { 0 }
    }

    fn client_data(&self, kind: &str, challenge: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": false
        }))
        .unwrap()
    }

    /// The COSE form of the public key: EC2, ES256, P-256, x and y.
    fn cose_key(&self) -> Vec<u8> {
        let public = self.key().public_key().as_ref().to_vec();
        let (x, y) = public[1..].split_at(32);
        let mut out = Vec::new();
        header(5, 5, &mut out);
        integer(1, &mut out);
        integer(2, &mut out);
        integer(3, &mut out);
        integer(-7, &mut out);
        integer(-1, &mut out);
        integer(1, &mut out);
        integer(-2, &mut out);
        bytes(x, &mut out);
        integer(-3, &mut out);
        bytes(y, &mut out);
        out
    }

    /// Answers `navigator.credentials.create` options (`{"publicKey": ...}`) with a new credential, as
    /// `PublicKeyCredential.toJSON()` would.
    pub fn register(&mut self, options: &Value) -> Value {
        let options = &options["publicKey"];
        let rp_id = options["rp"]["id"].as_str().unwrap();
        self.user_handle = Some(options["user"]["id"].as_str().unwrap().to_owned());
        let client_data = self.client_data("webauthn.create", options["challenge"].as_str().unwrap());
        let mut authenticator_data = digest(&SHA256, rp_id.as_bytes()).as_ref().to_vec();
        authenticator_data.push(self.flags() | ATTESTED_CREDENTIAL);
        authenticator_data.extend(self.counter.to_be_bytes());
        authenticator_data.extend([0u8; 16]);
        authenticator_data.extend((self.credential_id.len() as u16).to_be_bytes());
        authenticator_data.extend(&self.credential_id);
        authenticator_data.extend(self.cose_key());
        let mut attestation = Vec::new();
        header(5, 3, &mut attestation);
        text("fmt", &mut attestation);
        text("none", &mut attestation);
        text("attStmt", &mut attestation);
        header(5, 0, &mut attestation);
        text("authData", &mut attestation);
        bytes(&authenticator_data, &mut attestation);
        json!({
            "id": b64(&self.credential_id),
            "rawId": b64(&self.credential_id),
            "type": "public-key",
            "response": {"attestationObject": b64(&attestation), "clientDataJSON": b64(&client_data)},
            "extensions": {}
        })
    }

    /// Answers `navigator.credentials.get` options (`{"publicKey": ...}`) with a signed assertion; the counter
    /// goes up by one first, when the authenticator counts.
    pub fn assert(&mut self, options: &Value) -> Value {
        let options = &options["publicKey"];
        let rp_id = options["rpId"].as_str().unwrap();
        if self.counts {
            self.counter += 1;
        }
        let client_data = self.client_data("webauthn.get", options["challenge"].as_str().unwrap());
        let mut authenticator_data = digest(&SHA256, rp_id.as_bytes()).as_ref().to_vec();
        authenticator_data.push(self.flags());
        authenticator_data.extend(self.counter.to_be_bytes());
        let signed = [authenticator_data.as_slice(), digest(&SHA256, &client_data).as_ref()].concat();
        let signature = self.key().sign(&SystemRandom::new(), &signed).unwrap();
        json!({
            "id": b64(&self.credential_id),
            "rawId": b64(&self.credential_id),
            "type": "public-key",
            "response": {
                "authenticatorData": b64(&authenticator_data),
                "clientDataJSON": b64(&client_data),
                "signature": b64(signature.as_ref()),
                "userHandle": self.user_handle,
            },
            "extensions": {}
        })
    }
}
