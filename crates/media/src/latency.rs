//! A histogram of latencies in microseconds, with bounded relative error: what the worker
//! records of its *residence* (how long each received datagram stays, from the moment the
//! kernel put it in the socket until everything it caused was handed to the kernel) and of its
//! *send delay* (for each datagram sent, how long after the arrival of the one that caused it).

use std::time::Duration;

use serde::ser::{Serialize, SerializeStruct, Serializer};

/// Sub-buckets per power of two: bucket bounds step by a quarter of the power below them
/// (…, 512, 640, 768, 896, 1024, 1280, … µs), so a percentile is known to within 25 %.
const SUB: usize = 4;
/// Buckets: below 4 µs one per microsecond, then four per power of two up to 2^24 µs (17 s);
/// the last holds everything longer.
pub const BUCKETS: usize = SUB + SUB * 22;

/// The bucket a time of `us` microseconds falls in.
fn bucket(us: u64) -> usize {
    if us < SUB as u64 {
        return us as usize;
    }
    let e = 63 - us.leading_zeros() as usize; // 2^e <= us < 2^(e+1), e >= 2
    let sub = ((us >> (e - 2)) & 3) as usize;
    (SUB + SUB * (e - 2) + sub).min(BUCKETS - 1)
}

/// Every time in bucket `i` is below this many microseconds (the last bucket's bound is where
/// it starts).
pub fn bucket_below_us(i: usize) -> u64 {
    if i < SUB {
        return i as u64 + 1;
    }
    let e = (i - SUB) / SUB + 2;
    let sub = ((i - SUB) % SUB) as u64;
    if i == BUCKETS - 1 {
        return (1u64 << e) + (sub << (e - 2));
    }
    (1u64 << e) + ((sub + 1) << (e - 2))
}

/// A latency histogram. Cumulative: compare two readings to get a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatencyHistogram {
    pub counts: [u64; BUCKETS],
    pub max_us: u64,
    /// All the times recorded, added up (for a mean, and a Prometheus histogram's `_sum`).
    pub sum_us: u64,
}

impl Default for LatencyHistogram {
    fn default() -> LatencyHistogram {
        LatencyHistogram {
            counts: [0; BUCKETS],
            max_us: 0,
            sum_us: 0,
        }
    }
}

impl LatencyHistogram {
    pub fn record(&mut self, d: Duration) {
        self.record_many(d, 1);
    }

    /// Records `n` datagrams that each took `d`.
    pub fn record_many(&mut self, d: Duration, n: u64) {
        if n == 0 {
            return;
        }
        let us = d.as_micros().min(u128::from(u64::MAX)) as u64;
        self.counts[bucket(us)] += n;
        self.max_us = self.max_us.max(us);
        self.sum_us = self.sum_us.saturating_add(us.saturating_mul(n));
    }

    /// What was recorded since `earlier`, a reading of the same histogram (its maximum is the
    /// later reading's, since start).
    pub fn since(&self, earlier: &LatencyHistogram) -> LatencyHistogram {
        let mut window = *self;
        for (w, e) in window.counts.iter_mut().zip(earlier.counts) {
            *w = w.saturating_sub(e);
        }
        window.sum_us = self.sum_us.saturating_sub(earlier.sum_us);
        window
    }

    /// Adds another histogram into this one.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts) {
            *a += b;
        }
        self.max_us = self.max_us.max(other.max_us);
        self.sum_us = self.sum_us.saturating_add(other.sum_us);
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
                return bucket_below_us(i);
            }
        }
        self.max_us
    }
}

/// Read by operators and the load generator as `datagrams`, `p50_us`, `p99_us` (bucket upper
/// bounds), `max_us`, `sum_us`, `buckets` (counts) and `bucket_below_us` (bucket *i* counts times below
/// `bucket_below_us[i]` µs and at or above the bound before it).
impl Serialize for LatencyHistogram {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let bounds: Vec<u64> = (0..BUCKETS).map(bucket_below_us).collect();
        let mut s = serializer.serialize_struct("LatencyHistogram", 7)?;
        s.serialize_field("datagrams", &self.count())?;
        s.serialize_field("p50_us", &self.percentile_us(50.0))?;
        s.serialize_field("p99_us", &self.percentile_us(99.0))?;
        s.serialize_field("max_us", &self.max_us)?;
        s.serialize_field("sum_us", &self.sum_us)?;
        s.serialize_field("buckets", &self.counts[..])?;
        s.serialize_field("bucket_below_us", &bounds)?;
        s.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_bound_the_percentiles_from_above() {
        let mut r = LatencyHistogram::default();
        for us in [0u64, 1, 3, 50, 90, 100, 120, 900] {
            r.record(Duration::from_micros(us));
        }
        assert_eq!(r.count(), 8);
        assert_eq!(r.max_us, 900);
        // 50 %: the 4th of 8 values (50 µs) is in the bucket [48, 56).
        assert_eq!(r.percentile_us(50.0), 56);
        // 99 %: the 900 µs value, in the bucket [896, 1024).
        assert_eq!(r.percentile_us(99.0), 1024);
        let mut both = r;
        both.merge(&r);
        assert_eq!(both.count(), 16);
        assert_eq!(both.since(&r), r);
        let mut many = LatencyHistogram::default();
        many.record_many(Duration::from_micros(900), 5);
        many.record_many(Duration::from_micros(5), 0);
        assert_eq!(
            (many.count(), many.max_us, many.percentile_us(50.0)),
            (5, 900, 1024)
        );
        assert_eq!(LatencyHistogram::default().percentile_us(99.0), 0);
        r.record(Duration::from_secs(100_000));
        assert_eq!(r.counts[BUCKETS - 1], 1);
    }

    #[test]
    fn every_time_lands_in_the_bucket_whose_bounds_hold_it() {
        let mut previous_bound = 0;
        for i in 0..BUCKETS - 1 {
            let below = bucket_below_us(i);
            assert!(below > previous_bound, "bounds rise: {i}");
            // The bucket's first and last microsecond land in it, the next one does not.
            assert_eq!(bucket(previous_bound), i);
            assert_eq!(bucket(below - 1), i);
            assert_eq!(bucket(below), i + 1);
            // A quarter of a power of two at most (one microsecond at the start).
            assert!(below - previous_bound <= (previous_bound / 4).max(1));
            previous_bound = below;
        }
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
        assert_eq!(bucket_below_us(BUCKETS - 1), previous_bound);
    }
}
