//! Budgets of requests per minute, as token buckets whose burst is the per-minute figure: one per client IP,
//! shared by every endpoint that an unauthenticated client can use to guess or to make mail go out
//! (`RATE_LIMIT_IP_PER_MINUTE`), and one per user for WebSocket tickets and upgrades (`WS_CONNECTS_PER_MINUTE`).
//!
//! - Both are governor keyed rate limiters per node: by client IP (an IPv6 client by its /64), and by user. The
//!   IP quota is `Quota::per_minute(RATE_LIMIT_IP_PER_MINUTE)`: a burst of that many requests, refilled evenly
//!   over a minute. `0` turns it off. Idle keys are forgotten every 60 s. The budget is not shared between nodes.
//! - The `IpBudget` extractor spends one unit before the body is parsed, on register, verify-email, login,
//!   login/verify, otp/request, otp/login and password/reset. Refresh, logout and authenticated endpoints are not
//!   limited by it. An empty budget answers 429 `rate_limited` with `Retry-After` (seconds, rounded up).

use std::{hash::Hash, net::IpAddr, num::NonZeroU32, sync::Arc, time::Duration};

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock};
use uuid::Uuid;

use super::client::{budget_key, client_ip};
use crate::{error::AppError, services::AppState};

/// A per-key limiter of this node; `None` when the limit is off (0).
pub struct KeyedRateLimiter<K: Hash + Eq + Clone>(Option<Arc<DefaultKeyedRateLimiter<K>>>);

/// The per-IP budget of the sign-in endpoints.
pub type IpRateLimiter = KeyedRateLimiter<IpAddr>;
/// The per-user budget of WebSocket tickets and upgrades.
pub type SocketRateLimiter = KeyedRateLimiter<Uuid>;

impl<K: Hash + Eq + Clone + Send + Sync + 'static> KeyedRateLimiter<K> {
    pub fn new(per_minute: u32) -> Self {
        Self(NonZeroU32::new(per_minute).map(|per_minute| {
            let limiter = Arc::new(RateLimiter::keyed(Quota::per_minute(per_minute)));
            // Forget idle clients now and then so the map stays small.
            let sweeper = limiter.clone();
            tokio::spawn(async move {
                let mut interval = tokio::time::interval(Duration::from_secs(60));
                loop {
                    interval.tick().await;
                    sweeper.retain_recent();
                    sweeper.shrink_to_fit();
                }
            });
            limiter
        }))
    }

    /// Spends one unit of `key`'s budget: `rate_limited` with the wait when there is none.
    pub fn check(&self, key: K) -> Result<(), AppError> {
        let Some(limiter) = &self.0 else { return Ok(()) };
        limiter.check_key(&key).map_err(|not_until| {
            let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
            AppError::RateLimited {
                retry_after_seconds: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
            }
        })
    }
}

/// Spends one unit of the caller's budget; the handler runs only if there was one.
pub struct IpBudget;

impl FromRequest for IpBudget {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, AppError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(spend(request))
    }
}

fn spend(request: &HttpRequest) -> Result<IpBudget, AppError> {
    let (Some(limiter), Some(state)) = (
        request.app_data::<web::Data<IpRateLimiter>>(),
        request.app_data::<web::Data<AppState>>(),
    ) else {
        return Ok(IpBudget);
    };
    match client_ip(request, &state.settings) {
        Some(ip) => limiter.check(budget_key(ip)).map(|()| IpBudget),
        None => Ok(IpBudget),
    }
}
