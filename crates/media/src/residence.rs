//! How long received datagrams stay in the server: from the moment their batch is read from
//! the socket until everything each one caused has been handed to the kernel. This is the latency the
//! server adds (queueing in the kernel aside), measured where it happens.

use std::time::Duration;

/// Buckets of powers of two microseconds: bucket `i` holds times below `2^i` µs (the last one
/// everything longer).
pub const BUCKETS: usize = 24;

/// A histogram of residence times. Cumulative: compare two snapshots to get a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Residence {
    pub counts: [u64; BUCKETS],
    pub max_us: u64,
}

impl Default for Residence {
    fn default() -> Residence {
        Residence {
            counts: [0; BUCKETS],
            max_us: 0,
        }
    }
}

impl Residence {
    pub fn record(&mut self, d: Duration) {
        let us = d.as_micros().min(u128::from(u64::MAX)) as u64;
        let bucket = (64 - us.leading_zeros() as usize).min(BUCKETS - 1);
        self.counts[bucket] += 1;
        self.max_us = self.max_us.max(us);
    }

    /// Adds another histogram into this one.
    pub fn merge(&mut self, other: &Residence) {
        for (a, b) in self.counts.iter_mut().zip(other.counts) {
            *a += b;
        }
        self.max_us = self.max_us.max(other.max_us);
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The upper bound, in µs, of the bucket holding the `p`-th percentile (0–100).
    pub fn percentile_us(&self, p: f64) -> u64 {
        let total = self.count();
        if total == 0 {
            return 0;
        }
        let rank = ((p / 100.0) * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return 1u64 << i;
            }
        }
        self.max_us
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_bound_the_percentiles_from_above() {
        let mut r = Residence::default();
        for us in [0u64, 1, 3, 50, 90, 100, 120, 900] {
            r.record(Duration::from_micros(us));
        }
        assert_eq!(r.count(), 8);
        assert_eq!(r.max_us, 900);
        // 50 %: the 4th of 8 values (50 µs) is in the bucket below 64 µs.
        assert_eq!(r.percentile_us(50.0), 64);
        // 99 %: the 900 µs value, in the bucket below 1024 µs.
        assert_eq!(r.percentile_us(99.0), 1024);
        let mut both = r;
        both.merge(&r);
        assert_eq!(both.count(), 16);
        assert_eq!(Residence::default().percentile_us(99.0), 0);
        r.record(Duration::from_secs(100_000));
        assert_eq!(r.counts[BUCKETS - 1], 1);
    }
}
