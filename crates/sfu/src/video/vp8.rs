//! The VP8 picture numbering one viewer sees: each simulcast layer numbers its pictures on its
//! own (picture id, TL0PICIDX, KEYIDX), so a switch of layer would make them jump; a decoder
//! takes a jump in the picture id for loss. The munger shifts each field by an offset fixed at
//! each switch, so the viewer's numbering continues one past the last picture it was sent.
//!
//! Only VP8 carries these fields in its payload descriptor; other codecs get sequence numbers
//! and timestamps continued (see the rewriter) and nothing more.

/// The 15-bit picture id wraps here.
const PICTURE_ID_SPAN: u16 = 1 << 15;
/// KEYIDX is five bits.
const KEY_IDX_SPAN: u8 = 1 << 5;

/// The numbering fields of one VP8 payload descriptor, each if present.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Vp8Fields {
    pub picture_id: Option<u16>,
    pub tl0_pic_idx: Option<u8>,
    pub key_idx: Option<u8>,
}

impl Vp8Fields {
    pub fn of(d: &str0m::rtp::Vp8Descriptor) -> Vp8Fields {
        Vp8Fields {
            picture_id: d.picture_id(),
            tl0_pic_idx: d.tl0_pic_idx(),
            key_idx: d.key_idx(),
        }
    }
}

/// One outgoing VP8 stream's picture numbering.
#[derive(Debug, Clone, Default)]
pub struct Vp8Munger {
    /// What is added to each field (modulo its span).
    offset: Vp8Fields,
    /// The last fields sent.
    last: Vp8Fields,
}

impl Vp8Munger {
    /// The fields to send for a packet with `fields`; `switched`: it is the first packet of a
    /// new source layer, whose numbering continues right after the last sent. `None`: send
    /// the packet as it is (nothing shifted).
    pub fn munge(&mut self, fields: Vp8Fields, switched: bool) -> Option<Vp8Fields> {
        if switched {
            // The next value after the last one sent, minus the incoming one.
            let pid = |last: u16, now: u16| {
                let span = u32::from(PICTURE_ID_SPAN);
                let (last, now) = (u32::from(last) % span, u32::from(now) % span);
                ((last + 1 + span - now) % span) as u16
            };
            if let (Some(last), Some(now)) = (self.last.picture_id, fields.picture_id) {
                self.offset.picture_id = Some(pid(last, now));
            }
            if let (Some(last), Some(now)) = (self.last.tl0_pic_idx, fields.tl0_pic_idx) {
                self.offset.tl0_pic_idx = Some(last.wrapping_add(1).wrapping_sub(now));
            }
            if let (Some(last), Some(now)) = (self.last.key_idx, fields.key_idx) {
                let next = (last % KEY_IDX_SPAN + 1) % KEY_IDX_SPAN;
                self.offset.key_idx =
                    Some((next + KEY_IDX_SPAN - now % KEY_IDX_SPAN) % KEY_IDX_SPAN);
            }
        }
        let out = Vp8Fields {
            picture_id: fields.picture_id.map(|v| {
                let off = self.offset.picture_id.unwrap_or(0);
                (v % PICTURE_ID_SPAN + off) % PICTURE_ID_SPAN
            }),
            tl0_pic_idx: fields
                .tl0_pic_idx
                .map(|v| v.wrapping_add(self.offset.tl0_pic_idx.unwrap_or(0))),
            key_idx: fields.key_idx.map(|v| {
                let off = self.offset.key_idx.unwrap_or(0);
                (v % KEY_IDX_SPAN + off) % KEY_IDX_SPAN
            }),
        };
        // Each field keeps its last value when a packet lacks it.
        self.last = Vp8Fields {
            picture_id: out.picture_id.or(self.last.picture_id),
            tl0_pic_idx: out.tl0_pic_idx.or(self.last.tl0_pic_idx),
            key_idx: out.key_idx.or(self.last.key_idx),
        };
        (out != fields).then_some(out)
    }

