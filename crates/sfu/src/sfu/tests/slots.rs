use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use super::harness::{Harness, m};
use crate::{MediaCmd, MediaEvent};

/// Server offers each member received.
fn offers(h: &Harness, id: u64) -> usize {
    h.events
        .iter()
        .filter(|e| matches!(e, MediaEvent::Offer { member, .. } if *member == m(id)))
        .count()
}

#[test]
fn with_three_slots_a_room_of_three_talkers_hears_every_speaker() {
    let mut h = Harness::with_slots(3);
    for id in 1..=3 {
        h.join(1, id);
    }
    h.run(Duration::from_secs(2));
    for listener in 1..=3 {
        for speaker in (1..=3).filter(|s| *s != listener) {
            let n = h.heard(listener, speaker);
            assert!(n > 50, "{listener} hears {speaker}: {n}");
        }
        assert_eq!(h.heard(listener, listener), 0, "nobody hears themselves");
    }
}

#[test]
fn slots_are_negotiated_once_and_later_joins_renegotiate_nobody() {
    let mut h = Harness::with_slots(3);
    h.join(1, 1);
    h.run(Duration::from_millis(500));
    assert_eq!(offers(&h, 1), 1, "one server offer: the slots");
    for id in 2..=6 {
        h.join(1, id);
        h.run(Duration::from_millis(200));
    }
    h.run(Duration::from_secs(1));
    for id in 1..=6 {
        assert_eq!(offers(&h, id), 1, "member {id} was offered the slots once");
        assert_eq!(h.down_tracks(id), 3, "three slots, no m-line per track");
    }
    // Six talk at once: each hears three voices at most, never its own.
    let before: HashMap<(u64, u64), u64> = (1..=6)
        .flat_map(|l| (1..=6).map(move |s| (l, s)))
        .map(|(l, s)| ((l, s), h.heard(l, s)))
        .collect();
    h.run(Duration::from_secs(1));
    for listener in 1..=6 {
        let voices: BTreeSet<u64> = (1..=6)
            .filter(|s| h.heard(listener, *s) > before[&(listener, *s)] + 20)
            .collect();
        assert!(!voices.contains(&listener), "{listener} hears itself");
        assert_eq!(voices.len(), 3, "{listener} hears {voices:?}");
    }
}

#[test]
fn a_slot_keeps_one_steady_stream_and_names_each_speaker_by_csrc() {
    let mut h = Harness::with_slots(1);
    h.join_rtp_listener(1, 9);
    h.join(1, 1);
    h.join(1, 2);
    h.client(2).talking = false;
    h.run(Duration::from_secs(1));
    // Member 1 stops (DTX: nothing at all is sent), member 2 starts: the slot moves to 2
    // once 1 has been quiet a while.
    h.client(1).talking = false;
    h.client(2).talking = true;
    h.run(Duration::from_secs(2));
    let seen = h.client(9).rtp.clone();
    let senders: Vec<_> = seen.iter().map(|p| (p.sender, p.csrc)).collect();
    assert!(
        seen.len() > 100,
        "{} {senders:?} {:?}",
        seen.len(),
        h.heard(9, 2)
    );
    let first = seen[0];
    let sources: Vec<u32> = [1, 2].iter().map(|id| h.source_of(*id)).collect();
    for pair in seen.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        assert_eq!(
            (b.mid, b.ssrc, b.pt),
            (first.mid, first.ssrc, first.pt),
            "one stream"
        );
        assert_eq!(
            b.seq,
            a.seq + 1,
            "contiguous across the change: {a:?} {b:?}"
        );
        assert!(
            b.timestamp.wrapping_sub(a.timestamp) < 1 << 31,
            "never back"
        );
    }
    // Each packet's CSRC names the member whose audio it carries.
    for p in &seen {
        let who = sources
            .iter()
            .position(|s| Some(*s) == p.csrc)
            .map(|i| i as u8 + 1);
        assert_eq!(who, p.sender, "{p:?}");
    }
    let (ones, twos) = (
        seen.iter().filter(|p| p.sender == Some(1)).count(),
        seen.iter().filter(|p| p.sender == Some(2)).count(),
    );
    assert!(ones > 30 && twos > 30, "{ones} from 1, {twos} from 2");
    // Across the change, the timestamp moved on by about the silence between them.
    let change = seen.iter().position(|p| p.sender == Some(2)).unwrap();
    let gap = seen[change]
        .timestamp
        .wrapping_sub(seen[change - 1].timestamp);
    assert!((960..48_000).contains(&gap), "{gap} ticks");
}

#[test]
fn a_member_muted_for_me_is_kept_off_my_slots() {
    let mut h = Harness::with_slots(3);
    for id in 1..=3 {
        h.join(1, id);
    }
    h.run(Duration::from_secs(1));
    assert!(h.heard(1, 2) > 20 && h.heard(1, 3) > 20);
    h.cmd(
        0,
        MediaCmd::LocalMutes {
            member: m(1),
            muted: vec![m(2)],
        },
    );
    h.run(Duration::from_millis(100));
    let (two, three) = (h.heard(1, 2), h.heard(1, 3));
    h.run(Duration::from_secs(1));
    assert_eq!(h.heard(1, 2), two, "muted for member 1");
    assert!(h.heard(1, 3) > three + 20);
    assert!(h.heard(3, 2) > 20, "the others still hear member 2");
    h.cmd(
        0,
        MediaCmd::LocalMutes {
            member: m(1),
            muted: vec![],
        },
    );
    h.run(Duration::from_secs(1));
    assert!(h.heard(1, 2) > two + 20, "unmuted again");
}

#[test]
fn a_room_on_slots_spread_over_two_cores_is_heard_across_them() {
    let mut h = Harness::two_cores_with_slots(1, 3);
    for id in 1..=3 {
        h.join(1, id);
        h.run(Duration::from_millis(100));
    }
    assert_eq!(h.worker_of(2), Some(1));
    h.run(Duration::from_secs(2));
    for listener in 1..=3 {
        for speaker in (1..=3).filter(|s| *s != listener) {
            let n = h.heard(listener, speaker);
            assert!(n > 50, "{listener} hears {speaker}: {n}");
        }
    }
}
