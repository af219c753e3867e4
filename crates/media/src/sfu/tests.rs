//! The core driven without any network: str0m clients exchange datagrams with the `Sfu` in
//! memory, on a simulated clock.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive, TcpType};
use str0m::{Candidate, Event, Input, Output, Rtc};

use super::*;

const SERVER: &str = "127.0.0.1:5000";
/// The second core's address, when a test spreads a room over two.
const SERVER2: &str = "127.0.0.1:5001";
const STEP: Duration = Duration::from_millis(5);

struct TestClient {
    id: PeerId,
    /// The core (worker) holding the client: 0, or 1 for the second.
    worker: usize,
    /// How the client reaches the server: UDP, or TCP (each first send from an address opens
    /// a simulated connection).
    proto: Protocol,
    addr: SocketAddr,
    rtc: Rtc,
    mid: Mid,
    pending: Option<SdpPendingOffer>,
    /// Media packets received, by the first payload byte (the sender's id).
    received: HashMap<u8, u64>,
    /// RTP sequence number and media time of each audio packet received, by sender.
    audio: HashMap<u8, Vec<(u64, u64)>>,
    /// A video track the client publishes, if any.
    video: Option<Mid>,
    keyframe_requests: u64,
    /// Video frames received, and the mids of video tracks the server added.
    video_frames: u64,
    video_mids: Vec<Mid>,
    last_sent: Instant,
    started: Instant,
}

impl TestClient {
    /// Writes one Opus packet carrying the client's id.
    fn write_audio(&mut self, now: Instant) {
        let w = self.rtc.writer(self.mid).unwrap();
        let pt = w
            .payload_params()
            .find(|p| p.spec().codec == Codec::Opus)
            .unwrap()
            .pt();
        let samples = now.duration_since(self.started).as_millis() as u64 * 48;
        let t = MediaTime::new(samples, Frequency::FORTY_EIGHT_KHZ);
        w.write(pt, now, t, vec![self.id as u8; 60]).unwrap();
    }
}

struct Harness {
    now: Instant,
    sfu: Sfu,
    /// A second core, as a second worker, for rooms spread over two.
    second: Option<Sfu>,
    /// With a second core: the tracks published so far (room, publisher, track, kind), so that
    /// a core taking its first member of a room learns what the other's members publish, as
    /// the signalling layer tells it.
    published: Vec<(RoomId, PeerId, String, TrackKind)>,
    clients: Vec<TestClient>,
    events: Vec<MediaEvent>,
    /// Simulated TCP connections, by the client's address.
    tcp_open: HashSet<SocketAddr>,
    /// Connections whose first frame the core refused.
    tcp_rejected: u64,
    /// Connections the core asked to close.
    tcp_closed: Vec<SocketAddr>,
    /// Datagrams from the server for nobody (wrong protocol or no open connection).
    undelivered: u64,
}

impl Harness {
    fn new() -> Harness {
        let now = Instant::now();
        let mut config = SfuConfig::new(vec![SERVER.parse().unwrap()]);
        // TCP on the same port number, as the worker does it.
        config.tcp_candidates = vec![SERVER.parse().unwrap()];
        Harness {
            now,
            sfu: Sfu::new(config, now),
            second: None,
            published: Vec::new(),
            clients: Vec::new(),
            events: Vec::new(),
            tcp_open: HashSet::new(),
            tcp_rejected: 0,
            tcp_closed: Vec::new(),
            undelivered: 0,
        }
    }

    /// A harness with two cores, as two workers; `room` spreads over both.
    fn two_cores(room: RoomId) -> Harness {
        let mut h = Harness::new();
        let mut config = SfuConfig::new(vec![SERVER2.parse().unwrap()]);
        config.tcp_candidates = Vec::new();
        h.second = Some(Sfu::new(config, h.now));
        let now = h.now;
        h.sfu.handle_cmd(
            MediaCmd::RelayTo {
                room,
                workers: vec![1],
            },
            now,
        );
        h.core(1).handle_cmd(
            MediaCmd::RelayTo {
                room,
                workers: vec![0],
            },
            now,
        );
        h
    }

    fn core(&mut self, worker: usize) -> &mut Sfu {
        core(&mut self.sfu, &mut self.second, worker)
    }

    /// Room 1 spread over two cores, members 1 and 2 on the first, 3 and 4 on the second,
    /// after two seconds of talking.
    fn spread_of_four() -> Harness {
        let mut h = Harness::two_cores(1);
        h.join(1, 1);
        h.join(1, 2);
        h.run(Duration::from_millis(300));
        h.join_second(1, 3);
        h.join_second(1, 4);
        h.run(Duration::from_secs(2));
        h
    }

