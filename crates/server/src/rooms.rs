//! Rooms: who is in each, their names and mute state, the chat history, and the link to the
//! media worker that carries the room's media.
//!
//! Each room is one task that owns its state; connections talk to it over a channel, and the
//! media worker reports to it over another. The registry maps names to running rooms; a room
//! is created by the first join and removes itself, freeing everything, when the last member
//! leaves.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use free4chat_media::worker::{WorkerHandle, WorkerMsg, WorkerStats};
use free4chat_media::{MediaCmd, MediaErrorCode, MediaEvent, RoomId, TrackKind};
use free4chat_signal::{
    ByeReason, CHAT_HISTORY_LEN, ChatMessage, ClientMsg, ErrorCode, IceServer, Member,
    PROTOCOL_VERSION, PeerId, ServerMsg, Sources, Track, TrackSource,
};
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::ice::IceServers;
use tracing::{debug, info, warn};

/// How many messages may wait for one member's connection before it counts as stalled.
pub const MEMBER_QUEUE: usize = 512;
/// How many messages may wait for one room.
const ROOM_QUEUE: usize = 1024;
/// How many media events may wait for one room.
const MEDIA_EVENT_QUEUE: usize = 1024;
/// How long after the last room closes the allocator is asked a second time to return memory.
const SETTLE_BEFORE_TRIM: Duration = Duration::from_secs(1);

/// What a room sends to one member's connection.
/// A member's outgoing queue. Messages travel behind an `Arc`: a broadcast shares one message
/// among all its recipients, and the queue's storage holds a pointer per slot rather than a
/// whole message (the channel allocates its slots 32 at a time, per member).
pub type MemberTx = mpsc::Sender<Arc<ServerMsg>>;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_rooms: usize,
    pub max_room_members: usize,
    pub max_peers: usize,
}

/// All rooms of this server.
pub struct Registry {
    rooms: Mutex<HashMap<String, RoomEntry>>,
    workers: Vec<Arc<WorkerHandle>>,
    /// Rooms per worker, to place a new room on the least loaded one.
    worker_rooms: Vec<AtomicUsize>,
    limits: Limits,
    /// Members a room keeps on its first worker before it spreads over the others (0: never).
    spread_at: usize,
    /// The STUN/TURN servers handed out in `joined`.
    ice: IceServers,
    next_room: AtomicU64,
    next_peer: AtomicU64,
    peers: AtomicUsize,
    room_count: AtomicUsize,
}

struct RoomEntry {
    id: RoomId,
    tx: mpsc::Sender<RoomCmd>,
}

/// Why a join was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: String,
}

impl Refusal {
    fn new(code: ErrorCode, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            message: message.into(),
        }
    }
}

enum RoomCmd {
    Join {
        peer: PeerId,
        name: String,
        muted: bool,
        out: MemberTx,
        ice_servers: Vec<IceServer>,
        reply: oneshot::Sender<JoinReply>,
    },
    /// A message from a joined member. Only the in-room kinds arrive here.
    Msg {
        peer: PeerId,
        msg: ClientMsg,
    },
    /// The member's connection is gone, or they said `leave`.
    Leave {
        peer: PeerId,
        said_leave: bool,
    },
    Shutdown,
}

enum JoinReply {
    Joined,
    Refused(Refusal),
    /// The room was closing; try again (a new room will be made).
    Retry,
}

/// A joined member's handle on their room.
pub struct Membership {
    pub peer: PeerId,
    room: mpsc::Sender<RoomCmd>,
}

impl Membership {
    /// Passes an in-room message to the room. Returns false if the room is gone.
    pub async fn send(&self, msg: ClientMsg) -> bool {
        let peer = self.peer;
        self.room.send(RoomCmd::Msg { peer, msg }).await.is_ok()
    }

    pub async fn leave(self, said_leave: bool) {
        let peer = self.peer;
        let _ = self.room.send(RoomCmd::Leave { peer, said_leave }).await;
    }
}

/// What `/api/health` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub rooms: usize,
    pub peers: usize,
}

impl Registry {
    pub fn new(
        workers: Vec<Arc<WorkerHandle>>,
        limits: Limits,
        spread_at: usize,
        ice: IceServers,
    ) -> Arc<Registry> {
        let worker_rooms = workers.iter().map(|_| AtomicUsize::new(0)).collect();
        Arc::new(Registry {
            rooms: Mutex::new(HashMap::new()),
            workers,
            worker_rooms,
            limits,
            spread_at,
            ice,
            next_room: AtomicU64::new(1),
            next_peer: AtomicU64::new(1),
            peers: AtomicUsize::new(0),
            room_count: AtomicUsize::new(0),
        })
    }

