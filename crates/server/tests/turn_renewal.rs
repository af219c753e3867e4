//! Short-lived TURN credentials: a member in its room gets fresh ones over signalling before
//! its old ones expire, the fresh ones allocate on the integrated TURN server, and the old
//! ones open nothing once expired.

mod common;
#[path = "../../turn/src/test_messages.rs"]
#[allow(dead_code)]
mod test_messages;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use free4chat_signal::IceServer;
use stun_types::message::Message;
use test_messages::{Creds, code_of, error_of, request, udp_transport};
use turn_types::message::ALLOCATE;

/// The integrated TURN server's UDP address, from its URL in `ice_servers`.
fn turn_udp(servers: &[IceServer]) -> SocketAddr {
    let url = servers[0]
        .urls
        .iter()
        .find(|u| u.ends_with("?transport=udp"))
        .expect("a UDP URL");
    let port = url
        .trim_start_matches("turn:127.0.0.1:")
        .trim_end_matches("?transport=udp");
    format!("127.0.0.1:{port}").parse().unwrap()
}

fn expiry(server: &IceServer) -> u64 {
    let user = server.username.as_deref().unwrap();
    user.split(':').next().unwrap().parse().unwrap()
}

/// An Allocate from a fresh socket with these credentials, after its challenge: 0 on
/// success, else the error code.
fn allocate(turn: SocketAddr, server: &IceServer) -> u16 {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    sock.connect(turn).unwrap();
    let mut buf = [0u8; 2048];
    let mut ask = |req: Vec<u8>| {
        let tx = Message::from_bytes(&req).unwrap().transaction_id();
        sock.send(&req).unwrap();
        loop {
            let n = sock.recv(&mut buf).expect("a TURN answer");
            if Message::from_bytes(&buf[..n]).is_ok_and(|m| m.transaction_id() == tx) {
                return buf[..n].to_vec();
            }
        }
    };
    let nonce = error_of(&ask(request(ALLOCATE, None, udp_transport)))
        .1
        .expect("a nonce");
    let creds = Creds {
        user: server.username.clone().unwrap(),
        pass: server.credential.clone().unwrap(),
        nonce,
    };
    code_of(&ask(request(ALLOCATE, Some(&creds), udp_transport)))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn fresh_credentials_arrive_before_the_old_expire_and_allocate_while_the_old_stop() {
    let server = server_with(config_with(|c| {
        c.turn.turn_udp = Some("127.0.0.1:0".parse().unwrap());
        // The shortest lifetime taken, so that the test sees renewals soon.
        c.turn.turn_ttl = Duration::from_secs(10);
    }))
    .await;
    let mut ws = ws(&server).await;
    let ServerMsg::Joined {
        id, ice_servers, ..
    } = ws_join(&mut ws, "relay", "Ann").await
    else {
        unreachable!()
    };
    let old = ice_servers[0].clone();
    let turn = turn_udp(&ice_servers);
    assert_eq!(
        allocate(turn, &old),
        0,
        "the credentials of joined allocate"
    );

    let renewed = next_matching(&mut ws, |m| matches!(m, ServerMsg::IceServers { .. })).await;
    let arrived = unix_now();
    let Some(ServerMsg::IceServers { ice_servers }) = renewed else {
        panic!("no renewal: {renewed:?}")
    };
    let new = ice_servers[0].clone();
    assert!(
        arrived <= expiry(&old),
        "renewed at {arrived}, after {}",
        expiry(&old)
    );
    assert!(expiry(&new) > expiry(&old));
    assert!(
        new.username
            .as_deref()
            .unwrap()
            .ends_with(&format!(":{id}"))
    );
    assert_eq!(new.urls, old.urls);
    assert_eq!(allocate(turn, &new), 0, "the renewed credentials allocate");

    // Once past their expiry (a second more: the TURN server counts whole seconds from its
    // start), the old credentials open nothing new. A bounded wait.
    let mut answer = None;
    for _ in 0..150 {
        if unix_now() > expiry(&old) + 1 {
            answer = Some(allocate(turn, &old));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(answer, Some(401), "old credentials after their expiry");
    // Renewals go on while the member stays.
    let again = next_matching(&mut ws, |m| matches!(m, ServerMsg::IceServers { .. })).await;
    let Some(ServerMsg::IceServers { ice_servers }) = again else {
        panic!("no second renewal: {again:?}")
    };
    assert!(expiry(&ice_servers[0]) > expiry(&new));
    server.shutdown().await;
}