    /// Joins member `id` to `room` on the second core, as the signalling layer would: the
    /// core is first told what the first core's members publish.
    fn join_second(&mut self, room: RoomId, id: PeerId) {
        let now = self.now;
        let elsewhere: Vec<_> = self
            .published
            .iter()
            .filter(|t| t.0 == room && self.worker_of(t.1) == Some(0))
            .cloned()
            .collect();
        for (room, peer, track, kind) in elsewhere {
            let cmd = MediaCmd::RemoteTrack {
                room,
                peer,
                track,
                kind,
            };
            self.core(1).handle_cmd(cmd, now);
        }
        let addr: SocketAddr = format!("127.0.0.1:{}", 6000 + id).parse().unwrap();
        self.join_as(room, id, 1, false, (Protocol::Udp, addr), 1);
    }

    /// Member `id`, the second core's last member of `room`, leaves: the core is told to
    /// forget the room, as the signalling layer tells a worker left without members of it.
    fn leave_second_last(&mut self, room: RoomId, id: PeerId) {
        let now = self.now;
        self.core(1)
            .handle_cmd(MediaCmd::RemovePeer { peer: id }, now);
        self.core(1).close_room(room);
        self.clients.retain(|c| c.id != id);
    }

    fn worker_of(&self, id: PeerId) -> Option<usize> {
        self.clients.iter().find(|c| c.id == id).map(|c| c.worker)
    }

    fn join(&mut self, room: RoomId, id: PeerId) {
        self.join_with_tracks(room, id, 1);
    }

    fn join_with_tracks(&mut self, room: RoomId, id: PeerId, tracks: usize) {
        self.join_with(room, id, tracks, false);
    }

    /// A member who publishes a video track besides their microphone.
    fn join_with_video(&mut self, room: RoomId, id: PeerId) {
        self.join_with(room, id, 1, true);
    }

    fn join_with(&mut self, room: RoomId, id: PeerId, tracks: usize, with_video: bool) {
        let addr: SocketAddr = format!("127.0.0.1:{}", 6000 + id).parse().unwrap();
        self.join_as(room, id, tracks, with_video, (Protocol::Udp, addr), 0);
    }

    /// Joins a client that only has a TCP candidate (active, as a browser behind a UDP-blocking
    /// firewall), at `addr`.
    fn join_tcp(&mut self, room: RoomId, id: PeerId, addr: SocketAddr) {
        self.join_as(room, id, 1, false, (Protocol::Tcp, addr), 0);
    }

    fn join_as(
        &mut self,
        room: RoomId,
        id: PeerId,
        tracks: usize,
        with_video: bool,
        (proto, addr): Remote,
        worker: usize,
    ) {
        let mut rtc = Rtc::new(self.now);
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
        let (offer, pending) = api.apply().unwrap();
        self.clients.push(TestClient {
            id,
            worker,
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
        });
        let offer = offer.to_sdp_string();
        let now = self.now;
        self.core(worker).handle_cmd(
            MediaCmd::AddPeer {
                room,
                peer: id,
                offer,
            },
            now,
        );
    }

    fn client(&mut self, id: PeerId) -> &mut TestClient {
        self.clients.iter_mut().find(|c| c.id == id).unwrap()
    }

