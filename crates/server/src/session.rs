//! One WebSocket connection: reads and checks every frame, enforces the rate limit, passes
//! in-room messages to the member's room, and writes what the room sends back.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use free4chat_signal::{
    ByeReason, ClientMsg, ErrorCode, PROTOCOL_VERSION, ServerMsg, check_chat_msg,
    validate_client_key, validate_language, validate_local_mutes, validate_nickname,
    validate_password, validate_room_name, validate_sources, validate_topic, validate_video_view,
};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, watch};
use tracing::debug;

use crate::admission::{Admission, WsPermit};
use crate::config::Config;
use crate::join_token::JoinTokens;
use crate::metrics::Metrics;
use crate::rate::TokenBucket;
use crate::rooms::tag::member_tag;
use crate::rooms::{JoinRequest, MEMBER_QUEUE, Membership, RoomDirectory};

/// Counts open connections, so shutdown can wait until each has said goodbye.
#[derive(Default)]
pub struct Connections {
    open: std::sync::atomic::AtomicUsize,
    closed: tokio::sync::Notify,
}

impl Connections {
    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits until no connection is open.
    pub async fn all_closed(&self) {
        loop {
            let notified = self.closed.notified();
            if self.open.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Marks one connection open while it lives.
struct OpenConnection(Arc<Connections>);

impl OpenConnection {
    fn new(c: Arc<Connections>) -> OpenConnection {
        c.open.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        OpenConnection(c)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0
            .open
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        self.0.closed.notify_waiters();
    }
}

/// How long a refused WebSocket waits for its error to go out and the client's close.
const REFUSAL_LINGER: Duration = Duration::from_secs(2);

enum Outgoing {
    Msg(Arc<ServerMsg>),
    Ping,
}

/// Who is at the other end of a signalling WebSocket.
pub struct Client {
    /// The host of the request's `Host` header, checked.
    pub host: Option<String>,
    pub ip: IpAddr,
    pub admission: Arc<Admission>,
    /// The key join tokens are checked with, and whether a join needs one.
    pub tokens: Arc<JoinTokens>,
    /// The connection's place among its address's WebSockets, held while it lives.
    pub _permit: WsPermit,
}

/// Says why a WebSocket is refused, and closes it.
pub async fn refuse(socket: WebSocket, refusal: ServerMsg) {
    let (mut sink, mut stream) = socket.split();
    let send = async {
        let _ = sink
            .send(Message::Text(Utf8Bytes::from(refusal.to_json())))
            .await;
        let _ = sink.send(Message::Close(None)).await;
    };
    // The client's close is read (briefly) so the error is not lost to a reset.
    let _ = tokio::time::timeout(REFUSAL_LINGER, async {
        send.await;
        while let Some(Ok(frame)) = stream.next().await {
            if matches!(frame, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

pub async fn run(
    socket: WebSocket,
    client: Client,
    config: Arc<Config>,
    rooms: Arc<dyn RoomDirectory>,
    connections: Arc<Connections>,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    let _open = OpenConnection::new(connections);
    let (sink, mut stream) = socket.split();
    // The room writes into `room_tx`; this task writes its own replies into `own_tx`.
    let (room_tx, room_rx) = mpsc::channel::<Arc<ServerMsg>>(MEMBER_QUEUE);
    let (own_tx, own_rx) = mpsc::channel::<Outgoing>(64);
    let mut writer = tokio::spawn(write_loop(sink, room_rx, own_rx, metrics.clone()));
    let mut writer_done = false;

    let mut session = Session {
        rooms,
        metrics: metrics.clone(),
        client,
        own_tx,
        room_tx: Some(room_tx),
        membership: None,
        named_by_token: false,
        strikes: 0,
        max_strikes: config.limits.max_refusals,
        general: TokenBucket::new(
            config.limits.message_burst.into(),
            config.limits.message_rate,
        ),
        chat: TokenBucket::new(config.limits.chat_burst.into(), config.limits.chat_rate),
    };
    // A timer of its own: the deadline is kept to, not put off to the next ping.
    let join_deadline = tokio::time::sleep(config.connections.join_deadline);
    tokio::pin!(join_deadline);
    let mut last_heard = Instant::now();
    let mut ping = tokio::time::interval(config.connections.ping_interval);
    ping.tick().await;

    let mut violation = None;
    let said_leave = loop {
        tokio::select! {
            frame = stream.next() => {
                let Some(Ok(frame)) = frame else { break false };
                last_heard = Instant::now();
                match session.frame(frame).await {
                    Flow::Continue => {}
                    Flow::Leave => break true,
                    Flow::Close => break false,
                    Flow::Violation(error) => {
                        violation = Some(*error);
                        break false;
                    }
                }
            }
            _ = &mut join_deadline, if session.membership.is_none() => {
                session.reply(ServerMsg::error(ErrorCode::NotJoined, "join took too long"));
                break false;
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > config.connections.silence_limit {
                    debug!("connection silent too long");
                    break false;
                }
                let _ = session.own_tx.try_send(Outgoing::Ping);
            }
            _ = shutdown.changed() => {
                // Joined members hear it from their room; the others from here.
                if session.membership.is_none() {
                    session.reply(ServerMsg::Bye { reason: ByeReason::ServerShutdown });
                    break false;
                }
                // The room sends bye and drops its queue, which ends the writer.
                if tokio::time::timeout(Duration::from_secs(5), &mut writer).await.is_ok() {
                    writer_done = true;
                }
                break false;
            }
            // The room dropped this member (left, failed, stalled, shutting down).
            _ = &mut writer, if !writer_done => {
                writer_done = true;
                break false;
            }
        }
    };
    // The last words go in our own queue before the room lets go of the member, so the writer
    // sends them before it closes.
    if let Some(error) = violation {
        for msg in [
            error,
            ServerMsg::Bye {
                reason: ByeReason::ProtocolViolation,
            },
        ] {
            let queued = session.own_tx.send(Outgoing::Msg(Arc::new(msg)));
            let _ = tokio::time::timeout(Duration::from_secs(2), queued).await;
        }
    }
    if let Some(m) = session.membership.take() {
        m.leave(said_leave).await;
        metrics.leave();
    }
    drop(session);
    // Close cleanly: the writer sends what is queued and a close frame, while we read (and
    // discard) what the client still sends until its close. Closing a socket with unread data
    // would reset the connection, and the client would lose our last messages.
    let drain = async {
        while let Some(Ok(frame)) = stream.next().await {
            if matches!(frame, Message::Close(_)) {
                break;
            }
        }
    };
    let finish = async {
        if !writer_done {
            let _ = (&mut writer).await;
        }
    };
    let _ = tokio::time::timeout(config.connections.close_linger, async {
        tokio::join!(drain, finish);
    })
    .await;
}

async fn write_loop(
    mut sink: futures_util::stream::SplitSink<WebSocket, Message>,
    mut room_rx: mpsc::Receiver<Arc<ServerMsg>>,
    mut own_rx: mpsc::Receiver<Outgoing>,
    metrics: Arc<Metrics>,
) {
    let mut own_open = true;
    loop {
        let out = tokio::select! {
            msg = room_rx.recv() => match msg {
                Some(m) => Outgoing::Msg(m),
                // The room dropped this member (left, failed, stalled or shutting down).
                None => break,
            },
            msg = own_rx.recv(), if own_open => match msg {
                Some(m) => m,
                None => { own_open = false; continue; }
            },
        };
        let (frame, last) = match out {
            Outgoing::Msg(m) => {
                if let ServerMsg::Error { code, .. } = *m {
                    metrics.error(code);
                }
                let last = matches!(*m, ServerMsg::Bye { .. });
                (Message::Text(Utf8Bytes::from(m.to_json())), last)
            }
            Outgoing::Ping => (Message::Ping(Default::default()), false),
        };
        if sink.send(frame).await.is_err() {
            return;
        }
        if last {
            break;
        }
    }
    // Anything this task queued itself (an error before a bye) still goes out.
    while let Ok(Outgoing::Msg(m)) = own_rx.try_recv() {
        if let ServerMsg::Error { code, .. } = *m {
            metrics.error(code);
        }
        if sink
            .send(Message::Text(Utf8Bytes::from(m.to_json())))
            .await
            .is_err()
        {
            return;
        }
    }
    let _ = sink.send(Message::Close(None)).await;
    let _ = sink.close().await;
}

enum Flow {
    Continue,
    Leave,
    Close,
    /// Too many refusals: end the connection after this error and a bye.
    Violation(Box<ServerMsg>),
}

struct Session {
    rooms: Arc<dyn RoomDirectory>,
    metrics: Arc<Metrics>,
    client: Client,
    own_tx: mpsc::Sender<Outgoing>,
    /// Handed to the room on join.
    room_tx: Option<mpsc::Sender<Arc<ServerMsg>>>,
    membership: Option<Membership>,
    /// The member's nickname came from its join token, and stays.
    named_by_token: bool,
    /// Refused messages in a row, and how many end the connection.
    strikes: u32,
    max_strikes: u32,
    general: TokenBucket,
    chat: TokenBucket,
}

impl Session {
    fn reply(&self, msg: ServerMsg) {
        let _ = self.own_tx.try_send(Outgoing::Msg(Arc::new(msg)));
    }

    /// Refuses a message. Too many refusals in a row end the connection.
    fn refuse(&mut self, code: ErrorCode, message: impl Into<String>) -> Flow {
        self.strikes += 1;
        if self.strikes >= self.max_strikes {
            return Flow::Violation(Box::new(ServerMsg::error(code, message)));
        }
        self.reply(ServerMsg::error(code, message));
        Flow::Continue
    }

    async fn frame(&mut self, frame: Message) -> Flow {
        let text = match frame {
            Message::Text(t) => t,
            Message::Binary(_) => {
                self.metrics.message(None);
                return self.refuse(ErrorCode::BinaryNotSupported, "send JSON text frames");
            }
            Message::Close(_) => return Flow::Close,
            Message::Ping(_) | Message::Pong(_) => return Flow::Continue,
        };
        let now = Instant::now();
        if !self.general.take(now) {
            return self.refuse(ErrorCode::RateLimited, "too many messages");
        }
        let parsed = ClientMsg::parse(text.as_str());
        self.metrics.message(parsed.as_ref().ok());
        let msg = match parsed {
            Ok(m) => m,
            Err((code, message)) => return self.refuse(code, message),
        };
        let flow = match msg {
            ClientMsg::Ping => {
                self.reply(ServerMsg::Pong);
                Flow::Continue
            }
            ClientMsg::Join {
                v,
                room,
                name,
                muted,
                key,
                password,
                topic,
                language,
                token,
            } => {
                let asked = Asked {
                    room,
                    name,
                    muted,
                    key,
                    password,
                    topic,
                    language,
                    token,
                };
                self.join(v, asked).await
            }
            _ if self.membership.is_none() => {
                return self.refuse(ErrorCode::NotJoined, "send join first");
            }
            ClientMsg::Leave => Flow::Leave,
            ClientMsg::Rename { .. } if self.named_by_token => {
                return self.refuse(
                    ErrorCode::RenameNotAllowed,
                    "your nickname is the one your join token gave",
                );
            }
            ClientMsg::Rename { name } => match validate_nickname(&name) {
                Ok(name) => self.pass_to_room(ClientMsg::Rename { name }).await,
                Err(e) => return self.refuse(e.code, e.message),
            },
            msg @ (ClientMsg::Chat { .. }
            | ClientMsg::ChatEdit { .. }
            | ClientMsg::ChatDelete { .. }
            | ClientMsg::ChatReact { .. }) => {
                // Every change to the chat draws on the chat's own budget.
                if !self.chat.take(now) {
                    return self.refuse(ErrorCode::RateLimited, "too many chat messages");
                }
                if let Err(e) = check_chat_msg(&msg) {
                    return self.refuse(e.code, e.message);
                }
                self.pass_to_room(msg).await
            }
            ClientMsg::Offer { sdp, sources } => {
                if let Some(Err(e)) = sources.as_ref().map(validate_sources) {
                    return self.refuse(e.code, e.message);
                }
                self.pass_to_room(ClientMsg::Offer { sdp, sources }).await
            }
            ClientMsg::LocalMutes { ids } => {
                if let Err(e) = validate_local_mutes(&ids) {
                    return self.refuse(e.code, e.message);
                }
                self.pass_to_room(ClientMsg::LocalMutes { ids }).await
            }
            ClientMsg::VideoView { tracks } => {
                if let Err(e) = validate_video_view(&tracks) {
                    return self.refuse(e.code, e.message);
                }
                self.pass_to_room(ClientMsg::VideoView { tracks }).await
            }
            ClientMsg::SetRoom {
                topic,
                language,
                locked,
            } => {
                let topic = topic.as_deref().map(validate_topic).transpose();
                let language = language.as_deref().map(validate_language).transpose();
                match (topic, language) {
                    (Ok(topic), Ok(language)) => {
                        let msg = ClientMsg::SetRoom {
                            topic,
                            language,
                            locked,
                        };
                        self.pass_to_room(msg).await
                    }
                    (Err(e), _) | (_, Err(e)) => return self.refuse(e.code, e.message),
                }
            }
            msg @ (ClientMsg::Answer { .. }
            | ClientMsg::Candidate { .. }
            | ClientMsg::Mute { .. }
            | ClientMsg::Video { .. }
            | ClientMsg::MuteMember { .. }
            | ClientMsg::RemoveMember { .. }
            | ClientMsg::MakeModerator { .. }
            | ClientMsg::ClearChat
            | ClientMsg::Hand { .. }
            | ClientMsg::LowerHand { .. }) => self.pass_to_room(msg).await,
        };
        if matches!(flow, Flow::Continue) {
            self.strikes = 0;
        }
        flow
    }

    async fn pass_to_room(&mut self, msg: ClientMsg) -> Flow {
        match &self.membership {
            Some(m) if m.send(msg).await => Flow::Continue,
            _ => Flow::Close,
        }
    }

    async fn join(&mut self, v: u32, asked: Asked) -> Flow {
        let Asked {
            room,
            name,
            muted,
            key,
            password,
            topic,
            language,
            token,
        } = asked;
        let token_named = token.is_some();
        if self.membership.is_some() {
            return self.refuse(ErrorCode::AlreadyJoined, "already in a room");
        }
        if v != PROTOCOL_VERSION {
            return self.refuse(
                ErrorCode::UnsupportedVersion,
                format!("this server speaks version {PROTOCOL_VERSION}"),
            );
        }
        // With a token, the room, nickname and role are the token's; a room named beside it
        // must be the same.
        let (room, name, moderator) = match token {
            Some(token) => match self.client.tokens.check(&token, SystemTime::now()) {
                Ok(grant) if room.is_empty() || room == grant.room => {
                    (grant.room, grant.name, grant.moderator)
                }
                Ok(_) => {
                    return self.refuse(ErrorCode::TokenInvalid, "the token is not valid");
                }
                Err(r) => return self.refuse(r.code, r.message),
            },
            None if self.client.tokens.required() => {
                return self.refuse(
                    ErrorCode::TokenRequired,
                    "this server takes joins with a token only",
                );
            }
            None => {
                if let Err(e) = validate_room_name(&room) {
                    return self.refuse(e.code, e.message);
                }
                match validate_nickname(&name) {
                    Ok(n) => (room, n, false),
                    Err(e) => return self.refuse(e.code, e.message),
                }
            }
        };
        let key = key.as_deref();
        if let Some(Err(e)) = key.map(validate_client_key) {
            return self.refuse(e.code, e.message);
        }
        if let Some(Err(e)) = password.as_deref().map(validate_password) {
            return self.refuse(e.code, e.message);
        }
        let topic = match validate_topic(topic.as_deref().unwrap_or_default()) {
            Ok(t) => t,
            Err(e) => return self.refuse(e.code, e.message),
        };
        let language = match validate_language(language.as_deref().unwrap_or_default()) {
            Ok(l) => l,
            Err(e) => return self.refuse(e.code, e.message),
        };
        let ip = self.client.ip;
        if !self.client.admission.join(ip) {
            return self.refuse(
                ErrorCode::TooManyJoins,
                "too many joins from your address; try again in a moment",
            );
        }
        // Guessing a private room's password takes a join each, and wrong ones are counted
        // per address: past its allowance, an address cannot try more for a while.
        if password.is_some() && !self.client.admission.may_guess(ip) {
            return self.refuse(
                ErrorCode::TooManyAttempts,
                "too many wrong passwords from your address; try again later",
            );
        }
        let Some(out) = self.room_tx.take() else {
            return Flow::Close;
        };
        let request = JoinRequest {
            tag: key.map(|k| member_tag(&room, k)),
            room,
            name,
            muted,
            out: out.clone(),
            host: self.client.host.clone(),
            password,
            topic,
            language,
            ip: self.client.admission.removal_key(ip),
            moderator,
        };
        let asked = Instant::now();
        let joined = self.rooms.join(request).await;
        self.metrics.join(asked.elapsed(), joined.is_ok());
        match joined {
            Ok(m) => {
                self.membership = Some(m);
                self.named_by_token = token_named;
                Flow::Continue
            }
            Err(r) => {
                if r.code == ErrorCode::WrongPassword {
                    self.client.admission.guessed_wrong(ip);
                }
                self.room_tx = Some(out);
                self.refuse(r.code, r.message)
            }
        }
    }
}

/// What a `join` asked for, before it is checked.
struct Asked {
    room: String,
    name: String,
    muted: bool,
    key: Option<String>,
    password: Option<String>,
    topic: Option<String>,
    language: Option<String>,
    token: Option<String>,
}
