//! What arrived on one received video stream, frame by frame: counts, the layer each frame came
//! from (by its tag), and whether the stream stayed whole. An SFU that forwards one simulcast
//! layer at a time must keep a viewer's stream one stream: sequence numbers without holes,
//! timestamps that never go back, PictureIDs that go on by one a frame, and a change of layer
//! only at a keyframe. Each of those is counted here when it fails.

use super::vp8::{Layer, VideoTag};

/// The most layer runs kept per stream; frames past it are still counted, not listed.
pub const MAX_LAYER_RUNS: usize = 1024;

/// Frames from one sender and layer, one after another on a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerRun {
    pub sender: u64,
    pub layer: Layer,
    /// Frames received in the run.
    pub frames: u64,
    /// The first and last frame numbers (in the layer's numbering) received in it.
    pub first_frame: u32,
    pub last_frame: u32,
    /// Whether the run began with a keyframe.
    pub starts_with_keyframe: bool,
    /// When its first frame was sent, µs since the Unix epoch (the frame's tag): when the
    /// server began forwarding the layer, give or take the way from the publisher to it.
    pub first_sent_us: u64,
}

/// One received frame, as the stream's log takes it.
#[derive(Debug, Clone, Copy)]
pub struct ReceivedFrame {
    /// The (extended) RTP sequence numbers of its first and last packets.
    pub first_seq: u64,
    pub last_seq: u64,
    /// Its (extended) RTP timestamp.
    pub time: u64,
    /// Its (extended) VP8 PictureID, if its descriptor had one.
    pub picture_id: Option<u64>,
    pub keyframe: bool,
    /// Its tag, if it is one of our synthetic frames.
    pub tag: Option<VideoTag>,
    /// Whether the receiver found it contiguous with the frame before it.
    pub contiguous: bool,
}

/// Whether the stream could be decoded now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Decoding {
    /// No keyframe yet.
    #[default]
    Waiting,
    Whole,
    /// A frame was lost or the layer changed without a keyframe: broken until the next one.
    Broken,
}

#[derive(Debug, Clone, Copy)]
struct Last {
    last_seq: u64,
    time: u64,
    picture_id: Option<u64>,
    layer: Option<Layer>,
    sender: Option<u64>,
}

/// One video stream the server sends.
#[derive(Debug, Clone, Default)]
pub struct VideoLog {
    /// The msid stream id the server gave the m-line (`<member>-<track>`).
    pub stream: String,
    /// Frames completed (received whole).
    pub frames: u64,
    /// RTP packets of those frames.
    pub packets: u64,
    /// The VP8 data of those frames, bytes (payload descriptors not counted).
    pub bytes: u64,
    pub keyframes: u64,
    /// Frames and keyframes by the layer their tag names (q, h, f).
    pub frames_by_layer: [u64; 3],
    pub keyframes_by_layer: [u64; 3],
    /// Frames without our tag.
    pub foreign: u64,
    /// Runs of frames of one layer, in order (at most [`MAX_LAYER_RUNS`]).
    pub layer_runs: Vec<LayerRun>,
    /// Times packets were missing between one frame and the next, and how many.
    pub seq_gaps: u64,
    pub lost_packets: u64,
    /// Frames whose sequence numbers went back (a stream restarted or misnumbered).
    pub seq_backwards: u64,
    /// Frames whose timestamp was before the previous frame's.
    pub timestamp_backwards: u64,
    /// Frames whose PictureID was not the previous one's + 1 (modulo 2^15).
    pub picture_id_breaks: u64,
    /// Times the stream became undecodable: a frame other than a keyframe after a lost frame,
    /// or from another layer than the frame before it.
    pub decode_breaks: u64,
    /// Frames other than keyframes that came while the stream was undecodable.
    pub undecodable_frames: u64,
    /// Frames before the stream's first keyframe.
    pub frames_before_keyframe: u64,
    /// Frames the receiver found not contiguous with the one before.
    pub discontinuities: u64,
    /// Frames of another layer than the frame before them.
    pub layer_switches: u64,
    /// Of those, the ones that were not keyframes although nothing was lost before them: a
    /// change of layer the forwarder made where a decoder cannot follow (one after a loss may
    /// be the link's doing: its keyframe may be what was lost).
    pub switches_without_keyframe: u64,
    /// Latency of each tagged frame from its sending to its completion here, µs (the first
    /// 10,000).
    pub latencies_us: Vec<u64>,
    decoding: Decoding,
    last: Option<Last>,
}

