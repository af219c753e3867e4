//! The sans-I/O SFU core: every member's `Rtc`, rooms, demultiplexing, forwarding, timers.
//!
//! Inputs: [`Sfu::handle_cmd`], [`Sfu::handle_datagram`], [`Sfu::handle_first_tcp_frame`],
//! [`Sfu::tcp_closed`], [`Sfu::handle_timeout`].
//! Outputs: [`Sfu::poll_transmit`], [`Sfu::poll_tcp_close`], [`Sfu::poll_event`],
//! [`Sfu::next_timeout`].
//! No sockets, threads or clocks inside: the caller supplies time. TCP (RFC 6544) reaches the
//! core as frames, already de-framed, each handled like a datagram with `Protocol::Tcp`.
//!
//! Every call into one member's `Rtc` runs under `catch_unwind`: a panic there drops that
//! member alone, and the room and the other members go on.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use rand::distr::Alphanumeric;
use rustc_hash::FxHashMap;
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::config::DtlsCert;
use str0m::format::PayloadParams;
use str0m::ice::{IceCreds, StunMessage};
use str0m::media::Pt;
use str0m::media::{Direction, KeyframeRequestKind, MediaKind, Mid};
use str0m::net::{DatagramRecv, Protocol, Receive, TcpType, Transmit};
use str0m::rtp::{Extension, ExtensionValues, RtpPacket, RtpWrite, SeqNo, Ssrc};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, RtcConfig};
use tracing::{debug, info, warn};

use crate::forward::{self, Red, Route};
use crate::peer::{Peer, Remote};
use crate::sdp::request_opus_dtx;
use crate::{MediaCmd, MediaErrorCode, MediaEvent, PeerId, RoomId, TrackKind};

/// Outgoing audio packets str0m keeps per stream. Audio is not retransmitted (browsers do not
/// negotiate NACK for Opus; RED covers loss), so the buffer only bridges a write and the drain
/// that follows it; str0m's default of 50 costs memory in every stream of every member.
const SEND_BUFFER_AUDIO: usize = 16;

/// The RTP header extensions we negotiate. Transport-wide sequence numbers and absolute send
/// time exist for send-side bandwidth estimation, which audio does not use; leaving them out
/// spares a 1000-entry feedback register per member and work on every packet. Video, with
/// bandwidth estimation, will bring them back.
const HEADER_EXTENSIONS: [(u8, Extension); 5] = [
    (1, Extension::AudioLevel),
    (4, Extension::RtpMid),
    (10, Extension::RtpStreamId),
    (11, Extension::RepairedRtpStreamId),
    (13, Extension::VideoOrientation),
];

/// How many already-due deadlines one drain of a member serves before deferring to the timer.
const MAX_DUE_ROUNDS: u32 = 4;
/// How often speaking state and connection deadlines are checked.
const HOUSEKEEPING: Duration = Duration::from_millis(250);
/// The most tracks one member may publish (microphone, camera, screen, with room to spare).
/// Further m-lines are negotiated but not forwarded, so one member cannot make every other
/// member's session grow.
pub const MAX_PUBLISHED_TRACKS: usize = 4;
/// The fewest milliseconds between two keyframe requests to one publisher track.
const KEYFRAME_THROTTLE: Duration = Duration::from_millis(500);
/// During a fan-out, the waiting datagrams are handed to the shell each time there are this
/// many ([`Sfu::handle_datagram`]).
pub const FANOUT_CHUNK: usize = 16;

/// What a fan-out has made so far, handed out to be sent at once: datagrams for this worker's
/// sockets, and packets for the other workers that hold members of the same room. The
/// receiver takes what it sends out of the queues; whatever it leaves stays for
/// [`Sfu::poll_transmit`] and [`Sfu::poll_relay`].
pub struct Outgoing<'q> {
    pub transmits: &'q mut VecDeque<Transmit>,
    pub relays: &'q mut VecDeque<(usize, Relay)>,
}

/// Where a fan-out hands what it has made so far, to be sent at once.
pub type SendNow<'a> = &'a mut dyn FnMut(Outgoing<'_>);

/// A packet a member published, made ready for subscribers: its track, codec, what its RED
/// redundancy recovered, and what each copy carries over. Made once, by the worker that
/// holds the publisher; written to subscribers there and, relayed, in the other workers that
/// hold members of the room.
#[derive(Debug, Clone)]
pub struct Prepared {
    room: RoomId,
    src: PeerId,
    mid: Mid,
    kind: TrackKind,
    params: PayloadParams,
    red: bool,
    /// RED: where the primary block starts in the payload, and whether it is new.
    primary: Option<(usize, bool)>,
    recovered: Vec<forward::Recovered>,
    ssrc: Ssrc,
    pt: Pt,
    seq: SeqNo,
    rtp_time: u32,
    marker: bool,
    ext: ExtensionValues,
    /// When the publisher's worker received it.
    received: Instant,
    payload: Arc<[u8]>,
}

/// What one worker hands another that holds members of the same room.
#[derive(Debug)]
pub enum Relay {
    /// A packet published by a member of the sending worker, for the receiver's subscribers.
    Packet(Box<Prepared>),
    /// A subscriber in the sending worker asks for a keyframe of `src`'s track `mid`.
    Keyframe { src: PeerId, mid: Mid },
}

impl Relay {
    /// The room of a relayed packet; a keyframe request names none.
    pub fn room(&self) -> Option<RoomId> {
        match self {
            Relay::Packet(p) => Some(p.room),
            Relay::Keyframe { .. } => None,
        }
    }

    /// When the packet reached the server, for a relayed packet.
    pub fn received(&self) -> Option<Instant> {
        match self {
            Relay::Packet(p) => Some(p.received),
            Relay::Keyframe { .. } => None,
        }
    }
}

/// A room's part in one worker: its members here, and, when the room spreads over several
/// workers, the tracks its members elsewhere publish and the workers to relay to.
#[derive(Debug, Default)]
struct Shard {
    members: Vec<PeerId>,
    /// Tracks published by members other workers hold: (publisher, track, kind).
    remote_tracks: Vec<(PeerId, Mid, TrackKind)>,
    /// The other workers holding members of this room, by index.
    relay_to: Vec<usize>,
}

#[derive(Debug, Clone)]
pub struct SfuConfig {
    /// The local UDP addresses media arrives at and leaves from; each is offered as a host
    /// candidate. A UDP datagram's `destination` must be one of them.
    pub candidates: Vec<SocketAddr>,
    /// The local addresses TCP connections are accepted on (RFC 6544); each is offered as a
    /// passive TCP host candidate, which ICE ranks below every UDP one. A TCP frame's
    /// `destination` must be one of them.
    pub tcp_candidates: Vec<SocketAddr>,
    /// A member whose media has not connected this long after their offer is dropped.
    pub connect_timeout: Duration,
    /// A member whose ICE stays disconnected this long is dropped.
    pub disconnect_grace: Duration,
}

impl SfuConfig {
    pub fn new(candidates: Vec<SocketAddr>) -> SfuConfig {
        SfuConfig {
            candidates,
            tcp_candidates: Vec::new(),
            connect_timeout: Duration::from_secs(30),
            disconnect_grace: Duration::from_secs(10),
        }
    }
}

/// What the core holds, for health checks and for tests that prove state is freed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SfuStats {
    pub rooms: usize,
    pub peers: usize,
    /// Remote addresses known for demultiplexing (UDP and TCP).
    pub addrs: usize,
    /// Of `addrs`, those of TCP connections.
    pub tcp_addrs: usize,
    /// ICE usernames known for demultiplexing.
    pub ufrags: usize,
    pub timers: usize,
    /// Media packets written to subscribers.
    pub forwarded: u64,
    /// Published packets handed to other workers for their members (one per worker).
    pub relayed: u64,
    /// Relayed packets received from other workers.
    pub relayed_in: u64,
    /// Datagrams that were not STUN, DTLS, RTP or RTCP.
    pub garbage: u64,
    /// Datagrams from an address and with a username nobody here knows, and first frames of
    /// TCP connections that were not a STUN binding request.
    pub unknown: u64,
    /// Members dropped because their media state failed or panicked.
    pub failed: u64,
}

