//! The VP9 picture numbering one viewer sees. As with VP8, each simulcast layer numbers its
//! pictures on its own (picture id, and TL0PICIDX in non-flexible mode), and a receiver orders
//! pictures by picture id: after a switch to a layer whose ids are behind, it would take the
//! new keyframe for an old picture. So the ids are continued across a switch by the same
//! shifting as VP8's ([`Vp8Munger`](super::vp8::Vp8Munger), without KEYIDX, which VP9 lacks).
//!
//! str0m patches VP8 descriptors as it serializes, not VP9's, so a shifted VP9 packet is a
//! copy of the payload with the fields rewritten (RFC 9628 payload descriptor):
//!
//! ```text
//! |I|P|L|F|B|E|V|Z|  then, if I: |M| picture id (7 bits, or 15 with M)|
//!                    then, if L: |TID|U|SID|D|, and if F = 0: TL0PICIDX
//! ```
//!
//! A 7-bit picture id is left as it is (it cannot hold the shifted value), as VP8's.

use super::vp8::Vp8Fields;

/// Where the numbering of one VP9 payload descriptor is, and what it says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vp9Numbering {
    /// The 15-bit picture id, at bytes 1 and 2.
    pub picture_id: u16,
    /// TL0PICIDX (non-flexible mode with layer indices), at byte 4.
    pub tl0_pic_idx: Option<u8>,
}

impl Vp9Numbering {
    /// Reads a payload's descriptor; `None` without a 15-bit picture id.
    pub fn parse(payload: &[u8]) -> Option<Vp9Numbering> {
        let (&b0, rest) = payload.split_first()?;
        let (i, l, f) = (b0 & 0x80 != 0, b0 & 0x20 != 0, b0 & 0x10 != 0);
        let (&hi, &lo) = (rest.first()?, rest.get(1)?);
        if !i || hi & 0x80 == 0 {
            return None;
        }
        let tl0_pic_idx = match (l, f) {
            (true, false) => Some(*rest.get(3)?),
            _ => None,
        };
        Some(Vp9Numbering {
            picture_id: u16::from_be_bytes([hi & 0x7f, lo]),
            tl0_pic_idx,
        })
    }

    /// The fields the munger shifts.
    pub fn fields(&self) -> Vp8Fields {
        Vp8Fields {
            picture_id: Some(self.picture_id),
            tl0_pic_idx: self.tl0_pic_idx,
            key_idx: None,
        }
    }

    /// A copy of `payload` (whose descriptor this is) with the fields `out`.
    pub fn rewrite(&self, payload: &[u8], out: Vp8Fields) -> Vec<u8> {
        let mut copy = payload.to_vec();
        if let (Some(pid), Some(bytes)) = (out.picture_id, copy.get_mut(1..3)) {
            let [hi, lo] = pid.to_be_bytes();
            bytes.copy_from_slice(&[0x80 | (hi & 0x7f), lo]);
        }
        if let (Some(tl0), Some(_), Some(byte)) =
            (out.tl0_pic_idx, self.tl0_pic_idx, copy.get_mut(4))
        {
            *byte = tl0;
        }
        copy
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::vp8::Vp8Munger;

    #[test]
    fn picture_ids_and_tl0_continue_across_a_switch_in_a_copy() {
        // I, L, B; 15-bit id 0x1234; TID 0; TL0PICIDX 7; then the picture.
        let a = [0xa8, 0x92, 0x34, 0x00, 7, 0xaa];
        let d = Vp9Numbering::parse(&a).unwrap();
        assert_eq!((d.picture_id, d.tl0_pic_idx), (0x1234, Some(7)));
        let mut m = Vp8Munger::default();
        assert_eq!(m.munge(d.fields(), true), None, "the first goes as it is");
        // Another layer's keyframe, numbered on its own.
        let b = [0xa8, 0x80, 0x05, 0x00, 200, 0xbb];
        let d = Vp9Numbering::parse(&b).unwrap();
        let out = m.munge(d.fields(), true).unwrap();
        let copy = d.rewrite(&b, out);
        assert_eq!(copy, [0xa8, 0x92, 0x35, 0x00, 8, 0xbb]);
        assert_eq!(b[1], 0x80, "the original is untouched");
    }

    #[test]
    fn descriptors_without_a_long_picture_id_are_left_and_odd_ones_never_panic() {
        assert_eq!(Vp9Numbering::parse(&[0x88, 0x05, 0xaa]), None, "7-bit id");
        assert_eq!(Vp9Numbering::parse(&[0x08, 0x80, 0x05]), None, "no id");
        // Flexible mode: no TL0PICIDX.
        let d = Vp9Numbering::parse(&[0xb8, 0x80, 0x01, 0x00, 0x11]).unwrap();
        assert_eq!(d.tl0_pic_idx, None);
        for odd in [&[][..], &[0x80], &[0x80, 0x80], &[0xa0, 0x80, 0x01, 0x00]] {
            if let Some(d) = Vp9Numbering::parse(odd) {
                let _ = d.rewrite(odd, d.fields());
            }
        }
    }
}