    /// Runs the simulation for `d`.
    fn run(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.now += STEP;
            let now = self.now;
            for c in &mut self.clients {
                let _ = c.rtc.handle_input(Input::Timeout(now));
                if c.rtc.is_connected()
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
                        w.write(pt, now, t, vec![0x10, 0, 0, c.id as u8]).unwrap();
                    }
                }
            }
            self.sfu.handle_timeout(now);
            if let Some(second) = &mut self.second {
                second.handle_timeout(now);
            }
            self.exchange();
        }
    }

    /// Moves datagrams and signalling until everything is quiet.
    fn exchange(&mut self) {
        let now = self.now;
        for _ in 0..100 {
            let mut moved = false;
            for i in 0..self.clients.len() {
                loop {
                    let c = &mut self.clients[i];
                    let sfu = core(&mut self.sfu, &mut self.second, c.worker);
                    match c.rtc.poll_output().unwrap() {
                        Output::Timeout(_) => break,
                        Output::Transmit(t) if t.proto == Protocol::Tcp => {
                            moved = true;
                            if self.tcp_open.insert(t.source) {
                                let admitted = sfu.handle_first_tcp_frame(
                                    now,
                                    t.source,
                                    t.destination,
                                    &t.contents,
                                );
                                if !admitted {
                                    self.tcp_open.remove(&t.source);
                                    self.tcp_rejected += 1;
                                }
                            } else {
                                sfu.handle_datagram(
                                    now,
                                    Protocol::Tcp,
                                    t.source,
                                    t.destination,
                                    &t.contents,
                                    &mut |_| {},
                                );
                            }
                        }
                        Output::Transmit(t) => {
                            moved = true;
                            sfu.handle_datagram(
                                now,
                                t.proto,
                                t.source,
                                t.destination,
                                &t.contents,
                                &mut |_| {},
                            );
                        }
                        Output::Event(Event::MediaData(d)) if d.params.spec().codec.is_video() => {
                            c.video_frames += 1;
                        }
                        Output::Event(Event::MediaAdded(m)) if m.kind == MediaKind::Video => {
                            c.video_mids.push(m.mid);
                        }
                        Output::Event(Event::MediaData(d)) => {
                            *c.received.entry(d.data[0]).or_default() += 1;
                            if d.params.spec().codec == Codec::Opus {
                                let seq = **d.seq_range.start();
                                let entry = c.audio.entry(d.data[0]).or_default();
                                entry.push((seq, d.time.numer()));
                            }
                        }
                        Output::Event(Event::KeyframeRequest(_)) => c.keyframe_requests += 1,
                        Output::Event(_) => {}
                    }
                }
            }
            while let Some(remote) = self.sfu.poll_tcp_close() {
                self.tcp_open.remove(&remote);
                self.tcp_closed.push(remote);
            }
            // Relays between the cores, as the workers hand them over.
            for from in 0..self.cores() {
                while let Some((to, relay)) = self.core(from).poll_relay() {
                    moved = true;
                    assert_ne!(to, from, "a core relays to another");
                    self.core(to).handle_relay(relay, now, &mut |_| {});
                }
            }
            let mut transmits = Vec::new();
            for w in 0..self.cores() {
                transmits.extend(std::iter::from_fn(|| self.core(w).poll_transmit()));
            }
            for t in transmits {
                moved = true;
                let open = t.proto != Protocol::Tcp || self.tcp_open.contains(&t.destination);
                let to = self
                    .clients
                    .iter_mut()
                    .find(|c| c.proto == t.proto && c.addr == t.destination);
                if let Some(c) = to.filter(|_| open) {
                    let input = Input::Receive(
                        now,
                        Receive {
                            proto: t.proto,
                            source: t.source,
                            destination: t.destination,
                            contents: (&t.contents[..]).try_into().unwrap(),
                        },
                    );
                    let _ = c.rtc.handle_input(input);
                } else {
                    self.undelivered += 1;
                }
            }
            let mut events = Vec::new();
            for w in 0..self.cores() {
                events.extend(std::iter::from_fn(|| self.core(w).poll_event()));
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

    fn cores(&self) -> usize {
        1 + usize::from(self.second.is_some())
    }

    fn signal(&mut self, room: RoomId, event: MediaEvent) {
        let now = self.now;
        match event {
            MediaEvent::TrackPublished { peer, track, kind } if self.second.is_some() => {
                self.published.push((room, peer, track.clone(), kind));
                let other = 1 - self.worker_of(peer).unwrap_or(0);
                let cmd = MediaCmd::RemoteTrack {
                    room,
                    peer,
                    track,
                    kind,
                };
                self.core(other).handle_cmd(cmd, now);
            }
            MediaEvent::Answer { peer, sdp } => {
                let c = self.client(peer);
                let pending = c.pending.take().unwrap();
                let answer = SdpAnswer::from_sdp_string(&sdp).unwrap();
                c.rtc.sdp_api().accept_answer(pending, answer).unwrap();
            }
            MediaEvent::Offer { peer, sdp } => {
                let c = self.client(peer);
                let offer = SdpOffer::from_sdp_string(&sdp).unwrap();
                let answer = c.rtc.sdp_api().accept_offer(offer).unwrap();
                let sdp = answer.to_sdp_string();
                let worker = c.worker;
                self.core(worker)
                    .handle_cmd(MediaCmd::Answer { peer, sdp }, now);
            }
            MediaEvent::PeerFailed { peer, .. } => {
                self.clients.retain(|c| c.id != peer);
            }
            _ => {}
        }
    }

    /// One step later, one audio packet from each of `speakers`, fed in by hand: the
    /// datagrams they sent.
    fn one_packet_each(&mut self, speakers: &[PeerId]) -> Vec<Transmit> {
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

    /// Hands `sent` to the first core as datagrams read together.
    fn read_together(&mut self, sent: &[Transmit]) {
        let batch = sent
            .iter()
            .map(|t| (t.proto, t.source, t.destination, &t.contents[..]));
        self.sfu.handle_datagrams(self.now, batch, &mut |_| {});
    }

    /// Delivers what the cores have to send, then checks that each (listener, speaker) pair
    /// has heard more than `before`.
    fn assert_heard_more(&mut self, pairs: &[(PeerId, PeerId)], before: &[u64]) {
        self.exchange();
        let after = self.heard_by(pairs);
        for ((pair, before), after) in pairs.iter().zip(before).zip(after) {
            assert!(after > *before, "(listener, speaker) {pair:?} heard it");
        }
    }

    /// How many packets each (listener, speaker) pair has heard.
    fn heard_by(&mut self, pairs: &[(PeerId, PeerId)]) -> Vec<u64> {
        pairs.iter().map(|&(l, s)| self.heard(l, s)).collect()
    }

    fn heard(&mut self, listener: PeerId, speaker: PeerId) -> u64 {
        self.client(listener)
            .received
            .get(&(speaker as u8))
            .copied()
            .unwrap_or(0)
    }
}

/// The core of worker `worker` (0 or 1), borrowed apart from the harness's other fields.
fn core<'a>(first: &'a mut Sfu, second: &'a mut Option<Sfu>, worker: usize) -> &'a mut Sfu {
    match (worker, second) {
        (1, Some(second)) => second,
        _ => first,
    }
}

#[test]
fn forwards_audio_between_members_of_a_room_only() {
    let mut h = Harness::new();
    h.join(1, 1);
    h.join(1, 2);
    h.join(2, 3);
    h.run(Duration::from_secs(2));
    assert!(h.heard(1, 2) > 50, "{}", h.heard(1, 2));
    assert!(h.heard(2, 1) > 50);
    assert_eq!(h.heard(3, 1) + h.heard(3, 2), 0, "other rooms hear nothing");
    assert_eq!(h.heard(1, 3) + h.heard(2, 3), 0);
    assert_eq!(h.sfu.stats().rooms, 2);
}

#[test]
fn a_panic_in_one_members_session_drops_that_member_alone() {
    let mut h = Harness::new();
    for id in 1..=3 {
        h.join(7, id);
    }
    h.run(Duration::from_secs(2));
    assert!(h.heard(1, 3) > 50 && h.heard(3, 1) > 50);

    h.sfu.inject_panic_on_poll(2);
    h.run(Duration::from_millis(200));
    let failed: Vec<_> = h
        .events
        .iter()
        .filter(|e| matches!(e, MediaEvent::PeerFailed { .. }))
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].peer(), 2);
    let stats = h.sfu.stats();
    assert_eq!(
        (stats.rooms, stats.peers, stats.ufrags, stats.failed),
        (1, 2, 2, 1)
    );

    // The others go on talking.
    let (a, b) = (h.heard(1, 3), h.heard(3, 1));
    h.run(Duration::from_secs(1));
    assert!(h.heard(1, 3) >= a + 40, "{} → {}", a, h.heard(1, 3));
    assert!(h.heard(3, 1) >= b + 40);
}

#[test]
fn hostile_offers_are_refused_without_a_session() {
    let mut h = Harness::new();
    let long_line = format!("v=0\r\nm=audio {} RTP/AVP 0\r\n", "9".repeat(10_000));
    let offers = [
        "",
        "v=0",
        "m=",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n",
        "v=0\r\no=- 0 0 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
        long_line.as_str(),
        "\u{0}\u{1}\u{2}m=video",
    ];
    for (i, offer) in offers.iter().enumerate() {
        let peer = 100 + i as u64;
        h.sfu.handle_cmd(
            MediaCmd::AddPeer {
                room: 1,
                peer,
                offer: offer.to_string(),
            },
            h.now,
        );
        match h.sfu.poll_event() {
            Some((1, MediaEvent::Refused { peer: p, .. })) if p == peer => {}
            other => panic!("offer {i}: {other:?}"),
        }
    }
    assert_eq!(h.sfu.stats(), SfuStats::default());
}

#[test]
fn a_member_publishing_many_tracks_makes_others_receive_only_a_few() {
    let mut h = Harness::new();
    h.join(1, 1);
    h.join_with_tracks(1, 2, 40);
    h.run(Duration::from_millis(500));
    let published = h
        .events
        .iter()
        .filter(|e| matches!(e, MediaEvent::TrackPublished { peer: 2, .. }))
        .count();
    assert_eq!(published, MAX_PUBLISHED_TRACKS);
    let subs = h.sfu.peers.get(&1).map(|p| p.subs.len());
    assert_eq!(subs, Some(MAX_PUBLISHED_TRACKS));
    assert!(h.heard(1, 2) > 0, "the first track still flows");
}

/// A small deterministic generator, so a failing case can be replayed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() as usize) % n.max(1)
    }
}

