//! The free4chat signalling protocol: every JSON message that crosses the `/ws` WebSocket,
//! and the validation of everything a client may send.
//!
//! `docs/protocol.md` documents the same messages for client authors; keep the two in step.
//! Nothing here does I/O: the server and the test client both build on these types.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

mod chat;
mod validate;

pub use chat::{
    ChatMessage, MAX_REACTORS, REACTIONS, Reaction, Reactor, check_chat_msg, validate_reaction,
};

pub use validate::{
    ValidationError, validate_chat_text, validate_client_key, validate_client_ref,
    validate_language, validate_local_mutes, validate_nickname, validate_password,
    validate_room_name, validate_sources, validate_topic, validate_video_view,
};

/// The protocol version this crate speaks. A `join` with another version is refused.
pub const PROTOCOL_VERSION: u32 = 1;

/// The largest WebSocket message the server accepts, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// The largest chat message, in characters (Unicode scalar values).
pub const MAX_CHAT_CHARS: usize = 2_000;
/// The longest nickname, in characters (Unicode scalar values).
pub const MAX_NICKNAME_CHARS: usize = 32;

/// How many chat messages a room keeps for those who join later.
pub const CHAT_HISTORY_LEN: usize = 100;

/// The most members a `local_mutes` may name: more than a room holds.
pub const MAX_LOCAL_MUTES: usize = 1024;

/// The most members `joined` lists itself; the others follow in `more_members` pages of this
/// many, so that joining a room of hundreds is a few small messages rather than one large one.
pub const MEMBER_PAGE: usize = 200;

/// The most entries an offer's `sources` may hold: far more m-lines than a member sends.
pub const MAX_SOURCES: usize = 16;

/// The longest mid an offer's `sources` may name, in bytes (str0m's limit for a mid).
pub const MAX_MID_LEN: usize = 16;

/// The most video tracks one `video_view` may name: more than a room shows at once.
pub const MAX_VIDEO_VIEW: usize = 64;

/// The largest tile side a `video_view` may give, in device pixels (an 8K screen's width and
/// then some).
pub const MAX_TILE_SIDE: u32 = 16_384;

/// The longest room password, in characters (Unicode scalar values).
pub const MAX_PASSWORD_CHARS: usize = 64;
/// The longest room topic, in characters (Unicode scalar values).
pub const MAX_TOPIC_CHARS: usize = 80;
/// The longest language tag, in bytes.
pub const MAX_LANGUAGE_LEN: usize = 16;

pub use free4chat_ids::{MemberId, RoomId, TrackKind, TrackSource};

