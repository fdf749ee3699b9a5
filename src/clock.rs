//! The service's clock, at the precision the databases keep. At the bottom of the crate: it imports nothing
//! of it, so every layer may use it.

/// Now, at the microsecond precision both databases keep, so values read back compare equal.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::{SubsecRound, Utc};
    Utc::now().trunc_subsecs(6)
}

/// Now as Unix milliseconds: the unit of the time columns compared inside SQL.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A duration of the settings (at most ten years, checked at start) or a constant, as chrono counts it.
#[allow(clippy::expect_used)]
pub fn seconds(duration: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).expect("durations are at most ten years, far inside chrono's range")
}
