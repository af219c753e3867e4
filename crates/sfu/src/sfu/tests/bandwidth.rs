//! A viewer's bandwidth shared among its video: the layer it is sent follows its estimate
//! (given here in place of its estimator's), its audio is reserved first, and its estimator is
//! told what to probe for.

use std::time::Duration;

use super::harness::{Harness, RtpSeen, m};
use crate::MediaEvent;
use crate::video::allocation::{AUDIO_PER_SLOT, UPGRADE_PERCENT};
use crate::video::fall::FALL_ENDS;

/// Member 1 publishes in simulcast, member 2 views it in RTP mode (with `slots` audio slots);
/// after two seconds, so that the layers' bitrates are measured.
fn publisher_and_viewer(slots: usize) -> Harness {
    let mut h = Harness::with_slots(slots);
    h.join_simulcast(1, 1);
    h.join_rtp_listener(1, 2);
    h.run(Duration::from_secs(2));
    h
}

/// The layers' bitrates as the core measured them (bits/s).
fn bitrates(h: &mut Harness) -> [u64; 3] {
    let core = h.core(0);
    let key = core.participants.key_of(m(1)).expect("the publisher");
    let p = core.participants.get(key).expect("its session");
    let track = p
        .published
        .iter()
        .filter_map(|up| core.up_tracks.get(*up))
        .find(|t| t.kind == crate::TrackKind::Video)
        .expect("its camera");
    track.bitrates.map(u64::from)
}

/// Whether `a` is within 2 % of `b`: the measured bitrates move a little between windows.
fn near(a: u64, b: u64) -> bool {
    a.abs_diff(b) <= b / 50
}

/// The VP8 packets viewer 2 received.
fn vp8_seen(h: &mut Harness) -> Vec<RtpSeen> {
    h.client(2)
        .rtp
        .iter()
        .filter(|p| p.vp8.is_some())
        .copied()
        .collect()
}

/// The layers of the VP8 packets viewer 2 received from the `from`th on.
fn layers_seen(h: &mut Harness, from: usize) -> Vec<u8> {
    let seen = vp8_seen(h);
    seen.get(from..)
        .unwrap_or_default()
        .iter()
        .filter_map(|p| p.vp8.map(|v| v.layer))
        .collect()
}

fn packets_seen(h: &mut Harness) -> usize {
    h.client(2).rtp.iter().filter(|p| p.vp8.is_some()).count()
}

/// What `percent` of `bitrate` is.
fn share(bitrate: u64, percent: u64) -> u64 {
    bitrate * percent / 100
}

/// After the estimate `estimate` has held for a second, the layers viewer 2 received in the
/// half second after that.
fn layers_at(h: &mut Harness, estimate: u64) -> Vec<u8> {
    h.core(0).set_test_estimate(Some(estimate));
    h.run(Duration::from_secs(1));
    let from = packets_seen(h);
    h.run(Duration::from_millis(500));
    let mut seen = layers_seen(h, from);
    seen.dedup();
    seen
}

#[test]
fn the_layer_a_viewer_is_sent_follows_its_estimate_down_and_up_at_keyframes() {
    let mut h = publisher_and_viewer(0);
    let [low, medium, high] = bitrates(&mut h);
    assert!(
        low > 0 && low < medium && medium < high,
        "{low} {medium} {high}"
    );

    // Room for the medium layer (with headroom), not the full one.
    assert_eq!(layers_at(&mut h, share(medium, UPGRADE_PERCENT + 5)), [1]);
    // Room for the lowest only.
    assert_eq!(layers_at(&mut h, share(low, UPGRADE_PERCENT + 5)), [0]);
    // Not even half of that (half is enough to keep a viewer's last picture): the track is
    // paused for this viewer.
    assert_eq!(layers_at(&mut h, low / 3), Vec::<u8>::new());
    // Wide again: the full layer.
    assert_eq!(layers_at(&mut h, 10 * high), [2]);

    // Every change of layer the viewer saw came at a keyframe of the new layer.
    let all = vp8_seen(&mut h);
    let mut switches = 0;
    for pair in all.windows(2) {
        let (a, b) = (pair[0].vp8.unwrap(), pair[1].vp8.unwrap());
        if a.layer != b.layer {
            switches += 1;
            assert!(b.keyframe, "{a:?} then {b:?}");
        }
    }
    assert!(switches >= 3, "{switches}");

    // The room was told each change, for dynacast.
    let told: Vec<Option<u8>> = h
        .events
        .iter()
        .filter_map(|e| match e {
            MediaEvent::VideoAllocated { member, layer, .. } if *member == m(2) => Some(*layer),
            _ => None,
        })
        .collect();
    assert!(
        told.ends_with(&[Some(1), Some(0), None, Some(2)]),
        "{told:?}"
    );
}

