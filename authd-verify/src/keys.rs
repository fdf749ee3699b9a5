//! authd's public keys (its JWKS) and the checks a token must pass under them.

use std::collections::HashMap;

use jsonwebtoken::{
    Algorithm, DecodingKey, Validation,
    errors::ErrorKind,
    jwk::{JwkSet, KeyAlgorithm},
};

use crate::{Claims, Config, VerifyError};

/// The `typ` of authd's access tokens (RFC 9068).
const ACCESS_TOKEN_TYPE: &str = "at+jwt";

/// The published keys by `kid`, each with the one algorithm it verifies.
pub struct KeySet {
    keys: HashMap<String, (DecodingKey, Validation)>,
}

impl KeySet {
    pub fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
        let kid = header.kid.ok_or(VerifyError::Invalid)?;
        let (key, validation) = self.keys.get(&kid).ok_or(VerifyError::UnknownKey)?;
        if header.typ.as_deref() != Some(ACCESS_TOKEN_TYPE) {
            return Err(VerifyError::Invalid);
        }
        jsonwebtoken::decode::<Claims>(token, key, validation)
            .map(|data| data.claims)
            .map_err(|error| match error.kind() {
                ErrorKind::ExpiredSignature => VerifyError::Expired,
                _ => VerifyError::Invalid,
            })
    }
}

/// Fetches `/.well-known/jwks.json`; keys of algorithms other than EdDSA and ES256 are left out.
pub async fn fetch(client: &reqwest::Client, config: &Config) -> Result<KeySet, String> {
    let set: JwkSet = client
        .get(format!("{}/.well-known/jwks.json", config.authd_url))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|error| error.to_string())?
        .json()
        .await
        .map_err(|error| error.to_string())?;
    let mut keys = HashMap::new();
    for jwk in &set.keys {
        let algorithm = match jwk.common.key_algorithm {
            Some(KeyAlgorithm::EdDSA) => Algorithm::EdDSA,
            Some(KeyAlgorithm::ES256) => Algorithm::ES256,
            _ => continue,
        };
        let (Some(kid), Ok(key)) = (jwk.common.key_id.clone(), DecodingKey::from_jwk(jwk)) else {
            continue;
        };
        keys.insert(kid, (key, validation(algorithm, config)));
    }
    Ok(KeySet { keys })
}

fn validation(algorithm: Algorithm, config: &Config) -> Validation {
    let mut validation = Validation::new(algorithm);
    validation.leeway = config.leeway.as_secs();
    validation.validate_nbf = true;
    validation.set_issuer(&[&config.issuer]);
    validation.set_audience(&[&config.issuer]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation
}
