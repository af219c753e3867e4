//! Rooms: who is in each, their names and mute state, the chat, and the link to the media
//! workers that carry the room's media.
//!
//! - [`RoomDirectory`]: where a room is found or made by name. [`LocalDirectory`] keeps this
//!   node's rooms; a cluster's directory builds on it.
//! - [`RoomHandle`]: what others may do with a running room: join it, read a snapshot, remove
//!   a member, close it. [`Membership`] is a joined member's own handle.
//! - the room's actor (`actor`): one task per room owns its state; connections and media
//!   workers talk to it over bounded channels. A room is made by its first join and ends,
//!   freeing everything, when its last member leaves.
//!   Its `moderation` part: moderators, removals, the lock, the topic, raised hands; its
//!   `media` part: what the media workers tell it.
//! - `chat`: the room's recent messages; `names`: nicknames unique in a room; `tag`: who a
//!   member is beyond one connection; `password`: private rooms' password hashes;
//!   `renewal`: when each member gets fresh TURN credentials.

mod actor;
mod chat;
mod directory;
mod handle;
mod local;
mod names;
mod password;
mod quality;
mod renewal;
pub mod tag;
mod trace;

use std::sync::Arc;

use free4chat_signal::{ChatMessage, MemberId, RoomId, ServerMsg};
use tokio::sync::mpsc;

pub use directory::{ClusterView, Counts, JoinRequest, Refusal, RoomDirectory, RoomSummary};
pub use handle::{Membership, RoomHandle, RoomRelay, RoomSnapshot};
pub use local::{Earlier, Limits, LocalDirectory, LocalJoin, MediaWorkers};

/// How many messages may wait for one member's connection before it counts as stalled.
pub const MEMBER_QUEUE: usize = 512;

/// A member's outgoing queue. Messages travel behind an `Arc`: a broadcast shares one message
/// among all its recipients, and the queue's storage holds a pointer per slot rather than a
/// whole message (the channel allocates its slots 32 at a time, per member).
pub type MemberTx = mpsc::Sender<Arc<ServerMsg>>;

/// What a room tells beyond its members: its chat and its end, for a cluster to keep, and its
/// life and its members' comings and goings, for webhooks. Called from the room's task, so it
/// must never wait.
pub trait RoomObserver: Send + Sync {
    /// A chat message was added to room `room`.
    fn chat(&self, room: &str, message: &ChatMessage);

    /// A moderator cleared room `room`'s chat.
    fn chat_cleared(&self, room: &str) {
        let _ = room;
    }

    /// A message of room `room`'s chat changed (edited, deleted, reacted to): `history` is the
    /// chat as the room keeps it now, oldest first.
    fn chat_changed(&self, room: &str, history: &[ChatMessage]) {
        let _ = (room, history);
    }

    /// Room `room` has ended, and no longer holds its name here.
    fn closed(&self, room: &str);

    /// Something happened in room `room` (its running instance `id`).
    fn lifecycle(&self, room: &str, id: RoomId, what: Lifecycle<'_>) {
        let _ = (room, id, what);
    }
}

/// A step in a room's life, in the order the room takes them: started, then members joining
/// and leaving, then (every member gone) finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle<'a> {
    Started,
    MemberJoined {
        member: MemberId,
        name: &'a str,
    },
    /// `name`: their name when they left (they may have renamed themselves).
    MemberLeft {
        member: MemberId,
        name: &'a str,
    },
    Finished,
}