/// Messages a client sends. `<&'static str>::from(&msg)` is its `type` (what metrics count
/// it by).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[strum(serialize_all = "snake_case")]
pub enum ClientMsg {
    /// Enter a room. Must be the first message on a connection, and is sent once.
    Join {
        /// Must equal [`PROTOCOL_VERSION`].
        v: u32,
        /// The room; may be left out with a `token`, which names it.
        #[serde(default)]
        room: String,
        /// The nickname; left out with a `token`, which names the member.
        #[serde(default)]
        name: String,
        #[serde(default)]
        muted: bool,
        /// The client's own key, which it keeps between visits and shows nobody: 22–64 of
        /// `[A-Za-z0-9_-]` ([`validate_client_key`]). The room derives the member's `tag` from
        /// it, so that others know them again when they come back on a new connection.
        #[serde(default)]
        key: Option<String>,
        /// A private room's password ([`validate_password`]). The member who makes the room
        /// sets it: the room is then never listed, and takes only those who give it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password: Option<String>,
        /// The room's topic, when this join makes the room ([`validate_topic`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        topic: Option<String>,
        /// The room's language, when this join makes the room ([`validate_language`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        language: Option<String>,
        /// A join token signed by the application that embeds the rooms (a JWT, see
        /// `docs/embedding.md`): it names the room, the member's nickname and role, and the
        /// member joins as it says.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
    },
    /// An SDP offer: the client's first offer, or a renegotiation the client starts.
    Offer {
        sdp: String,
        /// What each of the offer's sending m-lines carries, by mid. Mids left out take the
        /// default of their kind (see [`TrackSource::default_for`]). Checked with
        /// [`validate_sources`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sources: Option<Sources>,
    },
    /// The client's answer to a server [`ServerMsg::Offer`].
    Answer { sdp: String },
    /// A trickled ICE candidate (the `candidate` attribute line, with or without `a=`).
    /// An empty string means end of candidates.
    Candidate { candidate: String },
    /// The member's own microphone state, shown to everyone.
    Mute { muted: bool },
    /// The members this member does not want to hear ("mute for me"): the whole list, which
    /// replaces the last one. The server keeps them off this member's audio slots. At most
    /// [`MAX_LOCAL_MUTES`] ids.
    LocalMutes { ids: Vec<MemberId> },
    /// The member's camera and screen share: whether each sends now, shown to everyone. A
    /// track turned off keeps its m-line (the browser's sender has no track), so turning it on
    /// again renegotiates nothing.
    Video { camera: bool, screen: bool },
    /// How this member shows others' video tracks: for each track named, the size of its tile
    /// in device pixels (`0 × 0`: not shown). The server sends each track's layer that fits its
    /// tile, and nothing of a track not shown. A track never named is sent at its best. At most
    /// [`MAX_VIDEO_VIEW`] tracks ([`validate_video_view`]).
    VideoView { tracks: Vec<TileView> },
    /// Change the member's nickname.
    Rename { name: String },
    /// A chat message. `client_ref` comes back in the acknowledgement. `reply_to`: the `seq`
    /// of the message it answers, which must be in the room's chat.
    Chat {
        text: String,
        #[serde(default)]
        client_ref: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<u64>,
    },
    /// A moderator changes the room: its topic, its language (`""` clears either), whether it
    /// takes new members. Fields left out stay as they are.
    SetRoom {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        topic: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        language: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        locked: Option<bool>,
    },
    /// A moderator mutes a member for everyone (`muted: false` lifts it).
    MuteMember { id: MemberId, muted: bool },
    /// A moderator removes a member, who cannot come back for a while.
    RemoveMember { id: MemberId },
    /// A moderator makes another member a moderator too.
    MakeModerator { id: MemberId },
    /// A moderator clears the room's chat, for everyone.
    ClearChat,
    /// The member raises or lowers their own hand.
    Hand { raised: bool },
    /// A moderator lowers a member's hand.
    LowerHand { id: MemberId },
    /// A new text for one of the member's own messages (`seq`), checked as chat text is.
    ChatEdit { seq: u64, text: String },
    /// Deletes one of the member's own messages (`seq`): its text and reactions go, its
    /// place in the chat stays, marked deleted.
    ChatDelete { seq: u64 },
    /// Adds (`on`) or takes back the member's reaction `emoji`, one of [`REACTIONS`], to
    /// message `seq`.
    ChatReact { seq: u64, emoji: String, on: bool },
    /// Leave the room; the server closes the connection after `bye`.
    Leave,
    /// Keep-alive; answered with `pong`.
    Ping,
}

/// A member of a room as others see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub id: MemberId,
    pub name: String,
    pub muted: bool,
    pub speaking: bool,
    /// The member's source id in the room: the CSRC that names them on audio slots
    /// (`RTCRtpReceiver.getContributingSources()`). Unique in the room for its life.
    #[serde(default)]
    pub source: u32,
    /// Who the member is beyond this connection, if their client sent a key: the same for the
    /// same key in the same room, whatever the connection (32 hex digits). A room's other
    /// members cannot learn the key from it, and it differs from room to room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Their camera sends now ([`ClientMsg::Video`]).
    #[serde(default, skip_serializing_if = "is_false")]
    pub camera: bool,
    /// Their screen share sends now.
    #[serde(default, skip_serializing_if = "is_false")]
    pub screen: bool,
}

