//! Counters and latency samples shared by every simulated camera and viewer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

#[derive(Default)]
pub struct Counters {
    pub connected: AtomicU64,
    pub acked: AtomicU64,
    pub unavailable: AtomicU64,
    pub server_errors: AtomicU64,
    pub leaks: AtomicU64,
    pub items_checked: AtomicU64,
    /// Live segments that went through the oracle (also counted in `items_checked`).
    pub live_checked: AtomicU64,
    /// Live segments too old to be live: refused by the server, or relayed so late that
    /// the viewer dropped them (still checked to be the viewer's own).
    pub live_late: AtomicU64,
    leak_details: Mutex<Vec<String>>,
}

impl Counters {
    pub fn add_503(&self) {
        self.unavailable.fetch_add(1, Ordering::Relaxed);
    }

    pub fn add_5xx(&self) {
        self.server_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Records a leak: something a viewer received that is not verifiably its own.
    pub fn leak(&self, detail: String) {
        self.leaks.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut d) = self.leak_details.lock() {
            if d.len() < 20 {
                d.push(detail);
            }
        }
    }

    pub fn leak_details(&self) -> Vec<String> {
        self.leak_details
            .lock()
            .map(|d| d.clone())
            .unwrap_or_default()
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Latency samples of one phase.
#[derive(Default)]
pub struct Latencies(Mutex<Vec<Duration>>);

impl Latencies {
    pub fn record(&self, d: Duration) {
        if let Ok(mut v) = self.0.lock() {
            v.push(d);
        }
    }

    pub fn count(&self) -> usize {
        self.0.lock().map(|v| v.len()).unwrap_or(0)
    }

    /// (p50, p99) in milliseconds; zeros without samples.
    pub fn percentiles(&self) -> (f64, f64) {
        let Ok(mut v) = self.0.lock() else {
            return (0.0, 0.0);
        };
        if v.is_empty() {
            return (0.0, 0.0);
        }
        v.sort();
        let at = |q: f64| {
            let i = ((v.len() as f64 - 1.0) * q).round() as usize;
            v[i.min(v.len() - 1)].as_secs_f64() * 1000.0
        };
        (at(0.5), at(0.99))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_series() {
        let l = Latencies::default();
        for ms in 1..=100 {
            l.record(Duration::from_millis(ms));
        }
        let (p50, p99) = l.percentiles();
        assert!((50.0..=51.0).contains(&p50));
        assert!((98.0..=100.0).contains(&p99));
    }
}
