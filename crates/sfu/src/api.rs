//! What the signalling layer asks of the media core, and what the core tells it.

use free4chat_ids::{MemberId, RoomId, TrackKind};

/// A media worker, by its index among the node's workers.
pub type WorkerIndex = usize;

/// What the signalling layer asks of the media core.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaCmd {
    /// A new member of `room` with their first SDP offer. Answered with
    /// [`MediaEvent::Answer`], or [`MediaEvent::Refused`] (the member then has no session here).
    AddParticipant {
        room: RoomId,
        member: MemberId,
        /// The member's source id in the room: the CSRC of their packets on others' slots.
        source: u32,
        offer: String,
    },
    /// A later client offer (renegotiation).
    Offer { member: MemberId, sdp: String },
    /// The client's answer to a [`MediaEvent::Offer`].
    Answer { member: MemberId, sdp: String },
    /// A trickled remote ICE candidate line.
    Candidate { member: MemberId, candidate: String },
    /// The member left: drop their media session and stop forwarding their tracks.
    RemoveParticipant { member: MemberId },
    /// A member of `room` held by another worker publishes the track `track` (its id in
    /// [`MediaEvent::TrackPublished`]): this worker's members of the room receive it, from the
    /// packets that worker relays here.
    RemoteTrack {
        room: RoomId,
        member: MemberId,
        /// The member's source id in the room.
        source: u32,
        track: String,
        kind: TrackKind,
    },
    /// The members `member` does not want to hear: they are kept off its audio slots.
    LocalMutes {
        member: MemberId,
        muted: Vec<MemberId>,
    },
    /// An operator or moderator muted `member` for everyone (`silenced`), or lifted it: what
    /// they publish is forwarded to nobody, here or on other workers, until lifted.
    Silence { member: MemberId, silenced: bool },
    /// A member of `room` held by another worker has gone: this worker's members stop
    /// receiving their tracks.
    RemoteMemberGone { room: RoomId, member: MemberId },
    /// The other workers that hold members of `room`: what this worker's members publish is
    /// relayed to each of them. Empty: the room lives here alone.
    RelayTo {
        room: RoomId,
        workers: Vec<WorkerIndex>,
    },
    /// The room's members here have all been removed: forget what this worker kept about it.
    CloseRoom { room: RoomId },
    /// How much of `publisher`'s video track `track` (its id in
    /// [`MediaEvent::TrackPublished`]) the viewer `member` wants. The publisher may be held by
    /// another worker. Before any, a viewer gets [`VideoQuality::High`]; a command for a track
    /// not (yet) known here is kept for when it comes, while the viewer stays.
    ViewVideo {
        member: MemberId,
        publisher: MemberId,
        track: String,
        quality: VideoQuality,
        /// The track is a screen share: it comes first in the viewer's bandwidth.
        screen: bool,
    },
}

/// How much of one video track a viewer wants: the layer cap from the size of its tile.
/// Ordered from nothing to all; the bandwidth allocation calls it a cap
/// ([`crate::video::allocation::Cap`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum VideoQuality {
    /// Nothing of the track.
    Off,
    /// At most the lowest simulcast layer.
    Low,
    /// At most the middle layer.
    Medium,
    /// The best layer that flows: what a viewer gets until it says otherwise.
    #[default]
    High,
}

/// Refusals the media core reports to one member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaErrorCode {
    InvalidSdp,
    UnexpectedAnswer,
    InvalidCandidate,
    /// A command for a member with no media session here.
    NoSession,
}

/// What the media core tells the signalling layer. Every event concerns one member of one room.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaEvent {
    /// The member's first offer was refused and no session was made; a later offer may try
    /// again.
    Refused { member: MemberId, message: String },
    /// The answer to the member's offer.
    Answer { member: MemberId, sdp: String },
    /// A server offer for the member to answer.
    Offer { member: MemberId, sdp: String },
    /// Something the member sent was refused; the member's session goes on.
    Error {
        member: MemberId,
        code: MediaErrorCode,
        message: String,
    },
    /// The member's media is connected (ICE and DTLS done).
    Connected { member: MemberId },
    /// The first media packet from the member arrived (once per session).
    FirstMedia { member: MemberId },
    /// The member publishes a new track. `track` is its id within the member's session.
    TrackPublished {
        member: MemberId,
        track: String,
        kind: TrackKind,
    },
    /// The member started or stopped speaking.
    Speaking { member: MemberId, speaking: bool },
    /// The member's media session failed and was dropped; nobody else was affected.
    Failed { member: MemberId, reason: String },
    /// The viewer `member`'s bandwidth now allows it `layer` (an index, lowest first; `None`:
    /// nothing) of `publisher`'s video track `track`: what it needs of the publisher, for
    /// dynacast. Told when it changes.
    VideoAllocated {
        member: MemberId,
        publisher: MemberId,
        track: String,
        layer: Option<u8>,
    },
}

impl MediaEvent {
    /// The member the event concerns.
    pub fn member(&self) -> MemberId {
        match self {
            MediaEvent::Refused { member, .. }
            | MediaEvent::Answer { member, .. }
            | MediaEvent::Offer { member, .. }
            | MediaEvent::Error { member, .. }
            | MediaEvent::Connected { member }
            | MediaEvent::FirstMedia { member }
            | MediaEvent::TrackPublished { member, .. }
            | MediaEvent::Speaking { member, .. }
            | MediaEvent::Failed { member, .. }
            | MediaEvent::VideoAllocated { member, .. } => *member,
        }
    }
}
