//! Cluster mode: nodes that share their rooms through Redis. Any node serves any room: a room
//! runs on one node at a time, and members whose WebSocket reaches another node are relayed
//! to it. A room outlives its node: when the node dies, its members reconnect and the room
//! starts again on a surviving node, with its chat. `docs/cluster.md` tells the whole.
//!
//! - `registry`: what a node says of itself in its heartbeat, which node takes a new room,
//!   and when a node counts as dead (no I/O).
//! - `lease`: the scripts that claim, renew and release rooms atomically in Redis.
//! - `bus`: the envelopes nodes send each other over pub/sub (no I/O).
//! - `store`: every call to Redis, each with a deadline.
//! - `node`: this node in the cluster: its heartbeat, its leases, the relays both ways.
//! - `directory`: the [`RoomDirectory`](crate::rooms::RoomDirectory) of a cluster node, on top
//!   of the node's own rooms.

pub mod bus;
mod directory;
pub mod lease;
mod node;
pub mod registry;
pub mod store;

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use directory::{ClusterDirectory, Joined, connect, observer};
pub use store::{Store, StoreError, redis_url};

/// How long a node's heartbeat lives in Redis unless renewed; a node whose heartbeat is gone
/// is dead.
pub const HEARTBEAT_TTL: Duration = Duration::from_secs(2);
/// How often a node beats (and reads the others').
pub const BEAT_EVERY: Duration = Duration::from_millis(500);
/// How long a room's lease lives unless its node renews it.
pub const LEASE_TTL: Duration = Duration::from_secs(2);
/// How often a node renews its leases.
pub const RENEW_EVERY: Duration = Duration::from_millis(500);
/// How long a room's chat stays in Redis after the room's last renewal (its node stopped
/// holding it: it emptied, or its node died and nobody came back).
pub const CHAT_TTL: Duration = Duration::from_secs(600);

/// A node's id: `n` and the number it drew from Redis when it started.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NodeId(String);

impl NodeId {
    pub fn from_number(n: u64) -> NodeId {
        NodeId(format!("n{n}"))
    }

    /// Reads an id from outside: `n` and 1 to 20 digits.
    pub fn parse(s: &str) -> Result<NodeId, &'static str> {
        let digits = s.strip_prefix('n').ok_or("a node id starts with n")?;
        if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err("a node id is n and 1 to 20 digits");
        }
        Ok(NodeId(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for NodeId {
    type Error = &'static str;

    fn try_from(s: String) -> Result<NodeId, &'static str> {
        NodeId::parse(&s)
    }
}

impl From<NodeId> for String {
    fn from(id: NodeId) -> String {
        id.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_from_outside_are_n_and_digits_only() {
        assert_eq!(NodeId::from_number(17).as_str(), "n17");
        assert!(NodeId::parse("n17").is_ok());
        for bad in [
            "",
            "n",
            "17",
            "n-1",
            "n1x",
            "N1",
            "n123456789012345678901",
            "n1 ",
        ] {
            assert!(NodeId::parse(bad).is_err(), "{bad}");
        }
    }
}
