use std::net::SocketAddr;
use std::time::Duration;

use str0m::media::{Direction, MediaKind};
use str0m::net::Protocol;
use str0m::{Candidate, Rtc};

use super::harness::{Harness, SERVER, m, r};
use crate::{CoreStats, MediaCmd, MediaEvent};

#[test]
fn hostile_offers_are_refused_without_a_session() {
    let mut h = Harness::new();
    let now = h.now;
    let long_line = format!("v=0\r\nm=audio {} RTP/AVP 0\r\n", "9".repeat(10_000));
    let offers = [
        "",
        "v=0",
        "m=",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n",
        "v=0\r\no=- 0 0 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
        long_line.as_str(),
        "\u{0}\u{1}\u{2}m=video",
    ];
    for (i, offer) in offers.iter().enumerate() {
        let member = m(100 + i as u64);
        h.core(0).handle_cmd(
            MediaCmd::AddParticipant {
                room: r(1),
                member,
                source: 9,
                offer: offer.to_string(),
            },
            now,
        );
        match h.core(0).poll_event() {
            Some((room, MediaEvent::Refused { member: who, .. }))
                if who == member && room == r(1) => {}
            other => panic!("offer {i}: {other:?}"),
        }
    }
    assert_eq!(h.core(0).stats(), CoreStats::default());
}

/// A small deterministic generator, so a failing case can be replayed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() as usize) % n.max(1)
    }
}

/// Mangles text the way a hostile or broken client might: flipped bytes, cut lines,
/// duplicated lines, huge numbers.
fn mangle(text: &str, rng: &mut Lcg) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for _ in 0..1 + rng.below(4) {
        if lines.is_empty() {
            break;
        }
        let i = rng.below(lines.len());
        match rng.below(5) {
            0 => {
                lines.remove(i);
            }
            1 => {
                let l = lines[i].clone();
                lines.insert(i, l);
            }
            2 => {
                let l = &mut lines[i];
                let cut = rng.below(l.len() + 1);
                l.truncate(l.floor_char_boundary(cut));
            }
            3 => lines[i].push_str(" 99999999999999999999 -1 \u{0}"),
            _ => {
                let mut bytes = lines[i].clone().into_bytes();
                if !bytes.is_empty() {
                    let j = rng.below(bytes.len());
                    bytes[j] = rng.next() as u8;
                }
                lines[i] = String::from_utf8_lossy(&bytes).into_owned();
            }
        }
    }
    lines.join("\r\n") + "\r\n"
}

#[test]
fn mangled_offers_and_garbage_datagrams_never_escape_and_the_room_goes_on() {
    let mut h = Harness::new();
    h.join(1, 1);
    h.join(1, 2);
    h.run(Duration::from_secs(1));
    assert!(h.heard(1, 2) > 20);

    // A good offer to mangle.
    let offer = {
        let mut rtc = Rtc::new(h.now);
        let addr: SocketAddr = "127.0.0.1:7000".parse().unwrap();
        rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
        let mut api = rtc.sdp_api();
        api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        api.apply().unwrap().0.to_sdp_string()
    };
    let mut rng = Lcg(0x5eed);
    let now = h.now;
    for i in 0..300u64 {
        let member = m(1000 + i);
        let sdp = mangle(&offer, &mut rng);
        h.core(0).handle_cmd(
            MediaCmd::AddParticipant {
                room: r(1),
                member,
                source: 9,
                offer: sdp.clone(),
            },
            now,
        );
        // Either refused, or accepted and then told to go.
        h.core(0).handle_cmd(
            MediaCmd::Offer {
                member,
                sdp: sdp.clone(),
            },
            now,
        );
        h.core(0).handle_cmd(MediaCmd::Answer { member, sdp }, now);
        h.core(0).handle_cmd(
            MediaCmd::Candidate {
                member,
                candidate: mangle(
                    "candidate:1 1 udp 2130706431 127.0.0.1 7000 typ host",
                    &mut rng,
                ),
            },
            now,
        );
        h.core(0)
            .handle_cmd(MediaCmd::RemoveParticipant { member }, now);
        while h.core(0).poll_event().is_some() {}
        while h.core(0).poll_transmit().is_some() {}
    }

    // Garbage from a connected member's own address: shapes of STUN, DTLS, RTP and RTCP.
    let from = h.clients[0].addr;
    let server: SocketAddr = SERVER.parse().unwrap();
    for _ in 0..3000 {
        let len = rng.below(300);
        let mut d: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if let Some(first) = d.first_mut() {
            *first = [0u8, 1, 20, 22, 23, 128, 144, 191][rng.below(8)];
        }
        h.core(0)
            .handle_datagram(now, Protocol::Udp, from, server, &d);
    }
    let stats = h.core(0).stats();
    assert_eq!((stats.rooms, stats.participants), (1, 2), "{stats:?}");
    // No member was dropped for what it was sent (the mangled offers were refused or removed).
    assert_eq!(stats.failed, 0, "{stats:?}");

    // The two original members still hear each other.
    let before = (h.heard(1, 2), h.heard(2, 1));
    h.run(Duration::from_secs(1));
    assert!(h.heard(1, 2) > before.0 + 20 && h.heard(2, 1) > before.1 + 20);
}
