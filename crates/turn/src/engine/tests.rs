//! The core on a fake clock: what needs time to pass, or the engine's inside, to be seen.

use std::time::{Duration, Instant, SystemTime};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use stun_types::message::{Message, MessageClass, MessageWriteVec, TransactionId};
use stun_types::prelude::*;
use turn_types::attribute::{
    ChannelNumber, EvenPort, Lifetime, RequestedTransport, XorPeerAddress,
};
use turn_types::message::{ALLOCATE, CHANNEL_BIND, CREATE_PERMISSION, REFRESH};

use super::*;
use crate::auth::credentials;
use crate::framing::channel_data;
use crate::test_messages::*;

const SECRET: &[u8] = b"engine-test-secret";
const RELAY_PORT: u16 = 50_000;

fn adv() -> SocketAddr {
    "203.0.113.7:3478".parse().unwrap()
}
fn local() -> SocketAddr {
    "10.0.0.7:3478".parse().unwrap()
}
fn udp_client(port: u16) -> FiveTuple {
    FiveTuple {
        transport: Transport::Udp,
        client: SocketAddr::new("198.51.100.1".parse().unwrap(), port),
        listener: "10.0.0.7:3478".parse().unwrap(),
    }
}
fn tcp_client(port: u16) -> FiveTuple {
    FiveTuple {
        transport: Transport::Tcp,
        ..udp_client(port)
    }
}

fn config() -> EngineConfig {
    EngineConfig {
        realm: REALM.into(),
        secret: SECRET.to_vec(),
        relay_ip: "203.0.113.7".parse().unwrap(),
        peers: vec![(adv(), local())],
        max_allocations: 10,
        max_allocations_per_ip: 4,
        max_connections: 2,
        max_connections_per_ip: 2,
        auth_timeout: Duration::from_secs(5),
    }
}

struct Bench {
    e: Engine,
    t0: Instant,
    wall: SystemTime,
}

impl Bench {
    fn new() -> Self {
        let t0 = Instant::now();
        let wall = SystemTime::now();
        Self {
            e: Engine::new(config(), t0, wall, [3; 32]),
            t0,
            wall,
        }
    }

    fn at(&self, secs: u64) -> Instant {
        self.t0 + Duration::from_secs(secs)
    }

    fn outputs(&mut self) -> Vec<Output> {
        std::iter::from_fn(|| self.e.poll_output()).collect()
    }

    /// The one reply to `tuple` among the outputs.
    fn reply(&mut self) -> Vec<u8> {
        let mut replies: Vec<Vec<u8>> = self
            .outputs()
            .into_iter()
            .filter_map(|o| match o {
                Output::ToClient { data, .. } => Some(data),
                _ => None,
            })
            .collect();
        assert_eq!(replies.len(), 1, "expected one reply");
        replies.remove(0)
    }

    /// Nonces last 600 s: a new one for requests later than that.
    fn renew(&self, creds: &mut Creds, tuple: FiveTuple, secs: u64) {
        creds.nonce = self.e.nonces.issue(tuple.client.ip(), secs);
    }

    fn creds(&self, ttl: u64) -> (String, String) {
        credentials(SECRET, "peer-1", Duration::from_secs(ttl), self.wall)
    }

    /// A challenge, then an authenticated Allocate; the relay socket opens on RELAY_PORT.
    fn allocate(&mut self, tuple: FiveTuple, now: Instant) -> (Creds, RelayId) {
        self.e
            .handle_client(tuple, &request(ALLOCATE, None, udp_transport), now);
        let nonce = error_of(&self.reply()).1.expect("a nonce");
        let (user, pass) = self.creds(3600);
        let creds = Creds { user, pass, nonce };
        self.e
            .handle_client(tuple, &request(ALLOCATE, Some(&creds), udp_transport), now);
        let relay = match self.outputs().as_slice() {
            [Output::OpenRelay { relay }] => *relay,
            other => panic!("expected OpenRelay, got {other:?}"),
        };
        self.e.relay_opened(relay, Some(RELAY_PORT), now);
        let reply = self.reply();
        let msg = Message::from_bytes(&reply).unwrap();
        assert_eq!(msg.class(), MessageClass::Success);
        (creds, relay)
    }

