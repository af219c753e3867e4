//! The rooms this core holds a part of: each room's shard — its participants here, its
//! up-tracks here (published here or relayed from other workers), and the other workers that
//! hold members of the room.

use rustc_hash::FxHashMap;

use free4chat_ids::RoomId;

use crate::api::WorkerIndex;
use crate::participants::ParticipantKey;
use crate::speakers::SpeakerSelection;
use crate::uptrack::UpTrackKey;

/// A room's part in this core.
#[derive(Debug)]
pub struct Shard {
    pub members: Vec<ParticipantKey>,
    pub up_tracks: Vec<UpTrackKey>,
    /// The other workers holding members of this room.
    pub relay_to: Vec<WorkerIndex>,
    /// Who the members here hear on their audio slots.
    pub speakers: SpeakerSelection,
}

/// Room ids are assigned by the server, never chosen by a client: FxHash is safe here.
#[derive(Debug, Default)]
pub struct Rooms {
    shards: FxHashMap<RoomId, Shard>,
    /// Audio slots per participant.
    slots: usize,
}

impl Rooms {
    /// Rooms whose members have `slots` audio slots each.
    pub fn new(slots: usize) -> Rooms {
        Rooms {
            shards: FxHashMap::default(),
            slots,
        }
    }

    pub fn slots(&self) -> usize {
        self.slots
    }

    pub fn get(&self, room: RoomId) -> Option<&Shard> {
        self.shards.get(&room)
    }

    pub fn get_mut(&mut self, room: RoomId) -> Option<&mut Shard> {
        self.shards.get_mut(&room)
    }

    pub fn entry(&mut self, room: RoomId) -> &mut Shard {
        // One more than the slots: a selected speaker never hears themselves, and still has
        // every slot filled.
        let capacity = if self.slots == 0 { 0 } else { self.slots + 1 };
        self.shards.entry(room).or_insert_with(|| Shard {
            members: Vec::new(),
            up_tracks: Vec::new(),
            relay_to: Vec::new(),
            speakers: SpeakerSelection::new(capacity),
        })
    }

    /// Every room held here.
    pub fn ids(&self) -> Vec<RoomId> {
        self.shards.keys().copied().collect()
    }

    /// Forgets the shard whatever it holds, returning it.
    pub fn remove(&mut self, room: RoomId) -> Option<Shard> {
        self.shards.remove(&room)
    }

    pub fn len(&self) -> usize {
        self.shards.len()
    }

    pub fn shrink(&mut self) {
        self.shards.shrink_to_fit();
    }
}
