//! The server as a whole: its connections' bounds, garbage, starting and stopping.

mod common;

use std::io;
use std::net::{TcpStream, UdpSocket};
use std::time::Duration;

use free4chat_turn::{Turn, TurnConfig};
use stun_types::prelude::*;
use turn_types::attribute::Lifetime;
use turn_types::message::REFRESH;

use common::*;

#[test]
fn idle_and_excess_connections_are_closed() {
    let s = setup(|c| {
        c.max_connections = 1;
        c.auth_timeout = Duration::from_millis(300);
    });
    let mut idle = s.tcp_client();
    assert_eq!(s.wait_stats(|st| st.connections == 1).connections, 1);
    let mut excess = s.tcp_client();
    assert!(excess.closed_within(WAIT), "over max_connections");
    assert!(
        idle.closed_within(WAIT),
        "no allocation within auth_timeout"
    );
    assert_eq!(s.wait_stats(|st| st.connections == 0).connections, 0);
    // A TLS connection that never even starts its handshake is closed too.
    let raw = TcpStream::connect(s.turn.local_addrs().tls.unwrap()).unwrap();
    let mut no_handshake = Client::stream(raw.try_clone().unwrap(), Box::new(raw));
    assert!(no_handshake.closed_within(WAIT));
    assert!(s.turn.stats().refused_quota >= 1);
}

#[test]
fn garbage_does_not_disturb_a_working_allocation() {
    let s = setup(|_| {});
    let mut c = s.udp_client();
    let (creds, relay) = c.allocate();
    assert_eq!(c.channel_bind(&creds, 0x4000, s.advertised), 0);
    let mut tcp_worker = s.tcp_client();
    let (tcp_creds, _) = tcp_worker.allocate();
    assert_eq!(tcp_worker.channel_bind(&tcp_creds, 0x4000, s.advertised), 0);

    let valid = request(REFRESH, Some(&creds), |w, _| {
        w.add_attribute(&Lifetime::new(0)).unwrap()
    });
    let mut junk: Vec<Vec<u8>> = vec![
        vec![],
        vec![0xFF; 100],
        valid[..10].to_vec(),              // truncated header
        valid[..valid.len() - 4].to_vec(), // truncated MESSAGE-INTEGRITY
        [&valid[..2], &[0x03u8, 0xE8][..], &valid[4..20]].concat(), // claims 1000 bytes
        vec![0x40, 0x00, 0x10, 0x00, 1, 2, 3], // ChannelData claiming 4096 bytes
        vec![0x4F, 0xFF, 0x00, 0x01, 9],   // unbound channel
        vec![0; 60_000],
    ];
    let mut flipped = valid.clone();
    let at = flipped.len() - 1;
    flipped[at] ^= 1; // a bad MAC on a Refresh that would delete the allocation
    junk.push(flipped);
    let mut seed = 0x1234_5678u32;
    for _ in 0..50 {
        let len = (seed % 200) as usize;
        let bytes = (0..len)
            .map(|_| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (seed >> 24) as u8
            })
            .collect();
        junk.push(bytes);
    }

    // Over UDP, from the allocation's own 5-tuple and from another.
    let mut stranger = s.udp_client();
    for j in &junk {
        c.send(j);
        stranger.send(j);
    }
    // Over TCP: garbage ends those connections, truncated frames wait forever.
    for j in junk.iter().filter(|j| !j.is_empty()) {
        let mut t = s.tcp_client();
        t.send(j);
    }
    let mut truncated = s.tcp_client();
    truncated.send(&valid[..30]);

    // Both allocations are intact and relay.
    while c.recv_for(QUIET).unwrap().is_some() {} // the answers to the junk
    c.channel_data(0x4000, b"still here");
    let (payload, from) = s.media_recv().unwrap();
    assert_eq!(
        (payload.as_slice(), from),
        (&b"still here"[..], bound(relay))
    );
    s.media.send_to(b"and back", from).unwrap();
    assert_eq!(c.channel_message(), (0x4000, b"and back".to_vec()));
    tcp_worker.channel_data(0x4000, b"tcp too");
    let (payload, tcp_from) = s.media_recv().unwrap();
    assert_eq!(payload, b"tcp too");
    s.media.send_to(b"tcp back", tcp_from).unwrap();
    assert_eq!(tcp_worker.channel_message(), (0x4000, b"tcp back".to_vec()));
    let stats = s.turn.stats();
    assert_eq!(stats.allocations, 2);
    assert!(stats.malformed > 0);
}

#[test]
fn shutdown_frees_everything() {
    let s = setup(|_| {});
    let mut c = s.udp_client();
    let (_, relay) = c.allocate();
    let addrs = s.turn.local_addrs();
    s.turn.shutdown();
    UdpSocket::bind(bound(relay)).expect("relay port free");
    UdpSocket::bind(addrs.udp.unwrap()).expect("UDP listener closed");
    std::net::TcpListener::bind(addrs.tcp.unwrap()).expect("TCP listener closed");
}

#[test]
fn start_refuses_unusable_configs() {
    let base = TurnConfig::new(REALM, SECRET, ip("127.0.0.1"));
    let mut cases = vec![base.clone()]; // no listener
    let mut c = base.clone();
    c.udp = Some("127.0.0.1:0".parse().unwrap());
    let mut empty_secret = c.clone();
    empty_secret.secret.clear();
    let mut empty_realm = c.clone();
    empty_realm.realm.clear();
    let mut unspecified = c.clone();
    unspecified.relay_advertise = ip("0.0.0.0");
    let mut mixed = c.clone();
    mixed.relay_advertise = ip("::1");
    cases.extend([empty_secret, empty_realm, unspecified, mixed]);
    for config in cases {
        let err = Turn::start(config).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
    assert!(!format!("{c:?}").contains(&format!("{:?}", SECRET)));
    assert!(Turn::start(c).is_ok());
}

/// The server crate starts and stops it from async code: neither may block forever or panic.
#[test]
fn starts_and_stops_inside_a_tokio_runtime() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let s = setup(|_| {});
        let mut c = s.udp_client();
        c.allocate();
        s.turn.shutdown();
    });
}

/// A TCP connection to `to` from `from` (a 127.0.0.x address): std cannot bind before it
/// connects, tokio can.
fn tcp_from(from: &str, to: std::net::SocketAddr) -> io::Result<TcpStream> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    let stream = rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(std::net::SocketAddr::new(ip(from), 0))?;
        socket.connect(to).await?.into_std()
    })?;
    stream.set_nonblocking(false)?;
    Ok(stream)
}

#[test]
fn one_address_holding_connections_in_a_loop_gets_only_its_share_and_others_allocate() {
    let s = setup(|c| {
        c.max_connections = 20;
        c.max_connections_per_ip = 4;
    });
    let tcp = s.turn.local_addrs().tcp.unwrap();
    let mut held = Vec::new();
    for _ in 0..200 {
        if let Ok(stream) = tcp_from("127.0.0.2", tcp) {
            held.push(stream);
        }
    }
    let stats = s.wait_stats(|st| st.refused_quota >= 196);
    assert_eq!((stats.connections, stats.refused_quota), (4, 196));
    // Ten users, each from an address of their own, allocate over TCP; and one over TLS.
    let mut users = Vec::new();
    for host in 5..15 {
        let stream = tcp_from(&format!("127.0.0.{host}"), tcp).unwrap();
        let mut user = Client::stream(stream.try_clone().unwrap(), Box::new(stream));
        user.allocate();
        users.push(user);
    }
    let mut over_tls = s.tls_client();
    over_tls.allocate();
    assert_eq!(s.turn.stats().allocations, 11);
    drop(held);
}
