//! A packet a participant published, made ready for subscribers once, and what workers hand
//! each other.

use std::sync::Arc;
use std::time::Instant;

use free4chat_ids::{MemberId, RoomId, TrackKind};
use str0m::format::PayloadParams;
use str0m::media::{Mid, Pt};
use str0m::rtp::{ExtensionValues, SeqNo, Ssrc, Vp8Descriptor};

use crate::forward::Recovered;
use crate::video::clock::SenderClock;
use crate::video::layer::LayerPacket;
use crate::video::vp9::Vp9Numbering;

/// A packet a participant published, made ready for subscribers: its up-track, codec, what its
/// RED redundancy recovered, and what each copy carries over. Made once, by the worker that
/// holds the publisher; written to subscribers there and, relayed, in the other workers that
/// hold members of the room.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub(crate) room: RoomId,
    /// The up-track: its publisher and mid.
    pub(crate) src: MemberId,
    pub(crate) mid: Mid,
    /// The publisher's source id in their room: the CSRC a slot's packets carry.
    pub(crate) csrc: u32,
    pub(crate) kind: TrackKind,
    pub(crate) codec: PreparedCodec,
    pub(crate) header: PreparedHeader,
    /// Video: the packet's simulcast layer, and its VP8 payload descriptor.
    pub(crate) video: PreparedVideo,
    /// When the publisher's worker received it.
    pub(crate) received: Instant,
    pub(crate) payload: Arc<[u8]>,
}

/// The packet's codec in the publisher's session, and its RED framing.
#[derive(Debug, Clone)]
pub(crate) struct PreparedCodec {
    pub params: PayloadParams,
    /// Whether the payload is RED (RFC 2198) around `params`' codec.
    pub red: bool,
    /// RED: where the primary block starts in the payload, and whether it is new.
    pub primary: Option<(usize, bool)>,
    pub recovered: Vec<Recovered>,
}

/// The source RTP header fields a copy is made from.
#[derive(Debug, Clone)]
pub(crate) struct PreparedHeader {
    pub ssrc: Ssrc,
    pub pt: Pt,
    pub seq: SeqNo,
    pub rtp_time: u32,
    pub marker: bool,
    /// The extensions every subscriber's copy carries over.
    pub ext: ExtensionValues,
}

/// What a video packet carries for the viewers' layer choice and picture numbering.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PreparedVideo {
    pub layer: LayerPacket,
    /// The VP8 payload descriptor, parsed once.
    pub vp8: Option<Vp8Descriptor>,
    /// The VP9 payload descriptor's numbering, parsed once.
    pub vp9: Option<Vp9Numbering>,
    /// Its track's layers' bitrates as the publisher's worker measures them (bits/s, 0: not
    /// yet), for the viewers' bandwidth allocation on other workers.
    pub bitrates: [u32; 3],
    /// The layer's latest sender report, to align timestamps across a switch.
    pub sender: Option<SenderClock>,
}

impl Prepared {
    pub fn room(&self) -> RoomId {
        self.room
    }
}

/// What one worker hands another that holds members of the same room.
#[derive(Debug)]
pub enum Relay {
    /// A packet published by a participant of the sending worker, for the receiver's
    /// subscribers.
    Packet(Box<Prepared>),
    /// A subscriber in the sending worker asks for a keyframe of `src`'s track `mid` (of a
    /// simulcast track: of no layer in particular, which asks for none).
    Keyframe { src: MemberId, mid: Mid },
    /// A subscriber in the sending worker asks for a keyframe of simulcast layer `layer` (its
    /// index, lowest first) of `src`'s track `mid`.
    LayerKeyframe { src: MemberId, mid: Mid, layer: u8 },
}

impl Relay {
    /// The room of a relayed packet; a keyframe request names none.
    pub fn room(&self) -> Option<RoomId> {
        match self {
            Relay::Packet(p) => Some(p.room),
            Relay::Keyframe { .. } | Relay::LayerKeyframe { .. } => None,
        }
    }

    /// When the packet reached the server, for a relayed packet.
    pub fn received(&self) -> Option<Instant> {
        match self {
            Relay::Packet(p) => Some(p.received),
            Relay::Keyframe { .. } | Relay::LayerKeyframe { .. } => None,
        }
    }
}
