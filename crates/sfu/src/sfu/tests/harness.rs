//! The test harness: clients, cores, and the media link of each room between them.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive, TcpType, Transmit};
use str0m::{Candidate, Input, Output, Rtc, RtcConfig};

pub use super::clients::RtpSeen;
use super::clients::{SimulcastSender, simulcast};
use crate::demux::Remote;
use crate::link::{LinkOutput, MediaLink};
use crate::{DtlsCert, MediaCmd, MediaEvent, MemberId, RoomId, Sfu, SfuConfig};

/// The first core's address.
pub const SERVER: &str = "127.0.0.1:5000";
/// The second core's address, when a test spreads a room over two.
const SERVER2: &str = "127.0.0.1:5001";
pub const STEP: Duration = Duration::from_millis(5);

/// One certificate for every core of every test: making one costs a key generation.
fn certificate() -> DtlsCert {
    static CERT: OnceLock<DtlsCert> = OnceLock::new();
    CERT.get_or_init(|| crate::dtls_certificate().unwrap())
        .clone()
}

pub fn m(id: u64) -> MemberId {
    MemberId(id)
}

pub fn r(id: u64) -> RoomId {
    RoomId(id)
}

pub struct TestClient {
    pub id: MemberId,
    /// How the client reaches the server: UDP, or TCP (each first send from an address opens
    /// a simulated connection).
    proto: Protocol,
    pub addr: SocketAddr,
    pub rtc: Rtc,
    mid: Mid,
    pending: Option<SdpPendingOffer>,
    /// Media packets received, by the first payload byte (the sender's id).
    pub(super) received: HashMap<u8, u64>,
    /// RTP sequence number and media time of each audio packet received, by sender.
    pub audio: HashMap<u8, Vec<(u64, u64)>>,
    /// A video track the client publishes, if any.
    video: Option<Mid>,
    pub keyframe_requests: u64,
    /// Video frames received, and the mids of video tracks the server added.
    pub video_frames: u64,
    pub video_mids: Vec<Mid>,
    last_sent: Instant,
    started: Instant,
    /// Whether the client sends audio, and at what level (dBov).
    pub talking: bool,
    pub level: i8,
    /// For a client in RTP mode (a silent listener that reads packets as they come): each RTP
    /// packet received.
    pub rtp: Vec<RtpSeen>,
    /// The VP8 track the client publishes in simulcast layers, in RTP mode.
    pub simulcast: Option<SimulcastSender>,
    /// Datagrams the client made while reading one, for its core.
    held: Vec<Transmit>,
}

impl TestClient {
    /// Writes one Opus packet carrying the client's id.
    pub fn write_audio(&mut self, now: Instant) {
        let w = self.rtc.writer(self.mid).unwrap();
        let pt = w
            .payload_params()
            .find(|p| p.spec().codec == Codec::Opus)
            .unwrap()
            .pt();
        let samples = now.duration_since(self.started).as_millis() as u64 * 48;
        let t = MediaTime::new(samples, Frequency::FORTY_EIGHT_KHZ);
        w.audio_level(self.level, true)
            .write(pt, now, t, vec![self.id.0 as u8; 60])
            .unwrap();
    }
}

/// Simulated TCP connections, by the client's address.
#[derive(Default)]
pub struct TcpSim {
    pub open: HashSet<SocketAddr>,
    /// Connections whose first frame the core refused.
    pub rejected: u64,
    /// Connections the core asked to close.
    pub closed: Vec<SocketAddr>,
}