/// Mangles text the way a hostile or broken client might: flipped bytes, cut lines,
/// duplicated lines, huge numbers.
fn mangle(text: &str, rng: &mut Lcg) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for _ in 0..1 + rng.below(4) {
        if lines.is_empty() {
            break;
        }
        let i = rng.below(lines.len());
        match rng.below(5) {
            0 => {
                lines.remove(i);
            }
            1 => {
                let l = lines[i].clone();
                lines.insert(i, l);
            }
            2 => {
                let l = &mut lines[i];
                let cut = rng.below(l.len() + 1);
                l.truncate(l.floor_char_boundary(cut));
            }
            3 => lines[i].push_str(" 99999999999999999999 -1 \u{0}"),
            _ => {
                let mut bytes = lines[i].clone().into_bytes();
                if !bytes.is_empty() {
                    let j = rng.below(bytes.len());
                    bytes[j] = rng.next() as u8;
                }
                lines[i] = String::from_utf8_lossy(&bytes).into_owned();
            }
        }
    }
    lines.join("\r\n") + "\r\n"
}

#[test]
fn mangled_offers_and_garbage_datagrams_never_escape_and_the_room_goes_on() {
    let mut h = Harness::new();
    h.join(1, 1);
    h.join(1, 2);
    h.run(Duration::from_secs(1));
    assert!(h.heard(1, 2) > 20);

    // A good offer to mangle.
    let offer = {
        let mut rtc = Rtc::new(h.now);
        let addr: SocketAddr = "127.0.0.1:7000".parse().unwrap();
        rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
        let mut api = rtc.sdp_api();
        api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        api.apply().unwrap().0.to_sdp_string()
    };
    let mut rng = Lcg(0x5eed);
    for i in 0..300u64 {
        let peer = 1000 + i;
        let sdp = mangle(&offer, &mut rng);
        h.sfu.handle_cmd(
            MediaCmd::AddPeer {
                room: 1,
                peer,
                offer: sdp.clone(),
            },
            h.now,
        );
        // Either refused, or accepted and then told to go.
        h.sfu.handle_cmd(
            MediaCmd::Offer {
                peer,
                sdp: sdp.clone(),
            },
            h.now,
        );
        h.sfu.handle_cmd(MediaCmd::Answer { peer, sdp }, h.now);
        h.sfu.handle_cmd(
            MediaCmd::Candidate {
                peer,
                candidate: mangle(
                    "candidate:1 1 udp 2130706431 127.0.0.1 7000 typ host",
                    &mut rng,
                ),
            },
            h.now,
        );
        h.sfu.handle_cmd(MediaCmd::RemovePeer { peer }, h.now);
        while h.sfu.poll_event().is_some() {}
        while h.sfu.poll_transmit().is_some() {}
    }

    // Garbage from a connected member's own address: shapes of STUN, DTLS, RTP and RTCP.
    let from = h.clients[0].addr;
    let server: SocketAddr = SERVER.parse().unwrap();
    for _ in 0..3000 {
        let len = rng.below(300);
        let mut d: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if let Some(first) = d.first_mut() {
            *first = [0u8, 1, 20, 22, 23, 128, 144, 191][rng.below(8)];
        }
        h.sfu
            .handle_datagram(h.now, Protocol::Udp, from, server, &d, &mut |_| {});
    }
    let stats = h.sfu.stats();
    assert_eq!((stats.rooms, stats.peers), (1, 2), "{stats:?}");
    // No member was dropped for what it was sent (the mangled offers were refused or removed).
    assert_eq!(stats.failed, 0, "{stats:?}");

    // The two original members still hear each other.
    let before = (h.heard(1, 2), h.heard(2, 1));
    h.run(Duration::from_secs(1));
    assert!(h.heard(1, 2) > before.0 + 20 && h.heard(2, 1) > before.1 + 20);
}

