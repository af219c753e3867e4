//! This node in the cluster: its heartbeat, its room leases, its rooms' chat in Redis, and the
//! relays both ways.
//!
//! - A member whose WebSocket is here and whose room runs on another node is *relayed*: their
//!   messages go to the room's node in `to_room` envelopes, and the room's messages for them
//!   come back in `to_member` envelopes into their connection's queue.
//! - A member whose WebSocket is on another node and whose room runs here is *hosted*: a task
//!   here holds their membership of the local room, passes it what arrives, and sends back
//!   what the room has for them.
//!
//! Nothing here holds a lock across an `.await`, and the bus is read by one task that never
//! waits on Redis or on a room: what needs waiting is handed to tasks of its own, bounded in
//! number.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use free4chat_signal::{
    ByeReason, ChatMessage, ClientMsg, ErrorCode, MemberId, ServerMsg, check_chat_msg,
    validate_language, validate_local_mutes, validate_nickname, validate_password,
    validate_room_name, validate_sources, validate_topic, validate_video_view,
};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tracing::{debug, info, warn};

use super::bus::{Batch, Body, Envelope, JoinAsk, JoinOutcome, MAX_BATCH};
use super::lease::{Claim, Renewal};
use super::registry::{DeathWatch, NodeInfo, choose_node};
use super::store::{Delivery, PublicRoom, Store, StoreError, bus_channel};
use super::{BEAT_EVERY, CHAT_TTL, HEARTBEAT_TTL, LEASE_TTL, NodeId, RENEW_EVERY};
use crate::rooms::{
    Earlier, JoinRequest, LocalDirectory, LocalJoin, MEMBER_QUEUE, MemberTx, Membership, Refusal,
    RoomObserver, RoomRelay,
};

/// How long a relayed message may wait for Redis, and for the other node to listen, before
/// it counts as lost: long enough to ride out a short Redis restart.
const RELAY_PATIENCE: Duration = Duration::from_secs(3);
/// How long a node waits for another's answer to a join or a list.
const ANSWER_WITHIN: Duration = Duration::from_millis(1500);
/// Messages from the bus waiting for a hosted member's task.
const HOSTED_INBOX: usize = 64;
/// Bus envelopes read but not yet handled.
pub const DELIVERY_QUEUE: usize = 4096;
/// Chat messages and room ends waiting to be written to Redis.
const ROOM_EVENT_QUEUE: usize = 1024;
/// Tasks the bus may start at once (joins, lists, replies to strays).
const BUS_TASKS: usize = 256;
/// How long a relayed member who said `leave` keeps their route, for the room's `bye`.
const LEAVE_GRACE: Duration = Duration::from_secs(2);

/// What a room tells the cluster, queued for the task that writes it to Redis.
enum RoomEvent {
    Chat(String, ChatMessage),
    ChatCleared(String),
    /// A message changed: the room's whole chat as it is now, to store in place of the old.
    ChatChanged(String, Vec<ChatMessage>),
    Closed(String),
}

/// Passes the rooms' chat and ends to the node without ever waiting.
pub struct Observer {
    tx: mpsc::Sender<RoomEvent>,
}

impl RoomObserver for Observer {
    fn chat(&self, room: &str, message: &ChatMessage) {
        if self
            .tx
            .try_send(RoomEvent::Chat(room.to_owned(), message.clone()))
            .is_err()
        {
            warn!(room, "chat not stored in Redis: its queue is full");
        }
    }

    fn chat_cleared(&self, room: &str) {
        if self
            .tx
            .try_send(RoomEvent::ChatCleared(room.to_owned()))
            .is_err()
        {
            warn!(room, "chat not cleared in Redis: its queue is full");
        }
    }

    fn chat_changed(&self, room: &str, history: &[ChatMessage]) {
        if self
            .tx
            .try_send(RoomEvent::ChatChanged(room.to_owned(), history.to_vec()))
            .is_err()
        {
            warn!(room, "chat change not stored in Redis: its queue is full");
        }
    }

    fn closed(&self, room: &str) {
        let _ = self.tx.try_send(RoomEvent::Closed(room.to_owned()));
    }
}

/// The observer for this node's rooms, and where what it sees arrives.
pub fn observer() -> (Arc<Observer>, RoomEvents) {
    let (tx, rx) = mpsc::channel(ROOM_EVENT_QUEUE);
    (Arc::new(Observer { tx }), RoomEvents(rx))
}

pub struct RoomEvents(mpsc::Receiver<RoomEvent>);

/// A member here whose room runs on another node.
struct Relayed {
    owner: NodeId,
    out: MemberTx,
    /// The sequence number the next `to_member` must carry.
    next_in: u64,
}

/// A member of a room here whose WebSocket is on another node.
struct Hosted {
    origin: NodeId,
    inbox: mpsc::Sender<Inbound>,
}

enum Inbound {
    Msg { seq: u64, msg: ClientMsg },
    Leave { said_leave: bool },
}

enum Pending {
    Join(oneshot::Sender<JoinOutcome>),
}

