//! Whether an access token is active now (RFC 7662), answered from memory: its signature and claims, its
//! session's end (`sxp`), and this node's set of ended sessions, which every node keeps for as long as a token
//! of an ended session could be presented. No database read.

use super::{AppState, now};
use crate::tokens::AccessClaims;

/// The claims of `token` when it is active: well signed, alive, and its session not ended.
pub fn active_claims(state: &AppState, token: &str) -> Option<AccessClaims> {
    let claims = state.access_tokens.verify(token).ok()?;
    if state.live_sets.revoked.reason_of(&claims.sid).is_some() {
        return None;
    }
    state
        .access_tokens
        .check_life(&claims, now().timestamp())
        .ok()
        .map(|()| claims)
}
