//! One WebRTC session on str0m, with its own UDP socket (or, in TCP mode, its own TCP
//! connections: ICE-TCP, RFC 6544, framed per RFC 4571), independent of any signalling: SDP
//! goes in and out through channels. Outgoing audio packets carry the sender's id, a sequence
//! number and the send time; incoming ones are attributed, counted and timed. A session may
//! also publish synthetic VP8 video (one stream or three simulcast layers), and records every
//! video stream it receives frame by frame.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use free4chat_signal::ServerMsg;
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::format::CodecExtra;
use str0m::media::{
    Direction, Frequency, KeyframeRequestKind, MediaData, MediaKind, MediaTime, Mid, Simulcast,
    SimulcastLayer,
};
use str0m::net::{Protocol, Receive, TcpType};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::ClientError;
mod payload;
mod streams;
mod tcp;
mod via;
mod video;
mod video_log;
mod vp8;

use payload::{MAGIC, unix_micros};
pub use payload::{PACKET_INTERVAL, PAYLOAD_LEN, Received, parse_payload};
pub use streams::{MAX_RUNS, Run, StreamLog, quieter, slot_index};
use tcp::{TcpIn, TcpLinks, without_udp_candidates};
use via::{udp_candidates_to, without_ssrc_lines};
use video::VideoSender;
pub use video::{KEYFRAME_REQUEST_THROTTLE, VIDEO_TICK, VideoOptions, VideoSent};
pub use video_log::{LayerRun, MAX_LAYER_RUNS, ReceivedFrame, VideoLog};
pub use vp8::{Layer, MAX_VIDEO_PAYLOAD, VideoTag, parse_video_frame};

/// How a session behaves.
#[derive(Debug, Clone)]
pub struct MediaOptions {
    /// The local IP for the session's UDP socket.
    pub local_ip: IpAddr,
    /// Offer or accept Opus with RED (RFC 2198 redundancy), as browsers do.
    pub red: bool,
    /// Simulated uplink loss: drop every Nth outgoing RTP datagram (after encryption).
    pub drop_every_nth_rtp: Option<u32>,
    /// The audio level (dBov, 0 loudest) written into each packet's header extension.
    pub audio_level: i8,
    /// Send audio packets (once connected, on the session's own audio m-line).
    pub publish: bool,
    /// The id written into outgoing packets.
    pub sender_id: u64,
    /// Connect over TCP only, as a browser whose UDP is blocked: one active TCP host candidate
    /// (RFC 6544), the remote's UDP candidates ignored, and a TCP connection opened to a remote
    /// candidate when ICE first sends to it.
    pub tcp: bool,
    /// How often a packet is sent: [`PACKET_INTERVAL`], as a 20 ms Opus frame, unless a
    /// measurement needs a slower stream (a profiler that cannot keep up with the real one).
    pub packet_interval: Duration,
    /// Publish synthetic VP8 video on an m-line of its own (offered with the audio).
    pub video: Option<VideoOptions>,
    /// Send media to this address instead of the remote's UDP candidates: a relay in front of
    /// the server's media port (see [`crate::relay`]). Every UDP candidate of each remote
    /// description is rewritten to it.
    pub media_via: Option<SocketAddr>,
}

impl Default for MediaOptions {
    fn default() -> MediaOptions {
        MediaOptions {
            local_ip: IpAddr::from([127, 0, 0, 1]),
            red: false,
            drop_every_nth_rtp: None,
            audio_level: -30,
            publish: true,
            sender_id: 0,
            tcp: false,
            packet_interval: PACKET_INTERVAL,
            video: None,
            media_via: None,
        }
    }
}
/// What a session (and its signalling) has seen; shared with whoever drives it.
#[derive(Debug, Default)]
pub struct ClientState {
    /// Every signalling message received, in order.
    pub messages: Vec<ServerMsg>,
    /// Test packets received, by sender id.
    pub received: HashMap<u64, Received>,
    /// What arrived on each stream the server sends, by mid (at most [`MAX_STREAMS`]).
    pub streams: HashMap<Mid, StreamLog>,
    /// Test packets that arrived on streams past [`MAX_STREAMS`].
    pub unrecorded_stream_packets: u64,
    /// Media packets that were not test packets.
    pub foreign_packets: u64,
    pub sent_packets: u64,
    /// What the session's camera sent, and the keyframe requests it got.
    pub video_sent: VideoSent,
    /// Each video stream received, by mid (at most [`MAX_STREAMS`]).
    pub video: HashMap<Mid, VideoLog>,
    /// Video frames that arrived on streams past [`MAX_STREAMS`].
    pub unrecorded_video_frames: u64,
    pub connected: bool,
    /// When the first media packet arrived.
    pub first_media: Option<Instant>,
    /// Remote offers answered.
    pub renegotiations: u32,
    /// TCP connections opened (TCP mode).
    pub tcp_connects: u32,
    /// Datagrams received over TCP (TCP mode).
    pub tcp_frames: u64,
    /// Set when the session's task has ended.
    pub ended: Option<String>,
}

