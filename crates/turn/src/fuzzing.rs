//! Entry points for the fuzz targets (`fuzz/`), behind the `fuzzing` feature: the engine and
//! the stream framing driven by arbitrary bytes, with nothing of the real API made public.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use stun_types::message::Message;
use stun_types::prelude::*;
use turn_types::attribute::{ChannelNumber, Lifetime, XorPeerAddress};
use turn_types::message::{ALLOCATE, CHANNEL_BIND, CREATE_PERMISSION, REFRESH};

use crate::engine::{Engine, EngineConfig, FiveTuple, Output, Transport};
use crate::framing::{StreamDecoder, parse_channel_data};
use crate::test_messages::{Creds, REALM, error_of, request, udp_transport};

const SECRET: &[u8] = b"fuzzing-secret";

fn media() -> (SocketAddr, SocketAddr) {
    (
        SocketAddr::from(([203, 0, 113, 7], 40_000)),
        SocketAddr::from(([10, 0, 0, 7], 40_000)),
    )
}

fn tuple(k: u8) -> FiveTuple {
    let transport = match k % 3 {
        0 => Transport::Udp,
        1 => Transport::Tcp,
        _ => Transport::Tls,
    };
    FiveTuple {
        transport,
        client: SocketAddr::from(([198, 51, 100, 1 + (k >> 4) % 4], 1000 + u16::from(k % 16))),
        listener: SocketAddr::from(([10, 0, 0, 7], 3478)),
    }
}

/// The engine, driven by a script: each step is an opcode byte, a length byte and that many
/// bytes. Client 0 (UDP) holds an allocation with valid credentials from the start, so that
/// what follows reaches the code behind authentication too: requests signed with those
/// credentials carry the fuzzer's peer addresses, channel numbers and lifetimes.
pub fn engine_script(data: &[u8]) {
    let t0 = Instant::now();
    let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let (adv, local) = media();
    let cfg = EngineConfig {
        realm: REALM.into(),
        secret: SECRET.to_vec(),
        relay_ip: adv.ip(),
        peers: vec![(adv, local)],
        max_allocations: 8,
        max_allocations_per_ip: 4,
        max_connections: 4,
        max_connections_per_ip: 2,
        auth_timeout: Duration::from_secs(5),
    };
    let mut e = Engine::new(cfg, t0, wall, [9; 32]);
    let mut now = t0;
    let mut next_port = 50_000u16;
    let owner = tuple(0);
    let (user, pass) = crate::credentials(SECRET, "7", Duration::from_secs(600), wall);
    e.handle_client(owner, &request(ALLOCATE, None, udp_transport), now);
    let nonce = drain(&mut e, &mut next_port, now)
        .and_then(|reply| error_of(&reply).1)
        .unwrap_or_default();
    let creds = Creds { user, pass, nonce };
    e.handle_client(owner, &request(ALLOCATE, Some(&creds), udp_transport), now);
    drain(&mut e, &mut next_port, now);
    let mut decoders: [StreamDecoder; 4] = Default::default();

    let mut rest = data;
    while let [op, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (arg, after) = tail.split_at(n);
        rest = after;
        let k = arg.first().copied().unwrap_or(0);
        match op % 10 {
            // Bytes from a client, as one datagram or message.
            0 => e.handle_client(tuple(k), arg.get(1..).unwrap_or_default(), now),
            // Bytes on a stream, through its decoder, as the shell reads them.
            1 => {
                let t = tuple(k);
                let d = &mut decoders[usize::from(k) % 4];
                d.push(arg.get(1..).unwrap_or_default());
                while let Ok(Some(frame)) = d.next_frame() {
                    e.handle_client(t, &frame, now);
                }
            }
            // A datagram from a peer on a relay socket, from our media or elsewhere.
            2 => {
                let from = if k & 1 == 0 { local } else { adv };
                let relay = crate::engine::RelayId(u64::from(k >> 1) % 4);
                e.handle_peer(relay, from, arg.get(1..).unwrap_or_default(), now);
            }
            // Time passes.
            3 => {
                now += Duration::from_millis(u64::from(k) * 250);
                e.handle_timeout(now);
            }
            4 => {
                e.stream_opened(tuple(k), now);
            }
            5 => e.stream_closed(tuple(k)),
            // Signed requests from the allocation's owner, with the fuzzer's values.
            6 => {
                let peer = peer_from(arg);
                let req = request(CREATE_PERMISSION, Some(&creds), |w, tx| {
                    let _ = w.add_attribute(&XorPeerAddress::new(peer, tx));
                });
                e.handle_client(owner, &req, now);
            }
            7 => {
                let peer = peer_from(arg);
                let number = u16::from_be_bytes([k, arg.get(1).copied().unwrap_or(0)]);
                let req = request(CHANNEL_BIND, Some(&creds), |w, tx| {
                    let _ = w.add_attribute(&ChannelNumber::new(number));
                    let _ = w.add_attribute(&XorPeerAddress::new(peer, tx));
                });
                e.handle_client(owner, &req, now);
            }
            8 => {
                let lifetime = u32::from_be_bytes([k, 0, 0, arg.get(1).copied().unwrap_or(0)]);
                let req = request(REFRESH, Some(&creds), |w, _| {
                    let _ = w.add_attribute(&Lifetime::new(lifetime));
                });
                e.handle_client(owner, &req, now);
            }
            _ => {
                if k & 1 == 0 {
                    e.revoke("7", 1_800_000_600, now);
                } else {
                    e.renew("7", 1_800_001_200, now);
                }
            }
        }
        drain(&mut e, &mut next_port, now);
        let stats = e.stats();
        assert!(
            stats.allocations <= 8 && stats.connections <= 4,
            "{stats:?}"
        );
    }
}

