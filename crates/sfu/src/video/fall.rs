//! A fall of a viewer's estimate, taken as news about what it is sent now.
//!
//! str0m's estimator (GoogCC) starts at [`ESTIMATOR_START`] and, on a wide link, stands above
//! what the viewer is sent (it may stand at up to 1.5 times the acknowledged rate). When the link
//! narrows it falls from there, in steps of 5-7 % a round trip: through a link narrowed from
//! 2 Mbit/s to 300 kbit/s, measured, it first moved 1.1-1.4 s after, and took up to 1.5 s more to
//! fall below what was being sent, while the link dropped four packets in five.
//!
//! The first step down is the news: what is sent now is more than the path carries. So a fall
//! of [`FALL_PERCENT`] or more, while the estimate still stands above what is sent, caps the
//! allocation at what is sent less the same share, until the fall ends ([`FALL_ENDS`] without a
//! further step down). Only the first step of a fall sets a cap: the later ones find the lower
//! layers already sent, and taking each as news again would cascade to the lowest layer on one
//! narrowing. Once the estimate falls below the cap, the estimate alone decides, as it does
//! when it falls while standing at or below what is sent (it then says nothing new).
//!
//! The estimator's start counts as where the estimate stands: str0m reports an estimate only
//! when it moves, and on a wide link it may not move from its start until the link narrows.
//!
//! Sans-I/O: fed the estimates, what is sent and the time.
//!
//! [`ESTIMATOR_START`]: crate::sfu::bandwidth::ESTIMATOR_START

use std::time::{Duration, Instant};

/// A step down of this share or more starts a fall (per cent). Smaller ones are the estimate's
/// wobble (a wide link's estimate stands still or moves by a per cent or two), and a cap from one
/// would move a viewer down for nothing: a layer held is kept only while it fits whole.
pub const FALL_PERCENT: u64 = 3;

/// A fall ends once the estimate has not stepped down for this long. The estimator steps down
/// once a round trip or so while the link is congested, and the round trip grows with the
/// queue: 0.8 s between two steps was seen through a 400 ms queue.
pub const FALL_ENDS: Duration = Duration::from_secs(2);

/// One viewer's fall, if its estimate is falling.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Fall {
    /// The cap on the allocation the fall's first step set (bits/s), if it set one.
    cap: Option<u64>,
    /// When the fall ends, unless the estimate steps down again before.
    ends: Option<Instant>,
}

/// `value` times `numerator` over `denominator`, without overflow; `value` for a zero
/// denominator.
fn scale(value: u64, numerator: u64, denominator: u64) -> u64 {
    if denominator == 0 {
        return value;
    }
    u64::try_from(u128::from(value) * u128::from(numerator) / u128::from(denominator))
        .unwrap_or(u64::MAX)
}

impl Fall {
    /// The estimate moved from `previous` to `estimate` (bits/s) while `sent` bits/s were being
    /// sent to the viewer (its audio and the layers it is forwarded now).
    pub fn observe(&mut self, previous: u64, estimate: u64, sent: u64, now: Instant) {
        self.expire(now);
        if estimate >= previous {
            return;
        }
        if self.ends.is_some() {
            self.ends = Some(now + FALL_ENDS);
            return;
        }
        if estimate > scale(previous, 100 - FALL_PERCENT, 100) {
            return;
        }
        self.ends = Some(now + FALL_ENDS);
        if sent > 0 && estimate > sent {
            self.cap = Some(scale(sent, estimate, previous));
        }
    }

    /// The estimate the allocation takes: `estimate`, within the cap of a fall.
    pub fn apply(&mut self, estimate: u64, now: Instant) -> u64 {
        self.expire(now);
        self.cap.map_or(estimate, |cap| cap.min(estimate))
    }

    /// Whether a cap holds the allocation below the estimate: probing for more (padding up to
    /// the next layer) would only add to what the path cannot carry.
    pub fn is_capped(&self, estimate: u64) -> bool {
        self.cap.is_some_and(|cap| cap < estimate)
    }