/// The transport of each `a=candidate` line of an SDP, with its priority.
fn candidate_priorities(sdp: &str) -> Vec<(String, u32, String)> {
    sdp.lines()
        .filter_map(|l| l.strip_prefix("a=candidate:"))
        .map(|c| {
            let f: Vec<&str> = c.split_whitespace().collect();
            (
                f[2].to_ascii_lowercase(),
                f[3].parse().unwrap(),
                c.to_owned(),
            )
        })
        .collect()
}

#[test]
fn passive_tcp_candidates_are_offered_below_udp() {
    let mut h = Harness::new();
    h.join(1, 1);
    h.exchange();
    let answer = h
        .events
        .iter()
        .find_map(|e| match e {
            MediaEvent::Answer { sdp, .. } => Some(sdp.clone()),
            _ => None,
        })
        .unwrap();
    let candidates = candidate_priorities(&answer);
    let udp: Vec<_> = candidates.iter().filter(|c| c.0 == "udp").collect();
    let tcp: Vec<_> = candidates.iter().filter(|c| c.0 == "tcp").collect();
    assert_eq!((udp.len(), tcp.len()), (1, 1), "{answer}");
    assert!(
        tcp[0].2.contains("127.0.0.1 5000 typ host tcptype passive"),
        "{answer}"
    );
    // UDP is preferred whenever it works.
    assert!(udp[0].1 > tcp[0].1, "{candidates:?}");
}

#[test]
fn a_member_over_tcp_hears_and_is_heard_and_its_connection_closes_when_it_leaves() {
    let mut h = Harness::new();
    let tcp_addr: SocketAddr = "127.0.0.1:7002".parse().unwrap();
    h.join(1, 1);
    h.join_tcp(1, 2, tcp_addr);
    h.run(Duration::from_secs(2));
    assert!(h.heard(1, 2) > 50, "UDP hears TCP: {}", h.heard(1, 2));
    assert!(h.heard(2, 1) > 50, "TCP hears UDP: {}", h.heard(2, 1));
    assert_eq!(h.tcp_rejected, 0);
    assert!(h.tcp_open.contains(&tcp_addr));
    let stats = h.sfu.stats();
    assert_eq!((stats.addrs, stats.tcp_addrs), (2, 1), "{stats:?}");

    h.sfu.handle_cmd(MediaCmd::RemovePeer { peer: 2 }, h.now);
    h.exchange();
    assert_eq!(
        h.tcp_closed,
        vec![tcp_addr],
        "the core closes its connection"
    );
    let stats = h.sfu.stats();
    assert_eq!(
        (stats.peers, stats.addrs, stats.tcp_addrs),
        (1, 1, 0),
        "{stats:?}"
    );
}

