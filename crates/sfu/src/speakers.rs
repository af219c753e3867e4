//! Who a room's listeners hear on their fixed audio slots: the loudest current speakers,
//! chosen from the audio level each publisher sends (RFC 6464), with hysteresis so that a word
//! is never cut mid-sentence.
//!
//! Each audio up-track's loudness is an average of its packets' levels (in dBov): it rises at
//! once with a louder packet (a speaker is selected by their first word's first packet) and
//! falls over about 150 ms — averaged in decibels, so that a pause shows within a tenth of a
//! second — and a track whose packets stop (DTX) fades to silence. The selection holds up to `capacity` up-tracks
//! (the room's slots, plus one so that a selected speaker, who never hears themselves, still
//! has every slot filled):
//!
//! - a free place goes at once to the loudest track speaking and not selected;
//! - a full selection changes only when a speaking track is waiting and a selected one has
//!   been quiet (below speech) for [`QUIET_HOLD`], or has been quieter than the waiting one
//!   by [`OVERTAKE_DB`] for [`OVERTAKE_HOLD`] while both spoke; one change per evaluation.
//!
//! Listeners keep their speakers on the same slot for as long as they stay selected.
//! Sans-I/O and deterministic: fed with levels and time.

use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

use crate::uptrack::UpTrackKey;

/// Louder than this (in dBov, 0 is the loudest) is speech.
pub const SPEECH_DBOV: f32 = -50.0;
/// The averaging time of a track's level as it falls.
pub const ENERGY_WINDOW: Duration = Duration::from_millis(150);
/// How far a louder packet moves a track's level towards its own at once: fast, so that a
/// speaker who starts is selected by their first word's first packet.
const ATTACK: f32 = 0.7;
/// How long a selected track must have been quiet before a waiting speaker takes its place.
pub const QUIET_HOLD: Duration = Duration::from_millis(400);
/// How much louder a waiting speaker must be than a selected one, while both speak...
pub const OVERTAKE_DB: f32 = 6.0;
/// ...and for how long, to take its place.
pub const OVERTAKE_HOLD: Duration = Duration::from_millis(1500);
/// The selection is evaluated at most this often (it is also evaluated on every housekeeping).
pub const EVALUATE_EVERY: Duration = Duration::from_millis(20);
/// A track is forgotten by the selection after this long without a packet, unless selected.
const FORGET_AFTER: Duration = Duration::from_secs(10);

/// Silence, in dBov.
const SILENCE_DBOV: f32 = -127.0;

/// What the selection keeps about one audio up-track.
#[derive(Debug, Clone, Copy)]
struct Loudness {
    /// Average level in dBov.
    level: f32,
    last_packet: Instant,
    /// Since when its level has been below speech, if it is.
    quiet_since: Option<Instant>,
}

impl Loudness {
    /// The level at `now`: a track whose packets stopped fades as silence would.
    fn level_at(&self, now: Instant) -> f32 {
        let gap = now.saturating_duration_since(self.last_packet);
        if gap <= Duration::from_millis(60) {
            return self.level;
        }
        let kept = (-gap.as_secs_f32() / ENERGY_WINDOW.as_secs_f32()).exp();
        SILENCE_DBOV + (self.level - SILENCE_DBOV) * kept
    }
}

/// The speakers of one room's shard.
#[derive(Debug)]
pub struct SpeakerSelection {
    capacity: usize,
    tracks: FxHashMap<UpTrackKey, Loudness>,
    /// The selected tracks, in the order they were selected.
    selected: Vec<UpTrackKey>,
    /// A waiting speaker louder than a selected one, and since when.
    overtaking: Option<(UpTrackKey, UpTrackKey, Instant)>,
    next_evaluation: Option<Instant>,
}

impl SpeakerSelection {
    /// A selection of at most `capacity` up-tracks (0: nobody is ever selected).
    pub fn new(capacity: usize) -> SpeakerSelection {
        SpeakerSelection {
            capacity,
            tracks: FxHashMap::default(),
            selected: Vec::new(),
            overtaking: None,
            next_evaluation: None,
        }
    }

