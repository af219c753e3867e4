//! One room's actor: a task that owns the member list, names, mute and speaking state,
//! tracks, the chat, and the room's media link (which worker holds each member).
//!
//! Each member has a bounded outgoing queue; a member whose queue overflows has stalled and
//! is dropped, so one slow client never holds up a room. When the last member leaves, the
//! room unregisters itself and its task ends — all its memory goes with it. A join racing with
//! that close is told to retry and lands in a fresh room.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use free4chat_media::worker::WorkerMsg;
use free4chat_sfu::MediaEvent;
use free4chat_sfu::link::{LinkOutput, MediaLink};
use free4chat_signal::{
    ByeReason, ChatMessage, ClientMsg, ErrorCode, MEMBER_PAGE, Member, MemberId, PROTOCOL_VERSION,
    RoomId, RoomInfo, ServerMsg, Sources, Track,
};
use tokio::sync::mpsc;
use tracing::{info, warn};

mod media;
mod moderation;
mod video;

use moderation::Bans;

use super::chat::ChatLog;

mod chat_msgs;
use super::handle::{JoinReply, Joining, RoomCmd, RoomSnapshot};
use super::local::Local;
use super::names::unique_name;
use super::quality::QualityOut;
use super::renewal::Renewals;
use super::trace;
use super::{Lifecycle, MemberTx, Refusal};

/// How many media events may wait for one room.
const MEDIA_EVENT_QUEUE: usize = 1024;
/// The least time between two `speakers` messages of one room.
const SPEAKERS_EVERY: Duration = Duration::from_millis(200);
/// How long after the last room closes the allocator is asked a second time to return memory.
const SETTLE_BEFORE_TRIM: Duration = Duration::from_secs(1);

/// What a new room starts with.
pub(super) struct RoomSetup {
    pub id: RoomId,
    pub name: String,
    /// The worker the room's members go to until it holds `spread_at` of them.
    pub home: usize,
    pub local: Arc<Local>,
    /// The room's chat so far, when it starts again on this node after another (in a cluster).
    pub history: Vec<ChatMessage>,
    /// Its topic and language, and whether it is private, as its first member asked.
    pub info: RoomInfo,
}

struct MemberState {
    name: String,
    tag: Option<String>,
    muted: bool,
    /// Muted for everyone by the operator: they cannot unmute, and nothing of theirs is
    /// forwarded, until it is lifted.
    forced_muted: bool,
    speaking: bool,
    /// Their source id in the room (the CSRC naming them on audio slots).
    source: u32,
    out: MemberTx,
    /// The host the member reached us by, which names the TURN server in its credentials.
    host: Option<String>,
    tracks: Vec<Track>,
    /// What the member's sending m-lines carry, by mid, as their latest offer that said so
    /// declared it (bounded by `validate_sources`). Every offer describes the whole session,
    /// so a newer declaration replaces an older one.
    sources: Sources,
    /// Their media (ICE and DTLS) has connected.
    connected: bool,
    /// Their camera and screen share send now, as they last said.
    camera: bool,
    screen: bool,
    /// They may moderate the room.
    moderator: bool,
    /// When they came, in the room's order of joins (who has been here longest).
    since: u64,
    /// Their address's key, for removals (none: exempt).
    ip: Option<std::net::IpAddr>,
    /// Their session's span, inside the room's (`rooms::trace`); it ends when they leave.
    span: tracing::Span,
    /// Why they leave, once known (the span's last event).
    why: &'static str,
}

impl MemberState {
    fn public(&self, id: MemberId) -> Member {
        Member {
            id,
            name: self.name.clone(),
            muted: self.muted,
            speaking: self.speaking,
            source: self.source,
            tag: self.tag.clone(),
            camera: self.camera,
            screen: self.screen,
        }
    }
}

