//! Down-tracks: one subscriber's copy of an up-track — where it stands in the negotiation, the
//! route its packets take (payload type, RED), and its own sequence numbers and timestamps.
//!
//! A down-track is fed either by one up-track for its life (a video track: an m-line per
//! track), or is an audio *slot*: an m-line negotiated once, when the participant joins, whose
//! up-track changes as the room's speakers change. A slot keeps one SSRC and one payload type
//! for its life; its sequence numbers stay contiguous and its timestamps move on by the time
//! that passed across a change of speaker, so the browser's jitter buffer sees one steady
//! stream; each packet names its true speaker in its CSRC.
//!
//! A video down-track is sent one simulcast layer of its track at a time, as its
//! [`LayerSwitch`] decides; across a switch its one SSRC goes on, sequence numbers stay
//! contiguous, timestamps move on by the capture time between the pictures (by the layers'
//! sender reports, else by the time that passed), and VP8 and VP9 picture numbering
//! continues ([`Vp8Munger`]; VP9 in a copy of the payload,
//! [`crate::video::vp9::Vp9Numbering`]). H264 and AV1 get sequence numbers and timestamps
//! only.

use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::Rtc;
use str0m::media::{Mid, Pt};
use str0m::rtp::RtpWrite;

use free4chat_ids::{MemberId, TrackKind};

use crate::forward::{Rewriter, Route, red};
use crate::prepared::Prepared;
use crate::uptrack::UpTrackKey;
use crate::video::clock::{self, SenderClock};
use crate::video::layer::LayerSwitch;
use crate::video::vp8::{Vp8Fields, Vp8Munger};

/// How long a video packet sent is kept to be resent when a viewer reports it lost (NACK).
/// A resend is of use only while the viewer's jitter buffer still waits for its frame, well
/// under a second on a working link; the viewer asks again every round trip, a few times.
/// libwebrtc keeps what it sent for max(1 s, 3 round trips), Janus 200 ms to 1 s. str0m's
/// default, 3 s, held three times the memory for resends that come too late: every packet a
/// viewer is sent stays in its stream's cache until it is this old, a slot of about 430 bytes
/// per viewer (the cache's slots grow to fit the horizon and are never given back) and the
/// payload, shared by the packet's viewers. Measured: 0.9 instead of 1.35 MiB per member in
/// a 1 × 6 video room (docs/bench/log/2026-12-03-video-memory.md).
pub const VIDEO_RESEND_HORIZON: Duration = Duration::from_secs(1);

/// At most this many video packets kept per stream, whatever their age: the horizon at
/// 5 Mbit/s (about 520 packets a second of 1,200 bytes). A camera's full layer, 1.5–2.5 Mbit/s,
/// stays well under it, so the horizon is what bounds the cache; above, the oldest go first.
pub const VIDEO_RESEND_PACKETS: usize = 512;

/// Resends queued are dropped while they are over this share of what a stream sends: str0m's
/// default, kept (its constant is not public).
const RESEND_RATIO_CAP: Option<f32> = Some(0.15);

/// A down-track's place in its participant's down-tracks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DownTrackKey(pub usize);

/// Where a down-track stands in the negotiation with its subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Negotiated {
    /// Wanted; the next server offer adds an m-line for it.
    ToOpen,
    /// In an outstanding server offer.
    Opening(Mid),
    /// Negotiated: media is forwarded on this mid.
    Open(Mid),
    /// The up-track is gone; the next server offer stops the m-line.
    ToStop(Mid),
    /// Stopped in an outstanding server offer.
    Stopping(Mid),
}

/// What feeds a down-track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    /// One up-track for the down-track's life: its publisher and mid.
    Track { publisher: MemberId, mid: Mid },
    /// Audio slot `index`, fed by whichever up-track the room's speakers put on it now.
    Slot {
        index: usize,
        current: Option<UpTrackKey>,
    },
}

#[derive(Debug)]
pub struct DownTrack {
    pub feed: Feed,
    pub kind: TrackKind,
    pub state: Negotiated,
    /// The route for the last source payload type seen (`None`: the subscriber cannot take it).
    route: Option<(Pt, Option<Route>)>,
    rewriter: Rewriter,
    /// Video: which simulcast layer the subscriber is sent, and its VP8 or VP9 picture
    /// numbering (a track has one codec at a time).
    pub layer: LayerSwitch,
    /// Video: the track is a screen share (first in the viewer's bandwidth).
    pub screen: bool,
    vp8: Vp8Munger,
    /// Video: the source timestamp of the last packet written, and its layer's sender report.
    last_sent: Option<(u32, Option<SenderClock>)>,
}

