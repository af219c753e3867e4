//! RFC 4571 framing for ICE-TCP (RFC 6544): each datagram travels as a 2-byte big-endian
//! length and that many bytes.
//!
//! [`Deframer`] reassembles frames from a byte stream in one fixed buffer: a partial frame
//! waits there for the rest, and a frame too large to be WebRTC is skipped as it streams past
//! without being buffered. Nothing here panics on any input.
//!
//! [`WriteQueue`] holds the frames waiting for one connection, bounded in bytes; its writer
//! task alone waits on a slow reader.

use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tracing::debug;

use crate::udp::MAX_DATAGRAM;

/// The largest frame handed on: as for UDP, anything larger is not WebRTC.
pub const MAX_FRAME: usize = MAX_DATAGRAM;
/// The read buffer of one connection: a whole frame of `MAX_FRAME` always fits, with room for
/// several small ones per read.
const BUFFER: usize = 4096;
const _: () = assert!(BUFFER >= 2 + MAX_FRAME);

/// What [`Deframer::next_frame`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A whole frame.
    Data(&'a [u8]),
    /// A frame longer than [`MAX_FRAME`], of this length: its bytes are discarded as they
    /// arrive.
    Oversized(usize),
}

/// Reassembles RFC 4571 frames from a byte stream, in at most `BUFFER` bytes.
pub struct Deframer {
    buf: Box<[u8]>,
    /// Unconsumed bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// Bytes of an oversized frame still to discard.
    skip: usize,
}

impl Default for Deframer {
    fn default() -> Deframer {
        Deframer {
            buf: vec![0; BUFFER].into_boxed_slice(),
            start: 0,
            end: 0,
            skip: 0,
        }
    }
}

impl Deframer {
    /// Where the next read goes; never empty (see `next_frame`).
    pub fn space(&mut self) -> &mut [u8] {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.start > 0 {
            // Only a partial frame is left: move it to the front.
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        &mut self.buf[self.end..]
    }

    /// `n` bytes were read into [`Deframer::space`].
    pub fn filled(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }

    /// The next complete frame, if one has arrived. Once this returns `None`, what is left is
    /// less than one frame of at most `MAX_FRAME`, so [`Deframer::space`] has room.
    pub fn next_frame(&mut self) -> Option<Frame<'_>> {
        self.discard();
        if self.skip > 0 {
            return None;
        }
        let available = &self.buf[self.start..self.end];
        let [hi, lo, ..] = *available else {
            return None;
        };
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        if len > MAX_FRAME {
            self.start += 2;
            self.skip = len;
            self.discard();
            return Some(Frame::Oversized(len));
        }
        if available.len() < 2 + len {
            return None;
        }
        let from = self.start + 2;
        self.start = from + len;
        Some(Frame::Data(&self.buf[from..from + len]))
    }

    fn discard(&mut self) {
        let n = self.skip.min(self.end - self.start);
        self.start += n;
        self.skip -= n;
    }
}

/// `contents` as one RFC 4571 frame, or `None` if it is too long to frame.
pub fn frame(contents: &[u8]) -> Option<Vec<u8>> {
    let len = u16::try_from(contents.len()).ok()?;
    let mut framed = Vec::with_capacity(2 + contents.len());
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(contents);
    Some(framed)
}

/// The frames waiting to be written to one connection. Pushing never waits: beyond `limit`
/// bytes, frames are refused, as a full UDP socket buffer drops datagrams.
pub struct WriteQueue {
    tx: mpsc::UnboundedSender<Vec<u8>>,
    /// Bytes in `tx`, shared with the writer.
    queued: Rc<Cell<usize>>,
    limit: usize,
}

impl WriteQueue {
    /// A queue for `write`, and the writer that drains it (to be spawned; it ends when the
    /// queue is dropped or a write fails).
    pub fn new<W: AsyncWrite + Unpin>(
        write: W,
        limit: usize,
    ) -> (WriteQueue, impl Future<Output = ()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let queued = Rc::new(Cell::new(0));
        let writer = drain(write, rx, queued.clone());
        (WriteQueue { tx, queued, limit }, writer)
    }

    /// Queues `datagram` as one frame. Returns false if it was dropped: the queue is full, the
    /// datagram too long to frame, or the writer gone.
    pub fn push(&self, datagram: &[u8]) -> bool {
        let queued = self.queued.get() + 2 + datagram.len();
        if queued > self.limit {
            return false;
        }
        let Some(framed) = frame(datagram) else {
            return false;
        };
        if self.tx.send(framed).is_err() {
            return false;
        }
        self.queued.set(queued);
        true
    }

    /// Bytes waiting.
    pub fn queued(&self) -> usize {
        self.queued.get()
    }
}

