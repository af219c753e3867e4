//! Entry points for the fuzz targets (`fuzz/`), behind the `fuzzing` feature.

use crate::tcp::{Deframer, Frame, MAX_FRAME};

/// What one frame of a stream is, read from the whole stream at once: the reference the
/// deframer is checked against.
#[derive(Debug, PartialEq, Eq)]
enum Expected {
    Data(Vec<u8>),
    Oversized(usize),
}

fn reference(stream: &[u8]) -> Vec<Expected> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&[hi, lo]) = stream.get(i..i + 2) {
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        if len > MAX_FRAME {
            // Announced as it starts, whether or not its bytes follow.
            out.push(Expected::Oversized(len));
            i += 2 + len;
            continue;
        }
        let Some(body) = stream.get(i + 2..i + 2 + len) else {
            break;
        };
        out.push(Expected::Data(body.to_vec()));
        i += 2 + len;
    }
    out
}

/// The ICE-TCP deframer fed `data` in chunks whose sizes the first bytes choose: it must
/// yield exactly the frames of the whole stream, whatever the chunking, and never panic.
pub fn deframe(data: &[u8]) {
    let Some((&seed, stream)) = data.split_first() else {
        return;
    };
    let mut d = Deframer::default();
    let mut got = Vec::new();
    let mut rest = stream;
    let mut step = 0usize;
    while !rest.is_empty() {
        let space = d.space();
        assert!(!space.is_empty(), "the deframer left no room to read");
        // Chunk sizes from 1 up, varied by the seed, at most what fits.
        step = step.wrapping_mul(31).wrapping_add(usize::from(seed) + 1);
        let n = (step % 1500 + 1).min(space.len()).min(rest.len());
        space[..n].copy_from_slice(&rest[..n]);
        d.filled(n);
        rest = &rest[n..];
        while let Some(frame) = d.next_frame() {
            got.push(match frame {
                Frame::Data(b) => Expected::Data(b.to_vec()),
                Frame::Oversized(len) => Expected::Oversized(len),
            });
        }
    }
    assert_eq!(got, reference(stream));
}