impl VideoLog {
    pub fn new(stream: String) -> VideoLog {
        VideoLog {
            stream,
            ..VideoLog::default()
        }
    }

    /// The layer of the last frame received, if it was tagged.
    pub fn current_layer(&self) -> Option<Layer> {
        self.last.and_then(|l| l.layer)
    }

    /// Everything that says the stream was not one whole stream: holes and reversals in its
    /// numbering and timing, and breaks a decoder would have suffered.
    pub fn continuity_breaks(&self) -> u64 {
        self.seq_gaps
            + self.seq_backwards
            + self.timestamp_backwards
            + self.picture_id_breaks
            + self.decode_breaks
    }

    /// Frames received of `layer`.
    pub fn frames_of(&self, layer: Layer) -> u64 {
        self.frames_by_layer[layer.index()]
    }

    /// A frame completed, `now_us` µs after the Unix epoch.
    pub fn record(&mut self, f: &ReceivedFrame, now_us: u64) {
        self.frames += 1;
        self.packets += f.last_seq.saturating_sub(f.first_seq) + 1;
        self.discontinuities += u64::from(!f.contiguous);
        let layer = f.tag.map(|t| t.layer);
        match f.tag {
            Some(t) => {
                self.frames_by_layer[t.layer.index()] += 1;
                self.keyframes_by_layer[t.layer.index()] += u64::from(f.keyframe);
                if self.latencies_us.len() < 10_000 {
                    self.latencies_us.push(now_us.saturating_sub(t.sent_us));
                }
                self.record_run(t, f.keyframe);
            }
            None => self.foreign += 1,
        }
        self.keyframes += u64::from(f.keyframe);

        // Whether a frame was lost just before this one.
        let mut lost = false;
        if let Some(last) = self.last {
            let expected = last.last_seq + 1;
            if f.first_seq > expected {
                self.seq_gaps += 1;
                self.lost_packets += f.first_seq - expected;
                lost = true;
            } else if f.first_seq < expected {
                self.seq_backwards += 1;
            }
            self.timestamp_backwards += u64::from(f.time < last.time);
            if let (Some(prev), Some(pid)) = (last.picture_id, f.picture_id)
                && pid.wrapping_sub(prev) & 0x7fff != 1
            {
                self.picture_id_breaks += 1;
                lost = true;
            }
        }
        let switched = self
            .last
            .is_some_and(|l| l.layer != layer || l.sender != f.tag.map(|t| t.sender));
        if switched {
            self.layer_switches += 1;
            self.switches_without_keyframe += u64::from(!f.keyframe && !lost);
        }
        self.decoding = match (self.decoding, f.keyframe) {
            (_, true) => Decoding::Whole,
            (Decoding::Waiting, false) => {
                self.frames_before_keyframe += 1;
                Decoding::Waiting
            }
            (Decoding::Whole, false) if lost || switched => {
                self.decode_breaks += 1;
                self.undecodable_frames += 1;
                Decoding::Broken
            }
            (Decoding::Whole, false) => Decoding::Whole,
            (Decoding::Broken, false) => {
                self.undecodable_frames += 1;
                Decoding::Broken
            }
        };
        self.last = Some(Last {
            last_seq: f.last_seq,
            time: f.time,
            picture_id: f.picture_id,
            layer,
            sender: f.tag.map(|t| t.sender),
        });
    }

