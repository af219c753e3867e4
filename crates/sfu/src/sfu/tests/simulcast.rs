//! Simulcast: a publisher sends its camera in three layers; each viewer is sent one layer,
//! the best under the cap it chose, switched at keyframes, as one continuous stream.

use std::time::Duration;

use super::harness::{Harness, RtpSeen, m};
use crate::{MediaCmd, MediaEvent, TrackKind, VideoQuality};

/// Member 1 publishes in simulcast, member 2 views it in RTP mode; after a second.
fn publisher_and_viewer() -> Harness {
    let mut h = Harness::new();
    h.join_simulcast(1, 1);
    h.join_rtp_listener(1, 2);
    h.run(Duration::from_secs(1));
    h
}

/// The id of member `id`'s video track, as the core published it.
fn video_track(h: &Harness, id: u64) -> String {
    h.events
        .iter()
        .find_map(|e| match e {
            MediaEvent::TrackPublished {
                member,
                track,
                kind: TrackKind::Video,
            } if *member == m(id) => Some(track.clone()),
            _ => None,
        })
        .expect("the video track was published")
}

/// Viewer `viewer` wants `quality` of member 1's video, told to the core that holds it.
pub(super) fn view(h: &mut Harness, viewer: u64, quality: VideoQuality) {
    let track = video_track(h, 1);
    let worker = h.worker_of(viewer).unwrap_or(0);
    h.cmd(
        worker,
        MediaCmd::ViewVideo {
            member: m(viewer),
            publisher: m(1),
            track,
            quality,
            screen: false,
        },
    );
}

/// The VP8 packets viewer `id` received, from the `from`th on.
fn video(h: &mut Harness, id: u64, from: usize) -> Vec<RtpSeen> {
    let seen: Vec<RtpSeen> = h
        .client(id)
        .rtp
        .iter()
        .filter(|p| p.vp8.is_some())
        .copied()
        .collect();
    seen.get(from..).unwrap_or_default().to_vec()
}

fn layers(packets: &[RtpSeen]) -> Vec<u8> {
    packets
        .iter()
        .filter_map(|p| p.vp8)
        .map(|v| v.layer)
        .collect()
}

/// How many keyframes of `layer` the publisher was asked for.
fn asked(h: &mut Harness, layer: usize) -> u64 {
    h.client(1).simulcast.as_ref().map_or(0, |s| s.asked(layer))
}

fn answer_keyframes(h: &mut Harness, answer: bool) {
    if let Some(s) = h.client(1).simulcast.as_mut() {
        s.answer_keyframes = answer;
    }
}

/// Asserts `packets` are some of `before` and then, from a keyframe on, only of `after`.
fn switches_at_a_keyframe(packets: &[RtpSeen], before: u8, after: u8) {
    let at = packets
        .iter()
        .position(|p| p.vp8.is_some_and(|v| v.layer == after))
        .expect("the new layer arrives");
    assert!(packets[at].vp8.unwrap().keyframe, "it starts at a keyframe");
    let all = layers(packets);
    let (old, new) = all.split_at(at);
    assert!(old.iter().all(|l| *l == before), "{old:?}");
    assert!(new.iter().all(|l| *l == after), "{new:?}");
    assert!(new.len() > 20, "{}", new.len());
}

#[test]
fn a_viewer_receives_the_full_layer_by_default() {
    let mut h = publisher_and_viewer();
    let from = video(&mut h, 2, 0).len();
    h.run(Duration::from_secs(1));
    let got = video(&mut h, 2, from);
    assert!(got.len() > 40, "{}", got.len());
    assert!(layers(&got).iter().all(|l| *l == 2), "{:?}", layers(&got));
    // Of the three layers that arrive, one is sent on, on one SSRC, from a keyframe.
    let all = video(&mut h, 2, 0);
    assert!(all.iter().all(|p| p.ssrc == all[0].ssrc));
    let first_full = all.iter().position(|p| p.vp8.unwrap().layer == 2).unwrap();
    assert!(all[first_full].vp8.unwrap().keyframe);
}