    fn permit(&mut self, tuple: FiveTuple, creds: &Creds, peer: SocketAddr, now: Instant) -> u16 {
        let req = request(CREATE_PERMISSION, Some(creds), |w, tx| {
            w.add_attribute(&XorPeerAddress::new(peer, tx)).unwrap()
        });
        self.e.handle_client(tuple, &req, now);
        code_of(&self.reply())
    }

    fn bind(&mut self, tuple: FiveTuple, creds: &Creds, number: u16, now: Instant) -> u16 {
        let req = request(CHANNEL_BIND, Some(creds), |w, tx| {
            w.add_attribute(&ChannelNumber::new(number)).unwrap();
            w.add_attribute(&XorPeerAddress::new(adv(), tx)).unwrap()
        });
        self.e.handle_client(tuple, &req, now);
        code_of(&self.reply())
    }
}

#[test]
fn an_old_nonce_gets_438_with_a_fresh_one() {
    let mut b = Bench::new();
    let tuple = udp_client(1000);
    let (creds, _) = b.allocate(tuple, b.at(0));
    let req = request(REFRESH, Some(&creds), |w, _| {
        w.add_attribute(&Lifetime::new(3600)).unwrap()
    });
    b.e.handle_client(tuple, &req, b.at(0));
    assert_eq!(code_of(&b.reply()), 0);
    assert_eq!(b.permit(tuple, &creds, adv(), b.at(599)), 0);
    let req = request(CREATE_PERMISSION, Some(&creds), |w, tx| {
        w.add_attribute(&XorPeerAddress::new(adv(), tx)).unwrap()
    });
    b.e.handle_client(tuple, &req, b.at(601));
    let (code, nonce) = error_of(&b.reply());
    assert_eq!(code, 438);
    let nonce = nonce.unwrap();
    assert_ne!(nonce, creds.nonce);
    let fresh = Creds { nonce, ..creds };
    assert_eq!(b.permit(tuple, &fresh, adv(), b.at(601)), 0);
    assert_eq!(b.e.stats().refused_auth, 1);
}

#[test]
fn a_username_that_expires_mid_allocation_cannot_refresh() {
    let mut b = Bench::new();
    let tuple = udp_client(1000);
    let (mut creds, _) = b.allocate(tuple, b.at(0));
    let (user, pass) = b.creds(100);
    creds.user = user;
    creds.pass = pass;
    // Another username than the allocation's: 441.
    let req = request(REFRESH, Some(&creds), |_, _| {});
    b.e.handle_client(tuple, &req, b.at(10));
    assert_eq!(code_of(&b.reply()), 441);
    // The allocation's own username, once expired: 401.
    let mut b = Bench::new();
    let (user, pass) = b.creds(100);
    b.e.handle_client(tuple, &request(ALLOCATE, None, udp_transport), b.at(0));
    let nonce = error_of(&b.reply()).1.unwrap();
    let creds = Creds { user, pass, nonce };
    b.e.handle_client(
        tuple,
        &request(ALLOCATE, Some(&creds), udp_transport),
        b.at(0),
    );
    let Some(Output::OpenRelay { relay }) = b.e.poll_output() else {
        panic!("no relay");
    };
    b.e.relay_opened(relay, Some(RELAY_PORT), b.at(0));
    assert_eq!(code_of(&b.reply()), 0);
    b.e.handle_client(tuple, &request(REFRESH, Some(&creds), |_, _| {}), b.at(99));
    assert_eq!(code_of(&b.reply()), 0);
    let nonce = b.e.nonces.issue(tuple.client.ip(), 102);
    let creds = Creds { nonce, ..creds };
    b.e.handle_client(tuple, &request(REFRESH, Some(&creds), |_, _| {}), b.at(102));
    assert_eq!(code_of(&b.reply()), 401);
}

