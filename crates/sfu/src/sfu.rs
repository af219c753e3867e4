//! The core: fed with datagrams, commands and time, it yields datagrams to send, packets for
//! other workers, TCP connections to close, events for the signalling layer, and the next time
//! it wants to be woken.
//!
//! Inputs: [`Sfu::handle_datagram`], [`Sfu::handle_first_tcp_frame`], [`Sfu::tcp_closed`],
//! [`Sfu::handle_relay`], [`Sfu::handle_cmd`], [`Sfu::handle_timeout`].
//! Outputs, which the shell polls: [`Sfu::poll_transmit`], [`Sfu::poll_relay`],
//! [`Sfu::poll_tcp_close`], [`Sfu::poll_event`], [`Sfu::next_timeout`].
//!
//! The core never calls out: what it makes waits in its queues until polled. Forwarded packets
//! wait in the fan-out batch ([`crate::fanout`]) and are written to their subscribers as the
//! shell polls [`Sfu::poll_transmit`], so packets handed in together are fanned out together,
//! and the shell sends a large fan-out in chunks as it goes.
//!
//! Every call into one participant's `Rtc` runs under `catch_unwind`: a panic there drops that
//! participant alone, and the room and the others go on.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;
use str0m::ice::StunMessage;
use str0m::net::{DatagramRecv, Protocol, Receive, Transmit};
use str0m::{Event, Input, Output};
use tracing::{debug, warn};

#[cfg(test)]
use free4chat_ids::MemberId;
use free4chat_ids::RoomId;

use crate::api::{MediaCmd, MediaEvent, WorkerIndex};
use crate::config::SfuConfig;
use crate::demux::Demux;
use crate::fanout::FanOut;
use crate::participant::Participant;
use crate::participants::{ParticipantKey, Participants};
use crate::prepared::Relay;
use crate::quality::MemberQuality;
use crate::rooms::Rooms;
use crate::stats::CoreStats;
use crate::timers::Timers;
use crate::uptrack::UpTracks;

pub use bandwidth::ViewerBandwidth;

mod bandwidth;
mod media;
mod signalling;
mod slots;
#[cfg(test)]
mod tests;

/// How many already-due deadlines one drain of a participant serves before deferring to the
/// timer.
const MAX_DUE_ROUNDS: u32 = 4;
/// How soon a participant whose deadline is still due after [`MAX_DUE_ROUNDS`] is served
/// again.
const DUE_AGAIN: Duration = Duration::from_millis(1);
/// How often speaking state and connection deadlines are checked.
const HOUSEKEEPING: Duration = Duration::from_millis(250);

/// What the core has made and the shell has not yet taken.
#[derive(Default)]
struct Outbox {
    transmits: VecDeque<Transmit>,
    /// Packets and keyframe requests for other workers, by worker index.
    relays: VecDeque<(WorkerIndex, Relay)>,
    /// TCP connections (by remote address) the shell should close.
    tcp_closes: VecDeque<SocketAddr>,
    events: VecDeque<(RoomId, MediaEvent)>,
}

impl Outbox {
    fn shrink(&mut self) {
        self.transmits.shrink_to_fit();
        self.relays.shrink_to_fit();
        self.tcp_closes.shrink_to_fit();
        self.events.shrink_to_fit();
    }
}

pub struct Sfu {
    config: SfuConfig,
    rng: StdRng,
    /// The time of the latest input: what the core makes while polled is made at this time.
    now: Instant,
    participants: Participants,
    up_tracks: UpTracks,
    rooms: Rooms,
    demux: Demux,
    timers: Timers,
    next_housekeeping: Instant,
    fan_out: FanOut,
    outbox: Outbox,
    /// str0m events drained from participants and not yet acted on.
    rtc_events: VecDeque<(ParticipantKey, Event)>,
    /// Keyframes a fan-out's layer switches want (room, publisher, mid, layer), asked for
    /// once the subscriber is written.
    keyframe_asks: Vec<(RoomId, free4chat_ids::MemberId, str0m::media::Mid, u8)>,
    stats: CoreStats,
    #[cfg(test)]
    test: TestHooks,
}

/// What tests inject into the core and count in it.
#[cfg(test)]
#[derive(Default)]
struct TestHooks {
    panic_on_drain: Option<MemberId>,
    /// Drains of a subscriber after writes to it.
    fan_out_drains: u64,
    /// Every viewer's bandwidth estimate, in place of its estimator's.
    estimate: Option<u64>,
}

