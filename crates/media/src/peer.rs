//! One member's media session: their str0m `Rtc`, the tracks they publish, the tracks they
//! receive, and the state of the SDP negotiation with them.

use std::net::SocketAddr;
use std::time::Instant;

use str0m::Rtc;
use str0m::change::SdpPendingOffer;
use str0m::media::{Direction, MediaKind, Mid};
use str0m::net::Protocol;

use crate::forward;
use crate::speaking::SpeakingDetector;
use crate::{PeerId, RoomId, TrackKind};

/// A remote address with the transport it was seen on: a UDP and a TCP remote may share an
/// address and belong to different members.
pub type Remote = (Protocol, SocketAddr);

/// How many remote addresses one member may be known by at once (ICE can try several).
pub const MAX_ADDRS_PER_PEER: usize = 8;

/// A track the member sends to us.
#[derive(Debug)]
pub struct Published {
    pub mid: Mid,
    pub kind: TrackKind,
    pub last_keyframe_request: Option<Instant>,
    pub forwarding: forward::Source,
}

/// Where a subscription stands in the negotiation with its subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubState {
    /// Wanted; the next server offer adds an m-line for it.
    ToOpen,
    /// In an outstanding server offer.
    Negotiating(Mid),
    /// Negotiated: media is forwarded on this mid.
    Open(Mid),
    /// The source is gone; the next server offer stops the m-line.
    ToStop(Mid),
    /// Stopped in an outstanding server offer.
    NegotiatingStop(Mid),
}

/// A track of another member that this member receives.
#[derive(Debug)]
pub struct Subscription {
    pub source: PeerId,
    pub source_mid: Mid,
    pub kind: TrackKind,
    pub state: SubState,
    pub forwarding: forward::Sink,
}

impl Subscription {
    /// The mid on which media for this subscription is sent, once negotiated.
    pub fn open_mid(&self) -> Option<Mid> {
        match self.state {
            SubState::Open(m) => Some(m),
            _ => None,
        }
    }
}

pub struct Peer {
    pub id: PeerId,
    pub room: RoomId,
    pub rtc: Rtc,
    /// Our ICE ufrag for this member: STUN from a new address is matched by it.
    pub ufrag: String,
    /// Remote addresses this member has been seen at, oldest first.
    pub addrs: Vec<Remote>,
    pub published: Vec<Published>,
    pub subs: Vec<Subscription>,
    /// Our outstanding offer, if any.
    pub pending: Option<SdpPendingOffer>,
    pub speaking: SpeakingDetector,
    /// When `rtc` next wants `Input::Timeout`, as registered in the core's timer set.
    pub timeout: Instant,
    pub created: Instant,
    pub connected: bool,
    /// Whether the member's first offer was answered: only then do we offer.
    pub negotiated: bool,
    /// Since when ICE has been disconnected, if it is.
    pub disconnected_since: Option<Instant>,
}

impl Peer {
    pub fn new(id: PeerId, room: RoomId, rtc: Rtc, ufrag: String, now: Instant) -> Peer {
        Peer {
            id,
            room,
            rtc,
            ufrag,
            addrs: Vec::new(),
            published: Vec::new(),
            subs: Vec::new(),
            pending: None,
            speaking: SpeakingDetector::default(),
            timeout: now,
            created: now,
            connected: false,
            negotiated: false,
            disconnected_since: None,
        }
    }

    /// Wants to receive `source`'s track `mid`.
    pub fn subscribe(&mut self, source: PeerId, source_mid: Mid, kind: TrackKind) {
        let exists = self
            .subs
            .iter()
            .any(|s| s.source == source && s.source_mid == source_mid);
        if !exists {
            self.subs.push(Subscription {
                source,
                source_mid,
                kind,
                state: SubState::ToOpen,
                forwarding: forward::Sink::default(),
            });
        }
    }

    /// No longer receives anything from `source`.
    pub fn unsubscribe_all_from(&mut self, source: PeerId) {
        self.subs.retain_mut(|s| {
            if s.source != source {
                return true;
            }
            match s.state {
                SubState::ToOpen => false,
                SubState::Negotiating(m) | SubState::Open(m) => {
                    s.state = SubState::ToStop(m);
                    true
                }
                SubState::ToStop(_) | SubState::NegotiatingStop(_) => true,
            }
        });
    }

    /// Builds a server offer for what changed, if anything did and nothing is outstanding.
    /// Returns the offer's SDP text.
    pub fn make_offer(&mut self) -> Option<String> {
        if self.pending.is_some() {
            return None;
        }
        let mut api = self.rtc.sdp_api();
        for sub in &mut self.subs {
            match sub.state {
                SubState::ToOpen => {
                    let kind = match sub.kind {
                        TrackKind::Audio => MediaKind::Audio,
                        TrackKind::Video => MediaKind::Video,
                    };
                    let mid = api.add_media(
                        kind,
                        Direction::SendOnly,
                        Some(format!("{}-{}", sub.source, sub.source_mid)),
                        Some(format!("{}-{}", sub.source, sub.source_mid)),
                        None,
                    );
                    sub.state = SubState::Negotiating(mid);
                }
                SubState::ToStop(mid) => {
                    api.stop_media(mid);
                    sub.state = SubState::NegotiatingStop(mid);
                }
                _ => {}
            }
        }
        if !api.has_changes() {
            return None;
        }
        let (offer, pending) = api.apply()?;
        self.pending = Some(pending);
        Some(offer.to_sdp_string())
    }

    /// Our offer was answered (`accepted`) or abandoned: settle the subscriptions accordingly.
    pub fn settle_offer(&mut self, accepted: bool) {
        for sub in &mut self.subs {
            sub.state = match (sub.state, accepted) {
                (SubState::Negotiating(m), true) => SubState::Open(m),
                (SubState::Negotiating(_), false) => SubState::ToOpen,
                (SubState::NegotiatingStop(m), false) => SubState::ToStop(m),
                (s, _) => s,
            };
        }
        if accepted {
            self.subs
                .retain(|s| !matches!(s.state, SubState::NegotiatingStop(_)));
        }
    }

    /// Remembers a remote address; returns the one it displaced, if the list was full.
    pub fn remember_addr(&mut self, addr: Remote) -> Option<Remote> {
        if self.addrs.contains(&addr) {
            return None;
        }
        let evicted = if self.addrs.len() >= MAX_ADDRS_PER_PEER {
            Some(self.addrs.remove(0))
        } else {
            None
        };
        self.addrs.push(addr);
        evicted
    }
}