#[test]
fn allocations_expire_and_refresh_extends_them() {
    let mut b = Bench::new();
    let a = udp_client(1000);
    let c = udp_client(1001);
    let (mut creds_a, relay_a) = b.allocate(a, b.at(0));
    let (creds_c, _) = b.allocate(c, b.at(0));
    let req = request(REFRESH, Some(&creds_c), |w, _| {
        w.add_attribute(&Lifetime::new(1200)).unwrap()
    });
    b.e.handle_client(c, &req, b.at(300));
    let reply = b.reply();
    let msg = Message::from_bytes(&reply).unwrap();
    assert_eq!(msg.attribute::<Lifetime>().unwrap().seconds(), 1200);
    b.e.handle_timeout(b.at(599));
    assert!(b.outputs().is_empty());
    assert_eq!(b.e.stats().allocations, 2);
    // Relaying stops at expiry, even before the sweep removes the allocation.
    assert_eq!(b.permit(a, &creds_a, adv(), b.at(500)), 0);
    b.e.handle_client(a, &send_indication(adv(), b"x"), b.at(599));
    assert_eq!(b.outputs().len(), 1);
    b.e.handle_client(a, &send_indication(adv(), b"x"), b.at(600));
    assert!(b.outputs().is_empty());
    b.e.handle_timeout(b.at(601));
    assert_eq!(b.outputs(), vec![Output::CloseRelay { relay: relay_a }]);
    assert_eq!(b.e.stats().allocations, 1);
    // The expired allocation's requests get 437; the refreshed one lives on.
    b.renew(&mut creds_a, a, 601);
    b.e.handle_client(a, &request(REFRESH, Some(&creds_a), |_, _| {}), b.at(601));
    assert_eq!(code_of(&b.reply()), 437);
    b.e.handle_timeout(b.at(1499));
    assert_eq!(b.e.stats().allocations, 1);
    b.e.handle_timeout(b.at(1501));
    assert_eq!(b.e.stats().allocations, 0);
    assert_eq!(b.e.poll_timeout(), None);
}

#[test]
fn lifetimes_are_clamped() {
    assert_eq!(lifetime_for(None), DEFAULT_LIFETIME);
    assert_eq!(lifetime_for(Some(1)), DEFAULT_LIFETIME);
    assert_eq!(lifetime_for(Some(900)), Duration::from_secs(900));
    assert_eq!(lifetime_for(Some(u32::MAX)), MAX_LIFETIME);
}

#[test]
fn permissions_and_channels_expire() {
    let mut b = Bench::new();
    let tuple = udp_client(1000);
    let (mut creds, relay) = b.allocate(tuple, b.at(0));
    let req = request(REFRESH, Some(&creds), |w, _| {
        w.add_attribute(&Lifetime::new(3600)).unwrap()
    });
    b.e.handle_client(tuple, &req, b.at(0));
    assert_eq!(code_of(&b.reply()), 0);
    // No permission yet: the media server's datagram is dropped.
    b.e.handle_peer(relay, local(), b"early", b.at(1));
    assert!(b.outputs().is_empty());
    assert_eq!(b.permit(tuple, &creds, adv(), b.at(1)), 0);
    b.e.handle_peer(relay, local(), b"hello", b.at(300));
    let data = b.reply();
    let msg = Message::from_bytes(&data).unwrap();
    assert_eq!(msg.get_type().method(), DATA);
    assert_eq!(
        msg.attribute::<XorPeerAddress>()
            .unwrap()
            .addr(msg.transaction_id()),
        adv()
    );
    b.e.handle_peer(relay, local(), b"late", b.at(301));
    assert!(b.outputs().is_empty());
    b.e.handle_client(tuple, &send_indication(adv(), b"late"), b.at(301));
    assert!(b.outputs().is_empty());

    // A channel, bound at 400 (with its permission), kept permitted at 900 but expiring at 1000.
    assert_eq!(b.bind(tuple, &creds, 0x4001, b.at(400)), 0);
    b.e.handle_peer(relay, local(), b"ch", b.at(401));
    assert_eq!(b.reply(), channel_data(0x4001, b"ch", false).unwrap());
    let cd = channel_data(0x4001, b"up", false).unwrap();
    b.e.handle_client(tuple, &cd, b.at(401));
    assert_eq!(
        b.outputs(),
        vec![Output::ToPeer {
            relay,
            to: local(),
            data: b"up".to_vec()
        }]
    );
    b.renew(&mut creds, tuple, 900);
    assert_eq!(b.permit(tuple, &creds, adv(), b.at(900)), 0);
    b.e.handle_client(tuple, &cd, b.at(1001));
    assert!(b.outputs().is_empty());
    b.e.handle_peer(relay, local(), b"back to indications", b.at(1001));
    let msg_bytes = b.reply();
    assert_eq!(
        Message::from_bytes(&msg_bytes).unwrap().get_type().method(),
        DATA
    );
    // During the cooldown the number stays reserved for that peer.
    b.e.handle_timeout(b.at(1001));
    assert_eq!(b.e.allocations[&tuple].channels.len(), 1);
    b.e.handle_timeout(b.at(1301));
    assert_eq!(b.e.allocations[&tuple].channels.len(), 0);
}