pub struct Harness {
    pub now: Instant,
    pub cores: Vec<Sfu>,
    /// Members a room keeps on its first core before it spreads to the second.
    spread_at: usize,
    links: HashMap<RoomId, MediaLink>,
    pub clients: Vec<TestClient>,
    pub events: Vec<MediaEvent>,
    pub tcp: TcpSim,
    /// Datagrams from the server for nobody (wrong protocol or no open connection).
    pub undelivered: u64,
    /// The next client joins in RTP mode.
    rtp_mode_next: bool,
    /// The next client publishes a track in simulcast layers, of this codec.
    simulcast_next: Option<Codec>,
    /// The next client's session offers only these video codecs (all if empty).
    video_codecs_next: Vec<Codec>,
    /// The next datagram from a core to this client at least this long is lost.
    lose_next: Option<(u64, usize)>,
    /// Datagrams lost by `lose_next`.
    pub lost: u64,
    /// What this client sends its core is held back until then, and the datagrams held.
    hold: Option<(u64, Instant)>,
    held_back: Vec<(usize, Transmit)>,
}

impl Harness {
    /// One core, with TCP on the same port number as UDP, as the worker does it.
    pub fn new() -> Harness {
        let now = Instant::now();
        let mut config = SfuConfig::new(vec![SERVER.parse().unwrap()], certificate(), [1; 32]);
        config.tcp_candidates = vec![SERVER.parse().unwrap()];
        Harness {
            now,
            cores: vec![Sfu::new(config, now)],
            spread_at: 0,
            links: HashMap::new(),
            clients: Vec::new(),
            events: Vec::new(),
            tcp: TcpSim::default(),
            undelivered: 0,
            rtp_mode_next: false,
            simulcast_next: None,
            video_codecs_next: Vec::new(),
            lose_next: None,
            lost: 0,
            hold: None,
            held_back: Vec::new(),
        }
    }

    /// The next datagram to client `id` of at least `len` bytes is lost on the way.
    pub fn lose_next_to(&mut self, id: u64, len: usize) {
        self.lose_next = Some((id, len));
    }

    /// What client `id` sends its core (reports, NACKs) is held back for `d`, then delivered
    /// at once, in order.
    pub fn hold_from(&mut self, id: u64, d: Duration) {
        self.hold = Some((id, self.now + d));
    }

    /// One core whose participants have `slots` audio slots.
    pub fn with_slots(slots: usize) -> Harness {
        let mut h = Harness::new();
        let mut config = SfuConfig::new(vec![SERVER.parse().unwrap()], certificate(), [1; 32]);
        config.audio_slots = slots;
        h.cores = vec![Sfu::new(config, h.now)];
        h
    }

    /// Two cores whose participants have `slots` audio slots.
    pub fn two_cores_with_slots(spread_at: usize, slots: usize) -> Harness {
        let mut h = Harness::with_slots(slots);
        let mut config = SfuConfig::new(vec![SERVER2.parse().unwrap()], certificate(), [2; 32]);
        config.audio_slots = slots;
        h.cores.push(Sfu::new(config, h.now));
        h.spread_at = spread_at;
        h
    }

    /// A member's source id in its room (the CSRC of its packets on slots).
    pub fn source_of(&self, id: u64) -> u32 {
        self.links
            .values()
            .find_map(|l| l.source_of(m(id)))
            .unwrap_or(0)
    }

    /// Two cores, as two workers: a room keeps `spread_at` members on the first, then spreads.
    pub fn two_cores(spread_at: usize) -> Harness {
        let mut h = Harness::new();
        let config = SfuConfig::new(vec![SERVER2.parse().unwrap()], certificate(), [2; 32]);
        h.cores.push(Sfu::new(config, h.now));
        h.spread_at = spread_at;
        h
    }

    /// Room 1 spread over two cores, members 1 and 2 on the first, 3 and 4 on the second,
    /// after two seconds of talking.
    pub fn spread_of_four() -> Harness {
        let mut h = Harness::two_cores(2);
        for id in 1..=4 {
            h.join(1, id);
            h.run(Duration::from_millis(100));
        }
        assert_eq!(h.worker_of(3), Some(1));
        assert_eq!(h.worker_of(4), Some(1));
        h.run(Duration::from_secs(2));
        h
    }

    pub fn core(&mut self, worker: usize) -> &mut Sfu {
        &mut self.cores[worker]
    }

