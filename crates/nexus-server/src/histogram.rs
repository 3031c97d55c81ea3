//! A latency histogram made of atomics, cheap enough for every request: `observe` is a short scan
//! of fixed bucket bounds and two relaxed `fetch_add`s, with no lock and no allocation. Rendered
//! in Prometheus text format by `http::metrics` (cumulative `_bucket{le=…}`, `_sum`, `_count`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Bucket upper bounds in microseconds for HTTP requests (long-polls land in the top buckets).
pub const REQUEST_BOUNDS_US: &[u64] = &[
    250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000, 10_000_000, 30_000_000, 60_000_000,
];

/// Bucket upper bounds in microseconds for one store operation (a Redis round trip or a few
/// microseconds of in-memory work).
pub const STORE_BOUNDS_US: &[u64] = &[
    10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000,
    1_000_000,
];

/// A histogram over fixed bounds; values above the last bound only count in `+Inf`.
pub struct Histogram {
    bounds_us: &'static [u64],
    /// Non-cumulative counts: `counts[i]` holds observations in `(bounds[i-1], bounds[i]]`, the
    /// last slot those above every bound.
    counts: Box<[AtomicU64]>,
    sum_us: AtomicU64,
}

/// A consistent-enough copy for rendering (each field read once, relaxed).
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// `(upper bound in seconds, cumulative count)`, without `+Inf`.
    pub buckets: Vec<(f64, u64)>,
    pub count: u64,
    pub sum_seconds: f64,
}

impl Histogram {
    pub fn new(bounds_us: &'static [u64]) -> Self {
        Self {
            bounds_us,
            counts: (0..=bounds_us.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_us: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, elapsed: Duration) {
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let slot = self.bounds_us.partition_point(|&b| b < us);
        self.counts[slot].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        let mut cumulative = 0;
        let mut buckets = Vec::with_capacity(self.bounds_us.len());
        for (bound, count) in self.bounds_us.iter().zip(self.counts.iter()) {
            cumulative += count.load(Ordering::Relaxed);
            buckets.push((*bound as f64 / 1e6, cumulative));
        }
        let above = self.counts[self.bounds_us.len()].load(Ordering::Relaxed);
        Snapshot {
            buckets,
            count: cumulative + above,
            sum_seconds: self.sum_us.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_inclusive_of_their_bound() {
        let h = Histogram::new(&[10, 100]);
        h.observe(Duration::from_micros(10));
        h.observe(Duration::from_micros(11));
        h.observe(Duration::from_micros(100));
        h.observe(Duration::from_secs(1));
        let s = h.snapshot();
        assert_eq!(s.buckets, vec![(0.00001, 1), (0.0001, 3)]);
        assert_eq!(s.count, 4);
        assert!((s.sum_seconds - 1.000121).abs() < 1e-9, "{}", s.sum_seconds);
    }
}