#[test]
fn a_udp_and_a_tcp_remote_on_one_address_are_told_apart() {
    let mut h = Harness::new();
    // Member 1 over UDP from 127.0.0.1:6001, member 2 over TCP from the very same address.
    let shared: SocketAddr = "127.0.0.1:6001".parse().unwrap();
    h.join(1, 1);
    h.join_tcp(1, 2, shared);
    h.join(1, 3);
    h.run(Duration::from_secs(2));
    for (to, from) in [(1, 2), (2, 1), (1, 3), (3, 1), (2, 3), (3, 2)] {
        assert!(
            h.heard(to, from) > 50,
            "{to} hears {from}: {}",
            h.heard(to, from)
        );
    }
    assert_eq!(h.undelivered, 0, "every datagram went to its own member");
    let stats = h.sfu.stats();
    assert_eq!((stats.addrs, stats.tcp_addrs), (3, 1), "{stats:?}");

    // The TCP connection closes: the core forgets that remote alone.
    h.sfu.tcp_closed(shared);
    h.tcp_open.remove(&shared);
    let stats = h.sfu.stats();
    assert_eq!((stats.addrs, stats.tcp_addrs), (2, 0), "{stats:?}");
    let before = (h.heard(1, 3), h.heard(3, 1));
    h.run(Duration::from_secs(1));
    assert!(h.heard(1, 3) > before.0 + 40, "the UDP member goes on");
    assert!(h.heard(3, 1) > before.1 + 40);
    assert_eq!(h.sfu.stats().failed, 0);
}

#[test]
fn a_tcp_connection_opens_only_with_a_stun_binding_request_a_member_accepts() {
    use str0m::ice::{StunMessage, TransId};

    let mut h = Harness::new();
    h.join(1, 1);
    h.run(Duration::from_millis(500));
    let server: SocketAddr = SERVER.parse().unwrap();
    let from: SocketAddr = "127.0.0.1:9999".parse().unwrap();
    let ufrag = h.sfu.peers.get(&1).unwrap().ufrag.clone();
    let stun = |username: &str| {
        let msg = StunMessage::binding_request(username, TransId::new(), true, 1, 1, false);
        let mut buf = vec![0u8; 1200];
        // Not the member's password: the integrity check fails.
        let n = msg
            .to_bytes(Some(b"wrong"), &mut buf, |_, _| [0u8; 20])
            .unwrap();
        buf.truncate(n);
        buf
    };
    let unknown_user = stun("nobody-here:remote");
    let wrong_password = stun(&format!("{ufrag}:remote"));
    let frames: [&[u8]; 7] = [
        b"",
        b"GET / HTTP/1.1\r\n\r\n",
        &[22, 254, 253, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0],
        &[0x80; 40],
        &[
            0x01, 0x01, 0, 0, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
        ],
        &unknown_user,
        &wrong_password,
    ];
    for (i, f) in frames.iter().enumerate() {
        assert!(
            !h.sfu.handle_first_tcp_frame(h.now, from, server, f),
            "frame {i} refused"
        );
    }
    let stats = h.sfu.stats();
    assert_eq!(
        (stats.addrs, stats.tcp_addrs, stats.peers),
        (1, 0, 1),
        "{stats:?}"
    );
    // All but the last: that one reached the member, whose session refused it.
    assert_eq!(
        stats.garbage + stats.unknown,
        frames.len() as u64 - 1,
        "{stats:?}"
    );
    // Nothing was sent back over TCP.
    let transmits: Vec<_> = std::iter::from_fn(|| h.sfu.poll_transmit()).collect();
    assert!(transmits.iter().all(|t| t.proto == Protocol::Udp));
}

#[test]
fn forwarded_audio_keeps_its_numbering_across_renegotiations() {
    let mut h = Harness::new();
    h.join(1, 1);
    h.join(1, 2);
    h.run(Duration::from_secs(1));
    // A third member comes and goes: two renegotiations for the first two.
    h.join(1, 3);
    h.run(Duration::from_secs(1));
    h.sfu.handle_cmd(MediaCmd::RemovePeer { peer: 3 }, h.now);
    h.clients.retain(|c| c.id != 3);
    h.run(Duration::from_secs(1));

    for (to, from) in [(2, 1), (1, 2)] {
        let got = h.client(to).audio.get(&(from as u8)).cloned().unwrap();
        assert!(got.len() > 120, "{to} from {from}: {}", got.len());
        // Every sequence number once, in order, and the media time 20 ms further each time.
        for pair in got.windows(2) {
            let ((s0, t0), (s1, t1)) = (pair[0], pair[1]);
            assert_eq!((s1 - s0, t1 - t0), (1, 960), "{to} from {from}: {pair:?}");
        }
        assert!(got[0].0 < 1 << 16, "a new stream starts below 2^16");
    }
}

