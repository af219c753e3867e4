//! Synthetic VP8: frames of a camera's size and rate, without an encoder. Each RTP payload is a
//! real VP8 payload descriptor (RFC 7741: X bit, 15-bit PictureID, TL0PICIDX, TID/KEYIDX), the
//! frame's first packet starts with a VP8 payload header whose P bit says keyframe or not (and
//! a keyframe's start code and size), and then a tag that names the layer, the frame and the
//! sender, so whoever receives it can tell what it got and from where.

use std::time::Duration;

/// The largest RTP payload a frame is split into (descriptor included): below any path's MTU
/// with the RTP header, extensions and SRTP tag around it.
pub const MAX_VIDEO_PAYLOAD: usize = 1100;
/// A keyframe is this many times the size of a frame between keyframes.
const KEYFRAME_SIZE_FACTOR: usize = 3;
/// The payload descriptor's length: required octet, X octet, PictureID (2), TL0PICIDX,
/// TID/Y/KEYIDX.
const DESCRIPTOR_LEN: usize = 6;
/// Marks our video tags.
const VIDEO_MAGIC: &[u8; 4] = b"F4CV";
/// The tag's length: magic, layer, frame number, sender, send time.
pub const VIDEO_TAG_LEN: usize = 4 + 1 + 4 + 8 + 8;
/// The 90 kHz RTP clock of video.
pub const VIDEO_CLOCK: u32 = 90_000;

/// A layer of the synthetic camera, low to high: its simulcast rid is `q`, `h` or `f`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Layer {
    /// Quarter: 320×180, about 150 kbit/s at 15 frames a second.
    Q,
    /// Half: 640×360, about 500 kbit/s at 30 frames a second.
    H,
    /// Full: 1280×720, about 1.5 Mbit/s at 30 frames a second.
    F,
}

impl Layer {
    /// Every layer, low to high.
    pub const ALL: [Layer; 3] = [Layer::Q, Layer::H, Layer::F];

    /// The layer's place, low to high: 0, 1, 2.
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn from_index(i: u8) -> Option<Layer> {
        Layer::ALL.get(usize::from(i)).copied()
    }

    /// The simulcast rid.
    pub fn rid(self) -> &'static str {
        match self {
            Layer::Q => "q",
            Layer::H => "h",
            Layer::F => "f",
        }
    }

    pub fn from_rid(rid: &str) -> Option<Layer> {
        Layer::ALL.into_iter().find(|l| l.rid() == rid)
    }

    /// The layer's bit rate between keyframes, bits per second.
    pub fn bitrate(self) -> u32 {
        match self {
            Layer::Q => 150_000,
            Layer::H => 500_000,
            Layer::F => 1_500_000,
        }
    }

    /// Frames per second.
    pub fn fps(self) -> u32 {
        match self {
            Layer::Q => 15,
            Layer::H | Layer::F => 30,
        }
    }

    /// Width and height, as a keyframe's header says them.
    pub fn size(self) -> (u16, u16) {
        match self {
            Layer::Q => (320, 180),
            Layer::H => (640, 360),
            Layer::F => (1280, 720),
        }
    }

    /// The size of a frame between keyframes, bytes.
    pub fn frame_bytes(self) -> usize {
        (self.bitrate() / 8 / self.fps()) as usize
    }
}

/// What a received frame's tag says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoTag {
    pub layer: Layer,
    /// The frame's number in its layer, from 0.
    pub frame: u32,
    /// The sender's id.
    pub sender: u64,
    /// When it was sent, µs since the Unix epoch.
    pub sent_us: u64,
}

/// One layer's encoder state: its numbering, and when its next keyframe is due.
#[derive(Debug, Clone)]
pub struct LayerEncoder {
    pub layer: Layer,
    /// The next RTP sequence number (extended: str0m carries the rollover itself).
    pub seq: u64,
    /// The next frame's number.
    pub frame: u32,
    /// The RTP timestamp of the camera's first picture on this layer: each layer starts its
    /// own clock anywhere, as a browser's simulcast streams do, so a forwarder switching layers
    /// must map one's timestamps onto the other's.
    pub time0: u32,
    picture_id: u16,
    tl0_pic_idx: u8,
    key_idx: u8,
    /// Frames until the next scheduled keyframe (0: the next frame is one).
    until_keyframe: u32,
    /// A keyframe was asked for and is not sent yet.
    pub keyframe_asked: bool,
}

/// One packet of a frame: its RTP payload and whether it is the frame's last.
pub type VideoPacket = (Vec<u8>, bool);

