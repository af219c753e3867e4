//! The sequence numbers and timestamps of one outgoing stream: the source's, shifted by offsets
//! fixed when the down-track starts, so a gap in the source shows as the same gap, and a new
//! source SSRC continues where the old one stopped. A switch of simulcast layer is a new
//! source (its own SSRC); a source that comes back after a pause is made one too
//! ([`Rewriter::rebase`]). Only packets that are written pass here: those of layers not
//! forwarded never move the offsets.

use std::time::Instant;

use str0m::rtp::{SeqNo, Ssrc};

/// The sequence numbers and timestamps of one outgoing stream.
#[derive(Debug, Default)]
pub struct Rewriter {
    state: Option<Offsets>,
}

#[derive(Debug)]
struct Offsets {
    /// The source SSRC the offsets apply to.
    ssrc: Ssrc,
    /// The next packet starts over as a new source, even of the same SSRC.
    rebase: bool,
    /// How far after the last packet written the next new source's first packet belongs, in
    /// ticks, when known (sender reports); else the wall-clock time that passed.
    gap: Option<u32>,
    /// The first source sequence number under these offsets; older packets are dropped.
    base: u64,
    seq: u64,
    ts: u32,
    /// The highest outgoing sequence number so far, its timestamp, and when it was written.
    last_seq: u64,
    last_ts: u32,
    last_at: Instant,
}

impl Rewriter {
    /// The next packet continues right after the last one written, as the first of a new
    /// source would (a layer switch, or a track forwarded again after a pause), its timestamp
    /// `gap` ticks on if known, else by the wall-clock time that passed.
    pub fn rebase(&mut self, gap: Option<u32>) {
        if let Some(o) = &mut self.state {
            o.rebase = true;
            o.gap = gap;
        }
    }

    /// The outgoing sequence number and timestamp for a source packet, or `None` to drop it
    /// (older than the start of the subscription or of the current source SSRC).
    /// `clock_rate` (Hz) spaces the timestamps across a change of source SSRC.
    pub fn map(
        &mut self,
        ssrc: Ssrc,
        seq: SeqNo,
        ts: u32,
        clock_rate: u32,
        now: Instant,
    ) -> Option<(SeqNo, u32)> {
        let seq = *seq;
        let o = match &mut self.state {
            Some(o) if o.ssrc == ssrc && !o.rebase => o,
            Some(o) => {
                // A new source SSRC: continue right after what was sent, the timestamp moved
                // on by the time that passed.
                let elapsed = now.saturating_duration_since(o.last_at);
                let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
                let ticks = (micros.saturating_mul(clock_rate as u64) / 1_000_000).max(1);
                let ticks = o.gap.take().map_or(ticks, u64::from);
                let next_ts = o.last_ts.wrapping_add(ticks as u32);
                let next_seq = o.last_seq.wrapping_add(1);
                o.ssrc = ssrc;
                o.rebase = false;
                o.base = seq;
                o.seq = next_seq.wrapping_sub(seq);
                o.ts = next_ts.wrapping_sub(ts);
                o
            }
            None => self.state.insert(Offsets {
                ssrc,
                rebase: false,
                gap: None,
                base: seq,
                // Start below 2^16 (a rollover count of 0), as a receiver expects of a new
                // stream, at the source's own 16-bit number.
                seq: (seq & 0xffff).wrapping_sub(seq),
                ts: 0,
                last_seq: seq & 0xffff,
                last_ts: ts,
                last_at: now,
            }),
        };
        if seq < o.base {
            return None;
        }
        let out_seq = seq.wrapping_add(o.seq);
        let out_ts = ts.wrapping_add(o.ts);
        if out_seq >= o.last_seq {
            o.last_seq = out_seq;
            o.last_ts = out_ts;
            o.last_at = now;
        }
        Some((out_seq.into(), out_ts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn sequence_numbers_continue_across_a_new_source_ssrc() {
        let now = Instant::now();
        let mut w = Rewriter::default();
        let a = Ssrc::from(1);
        // A long-running source (rollover count 2) starts a subscription below 2^16.
        let first = (2u64 << 16) + 100;
        let (s, t) = w.map(a, first.into(), 5000, 48_000, now).unwrap();
        assert_eq!((*s, t), (100, 5000));
        // A gap stays a gap.
        let (s, _) = w
            .map(a, (first + 3).into(), 5000 + 3 * 960, 48_000, now)
            .unwrap();
        assert_eq!(*s, 103);
        // Older than the start: dropped.
        assert!(w.map(a, (first - 1).into(), 4040, 48_000, now).is_none());
        // A new SSRC with unrelated numbers continues at 104, 20 ms later in time.
        let later = now + Duration::from_millis(20);
        let (s, t) = w.map(Ssrc::from(2), 7.into(), 1, 48_000, later).unwrap();
        assert_eq!((*s, t), (104, 5000 + 3 * 960 + 960));
        let (s, t) = w.map(Ssrc::from(2), 8.into(), 961, 48_000, later).unwrap();
        assert_eq!((*s, t), (105, 5000 + 5 * 960));
        // The same source after a pause, rebased: right after, 100 ms on.
        w.rebase(None);
        let resumed = later + Duration::from_millis(100);
        let (s, t) = w
            .map(Ssrc::from(2), 500.into(), 99, 48_000, resumed)
            .unwrap();
        assert_eq!((*s, t), (106, 5000 + 5 * 960 + 4800));
        assert!(
            w.map(Ssrc::from(2), 499.into(), 0, 48_000, resumed)
                .is_none()
        );
        // A new source whose capture time is known: that far on, whenever it arrives.
        w.rebase(Some(960));
        let (s, t) = w.map(Ssrc::from(3), 9.into(), 7, 48_000, resumed).unwrap();
        assert_eq!((*s, t), (107, 5000 + 5 * 960 + 4800 + 960));
    }
}
