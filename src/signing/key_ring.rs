//! The keys of one moment, in memory: the one that signs, every published one by `kid` for verifying, and the
//! JWKS document that publishes them. Built from the `signing_keys` rows; a new ring replaces the old whole.

use std::collections::HashMap;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use entity::signing_key;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use ring::{
    rand::SystemRandom,
    signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair},
};
use serde_json::{Value, json};

use crate::sealing::Sealer;

/// The algorithms a key in the database may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    EdDsa,
    Es256,
}

impl KeyAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EdDsa => "EdDSA",
            Self::Es256 => "ES256",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "EdDSA" => Some(Self::EdDsa),
            "ES256" => Some(Self::Es256),
            _ => None,
        }
    }

    pub fn jwt_algorithm(self) -> Algorithm {
        match self {
            Self::EdDsa => Algorithm::EdDSA,
            Self::Es256 => Algorithm::ES256,
        }
    }
}

/// Why a key could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the key pair cannot be generated")]
    Generate,
    #[error("signing key {0} does not open with KEY_ENCRYPTION_SECRET")]
    Sealed(String),
    #[error("signing key {0} is malformed")]
    Malformed(String),
}

/// A new key pair: the row to store (private part sealed under `sealer`, bound to the `kid`).
pub fn generate(
    algorithm: KeyAlgorithm,
    sealer: &Sealer,
    generation: i64,
    created_at: DateTime<Utc>,
    active_from: DateTime<Utc>,
) -> Result<signing_key::Model, KeyError> {
    let random = SystemRandom::new();
    let kid = uuid::Uuid::now_v7().simple().to_string();
    let (private_key, jwk) = match algorithm {
        KeyAlgorithm::EdDsa => {
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&random).map_err(|_| KeyError::Generate)?;
            let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| KeyError::Generate)?;
            let jwk = json!({
                "kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": kid,
                "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
            });
            (pkcs8.as_ref().to_vec(), jwk)
        }
        KeyAlgorithm::Es256 => {
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &random)
                .map_err(|_| KeyError::Generate)?;
            let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &random)
                .map_err(|_| KeyError::Generate)?;
            // An uncompressed point: 0x04, then x and y of 32 bytes each.
            let point = pair.public_key().as_ref();
            let (x, y) = point.get(1..33).zip(point.get(33..65)).ok_or(KeyError::Generate)?;
            let jwk = json!({
                "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
                "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
            });
            (pkcs8.as_ref().to_vec(), jwk)
        }
    };
    Ok(signing_key::Model {
        private_key: sealer.seal(&private_key, kid.as_bytes()),
        kid,
        generation,
        algorithm: algorithm.as_str().to_owned(),
        public_jwk: jwk.to_string(),
        created_at,
        active_from,
    })
}

/// The key that signs new tokens.
pub struct SigningKey {
    pub kid: String,
    pub algorithm: KeyAlgorithm,
    pub encoding: EncodingKey,
}

/// What verifies the tokens of one `kid`.
pub struct VerifyingKey {
    pub algorithm: KeyAlgorithm,
    pub decoding: DecodingKey,
}

/// The keys of one moment.
pub struct KeyRing {
    pub signing: Option<SigningKey>,
    pub verifying: HashMap<String, VerifyingKey>,
    /// `{"keys": [...]}`, rendered once.
    pub jwks: String,
}

impl KeyRing {
    pub fn empty() -> Self {
        Self {
            signing: None,
            verifying: HashMap::new(),
            jwks: json!({ "keys": [] }).to_string(),
        }
    }

    /// The ring of `rows` at `now`: each published, the newest active one signing. Only that one's private
    /// part is opened.
    pub fn from_rows(rows: &[signing_key::Model], sealer: &Sealer, now: DateTime<Utc>) -> Result<Self, KeyError> {
        let mut verifying = HashMap::new();
        let mut published = Vec::new();
        for row in rows {
            let malformed = || KeyError::Malformed(row.kid.clone());
            let algorithm = KeyAlgorithm::parse(&row.algorithm).ok_or_else(malformed)?;
            let jwk: Value = serde_json::from_str(&row.public_jwk).map_err(|_| malformed())?;
            let component = |name: &str| jwk[name].as_str().ok_or_else(malformed);
            let decoding = match algorithm {
                KeyAlgorithm::EdDsa => DecodingKey::from_ed_components(component("x")?),
                KeyAlgorithm::Es256 => DecodingKey::from_ec_components(component("x")?, component("y")?),
            }
            .map_err(|_| malformed())?;
            verifying.insert(row.kid.clone(), VerifyingKey { algorithm, decoding });
            published.push(jwk);
        }
        let signing = match rows
            .iter()
            .filter(|row| row.active_from <= now)
            .max_by_key(|row| row.generation)
        {
            Some(row) => {
                let algorithm =
                    KeyAlgorithm::parse(&row.algorithm).ok_or_else(|| KeyError::Malformed(row.kid.clone()))?;
                let private_key = sealer
                    .open(&row.private_key, row.kid.as_bytes())
                    .ok_or_else(|| KeyError::Sealed(row.kid.clone()))?;
                let encoding = match algorithm {
                    KeyAlgorithm::EdDsa => EncodingKey::from_ed_der(&private_key),
                    KeyAlgorithm::Es256 => EncodingKey::from_ec_der(&private_key),
                };
                Some(SigningKey {
                    kid: row.kid.clone(),
                    algorithm,
                    encoding,
                })
            }
            None => None,
        };
        Ok(Self {
            signing,
            verifying,
            jwks: json!({ "keys": published }).to_string(),
        })
    }
}
