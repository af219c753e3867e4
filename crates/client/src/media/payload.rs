//! The test payload each audio packet carries (sender, sequence number, send time), and
//! what a receiver makes of those from one sender.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Marks our test payloads.
pub(super) const MAGIC: &[u8; 4] = b"F4CT";
/// The size of a test payload: about one 20 ms Opus frame at 32 kbit/s.
pub const PAYLOAD_LEN: usize = 80;
/// One audio packet every 20 ms.
pub const PACKET_INTERVAL: Duration = Duration::from_millis(20);

/// Packets received from one sender.
#[derive(Debug, Default, Clone)]
pub struct Received {
    pub packets: u64,
    /// The highest sequence number seen, +1 (0 when none).
    pub seq_end: u32,
    /// One-way latencies from sender to receiver, in microseconds (the first 100,000).
    pub latencies_us: Vec<u64>,
    /// Distinct sequence numbers received (counted for the first million).
    pub distinct: u64,
    seen: Vec<u64>,
}

impl Received {
    /// Sequence number `seq` arrived.
    pub fn record(&mut self, seq: u32) {
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        if word >= 1 << 14 {
            return;
        }
        if self.seen.len() <= word {
            self.seen.resize(word + 1, 0);
        }
        if self.seen[word] & (1 << bit) == 0 {
            self.seen[word] |= 1 << bit;
            self.distinct += 1;
        }
    }

    /// The lowest sequence number received.
    pub fn first(&self) -> Option<u32> {
        let (word, w) = self.seen.iter().enumerate().find(|(_, w)| **w != 0)?;
        Some(word as u32 * 64 + w.trailing_zeros())
    }

    /// Whether sequence number `seq` arrived.
    pub fn contains(&self, seq: u32) -> bool {
        self.seen
            .get((seq / 64) as usize)
            .is_some_and(|w| w & (1 << (seq % 64)) != 0)
    }

    /// Sequence numbers from `start` up to (not including) `end` that never arrived.
    pub fn missing_between(&self, start: u32, end: u32) -> u64 {
        (start..end).filter(|s| !self.contains(*s)).count() as u64
    }
}

/// (sender, sequence, send time in µs since the Unix epoch) of a test payload.
pub fn parse_payload(data: &[u8]) -> Option<(u64, u32, u64)> {
    if data.len() < 24 || &data[..4] != MAGIC {
        return None;
    }
    let sender = u64::from_be_bytes(data[4..12].try_into().ok()?);
    let seq = u32::from_be_bytes(data[12..16].try_into().ok()?);
    let sent = u64::from_be_bytes(data[16..24].try_into().ok()?);
    Some((sender, seq, sent))
}

pub(super) fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}