impl Sfu {
    pub fn new(config: SfuConfig, now: Instant) -> Sfu {
        let rooms = Rooms::new(config.audio_slots);
        Sfu {
            rng: StdRng::from_seed(config.seed),
            config,
            now,
            participants: Participants::default(),
            up_tracks: UpTracks::default(),
            rooms,
            demux: Demux::default(),
            timers: Timers::default(),
            next_housekeeping: now + HOUSEKEEPING,
            fan_out: FanOut::default(),
            outbox: Outbox::default(),
            rtc_events: VecDeque::new(),
            keyframe_asks: Vec::new(),
            stats: CoreStats::default(),
            #[cfg(test)]
            test: TestHooks::default(),
        }
    }

    /// The room of the participant known by `source`: datagrams read together are handed in
    /// room by room (see the worker shell).
    pub fn room_of(&self, proto: Protocol, source: SocketAddr) -> Option<RoomId> {
        let key = self.demux.find((proto, source))?;
        self.participants.get(key).map(|p| p.room)
    }

    pub fn stats(&self) -> CoreStats {
        CoreStats {
            rooms: self.rooms.len(),
            participants: self.participants.len(),
            up_tracks: self.up_tracks.len(),
            addrs: self.demux.addrs(),
            tcp_addrs: self.demux.tcp_addrs(),
            ufrags: self.demux.ufrags(),
            timers: self.timers.len(),
            ..self.stats
        }
    }

    /// Every participant's connection quality now, for the signalling layer to read.
    pub fn quality(&self) -> Vec<MemberQuality> {
        let now = self.now;
        self.participants
            .iter()
            .map(|(_, p)| MemberQuality {
                member: p.member,
                room: p.room,
                connected: p.connection.connected,
                age: now.saturating_duration_since(p.connection.created),
                figures: p.quality.read(now),
            })
            .collect()
    }