    pub fn counts(&self) -> Counts {
        Counts {
            rooms: self.room_count.load(Ordering::Relaxed),
            peers: self.peers.load(Ordering::Relaxed),
        }
    }

    /// The media workers' figures, summed.
    pub async fn media_stats(&self) -> WorkerStats {
        let mut total = WorkerStats::default();
        for w in &self.workers {
            if let Ok(s) = w.stats().await {
                total.merge(&s);
            }
        }
        total
    }

    /// Joins `room` (validated by the caller), creating it if needed. On success the member's
    /// queue has received `joined`.
    pub async fn join(
        self: &Arc<Self>,
        room: &str,
        name: String,
        muted: bool,
        out: MemberTx,
        host: Option<&str>,
    ) -> Result<Membership, Refusal> {
        // Reserve a place among all members first, so the limit is never overshot.
        if self.peers.fetch_add(1, Ordering::SeqCst) >= self.limits.max_peers {
            self.peers.fetch_sub(1, Ordering::SeqCst);
            return Err(Refusal::new(ErrorCode::ServerFull, "the server is full"));
        }
        let peer = self.next_peer.fetch_add(1, Ordering::Relaxed);
        let ice_servers = self.ice.for_peer(peer, host, SystemTime::now());
        // A room that is closing answers Retry; a second try finds it gone.
        for _ in 0..3 {
            let tx = match self.room_sender(room).await {
                Ok(tx) => tx,
                Err(refusal) => {
                    self.peers.fetch_sub(1, Ordering::SeqCst);
                    return Err(refusal);
                }
            };
            let (reply, rx) = oneshot::channel();
            let cmd = RoomCmd::Join {
                peer,
                name: name.clone(),
                muted,
                out: out.clone(),
                ice_servers: ice_servers.clone(),
                reply,
            };
            if tx.send(cmd).await.is_err() {
                continue;
            }
            match rx.await {
                Ok(JoinReply::Joined) => return Ok(Membership { peer, room: tx }),
                Ok(JoinReply::Refused(r)) => {
                    self.peers.fetch_sub(1, Ordering::SeqCst);
                    return Err(r);
                }
                Ok(JoinReply::Retry) | Err(_) => continue,
            }
        }
        self.peers.fetch_sub(1, Ordering::SeqCst);
        Err(Refusal::new(
            ErrorCode::ServerFull,
            "the room could not be joined, try again",
        ))
    }

    async fn room_sender(self: &Arc<Self>, name: &str) -> Result<mpsc::Sender<RoomCmd>, Refusal> {
        let mut rooms = self.rooms.lock().await;
        if let Some(entry) = rooms.get(name)
            && !entry.tx.is_closed()
        {
            return Ok(entry.tx.clone());
        }
        if rooms.len() >= self.limits.max_rooms {
            return Err(Refusal::new(ErrorCode::ServerFull, "too many rooms"));
        }
        let id = self.next_room.fetch_add(1, Ordering::Relaxed);
        let Some(worker) =
            (0..self.workers.len()).min_by_key(|i| self.worker_rooms[*i].load(Ordering::Relaxed))
        else {
            return Err(Refusal::new(ErrorCode::ServerFull, "no media worker"));
        };
        let (media_tx, media_rx) = mpsc::channel(MEDIA_EVENT_QUEUE);
        let (tx, rx) = mpsc::channel(ROOM_QUEUE);
        rooms.insert(name.to_owned(), RoomEntry { id, tx: tx.clone() });
        self.worker_rooms[worker].fetch_add(1, Ordering::Relaxed);
        self.room_count.fetch_add(1, Ordering::Relaxed);
        info!(room = name, id, worker, "room created");
        let room = Room {
            id,
            name: name.to_owned(),
            home: worker,
            events: media_tx,
            registry: self.clone(),
            members: BTreeMap::new(),
            chat: VecDeque::new(),
            chat_seq: 0,
            stalled: Default::default(),
        };
        tokio::spawn(room.run(rx, media_rx));
        Ok(tx)
    }