/// What writing one packet did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// RTP packets written: none, the packet, or also frames recovered from its RED.
    pub packets: u64,
    /// A keyframe of this simulcast layer is wanted of the publisher.
    pub ask_keyframe: Option<u8>,
}

/// The payloads a fan-out made from one packet, at most once each, for the subscribers who
/// need them: the RED primary alone, the packet with its RED payload types rewritten, and a
/// plain packet wrapped in RED (for slots, which keep one payload type).
#[derive(Default)]
pub struct CopyPayloads {
    unwrapped: Option<Arc<[u8]>>,
    rewritten: Option<(u8, Arc<[u8]>)>,
    wrapped: Option<(u8, Arc<[u8]>)>,
}

impl DownTrack {
    /// A down-track of `publisher`'s track `mid`.
    pub fn new(publisher: MemberId, mid: Mid, kind: TrackKind) -> DownTrack {
        DownTrack::fed_by(Feed::Track { publisher, mid }, kind)
    }

    /// Audio slot `index`, empty until a speaker is put on it.
    pub fn slot(index: usize) -> DownTrack {
        DownTrack::fed_by(
            Feed::Slot {
                index,
                current: None,
            },
            TrackKind::Audio,
        )
    }

    fn fed_by(feed: Feed, kind: TrackKind) -> DownTrack {
        DownTrack {
            feed,
            kind,
            state: Negotiated::ToOpen,
            route: None,
            rewriter: Rewriter::default(),
            layer: LayerSwitch::default(),
            screen: false,
            vp8: Vp8Munger::default(),
            last_sent: None,
        }
    }

    /// The mid on which media is sent, once negotiated.
    pub fn open_mid(&self) -> Option<Mid> {
        match self.state {
            Negotiated::Open(m) => Some(m),
            _ => None,
        }
    }

    /// The publisher and mid of the one up-track feeding it, for a down-track that is not a
    /// slot.
    pub fn track_source(&self) -> Option<(MemberId, Mid)> {
        match self.feed {
            Feed::Track { publisher, mid } => Some((publisher, mid)),
            Feed::Slot { .. } => None,
        }
    }

    /// The up-track on a slot now.
    pub fn slot_current(&self) -> Option<UpTrackKey> {
        match self.feed {
            Feed::Slot { current, .. } => current,
            Feed::Track { .. } => None,
        }
    }

    /// Whether the m-line is on its way out.
    pub fn is_stopping(&self) -> bool {
        matches!(self.state, Negotiated::ToStop(_) | Negotiated::Stopping(_))
    }

    /// Writes `packet` to the subscriber's session `rtc` on this down-track, if it is open
    /// and, for video, of the layer the subscriber is sent. `payloads` keeps what was made
    /// from the packet for the next subscriber.
    pub fn write(
        &mut self,
        rtc: &mut Rtc,
        packet: &Prepared,
        payloads: &mut CopyPayloads,
        now: Instant,
    ) -> Written {
        if self.open_mid().is_none() {
            return Written::default();
        }
        let video = packet.kind == TrackKind::Video;
        if !video {
            return Written {
                packets: self.write_layer(rtc, packet, payloads, (false, now)),
                ask_keyframe: None,
            };
        }
        let decision = self.layer.on_packet(packet.video.layer, now);
        let packets = match decision.forward {
            true => self.write_layer(rtc, packet, payloads, (decision.switched, now)),
            false => 0,
        };
        Written {
            packets,
            ask_keyframe: decision.ask_keyframe,
        }
    }