pub struct Sfu {
    config: SfuConfig,
    /// One DTLS certificate for the whole process half: generating one per member costs a
    /// key generation per join for nothing.
    cert: Option<DtlsCert>,
    /// Boxed: a member's state is large (its `Rtc`), and a map's table keeps its capacity.
    /// Hashed with FxHash, a multiplication, rather than SipHash: member ids are counters the
    /// server assigns, never chosen by a client, so crafted collisions are not a concern, and
    /// this map is looked up several times per forwarded packet.
    peers: FxHashMap<PeerId, Box<Peer>>,
    rooms: HashMap<RoomId, Shard>,
    /// A UDP remote and a TCP remote may share an address: the protocol is part of the key.
    by_addr: HashMap<Remote, PeerId>,
    by_ufrag: HashMap<String, PeerId>,
    timers: BTreeSet<(Instant, PeerId)>,
    next_housekeeping: Instant,
    transmits: VecDeque<Transmit>,
    /// Packets and keyframe requests for other workers, by worker index.
    relays: VecDeque<(usize, Relay)>,
    /// TCP connections (by remote address) the shell should close.
    tcp_closes: VecDeque<SocketAddr>,
    events: VecDeque<(RoomId, MediaEvent)>,
    /// str0m events polled from members and not yet acted on.
    work: VecDeque<(PeerId, Event)>,
    /// Reused per forwarded packet: the members to write to.
    scratch: Vec<PeerId>,
    /// Reused per forwarded packet: frames recovered from RED redundancy.
    recovered: Vec<forward::Recovered>,
    /// Packets prepared or relayed here and not yet fanned out: they go out together once the
    /// work at hand is done ([`Sfu::process_work_sending`]), or, while `deferring` (a batch
    /// of inputs is being handed in, [`Sfu::handle_datagrams`]), once all of it is in.
    batch: Vec<Prepared>,
    deferring: bool,
    /// Reused per fan-out: the payloads made for each of its packets.
    made: Vec<Made>,
    stats: SfuStats,
    #[cfg(test)]
    panic_on_poll: Option<PeerId>,
    /// How many times a subscriber was drained after writes to it.
    #[cfg(test)]
    drains: u64,
}

/// The payloads a fan-out made from one packet, at most once each, for the subscribers who
/// need them: the RED primary alone, and the packet with its RED payload types rewritten.
#[derive(Default)]
struct Made {
    unwrapped: Option<Arc<[u8]>>,
    rewritten: Option<(u8, Arc<[u8]>)>,
}

impl Sfu {
    pub fn new(config: SfuConfig, now: Instant) -> Sfu {
        let provider = str0m::crypto::from_feature_flags();
        let cert = provider.dtls_provider.generate_certificate();
        provider.install_process_default();
        Sfu {
            config,
            cert,
            peers: FxHashMap::default(),
            rooms: HashMap::new(),
            by_addr: HashMap::new(),
            by_ufrag: HashMap::new(),
            timers: BTreeSet::new(),
            next_housekeeping: now + HOUSEKEEPING,
            transmits: VecDeque::new(),
            relays: VecDeque::new(),
            tcp_closes: VecDeque::new(),
            events: VecDeque::new(),
            work: VecDeque::new(),
            scratch: Vec::new(),
            recovered: Vec::new(),
            batch: Vec::new(),
            deferring: false,
            made: Vec::new(),
            stats: SfuStats::default(),
            #[cfg(test)]
            panic_on_poll: None,
            #[cfg(test)]
            drains: 0,
        }
    }

    /// The room of the member this worker knows by the address `source`, if any: datagrams
    /// read together are handed in per room (see the worker's `take_batch`).
    pub fn room_of(&self, proto: Protocol, source: SocketAddr) -> Option<RoomId> {
        let id = self.by_addr.get(&(proto, source))?;
        self.peers.get(id).map(|p| p.room)
    }

