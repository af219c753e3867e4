//! One direction of the relay's link: a token bucket in front of a bounded queue, driven by the
//! time its caller gives it (so it can be tested without waiting).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The bucket holds at least this many bytes' worth of tokens, so that a datagram of any usual
/// size can pass however low the rate.
const MIN_BURST_BYTES: u64 = 3000;
/// ... and otherwise this long at the rate: a router's burst, not a second's worth of data.
const BURST_TIME: Duration = Duration::from_millis(20);

/// What one direction passed and dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WayStats {
    /// Datagrams and bytes passed on.
    pub datagrams: u64,
    pub bytes: u64,
    /// Datagrams dropped because the queue was full.
    pub queue_drops: u64,
    /// Datagrams dropped by the configured loss.
    pub loss_drops: u64,
    /// Bytes waiting in the queue now.
    pub queued_bytes: usize,
}

/// A token bucket (bits per second) in front of a queue of at most `max_queue_bytes`.
#[derive(Debug)]
pub struct Shaper<T> {
    /// Bits per second; none: no limit.
    rate: Option<u64>,
    /// Tokens in the bucket, bits.
    tokens: f64,
    last: Instant,
    queue: VecDeque<(usize, T)>,
    max_queue_bytes: usize,
    pub stats: WayStats,
}

impl<T> Shaper<T> {
    pub fn new(now: Instant, rate: Option<u64>, max_queue_bytes: usize) -> Shaper<T> {
        Shaper {
            rate,
            tokens: burst_bits(rate),
            last: now,
            queue: VecDeque::new(),
            max_queue_bytes,
            stats: WayStats::default(),
        }
    }

    /// A new rate from `now` on; tokens earned until now at the old rate are kept (up to the
    /// new bucket's size).
    pub fn set_rate(&mut self, now: Instant, rate: Option<u64>) {
        self.refill(now);
        self.rate = rate;
        self.tokens = self.tokens.min(burst_bits(rate));
    }

    pub fn rate(&self) -> Option<u64> {
        self.rate
    }

    /// Queues a datagram of `len` bytes; false (and counted) if the queue has no room for it.
    pub fn push(&mut self, len: usize, item: T) -> bool {
        if self.stats.queued_bytes + len > self.max_queue_bytes {
            self.stats.queue_drops += 1;
            return false;
        }
        self.stats.queued_bytes += len;
        self.queue.push_back((len, item));
        true
    }

    /// The next datagram the bucket lets through at `now`, if any.
    pub fn pop(&mut self, now: Instant) -> Option<T> {
        self.refill(now);
        let (len, _) = self.queue.front()?;
        let bits = (*len * 8) as f64;
        if self.rate.is_some() && self.tokens < bits {
            return None;
        }
        if self.rate.is_some() {
            self.tokens -= bits;
        }
        let (len, item) = self.queue.pop_front()?;
        self.stats.queued_bytes -= len;
        self.stats.datagrams += 1;
        self.stats.bytes += len as u64;
        Some(item)
    }

    /// When the first datagram waiting may go, if one waits.
    pub fn next_ready(&self, now: Instant) -> Option<Instant> {
        let (len, _) = self.queue.front()?;
        let Some(rate) = self.rate else {
            return Some(now);
        };
        let missing = (*len * 8) as f64 - self.tokens;
        if missing <= 0.0 {
            return Some(now);
        }
        let wait = Duration::from_secs_f64(missing / rate.max(1) as f64);
        // At least a millisecond: a timer for less would only spin.
        Some(self.last + wait.max(Duration::from_millis(1)))
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last);
        self.last = self.last.max(now);
        if let Some(rate) = self.rate {
            self.tokens =
                (self.tokens + elapsed.as_secs_f64() * rate as f64).min(burst_bits(self.rate));
        }
    }
}

/// The bucket's size, bits.
fn burst_bits(rate: Option<u64>) -> f64 {
    let at_rate = rate.map_or(0, |r| (r as f64 * BURST_TIME.as_secs_f64()) as u64);
    at_rate.max(MIN_BURST_BYTES * 8) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Offers 1,000-byte datagrams every millisecond (8 Mbit/s) for `ms` simulated
    /// milliseconds from `start`, taking out whatever the bucket lets through each
    /// millisecond; returns the bytes passed.
    fn offer(shaper: &mut Shaper<()>, start: Instant, ms: u64) -> u64 {
        let before = shaper.stats.bytes;
        for t in 0..ms {
            let now = start + Duration::from_millis(t);
            shaper.push(1000, ());
            while shaper.pop(now).is_some() {}
        }
        shaper.stats.bytes - before
    }

    #[test]
    fn the_rate_limits_what_passes_and_a_full_queue_drops() {
        let t0 = Instant::now();
        let mut shaper = Shaper::new(t0, Some(1_000_000), 50_000);
        // 10 s at 1 Mbit/s: 1.25 MB, and the first burst.
        let passed = offer(&mut shaper, t0, 10_000);
        let budget = 1_250_000 + MIN_BURST_BYTES;
        assert!(passed <= budget, "{passed} passed, budget {budget}");
        assert!(
            passed >= budget * 95 / 100,
            "{passed} passed, budget {budget}"
        );
        // What the bucket did not let through and the queue could not hold was dropped.
        assert!(shaper.stats.queue_drops > 8_000, "{:?}", shaper.stats);
        assert!(shaper.stats.queued_bytes <= 50_000);

        // Changed while running: 4 Mbit/s for the next 5 s.
        let t1 = t0 + Duration::from_secs(10);
        shaper.set_rate(t1, Some(4_000_000));
        let passed = offer(&mut shaper, t1, 5_000);
        let budget = 2_500_000 + 50_000 + 10_000;
        assert!(passed <= budget, "{passed} passed, budget {budget}");
        assert!(passed >= 2_500_000 * 95 / 100, "{passed} passed");
    }

    #[test]
    fn without_a_rate_everything_passes_at_once() {
        let t0 = Instant::now();
        let mut shaper = Shaper::new(t0, None, 10_000);
        for i in 0..5 {
            assert!(shaper.push(1000, i));
        }
        assert_eq!(shaper.next_ready(t0), Some(t0));
        let out: Vec<i32> = std::iter::from_fn(|| shaper.pop(t0)).collect();
        assert_eq!(out, vec![0, 1, 2, 3, 4]);
        assert_eq!(shaper.next_ready(t0), None);
        // The queue's bound holds even so.
        assert!(!shaper.push(10_001, 9));
        assert_eq!(shaper.stats.queue_drops, 1);
    }

    #[test]
    fn a_waiting_datagram_is_due_when_the_bucket_has_its_tokens() {
        let t0 = Instant::now();
        // 80 kbit/s: 10 bytes a millisecond; the bucket starts full (3,000 bytes).
        let mut shaper = Shaper::new(t0, Some(80_000), 100_000);
        shaper.push(3000, ());
        shaper.push(1000, ());
        assert!(shaper.pop(t0).is_some());
        assert!(shaper.pop(t0).is_none());
        // 8,000 bits at 80,000 per second: 100 ms.
        let due = shaper.next_ready(t0).unwrap() - t0;
        assert!(due > Duration::from_millis(99) && due < Duration::from_millis(101));
        assert!(shaper.pop(t0 + Duration::from_millis(98)).is_none());
        assert!(shaper.pop(t0 + Duration::from_millis(101)).is_some());
    }
}
