//! A free4chat client built on str0m: it joins a room over the signalling WebSocket,
//! negotiates a real WebRTC session (full ICE, DTLS, SRTP) and publishes audio-sized packets
//! that carry the sender's id, a sequence number and a send time, so receivers can attribute
//! every packet, count losses and measure latency through the server.
//!
//! Used by the integration tests and the load generator.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use free4chat_signal::{ClientMsg, PROTOCOL_VERSION, PeerId, ServerMsg};
use futures_util::{SinkExt, StreamExt};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

/// Marks our test payloads.
const MAGIC: &[u8; 4] = b"F4CT";
/// The size of a test payload: about one 20 ms Opus frame at 32 kbit/s.
pub const PAYLOAD_LEN: usize = 80;
/// One audio packet every 20 ms.
pub const PACKET_INTERVAL: Duration = Duration::from_millis(20);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("websocket: {0}")]
    Ws(#[from] Box<tokio_tungstenite::tungstenite::Error>),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("refused: {0:?}")]
    Refused(ServerMsg),
    #[error("protocol: {0}")]
    Protocol(String),
    #[error("timed out: {0}")]
    Timeout(&'static str),
}

impl From<tokio_tungstenite::tungstenite::Error> for ClientError {
    fn from(e: tokio_tungstenite::tungstenite::Error) -> ClientError {
        ClientError::Ws(Box::new(e))
    }
}

/// How to join.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `ws://host:port/ws`
    pub url: String,
    pub room: String,
    pub name: String,
    /// Publish a microphone-like audio track.
    pub publish: bool,
    /// The audio level (dBov, 0 loudest) written into each packet's header extension.
    pub audio_level: i8,
    /// The local IP for the client's UDP socket.
    pub local_ip: IpAddr,
    /// Offer Opus with RED (RFC 2198 redundancy), as browsers do.
    pub red: bool,
    /// Simulated uplink loss: drop every Nth outgoing RTP datagram (after encryption).
    pub drop_every_nth_rtp: Option<u32>,
}

impl ClientConfig {
    pub fn new(http: SocketAddr, room: &str, name: &str) -> ClientConfig {
        ClientConfig {
            url: format!("ws://{http}/ws"),
            room: room.into(),
            name: name.into(),
            publish: true,
            audio_level: -30,
            local_ip: IpAddr::from([127, 0, 0, 1]),
            red: false,
            drop_every_nth_rtp: None,
        }
    }
}

/// Packets received from one sender.
#[derive(Debug, Default, Clone)]
pub struct Received {
    pub packets: u64,
    /// The highest sequence number seen, +1 (0 when none).
    pub seq_end: u32,
    /// One-way latencies through the server, in microseconds.
    pub latencies_us: Vec<u64>,
    /// Distinct sequence numbers received (bounded to the first million).
    seen: Vec<u64>,
    pub distinct: u64,
}

impl Received {
    fn record(&mut self, seq: u32) {
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        if word >= 1 << 14 {
            return;
        }
        if self.seen.len() <= word {
            self.seen.resize(word + 1, 0);
        }
        if self.seen[word] & (1 << bit) == 0 {
            self.seen[word] |= 1 << bit;
            self.distinct += 1;
        }
    }

    /// Sequence numbers below `end` that never arrived.
    pub fn missing_below(&self, end: u32) -> u64 {
        let got = (0..end)
            .filter(|s| {
                self.seen
                    .get((s / 64) as usize)
                    .is_some_and(|w| w & (1 << (s % 64)) != 0)
            })
            .count() as u64;
        u64::from(end) - got
    }
}

/// What the client has seen; shared with the test.
#[derive(Debug, Default)]
pub struct ClientState {
    /// Every signalling message received, in order.
    pub messages: Vec<ServerMsg>,
    /// Test packets received, by sender id.
    pub received: HashMap<PeerId, Received>,
    /// Media packets that were not test packets.
    pub foreign_packets: u64,
    pub sent_packets: u64,
    pub connected: bool,
    /// Server offers answered.
    pub renegotiations: u32,
    /// Set when the client's task has ended.
    pub ended: Option<String>,
}

