//! One participant: a member's media session in this core — their str0m `Rtc`, the up-tracks
//! they publish, the down-tracks they receive, the negotiation with them, and whether their
//! media is connected.

use std::time::Instant;

use slab::Slab;
use str0m::Rtc;
use str0m::media::Mid;

use free4chat_ids::{MemberId, RoomId, TrackKind};

use crate::downtrack::{DownTrack, DownTrackKey, Negotiated};
use crate::negotiation::Negotiation;
use crate::speaking::SpeakingDetector;
use crate::uptrack::UpTrackKey;

/// The most tracks one participant may publish (microphone, camera, screen, with room to
/// spare). Further m-lines are negotiated but not forwarded, so one member cannot make every
/// other member's session grow.
pub const MAX_PUBLISHED_TRACKS: usize = 4;

pub struct Participant {
    pub member: MemberId,
    pub room: RoomId,
    pub rtc: Rtc,
    /// Our ICE ufrag for this participant: STUN from a new address is matched by it.
    pub ufrag: String,
    pub published: Vec<UpTrackKey>,
    pub downs: Slab<DownTrack>,
    pub negotiation: Negotiation,
    pub speaking: SpeakingDetector,
    pub connection: Connection,
}

/// Whether a participant's media is connected, and since when it is not.
#[derive(Debug, Clone, Copy)]
pub struct Connection {
    pub created: Instant,
    pub connected: bool,
    /// Since when ICE has been disconnected, if it is.
    pub disconnected_since: Option<Instant>,
}

impl Participant {
    pub fn new(
        member: MemberId,
        room: RoomId,
        rtc: Rtc,
        ufrag: String,
        now: Instant,
    ) -> Participant {
        Participant {
            member,
            room,
            rtc,
            ufrag,
            published: Vec::new(),
            downs: Slab::new(),
            negotiation: Negotiation::default(),
            speaking: SpeakingDetector::default(),
            connection: Connection {
                created: now,
                connected: false,
                disconnected_since: None,
            },
        }
    }

    /// Wants to receive `publisher`'s track `mid`. Returns the new down-track, or `None` if one
    /// for that track exists already.
    pub fn subscribe(
        &mut self,
        publisher: MemberId,
        mid: Mid,
        kind: TrackKind,
    ) -> Option<DownTrackKey> {
        let exists = self
            .downs
            .iter()
            .any(|(_, d)| d.publisher == publisher && d.source_mid == mid && !d.is_stopping());
        if exists {
            return None;
        }
        Some(DownTrackKey(
            self.downs.insert(DownTrack::new(publisher, mid, kind)),
        ))
    }

    /// No longer receives on down-track `key`: one not yet negotiated goes at once, a
    /// negotiated one has its m-line stopped by the next offer.
    pub fn unsubscribe(&mut self, key: DownTrackKey) {
        let Some(down) = self.downs.get_mut(key.0) else {
            return;
        };
        match down.state {
            Negotiated::ToOpen => {
                self.downs.remove(key.0);
            }
            Negotiated::Opening(m) | Negotiated::Open(m) => down.state = Negotiated::ToStop(m),
            Negotiated::ToStop(_) | Negotiated::Stopping(_) => {}
        }
    }

    /// The down-track sent on `mid`, with its up-track's publisher and mid.
    pub fn down_on(&self, mid: Mid) -> Option<&DownTrack> {
        self.downs
            .iter()
            .map(|(_, d)| d)
            .find(|d| d.open_mid() == Some(mid))
    }

    /// Builds a server offer for what changed, if anything did and one may be made now.
    pub fn make_offer(&mut self) -> Option<String> {
        self.negotiation.make_offer(&mut self.rtc, &mut self.downs)
    }
}
