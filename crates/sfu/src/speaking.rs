//! Who is speaking, judged from the audio-level RTP header extension (RFC 6464).
//!
//! A member starts speaking after a few loud packets in quick succession and stops after a
//! stretch without any; the hysteresis keeps the indicator from flickering between words and
//! bounds the number of events one member can cause.

use std::time::{Duration, Instant};

/// Louder than this (in dBov, 0 is the loudest) counts as voice.
const LOUD_DBOV: i8 = -45;
/// Loud packets needed, each within `RUN_GAP` of the previous, to start speaking.
const START_RUN: u32 = 3;
const RUN_GAP: Duration = Duration::from_millis(200);
/// Silence that ends speaking.
const STOP_AFTER: Duration = Duration::from_millis(800);

#[derive(Debug, Default)]
pub struct SpeakingDetector {
    speaking: bool,
    run: u32,
    last_loud: Option<Instant>,
}

impl SpeakingDetector {
    pub fn is_speaking(&self) -> bool {
        self.speaking
    }

    /// Feeds one packet's audio level (`0` loudest, `-127` silence). Returns the new state when
    /// it changed.
    pub fn observe(&mut self, now: Instant, level_dbov: i8) -> Option<bool> {
        if level_dbov >= LOUD_DBOV {
            let continues = self
                .last_loud
                .is_some_and(|t| now.saturating_duration_since(t) <= RUN_GAP);
            self.run = if continues { self.run + 1 } else { 1 };
            self.last_loud = Some(now);
            if !self.speaking && self.run >= START_RUN {
                self.speaking = true;
                return Some(true);
            }
            None
        } else {
            self.tick(now)
        }
    }

    /// Ends speaking after a silence; call periodically, as packets may stop altogether (DTX).
    pub fn tick(&mut self, now: Instant) -> Option<bool> {
        let silent = self
            .last_loud
            .is_none_or(|t| now.saturating_duration_since(t) > STOP_AFTER);
        if self.speaking && silent {
            self.speaking = false;
            self.run = 0;
            return Some(false);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS20: Duration = Duration::from_millis(20);

    #[test]
    fn starts_after_a_run_of_loud_packets_and_stops_after_silence() {
        let t0 = Instant::now();
        let mut d = SpeakingDetector::default();
        assert_eq!(d.observe(t0, -10), None);
        assert_eq!(d.observe(t0 + MS20, -10), None);
        assert_eq!(d.observe(t0 + MS20 * 2, -10), Some(true));
        assert!(d.is_speaking());
        // Quiet packets shortly after do not stop it...
        assert_eq!(d.observe(t0 + MS20 * 3, -127), None);
        assert_eq!(d.tick(t0 + Duration::from_millis(500)), None);
        // ...a long silence does, once.
        assert_eq!(d.tick(t0 + Duration::from_millis(900)), Some(false));
        assert_eq!(d.tick(t0 + Duration::from_millis(1900)), None);
    }

    #[test]
    fn quiet_or_sparse_packets_never_start_speaking() {
        let t0 = Instant::now();
        let mut d = SpeakingDetector::default();
        for i in 0..50 {
            assert_eq!(d.observe(t0 + MS20 * i, -80), None);
        }
        // Loud packets too far apart (a click every half second) are not speech.
        for i in 0..10 {
            assert_eq!(d.observe(t0 + Duration::from_millis(500) * i, -5), None);
        }
        assert!(!d.is_speaking());
    }
}
