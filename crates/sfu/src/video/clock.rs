//! When a video packet was captured, by its sender's reports: each simulcast layer is its own
//! RTP stream with its own timestamps, and its sender reports tie them to one wall clock. At
//! a switch of layer, the viewer's timestamps then move on by the capture time between the
//! last picture sent and the new one (as mediasoup does), rather than by when the packets
//! happened to arrive.

use std::time::{SystemTime, UNIX_EPOCH};

/// The most a switch may move the timestamps on by sender reports; beyond it the reports are
/// not believed (a restarted encoder, a bad clock).
const MAX_GAP_MICROS: i128 = 5_000_000;

/// One stream's latest sender report: an RTP timestamp and the wall-clock time it stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderClock {
    /// The report's NTP time, in microseconds since the Unix epoch.
    pub micros: u64,
    pub rtp: u32,
}

impl SenderClock {
    pub fn new(ntp: SystemTime, rtp: u32) -> Option<SenderClock> {
        let micros = ntp.duration_since(UNIX_EPOCH).ok()?.as_micros();
        Some(SenderClock {
            micros: u64::try_from(micros).ok()?,
            rtp,
        })
    }

    /// How many ticks after the report the packet of timestamp `ts` was captured.
    fn since_report(&self, ts: u32) -> i128 {
        i128::from(ts.wrapping_sub(self.rtp) as i32)
    }
}

/// How many ticks of `clock_rate` after the packet `last` (timestamp, its stream's clock) the
/// packet `next` (of another stream) was captured. `None` when that is not known or not
/// believable (not after, or too far).
pub fn capture_gap(
    last: (u32, SenderClock),
    next: (u32, SenderClock),
    clock_rate: u32,
) -> Option<u32> {
    let rate = i128::from(clock_rate);
    // In ticks throughout, so that reports of one instant give an exact answer.
    let reports = i128::from(next.1.micros) - i128::from(last.1.micros);
    let gap =
        next.1.since_report(next.0) - last.1.since_report(last.0) + reports * rate / 1_000_000;
    if gap <= 0 || gap * 1_000_000 > MAX_GAP_MICROS * rate {
        return None;
    }
    u32::try_from(gap).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_gap_is_the_capture_time_between_two_streams_packets() {
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        // Two layers, their timestamps unrelated, reported at the same instant.
        let low = SenderClock::new(t, 1_000).unwrap();
        let high = SenderClock::new(t, 4_000_000_000).unwrap();
        // The low layer's packet 20 ms after the report, the high one's 40 ms after: 20 ms.
        let gap = capture_gap((1_000 + 1800, low), (4_000_000_000 + 3600, high), 90_000);
        assert_eq!(gap, Some(1800));
        // Across the high layer's wrap.
        let wrapping = SenderClock::new(t, u32::MAX - 100).unwrap();
        let gap = capture_gap((1_000, low), (3500, wrapping), 90_000);
        assert_eq!(gap, Some(3601));
        // The same picture, an earlier one, or one far off: not known.
        assert_eq!(
            capture_gap((1_000, low), (4_000_000_000, high), 90_000),
            None
        );
        assert_eq!(
            capture_gap((5_000, low), (4_000_000_000, high), 90_000),
            None
        );
        let late = SenderClock::new(t + Duration::from_secs(60), 0).unwrap();
        assert_eq!(capture_gap((1_000, low), (0, late), 90_000), None);
    }

    #[test]
    fn any_reports_never_panic() {
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let a = SenderClock {
                micros: next(),
                rtp: next() as u32,
            };
            let b = SenderClock {
                micros: next(),
                rtp: next() as u32,
            };
            let rate = (next() % 200_000) as u32;
            if let Some(gap) = capture_gap((next() as u32, a), (next() as u32, b), rate) {
                assert!(gap > 0);
            }
        }
        assert!(SenderClock::new(UNIX_EPOCH - Duration::from_secs(1), 0).is_none());
    }
}
