//! What arrived on each stream (m-line) the server sends, in the stream's own order: runs of
//! packets from one sender whose RTP sequence number and test sequence number advance
//! together. On an audio slot, whose speaker changes while its RTP numbering goes on, the runs
//! say who was on the slot when, so that a receiver can tell a packet lost from one that was
//! never sent to it.

/// The most runs kept per stream: far more changes of speaker than any load makes; packets
/// past it are counted in [`StreamLog::unrecorded`].
pub const MAX_RUNS: usize = 4096;

/// The prefix of an audio slot's msid stream id: `slot-0`, `slot-1`…
const SLOT_PREFIX: &str = "slot-";

/// The index of an audio slot from its msid stream id (`slot-2` → 2); none for any other
/// stream id.
pub fn slot_index(stream_id: &str) -> Option<usize> {
    let digits = stream_id.strip_prefix(SLOT_PREFIX)?;
    // Only plain decimal digits: `parse` would also take a sign.
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Packets from one sender, one after another on one stream, under one mapping from the
/// sender's sequence numbers to the stream's RTP sequence numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// The sender's id (from the test payload).
    pub sender: u64,
    /// The stream's (extended) RTP sequence number minus the sender's sequence number, the
    /// same for every packet of the run.
    pub offset: u64,
    /// The lowest and highest sender sequence numbers received in the run.
    pub first_seq: u32,
    pub last_seq: u32,
    /// Packets received in the run.
    pub packets: u64,
    /// The quietest audio level (dBov) the packets carried; none if none carried one.
    pub quietest_level: Option<i8>,
}

impl Run {
    /// The stream's RTP sequence number of the run's sender sequence number `seq`.
    pub fn rtp_of(&self, seq: u32) -> u64 {
        u64::from(seq).wrapping_add(self.offset)
    }
}

/// One stream the server sends: its msid stream id and what arrived on it.
#[derive(Debug, Clone, Default)]
pub struct StreamLog {
    /// The msid stream id the server gave the m-line (`slot-0`, or `<member>-<track>`).
    pub stream: String,
    /// Test packets received.
    pub packets: u64,
    /// Media packets that were not test packets.
    pub foreign: u64,
    /// The runs, in the order they arrived (the stream's RTP order: the receiver never
    /// delivers an older packet after a newer one).
    pub runs: Vec<Run>,
    /// Test packets not recorded in a run because the stream had [`MAX_RUNS`] already.
    pub unrecorded: u64,
}

impl StreamLog {
    pub fn new(stream: String) -> StreamLog {
        StreamLog {
            stream,
            ..StreamLog::default()
        }
    }

    /// The audio slot this stream is, if it is one.
    pub fn slot(&self) -> Option<usize> {
        slot_index(&self.stream)
    }

    /// A test packet from `sender` with sequence number `seq`, arriving as the stream's RTP
    /// packet `rtp`, at `level` dBov.
    pub fn record(&mut self, rtp: u64, sender: u64, seq: u32, level: Option<i8>) {
        self.packets += 1;
        let offset = rtp.wrapping_sub(u64::from(seq));
        if let Some(run) = self.runs.last_mut()
            && run.sender == sender
            && run.offset == offset
        {
            run.first_seq = run.first_seq.min(seq);
            run.last_seq = run.last_seq.max(seq);
            run.packets += 1;
            run.quietest_level = quieter(run.quietest_level, level);
            return;
        }
        if self.runs.len() >= MAX_RUNS {
            self.unrecorded += 1;
            return;
        }
        self.runs.push(Run {
            sender,
            offset,
            first_seq: seq,
            last_seq: seq,
            packets: 1,
            quietest_level: level,
        });
    }
}

/// The quieter of two audio levels (dBov: lower is quieter), either of which may be unknown.
pub fn quieter(a: Option<i8>, b: Option<i8>) -> Option<i8> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_indices_come_only_from_slot_stream_ids() {
        assert_eq!(slot_index("slot-0"), Some(0));
        assert_eq!(slot_index("slot-12"), Some(12));
        for other in [
            "",
            "slot-",
            "slot--1",
            "slot-+1",
            "slot-1a",
            "Slot-1",
            "7-0",
            "slot-99999999999999999999999",
            "slot-١",
        ] {
            assert_eq!(slot_index(other), None, "{other:?}");
        }
    }

    #[test]
    fn any_stream_id_is_parsed_without_panicking() {
        let mut x = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let alphabet: Vec<char> = "slot-0123456789+ é\u{0}".chars().collect();
        for _ in 0..20_000 {
            let len = (next() % 24) as usize;
            let id: String = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            if let Some(i) = slot_index(&id) {
                assert_eq!(id, format!("slot-{i}"), "only canonical slot ids parse");
            }
        }
    }

    #[test]
    fn a_change_of_speaker_starts_a_run_and_a_steady_speaker_extends_it() {
        let mut log = StreamLog::new("slot-1".into());
        assert_eq!(log.slot(), Some(1));
        // Speaker 7 from its sequence number 100 at RTP 5000; one packet lost (102).
        for (rtp, seq) in [(5000, 100), (5001, 101), (5003, 103)] {
            log.record(rtp, 7, seq, Some(-20));
        }
        // Speaker 9 takes the slot; the slot's numbering goes on.
        log.record(5004, 9, 40, Some(-25));
        log.record(5005, 9, 41, None);
        assert_eq!(log.packets, 5);
        assert_eq!(log.runs.len(), 2);
        let first = &log.runs[0];
        assert_eq!(
            (first.sender, first.first_seq, first.last_seq),
            (7, 100, 103)
        );
        assert_eq!((first.packets, first.quietest_level), (3, Some(-20)));
        assert_eq!(first.rtp_of(103), 5003);
        let second = &log.runs[1];
        assert_eq!(
            (second.sender, second.first_seq, second.last_seq),
            (9, 40, 41)
        );
        assert_eq!(second.quietest_level, Some(-25));
        assert_eq!(second.rtp_of(40), 5004);
    }

    #[test]
    fn runs_are_bounded_and_what_does_not_fit_is_counted() {
        let mut log = StreamLog::new("slot-0".into());
        for i in 0..(MAX_RUNS as u64 + 10) {
            // A different sender every packet: a run each.
            log.record(i, i, 0, None);
        }
        assert_eq!(log.runs.len(), MAX_RUNS);
        assert_eq!(log.unrecorded, 10);
        assert_eq!(log.packets, MAX_RUNS as u64 + 10);
    }

    #[test]
    fn extreme_numbers_wrap_instead_of_panicking() {
        let mut log = StreamLog::new("x".into());
        log.record(0, 1, u32::MAX, Some(i8::MIN));
        log.record(1, 1, 0, Some(i8::MAX));
        log.record(u64::MAX, 1, u32::MAX, None);
        assert_eq!(log.slot(), None);
        assert_eq!(log.packets, 3);
        assert!(log.runs.iter().all(|r| r.first_seq <= r.last_seq));
    }
}