struct Room {
    id: RoomId,
    name: String,
    home: usize,
    local: Arc<Local>,
    /// Where the workers send the room's media events.
    events: mpsc::Sender<MediaEvent>,
    members: BTreeMap<MemberId, MemberState>,
    chat: ChatLog,
    link: MediaLink,
    /// Members whose queue overflowed: they are dropped after the current step.
    stalled: Vec<MemberId>,
    speakers: SpeakersOut,
    /// Members by when their media must have connected, earliest first (the deadline is the
    /// same for all, so join order is deadline order). A member who has connected or left is
    /// skipped when their turn comes.
    unconnected: VecDeque<(Instant, MemberId)>,
    /// The operator's limit on this room's members, below the server's.
    max_members: Option<usize>,
    /// Topic, language, privacy, lock.
    info: RoomInfo,
    /// Raised hands, in the order raised (each a member of the room, once).
    hands: Vec<MemberId>,
    /// Who a moderator removed, kept out for a while.
    bans: Bans,
    /// Joins so far, for each member's `since`.
    joins: u64,
    /// When each member's TURN credentials are renewed.
    renewals: Renewals,
    /// Viewers' tiles and the cameras' dynacast.
    videos: video::Videos,
    /// The members' quality levels as last told.
    quality: QualityOut,
}

/// The room's `speakers` messages: sent when who speaks changes, at most every
/// [`SPEAKERS_EVERY`], so that a room of N members is not N² messages per change.
#[derive(Default)]
struct SpeakersOut {
    /// A change waits to be sent.
    dirty: bool,
    last_sent: Option<Instant>,
}

impl SpeakersOut {
    /// When the waiting change may be sent, if one waits.
    fn due(&self) -> Option<Instant> {
        if !self.dirty {
            return None;
        }
        Some(
            self.last_sent
                .map_or_else(Instant::now, |t| t + SPEAKERS_EVERY),
        )
    }
}

/// Runs a room until its last member leaves or it is closed.
pub(super) async fn run(setup: RoomSetup, mut rx: mpsc::Receiver<RoomCmd>) {
    let (events, mut media) = mpsc::channel(MEDIA_EVENT_QUEUE);
    let workers = setup.local.media.len();
    let spread_at = setup.local.spread_at;
    let renew_every = setup.local.ice_renewal();
    let mut room = Room {
        id: setup.id,
        name: setup.name,
        home: setup.home,
        link: MediaLink::new(setup.id, setup.home, workers, spread_at),
        local: setup.local,
        events,
        members: BTreeMap::new(),
        chat: ChatLog::with_history(setup.history),
        stalled: Vec::new(),
        speakers: SpeakersOut::default(),
        max_members: None,
        unconnected: VecDeque::new(),
        info: setup.info,
        hands: Vec::new(),
        bans: Bans::default(),
        joins: 0,
        renewals: Renewals::new(renew_every),
        quality: QualityOut::default(),
        videos: video::Videos::default(),
    };
    room.tell(Lifecycle::Started);
    let closing = loop {
        let speakers_due = room.speakers.due();
        let media_due = room.unconnected.front().map(|(at, _)| *at);
        let renewal_due = room.renewals.due();
        let video_due = room.videos.due();
        tokio::select! {
            cmd = rx.recv() => match cmd {
                Some(RoomCmd::Close { reason }) => break Some(reason),
                None => break Some(ByeReason::ServerShutdown),
                Some(cmd) => room.handle(cmd).await,
            },
            Some(event) = media.recv() => room.media_event(event).await,
            _ = tokio::time::sleep_until(speakers_due.unwrap_or_else(Instant::now)),
                if speakers_due.is_some() => room.send_speakers(),
            _ = tokio::time::sleep_until(media_due.unwrap_or_else(Instant::now)),
                if media_due.is_some() => room.drop_unconnected().await,
            _ = tokio::time::sleep_until(renewal_due.unwrap_or_else(Instant::now)),
                if renewal_due.is_some() => room.renew_ice(),
            _ = tokio::time::sleep_until(video_due.unwrap_or_else(Instant::now)),
                if video_due.is_some() => room.dynacast_timeout(),
        }
        for id in std::mem::take(&mut room.stalled) {
            warn!(room = room.name, member = %id, "member stalled: dropped");
            room.why(id, "stalled");
            room.remove(id).await;
        }
        if room.members.is_empty() {
            break None;
        }
    };
    if let Some(reason) = closing {
        room.close_all(reason).await;
    }
    room.unregister().await;
    // Joins that raced with the close are told to retry (a new room), or refused if the
    // server is going away.
    rx.close();
    while let Some(cmd) = rx.recv().await {
        if let RoomCmd::Join(Joining { reply, .. }) = cmd {
            let answer = match closing {
                Some(ByeReason::ServerShutdown) => JoinReply::Refused(Refusal::new(
                    ErrorCode::ShuttingDown,
                    "the server is stopping",
                )),
                _ => JoinReply::Retry,
            };
            let _ = reply.send(answer);
        }
    }
    room.finish();
}

