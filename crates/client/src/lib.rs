//! A free4chat client built on str0m: it joins a room over the signalling WebSocket,
//! negotiates a real WebRTC session (full ICE, DTLS, SRTP) and publishes audio-sized packets
//! that carry the sender's id, a sequence number and a send time, so receivers can attribute
//! every packet, count losses and measure latency through the server.
//!
//! It can also publish synthetic VP8 video (one stream, or three simulcast layers) and records
//! every video stream it receives frame by frame ([`VideoLog`]); [`relay`] is a UDP relay with
//! a rate limit to put between a client and the server's media port.
//!
//! [`media::MediaSession`] is the WebRTC part alone, for other signalling (the load generator
//! drives other servers with it). Used by the integration tests and the load generator.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use free4chat_signal::{ClientMsg, MemberId, PROTOCOL_VERSION, ServerMsg, Sources, TrackSource};
use futures_util::{SinkExt, StreamExt};
use str0m::media::Direction;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

pub mod media;
pub mod relay;

pub use media::{
    ClientState, Control, Layer, LayerRun, MAX_STREAMS, MediaOptions, MediaSession,
    PACKET_INTERVAL, PAYLOAD_LEN, Received, Run, SharedState, StreamLog, VideoLog, VideoOptions,
    VideoSent, parse_payload, slot_index,
};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("websocket: {0}")]
    Ws(#[from] Box<tokio_tungstenite::tungstenite::Error>),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("refused: {0:?}")]
    Refused(Box<ServerMsg>),
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
    /// Media over TCP only (ICE-TCP), as a browser whose UDP is blocked.
    pub tcp: bool,
    /// The source to declare for the published audio track in the offer's `sources`; none
    /// leaves it to the server's default (a microphone).
    pub source: Option<TrackSource>,
    /// How often a packet is sent ([`PACKET_INTERVAL`] unless a measurement needs fewer).
    pub packet_interval: Duration,
    /// The room's password: a private room's, or the one a room this client makes gets.
    pub password: Option<String>,
    /// Publish synthetic VP8 video as a camera (declared `camera` in the offer's `sources`).
    pub video: Option<VideoOptions>,
    /// Send media through this relay ([`relay::Relay::addr`]) instead of straight to the
    /// server's media port.
    pub media_via: Option<SocketAddr>,
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
            tcp: false,
            source: None,
            packet_interval: PACKET_INTERVAL,
            password: None,
            video: None,
            media_via: None,
        }
    }
}

/// A joined client. Dropping it ends its tasks without saying `leave` (a vanished client).
pub struct Client {
    pub id: MemberId,
    /// The `joined` message.
    pub joined: ServerMsg,
    /// When the WebSocket was opened.
    pub started: Instant,
    state: SharedState,
    signal: mpsc::Sender<ClientMsg>,
    control: mpsc::Sender<Control>,
    tasks: [JoinHandle<()>; 2],
}

