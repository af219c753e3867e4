//! The test clients' side: what a client makes of its session's events, what a client in RTP
//! mode reads of each packet, and the simulcast publisher, a client that sends a video track
//! in three layers (rids `q`, `h`, `f`), each numbered on its own, with keyframes only when
//! the stream starts and when asked for: VP8 (one packet a picture), or H264, VP9 or AV1
//! (pictures of several packets, as [`crate::sfu::tests::frames`] makes them).

use std::time::{Duration, Instant};

use super::frames::{FrameSeen, frame_packets};
use super::harness::TestClient;

use str0m::format::Codec;
use str0m::media::MediaKind;
use str0m::media::{Mid, Rid, Simulcast, SimulcastLayer};
use str0m::rtp::RtpPacket;
use str0m::rtp::{ExtensionValues, RtpWrite, Vp8Descriptor};
use str0m::{Event, Rtc};

impl TestClient {
    /// What the client makes of one event of its session.
    pub(super) fn on_event(&mut self, event: Event) {
        match event {
            Event::MediaData(d) if d.params.spec().codec.is_video() => self.video_frames += 1,
            Event::MediaAdded(m) if m.kind == MediaKind::Video => self.video_mids.push(m.mid),
            Event::MediaData(d) => {
                *self.received.entry(d.data[0]).or_default() += 1;
                if d.params.spec().codec == Codec::Opus {
                    let seq = **d.seq_range.start();
                    let entry = self.audio.entry(d.data[0]).or_default();
                    entry.push((seq, d.time.numer()));
                }
            }
            Event::KeyframeRequest(req) => {
                self.keyframe_requests += 1;
                if let Some(s) = &mut self.simulcast {
                    s.on_keyframe_request(req.rid);
                }
            }
            Event::RtpPacket(p) => {
                let pt = p.header.payload_type;
                let codecs = self.rtc.codec_config();
                let red = codecs.iter().any(|c| c.red() == Some(pt));
                let codec = codecs.iter().find(|c| c.pt() == pt).map(|c| c.spec().codec);
                self.rtp.push(RtpSeen::of(&p, red, codec));
            }
            _ => {}
        }
    }
}

/// An RTP packet a client in RTP mode received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpSeen {
    pub mid: Mid,
    pub ssrc: u32,
    pub pt: u8,
    pub seq: u64,
    pub timestamp: u32,
    /// The first CSRC, if any.
    pub csrc: Option<u32>,
    /// The first byte of the Opus payload (the sender's id), RED unwrapped.
    pub sender: Option<u8>,
    /// What a VP8 packet carries.
    pub vp8: Option<Vp8Seen>,
    /// What an H264, VP9 or AV1 packet carries.
    pub frame: Option<FrameSeen>,
}

impl RtpSeen {
    pub fn of(p: &RtpPacket, red: bool, codec: Option<Codec>) -> RtpSeen {
        let h = &p.header;
        let opus = match red {
            true => crate::forward::Red::parse(&p.payload).map_or(&[][..], |r| r.primary),
            false => &p.payload[..],
        };
        RtpSeen {
            mid: h.ext_vals.mid.unwrap_or_else(|| Mid::from("?")),
            ssrc: *h.ssrc,
            pt: *h.payload_type,
            seq: *p.seq_no,
            timestamp: h.timestamp,
            csrc: (h.csrc_count > 0).then_some(h.csrc[0]),
            sender: opus.first().copied(),
            vp8: (codec == Some(Codec::Vp8))
                .then(|| Vp8Seen::of(&p.payload))
                .flatten(),
            frame: codec
                .filter(|c| matches!(c, Codec::H264 | Codec::Vp9 | Codec::Av1))
                .and_then(|c| FrameSeen::of(c, &p.payload)),
        }
    }
}

/// The layers' rids, lowest first.
pub const RIDS: [&str; 3] = ["q", "h", "f"];

/// The simulcast the publisher offers.
pub fn simulcast() -> Simulcast {
    let mut s = Simulcast::new();
    for rid in RIDS {
        s.add_send_layer(SimulcastLayer::new(rid));
    }
    s
}

/// One layer's own numbering.
#[derive(Debug, Default, Clone, Copy)]
struct LayerOut {
    frames: u64,
    /// Packets sent.
    packets: u64,
    keyframes: u8,
    /// A keyframe is due (the first frame, or asked for).
    keyframe_due: bool,
    pub keyframes_asked: u64,
}

/// The bytes each VP8 layer's frames carry besides the descriptor, header and tail, lowest
/// first.
pub const LAYER_PADDING: [usize; 3] = [0, 100, 400];

/// A client publishing a video track in three simulcast layers, in RTP mode.
#[derive(Debug)]
pub struct SimulcastSender {
    pub mid: Mid,
    /// VP8, H264, VP9 or AV1.
    pub codec: Codec,
    layers: [LayerOut; 3],
    /// Whether the layers are sent (a layer the encoder dropped is not).
    pub sending: [bool; 3],
    /// Whether keyframes asked for are sent.
    pub answer_keyframes: bool,
    /// By how many frames (20 ms each) each layer's pictures lag: captured that much earlier
    /// than the lowest layer's sent with them, as their timestamps and reports say.
    pub lag: [u32; 3],
}

