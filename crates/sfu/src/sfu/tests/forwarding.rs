use std::time::Duration;

use str0m::media::KeyframeRequestKind;
use str0m::net::Protocol;

use super::harness::{Harness, m, r};
use crate::{MAX_PUBLISHED_TRACKS, MediaCmd, MediaEvent};

#[test]
fn forwards_audio_between_members_of_a_room_only() {
    let mut h = Harness::new();
    h.join(1, 1);
    h.join(1, 2);
    h.join(2, 3);
    h.run(Duration::from_secs(2));
    assert!(h.heard(1, 2) > 50, "{}", h.heard(1, 2));
    assert!(h.heard(2, 1) > 50);
    assert_eq!(h.heard(3, 1) + h.heard(3, 2), 0, "other rooms hear nothing");
    assert_eq!(h.heard(1, 3) + h.heard(2, 3), 0);
    assert_eq!(h.core(0).stats().rooms, 2);
}

#[test]
fn a_panic_in_one_members_session_drops_that_member_alone() {
    let mut h = Harness::new();
    for id in 1..=3 {
        h.join(7, id);
    }
    h.run(Duration::from_secs(2));
    assert!(h.heard(1, 3) > 50 && h.heard(3, 1) > 50);

    h.core(0).inject_panic_on_drain(m(2));
    h.run(Duration::from_millis(200));
    let failed: Vec<_> = h
        .events
        .iter()
        .filter(|e| matches!(e, MediaEvent::Failed { .. }))
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].member(), m(2));
    let stats = h.core(0).stats();
    assert_eq!(
        (stats.rooms, stats.participants, stats.ufrags, stats.failed),
        (1, 2, 2, 1)
    );
    // Their up-track went, and so did the down-tracks the others had of it.
    assert_eq!(stats.up_tracks, 2);
    assert_eq!((h.down_tracks(1), h.down_tracks(3)), (1, 1));

    // The others go on talking.
    let (a, b) = (h.heard(1, 3), h.heard(3, 1));
    h.run(Duration::from_secs(1));
    assert!(h.heard(1, 3) >= a + 40, "{} → {}", a, h.heard(1, 3));
    assert!(h.heard(3, 1) >= b + 40);
}

#[test]
fn a_member_publishing_many_tracks_makes_others_receive_only_a_few() {
    let mut h = Harness::new();
    h.join(1, 1);
    h.join_with_tracks(1, 2, 40);
    h.run(Duration::from_millis(500));
    let published = h
        .events
        .iter()
        .filter(|e| matches!(e, MediaEvent::TrackPublished { member, .. } if *member == m(2)))
        .count();
    assert_eq!(published, MAX_PUBLISHED_TRACKS);
    assert_eq!(h.down_tracks(1), MAX_PUBLISHED_TRACKS);
    assert!(h.heard(1, 2) > 0, "the first track still flows");
}

#[test]
fn forwarded_audio_keeps_its_numbering_across_renegotiations() {
    let mut h = Harness::new();
    h.join(1, 1);
    h.join(1, 2);
    h.run(Duration::from_secs(1));
    // A third member comes and goes: two renegotiations for the first two.
    h.join(1, 3);
    h.run(Duration::from_secs(1));
    h.leave(1, 3);
    h.run(Duration::from_secs(1));

    for (to, from) in [(2, 1), (1, 2)] {
        let got = h.client(to).audio.get(&(from as u8)).cloned().unwrap();
        assert!(got.len() > 120, "{to} from {from}: {}", got.len());
        // Every sequence number once, in order, and the media time 20 ms further each time.
        for pair in got.windows(2) {
            let ((s0, t0), (s1, t1)) = (pair[0], pair[1]);
            assert_eq!((s1 - s0, t1 - t0), (1, 960), "{to} from {from}: {pair:?}");
        }
        assert!(got[0].0 < 1 << 16, "a new stream starts below 2^16");
    }
    // Member 3's up-track and the down-tracks of it are gone, their m-lines settled.
    assert_eq!(h.core(0).stats().up_tracks, 2);
    assert_eq!((h.down_tracks(1), h.down_tracks(2)), (1, 1));
}

#[test]
fn video_is_forwarded_and_keyframe_requests_reach_the_publisher() {
    let mut h = Harness::new();
    h.join_with_video(1, 1);
    h.join(1, 2);
    h.run(Duration::from_secs(1));
    member_2_sees_member_1_and_asks_for_keyframes(&mut h);
}