/// The size at which a member shows one video track ([`ClientMsg::VideoView`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TileView {
    /// The publishing member (as in [`Track`]).
    pub peer: MemberId,
    /// The track's id in the publisher's session ([`Track::id`]).
    pub id: String,
    /// The tile's width in device pixels, at most [`MAX_TILE_SIDE`].
    pub width: u32,
    /// The tile's height in device pixels, at most [`MAX_TILE_SIDE`].
    pub height: u32,
}

/// A room's topic, language and state, as its members see it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomInfo {
    /// What the room is about (empty: nothing said).
    #[serde(default)]
    pub topic: String,
    /// The language spoken (a BCP 47 tag such as `en` or `pt-BR`; empty: not said).
    #[serde(default)]
    pub language: String,
    /// Made with a password: never listed, joined only with the password.
    #[serde(default)]
    pub private: bool,
    /// A moderator locked it: nobody new gets in.
    #[serde(default)]
    pub locked: bool,
}

/// An offer's declaration of what its sending m-lines carry: mid → source.
pub type Sources = BTreeMap<String, TrackSource>;

/// A track a member publishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Track {
    /// The publishing member (on the wire `peer`, the protocol's first name for a member).
    #[serde(rename = "peer")]
    pub member: MemberId,
    /// The track's id within the publishing member's session (its `mid` there).
    pub id: String,
    pub kind: TrackKind,
    /// What the track carries, as its publisher declared it in `offer`'s `sources`.
    #[serde(default)]
    pub source: TrackSource,
    /// The `msid` stream id of this track in every SDP the server sends
    /// ([`Track::stream_id`]), so a browser's `track` event finds it by `streams[0].id`. Each
    /// track has a stream of its own: a member's camera and screen arrive apart.
    #[serde(default)]
    pub stream: String,
}

impl Track {
    /// A track of `member` with the id `id` in their session.
    pub fn new(member: MemberId, id: String, kind: TrackKind, source: TrackSource) -> Track {
        let stream = Track::stream_id(member, &id);
        Track {
            member,
            id,
            kind,
            source,
            stream,
        }
    }

    /// The `msid` stream id the server gives track `id` of `member`: `"<member>-<id>"`.
    pub fn stream_id(member: MemberId, id: &str) -> String {
        format!("{member}-{id}")
    }
}

/// A STUN or TURN server, in the shape of WebRTC's `RTCIceServer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    /// `turn:`, `turns:` or `stun:` URLs, e.g. `turn:example.com:3478?transport=udp`.
    pub urls: Vec<String>,
    /// For TURN: `<expiry-unix-time>:<member-id>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// For TURN: `base64(HMAC-SHA1(secret, username))`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// Why the server ends a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ByeReason {
    /// The client sent `leave`.
    Left,
    /// The server is shutting down.
    ServerShutdown,
    /// The client broke the protocol badly or repeatedly; see the preceding `error`.
    ProtocolViolation,
    /// The member's media session failed; reconnecting joins afresh.
    MediaFailed,
    /// The member was removed from the room (by an operator or a moderator).
    Removed,
    /// The room was closed (by an operator); everyone in it is told.
    RoomClosed,
}

/// How a member's connection looks from the server: the worst of the loss each way, the
/// round-trip time and the jitter of their audio; `unconnected` when their media has not
/// connected a few seconds after they joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quality {
    Good,
    Fair,
    Poor,
    Unconnected,
}

/// One member's entry in a `quality` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberQuality {
    pub id: MemberId,
    pub quality: Quality,
}

