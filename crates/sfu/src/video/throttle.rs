//! Keyframe requests to one layer of a publisher's track: at most one per [`KEYFRAME_THROTTLE`],
//! however many viewers ask (each viewer's PLI or FIR, each layer switch, each gap), so that a
//! room of viewers cannot make a camera send nothing but keyframes. A request that comes within
//! the period is not lost: it is sent when the period ends, unless a keyframe of the layer
//! started after it was made (that keyframe answers it), as mediasoup and LiveKit delay rather
//! than drop.

use std::time::{Duration, Instant};

/// The least time between two keyframe requests to one layer of a publisher's track.
pub const KEYFRAME_THROTTLE: Duration = Duration::from_millis(500);

/// The keyframe requests of one layer.
#[derive(Debug, Default, Clone)]
pub struct KeyframeThrottle {
    /// When the last request was sent to the publisher.
    last_sent: Option<Instant>,
    /// A request came within the period and no keyframe since.
    waiting: bool,
}

impl KeyframeThrottle {
    /// A keyframe is wanted at `now`: whether to ask the publisher now (the time is noted),
    /// else it is remembered for when the period ends.
    pub fn ask(&mut self, now: Instant) -> bool {
        let throttled = self
            .last_sent
            .is_some_and(|t| now.saturating_duration_since(t) < KEYFRAME_THROTTLE);
        if throttled {
            self.waiting = true;
            return false;
        }
        self.last_sent = Some(now);
        self.waiting = false;
        true
    }

    /// A keyframe of the layer started: it answers every request made so far.
    pub fn on_keyframe(&mut self) {
        self.waiting = false;
    }

    /// Whether a remembered request is due at `now` (then [`KeyframeThrottle::ask`] sends it).
    pub fn due(&self, now: Instant) -> bool {
        self.waiting
            && self
                .last_sent
                .is_none_or(|t| now.saturating_duration_since(t) >= KEYFRAME_THROTTLE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_request_per_period_and_one_more_at_its_end_for_those_that_waited() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut k = KeyframeThrottle::default();
        assert!(!k.due(t0));
        assert!(k.ask(t0));
        assert!(!k.ask(ms(10)) && !k.ask(ms(200)) && !k.ask(ms(499)));
        assert!(!k.due(ms(499)));
        assert!(k.due(ms(500)));
        assert!(k.ask(ms(500)), "the waiting requests, once");
        assert!(!k.due(ms(2000)), "nothing more waits");
        assert!(k.ask(ms(2000)));
    }

    #[test]
    fn a_keyframe_after_a_request_answers_it() {
        let t0 = Instant::now();
        let mut k = KeyframeThrottle::default();
        assert!(k.ask(t0));
        assert!(!k.ask(t0 + Duration::from_millis(5)));
        k.on_keyframe();
        assert!(!k.due(t0 + Duration::from_secs(1)));
    }
}
