//! Allocations end to end: credentials, quotas, refreshes.

mod common;

use std::net::UdpSocket;
use std::time::{Duration, Instant, SystemTime};

use free4chat_turn::credentials;
use stun_types::attribute::XorMappedAddress;
use stun_types::message::{LongTermKeyCredentials, Message, MessageClass};
use stun_types::prelude::*;
use turn_types::attribute::{Lifetime, XorRelayedAddress};
use turn_types::message::{ALLOCATE, REFRESH};

use common::*;

#[test]
fn allocate_needs_valid_unexpired_credentials() {
    let s = setup(|_| {});
    let mut c = s.udp_client();
    let nonce = challenge(&c.request(request(ALLOCATE, None, udp_transport)));

    let mut wrong = fresh_creds(&nonce);
    wrong.pass = "not-the-password".into();
    challenge(&c.request(request(ALLOCATE, Some(&wrong), udp_transport)));

    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    let (user, pass) = credentials(SECRET, "peer-7", Duration::from_secs(60), hour_ago);
    let expired = Creds {
        user,
        pass,
        nonce: nonce.clone(),
    };
    challenge(&c.request(request(ALLOCATE, Some(&expired), udp_transport)));

    let mut other_secret = fresh_creds(&nonce);
    other_secret.pass = credentials(
        b"other",
        "peer-7",
        Duration::from_secs(600),
        SystemTime::now(),
    )
    .1;
    challenge(&c.request(request(ALLOCATE, Some(&other_secret), udp_transport)));
    assert_eq!(s.turn.stats().allocations, 0);
    assert_eq!(s.turn.stats().refused_auth, 3);

    let good = fresh_creds(&nonce);
    let reply = c.request(request(ALLOCATE, Some(&good), udp_transport));
    let msg = Message::from_bytes(&reply).unwrap();
    assert_eq!(msg.class(), MessageClass::Success);
    let key = LongTermKeyCredentials::new(good.user.clone(), good.pass.clone(), REALM.into());
    msg.validate_integrity(&key.into())
        .expect("a signed response");
    let tx = msg.transaction_id();
    let relay = msg.attribute::<XorRelayedAddress>().unwrap().addr(tx);
    assert_eq!(relay.ip(), ip("127.0.0.4"), "the advertised relay IP");
    assert_ne!(relay.port(), 0);
    assert_eq!(msg.attribute::<Lifetime>().unwrap().seconds(), 600);
    let Link::Udp(sock) = &c.link else {
        unreachable!()
    };
    assert_eq!(
        msg.attribute::<XorMappedAddress>().unwrap().addr(tx),
        sock.local_addr().unwrap()
    );
    assert_eq!(s.turn.stats().allocations, 1);
}

#[test]
fn allocations_per_client_ip_are_bounded() {
    let s = setup(|c| c.max_allocations_per_ip = 2);
    let server = s.turn.local_addrs().udp.unwrap();
    let mut clients: Vec<Client> = (0..3).map(|_| Client::udp("127.0.0.1", server)).collect();
    clients[0].allocate();
    clients[1].allocate();
    let nonce = challenge(&clients[2].request(request(ALLOCATE, None, udp_transport)));
    let reply = clients[2].request(request(ALLOCATE, Some(&fresh_creds(&nonce)), udp_transport));
    assert_eq!(code_of(&reply), 486);
    // Another IP still gets one.
    Client::udp("127.0.0.5", server).allocate();
    assert_eq!(s.turn.stats().allocations, 3);
    assert_eq!(s.turn.stats().refused_quota, 1);
}

#[test]
fn allocations_in_total_are_bounded() {
    let s = setup(|c| c.max_allocations = 2);
    let server = s.turn.local_addrs().udp.unwrap();
    Client::udp("127.0.0.1", server).allocate();
    Client::udp("127.0.0.5", server).allocate();
    let mut third = Client::udp("127.0.0.6", server);
    let nonce = challenge(&third.request(request(ALLOCATE, None, udp_transport)));
    let reply = third.request(request(ALLOCATE, Some(&fresh_creds(&nonce)), udp_transport));
    assert_eq!(code_of(&reply), 508);
    assert_eq!(s.turn.stats().allocations, 2);
}

