//! Every participant of this core, in a slab: a participant is reached by its small key without
//! hashing, and the key is what the other parts (demultiplexing, timers, up-tracks' subscriber
//! lists) hold. A key is reused after its participant is removed, so every part forgets a key
//! when its participant goes.

use rustc_hash::FxHashMap;
use slab::Slab;

use free4chat_ids::MemberId;

use crate::participant::Participant;

/// A participant's place in [`Participants`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ParticipantKey(pub usize);

#[derive(Default)]
pub struct Participants {
    /// Boxed: a participant is large (its `Rtc`), and the slab moves its entries as it grows.
    slab: Slab<Box<Participant>>,
    /// Member ids are assigned by the server, never chosen by a client: FxHash is safe here.
    by_member: FxHashMap<MemberId, ParticipantKey>,
}

impl Participants {
    pub fn insert(&mut self, participant: Participant) -> ParticipantKey {
        let member = participant.member;
        let key = ParticipantKey(self.slab.insert(Box::new(participant)));
        self.by_member.insert(member, key);
        key
    }

    pub fn remove(&mut self, key: ParticipantKey) -> Option<Box<Participant>> {
        let participant = self.slab.try_remove(key.0)?;
        if self.by_member.get(&participant.member) == Some(&key) {
            self.by_member.remove(&participant.member);
        }
        Some(participant)
    }

    pub fn key_of(&self, member: MemberId) -> Option<ParticipantKey> {
        self.by_member.get(&member).copied()
    }

    pub fn get(&self, key: ParticipantKey) -> Option<&Participant> {
        self.slab.get(key.0).map(|p| &**p)
    }

    pub fn get_mut(&mut self, key: ParticipantKey) -> Option<&mut Participant> {
        self.slab.get_mut(key.0).map(|p| &mut **p)
    }

    pub fn iter(&self) -> impl Iterator<Item = (ParticipantKey, &Participant)> {
        self.slab.iter().map(|(k, p)| (ParticipantKey(k), &**p))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (ParticipantKey, &mut Participant)> {
        self.slab
            .iter_mut()
            .map(|(k, p)| (ParticipantKey(k), &mut **p))
    }

    pub fn len(&self) -> usize {
        self.slab.len()
    }

    pub fn shrink(&mut self) {
        if self.slab.is_empty() {
            self.slab = Slab::new();
        } else {
            self.slab.shrink_to_fit();
        }
        self.by_member.shrink_to_fit();
    }
}