enum Cmd {
    Signal(ClientMsg),
    SetLevel(i8),
    SetPublishing(bool),
}

/// A joined client. Dropping it ends its task without saying `leave` (a vanished client).
pub struct Client {
    pub id: PeerId,
    /// The `joined` message.
    pub joined: ServerMsg,
    state: Arc<Mutex<ClientState>>,
    cmd: mpsc::Sender<Cmd>,
    task: JoinHandle<()>,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Client {
    /// Joins and starts negotiating media. Returns once `joined` has arrived.
    pub async fn join(config: ClientConfig) -> Result<Client, ClientError> {
        let (mut ws, _) = tokio_tungstenite::connect_async(config.url.as_str()).await?;
        let join = ClientMsg::Join {
            v: PROTOCOL_VERSION,
            room: config.room.clone(),
            name: config.name.clone(),
            muted: false,
        };
        ws.send(Message::text(to_json(&join))).await?;
        let joined = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(frame) = ws.next().await {
                if let Message::Text(t) = frame? {
                    let msg: ServerMsg = serde_json::from_str(t.as_str())
                        .map_err(|e| ClientError::Protocol(e.to_string()))?;
                    return match msg {
                        ServerMsg::Joined { .. } => Ok(msg),
                        other => Err(ClientError::Refused(other)),
                    };
                }
            }
            Err(ClientError::Protocol("closed before joined".into()))
        })
        .await
        .map_err(|_| ClientError::Timeout("joined"))??;
        let ServerMsg::Joined { id, .. } = &joined else {
            return Err(ClientError::Protocol("not joined".into()));
        };
        let id = *id;

        let socket = UdpSocket::bind(SocketAddr::new(config.local_ip, 0)).await?;
        let local = socket.local_addr()?;
        let mut rtc = RtcConfig::new()
            .enable_opus(true, config.red)
            .build(Instant::now());
        let candidate =
            Candidate::host(local, "udp").map_err(|e| ClientError::Protocol(e.to_string()))?;
        rtc.add_local_candidate(candidate);
        let mut api = rtc.sdp_api();
        let dir = if config.publish {
            Direction::SendRecv
        } else {
            Direction::RecvOnly
        };
        let mid = api.add_media(MediaKind::Audio, dir, None, None, None);
        let (offer, pending) = api
            .apply()
            .ok_or_else(|| ClientError::Protocol("no offer".into()))?;
        let offer = ClientMsg::Offer {
            sdp: offer.to_sdp_string(),
        };
        ws.send(Message::text(to_json(&offer))).await?;

        let state = Arc::new(Mutex::new(ClientState::default()));
        let (cmd, cmd_rx) = mpsc::channel(256);
        let media = Media {
            id,
            rtc,
            socket,
            local,
            pending: Some(pending),
            mid,
            publish: config.publish,
            level: config.audio_level,
            seq: 0,
            started: Instant::now(),
            drop_every: config.drop_every_nth_rtp,
            rtp_sent: 0,
            state: state.clone(),
        };
        let task_state = state.clone();
        let task = tokio::spawn(async move {
            let result = media.run(ws, cmd_rx).await;
            if let Ok(mut s) = task_state.lock() {
                s.ended = Some(match result {
                    Ok(()) => "closed".into(),
                    Err(e) => e.to_string(),
                });
            }
        });
        Ok(Client {
            id,
            joined,
            state,
            cmd,
            task,
        })
    }

    /// Runs `f` on the client's state.
    pub fn with_state<R>(&self, f: impl FnOnce(&ClientState) -> R) -> R {
        match self.state.lock() {
            Ok(s) => f(&s),
            Err(poisoned) => f(&poisoned.into_inner()),
        }
    }

    /// Waits until `f` holds, up to `timeout`. Returns whether it held.
    pub async fn wait_for(&self, timeout: Duration, f: impl Fn(&ClientState) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.with_state(&f) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Test packets received from `peer`.
    pub fn received_from(&self, peer: PeerId) -> u64 {
        self.with_state(|s| s.received.get(&peer).map_or(0, |r| r.packets))
    }

    /// Sends a signalling message.
    pub async fn send(&self, msg: ClientMsg) {
        let _ = self.cmd.send(Cmd::Signal(msg)).await;
    }

    /// Changes the audio level written into outgoing packets.
    pub async fn set_level(&self, level: i8) {
        let _ = self.cmd.send(Cmd::SetLevel(level)).await;
    }

    /// Starts or stops sending audio packets.
    pub async fn set_publishing(&self, on: bool) {
        let _ = self.cmd.send(Cmd::SetPublishing(on)).await;
    }

    /// Says `leave` and waits (briefly) for the server to close.
    pub async fn leave(self) {
        self.send(ClientMsg::Leave).await;
        self.wait_for(Duration::from_secs(5), |s| s.ended.is_some())
            .await;
    }
}

