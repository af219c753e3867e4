//! Resends: a video packet a viewer reports lost (NACK) is resent from its stream's cache
//! while it is younger than the resend horizon; the cache keeps nothing older.

use std::collections::BTreeSet;
use std::time::Duration;

use super::harness::Harness;
use crate::downtrack::VIDEO_RESEND_HORIZON;

/// Member 1 publishes in simulcast, member 2 views it in RTP mode (the full layer: one packet
/// of about 450 bytes a picture, a picture every 20 ms). After two seconds the next packet to
/// the viewer is lost, and what the viewer sends back (its NACKs, repeated for a few round
/// trips, among it) reaches the core `delay` later. Returns the sequence numbers the viewer
/// is still missing half a second after that.
fn missing_when_the_nack_arrives_after(delay: Duration) -> Vec<u64> {
    let mut h = Harness::new();
    h.join_simulcast(1, 1);
    h.join_rtp_listener(1, 2);
    h.run(Duration::from_secs(2));
    h.lose_next_to(2, 300);
    h.hold_from(2, delay);
    h.run(delay + Duration::from_millis(500));
    assert_eq!(h.lost, 1, "one packet to the viewer was lost");
    let seqs: BTreeSet<u64> = h
        .client(2)
        .rtp
        .iter()
        .filter(|p| p.vp8.is_some())
        .map(|p| p.seq)
        .collect();
    let (Some(&first), Some(&last)) = (seqs.first(), seqs.last()) else {
        panic!("the viewer received video");
    };
    (first..=last).filter(|s| !seqs.contains(s)).collect()
}

#[test]
fn a_video_packet_reported_lost_near_the_end_of_the_resend_horizon_is_resent() {
    // Lost within the first 20 ms of the hold: its age when the NACK arrives is 880–900 ms.
    let missing = missing_when_the_nack_arrives_after(VIDEO_RESEND_HORIZON - ms(100));
    assert_eq!(missing, Vec::<u64>::new());
}

#[test]
fn a_video_packet_reported_lost_past_the_resend_horizon_is_no_longer_kept() {
    let missing = missing_when_the_nack_arrives_after(VIDEO_RESEND_HORIZON + ms(200));
    assert_eq!(missing.len(), 1, "{missing:?}");
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}