#[test]
fn channel_numbers_and_peers_bind_one_to_one() {
    let mut b = Bench::new();
    let tuple = udp_client(1000);
    let (creds, _) = b.allocate(tuple, b.at(0));
    assert_eq!(b.bind(tuple, &creds, 0x3FFF, b.at(0)), 400);
    assert_eq!(b.bind(tuple, &creds, 0x5000, b.at(0)), 400);
    assert_eq!(b.bind(tuple, &creds, 0x4000, b.at(0)), 0);
    assert_eq!(b.bind(tuple, &creds, 0x4000, b.at(1)), 0, "a refresh");
    assert_eq!(
        b.bind(tuple, &creds, 0x4002, b.at(1)),
        400,
        "peer already bound"
    );
}

#[test]
fn streams_without_an_allocation_are_closed_and_bounded() {
    let mut b = Bench::new();
    let idle = tcp_client(1);
    let busy = tcp_client(2);
    assert!(b.e.stream_opened(idle, b.at(0)));
    assert!(b.e.stream_opened(busy, b.at(0)));
    assert!(
        !b.e.stream_opened(tcp_client(3), b.at(0)),
        "max_connections is 2"
    );
    assert_eq!(b.e.stats().refused_quota, 1);
    let (_, relay) = b.allocate(busy, b.at(1));
    b.e.handle_timeout(b.at(4));
    assert!(b.outputs().is_empty());
    b.e.handle_timeout(b.at(5));
    assert_eq!(b.outputs(), vec![Output::CloseStream { tuple: idle }]);
    assert_eq!(b.e.stats().connections, 1);
    // Closing the connection frees its allocation.
    b.e.stream_closed(busy);
    assert_eq!(b.outputs(), vec![Output::CloseRelay { relay }]);
    assert_eq!(
        b.e.stats(),
        Stats {
            refused_quota: 1,
            ..Stats::default()
        }
    );
}

#[test]
fn one_address_holds_only_its_share_of_connections_an_ipv6_host_by_its_64() {
    let cfg = EngineConfig {
        max_connections: 10,
        max_connections_per_ip: 2,
        ..config()
    };
    let mut e = Engine::new(cfg, Instant::now(), SystemTime::now(), [3; 32]);
    let now = Instant::now();
    let from = |ip: &str, port| FiveTuple {
        client: SocketAddr::new(ip.parse().unwrap(), port),
        ..tcp_client(port)
    };
    assert!(e.stream_opened(from("198.51.100.1", 1), now));
    assert!(e.stream_opened(from("198.51.100.1", 2), now));
    assert!(!e.stream_opened(from("198.51.100.1", 3), now));
    assert!(e.stream_opened(from("198.51.100.2", 1), now));
    assert!(e.stream_opened(from("2001:db8::1", 1), now));
    assert!(e.stream_opened(from("2001:db8::2", 2), now));
    assert!(
        !e.stream_opened(from("2001:db8::ffff", 3), now),
        "the same /64"
    );
    assert!(
        e.stream_opened(from("2001:db8:0:1::1", 1), now),
        "another /64"
    );
    assert_eq!(e.stats().refused_quota, 2);
    // A closed connection frees its place.
    e.stream_closed(from("198.51.100.1", 1));
    assert!(e.stream_opened(from("198.51.100.1", 3), now));
}