/// Why a member did not get into a room on this node.
pub enum Here {
    Refused(Refusal),
    /// Another node holds the room.
    Elsewhere(NodeId),
    /// This node takes no new room now.
    NoNewRooms,
    Unavailable(StoreError),
}

/// Why a relayed join got no outcome.
pub enum NoOutcome {
    /// The node did not listen or did not answer in time.
    NoAnswer,
    Unavailable(StoreError),
}

/// What a node says of itself, apart from what changes.
pub struct Identity {
    pub id: NodeId,
    pub http: String,
    pub media: Vec<String>,
}

pub struct Node {
    pub id: NodeId,
    pub store: Store,
    pub local: LocalDirectory,
    http: String,
    media: Vec<String>,
    draining: AtomicBool,
    /// Set once the node has said goodbye: it beats no more.
    stopped: AtomicBool,
    /// The live nodes as last read, with this node's choices since.
    view: Mutex<Vec<NodeInfo>>,
    watch: Mutex<DeathWatch>,
    relayed: Mutex<HashMap<MemberId, Relayed>>,
    hosted: Mutex<HashMap<MemberId, Hosted>>,
    pending: Mutex<HashMap<u64, Pending>>,
    next_req: AtomicU64,
    bus_tasks: Arc<Semaphore>,
    cpu: Mutex<CpuMeter>,
}

