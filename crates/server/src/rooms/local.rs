//! This node's rooms: name → running room, the limits on rooms and members, and which media
//! worker each new room starts on.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::SystemTime;

use async_trait::async_trait;
use free4chat_ids::IdSpace;
use free4chat_media::worker::WorkerHandle;
use free4chat_media::{Boards, WorkerStats};
use free4chat_sfu::quality::MemberQuality;
use free4chat_signal::{ByeReason, ChatMessage, ErrorCode, IceServer, MemberId, RoomInfo};
use tokio::sync::{Mutex, mpsc};
use tracing::info;

use super::actor::{self, RoomSetup};
use super::handle::{JoinReply, Who};
use super::{
    Counts, JoinRequest, Membership, Refusal, RoomDirectory, RoomHandle, RoomObserver, RoomSummary,
};
use crate::ice::IceServers;

/// How many messages may wait for one room.
const ROOM_QUEUE: usize = 1024;
/// A join that finds its room closing tries again this many times (each finds a new room).
const JOIN_TRIES: usize = 3;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_rooms: usize,
    pub max_room_members: usize,
    /// Members in all rooms.
    pub max_members: usize,
    /// A member whose media has not connected this long after joining is dropped (None: never).
    pub media_deadline: Option<std::time::Duration>,
    /// How long a member a moderator removed stays out of the room.
    pub removal_ban: std::time::Duration,
}

/// The node's media workers, and how many rooms each is home to.
pub struct MediaWorkers {
    workers: Vec<Arc<WorkerHandle>>,
    homes: Vec<AtomicUsize>,
}

impl MediaWorkers {
    pub fn new(workers: Vec<Arc<WorkerHandle>>) -> MediaWorkers {
        let homes = workers.iter().map(|_| AtomicUsize::new(0)).collect();
        MediaWorkers { workers, homes }
    }