    /// Writes a packet of the layer the subscriber is sent; `switched`: the first since a
    /// change of layer (or since the track was off), from which the stream continues.
    fn write_layer(
        &mut self,
        rtc: &mut Rtc,
        packet: &Prepared,
        payloads: &mut CopyPayloads,
        (switched, now): (bool, Instant),
    ) -> u64 {
        let Some(dst_mid) = self.open_mid() else {
            return 0;
        };
        let (h, codec) = (&packet.header, &packet.codec);
        let clock_rate = codec.params.spec().clock_rate.get();
        let video = packet.kind == TrackKind::Video;
        if switched {
            // The new layer's first picture, as far after the last one sent as it was captured.
            let gap = match (self.last_sent, packet.video.sender) {
                (Some((ts, Some(last))), Some(next)) => {
                    clock::capture_gap((ts, last), (h.rtp_time, next), clock_rate)
                }
                _ => None,
            };
            self.rewriter.rebase(gap);
        }
        let mut first_of_route = false;
        let route = match self.route {
            Some((cached, route)) if cached == h.pt => route,
            _ => {
                first_of_route = true;
                let accepted = rtc.media(dst_mid).map_or(&[][..], |m| m.remote_pts());
                let matched = rtc.codec_config().match_params(codec.params);
                let slot = matches!(self.feed, Feed::Slot { .. });
                let route = if slot {
                    Route::find_steady(&codec.params, codec.red, matched, accepted)
                } else {
                    Route::find(&codec.params, codec.red, matched, accepted)
                };
                self.route = Some((h.pt, route));
                route
            }
        };
        let Some(route) = route else {
            return 0;
        };
        let mut api = rtc.direct_api();
        let Some(stream) = api.stream_tx_by_mid(dst_mid, None) else {
            return 0;
        };
        if first_of_route {
            match video {
                // str0m keeps what a video stream sent for 3 s by default; a resend is of use
                // only within the viewer's horizon (`VIDEO_RESEND_HORIZON`). Sized here, on
                // the stream's first packet: resizing empties the cache, so a later change of
                // the source's payload type (a codec change) loses the resends of the packets
                // before it, which the viewer's decoder has left behind anyway.
                true => stream.set_rtx_cache(
                    VIDEO_RESEND_PACKETS,
                    VIDEO_RESEND_HORIZON,
                    RESEND_RATIO_CAP,
                ),
                // Audio is never resent (not nackable), so its stream needs no resend cache
                // and no history of bytes sent to cap resends by: str0m keeps one by default,
                // an entry per packet.
                false => stream.set_rtx_cache(0, Duration::ZERO, None),
            }
        }
        let mut written = 0;
        let wallclock = packet.received;
        let (out_pt, payload) = match route {
            Route::Plain { pt } => (pt, packet.payload.clone()),
            Route::Red { pt, from, to } if from == to => (pt, packet.payload.clone()),
            Route::Red { pt, from, to } => {
                let payload = match &payloads.rewritten {
                    Some((cached, payload)) if *cached == to => payload.clone(),
                    _ => {
                        let payload = red::rewrite_red_pt(&packet.payload, from, to);
                        payloads.rewritten = Some((to, payload.clone()));
                        payload
                    }
                };
                (pt, payload)
            }
            Route::Wrap { pt, inner } => {
                let payload = match &payloads.wrapped {
                    Some((cached, payload)) if *cached == inner => payload.clone(),
                    _ => {
                        let payload = red::wrap_in_red(&packet.payload, inner);
                        payloads.wrapped = Some((inner, payload.clone()));
                        payload
                    }
                };
                (pt, payload)
            }
            Route::Unwrap { pt } => {
                for r in &codec.recovered {
                    let mapped = self.rewriter.map(h.ssrc, r.seq, r.ts, clock_rate, now);
                    let Some((seq, ts)) = mapped else {
                        continue;
                    };
                    let write = RtpWrite::new(pt, seq, ts, wallclock, r.payload.clone());
                    stream.write_rtp(write);
                    written += 1;
                }
                let Some((start, true)) = codec.primary else {
                    return written;
                };
                let payload = payloads
                    .unwrapped
                    .get_or_insert_with(|| packet.payload.get(start..).unwrap_or_default().into())
                    .clone();
                (pt, payload)
            }
        };
        let Some((seq, ts)) = self
            .rewriter
            .map(h.ssrc, h.seq, h.rtp_time, clock_rate, now)
        else {
            return written;
        };
        let payload = match &packet.video.vp9 {
            Some(d) => match self.vp8.munge(d.fields(), switched) {
                Some(out) => d.rewrite(&payload, out).into(),
                None => payload,
            },
            None => payload,
        };
        let mut write = RtpWrite::new(out_pt, seq, ts, wallclock, payload)
            .marker(h.marker)
            .ext_vals(h.ext.clone())
            .nackable(video);
        if video {
            self.last_sent = Some((h.rtp_time, packet.video.sender));
        }
        if let Some(d) = &packet.video.vp8
            && let Some(out) = self.vp8.munge(Vp8Fields::of(d), switched)
            && let Some(patch) = Vp8Munger::patch(d, out)
        {
            write = write.vp8_patch(patch);
        }
        if let Feed::Slot { .. } = self.feed {
            // The slot's true speaker, whom the listener's browser reports by this CSRC.
            write = write.csrc(&[packet.csrc]);
        }
        stream.write_rtp(write);
        written + 1
    }
}
