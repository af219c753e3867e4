//! The fan-out batch: packets prepared or relayed and not yet written to their subscribers.
//!
//! Packets wait here until the shell asks for what to send; then each subscriber is written
//! every packet of the batch it is sent, in order, and its session is drained once. str0m's
//! work per drain walks every stream the subscriber is sent, so packets that queued up together
//! (the worker was behind) share that walk; a batch of one, the usual case, costs the same as
//! writing it alone. The batch is consumed a subscriber at a time, as the shell polls, so the
//! first subscribers' copies can leave while the last ones are still being sealed.

use std::ops::Range;

use crate::downtrack::{CopyPayloads, DownTrackKey};
use crate::forward::Recovered;
use crate::participants::ParticipantKey;
use crate::prepared::Prepared;
use crate::uptrack::UpTracks;

/// One copy to write: a packet of the active batch to one subscriber's down-track.
#[derive(Debug, Clone, Copy)]
pub struct Copy {
    pub participant: ParticipantKey,
    pub down: DownTrackKey,
    pub packet: usize,
}

#[derive(Default)]
pub struct FanOut {
    /// Packets waiting for the next fan-out.
    waiting: Vec<Prepared>,
    /// The packets being fanned out now.
    active: Vec<Prepared>,
    /// The copies of the active packets, grouped by subscriber; `next` is the first not yet
    /// written.
    copies: Vec<Copy>,
    next: usize,
    /// Per active packet, the payloads made for its subscribers.
    payloads: Vec<CopyPayloads>,
    /// Scratch, by participant key: the rank of the participant's first copy, to group copies.
    rank: Vec<u32>,
    /// A recovery list kept from a finished batch, for the next packet prepared.
    spare: Vec<Recovered>,
}

impl FanOut {
    pub fn push(&mut self, packet: Prepared) {
        self.waiting.push(packet);
    }

    /// Whether nothing waits and nothing is being written.
    pub fn is_idle(&self) -> bool {
        self.waiting.is_empty() && self.next >= self.copies.len()
    }

    /// Reused storage for the frames RED recovers from the next packet prepared.
    pub fn take_recovery_list(&mut self) -> Vec<Recovered> {
        let mut list = std::mem::take(&mut self.spare);
        list.clear();
        list
    }

    pub fn give_back_recovery_list(&mut self, list: Vec<Recovered>) {
        if self.spare.capacity() < list.capacity() {
            self.spare = list;
        }
    }

    /// The next subscriber to write, and the range of its copies ([`FanOut::copy`]). When the
    /// active batch is done, the waiting packets become the active batch, their subscribers
    /// found from `up_tracks`. `None` when nothing is left.
    pub fn next_subscriber(
        &mut self,
        up_tracks: &UpTracks,
    ) -> Option<(ParticipantKey, Range<usize>)> {
        if self.next >= self.copies.len() && !self.start(up_tracks) {
            return None;
        }
        let start = self.next;
        let participant = self.copies[start].participant;
        let len = self.copies[start..]
            .iter()
            .take_while(|c| c.participant == participant)
            .count();
        self.next = start + len;
        Some((participant, start..start + len))
    }

    pub fn copy(&self, i: usize) -> Option<Copy> {
        self.copies.get(i).copied()
    }

    /// A packet of the active batch, with the payloads made from it so far.
    pub fn packet(&mut self, i: usize) -> Option<(&Prepared, &mut CopyPayloads)> {
        Some((self.active.get(i)?, self.payloads.get_mut(i)?))
    }

    /// Makes the waiting packets the active batch. Returns false if none wait.
    fn start(&mut self, up_tracks: &UpTracks) -> bool {
        loop {
            if self.waiting.is_empty() {
                return false;
            }
            // The finished batch's storage serves the next one; one recovery list is kept.
            if let Some(last) = self.active.pop() {
                self.give_back_recovery_list(last.codec.recovered);
            }
            self.active.clear();
            std::mem::swap(&mut self.active, &mut self.waiting);
            self.copies.clear();
            self.next = 0;
            for (i, packet) in self.active.iter().enumerate() {
                let Some(up) = up_tracks.find(packet.src, packet.mid) else {
                    continue;
                };
                let Some(track) = up_tracks.get(up) else {
                    continue;
                };
                self.copies.extend(track.subscribers.iter().map(|s| Copy {
                    participant: s.participant,
                    down: s.down,
                    packet: i,
                }));
            }
            if self.active.len() > 1 {
                self.group_by_subscriber();
            }
            self.payloads.clear();
            self.payloads
                .resize_with(self.active.len(), CopyPayloads::default);
            if !self.copies.is_empty() {
                return true;
            }
        }
    }

    /// Orders the copies so that each subscriber's are together, subscribers in the order of
    /// their first copy and each subscriber's copies in packet order (a stable sort by rank).
    fn group_by_subscriber(&mut self) {
        let mut next_rank = 0;
        for c in &self.copies {
            let k = c.participant.0;
            if self.rank.len() <= k {
                self.rank.resize(k + 1, u32::MAX);
            }
            if self.rank[k] == u32::MAX {
                self.rank[k] = next_rank;
                next_rank += 1;
            }
        }
        let rank = &self.rank;
        self.copies
            .sort_by_key(|c| rank.get(c.participant.0).copied().unwrap_or(u32::MAX));
        for c in &self.copies {
            if let Some(r) = self.rank.get_mut(c.participant.0) {
                *r = u32::MAX;
            }
        }
    }

    /// Gives back the storage that busy times grew (a room closed).
    pub fn shrink(&mut self) {
        if !self.is_idle() {
            return;
        }
        self.waiting = Vec::new();
        self.active = Vec::new();
        self.copies = Vec::new();
        self.next = 0;
        self.payloads = Vec::new();
        self.rank = Vec::new();
        self.spare = Vec::new();
    }

    /// The storage held now, in elements, for tests that prove it is given back.
    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.waiting.capacity()
            + self.active.capacity()
            + self.copies.capacity()
            + self.payloads.capacity()
            + self.rank.capacity()
    }
}
