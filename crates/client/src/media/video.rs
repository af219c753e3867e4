//! The synthetic camera: one VP8 stream, or three simulcast layers (rids `q`, `h`, `f`),
//! written as RTP straight onto the session's send streams, with keyframes on a schedule and
//! when the remote asks for one.

use std::time::{Duration, Instant};

use str0m::Rtc;
use str0m::format::Codec;
use str0m::media::{KeyframeRequest, Mid, Pt, Rid};
use str0m::rtp::{RtpWrite, SeqNo};

use super::payload::unix_micros;
use super::vp8::{Layer, LayerEncoder, VIDEO_CLOCK, keyframe_every};

/// The camera's clock: a picture every 1/30 s; a 15 fps layer takes every other one.
pub const VIDEO_TICK: Duration = Duration::from_nanos(1_000_000_000 / 30);
/// Keyframes asked for come at most this often per layer: a request within this time of the
/// last keyframe is answered when the time is up, and requests meanwhile by that one keyframe.
/// A browser's encoder does the same: an SFU asking again and again (or many viewers at once)
/// must not turn a stream into keyframes only.
pub const KEYFRAME_REQUEST_THROTTLE: Duration = Duration::from_millis(200);

/// What video a session publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoOptions {
    /// Three simulcast layers (rids q, h, f); otherwise one stream, made as `single`.
    pub simulcast: bool,
    /// The layer a single stream is made as: its size, rate and frame rate, and the layer its
    /// frames name.
    pub single: Layer,
    /// A keyframe on every layer this often, besides those asked for.
    pub keyframe_interval: Duration,
    /// Offer simulcast as Chrome does, by rids alone, without `a=ssrc` lines: the server must
    /// learn each layer's SSRC from the rid header extension. Otherwise as Firefox does, with
    /// an `a=ssrc` line (and RTX group) per layer as well.
    pub rids_only: bool,
}

impl VideoOptions {
    /// One stream, made as `layer`.
    pub fn single(layer: Layer) -> VideoOptions {
        VideoOptions {
            simulcast: false,
            single: layer,
            keyframe_interval: Duration::from_secs(3),
            rids_only: true,
        }
    }

    /// Three simulcast layers.
    pub fn simulcast() -> VideoOptions {
        VideoOptions {
            simulcast: true,
            ..VideoOptions::single(Layer::F)
        }
    }

    /// The layers sent.
    pub fn layers(&self) -> Vec<Layer> {
        match self.simulcast {
            true => Layer::ALL.to_vec(),
            false => vec![self.single],
        }
    }
}

/// What the camera sent, by layer ([`Layer::index`]; a single stream counts under its layer).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VideoSent {
    pub frames: [u64; 3],
    pub keyframes: [u64; 3],
    pub packets: [u64; 3],
    pub bytes: [u64; 3],
    /// Keyframe requests (PLI or FIR) received.
    pub keyframe_requests: [u64; 3],
    /// Keyframe requests received while another was waiting for its keyframe, and so answered
    /// by that one.
    pub keyframe_requests_merged: [u64; 3],
}

/// The camera's state.
pub(super) struct VideoSender {
    opts: VideoOptions,
    encoders: Vec<LayerEncoder>,
    last_keyframe: [Option<Instant>; 3],
    /// A keyframe was asked for on the layer and is not made yet.
    asked: [bool; 3],
    pt: Option<Pt>,
    /// Pictures taken: a layer's RTP timestamp is this many 1/30 s after its `time0`.
    ticks: u64,
    /// The id written into each frame's tag.
    sender_id: u64,
}

impl VideoSender {
    pub(super) fn new(opts: VideoOptions, sender_id: u64) -> VideoSender {
        // Numbering starts anywhere, as a browser's does: a receiver must not count on zero.
        let mut seed = (sender_id ^ unix_micros()) | 1;
        let encoders = opts
            .layers()
            .into_iter()
            .map(|l| {
                seed = xorshift(seed);
                LayerEncoder::new(l, seed)
            })
            .collect();
        VideoSender {
            opts,
            encoders,
            last_keyframe: [None; 3],
            asked: [false; 3],
            pt: None,
            ticks: 0,
            sender_id,
        }
    }

    pub(super) fn simulcast(&self) -> bool {
        self.opts.simulcast
    }

    /// A keyframe request for our video: counted, and the layer's next frame made a keyframe
    /// (or, if one went out just now, the first after [`KEYFRAME_REQUEST_THROTTLE`]). Returns
    /// the layer, if the request named one of ours.
    pub(super) fn keyframe_request(
        &mut self,
        req: &KeyframeRequest,
        sent: &mut VideoSent,
    ) -> Option<Layer> {
        let layer = match (req.rid, self.opts.simulcast) {
            (Some(rid), true) => Layer::from_rid(&rid)?,
            (None, false) => self.opts.single,
            // A single stream asked by rid, or a layer without one: not ours.
            _ => return None,
        };
        let i = layer.index();
        sent.keyframe_requests[i] += 1;
        if self.asked[i] {
            sent.keyframe_requests_merged[i] += 1;
        }
        self.asked[i] = true;
        Some(layer)
    }