#[test]
fn a_viewer_moves_down_at_the_keyframe_of_the_lower_layer() {
    let mut h = publisher_and_viewer();
    answer_keyframes(&mut h, false);
    let (from, asked_before) = (video(&mut h, 2, 0).len(), asked(&mut h, 0));
    view(&mut h, 2, VideoQuality::Low);
    h.run(Duration::from_secs(1));
    // Decided at once: the lower layer's keyframe was asked for; the full layer goes on
    // until it comes.
    assert!(asked(&mut h, 0) > asked_before);
    let waiting = video(&mut h, 2, from);
    assert!(waiting.len() > 40 && layers(&waiting).iter().all(|l| *l == 2));
    answer_keyframes(&mut h, true);
    h.run(Duration::from_secs(1));
    switches_at_a_keyframe(&video(&mut h, 2, from), 2, 0);
}

#[test]
fn a_viewer_moves_up_only_at_a_keyframe_and_asks_for_it() {
    let mut h = publisher_and_viewer();
    view(&mut h, 2, VideoQuality::Low);
    h.run(Duration::from_secs(1));
    let from = video(&mut h, 2, 0).len();
    assert_eq!(layers(&video(&mut h, 2, from - 5)), [0; 5]);

    answer_keyframes(&mut h, false);
    let asked_before = asked(&mut h, 2);
    view(&mut h, 2, VideoQuality::High);
    h.run(Duration::from_secs(1));
    assert!(
        asked(&mut h, 2) > asked_before,
        "the full layer's keyframe is asked for"
    );
    assert!(layers(&video(&mut h, 2, from)).iter().all(|l| *l == 0));
    answer_keyframes(&mut h, true);
    h.run(Duration::from_secs(1));
    switches_at_a_keyframe(&video(&mut h, 2, from), 0, 2);
}

/// Viewer 2 asks for the low, medium, full and low layers again, 600 ms each.
pub(super) fn through_the_layers(h: &mut Harness) {
    for quality in [
        VideoQuality::Low,
        VideoQuality::Medium,
        VideoQuality::High,
        VideoQuality::Low,
    ] {
        view(h, 2, quality);
        h.run(Duration::from_millis(600));
    }
}

#[test]
fn sequence_numbers_timestamps_and_picture_ids_stay_continuous_across_switches() {
    let mut h = publisher_and_viewer();
    let from = video(&mut h, 2, 0).len();
    through_the_layers(&mut h);
    let got = video(&mut h, 2, from);
    let mut visited = layers(&got);
    visited.dedup();
    assert_eq!(visited, [2, 0, 1, 2, 0], "every switch happened");
    assert!(got.iter().all(|p| p.ssrc == got[0].ssrc), "one SSRC");
    for pair in got.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let (va, vb) = (a.vp8.unwrap(), b.vp8.unwrap());
        assert_eq!(b.seq, a.seq + 1, "{a:?} {b:?}");
        // Each packet is a frame of its own: time moves on.
        assert!(
            b.timestamp.wrapping_sub(a.timestamp) as i32 > 0,
            "{a:?} {b:?}"
        );
        assert_eq!(vb.picture_id, (va.picture_id + 1) % 0x8000, "{a:?} {b:?}");
        assert_eq!(vb.tl0, va.tl0.wrapping_add(1), "{a:?} {b:?}");
        let key_step = (vb.key_idx + 32 - va.key_idx) % 32;
        assert!(key_step == u8::from(vb.keyframe), "{a:?} {b:?}");
    }
}