/// Messages the server sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    /// The answer to `join`.
    Joined {
        v: u32,
        room: String,
        /// This member's id.
        id: MemberId,
        /// This member's nickname in the room: the one asked for, or, if another member of the
        /// room has it already, that name with a suffix (" (2)", …), so that nobody in a room
        /// can pass for someone else.
        #[serde(default)]
        name: String,
        /// This member's tag (see [`Member::tag`]), if their client sent a key.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tag: Option<String>,
        /// The others already in the room: the first [`MEMBER_PAGE`] of them; the rest follow
        /// in `more_members` messages.
        members: Vec<Member>,
        /// How many others are in the room, all pages together.
        #[serde(default)]
        members_total: usize,
        /// How many audio slots this member's connection receives the room's speakers on (its
        /// first server offer adds them, as `sendonly` m-lines with msid streams
        /// `slot-0`…); 0: an m-line per audio track instead.
        #[serde(default)]
        audio_slots: usize,
        /// Tracks the others already publish.
        tracks: Vec<Track>,
        /// The room's recent chat, oldest first, at most [`CHAT_HISTORY_LEN`].
        chat: Vec<ChatMessage>,
        /// STUN/TURN servers for this member's peer connection, with credentials issued to
        /// this member alone; pass them to `RTCPeerConnection` as `iceServers`. Empty when
        /// the server is reachable directly and no relay is configured.
        #[serde(default)]
        ice_servers: Vec<IceServer>,
        /// The room's topic, language and state.
        #[serde(default)]
        room_info: RoomInfo,
        /// The room's moderators (this member too, if they are one).
        #[serde(default)]
        moderators: Vec<MemberId>,
        /// Raised hands, in the order raised.
        #[serde(default)]
        hands: Vec<MemberId>,
    },
    /// More of the members already in the room, after `joined`.
    MoreMembers {
        members: Vec<Member>,
    },
    MemberJoined {
        member: Member,
    },
    MemberLeft {
        id: MemberId,
    },
    MemberRenamed {
        id: MemberId,
        name: String,
    },
    /// A member's microphone state changed (including one's own, as confirmation).
    Mute {
        id: MemberId,
        muted: bool,
        /// Muted for everyone by the server's operator or a moderator: nothing the member sends
        /// is forwarded, and they cannot unmute until it is lifted (sent again with
        /// `forced: false`).
        #[serde(default, skip_serializing_if = "is_false")]
        forced: bool,
    },
    /// A member's camera or screen share was turned on or off (including one's own, as
    /// confirmation).
    Video {
        id: MemberId,
        camera: bool,
        screen: bool,
    },
    /// The simulcast layers of your video track `track` (its id, your mid) that anyone watches
    /// now, by rid (`q`, `h`, `f`): send only these (`RTCRtpSender.setParameters`, each
    /// encoding's `active`), and resume any of the others when a later message names it.
    VideoLayers {
        track: String,
        active: Vec<String>,
    },
    /// Fresh STUN/TURN credentials for this member's peer connection, sent before those it
    /// has expire, for as long as it stays in the room; pass them to
    /// `RTCPeerConnection.setConfiguration` as `iceServers`. Shaped as `joined`'s.
    IceServers {
        ice_servers: Vec<IceServer>,
    },
    /// A notice from the server's operator to everyone in the room.
    Notice {
        text: String,
    },
    /// Who is speaking now (judged from the audio-level header extension): the whole set,
    /// sent when it changes, at most every 200 ms per room.
    Speakers {
        ids: Vec<MemberId>,
    },
    /// Members' connection quality as the server sees it: those whose level changed since
    /// the room's last `quality`, at most every 3 s per room; a member who just joined is sent
    /// everyone's. At most one entry per member of the room.
    Quality {
        members: Vec<MemberQuality>,
    },
    TrackAdded {
        track: Track,
    },
    TrackRemoved {
        track: Track,
    },
    /// The server's answer to a client offer.
    Answer {
        sdp: String,
    },
    /// A renegotiation the server starts (e.g. a new member's audio to receive).
    Offer {
        sdp: String,
    },
    /// A chat message from another member.
    Chat {
        message: ChatMessage,
    },
    /// The acknowledgement of the sender's own chat message, as stored.
    ChatAck {
        client_ref: Option<String>,
        message: ChatMessage,
    },
    /// The room's topic, language or state changed (a moderator's `set_room`).
    Room {
        info: RoomInfo,
    },
    /// The room's moderators now: the whole set.
    Moderators {
        ids: Vec<MemberId>,
    },
    /// Raised hands now, in the order raised: the whole queue.
    Hands {
        ids: Vec<MemberId>,
    },
    /// A moderator cleared the chat: forget every message shown.
    ChatCleared,
    /// A message of the room's chat changed (edited, deleted, reacted to): the whole message
    /// as it is now, to everyone, the member who changed it too.
    ChatUpdated {
        message: ChatMessage,
    },
    Pong,
    /// Something the client sent was refused. The connection stays open unless a `bye` follows.
    Error {
        code: ErrorCode,
        message: String,
    },
    /// The server ends this connection.
    Bye {
        reason: ByeReason,
    },
}

