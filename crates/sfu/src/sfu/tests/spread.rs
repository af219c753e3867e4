use std::time::Duration;

use super::forwarding::member_2_sees_member_1_and_asks_for_keyframes;
use super::harness::{Harness, m};

#[test]
fn a_room_spread_over_two_cores_is_heard_across_them_and_forgotten_when_they_empty() {
    let mut h = Harness::spread_of_four();
    for listener in 1..=4 {
        for speaker in (1..=4).filter(|s| *s != listener) {
            let n = h.heard(listener, speaker);
            assert!(n > 50, "{listener} hears {speaker}: {n}");
        }
    }
    // Each packet crossed once, and each copy was written by the core of its listener.
    let (first, second) = (h.core(0).stats(), h.core(1).stats());
    assert!(
        first.relayed > 100 && second.relayed > 100,
        "{first:?} {second:?}"
    );
    assert!(second.relayed_in > 100 && first.relayed_in > 100);
    assert_eq!((first.participants, second.participants), (2, 2));

    // Member 3 leaves the second core: the first core's members stop receiving them.
    h.leave(1, 3);
    h.run(Duration::from_millis(500));
    let first = h.core(0);
    let downs_of_3 = [m(1), m(2)]
        .iter()
        .filter_map(|id| first.participants.key_of(*id))
        .filter_map(|k| first.participants.get(k))
        .flat_map(|p| p.downs.iter())
        .filter(|(_, d)| {
            d.track_source()
                .is_some_and(|(publisher, _)| publisher == m(3))
        })
        .count();
    assert_eq!(downs_of_3, 0, "their m-lines were stopped and settled");
    let before = h.heard(1, 4);
    h.run(Duration::from_millis(500));
    assert!(h.heard(1, 4) > before + 15, "the rest of the room goes on");

    // The second core's last member leaves: it forgets the room entirely.
    h.leave(1, 4);
    h.run(Duration::from_millis(100));
    let second = h.core(1).stats();
    assert_eq!(
        (
            second.rooms,
            second.participants,
            second.timers,
            second.up_tracks
        ),
        (0, 0, 0, 0)
    );
    assert!(h.core(1).outbox.relays.is_empty());
    // The first core no longer relays to it.
    let relayed = h.core(0).stats().relayed;
    h.run(Duration::from_millis(200));
    assert_eq!(h.core(0).stats().relayed, relayed);
}

#[test]
fn video_crosses_cores_and_keyframe_requests_come_back() {
    let mut h = Harness::two_cores(1);
    h.join_with_video(1, 1);
    h.run(Duration::from_millis(300));
    h.join(1, 2);
    assert_eq!((h.worker_of(1), h.worker_of(2)), (Some(0), Some(1)));
    h.run(Duration::from_secs(1));
    // Member 1 is on the first core, member 2 on the second: the media and the keyframe
    // requests crossed between them.
    member_2_sees_member_1_and_asks_for_keyframes(&mut h);
    assert!(h.core(0).stats().relayed > 0 && h.core(1).stats().relayed > 0);
}

#[test]
fn a_relayed_packet_for_a_room_this_core_does_not_hold_is_dropped() {
    let mut h = Harness::two_cores(1);
    h.join(1, 1);
    h.join(1, 2);
    h.run(Duration::from_secs(1));
    assert!(h.heard(2, 1) > 20);
    // A packet in flight to the second core when its last member leaves arrives after it
    // has forgotten the room: it is dropped without effect.
    let sent = h.one_packet_each(&[1]);
    h.read_together(&sent);
    let relays: Vec<_> = std::iter::from_fn(|| h.core(0).poll_relay()).collect();
    assert_eq!(relays.len(), 1);
    h.leave(1, 2);
    let now = h.now;
    let forwarded = h.core(1).stats().forwarded;
    for (_, relay) in relays {
        h.core(1).handle_relay(relay, now);
    }
    while h.core(1).poll_transmit().is_some() {}
    let second = h.core(1).stats();
    assert_eq!(
        (second.rooms, second.participants, second.forwarded),
        (0, 0, forwarded)
    );
}