#[test]
fn video_is_forwarded_and_keyframe_requests_reach_the_publisher() {
    let mut h = Harness::new();
    h.join_with_video(1, 1);
    h.join(1, 2);
    h.run(Duration::from_secs(1));
    member_2_sees_member_1_and_asks_for_keyframes(&mut h);
}

/// Member 2 receives member 1's audio and video; the new subscription asked member 1 for a
/// keyframe, and so does a PLI from member 2.
fn member_2_sees_member_1_and_asks_for_keyframes(h: &mut Harness) {
    assert!(h.heard(2, 1) > 40, "audio flows: {}", h.heard(2, 1));
    assert!(
        h.client(2).video_frames > 20,
        "{}",
        h.client(2).video_frames
    );
    // The new subscription asked the publisher for a keyframe.
    let asked = h.client(1).keyframe_requests;
    assert!(asked >= 1, "{asked}");

    // The subscriber asks for one (after the throttle): it reaches the publisher.
    let c = h.client(2);
    let mid = c.video_mids[0];
    c.rtc
        .writer(mid)
        .unwrap()
        .request_keyframe(None, KeyframeRequestKind::Pli)
        .unwrap();
    h.run(Duration::from_millis(200));
    assert_eq!(h.client(1).keyframe_requests, asked + 1);
}

#[test]
fn a_large_fan_out_is_handed_out_in_chunks_as_it_goes() {
    let mut h = Harness::new();
    let members = 2 * FANOUT_CHUNK as u64 + 3;
    for id in 1..=members {
        h.join(1, id);
    }
    h.run(Duration::from_millis(500));
    assert!(h.heard(members, 1) > 0, "the room is connected");

    let sent = h.one_packet_each(&[1]);
    let now = h.now;
    assert!(!sent.is_empty());
    assert!(
        h.sfu.poll_transmit().is_none(),
        "nothing left over from before"
    );

    let mut chunks = Vec::new();
    for t in sent {
        h.sfu.handle_datagram(
            now,
            t.proto,
            t.source,
            t.destination,
            &t.contents,
            &mut |out| chunks.push(out.transmits.drain(..).count()),
        );
    }
    let rest = std::iter::from_fn(|| h.sfu.poll_transmit()).count();
    // 34 copies: handed out at 16 and at 32, the last two left for the usual poll.
    assert!(chunks.len() >= 2, "{chunks:?}");
    assert!(chunks.iter().all(|&n| n >= FANOUT_CHUNK), "{chunks:?}");
    assert!(rest < FANOUT_CHUNK, "{rest}");
    assert!(chunks.iter().sum::<usize>() + rest >= members as usize - 1);
}

#[test]
fn packets_read_together_are_written_to_each_member_before_one_drain() {
    let mut h = Harness::new();
    for id in 1..=5 {
        h.join(1, id);
    }
    h.run(Duration::from_millis(500));
    assert!(
        h.heard(5, 1) > 0 && h.heard(5, 2) > 0,
        "the room is connected"
    );
    let pairs = [
        (1, 2),
        (2, 1),
        (3, 1),
        (3, 2),
        (4, 1),
        (4, 2),
        (5, 1),
        (5, 2),
    ];
    let before = h.heard_by(&pairs);

    // One packet from each of members 1 and 2, read together.
    let sent = h.one_packet_each(&[1, 2]);
    let (forwarded, drains) = (h.sfu.stats().forwarded, h.sfu.drains);
    h.read_together(&sent);
    // Members 3 to 5 are sent both packets, 1 and 2 the other's: eight copies, and each
    // member drained once (eight times if each packet were fanned out alone).
    assert_eq!(h.sfu.stats().forwarded - forwarded, 8);
    assert_eq!(h.sfu.drains - drains, 5);
    h.assert_heard_more(&pairs, &before);

    // Once the room has emptied, the batch's buffers are given back too.
    assert!(h.sfu.batch.capacity() > 0);
    for peer in 1..=5 {
        h.sfu.handle_cmd(MediaCmd::RemovePeer { peer }, h.now);
    }
    assert_eq!(h.sfu.stats().rooms, 0);
    assert_eq!((h.sfu.batch.capacity(), h.sfu.made.capacity()), (0, 0));
}