/// Stable error codes. Clients switch on these; the message is for humans.
/// `<&'static str>::from(code)` is the code as it is sent.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumIter,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON, or JSON that is not a known message with the right fields.
    BadMessage,
    /// Binary frames are not part of the protocol.
    BinaryNotSupported,
    /// A message over [`MAX_MESSAGE_BYTES`].
    MessageTooLarge,
    /// `join` with a version other than [`PROTOCOL_VERSION`].
    UnsupportedVersion,
    /// A message other than `join` (or `ping`) before joining.
    NotJoined,
    /// A second `join` on the same connection.
    AlreadyJoined,
    InvalidRoomName,
    InvalidNickname,
    /// A `join` whose `key` is not 22–64 of `[A-Za-z0-9_-]`.
    InvalidClientKey,
    /// The room has reached its member limit.
    RoomFull,
    /// The server has reached its room or member limit.
    ServerFull,
    /// SDP that does not parse, or offers nothing the server can use.
    InvalidSdp,
    /// An answer when no server offer is outstanding.
    UnexpectedAnswer,
    InvalidCandidate,
    ChatTooLong,
    ChatEmpty,
    InvalidClientRef,
    /// A `local_mutes` with more than [`MAX_LOCAL_MUTES`] ids.
    InvalidLocalMutes,
    /// An offer's `sources` with too many entries, or a mid that is empty, too long or not
    /// an SDP token.
    InvalidSources,
    /// A `video_view` naming more than [`MAX_VIDEO_VIEW`] tracks, a track id that is not a
    /// mid, or a tile side over [`MAX_TILE_SIDE`].
    InvalidVideoView,
    /// Too many messages; slow down. Repeated abuse ends the connection.
    RateLimited,
    /// The media session failed; the server drops this member.
    MediaFailed,
    /// The server is shutting down.
    ShuttingDown,
    /// In a cluster: what was asked needs the cluster's shared state (Redis) or another node,
    /// and neither can be reached now; try again in a moment.
    ClusterUnavailable,
    /// The page that opened the WebSocket is of an origin the server does not accept; the
    /// connection closes.
    OriginNotAllowed,
    /// The client's address (IPv4 address or IPv6 /64) has as many WebSockets open as it may;
    /// the connection closes.
    TooManyConnections,
    /// The client's address has joined too often of late; try again in a moment.
    TooManyJoins,
    /// `mute` with `muted: false` from a member the operator or a moderator muted for everyone.
    MutedForEveryone,
    /// A `join` to a private room without its password, or with another. Nothing else about
    /// the room is told.
    WrongPassword,
    /// The client's address gave too many wrong passwords of late; try again later.
    TooManyAttempts,
    /// A password that is empty, too long or holds control characters.
    InvalidPassword,
    /// A topic that is too long or holds control characters.
    InvalidTopic,
    /// A language that is not a short BCP 47 tag.
    InvalidLanguage,
    /// The room is locked: no new member gets in.
    RoomLocked,
    /// A moderator removed this client from the room a short while ago.
    RemovedFromRoom,
    /// Only a moderator may do that.
    NotModerator,
    /// The member named is not in the room.
    NoSuchMember,
    /// The server takes only joins with a token, and this one brought none.
    TokenRequired,
    /// A join token that is malformed, not signed with the server's key, or names a room,
    /// nickname or role that is not valid (nothing more is said).
    TokenInvalid,
    /// A join token, correctly signed, outside its validity period (`exp`, `nbf`).
    TokenExpired,
    /// `rename` from a member whose nickname its join token gave.
    RenameNotAllowed,
    /// A chat message named by `seq` (to reply to, edit, delete or react to) is not in the
    /// room's chat, or was deleted.
    ChatNotFound,
    /// An edit or delete of a chat message that another member wrote.
    NotAuthor,
    /// A reaction that is not one of [`REACTIONS`].
    InvalidReaction,
    /// A reaction that [`MAX_REACTORS`] members already gave the message.
    TooManyReactions,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl ClientMsg {
    /// Parses one text frame. Errors carry a stable code and a human message.
    pub fn parse(text: &str) -> Result<ClientMsg, (ErrorCode, String)> {
        if text.len() > MAX_MESSAGE_BYTES {
            return Err((
                ErrorCode::MessageTooLarge,
                format!("messages are limited to {MAX_MESSAGE_BYTES} bytes"),
            ));
        }
        serde_json::from_str(text).map_err(|e| (ErrorCode::BadMessage, e.to_string()))
    }
}

