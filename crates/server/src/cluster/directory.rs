//! The room directory of a cluster node: a room running here is joined here, with no call to
//! Redis; any other is found through its lease (or claimed, on the least loaded node) and
//! the member relayed to it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use free4chat_signal::ErrorCode;
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::NodeId;
use super::bus::JoinOutcome;
use super::node::{self, Here, Identity, NoOutcome, Node};
use super::store::{Store, StoreError};
use crate::rooms::{
    ClusterView, Counts, JoinRequest, LocalDirectory, LocalJoin, Membership, Refusal,
    RoomDirectory, RoomHandle, RoomSummary,
};

/// How long a join may look for its room's node: long enough for a dead node's heartbeat to
/// expire, so that the room can be taken over.
const JOIN_PATIENCE: Duration = Duration::from_secs(5);
/// The pause before asking again when the room is held by a node that does not answer.
const TAKEOVER_POLL: Duration = Duration::from_millis(200);
/// The most public rooms of other nodes a room list reads from Redis.
const LISTED: usize = 200;
/// How long a starting node keeps trying to reach Redis.
const START_PATIENCE: Duration = Duration::from_secs(10);

pub struct ClusterDirectory {
    node: Arc<Node>,
    /// How long stopping waits for members to move.
    drain_timeout: Duration,
}

/// What a starting node needs from Redis before it serves: its number, and with it its id and
/// the prefix of its member and room ids.
pub struct Joined {
    pub store: Store,
    pub id: NodeId,
    pub id_prefix: u64,
    pub deliveries: mpsc::Receiver<super::store::Delivery>,
}