impl Drop for Client {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

impl Client {
    /// Joins and starts negotiating media. Returns once `joined` has arrived.
    pub async fn join(config: ClientConfig) -> Result<Client, ClientError> {
        let started = Instant::now();
        let connect = tokio_tungstenite::connect_async(config.url.as_str());
        let (mut ws, _) = tokio::time::timeout(Duration::from_secs(10), connect)
            .await
            .map_err(|_| ClientError::Timeout("connect"))??;
        let join = ClientMsg::Join {
            v: PROTOCOL_VERSION,
            room: config.room.clone(),
            name: config.name.clone(),
            muted: false,
            key: None,
            password: config.password.clone(),
            topic: None,
            language: None,
            token: None,
        };
        ws.send(Message::text(to_json(&join))).await?;
        let joined = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(frame) = ws.next().await {
                if let Message::Text(t) = frame? {
                    let msg: ServerMsg = serde_json::from_str(t.as_str())
                        .map_err(|e| ClientError::Protocol(e.to_string()))?;
                    return match msg {
                        ServerMsg::Joined { .. } => Ok(msg),
                        other => Err(ClientError::Refused(Box::new(other))),
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

        let state: SharedState = Arc::new(Mutex::new(ClientState::default()));
        let opts = MediaOptions {
            local_ip: config.local_ip,
            red: config.red,
            drop_every_nth_rtp: config.drop_every_nth_rtp,
            audio_level: config.audio_level,
            publish: config.publish,
            sender_id: id.0,
            tcp: config.tcp,
            packet_interval: config.packet_interval,
            video: config.video.clone(),
            media_via: config.media_via,
        };
        let mut session = MediaSession::bind(opts, state.clone()).await?;
        let dir = if config.publish {
            Direction::SendRecv
        } else {
            Direction::RecvOnly
        };
        let sdp = session.offer(dir)?;
        let mut sources = Sources::new();
        if let (Some(source), Some(mid)) = (config.source, session.mid())
            && config.publish
        {
            sources.insert(mid.to_string(), source);
        }
        if let Some(mid) = session.video_mid() {
            sources.insert(mid.to_string(), TrackSource::Camera);
        }
        let sources = (!sources.is_empty()).then_some(sources);
        ws.send(Message::text(to_json(&ClientMsg::Offer { sdp, sources })))
            .await?;

        let (control, control_rx) = mpsc::channel(256);
        let (answers, answers_rx) = mpsc::channel(16);
        let (signal, signal_rx) = mpsc::channel(256);
        let media_state = state.clone();
        let media_task = tokio::spawn(async move {
            let result = session.run(control_rx, answers).await;
            end(&media_state, result);
        });
        let ws_state = state.clone();
        let ws_control = control.clone();
        let ws_task = tokio::spawn(async move {
            let result = signalling(ws, &ws_state, ws_control, answers_rx, signal_rx).await;
            end(&ws_state, result);
        });
        Ok(Client {
            id,
            joined,
            started,
            state,
            signal,
            control,
            tasks: [media_task, ws_task],
        })
    }

    /// The client's shared state.
    pub fn state(&self) -> SharedState {
        self.state.clone()
    }

    /// Runs `f` on the client's state.
    pub fn with_state<R>(&self, f: impl FnOnce(&ClientState) -> R) -> R {
        f(&media::lock_state(&self.state))
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

    /// Test packets received from `member`.
    pub fn received_from(&self, member: MemberId) -> u64 {
        self.with_state(|s| s.received.get(&member.0).map_or(0, |r| r.packets))
    }

    /// Sends a signalling message.
    pub async fn send(&self, msg: ClientMsg) {
        let _ = self.signal.send(msg).await;
    }

    /// Changes the audio level written into outgoing packets.
    pub async fn set_level(&self, level: i8) {
        let _ = self.control.send(Control::SetLevel(level)).await;
    }

    /// Starts or stops sending audio packets (and video frames).
    pub async fn set_publishing(&self, on: bool) {
        let _ = self.control.send(Control::SetPublishing(on)).await;
    }

    /// Asks for a keyframe (PLI) on every video stream received so far.
    pub async fn request_keyframes(&self) {
        let _ = self.control.send(Control::RequestKeyframes).await;
    }

    /// The video streams received so far, each with the msid stream id the server gave it.
    pub fn video_streams(&self) -> Vec<VideoLog> {
        self.with_state(|s| s.video.values().cloned().collect())
    }

    /// The video stream received from `member` (whose msid stream ids start `<member>-`), if
    /// any.
    pub fn video_from(&self, member: MemberId) -> Option<VideoLog> {
        let prefix = format!("{member}-");
        self.with_state(|s| {
            s.video
                .values()
                .find(|v| v.stream.starts_with(&prefix))
                .cloned()
        })
    }

    /// What this client's camera sent.
    pub fn video_sent(&self) -> VideoSent {
        self.with_state(|s| s.video_sent.clone())
    }

    /// Says `leave` and waits (briefly) for the server to close.
    pub async fn leave(self) {
        self.send(ClientMsg::Leave).await;
        self.wait_for(Duration::from_secs(5), |s| s.ended.is_some())
            .await;
    }
}

fn end(state: &SharedState, result: Result<(), ClientError>) {
    media::lock_state(state).ended.get_or_insert(match result {
        Ok(()) => "closed".into(),
        Err(e) => e.to_string(),
    });
}

fn to_json(msg: &ClientMsg) -> String {
    serde_json::to_string(msg).unwrap_or_default()
}

/// Carries SDP between the WebSocket and the media session; records every server message.
async fn signalling(
    mut ws: Ws,
    state: &SharedState,
    control: mpsc::Sender<Control>,
    mut answers: mpsc::Receiver<String>,
    mut outgoing: mpsc::Receiver<ClientMsg>,
) -> Result<(), ClientError> {
    loop {
        tokio::select! {
            frame = ws.next() => {
                let Some(frame) = frame else { return Ok(()) };
                match frame? {
                    Message::Text(t) => {
                        let msg: ServerMsg = serde_json::from_str(t.as_str())
                            .map_err(|e| ClientError::Protocol(e.to_string()))?;
                        let to_media = match &msg {
                            ServerMsg::Answer { sdp } => Some(Control::RemoteAnswer(sdp.clone())),
                            ServerMsg::Offer { sdp } => Some(Control::RemoteOffer(sdp.clone())),
                            _ => None,
                        };
                        media::lock_state(state).messages.push(msg);
                        if let Some(c) = to_media
                            && control.send(c).await.is_err()
                        {
                            return Ok(());
                        }
                    }
                    Message::Close(_) => return Ok(()),
                    _ => {}
                }
            }
            answer = answers.recv() => {
                let Some(sdp) = answer else { return Ok(()) };
                ws.send(Message::text(to_json(&ClientMsg::Answer { sdp }))).await?;
            }
            msg = outgoing.recv() => {
                let Some(msg) = msg else { return Ok(()) };
                ws.send(Message::text(to_json(&msg))).await?;
            }
        }
    }
}