impl LayerEncoder {
    /// A layer whose numbering starts at values drawn from `seed`.
    pub fn new(layer: Layer, seed: u64) -> LayerEncoder {
        LayerEncoder {
            layer,
            // Below 2^15: far from the first rollover, which a receiver handles anyway.
            seq: seed & 0x7fff,
            frame: 0,
            time0: (seed >> 40) as u32,
            picture_id: (seed >> 16) as u16 & 0x7fff,
            tl0_pic_idx: (seed >> 32) as u8,
            key_idx: 0,
            until_keyframe: 0,
            keyframe_asked: false,
        }
    }

    /// Makes the next frame (a keyframe when due or asked for), `sender`'s, sent at `sent_us`;
    /// a keyframe every `keyframe_every` frames. Returns whether it is a keyframe, and its
    /// packets.
    pub fn next_frame(
        &mut self,
        sender: u64,
        sent_us: u64,
        keyframe_every: u32,
    ) -> (bool, Vec<VideoPacket>) {
        let keyframe = self.until_keyframe == 0 || self.keyframe_asked;
        if keyframe {
            self.until_keyframe = keyframe_every.max(1);
            self.keyframe_asked = false;
            self.key_idx = (self.key_idx + 1) & 0x1f;
        }
        self.until_keyframe -= 1;
        let tag = VideoTag {
            layer: self.layer,
            frame: self.frame,
            sender,
            sent_us,
        };
        let size = self.layer.frame_bytes() * if keyframe { KEYFRAME_SIZE_FACTOR } else { 1 };
        let data = frame_data(keyframe, self.layer.size(), &tag, size);
        let mut packets = Vec::new();
        let chunks = data.chunks(MAX_VIDEO_PAYLOAD - DESCRIPTOR_LEN);
        let count = chunks.len();
        for (i, chunk) in chunks.enumerate() {
            let mut payload = Vec::with_capacity(DESCRIPTOR_LEN + chunk.len());
            // X, and S on the first packet of the frame (partition 0 throughout).
            payload.push(if i == 0 { 0x90 } else { 0x80 });
            // I, L, T, K: PictureID, TL0PICIDX, TID and KEYIDX present.
            payload.push(0xf0);
            payload.push(0x80 | (self.picture_id >> 8) as u8);
            payload.push(self.picture_id as u8);
            payload.push(self.tl0_pic_idx);
            // TID 0 (every frame is a base-layer frame), Y 1, KEYIDX.
            payload.push(0x20 | self.key_idx);
            payload.extend_from_slice(chunk);
            packets.push((payload, i + 1 == count));
        }
        self.seq += count as u64;
        self.frame = self.frame.wrapping_add(1);
        self.picture_id = (self.picture_id + 1) & 0x7fff;
        self.tl0_pic_idx = self.tl0_pic_idx.wrapping_add(1);
        (keyframe, packets)
    }
}

/// A frame's bytes: the VP8 payload header (a keyframe's with its start code and size), the
/// tag, and filler up to `size`.
fn frame_data(keyframe: bool, (w, h): (u16, u16), tag: &VideoTag, size: usize) -> Vec<u8> {
    let header_len = if keyframe { 10 } else { 3 };
    let size = size.max(header_len + VIDEO_TAG_LEN);
    let mut data = Vec::with_capacity(size);
    // The frame tag, 24 bits little-endian: P (0 for a keyframe), version 0, show_frame 1,
    // and the first partition's size (here, what follows the header).
    let first_part = ((size - header_len) as u32).min(0x7ffff);
    let bits = u32::from(!keyframe) | (1 << 4) | (first_part << 5);
    data.extend_from_slice(&bits.to_le_bytes()[..3]);
    if keyframe {
        data.extend_from_slice(&[0x9d, 0x01, 0x2a]);
        data.extend_from_slice(&(w & 0x3fff).to_le_bytes());
        data.extend_from_slice(&(h & 0x3fff).to_le_bytes());
    }
    data.extend_from_slice(VIDEO_MAGIC);
    data.push(tag.layer as u8);
    data.extend_from_slice(&tag.frame.to_be_bytes());
    data.extend_from_slice(&tag.sender.to_be_bytes());
    data.extend_from_slice(&tag.sent_us.to_be_bytes());
    data.resize(size, 0);
    data
}

/// A received frame (the depacketized VP8 data, descriptors gone): whether its payload header
/// says keyframe, and its tag if it is one of ours.
pub fn parse_video_frame(data: &[u8]) -> (bool, Option<VideoTag>) {
    let Some(first) = data.first() else {
        return (false, None);
    };
    let keyframe = first & 0x01 == 0;
    let header_len = if keyframe { 10 } else { 3 };
    let tag = data
        .get(header_len..header_len + VIDEO_TAG_LEN)
        .and_then(|t| {
            if &t[..4] != VIDEO_MAGIC {
                return None;
            }
            Some(VideoTag {
                layer: Layer::from_index(t[4])?,
                frame: u32::from_be_bytes(t[5..9].try_into().ok()?),
                sender: u64::from_be_bytes(t[9..17].try_into().ok()?),
                sent_us: u64::from_be_bytes(t[17..25].try_into().ok()?),
            })
        });
    (keyframe, tag)
}

