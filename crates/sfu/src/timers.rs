//! When each participant's session next wants to be woken: one deadline per participant in an
//! ordered set, so the earliest is found at once and no session is ticked before its time.

use std::collections::BTreeSet;
use std::time::Instant;

use crate::participants::ParticipantKey;

#[derive(Debug, Default)]
pub struct Timers {
    queue: BTreeSet<(Instant, ParticipantKey)>,
    /// Each participant's deadline in `queue`, by key (keys are small and dense).
    deadline: Vec<Option<Instant>>,
}

impl Timers {
    /// Wakes `key` at `at` (instead of any earlier deadline).
    pub fn schedule(&mut self, key: ParticipantKey, at: Instant) {
        if self.deadline.len() <= key.0 {
            self.deadline.resize(key.0 + 1, None);
        }
        let slot = &mut self.deadline[key.0];
        if *slot == Some(at) {
            return;
        }
        if let Some(old) = slot.replace(at) {
            self.queue.remove(&(old, key));
        }
        self.queue.insert((at, key));
    }

    pub fn cancel(&mut self, key: ParticipantKey) {
        if let Some(old) = self.deadline.get_mut(key.0).and_then(Option::take) {
            self.queue.remove(&(old, key));
        }
    }

    /// The next participant whose deadline is not after `now`, taken off the queue.
    pub fn pop_due(&mut self, now: Instant) -> Option<ParticipantKey> {
        let &(at, key) = self.queue.first()?;
        if at > now {
            return None;
        }
        self.queue.pop_first();
        if let Some(slot) = self.deadline.get_mut(key.0) {
            *slot = None;
        }
        Some(key)
    }

    pub fn next(&self) -> Option<Instant> {
        self.queue.first().map(|(at, _)| *at)
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn shrink(&mut self) {
        while self.deadline.last() == Some(&None) {
            self.deadline.pop();
        }
        self.deadline.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_earliest_deadline_comes_first_and_each_participant_has_one() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let (a, b) = (ParticipantKey(0), ParticipantKey(5));
        let mut t = Timers::default();
        t.schedule(a, t0 + ms(30));
        t.schedule(b, t0 + ms(10));
        t.schedule(a, t0 + ms(20));
        assert_eq!((t.len(), t.next()), (2, Some(t0 + ms(10))));
        assert_eq!(t.pop_due(t0), None);
        assert_eq!(t.pop_due(t0 + ms(25)), Some(b));
        assert_eq!(t.pop_due(t0 + ms(25)), Some(a));
        assert_eq!(t.pop_due(t0 + ms(25)), None);
        t.schedule(b, t0);
        t.cancel(b);
        t.cancel(ParticipantKey(99));
        assert_eq!(t.len(), 0);
        t.shrink();
        assert!(t.deadline.is_empty());
    }
}