/// Locks a mutex whose data stays whole even if a holder panicked (every change under these
/// locks is a single insert, remove or assignment).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Node {
    /// Starts the node's tasks: heartbeat, leases, the rooms' events, and the bus.
    pub fn start(
        identity: Identity,
        store: Store,
        local: LocalDirectory,
        deliveries: mpsc::Receiver<Delivery>,
        events: RoomEvents,
    ) -> Arc<Node> {
        let node = Arc::new(Node {
            id: identity.id,
            store,
            local,
            http: identity.http,
            media: identity.media,
            draining: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            view: Mutex::new(Vec::new()),
            watch: Mutex::new(DeathWatch::new(HEARTBEAT_TTL)),
            relayed: Mutex::new(HashMap::new()),
            hosted: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
            next_req: AtomicU64::new(1),
            bus_tasks: Arc::new(Semaphore::new(BUS_TASKS)),
            cpu: Mutex::new(CpuMeter::new()),
        });
        tokio::spawn(node.clone().beat_loop());
        tokio::spawn(node.clone().renew_loop());
        tokio::spawn(node.clone().room_events(events));
        tokio::spawn(node.clone().bus_loop(deliveries));
        node
    }

    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Nodes alive as last read (this one included once it has beaten).
    pub fn live_nodes(&self) -> Vec<NodeInfo> {
        lock(&self.view).clone()
    }

    /// Relayed and hosted members now.
    pub fn relays(&self) -> (usize, usize) {
        (lock(&self.relayed).len(), lock(&self.hosted).len())
    }

    // ---- heartbeat -------------------------------------------------------------------------

    fn info(&self) -> NodeInfo {
        let counts = crate::rooms::RoomDirectory::counts(&self.local);
        let limits = self.local.limits();
        NodeInfo {
            id: self.id.clone(),
            http: self.http.clone(),
            media: self.media.clone(),
            members: counts.members,
            rooms: counts.rooms,
            cpu: lock(&self.cpu).sample(),
            max_members: limits.max_members,
            max_rooms: limits.max_rooms,
            draining: self.draining(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }

    /// Publishes this node's record now.
    pub async fn beat(&self) -> Result<(), StoreError> {
        self.store.beat(&self.info(), HEARTBEAT_TTL).await
    }

    async fn beat_loop(self: Arc<Node>) {
        let mut tick = tokio::time::interval(BEAT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut reachable = true;
        loop {
            tick.tick().await;
            if self.stopped.load(Ordering::SeqCst) {
                return;
            }
            let read = async {
                self.beat().await?;
                self.store.nodes().await
            };
            match read.await {
                Ok((nodes, problems)) => {
                    if !reachable {
                        info!("Redis reachable again: this node is registered");
                        reachable = true;
                    }
                    for p in problems {
                        warn!("a node record in Redis does not read: {p}");
                    }
                    let alive: Vec<NodeId> = nodes.iter().map(|n| n.id.clone()).collect();
                    *lock(&self.view) = nodes;
                    let dead = lock(&self.watch).alive(Instant::now(), &alive);
                    for d in dead {
                        self.node_died(&d);
                    }
                }
                Err(e) => {
                    if reachable {
                        warn!("Redis unreachable: {e}; rooms running here go on");
                        reachable = false;
                    }
                    lock(&self.watch).unreachable();
                }
            }
        }
    }

    /// A node's heartbeat is gone: members here whose room ran there are told to reconnect
    /// (their room starts again elsewhere), and its members in rooms here are let go.
    fn node_died(&self, dead: &NodeId) {
        let orphans: Vec<(MemberId, Relayed)> = {
            let mut relayed = lock(&self.relayed);
            let ids: Vec<MemberId> = relayed
                .iter()
                .filter(|(_, r)| r.owner == *dead)
                .map(|(id, _)| *id)
                .collect();
            ids.into_iter()
                .filter_map(|id| relayed.remove(&id).map(|r| (id, r)))
                .collect()
        };
        let strays = {
            let mut hosted = lock(&self.hosted);
            let before = hosted.len();
            // Dropping a member's inbox ends their task, which lets them go.
            hosted.retain(|_, h| h.origin != *dead);
            before - hosted.len()
        };
        lock(&self.view).retain(|n| n.id != *dead);
        warn!(
            node = %dead,
            told_to_reconnect = orphans.len(),
            let_go = strays,
            "node died"
        );
        for (_, r) in orphans {
            let bye = ServerMsg::Bye {
                reason: ByeReason::ServerShutdown,
            };
            let _ = r.out.try_send(Arc::new(bye));
        }
    }

    // ---- leases ----------------------------------------------------------------------------

    async fn renew_loop(self: Arc<Node>) {
        let mut tick = tokio::time::interval(RENEW_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if self.stopped.load(Ordering::SeqCst) {
                return;
            }
            let rooms = self.local.room_names().await;
            match self
                .store
                .renew(&rooms, &self.id, LEASE_TTL, CHAT_TTL)
                .await
            {
                Ok(renewals) => {
                    for (room, renewal) in rooms.iter().zip(renewals) {
                        match renewal {
                            Renewal::Renewed => {}
                            Renewal::Retaken => info!(room, "room lease taken again"),
                            Renewal::Lost => {
                                warn!(room, "room lease lost to another node: closing here");
                                self.local.close_room(room, ByeReason::ServerShutdown).await;
                            }
                        }
                    }
                }
                // The rooms go on; the leases are taken again once Redis answers.
                Err(e) => debug!("leases not renewed: {e}"),
            }
            self.publish_rooms().await;
        }
    }

    /// Writes this node's public rooms' summaries, for every node's room list; they expire
    /// with the leases unless written again.
    async fn publish_rooms(&self) {
        let rooms = crate::rooms::RoomDirectory::rooms(&self.local).await;
        let public: Vec<PublicRoom> = rooms
            .into_iter()
            .filter(|r| !r.private)
            .map(|r| PublicRoom {
                room: r.room,
                id: r.id,
                node: self.id.clone(),
                members: r.members,
                topic: r.topic,
                language: r.language,
            })
            .collect();
        if let Err(e) = self.store.publish_rooms(&public, LEASE_TTL).await {
            debug!("room summaries not written: {e}");
        }
    }

    /// Joins `member` into a room running here, or claims the room and makes it here.
    pub async fn join_here(
        &self,
        member: MemberId,
        request: &JoinRequest,
    ) -> Result<Membership, Here> {
        match self.local.join_as(member, request, None).await {
            Ok(m) => return Ok(m),
            Err(LocalJoin::Refused(r)) => return Err(Here::Refused(r)),
            Err(LocalJoin::NoRoom) => {}
        }
        if self.draining() {
            return Err(Here::NoNewRooms);
        }
        match self.store.claim(&request.room, &self.id, LEASE_TTL).await {
            Ok(Claim::Won) => {}
            Ok(Claim::Held(owner)) => return Err(Here::Elsewhere(owner)),
            Err(e) => return Err(Here::Unavailable(e)),
        }
        // A private room stays private wherever it starts again: without its hash, the room
        // (and its stored chat) would open to anyone. If it cannot be read, no room is made.
        let password_hash = match self.store.secret(&request.room).await {
            Ok(h) => h.map(Arc::from),
            Err(e) => {
                let _ = self.store.release(&request.room, &self.id).await;
                return Err(Here::Unavailable(e));
            }
        };
        let history = match self.store.chat(&request.room).await {
            Ok(h) => h,
            Err(e) => {
                warn!(room = request.room, "room's chat not read from Redis: {e}");
                Vec::new()
            }
        };
        let inherited = password_hash.is_some();
        let earlier = Earlier {
            history,
            password_hash,
        };
        let joined = match self.local.join_as(member, request, Some(earlier)).await {
            Ok(m) => m,
            Err(LocalJoin::Refused(r)) => return Err(Here::Refused(r)),
            Err(LocalJoin::NoRoom) => return Err(Here::NoNewRooms),
        };
        // A room made private here: its hash goes to Redis, for its next life.
        if !inherited {
            let made = crate::rooms::RoomDirectory::find(&self.local, &request.room).await;
            if let Some(phc) = made.and_then(|h| h.password_hash())
                && let Err(e) = self.store.keep_secret(&request.room, &phc, CHAT_TTL).await
            {
                warn!(
                    room = request.room,
                    "private room's password hash not kept in Redis: {e}"
                );
            }
        }
        Ok(joined)
    }

    /// The node a new room goes to, avoiding `avoid`; this node's choice counts at once in its
    /// view, so that a burst of new rooms spreads before the next heartbeats are read.
    pub fn choose(&self, avoid: &[NodeId]) -> Option<NodeId> {
        let mut view = lock(&self.view);
        let candidates: Vec<NodeInfo> = view
            .iter()
            .filter(|n| !avoid.contains(&n.id))
            .cloned()
            .collect();
        if let Some(chosen) = choose_node(&candidates).map(|n| n.id.clone()) {
            if let Some(n) = view.iter_mut().find(|n| n.id == chosen) {
                n.rooms += 1;
                n.members += 1;
            }
            return Some(chosen);
        }
        // Before the first heartbeat is read, this node knows only itself.
        let alone = view.is_empty() && !avoid.contains(&self.id) && !self.draining();
        alone.then(|| self.id.clone())
    }

    // ---- the rooms' chat and ends ------------------------------------------------------------

    async fn room_events(self: Arc<Node>, mut events: RoomEvents) {
        while let Some(event) = events.0.recv().await {
            match event {
                RoomEvent::Chat(room, message) => {
                    if let Err(e) = self.store.push_chat(&room, &message, CHAT_TTL).await {
                        warn!(room, "chat not stored in Redis: {e}");
                    }
                }
                RoomEvent::ChatCleared(room) => {
                    if let Err(e) = self.store.clear_chat(&room).await {
                        warn!(room, "chat not cleared in Redis: {e}");
                    }
                }
                RoomEvent::ChatChanged(room, history) => {
                    if let Err(e) = self.store.replace_chat(&room, &history, CHAT_TTL).await {
                        warn!(room, "chat change not stored in Redis: {e}");
                    }
                }
                RoomEvent::Closed(room) => {
                    // A room of that name made here again since keeps the lease.
                    if self.local.room_names().await.contains(&room) {
                        continue;
                    }
                    if let Err(e) = self.store.release(&room, &self.id).await {
                        debug!(room, "lease not released (it expires anyway): {e}");
                    }
                }
            }
        }
    }

    // ---- the bus -----------------------------------------------------------------------------

    /// Sends one envelope; Ok(false) if nobody listens on the node's channel.
    async fn send(&self, to: &NodeId, body: Body) -> Result<bool, StoreError> {
        let payload = Envelope::new(&self.id, body).to_json();
        Ok(self.store.publish(to, &payload).await? > 0)
    }

    /// Sends one envelope, trying again while Redis is away or the node is not listening,
    /// for at most [`RELAY_PATIENCE`]. Returns whether it was delivered.
    async fn send_patiently(&self, to: &NodeId, body: Body) -> bool {
        let payload = Envelope::new(&self.id, body).to_json();
        let deadline = Instant::now() + RELAY_PATIENCE;
        loop {
            match self.store.publish(to, &payload).await {
                Ok(n) if n > 0 => return true,
                Ok(_) => debug!(node = %to, "nobody listens on the node's channel yet"),
                Err(e) => debug!(node = %to, "relay not sent: {e}"),
            }
            if Instant::now() + Duration::from_millis(200) > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Sends `body` (made with a fresh request number) and waits up to [`ANSWER_WITHIN`]
    /// for the answer that `pending` stands ready to take.
    async fn ask<T>(
        &self,
        to: &NodeId,
        body: impl FnOnce(u64) -> Body,
        (pending, answer): (Pending, oneshot::Receiver<T>),
    ) -> Result<T, NoOutcome> {
        let req = self.next_req.fetch_add(1, Ordering::Relaxed);
        lock(&self.pending).insert(req, pending);
        let outcome = match self.send(to, body(req)).await {
            Ok(true) => match tokio::time::timeout(ANSWER_WITHIN, answer).await {
                Ok(Ok(answer)) => Ok(answer),
                _ => Err(NoOutcome::NoAnswer),
            },
            Ok(false) => Err(NoOutcome::NoAnswer),
            Err(e) => Err(NoOutcome::Unavailable(e)),
        };
        // Answered or not, the question is closed: a late answer finds nothing.
        lock(&self.pending).remove(&req);
        outcome
    }

    /// Asks node `to` to take `member` into the room; the member's route is in place before
    /// the question goes, so the room's first messages find it.
    pub async fn relay_join(
        &self,
        to: &NodeId,
        member: MemberId,
        request: &JoinRequest,
    ) -> Result<JoinOutcome, NoOutcome> {
        lock(&self.relayed).insert(
            member,
            Relayed {
                owner: to.clone(),
                out: request.out.clone(),
                next_in: 1,
            },
        );
        lock(&self.watch).watch(to);
        let (tx, rx) = oneshot::channel();
        let outcome = self
            .ask(
                to,
                |req| Body::Join {
                    req,
                    member,
                    ask: JoinAsk {
                        room: request.room.clone(),
                        name: request.name.clone(),
                        muted: request.muted,
                        host: request.host.clone(),
                        tag: request.tag.clone(),
                        password: request.password.clone(),
                        topic: request.topic.clone(),
                        language: request.language.clone(),
                        ip: request.ip,
                        moderator: request.moderator,
                    },
                },
                (Pending::Join(tx), rx),
            )
            .await;
        if !matches!(outcome, Ok(JoinOutcome::Joined)) {
            lock(&self.relayed).remove(&member);
        }
        outcome
    }

    async fn bus_loop(self: Arc<Node>, mut deliveries: mpsc::Receiver<Delivery>) {
        if let Err(e) = self.store.subscribe(&self.id).await {
            warn!("not listening on the bus yet: {e}");
        }
        let channel = bus_channel(&self.id);
        while let Some((on, payload)) = deliveries.recv().await {
            if on != channel {
                continue;
            }
            match Envelope::parse(&payload) {
                Ok(envelope) => self.dispatch(envelope),
                Err(e) => warn!("an envelope from the bus was refused: {e}"),
            }
        }
    }

    /// Runs `f` as a task of its own if the bus may start one more; else drops it.
    fn spawn_bounded<F>(&self, what: &str, f: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        match self.bus_tasks.clone().try_acquire_owned() {
            Ok(permit) => {
                tokio::spawn(async move {
                    f.await;
                    drop(permit);
                });
            }
            Err(_) => warn!("bus busy: {what} dropped"),
        }
    }

    /// Handles one envelope without waiting on anything.
    fn dispatch(self: &Arc<Node>, envelope: Envelope) {
        let from = envelope.from;
        match envelope.body {
            Body::Join { req, member, ask } => {
                let node = self.clone();
                self.spawn_bounded("a join", async move {
                    let outcome = node.host_join(&from, member, ask).await;
                    let _ = node.send(&from, Body::JoinReply { req, outcome }).await;
                });
            }
            Body::JoinReply { req, outcome } => {
                if let Some(Pending::Join(tx)) = lock(&self.pending).remove(&req) {
                    let _ = tx.send(outcome);
                }
            }
            Body::ToRoom { member, seq, msg } => {
                self.to_hosted(&from, member, Inbound::Msg { seq, msg })
            }
            Body::Leave { member, said_leave } => {
                self.to_hosted(&from, member, Inbound::Leave { said_leave })
            }
            Body::ToMember { member, seq, msgs } => self.to_relayed(&from, member, seq, msgs),
            Body::Gone { member } => {
                let route = {
                    let mut relayed = lock(&self.relayed);
                    match relayed.get(&member) {
                        Some(r) if r.owner == from => relayed.remove(&member),
                        _ => None,
                    }
                };
                // A member let go without a word (stalled, out of step) is told to come back.
                if let Some(r) = route {
                    let bye = ServerMsg::Bye {
                        reason: ByeReason::ServerShutdown,
                    };
                    let _ = r.out.try_send(Arc::new(bye));
                }
            }
        }
    }

    /// Passes what arrived for a hosted member to their task.
    fn to_hosted(self: &Arc<Node>, from: &NodeId, member: MemberId, inbound: Inbound) {
        let mut hosted = lock(&self.hosted);
        let Some(h) = hosted.get(&member) else {
            drop(hosted);
            // Not (or no longer) here: their connection's node lets them go too.
            if matches!(inbound, Inbound::Msg { .. }) {
                let (node, from) = (self.clone(), from.clone());
                self.spawn_bounded("a stray's goodbye", async move {
                    let _ = node.send(&from, Body::Gone { member }).await;
                });
            }
            return;
        };
        if h.origin != *from {
            return;
        }
        if h.inbox.try_send(inbound).is_err() {
            // Their task cannot keep up: dropping the inbox lets them go.
            warn!(%member, "relayed member's messages overflowed: dropped");
            hosted.remove(&member);
        }
    }

    /// Passes the room's messages to a relayed member's connection, in order.
    fn to_relayed(
        self: &Arc<Node>,
        from: &NodeId,
        member: MemberId,
        seq: u64,
        msgs: Vec<ServerMsg>,
    ) {
        let mut relayed = lock(&self.relayed);
        let Some(r) = relayed.get_mut(&member) else {
            drop(relayed);
            let (node, from) = (self.clone(), from.clone());
            self.spawn_bounded("a stray's goodbye", async move {
                let body = Body::Leave {
                    member,
                    said_leave: false,
                };
                let _ = node.send(&from, body).await;
            });
            return;
        };
        if r.owner != *from {
            return;
        }
        let mut broken = seq != r.next_in;
        if broken {
            warn!(%member, seq, expected = r.next_in, "relayed messages lost: member told to reconnect");
        } else {
            r.next_in += 1;
            for msg in msgs {
                if r.out.try_send(Arc::new(msg)).is_err() {
                    // A full queue: the connection stalled (or is gone).
                    broken = true;
                    break;
                }
            }
        }
        if !broken {
            return;
        }
        if let Some(r) = relayed.remove(&member) {
            drop(relayed);
            let bye = ServerMsg::Bye {
                reason: ByeReason::ServerShutdown,
            };
            let _ = r.out.try_send(Arc::new(bye));
            let node = self.clone();
            self.spawn_bounded("a relayed member's leave", async move {
                let body = Body::Leave {
                    member,
                    said_leave: false,
                };
                let _ = node.send(&r.owner, body).await;
            });
        }
    }

    /// Takes a member relayed from node `from` into a room here (or says where it runs).
    async fn host_join(
        self: &Arc<Node>,
        from: &NodeId,
        member: MemberId,
        ask: JoinAsk,
    ) -> JoinOutcome {
        let refused = |code, message: &str| JoinOutcome::Refused {
            code,
            message: message.to_owned(),
        };
        let JoinAsk {
            room,
            name,
            muted,
            host,
            tag,
            password,
            topic,
            language,
            ip,
            moderator,
        } = ask;
        // Checked again: the other node checked them, but this is input from outside.
        if let Err(e) = validate_room_name(&room) {
            return refused(e.code, e.message);
        }
        let name = match validate_nickname(&name) {
            Ok(n) => n,
            Err(e) => return refused(e.code, e.message),
        };
        if let Some(Err(e)) = password.as_deref().map(validate_password) {
            return refused(e.code, e.message);
        }
        let (topic, language) = match (validate_topic(&topic), validate_language(&language)) {
            (Ok(t), Ok(l)) => (t, l),
            (Err(e), _) | (_, Err(e)) => return refused(e.code, e.message),
        };
        let host = host.filter(|h| crate::ice::valid_host(h));
        let tag = tag.filter(|t| crate::rooms::tag::is_tag(t));
        if member.0 == 0 || lock(&self.hosted).contains_key(&member) {
            return refused(ErrorCode::BadMessage, "that member id is taken");
        }
        let (out_tx, out_rx) = mpsc::channel(MEMBER_QUEUE);
        let request = JoinRequest {
            room,
            name,
            muted,
            tag,
            out: out_tx,
            host,
            password,
            topic,
            language,
            ip,
            moderator,
        };
        let joined = self.join_here(member, &request).await;
        // The room holds the only sender now: when it lets the member go, the queue closes.
        drop(request);
        match joined {
            Ok(membership) => {
                let (inbox_tx, inbox_rx) = mpsc::channel(HOSTED_INBOX);
                lock(&self.hosted).insert(
                    member,
                    Hosted {
                        origin: from.clone(),
                        inbox: inbox_tx,
                    },
                );
                lock(&self.watch).watch(from);
                let task = HostedTask {
                    node: self.clone(),
                    member,
                    origin: from.clone(),
                    membership: Some(membership),
                    out: out_rx,
                    inbox: inbox_rx,
                };
                tokio::spawn(task.run());
                JoinOutcome::Joined
            }
            Err(Here::Refused(r)) => JoinOutcome::Refused {
                code: r.code,
                message: r.message,
            },
            Err(Here::Elsewhere(owner)) => JoinOutcome::Elsewhere { owner },
            Err(Here::NoNewRooms) => JoinOutcome::NotHere,
            Err(Here::Unavailable(e)) => refused(ErrorCode::ClusterUnavailable, &e.to_string()),
        }
    }

    /// The relay of a member here to their room on node `owner`, once joined.
    pub fn relay(self: &Arc<Node>, owner: NodeId) -> Arc<dyn RoomRelay> {
        Arc::new(RelayLink {
            node: self.clone(),
            owner,
            seq: AtomicU64::new(0),
        })
    }

    /// Whether more members may be relayed from here.
    pub fn may_relay(&self) -> bool {
        lock(&self.relayed).len() < self.local.limits().max_members
    }

    // ---- stopping ------------------------------------------------------------------------------

    /// Stops taking rooms and moves every member elsewhere: the rooms here close (their
    /// members, here or relayed from other nodes, are told to reconnect, and do so through
    /// the load balancer to other nodes), their leases are given up, and members here in
    /// rooms elsewhere are told to reconnect too. Returns once the rooms here have ended and
    /// the hosted members' last messages have gone.
    pub async fn drain(self: &Arc<Node>, patience: Duration) {
        self.draining.store(true, Ordering::SeqCst);
        if let Err(e) = self.beat().await {
            warn!("could not say in Redis that this node is draining: {e}");
        }
        let names = self.local.room_names().await;
        info!(
            rooms = names.len(),
            "draining: moving every member to other nodes"
        );
        let routes: Vec<(MemberId, Relayed)> = lock(&self.relayed).drain().collect();
        for (member, r) in routes {
            for msg in [
                ServerMsg::error(ErrorCode::ShuttingDown, "this node is stopping"),
                ServerMsg::Bye {
                    reason: ByeReason::ServerShutdown,
                },
            ] {
                let _ = r.out.try_send(Arc::new(msg));
            }
            let node = self.clone();
            self.spawn_bounded("a drained member's leave", async move {
                let body = Body::Leave {
                    member,
                    said_leave: false,
                };
                let _ = node.send(&r.owner, body).await;
            });
        }
        let closing = crate::rooms::RoomDirectory::shutdown(&self.local);
        if tokio::time::timeout(patience, closing).await.is_err() {
            warn!("rooms did not close in time");
        }
        for room in &names {
            let _ = self.store.release(room, &self.id).await;
        }
        let deadline = Instant::now() + patience.min(RELAY_PATIENCE + Duration::from_secs(1));
        while !lock(&self.hosted).is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Says goodbye in Redis: this node's record goes, and it beats no more.
    pub async fn leave_cluster(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        if let Err(e) = self.store.forget_node(&self.id).await {
            warn!("node record not removed from Redis (it expires anyway): {e}");
        }
    }
}

/// A relayed member's way to their room on another node.
struct RelayLink {
    node: Arc<Node>,
    owner: NodeId,
    /// The last sequence number sent.
    seq: AtomicU64,
}

#[async_trait::async_trait]
impl RoomRelay for RelayLink {
    async fn send(&self, member: MemberId, msg: ClientMsg) -> bool {
        if !lock(&self.node.relayed).contains_key(&member) {
            return false;
        }
        let seq = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
        let body = Body::ToRoom { member, seq, msg };
        if self.node.send_patiently(&self.owner, body).await {
            return true;
        }
        warn!(%member, node = %self.owner, "member's message could not reach their room");
        if let Some(r) = lock(&self.node.relayed).remove(&member) {
            for msg in [
                ServerMsg::error(
                    ErrorCode::ClusterUnavailable,
                    "the room's node cannot be reached",
                ),
                ServerMsg::Bye {
                    reason: ByeReason::ServerShutdown,
                },
            ] {
                let _ = r.out.try_send(Arc::new(msg));
            }
        }
        false
    }

    async fn leave(&self, member: MemberId, said_leave: bool) {
        let body = Body::Leave { member, said_leave };
        let _ = self.node.send(&self.owner, body).await;
        if !said_leave {
            lock(&self.node.relayed).remove(&member);
            return;
        }
        // The room's `bye` is on its way: the route stays a little for it.
        let node = self.node.clone();
        tokio::spawn(async move {
            tokio::time::sleep(LEAVE_GRACE).await;
            lock(&node.relayed).remove(&member);
        });
    }
}

/// A member of a room here whose WebSocket is on node `origin`.
struct HostedTask {
    node: Arc<Node>,
    member: MemberId,
    origin: NodeId,
    membership: Option<Membership>,
    /// What the room sends the member.
    out: mpsc::Receiver<Arc<ServerMsg>>,
    inbox: mpsc::Receiver<Inbound>,
}

impl HostedTask {
    async fn run(mut self) {
        let mut next_in = 1u64;
        let mut seq_out = 0u64;
        let mut buf = Vec::with_capacity(MAX_BATCH);
        loop {
            tokio::select! {
                n = self.out.recv_many(&mut buf, MAX_BATCH) => {
                    // The room let the member go, and everything it had for them is sent.
                    if n == 0 {
                        break;
                    }
                    if !self.forward(&mut buf, &mut seq_out).await {
                        warn!(member = %self.member, node = %self.origin, "relayed member unreachable: dropped");
                        break;
                    }
                }
                inbound = self.inbox.recv(), if self.membership.is_some() => match inbound {
                    // Their node died, or their messages overflowed.
                    None => self.leave(false).await,
                    Some(Inbound::Leave { said_leave }) => self.leave(said_leave).await,
                    Some(Inbound::Msg { seq, msg }) => {
                        if seq != next_in {
                            warn!(member = %self.member, seq, expected = next_in, "relayed messages lost: member dropped");
                            self.leave(false).await;
                            continue;
                        }
                        next_in += 1;
                        if let (Some(msg), Some(m)) = (in_room_message(msg), &self.membership) {
                            m.send(msg).await;
                        }
                    }
                },
            }
        }
        self.leave(false).await;
        {
            let mut hosted = lock(&self.node.hosted);
            if hosted
                .get(&self.member)
                .is_some_and(|h| h.origin == self.origin)
            {
                hosted.remove(&self.member);
            }
        }
        let _ = self
            .node
            .send(
                &self.origin,
                Body::Gone {
                    member: self.member,
                },
            )
            .await;
    }

    async fn leave(&mut self, said_leave: bool) {
        if let Some(m) = self.membership.take() {
            m.leave(said_leave).await;
        }
    }

    /// Sends the room's messages in envelopes of bounded size; false if they could not go.
    async fn forward(&self, buf: &mut Vec<Arc<ServerMsg>>, seq: &mut u64) -> bool {
        let mut batch = Batch::default();
        let msgs: Vec<Arc<ServerMsg>> = std::mem::take(buf);
        let last = msgs.len();
        for (i, msg) in msgs.into_iter().enumerate() {
            let full = batch.push(Arc::unwrap_or_clone(msg));
            if full || i + 1 == last {
                *seq += 1;
                let body = Body::ToMember {
                    member: self.member,
                    seq: *seq,
                    msgs: batch.take(),
                };
                if !self.node.send_patiently(&self.origin, body).await {
                    return false;
                }
            }
        }
        true
    }
}

/// A member's in-room message from another node, checked as the connection checks it; none
/// if it is not one a room takes or does not pass.
fn in_room_message(msg: ClientMsg) -> Option<ClientMsg> {
    let ok = match &msg {
        ClientMsg::Rename { name } => {
            return validate_nickname(name)
                .ok()
                .map(|name| ClientMsg::Rename { name });
        }
        ClientMsg::Chat { .. }
        | ClientMsg::ChatEdit { .. }
        | ClientMsg::ChatDelete { .. }
        | ClientMsg::ChatReact { .. } => check_chat_msg(&msg).is_ok(),
        ClientMsg::Offer { sources, .. } => {
            sources.as_ref().is_none_or(|s| validate_sources(s).is_ok())
        }
        ClientMsg::LocalMutes { ids } => validate_local_mutes(ids).is_ok(),
        ClientMsg::VideoView { tracks } => validate_video_view(tracks).is_ok(),
        // The room checks a topic and a language again itself.
        ClientMsg::Answer { .. }
        | ClientMsg::Candidate { .. }
        | ClientMsg::Mute { .. }
        | ClientMsg::Video { .. }
        | ClientMsg::SetRoom { .. }
        | ClientMsg::MuteMember { .. }
        | ClientMsg::RemoveMember { .. }
        | ClientMsg::MakeModerator { .. }
        | ClientMsg::ClearChat
        | ClientMsg::Hand { .. }
        | ClientMsg::LowerHand { .. } => true,
        ClientMsg::Join { .. } | ClientMsg::Leave | ClientMsg::Ping => false,
    };
    ok.then_some(msg)
}

/// The share of the machine's cores this process used since the last sample.
struct CpuMeter {
    last: Option<(Instant, Duration)>,
    cores: f64,
}

impl CpuMeter {
    fn new() -> CpuMeter {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        CpuMeter {
            last: None,
            cores: cores as f64,
        }
    }

    fn sample(&mut self) -> f64 {
        let now = Instant::now();
        let Some(used) = process_cpu_time() else {
            return 0.0;
        };
        let share = match self.last {
            Some((t, before)) if now > t => {
                let wall = now.duration_since(t).as_secs_f64() * self.cores;
                (used.saturating_sub(before).as_secs_f64() / wall).clamp(0.0, 1.0)
            }
            _ => 0.0,
        };
        self.last = Some((now, used));
        share
    }
}

/// The processor time this process has used, user and system.
fn process_cpu_time() -> Option<Duration> {
    // SAFETY: getrusage writes into the zeroed struct we own and reads nothing else.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return None;
    }
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    Some(time(usage.ru_utime) + time(usage.ru_stime))
}

#[cfg(test)]
mod tests {
    use super::*;
    use free4chat_signal::MAX_CHAT_CHARS;

    #[test]
    fn a_relayed_message_is_checked_again_as_the_connection_checks_it() {
        let ok = [
            ClientMsg::Mute { muted: true },
            ClientMsg::Chat {
                text: "hi".into(),
                client_ref: Some("r1".into()),
                reply_to: Some(1),
            },
            ClientMsg::ChatEdit {
                seq: 1,
                text: "better".into(),
            },
            ClientMsg::ChatDelete { seq: 1 },
            ClientMsg::ChatReact {
                seq: 1,
                emoji: "👍".into(),
                on: true,
            },
            ClientMsg::Rename {
                name: " Ann ".into(),
            },
        ];
        for msg in ok {
            assert!(in_room_message(msg.clone()).is_some(), "{msg:?}");
        }
        assert_eq!(
            in_room_message(ClientMsg::Rename {
                name: " Ann ".into()
            }),
            Some(ClientMsg::Rename { name: "Ann".into() })
        );
        let refused = [
            ClientMsg::Chat {
                text: "x".repeat(MAX_CHAT_CHARS + 1),
                client_ref: None,
                reply_to: None,
            },
            ClientMsg::Chat {
                text: "hi".into(),
                client_ref: Some("\u{7}".into()),
                reply_to: None,
            },
            ClientMsg::ChatEdit {
                seq: 1,
                text: " ".into(),
            },
            ClientMsg::ChatReact {
                seq: 1,
                emoji: "<3".into(),
                on: true,
            },
            ClientMsg::Rename {
                name: String::new(),
            },
            ClientMsg::LocalMutes {
                ids: vec![MemberId(1); free4chat_signal::MAX_LOCAL_MUTES + 1],
            },
            ClientMsg::VideoView {
                tracks: vec![free4chat_signal::TileView {
                    peer: MemberId(1),
                    id: "1".into(),
                    width: u32::MAX,
                    height: 1,
                }],
            },
            ClientMsg::Leave,
            ClientMsg::Ping,
            ClientMsg::Join {
                v: 1,
                room: "r".into(),
                name: "n".into(),
                muted: false,
                key: None,
                password: None,
                topic: None,
                language: None,
                token: None,
            },
        ];
        for msg in refused {
            assert!(in_room_message(msg.clone()).is_none(), "{msg:?}");
        }
    }

    #[test]
    fn the_processor_share_stays_between_none_and_all() {
        let mut meter = CpuMeter::new();
        assert_eq!(meter.sample(), 0.0);
        let mut x = 0u64;
        for i in 0..1_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let share = meter.sample();
        assert!((0.0..=1.0).contains(&share), "{share}");
    }
}