impl Room {
    /// Tells everyone why the room ends, then drops them.
    async fn close_all(&mut self, reason: ByeReason) {
        let ids: Vec<MemberId> = self.members.keys().copied().collect();
        for id in ids {
            if reason == ByeReason::ServerShutdown {
                let e = ServerMsg::error(ErrorCode::ShuttingDown, "the server is stopping");
                self.send_to(id, e);
            }
            self.send_to(id, ServerMsg::Bye { reason });
            self.why(
                id,
                if reason == ByeReason::ServerShutdown {
                    "server shutdown"
                } else {
                    "room closed"
                },
            );
            self.remove(id).await;
        }
    }

    /// Removes this room from the directory: later joins make a new room.
    async fn unregister(&self) {
        let mut rooms = self.local.rooms.lock().await;
        if rooms.get(&self.name).is_some_and(|h| h.id == self.id) {
            rooms.remove(&self.name);
            for observer in &self.local.observers {
                observer.closed(&self.name);
            }
        }
    }

    /// Tells the observers a step of the room's life.
    fn tell(&self, what: Lifecycle<'_>) {
        for observer in &self.local.observers {
            observer.lifecycle(&self.name, self.id, what);
        }
    }

    fn finish(self) {
        self.tell(Lifecycle::Finished);
        // Every member is gone, so every worker has been told to forget the room.
        self.local.media.give_back_home(self.home);
        let rooms_left = self.local.room_count.fetch_sub(1, Ordering::Relaxed) - 1;
        info!(room = self.name, id = %self.id, "room closed");
        let local = self.local.clone();
        drop(self);
        if rooms_left == 0 {
            crate::memory::release_free_memory();
            // The workers free the room's media state, and the members' connections end, a
            // little after this: return what they held too, unless rooms have opened since.
            tokio::spawn(async move {
                tokio::time::sleep(SETTLE_BEFORE_TRIM).await;
                if local.room_count.load(Ordering::Relaxed) == 0 {
                    crate::memory::release_free_memory();
                }
            });
        }
    }

    /// Queues a message for one member. A member whose queue is full has stalled and is
    /// dropped; dropping their queue ends their connection.
    fn send_to(&mut self, id: MemberId, msg: ServerMsg) {
        self.send_shared(id, Arc::new(msg));
    }

    fn send_shared(&mut self, id: MemberId, msg: Arc<ServerMsg>) {
        if let Some(m) = self.members.get(&id)
            && let Err(mpsc::error::TrySendError::Full(_)) = m.out.try_send(msg)
        {
            self.stalled.push(id);
        }
    }

    fn broadcast(&mut self, except: Option<MemberId>, msg: &ServerMsg) {
        let shared = Arc::new(msg.clone());
        let ids: Vec<MemberId> = self
            .members
            .keys()
            .copied()
            .filter(|id| Some(*id) != except)
            .collect();
        for id in ids {
            self.send_shared(id, shared.clone());
        }
    }

    /// Sends the workers what the media link has for them.
    async fn drive_link(&mut self) {
        while let Some((worker, output)) = self.link.poll() {
            let msg = match output {
                LinkOutput::OpenRoom => WorkerMsg::OpenRoom {
                    room: self.id,
                    events: self.events.clone(),
                },
                LinkOutput::Cmd(cmd) => WorkerMsg::Cmd(cmd),
            };
            let sent = match self.local.media.get(worker) {
                Some(w) => w.send(msg).await.is_ok(),
                None => false,
            };
            if !sent {
                warn!(room = self.name, worker, "media worker stopped");
            }
        }
    }