    /// The selected up-tracks, in the order they were selected.
    pub fn selected(&self) -> &[UpTrackKey] {
        &self.selected
    }

    /// One packet of `up` at `level_dbov` (`0` loudest, `-127` silence; packets without a level
    /// count as silence).
    pub fn observe(&mut self, up: UpTrackKey, level_dbov: Option<i8>, now: Instant) {
        let level = level_dbov.map_or(SILENCE_DBOV, |l| f32::from(l.clamp(-127, 0)));
        let entry = self.tracks.entry(up).or_insert(Loudness {
            level,
            last_packet: now,
            quiet_since: Some(now),
        });
        let faded = entry.level_at(now);
        let alpha = if level > faded {
            ATTACK
        } else {
            let dt = now.saturating_duration_since(entry.last_packet);
            // At least a small step per packet, so that packets arriving together still count.
            (1.0 - (-dt.as_secs_f32() / ENERGY_WINDOW.as_secs_f32()).exp()).max(0.05)
        };
        entry.level = faded + alpha * (level - faded);
        entry.last_packet = now;
    }

    /// The up-track is gone (its publisher left).
    pub fn remove(&mut self, up: UpTrackKey) {
        self.tracks.remove(&up);
        self.selected.retain(|u| *u != up);
        if self.overtaking.is_some_and(|(x, y, _)| x == up || y == up) {
            self.overtaking = None;
        }
    }

    /// Evaluates the selection if it is due (or `force`). Returns whether it changed.
    pub fn evaluate(&mut self, now: Instant, force: bool) -> bool {
        if !force && self.next_evaluation.is_some_and(|t| now < t) {
            return false;
        }
        self.next_evaluation = Some(now + EVALUATE_EVERY);
        for l in self.tracks.values_mut() {
            if l.level_at(now) >= SPEECH_DBOV {
                l.quiet_since = None;
            } else if l.quiet_since.is_none() {
                l.quiet_since = Some(now);
            }
        }
        let selected = &self.selected;
        self.tracks.retain(|up, l| {
            selected.contains(up) || now.saturating_duration_since(l.last_packet) < FORGET_AFTER
        });
        // Listeners take the first of the selection: selected tracks quiet for a while go
        // last, so that a listener with fewer slots than the selection hears who speaks.
        let resting = |up: &UpTrackKey| {
            self.tracks
                .get(up)
                .and_then(|l| l.quiet_since)
                .is_some_and(|since| now.saturating_duration_since(since) >= QUIET_HOLD)
        };
        let mut order = self.selected.clone();
        order.sort_by_key(resting);
        let reordered = order != self.selected;
        self.selected = order;
        // The loudest speaking track that is not selected.
        let waiting = self
            .tracks
            .iter()
            .filter(|(up, _)| !self.selected.contains(up))
            .map(|(up, l)| (*up, l.level_at(now)))
            .filter(|(_, level)| *level >= SPEECH_DBOV)
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.0.cmp(&a.0.0)));
        let Some((candidate, level)) = waiting else {
            self.overtaking = None;
            return reordered;
        };
        if self.selected.len() < self.capacity {
            // Before those resting: a new speaker is heard at once.
            let at = self
                .selected
                .iter()
                .position(resting)
                .unwrap_or(self.selected.len());
            self.selected.insert(at, candidate);
            self.overtaking = None;
            return true;
        }
        // Full: the selected track quiet the longest gives way to the candidate...
        let quietest = self
            .selected
            .iter()
            .filter_map(|up| Some((*up, self.tracks.get(up)?)))
            .filter_map(|(up, l)| Some((up, l.quiet_since?)))
            .min_by_key(|(_, since)| *since);
        if let Some((up, since)) = quietest
            && now.saturating_duration_since(since) >= QUIET_HOLD
        {
            self.replace(up, candidate);
            return true;
        }
        // ...else the softest, if the candidate has been clearly louder for a while.
        let softest = self
            .selected
            .iter()
            .map(|up| {
                let level = self
                    .tracks
                    .get(up)
                    .map_or(SILENCE_DBOV, |l| l.level_at(now));
                (*up, level)
            })
            .min_by(|a, b| a.1.total_cmp(&b.1));
        let Some((up, soft)) = softest else {
            return reordered;
        };
        if level < soft + OVERTAKE_DB {
            self.overtaking = None;
            return reordered;
        }
        match self.overtaking {
            Some((x, y, since)) if x == candidate && y == up => {
                if now.saturating_duration_since(since) >= OVERTAKE_HOLD {
                    self.replace(up, candidate);
                    return true;
                }
                reordered
            }
            _ => {
                self.overtaking = Some((candidate, up, now));
                reordered
            }
        }
    }

    /// `incoming` takes the place of `out`, where `out` stood.
    fn replace(&mut self, out: UpTrackKey, incoming: UpTrackKey) {
        match self.selected.iter().position(|u| *u == out) {
            Some(i) => self.selected[i] = incoming,
            None => self.selected.push(incoming),
        }
        self.overtaking = None;
    }
}

