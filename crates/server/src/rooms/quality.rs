//! A room's `quality` messages: each member's level as the server sees it, sent to everyone
//! when it changes (one batched message per round, a round every few seconds at most, from
//! `crate::quality`), and in full to a member who joins.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use free4chat_signal::{MemberId, MemberQuality, Quality};

/// A member whose media has not connected this long after a round first saw them is told
/// as `unconnected`, even with no media session at all (they never offered).
pub(super) const UNCONNECTED_AFTER: Duration = Duration::from_secs(5);

/// The levels the room's members were last told.
#[derive(Default)]
pub(super) struct QualityOut {
    told: HashMap<MemberId, Quality>,
    /// When a round first saw each member of the room.
    seen: HashMap<MemberId, Instant>,
}

impl QualityOut {
    /// Takes a round's levels (from the media workers) and the room's members with whether
    /// their media has connected; returns the entries that changed. Members who left are
    /// forgotten, so the maps never outgrow the room.
    pub fn changes(
        &mut self,
        levels: &[(MemberId, Quality)],
        members: impl Iterator<Item = (MemberId, bool)>,
        now: Instant,
    ) -> Vec<MemberQuality> {
        let levels: HashMap<MemberId, Quality> = levels.iter().copied().collect();
        let mut seen = HashMap::with_capacity(self.seen.len());
        let mut told = HashMap::with_capacity(self.told.len());
        let mut changed = Vec::new();
        for (id, connected) in members {
            let since = self.seen.get(&id).copied().unwrap_or(now);
            seen.insert(id, since);
            let level = levels.get(&id).copied().or_else(|| {
                (!connected && now.saturating_duration_since(since) >= UNCONNECTED_AFTER)
                    .then_some(Quality::Unconnected)
            });
            let before = self.told.get(&id).copied();
            match level {
                Some(quality) => {
                    told.insert(id, quality);
                    if before != Some(quality) {
                        changed.push(MemberQuality { id, quality });
                    }
                }
                None => {
                    if let Some(b) = before {
                        told.insert(id, b);
                    }
                }
            }
        }
        self.seen = seen;
        self.told = told;
        changed
    }

    /// Every level told so far, for a member who just joined.
    pub fn all(&self) -> Vec<MemberQuality> {
        let mut all: Vec<MemberQuality> = self
            .told
            .iter()
            .map(|(&id, &quality)| MemberQuality { id, quality })
            .collect();
        all.sort_by_key(|m| m.id);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_changed_levels_of_members_still_here_are_sent() {
        let mut out = QualityOut::default();
        let now = Instant::now();
        let (a, b, gone) = (MemberId(1), MemberId(2), MemberId(3));
        let both = || [(a, true), (b, true)].into_iter();
        let first = out.changes(
            &[
                (a, Quality::Good),
                (b, Quality::Poor),
                (gone, Quality::Good),
            ],
            both(),
            now,
        );
        assert_eq!(first.len(), 2, "{first:?}");
        let second = out.changes(&[(a, Quality::Good), (b, Quality::Fair)], both(), now);
        assert_eq!(
            second,
            vec![MemberQuality {
                id: b,
                quality: Quality::Fair
            }]
        );
        assert_eq!(out.all().len(), 2);
        out.changes(&[], [(a, true)].into_iter(), now);
        assert_eq!(out.all().len(), 1, "a member who left is forgotten");
    }

    #[test]
    fn a_member_with_no_media_at_all_is_unconnected_after_a_while() {
        let mut out = QualityOut::default();
        let t0 = Instant::now();
        let c = MemberId(7);
        assert!(out.changes(&[], [(c, false)].into_iter(), t0).is_empty());
        let later = out.changes(&[], [(c, false)].into_iter(), t0 + UNCONNECTED_AFTER);
        assert_eq!(
            later,
            vec![MemberQuality {
                id: c,
                quality: Quality::Unconnected
            }]
        );
    }
}