    async fn handle(&mut self, cmd: RoomCmd) {
        match cmd {
            RoomCmd::Join(joining) => self.join(joining),
            RoomCmd::Msg { member, msg } => self.member_msg(member, msg).await,
            RoomCmd::Leave { member, said_leave } => {
                self.why(
                    member,
                    if said_leave {
                        "left"
                    } else {
                        "connection closed"
                    },
                );
                if said_leave {
                    let bye = ServerMsg::Bye {
                        reason: ByeReason::Left,
                    };
                    self.send_to(member, bye);
                }
                self.remove(member).await;
            }
            RoomCmd::Snapshot { reply } => {
                let _ = reply.send(self.snapshot());
            }
            RoomCmd::Summary { reply } => {
                let _ = reply.send((self.members.len(), self.info.clone()));
            }
            RoomCmd::Remove {
                member,
                reason,
                reply,
            } => {
                let present = self.members.contains_key(&member);
                if present {
                    if let Some(m) = self.members.get(&member) {
                        trace::step(&m.span, "kick");
                    }
                    self.why(member, "removed");
                    self.send_to(member, ServerMsg::Bye { reason });
                    self.remove(member).await;
                }
                let _ = reply.send(present);
            }
            RoomCmd::ForceMute {
                member,
                forced,
                reply,
            } => {
                let present = self.force_mute(member, forced).await;
                let _ = reply.send(present);
            }
            RoomCmd::Notice { text } => self.broadcast(None, &ServerMsg::Notice { text }),
            RoomCmd::SetMaxMembers { max } => self.max_members = max,
            RoomCmd::Quality { levels } => {
                let members = self.members.iter().map(|(id, m)| (*id, m.connected));
                let now = std::time::Instant::now();
                let changed = self.quality.changes(&levels, members, now);
                if !changed.is_empty() {
                    self.broadcast(None, &ServerMsg::Quality { members: changed });
                }
            }
            // The run loop ends the room on these.
            RoomCmd::Close { .. } => {}
        }
    }

