//! Up-tracks: the tracks participants publish, each holding the list of its subscribers'
//! down-tracks, so a packet's fan-out reaches exactly its subscribers and never scans a room.
//!
//! An up-track is *local* when its publisher is a participant of this core, and *remote* when
//! another worker holds the publisher and relays its packets here.

use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;
use slab::Slab;
use str0m::Rtc;
use str0m::format::PayloadParams;
use str0m::media::{Mid, Pt};
use str0m::rtp::{ExtensionValues, RtpPacket, Ssrc};

use free4chat_ids::{MemberId, RoomId, TrackKind};

use crate::downtrack::DownTrackKey;
use crate::forward::{self, Recovered, Red, RedRecovery};
use crate::participants::ParticipantKey;
use crate::prepared::{Prepared, PreparedCodec, PreparedHeader};

/// The fewest milliseconds between two keyframe requests to one publisher track.
pub const KEYFRAME_THROTTLE: Duration = Duration::from_millis(500);

/// An up-track's place in [`UpTracks`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UpTrackKey(pub usize);

/// One subscriber of an up-track: the participant and its down-track for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subscriber {
    pub participant: ParticipantKey,
    pub down: DownTrackKey,
}

#[derive(Debug)]
pub struct UpTrack {
    pub room: RoomId,
    pub publisher: MemberId,
    /// The publisher's source id in the room (the CSRC their packets carry on slots).
    pub source: u32,
    pub mid: Mid,
    pub kind: TrackKind,
    /// The publisher's participant, for a local up-track.
    pub local: Option<ParticipantKey>,
    pub subscribers: Vec<Subscriber>,
    pub last_keyframe_request: Option<Instant>,
    /// What forwarding keeps about the incoming stream (local up-tracks only).
    incoming: Incoming,
}

/// What forwarding keeps about the stream a local up-track receives.
#[derive(Debug, Default)]
struct Incoming {
    /// The SSRC the track was last seen on.
    ssrc: Option<Ssrc>,
    /// The last payload type seen, its codec in the publisher's session, and whether it is RED.
    params: Option<(Pt, PayloadParams, bool)>,
    /// The highest sequence number received (to notice gaps in video).
    highest: Option<u64>,
    /// Delivered sequence numbers, when the track sends RED.
    red: RedRecovery,
}

/// What preparing a packet found besides the packet itself.
#[derive(Debug, Default)]
pub struct Noticed {
    /// The audio level the packet carries, for the publisher's speaking detector.
    pub audio_level: Option<i8>,
    /// A gap in a video track: the subscribers need a keyframe.
    pub needs_keyframe: bool,
}

impl UpTrack {
    pub fn new(
        room: RoomId,
        (publisher, source): (MemberId, u32),
        mid: Mid,
        kind: TrackKind,
        local: Option<ParticipantKey>,
    ) -> UpTrack {
        UpTrack {
            room,
            publisher,
            source,
            mid,
            kind,
            local,
            subscribers: Vec::new(),
            last_keyframe_request: None,
            incoming: Incoming::default(),
        }
    }

    /// Whether this up-track receives the stream `ssrc` (as last seen).
    pub fn receives(&self, ssrc: Ssrc) -> bool {
        self.incoming.ssrc == Some(ssrc)
    }

