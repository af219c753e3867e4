//! Up-tracks: the tracks participants publish, each holding the list of its subscribers'
//! down-tracks, so a packet's fan-out reaches exactly its subscribers and never scans a room.
//!
//! An up-track is *local* when its publisher is a participant of this core, and *remote* when
//! another worker holds the publisher and relays its packets here.
//!
//! A video track may arrive in simulcast layers, one stream per rid: a local up-track keeps
//! each layer's incoming state (its SSRC, gaps, when it last sent a packet, paused), and
//! every packet is prepared once with its layer, whether it starts a keyframe, and which
//! layers flow, for each viewer's [`crate::video::layer::LayerSwitch`] here or on the workers
//! it is relayed to.

use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;
use slab::Slab;
use str0m::Rtc;
use str0m::format::{Codec, PayloadParams};
use str0m::media::{Mid, Pt, Rid};
use str0m::rtp::{ExtensionValues, RtpPacket, Ssrc, Vp8Descriptor};

use free4chat_ids::{MemberId, RoomId, TrackKind};

use crate::downtrack::DownTrackKey;
use crate::forward::{self, Recovered, Red, RedRecovery};
use crate::participants::ParticipantKey;
use crate::prepared::{Prepared, PreparedCodec, PreparedHeader, PreparedVideo};
use crate::video::clock::SenderClock;
use crate::video::keyframe::starts_keyframe;
use crate::video::layer::{LayerPacket, MAX_LAYERS};
use crate::video::throttle::KeyframeThrottle;
use crate::video::vp9::Vp9Numbering;

/// A layer with no packet for this long no longer counts as flowing (as str0m pauses a
/// stream).
pub const LAYER_SILENCE: Duration = Duration::from_millis(1500);

/// How long each layer's bytes are counted for one measurement of its bitrate: long enough to
/// take in a keyframe with the frames around it at 15–30 frames a second.
pub const RATE_WINDOW: Duration = Duration::from_millis(500);
/// What a packet costs on the wire besides its payload (bytes): RTP header and extensions,
/// SRTP tag, UDP and IP headers. The viewer's estimate counts them too.
const PACKET_OVERHEAD: u64 = 60;

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
    /// Video: each layer's bitrate (bits/s, 0: not measured yet), by layer index: measured
    /// from the packets of a local up-track, as the publisher's worker measured it for a
    /// remote one. A layer that stops keeps its last, so that it can be chosen again.
    pub bitrates: [u32; 3],
    /// What forwarding keeps about the incoming stream (local up-tracks only).
    incoming: Incoming,
}

/// What forwarding keeps about the stream a local up-track receives.
#[derive(Debug, Default)]
struct Incoming {
    /// The simulcast rids, lowest resolution first; empty: one layer, without rid.
    rids: Vec<Rid>,
    /// Whether the rids came from the SDP (else from the packets, as they appear).
    declared: bool,
    /// Each layer's state, by layer index (one, without simulcast).
    layers: Vec<LayerIn>,
    /// The last payload type seen, its codec in the publisher's session, and whether it is RED.
    params: Option<(Pt, PayloadParams, bool)>,
    /// Delivered sequence numbers, when the track sends RED.
    red: RedRecovery,
}

/// One layer of a local up-track as it arrives.
#[derive(Debug, Default, Clone)]
struct LayerIn {
    /// The SSRC the layer was last seen on.
    ssrc: Option<Ssrc>,
    /// The highest sequence number received (to notice gaps in video).
    highest: Option<u64>,
    /// The timestamp of the last packet received (a new one starts a picture).
    last_ts: Option<u32>,
    last_packet: Option<Instant>,
    /// str0m reported the stream paused (and no packet came since).
    paused: bool,
    /// The keyframe requests to the layer.
    keyframes: KeyframeThrottle,
    /// The bytes counted for its bitrate since the window started.
    window: Option<(Instant, u64)>,
}