/// The most streams whose packets a session records: more than a room's members.
pub const MAX_STREAMS: usize = 1024;

/// Shared session state.
pub type SharedState = Arc<Mutex<ClientState>>;

/// Locks shared state (a poisoned lock still yields the data).
pub fn lock_state(state: &SharedState) -> MutexGuard<'_, ClientState> {
    match state.lock() {
        Ok(s) => s,
        Err(p) => p.into_inner(),
    }
}

/// What drives a running session.
#[derive(Debug)]
pub enum Control {
    /// A remote offer; the answer comes back on the session's SDP channel.
    RemoteOffer(String),
    /// The remote answer to our offer.
    RemoteAnswer(String),
    SetLevel(i8),
    SetPublishing(bool),
    SetSenderId(u64),
    /// Ask for a keyframe (PLI) on every video stream received.
    RequestKeyframes,
}

/// A WebRTC session, before it runs.
pub struct MediaSession {
    rtc: Rtc,
    /// The UDP socket; none in TCP mode.
    socket: Option<UdpSocket>,
    local: SocketAddr,
    tcp: TcpLinks,
    pending: Option<SdpPendingOffer>,
    mid: Option<Mid>,
    /// The camera and the mid it publishes on, once offered.
    video: Option<VideoSender>,
    video_mid: Option<Mid>,
    opts: MediaOptions,
    seq: u32,
    started: Instant,
    rtp_sent: u32,
    state: SharedState,
}

fn proto_err(e: impl std::fmt::Display) -> ClientError {
    ClientError::Protocol(e.to_string())
}

impl MediaSession {
    /// Binds the session's socket (in TCP mode, none: connections are opened on demand).
    pub async fn bind(opts: MediaOptions, state: SharedState) -> Result<MediaSession, ClientError> {
        let mut rtc = RtcConfig::new()
            .enable_opus(true, opts.red)
            .build(Instant::now());
        let (socket, local) = if opts.tcp {
            // An active candidate's port is 9, the discard port (RFC 6544, section 4.5).
            let local = SocketAddr::new(opts.local_ip, 9);
            let candidate = Candidate::builder()
                .tcp()
                .host(local)
                .tcptype(TcpType::Active)
                .build()
                .map_err(proto_err)?;
            rtc.add_local_candidate(candidate);
            (None, local)
        } else {
            let socket = UdpSocket::bind(SocketAddr::new(opts.local_ip, 0)).await?;
            let local = socket.local_addr()?;
            rtc.add_local_candidate(Candidate::host(local, "udp").map_err(proto_err)?);
            (Some(socket), local)
        };
        Ok(MediaSession {
            rtc,
            socket,
            local,
            tcp: TcpLinks::new(),
            pending: None,
            mid: None,
            video: opts
                .video
                .clone()
                .map(|v| VideoSender::new(v, opts.sender_id)),
            video_mid: None,
            opts,
            seq: 0,
            started: Instant::now(),
            rtp_sent: 0,
            state,
        })
    }

