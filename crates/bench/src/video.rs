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
    let (mut by_layer, mut breaks, mut decode_breaks, mut lost) = ([0u64; 3], 0, 0, 0);
    let mut latencies = Vec::new();
    for m in members {
        let s = lock_state(&m.state);
        sent += s.video_sent.frames.iter().sum::<u64>();
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
