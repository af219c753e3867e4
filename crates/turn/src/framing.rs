//! Framing of TURN over streams (TCP and TLS), and ChannelData.
//!
//! On a stream, STUN messages and ChannelData messages follow each other with no other
//! delimiter (RFC 8656 §12.5): a STUN message is its 20-byte header plus the length in that
//! header; a ChannelData message is its 4-byte header plus the length in that header, padded
//! to a multiple of 4. The two are told apart by the first two bits (`00` STUN, `01`
//! ChannelData). Anything else cannot be resynchronised, so the connection is closed.

/// The largest frame a client may send on a stream. Browsers keep media packets under the
/// path MTU and STUN requests are small, so this is generous; a larger frame ends the
/// connection, which bounds each connection's buffer.
pub(crate) const MAX_STREAM_FRAME: usize = 8 * 1024;

/// The channel numbers a client may bind (RFC 8656 §12).
pub(crate) const CHANNELS: std::ops::RangeInclusive<u16> = 0x4000..=0x4FFF;

/// Why a stream cannot go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameError {
    /// Neither STUN nor ChannelData.
    NotTurn,
    /// Longer than [`MAX_STREAM_FRAME`], or a STUN length that is not a multiple of 4.
    BadLength,
}

/// The length of the frame at the start of `head`, `None` if more bytes are needed to tell.
fn frame_len(head: &[u8]) -> Result<Option<usize>, FrameError> {
    if head.len() < 4 {
        return match head.first() {
            Some(b) if b >> 6 > 1 => Err(FrameError::NotTurn),
            _ => Ok(None),
        };
    }
    let len = u16::from_be_bytes([head[2], head[3]]) as usize;
    let total = match head[0] >> 6 {
        0 => {
            if !len.is_multiple_of(4) {
                return Err(FrameError::BadLength);
            }
            20 + len
        }
        1 => {
            let number = u16::from_be_bytes([head[0], head[1]]);
            if !CHANNELS.contains(&number) {
                return Err(FrameError::NotTurn);
            }
            4 + padded(len)
        }
        _ => return Err(FrameError::NotTurn),
    };
    if total > MAX_STREAM_FRAME {
        return Err(FrameError::BadLength);
    }
    Ok(Some(total))
}

fn padded(len: usize) -> usize {
    len.div_ceil(4) * 4
}

/// Splits a byte stream into frames. Holds at most one incomplete frame, so its buffer stays
/// under [`MAX_STREAM_FRAME`] plus what one read adds.
#[derive(Debug, Default)]
pub(crate) struct StreamDecoder {
    buf: Vec<u8>,
    failed: Option<FrameError>,
}

impl StreamDecoder {
    /// Appends bytes read from the stream. Call [`next_frame`](Self::next_frame) until it
    /// yields `Ok(None)` before pushing again.
    pub(crate) fn push(&mut self, data: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(data);
        }
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed. After an error every call
    /// returns that error.
    pub(crate) fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        match frame_len(&self.buf) {
            Err(e) => {
                self.failed = Some(e);
                self.buf = Vec::new();
                Err(e)
            }
            Ok(Some(len)) if len <= self.buf.len() => {
                let rest = self.buf.split_off(len);
                Ok(Some(std::mem::replace(&mut self.buf, rest)))
            }
            Ok(_) => Ok(None),
        }
    }
}

/// A ChannelData message: `number`, `payload`, and on streams padding to a multiple of 4.
/// `None` if the payload does not fit the 16-bit length.
pub(crate) fn channel_data(number: u16, payload: &[u8], stream: bool) -> Option<Vec<u8>> {
    let len = u16::try_from(payload.len()).ok()?;
    let total = if stream {
        4 + padded(payload.len())
    } else {
        4 + payload.len()
    };
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&number.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    out.resize(total, 0);
    Some(out)
}

/// Parses a ChannelData message (padding, if any, is ignored). `None` if malformed or the
/// channel number is outside [`CHANNELS`].
pub(crate) fn parse_channel_data(data: &[u8]) -> Option<(u16, &[u8])> {
    let head = data.get(..4)?;
    let number = u16::from_be_bytes([head[0], head[1]]);
    let len = u16::from_be_bytes([head[2], head[3]]) as usize;
    if !CHANNELS.contains(&number) {
        return None;
    }
    Some((number, data.get(4..4 + len)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stun(len: u16) -> Vec<u8> {
        let mut m = vec![0x00, 0x01];
        m.extend_from_slice(&len.to_be_bytes());
        m.extend_from_slice(&0x2112_A442u32.to_be_bytes());
        m.extend_from_slice(&[9; 12]);
        m.extend(std::iter::repeat_n(0xAA, len as usize));
        m
    }

    #[test]
    fn splits_stun_and_padded_channel_data_byte_by_byte() {
        let first = stun(8);
        let second = channel_data(0x4001, b"hello", true).unwrap();
        assert_eq!(second.len(), 12);
        let third = channel_data(0x4FFF, b"", true).unwrap();
        let stream: Vec<u8> = [first.clone(), second.clone(), third.clone()].concat();
        let mut d = StreamDecoder::default();
        let mut frames = vec![];
        for b in &stream {
            d.push(std::slice::from_ref(b));
            while let Some(f) = d.next_frame().unwrap() {
                frames.push(f);
            }
        }
        assert_eq!(frames, vec![first, second.clone(), third]);
        assert_eq!(parse_channel_data(&second), Some((0x4001, &b"hello"[..])));
    }

    #[test]
    fn splits_frames_arriving_together() {
        let a = stun(4);
        let b = channel_data(0x4000, &[1, 2, 3, 4], true).unwrap();
        let mut d = StreamDecoder::default();
        d.push(&[a.clone(), b.clone(), a[..10].to_vec()].concat());
        assert_eq!(d.next_frame().unwrap(), Some(a.clone()));
        assert_eq!(d.next_frame().unwrap(), Some(b));
        assert_eq!(d.next_frame().unwrap(), None);
        d.push(&a[10..]);
        assert_eq!(d.next_frame().unwrap(), Some(a));
        assert_eq!(d.next_frame().unwrap(), None);
    }

    #[test]
    fn garbage_and_oversized_frames_end_the_stream() {
        for junk in [
            &[0x80u8][..],
            &[0xFF, 0, 0, 0],
            &[0x50, 0x00, 0, 4],       // reserved channel range
            &[0x00, 0x01, 0x00, 0x03], // STUN length not a multiple of 4
            &[0x00, 0x01, 0xFF, 0xFC], // STUN too large
            &[0x40, 0x00, 0x20, 0x00], // ChannelData too large
        ] {
            let mut d = StreamDecoder::default();
            d.push(junk);
            assert!(d.next_frame().is_err(), "{junk:?}");
            d.push(&stun(0));
            assert!(d.next_frame().is_err(), "stays failed after {junk:?}");
        }
    }

    #[test]
    fn channel_data_without_padding_on_datagrams() {
        let m = channel_data(0x4002, b"abc", false).unwrap();
        assert_eq!(m, vec![0x40, 0x02, 0, 3, b'a', b'b', b'c']);
        assert_eq!(parse_channel_data(&m), Some((0x4002, &b"abc"[..])));
        assert_eq!(parse_channel_data(&m[..6]), None);
        assert_eq!(parse_channel_data(&[0x3F, 0xFF, 0, 0]), None);
        assert!(channel_data(0x4000, &vec![0; 70_000], false).is_none());
    }
}