    /// Makes our first offer: one audio m-line, sending (if publishing) and receiving; and, if
    /// the session publishes video, a sending video m-line (with three simulcast layers, rids
    /// q, h, f, if so asked).
    pub fn offer(&mut self, dir: Direction) -> Result<String, ClientError> {
        let mut api = self.rtc.sdp_api();
        let mid = api.add_media(MediaKind::Audio, dir, None, None, None);
        let video_mid = self.video.as_ref().map(|v| {
            let simulcast = v.simulcast().then(|| {
                let mut s = Simulcast::new();
                for layer in Layer::ALL {
                    s.add_send_layer(SimulcastLayer::new(layer.rid()));
                }
                s
            });
            api.add_media(MediaKind::Video, Direction::SendOnly, None, None, simulcast)
        });
        let (offer, pending) = api.apply().ok_or_else(|| proto_err("nothing to offer"))?;
        self.mid = Some(mid);
        self.video_mid = video_mid;
        self.pending = Some(pending);
        let sdp = offer.to_sdp_string();
        Ok(match (&self.opts.video, video_mid) {
            (Some(v), Some(mid)) if v.simulcast && v.rids_only => without_ssrc_lines(&sdp, mid),
            _ => sdp,
        })
    }

    /// The mid of our audio m-line, once offered.
    pub fn mid(&self) -> Option<Mid> {
        self.mid
    }

    /// The mid of our video m-line, once offered.
    pub fn video_mid(&self) -> Option<Mid> {
        self.video_mid
    }