    /// The next datagram to send. Packets waiting to be forwarded are written to their
    /// subscribers here, a subscriber at a time, as the queue runs dry.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        loop {
            if let Some(t) = self.outbox.transmits.pop_front() {
                return Some(t);
            }
            if !self.fan_out_next_subscriber() {
                return None;
            }
        }
    }

    /// The next packet or keyframe request to hand to another worker, with that worker's index.
    pub fn poll_relay(&mut self) -> Option<(WorkerIndex, Relay)> {
        self.outbox.relays.pop_front()
    }

    /// The next TCP connection to close, by its remote address: its participant is gone, or
    /// no longer known by it.
    pub fn poll_tcp_close(&mut self) -> Option<SocketAddr> {
        self.outbox.tcp_closes.pop_front()
    }

    /// The next event for the signalling layer, with the room of the member it concerns.
    pub fn poll_event(&mut self) -> Option<(RoomId, MediaEvent)> {
        self.outbox.events.pop_front()
    }

    /// When [`Sfu::handle_timeout`] is next due.
    pub fn next_timeout(&self) -> Instant {
        match self.timers.next() {
            Some(t) => t.min(self.next_housekeeping),
            None => self.next_housekeeping,
        }
    }

    pub fn handle_cmd(&mut self, cmd: MediaCmd, now: Instant) {
        self.advance(now);
        match cmd {
            MediaCmd::AddParticipant {
                room,
                member,
                source,
                offer,
            } => self.add_participant(room, (member, source), &offer),
            MediaCmd::Offer { member, sdp } => self.client_offer(member, &sdp),
            MediaCmd::Answer { member, sdp } => self.client_answer(member, &sdp),
            MediaCmd::Candidate { member, candidate } => self.candidate(member, &candidate),
            MediaCmd::RemoveParticipant { member } => {
                if let Some(key) = self.participants.key_of(member) {
                    self.detach(key);
                }
            }
            MediaCmd::RemoteTrack {
                room,
                member,
                source,
                track,
                kind,
            } => self.remote_track(room, (member, source), &track, kind),
            MediaCmd::LocalMutes { member, muted } => {
                if let Some(key) = self.participants.key_of(member) {
                    if let Some(p) = self.participants.get_mut(key) {
                        p.set_local_mutes(muted);
                    }
                    self.reassign_listener(key);
                }
            }
            MediaCmd::Silence { member, silenced } => {
                if let Some(p) = self
                    .participants
                    .key_of(member)
                    .and_then(|key| self.participants.get_mut(key))
                {
                    p.silenced = silenced;
                }
            }
            MediaCmd::RemoteMemberGone { room, member } => self.remote_member_gone(room, member),
            MediaCmd::RelayTo { room, workers } => self.rooms.entry(room).relay_to = workers,
            MediaCmd::CloseRoom { room } => self.close_room(room),
            MediaCmd::ViewVideo {
                member,
                publisher,
                track,
                quality,
                screen,
            } => self.view_video(member, (publisher, &track), quality, screen),
        }
        self.act_on_rtc_events();
    }

    /// A packet or keyframe request another worker relayed. A packet waits in the fan-out
    /// batch for this worker's subscribers of its up-track ([`Sfu::poll_transmit`]).
    pub fn handle_relay(&mut self, relay: Relay, now: Instant) {
        self.advance(now);
        match relay {
            Relay::Packet(packet) => {
                self.stats.relayed_in += 1;
                if self.rooms.get(packet.room).is_some() {
                    if self.slots_on()
                        && let Some(up) = self.up_tracks.find(packet.src, packet.mid)
                    {
                        let level = packet.header.ext.audio_level;
                        self.observe_speaker(up, level, now);
                    }
                    if packet.kind == free4chat_ids::TrackKind::Video
                        && let Some(up) = self.up_tracks.find(packet.src, packet.mid)
                        && let Some(track) = self.up_tracks.get_mut(up)
                    {
                        track.bitrates = packet.video.bitrates;
                    }
                    self.fan_out.push(*packet);
                }
            }
            Relay::Keyframe { src, mid } => {
                if let Some(key) = self.participants.key_of(src) {
                    self.request_keyframe(key, mid, None);
                }
            }
            Relay::LayerKeyframe { src, mid, layer } => {
                if let Some(key) = self.participants.key_of(src) {
                    self.request_keyframe(key, mid, Some(layer));
                }
            }
        }
        self.act_on_rtc_events();
    }

    /// One datagram from `source`, received on the local address `destination` — over UDP, or
    /// one RFC 4571 frame of an established TCP connection. Returns whether a participant
    /// accepted it. The packets it carries wait to be fanned out until polled, with those of
    /// the datagrams handed in after it.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        proto: Protocol,
        source: SocketAddr,
        destination: SocketAddr,
        data: &[u8],
    ) -> bool {
        self.advance(now);
        let Ok(contents) = DatagramRecv::try_from(data) else {
            self.stats.garbage += 1;
            return false;
        };
        let known = self.demux.find((proto, source));
        let Some(key) = known.or_else(|| self.demux.find_by_stun(data)) else {
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
        let accepted = self.with_participant(key, |p| {
            if !p.rtc.accepts(&input) {
                return false;
            }
            if let Err(e) = p.rtc.handle_input(input) {
                debug!(member = %p.member, "input refused: {e}");
            }
            true
        }) == Some(true);
        if accepted
            && known.is_none()
            && let Some(closed) = self.demux.remember(key, (proto, source))
        {
            self.outbox.tcp_closes.push_back(closed);
        }
        self.drain(key);
        self.act_on_rtc_events();
        accepted
    }

    /// The first frame of a new TCP connection from `source`, accepted on the local address
    /// `destination`. Only a STUN binding request that a participant's session accepts (our
    /// ufrag and password) opens a connection: returns whether the connection may stay open.
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
        self.handle_datagram(now, Protocol::Tcp, source, destination, data)
    }

    /// A TCP connection from `remote` has closed: forget the address. The participant's ICE
    /// goes on with the pairs it has left, or times out as when UDP goes quiet.
    pub fn tcp_closed(&mut self, remote: SocketAddr) {
        self.demux.tcp_closed(remote);
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
        while let Some(key) = self.timers.pop_due(now) {
            // The drain registers the participant's next deadline.
            self.with_participant(key, |p| {
                if let Err(e) = p.rtc.handle_input(Input::Timeout(now)) {
                    debug!(member = %p.member, "timeout refused: {e}");
                }
            });
            self.drain(key);
        }
        if now >= self.next_housekeeping {
            self.next_housekeeping = now + HOUSEKEEPING;
            self.housekeeping();
            self.evaluate_speakers(now);
            self.allocate_viewers();
        }
        self.act_on_rtc_events();
    }

    /// Moves the core's clock to `now` (never back).
    fn advance(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    /// Ends speaking after silence, and drops participants whose media never connected or
    /// stayed disconnected too long.
    fn housekeeping(&mut self) {
        let now = self.now;
        let mut doomed = Vec::new();
        for (key, p) in self.participants.iter_mut() {
            if let Some(speaking) = p.speaking.tick(now) {
                let event = MediaEvent::Speaking {
                    member: p.member,
                    speaking,
                };
                self.outbox.events.push_back((p.room, event));
            }
            let c = p.connection;
            if !c.connected
                && now.saturating_duration_since(c.created) > self.config.connect_timeout
            {
                doomed.push((key, "media did not connect in time"));
            } else if c
                .disconnected_since
                .is_some_and(|t| now.saturating_duration_since(t) > self.config.disconnect_grace)
            {
                doomed.push((key, "media connection lost"));
            }
        }
        for (key, reason) in doomed {
            self.fail(key, reason);
        }
    }

    /// Runs `f` on one participant, containing any panic to that participant.
    fn with_participant<R>(
        &mut self,
        key: ParticipantKey,
        f: impl FnOnce(&mut Participant) -> R,
    ) -> Option<R> {
        let p = self.participants.get_mut(key)?;
        match catch_unwind(AssertUnwindSafe(|| f(p))) {
            Ok(r) => Some(r),
            Err(_) => {
                self.fail(key, "internal error in the media session");
                None
            }
        }
    }

    /// Drains one participant's output until its next timeout, as str0m requires after each
    /// change: datagrams to the outbox, events to act on, the deadline to the timers.
    fn drain(&mut self, key: ParticipantKey) {
        let now = self.now;
        let Some(p) = self.participants.get_mut(key) else {
            return;
        };
        #[cfg(test)]
        let inject_panic = self.test.panic_on_drain == Some(p.member);
        let transmits = &mut self.outbox.transmits;
        let rtc_events = &mut self.rtc_events;
        let result = catch_unwind(AssertUnwindSafe(|| {
            #[cfg(test)]
            if inject_panic {
                panic!("injected panic");
            }
            // A deadline that is already due (str0m packetizes a write on its next timeout)
            // is served at once rather than through the timers: a few rounds at most.
            let mut due_rounds = 0;
            loop {
                match p.rtc.poll_output() {
                    Ok(Output::Transmit(t)) => transmits.push_back(t),
                    Ok(Output::Event(e)) => rtc_events.push_back((key, e)),
                    Ok(Output::Timeout(t)) if t <= now && due_rounds < MAX_DUE_ROUNDS => {
                        due_rounds += 1;
                        if let Err(e) = p.rtc.handle_input(Input::Timeout(now)) {
                            return Err(e.to_string());
                        }
                    }
                    Ok(Output::Timeout(t)) => return Ok(t),
                    Err(e) => return Err(e.to_string()),
                }
            }
        }));
        let next = match result {
            Ok(Ok(t)) if p.rtc.is_alive() => t,
            Ok(Ok(_)) => return self.fail(key, "media session closed"),
            Ok(Err(e)) => {
                debug!(member = %p.member, "media session error: {e}");
                return self.fail(key, "media session error");
            }
            Err(_) => return self.fail(key, "internal error in the media session"),
        };
        // Never due again at once: a deadline still due after the rounds above (str0m's pacer
        // waiting to send padding it has no stream for, say) would spin the shell, and the
        // timer loop of `handle_timeout` would take it again and again without end.
        let next = if next > now { next } else { now + DUE_AGAIN };
        self.timers.schedule(key, next);
    }

    /// Drops a participant whose session failed, and tells their room.
    fn fail(&mut self, key: ParticipantKey, reason: &str) {
        if let Some((room, member)) = self.detach(key) {
            warn!(%member, "media session dropped: {reason}");
            self.stats.failed += 1;
            let event = MediaEvent::Failed {
                member,
                reason: reason.to_owned(),
            };
            self.outbox.events.push_back((room, event));
        }
    }

    /// Gives back the capacity that busy rooms left in the core's collections.
    fn shrink(&mut self) {
        self.participants.shrink();
        self.up_tracks.shrink();
        self.rooms.shrink();
        self.demux.shrink();
        self.timers.shrink();
        self.fan_out.shrink();
        self.outbox.shrink();
        self.rtc_events.shrink_to_fit();
        self.keyframe_asks.shrink_to_fit();
    }

    /// Gives every viewer `estimate` (bits/s) in place of its estimator's, and shares their
    /// bandwidth again.
    #[cfg(test)]
    fn set_test_estimate(&mut self, estimate: Option<u64>) {
        // The first given replaces the estimator's from the start: where that stood is not a
        // level the given one falls from.
        if self.test.estimate.is_none() {
            for (_, p) in self.participants.iter_mut() {
                p.bandwidth.seen = None;
            }
        }
        self.test.estimate = estimate;
        self.allocate_viewers();
    }

    #[cfg(test)]
    fn inject_panic_on_drain(&mut self, member: MemberId) {
        self.test.panic_on_drain = Some(member);
    }
}