    /// The publisher's side of forwarding a packet from the publisher's session `rtc`: which
    /// codec it is, gaps, RED recovery. `None`: it is not forwarded (a payload type the session
    /// did not negotiate, or RED that does not parse). `recovered` is reused storage.
    pub fn prepare(
        &mut self,
        rtc: &Rtc,
        packet: RtpPacket,
        mut recovered: Vec<Recovered>,
    ) -> Result<(Prepared, Noticed), Vec<Recovered>> {
        let header = &packet.header;
        let (ssrc, pt, seq) = (header.ssrc, header.payload_type, packet.seq_no);
        self.incoming.ssrc = Some(ssrc);
        let incoming = &mut self.incoming;
        let (params, red) = match incoming.params {
            Some((cached, params, red)) if cached == pt => (params, red),
            _ => {
                let found = rtc
                    .codec_config()
                    .iter()
                    .find(|c| c.pt() == pt || c.red() == Some(pt));
                let Some(params) = found.copied() else {
                    return Err(recovered);
                };
                let red = params.pt() != pt;
                incoming.params = Some((pt, params, red));
                (params, red)
            }
        };
        let gap = incoming.highest.is_some_and(|h| *seq > h.saturating_add(1));
        incoming.highest = Some(incoming.highest.map_or(*seq, |h| h.max(*seq)));
        let primary = if red {
            let Some(parsed) = Red::parse(&packet.payload) else {
                return Err(recovered);
            };
            let new = forward::red::recover(
                &mut incoming.red,
                &parsed,
                seq,
                header.timestamp,
                &mut recovered,
            );
            Some((packet.payload.len() - parsed.primary.len(), new))
        } else {
            None
        };
        let noticed = Noticed {
            audio_level: match self.kind {
                TrackKind::Audio => header.ext_vals.audio_level,
                TrackKind::Video => None,
            },
            needs_keyframe: self.kind == TrackKind::Video && gap,
        };
        let prepared = Prepared {
            room: self.room,
            src: self.publisher,
            mid: self.mid,
            csrc: self.source,
            kind: self.kind,
            codec: PreparedCodec {
                params,
                red,
                primary,
                recovered,
            },
            header: PreparedHeader {
                ssrc,
                pt,
                seq,
                rtp_time: header.timestamp,
                marker: header.marker,
                // What every subscriber's copy carries over: the extensions receivers use.
                ext: ExtensionValues {
                    audio_level: header.ext_vals.audio_level,
                    voice_activity: header.ext_vals.voice_activity,
                    video_orientation: header.ext_vals.video_orientation,
                    ..Default::default()
                },
            },
            received: packet.timestamp,
            payload: packet.payload,
        };
        Ok((prepared, noticed))
    }

    /// Whether a keyframe may be asked of the publisher now; if so, the time is noted.
    pub fn may_request_keyframe(&mut self, now: Instant) -> bool {
        let throttled = self
            .last_keyframe_request
            .is_some_and(|t| now.saturating_duration_since(t) < KEYFRAME_THROTTLE);
        if !throttled {
            self.last_keyframe_request = Some(now);
        }
        !throttled
    }

    pub fn unsubscribe(&mut self, participant: ParticipantKey, down: DownTrackKey) {
        self.subscribers
            .retain(|s| !(s.participant == participant && s.down == down));
    }
}

/// Every up-track of this core, by key and by (publisher, mid).
#[derive(Debug, Default)]
pub struct UpTracks {
    slab: Slab<UpTrack>,
    by_source: FxHashMap<(MemberId, Mid), UpTrackKey>,
}

impl UpTracks {
    /// Adds an up-track, unless one of that publisher and mid exists: returns its key and
    /// whether it is new.
    pub fn insert(&mut self, track: UpTrack) -> (UpTrackKey, bool) {
        let source = (track.publisher, track.mid);
        if let Some(key) = self.by_source.get(&source) {
            return (*key, false);
        }
        let key = UpTrackKey(self.slab.insert(track));
        self.by_source.insert(source, key);
        (key, true)
    }

    pub fn remove(&mut self, key: UpTrackKey) -> Option<UpTrack> {
        let track = self.slab.try_remove(key.0)?;
        self.by_source.remove(&(track.publisher, track.mid));
        Some(track)
    }

    pub fn find(&self, publisher: MemberId, mid: Mid) -> Option<UpTrackKey> {
        self.by_source.get(&(publisher, mid)).copied()
    }

    pub fn get(&self, key: UpTrackKey) -> Option<&UpTrack> {
        self.slab.get(key.0)
    }

    pub fn get_mut(&mut self, key: UpTrackKey) -> Option<&mut UpTrack> {
        self.slab.get_mut(key.0)
    }

    pub fn len(&self) -> usize {
        self.slab.len()
    }

    pub fn shrink(&mut self) {
        if self.slab.is_empty() {
            self.slab = Slab::new();
        }
        self.by_source.shrink_to_fit();
    }
}