    pub fn stats(&self) -> SfuStats {
        SfuStats {
            rooms: self.rooms.len(),
            peers: self.peers.len(),
            addrs: self.by_addr.len(),
            tcp_addrs: self
                .by_addr
                .keys()
                .filter(|(proto, _)| *proto == Protocol::Tcp)
                .count(),
            ufrags: self.by_ufrag.len(),
            timers: self.timers.len(),
            ..self.stats
        }
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next packet or keyframe request to hand to another worker, with that worker's index.
    pub fn poll_relay(&mut self) -> Option<(usize, Relay)> {
        self.relays.pop_front()
    }

    /// The next TCP connection to close, by its remote address: its member is gone, or no
    /// longer known by it.
    pub fn poll_tcp_close(&mut self) -> Option<SocketAddr> {
        self.tcp_closes.pop_front()
    }

    /// The next event for the signalling layer, with the room of the member it concerns.
    pub fn poll_event(&mut self) -> Option<(RoomId, MediaEvent)> {
        self.events.pop_front()
    }

    /// When [`Sfu::handle_timeout`] is next due.
    pub fn next_timeout(&self) -> Instant {
        match self.timers.first() {
            Some((t, _)) => (*t).min(self.next_housekeeping),
            None => self.next_housekeeping,
        }
    }

    pub fn handle_cmd(&mut self, cmd: MediaCmd, now: Instant) {
        match cmd {
            MediaCmd::AddPeer { room, peer, offer } => self.add_peer(room, peer, &offer, now),
            MediaCmd::Offer { peer, sdp } => self.client_offer(peer, &sdp, now),
            MediaCmd::Answer { peer, sdp } => self.client_answer(peer, &sdp, now),
            MediaCmd::Candidate { peer, candidate } => self.candidate(peer, &candidate, now),
            MediaCmd::RemovePeer { peer } => {
                self.detach(peer, now);
            }
            MediaCmd::RemoteTrack {
                room,
                peer,
                track,
                kind,
            } => self.remote_track(room, peer, Mid::from(track.as_str()), kind, now),
            MediaCmd::RemotePeerGone { room, peer } => self.remote_peer_gone(room, peer, now),
            MediaCmd::RelayTo { room, workers } => {
                self.rooms.entry(room).or_default().relay_to = workers;
            }
        }
        self.process_work(now);
    }

    /// A packet or keyframe request another worker relayed: a packet is written to this
    /// worker's subscribers of its track, handing datagrams to `send` as it goes, as
    /// [`Sfu::handle_datagram`] does.
    pub fn handle_relay(&mut self, relay: Relay, now: Instant, send: SendNow<'_>) {
        match relay {
            Relay::Packet(packet) => {
                self.stats.relayed_in += 1;
                if self.rooms.contains_key(&packet.room) {
                    self.batch.push(*packet);
                }
            }
            Relay::Keyframe { src, mid } => {
                if self.peers.contains_key(&src) {
                    self.request_keyframe(src, mid, now);
                }
            }
        }
        self.process_work_sending(now, send);
    }

    /// The room's members here have all been removed: forget what this worker kept about it
    /// (the tracks its members elsewhere publish, where to relay).
    pub fn close_room(&mut self, room: RoomId) {
        if self
            .rooms
            .get(&room)
            .is_some_and(|shard| shard.members.is_empty())
        {
            self.rooms.remove(&room);
            self.shrink();
        }
    }

    /// One datagram from `source`, received on the local address `destination` — over UDP, or
    /// one RFC 4571 frame of an established TCP connection. Returns whether a member accepted it.
    ///
    /// Each time a fan-out has made [`FANOUT_CHUNK`] datagrams, `send` is handed those waiting
    /// so far: in a large room the first subscribers' copies then leave while the last ones are
    /// still being sealed, instead of all waiting for the last. `send` takes what it sends out
    /// of the queue; whatever it leaves is still there for [`Sfu::poll_transmit`]. A caller
    /// that sends only afterwards passes `&mut |_| {}`.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        proto: Protocol,
        source: SocketAddr,
        destination: SocketAddr,
        data: &[u8],
        send: SendNow<'_>,
    ) -> bool {
        let Ok(contents) = DatagramRecv::try_from(data) else {
            self.stats.garbage += 1;
            return false;
        };
        let known = self.by_addr.get(&(proto, source)).copied();
        let Some(id) = known.or_else(|| self.peer_by_stun_username(data)) else {
            self.stats.unknown += 1;
            return false;
        };
        let input = Input::Receive(
            now,
            Receive {
                proto,
                source,
                destination,
                contents,
            },
        );
        let accepted = self.with_peer(id, now, |peer| {
            if !peer.rtc.accepts(&input) {
                return false;
            }
            if let Err(e) = peer.rtc.handle_input(input) {
                debug!(peer = peer.id, "input refused: {e}");
            }
            true
        });
        let accepted = accepted == Some(true);
        if accepted && known.is_none() {
            self.remember_addr(id, (proto, source));
        }
        self.poll_peer(id, now);
        self.process_work_sending(now, send);
        accepted
    }

    /// Datagrams read together (one `recvmmsg`), each as [`Sfu::handle_datagram`] would take
    /// it, except that the packets they carry are fanned out together once all are in: a
    /// subscriber sent several of them has them all written before it is drained once, so the
    /// work str0m does per drain (a walk of every stream the subscriber is sent) is shared.
    /// Datagrams queue up only when the worker is behind, and that is when this saves most.
    /// Relays to other workers still leave as each packet is prepared.
    pub fn handle_datagrams<'d>(
        &mut self,
        now: Instant,
        datagrams: impl IntoIterator<Item = (Protocol, SocketAddr, SocketAddr, &'d [u8])>,
        send: SendNow<'_>,
    ) {
        self.in_one_batch(now, send, |sfu, send| {
            for (proto, source, destination, data) in datagrams {
                sfu.handle_datagram(now, proto, source, destination, data, send);
            }
        });
    }

    /// What other workers relayed, taken together as [`Sfu::handle_datagrams`] takes a batch
    /// of datagrams: the packets are fanned out together once all are in.
    pub fn handle_relays(
        &mut self,
        relays: impl IntoIterator<Item = Relay>,
        now: Instant,
        send: SendNow<'_>,
    ) {
        self.in_one_batch(now, send, |sfu, send| {
            for relay in relays {
                sfu.handle_relay(relay, now, send);
            }
        });
    }

