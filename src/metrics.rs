//! Prometheus metrics: one registry per application, passed around like everything else.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    pub http_request_duration: HistogramVec,
    pub logins: IntCounterVec,
    pub refreshes: IntCounterVec,
    pub refresh_reuse_detected: IntCounter,
    pub revocations: IntCounterVec,
    pub live_sockets: IntGauge,
    pub events_pushed: IntCounterVec,
    pub push_latency: Histogram,
    pub password_hash_queue: IntGauge,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("authd".to_owned()), None)?;
        let latency_buckets = vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        ];
        let metrics = Self {
            http_request_duration: HistogramVec::new(
                HistogramOpts::new(
                    "http_request_duration_seconds",
                    "HTTP request duration by route and status",
                )
                .buckets(latency_buckets.clone()),
                &["method", "route", "status"],
            )?,
            logins: IntCounterVec::new(Opts::new("logins_total", "Sign-in attempts by outcome"), &["outcome"])?,
            refreshes: IntCounterVec::new(Opts::new("refreshes_total", "Refreshes by outcome"), &["outcome"])?,
            refresh_reuse_detected: IntCounter::new(
                "refresh_reuse_detected_total",
                "Rotated-out refresh tokens shown after the grace window",
            )?,
            revocations: IntCounterVec::new(Opts::new("revocations_total", "Ended sessions by reason"), &["reason"])?,
            live_sockets: IntGauge::new("live_sockets", "WebSockets open on this node")?,
            events_pushed: IntCounterVec::new(Opts::new("events_pushed_total", "Frames pushed to devices"), &["type"])?,
            push_latency: Histogram::with_opts(
                HistogramOpts::new(
                    "push_latency_seconds",
                    "From a session's end to its event leaving this node",
                )
                .buckets(latency_buckets),
            )?,
            password_hash_queue: IntGauge::new("password_hash_queue", "argon2 hashes waiting or running")?,
            registry,
        };
        metrics
            .registry
            .register(Box::new(metrics.http_request_duration.clone()))?;
        metrics.registry.register(Box::new(metrics.logins.clone()))?;
        metrics.registry.register(Box::new(metrics.refreshes.clone()))?;
        metrics
            .registry
            .register(Box::new(metrics.refresh_reuse_detected.clone()))?;
        metrics.registry.register(Box::new(metrics.revocations.clone()))?;
        metrics.registry.register(Box::new(metrics.live_sockets.clone()))?;
        metrics.registry.register(Box::new(metrics.events_pushed.clone()))?;
        metrics.registry.register(Box::new(metrics.push_latency.clone()))?;
        metrics
            .registry
            .register(Box::new(metrics.password_hash_queue.clone()))?;
        Ok(metrics)
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        if TextEncoder::new().encode(&self.registry.gather(), &mut buffer).is_err() {
            return String::new();
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}
