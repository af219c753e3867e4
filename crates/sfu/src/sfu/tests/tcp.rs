use std::net::SocketAddr;
use std::time::Duration;

use str0m::net::Protocol;

use super::harness::{Harness, SERVER, m};
use crate::MediaEvent;

/// The transport of each `a=candidate` line of an SDP, with its priority.
fn candidate_priorities(sdp: &str) -> Vec<(String, u32, String)> {
    sdp.lines()
        .filter_map(|l| l.strip_prefix("a=candidate:"))
        .map(|c| {
            let f: Vec<&str> = c.split_whitespace().collect();
            (
                f[2].to_ascii_lowercase(),
                f[3].parse().unwrap(),
                c.to_owned(),
            )
        })
        .collect()
}

#[test]
fn passive_tcp_candidates_are_offered_below_udp() {
    let mut h = Harness::new();
    h.join(1, 1);
    h.exchange();
    let answer = h
        .events
        .iter()
        .find_map(|e| match e {
            MediaEvent::Answer { sdp, .. } => Some(sdp.clone()),
            _ => None,
        })
        .unwrap();
    let candidates = candidate_priorities(&answer);
    let udp: Vec<_> = candidates.iter().filter(|c| c.0 == "udp").collect();
    let tcp: Vec<_> = candidates.iter().filter(|c| c.0 == "tcp").collect();
    assert_eq!((udp.len(), tcp.len()), (1, 1), "{answer}");
    assert!(
        tcp[0].2.contains("127.0.0.1 5000 typ host tcptype passive"),
        "{answer}"
    );
    // UDP is preferred whenever it works.
    assert!(udp[0].1 > tcp[0].1, "{candidates:?}");
}

#[test]
fn a_member_over_tcp_hears_and_is_heard_and_its_connection_closes_when_it_leaves() {
    let mut h = Harness::new();
    let tcp_addr: SocketAddr = "127.0.0.1:7002".parse().unwrap();
    h.join(1, 1);
    h.join_tcp(1, 2, tcp_addr);
    h.run(Duration::from_secs(2));
    assert!(h.heard(1, 2) > 50, "UDP hears TCP: {}", h.heard(1, 2));
    assert!(h.heard(2, 1) > 50, "TCP hears UDP: {}", h.heard(2, 1));
    assert_eq!(h.tcp.rejected, 0);
    assert!(h.tcp.open.contains(&tcp_addr));
    let stats = h.core(0).stats();
    assert_eq!((stats.addrs, stats.tcp_addrs), (2, 1), "{stats:?}");

    h.leave(1, 2);
    h.exchange();
    assert_eq!(
        h.tcp.closed,
        vec![tcp_addr],
        "the core closes its connection"
    );
    let stats = h.core(0).stats();
    assert_eq!(
        (stats.participants, stats.addrs, stats.tcp_addrs),
        (1, 1, 0),
        "{stats:?}"
    );
}

#[test]
fn a_udp_and_a_tcp_remote_on_one_address_are_told_apart() {
    let mut h = Harness::new();
    // Member 1 over UDP from 127.0.0.1:6001, member 2 over TCP from the very same address.
    let shared: SocketAddr = "127.0.0.1:6001".parse().unwrap();
    h.join(1, 1);
    h.join_tcp(1, 2, shared);
    h.join(1, 3);
    h.run(Duration::from_secs(2));
    for (to, from) in [(1, 2), (2, 1), (1, 3), (3, 1), (2, 3), (3, 2)] {
        assert!(
            h.heard(to, from) > 50,
            "{to} hears {from}: {}",
            h.heard(to, from)
        );
    }
    assert_eq!(h.undelivered, 0, "every datagram went to its own member");
    let stats = h.core(0).stats();
    assert_eq!((stats.addrs, stats.tcp_addrs), (3, 1), "{stats:?}");

    // The TCP connection closes: the core forgets that remote alone.
    h.core(0).tcp_closed(shared);
    h.tcp.open.remove(&shared);
    let stats = h.core(0).stats();
    assert_eq!((stats.addrs, stats.tcp_addrs), (2, 0), "{stats:?}");
    let before = (h.heard(1, 3), h.heard(3, 1));
    h.run(Duration::from_secs(1));
    assert!(h.heard(1, 3) > before.0 + 40, "the UDP member goes on");
    assert!(h.heard(3, 1) > before.1 + 40);
    assert_eq!(h.core(0).stats().failed, 0);
}

#[test]
fn a_tcp_connection_opens_only_with_a_stun_binding_request_a_member_accepts() {
    use str0m::ice::{StunMessage, TransId};

    let mut h = Harness::new();
    h.join(1, 1);
    h.run(Duration::from_millis(500));
    let server: SocketAddr = SERVER.parse().unwrap();
    let from: SocketAddr = "127.0.0.1:9999".parse().unwrap();
    let now = h.now;
    let ufrag = {
        let core = h.core(0);
        let key = core.participants.key_of(m(1)).unwrap();
        core.participants.get(key).unwrap().ufrag.clone()
    };
    let stun = |username: &str| {
        let msg = StunMessage::binding_request(username, TransId::new(), true, 1, 1, false);
        let mut buf = vec![0u8; 1200];
        // Not the member's password: the integrity check fails.
        let n = msg
            .to_bytes(Some(b"wrong"), &mut buf, |_, _| [0u8; 20])
            .unwrap();
        buf.truncate(n);
        buf
    };
    let unknown_user = stun("nobody-here:remote");
    let wrong_password = stun(&format!("{ufrag}:remote"));
    let frames: [&[u8]; 7] = [
        b"",
        b"GET / HTTP/1.1\r\n\r\n",
        &[22, 254, 253, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0],
        &[0x80; 40],
        &[
            0x01, 0x01, 0, 0, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
        ],
        &unknown_user,
        &wrong_password,
    ];
    for (i, f) in frames.iter().enumerate() {
        assert!(
            !h.core(0).handle_first_tcp_frame(now, from, server, f),
            "frame {i} refused"
        );
    }
    let stats = h.core(0).stats();
    assert_eq!(
        (stats.addrs, stats.tcp_addrs, stats.participants),
        (1, 0, 1),
        "{stats:?}"
    );
    // All but the last: that one reached the member, whose session refused it.
    assert_eq!(
        stats.garbage + stats.unknown,
        frames.len() as u64 - 1,
        "{stats:?}"
    );
    // Nothing was sent back over TCP.
    let transmits: Vec<_> = std::iter::from_fn(|| h.core(0).poll_transmit()).collect();
    assert!(transmits.iter().all(|t| t.proto == Protocol::Udp));
}
