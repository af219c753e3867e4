//! RED (RFC 2198): parsing a redundant payload, rewriting its block payload types, and
//! recovering frames lost on the way in from the redundancy of later packets.

use std::sync::Arc;

use str0m::rtp::SeqNo;

/// The most redundant blocks of a RED payload we look at. Browsers send one or two.
pub const MAX_RED_BLOCKS: usize = 8;

/// A parsed RED payload: redundant blocks, oldest first, then the primary block.
#[derive(Debug)]
pub struct Red<'a> {
    redundant: [(u8, u32, &'a [u8]); MAX_RED_BLOCKS],
    count: usize,
    pub primary_pt: u8,
    pub primary: &'a [u8],
}

impl<'a> Red<'a> {
    /// Parses an RFC 2198 payload. `None` if malformed or with more than [`MAX_RED_BLOCKS`]
    /// redundant blocks. Never panics, whatever the bytes.
    pub fn parse(data: &'a [u8]) -> Option<Red<'a>> {
        let mut headers = [(0u8, 0u32, 0usize); MAX_RED_BLOCKS];
        let mut count = 0;
        let mut i = 0;
        let primary_pt = loop {
            let first = *data.get(i)?;
            if first & 0x80 == 0 {
                i += 1;
                break first & 0x7f;
            }
            let h = data.get(i..i + 4)?;
            if count == MAX_RED_BLOCKS {
                return None;
            }
            let ts_offset = ((h[1] as u32) << 6) | ((h[2] as u32) >> 2);
            let len = (((h[2] as usize) & 0x03) << 8) | h[3] as usize;
            headers[count] = (h[0] & 0x7f, ts_offset, len);
            count += 1;
            i += 4;
        };
        let mut redundant = [(0u8, 0u32, &data[..0]); MAX_RED_BLOCKS];
        for (slot, &(pt, offset, len)) in redundant.iter_mut().zip(&headers[..count]) {
            let block = data.get(i..i.checked_add(len)?)?;
            *slot = (pt, offset, block);
            i += len;
        }
        Some(Red {
            redundant,
            count,
            primary_pt,
            primary: data.get(i..)?,
        })
    }

    /// The redundant blocks, oldest first: (payload type, timestamp offset, payload).
    pub fn redundant(&self) -> &[(u8, u32, &'a [u8])] {
        &self.redundant[..self.count]
    }
}

/// A copy of a RED payload with every block's payload type `from` changed to `to`.
pub fn rewrite_red_pt(data: &[u8], from: u8, to: u8) -> Arc<[u8]> {
    let mut out = data.to_vec();
    let mut i = 0;
    while let Some(b) = out.get_mut(i) {
        let last = *b & 0x80 == 0;
        if *b & 0x7f == from {
            *b = (*b & 0x80) | (to & 0x7f);
        }
        if last {
            break;
        }
        i += 4;
    }
    out.into()
}

/// A RED payload holding `data` alone, as its primary block of payload type `pt`.
pub fn wrap_in_red(data: &[u8], pt: u8) -> Arc<[u8]> {
    let mut out = Vec::with_capacity(data.len() + 1);
    out.push(pt & 0x7f);
    out.extend_from_slice(data);
    out.into()
}

/// Which recent sequence numbers of a RED source have been delivered (received, or recovered
/// from a later packet's redundancy), so that a lost frame is recovered once and only when it
/// is really missing.
#[derive(Debug, Default)]
pub struct RedRecovery {
    /// The first sequence number received: nothing older is recovered.
    first: u64,
    highest: Option<u64>,
    /// Bit `i`: `highest - i` was delivered.
    seen: u64,
}

impl RedRecovery {
    /// Marks `seq` delivered. Returns false if it already was (a late original of a frame
    /// already recovered).
    pub fn deliver(&mut self, seq: u64) -> bool {
        let Some(highest) = self.highest else {
            self.first = seq;
            self.highest = Some(seq);
            self.seen = 1;
            return true;
        };
        if seq > highest {
            let shift = seq - highest;
            self.seen = if shift >= 64 { 0 } else { self.seen << shift };
            self.seen |= 1;
            self.highest = Some(seq);
            return true;
        }
        let back = highest - seq;
        if back >= 64 {
            // Too old to tell: let it through.
            return true;
        }
        let bit = 1u64 << back;
        let fresh = self.seen & bit == 0;
        self.seen |= bit;
        fresh
    }

    /// Whether `seq` is missing: not older than the first packet, older than the newest,
    /// recent enough to tell, and not delivered.
    pub fn is_missing(&self, seq: u64) -> bool {
        let Some(highest) = self.highest else {
            return false;
        };
        seq >= self.first
            && seq < highest
            && highest - seq < 64
            && self.seen & (1u64 << (highest - seq)) == 0
    }
}

/// A frame recovered from a RED packet's redundancy.
#[derive(Debug, Clone)]
pub struct Recovered {
    pub seq: SeqNo,
    pub ts: u32,
    pub payload: Arc<[u8]>,
}

/// For an incoming RED packet `seq` with timestamp `ts`, the frames its redundancy recovers
/// (oldest first), marking them and the packet delivered. The redundant blocks are taken as the
/// packets right before this one, oldest first, as browsers send them. Returns whether the
/// packet's own primary is new (false: it was recovered before).
pub fn recover(
    state: &mut RedRecovery,
    red: &Red<'_>,
    seq: SeqNo,
    ts: u32,
    out: &mut Vec<Recovered>,
) -> bool {
    let seq = *seq;
    let new = state.deliver(seq);
    let blocks = red.redundant();
    let n = blocks.len() as u64;
    let mut previous_offset = u32::MAX;
    for (k, &(pt, offset, payload)) in blocks.iter().enumerate() {
        // Oldest first: offsets must fall towards the primary; otherwise the blocks are not
        // the consecutive frames we take them for.
        let ordered = offset < previous_offset;
        previous_offset = offset;
        let Some(block_seq) = seq.checked_sub(n - k as u64) else {
            continue;
        };
        if !ordered || pt != red.primary_pt || offset == 0 || !state.is_missing(block_seq) {
            continue;
        }
        state.deliver(block_seq);
        out.push(Recovered {
            seq: block_seq.into(),
            ts: ts.wrapping_sub(offset),
            payload: payload.into(),
        });
    }
    new
}

#[cfg(test)]
mod tests {
    use super::*;

    fn red(blocks: &[(u8, u32, &[u8])], primary_pt: u8, primary: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for (pt, offset, payload) in blocks {
            let len = payload.len() as u32;
            out.push(0x80 | pt);
            out.push((offset >> 6) as u8);
            out.push((((offset & 0x3f) << 2) | (len >> 8)) as u8);
            out.push(len as u8);
        }
        out.push(primary_pt);
        for (_, _, payload) in blocks {
            out.extend_from_slice(payload);
        }
        out.extend_from_slice(primary);
        out
    }

    #[test]
    fn red_payloads_parse_and_malformed_ones_do_not() {
        let data = red(&[(111, 1920, &[1, 2]), (111, 960, &[3])], 111, &[4, 5, 6]);
        let r = Red::parse(&data).unwrap();
        assert_eq!(
            r.redundant(),
            &[(111, 1920, &[1u8, 2][..]), (111, 960, &[3u8][..])]
        );
        assert_eq!((r.primary_pt, r.primary), (111, &[4u8, 5, 6][..]));
        // Truncated anywhere: refused, never a panic.
        for cut in 0..data.len() - 3 {
            assert!(Red::parse(&data[..cut]).is_none(), "cut at {cut}");
        }
        // Too many blocks.
        let many: Vec<(u8, u32, &[u8])> = (0..9).map(|_| (111, 960, &[][..])).collect();
        assert!(Red::parse(&red(&many, 111, &[1])).is_none());
        assert!(Red::parse(&[0xff; 40]).is_none());
    }

    #[test]
    fn a_plain_payload_wrapped_in_red_parses_back_as_its_primary() {
        let wrapped = wrap_in_red(&[9, 8, 7], 111);
        let r = Red::parse(&wrapped).unwrap();
        assert!(r.redundant().is_empty());
        assert_eq!((r.primary_pt, r.primary), (111, &[9u8, 8, 7][..]));
        assert_eq!(&wrap_in_red(&[], 255)[..], &[127u8][..]);
    }

    #[test]
    fn rewriting_the_pt_changes_the_block_headers_only() {
        let data = red(&[(111, 960, &[111, 111])], 111, &[111]);
        let out = rewrite_red_pt(&data, 111, 109);
        assert_eq!(&out[..], &red(&[(109, 960, &[111, 111])], 109, &[111])[..]);
        // A malformed payload is copied, not refused, and nothing panics.
        assert_eq!(rewrite_red_pt(&[0x80 | 111, 0, 0], 111, 1).len(), 3);
    }

    #[test]
    fn a_lost_frame_is_recovered_once_from_the_next_packet() {
        let mut state = RedRecovery::default();
        let mut out = Vec::new();
        let packet = |n: u8| red(&[(111, 960, &[n - 1])], 111, &[n]);
        for n in 1..=3u8 {
            let data = packet(n);
            let r = Red::parse(&data).unwrap();
            assert!(recover(
                &mut state,
                &r,
                (n as u64).into(),
                n as u32 * 960,
                &mut out
            ));
        }
        assert!(out.is_empty(), "nothing lost, nothing recovered");
        // 4 is lost; 5 brings it back.
        let data = packet(5);
        let r = Red::parse(&data).unwrap();
        assert!(recover(&mut state, &r, 5.into(), 5 * 960, &mut out));
        assert_eq!(out.len(), 1);
        assert_eq!(
            (*out[0].seq, out[0].ts, &out[0].payload[..]),
            (4, 4 * 960, &[4u8][..])
        );
        // 4 arriving late is not delivered twice; nor recovered again from a duplicate of 5.
        out.clear();
        let data = packet(4);
        let r = Red::parse(&data).unwrap();
        assert!(!recover(&mut state, &r, 4.into(), 4 * 960, &mut out));
        assert!(out.is_empty());
    }
}