fn to_json(msg: &ClientMsg) -> String {
    serde_json::to_string(msg).unwrap_or_default()
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Media {
    id: PeerId,
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    pending: Option<SdpPendingOffer>,
    mid: Mid,
    publish: bool,
    level: i8,
    seq: u32,
    started: Instant,
    drop_every: Option<u32>,
    rtp_sent: u32,
    state: Arc<Mutex<ClientState>>,
}

impl Media {
    async fn run(mut self, mut ws: Ws, mut cmds: mpsc::Receiver<Cmd>) -> Result<(), ClientError> {
        let mut buf = vec![0u8; 2048];
        let mut tick = tokio::time::interval(PACKET_INTERVAL);
        let mut outgoing: Vec<ClientMsg> = Vec::new();
        loop {
            let timeout = self.poll()?;
            for msg in outgoing.drain(..) {
                ws.send(Message::text(to_json(&msg))).await?;
            }
            let sleep = tokio::time::sleep_until(timeout.into());
            tokio::select! {
                frame = ws.next() => {
                    let Some(frame) = frame else { return Ok(()) };
                    match frame? {
                        Message::Text(t) => {
                            let msg: ServerMsg = serde_json::from_str(t.as_str())
                                .map_err(|e| ClientError::Protocol(e.to_string()))?;
                            if let Some(reply) = self.signal(&msg)? {
                                outgoing.push(reply);
                            }
                            self.lock().messages.push(msg);
                        }
                        Message::Close(_) => return Ok(()),
                        _ => {}
                    }
                }
                r = self.socket.recv_from(&mut buf) => {
                    let (n, source) = r?;
                    if let Ok(contents) = (&buf[..n]).try_into() {
                        let input = Input::Receive(Instant::now(), Receive {
                            proto: Protocol::Udp,
                            source,
                            destination: self.local,
                            contents,
                        });
                        if let Err(e) = self.rtc.handle_input(input) {
                            tracing::debug!("client input: {e}");
                        }
                    }
                }
                _ = tick.tick() => self.send_audio(),
                _ = sleep => {
                    if let Err(e) = self.rtc.handle_input(Input::Timeout(Instant::now())) {
                        return Err(ClientError::Protocol(e.to_string()));
                    }
                }
                cmd = cmds.recv() => match cmd {
                    Some(Cmd::Signal(m)) => {
                        let leaving = m == ClientMsg::Leave;
                        ws.send(Message::text(to_json(&m))).await?;
                        if leaving {
                            // Wait for the server's bye and close.
                            while let Some(Ok(frame)) = ws.next().await {
                                if let Message::Text(t) = frame
                                    && let Ok(msg) = serde_json::from_str::<ServerMsg>(t.as_str()) {
                                        self.lock().messages.push(msg);
                                    }
                            }
                            return Ok(());
                        }
                    }
                    Some(Cmd::SetLevel(l)) => self.level = l,
                    Some(Cmd::SetPublishing(on)) => self.publish = on,
                    None => return Ok(()),
                },
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ClientState> {
        match self.state.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        }
    }

    /// Handles SDP from the server; returns what to send back.
    fn signal(&mut self, msg: &ServerMsg) -> Result<Option<ClientMsg>, ClientError> {
        match msg {
            ServerMsg::Answer { sdp } => {
                let answer = SdpAnswer::from_sdp_string(sdp)
                    .map_err(|e| ClientError::Protocol(e.to_string()))?;
                if let Some(pending) = self.pending.take() {
                    self.rtc
                        .sdp_api()
                        .accept_answer(pending, answer)
                        .map_err(|e| ClientError::Protocol(e.to_string()))?;
                }
                Ok(None)
            }
            ServerMsg::Offer { sdp } => {
                let offer = SdpOffer::from_sdp_string(sdp)
                    .map_err(|e| ClientError::Protocol(e.to_string()))?;
                let answer = self
                    .rtc
                    .sdp_api()
                    .accept_offer(offer)
                    .map_err(|e| ClientError::Protocol(e.to_string()))?;
                self.lock().renegotiations += 1;
                Ok(Some(ClientMsg::Answer {
                    sdp: answer.to_sdp_string(),
                }))
            }
            _ => Ok(None),
        }
    }

    fn send_audio(&mut self) {
        if !self.publish || !self.rtc.is_connected() {
            return;
        }
        let Some(writer) = self.rtc.writer(self.mid) else {
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
        payload[4..12].copy_from_slice(&self.id.to_be_bytes());
        payload[12..16].copy_from_slice(&self.seq.to_be_bytes());
        payload[16..24].copy_from_slice(&unix_micros().to_be_bytes());
        let now = Instant::now();
        let samples = now.duration_since(self.started).as_micros() as u64 * 48 / 1000;
        let time = MediaTime::new(samples, Frequency::FORTY_EIGHT_KHZ);
        let written =
            writer
                .audio_level(self.level, self.level > -50)
                .write(pt, now, time, payload.to_vec());
        if written.is_ok() {
            self.seq = self.seq.wrapping_add(1);
            self.lock().sent_packets += 1;
        }
    }

    /// Drains the Rtc's output; returns when it next wants a timeout.
    fn poll(&mut self) -> Result<Instant, ClientError> {
        loop {
            match self
                .rtc
                .poll_output()
                .map_err(|e| ClientError::Protocol(e.to_string()))?
            {
                Output::Timeout(t) => return Ok(t),
                Output::Transmit(t) => {
                    if is_rtp(&t.contents) {
                        self.rtp_sent = self.rtp_sent.wrapping_add(1);
                        if self
                            .drop_every
                            .is_some_and(|n| n > 0 && self.rtp_sent.is_multiple_of(n))
                        {
                            continue;
                        }
                    }
                    let _ = self.socket.try_send_to(&t.contents, t.destination);
                }
                Output::Event(Event::Connected) => self.lock().connected = true,
                Output::Event(Event::MediaData(data)) => {
                    let now = unix_micros();
                    let mut s = self.lock();
                    match parse_payload(&data.data) {
                        Some((sender, seq, sent)) => {
                            let r = s.received.entry(sender).or_default();
                            r.packets += 1;
                            r.record(seq);
                            r.seq_end = r.seq_end.max(seq.wrapping_add(1));
                            if r.latencies_us.len() < 100_000 {
                                r.latencies_us.push(now.saturating_sub(sent));
                            }
                        }
                        None => s.foreign_packets += 1,
                    }
                }
                Output::Event(_) => {}
            }
        }
    }
}

/// Whether a datagram is RTP (not RTCP, STUN or DTLS): RFC 7983 and RFC 5761.
fn is_rtp(d: &[u8]) -> bool {
    d.len() >= 12 && (128..=191).contains(&d[0]) && !(64..=95).contains(&(d[1] & 0x7f))
}

/// (sender, sequence, send time in µs since the Unix epoch) of a test payload.
pub fn parse_payload(data: &[u8]) -> Option<(PeerId, u32, u64)> {
    if data.len() < 24 || &data[..4] != MAGIC {
        return None;
    }
    let sender = u64::from_be_bytes(data[4..12].try_into().ok()?);
    let seq = u32::from_be_bytes(data[12..16].try_into().ok()?);
    let sent = u64::from_be_bytes(data[16..24].try_into().ok()?);
    Some((sender, seq, sent))
}

fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}