    pub fn worker_of(&self, id: u64) -> Option<usize> {
        self.links.values().find_map(|l| l.worker_of(m(id)))
    }

    pub fn join(&mut self, room: u64, id: u64) {
        self.join_with(room, id, 1, false);
    }

    pub fn join_with_tracks(&mut self, room: u64, id: u64, tracks: usize) {
        self.join_with(room, id, tracks, false);
    }

    /// A member who publishes a video track besides their microphone.
    pub fn join_with_video(&mut self, room: u64, id: u64) {
        self.join_with(room, id, 1, true);
    }

    fn join_with(&mut self, room: u64, id: u64, tracks: usize, with_video: bool) {
        let addr: SocketAddr = format!("127.0.0.1:{}", 6000 + id).parse().unwrap();
        self.join_as(room, id, tracks, with_video, (Protocol::Udp, addr));
    }

    /// A silent listener in RTP mode whose session offers only the video codecs `codecs`.
    pub fn join_rtp_listener_with(&mut self, room: u64, id: u64, codecs: &[Codec]) {
        self.video_codecs_next = codecs.to_vec();
        self.join_rtp_listener(room, id);
    }

    /// A silent listener in RTP mode, which records every RTP packet it receives.
    pub fn join_rtp_listener(&mut self, room: u64, id: u64) {
        let addr: SocketAddr = format!("127.0.0.1:{}", 6000 + id).parse().unwrap();
        self.rtp_mode_next = true;
        self.join_as(room, id, 1, false, (Protocol::Udp, addr));
        self.client(id).talking = false;
    }

    /// A member in RTP mode who publishes a VP8 track in three simulcast layers (and no
    /// audio).
    pub fn join_simulcast(&mut self, room: u64, id: u64) {
        self.join_simulcast_in(room, id, Codec::Vp8);
    }

    /// A member in RTP mode who publishes a track of `codec` (VP8, H264, VP9 or AV1) in three
    /// simulcast layers (and no audio).
    pub fn join_simulcast_in(&mut self, room: u64, id: u64, codec: Codec) {
        let addr: SocketAddr = format!("127.0.0.1:{}", 6000 + id).parse().unwrap();
        self.rtp_mode_next = true;
        self.simulcast_next = Some(codec);
        self.join_as(room, id, 1, false, (Protocol::Udp, addr));
        self.client(id).talking = false;
    }

    /// Joins a client that only has a TCP candidate (active, as a browser behind a
    /// UDP-blocking firewall), at `addr`.
    pub fn join_tcp(&mut self, room: u64, id: u64, addr: SocketAddr) {
        self.join_as(room, id, 1, false, (Protocol::Tcp, addr));
    }

