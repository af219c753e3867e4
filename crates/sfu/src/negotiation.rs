//! The SDP negotiation with one participant. The client offers first (its microphone); the
//! server answers, then makes its own offers whenever what the participant should receive
//! changes: each down-track becomes a `sendonly` m-line, and a down-track whose up-track is gone
//! has its m-line stopped. At most one server offer is outstanding; the server is the impolite
//! side of perfect negotiation (a client offer arriving meanwhile is ignored, and the client
//! rolls back).

use slab::Slab;
use str0m::Rtc;
use str0m::change::SdpPendingOffer;
#[cfg(test)]
use str0m::media::Mid;
use str0m::media::{Direction, MediaKind};

use free4chat_ids::TrackKind;

use crate::downtrack::{DownTrack, Feed, Negotiated};

#[derive(Default)]
pub struct Negotiation {
    /// Our outstanding offer, if any.
    pending: Option<SdpPendingOffer>,
    /// Whether the participant's first offer was answered: only then do we offer.
    answered: bool,
}

impl Negotiation {
    pub fn first_offer_answered(&mut self) {
        self.answered = true;
    }

    pub fn is_outstanding(&self) -> bool {
        self.pending.is_some()
    }

    /// Builds a server offer for what changed in `downs`, if anything did, the first offer was
    /// answered and no offer is outstanding. Returns the offer's SDP text.
    pub fn make_offer(&mut self, rtc: &mut Rtc, downs: &mut Slab<DownTrack>) -> Option<String> {
        if !self.answered || self.pending.is_some() {
            return None;
        }
        let mut api = rtc.sdp_api();
        for (_, down) in downs.iter_mut() {
            match down.state {
                Negotiated::ToOpen => {
                    let kind = match down.kind {
                        TrackKind::Audio => MediaKind::Audio,
                        TrackKind::Video => MediaKind::Video,
                    };
                    // Each track its own msid stream, so that a member's camera and screen
                    // arrive apart: `<publisher>-<mid>` names both the stream and the track;
                    // a slot is `slot-<index>`.
                    let name = match down.feed {
                        Feed::Track { publisher, mid } => format!("{publisher}-{mid}"),
                        Feed::Slot { index, .. } => format!("slot-{index}"),
                    };
                    let mid = api.add_media(
                        kind,
                        Direction::SendOnly,
                        Some(name.clone()),
                        Some(name),
                        None,
                    );
                    down.state = Negotiated::Opening(mid);
                }
                Negotiated::ToStop(mid) => {
                    api.stop_media(mid);
                    down.state = Negotiated::Stopping(mid);
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

    /// Takes the outstanding offer, to apply the participant's answer to it.
    pub fn take_pending(&mut self) -> Option<SdpPendingOffer> {
        self.pending.take()
    }

    /// Our offer was answered (`accepted`) or abandoned: settles the down-tracks accordingly,
    /// removing those whose m-line is now stopped.
    pub fn settle(downs: &mut Slab<DownTrack>, accepted: bool) {
        for (_, down) in downs.iter_mut() {
            down.state = match (down.state, accepted) {
                (Negotiated::Opening(m), true) => Negotiated::Open(m),
                (Negotiated::Opening(_), false) => Negotiated::ToOpen,
                (Negotiated::Stopping(m), false) => Negotiated::ToStop(m),
                (s, _) => s,
            };
        }
        if accepted {
            downs.retain(|_, d| !matches!(d.state, Negotiated::Stopping(_)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settling_opens_what_was_offered_and_forgets_what_was_stopped() {
        let mut downs = Slab::new();
        let open = downs.insert(DownTrack::slot(0));
        let stop = downs.insert(DownTrack::slot(1));
        let back = downs.insert(DownTrack::slot(2));
        downs[open].state = Negotiated::Opening(Mid::from("3"));
        downs[stop].state = Negotiated::Stopping(Mid::from("4"));
        downs[back].state = Negotiated::Opening(Mid::from("5"));
        Negotiation::settle(&mut downs, false);
        assert_eq!(
            downs[open].state,
            Negotiated::ToOpen,
            "an abandoned offer is redone"
        );
        assert_eq!(downs[stop].state, Negotiated::ToStop(Mid::from("4")));
        downs[open].state = Negotiated::Opening(Mid::from("3"));
        downs[stop].state = Negotiated::Stopping(Mid::from("4"));
        Negotiation::settle(&mut downs, true);
        assert_eq!(downs[open].state, Negotiated::Open(Mid::from("3")));
        assert!(!downs.contains(stop));
    }
}