    /// Takes a member in, unless the room is full: they get `joined`, the others
    /// `member_joined`.
    fn join(&mut self, joining: Joining) {
        let Joining {
            member,
            name,
            muted,
            tag,
            ip,
            moderator,
            out,
            ice_servers,
            host,
            reply,
        } = joining;
        if let Some(refusal) = self.admits(tag.as_deref(), ip, moderator) {
            let _ = reply.send(JoinReply::Refused(refusal));
            return;
        }
        if self.members.len() >= self.max_members() {
            let r = Refusal::new(ErrorCode::RoomFull, "the room is full");
            let _ = reply.send(JoinReply::Refused(r));
            return;
        }
        // A member with the same tag is the same client, back before its old connection is
        // gone (or in a second tab): not someone else, so its name does not count as taken.
        let others = self
            .members
            .values()
            .filter(|m| tag.is_none() || m.tag != tag);
        let name = unique_name(&name, others.map(|m| m.name.as_str()));
        let mut others: Vec<Member> = self.members.iter().map(|(id, m)| m.public(*id)).collect();
        let total = others.len();
        // Speakers first: a page of a large room shows who is talking.
        others.sort_by_key(|m| !m.speaking);
        let mut pages = others.chunks(MEMBER_PAGE);
        let joined = ServerMsg::Joined {
            v: PROTOCOL_VERSION,
            room: self.name.clone(),
            id: member,
            name: name.clone(),
            tag: tag.clone(),
            members: pages.next().map(<[Member]>::to_vec).unwrap_or_default(),
            members_total: total,
            audio_slots: self.local.audio_slots,
            tracks: self
                .members
                .values()
                .flat_map(|m| m.tracks.clone())
                .collect(),
            chat: self.chat.history(),
            ice_servers,
            room_info: self.info.clone(),
            moderators: self.moderators_with(member, moderator),
            hands: self.hands.clone(),
        };
        if out.try_send(Arc::new(joined)).is_err() {
            let _ = reply.send(JoinReply::Retry);
            return;
        }
        for page in pages {
            let more = ServerMsg::MoreMembers {
                members: page.to_vec(),
            };
            if out.try_send(Arc::new(more)).is_err() {
                let _ = reply.send(JoinReply::Retry);
                return;
            }
        }
        let span = trace::member_span(member, &name);
        trace::step(&span, "joined");
        // The same client (by its key's tag) still here, or back: a reconnection.
        if tag.is_some() && self.members.values().any(|m| m.tag == tag) {
            trace::step(&span, "reconnect");
        }
        let state = MemberState {
            span,
            why: "connection closed",
            name,
            tag,
            muted,
            speaking: false,
            source: self.link.admit(member),
            out,
            host,
            tracks: Vec::new(),
            sources: Sources::new(),
            connected: false,
            camera: false,
            screen: false,
            forced_muted: false,
            // The member who makes the room moderates it.
            moderator: moderator || self.members.is_empty(),
            since: self.joins,
            ip,
        };
        self.joins += 1;
        if let Some(deadline) = self.local.limits.media_deadline {
            self.unconnected
                .push_back((Instant::now() + deadline, member));
        }
        let public = state.public(member);
        let moderates = state.moderator;
        self.members.insert(member, state);
        self.renewals.admit(member, Instant::now());
        self.tell(Lifecycle::MemberJoined {
            member,
            name: &public.name,
        });
        self.broadcast(Some(member), &ServerMsg::MemberJoined { member: public });
        if moderates {
            self.send_moderators(Some(member));
        }
        // A new viewer wants every camera's best layer until its tiles say otherwise.
        self.update_dynacast();
        let known = self.quality.all();
        if !known.is_empty() {
            self.send_to(member, ServerMsg::Quality { members: known });
        }
        let _ = reply.send(JoinReply::Joined);
        info!(room = self.name, %member, "member joined");
    }

    /// Tells everyone who speaks now.
    fn send_speakers(&mut self) {
        let ids = self
            .members
            .iter()
            .filter(|(_, m)| m.speaking)
            .map(|(id, _)| *id)
            .collect();
        self.broadcast(None, &ServerMsg::Speakers { ids });
        self.speakers = SpeakersOut {
            dirty: false,
            last_sent: Some(Instant::now()),
        };
    }

    fn snapshot(&self) -> RoomSnapshot {
        RoomSnapshot {
            room: self.name.clone(),
            id: self.id,
            members: self.members.iter().map(|(id, m)| m.public(*id)).collect(),
            chat_messages: self.chat.len(),
            max_members: self.max_members(),
            forced_muted: self
                .members
                .iter()
                .filter(|(_, m)| m.forced_muted)
                .map(|(id, _)| *id)
                .collect(),
            info: self.info.clone(),
            moderators: self.moderators(),
            hands: self.hands.clone(),
        }
    }

    /// The most members the room takes: the server's limit, or the operator's below it.
    fn max_members(&self) -> usize {
        let server = self.local.limits.max_room_members;
        self.max_members.map_or(server, |m| m.min(server))
    }

    /// Tells everyone a member's microphone state (the member too, as confirmation).
    fn tell_mute(&mut self, id: MemberId, muted: bool, forced: bool) {
        self.broadcast(None, &ServerMsg::Mute { id, muted, forced });
    }

