//! Media over TCP (ICE-TCP) end to end: a member over TCP, hostile and silent connections,
//! turning it off.

mod common;

use std::time::Duration;

use common::*;
use free4chat_client::{Client, ClientConfig};
use free4chat_signal::ServerMsg;

/// Waits until the server holds `n` media TCP connections.
async fn tcp_connections_become(server: &free4chat::Server, n: usize) -> bool {
    wait_until(|| async { server.media_worker_stats().await.tcp.connections == n }).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_over_tcp_and_a_member_over_udp_hear_each_other() {
    let server = server().await;
    let alice = join(&server, "firewalled", "Alice").await;
    let mut over_tcp = ClientConfig::new(server.http_addr(), "firewalled", "Bob");
    over_tcp.tcp = true;
    let bob = Client::join(over_tcp).await.unwrap();
    assert!(hears(&bob, &alice, 10).await, "Bob (TCP) hears Alice (UDP)");
    assert!(hears(&alice, &bob, 10).await, "Alice (UDP) hears Bob (TCP)");
    let start = (seq_end(&bob, &alice), seq_end(&alice, &bob));
    assert!(hears(&bob, &alice, 60).await && hears(&alice, &bob, 60).await);

    // Bob's media really came over TCP: he has no UDP candidate at all, opened a connection,
    // and the server holds it, admitted.
    let (connects, frames) = bob.with_state(|s| (s.tcp_connects, s.tcp_frames));
    assert!(
        connects >= 1 && frames >= 50,
        "{connects} connects, {frames} frames"
    );
    // Both directions' copies are timed, those caused by Bob's frames too (counted before the
    // server's figures are read: audio goes on arriving meanwhile).
    let received = count(&bob, &alice) + count(&alice, &bob);
    let stats = server.media_worker_stats().await;
    assert!(
        stats.send_delay.count() >= received,
        "{} sends timed, {received} received",
        stats.send_delay.count()
    );
    assert_eq!(
        (stats.tcp.connections, stats.tcp.admitted),
        (1, 1),
        "{stats:?}"
    );
    assert_eq!(stats.core.tcp_addrs, 1, "{stats:?}");
    assert_eq!(stats.core.failed, 0);

    // Nothing lost on the way (TCP retransmits; loopback UDP loses nothing).
    for (label, to, from, start) in [
        ("Bob from Alice", &bob, &alice, start.0),
        ("Alice from Bob", &alice, &bob, start.1),
    ] {
        let (missing, end) = missing_since(to, from, start);
        assert!(end >= start + 40, "{label}: only {start}..{end}");
        assert_eq!(
            missing, 0,
            "{label}: {missing} of {start}..{end} never arrived"
        );
    }

    // Bob leaves: his connection is closed and the server forgets its address.
    bob.leave().await;
    assert!(
        tcp_connections_become(&server, 0).await,
        "{:?}",
        server.media_worker_stats().await
    );
    let gone = wait_until(|| async {
        let s = server.media_stats().await;
        (s.participants, s.tcp_addrs) == (1, 0)
    })
    .await;
    assert!(gone, "{:?}", server.media_stats().await);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_tcp_connections_disturb_nobody_and_are_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    // Connections that never bring a frame are closed after 2 s rather than 10 s.
    let server = server_with(config_with(|c| {
        c.media.media_tcp_first_frame_timeout = Duration::from_secs(2)
    }))
    .await;
    let alice = join(&server, "besieged", "Alice").await;
    let mut over_tcp = ClientConfig::new(server.http_addr(), "besieged", "Bob");
    over_tcp.tcp = true;
    let bob = Client::join(over_tcp).await.unwrap();
    assert!(hears(&bob, &alice, 10).await && hears(&alice, &bob, 10).await);
    let start = (seq_end(&bob, &alice), seq_end(&alice, &bob));
    // TCP listens on the UDP port's number.
    let media = server.media_addrs()[0];

    /// Whether the server closes `s` within `limit` (reading what it sends, if anything).
    async fn closed_by_server(mut s: impl tokio::io::AsyncRead + Unpin, limit: Duration) -> bool {
        let mut buf = [0u8; 256];
        let read = async {
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        };
        tokio::time::timeout(limit, read).await.is_ok()
    }

    // A connection that never speaks.
    let silent = TcpStream::connect(media).await.unwrap();
    // One that trickles a byte every quarter second and so never completes its 64-byte frame
    // before the first-frame timeout.
    let (trickle, mut trickle_tx) = TcpStream::connect(media).await.unwrap().into_split();
    let trickler = tokio::spawn(async move {
        for b in [0x00, 0x40].into_iter().chain(std::iter::repeat(0x01)) {
            if trickle_tx.write_all(&[b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
    // Garbage, framed: a frame that is not STUN.
    let mut framed = TcpStream::connect(media).await.unwrap();
    framed.write_all(b"\x00\x10not a stun frame").await.unwrap();
    // Garbage, unframed: an HTTP request.
    let mut http = TcpStream::connect(media).await.unwrap();
    http.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // A frame header announcing more than any datagram.
    let mut huge = TcpStream::connect(media).await.unwrap();
    huge.write_all(&[0xff, 0xff, 0, 1, 2, 3]).await.unwrap();
    // Half a frame, then gone.
    let mut half = TcpStream::connect(media).await.unwrap();
    half.write_all(&[0x00, 0x64, 0x00, 0x01]).await.unwrap();
    drop(half);
    // A short burst of connections that close at once.
    for _ in 0..50 {
        drop(TcpStream::connect(media).await.unwrap());
    }

    for (label, s) in [("framed", framed), ("http", http), ("huge", huge)] {
        assert!(closed_by_server(s, WAIT).await, "{label} garbage is closed");
    }
    // Only Bob's connection, the silent one and the trickling one are left.
    assert!(
        tcp_connections_become(&server, 3).await,
        "{:?}",
        server.media_worker_stats().await
    );
    let before = (count(&bob, &alice), count(&alice, &bob));
    // The silent one and the trickling one are closed 2 s after they were opened: well within
    // 8 s, and before the default of 10 s would close them.
    let limit = Duration::from_secs(8);
    let (silent, trickle) = tokio::join!(
        closed_by_server(silent, limit),
        closed_by_server(trickle, limit)
    );
    assert!(silent, "silence is closed");
    assert!(trickle, "a trickle that never makes a frame is closed");
    trickler.abort();
    assert!(tcp_connections_become(&server, 1).await);

    // Meanwhile and afterwards, Alice and Bob hear each other without a gap.
    assert!(hears(&bob, &alice, before.0 + 25).await && hears(&alice, &bob, before.1 + 25).await);
    for (label, to, from, start) in [
        ("Bob from Alice", &bob, &alice, start.0),
        ("Alice from Bob", &alice, &bob, start.1),
    ] {
        let (missing, end) = missing_since(to, from, start);
        assert_eq!(
            missing, 0,
            "{label}: {missing} of {start}..{end} never arrived"
        );
    }
    let stats = server.media_worker_stats().await;
    assert!(stats.tcp.rejected >= 3, "{stats:?}");
    assert!(stats.tcp.idle >= 2, "{stats:?}");
    assert_eq!(
        (
            stats.core.participants,
            stats.core.failed,
            stats.core.tcp_addrs
        ),
        (2, 0, 1),
        "{stats:?}"
    );

    // Bob leaves: no connection is left.
    bob.leave().await;
    assert!(
        tcp_connections_become(&server, 0).await,
        "{:?}",
        server.media_worker_stats().await
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_over_tcp_can_be_turned_off() {
    init_log();
    let config = config_with(|c| c.media.media_tcp = false);
    let server = free4chat::Server::start(&config).await.unwrap();
    let alice = join(&server, "udp-only", "Alice").await;
    let answered = |s: &free4chat_client::ClientState| {
        s.messages
            .iter()
            .any(|m| matches!(m, ServerMsg::Answer { .. }))
    };
    assert!(alice.wait_for(WAIT, answered).await);
    let answer = alice.with_state(|s| {
        s.messages.iter().find_map(|m| match m {
            ServerMsg::Answer { sdp } => Some(sdp.clone()),
            _ => None,
        })
    });
    let answer = answer.unwrap();
    assert!(
        answer.contains(" udp ") || answer.contains(" UDP "),
        "{answer}"
    );
    assert!(!answer.to_ascii_lowercase().contains(" tcp "), "{answer}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_tcp_connections_cannot_keep_a_member_from_connecting_over_tcp() {
    use tokio::net::TcpStream;

    init_log();
    let config = config_with(|c| c.media.media_tcp_max_connections = 4);
    let server = free4chat::Server::start(&config).await.unwrap();
    let media = server.media_addrs()[0];
    // Every slot taken by a connection that never says anything.
    let mut silent = Vec::new();
    for _ in 0..4 {
        silent.push(TcpStream::connect(media).await.unwrap());
    }
    assert!(tcp_connections_become(&server, 4).await);

    let alice = join(&server, "crowded", "Alice").await;
    let mut over_tcp = ClientConfig::new(server.http_addr(), "crowded", "Bob");
    over_tcp.tcp = true;
    let bob = Client::join(over_tcp).await.unwrap();
    assert!(hears(&bob, &alice, 10).await, "Bob (TCP) hears Alice");
    assert!(hears(&alice, &bob, 10).await, "Alice hears Bob (TCP)");
    let stats = server.media_worker_stats().await;
    assert!(stats.tcp.evicted >= 1, "{stats:?}");
    assert_eq!(stats.tcp.admitted, 1, "{stats:?}");
    assert!(stats.tcp.connections <= 4, "{stats:?}");
    drop(silent);
    server.shutdown().await;
}
