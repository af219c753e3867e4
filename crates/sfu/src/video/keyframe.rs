//! Whether a video packet is the first of a keyframe: the packet a viewer's stream may start
//! with, or switch layers at. A decoder must see the whole keyframe from its first packet, so
//! "some packet of a keyframe" is not enough:
//!
//! - VP8: the start of partition 0 of a picture whose payload header says key (the payload
//!   descriptor, parsed once for the munger).
//! - VP9: P = 0 (not predicted from another picture) and B = 1 (the picture's first packet).
//!   str0m's `detect_vp9_keyframe` reads P alone, true of every packet of a keyframe.
//! - H264: the keyframe's parameter sets come first, and an IDR picture after a switch without
//!   them would be decoded with the other layer's SPS (another resolution) or not at all. So a
//!   packet starts a keyframe if it carries an SPS (alone or in a STAP-A), or if it starts an
//!   IDR picture and is the first packet of its picture (an encoder that sends no parameter
//!   sets in band).
//! - AV1: the aggregation header's N bit (the first packet of a new coded video sequence).
//!
//! Other codecs are not negotiated (see `sfu/signalling.rs`): never a keyframe.

use str0m::format::{self, Codec};
use str0m::rtp::Vp8Descriptor;

/// The H264 NAL unit type of a sequence parameter set.
const H264_SPS: u8 = 7;

/// Whether `payload` of `codec` is the first packet of a keyframe. `vp8`: its VP8 payload
/// descriptor, if parsed; `picture_start`: its timestamp differs from the previous packet's of
/// the same stream (it is the first packet of its picture that arrived).
pub fn starts_keyframe(
    codec: Codec,
    payload: &[u8],
    vp8: Option<&Vp8Descriptor>,
    picture_start: bool,
) -> bool {
    match codec {
        Codec::Vp8 => vp8.is_some_and(|d| d.starts_keyframe(payload)),
        Codec::Vp9 => payload
            .first()
            .is_some_and(|b| b & 0x40 == 0 && b & 0x08 != 0),
        Codec::H264 => {
            format::detect_h264_nalu(payload, H264_SPS)
                || (picture_start && format::detect_h264_keyframe(payload))
        }
        Codec::Av1 => format::detect_av1_keyframe(payload),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A STAP-A of an SPS and a PPS, as browsers send before an IDR picture.
    const STAP_SPS_PPS: [u8; 11] = [0x78, 0, 3, 0x67, 0x42, 0x1f, 0, 3, 0x68, 0xce, 0x3c];
    /// FU-A of an IDR slice: start, middle.
    const FU_IDR_START: [u8; 4] = [0x7c, 0x85, 0xb8, 0];
    const FU_IDR_MIDDLE: [u8; 4] = [0x7c, 0x05, 0xb8, 0];
    /// FU-A start of a non-IDR slice.
    const FU_SLICE_START: [u8; 4] = [0x5c, 0x81, 0x9a, 0];

    #[test]
    fn an_h264_keyframe_starts_at_its_parameter_sets_not_at_its_idr_slice() {
        let h264 = |p: &[u8], start| starts_keyframe(Codec::H264, p, None, start);
        assert!(h264(&STAP_SPS_PPS, true));
        // The IDR slice after the parameter sets, of the same picture: not a start.
        assert!(!h264(&FU_IDR_START, false));
        assert!(!h264(&FU_IDR_MIDDLE, false));
        assert!(!h264(&FU_SLICE_START, true));
        // An SPS alone, in a packet of its own.
        assert!(h264(&[0x67, 0x42, 0x1f], true));
        // An IDR picture without parameter sets in band starts where it starts.
        assert!(h264(&FU_IDR_START, true));
        assert!(!h264(&FU_IDR_MIDDLE, true));
    }

    #[test]
    fn a_vp9_keyframe_starts_at_its_first_packet_only() {
        let vp9 = |b0: u8| starts_keyframe(Codec::Vp9, &[b0, 0x80, 0x01], None, true);
        // I, B: not predicted, beginning of the picture.
        assert!(vp9(0x88));
        // The same keyframe's later packets (B = 0).
        assert!(!vp9(0x84));
        // A predicted picture's first packet.
        assert!(!vp9(0xc8));
    }

    #[test]
    fn an_av1_keyframe_starts_at_a_new_coded_video_sequence() {
        assert!(starts_keyframe(Codec::Av1, &[0x18, 0], None, true));
        assert!(!starts_keyframe(Codec::Av1, &[0x10, 0], None, true));
    }

    #[test]
    fn odd_payloads_are_never_a_keyframe_and_never_panic() {
        for codec in [Codec::Vp8, Codec::Vp9, Codec::H264, Codec::Av1, Codec::H265] {
            for payload in [&[][..], &[0x78], &[0x78, 0xff, 0xff], &[0x7c], &[0xff; 3]] {
                let _ = starts_keyframe(codec, payload, None, true);
            }
            assert!(!starts_keyframe(codec, &[], None, true));
        }
    }
}
