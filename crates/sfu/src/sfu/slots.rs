//! Audio slots: putting the room's selected speakers on each listener's slots.

use std::time::Instant;

use free4chat_ids::{RoomId, TrackKind};

use super::Sfu;
use crate::downtrack::{DownTrackKey, Feed};
use crate::participants::ParticipantKey;
use crate::speakers::{assign, heard_by};
use crate::uptrack::{Subscriber, UpTrackKey};

impl Sfu {
    /// Whether this core gives its participants audio slots.
    pub(super) fn slots_on(&self) -> bool {
        self.rooms.slots() > 0
    }

    /// One packet of the audio up-track `up` at `level`, for the selection of its room's
    /// speakers; the listeners' slots follow any change.
    pub(super) fn observe_speaker(&mut self, up: UpTrackKey, level: Option<i8>, now: Instant) {
        let Some(track) = self.up_tracks.get(up) else {
            return;
        };
        if track.kind != TrackKind::Audio {
            return;
        }
        let room = track.room;
        let Some(shard) = self.rooms.get_mut(room) else {
            return;
        };
        shard.speakers.observe(up, level, now);
        if shard.speakers.evaluate(now, false) {
            self.reassign_slots(room);
        }
    }

    /// Evaluates every room's selection (packets may have stopped altogether).
    pub(super) fn evaluate_speakers(&mut self, now: Instant) {
        for room in self.rooms.ids() {
            let changed = self
                .rooms
                .get_mut(room)
                .is_some_and(|s| s.speakers.evaluate(now, true));
            if changed {
                self.reassign_slots(room);
            }
        }
    }

    /// Puts each listener of `room` here on the speakers it should hear.
    pub(super) fn reassign_slots(&mut self, room: RoomId) {
        let Some(shard) = self.rooms.get(room) else {
            return;
        };
        for key in shard.members.clone() {
            self.reassign_listener(key);
        }
    }

    /// Puts one listener's slots on the speakers of its room it should hear: the selection,
    /// without its own tracks and the members it muted for itself. A speaker already on one of
    /// its slots stays on that slot.
    pub(super) fn reassign_listener(&mut self, key: ParticipantKey) {
        let Some(p) = self.participants.get(key) else {
            return;
        };
        if p.slots.is_empty() {
            return;
        }
        let Some(shard) = self.rooms.get(p.room) else {
            return;
        };
        let up_tracks = &self.up_tracks;
        let excluded = |up: UpTrackKey| {
            up_tracks.get(up).is_none_or(|t| {
                t.publisher == p.member || p.local_mutes.binary_search(&t.publisher).is_ok()
            })
        };
        let wanted: Vec<UpTrackKey> =
            heard_by(shard.speakers.selected(), p.slots.len(), excluded).collect();
        let changes = assign(&p.slot_feeds(), &wanted);
        let slots = p.slots.clone();
        for (slot, up) in changes {
            if let Some(&down) = slots.get(slot) {
                self.set_slot(key, down, up);
            }
        }
    }

    /// Feeds the slot `down` of participant `key` from `up` (or nothing).
    fn set_slot(&mut self, key: ParticipantKey, down: DownTrackKey, up: Option<UpTrackKey>) {
        let Some(p) = self.participants.get_mut(key) else {
            return;
        };
        let Some(d) = p.downs.get_mut(down.0) else {
            return;
        };
        let Feed::Slot { current, .. } = &mut d.feed else {
            return;
        };
        let previous = std::mem::replace(current, up);
        let subscriber = Subscriber {
            participant: key,
            down,
        };
        if let Some(old) = previous.and_then(|u| self.up_tracks.get_mut(u)) {
            old.unsubscribe(key, down);
        }
        if let Some(new) = up.and_then(|u| self.up_tracks.get_mut(u)) {
            new.subscribers.push(subscriber);
        }
    }
}