/// Our media's advertised address, or another, as the fuzzer picks.
fn peer_from(arg: &[u8]) -> SocketAddr {
    match arg {
        [_, a, b, c, d, p1, p2, ..] => {
            SocketAddr::from(([*a, *b, *c, *d], u16::from_be_bytes([*p1, *p2])))
        }
        _ => media().0,
    }
}

/// Drains the engine's outputs, opening relay sockets as the shell would (every other one
/// fails); returns the last bytes for a client, and checks that every message the engine
/// writes parses.
fn drain(e: &mut Engine, next_port: &mut u16, now: Instant) -> Option<Vec<u8>> {
    let mut last = None;
    while let Some(out) = e.poll_output() {
        match out {
            Output::ToClient { data, .. } => {
                if data.first().is_some_and(|b| b >> 6 == 0) {
                    assert!(
                        Message::from_bytes(&data).is_ok(),
                        "the engine wrote bad STUN"
                    );
                } else {
                    assert!(
                        parse_channel_data(&data).is_some(),
                        "the engine wrote bad ChannelData"
                    );
                }
                last = Some(data);
            }
            Output::OpenRelay { relay } => {
                *next_port = next_port.wrapping_add(1);
                let port = (relay.0 % 2 == 0).then_some(*next_port);
                e.relay_opened(relay, port, now);
            }
            Output::ToPeer { .. } | Output::CloseRelay { .. } | Output::CloseStream { .. } => {}
        }
    }
    last
}

/// The stream framing alone: arbitrary bytes in arbitrary chunks. Every frame it yields is
/// whole, under its bound, and a STUN message or ChannelData by its first bits.
pub fn stream_frames(data: &[u8]) {
    let mut d = StreamDecoder::default();
    let mut rest = data;
    while let [len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (chunk, after) = tail.split_at(n);
        rest = after;
        d.push(chunk);
        while let Ok(Some(frame)) = d.next_frame() {
            assert!(
                frame.len() <= crate::framing::MAX_STREAM_FRAME + 4,
                "{}",
                frame.len()
            );
            let _ = Message::from_bytes(&frame);
            let _ = parse_channel_data(&frame);
        }
    }
}