impl SimulcastSender {
    pub fn new(mid: Mid) -> SimulcastSender {
        let first = LayerOut {
            keyframe_due: true,
            ..Default::default()
        };
        SimulcastSender {
            mid,
            codec: Codec::Vp8,
            layers: [first; 3],
            sending: [true; 3],
            answer_keyframes: true,
            lag: [0; 3],
        }
    }

    /// The keyframes asked of layer `layer` so far.
    pub fn asked(&self, layer: usize) -> u64 {
        self.layers[layer].keyframes_asked
    }

    /// A keyframe request from the server.
    pub fn on_keyframe_request(&mut self, rid: Option<Rid>) {
        for (i, name) in RIDS.iter().enumerate() {
            if rid.is_none_or(|r| *r == **name) {
                self.layers[i].keyframes_asked += 1;
                if self.answer_keyframes {
                    self.layers[i].keyframe_due = true;
                }
            }
        }
    }

    /// Writes one frame on each layer sent: one packet of VP8, several of the others.
    pub fn write_frame(&mut self, rtc: &mut Rtc, id: u8, now: Instant) {
        let codec = self.codec;
        let Some(pt) = rtc
            .codec_config()
            .iter()
            .find(|p| {
                p.spec().codec == codec
                    && (codec != Codec::H264 || p.spec().format.packetization_mode == Some(1))
            })
            .map(|p| p.pt())
        else {
            return;
        };
        for (i, rid) in RIDS.iter().enumerate() {
            if !self.sending[i] {
                continue;
            }
            let l = &mut self.layers[i];
            let keyframe = std::mem::take(&mut l.keyframe_due);
            if keyframe {
                l.keyframes = l.keyframes.wrapping_add(1);
            }
            let n = l.frames;
            l.frames += 1;
            // Each layer numbers its packets, time and pictures on its own.
            let base = i as u64 * 10_000;
            let picture_id = ((base + n) % 0x8000) as u16;
            let tl0 = (i as u64 * 80 + n) as u8;
            let key_idx = (i as u8 * 9 + l.keyframes) % 32;
            let frame = (n as u16).to_be_bytes();
            let tail = [i as u8, id, frame[0], frame[1]];
            let payloads = match codec {
                Codec::Vp8 => {
                    let mut payload = vp8_payload(keyframe, (picture_id, tl0, key_idx), tail);
                    // Sharper layers are bigger: about 30, 70 and 190 kbit/s on the wire.
                    let body = payload.len() - tail.len();
                    payload.splice(body..body, std::iter::repeat_n(0, LAYER_PADDING[i]));
                    vec![payload]
                }
                _ => frame_packets(codec, keyframe, (picture_id, tl0), tail),
            };
            // Each layer's packets are numbered on their own, a picture's one after another.
            let first_seq = base + l.packets;
            l.packets += payloads.len() as u64;
            let lag = self.lag[i];
            let ts = (i as u32 * 3_000_000)
                .wrapping_add((n * 1800) as u32)
                .wrapping_sub(lag * 1800);
            let captured = now - Duration::from_millis(u64::from(lag) * 20);
            let mut api = rtc.direct_api();
            let Some(stream) = api.stream_tx_by_mid(self.mid, Some((*rid).into())) else {
                continue;
            };
            let last = payloads.len() - 1;
            for (k, payload) in payloads.into_iter().enumerate() {
                let ext = ExtensionValues {
                    mid: Some(self.mid),
                    rid: Some((*rid).into()),
                    ..Default::default()
                };
                let seq = first_seq + k as u64;
                let write = RtpWrite::new(pt, seq.into(), ts, captured, payload)
                    .marker(k == last)
                    .ext_vals(ext)
                    .nackable(true);
                stream.write_rtp(write);
            }
        }
    }
}

/// A VP8 payload: the payload descriptor with a 15-bit picture id, TL0PICIDX, TID and KEYIDX,
/// then a VP8 payload header whose P bit marks a keyframe, then `tail`: the layer, the
/// publisher's id and the frame's number.
pub fn vp8_payload(
    keyframe: bool,
    (picture_id, tl0, key_idx): (u16, u8, u8),
    tail: [u8; 4],
) -> Vec<u8> {
    vec![
        0x90, // X, S, partition 0
        0xf0, // I, L, T, K
        0x80 | (picture_id >> 8) as u8,
        picture_id as u8,
        tl0,
        0x20 | (key_idx & 0x1f), // TID 0, Y, KEYIDX
        if keyframe { 0x00 } else { 0x01 },
        0,
        0,
        tail[0],
        tail[1],
        tail[2],
        tail[3],
    ]
}

/// What a viewer read of a VP8 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vp8Seen {
    /// The publisher's layer and the frame's number in it (from the payload's tail).
    pub layer: u8,
    pub frame: u16,
    pub keyframe: bool,
    pub picture_id: u16,
    pub tl0: u8,
    pub key_idx: u8,
}

impl Vp8Seen {
    pub fn of(payload: &[u8]) -> Option<Vp8Seen> {
        let d = Vp8Descriptor::parse(payload).ok()?;
        let tail = payload.get(payload.len().checked_sub(4)?..)?;
        Some(Vp8Seen {
            layer: tail[0],
            frame: u16::from_be_bytes([tail[2], tail[3]]),
            keyframe: d.starts_keyframe(payload),
            picture_id: d.picture_id()?,
            tl0: d.tl0_pic_idx()?,
            key_idx: d.key_idx()?,
        })
    }
}