    /// Tells every room the server is going away; returns once every room has ended.
    pub async fn shutdown(&self) {
        let senders: Vec<_> = self
            .rooms
            .lock()
            .await
            .values()
            .map(|e| e.tx.clone())
            .collect();
        for tx in &senders {
            let _ = tx.send(RoomCmd::Shutdown).await;
        }
        for tx in senders {
            tx.closed().await;
        }
    }
}

struct MemberState {
    name: String,
    muted: bool,
    speaking: bool,
    out: MemberTx,
    /// The media worker holding a session for this member, if one does.
    media: Option<usize>,
    tracks: Vec<Track>,
    /// What the member's sending m-lines carry, by mid, as their latest offer that said so
    /// declared it (bounded by `validate_sources`). Every offer describes the whole session,
    /// so a newer declaration replaces an older one.
    sources: Sources,
}

impl MemberState {
    fn public(&self, id: PeerId) -> Member {
        Member {
            id,
            name: self.name.clone(),
            muted: self.muted,
            speaking: self.speaking,
        }
    }
}

struct Room {
    id: RoomId,
    name: String,
    /// The worker the room's members go to until it holds `spread_at` of them.
    home: usize,
    /// Where the workers send the room's media events.
    events: mpsc::Sender<MediaEvent>,
    registry: Arc<Registry>,
    members: BTreeMap<PeerId, MemberState>,
    chat: VecDeque<ChatMessage>,
    chat_seq: u64,
    /// Members whose queue overflowed: they are dropped after the current step.
    stalled: std::sync::Mutex<Vec<PeerId>>,
}

