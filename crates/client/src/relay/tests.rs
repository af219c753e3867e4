//! The relay over real loopback sockets. Rates are checked only as upper bounds on what passed
//! in a time measured around it: a slow machine passes less, never more.

use std::collections::HashSet;
use std::time::Duration;

use super::*;

/// A stand-in for the server's media port: echoes every datagram back to its sender, and says
/// where each came from and how many bytes it has had.
async fn echo() -> (SocketAddr, mpsc::UnboundedReceiver<(SocketAddr, usize)>) {
    let socket = UdpSocket::bind(("127.0.0.1", 0)).await.unwrap();
    let addr = socket.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let _ = socket.send_to(&buf[..n], from).await;
            if tx.send((from, n)).is_err() {
                return;
            }
        }
    });
    (addr, rx)
}

async fn client() -> UdpSocket {
    UdpSocket::bind(("127.0.0.1", 0)).await.unwrap()
}

/// Sends `n` datagrams (`make(i)`) to `to` ten at a time, letting the relay read between:
/// this is about the relay's queue, not the kernel's.
async fn send_paced(c: &UdpSocket, to: SocketAddr, n: usize, make: impl Fn(usize) -> Vec<u8>) {
    for i in 0..n {
        c.send_to(&make(i), to).await.unwrap();
        if i % 10 == 9 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

/// Waits (up to 10 s) until `f` holds of the relay's figures.
async fn wait_for(relay: &Relay, f: impl Fn(&RelayStats) -> bool) -> bool {
    for _ in 0..500 {
        if f(&relay.stats()) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn datagrams_pass_both_ways_and_each_client_has_its_own_address_upstream() {
    let (server, mut seen) = echo().await;
    let relay = Relay::start(server, RelayConfig::default()).await.unwrap();
    let (a, b) = (client().await, client().await);
    let mut buf = [0u8; 64];
    for (c, text) in [(&a, b"from a"), (&b, b"from b")] {
        c.send_to(text, relay.addr()).await.unwrap();
        let (n, from) = tokio::time::timeout(Duration::from_secs(10), c.recv_from(&mut buf))
            .await
            .expect("an answer")
            .unwrap();
        assert_eq!((&buf[..n], from), (&text[..], relay.addr()));
    }
    let sources: HashSet<SocketAddr> = [seen.recv().await, seen.recv().await]
        .into_iter()
        .map(|s| s.unwrap().0)
        .collect();
    assert_eq!(sources.len(), 2, "one address upstream per client");
    assert!(!sources.contains(&a.local_addr().unwrap()));
    let stats = relay.stats();
    assert_eq!(
        (stats.up.datagrams, stats.down.datagrams, stats.clients),
        (2, 2, 2)
    );
}

#[tokio::test]
async fn a_rate_limit_bounds_what_passes_and_a_full_queue_drops() {
    let (server, mut seen) = echo().await;
    let rate = 400_000;
    let config = RelayConfig {
        up_rate: Some(rate),
        queue_bytes: 20_000,
        ..RelayConfig::default()
    };
    let relay = Relay::start(server, config).await.unwrap();
    let c = client().await;
    let started = Instant::now();
    // 200 kB in a few milliseconds: ten times what the queue holds.
    send_paced(&c, relay.addr(), 200, |_| vec![0u8; 1000]).await;
    assert!(wait_for(&relay, |s| s.up.datagrams + s.up.queue_drops == 200).await);
    // Some pass; the rest waits or is dropped.
    let mut passed = 0;
    for _ in 0..500 {
        while let Ok((_, n)) = seen.try_recv() {
            passed += n as u64;
        }
        if passed >= 10_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    while let Ok((_, n)) = seen.try_recv() {
        passed += n as u64;
    }
    // No more than the bucket's first fill and the rate over the time measured.
    let budget = 3000 + (elapsed.as_secs_f64() * rate as f64 / 8.0) as u64;
    assert!(passed >= 10_000, "{passed} bytes passed");
    assert!(passed <= budget, "{passed} bytes passed in {elapsed:?}");
    assert!(relay.stats().up.queue_drops >= 100, "{:?}", relay.stats());

    // Lifted while running: what waits goes at once.
    relay.set_rate(Way::Up, None);
    assert!(wait_for(&relay, |s| s.up.queued_bytes == 0).await);
}

#[tokio::test]
async fn loss_takes_rtp_and_rtcp_only() {
    let (server, _seen) = echo().await;
    let relay = Relay::start(server, RelayConfig::default()).await.unwrap();
    relay.set_loss(Way::Up, 0.5);
    let c = client().await;
    // Let the setting arrive before the datagrams do.
    c.send_to(&[0u8; 20], relay.addr()).await.unwrap();
    assert!(wait_for(&relay, |s| s.up.datagrams == 1).await);
    // RTP (first byte 0x80) and, every tenth, STUN (first byte 0).
    send_paced(&c, relay.addr(), 400, |i| {
        vec![if i % 10 == 0 { 0x00 } else { 0x80 }; 100]
    })
    .await;
    assert!(wait_for(&relay, |s| s.up.datagrams + s.up.loss_drops == 401).await);
    let stats = relay.stats().up;
    assert!(
        (100..=260).contains(&stats.loss_drops),
        "about half of 360 RTP datagrams lost: {stats:?}"
    );
    assert!(
        stats.datagrams >= 41,
        "every STUN datagram passed: {stats:?}"
    );
}
