use std::time::Duration;

use super::harness::{Harness, m};
use crate::{MediaCmd, Relay};

#[test]
fn a_fan_out_is_written_a_subscriber_at_a_time_as_the_shell_polls() {
    let mut h = Harness::new();
    let members = 6;
    for id in 1..=members {
        h.join(1, id);
    }
    h.run(Duration::from_millis(500));
    assert!(h.heard(members, 1) > 0, "the room is connected");

    let sent = h.one_packet_each(&[1]);
    assert!(!sent.is_empty());
    assert!(
        h.core(0).poll_transmit().is_none(),
        "nothing left over from before"
    );
    let forwarded = h.core(0).stats().forwarded;
    h.read_together(&sent);
    // Handed in, not yet written: the copies are made as the shell asks for them.
    assert_eq!(h.core(0).stats().forwarded, forwarded);
    assert!(h.core(0).poll_transmit().is_some());
    assert_eq!(
        h.core(0).stats().forwarded,
        forwarded + 1,
        "one subscriber so far"
    );
    let rest = std::iter::from_fn(|| h.core(0).poll_transmit()).count();
    assert_eq!(rest as u64, members - 2);
    assert_eq!(h.core(0).stats().forwarded, forwarded + members - 1);
}

#[test]
fn packets_read_together_are_written_to_each_member_before_one_drain() {
    let mut h = Harness::new();
    for id in 1..=5 {
        h.join(1, id);
    }
    h.run(Duration::from_millis(500));
    assert!(
        h.heard(5, 1) > 0 && h.heard(5, 2) > 0,
        "the room is connected"
    );
    let pairs = [
        (1, 2),
        (2, 1),
        (3, 1),
        (3, 2),
        (4, 1),
        (4, 2),
        (5, 1),
        (5, 2),
    ];
    let before = h.heard_by(&pairs);

    // One packet from each of members 1 and 2, read together.
    let sent = h.one_packet_each(&[1, 2]);
    let (forwarded, drains) = (h.core(0).stats().forwarded, h.core(0).test.fan_out_drains);
    h.read_together(&sent);
    h.deliver(0);
    // Members 3 to 5 are sent both packets, 1 and 2 the other's: eight copies, and each
    // member drained once (eight times if each packet were fanned out alone).
    assert_eq!(h.core(0).stats().forwarded - forwarded, 8);
    assert_eq!(h.core(0).test.fan_out_drains - drains, 5);
    h.assert_heard_more(&pairs, &before);

    // Once the room has emptied, the batch's buffers are given back too.
    assert!(h.core(0).fan_out.capacity() > 0);
    for id in 1..=5 {
        h.cmd(0, MediaCmd::RemoveParticipant { member: m(id) });
    }
    assert_eq!(h.core(0).stats().rooms, 0);
    assert_eq!(h.core(0).fan_out.capacity(), 0);
}

#[test]
fn packets_relayed_together_are_written_to_each_member_before_one_drain() {
    let mut h = Harness::spread_of_four();
    assert!(
        h.heard(4, 1) > 0 && h.heard(4, 2) > 0,
        "the room is connected"
    );
    let pairs = [(3, 1), (3, 2), (4, 1), (4, 2)];
    let before = h.heard_by(&pairs);

    // One packet from each of members 1 and 2 (first core), relayed to the second together.
    let sent = h.one_packet_each(&[1, 2]);
    h.read_together(&sent);
    let relays: Vec<Relay> = std::iter::from_fn(|| h.core(0).poll_relay())
        .map(|(to, relay)| {
            assert_eq!(to, 1);
            relay
        })
        .collect();
    assert_eq!(relays.len(), 2);
    let (forwarded, drains) = (h.core(1).stats().forwarded, h.core(1).test.fan_out_drains);
    let now = h.now;
    for relay in relays {
        h.core(1).handle_relay(relay, now);
    }
    h.deliver(1);
    // Members 3 and 4 are each sent both packets, and drained once.
    assert_eq!(h.core(1).stats().forwarded - forwarded, 4);
    assert_eq!(h.core(1).test.fan_out_drains - drains, 2);
    h.assert_heard_more(&pairs, &before);
}
