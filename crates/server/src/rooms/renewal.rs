//! When each member of a room gets fresh STUN/TURN credentials: every member on the same
//! period, so the queue in join order is the queue in time order.

use std::collections::VecDeque;
use std::time::Duration;

use free4chat_signal::MemberId;
use tokio::time::Instant;

/// The room's members by when their credentials are next renewed, earliest first. Holds one
/// entry per member in the room: a member that leaves is taken out.
pub(super) struct Renewals {
    every: Option<Duration>,
    queue: VecDeque<(Instant, MemberId)>,
}

impl Renewals {
    /// Renews every `every`; never with `None` (no credentials are issued).
    pub(super) fn new(every: Option<Duration>) -> Renewals {
        Renewals {
            every: every.filter(|e| !e.is_zero()),
            queue: VecDeque::new(),
        }
    }

    /// A member joined at `now`, with credentials fresh then.
    pub(super) fn admit(&mut self, member: MemberId, now: Instant) {
        if let Some(every) = self.every {
            self.queue.push_back((now + every, member));
        }
    }

    /// A member left.
    pub(super) fn forget(&mut self, member: MemberId) {
        self.queue.retain(|(_, m)| *m != member);
    }

    /// When the next renewal is due.
    pub(super) fn due(&self) -> Option<Instant> {
        self.queue.front().map(|(at, _)| *at)
    }

    /// The members due at `now`, each queued again for its next renewal.
    pub(super) fn take_due(&mut self, now: Instant) -> Vec<MemberId> {
        let Some(every) = self.every else {
            return Vec::new();
        };
        let mut due = Vec::new();
        while let Some(&(at, member)) = self.queue.front() {
            if at > now {
                break;
            }
            self.queue.pop_front();
            due.push(member);
        }
        for &member in &due {
            self.queue.push_back((now + every, member));
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_come_due_in_turn_every_period_until_they_leave() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut r = Renewals::new(Some(s(300)));
        r.admit(MemberId(1), t0);
        r.admit(MemberId(2), t0 + s(10));
        r.admit(MemberId(3), t0 + s(20));
        assert_eq!(r.due(), Some(t0 + s(300)));
        assert!(r.take_due(t0 + s(299)).is_empty());
        assert_eq!(r.take_due(t0 + s(310)), [MemberId(1), MemberId(2)]);
        r.forget(MemberId(3));
        assert_eq!(r.due(), Some(t0 + s(610)));
        assert_eq!(r.take_due(t0 + s(610)), [MemberId(1), MemberId(2)]);
        r.forget(MemberId(1));
        r.forget(MemberId(2));
        assert_eq!(r.due(), None);

        let mut never = Renewals::new(None);
        never.admit(MemberId(1), t0);
        assert_eq!(never.due(), None);
        assert!(never.take_due(t0 + s(100_000)).is_empty());
    }
}