/// Connects to Redis and draws this node's number, trying for a few seconds.
pub async fn connect(url: &str) -> Result<Joined, StoreError> {
    let (tx, deliveries) = mpsc::channel(node::DELIVERY_QUEUE);
    let store = Store::connect(url, tx)?;
    let deadline = Instant::now() + START_PATIENCE;
    let number = loop {
        match store.next_node_number().await {
            Ok(n) => break n,
            Err(e) if Instant::now() < deadline => {
                warn!("Redis not reachable yet: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(e),
        }
    };
    let id = NodeId::from_number(number);
    store.subscribe(&id).await?;
    Ok(Joined {
        store,
        id,
        id_prefix: number % free4chat_ids::PREFIX_LIMIT,
        deliveries,
    })
}

impl ClusterDirectory {
    /// This node's rooms in `local` (made with the node's id prefix and the observer from
    /// [`observer`]), shared with the cluster through `joined`.
    pub async fn start(
        joined: Joined,
        local: LocalDirectory,
        events: node::RoomEvents,
        (http, media): (String, Vec<String>),
        drain_timeout: Duration,
    ) -> ClusterDirectory {
        let identity = Identity {
            id: joined.id.clone(),
            http,
            media,
        };
        let node = Node::start(identity, joined.store, local, joined.deliveries, events);
        match node.beat().await {
            Ok(()) => info!(node = %node.id, "joined the cluster"),
            Err(e) => warn!(node = %node.id, "first heartbeat not sent: {e}"),
        }
        ClusterDirectory {
            node,
            drain_timeout,
        }
    }

    pub fn node_id(&self) -> &NodeId {
        &self.node.id
    }

    /// Relayed and hosted members now (members here in rooms elsewhere, members elsewhere in
    /// rooms here).
    pub fn relays(&self) -> (usize, usize) {
        self.node.relays()
    }
}

/// The observer a cluster node's rooms report to, and what it reports.
pub fn observer() -> (Arc<node::Observer>, node::RoomEvents) {
    node::observer()
}

fn unavailable(e: &StoreError) -> Refusal {
    Refusal::new(
        ErrorCode::ClusterUnavailable,
        format!("the cluster cannot be reached: {e}"),
    )
}

#[async_trait]
impl RoomDirectory for ClusterDirectory {
    async fn join(&self, request: JoinRequest) -> Result<Membership, Refusal> {
        let node = &self.node;
        if node.draining() {
            return Err(Refusal::new(
                ErrorCode::ShuttingDown,
                "this node is stopping",
            ));
        }
        let member = node.local.new_member();
        // A room running here needs no Redis: it goes on whatever Redis does.
        match node.local.join_as(member, &request, None).await {
            Ok(m) => return Ok(m),
            Err(LocalJoin::Refused(r)) => return Err(r),
            Err(LocalJoin::NoRoom) => {}
        }
        if !node.may_relay() {
            return Err(Refusal::new(ErrorCode::ServerFull, "the server is full"));
        }
        let deadline = Instant::now() + JOIN_PATIENCE;
        // Nodes that did not answer, or take no new room.
        let mut avoid: Vec<NodeId> = Vec::new();
        loop {
            if Instant::now() > deadline {
                return Err(Refusal::new(
                    ErrorCode::ClusterUnavailable,
                    "the room's node does not answer; try again",
                ));
            }
            let owner = node
                .store
                .owner(&request.room)
                .await
                .map_err(|e| unavailable(&e))?;
            let target = match owner {
                Some(o) if !avoid.contains(&o) => o,
                _ => match node.choose(&avoid) {
                    Some(n) => n,
                    None if avoid.is_empty() => {
                        return Err(Refusal::new(
                            ErrorCode::ServerFull,
                            "no node can take another room",
                        ));
                    }
                    // Every node was tried: their heartbeats will tell who is alive.
                    None => {
                        avoid.clear();
                        tokio::time::sleep(TAKEOVER_POLL).await;
                        continue;
                    }
                },
            };
            // The room is held by a node that did not answer: wait for its heartbeat to
            // expire, when the room may be taken over.
            let wait_for = |holder: &NodeId, avoid: &[NodeId]| avoid.contains(holder);
            if target == node.id {
                match node.join_here(member, &request).await {
                    Ok(m) => return Ok(m),
                    Err(Here::Refused(r)) => return Err(r),
                    Err(Here::Elsewhere(holder)) => {
                        if wait_for(&holder, &avoid) {
                            tokio::time::sleep(TAKEOVER_POLL).await;
                        }
                    }
                    Err(Here::NoNewRooms) => avoid.push(target),
                    Err(Here::Unavailable(e)) => return Err(unavailable(&e)),
                }
                continue;
            }
            match node.relay_join(&target, member, &request).await {
                Ok(JoinOutcome::Joined) => {
                    info!(room = request.room, %member, node = %target, "member relayed to the room's node");
                    return Ok(Membership::relayed(member, node.relay(target)));
                }
                Ok(JoinOutcome::Refused { code, message }) => {
                    return Err(Refusal::new(code, message));
                }
                Ok(JoinOutcome::Elsewhere { owner }) => {
                    if wait_for(&owner, &avoid) {
                        tokio::time::sleep(TAKEOVER_POLL).await;
                    }
                }
                Ok(JoinOutcome::NotHere) | Err(NoOutcome::NoAnswer) => avoid.push(target),
                Err(NoOutcome::Unavailable(e)) => return Err(unavailable(&e)),
            }
        }
    }

    fn counts(&self) -> Counts {
        self.node.local.counts()
    }

    async fn local_rooms(&self) -> Vec<RoomSummary> {
        self.node.local.rooms().await
    }

    /// This node's rooms, fresh, and the other nodes' public rooms as they last wrote them to
    /// Redis (every lease renewal): the largest [`LISTED`] of them.
    async fn rooms(&self) -> Vec<RoomSummary> {
        let mut rooms = self.local_rooms().await;
        match self.node.store.public_rooms(LISTED).await {
            Ok(others) => {
                let others = others
                    .into_iter()
                    .filter(|r| r.node != self.node.id && !rooms.iter().any(|l| l.room == r.room));
                let others: Vec<RoomSummary> = others
                    .map(|r| RoomSummary {
                        room: r.room,
                        id: r.id,
                        node: Some(r.node.to_string()),
                        members: r.members,
                        topic: r.topic,
                        language: r.language,
                        private: false,
                    })
                    .collect();
                rooms.extend(others);
            }
            Err(e) => warn!("the cluster's rooms not read from Redis: {e}"),
        }
        rooms.sort_by(|a, b| a.room.cmp(&b.room).then_with(|| a.node.cmp(&b.node)));
        rooms
    }

    fn cluster(&self) -> Option<ClusterView> {
        let nodes = self.node.live_nodes();
        let others = nodes.iter().filter(|n| n.id != self.node.id).count();
        Some(ClusterView {
            node: self.node.id.to_string(),
            nodes: others + 1,
        })
    }

    async fn find(&self, room: &str) -> Option<RoomHandle> {
        self.node.local.find(room).await
    }

    async fn shutdown(&self) {
        self.node.drain(self.drain_timeout).await;
        self.node.leave_cluster().await;
    }
}