    /// Runs `take`, which hands the core several inputs, holding back the fan-outs of the
    /// packets they bring until all are in; then fans those out together.
    fn in_one_batch(
        &mut self,
        now: Instant,
        send: SendNow<'_>,
        take: impl FnOnce(&mut Sfu, SendNow<'_>),
    ) {
        self.deferring = true;
        take(self, send);
        self.deferring = false;
        self.process_work_sending(now, send);
    }

    /// Fans out the packets prepared or relayed so far, together.
    fn fan_out_batch(&mut self, now: Instant, send: SendNow<'_>) {
        let mut batch = std::mem::take(&mut self.batch);
        self.fan_out(&batch, now, send);
        // The batch's allocation, and one recovery list, serve the next ones.
        if let Some(last) = batch.pop() {
            self.recovered = last.recovered;
        }
        batch.clear();
        self.batch = batch;
    }

    /// The first frame of a new TCP connection from `source`, accepted on the local address
    /// `destination`. Only a STUN binding request that a member's session accepts (our ufrag
    /// and password) opens a connection: returns whether the connection may stay open.
    pub fn handle_first_tcp_frame(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        data: &[u8],
    ) -> bool {
        let binding = StunMessage::parse(data).is_ok_and(|m| m.is_binding_request());
        if !binding {
            if DatagramRecv::try_from(data).is_ok() {
                self.stats.unknown += 1;
            } else {
                self.stats.garbage += 1;
            }
            return false;
        }
        // A new connection is a new remote, whatever an old one from this address was.
        self.tcp_closed(source);
        // A binding request: answered, never fanned out.
        self.handle_datagram(now, Protocol::Tcp, source, destination, data, &mut |_| {})
    }

    /// A TCP connection from `remote` has closed: forget the address. The member's ICE goes on
    /// with the pairs it has left, or fails over or times out as when UDP goes quiet.
    pub fn tcp_closed(&mut self, remote: SocketAddr) {
        let key = (Protocol::Tcp, remote);
        if let Some(id) = self.by_addr.remove(&key)
            && let Some(peer) = self.peers.get_mut(&id)
        {
            peer.addrs.retain(|a| *a != key);
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(t, id)) = self.timers.first() {
            if t > now {
                break;
            }
            // poll_peer below registers the member's next deadline.
            self.timers.pop_first();
            self.with_peer(id, now, |peer| {
                if let Err(e) = peer.rtc.handle_input(Input::Timeout(now)) {
                    debug!(peer = peer.id, "timeout refused: {e}");
                }
            });
            self.poll_peer(id, now);
        }
        if now >= self.next_housekeeping {
            self.next_housekeeping = now + HOUSEKEEPING;
            self.housekeeping(now);
        }
        self.process_work(now);
    }

    fn housekeeping(&mut self, now: Instant) {
        let mut doomed = Vec::new();
        for peer in self.peers.values_mut() {
            if let Some(speaking) = peer.speaking.tick(now) {
                let event = MediaEvent::Speaking {
                    peer: peer.id,
                    speaking,
                };
                self.events.push_back((peer.room, event));
            }
            if !peer.connected
                && now.saturating_duration_since(peer.created) > self.config.connect_timeout
            {
                doomed.push((peer.id, "media did not connect in time"));
            } else if peer
                .disconnected_since
                .is_some_and(|t| now.saturating_duration_since(t) > self.config.disconnect_grace)
            {
                doomed.push((peer.id, "media connection lost"));
            }
        }
        for (id, reason) in doomed {
            self.fail_peer(id, reason, now);
        }
    }

    fn peer_by_stun_username(&self, data: &[u8]) -> Option<PeerId> {
        let msg = StunMessage::parse(data).ok()?;
        let (local, _remote) = msg.split_username()?;
        self.by_ufrag.get(local).copied()
    }

    fn remember_addr(&mut self, id: PeerId, addr: Remote) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        if let Some(evicted) = peer.remember_addr(addr)
            && self.by_addr.get(&evicted) == Some(&id)
        {
            self.by_addr.remove(&evicted);
            if evicted.0 == Protocol::Tcp {
                self.tcp_closes.push_back(evicted.1);
            }
        }
        // An address another member was known by now belongs to this one.
        if let Some(previous) = self.by_addr.insert(addr, id)
            && previous != id
            && let Some(p) = self.peers.get_mut(&previous)
        {
            p.addrs.retain(|a| *a != addr);
        }
    }

    /// Runs `f` on one member's state, containing any panic to that member.
    fn with_peer<R>(
        &mut self,
        id: PeerId,
        now: Instant,
        f: impl FnOnce(&mut Peer) -> R,
    ) -> Option<R> {
        let peer = self.peers.get_mut(&id)?;
        match catch_unwind(AssertUnwindSafe(|| f(peer))) {
            Ok(r) => Some(r),
            Err(_) => {
                self.fail_peer(id, "internal error in the media session", now);
                None
            }
        }
    }

