//! Relaying end to end: permissions, Send and Data indications, channels, over UDP, TCP
//! and TLS.

mod common;

use std::net::{SocketAddr, UdpSocket};

use common::*;

#[test]
fn permissions_only_for_our_media_address() {
    let s = setup(|_| {});
    let mut c = s.udp_client();
    let (creds, _) = c.allocate();
    let media_port = s.advertised.port();
    let elsewhere = SocketAddr::new(ip("127.0.0.2"), media_port);
    let other_port = SocketAddr::new(s.advertised.ip(), media_port.wrapping_add(1));
    let local = s.media.local_addr().unwrap();
    assert_eq!(c.create_permission(&creds, elsewhere), 403);
    assert_eq!(c.create_permission(&creds, other_port), 403);
    assert_eq!(
        c.create_permission(&creds, local),
        403,
        "only advertised addresses"
    );
    assert_eq!(c.channel_bind(&creds, 0x4000, elsewhere), 403);
    assert_eq!(c.channel_bind(&creds, 0x4000, other_port), 403);
    assert_eq!(s.turn.stats().refused_peer, 5);
    assert_eq!(c.create_permission(&creds, s.advertised), 0);
    assert_eq!(c.channel_bind(&creds, 0x4000, s.advertised), 0);
}

#[test]
fn relays_through_send_and_data_indications() {
    let s = setup(|_| {});
    let mut c = s.udp_client();
    let (creds, relay) = c.allocate();
    assert_eq!(c.create_permission(&creds, s.advertised), 0);

    c.send_indication(s.advertised, b"to the media server");
    let (payload, from) = s.media_recv().unwrap();
    assert_eq!(payload, b"to the media server");
    assert_eq!(from, bound(relay), "sent from the relay socket");

    s.media.send_to(b"to the browser", from).unwrap();
    let (peer, payload) = c.data_indication();
    assert_eq!(peer, s.advertised, "reported as the advertised address");
    assert_eq!(payload, b"to the browser");

    // A Send indication to anything else goes nowhere, not even to a live socket.
    let bystander = UdpSocket::bind("127.0.0.1:0").unwrap();
    c.send_indication(bystander.local_addr().unwrap(), b"escape");
    bystander.set_read_timeout(Some(QUIET)).unwrap();
    assert!(bystander.recv_from(&mut [0; 64]).is_err());

    // A foreign sender's datagram to the relay socket is not delivered.
    bystander.send_to(b"intruder", from).unwrap();
    assert!(c.silent());
    s.media.send_to(b"again", from).unwrap();
    assert_eq!(c.data_indication().1, b"again");
    assert_eq!(s.turn.stats().refused_peer, 2);
}

#[test]
fn relays_through_channels() {
    let s = setup(|_| {});
    let mut c = s.udp_client();
    let (creds, relay) = c.allocate();
    assert_eq!(c.channel_bind(&creds, 0x4001, s.advertised), 0);
    c.channel_data(0x4001, b"over a channel");
    let (payload, from) = s.media_recv().unwrap();
    assert_eq!(payload, b"over a channel");
    assert_eq!(from, bound(relay));
    s.media.send_to(b"back", from).unwrap();
    assert_eq!(c.channel_message(), (0x4001, b"back".to_vec()));
    // An unbound channel goes nowhere.
    c.channel_data(0x4002, b"unbound");
    s.media.set_read_timeout(Some(QUIET)).unwrap();
    assert!(s.media.recv_from(&mut [0; 64]).is_err());
}

/// Allocation, permission, Send/Data indications and channels over one stream client.
fn main_path(s: &Setup, mut c: Client) {
    let (creds, relay) = c.allocate();
    assert_eq!(s.turn.stats().connections, 1);
    assert_eq!(
        c.create_permission(&creds, SocketAddr::new(ip("127.0.0.2"), 9)),
        403
    );
    assert_eq!(c.create_permission(&creds, s.advertised), 0);
    c.send_indication(s.advertised, b"indication");
    let (payload, from) = s.media_recv().unwrap();
    assert_eq!(
        (payload.as_slice(), from),
        (&b"indication"[..], bound(relay))
    );
    s.media.send_to(b"data", from).unwrap();
    assert_eq!(c.data_indication(), (s.advertised, b"data".to_vec()));

    assert_eq!(c.channel_bind(&creds, 0x4ABC, s.advertised), 0);
    c.channel_data(0x4ABC, b"odd-sized"); // 9 bytes: padded on the stream
    assert_eq!(s.media_recv().unwrap().0, b"odd-sized");
    s.media.send_to(b"reply", from).unwrap();
    assert_eq!(c.channel_message(), (0x4ABC, b"reply".to_vec()));

    // Closing the connection frees its allocation.
    drop(c);
    let stats = s.wait_stats(|st| st.allocations == 0 && st.connections == 0);
    assert_eq!((stats.allocations, stats.connections), (0, 0));
}

#[test]
fn main_path_over_tcp() {
    let s = setup(|_| {});
    main_path(&s, s.tcp_client());
}

#[test]
fn main_path_over_tls() {
    let s = setup(|_| {});
    main_path(&s, s.tls_client());
}