    async fn member_msg(&mut self, member: MemberId, msg: ClientMsg) {
        let Some(state) = self.members.get_mut(&member) else {
            return;
        };
        match msg {
            ClientMsg::Offer { sdp, sources } => {
                trace::step(&state.span, "negotiation: client offer");
                if let Some(sources) = sources {
                    state.sources = sources;
                }
                self.link.offer(member, sdp);
                self.drive_link().await;
            }
            ClientMsg::Answer { sdp } => {
                trace::step(&state.span, "negotiation: client answer");
                if self.link.answer(member, sdp) {
                    self.drive_link().await;
                } else {
                    let e = ServerMsg::error(ErrorCode::UnexpectedAnswer, "no offer outstanding");
                    self.send_to(member, e);
                }
            }
            ClientMsg::Candidate { candidate } => {
                self.link.candidate(member, candidate);
                self.drive_link().await;
            }
            ClientMsg::LocalMutes { ids } => {
                self.link.local_mutes(member, ids);
                self.drive_link().await;
            }
            ClientMsg::Video { camera, screen } => self.video_state(member, camera, screen),
            ClientMsg::VideoView { tracks } => self.video_view(member, tracks).await,
            ClientMsg::Mute { muted } => {
                if state.forced_muted && !muted {
                    let e =
                        ServerMsg::error(ErrorCode::MutedForEveryone, "you are muted for everyone");
                    return self.send_to(member, e);
                }
                state.muted = muted;
                trace::changed(&state.span, "mute", &muted);
                let forced = state.forced_muted;
                self.tell_mute(member, muted, forced);
            }
            ClientMsg::Rename { name } => {
                let tag = state.tag.clone();
                let others = self
                    .members
                    .iter()
                    .filter(|(id, m)| **id != member && (tag.is_none() || m.tag != tag));
                let name = unique_name(&name, others.map(|(_, m)| m.name.as_str()));
                if let Some(state) = self.members.get_mut(&member) {
                    state.name = name.clone();
                    trace::changed(&state.span, "rename", &name);
                }
                self.broadcast(None, &ServerMsg::MemberRenamed { id: member, name });
            }
            msg @ (ClientMsg::Chat { .. }
            | ClientMsg::ChatEdit { .. }
            | ClientMsg::ChatDelete { .. }
            | ClientMsg::ChatReact { .. }) => {
                let (name, tag) = (state.name.clone(), state.tag.clone());
                self.chat_msg(member, name, tag, msg);
            }
            msg @ (ClientMsg::SetRoom { .. }
            | ClientMsg::MuteMember { .. }
            | ClientMsg::RemoveMember { .. }
            | ClientMsg::MakeModerator { .. }
            | ClientMsg::ClearChat
            | ClientMsg::Hand { .. }
            | ClientMsg::LowerHand { .. }) => self.moderation(member, msg).await,
            // Connection-level messages never reach the room.
            ClientMsg::Join { .. } | ClientMsg::Leave | ClientMsg::Ping => {}
        }
    }

    /// Hands fresh TURN credentials to the members whose renewal is due, before those they
    /// have expire.
    fn renew_ice(&mut self) {
        for member in self.renewals.take_due(Instant::now()) {
            let Some(state) = self.members.get(&member) else {
                continue;
            };
            let ice_servers = self.local.renewed_ice(member, state.host.as_deref());
            self.send_to(member, ServerMsg::IceServers { ice_servers });
        }
    }

    /// Notes why a member is about to leave, for their span.
    fn why(&mut self, member: MemberId, why: &'static str) {
        if let Some(m) = self.members.get_mut(&member) {
            m.why = why;
        }
    }

    /// Drops a member: their media, their queue (which ends their connection), and tells
    /// the others.
    async fn remove(&mut self, member: MemberId) {
        let Some(state) = self.members.remove(&member) else {
            return;
        };
        self.local.members.fetch_sub(1, Ordering::SeqCst);
        self.local.member_left(member);
        self.renewals.forget(member);
        self.link.remove(member);
        self.drive_link().await;
        for track in state.tracks {
            self.broadcast(None, &ServerMsg::TrackRemoved { track });
        }
        if state.speaking {
            self.speakers.dirty = true;
        }
        self.broadcast(None, &ServerMsg::MemberLeft { id: member });
        self.video_member_left(member);
        self.after_leaving(member, state.moderator);
        trace::left(&state.span, state.why);
        self.tell(Lifecycle::MemberLeft {
            member,
            name: &state.name,
        });
        info!(room = self.name, %member, "member left");
    }
}
