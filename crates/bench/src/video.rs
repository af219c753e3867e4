//! With `--video`, speakers publish a synthetic camera too: what the members' clients sent and
//! received of it over the whole run, and whether each stream they received stayed whole.

use free4chat_client::media::lock_state;
use serde_json::{Value, json};

use crate::target::Member;

/// The run's video figures, summed over every member (null without video).
pub fn summary(members: &[Member], on: bool) -> Value {
    if !on {
        return Value::Null;
    }
    let (mut sent, mut streams, mut frames, mut keyframes) = (0, 0, 0, 0);
    let (mut sent_packets, mut sent_bytes) = (0, 0);
    let (mut by_layer, mut breaks, mut decode_breaks, mut lost) = ([0u64; 3], 0, 0, 0);
    let mut latencies = Vec::new();
    for m in members {
        let s = lock_state(&m.state);
        sent += s.video_sent.frames.iter().sum::<u64>();
        sent_packets += s.video_sent.packets.iter().sum::<u64>();
        sent_bytes += s.video_sent.bytes.iter().sum::<u64>();
        for v in s.video.values() {
            streams += 1;
            frames += v.frames;
            keyframes += v.keyframes;
            for (total, n) in by_layer.iter_mut().zip(v.frames_by_layer) {
                *total += n;
            }
            breaks += v.continuity_breaks();
            decode_breaks += v.decode_breaks;
            lost += v.lost_packets;
            latencies.extend_from_slice(&v.latencies_us);
        }
    }
    json!({
        "frames_sent": sent,
        "packets_sent": sent_packets,
        "bytes_sent": sent_bytes,
        "streams_received": streams,
        "frames_received": frames,
        "keyframes_received": keyframes,
        "frames_by_layer": { "q": by_layer[0], "h": by_layer[1], "f": by_layer[2] },
        "continuity_breaks": breaks,
        "decode_breaks": decode_breaks,
        "lost_packets": lost,
        "frame_latency_us": crate::stats::summary(&mut latencies),
    })
}

/// What every member had received of video at one instant, for the window's figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VideoTotals {
    /// RTP packets of the frames received whole, and packets missing between frames.
    pub packets: u64,
    pub lost: u64,
    /// VP8 data of those frames, bytes.
    pub bytes: u64,
    pub frames_by_layer: [u64; 3],
    /// Streams received, and members receiving at least one.
    pub streams: u64,
    pub viewers: u64,
}

/// Sums what `members` received of video so far.
pub fn totals(members: &[Member]) -> VideoTotals {
    let mut t = VideoTotals::default();
    for m in members {
        let s = lock_state(&m.state);
        t.viewers += u64::from(!s.video.is_empty());
        for v in s.video.values() {
            t.streams += 1;
            t.packets += v.packets;
            t.lost += v.lost_packets;
            t.bytes += v.bytes;
            for (total, n) in t.frames_by_layer.iter_mut().zip(v.frames_by_layer) {
                *total += n;
            }
        }
    }
    t
}

impl VideoTotals {
    /// What the server forwarded of video between `self` and `later`: what arrived and what
    /// was missing in between.
    pub fn forwarded_until(&self, later: &VideoTotals) -> u64 {
        let delivered = later.packets.saturating_sub(self.packets);
        delivered + later.lost.saturating_sub(self.lost)
    }

    /// The window's video figures, from `self` at its start to `later` at its end.
    pub fn window_json(&self, later: &VideoTotals, window_s: f64) -> Value {
        let delivered = later.packets.saturating_sub(self.packets);
        let lost = later.lost.saturating_sub(self.lost);
        let forwarded = delivered + lost;
        let bits = later.bytes.saturating_sub(self.bytes) as f64 * 8.0;
        let per_s = |n: f64| if window_s > 0.0 { n / window_s } else { 0.0 };
        let layer = |i: usize| later.frames_by_layer[i].saturating_sub(self.frames_by_layer[i]);
        json!({
            "forwarded_pps": per_s(forwarded as f64),
            "delivered_pps": per_s(delivered as f64),
            "lost_packets": lost,
            "loss_pct": if forwarded == 0 { 0.0 } else { lost as f64 / forwarded as f64 * 100.0 },
            "bitrate_kbps": per_s(bits) / 1000.0,
            "bitrate_kbps_per_stream": per_s(bits) / 1000.0 / later.streams.max(1) as f64,
            "streams": later.streams,
            "viewers": later.viewers,
            "frames_by_layer": { "q": layer(0), "h": layer(1), "f": layer(2) },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_windows_video_is_what_arrived_and_went_missing_between_two_totals() {
        let a = VideoTotals {
            packets: 100,
            lost: 2,
            bytes: 10_000,
            frames_by_layer: [5, 50, 0],
            streams: 2,
            viewers: 2,
        };
        let b = VideoTotals {
            packets: 1_100,
            lost: 12,
            bytes: 1_260_000,
            frames_by_layer: [5, 550, 0],
            streams: 2,
            viewers: 2,
        };
        assert_eq!(a.forwarded_until(&b), 1_010);
        let w = a.window_json(&b, 10.0);
        assert_eq!(w["forwarded_pps"], 101.0);
        assert_eq!(w["delivered_pps"], 100.0);
        assert_eq!(w["lost_packets"], 10);
        assert_eq!(w["bitrate_kbps"], 1_000.0);
        assert_eq!(w["bitrate_kbps_per_stream"], 500.0);
        assert_eq!(w["frames_by_layer"], json!({"q": 0, "h": 500, "f": 0}));
        // Counters that went back (a member gone) count nothing, and nothing is not a loss.
        let w = b.window_json(&a, 0.0);
        assert_eq!(
            (w["forwarded_pps"].as_f64(), w["loss_pct"].as_f64()),
            (Some(0.0), Some(0.0))
        );
    }
}