    fn record_run(&mut self, t: VideoTag, keyframe: bool) {
        if let Some(run) = self.layer_runs.last_mut()
            && run.layer == t.layer
            && run.sender == t.sender
        {
            run.frames += 1;
            run.last_frame = t.frame;
            return;
        }
        if self.layer_runs.len() < MAX_LAYER_RUNS {
            self.layer_runs.push(LayerRun {
                sender: t.sender,
                layer: t.layer,
                frames: 1,
                first_frame: t.frame,
                last_frame: t.frame,
                starts_with_keyframe: keyframe,
                first_sent_us: t.sent_us,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frame `n` of `layer` from sender 1, of two packets, numbered on from `seq`.
    fn frame(layer: Layer, n: u32, seq: u64, pid: u64, keyframe: bool) -> ReceivedFrame {
        ReceivedFrame {
            first_seq: seq,
            last_seq: seq + 1,
            time: 3000 * u64::from(n),
            picture_id: Some(pid),
            keyframe,
            tag: Some(VideoTag {
                layer,
                frame: n,
                sender: 1,
                sent_us: 0,
            }),
            contiguous: true,
        }
    }

    #[test]
    fn a_whole_stream_has_no_breaks_even_across_a_layer_change_at_a_keyframe() {
        let mut log = VideoLog::new("1-1".into());
        for n in 0..10 {
            log.record(
                &frame(Layer::H, n, 2 * u64::from(n), 32_766 + u64::from(n), n == 0),
                0,
            );
        }
        // The layer changes at a keyframe, numbering going on.
        for n in 10..20 {
            log.record(
                &frame(
                    Layer::F,
                    n,
                    2 * u64::from(n),
                    32_766 + u64::from(n),
                    n == 10,
                ),
                0,
            );
        }
        assert_eq!((log.frames, log.packets, log.keyframes), (20, 40, 2));
        assert_eq!(log.continuity_breaks(), 0, "{log:?}");
        assert_eq!((log.layer_switches, log.switches_without_keyframe), (1, 0));
        assert_eq!(log.frames_of(Layer::H), 10);
        assert_eq!(log.keyframes_by_layer, [0, 1, 1]);
        assert_eq!(log.current_layer(), Some(Layer::F));
        let runs: Vec<(Layer, u64, bool)> = log
            .layer_runs
            .iter()
            .map(|r| (r.layer, r.frames, r.starts_with_keyframe))
            .collect();
        assert_eq!(runs, vec![(Layer::H, 10, true), (Layer::F, 10, true)]);
    }

    #[test]
    fn a_layer_change_without_a_keyframe_breaks_decoding_until_the_next() {
        let mut log = VideoLog::new("1-1".into());
        log.record(&frame(Layer::Q, 0, 0, 0, true), 0);
        log.record(&frame(Layer::H, 1, 2, 1, false), 0);
        log.record(&frame(Layer::H, 2, 4, 2, false), 0);
        log.record(&frame(Layer::H, 3, 6, 3, true), 0);
        log.record(&frame(Layer::H, 4, 8, 4, false), 0);
        assert_eq!((log.decode_breaks, log.undecodable_frames), (1, 2));
        assert_eq!((log.layer_switches, log.switches_without_keyframe), (1, 1));
        assert_eq!(log.seq_gaps + log.picture_id_breaks, 0);
    }

    #[test]
    fn holes_and_reversals_are_counted() {
        let mut log = VideoLog::new("x".into());
        // Non-keyframes first: waiting for a keyframe is not a break.
        log.record(&frame(Layer::H, 0, 100, 5, false), 0);
        log.record(&frame(Layer::H, 1, 102, 6, true), 0);
        // Frame 2 (seq 104, 105) is lost.
        log.record(&frame(Layer::H, 3, 106, 8, false), 0);
        assert_eq!((log.seq_gaps, log.lost_packets), (1, 2));
        assert_eq!((log.picture_id_breaks, log.decode_breaks), (1, 1));
        assert_eq!(log.frames_before_keyframe, 1);
        // Time and numbering go back.
        let mut back = frame(Layer::H, 1, 50, 9, true);
        back.time = 0;
        log.record(&back, 0);
        assert_eq!((log.seq_backwards, log.timestamp_backwards), (1, 1));
        // A frame that is not ours is counted as foreign.
        let mut foreign = frame(Layer::H, 2, 52, 10, false);
        foreign.tag = None;
        foreign.contiguous = false;
        log.record(&foreign, 0);
        assert_eq!((log.foreign, log.discontinuities), (1, 1));
    }

    #[test]
    fn layer_runs_are_bounded() {
        let mut log = VideoLog::new("x".into());
        for n in 0..(MAX_LAYER_RUNS as u32 + 10) {
            let layer = if n % 2 == 0 { Layer::Q } else { Layer::F };
            log.record(&frame(layer, n, 2 * u64::from(n), u64::from(n), true), 0);
        }
        assert_eq!(log.layer_runs.len(), MAX_LAYER_RUNS);
        assert_eq!(log.frames, MAX_LAYER_RUNS as u64 + 10);
        assert_eq!(log.decode_breaks, 0);
    }
}