    /// Drains one member's output until its next timeout, as str0m requires after each change.
    fn poll_peer(&mut self, id: PeerId, now: Instant) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        #[cfg(test)]
        let inject_panic = self.panic_on_poll == Some(id);
        let transmits = &mut self.transmits;
        let work = &mut self.work;
        let result = catch_unwind(AssertUnwindSafe(|| {
            #[cfg(test)]
            if inject_panic {
                panic!("injected panic");
            }
            // A deadline that is already due (str0m packetizes a write on its next timeout) is
            // served at once rather than through the timer set: a few rounds at most.
            let mut due_rounds = 0;
            loop {
                match peer.rtc.poll_output() {
                    Ok(Output::Transmit(t)) => transmits.push_back(t),
                    Ok(Output::Event(e)) => work.push_back((peer.id, e)),
                    Ok(Output::Timeout(t)) if t <= now && due_rounds < MAX_DUE_ROUNDS => {
                        due_rounds += 1;
                        if let Err(e) = peer.rtc.handle_input(Input::Timeout(now)) {
                            return Err(e.to_string());
                        }
                    }
                    Ok(Output::Timeout(t)) => return Ok(t),
                    Err(e) => return Err(e.to_string()),
                }
            }
        }));
        let next = match result {
            Ok(Ok(t)) if peer.rtc.is_alive() => t,
            Ok(Ok(_)) => return self.fail_peer(id, "media session closed", now),
            Ok(Err(e)) => {
                debug!(peer = id, "media session error: {e}");
                return self.fail_peer(id, "media session error", now);
            }
            Err(_) => return self.fail_peer(id, "internal error in the media session", now),
        };
        // Never sooner than now: a timeout in the past would spin the caller.
        let next = next.max(now);
        if next != peer.timeout {
            self.timers.remove(&(peer.timeout, id));
            peer.timeout = next;
        }
        self.timers.insert((next, id));
    }

    /// Acts on polled str0m events until none are left. Acting may poll further members.
    fn process_work(&mut self, now: Instant) {
        self.process_work_sending(now, &mut |_| {});
    }

    /// [`Sfu::process_work`], handing datagrams to `send` during fan-outs. The packets the work
    /// brought are fanned out together once it is done, unless more of a batch is still to
    /// come ([`Sfu::handle_datagrams`]); the drains of a fan-out may bring more work.
    fn process_work_sending(&mut self, now: Instant, send: SendNow<'_>) {
        loop {
            while let Some((id, event)) = self.work.pop_front() {
                self.act_on(id, event, now, send);
            }
            if self.deferring || self.batch.is_empty() {
                return;
            }
            self.fan_out_batch(now, send);
        }
    }

    /// Acts on one str0m event polled from member `id`.
    fn act_on(&mut self, id: PeerId, event: Event, now: Instant, send: SendNow<'_>) {
        if !self.peers.contains_key(&id) {
            return;
        }
        match event {
            Event::Connected => {
                if let Some(p) = self.peers.get_mut(&id) {
                    p.connected = true;
                }
                self.emit(MediaEvent::Connected { peer: id });
            }
            Event::IceConnectionStateChange(state) => {
                if let Some(p) = self.peers.get_mut(&id) {
                    p.disconnected_since = match state {
                        IceConnectionState::Disconnected => Some(now),
                        _ => None,
                    };
                }
            }
            Event::MediaAdded(added) => {
                let receiving =
                    matches!(added.direction, Direction::RecvOnly | Direction::SendRecv);
                if receiving {
                    let kind = match added.kind {
                        MediaKind::Audio => TrackKind::Audio,
                        MediaKind::Video => TrackKind::Video,
                    };
                    self.publish(id, added.mid, kind, now);
                }
            }
            Event::RtpPacket(packet) => self.forward(id, packet, now, send),
            Event::KeyframeRequest(req) => {
                let source = self.peers.get(&id).and_then(|p| {
                    p.subs
                        .iter()
                        .find(|s| s.open_mid() == Some(req.mid))
                        .map(|s| (p.room, s.source, s.source_mid))
                });
                if let Some((room, src, src_mid)) = source {
                    self.ask_keyframe(room, src, src_mid, now);
                }
            }
            _ => {}
        }
    }

    fn publish(&mut self, id: PeerId, mid: Mid, kind: TrackKind, now: Instant) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        if peer.published.iter().any(|p| p.mid == mid) {
            return;
        }
        if peer.published.len() >= MAX_PUBLISHED_TRACKS {
            debug!(peer = id, "track not forwarded: too many published");
            return;
        }
        peer.published.push(crate::peer::Published {
            mid,
            kind,
            last_keyframe_request: None,
            forwarding: forward::Source::default(),
        });
        let room = peer.room;
        self.emit(MediaEvent::TrackPublished {
            peer: id,
            track: mid.to_string(),
            kind,
        });
        let others: Vec<PeerId> = self.room_members(room).filter(|o| *o != id).collect();
        self.renegotiate_each(others, now, |p| p.subscribe(id, mid, kind));
    }

    /// Changes what each of `members` receives with `change`, then offers them the change.
    fn renegotiate_each(&mut self, members: Vec<PeerId>, now: Instant, change: impl Fn(&mut Peer)) {
        for id in members {
            if let Some(p) = self.peers.get_mut(&id) {
                change(p);
            }
            self.negotiate(id, now);
        }
    }

    fn room_members(&self, room: RoomId) -> impl Iterator<Item = PeerId> + '_ {
        self.rooms
            .get(&room)
            .into_iter()
            .flat_map(|shard| shard.members.iter().copied())
    }

    /// A member another worker holds publishes a track: this worker's members of the room
    /// receive it.
    fn remote_track(&mut self, room: RoomId, src: PeerId, mid: Mid, kind: TrackKind, now: Instant) {
        let shard = self.rooms.entry(room).or_default();
        if shard.remote_tracks.iter().any(|t| t.0 == src && t.1 == mid) {
            return;
        }
        shard.remote_tracks.push((src, mid, kind));
        let members = shard.members.clone();
        self.renegotiate_each(members, now, |p| p.subscribe(src, mid, kind));
    }

    /// A member another worker held has gone: this worker's members stop receiving them.
    fn remote_peer_gone(&mut self, room: RoomId, src: PeerId, now: Instant) {
        let Some(shard) = self.rooms.get_mut(&room) else {
            return;
        };
        shard.remote_tracks.retain(|t| t.0 != src);
        let members = shard.members.clone();
        self.renegotiate_each(members, now, |p| p.unsubscribe_all_from(src));
    }

    /// Sends the member a server offer if their subscriptions changed and none is outstanding.
    fn negotiate(&mut self, id: PeerId, now: Instant) {
        let ready = self.peers.get(&id).is_some_and(|p| p.negotiated);
        if !ready {
            return;
        }
        if let Some(Some(sdp)) = self.with_peer(id, now, |p| p.make_offer()) {
            let sdp = request_opus_dtx(&sdp);
            self.emit(MediaEvent::Offer { peer: id, sdp });
            self.poll_peer(id, now);
        }
    }

    /// Forwards one RTP packet `src` published to every member subscribed to its track: relayed
    /// at once to the other workers that hold members of its room, and added to the packets
    /// this worker fans out once the work at hand is done.
    fn forward(&mut self, src: PeerId, packet: RtpPacket, now: Instant, send: SendNow<'_>) {
        let mut recovered = std::mem::take(&mut self.recovered);
        recovered.clear();
        let Some(prepared) = self.prepare(src, packet, now, recovered) else {
            return;
        };
        // The other workers start on their share before this one writes its own.
        if let Some(shard) = self.rooms.get(&prepared.room)
            && !shard.relay_to.is_empty()
        {
            for &worker in &shard.relay_to {
                let relay = Relay::Packet(Box::new(prepared.clone()));
                self.relays.push_back((worker, relay));
            }
            self.stats.relayed += shard.relay_to.len() as u64;
            send(Outgoing {
                transmits: &mut self.transmits,
                relays: &mut self.relays,
            });
        }
        self.batch.push(prepared);
    }

    /// The publisher's side of forwarding a packet: which track and codec it is, speaking
    /// state, gaps, RED recovery. `None`: it is not forwarded.
    fn prepare(
        &mut self,
        src: PeerId,
        packet: RtpPacket,
        now: Instant,
        mut recovered: Vec<forward::Recovered>,
    ) -> Option<Prepared> {
        let room = self.peers.get(&src).map(|p| p.room)?;
        let header = &packet.header;
        let (ssrc, pt, seq) = (header.ssrc, header.payload_type, packet.seq_no);
        let source = self.with_peer(src, now, |p| {
            let i = match p
                .published
                .iter()
                .position(|t| t.forwarding.ssrc == Some(ssrc))
            {
                Some(i) => i,
                None => {
                    let mid = p.rtc.direct_api().stream_rx(&ssrc).map(|s| s.mid())?;
                    let i = p.published.iter().position(|t| t.mid == mid)?;
                    p.published[i].forwarding.ssrc = Some(ssrc);
                    i
                }
            };
            let track = &mut p.published[i];
            let fwd = &mut track.forwarding;
            let (params, red) = match fwd.params {
                Some((cached, params, red)) if cached == pt => (params, red),
                _ => {
                    let params = *p
                        .rtc
                        .codec_config()
                        .iter()
                        .find(|c| c.pt() == pt || c.red() == Some(pt))?;
                    let red = params.pt() != pt;
                    fwd.params = Some((pt, params, red));
                    (params, red)
                }
            };
            let gap = fwd.highest.is_some_and(|h| *seq > h.saturating_add(1));
            fwd.highest = Some(fwd.highest.map_or(*seq, |h| h.max(*seq)));
            // RED: the primary block's place in the payload, and whether it is new.
            let primary = if red {
                let parsed = Red::parse(&packet.payload)?;
                let new =
                    forward::recover(&mut fwd.red, &parsed, seq, header.timestamp, &mut recovered);
                let start = packet.payload.len() - parsed.primary.len();
                Some((start, new))
            } else {
                None
            };
            let speaking = match (track.kind, header.ext_vals.audio_level) {
                (TrackKind::Audio, Some(level)) => p.speaking.observe(now, level),
                _ => None,
            };
            let keyframe = track.kind == TrackKind::Video && gap;
            Some((
                track.mid, track.kind, params, red, primary, speaking, keyframe,
            ))
        });
        let Some(Some((mid, kind, params, red, primary, speaking, keyframe))) = source else {
            self.recovered = recovered;
            return None;
        };
        if let Some(speaking) = speaking {
            let event = MediaEvent::Speaking {
                peer: src,
                speaking,
            };
            self.events.push_back((room, event));
        }
        if keyframe {
            self.request_keyframe(src, mid, now);
        }
        Some(Prepared {
            room,
            src,
            mid,
            kind,
            params,
            red,
            primary,
            recovered,
            ssrc,
            pt,
            seq,
            rtp_time: header.timestamp,
            marker: header.marker,
            // What every subscriber's copy carries over: the extensions the receivers use.
            ext: ExtensionValues {
                audio_level: header.ext_vals.audio_level,
                voice_activity: header.ext_vals.voice_activity,
                video_orientation: header.ext_vals.video_orientation,
                ..Default::default()
            },
            received: packet.timestamp,
            payload: packet.payload,
        })
    }

    /// Writes prepared packets to every member of this worker subscribed to their tracks: all
    /// of those a member is sent, in order, then one timeout and one drain for that member.
    fn fan_out(&mut self, packets: &[Prepared], now: Instant, send: SendNow<'_>) {
        let mut targets = std::mem::take(&mut self.scratch);
        targets.clear();
        // A member is in one room: the members of each room the packets are for, once.
        for (i, packet) in packets.iter().enumerate() {
            if packets[..i].iter().all(|p| p.room != packet.room) {
                targets.extend(self.room_members(packet.room));
            }
        }
        let mut made = std::mem::take(&mut self.made);
        made.clear();
        made.resize_with(packets.len(), Made::default);
        for &dst in &targets {
            let written = self.with_peer(dst, now, |p| {
                let mut n = 0;
                for (packet, made) in packets.iter().zip(made.iter_mut()) {
                    if packet.room == p.room && packet.src != dst {
                        n += write_copy(p, packet, made, now);
                    }
                }
                // str0m sends what was written on its next timeout: give it now, rather than
                // learn from a poll that the timeout is due.
                if n > 0
                    && let Err(e) = p.rtc.handle_input(Input::Timeout(now))
                {
                    debug!(peer = p.id, "timeout refused: {e}");
                }
                n
            });
            if let Some(n @ 1..) = written {
                self.stats.forwarded += n;
                #[cfg(test)]
                {
                    self.drains += 1;
                }
                self.poll_peer(dst, now);
                if self.transmits.len() >= FANOUT_CHUNK {
                    send(Outgoing {
                        transmits: &mut self.transmits,
                        relays: &mut self.relays,
                    });
                }
            }
        }
        made.clear();
        self.made = made;
        self.scratch = targets;
    }

    /// Asks for a keyframe of `src`'s track `mid` on behalf of a member of `room`: from the
    /// publisher if this worker holds them, else through the workers the room is relayed to
    /// (the one that holds the publisher acts on it).
    fn ask_keyframe(&mut self, room: RoomId, src: PeerId, mid: Mid, now: Instant) {
        if self.peers.contains_key(&src) {
            return self.request_keyframe(src, mid, now);
        }
        if let Some(shard) = self.rooms.get(&room) {
            for &worker in &shard.relay_to {
                self.relays
                    .push_back((worker, Relay::Keyframe { src, mid }));
            }
        }
    }

    fn request_keyframe(&mut self, src: PeerId, mid: Mid, now: Instant) {
        self.with_peer(src, now, |p| {
            let Some(track) = p.published.iter_mut().find(|t| t.mid == mid) else {
                return;
            };
            if track
                .last_keyframe_request
                .is_some_and(|t| now.saturating_duration_since(t) < KEYFRAME_THROTTLE)
            {
                return;
            }
            track.last_keyframe_request = Some(now);
            if let Some(stream) = p.rtc.direct_api().stream_rx_by_mid(mid, None) {
                stream.request_keyframe(KeyframeRequestKind::Pli);
            }
        });
        self.poll_peer(src, now);
    }

    /// Queues an event about a member for their room's signalling.
    fn emit(&mut self, event: MediaEvent) {
        match self.peers.get(&event.peer()) {
            Some(p) => self.events.push_back((p.room, event)),
            None => debug!(
                peer = event.peer(),
                "event for a member who is gone: {event:?}"
            ),
        }
    }

    fn error(&mut self, peer: PeerId, code: MediaErrorCode, message: impl Into<String>) {
        self.emit(MediaEvent::Error {
            peer,
            code,
            message: message.into(),
        });
    }

    /// Refuses a first offer: the member gets no media session.
    fn refuse(&mut self, room: RoomId, peer: PeerId, message: impl Into<String>) {
        let message = message.into();
        self.events
            .push_back((room, MediaEvent::Refused { peer, message }));
    }

    fn add_peer(&mut self, room: RoomId, id: PeerId, offer: &str, now: Instant) {
        if self.peers.contains_key(&id) {
            return self.error(id, MediaErrorCode::InvalidSdp, "media session exists");
        }
        let offer = match parse_offer(offer) {
            Ok(o) => o,
            Err(e) => return self.refuse(room, id, e),
        };
        let ufrag: String = random_token(16);
        let creds = IceCreds {
            ufrag: ufrag.clone(),
            pass: random_token(32),
        };
        let mut config = RtcConfig::new()
            .set_rtp_mode(true)
            .set_ice_lite(true)
            .set_local_ice_credentials(creds)
            .enable_opus(true, true)
            .set_send_buffer_audio(SEND_BUFFER_AUDIO)
            .clear_extension_map();
        for (id, ext) in HEADER_EXTENSIONS {
            config = config.set_extension(id, ext);
        }
        if let Some(cert) = &self.cert {
            config = config.set_dtls_cert(cert.clone());
        }
        let candidates = self.config.candidates.clone();
        let tcp_candidates = self.config.tcp_candidates.clone();
        let built = catch_unwind(AssertUnwindSafe(move || {
            let mut rtc = config.build(now);
            for addr in candidates {
                if let Ok(c) = Candidate::host(addr, "udp") {
                    rtc.add_local_candidate(c);
                }
            }
            for addr in tcp_candidates {
                let passive = Candidate::builder()
                    .tcp()
                    .host(addr)
                    .tcptype(TcpType::Passive)
                    .build();
                if let Ok(c) = passive {
                    rtc.add_local_candidate(c);
                }
            }
            let answer = rtc.sdp_api().accept_offer(offer);
            (rtc, answer)
        }));
        let (rtc, answer) = match built {
            Ok((rtc, Ok(answer))) => (rtc, request_opus_dtx(&answer.to_sdp_string())),
            Ok((_, Err(e))) => {
                return self.refuse(room, id, format!("offer refused: {e}"));
            }
            Err(_) => return self.refuse(room, id, "offer refused"),
        };
        if !has_active_media(&answer) {
            return self.refuse(room, id, "the offer has nothing this server can use");
        }
        info!(peer = id, room, "media session created");
        let mut peer = Peer::new(id, room, rtc, ufrag.clone(), now);
        peer.negotiated = true;
        // Receive what the others in the room already publish.
        let mut existing: Vec<(PeerId, Mid, TrackKind)> = self
            .room_members(room)
            .filter_map(|o| self.peers.get(&o))
            .flat_map(|o| o.published.iter().map(move |t| (o.id, t.mid, t.kind)))
            .collect();
        if let Some(shard) = self.rooms.get(&room) {
            existing.extend_from_slice(&shard.remote_tracks);
        }
        for (src, mid, kind) in existing {
            peer.subscribe(src, mid, kind);
        }
        self.peers.insert(id, Box::new(peer));
        self.rooms.entry(room).or_default().members.push(id);
        self.by_ufrag.insert(ufrag, id);
        self.emit(MediaEvent::Answer {
            peer: id,
            sdp: answer,
        });
        self.after_sdp(id, now);
    }

    /// After an SDP step: drain the member, act on what it produced, and send them our own
    /// offer if their subscriptions are waiting for one.
    fn after_sdp(&mut self, id: PeerId, now: Instant) {
        self.poll_peer(id, now);
        self.process_work(now);
        self.negotiate(id, now);
    }

    fn client_offer(&mut self, id: PeerId, sdp: &str, now: Instant) {
        let Some(peer) = self.peers.get(&id) else {
            return self.error(id, MediaErrorCode::UnknownPeer, "no media session");
        };
        if peer.pending.is_some() {
            // Glare: we are the impolite side. The client rolls back and offers again later.
            debug!(
                peer = id,
                "client offer ignored: a server offer is outstanding"
            );
            return;
        }
        let offer = match parse_offer(sdp) {
            Ok(o) => o,
            Err(e) => return self.error(id, MediaErrorCode::InvalidSdp, e),
        };
        match self.with_peer(id, now, |p| p.rtc.sdp_api().accept_offer(offer)) {
            Some(Ok(answer)) => self.emit(MediaEvent::Answer {
                peer: id,
                sdp: request_opus_dtx(&answer.to_sdp_string()),
            }),
            Some(Err(e)) => self.error(id, MediaErrorCode::InvalidSdp, format!("{e}")),
            None => return,
        }
        self.after_sdp(id, now);
    }

    fn client_answer(&mut self, id: PeerId, sdp: &str, now: Instant) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return self.error(id, MediaErrorCode::UnknownPeer, "no media session");
        };
        if peer.pending.is_none() {
            return self.error(id, MediaErrorCode::UnexpectedAnswer, "no offer outstanding");
        }
        let answer = match SdpAnswer::from_sdp_string(sdp) {
            Ok(a) => a,
            Err(e) => return self.error(id, MediaErrorCode::InvalidSdp, format!("{e}")),
        };
        let result = self.with_peer(id, now, |p| {
            let pending = p.pending.take()?;
            let r = p.rtc.sdp_api().accept_answer(pending, answer);
            p.settle_offer(r.is_ok());
            Some(r)
        });
        match result {
            Some(Some(Ok(()))) => {
                let video: Vec<(RoomId, PeerId, Mid)> = self
                    .peers
                    .get(&id)
                    .into_iter()
                    .flat_map(|p| p.subs.iter().map(move |s| (p.room, s)))
                    .filter(|(_, s)| s.kind == TrackKind::Video && s.open_mid().is_some())
                    .map(|(room, s)| (room, s.source, s.source_mid))
                    .collect();
                for (room, src, mid) in video {
                    self.ask_keyframe(room, src, mid, now);
                }
            }
            Some(Some(Err(e))) => self.error(id, MediaErrorCode::InvalidSdp, format!("{e}")),
            _ => return,
        }
        self.after_sdp(id, now);
    }

    fn candidate(&mut self, id: PeerId, line: &str, now: Instant) {
        if !self.peers.contains_key(&id) {
            return self.error(id, MediaErrorCode::UnknownPeer, "no media session");
        }
        let line = line.trim();
        let line = line.strip_prefix("a=").unwrap_or(line);
        if line.is_empty() {
            return;
        }
        // Browsers hide their addresses behind mDNS names we cannot resolve; their
        // connectivity checks tell us the address anyway.
        if line
            .split_whitespace()
            .nth(4)
            .is_some_and(|a| a.ends_with(".local"))
        {
            return;
        }
        let candidate = match Candidate::from_sdp_string(line) {
            Ok(c) => c,
            Err(e) => return self.error(id, MediaErrorCode::InvalidCandidate, format!("{e}")),
        };
        self.with_peer(id, now, |p| p.rtc.add_remote_candidate(candidate));
        self.poll_peer(id, now);
    }

    fn fail_peer(&mut self, id: PeerId, reason: &str, now: Instant) {
        if let Some(room) = self.detach(id, now) {
            warn!(peer = id, "media session dropped: {reason}");
            self.stats.failed += 1;
            let event = MediaEvent::PeerFailed {
                peer: id,
                reason: reason.to_owned(),
            };
            self.events.push_back((room, event));
        }
    }

    /// Forgets a member and everything that points at them. Returns their room if they existed.
    fn detach(&mut self, id: PeerId, now: Instant) -> Option<RoomId> {
        let peer = self.peers.remove(&id)?;
        self.timers.remove(&(peer.timeout, id));
        self.by_ufrag.remove(&peer.ufrag);
        for addr in &peer.addrs {
            if self.by_addr.get(addr) == Some(&id) {
                self.by_addr.remove(addr);
                if addr.0 == Protocol::Tcp {
                    self.tcp_closes.push_back(addr.1);
                }
            }
        }
        let room = peer.room;
        drop(peer);
        let others: Vec<PeerId> = match self.rooms.get_mut(&room) {
            Some(shard) => {
                shard.members.retain(|m| *m != id);
                shard.members.clone()
            }
            None => Vec::new(),
        };
        // After the room's last member here, what it kept for members elsewhere goes too. The
        // signalling layer sends it again if a member of the room comes back here.
        self.close_room(room);
        self.renegotiate_each(others, now, |p| p.unsubscribe_all_from(id));
        Some(room)
    }

    /// Gives back the capacity that busy rooms left in the core's collections.
    fn shrink(&mut self) {
        self.peers.shrink_to_fit();
        self.rooms.shrink_to_fit();
        self.by_addr.shrink_to_fit();
        self.by_ufrag.shrink_to_fit();
        self.transmits.shrink_to_fit();
        self.relays.shrink_to_fit();
        self.tcp_closes.shrink_to_fit();
        self.events.shrink_to_fit();
        self.work.shrink_to_fit();
        self.scratch.shrink_to_fit();
        self.recovered.shrink_to_fit();
        self.batch.shrink_to_fit();
        self.made.shrink_to_fit();
    }

    #[cfg(test)]
    pub(crate) fn inject_panic_on_poll(&mut self, id: PeerId) {
        self.panic_on_poll = Some(id);
    }
}

