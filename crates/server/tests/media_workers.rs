//! The media workers end to end: state freed when members leave, a room spread over two
//! workers, garbage and failed connections, real-time priority.

mod common;

use std::time::Duration;

use common::*;
use free4chat_signal::{ClientMsg, ServerMsg};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_leave_frees_the_room_and_all_media_state() {
    let server = server().await;
    let mut clients = Vec::new();
    for i in 0..4 {
        clients.push(join(&server, "ephemeral", &format!("m{i}")).await);
    }
    assert!(hears(&clients[0], &clients[3], 10).await);
    let stats = server.media_stats().await;
    assert_eq!((stats.rooms, stats.participants), (1, 4));
    assert!(
        stats.addrs >= 4 && stats.ufrags == 4 && stats.timers == 4,
        "{stats:?}"
    );
    assert_eq!(server.counts().members, 4);

    // Two leave politely, two vanish (connection dropped without a word).
    let mut it = clients.into_iter();
    it.next().unwrap().leave().await;
    it.next().unwrap().leave().await;
    drop(it);
    assert_everything_freed(&server).await;

    // The same room name works again afterwards.
    let a = join(&server, "ephemeral", "again-a").await;
    let b = join(&server, "ephemeral", "again-b").await;
    assert!(hears(&b, &a, 10).await);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_spread_over_two_workers_is_heard_by_all_and_freed_on_both() {
    init_log();
    let config = config_with(|c| {
        c.media.media_workers = 2;
        c.media.room_spread_at = 2;
        // Five talk at once: with four slots, each hears every other.
        c.media.audio_slots = 4;
    });
    let server = free4chat::Server::start(&config).await.unwrap();
    // Two on the room's first worker, publishing before the second worker takes anyone: it
    // must learn of their tracks when its first member of the room arrives.
    let a = join(&server, "big", "a").await;
    let b = join(&server, "big", "b").await;
    assert!(hears(&a, &b, 10).await && hears(&b, &a, 10).await);
    let mut clients = vec![a, b];
    for name in ["c", "d", "e"] {
        clients.push(join(&server, "big", name).await);
    }
    for listener in &clients {
        for speaker in clients.iter().filter(|s| s.id != listener.id) {
            assert!(
                hears(listener, speaker, 25).await,
                "{} hears {}",
                listener.id,
                speaker.id
            );
        }
    }
    let workers = server.media_worker_stats().await;
    let stats = workers.core;
    // Both workers hold part of the room, and packets crossed between them both ways.
    assert_eq!((stats.rooms, stats.participants), (2, 5), "{stats:?}");
    assert!(stats.relayed > 100 && stats.relayed_in > 100, "{stats:?}");
    assert_eq!(workers.relay_dropped, 0);

    // A member of the second worker leaves: the others stop receiving them, and hear on.
    let mut it = clients.into_iter();
    let (a, b, c, d, e) = (
        it.next().unwrap(),
        it.next().unwrap(),
        it.next().unwrap(),
        it.next().unwrap(),
        it.next().unwrap(),
    );
    c.leave().await;
    let before = count(&a, &d);
    assert!(hears(&a, &d, before + 25).await, "a still hears d");
    assert!(hears(&e, &b, count(&e, &b) + 25).await, "e still hears b");

    // Everyone leaves: both workers free everything.
    for m in [a, b, d, e] {
        m.leave().await;
    }
    assert_everything_freed(&server).await;
    server.shutdown().await;
}

/// Waits until no room, member or media state is left, in the registry and every worker.
async fn assert_everything_freed(server: &free4chat::Server) {
    let freed = wait_until(|| async {
        let s = server.media_stats().await;
        let c = server.counts();
        (
            s.rooms,
            s.participants,
            s.addrs,
            s.ufrags,
            s.timers,
            c.rooms,
            c.members,
        ) == (0, 0, 0, 0, 0, 0, 0)
    })
    .await;
    assert!(
        freed,
        "state left: {:?} {:?}",
        server.media_stats().await,
        server.counts()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_datagrams_on_the_media_port_disturb_nobody() {
    let server = server().await;
    let alice = join(&server, "noisy", "Alice").await;
    let bob = join(&server, "noisy", "Bob").await;
    assert!(hears(&bob, &alice, 10).await);
    let media = server.media_addrs()[0];
    let junk = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let before = count(&bob, &alice);
    let shapes: [&[u8]; 6] = [
        b"",
        b"\x00\x01\x00\x00garbage-stun",
        &[0x80; 12],               // an RTP header and nothing else
        &[0x80, 0xc8, 0, 1, 0, 0], // a truncated RTCP sender report
        &[22, 254, 253, 0, 0],     // a truncated DTLS record
        &[0xff; 1500],
    ];
    for i in 0..2000u32 {
        let shape = shapes[(i % 6) as usize];
        let mut d = shape.to_vec();
        d.extend_from_slice(&i.to_be_bytes());
        let _ = junk.send_to(&d, media).await;
    }
    // Datagrams from Bob's own address pretending to be media are refused too: they fail
    // SRTP authentication inside his session.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(hears(&bob, &alice, before + 20).await, "audio still flows");
    assert!(hears(&alice, &bob, count(&alice, &bob) + 20).await);
    let stats = server.media_stats().await;
    assert!(stats.garbage + stats.unknown >= 1900, "{stats:?}");
    assert_eq!(stats.failed, 0);
    assert_eq!(stats.participants, 2);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_vanishes_mid_negotiation_is_cleaned_up() {
    let server = server().await;
    let alice = join(&server, "flaky", "Alice").await;
    // Join and offer by hand, then drop the connection before ICE ever starts.
    let mut w = ws(&server).await;
    ws_join(&mut w, "flaky", "Ghost").await;
    send_text(&mut w, &offer_that_never_connects()).await;
    let answer = next_matching(&mut w, |m| matches!(m, ServerMsg::Answer { .. })).await;
    assert!(answer.is_some(), "the offer was answered");
    drop(w);
    let gone = wait_until(|| async {
        server.media_stats().await.participants == 1 && server.counts().members == 1
    })
    .await;
    assert!(gone, "{:?}", server.media_stats().await);
    assert!(
        alice
            .wait_for(WAIT, |s| s
                .messages
                .iter()
                .any(|m| matches!(m, ServerMsg::MemberLeft { .. })))
            .await
    );
    server.shutdown().await;
}

/// An offer for one audio track, from a peer that will never answer ICE.
fn offer_that_never_connects() -> String {
    let mut rtc = str0m::Rtc::new(std::time::Instant::now());
    let mut api = rtc.sdp_api();
    api.add_media(
        str0m::media::MediaKind::Audio,
        str0m::media::Direction::SendRecv,
        None,
        None,
        None,
    );
    let offer = api.apply().unwrap().0.to_sdp_string();
    serde_json::to_string(&ClientMsg::Offer {
        sdp: offer,
        sources: None,
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_whose_media_never_connects_is_told_and_dropped() {
    let server = server_with(config_with(|c| {
        c.media.media_connect_timeout = Duration::from_millis(500)
    }))
    .await;
    // Nobody else joins: a member whose media does connect would have to within 500 ms too.
    let mut w = ws(&server).await;
    ws_join(&mut w, "mute-ghost", "Ghost").await;
    send_text(&mut w, &offer_that_never_connects()).await;
    let answer = next_matching(&mut w, |m| matches!(m, ServerMsg::Answer { .. })).await;
    assert!(answer.is_some(), "the offer was answered");
    // The signalling stays open; the media never starts.
    let failed = next_matching(&mut w, |m| matches!(m, ServerMsg::Error { .. })).await;
    assert!(
        matches!(
            failed,
            Some(ServerMsg::Error {
                code: ErrorCode::MediaFailed,
                ..
            })
        ),
        "{failed:?}"
    );
    let bye = next_matching(&mut w, |m| matches!(m, ServerMsg::Bye { .. })).await;
    assert_eq!(
        bye,
        Some(ServerMsg::Bye {
            reason: free4chat_signal::ByeReason::MediaFailed
        })
    );
    assert_eq!(next(&mut w).await, None, "closed after bye");
    let gone = wait_until(|| async {
        let s = server.media_stats().await;
        (s.participants, s.failed, server.counts().members) == (0, 1, 0)
    })
    .await;
    assert!(
        gone,
        "{:?} {:?}",
        server.media_stats().await,
        server.counts()
    );
    server.shutdown().await;
}

/// (policy, real-time priority) of this process's threads named `media-…`, from /proc.
fn media_thread_scheduling() -> Vec<(u32, u32)> {
    let mut found = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !comm.starts_with("media-") {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        // Fields 40 (rt_priority) and 41 (policy); `rest` starts at field 3.
        let fields: Vec<&str> = rest.split_whitespace().collect();
        found.push((
            fields[41 - 3].parse().unwrap(),
            fields[40 - 3].parse().unwrap(),
        ));
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_threads_can_run_at_real_time_priority() {
    init_log();
    // Whether this process may use real-time scheduling at all (CI runs as root).
    let allowed = std::thread::spawn(|| free4chat_media::priority::set_realtime(1).is_ok())
        .join()
        .unwrap();
    let config = config_with(|c| {
        c.media.media_realtime_priority = 7;
        c.media.media_realtime_asked = true;
    });
    let server = free4chat::Server::start(&config).await.unwrap();
    const SCHED_RR: u32 = 2;
    if allowed {
        // Other tests' servers run in this process too, at normal priority. A worker sets its
        // priority first thing on its own thread, which may not have run yet.
        let realtime = || async { media_thread_scheduling().contains(&(SCHED_RR, 7)) };
        assert!(
            wait_until(realtime).await,
            "{:?}",
            media_thread_scheduling()
        );
        let stats = server.media_worker_stats().await;
        assert_eq!(
            stats.scheduling.realtime_workers, config.media.media_workers,
            "{stats:?}"
        );
        assert_eq!(stats.scheduling.demotions, 0, "{stats:?}");
    }
    // Refused or not, members hear each other.
    let alice = join(&server, "realtime", "Alice").await;
    let bob = join(&server, "realtime", "Bob").await;
    assert!(hears(&bob, &alice, 25).await, "Bob hears Alice");
    assert!(hears(&alice, &bob, 25).await, "Alice hears Bob");
    server.shutdown().await;
}