    fn expire(&mut self, now: Instant) {
        if self.ends.is_some_and(|ends| now >= ends) {
            *self = Fall::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: u64 = 1_000_000;
    const K: u64 = 1_000;

    #[test]
    fn the_first_step_down_of_an_estimate_above_what_is_sent_caps_at_what_is_sent_less_its_share() {
        let t0 = Instant::now();
        let mut fall = Fall::default();
        // Sending 1.6 Mbit/s under an estimate of 2.5: it steps down 8 %.
        fall.observe(2_500 * K, 2_300 * K, 1_600 * K, t0);
        assert_eq!(fall.apply(2_300 * K, t0), 1_472 * K);
        assert!(fall.is_capped(2_300 * K));
        // Later steps of the same fall leave the cap alone, although less is sent by then.
        let t1 = t0 + Duration::from_millis(500);
        fall.observe(2_300 * K, 2_000 * K, 600 * K, t1);
        assert_eq!(fall.apply(2_000 * K, t1), 1_472 * K);
        // Below the cap, the estimate decides.
        fall.observe(2_000 * K, 900 * K, 600 * K, t1);
        assert_eq!(fall.apply(900 * K, t1), 900 * K);
        assert!(!fall.is_capped(900 * K));
    }

    #[test]
    fn a_fall_ends_when_the_estimate_has_not_stepped_down_for_a_while() {
        let t0 = Instant::now();
        let mut fall = Fall::default();
        fall.observe(2 * M, 1_800 * K, M, t0);
        assert_eq!(fall.apply(1_800 * K, t0), 900 * K);
        // A step down keeps it going; a step up does not.
        let t1 = t0 + FALL_ENDS - Duration::from_millis(1);
        fall.observe(1_800 * K, 1_790 * K, 500 * K, t1);
        fall.observe(
            1_790 * K,
            1_900 * K,
            500 * K,
            t1 + Duration::from_millis(10),
        );
        assert_eq!(fall.apply(1_900 * K, t1 + FALL_ENDS / 2), 900 * K);
        assert_eq!(fall.apply(1_900 * K, t1 + FALL_ENDS), 1_900 * K);
        // Over: the next step down is news again, against what is sent then.
        let t2 = t1 + FALL_ENDS * 2;
        fall.observe(1_900 * K, 1_700 * K, 500 * K, t2);
        assert_eq!(fall.apply(1_700 * K, t2), scale(500 * K, 1_700, 1_900));
    }

    #[test]
    fn a_wobble_or_a_fall_that_already_stands_below_what_is_sent_sets_no_cap() {
        let t0 = Instant::now();
        let mut fall = Fall::default();
        // 2 %: a wobble.
        fall.observe(2_500 * K, 2_450 * K, 1_600 * K, t0);
        assert_eq!(fall.apply(2_450 * K, t0), 2_450 * K);
        // Falls below what is sent: the estimate says it all.
        let mut fall = Fall::default();
        fall.observe(575 * K, 172 * K, 500 * K, t0);
        assert_eq!(fall.apply(172 * K, t0), 172 * K);
        // Nothing sent: nothing to learn from.
        let mut fall = Fall::default();
        fall.observe(2 * M, M, 0, t0);
        assert_eq!(fall.apply(M, t0), M);
    }

    #[test]
    fn a_fall_never_panics_on_any_input() {
        let t0 = Instant::now();
        let values = [
            0,
            1,
            2,
            99,
            100,
            1_000,
            150 * K,
            2_500 * K,
            u64::MAX / 2,
            u64::MAX,
        ];
        let mut fall = Fall::default();
        let mut at = t0;
        for &previous in &values {
            for &estimate in &values {
                for &sent in &values {
                    fall.observe(previous, estimate, sent, at);
                    let applied = fall.apply(estimate, at);
                    assert!(applied <= estimate);
                    at += Duration::from_millis(300);
                }
            }
        }
    }
}