#[test]
fn a_viewers_voices_are_reserved_before_its_video_and_its_empty_slots_are_not() {
    let mut h = publisher_and_viewer(3);
    let [_, medium, _] = bitrates(&mut h);
    let needed = share(medium, UPGRADE_PERCENT);
    let [low, _, _] = bitrates(&mut h);
    // No one speaks: the three slots send nothing, and nothing is set aside for them.
    assert_eq!(layers_at(&mut h, needed + 2_000), [1]);
    assert_eq!(layers_at(&mut h, share(low, UPGRADE_PERCENT + 5)), [0]);

    // Member 3 speaks, on one of the viewer's slots: what the medium layer needs fits the
    // estimate, but not once that voice is set aside; the two empty slots are not.
    h.join(1, 3);
    h.run(Duration::from_secs(1));
    let audio = AUDIO_PER_SLOT;
    assert_eq!(layers_at(&mut h, needed + audio - 2_000), [0]);
    assert_eq!(layers_at(&mut h, needed + audio + 2_000), [1]);
}

#[test]
fn the_estimator_is_told_to_probe_for_the_next_layer_and_aims_at_the_best() {
    let mut h = publisher_and_viewer(0);
    let [low, medium, high] = bitrates(&mut h);
    assert_eq!(layers_at(&mut h, share(low, UPGRADE_PERCENT + 5)), [0]);
    let [_, medium2, high2] = bitrates(&mut h);
    assert!(near(medium2, medium) && near(high2, high));
    let core = h.core(0);
    let key = core.participants.key_of(m(2)).unwrap();
    let probe = core.participants.get(key).unwrap().bandwidth.probe();
    let probe = probe.expect("the estimator was told what to aim for");
    // The next step up: the medium layer in place of the low one; and the full layer.
    assert!(
        near(probe.minimum, share(medium, UPGRADE_PERCENT)),
        "{probe:?}"
    );
    assert!(
        near(probe.desired, share(high, UPGRADE_PERCENT)),
        "{probe:?}"
    );
    // The full layer held: nothing more to probe for.
    assert_eq!(layers_at(&mut h, 10 * high), [2]);
    let core = h.core(0);
    let key = core.participants.key_of(m(2)).unwrap();
    let probe = core
        .participants
        .get(key)
        .unwrap()
        .bandwidth
        .probe()
        .unwrap();
    assert_eq!(probe.minimum, 0, "{probe:?}");
    assert!(
        near(probe.desired, share(high, UPGRADE_PERCENT)),
        "{probe:?}"
    );
}

#[test]
fn a_step_down_of_an_estimate_standing_far_above_what_is_sent_moves_the_viewer_down_at_once() {
    let mut h = publisher_and_viewer(0);
    let [_, _, high] = bitrates(&mut h);
    assert_eq!(layers_at(&mut h, 10 * high), [2]);
    // 7 % less: still nine times what the full layer needs, but a step down while it is sent
    // says the path no longer carries it.
    let stepped = 10 * high * 93 / 100;
    assert_eq!(layers_at(&mut h, stepped), [1]);
    // The fall over (no further step down for a while), the estimate alone decides again.
    h.run(FALL_ENDS);
    assert_eq!(layers_at(&mut h, stepped), [2]);
}

#[test]
fn a_member_who_joins_a_room_with_video_has_an_estimator_and_one_who_joins_an_audio_room_has_none()
{
    // Member 2 joins room 1 once member 1's camera is there, without one of its own.
    let mut h = Harness::with_slots(0);
    h.join_simulcast(1, 1);
    h.run(Duration::from_secs(1));
    h.join_rtp_listener(1, 2);
    // Member 3 joins room 2, where no one has video.
    h.join(2, 4);
    h.join_rtp_listener(2, 3);
    h.run(Duration::from_secs(2));
    let core = h.core(0);
    let seen = |id| {
        let key = core.participants.key_of(m(id)).expect("a session");
        core.participants
            .get(key)
            .expect("its state")
            .bandwidth
            .seen
    };
    assert!(
        seen(2).is_some(),
        "the viewer's estimator reported where it stands"
    );
    assert_eq!(seen(3), None);
}