#[test]
fn channel_data_to_stream_clients_is_padded() {
    let mut b = Bench::new();
    let tuple = tcp_client(1);
    assert!(b.e.stream_opened(tuple, b.at(0)));
    let (creds, relay) = b.allocate(tuple, b.at(0));
    assert_eq!(b.bind(tuple, &creds, 0x4000, b.at(0)), 0);
    b.e.handle_peer(relay, local(), b"abcde", b.at(0));
    let frame = b.reply();
    assert_eq!(frame.len(), 12);
    assert_eq!(frame, channel_data(0x4000, b"abcde", true).unwrap());
    // Refresh 0 answers, then frees the relay and closes the connection.
    b.e.handle_client(
        tuple,
        &request(REFRESH, Some(&creds), |w, _| {
            w.add_attribute(&Lifetime::new(0)).unwrap()
        }),
        b.at(1),
    );
    let out = b.outputs();
    assert!(matches!(out[0], Output::ToClient { .. }));
    assert_eq!(
        out[1..],
        [Output::CloseRelay { relay }, Output::CloseStream { tuple }]
    );
}

#[test]
fn allocate_errors() {
    let mut b = Bench::new();
    let tuple = udp_client(1000);
    let (creds, _) = b.allocate(tuple, b.at(0));
    // A second Allocate on the same 5-tuple.
    b.e.handle_client(
        tuple,
        &request(ALLOCATE, Some(&creds), udp_transport),
        b.at(1),
    );
    assert_eq!(code_of(&b.reply()), 437);
    let other = udp_client(1001);
    for (attrs, code) in [
        (
            Box::new(|w: &mut MessageWriteVec, _| {
                w.add_attribute(&RequestedTransport::new(RequestedTransport::TCP))
                    .unwrap()
            }) as Box<dyn FnOnce(&mut MessageWriteVec, TransactionId)>,
            442,
        ),
        (Box::new(|_: &mut MessageWriteVec, _| {}), 400),
        (
            Box::new(|w: &mut MessageWriteVec, tx| {
                udp_transport(w, tx);
                w.add_attribute(&EvenPort::new(true)).unwrap()
            }),
            420,
        ),
    ] {
        b.e.handle_client(other, &request(ALLOCATE, Some(&creds), attrs), b.at(1));
        assert_eq!(code_of(&b.reply()), code);
    }
    // Requests needing an allocation, without one.
    b.e.handle_client(other, &request(REFRESH, Some(&creds), |_, _| {}), b.at(1));
    assert_eq!(code_of(&b.reply()), 437);
    assert_eq!(b.permit(other, &creds, adv(), b.at(1)), 437);
    // A relay socket that cannot be opened.
    b.e.handle_client(
        other,
        &request(ALLOCATE, Some(&creds), udp_transport),
        b.at(1),
    );
    let Some(Output::OpenRelay { relay }) = b.e.poll_output() else {
        panic!("no relay");
    };
    b.e.relay_opened(relay, None, b.at(1));
    let out = b.outputs();
    assert_eq!(out[0], Output::CloseRelay { relay });
    let Output::ToClient { data, .. } = &out[1] else {
        panic!("no reply");
    };
    assert_eq!(code_of(data), 508);
    assert_eq!(b.e.stats().allocations, 1);
}

#[test]
fn foreign_and_unmapped_peers_are_refused() {
    let mut b = Bench::new();
    let tuple = udp_client(1000);
    let (creds, relay) = b.allocate(tuple, b.at(0));
    assert_eq!(b.permit(tuple, &creds, adv(), b.at(0)), 0);
    // The local address is not a peer clients may name; the advertised one's port matters.
    assert_eq!(b.permit(tuple, &creds, local(), b.at(0)), 403);
    let other_port = SocketAddr::new(adv().ip(), 3479);
    assert_eq!(b.permit(tuple, &creds, other_port, b.at(0)), 403);
    assert_eq!(
        b.permit(
            tuple,
            &creds,
            "[2001:db8::1]:3478".parse().unwrap(),
            b.at(0)
        ),
        443
    );
    b.e.handle_client(tuple, &send_indication(other_port, b"x"), b.at(0));
    b.e.handle_client(tuple, &send_indication(local(), b"x"), b.at(0));
    // Datagrams from anywhere but our media socket's local address.
    b.e.handle_peer(relay, adv(), b"x", b.at(0));
    b.e.handle_peer(relay, "10.0.0.7:3479".parse().unwrap(), b"x", b.at(0));
    assert!(b.outputs().is_empty());
    assert_eq!(b.e.stats().refused_peer, 7);
    b.e.handle_client(tuple, &send_indication(adv(), b"ok"), b.at(0));
    assert_eq!(
        b.outputs(),
        vec![Output::ToPeer {
            relay,
            to: local(),
            data: b"ok".to_vec()
        }]
    );
}