    /// Runs until the control channel closes or the session fails. Answers to remote offers
    /// go out on `sdp_out`.
    pub async fn run(
        mut self,
        mut control: mpsc::Receiver<Control>,
        sdp_out: mpsc::Sender<String>,
    ) -> Result<(), ClientError> {
        let mut buf = vec![0u8; 2048];
        let mut tick = tokio::time::interval(self.opts.packet_interval);
        // A camera skips the pictures it could not take in time rather than bursting them.
        let mut video_tick = tokio::time::interval(VIDEO_TICK);
        video_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            let timeout = self.poll()?;
            tokio::select! {
                r = recv_udp(self.socket.as_ref(), &mut buf) => {
                    let (n, source) = r?;
                    self.receive(Protocol::Udp, source, &buf[..n]);
                }
                t = self.tcp.incoming.recv() => match t {
                    Some(TcpIn::Frame(source, frame)) => {
                        lock_state(&self.state).tcp_frames += 1;
                        self.receive(Protocol::Tcp, source, &frame);
                    }
                    Some(TcpIn::Connected) => lock_state(&self.state).tcp_connects += 1,
                    Some(TcpIn::Closed(remote)) => self.tcp.closed(remote),
                    // The session holds a sender itself: never reached.
                    None => return Ok(()),
                },
                _ = tick.tick() => self.send_audio(),
                _ = video_tick.tick(), if self.video.is_some() => self.send_video(),
                _ = tokio::time::sleep_until(timeout.into()) => {
                    self.rtc.handle_input(Input::Timeout(Instant::now())).map_err(proto_err)?;
                }
                c = control.recv() => match c {
                    None => return Ok(()),
                    Some(Control::RemoteOffer(sdp)) => {
                        let answer = self.accept_offer(&sdp)?;
                        if sdp_out.send(answer).await.is_err() {
                            return Ok(());
                        }
                    }
                    Some(Control::RemoteAnswer(sdp)) => self.accept_answer(&sdp)?,
                    Some(Control::SetLevel(l)) => self.opts.audio_level = l,
                    Some(Control::SetPublishing(on)) => self.opts.publish = on,
                    Some(Control::SetSenderId(id)) => {
                        self.opts.sender_id = id;
                        if let Some(v) = &mut self.video {
                            v.set_sender(id);
                        }
                    }
                    Some(Control::RequestKeyframes) => self.request_keyframes(),
                },
            }
        }
    }

    fn receive(&mut self, proto: Protocol, source: SocketAddr, datagram: &[u8]) {
        if let Ok(contents) = datagram.try_into() {
            let input = Input::Receive(
                Instant::now(),
                Receive {
                    proto,
                    source,
                    destination: self.local,
                    contents,
                },
            );
            if let Err(e) = self.rtc.handle_input(input) {
                tracing::debug!("client input: {e}");
            }
        }
    }

    /// A remote description as this session takes it: in TCP mode, without UDP candidates;
    /// through a relay, with the relay's address in every UDP candidate.
    fn remote_sdp(&self, sdp: &str) -> String {
        match (self.opts.tcp, self.opts.media_via) {
            (true, _) => without_udp_candidates(sdp),
            (false, Some(relay)) => udp_candidates_to(sdp, relay),
            (false, None) => sdp.to_owned(),
        }
    }

    fn accept_offer(&mut self, sdp: &str) -> Result<String, ClientError> {
        let offer = SdpOffer::from_sdp_string(&self.remote_sdp(sdp)).map_err(proto_err)?;
        let answer = self.rtc.sdp_api().accept_offer(offer).map_err(proto_err)?;
        lock_state(&self.state).renegotiations += 1;
        Ok(answer.to_sdp_string())
    }

    fn accept_answer(&mut self, sdp: &str) -> Result<(), ClientError> {
        let answer = SdpAnswer::from_sdp_string(&self.remote_sdp(sdp)).map_err(proto_err)?;
        if let Some(pending) = self.pending.take() {
            self.rtc
                .sdp_api()
                .accept_answer(pending, answer)
                .map_err(proto_err)?;
        }
        Ok(())
    }

    fn send_audio(&mut self) {
        if !self.opts.publish || !self.rtc.is_connected() {
            return;
        }
        let Some(writer) = self.mid.and_then(|mid| self.rtc.writer(mid)) else {
            return;
        };
        let Some(pt) = writer
            .payload_params()
            .find(|p| p.spec().codec == Codec::Opus)
            .map(|p| p.pt())
        else {
            return;
        };
        let mut payload = [0u8; PAYLOAD_LEN];
        payload[..4].copy_from_slice(MAGIC);
        payload[4..12].copy_from_slice(&self.opts.sender_id.to_be_bytes());
        payload[12..16].copy_from_slice(&self.seq.to_be_bytes());
        payload[16..24].copy_from_slice(&unix_micros().to_be_bytes());
        let now = Instant::now();
        let samples = now.duration_since(self.started).as_micros() as u64 * 48 / 1000;
        let time = MediaTime::new(samples, Frequency::FORTY_EIGHT_KHZ);
        let level = self.opts.audio_level;
        let written = writer
            .audio_level(level, level > -50)
            .write(pt, now, time, payload.to_vec());
        if written.is_ok() {
            self.seq = self.seq.wrapping_add(1);
            lock_state(&self.state).sent_packets += 1;
        }
    }

    fn send_video(&mut self) {
        let (Some(video), Some(mid)) = (&mut self.video, self.video_mid) else {
            return;
        };
        if !self.opts.publish || !self.rtc.is_connected() {
            return;
        }
        // Held throughout, so that nobody reads the figures half written.
        let mut s = lock_state(&self.state);
        video.tick(&mut self.rtc, mid, Instant::now(), &mut s.video_sent);
    }

    /// Asks for a keyframe on every video stream received.
    fn request_keyframes(&mut self) {
        let mids: Vec<Mid> = lock_state(&self.state).video.keys().copied().collect();
        for mid in mids {
            if let Some(mut writer) = self.rtc.writer(mid) {
                let _ = writer.request_keyframe(None, KeyframeRequestKind::Pli);
            }
        }
    }

    /// Drains the Rtc's output; returns when it next wants a timeout.
    fn poll(&mut self) -> Result<Instant, ClientError> {
        loop {
            match self.rtc.poll_output().map_err(proto_err)? {
                Output::Timeout(t) => return Ok(t),
                Output::Transmit(t) => {
                    if is_rtp(&t.contents) {
                        self.rtp_sent = self.rtp_sent.wrapping_add(1);
                        let drop_every = self.opts.drop_every_nth_rtp;
                        if drop_every.is_some_and(|n| n > 0 && self.rtp_sent.is_multiple_of(n)) {
                            continue;
                        }
                    }
                    match (t.proto, &self.socket) {
                        (Protocol::Tcp, _) => self.tcp.send(t.destination, &t.contents),
                        (_, Some(socket)) => {
                            let _ = socket.try_send_to(&t.contents, t.destination);
                        }
                        (_, None) => {}
                    }
                }
                Output::Event(Event::Connected) => lock_state(&self.state).connected = true,
                // A session that made no offer of its own publishes on the first audio
                // m-line the remote lets it send on.
                Output::Event(Event::MediaAdded(m))
                    if self.mid.is_none()
                        && m.kind == MediaKind::Audio
                        && m.direction.is_sending() =>
                {
                    self.mid = Some(m.mid);
                }
                Output::Event(Event::KeyframeRequest(req)) => {
                    if let Some(video) = &mut self.video
                        && Some(req.mid) == self.video_mid
                    {
                        let mut s = lock_state(&self.state);
                        video.keyframe_request(&req, &mut s.video_sent);
                    }
                }
                Output::Event(Event::MediaData(data)) if data.params.spec().codec.is_video() => {
                    let stream_id = self.rtc.media(data.mid).map(|m| m.stream_id().to_owned());
                    record_video(&mut lock_state(&self.state), &data, stream_id);
                }
                Output::Event(Event::MediaData(data)) => {
                    let now = unix_micros();
                    let stream_id = self.rtc.media(data.mid).map(|m| m.stream_id().to_owned());
                    let mut s = lock_state(&self.state);
                    s.first_media.get_or_insert_with(Instant::now);
                    let parsed = parse_payload(&data.data);
                    if let Some((sender, seq, sent)) = parsed {
                        let r = s.received.entry(sender).or_default();
                        r.packets += 1;
                        r.record(seq);
                        r.seq_end = r.seq_end.max(seq.wrapping_add(1));
                        if r.latencies_us.len() < 100_000 {
                            r.latencies_us.push(now.saturating_sub(sent));
                        }
                    } else {
                        s.foreign_packets += 1;
                    }
                    record_on_stream(&mut s, &data, stream_id, parsed);
                }
                Output::Event(_) => {}
            }
        }
    }
}