/// How many frames apart keyframes come for a layer, for a keyframe every `interval`.
pub fn keyframe_every(layer: Layer, interval: Duration) -> u32 {
    ((interval.as_millis() as u64 * u64::from(layer.fps())) / 1000).max(1) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use str0m::format::detect_vp8_keyframe;
    use str0m::rtp::Vp8Descriptor;

    /// The frame's bytes again, from its packets' payloads.
    fn depacketize(packets: &[VideoPacket]) -> Vec<u8> {
        packets
            .iter()
            .flat_map(|(p, _)| p[DESCRIPTOR_LEN..].to_vec())
            .collect()
    }

    #[test]
    fn frames_are_split_into_small_packets_with_the_marker_on_the_last() {
        for layer in Layer::ALL {
            let mut enc = LayerEncoder::new(layer, 0x1234_5678_9abc);
            for n in 0..5 {
                let (key, packets) = enc.next_frame(7, 99, 30);
                assert_eq!(key, n == 0, "the first frame is a keyframe");
                assert!(packets.iter().all(|(p, _)| p.len() <= MAX_VIDEO_PAYLOAD));
                let markers: Vec<bool> = packets.iter().map(|(_, m)| *m).collect();
                assert_eq!(markers.iter().filter(|m| **m).count(), 1);
                assert_eq!(markers.last(), Some(&true));
                let bytes = depacketize(&packets).len();
                let expected = layer.frame_bytes() * if key { KEYFRAME_SIZE_FACTOR } else { 1 };
                assert_eq!(bytes, expected, "{layer:?}");
            }
        }
        // Real sizes: the full layer's frame takes several packets, the quarter's two.
        assert_eq!(Layer::F.frame_bytes(), 6250);
        assert_eq!(Layer::Q.frame_bytes(), 1250);
    }

    #[test]
    fn descriptors_parse_and_keyframes_are_seen_on_their_first_packet() {
        let mut enc = LayerEncoder::new(Layer::H, 0x7fff_0001_7ffe);
        let mut last_pid = None;
        for n in 0..70u32 {
            let (key, packets) = enc.next_frame(3, 5, 30);
            assert_eq!(key, n % 30 == 0, "frame {n}");
            for (i, (p, _)) in packets.iter().enumerate() {
                let d = Vp8Descriptor::parse(p).expect("a valid descriptor");
                let pid = d.picture_id().expect("a PictureID");
                assert!(d.tl0_pic_idx().is_some() && d.key_idx().is_some());
                assert_eq!(d.starts_keyframe(p), key && i == 0);
                assert_eq!(detect_vp8_keyframe(p), key && i == 0);
                if i == 0 {
                    if let Some(last) = last_pid {
                        assert_eq!(pid, (last + 1) & 0x7fff, "PictureIDs go on, wrapping");
                    }
                    last_pid = Some(pid);
                }
            }
            let (parsed_key, tag) = parse_video_frame(&depacketize(&packets));
            assert_eq!(parsed_key, key);
            let tag = tag.expect("our tag");
            assert_eq!(
                (tag.layer, tag.frame, tag.sender, tag.sent_us),
                (Layer::H, n, 3, 5)
            );
        }
    }

    #[test]
    fn a_requested_keyframe_comes_next_and_restarts_the_schedule() {
        let mut enc = LayerEncoder::new(Layer::Q, 1);
        let keys: Vec<bool> = (0..12)
            .map(|n| {
                if n == 4 {
                    enc.keyframe_asked = true;
                }
                enc.next_frame(1, 1, 5).0
            })
            .collect();
        let at: Vec<usize> = (0..12).filter(|i| keys[*i]).collect();
        assert_eq!(at, vec![0, 4, 9]);
    }

    #[test]
    fn layers_and_rids_match_and_strange_frames_are_not_ours() {
        for l in Layer::ALL {
            assert_eq!(Layer::from_rid(l.rid()), Some(l));
            assert_eq!(Layer::from_index(l.index() as u8), Some(l));
        }
        assert_eq!(Layer::from_rid("x"), None);
        assert_eq!(Layer::from_index(3), None);
        assert_eq!(parse_video_frame(&[]), (false, None));
        assert_eq!(parse_video_frame(&[0x01; 40]).1, None);
        assert_eq!(parse_video_frame(&[0x00]).1, None);
        assert_eq!(keyframe_every(Layer::Q, Duration::from_secs(2)), 30);
        assert_eq!(keyframe_every(Layer::F, Duration::ZERO), 1);
    }
}
