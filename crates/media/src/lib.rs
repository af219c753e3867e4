//! The free4chat SFU.
//!
//! - [`Sfu`] is the sans-I/O core: fed with commands, datagrams and time, it yields datagrams
//!   to send, events for the signalling layer, and the next time it wants to be woken. It owns
//!   every member's str0m `Rtc`, decides what each member receives, and forwards media.
//! - [`worker`] is the thin I/O shell: a thread that owns UDP sockets, TCP listeners and
//!   connections (ICE-TCP, RFC 6544 with RFC 4571 framing) and one `Sfu`, and talks to the
//!   signalling layer over channels.

mod forward;
mod peer;
pub mod priority;
pub mod residence;
mod sdp;
mod sfu;
mod speaking;
mod tcp;
mod udp;
pub mod worker;

pub use residence::Residence;
pub use sfu::{Outgoing, Prepared, Relay, SendNow, Sfu, SfuConfig, SfuStats};
pub use speaking::SpeakingDetector;

/// A member's identity, assigned by the signalling layer.
pub type PeerId = u64;
/// A room's identity, assigned by the signalling layer.
pub type RoomId = u64;

/// The kind of a media track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrackKind {
    Audio,
    Video,
}

/// What the signalling layer asks of the media core.
#[derive(Debug)]
pub enum MediaCmd {
    /// A new member with their first SDP offer. Answered with [`MediaEvent::Answer`], or
    /// [`MediaEvent::Refused`] (the member is then not added).
    AddPeer {
        room: RoomId,
        peer: PeerId,
        offer: String,
    },
    /// A later client offer (renegotiation).
    Offer { peer: PeerId, sdp: String },
    /// The client's answer to a [`MediaEvent::Offer`].
    Answer { peer: PeerId, sdp: String },
    /// A trickled remote ICE candidate line.
    Candidate { peer: PeerId, candidate: String },
    /// The member left: drop their media state and stop forwarding their tracks.
    RemovePeer { peer: PeerId },
    /// A member of `room` held by another worker publishes the track `track` (its id in
    /// [`MediaEvent::TrackPublished`]): this worker's members of the room receive it, from the
    /// packets that worker relays here.
    RemoteTrack {
        room: RoomId,
        peer: PeerId,
        track: String,
        kind: TrackKind,
    },
    /// A member of `room` held by another worker has gone: this worker's members stop
    /// receiving their tracks.
    RemotePeerGone { room: RoomId, peer: PeerId },
    /// The other workers (by index) that hold members of `room`: what this worker's members
    /// publish is relayed to each of them. Empty: the room lives here alone.
    RelayTo { room: RoomId, workers: Vec<usize> },
}

/// Refusals the media core reports to one member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaErrorCode {
    InvalidSdp,
    UnexpectedAnswer,
    InvalidCandidate,
    UnknownPeer,
}

/// What the media core tells the signalling layer. Every event concerns one member (`peer`) of
/// one room.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaEvent {
    /// The member's first offer was refused and no session was made; a later offer may
    /// try again.
    Refused { peer: PeerId, message: String },
    /// The answer to the member's offer.
    Answer { peer: PeerId, sdp: String },
    /// A server offer for the member to answer.
    Offer { peer: PeerId, sdp: String },
    /// Something the member sent was refused; the member's session goes on.
    Error {
        peer: PeerId,
        code: MediaErrorCode,
        message: String,
    },
    /// The member's media is connected (ICE and DTLS done).
    Connected { peer: PeerId },
    /// The member publishes a new track. `track` is its id within the member's session.
    TrackPublished {
        peer: PeerId,
        track: String,
        kind: TrackKind,
    },
    /// The member started or stopped speaking.
    Speaking { peer: PeerId, speaking: bool },
    /// The member's media state failed and was dropped; nobody else was affected.
    PeerFailed { peer: PeerId, reason: String },
}

impl MediaEvent {
    /// The member the event concerns.
    pub fn peer(&self) -> PeerId {
        match self {
            MediaEvent::Refused { peer, .. }
            | MediaEvent::Answer { peer, .. }
            | MediaEvent::Offer { peer, .. }
            | MediaEvent::Error { peer, .. }
            | MediaEvent::Connected { peer }
            | MediaEvent::TrackPublished { peer, .. }
            | MediaEvent::Speaking { peer, .. }
            | MediaEvent::PeerFailed { peer, .. } => *peer,
        }
    }
}
