//! One participant: a member's media session in this core — their str0m `Rtc`, the up-tracks
//! they publish, the down-tracks they receive, the negotiation with them, and whether their
//! media is connected.

use std::time::Instant;

use slab::Slab;
use str0m::Rtc;
use str0m::media::Mid;

use free4chat_ids::{MemberId, RoomId, TrackKind};

use crate::api::VideoQuality;
use crate::downtrack::{DownTrack, DownTrackKey, Negotiated};
use crate::negotiation::Negotiation;
use crate::quality::QualityTracker;
use crate::sfu::ViewerBandwidth;
use crate::speaking::SpeakingDetector;
use crate::uptrack::UpTrackKey;

/// The most tracks one participant may publish (microphone, camera, screen, with room to
/// spare). Further m-lines are negotiated but not forwarded, so one member cannot make every
/// other member's session grow.
pub const MAX_PUBLISHED_TRACKS: usize = 4;
/// The most members one participant may mute for itself: more than a room holds.
pub const MAX_LOCAL_MUTES: usize = 1024;
/// The most video tracks whose quality one participant chose that are remembered: more than
/// a room shows; the oldest choice is forgotten first.
pub const MAX_VIDEO_CHOICES: usize = 256;

pub struct Participant {
    pub member: MemberId,
    /// The member's source id in their room: the CSRC of their packets on others' slots.
    pub source: u32,
    pub room: RoomId,
    pub rtc: Rtc,
    /// Our ICE ufrag for this participant: STUN from a new address is matched by it.
    pub ufrag: String,
    pub published: Vec<UpTrackKey>,
    pub downs: Slab<DownTrack>,
    /// The audio slots among `downs`, in order.
    pub slots: Vec<DownTrackKey>,
    /// The members this participant does not want to hear (sorted, at most
    /// [`MAX_LOCAL_MUTES`]).
    pub local_mutes: Vec<MemberId>,
    /// Muted for everyone by an operator or moderator: nothing they publish is forwarded.
    pub silenced: bool,
    /// How much of each video track (publisher, mid) this viewer wants, as it last said, and
    /// whether the track is a screen share, also
    /// of tracks not received yet (at most [`MAX_VIDEO_CHOICES`]).
    pub video_choices: Vec<((MemberId, Mid), (VideoQuality, bool))>,
    pub negotiation: Negotiation,
    pub speaking: SpeakingDetector,
    pub connection: Connection,
    /// The session's latest figures, as str0m reports them.
    pub quality: QualityTracker,
    /// Its bandwidth estimate, shared among the video tracks it is sent.
    pub bandwidth: ViewerBandwidth,
    /// Whether its first offer had a video section (it came to publish video).
    pub offered_video: bool,
}

/// Whether a participant's media is connected, and since when it is not.
#[derive(Debug, Clone, Copy)]
pub struct Connection {
    pub created: Instant,
    pub connected: bool,
    /// A media packet from them has arrived.
    pub media: bool,
    /// Since when ICE has been disconnected, if it is.
    pub disconnected_since: Option<Instant>,
}

impl Participant {
    pub fn new(
        (member, source): (MemberId, u32),
        room: RoomId,
        rtc: Rtc,
        ufrag: String,
        now: Instant,
    ) -> Participant {
        Participant {
            member,
            source,
            room,
            rtc,
            ufrag,
            published: Vec::new(),
            downs: Slab::new(),
            slots: Vec::new(),
            local_mutes: Vec::new(),
            silenced: false,
            video_choices: Vec::new(),
            negotiation: Negotiation::default(),
            speaking: SpeakingDetector::default(),
            connection: Connection {
                created: now,
                connected: false,
                media: false,
                disconnected_since: None,
            },
            quality: QualityTracker::default(),
            bandwidth: ViewerBandwidth::default(),
            offered_video: false,
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
            .any(|(_, d)| d.track_source() == Some((publisher, mid)) && !d.is_stopping());
        if exists {
            return None;
        }
        let mut down = DownTrack::new(publisher, mid, kind);
        if let Some((_, (quality, screen))) = self
            .video_choices
            .iter()
            .find(|(t, _)| *t == (publisher, mid))
        {
            down.layer.set_quality(*quality);
            down.screen = *screen;
        }
        Some(DownTrackKey(self.downs.insert(down)))
    }

    /// The viewer wants `quality` of `publisher`'s video track `mid` (a screen share if
    /// `screen`): from the next packet if it receives the track, else from when it does.
    pub fn choose_video(
        &mut self,
        (publisher, mid): (MemberId, Mid),
        quality: VideoQuality,
        screen: bool,
    ) {
        let track = (publisher, mid);
        self.video_choices.retain(|(t, _)| *t != track);
        if self.video_choices.len() >= MAX_VIDEO_CHOICES {
            self.video_choices.remove(0);
        }
        self.video_choices.push((track, (quality, screen)));
        for (_, down) in self.downs.iter_mut() {
            if down.track_source() == Some(track) {
                down.layer.set_quality(quality);
                down.screen = screen;
            }
        }
    }

    /// Adds `n` audio slots, to be negotiated with the next offer.
    pub fn add_slots(&mut self, n: usize) {
        for index in 0..n {
            let key = DownTrackKey(self.downs.insert(DownTrack::slot(index)));
            self.slots.push(key);
        }
    }

    /// The up-track on each slot now, in slot order.
    pub fn slot_feeds(&self) -> Vec<Option<crate::uptrack::UpTrackKey>> {
        self.slots
            .iter()
            .map(|k| self.downs.get(k.0).and_then(DownTrack::slot_current))
            .collect()
    }

    /// Sets the members this participant does not want to hear (deduplicated and bounded).
    pub fn set_local_mutes(&mut self, mut muted: Vec<MemberId>) {
        muted.sort();
        muted.dedup();
        muted.truncate(MAX_LOCAL_MUTES);
        self.local_mutes = muted;
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

    /// The down-track sent on `mid`.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_video_choice_is_kept_for_a_track_not_received_yet_and_choices_stay_bounded() {
        let now = Instant::now();
        let rtc = str0m::RtcConfig::new().build(now);
        let mut p = Participant::new((MemberId(2), 2), RoomId(1), rtc, "u".into(), now);
        let (publisher, mid) = (MemberId(1), Mid::from("v"));
        p.choose_video((publisher, mid), VideoQuality::Low, false);
        let down = p.subscribe(publisher, mid, TrackKind::Video).unwrap();
        assert_eq!(p.downs[down.0].layer.quality(), VideoQuality::Low);
        p.choose_video((publisher, mid), VideoQuality::Off, false);
        assert_eq!(p.downs[down.0].layer.quality(), VideoQuality::Off);
        // Another track keeps the default.
        let other = p.subscribe(MemberId(3), mid, TrackKind::Video).unwrap();
        assert_eq!(p.downs[other.0].layer.quality(), VideoQuality::High);
        for i in 0..(3 * MAX_VIDEO_CHOICES as u64) {
            let track = Mid::from(format!("track-{i}").as_str());
            p.choose_video((MemberId(i), track), VideoQuality::Medium, false);
        }
        assert_eq!(p.video_choices.len(), MAX_VIDEO_CHOICES);
    }
}