#[test]
fn a_viewer_that_sets_a_track_off_receives_nothing_of_it() {
    let mut h = publisher_and_viewer();
    h.join_rtp_listener(1, 3);
    h.run(Duration::from_secs(1));
    view(&mut h, 2, VideoQuality::Off);
    let before = video(&mut h, 2, 0);
    let others = video(&mut h, 3, 0).len();
    h.run(Duration::from_secs(1));
    assert_eq!(video(&mut h, 2, 0).len(), before.len(), "nothing more");
    assert!(
        video(&mut h, 3, others).len() > 40,
        "the others still see it"
    );

    // On again, the same layer: the stream goes on where it stopped, from a keyframe.
    view(&mut h, 2, VideoQuality::High);
    h.run(Duration::from_secs(1));
    let again = video(&mut h, 2, before.len());
    assert!(again.len() > 20 && layers(&again).iter().all(|l| *l == 2));
    let (last, first) = (before.last().unwrap(), again[0]);
    assert_eq!((first.ssrc, first.seq), (last.ssrc, last.seq + 1));
    let (l, f) = (last.vp8.unwrap(), first.vp8.unwrap());
    assert!(f.keyframe);
    assert_eq!(f.picture_id, (l.picture_id + 1) % 0x8000);
}

#[test]
fn a_viewer_falls_to_the_best_layer_that_still_flows_when_its_layer_stops() {
    let mut h = publisher_and_viewer();
    let from = video(&mut h, 2, 0).len();
    if let Some(s) = h.client(1).simulcast.as_mut() {
        s.sending[2] = false;
    }
    h.run(Duration::from_secs(3));
    switches_at_a_keyframe(&video(&mut h, 2, from), 2, 1);
}

#[test]
fn simulcast_crosses_workers_in_a_spread_room() {
    let mut h = Harness::two_cores(1);
    h.join_simulcast(1, 1);
    h.run(Duration::from_millis(300));
    h.join_rtp_listener(1, 2);
    assert_eq!((h.worker_of(1), h.worker_of(2)), (Some(0), Some(1)));
    h.run(Duration::from_secs(1));
    let from = video(&mut h, 2, 0).len();
    assert!(from > 20 && layers(&video(&mut h, 2, from - 5)) == [2; 5]);

    // The choice is made on the viewer's worker; the keyframe asked for crosses back.
    answer_keyframes(&mut h, false);
    let asked_before = asked(&mut h, 0);
    view(&mut h, 2, VideoQuality::Low);
    h.run(Duration::from_millis(600));
    assert!(asked(&mut h, 0) > asked_before);
    answer_keyframes(&mut h, true);
    h.run(Duration::from_secs(1));
    switches_at_a_keyframe(&video(&mut h, 2, from), 2, 0);
    assert!(h.core(0).stats().relayed > 0);
}

#[test]
fn choices_of_unknown_viewers_or_tracks_change_nothing_and_never_panic() {
    let mut h = publisher_and_viewer();
    let track = video_track(&h, 1);
    let long = "x".repeat(10_000);
    let odd = [
        (99, 1, track.as_str()),
        (2, 99, track.as_str()),
        (2, 1, ""),
        (2, 1, "\u{0}\u{ffff}"),
        (2, 1, long.as_str()),
        (2, 2, track.as_str()),
        (1, 1, track.as_str()),
    ];
    for (viewer, publisher, track) in odd {
        for quality in [VideoQuality::Off, VideoQuality::Low] {
            h.cmd(
                0,
                MediaCmd::ViewVideo {
                    member: m(viewer),
                    publisher: m(publisher),
                    track: track.to_owned(),
                    quality,
                    screen: false,
                },
            );
        }
    }
    let events = h.events.len();
    let from = video(&mut h, 2, 0).len();
    h.run(Duration::from_secs(1));
    let got = video(&mut h, 2, from);
    assert!(got.len() > 40 && layers(&got).iter().all(|l| *l == 2));
    let failed = h.events[events..]
        .iter()
        .any(|e| matches!(e, MediaEvent::Failed { .. } | MediaEvent::Error { .. }));
    assert!(!failed, "{:?}", &h.events[events..]);
}