    pub fn len(&self) -> usize {
        self.workers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.workers.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<&Arc<WorkerHandle>> {
        self.workers.get(i)
    }

    /// The worker home to the fewest rooms, now home to one more.
    fn take_home(&self) -> Option<usize> {
        let i = (0..self.workers.len()).min_by_key(|i| self.homes[*i].load(Ordering::Relaxed))?;
        self.homes[i].fetch_add(1, Ordering::Relaxed);
        Some(i)
    }

    pub(super) fn give_back_home(&self, i: usize) {
        if let Some(n) = self.homes.get(i) {
            n.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Where each worker publishes its figures.
    pub fn boards(&self) -> Boards {
        Boards(self.workers.iter().map(|w| w.board()).collect())
    }

    /// The workers' fresh figures, summed.
    pub async fn stats(&self) -> WorkerStats {
        self.boards().fresh_total().await
    }

    /// Each member's connection quality, as the workers last published it.
    pub fn latest_quality(&self) -> Vec<MemberQuality> {
        self.workers
            .iter()
            .flat_map(|w| {
                w.board()
                    .latest_quality()
                    .iter()
                    .copied()
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Each member's connection quality, freshly published by every worker.
    pub async fn fresh_quality(&self) -> Vec<MemberQuality> {
        self.boards().fresh_quality().await
    }
}

/// What the directory's rooms share with it.
pub(super) struct Local {
    pub rooms: Mutex<HashMap<String, RoomHandle>>,
    pub media: Arc<MediaWorkers>,
    pub limits: Limits,
    /// Members a room keeps on its home worker before it spreads over the others (0: never).
    pub spread_at: usize,
    /// Audio slots each member's connection receives the room's speakers on (0: an m-line
    /// per audio track), as the media workers are configured.
    pub audio_slots: usize,
    /// The STUN/TURN servers handed out in `joined`.
    ice: IceServers,
    ids: IdSpace,
    pub members: AtomicUsize,
    pub room_count: AtomicUsize,
    /// Members dropped for missing the media deadline.
    pub media_deadline_dropped: std::sync::atomic::AtomicU64,
    /// Told of each room's chat, life and end (the cluster, webhooks).
    pub observers: Vec<Arc<dyn RoomObserver>>,
    /// This node's id in a cluster, for room lists.
    node: Option<String>,
}

impl Local {
    /// A member has left a room here: what was issued to it for the room dies with it.
    pub(super) fn member_left(&self, member: MemberId) {
        self.ice.member_left(member);
    }

    /// How often a member's STUN/TURN credentials are renewed while it stays; `None` when
    /// none are issued.
    pub(super) fn ice_renewal(&self) -> Option<std::time::Duration> {
        self.ice.renew_every()
    }

    /// Fresh credentials for a member that stays, `host` as at its join.
    pub(super) fn renewed_ice(&self, member: MemberId, host: Option<&str>) -> Vec<IceServer> {
        self.ice.renewed(member, host, SystemTime::now())
    }
}

/// This node's rooms.
#[derive(Clone)]
pub struct LocalDirectory {
    local: Arc<Local>,
}

/// Why a member did not get into a room here.
#[derive(Debug)]
pub enum LocalJoin {
    Refused(Refusal),
    /// No such room runs here, and none was to be made.
    NoRoom,
}

impl LocalDirectory {
    /// Rooms on `media`, with ids under `id_prefix` (unique to this node). In a cluster,
    /// `node` names this node. What the rooms tell goes to the `observers`.
    pub fn new(
        media: Arc<MediaWorkers>,
        (limits, spread_at, audio_slots): (Limits, usize, usize),
        ice: IceServers,
        id_prefix: u64,
        (node, observers): (Option<String>, Vec<Arc<dyn RoomObserver>>),
    ) -> LocalDirectory {
        LocalDirectory {
            local: Arc::new(Local {
                rooms: Mutex::new(HashMap::new()),
                media,
                limits,
                spread_at,
                audio_slots,
                ice,
                ids: IdSpace::new(id_prefix),
                members: AtomicUsize::new(0),
                room_count: AtomicUsize::new(0),
                media_deadline_dropped: Default::default(),
                observers,
                node,
            }),
        }
    }

    pub fn media(&self) -> &Arc<MediaWorkers> {
        &self.local.media
    }

    pub fn limits(&self) -> Limits {
        self.local.limits
    }

    /// A new member id, unique across the cluster.
    pub fn new_member(&self) -> MemberId {
        self.local.ids.member()
    }

    /// The names of the rooms running here.
    pub async fn room_names(&self) -> Vec<String> {
        self.local.rooms.lock().await.keys().cloned().collect()
    }

    /// Closes room `name` if it runs here, telling its members `reason`.
    pub async fn close_room(&self, name: &str, reason: ByeReason) {
        let handle = self.local.rooms.lock().await.get(name).cloned();
        if let Some(handle) = handle {
            handle.close(reason).await;
        }
    }

    /// Joins `member` (an id from [`LocalDirectory::new_member`], here or on another node of
    /// the cluster) into the room named in `request`. With `create`, a room not running here
    /// is made, going on from that earlier life; without, only a running room is joined.
    pub async fn join_as(
        &self,
        member: MemberId,
        request: &JoinRequest,
        create: Option<Earlier>,
    ) -> Result<Membership, LocalJoin> {
        let local = &self.local;
        // Reserve a place among all members first, so the limit is never overshot.
        if local.members.fetch_add(1, Ordering::SeqCst) >= local.limits.max_members {
            local.members.fetch_sub(1, Ordering::SeqCst);
            let full = Refusal::new(ErrorCode::ServerFull, "the server is full");
            return Err(LocalJoin::Refused(full));
        }
        let host = request.host.as_deref();
        let ice_servers = local.ice.for_member(member, host, SystemTime::now());
        let create = create.map(|e| (e.history, e.password_hash));
        let give_back = |why: LocalJoin| {
            local.members.fetch_sub(1, Ordering::SeqCst);
            Err(why)
        };
        // A room that is closing answers Retry; a second try finds it gone.
        let mut tries = 0;
        // A private room this join would make: its password's hash, made before the directory
        // is locked (hashing takes a while).
        let mut hashed: Option<Arc<str>> = None;
        while tries < JOIN_TRIES {
            let made = NewRoom {
                history: create.as_ref().map(|(h, _)| h),
                inherited: create.as_ref().and_then(|(_, p)| p.clone()),
                request,
                hashed: hashed.clone(),
            };
            let inherited = made.inherited.is_some();
            let (room, made) = match self.room(&request.room, made).await {
                Ok(Found::Room(room, made)) => (room, made),
                Ok(Found::NoRoom) => return give_back(LocalJoin::NoRoom),
                Ok(Found::NeedsHash(password)) => {
                    match super::password::hash(password).await {
                        Some(h) => hashed = Some(h.into()),
                        None => {
                            let r = Refusal::new(ErrorCode::ServerFull, "the room was not made");
                            return give_back(LocalJoin::Refused(r));
                        }
                    }
                    continue;
                }
                Err(refusal) => return give_back(LocalJoin::Refused(refusal)),
            };
            tries += 1;
            // A private room takes only those who give its password; the one who made it gave
            // it, unless the room goes on from an earlier life.
            if let (Some(phc), false) = (&room.password, made && !inherited) {
                let given = request.password.clone().unwrap_or_default();
                if given.is_empty() || !super::password::verify(given, phc.clone()).await {
                    // A room made for this join alone must not stay, empty, holding its name.
                    if made {
                        room.close(ByeReason::RoomClosed).await;
                        room.closed().await;
                    }
                    let r = Refusal::new(ErrorCode::WrongPassword, "wrong or missing password");
                    return give_back(LocalJoin::Refused(r));
                }
            }
            let who = Who {
                name: request.name.clone(),
                muted: request.muted,
                tag: request.tag.clone(),
                ip: request.ip,
                moderator: request.moderator,
                out: request.out.clone(),
                host: request.host.clone(),
            };
            match room.join(member, who, ice_servers.clone()).await {
                JoinReply::Joined => return Ok(Membership::here(member, room)),
                JoinReply::Refused(r) => return give_back(LocalJoin::Refused(r)),
                JoinReply::Retry => continue,
            }
        }
        give_back(LocalJoin::Refused(Refusal::new(
            ErrorCode::ServerFull,
            "the room could not be joined, try again",
        )))
    }

    /// The running room of that name (and whether this call made it); if there is none, a
    /// new one when one is to be made, else none.
    async fn room(&self, name: &str, made: NewRoom<'_>) -> Result<Found, Refusal> {
        let local = &self.local;
        let mut rooms = local.rooms.lock().await;
        if let Some(handle) = rooms.get(name)
            && !handle.is_closed()
        {
            return Ok(Found::Room(handle.clone(), false));
        }
        let Some(history) = made.history else {
            return Ok(Found::NoRoom);
        };
        let request = made.request;
        // A room that goes on from an earlier life keeps its password: this join must give it.
        let password = match (made.inherited, &request.password, made.hashed) {
            (Some(inherited), _, _) => Some(inherited),
            (None, Some(p), None) => return Ok(Found::NeedsHash(p.clone())),
            (None, _, hashed) => hashed,
        };
        if rooms.len() >= local.limits.max_rooms {
            return Err(Refusal::new(ErrorCode::ServerFull, "too many rooms"));
        }
        let Some(home) = local.media.take_home() else {
            return Err(Refusal::new(ErrorCode::ServerFull, "no media worker"));
        };
        let id = local.ids.room();
        let (tx, rx) = mpsc::channel(ROOM_QUEUE);
        let info = RoomInfo {
            topic: request.topic.clone(),
            language: request.language.clone(),
            private: password.is_some(),
            locked: false,
        };
        let handle = RoomHandle {
            id,
            name: name.into(),
            tx,
            password,
        };
        rooms.insert(name.to_owned(), handle.clone());
        local.room_count.fetch_add(1, Ordering::Relaxed);
        info!(room = name, %id, worker = home, private = info.private, "room created");
        let setup = RoomSetup {
            id,
            name: name.to_owned(),
            home,
            local: local.clone(),
            history: history.clone(),
            info,
        };
        // The room's span lives in its task: it ends when the room does.
        let span = super::trace::room_span(name, id, local.node.as_deref());
        tokio::spawn(tracing::Instrument::instrument(actor::run(setup, rx), span));
        Ok(Found::Room(handle, true))
    }
}

/// What a room made again (in a cluster, on another node) keeps of its earlier life.
#[derive(Debug, Default)]
pub struct Earlier {
    /// Its chat, oldest first.
    pub history: Vec<ChatMessage>,
    /// Its password's hash, if it was private.
    pub password_hash: Option<Arc<str>>,
}

/// What a join brings to a room it may make.
struct NewRoom<'a> {
    /// The chat to start with; none: no room is to be made.
    history: Option<&'a Vec<ChatMessage>>,
    /// The password's hash of the room's earlier life.
    inherited: Option<Arc<str>>,
    request: &'a JoinRequest,
    /// The hash of the request's password, once made.
    hashed: Option<Arc<str>>,
}

/// What the directory found for a join.
enum Found {
    /// The room, and whether this join made it.
    Room(RoomHandle, bool),
    NoRoom,
    /// The room is to be made private: hash this password first, then ask again.
    NeedsHash(String),
}

#[async_trait]
impl RoomDirectory for LocalDirectory {
    async fn join(&self, request: JoinRequest) -> Result<Membership, Refusal> {
        let member = self.new_member();
        match self
            .join_as(member, &request, Some(Earlier::default()))
            .await
        {
            Ok(m) => Ok(m),
            Err(LocalJoin::Refused(r)) => Err(r),
            // Not when rooms are made on demand; a refusal of the same kind as a closing room.
            Err(LocalJoin::NoRoom) => Err(Refusal::new(
                ErrorCode::ServerFull,
                "the room could not be joined, try again",
            )),
        }
    }

    fn counts(&self) -> Counts {
        Counts {
            rooms: self.local.room_count.load(Ordering::Relaxed),
            members: self.local.members.load(Ordering::Relaxed),
            media_deadline_dropped: self.local.media_deadline_dropped.load(Ordering::Relaxed),
        }
    }

    async fn rooms(&self) -> Vec<RoomSummary> {
        let handles: Vec<RoomHandle> = self.local.rooms.lock().await.values().cloned().collect();
        let mut out = Vec::with_capacity(handles.len());
        for handle in handles {
            if let Some((members, info)) = handle.summary().await {
                out.push(RoomSummary {
                    room: handle.name().to_owned(),
                    id: handle.id(),
                    node: self.local.node.clone(),
                    members,
                    topic: info.topic,
                    language: info.language,
                    private: info.private,
                });
            }
        }
        out.sort_by(|a, b| a.room.cmp(&b.room));
        out
    }

    async fn find(&self, room: &str) -> Option<RoomHandle> {
        let rooms = self.local.rooms.lock().await;
        rooms.get(room).filter(|h| !h.is_closed()).cloned()
    }

    async fn shutdown(&self) {
        let handles: Vec<RoomHandle> = self.local.rooms.lock().await.values().cloned().collect();
        for handle in &handles {
            handle.close(ByeReason::ServerShutdown).await;
        }
        for handle in handles {
            handle.closed().await;
        }
    }
}