/// Writes `packet` to the member `p` if it is subscribed to the packet's track and can be sent
/// to. Returns how many RTP packets it wrote: none, the packet, or also frames recovered from
/// its RED redundancy. `made` keeps the payloads made for one subscriber for the next.
fn write_copy(p: &mut Peer, packet: &Prepared, made: &mut Made, now: Instant) -> u64 {
    if !p.connected {
        // Nothing may queue up before the session can send it.
        return 0;
    }
    let Some(sub) = p
        .subs
        .iter_mut()
        .find(|s| s.source == packet.src && s.source_mid == packet.mid)
    else {
        return 0;
    };
    let Some(dst_mid) = sub.open_mid() else {
        return 0;
    };
    let (pt, params, ssrc) = (packet.pt, packet.params, packet.ssrc);
    let clock_rate = params.spec().clock_rate.get();
    let video = packet.kind == TrackKind::Video;
    let fwd = &mut sub.forwarding;
    let mut first_of_route = false;
    let route = match fwd.route {
        Some((cached, route)) if cached == pt => route,
        _ => {
            first_of_route = true;
            let accepted = p.rtc.media(dst_mid).map_or(&[][..], |m| m.remote_pts());
            let matched = p.rtc.codec_config().match_params(params);
            let route = Route::find(&params, packet.red, matched, accepted);
            fwd.route = Some((pt, route));
            route
        }
    };
    let Some(route) = route else {
        return 0;
    };
    let mut api = p.rtc.direct_api();
    let Some(stream) = api.stream_tx_by_mid(dst_mid, None) else {
        return 0;
    };
    if first_of_route && !video {
        // Audio is never resent (not nackable), so its stream needs no resend cache and no
        // history of bytes sent to cap resends by: str0m keeps one by default, an entry per
        // packet.
        stream.set_rtx_cache(0, Duration::ZERO, None);
    }
    let mut written = 0;
    let wallclock = packet.received;
    let (out_pt, payload) = match route {
        Route::Plain { pt } => (pt, packet.payload.clone()),
        Route::Red { pt, from, to } if from == to => (pt, packet.payload.clone()),
        Route::Red { pt, from, to } => {
            let payload = match &made.rewritten {
                Some((cached, payload)) if *cached == to => payload.clone(),
                _ => {
                    let payload = forward::rewrite_red_pt(&packet.payload, from, to);
                    made.rewritten = Some((to, payload.clone()));
                    payload
                }
            };
            (pt, payload)
        }
        Route::Unwrap { pt } => {
            for r in &packet.recovered {
                let Some((seq, ts)) = fwd.rewriter.map(ssrc, r.seq, r.ts, clock_rate, now) else {
                    continue;
                };
                let write = RtpWrite::new(pt, seq, ts, wallclock, r.payload.clone());
                stream.write_rtp(write);
                written += 1;
            }
            let Some((start, true)) = packet.primary else {
                return written;
            };
            let payload = made
                .unwrapped
                .get_or_insert_with(|| packet.payload[start..].into())
                .clone();
            (pt, payload)
        }
    };
    let Some((seq, ts)) = fwd
        .rewriter
        .map(ssrc, packet.seq, packet.rtp_time, clock_rate, now)
    else {
        return written;
    };
    let write = RtpWrite::new(out_pt, seq, ts, wallclock, payload)
        .marker(packet.marker)
        .ext_vals(packet.ext.clone())
        .nackable(video);
    stream.write_rtp(write);
    written + 1
}

fn parse_offer(sdp: &str) -> Result<SdpOffer, String> {
    if !sdp.lines().any(|l| l.starts_with("m=")) {
        return Err("the offer has no media sections".into());
    }
    SdpOffer::from_sdp_string(sdp).map_err(|e| format!("the offer does not parse: {e}"))
}

/// Whether an SDP answer accepts any media section (a port other than 0).
fn has_active_media(answer: &str) -> bool {
    answer
        .lines()
        .filter_map(|l| l.strip_prefix("m="))
        .any(|m| m.split_whitespace().nth(1).is_some_and(|port| port != "0"))
}

fn random_token(len: usize) -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests;