    fn join_as(
        &mut self,
        room: u64,
        id: u64,
        tracks: usize,
        with_video: bool,
        (proto, addr): Remote,
    ) {
        let rtp_mode = std::mem::take(&mut self.rtp_mode_next);
        let mut config = RtcConfig::new().set_rtp_mode(rtp_mode);
        let codecs = std::mem::take(&mut self.video_codecs_next);
        if !codecs.is_empty() {
            config = config
                .clear_codecs()
                .enable_opus(true, false)
                .enable_vp8(codecs.contains(&Codec::Vp8))
                .enable_h264(codecs.contains(&Codec::H264))
                .enable_vp9(codecs.contains(&Codec::Vp9))
                .enable_av1(codecs.contains(&Codec::Av1));
        }
        let mut rtc = config.build(self.now);
        let candidate = match proto {
            Protocol::Tcp => Candidate::builder()
                .tcp()
                .host(addr)
                .tcptype(TcpType::Active)
                .build()
                .unwrap(),
            _ => Candidate::host(addr, "udp").unwrap(),
        };
        rtc.add_local_candidate(candidate);
        let mut api = rtc.sdp_api();
        let mid = api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        for _ in 1..tracks {
            api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
        }
        let video = with_video
            .then(|| api.add_media(MediaKind::Video, Direction::SendRecv, None, None, None));
        let simulcast = std::mem::take(&mut self.simulcast_next).map(|codec| {
            let mid = api.add_media(
                MediaKind::Video,
                Direction::SendOnly,
                None,
                None,
                Some(simulcast()),
            );
            let mut sender = SimulcastSender::new(mid);
            sender.codec = codec;
            sender
        });
        let (offer, pending) = api.apply().unwrap();
        self.clients.push(TestClient {
            id: m(id),
            proto,
            addr,
            rtc,
            mid,
            pending: Some(pending),
            received: HashMap::new(),
            audio: HashMap::new(),
            video,
            keyframe_requests: 0,
            video_frames: 0,
            video_mids: Vec::new(),
            last_sent: self.now,
            started: self.now,
            talking: true,
            level: -20,
            rtp: Vec::new(),
            simulcast,
            held: Vec::new(),
        });
        let (cores, spread_at) = (self.cores.len(), self.spread_at);
        self.links
            .entry(r(room))
            .or_insert_with(|| MediaLink::new(r(room), 0, cores, spread_at))
            .offer(m(id), offer.to_sdp_string());
        self.apply_link(r(room));
    }

    /// Member `id` of `room` leaves, as the room tells its link.
    pub fn leave(&mut self, room: u64, id: u64) {
        if let Some(link) = self.links.get_mut(&r(room)) {
            link.remove(m(id));
        }
        self.apply_link(r(room));
        self.clients.retain(|c| c.id != m(id));
    }

    /// Hands the cores what the room's link tells them, as the server's room does.
    fn apply_link(&mut self, room: RoomId) {
        let now = self.now;
        let Some(link) = self.links.get_mut(&room) else {
            return;
        };
        while let Some((worker, output)) = link.poll() {
            match output {
                // The shell's concern: where to route the room's events.
                LinkOutput::OpenRoom => {}
                LinkOutput::Cmd(cmd) => self.cores[worker].handle_cmd(cmd, now),
            }
        }
    }

    pub fn client(&mut self, id: u64) -> &mut TestClient {
        self.clients.iter_mut().find(|c| c.id == m(id)).unwrap()
    }