impl Room {
    async fn run(mut self, mut rx: mpsc::Receiver<RoomCmd>, mut media: mpsc::Receiver<MediaEvent>) {
        loop {
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(RoomCmd::Shutdown) | None => break,
                    Some(cmd) => self.handle(cmd).await,
                },
                Some(event) = media.recv() => self.media_event(event).await,
            }
            let stalled = match self.stalled.lock() {
                Ok(mut v) => std::mem::take(&mut *v),
                Err(_) => Vec::new(),
            };
            for id in stalled {
                warn!(room = self.name, peer = id, "member stalled: dropped");
                self.remove(id).await;
            }
            if self.members.is_empty() {
                self.unregister().await;
                // Joins that raced with the close are told to retry.
                rx.close();
                while let Some(cmd) = rx.recv().await {
                    if let RoomCmd::Join { reply, .. } = cmd {
                        let _ = reply.send(JoinReply::Retry);
                    }
                }
                return self.finish().await;
            }
        }
        // Shutting down: everyone is told, then dropped.
        rx.close();
        let ids: Vec<PeerId> = self.members.keys().copied().collect();
        for id in ids {
            self.send_to(
                id,
                ServerMsg::error(ErrorCode::ShuttingDown, "the server is stopping"),
            );
            self.send_to(
                id,
                ServerMsg::Bye {
                    reason: ByeReason::ServerShutdown,
                },
            );
            self.remove(id).await;
        }
        self.unregister().await;
        while let Some(cmd) = rx.recv().await {
            if let RoomCmd::Join { reply, .. } = cmd {
                let _ = reply.send(JoinReply::Refused(Refusal::new(
                    ErrorCode::ShuttingDown,
                    "the server is stopping",
                )));
            }
        }
        self.finish().await;
    }

    /// Removes this room from the registry: later joins make a new room.
    async fn unregister(&self) {
        let mut rooms = self.registry.rooms.lock().await;
        if rooms.get(&self.name).is_some_and(|e| e.id == self.id) {
            rooms.remove(&self.name);
        }
    }

    async fn finish(self) {
        // Every member is gone, so every worker has been told to forget the room.
        self.registry.worker_rooms[self.home].fetch_sub(1, Ordering::Relaxed);
        let rooms_left = self.registry.room_count.fetch_sub(1, Ordering::Relaxed) - 1;
        info!(room = self.name, id = self.id, "room closed");
        let registry = self.registry.clone();
        drop(self);
        if rooms_left == 0 {
            crate::memory::release_free_memory();
            // The worker frees the room's media state, and the members' connections end, a
            // little after this: return what they held too, unless rooms have opened since.
            tokio::spawn(async move {
                tokio::time::sleep(SETTLE_BEFORE_TRIM).await;
                if registry.room_count.load(Ordering::Relaxed) == 0 {
                    crate::memory::release_free_memory();
                }
            });
        }
    }

    /// Queues a message for one member. A member whose queue is full has stalled and is
    /// dropped; dropping their queue ends their connection.
    fn send_to(&self, id: PeerId, msg: ServerMsg) {
        self.send_shared(id, Arc::new(msg));
    }

    fn send_shared(&self, id: PeerId, msg: Arc<ServerMsg>) {
        if let Some(m) = self.members.get(&id)
            && let Err(mpsc::error::TrySendError::Full(_)) = m.out.try_send(msg)
            && let Ok(mut v) = self.stalled.lock()
        {
            v.push(id);
        }
    }

    fn broadcast(&self, except: Option<PeerId>, msg: &ServerMsg) {
        let shared = Arc::new(msg.clone());
        for id in self.members.keys().filter(|id| Some(**id) != except) {
            self.send_shared(*id, shared.clone());
        }
    }

    async fn to_worker(&self, worker: usize, msg: WorkerMsg) {
        let sent = match self.registry.workers.get(worker) {
            Some(w) => w.send(msg).await.is_ok(),
            None => false,
        };
        if !sent {
            warn!(room = self.name, worker, "media worker stopped");
        }
    }

    async fn media(&self, worker: usize, cmd: MediaCmd) {
        self.to_worker(worker, WorkerMsg::Cmd(cmd)).await;
    }

    /// How many of the room's members have a media session on each worker.
    fn held(&self) -> Vec<usize> {
        let mut held = vec![0; self.registry.workers.len()];
        for w in self.members.values().filter_map(|m| m.media) {
            if let Some(n) = held.get_mut(w) {
                *n += 1;
            }
        }
        held
    }

    /// The workers holding members of this room.
    fn used_workers(&self) -> Vec<usize> {
        let held = self.held();
        (0..held.len()).filter(|w| held[*w] > 0).collect()
    }

    /// Where a new member's media goes: the room's home worker until it holds `spread_at` of
    /// the room's members, then the worker holding the fewest (the home worker on a tie).
    fn place(&self) -> usize {
        let spread_at = self.registry.spread_at;
        let held = self.held();
        if spread_at == 0 || held.get(self.home).is_none_or(|n| *n < spread_at) {
            return self.home;
        }
        (0..held.len())
            .min_by_key(|w| (held[*w], *w != self.home))
            .unwrap_or(self.home)
    }

    /// A member's session is about to be made on `worker` (their `media` already says so). A
    /// worker new to the room is told where to send its events and which tracks the members
    /// elsewhere publish, and the workers are told whom to relay to.
    async fn attach(&self, worker: usize) {
        if self.held().get(worker) != Some(&1) {
            return;
        }
        let events = self.events.clone();
        let room = self.id;
        self.to_worker(worker, WorkerMsg::OpenRoom { room, events })
            .await;
        let elsewhere: Vec<MediaCmd> = self
            .members
            .iter()
            .filter(|(_, m)| m.media.is_some_and(|w| w != worker))
            .flat_map(|(id, m)| m.tracks.iter().map(|t| remote_track(room, *id, t)))
            .collect();
        for cmd in elsewhere {
            self.media(worker, cmd).await;
        }
        self.route_relays(worker).await;
    }

    /// A member's session on `worker` is gone (removed, refused or failed; their `media` no
    /// longer says so): the other workers stop forwarding their tracks if they `published`, and
    /// a worker left without members of the room forgets it.
    async fn release(&self, peer: PeerId, worker: usize, published: bool) {
        if published {
            for w in self.used_workers().into_iter().filter(|w| *w != worker) {
                let room = self.id;
                self.media(w, MediaCmd::RemotePeerGone { room, peer }).await;
            }
        }
        if self.held().get(worker) == Some(&0) {
            let room = self.id;
            self.to_worker(worker, WorkerMsg::CloseRoom { room }).await;
            self.route_relays(worker).await;
        }
    }

    /// Tells each worker holding members of the room which others to relay to, after `changed`
    /// took its first member of the room or lost its last, if the room spreads over several
    /// workers now or did before.
    async fn route_relays(&self, changed: usize) {
        let used = self.used_workers();
        let before = if used.contains(&changed) {
            used.len() - 1
        } else {
            used.len() + 1
        };
        if used.len() <= 1 && before <= 1 {
            return;
        }
        for &w in &used {
            let workers = used.iter().copied().filter(|o| *o != w).collect();
            let room = self.id;
            self.media(w, MediaCmd::RelayTo { room, workers }).await;
        }
    }

    async fn handle(&mut self, cmd: RoomCmd) {
        match cmd {
            RoomCmd::Join {
                peer,
                name,
                muted,
                out,
                ice_servers,
                reply,
            } => {
                if self.members.len() >= self.registry.limits.max_room_members {
                    let r = Refusal::new(ErrorCode::RoomFull, "the room is full");
                    let _ = reply.send(JoinReply::Refused(r));
                    return;
                }
                let joined = ServerMsg::Joined {
                    v: PROTOCOL_VERSION,
                    room: self.name.clone(),
                    id: peer,
                    members: self.members.iter().map(|(id, m)| m.public(*id)).collect(),
                    tracks: self
                        .members
                        .values()
                        .flat_map(|m| m.tracks.clone())
                        .collect(),
                    chat: self.chat.iter().cloned().collect(),
                    ice_servers,
                };
                if out.try_send(Arc::new(joined)).is_err() {
                    let _ = reply.send(JoinReply::Retry);
                    return;
                }
                let state = MemberState {
                    name,
                    muted,
                    speaking: false,
                    out,
                    media: None,
                    tracks: Vec::new(),
                    sources: Sources::new(),
                };
                let member = state.public(peer);
                self.members.insert(peer, state);
                self.broadcast(Some(peer), &ServerMsg::MemberJoined { member });
                let _ = reply.send(JoinReply::Joined);
                info!(room = self.name, peer, "member joined");
            }
            RoomCmd::Msg { peer, msg } => self.member_msg(peer, msg).await,
            RoomCmd::Leave { peer, said_leave } => {
                if said_leave {
                    self.send_to(
                        peer,
                        ServerMsg::Bye {
                            reason: ByeReason::Left,
                        },
                    );
                }
                self.remove(peer).await;
            }
            RoomCmd::Shutdown => {}
        }
    }

    async fn member_msg(&mut self, peer: PeerId, msg: ClientMsg) {
        let Some(member) = self.members.get_mut(&peer) else {
            return;
        };
        match msg {
            ClientMsg::Offer { sdp, sources } => {
                if let Some(sources) = sources {
                    member.sources = sources;
                }
                match member.media {
                    Some(w) => self.media(w, MediaCmd::Offer { peer, sdp }).await,
                    None => {
                        let w = self.place();
                        if let Some(m) = self.members.get_mut(&peer) {
                            m.media = Some(w);
                        }
                        self.attach(w).await;
                        let room = self.id;
                        let offer = sdp;
                        self.media(w, MediaCmd::AddPeer { room, peer, offer }).await;
                    }
                }
            }
            ClientMsg::Answer { sdp } => {
                if let Some(w) = member.media {
                    self.media(w, MediaCmd::Answer { peer, sdp }).await;
                } else {
                    let e = ServerMsg::error(ErrorCode::UnexpectedAnswer, "no offer outstanding");
                    self.send_to(peer, e);
                }
            }
            ClientMsg::Candidate { candidate } => {
                // Before the first offer there is no session to add it to; ICE-lite learns the
                // address from the checks anyway.
                if let Some(w) = member.media {
                    self.media(w, MediaCmd::Candidate { peer, candidate }).await;
                }
            }
            ClientMsg::Mute { muted } => {
                member.muted = muted;
                self.broadcast(None, &ServerMsg::Mute { id: peer, muted });
            }
            ClientMsg::Rename { name } => {
                member.name = name.clone();
                self.broadcast(None, &ServerMsg::MemberRenamed { id: peer, name });
            }
            ClientMsg::Chat { text, client_ref } => {
                self.chat_seq += 1;
                let message = ChatMessage {
                    seq: self.chat_seq,
                    from: peer,
                    name: member.name.clone(),
                    text,
                    ts: unix_millis(),
                };
                if self.chat.len() >= CHAT_HISTORY_LEN {
                    self.chat.pop_front();
                }
                self.chat.push_back(message.clone());
                self.broadcast(
                    Some(peer),
                    &ServerMsg::Chat {
                        message: message.clone(),
                    },
                );
                self.send_to(
                    peer,
                    ServerMsg::ChatAck {
                        client_ref,
                        message,
                    },
                );
            }
            // Connection-level messages never reach the room.
            ClientMsg::Join { .. } | ClientMsg::Leave | ClientMsg::Ping => {}
        }
    }

    async fn media_event(&mut self, event: MediaEvent) {
        let peer = event.peer();
        if !self.members.contains_key(&peer) {
            return;
        }
        match event {
            MediaEvent::Answer { sdp, .. } => self.send_to(peer, ServerMsg::Answer { sdp }),
            MediaEvent::Offer { sdp, .. } => self.send_to(peer, ServerMsg::Offer { sdp }),
            MediaEvent::Error { code, message, .. } => {
                let code = match code {
                    MediaErrorCode::InvalidSdp => ErrorCode::InvalidSdp,
                    MediaErrorCode::UnexpectedAnswer => ErrorCode::UnexpectedAnswer,
                    MediaErrorCode::InvalidCandidate => ErrorCode::InvalidCandidate,
                    MediaErrorCode::UnknownPeer => ErrorCode::InvalidSdp,
                };
                self.send_to(peer, ServerMsg::error(code, message));
            }
            MediaEvent::Refused { message, .. } => {
                // No session was made: the member's next offer starts afresh.
                if let Some(w) = self.members.get_mut(&peer).and_then(|m| m.media.take()) {
                    self.release(peer, w, false).await;
                }
                self.send_to(peer, ServerMsg::error(ErrorCode::InvalidSdp, message));
            }
            MediaEvent::Connected { .. } => debug!(peer, "media connected"),
            MediaEvent::TrackPublished { track, kind, .. } => {
                let kind = match kind {
                    TrackKind::Audio => free4chat_signal::TrackKind::Audio,
                    TrackKind::Video => free4chat_signal::TrackKind::Video,
                };
                let Some(m) = self.members.get_mut(&peer) else {
                    return;
                };
                let source = TrackSource::resolve(m.sources.get(&track).copied(), kind);
                let track = Track::new(peer, track, kind, source);
                m.tracks.push(track.clone());
                let held_by = m.media;
                // The room's members on other workers receive it too.
                for w in self
                    .used_workers()
                    .into_iter()
                    .filter(|w| Some(*w) != held_by)
                {
                    self.media(w, remote_track(self.id, peer, &track)).await;
                }
                self.broadcast(Some(peer), &ServerMsg::TrackAdded { track });
            }
            MediaEvent::Speaking { speaking, .. } => {
                if let Some(m) = self.members.get_mut(&peer) {
                    m.speaking = speaking;
                }
                self.broadcast(None, &ServerMsg::Speaking { id: peer, speaking });
            }
            MediaEvent::PeerFailed { reason, .. } => {
                // The worker has dropped the session already.
                if let Some(m) = self.members.get_mut(&peer)
                    && let Some(w) = m.media.take()
                {
                    let published = !m.tracks.is_empty();
                    self.release(peer, w, published).await;
                }
                self.send_to(peer, ServerMsg::error(ErrorCode::MediaFailed, reason));
                self.send_to(
                    peer,
                    ServerMsg::Bye {
                        reason: ByeReason::MediaFailed,
                    },
                );
                self.remove(peer).await;
            }
        }
    }

    /// Drops a member: their media, their queue (which ends their connection), and tells
    /// the others.
    async fn remove(&mut self, peer: PeerId) {
        let Some(member) = self.members.remove(&peer) else {
            return;
        };
        self.registry.peers.fetch_sub(1, Ordering::SeqCst);
        if let Some(w) = member.media {
            self.media(w, MediaCmd::RemovePeer { peer }).await;
            self.release(peer, w, !member.tracks.is_empty()).await;
        }
        for track in member.tracks {
            self.broadcast(None, &ServerMsg::TrackRemoved { track });
        }
        self.broadcast(None, &ServerMsg::MemberLeft { id: peer });
        info!(room = self.name, peer, "member left");
    }
}

/// Tells a worker that a member held elsewhere publishes `track`.
fn remote_track(room: RoomId, peer: PeerId, track: &Track) -> MediaCmd {
    MediaCmd::RemoteTrack {
        room,
        peer,
        track: track.id.clone(),
        kind: match track.kind {
            free4chat_signal::TrackKind::Audio => TrackKind::Audio,
            free4chat_signal::TrackKind::Video => TrackKind::Video,
        },
    }
}

fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