#[test]
fn packets_relayed_together_are_written_to_each_member_before_one_drain() {
    let mut h = Harness::spread_of_four();
    assert!(
        h.heard(4, 1) > 0 && h.heard(4, 2) > 0,
        "the room is connected"
    );
    let pairs = [(3, 1), (3, 2), (4, 1), (4, 2)];
    let before = h.heard_by(&pairs);

    // One packet from each of members 1 and 2 (first core), relayed to the second together.
    let sent = h.one_packet_each(&[1, 2]);
    h.read_together(&sent);
    let relays: Vec<Relay> = std::iter::from_fn(|| h.sfu.poll_relay())
        .map(|(to, relay)| {
            assert_eq!(to, 1);
            relay
        })
        .collect();
    assert_eq!(relays.len(), 2);
    let (forwarded, drains) = (h.core(1).stats().forwarded, h.core(1).drains);
    let now = h.now;
    h.core(1).handle_relays(relays, now, &mut |_| {});
    // Members 3 and 4 are each sent both packets, and drained once.
    assert_eq!(h.core(1).stats().forwarded - forwarded, 4);
    assert_eq!(h.core(1).drains - drains, 2);
    h.assert_heard_more(&pairs, &before);
}

#[test]
fn a_room_spread_over_two_cores_is_heard_across_them_and_forgotten_when_they_empty() {
    let mut h = Harness::spread_of_four();
    for listener in 1..=4 {
        for speaker in (1..=4).filter(|s| *s != listener) {
            let n = h.heard(listener, speaker);
            assert!(n > 50, "{listener} hears {speaker}: {n}");
        }
    }
    // Each packet crossed once, and each copy was written by the core of its listener.
    let (first, second) = (h.sfu.stats(), h.core(1).stats());
    assert!(
        first.relayed > 100 && second.relayed > 100,
        "{first:?} {second:?}"
    );
    assert!(second.relayed_in > 100 && first.relayed_in > 100);
    assert_eq!((first.peers, second.peers), (2, 2));

    // Member 3 leaves the second core: the first core's members stop receiving them.
    let now = h.now;
    h.core(1).handle_cmd(MediaCmd::RemovePeer { peer: 3 }, now);
    h.sfu
        .handle_cmd(MediaCmd::RemotePeerGone { room: 1, peer: 3 }, now);
    h.clients.retain(|c| c.id != 3);
    h.run(Duration::from_millis(500));
    let subs_to_3 = |h: &Harness| {
        h.sfu
            .peers
            .values()
            .flat_map(|p| p.subs.iter())
            .filter(|s| s.source == 3)
            .count()
    };
    assert_eq!(subs_to_3(&h), 0, "their m-lines were stopped and settled");
    let before = h.heard(1, 4);
    h.run(Duration::from_millis(500));
    assert!(h.heard(1, 4) > before + 15, "the rest of the room goes on");

    // The second core's last member leaves: it forgets the room entirely.
    h.leave_second_last(1, 4);
    h.run(Duration::from_millis(100));
    let second = h.core(1).stats();
    assert_eq!((second.rooms, second.peers, second.timers), (0, 0, 0));
    assert!(h.core(1).rooms.is_empty() && h.core(1).relays.is_empty());
}

#[test]
fn video_crosses_cores_and_keyframe_requests_come_back() {
    let mut h = Harness::two_cores(1);
    h.join_with_video(1, 1);
    h.run(Duration::from_millis(300));
    h.join_second(1, 2);
    h.run(Duration::from_secs(1));
    // Member 1 is on the first core, member 2 on the second: the media and the keyframe
    // requests crossed between them.
    member_2_sees_member_1_and_asks_for_keyframes(&mut h);
    assert!(h.sfu.stats().relayed > 0 && h.core(1).stats().relayed > 0);
}

#[test]
fn a_relayed_packet_for_a_room_this_core_does_not_hold_is_dropped() {
    let mut h = Harness::two_cores(1);
    h.join(1, 1);
    h.join_second(1, 2);
    h.run(Duration::from_secs(1));
    assert!(h.heard(2, 1) > 20);
    // The second core forgets the room (its member left); packets still in flight to it
    // are dropped without effect.
    h.leave_second_last(1, 2);
    h.run(Duration::from_millis(500));
    let second = h.core(1).stats();
    assert!(second.relayed_in > 0);
    assert_eq!(
        (second.rooms, second.peers, second.forwarded > 0),
        (0, 0, true)
    );
    assert!(h.core(1).rooms.is_empty());
}

#[test]
fn a_members_address_tells_its_room() {
    let mut h = Harness::new();
    h.join(1, 1);
    h.join(1, 2);
    h.join(2, 3);
    h.join(2, 4);
    h.run(Duration::from_millis(500));
    assert!(
        h.heard(2, 1) > 0 && h.heard(4, 3) > 0,
        "both rooms are connected"
    );
    let sent = h.one_packet_each(&[1, 3]);
    let rooms: Vec<_> = sent
        .iter()
        .map(|t| h.sfu.room_of(t.proto, t.source))
        .collect();
    assert_eq!(rooms, [Some(1), Some(2)]);
    let stranger = "127.0.0.1:9".parse().unwrap();
    assert_eq!(h.sfu.room_of(Protocol::Udp, stranger), None);
    // Once the member has gone, so has what its address told.
    h.sfu.handle_cmd(MediaCmd::RemovePeer { peer: 1 }, h.now);
    assert_eq!(h.sfu.room_of(sent[0].proto, sent[0].source), None);
}