#[test]
fn refresh_with_lifetime_zero_frees_the_allocation() {
    let s = setup(|_| {});
    let mut c = s.udp_client();
    let (creds, relay) = c.allocate();
    assert_eq!(s.turn.stats().allocations, 1);
    // The relay port is taken while the allocation lives.
    assert!(UdpSocket::bind(bound(relay)).is_err());
    let reply = c.request(request(REFRESH, Some(&creds), |w, _| {
        w.add_attribute(&Lifetime::new(0)).unwrap()
    }));
    assert_eq!(code_of(&reply), 0);
    let msg = Message::from_bytes(&reply).unwrap();
    assert_eq!(msg.attribute::<Lifetime>().unwrap().seconds(), 0);
    assert_eq!(s.wait_stats(|st| st.allocations == 0).allocations, 0);
    // The relay socket is closed: its port can be bound again.
    let deadline = Instant::now() + WAIT;
    while UdpSocket::bind(bound(relay)).is_err() {
        assert!(Instant::now() < deadline, "relay socket still open");
        std::thread::sleep(Duration::from_millis(10));
    }
    // And the allocation is gone for the client too.
    let reply = c.request(request(REFRESH, Some(&creds), |_, _| {}));
    assert_eq!(code_of(&reply), 437);
}

#[test]
fn hosts_that_allocate_in_a_loop_get_only_their_share_and_a_user_still_gets_one() {
    let s = setup(|c| {
        c.max_allocations = 30;
        c.max_allocations_per_ip = 2;
    });
    let server = s.turn.local_addrs().udp.unwrap();
    let mut granted = Vec::new();
    let mut quota = 0;
    for host in 10..20 {
        for _ in 0..5 {
            let mut c = Client::udp(&format!("127.0.0.{host}"), server);
            let nonce = challenge(&c.request(request(ALLOCATE, None, udp_transport)));
            let reply = c.request(request(ALLOCATE, Some(&fresh_creds(&nonce)), udp_transport));
            match code_of(&reply) {
                0 => granted.push(c),
                486 => quota += 1,
                other => panic!("{other}"),
            }
        }
    }
    assert_eq!((granted.len(), quota), (20, 30));
    Client::udp("127.0.0.1", server).allocate();
    assert_eq!(s.turn.stats().allocations, 21);
}

#[test]
fn revoked_credentials_lose_their_allocations_and_are_refused() {
    let s = setup(|_| {});
    let server = s.turn.local_addrs().udp.unwrap();
    let mut c = Client::udp("127.0.0.1", server);
    c.allocate();
    assert_eq!(s.turn.stats().allocations, 1);
    // Another member's credentials are not touched.
    let mut other = Client::udp("127.0.0.5", server);
    let nonce = challenge(&other.request(request(ALLOCATE, None, udp_transport)));
    let (user, pass) = credentials(
        SECRET,
        "peer-8",
        Duration::from_secs(600),
        SystemTime::now(),
    );
    let creds = Creds { user, pass, nonce };
    let reply = other.request(request(ALLOCATE, Some(&creds), udp_transport));
    assert_eq!(code_of(&reply), 0);

    let until = SystemTime::now() + Duration::from_secs(600);
    assert!(s.turn.revoke("peer-7", until));
    assert_eq!(s.wait_stats(|st| st.revoked == 1).allocations, 1);
    let mut again = Client::udp("127.0.0.6", server);
    let nonce = challenge(&again.request(request(ALLOCATE, None, udp_transport)));
    let reply = again.request(request(ALLOCATE, Some(&fresh_creds(&nonce)), udp_transport));
    assert_eq!(code_of(&reply), 401);
}