    /// One tick of the camera: a frame on each layer whose frame rate takes this picture,
    /// written to `mid`'s send streams. Nothing before the session negotiated VP8 on `mid`.
    pub(super) fn tick(&mut self, rtc: &mut Rtc, mid: Mid, now: Instant, sent: &mut VideoSent) {
        let Some(pt) = self.pt.or_else(|| vp8_pt(rtc, mid)) else {
            return;
        };
        self.pt = Some(pt);
        let tick = self.ticks;
        self.ticks += 1;
        let since_first = (tick * u64::from(VIDEO_CLOCK) / 30) as u32;
        let sender = self.sender_id;
        let sent_us = unix_micros();
        let simulcast = self.opts.simulcast;
        let interval = self.opts.keyframe_interval;
        let mut api = rtc.direct_api();
        for enc in &mut self.encoders {
            let layer = enc.layer;
            if !tick.is_multiple_of(u64::from(30 / layer.fps())) {
                continue;
            }
            let rid = simulcast.then(|| Rid::from(layer.rid()));
            let Some(stream) = api.stream_tx_by_mid(mid, rid) else {
                continue;
            };
            let i = layer.index();
            let due = self.last_keyframe[i]
                .is_none_or(|t| now.saturating_duration_since(t) >= KEYFRAME_REQUEST_THROTTLE);
            if self.asked[i] && due {
                self.asked[i] = false;
                enc.keyframe_asked = true;
            }
            let seq = enc.seq;
            let time = enc.time0.wrapping_add(since_first);
            let (keyframe, packets) =
                enc.next_frame(sender, sent_us, keyframe_every(layer, interval));
            sent.frames[i] += 1;
            sent.packets[i] += packets.len() as u64;
            if keyframe {
                sent.keyframes[i] += 1;
                self.last_keyframe[i] = Some(now);
            }
            for (n, (payload, last)) in packets.into_iter().enumerate() {
                sent.bytes[i] += payload.len() as u64;
                let seq = SeqNo::from(seq + n as u64);
                let write = RtpWrite::new(pt, seq, time, now, payload)
                    .marker(last)
                    .nackable(true);
                stream.write_rtp(write);
            }
        }
    }

    pub(super) fn set_sender(&mut self, id: u64) {
        self.sender_id = id;
    }
}

/// The VP8 payload type negotiated on `mid`, once it is.
fn vp8_pt(rtc: &mut Rtc, mid: Mid) -> Option<Pt> {
    rtc.writer(mid)?
        .payload_params()
        .find(|p| p.spec().codec == Codec::Vp8)
        .map(|p| p.pt())
}

fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use str0m::media::KeyframeRequestKind;

    fn request(rid: Option<&str>) -> KeyframeRequest {
        KeyframeRequest {
            mid: Mid::from("1"),
            rid: rid.map(Rid::from),
            kind: KeyframeRequestKind::Pli,
        }
    }

    #[test]
    fn keyframe_requests_are_counted_by_layer_and_merged_while_one_waits() {
        let mut camera = VideoSender::new(VideoOptions::simulcast(), 7);
        let mut sent = VideoSent::default();
        assert_eq!(
            camera.keyframe_request(&request(Some("h")), &mut sent),
            Some(Layer::H)
        );
        assert_eq!(
            camera.keyframe_request(&request(Some("h")), &mut sent),
            Some(Layer::H)
        );
        assert_eq!(
            camera.keyframe_request(&request(Some("q")), &mut sent),
            Some(Layer::Q)
        );
        assert_eq!(sent.keyframe_requests, [1, 2, 0]);
        assert_eq!(sent.keyframe_requests_merged, [0, 1, 0]);
        // Not ours: an unknown rid, or none on a simulcast camera.
        assert_eq!(
            camera.keyframe_request(&request(Some("x")), &mut sent),
            None
        );
        assert_eq!(camera.keyframe_request(&request(None), &mut sent), None);
        assert_eq!(sent.keyframe_requests, [1, 2, 0]);

        // A single stream is asked without a rid, and counts under the layer it is made as.
        let mut single = VideoSender::new(VideoOptions::single(Layer::F), 7);
        let mut sent = VideoSent::default();
        assert_eq!(
            single.keyframe_request(&request(None), &mut sent),
            Some(Layer::F)
        );
        assert_eq!(
            single.keyframe_request(&request(Some("f")), &mut sent),
            None
        );
        assert_eq!(sent.keyframe_requests, [0, 0, 1]);
    }
}
