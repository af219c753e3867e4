//! Where rooms are found by name: the trait every directory implements, and what crosses it.

use async_trait::async_trait;
use free4chat_signal::{ErrorCode, RoomId};
use serde::Serialize;

use super::{MemberTx, Membership, RoomHandle};

/// A connection asking to join a room (its name and the nickname already validated).
#[derive(Debug)]
pub struct JoinRequest {
    pub room: String,
    pub name: String,
    pub muted: bool,
    /// The member's join token made it a moderator of its room.
    pub moderator: bool,
    /// Who the member is beyond this connection (`rooms::tag`), if their client sent a key.
    pub tag: Option<String>,
    /// Where the room sends this member's messages.
    pub out: MemberTx,
    /// The host the client reached us by (the checked `Host` header), for the ICE servers.
    pub host: Option<String>,
}

/// Why a join was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: String,
}

impl Refusal {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            message: message.into(),
        }
    }
}

/// What `/api/health` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub rooms: usize,
    /// Members in all rooms (named `peers` in `/api/health`, its first name).
    #[serde(rename = "peers")]
    pub members: usize,
    /// Members dropped so far because their media did not connect within the media deadline
    /// after they joined.
    pub media_deadline_dropped: u64,
}

/// One running room, as a list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoomSummary {
    pub room: String,
    pub id: RoomId,
    /// The node it runs on (none when the server stands alone).
    pub node: Option<String>,
    pub members: usize,
}

/// What `/api/health` says of the cluster a node is part of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterView {
    /// This node's id.
    pub node: String,
    /// Nodes alive, this one included.
    pub nodes: usize,
}

/// Where rooms are found or made by name.
#[async_trait]
pub trait RoomDirectory: Send + Sync {
    /// Joins the room named in `request`, making it if needed. On success the member's queue
    /// has received `joined`.
    async fn join(&self, request: JoinRequest) -> Result<Membership, Refusal>;

    /// The rooms and members of this node.
    fn counts(&self) -> Counts;

    /// The running rooms: this node's, or the whole cluster's.
    async fn rooms(&self) -> Vec<RoomSummary>;

    /// The rooms running on this node alone: no other node is asked.
    async fn local_rooms(&self) -> Vec<RoomSummary> {
        self.rooms().await
    }

    /// The cluster this node is part of, if it is.
    fn cluster(&self) -> Option<ClusterView> {
        None
    }

    /// The running room of that name.
    async fn find(&self, room: &str) -> Option<RoomHandle>;

    /// Tells every room the server is going away; returns once every room has ended (in a
    /// cluster, once the rooms' members have been told to move to other nodes).
    async fn shutdown(&self);
}