/// Records a received packet on its stream's log (a new log while there are fewer than
/// [`MAX_STREAMS`]).
fn record_on_stream(
    s: &mut ClientState,
    data: &MediaData,
    stream_id: Option<String>,
    parsed: Option<(u64, u32, u64)>,
) {
    if !s.streams.contains_key(&data.mid) {
        if s.streams.len() >= MAX_STREAMS {
            s.unrecorded_stream_packets += u64::from(parsed.is_some());
            return;
        }
        let log = StreamLog::new(stream_id.unwrap_or_default());
        s.streams.insert(data.mid, log);
    }
    let Some(log) = s.streams.get_mut(&data.mid) else {
        return;
    };
    match parsed {
        // One test payload is one RTP packet: the last of the frame's sequence numbers.
        Some((sender, seq, _)) => {
            let rtp = **data.seq_range.end();
            log.record(rtp, sender, seq, data.ext_vals.audio_level);
        }
        None => log.foreign += 1,
    }
}

/// Records a received video frame on its stream's log (a new log while there are fewer than
/// [`MAX_STREAMS`]).
fn record_video(s: &mut ClientState, data: &MediaData, stream_id: Option<String>) {
    s.first_media.get_or_insert_with(Instant::now);
    if !s.video.contains_key(&data.mid) {
        if s.video.len() >= MAX_STREAMS {
            s.unrecorded_video_frames += 1;
            return;
        }
        s.video
            .insert(data.mid, VideoLog::new(stream_id.unwrap_or_default()));
    }
    let Some(log) = s.video.get_mut(&data.mid) else {
        return;
    };
    let (keyframe, tag) = parse_video_frame(&data.data);
    let (keyframe, picture_id) = match data.codec_extra {
        CodecExtra::Vp8(e) => (e.is_keyframe, e.picture_id),
        _ => (keyframe, None),
    };
    let frame = ReceivedFrame {
        first_seq: **data.seq_range.start(),
        last_seq: **data.seq_range.end(),
        time: data.time.numer(),
        picture_id,
        keyframe,
        tag,
        contiguous: data.contiguous,
    };
    log.record(&frame, unix_micros());
    log.bytes += data.data.len() as u64;
}

/// Receives from the UDP socket; never ready without one.
async fn recv_udp(socket: Option<&UdpSocket>, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
    match socket {
        Some(s) => s.recv_from(buf).await,
        None => std::future::pending().await,
    }
}
/// Whether a datagram is RTP (not RTCP, STUN or DTLS): RFC 7983 and RFC 5761.
fn is_rtp(d: &[u8]) -> bool {
    d.len() >= 12 && (128..=191).contains(&d[0]) && !(64..=95).contains(&(d[1] & 0x7f))
}
#[cfg(test)]
mod tests;
