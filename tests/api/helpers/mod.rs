pub mod app;
pub mod passkey;
pub mod smtp;
pub mod ws;

pub use app::{TestApp, spawn_app, spawn_app_with, spawn_node_of};

/// Prints the median and p99 of latencies, and fails on an absurd p99.
pub fn report_latency(label: &str, latencies: &mut [std::time::Duration]) {
    latencies.sort();
    let median = latencies[latencies.len() / 2];
    let p99 = latencies[(latencies.len() * 99 / 100).min(latencies.len() - 1)];
    println!(
        "delivery latency, {label}: {} trials, median {median:?}, p99 {p99:?}, max {:?}",
        latencies.len(),
        latencies[latencies.len() - 1]
    );
    assert!(p99 < std::time::Duration::from_secs(1), "p99 {p99:?} on {label}");
}
