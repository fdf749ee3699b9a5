//! Keys that sign access tokens, for `ACCESS_TOKEN_ALG=EdDSA` (the default) or `ES256`; with `HS256` the one
//! shared `JWT_ACCESS_SECRET` signs and none of this runs.
//!
//! - `key_ring`: the keys of one moment in memory (the signer, the verifiers by `kid`, the JWKS document),
//!   and making a key pair, whose private part is sealed (`crate::sealing`) under a key derived from
//!   `KEY_ENCRYPTION_SECRET` with the `kid` as associated data.
//! - `rotation`: the `signing_keys` rows: a first key at the first start; the next key published one lead
//!   (twice `JWKS_MAX_AGE`) before it signs, `SIGNING_KEY_ROTATION` after the active one began; an emergency
//!   rotation (`authd keys rotate`) that signs at once; deletion of keys whose tokens have all expired.
//! - `verified`: the tokens this node has verified, so a token presented again costs no signature check.
//!
//! Every node runs `rotation::maintain` at start and every `RELOAD_INTERVAL`, then reloads its ring: a rotation
//! made on any node signs everywhere within seconds. A token whose `kid` this node does not know yet (another
//! node rotated a moment ago) wakes the reload at once, at most once a second.

pub mod key_ring;
pub mod refresher;
pub mod rotation;
pub mod verified;

use std::time::Duration;

/// How often every node looks for new keys and rotates when due.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(5);