/// What preparing a packet found besides the packet itself.
#[derive(Debug, Default)]
pub struct Noticed {
    /// The audio level the packet carries, for the publisher's speaking detector.
    pub audio_level: Option<i8>,
    /// A gap in a video track: the subscribers need a keyframe (of the packet's layer); or a
    /// request for one that waited for the throttle is due.
    pub needs_keyframe: bool,
}

/// Simulcast rids in the order of their layers, lowest resolution first: the names the web
/// client uses (`q`, `h`, `f`: quarter, half, full) by their meaning, any other names in the
/// order given (the publisher's `a=simulcast` send line). At most [`MAX_LAYERS`].
pub fn order_rids(mut rids: Vec<Rid>) -> Vec<Rid> {
    const KNOWN: [&str; 3] = ["q", "h", "f"];
    let rank = |r: &Rid| KNOWN.iter().position(|k| **r == **k);
    if rids.iter().all(|r| rank(r).is_some()) {
        rids.sort_by_key(rank);
    }
    let mut seen = Vec::with_capacity(rids.len());
    rids.retain(|r| {
        let first = !seen.contains(r);
        seen.push(*r);
        first
    });
    rids.truncate(MAX_LAYERS);
    rids
}

/// Counts a packet of `len` bytes at `now` in a layer's `window`; each full window's bitrate
/// is averaged into `rate` (bits/s), half old, half new, so one window with a keyframe moves it
/// less than the keyframe's size.
fn measure(window: &mut Option<(Instant, u64)>, rate: &mut u32, len: usize, now: Instant) {
    let bytes = u64::try_from(len).unwrap_or(u64::MAX);
    let (start, counted) = window.get_or_insert((now, 0));
    *counted = counted.saturating_add(bytes.saturating_add(PACKET_OVERHEAD));
    let elapsed = now.saturating_duration_since(*start);
    if elapsed < RATE_WINDOW {
        return;
    }
    let micros = u64::try_from(elapsed.as_micros())
        .unwrap_or(u64::MAX)
        .max(1);
    let measured = u128::from(*counted) * 8 * 1_000_000 / u128::from(micros);
    let measured = u32::try_from(measured).unwrap_or(u32::MAX);
    *rate = match *rate {
        0 => measured,
        old => u32::try_from((u64::from(old) + u64::from(measured)) / 2).unwrap_or(u32::MAX),
    };
    *window = Some((now, 0));
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
            bitrates: [0; 3],
            incoming: Incoming::default(),
        }
    }

    /// The publisher sends the track in simulcast layers named by `rids` (see
    /// [`order_rids`]).
    pub fn set_rids(&mut self, rids: Vec<Rid>) {
        self.incoming.declared = !rids.is_empty();
        self.incoming.rids = order_rids(rids);
    }

    /// The rid of layer `layer`, for a simulcast track.
    pub fn rid_of(&self, layer: u8) -> Option<Rid> {
        self.incoming.rids.get(usize::from(layer)).copied()
    }

    /// Whether the track is sent in simulcast layers.
    pub fn is_simulcast(&self) -> bool {
        !self.incoming.rids.is_empty()
    }

    /// The layer this up-track receives on the stream `ssrc` (as last seen).
    pub fn layer_of(&self, ssrc: Ssrc) -> Option<u8> {
        let i = self
            .incoming
            .layers
            .iter()
            .position(|l| l.ssrc == Some(ssrc))?;
        u8::try_from(i).ok()
    }

    /// Binds the stream `ssrc`, of simulcast rid `rid` if any, to its layer; returns the
    /// layer, or `None` if the stream is none of the track's (a rid not declared, or one
    /// past the most layers kept).
    pub fn bind(&mut self, ssrc: Ssrc, rid: Option<Rid>) -> Option<u8> {
        let incoming = &mut self.incoming;
        let index = match rid {
            None if incoming.rids.is_empty() => 0,
            None => return None,
            Some(rid) => match incoming.rids.iter().position(|r| *r == rid) {
                Some(i) => i,
                // Rids not declared in the SDP: their order of first appearance.
                None if !incoming.declared && incoming.rids.len() < MAX_LAYERS => {
                    incoming.rids.push(rid);
                    incoming.rids.len() - 1
                }
                None => return None,
            },
        };
        if incoming.layers.len() <= index {
            incoming.layers.resize(index + 1, LayerIn::default());
        }
        // A new SSRC for the layer starts its numbering over.
        let state = &mut incoming.layers[index];
        state.ssrc = Some(ssrc);
        state.highest = None;
        state.last_ts = None;
        u8::try_from(index).ok()
    }

    /// str0m paused or resumed the stream of rid `rid` (`None`: the only one).
    pub fn set_paused(&mut self, rid: Option<Rid>, paused: bool) {
        let index = match rid {
            Some(rid) => self.incoming.rids.iter().position(|r| *r == rid),
            None => Some(0),
        };
        if let Some(layer) = index.and_then(|i| self.incoming.layers.get_mut(i)) {
            layer.paused = paused;
        }
    }

    /// The layers that flow at `now`, a bit per layer.
    fn flowing(&self, now: Instant) -> u8 {
        let mut mask = 0;
        for (i, l) in self.incoming.layers.iter().enumerate().take(MAX_LAYERS) {
            let recent = l
                .last_packet
                .is_some_and(|t| now.saturating_duration_since(t) < LAYER_SILENCE);
            if recent && !l.paused {
                mask |= 1 << i;
            }
        }
        mask
    }

    /// The publisher's side of forwarding a packet of layer `layer` from the publisher's
    /// session `rtc`: which codec it is, gaps, RED recovery, keyframes, the layers that flow.
    /// `None`: it is not forwarded (a payload type the session did not negotiate, or RED that
    /// does not parse). `recovered` is reused storage.
    pub fn prepare(
        &mut self,
        rtc: &Rtc,
        (packet, layer): (RtpPacket, u8),
        mut recovered: Vec<Recovered>,
    ) -> Result<(Prepared, Noticed), Vec<Recovered>> {
        let header = &packet.header;
        let (ssrc, pt, seq) = (header.ssrc, header.payload_type, packet.seq_no);
        let now = packet.timestamp;
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
        let index = usize::from(layer);
        if incoming.layers.len() <= index {
            incoming.layers.resize(index + 1, LayerIn::default());
        }
        let state = &mut incoming.layers[index];
        state.ssrc = Some(ssrc);
        let gap = state.highest.is_some_and(|h| *seq > h.saturating_add(1));
        state.highest = Some(state.highest.map_or(*seq, |h| h.max(*seq)));
        state.last_packet = Some(now);
        state.paused = false;
        let picture_start = state.last_ts != Some(header.timestamp);
        state.last_ts = Some(header.timestamp);
        if self.kind == TrackKind::Video
            && let Some(rate) = self.bitrates.get_mut(index)
        {
            measure(&mut state.window, rate, packet.payload.len(), now);
        }
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
        let mut keyframe_due = false;
        let video = match self.kind {
            TrackKind::Audio => PreparedVideo::default(),
            TrackKind::Video => {
                let codec = params.spec().codec;
                let vp8 = (codec == Codec::Vp8)
                    .then(|| Vp8Descriptor::parse(&packet.payload).ok())
                    .flatten();
                let keyframe = starts_keyframe(codec, &packet.payload, vp8.as_ref(), picture_start);
                let requests = &mut self.incoming.layers[index].keyframes;
                if keyframe {
                    requests.on_keyframe();
                }
                keyframe_due = requests.due(now);
                let layers = u8::try_from(self.incoming.rids.len().max(1)).unwrap_or(1);
                PreparedVideo {
                    layer: LayerPacket {
                        layer,
                        keyframe,
                        layers,
                        flowing: self.flowing(now),
                    },
                    vp8,
                    vp9: (codec == Codec::Vp9)
                        .then(|| Vp9Numbering::parse(&packet.payload))
                        .flatten(),
                    bitrates: self.bitrates,
                    sender: packet
                        .last_sender_info
                        .and_then(|i| SenderClock::new(i.ntp_time, i.rtp_time.numer() as u32)),
                }
            }
        };
        let noticed = Noticed {
            audio_level: match self.kind {
                TrackKind::Audio => header.ext_vals.audio_level,
                TrackKind::Video => None,
            },
            needs_keyframe: self.kind == TrackKind::Video && (gap || keyframe_due),
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
            video,
            received: packet.timestamp,
            payload: packet.payload,
        };
        Ok((prepared, noticed))
    }

    /// Whether a keyframe of layer `layer` may be asked of the publisher now; if so, the time
    /// is noted, else the request waits for the throttle ([`KeyframeThrottle`]).
    pub fn may_request_keyframe(&mut self, layer: u8, now: Instant) -> bool {
        let index = usize::from(layer);
        if index >= MAX_LAYERS {
            return false;
        }
        let layers = &mut self.incoming.layers;
        if layers.len() <= index {
            layers.resize(index + 1, LayerIn::default());
        }
        layers[index].keyframes.ask(now)
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

    /// Whether a video track of `room` is known here (published on this core, or relayed to it).
    pub fn has_video(&self, room: RoomId) -> bool {
        self.slab
            .iter()
            .any(|(_, t)| t.room == room && t.kind == TrackKind::Video)
    }

    pub fn shrink(&mut self) {
        if self.slab.is_empty() {
            self.slab = Slab::new();
        }
        self.by_source.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rids(names: &[&str]) -> Vec<Rid> {
        names.iter().map(|n| Rid::from(*n)).collect()
    }

    #[test]
    fn layers_go_lowest_first_by_the_known_names_else_as_the_publisher_lists_them() {
        assert_eq!(order_rids(rids(&["f", "q", "h"])), rids(&["q", "h", "f"]));
        assert_eq!(order_rids(rids(&["h", "q"])), rids(&["q", "h"]));
        assert_eq!(
            order_rids(rids(&["lo", "mid", "hi"])),
            rids(&["lo", "mid", "hi"])
        );
        assert_eq!(
            order_rids(rids(&["a", "b", "a", "c", "d", "e"])),
            rids(&["a", "b", "c", "d"])
        );
    }

    #[test]
    fn streams_bind_to_their_layers_and_undeclared_rids_in_order_of_appearance() {
        let mut t = UpTrack::new(
            RoomId(1),
            (MemberId(1), 1),
            Mid::from("v"),
            TrackKind::Video,
            None,
        );
        t.set_rids(rids(&["f", "h", "q"]));
        assert_eq!(t.bind(Ssrc::from(7), Some(Rid::from("f"))), Some(2));
        assert_eq!(
            t.bind(Ssrc::from(8), Some(Rid::from("x"))),
            None,
            "not declared"
        );
        assert_eq!(
            t.bind(Ssrc::from(9), None),
            None,
            "no rid on a simulcast track"
        );
        assert_eq!(
            (t.layer_of(Ssrc::from(7)), t.rid_of(0)),
            (Some(2), Some(Rid::from("q")))
        );

        let mut t = UpTrack::new(
            RoomId(1),
            (MemberId(1), 1),
            Mid::from("v"),
            TrackKind::Video,
            None,
        );
        assert_eq!(t.bind(Ssrc::from(1), None), Some(0), "one layer");
        assert_eq!(t.bind(Ssrc::from(2), None), Some(0), "a new SSRC of it");
        assert_eq!(t.layer_of(Ssrc::from(1)), None);
        for (i, name) in ["x", "y", "z", "w"].iter().enumerate() {
            assert_eq!(
                t.bind(Ssrc::from(10 + i as u32), Some(Rid::from(*name))),
                Some(i as u8)
            );
        }
        assert_eq!(
            t.bind(Ssrc::from(20), Some(Rid::from("v"))),
            None,
            "at most four"
        );
        assert!(!t.may_request_keyframe(MAX_LAYERS as u8, Instant::now()));
    }
}
