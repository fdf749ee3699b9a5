//! Randomness from the operating system.

/// Fills `buffer` from the operating system's CSPRNG. Without one no token or key can be made safely, so the
/// process stops rather than go on with weak randomness.
pub fn fill_random(buffer: &mut [u8]) {
    if let Err(error) = getrandom::fill(buffer) {
        tracing::error!(%error, "the operating system's random source failed");
        std::process::abort();
    }
}
