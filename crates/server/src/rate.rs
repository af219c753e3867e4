//! A token bucket: a burst allowance refilled at a steady rate.

use std::time::Instant;

#[derive(Debug)]
pub struct TokenBucket {
    capacity: f64,
    per_second: f64,
    tokens: f64,
    last: Option<Instant>,
}

impl TokenBucket {
    pub fn new(capacity: f64, per_second: f64) -> TokenBucket {
        TokenBucket {
            capacity,
            per_second,
            tokens: capacity,
            last: None,
        }
    }

    /// Whether the bucket has refilled completely by `now`: forgetting it then loses nothing.
    pub fn full(&self, now: Instant) -> bool {
        let elapsed = self.last.map_or(f64::INFINITY, |l| {
            now.saturating_duration_since(l).as_secs_f64()
        });
        self.tokens + elapsed * self.per_second >= self.capacity
    }

    /// Whether a token is there to take at `now` (none is taken).
    pub fn has_token(&self, now: Instant) -> bool {
        let elapsed = self
            .last
            .map_or(0.0, |l| now.saturating_duration_since(l).as_secs_f64());
        (self.tokens + elapsed * self.per_second).min(self.capacity) >= 1.0
    }

    /// Takes one token if there is one.
    pub fn take(&mut self, now: Instant) -> bool {
        if let Some(last) = self.last {
            let elapsed = now.saturating_duration_since(last).as_secs_f64();
            self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        }
        self.last = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn allows_a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(3.0, 2.0);
        assert!((0..3).all(|_| b.take(t0)));
        assert!(!b.take(t0));
        assert!(b.take(t0 + Duration::from_millis(500)));
        assert!(!b.take(t0 + Duration::from_millis(500)));
        // Never more than the burst, however long the pause.
        let later = t0 + Duration::from_secs(3600);
        assert_eq!((0..10).filter(|_| b.take(later)).count(), 3);
    }
}