/// The up-tracks a listener hears, in slot order: the selection, without the listener's own
/// tracks and those it muted for itself, `slots` at most.
pub fn heard_by<'a>(
    selected: &'a [UpTrackKey],
    slots: usize,
    excluded: impl Fn(UpTrackKey) -> bool + 'a,
) -> impl Iterator<Item = UpTrackKey> + 'a {
    selected
        .iter()
        .copied()
        .filter(move |up| !excluded(*up))
        .take(slots)
}

/// Puts `wanted` on `slots` (each slot's current up-track, if any), keeping every wanted track
/// that already has a slot where it is: returns the changes as (slot, new up-track or none).
pub fn assign(
    slots: &[Option<UpTrackKey>],
    wanted: &[UpTrackKey],
) -> Vec<(usize, Option<UpTrackKey>)> {
    let mut changes = Vec::new();
    let mut free = Vec::new();
    for (i, current) in slots.iter().enumerate() {
        match current {
            Some(up) if wanted.contains(up) => {}
            Some(_) => {
                changes.push((i, None));
                free.push(i);
            }
            None => free.push(i),
        }
    }
    let mut free = free.into_iter();
    for up in wanted {
        if slots.contains(&Some(*up)) {
            continue;
        }
        let Some(i) = free.next() else {
            break;
        };
        match changes.iter_mut().find(|(slot, _)| *slot == i) {
            Some(change) => change.1 = Some(*up),
            None => changes.push((i, Some(*up))),
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn up(i: usize) -> UpTrackKey {
        UpTrackKey(i)
    }

    /// Feeds `levels` (track, dBov) every 20 ms for `ms`, evaluating as the core would.
    fn talk(s: &mut SpeakerSelection, t: &mut Instant, ms: u64, levels: &[(usize, i8)]) -> u32 {
        let mut changes = 0;
        for _ in 0..ms / 20 {
            *t += 20 * MS;
            for &(i, level) in levels {
                s.observe(up(i), Some(level), *t);
            }
            changes += u32::from(s.evaluate(*t, false));
        }
        changes
    }

    #[test]
    fn with_no_more_speakers_than_places_everyone_speaking_is_selected_at_once() {
        let mut t = Instant::now();
        let mut s = SpeakerSelection::new(4);
        talk(&mut s, &mut t, 40, &[(1, -20), (2, -30), (3, -80)]);
        assert_eq!(
            s.selected(),
            &[up(1), up(2)],
            "background noise is not speech"
        );
        talk(&mut s, &mut t, 40, &[(3, -25)]);
        assert_eq!(s.selected(), &[up(1), up(2), up(3)]);
    }

    #[test]
    fn a_selected_speaker_keeps_the_place_through_a_short_pause_and_loses_it_after_a_long_one() {
        let mut t = Instant::now();
        let mut s = SpeakerSelection::new(2);
        talk(&mut s, &mut t, 200, &[(1, -20), (2, -20)]);
        assert_eq!(s.selected(), &[up(1), up(2)]);
        // Track 3 starts while 1 takes a breath of 200 ms: 1 keeps its place.
        talk(&mut s, &mut t, 200, &[(1, -90), (2, -20), (3, -20)]);
        assert_eq!(s.selected(), &[up(1), up(2)]);
        talk(&mut s, &mut t, 200, &[(1, -20), (2, -20), (3, -20)]);
        // 1 stops talking (DTX: no packets at all): after the hold, 3 takes its place.
        talk(&mut s, &mut t, 300, &[(2, -20), (3, -20)]);
        assert_eq!(s.selected(), &[up(1), up(2)], "not yet");
        talk(&mut s, &mut t, 400, &[(2, -20), (3, -20)]);
        assert_eq!(s.selected(), &[up(2), up(3)]);
    }

    #[test]
    fn a_much_louder_speaker_takes_the_softest_place_only_after_a_while() {
        let mut t = Instant::now();
        let mut s = SpeakerSelection::new(1);
        talk(&mut s, &mut t, 200, &[(1, -45)]);
        assert_eq!(s.selected(), &[up(1)]);
        let changes = talk(&mut s, &mut t, 1000, &[(1, -45), (2, -10)]);
        assert_eq!(
            (s.selected(), changes),
            (&[up(1)][..], 0),
            "not mid-sentence"
        );
        talk(&mut s, &mut t, 700, &[(1, -45), (2, -10)]);
        assert_eq!(s.selected(), &[up(2)]);
        // A slightly louder one never overtakes.
        talk(&mut s, &mut t, 3000, &[(2, -30), (3, -28)]);
        assert_eq!(s.selected(), &[up(2)]);
    }

    #[test]
    fn slots_keep_their_speakers_and_new_ones_take_the_free_slots() {
        let changes = assign(&[Some(up(1)), Some(up(2)), None], &[up(2), up(3), up(4)]);
        assert_eq!(changes, vec![(0, Some(up(3))), (2, Some(up(4)))]);
        assert!(assign(&[Some(up(1)), None], &[up(1)]).is_empty());
        assert_eq!(assign(&[Some(up(1))], &[]), vec![(0, None)]);
        // More wanted than slots: the first ones.
        assert_eq!(
            assign(&[None, None], &[up(7), up(8), up(9)]),
            vec![(0, Some(up(7))), (1, Some(up(8)))]
        );
        let heard: Vec<_> = heard_by(&[up(1), up(2), up(3), up(4)], 3, |u| u == up(2)).collect();
        assert_eq!(
            heard,
            vec![up(1), up(3), up(4)],
            "a listener never hears itself"
        );
    }

    #[test]
    fn any_levels_and_times_never_panic_and_the_selection_stays_bounded() {
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let start = Instant::now();
        let mut s = SpeakerSelection::new(3);
        for i in 0..20_000u64 {
            let track = up((next() % 12) as usize);
            let t = start + Duration::from_millis(i + next() % 5);
            match next() % 10 {
                0 => s.remove(track),
                1 => s.observe(track, None, t),
                _ => s.observe(track, Some(next() as i8), t),
            }
            s.evaluate(t, next() % 7 == 0);
            assert!(s.selected().len() <= 3);
            let mut seen = s.selected().to_vec();
            seen.sort_by_key(|u| u.0);
            seen.dedup();
            assert_eq!(seen.len(), s.selected().len(), "no track twice");
        }
        assert!(SpeakerSelection::new(0).selected().is_empty());
        let mut none = SpeakerSelection::new(0);
        none.observe(up(1), Some(0), start);
        assert!(!none.evaluate(start, true));
    }
}