/// Member 2 receives member 1's audio and video; the new down-track asked member 1 for a
/// keyframe, and so does a PLI from member 2.
pub fn member_2_sees_member_1_and_asks_for_keyframes(h: &mut Harness) {
    assert!(h.heard(2, 1) > 40, "audio flows: {}", h.heard(2, 1));
    assert!(
        h.client(2).video_frames > 20,
        "{}",
        h.client(2).video_frames
    );
    // The new down-track asked the publisher for a keyframe.
    let asked = h.client(1).keyframe_requests;
    assert!(asked >= 1, "{asked}");

    // The subscriber asks for one (after the throttle): it reaches the publisher.
    let c = h.client(2);
    let mid = c.video_mids[0];
    c.rtc
        .writer(mid)
        .unwrap()
        .request_keyframe(None, KeyframeRequestKind::Pli)
        .unwrap();
    h.run(Duration::from_millis(200));
    assert_eq!(h.client(1).keyframe_requests, asked + 1);
}

#[test]
fn a_members_address_tells_its_room() {
    let mut h = Harness::new();
    h.join(1, 1);
    h.join(1, 2);
    h.join(2, 3);
    h.join(2, 4);
    h.run(Duration::from_millis(500));
    assert!(
        h.heard(2, 1) > 0 && h.heard(4, 3) > 0,
        "both rooms are connected"
    );
    let sent = h.one_packet_each(&[1, 3]);
    let rooms: Vec<_> = sent
        .iter()
        .map(|t| h.core(0).room_of(t.proto, t.source))
        .collect();
    assert_eq!(rooms, [Some(r(1)), Some(r(2))]);
    let stranger = "127.0.0.1:9".parse().unwrap();
    assert_eq!(h.core(0).room_of(Protocol::Udp, stranger), None);
    // Once the member has gone, so has what its address told.
    h.cmd(0, MediaCmd::RemoveParticipant { member: m(1) });
    assert_eq!(h.core(0).room_of(sent[0].proto, sent[0].source), None);
}

#[test]
fn a_member_muted_for_everyone_is_not_heard_but_its_camera_is_still_seen() {
    let mut h = Harness::new();
    h.join_with_video(1, 1);
    h.join(1, 2);
    h.run(Duration::from_secs(1));
    assert!(h.heard(2, 1) > 20 && h.client(2).video_frames > 20);
    h.cmd(
        0,
        MediaCmd::Silence {
            member: m(1),
            silenced: true,
        },
    );
    h.run(Duration::from_millis(200));
    let (heard, frames) = (h.heard(2, 1), h.client(2).video_frames);
    h.run(Duration::from_secs(1));
    assert_eq!(h.heard(2, 1), heard, "its voice stops");
    let seen = h.client(2).video_frames;
    assert!(
        seen > frames + 20,
        "its picture goes on: {frames} then {seen}"
    );
}

#[test]
fn a_member_muted_for_everyone_reaches_nobody_on_any_core_until_it_is_lifted() {
    let mut h = Harness::two_cores(2);
    for id in 1..=3 {
        h.join(1, id);
    }
    // Members 1 and 2 on the first core, member 3 on the second.
    assert_eq!(h.worker_of(3), Some(1));
    h.run(Duration::from_secs(1));
    assert!(h.heard(2, 1) > 20 && h.heard(3, 1) > 20);
    let silence = |silenced| MediaCmd::Silence {
        member: m(1),
        silenced,
    };
    h.cmd(0, silence(true));
    // What was on its way arrives; nothing after it.
    h.run(Duration::from_millis(200));
    let before = h.heard_by(&[(2, 1), (3, 1), (1, 2), (1, 3)]);
    h.run(Duration::from_secs(1));
    let after = h.heard_by(&[(2, 1), (3, 1), (1, 2), (1, 3)]);
    assert_eq!(after[..2], before[..2], "nobody hears the muted member");
    assert!(
        after[2] > before[2] + 20 && after[3] > before[3] + 20,
        "it hears the others"
    );
    h.cmd(0, silence(false));
    h.run(Duration::from_secs(1));
    assert!(h.heard(2, 1) > after[0] + 20 && h.heard(3, 1) > after[1] + 20);
}