#[test]
fn a_viewers_keyframe_request_asks_for_the_layer_it_is_sent() {
    let mut h = publisher_and_viewer();
    view(&mut h, 2, VideoQuality::Medium);
    h.run(Duration::from_secs(1));
    let mid = video(&mut h, 2, 0).last().unwrap().mid;
    assert_eq!(layers(&video(&mut h, 2, 0)).last(), Some(&1));
    let before: Vec<u64> = (0..3).map(|l| asked(&mut h, l)).collect();
    h.client(2)
        .rtc
        .direct_api()
        .stream_rx_by_mid(mid, None)
        .expect("the viewer receives the track")
        .request_keyframe(str0m::media::KeyframeRequestKind::Pli);
    h.run(Duration::from_millis(200));
    let after: Vec<u64> = (0..3).map(|l| asked(&mut h, l)).collect();
    assert_eq!(after, [before[0], before[1] + 1, before[2]]);
}

#[test]
fn timestamps_across_a_switch_follow_the_capture_time_the_sender_reports() {
    let mut h = Harness::new();
    h.join_simulcast(1, 1);
    // The full layer's pictures are captured 40 ms before the lowest one's sent with them.
    if let Some(s) = h.client(1).simulcast.as_mut() {
        s.lag = [0, 0, 2];
    }
    h.join_rtp_listener(1, 2);
    // Long enough for every layer's sender reports.
    h.run(Duration::from_secs(3));
    let from = video(&mut h, 2, 0).len();
    view(&mut h, 2, VideoQuality::Low);
    h.run(Duration::from_millis(500));
    let got = video(&mut h, 2, from - 1);
    let at = got.iter().position(|p| p.vp8.unwrap().layer == 0).unwrap();
    let (last, first) = (got[at - 1], got[at]);
    assert_eq!(last.vp8.unwrap().layer, 2);
    // The lowest picture was captured 40 ms more after the last full one sent than their
    // frame numbers tell (a report's timestamp is exact to a tick), whenever it arrived.
    let (l, f) = (last.vp8.unwrap(), first.vp8.unwrap());
    let frames = u32::from(f.frame) + 2 - u32::from(l.frame);
    let gap = first.timestamp.wrapping_sub(last.timestamp);
    assert!(frames >= 2, "{l:?} {f:?}");
    assert!(
        gap.abs_diff(frames * 1800) <= 1,
        "{gap} for {frames} frames"
    );
    assert_eq!(first.seq, last.seq + 1);
}

#[test]
fn viewers_keyframe_requests_reach_the_publisher_once_a_half_second_and_those_held_back_once_after()
{
    let mut h = publisher_and_viewer();
    h.join_rtp_listener(1, 3);
    h.run(Duration::from_secs(1));
    answer_keyframes(&mut h, false);
    h.run(Duration::from_millis(600));
    let mid = video(&mut h, 2, 0).last().unwrap().mid;
    let mid_3 = video(&mut h, 3, 0).last().unwrap().mid;
    let before: Vec<u64> = (0..3).map(|l| asked(&mut h, l)).collect();
    // Both viewers ask, every 40 ms for 200 ms.
    for _ in 0..5 {
        for (viewer, mid) in [(2, mid), (3, mid_3)] {
            h.client(viewer)
                .rtc
                .direct_api()
                .stream_rx_by_mid(mid, None)
                .expect("the viewer receives the track")
                .request_keyframe(str0m::media::KeyframeRequestKind::Pli);
        }
        h.run(Duration::from_millis(40));
    }
    let after: Vec<u64> = (0..3).map(|l| asked(&mut h, l)).collect();
    assert_eq!(
        after,
        [before[0], before[1], before[2] + 1],
        "the first only"
    );
    // Those held back are asked once, when the half second is over.
    h.run(Duration::from_millis(400));
    assert_eq!(asked(&mut h, 2), before[2] + 2);
    h.run(Duration::from_secs(1));
    let last: Vec<u64> = (0..3).map(|l| asked(&mut h, l)).collect();
    assert_eq!(
        last,
        [before[0], before[1], before[2] + 2],
        "and nothing more"
    );
}
