//! A latency histogram with fixed bucket bounds: what Prometheus's `histogram` type exposes
//! (cumulative buckets, sum, count), kept as plain numbers under the metrics lock.

/// Upper bounds of the latency buckets, seconds: a GPU detector takes a few ms, a CPU one
/// 30–300 ms; beyond a second the frame is too old to act on whatever the bucket.
pub const LATENCY_BOUNDS_S: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5,
];

const BUCKETS: usize = LATENCY_BOUNDS_S.len() + 1;

/// Observations per bucket (not cumulative; the last bucket is everything above the last
/// bound) and their sum. Fixed-size, so a snapshot is a copy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Histogram {
    counts: [u64; BUCKETS],
    sum: f64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: [0; BUCKETS],
            sum: 0.0,
        }
    }
}

impl Histogram {
    /// Counts one observation, seconds. A value that is not a number goes into the last bucket
    /// and leaves the sum alone, so one bad reading cannot poison the mean.
    pub fn observe(&mut self, seconds: f64) {
        let bucket = LATENCY_BOUNDS_S
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(BUCKETS - 1);
        self.counts[bucket] += 1;
        if seconds.is_finite() {
            self.sum += seconds;
        }
    }

    /// `(upper bound, observations ≤ it)` for every bucket, the last with bound +∞ (Prometheus's
    /// `le` buckets).
    pub fn cumulative(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        let bounds = LATENCY_BOUNDS_S.iter().copied().chain([f64::INFINITY]);
        bounds.zip(self.counts.iter().scan(0u64, |total, &n| {
            *total += n;
            Some(*total)
        }))
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    pub fn sum(&self) -> f64 {
        self.sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_end_with_everything() {
        let mut h = Histogram::default();
        for s in [0.0005, 0.001, 0.04, 0.04, 3.0, f64::NAN] {
            h.observe(s);
        }
        let buckets: Vec<(f64, u64)> = h.cumulative().collect();
        assert_eq!(buckets.len(), LATENCY_BOUNDS_S.len() + 1);
        assert_eq!(buckets[0], (0.001, 2), "a bound is inclusive");
        assert_eq!(buckets[5], (0.035, 2));
        assert_eq!(buckets[6], (0.05, 4));
        assert_eq!(buckets[13], (2.5, 4));
        assert_eq!(buckets[14], (f64::INFINITY, 6));
        assert_eq!(h.count(), 6);
        assert!((h.sum() - 3.0815).abs() < 1e-12, "{}", h.sum());
    }
}