    /// Runs the simulation for `d`.
    pub fn run(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.now += STEP;
            let now = self.now;
            for c in &mut self.clients {
                let _ = c.rtc.handle_input(Input::Timeout(now));
                if let Some(s) = &mut c.simulcast
                    && c.rtc.is_connected()
                    && now.duration_since(c.last_sent) >= Duration::from_millis(20)
                {
                    c.last_sent = now;
                    s.write_frame(&mut c.rtc, c.id.0 as u8, now);
                }
                if c.talking
                    && c.rtc.is_connected()
                    && now.duration_since(c.last_sent) >= Duration::from_millis(20)
                {
                    c.last_sent = now;
                    c.write_audio(now);
                    let samples = now.duration_since(c.started).as_millis() as u64 * 48;
                    if let Some(mid) = c.video {
                        let w = c.rtc.writer(mid).unwrap();
                        let pt = w
                            .payload_params()
                            .find(|p| p.spec().codec == Codec::Vp8)
                            .unwrap()
                            .pt();
                        let t = MediaTime::new(samples / 48 * 90, Frequency::NINETY_KHZ);
                        w.write(pt, now, t, vec![0x10, 0, 0, c.id.0 as u8]).unwrap();
                    }
                }
            }
            for core in &mut self.cores {
                core.handle_timeout(now);
            }
            self.exchange();
        }
    }

    /// Hands a client's datagram to its core, opening a simulated TCP connection on the
    /// first TCP datagram from an address.
    fn hand_to_core(&mut self, worker: usize, t: &Transmit) {
        let now = self.now;
        let core = &mut self.cores[worker];
        if t.proto == Protocol::Tcp && self.tcp.open.insert(t.source) {
            if !core.handle_first_tcp_frame(now, t.source, t.destination, &t.contents) {
                self.tcp.open.remove(&t.source);
                self.tcp.rejected += 1;
            }
            return;
        }
        core.handle_datagram(now, t.proto, t.source, t.destination, &t.contents);
    }

    /// Hands a client's datagram to its core, or holds it back (`hold_from`).
    fn carry_from_client(&mut self, id: MemberId, worker: usize, t: Transmit) {
        match self.hold {
            Some((held, until)) if m(held) == id && self.now < until => {
                self.held_back.push((worker, t));
            }
            _ => self.hand_to_core(worker, &t),
        }
    }

    /// Moves datagrams and signalling until everything is quiet.
    pub fn exchange(&mut self) {
        let now = self.now;
        if self.hold.is_some_and(|(_, until)| now >= until) {
            self.hold = None;
            for (worker, t) in std::mem::take(&mut self.held_back) {
                self.hand_to_core(worker, &t);
            }
        }
        for _ in 0..100 {
            let mut moved = false;
            for i in 0..self.clients.len() {
                let id = self.clients[i].id;
                let worker = self.worker_of(id.0).unwrap_or(0);
                let held = std::mem::take(&mut self.clients[i].held);
                for t in held {
                    moved = true;
                    self.carry_from_client(id, worker, t);
                }
                loop {
                    match self.clients[i].rtc.poll_output().unwrap() {
                        Output::Timeout(_) => break,
                        Output::Transmit(t) => {
                            moved = true;
                            self.carry_from_client(id, worker, t);
                        }
                        Output::Event(e) => self.clients[i].on_event(e),
                    }
                }
            }
            for w in 0..self.cores.len() {
                while let Some(remote) = self.cores[w].poll_tcp_close() {
                    self.tcp.open.remove(&remote);
                    self.tcp.closed.push(remote);
                }
            }
            // Relays between the cores, as the workers hand them over.
            for from in 0..self.cores.len() {
                while let Some((to, relay)) = self.cores[from].poll_relay() {
                    moved = true;
                    assert_ne!(to, from, "a core relays to another");
                    self.cores[to].handle_relay(relay, now);
                }
            }
            let mut transmits = Vec::new();
            for core in &mut self.cores {
                transmits.extend(std::iter::from_fn(|| core.poll_transmit()));
            }
            for t in transmits {
                moved = true;
                self.hand_to_client(&t);
            }
            let mut events = Vec::new();
            for core in &mut self.cores {
                events.extend(std::iter::from_fn(|| core.poll_event()));
            }
            for (room, event) in events {
                moved = true;
                self.signal(room, event.clone());
                self.events.push(event);
            }
            if !moved {
                return;
            }
        }
    }

    fn hand_to_client(&mut self, t: &Transmit) {
        let open = t.proto != Protocol::Tcp || self.tcp.open.contains(&t.destination);
        let to = self
            .clients
            .iter_mut()
            .find(|c| c.proto == t.proto && c.addr == t.destination);
        if let (Some(c), Some((id, len))) = (&to, self.lose_next)
            && c.id == m(id)
            && t.contents.len() >= len
        {
            self.lose_next = None;
            self.lost += 1;
            return;
        }
        if let Some(c) = to.filter(|_| open) {
            let input = Input::Receive(
                self.now,
                Receive {
                    proto: t.proto,
                    source: t.source,
                    destination: t.destination,
                    contents: (&t.contents[..]).try_into().unwrap(),
                },
            );
            let _ = c.rtc.handle_input(input);
            // A client in RTP mode keeps one received packet for the next poll: read it now,
            // before the next datagram.
            loop {
                match c.rtc.poll_output().unwrap() {
                    Output::Timeout(_) => break,
                    Output::Transmit(t) => c.held.push(t),
                    Output::Event(e) => c.on_event(e),
                }
            }
        } else {
            self.undelivered += 1;
        }
    }

    /// What the room's signalling does with a core's event: the link learns of it, and the
    /// client gets its SDP.
    fn signal(&mut self, room: RoomId, event: MediaEvent) {
        let now = self.now;
        if let Some(link) = self.links.get_mut(&room) {
            link.on_event(&event);
        }
        self.apply_link(room);
        match event {
            MediaEvent::Answer { member, sdp } => {
                let c = self.client(member.0);
                let pending = c.pending.take().unwrap();
                let answer = SdpAnswer::from_sdp_string(&sdp).unwrap();
                c.rtc.sdp_api().accept_answer(pending, answer).unwrap();
            }
            MediaEvent::Offer { member, sdp } => {
                let c = self.client(member.0);
                let offer = SdpOffer::from_sdp_string(&sdp).unwrap();
                let answer = c.rtc.sdp_api().accept_offer(offer).unwrap();
                let sdp = answer.to_sdp_string();
                let link = self.links.get_mut(&room).unwrap();
                assert!(link.answer(member, sdp));
                self.apply_link(room);
            }
            MediaEvent::Failed { member, .. } => {
                // The room drops a member whose media failed.
                self.leave(room.0, member.0);
            }
            _ => {}
        }
        let _ = now;
    }

    /// One step later, one audio packet from each of `speakers`, fed in by hand: the
    /// datagrams they sent.
    pub fn one_packet_each(&mut self, speakers: &[u64]) -> Vec<Transmit> {
        self.now += STEP;
        let now = self.now;
        let mut sent = Vec::new();
        for &id in speakers {
            let c = self.client(id);
            c.write_audio(now);
            c.rtc.handle_input(Input::Timeout(now)).unwrap();
            while let Output::Transmit(t) = c.rtc.poll_output().unwrap() {
                sent.push(t);
            }
        }
        sent
    }

    /// Hands `sent` to the first core as datagrams read together: none is fanned out before
    /// all are in.
    pub fn read_together(&mut self, sent: &[Transmit]) {
        for t in sent {
            self.cores[0].handle_datagram(self.now, t.proto, t.source, t.destination, &t.contents);
        }
    }

    /// Delivers to the clients what core `worker` has to send now.
    pub fn deliver(&mut self, worker: usize) {
        let transmits: Vec<Transmit> =
            std::iter::from_fn(|| self.cores[worker].poll_transmit()).collect();
        for t in transmits {
            self.hand_to_client(&t);
        }
    }

    /// Delivers what the cores have to send, then checks that each (listener, speaker) pair
    /// has heard more than `before`.
    pub fn assert_heard_more(&mut self, pairs: &[(u64, u64)], before: &[u64]) {
        self.exchange();
        let after = self.heard_by(pairs);
        for ((pair, before), after) in pairs.iter().zip(before).zip(after) {
            assert!(after > *before, "(listener, speaker) {pair:?} heard it");
        }
    }

    /// How many packets each (listener, speaker) pair has heard.
    pub fn heard_by(&mut self, pairs: &[(u64, u64)]) -> Vec<u64> {
        pairs.iter().map(|&(l, s)| self.heard(l, s)).collect()
    }

    pub fn heard(&mut self, listener: u64, speaker: u64) -> u64 {
        self.client(listener)
            .received
            .get(&(speaker as u8))
            .copied()
            .unwrap_or(0)
    }

    /// How many down-tracks member `id` has on its core.
    pub fn down_tracks(&self, id: u64) -> usize {
        self.cores
            .iter()
            .find_map(|c| {
                let key = c.participants.key_of(m(id))?;
                c.participants.get(key).map(|p| p.downs.len())
            })
            .unwrap_or(0)
    }

    /// Sends a command to the core holding member `id` (or the first).
    pub fn cmd(&mut self, worker: usize, cmd: MediaCmd) {
        let now = self.now;
        self.cores[worker].handle_cmd(cmd, now);
    }
}