impl ServerMsg {
    pub fn error(code: ErrorCode, message: impl Into<String>) -> ServerMsg {
        ServerMsg::Error {
            code,
            message: message.into(),
        }
    }

    /// The JSON text of this message.
    pub fn to_json(&self) -> String {
        // Serialising these plain structs cannot fail: every map key is a string.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{\"type\":\"pong\"}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_metrics_give_a_message_or_code_is_the_one_on_the_wire() {
        use strum::IntoEnumIterator;
        for code in ErrorCode::iter() {
            let wire = serde_json::to_value(code).unwrap();
            assert_eq!(wire.as_str(), Some(<&str>::from(code)));
        }
        for text in [
            r#"{"type":"join","v":1,"room":"r","name":"n"}"#,
            r#"{"type":"offer","sdp":""}"#,
            r#"{"type":"answer","sdp":""}"#,
            r#"{"type":"candidate","candidate":""}"#,
            r#"{"type":"mute","muted":true}"#,
            r#"{"type":"local_mutes","ids":[]}"#,
            r#"{"type":"rename","name":"n"}"#,
            r#"{"type":"chat","text":"t"}"#,
            r#"{"type":"chat_edit","seq":1,"text":"t"}"#,
            r#"{"type":"chat_delete","seq":1}"#,
            r#"{"type":"chat_react","seq":1,"emoji":"👍","on":true}"#,
            r#"{"type":"leave"}"#,
            r#"{"type":"ping"}"#,
            r#"{"type":"set_room","locked":true}"#,
            r#"{"type":"mute_member","id":1,"muted":true}"#,
            r#"{"type":"remove_member","id":1}"#,
            r#"{"type":"make_moderator","id":1}"#,
            r#"{"type":"clear_chat"}"#,
            r#"{"type":"hand","raised":true}"#,
            r#"{"type":"lower_hand","id":1}"#,
            r#"{"type":"video","camera":true,"screen":false}"#,
            r#"{"type":"video_view","tracks":[{"peer":1,"id":"1","width":640,"height":360}]}"#,
        ] {
            let msg = ClientMsg::parse(text).unwrap();
            let wire: serde_json::Value = serde_json::from_str(text).unwrap();
            assert_eq!(wire["type"].as_str(), Some(<&str>::from(&msg)));
        }
    }