/// Writes queued frames, as many per system call as are waiting.
async fn drain<W: AsyncWrite + Unpin>(
    mut write: W,
    mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
    queued: Rc<Cell<usize>>,
) {
    /// The most bytes gathered into one write.
    const BATCH: usize = 16 * 1024;
    while let Some(first) = rx.recv().await {
        let mut batch = first;
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(more) => batch.extend_from_slice(&more),
                Err(_) => break,
            }
        }
        queued.set(queued.get().saturating_sub(batch.len()));
        if let Err(e) = write.write_all(&batch).await {
            debug!("TCP write: {e}");
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `stream` in chunks of `chunk` bytes; returns the frames (oversized ones as their
    /// length in a marker vector).
    fn deframe(stream: &[u8], chunk: usize) -> Vec<Result<Vec<u8>, usize>> {
        let mut d = Deframer::default();
        let mut out = Vec::new();
        let mut rest = stream;
        while !rest.is_empty() {
            let space = d.space();
            assert!(!space.is_empty());
            let n = chunk.min(space.len()).min(rest.len());
            space[..n].copy_from_slice(&rest[..n]);
            d.filled(n);
            rest = &rest[n..];
            while let Some(f) = d.next_frame() {
                out.push(match f {
                    Frame::Data(b) => Ok(b.to_vec()),
                    Frame::Oversized(len) => Err(len),
                });
            }
        }
        out
    }

    #[test]
    fn frames_are_reassembled_from_any_chunking() {
        let payloads: Vec<Vec<u8>> = [0usize, 1, 20, 1200, MAX_FRAME, 3, 500]
            .iter()
            .enumerate()
            .map(|(i, len)| vec![i as u8; *len])
            .collect();
        let stream: Vec<u8> = payloads.iter().flat_map(|p| frame(p).unwrap()).collect();
        for chunk in [1, 2, 3, 7, 100, 1500, 4096, 100_000] {
            let got = deframe(&stream, chunk);
            let want: Vec<_> = payloads.iter().cloned().map(Ok).collect();
            assert_eq!(got, want, "chunk {chunk}");
        }
    }

    #[test]
    fn oversized_frames_are_skipped_without_buffering_and_the_stream_resyncs() {
        let big = vec![7u8; 60_000];
        let mut stream = frame(b"before").unwrap();
        stream.extend(frame(&big).unwrap());
        stream.extend(frame(b"after").unwrap());
        // A frame of the largest length there is: 65535.
        stream.extend(frame(&vec![1u8; 65_535]).unwrap());
        stream.extend(frame(b"end").unwrap());
        for chunk in [1, 5, 4096, 1 << 20] {
            assert_eq!(
                deframe(&stream, chunk),
                vec![
                    Ok(b"before".to_vec()),
                    Err(60_000),
                    Ok(b"after".to_vec()),
                    Err(65_535),
                    Ok(b"end".to_vec())
                ],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn a_half_frame_waits_and_random_bytes_never_panic() {
        let mut d = Deframer::default();
        d.space()[..3].copy_from_slice(&[0, 10, 1]);
        d.filled(3);
        assert_eq!(d.next_frame(), None);
        // Any bytes at all: the buffer always has room and frames stay within bounds.
        let mut x: u64 = 0x1234_5678;
        for _ in 0..20_000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            let space = d.space();
            assert!(!space.is_empty());
            let n = ((x >> 40) as usize % 300).min(space.len());
            for (i, b) in space[..n].iter_mut().enumerate() {
                *b = (x >> (i % 56)) as u8;
            }
            d.filled(n);
            while let Some(f) = d.next_frame() {
                if let Frame::Data(b) = f {
                    assert!(b.len() <= MAX_FRAME);
                }
            }
        }
        assert!(frame(&vec![0u8; 65_536]).is_none());
    }
}

#[cfg(test)]
mod queue_tests {
    use super::*;
    use nix::sys::socket::{setsockopt, sockopt};
    use std::time::{Duration, Instant};
    use tokio::io::AsyncReadExt;

    #[test]
    fn a_reader_that_stops_reading_fills_its_queue_and_nothing_waits() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        tokio::task::LocalSet::new().block_on(&rt, async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let mut reader = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
                .await
                .unwrap();
            let (stream, _) = listener.accept().await.unwrap();
            // Small kernel buffers, so the stalled reader is felt soon.
            let _ = setsockopt(&stream, sockopt::SndBuf, &4096);
            let _ = setsockopt(&reader, sockopt::RcvBuf, &4096);
            let limit = 8 * 1024;
            let (queue, writer) = WriteQueue::new(stream, limit);
            let writer = tokio::task::spawn_local(writer);

            // Frames flow while the reader reads.
            assert!(queue.push(b"hello"));
            let mut got = [0u8; 7];
            reader.read_exact(&mut got).await.unwrap();
            assert_eq!(&got, b"\x00\x05hello");

            // The reader stops: the kernel's buffers fill, then the queue; then frames are
            // dropped, every push returns at once, and the queue stays within its bound.
            let datagram = [7u8; 1000];
            let (mut pushed, mut dropped) = (0u64, 0u64);
            let started = Instant::now();
            while dropped < 1000 && started.elapsed() < Duration::from_secs(20) {
                let t = Instant::now();
                if queue.push(&datagram) {
                    pushed += 1;
                } else {
                    dropped += 1;
                }
                assert!(t.elapsed() < Duration::from_millis(50), "push waited");
                assert!(queue.queued() <= limit);
                // Let the writer run.
                tokio::task::yield_now().await;
            }
            assert_eq!(dropped, 1000, "{pushed} pushed");
            assert!(
                queue.queued() > limit - 1002,
                "the queue filled: {}",
                queue.queued()
            );

            // The reader resumes: what was queued arrives intact, in order, framed.
            drop(queue);
            let mut frames = 0u64;
            let mut header = [0u8; 2];
            let mut body = [0u8; 1000];
            while reader.read_exact(&mut header).await.is_ok() {
                assert_eq!(u16::from_be_bytes(header), 1000);
                reader.read_exact(&mut body).await.unwrap();
                assert_eq!(body, datagram);
                frames += 1;
            }
            assert_eq!(frames, pushed);
            writer.await.unwrap();
        });
    }
}
