//! Media end to end through the real server, with str0m clients over loopback: forwarding,
//! renegotiation, sources, speaking, figures, RED.

mod common;

use std::time::Duration;

use common::*;
use free4chat_client::{Client, ClientConfig};
use free4chat_signal::{MemberId, ServerMsg, TrackKind, TrackSource};

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
    // Without audio slots, every audio track has an m-line and a stream of its own.
    let server = server_with(config_with(|c| c.media.audio_slots = 0)).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_member_is_offered_its_audio_slots_once_and_hears_on_them() {
    let server = server().await;
    let alice = join(&server, "slots", "Alice").await;
    let bob = join(&server, "slots", "Bob").await;
    let carol = join(&server, "slots", "Carol").await;
    for (l, s) in [(&alice, &bob), (&bob, &carol), (&carol, &alice)] {
        assert!(hears(l, s, 20).await);
    }
    let ServerMsg::Joined { audio_slots, .. } = &alice.joined else {
        panic!("not joined: {:?}", alice.joined);
    };
    assert_eq!(*audio_slots, 3);
    // One server offer each, with the three slots as streams of their own, whoever joined
    // after them.
    for c in [&alice, &bob, &carol] {
        let offers: Vec<String> = c.with_state(|s| {
            s.messages
                .iter()
                .filter_map(|m| match m {
                    ServerMsg::Offer { sdp } => Some(sdp.clone()),
                    _ => None,
                })
                .collect()
        });
        assert_eq!(offers.len(), 1, "{}", offers.join("\n---\n"));
        for k in 0..3 {
            assert!(
                offers[0].contains(&format!("a=msid:slot-{k} slot-{k}")),
                "{}",
                offers[0]
            );
        }
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_numbers_its_packets_on_across_a_change_of_speaker() {
    // One slot: a listener hears one speaker at a time.
    let server = server_with(config_with(|c| c.media.audio_slots = 1)).await;
    let alice = join(&server, "turns", "Alice").await;
    let mut quiet = ClientConfig::new(server.http_addr(), "turns", "Bob");
    quiet.audio_level = -127;
    let bob = Client::join(quiet).await.unwrap();
    let mut receiving = ClientConfig::new(server.http_addr(), "turns", "Carol");
    receiving.publish = false;
    let carol = Client::join(receiving).await.unwrap();
    assert!(hears(&carol, &alice, 20).await, "Carol hears Alice");
    // Alice falls quiet and Bob speaks: Carol's slot goes from Alice to Bob.
    alice.set_level(-127).await;
    bob.set_level(-20).await;
    assert!(hears(&carol, &bob, 20).await, "Carol hears Bob");
    let runs = carol.with_state(|s| {
        let slot = s.streams.values().find(|log| log.slot() == Some(0));
        slot.map(|log| log.runs.clone()).unwrap_or_default()
    });
    let senders: Vec<u64> = runs.iter().map(|r| r.sender).collect();
    assert_eq!(senders, vec![alice.id.0, bob.id.0], "{runs:?}");
    // The slot's RTP numbers go on from Alice's last packet to Bob's first, so what a listener
    // was sent can be read from them: a change of speaker is not a hole. Two are allowed for a
    // socket buffer overflowing on a loaded machine, within each run and between them.
    let (before, after) = (&runs[0], &runs[1]);
    let hole = after.rtp_of(after.first_seq) - before.rtp_of(before.last_seq) - 1;
    assert!(hole <= 2, "{hole} numbers skipped at the change: {runs:?}");
    for r in &runs {
        let missing = u64::from(r.last_seq - r.first_seq) + 1 - r.packets;
        assert!(missing <= 2, "{missing} lost in {r:?}");
    }
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
    // Silence is not speech: on the audio slots, a silent member is not even forwarded.
    assert!(listener.wait_for(WAIT, |s| s.connected).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(listener.received_from(speaker.id), 0, "silence is not sent");
    let sid = speaker.id;
    // Who speaks now, by the room's last `speakers`.
    let speaking = |s: &free4chat_client::ClientState| {
        s.messages.iter().rev().find_map(|m| match m {
            ServerMsg::Speakers { ids } => Some(ids.clone()),
            _ => None,
        })
    };
    assert!(
        listener.with_state(|s| speaking(s).is_none()),
        "silence is not speech"
    );
    speaker.set_level(-20).await;
    assert!(
        listener
            .wait_for(WAIT, |s| speaking(s) == Some(vec![sid]))
            .await,
        "starts speaking"
    );
    assert!(hears(&listener, &speaker, 10).await, "and is heard");
    speaker.set_level(-127).await;
    assert!(
        listener
            .wait_for(WAIT, |s| speaking(s) == Some(vec![]))
            .await,
        "stops speaking"
    );
    // Changes come at most every 200 ms: two here, for a start and a stop.
    let sent = listener.with_state(|s| {
        s.messages
            .iter()
            .filter(|m| matches!(m, ServerMsg::Speakers { .. }))
            .count()
    });
    assert_eq!(sent, 2);
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