    /// The patch that writes `out` into the descriptor `d`, for str0m to apply as it
    /// serializes. `None` if the descriptor cannot hold it (a 7-bit picture id): the packet
    /// then goes as it is.
    pub fn patch(d: &str0m::rtp::Vp8Descriptor, out: Vp8Fields) -> Option<str0m::rtp::Vp8Patch> {
        let mut b = d.patch();
        if let Some(v) = out.picture_id {
            b = b.picture_id(v);
        }
        if let Some(v) = out.tl0_pic_idx {
            b = b.tl0_pic_idx(v);
        }
        if let Some(v) = out.key_idx {
            b = b.key_idx(v);
        }
        b.build().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(pid: u16, tl0: u8, key: u8) -> Vp8Fields {
        Vp8Fields {
            picture_id: Some(pid),
            tl0_pic_idx: Some(tl0),
            key_idx: Some(key),
        }
    }

    #[test]
    fn the_first_layer_passes_as_it_is_and_a_switch_continues_its_numbering() {
        let mut m = Vp8Munger::default();
        assert_eq!(
            m.munge(f(100, 7, 3), true),
            None,
            "nothing sent before: as it is"
        );
        assert_eq!(m.munge(f(101, 8, 3), false), None);
        // Another layer, numbered on its own, continues at 102 / 9 / 4.
        assert_eq!(m.munge(f(5000, 200, 30), true), Some(f(102, 9, 4)));
        assert_eq!(
            m.munge(f(5000, 200, 30), false),
            Some(f(102, 9, 4)),
            "same picture"
        );
        assert_eq!(m.munge(f(5001, 201, 30), false), Some(f(103, 10, 4)));
        // And back.
        assert_eq!(m.munge(f(110, 15, 3), true), Some(f(104, 11, 5)));
    }

    #[test]
    fn numbering_wraps_within_each_fields_width() {
        let mut m = Vp8Munger::default();
        m.munge(f(0x7fff, 255, 31), true);
        assert_eq!(m.munge(f(9, 9, 9), true), Some(f(0, 0, 0)));
        assert_eq!(m.munge(f(0x7fff, 8, 8), false), Some(f(0x7ff6, 255, 31)));
    }

    #[test]
    fn the_patch_writes_the_fields_into_the_descriptor() {
        let payload = [0x90, 0xf0, 0x81, 0x23, 0x07, 0x22, 0x00, 0x01];
        let d = str0m::rtp::Vp8Descriptor::parse(&payload).unwrap();
        assert_eq!(Vp8Fields::of(&d), f(0x123, 7, 2));
        assert!(Vp8Munger::patch(&d, f(0x7fff, 1, 31)).is_some());
        let short = str0m::rtp::Vp8Descriptor::parse(&[0x90, 0x80, 0x05, 0x00]).unwrap();
        let only_pid = Vp8Fields {
            picture_id: Some(0x1000),
            ..Default::default()
        };
        assert!(Vp8Munger::patch(&short, only_pid).is_none(), "a 7-bit id");
    }

    #[test]
    fn any_fields_never_panic_and_stay_within_their_widths() {
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut m = Vp8Munger::default();
        for _ in 0..50_000 {
            let n = next();
            let some = |bit: u64| n & (1 << bit) != 0;
            let fields = Vp8Fields {
                picture_id: some(0).then_some((n >> 8) as u16),
                tl0_pic_idx: some(1).then_some((n >> 24) as u8),
                key_idx: some(2).then_some((n >> 32) as u8),
            };
            let out = m.munge(fields, some(3)).unwrap_or(fields);
            if fields.picture_id.is_some_and(|p| p < PICTURE_ID_SPAN) {
                assert!(out.picture_id.unwrap() < PICTURE_ID_SPAN);
            }
            if fields.key_idx.is_some_and(|k| k < KEY_IDX_SPAN) {
                assert!(out.key_idx.unwrap() < KEY_IDX_SPAN);
            }
        }
    }
}