    #[test]
    fn join_parses_with_default_mute() {
        let m = ClientMsg::parse(r#"{"type":"join","v":1,"room":"practice","name":"Alice"}"#);
        assert_eq!(
            m,
            Ok(ClientMsg::Join {
                v: 1,
                room: "practice".into(),
                name: "Alice".into(),
                muted: false,
                key: None,
                password: None,
                topic: None,
                language: None,
                token: None,
            })
        );
    }

    #[test]
    fn unknown_type_and_fields_are_bad_messages() {
        for text in [
            r#"{"type":"explode"}"#,
            r#"{"type":"mute","muted":true,"extra":1}"#,
            r#"{"type":"mute","muted":"yes"}"#,
            r#"not json"#,
            r#"[]"#,
            "",
        ] {
            let err = ClientMsg::parse(text).unwrap_err();
            assert_eq!(err.0, ErrorCode::BadMessage, "{text}");
        }
    }

    #[test]
    fn an_offer_may_declare_its_sources_and_an_unknown_source_is_a_bad_message() {
        let m = ClientMsg::parse(r#"{"type":"offer","sdp":"v=0"}"#);
        assert_eq!(
            m,
            Ok(ClientMsg::Offer {
                sdp: "v=0".into(),
                sources: None
            })
        );
        let m = ClientMsg::parse(
            r#"{"type":"offer","sdp":"v=0","sources":{"0":"microphone","1":"camera","2":"screen"}}"#,
        );
        let sources: Sources = [
            ("0".to_string(), TrackSource::Microphone),
            ("1".to_string(), TrackSource::Camera),
            ("2".to_string(), TrackSource::Screen),
        ]
        .into();
        assert_eq!(
            m,
            Ok(ClientMsg::Offer {
                sdp: "v=0".into(),
                sources: Some(sources)
            })
        );
        for text in [
            r#"{"type":"offer","sdp":"v=0","sources":{"0":"tuba"}}"#,
            r#"{"type":"offer","sdp":"v=0","sources":{"0":1}}"#,
            r#"{"type":"offer","sdp":"v=0","sources":["microphone"]}"#,
        ] {
            assert_eq!(
                ClientMsg::parse(text).unwrap_err().0,
                ErrorCode::BadMessage,
                "{text}"
            );
        }
        // Without sources, an offer is written as before.
        let j = serde_json::to_string(&ClientMsg::Offer {
            sdp: "v=0".into(),
            sources: None,
        })
        .unwrap();
        assert_eq!(j, r#"{"type":"offer","sdp":"v=0"}"#);
    }

    #[test]
    fn a_track_names_its_source_and_its_own_stream() {
        let t = Track::new(
            MemberId(7),
            "1".into(),
            TrackKind::Video,
            TrackSource::Screen,
        );
        let j = ServerMsg::TrackAdded { track: t.clone() }.to_json();
        assert_eq!(
            j,
            r#"{"type":"track_added","track":{"peer":7,"id":"1","kind":"video","source":"screen","stream":"7-1"}}"#
        );
        // A track described without the new fields still reads.
        let old: Track = serde_json::from_str(r#"{"peer":7,"id":"0","kind":"audio"}"#).unwrap();
        assert_eq!(old.source, TrackSource::Microphone);
    }

    #[test]
    fn a_declared_source_that_cannot_carry_the_kind_gives_way_to_the_default() {
        use TrackKind::{Audio, Video};
        use TrackSource::{Camera, Microphone, Screen};
        assert_eq!(TrackSource::resolve(None, Audio), Microphone);
        assert_eq!(TrackSource::resolve(None, Video), Camera);
        assert_eq!(TrackSource::resolve(Some(Screen), Audio), Screen);
        assert_eq!(TrackSource::resolve(Some(Screen), Video), Screen);
        assert_eq!(TrackSource::resolve(Some(Camera), Audio), Microphone);
        assert_eq!(TrackSource::resolve(Some(Microphone), Video), Camera);
        assert_eq!(Screen.to_string(), "screen");
    }

    #[test]
    fn oversized_message_is_refused_before_parsing() {
        let text = format!(
            r#"{{"type":"chat","text":"{}"}}"#,
            "a".repeat(MAX_MESSAGE_BYTES)
        );
        assert_eq!(
            ClientMsg::parse(&text).unwrap_err().0,
            ErrorCode::MessageTooLarge
        );
    }

    #[test]
    fn server_messages_are_tagged_snake_case() {
        let j = ServerMsg::Speakers {
            ids: vec![MemberId(3), MemberId(4)],
        }
        .to_json();
        assert_eq!(j, r#"{"type":"speakers","ids":[3,4]}"#);
        let j = ServerMsg::Quality {
            members: vec![MemberQuality {
                id: MemberId(3),
                quality: Quality::Unconnected,
            }],
        }
        .to_json();
        assert_eq!(
            j,
            r#"{"type":"quality","members":[{"id":3,"quality":"unconnected"}]}"#
        );
        let j = ServerMsg::error(ErrorCode::InvalidRoomName, "x").to_json();
        assert!(j.contains(r#""code":"invalid_room_name""#), "{j}");
    }
}
