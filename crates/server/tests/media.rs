//! Media end to end through the real server, with str0m clients over loopback UDP and TCP.

mod common;

use std::time::Duration;

use common::*;
use free4chat_client::{Client, ClientConfig};
use free4chat_signal::{ClientMsg, MemberId, ServerMsg, TrackKind, TrackSource};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_is_forwarded_both_ways() {
    let server = server().await;
    let alice = join(&server, "practice", "Alice").await;
    let bob = join(&server, "practice", "Bob").await;
    assert!(hears(&bob, &alice, 25).await, "Bob hears Alice");
    assert!(hears(&alice, &bob, 25).await, "Alice hears Bob");
    // Nobody hears themselves, and nothing else arrives.
    assert_eq!(alice.received_from(alice.id), 0);
    assert_eq!(bob.received_from(bob.id), 0);
    assert_eq!(alice.with_state(|s| s.foreign_packets), 0);
    server.shutdown().await;
}

/// Packets `to` has received from `from` so far.
fn count(to: &Client, from: &Client) -> u64 {
    to.received_from(from.id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_and_leaves_renegotiate_without_interrupting_audio() {
    let server = server().await;
    let alice = join(&server, "busy", "Alice").await;
    let bob = join(&server, "busy", "Bob").await;
    assert!(hears(&bob, &alice, 10).await && hears(&alice, &bob, 10).await);

    // Carol joins: Alice and Bob each get a server offer for her track.
    let carol = join(&server, "busy", "Carol").await;
    for (to, from) in [
        (&carol, &alice),
        (&carol, &bob),
        (&alice, &carol),
        (&bob, &carol),
    ] {
        assert!(hears(to, from, 10).await, "{} hears {}", to.id, from.id);
    }
    assert!(alice.with_state(|s| s.renegotiations) >= 1);

    // Carol leaves and Dave joins: two more renegotiations for Alice and Bob.
    carol.leave().await;
    let dave = join(&server, "busy", "Dave").await;
    assert!(hears(&dave, &alice, 10).await);
    assert!(hears(&bob, &alice, count(&bob, &alice) + 25).await);
    assert!(hears(&alice, &bob, count(&alice, &bob) + 25).await);

    // Across all of it, the Alice↔Bob flow has no gap: every sequence number sent, from the
    // first one received to the last, arrived (loopback loses nothing; a pause in forwarding
    // during a renegotiation would show as missing numbers). Alice may start sending before
    // Bob has joined, so what she sent before his first packet does not count. Two are
    // allowed for a socket buffer overflowing on a loaded machine.
    for (label, to, from) in [
        ("Bob from Alice", &bob, &alice),
        ("Alice from Bob", &alice, &bob),
    ] {
        let (missing, end) = missing_since(to, from, first_seq(to, from));
        assert!(end >= 35, "{label}: only {end} packets");
        assert!(missing <= 2, "{label}: {missing} of {end} never arrived");
    }
    // Alice and Bob were told about Carol's track going away.
    assert!(alice.with_state(|s| s.messages.iter().any(
        |m| matches!(m, ServerMsg::TrackRemoved { track } if track.member == carol_id(&s.messages))
    )));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_track_carries_its_declared_source_and_a_stream_of_its_own() {
    let server = server().await;
    // Alice says her audio is a shared screen's sound; Bob says nothing about his.
    let mut screen = ClientConfig::new(server.http_addr(), "sources", "Alice");
    screen.source = Some(TrackSource::Screen);
    let alice = Client::join(screen).await.unwrap();
    let bob = join(&server, "sources", "Bob").await;
    assert!(hears(&bob, &alice, 10).await && hears(&alice, &bob, 10).await);

    let added = |c: &Client, peer: MemberId| {
        c.with_state(|s| {
            s.messages.iter().find_map(|m| match m {
                ServerMsg::TrackAdded { track } if track.member == peer => Some(track.clone()),
                _ => None,
            })
        })
    };
    // Bob may have joined before or after Alice's track was published: it is in his `joined`
    // or in a `track_added`.
    let in_joined = |c: &Client, peer: MemberId| match &c.joined {
        ServerMsg::Joined { tracks, .. } => tracks.iter().find(|t| t.member == peer).cloned(),
        _ => None,
    };
    let alices = added(&bob, alice.id)
        .or_else(|| in_joined(&bob, alice.id))
        .expect("Bob knows Alice's track");
    assert_eq!(alices.source, TrackSource::Screen);
    assert_eq!(alices.kind, TrackKind::Audio);
    assert_eq!(alices.stream, format!("{}-{}", alice.id, alices.id));
    let bobs = added(&alice, bob.id).expect("Alice is told of Bob's track");
    assert_eq!(
        bobs.source,
        TrackSource::Microphone,
        "the default for audio"
    );
    assert_eq!(bobs.stream, format!("{}-{}", bob.id, bobs.id));

    // In the SDP the server sends, each track's msid names that stream, not the member.
    let offered = |c: &Client| {
        c.with_state(|s| {
            s.messages
                .iter()
                .filter_map(|m| match m {
                    ServerMsg::Offer { sdp } => Some(sdp.clone()),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
    };
    let msid = format!("a=msid:{} ", alices.stream);
    assert!(offered(&bob).contains(&msid), "{msid} in {}", offered(&bob));
    let msid = format!("a=msid:{} ", bobs.stream);
    assert!(
        offered(&alice).contains(&msid),
        "{msid} in {}",
        offered(&alice)
    );

    // A latecomer finds both tracks, as published, in `joined`.
    let carol = join(&server, "sources", "Carol").await;
    let ServerMsg::Joined { tracks, .. } = &carol.joined else {
        panic!("not joined: {:?}", carol.joined);
    };
    let mut tracks = tracks.clone();
    tracks.sort_by_key(|t| t.member);
    assert_eq!(tracks, vec![alices, bobs]);
    server.shutdown().await;
}

fn carol_id(messages: &[ServerMsg]) -> MemberId {
    messages
        .iter()
        .find_map(|m| match m {
            ServerMsg::MemberJoined { member } if member.name == "Carol" => Some(member.id),
            _ => None,
        })
        .unwrap_or(MemberId(u64::MAX))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speaking_follows_the_audio_level() {
    let server = server().await;
    let mut quiet = ClientConfig::new(server.http_addr(), "talk", "Quiet");
    quiet.audio_level = -127;
    let listener = Client::join(quiet).await.unwrap();
    let mut loud = ClientConfig::new(server.http_addr(), "talk", "Loud");
    loud.audio_level = -127;
    let speaker = Client::join(loud).await.unwrap();
    assert!(hears(&listener, &speaker, 10).await);
    let sid = speaker.id;
    let spoke = |s: &free4chat_client::ClientState, v: bool| {
        s.messages.iter().any(|m| {
            *m == ServerMsg::Speaking {
                id: sid,
                speaking: v,
            }
        })
    };
    assert!(
        !listener.with_state(|s| spoke(s, true)),
        "silence is not speech"
    );
    speaker.set_level(-20).await;
    assert!(
        listener.wait_for(WAIT, |s| spoke(s, true)).await,
        "starts speaking"
    );
    speaker.set_level(-127).await;
    assert!(
        listener.wait_for(WAIT, |s| spoke(s, false)).await,
        "stops speaking"
    );
    // Nobody else was said to speak.
    assert!(listener.with_state(|s| {
        !s.messages
            .iter()
            .any(|m| matches!(m, ServerMsg::Speaking { id, .. } if *id != sid))
    }));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_count_forwarded_packets_and_their_time_in_the_server() {
    let server = server().await;
    let alice = join(&server, "counted", "Alice").await;
    let bob = join(&server, "counted", "Bob").await;
    assert!(hears(&bob, &alice, 50).await && hears(&alice, &bob, 50).await);
    // Counted before the server's figures are read: audio goes on arriving meanwhile.
    let received = count(&bob, &alice) + count(&alice, &bob);
    let addr = server.http_addr();
    let stats: serde_json::Value = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(
            s,
            "GET /api/stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).unwrap();
        serde_json::from_str(body.split("\r\n\r\n").nth(1).unwrap()).unwrap()
    })
    .await
    .unwrap();
    let forwarded = stats["media"]["forwarded"].as_u64().unwrap();
    // Everything the clients received was forwarded (and counted) by the server.
    assert!(
        forwarded >= received,
        "{forwarded} forwarded, {received} received"
    );
    // What the server's sockets lost, and how its media threads are scheduled, are reported.
    for key in ["receive_dropped", "send_dropped"] {
        assert!(stats["media"]["udp"][key].is_u64(), "{key}: {stats}");
    }
    let scheduling = &stats["media"]["scheduling"];
    assert!(
        scheduling["realtime_workers"].as_u64().unwrap() <= 1,
        "{scheduling}"
    );
    assert_eq!(scheduling["demotions"].as_u64(), Some(0), "{scheduling}");
    let residence = &stats["media"]["residence"];
    assert!(
        residence["datagrams"].as_u64().unwrap() >= received,
        "{residence}"
    );
    let buckets: u64 = residence["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_u64().unwrap())
        .sum();
    assert_eq!(buckets, residence["datagrams"].as_u64().unwrap());
    assert_eq!(
        residence["bucket_below_us"].as_array().map(Vec::len),
        residence["buckets"].as_array().map(Vec::len)
    );
    assert!(residence["p99_us"].as_u64().unwrap() >= residence["p50_us"].as_u64().unwrap());
    // Every copy a client received was sent in answer to a datagram that arrived.
    let send_delay = &stats["media"]["send_delay"];
    assert!(
        send_delay["datagrams"].as_u64().unwrap() >= received,
        "{send_delay}"
    );
    // A copy leaves no later than the last one its packet caused.
    assert!(
        send_delay["p99_us"].as_u64().unwrap() <= residence["max_us"].as_u64().unwrap().max(1) * 2
    );
    server.shutdown().await;
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opus_red_fec_and_dtx_are_negotiated_and_red_recovers_uplink_loss() {
    let server = server().await;
    let listener = join(&server, "lossy", "Listener").await;
    // A listener who negotiates RED gets it passed on, and recovers from it itself.
    let mut red_config = ClientConfig::new(server.http_addr(), "lossy", "RedListener");
    red_config.red = true;
    let red_listener = Client::join(red_config).await.unwrap();
    // Two speakers lose every 10th packet on their way to the server: one sends RED.
    let mut with_red = ClientConfig::new(server.http_addr(), "lossy", "Red");
    with_red.red = true;
    with_red.drop_every_nth_rtp = Some(10);
    let red = Client::join(with_red).await.unwrap();
    let mut without = ClientConfig::new(server.http_addr(), "lossy", "Plain");
    without.drop_every_nth_rtp = Some(10);
    let plain = Client::join(without).await.unwrap();

    // The server's answer to the RED client keeps RED and in-band FEC, and asks for DTX.
    let answered = |s: &free4chat_client::ClientState| {
        s.messages
            .iter()
            .any(|m| matches!(m, ServerMsg::Answer { .. }))
    };
    assert!(red.wait_for(WAIT, answered).await);
    let answer = red.with_state(|s| {
        s.messages.iter().find_map(|m| match m {
            ServerMsg::Answer { sdp } => Some(sdp.clone()),
            _ => None,
        })
    });
    let answer = answer.expect("answer");
    assert!(answer.contains("red/48000/2"), "{answer}");
    assert!(
        answer.contains("useinbandfec=1") && answer.contains("usedtx=1"),
        "{answer}"
    );

    assert!(hears(&listener, &red, 100).await && hears(&listener, &plain, 100).await);
    assert!(hears(&red_listener, &red, 100).await);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let missing_at = |listener: &Client, c: &Client| {
        listener.with_state(|s| {
            let r = &s.received[&c.id.0];
            // Ignore the most recent packets, which may still be in flight, and those sent
            // before the listener's subscription opened.
            let end = r.seq_end.saturating_sub(10);
            let first = r.first().map_or(0, |f| f.min(end));
            (r.missing_between(first, end), end)
        })
    };
    let missing = |c: &Client| missing_at(&listener, c);
    let (red_missing, red_total) = missing(&red);
    let (plain_missing, plain_total) = missing(&plain);
    let red_loss = red_missing as f64 / red_total as f64;
    let plain_loss = plain_missing as f64 / plain_total as f64;
    let (passed_missing, passed_total) = missing_at(&red_listener, &red);
    let passed_loss = passed_missing as f64 / passed_total as f64;
    println!(
        "uplink loss 10%: with RED {red_loss:.3} lost (unwrapped by the server), \
         {passed_loss:.3} (passed on), without {plain_loss:.3} lost"
    );
    assert!(
        plain_loss > 0.05,
        "the loss is real: {plain_missing}/{plain_total}"
    );
    assert!(
        red_loss < plain_loss / 2.0,
        "RED recovers: {red_missing}/{red_total}"
    );
    assert!(
        passed_loss < plain_loss / 2.0,
        "RED passed on recovers: {passed_missing}/{passed_total}"
    );
    server.shutdown().await;
}

/// Waits until the server holds `n` media TCP connections.
async fn tcp_connections_become(server: &free4chat::Server, n: usize) -> bool {
    wait_until(|| async { server.media_worker_stats().await.tcp.connections == n }).await
}

/// The sequence number after the last one `to` has received from `from`.
fn seq_end(to: &Client, from: &Client) -> u32 {
    to.with_state(|s| s.received.get(&from.id.0).map_or(0, |r| r.seq_end))
}

/// The first sequence number `to` received from `from` (0 if none yet).
fn first_seq(to: &Client, from: &Client) -> u32 {
    to.with_state(|s| {
        s.received
            .get(&from.id.0)
            .and_then(|r| r.first())
            .unwrap_or(0)
    })
}

/// Sequence numbers from `from`, from `start` up to the last one `to` received, that never
/// arrived; and that last one, +1. (Before a subscription opens, a sender's first packets go
/// to nobody: counting starts once both hear each other.)
fn missing_since(to: &Client, from: &Client, start: u32) -> (u64, u32) {
    to.with_state(|s| {
        let r = &s.received[&from.id.0];
        (r.missing_between(start, r.seq_end), r.seq_end)
    })
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