#[test]
fn binding_requests_are_answered_without_credentials() {
    let mut b = Bench::new();
    let tuple = udp_client(1000);
    b.e.handle_client(tuple, &request(BINDING, None, |_, _| {}), b.at(0));
    let reply = b.reply();
    let msg = Message::from_bytes(&reply).unwrap();
    assert_eq!(msg.class(), MessageClass::Success);
    assert_eq!(
        msg.attribute::<XorMappedAddress>()
            .unwrap()
            .addr(msg.transaction_id()),
        tuple.client
    );
    assert_eq!(b.e.stats().allocations, 0);
}

/// Random bytes, and random mutations of valid (even authenticated) messages, never panic
/// and never disturb the allocation that is there.
#[test]
fn hostile_bytes_never_panic() {
    let mut b = Bench::new();
    let tuple = udp_client(1000);
    let (creds, relay) = b.allocate(tuple, b.at(0));
    assert_eq!(b.bind(tuple, &creds, 0x4000, b.at(0)), 0);
    let seeds: Vec<Vec<u8>> = vec![
        request(ALLOCATE, Some(&creds), udp_transport),
        request(REFRESH, Some(&creds), |w, _| {
            w.add_attribute(&Lifetime::new(0)).unwrap()
        }),
        request(CHANNEL_BIND, Some(&creds), |w, tx| {
            w.add_attribute(&ChannelNumber::new(0x4001)).unwrap();
            w.add_attribute(&XorPeerAddress::new(adv(), tx)).unwrap()
        }),
        request(CREATE_PERMISSION, Some(&creds), |w, tx| {
            w.add_attribute(&XorPeerAddress::new(adv(), tx)).unwrap()
        }),
        send_indication(adv(), b"payload"),
        channel_data(0x4000, b"payload", false).unwrap(),
    ];
    let mut rng = StdRng::seed_from_u64(0x7e57);
    let attacker = udp_client(2000);
    for i in 0..20_000u32 {
        let mut data = if i % 5 == 0 {
            let len = rng.random_range(0..64);
            (0..len).map(|_| rng.random()).collect()
        } else {
            seeds[rng.random_range(0..seeds.len())].clone()
        };
        for _ in 0..rng.random_range(1..4) {
            if data.is_empty() {
                break;
            }
            match rng.random_range(0..3) {
                // Every mutation changes the bytes, so no valid request survives one.
                0 => {
                    let at = rng.random_range(0..data.len());
                    data[at] = data[at].wrapping_add(rng.random_range(1..=255));
                }
                1 => data.truncate(rng.random_range(0..data.len())),
                _ => {
                    let at = rng.random_range(0..data.len());
                    data[at] ^= 1 << rng.random_range(0..8);
                }
            }
        }
        let target = if i % 2 == 0 { attacker } else { tuple };
        b.e.handle_client(target, &data, b.at(1));
        b.e.handle_peer(relay, local(), &data, b.at(1));
        b.e.handle_peer(RelayId(999), local(), &data, b.at(1));
        while b.e.poll_output().is_some() {}
    }
    // The allocation is intact: still relaying over its channel.
    assert_eq!(b.e.stats().allocations, 1);
    b.e.handle_client(
        tuple,
        &channel_data(0x4000, b"still", false).unwrap(),
        b.at(2),
    );
    assert_eq!(
        b.outputs(),
        vec![Output::ToPeer {
            relay,
            to: local(),
            data: b"still".to_vec()
        }]
    );
}

mod renewal;
