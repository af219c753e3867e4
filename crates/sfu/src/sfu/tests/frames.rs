//! Pictures of several packets, as browsers send H264 and VP9, for the test publisher: an
//! H264 keyframe is a STAP-A of its SPS and PPS, then its IDR slice in two FU-A fragments; a
//! predicted picture is a slice in two fragments. A VP9 picture is two or three packets with
//! the payload descriptor's B and E bits, a 15-bit picture id and TL0PICIDX (non-flexible
//! mode), P = 0 on a keyframe. An AV1 picture is two or three packets of one OBU each, with the
//! aggregation header's Z and Y bits, N on a keyframe's first. Each packet
//! ends with a trailer that says which picture of which layer it is part of, so a viewer can
//! tell whether it received whole pictures.

use str0m::format::Codec;

/// The trailer's length: layer, publisher, picture number (2), part, parts, keyframe.
const TRAILER: usize = 7;

/// The packets of one picture: `tail` is the layer, the publisher's id and the picture's
/// number.
pub fn frame_packets(
    codec: Codec,
    keyframe: bool,
    (picture_id, tl0): (u16, u8),
    tail: [u8; 4],
) -> Vec<Vec<u8>> {
    let parts: u8 = if keyframe { 3 } else { 2 };
    let trailer = |part: u8| {
        let mut t = tail.to_vec();
        t.extend([part, parts, u8::from(keyframe)]);
        t
    };
    let mut packets = Vec::new();
    for part in 0..parts {
        let (first, last) = (part == 0, part == parts - 1);
        let mut p = match codec {
            Codec::H264 if keyframe && first => {
                // STAP-A: SPS, PPS, and the trailer as an SEI unit.
                let mut p = vec![0x78, 0, 3, 0x67, 0x42, 0x1f, 0, 3, 0x68, 0xce, 0x3c];
                p.extend([0, TRAILER as u8 + 1, 0x06]);
                p
            }
            Codec::H264 => {
                // FU-A of an IDR (5) or a non-IDR (1) slice.
                let (indicator, nal) = if keyframe { (0x7c, 5) } else { (0x5c, 1) };
                let starts = first || (keyframe && part == 1);
                let header = nal | if starts { 0x80 } else { 0 } | if last { 0x40 } else { 0 };
                vec![indicator, header, 0xb8]
            }
            Codec::Av1 => {
                // Z: continues an OBU; Y: continued in the next; W = 1; N: a new sequence.
                let b0 = if first { 0 } else { 0x80 }
                    | if last { 0 } else { 0x40 }
                    | 0x10
                    | if keyframe && first { 0x08 } else { 0 };
                // An OBU_FRAME header, then its data.
                vec![b0, 0x30, 0xee]
            }
            _ => {
                // VP9: I, P, L, B, E; a 15-bit picture id; TID 0; TL0PICIDX.
                let b0 = 0xa0
                    | if keyframe { 0 } else { 0x40 }
                    | if first { 0x08 } else { 0 }
                    | if last { 0x04 } else { 0 };
                let [hi, lo] = picture_id.to_be_bytes();
                vec![b0, 0x80 | (hi & 0x7f), lo, 0, tl0]
            }
        };
        p.extend(trailer(part));
        packets.push(p);
    }
    packets
}

/// What a viewer read of a packet of an H264, VP9 or AV1 picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameSeen {
    /// The publisher's layer, and the picture's number in it.
    pub layer: u8,
    pub frame: u16,
    /// Which packet of its picture, of how many.
    pub part: u8,
    pub parts: u8,
    /// The picture is a keyframe.
    pub keyframe: bool,
    /// The VP9 picture id and TL0PICIDX, if any.
    pub picture_id: Option<u16>,
    pub tl0: Option<u8>,
}

impl FrameSeen {
    pub fn of(codec: Codec, payload: &[u8]) -> Option<FrameSeen> {
        let t = payload.get(payload.len().checked_sub(TRAILER)?..)?;
        let (picture_id, tl0) = match codec {
            Codec::Vp9 => (
                Some(u16::from_be_bytes([
                    *payload.get(1)? & 0x7f,
                    *payload.get(2)?,
                ])),
                Some(*payload.get(4)?),
            ),
            _ => (None, None),
        };
        Some(FrameSeen {
            layer: t[0],
            frame: u16::from_be_bytes([t[2], t[3]]),
            part: t[4],
            parts: t[5],
            keyframe: t[6] == 1,
            picture_id,
            tl0,
        })
    }
}
