//! The signalling protocol and its refusals, spoken by hand over a real WebSocket.

mod common;

use common::*;
use free4chat_signal::{ByeReason, Member};
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn members_see_each_other_join_rename_mute_and_leave() {
    let server = server().await;
    let mut a = ws(&server).await;
    let ServerMsg::Joined {
        id: a_id, members, ..
    } = ws_join(&mut a, "r1", "Alice").await
    else {
        unreachable!()
    };
    assert!(members.is_empty());
    let mut b = ws(&server).await;
    let ServerMsg::Joined {
        id: b_id, members, ..
    } = ws_join(&mut b, "r1", "Bob").await
    else {
        unreachable!()
    };
    assert_ne!(a_id, b_id);
    assert_eq!(
        members,
        vec![Member {
            id: a_id,
            name: "Alice".into(),
            muted: false,
            speaking: false,
            source: 1,
            tag: None,
            camera: false,
            screen: false,
        }]
    );
    assert_eq!(
        next(&mut a).await,
        Some(ServerMsg::MemberJoined {
            member: Member {
                id: b_id,
                name: "Bob".into(),
                muted: false,
                speaking: false,
                source: 2,
                tag: None,
                camera: false,
                screen: false,
            }
        })
    );

    send_text(&mut b, r#"{"type":"rename","name":"  Bobby "}"#).await;
    let renamed = ServerMsg::MemberRenamed {
        id: b_id,
        name: "Bobby".into(),
    };
    assert_eq!(next(&mut a).await.as_ref(), Some(&renamed));
    assert_eq!(next(&mut b).await.as_ref(), Some(&renamed));

    send_text(&mut b, r#"{"type":"mute","muted":true}"#).await;
    let muted = ServerMsg::Mute {
        id: b_id,
        muted: true,
        forced: false,
    };
    assert_eq!(next(&mut a).await.as_ref(), Some(&muted));
    assert_eq!(next(&mut b).await.as_ref(), Some(&muted));

    // A third member sees the current names and mute state.
    let mut c = ws(&server).await;
    let ServerMsg::Joined { members, .. } = ws_join(&mut c, "r1", "Carol").await else {
        unreachable!()
    };
    assert!(members.contains(&Member {
        id: b_id,
        name: "Bobby".into(),
        muted: true,
        speaking: false,
        source: 2,
        tag: None,
        camera: false,
        screen: false,
    }));

    send_text(&mut b, r#"{"type":"leave"}"#).await;
    let bye = next_matching(&mut b, |m| matches!(m, ServerMsg::Bye { .. })).await;
    assert_eq!(
        bye,
        Some(ServerMsg::Bye {
            reason: ByeReason::Left
        })
    );
    assert_eq!(next(&mut b).await, None, "closed after bye");
    let left = ServerMsg::MemberLeft { id: b_id };
    assert_eq!(
        next_matching(&mut a, |m| matches!(m, ServerMsg::MemberLeft { .. })).await,
        Some(left.clone())
    );
    assert_eq!(
        next_matching(&mut c, |m| matches!(m, ServerMsg::MemberLeft { .. })).await,
        Some(left)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_nickname_someone_in_the_room_holds_gets_a_suffix_on_join_and_on_rename() {
    let server = server().await;
    let mut a = ws(&server).await;
    let ServerMsg::Joined { name, .. } = ws_join(&mut a, "twins", "Alice").await else {
        unreachable!()
    };
    assert_eq!(name, "Alice", "a free name is kept");
    let mut b = ws(&server).await;
    let ServerMsg::Joined { id: b_id, name, .. } = ws_join(&mut b, "twins", "alice").await else {
        unreachable!()
    };
    assert_eq!(name, "alice (2)", "names compare without regard to case");
    let joined = next_matching(&mut a, |m| matches!(m, ServerMsg::MemberJoined { .. })).await;
    assert!(
        matches!(&joined, Some(ServerMsg::MemberJoined { member }) if member.name == "alice (2)"),
        "{joined:?}"
    );
    // Another room is another matter.
    let mut c = ws(&server).await;
    let ServerMsg::Joined { name, .. } = ws_join(&mut c, "elsewhere", "Alice").await else {
        unreachable!()
    };
    assert_eq!(name, "Alice");

    // A rename to a name someone holds gets a suffix too; to one's own name, none.
    send_text(&mut b, r#"{"type":"rename","name":"ALICE"}"#).await;
    let renamed = ServerMsg::MemberRenamed {
        id: b_id,
        name: "ALICE (2)".into(),
    };
    assert_eq!(next(&mut a).await.as_ref(), Some(&renamed));
    assert_eq!(next(&mut b).await.as_ref(), Some(&renamed));
    send_text(&mut b, r#"{"type":"rename","name":"ALICE (2)"}"#).await;
    assert_eq!(next(&mut b).await.as_ref(), Some(&renamed));
    server.shutdown().await;
}

#[tokio::test]
async fn a_client_key_gives_a_tag_that_names_the_member_again_on_a_new_connection() {
    const KEY: &str = "Zm9yIHRlc3Rpbmcgb25seQ";
    let joined_tag = |m: Option<ServerMsg>| match m {
        Some(ServerMsg::MemberJoined { member }) => member.tag,
        other => panic!("expected member_joined, got {other:?}"),
    };
    let server = server().await;
    let mut a = ws(&server).await;
    ws_join(&mut a, "keys", "Alice").await;

    // A key that is not one is refused, and the member is not in the room.
    let mut bad = ws(&server).await;
    let join = r#"{"type":"join","v":1,"room":"keys","name":"Eve","key":"short"}"#;
    send_text(&mut bad, join).await;
    expect_error(&mut bad, ErrorCode::InvalidClientKey).await;

    // Bob with a key: Alice sees his tag, never his key.
    let mut b = ws(&server).await;
    let join = format!(r#"{{"type":"join","v":1,"room":"keys","name":"Bob","key":"{KEY}"}}"#);
    send_text(&mut b, &join).await;
    let own = match next_matching(&mut b, |m| matches!(m, ServerMsg::Joined { .. })).await {
        Some(ServerMsg::Joined { tag, .. }) => tag,
        other => panic!("expected joined, got {other:?}"),
    };
    let frame = next(&mut a).await;
    assert!(!format!("{frame:?}").contains(KEY), "{frame:?}");
    let tag = joined_tag(frame).expect("a tag");
    assert_eq!(tag.len(), 32);
    assert_eq!(
        own.as_deref(),
        Some(tag.as_str()),
        "Bob is told his own tag"
    );

    // Bob again on a new connection: the same tag; a member without a key has none.
    let mut b2 = ws(&server).await;
    send_text(&mut b2, &join).await;
    next_matching(&mut b2, |m| matches!(m, ServerMsg::Joined { .. })).await;
    assert_eq!(joined_tag(next(&mut a).await), Some(tag));
    let mut c = ws(&server).await;
    ws_join(&mut c, "keys", "Carol").await;
    assert_eq!(joined_tag(next(&mut a).await), None);
    server.shutdown().await;
}

#[tokio::test]
async fn chat_is_acknowledged_broadcast_and_kept_for_late_joiners() {
    // Buckets large enough for every message below at once, so nothing waits for a refill.
    let server = server_with(config_with(|c| {
        c.limits.message_burst = 200;
        c.limits.chat_burst = 200;
    }))
    .await;
    let mut a = ws(&server).await;
    ws_join(&mut a, "chatty", "Alice").await;
    let mut b = ws(&server).await;
    ws_join(&mut b, "chatty", "Bob").await;
    next(&mut a).await; // member_joined

    send_text(
        &mut a,
        r#"{"type":"chat","text":"hello <b>you</b> 🙂","client_ref":"m1"}"#,
    )
    .await;
    let Some(ServerMsg::ChatAck {
        client_ref,
        message,
    }) = next(&mut a).await
    else {
        panic!("ack expected")
    };
    assert_eq!(client_ref.as_deref(), Some("m1"));
    assert_eq!(message.text, "hello <b>you</b> 🙂");
    assert_eq!(message.name, "Alice");
    assert_eq!(
        next(&mut b).await,
        Some(ServerMsg::Chat {
            message: message.clone()
        })
    );

    // 120 more messages from both members: the room keeps the last 100.
    for i in 0..120 {
        let sender = if i % 2 == 0 { &mut a } else { &mut b };
        send_text(sender, &format!(r#"{{"type":"chat","text":"n{i}"}}"#)).await;
    }
    // Drain until the last message arrives at Alice; nothing may have been refused.
    next_matching(&mut a, |m| {
        assert!(!matches!(m, ServerMsg::Error { .. }), "{m:?}");
        matches!(m, ServerMsg::Chat { message } | ServerMsg::ChatAck { message, .. } if message.text == "n119")
    })
    .await
    .expect("last chat");
    let mut late = ws(&server).await;
    let ServerMsg::Joined { chat, .. } = ws_join(&mut late, "chatty", "Late").await else {
        unreachable!()
    };
    // 121 messages were sent (two members interleave, so order is by arrival): the history
    // is the last 100 of them, oldest first.
    let seqs: Vec<u64> = chat.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (22..=121).collect::<Vec<u64>>());
    assert!(chat.iter().all(|m| m.text.starts_with('n')));
    server.shutdown().await;
}

#[tokio::test]
async fn bad_messages_get_stable_error_codes_and_disturb_nobody() {
    let server = server().await;
    let mut other = ws(&server).await;
    ws_join(&mut other, "calm", "Other").await;

    let mut w = ws(&server).await;
    // Before joining.
    send_text(&mut w, r#"{"type":"mute","muted":true}"#).await;
    expect_error(&mut w, ErrorCode::NotJoined).await;
    send_text(&mut w, "{not json").await;
    expect_error(&mut w, ErrorCode::BadMessage).await;
    send_text(&mut w, r#"{"type":"launch_missiles"}"#).await;
    expect_error(&mut w, ErrorCode::BadMessage).await;
    send_text(&mut w, r#"{"type":"join","v":2,"room":"calm","name":"X"}"#).await;
    expect_error(&mut w, ErrorCode::UnsupportedVersion).await;
    for room in [
        "",
        "has space",
        "../../etc/passwd",
        "<script>",
        &"x".repeat(65),
    ] {
        let j = serde_json::json!({"type":"join","v":1,"room":room,"name":"X"});
        send_text(&mut w, &j.to_string()).await;
        expect_error(&mut w, ErrorCode::InvalidRoomName).await;
    }
    for name in ["", "   ", "a\u{0}b", &"n".repeat(33)] {
        let j = serde_json::json!({"type":"join","v":1,"room":"calm","name":name});
        send_text(&mut w, &j.to_string()).await;
        expect_error(&mut w, ErrorCode::InvalidNickname).await;
    }
    w.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    expect_error(&mut w, ErrorCode::BinaryNotSupported).await;
    send_text(
        &mut w,
        &format!(r#"{{"type":"chat","text":"{}"}}"#, "a".repeat(70_000)),
    )
    .await;
    expect_error(&mut w, ErrorCode::MessageTooLarge).await;
    send_text(&mut w, r#"{"type":"ping"}"#).await;
    assert_eq!(next(&mut w).await, Some(ServerMsg::Pong));

    // After joining.
    ws_join(&mut w, "calm", "Tester").await;
    send_text(
        &mut w,
        r#"{"type":"join","v":1,"room":"calm","name":"Again"}"#,
    )
    .await;
    expect_error(&mut w, ErrorCode::AlreadyJoined).await;
    send_text(
        &mut w,
        &format!(r#"{{"type":"chat","text":"{}"}}"#, "字".repeat(2001)),
    )
    .await;
    expect_error(&mut w, ErrorCode::ChatTooLong).await;
    send_text(&mut w, r#"{"type":"chat","text":"  "}"#).await;
    expect_error(&mut w, ErrorCode::ChatEmpty).await;
    send_text(
        &mut w,
        r#"{"type":"chat","text":"hi","client_ref":"has space"}"#,
    )
    .await;
    expect_error(&mut w, ErrorCode::InvalidClientRef).await;
    send_text(&mut w, r#"{"type":"rename","name":"\u0007bell"}"#).await;
    expect_error(&mut w, ErrorCode::InvalidNickname).await;
    send_text(&mut w, r#"{"type":"answer","sdp":"v=0"}"#).await;
    expect_error(&mut w, ErrorCode::UnexpectedAnswer).await;
    send_text(&mut w, r#"{"type":"offer","sdp":"this is not sdp"}"#).await;
    expect_error(&mut w, ErrorCode::InvalidSdp).await;
    send_text(&mut w, r#"{"type":"offer","sdp":"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"}"#).await;
    expect_error(&mut w, ErrorCode::InvalidSdp).await;
    // An offer's `sources`: a source nobody knows, too many mids, a mid too long or with a
    // space. Each is refused before the SDP is looked at.
    let many: serde_json::Map<String, serde_json::Value> =
        (0..17).map(|i| (i.to_string(), "camera".into())).collect();
    for (sources, code) in [
        (serde_json::json!({"0": "tuba"}), ErrorCode::BadMessage),
        (serde_json::Value::Object(many), ErrorCode::InvalidSources),
        (
            serde_json::json!({"m".repeat(17): "camera"}),
            ErrorCode::InvalidSources,
        ),
        (
            serde_json::json!({"a b": "screen"}),
            ErrorCode::InvalidSources,
        ),
    ] {
        let j = serde_json::json!({"type":"offer","sdp":"v=0","sources":sources});
        send_text(&mut w, &j.to_string()).await;
        expect_error(&mut w, code).await;
    }

    // The calm member saw only the tester arrive, nothing else.
    let seen = next(&mut other).await;
    assert!(
        matches!(seen, Some(ServerMsg::MemberJoined { .. })),
        "{seen:?}"
    );
    send_text(&mut other, r#"{"type":"ping"}"#).await;
    assert_eq!(next(&mut other).await, Some(ServerMsg::Pong));
    server.shutdown().await;
}

#[tokio::test]
async fn a_camera_turned_on_is_shown_to_everyone_and_to_those_who_join_later() {
    let server = server().await;
    let mut a = ws(&server).await;
    let ServerMsg::Joined { id: a_id, .. } = ws_join(&mut a, "cams", "Alice").await else {
        unreachable!()
    };
    let mut b = ws(&server).await;
    ws_join(&mut b, "cams", "Bob").await;
    next(&mut a).await; // Bob joined
    send_text(&mut a, r#"{"type":"video","camera":true,"screen":false}"#).await;
    let on = ServerMsg::Video {
        id: a_id,
        camera: true,
        screen: false,
    };
    assert_eq!(next(&mut a).await.as_ref(), Some(&on));
    assert_eq!(next(&mut b).await.as_ref(), Some(&on));
    let mut c = ws(&server).await;
    let ServerMsg::Joined { members, .. } = ws_join(&mut c, "cams", "Carol").await else {
        unreachable!()
    };
    let alice = members.iter().find(|m| m.id == a_id);
    assert!(alice.is_some_and(|m| m.camera && !m.screen), "{members:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_video_view_out_of_bounds_is_refused_with_its_code() {
    let server = server().await;
    let mut w = ws(&server).await;
    ws_join(&mut w, "tiles", "Viewer").await;
    let tile = |id: &str, width: u64| serde_json::json!({"peer": 1, "id": id, "width": width, "height": 180});
    let many: Vec<_> = (0..65).map(|i| tile(&i.to_string(), 320)).collect();
    for tracks in [
        serde_json::Value::Array(many),
        serde_json::json!([tile("a b", 320)]),
        serde_json::json!([tile("1", 16_385)]),
    ] {
        let j = serde_json::json!({"type": "video_view", "tracks": tracks});
        send_text(&mut w, &j.to_string()).await;
        expect_error(&mut w, ErrorCode::InvalidVideoView).await;
    }
    // A view of tracks nobody publishes is taken and does nothing.
    let j = serde_json::json!({"type": "video_view", "tracks": [tile("7", 640)]});
    send_text(&mut w, &j.to_string()).await;
    send_text(&mut w, r#"{"type":"ping"}"#).await;
    assert_eq!(next(&mut w).await, Some(ServerMsg::Pong));
    server.shutdown().await;
}

#[tokio::test]
async fn a_flood_is_rate_limited_then_disconnected() {
    let server = server().await;
    let mut calm = ws(&server).await;
    ws_join(&mut calm, "flood", "Calm").await;
    let mut w = ws(&server).await;
    ws_join(&mut w, "flood", "Flooder").await;
    for _ in 0..200 {
        if w.send(Message::text(r#"{"type":"mute","muted":false}"#))
            .await
            .is_err()
        {
            break;
        }
    }
    let mut limited = 0;
    let mut bye = None;
    while let Some(m) = next(&mut w).await {
        match m {
            ServerMsg::Error {
                code: ErrorCode::RateLimited,
                ..
            } => limited += 1,
            ServerMsg::Bye { reason } => bye = Some(reason),
            _ => {}
        }
    }
    assert!(limited >= 50, "{limited} rate-limit errors");
    assert_eq!(bye, Some(ByeReason::ProtocolViolation));
    // The calm member saw the flooder leave and is still served.
    next_matching(&mut calm, |m| matches!(m, ServerMsg::MemberLeft { .. }))
        .await
        .expect("left");
    send_text(&mut calm, r#"{"type":"ping"}"#).await;
    assert_eq!(
        next_matching(&mut calm, |m| *m == ServerMsg::Pong).await,
        Some(ServerMsg::Pong)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn the_configured_rate_limits_and_refusal_limit_are_kept() {
    // Buckets that hardly refill during the test: four messages, one of them chat; two
    // refusals in a row end the connection.
    let server = server_with(config_with(|c| {
        c.limits.message_burst = 4;
        c.limits.message_rate = 0.001;
        c.limits.chat_burst = 1;
        c.limits.chat_rate = 0.001;
        c.limits.max_refusals = 2;
    }))
    .await;
    let mut w = ws(&server).await;
    ws_join(&mut w, "paced", "Pat").await;
    send_text(&mut w, r#"{"type":"chat","text":"one"}"#).await;
    let ack = next(&mut w).await;
    assert!(matches!(ack, Some(ServerMsg::ChatAck { .. })), "{ack:?}");
    // The chat bucket is empty; the general one has two messages left.
    send_text(&mut w, r#"{"type":"chat","text":"two"}"#).await;
    expect_error(&mut w, ErrorCode::RateLimited).await;
    // A message that passes clears the refusals in a row.
    send_text(&mut w, r#"{"type":"ping"}"#).await;
    assert_eq!(next(&mut w).await, Some(ServerMsg::Pong));
    // Now the general bucket is empty too: two refusals, and the second ends the connection.
    send_text(&mut w, r#"{"type":"ping"}"#).await;
    expect_error(&mut w, ErrorCode::RateLimited).await;
    send_text(&mut w, r#"{"type":"ping"}"#).await;
    expect_error(&mut w, ErrorCode::RateLimited).await;
    assert_eq!(
        next(&mut w).await,
        Some(ServerMsg::Bye {
            reason: ByeReason::ProtocolViolation
        })
    );
    assert_eq!(next(&mut w).await, None, "closed after bye");
    server.shutdown().await;
}

#[tokio::test]
async fn a_connection_that_does_not_join_in_time_is_closed() {
    let server = server_with(config_with(|c| {
        c.connections.join_deadline = std::time::Duration::from_millis(300)
    }))
    .await;
    let mut member = ws(&server).await;
    ws_join(&mut member, "punctual", "Member").await;
    let mut idle = ws(&server).await;
    // Nothing sent: the deadline passes.
    expect_error(&mut idle, ErrorCode::NotJoined).await;
    assert_eq!(next(&mut idle).await, None, "closed after the error");
    // A member who joined in time is past the deadline too, and still served.
    send_text(&mut member, r#"{"type":"ping"}"#).await;
    assert_eq!(next(&mut member).await, Some(ServerMsg::Pong));
    server.shutdown().await;
}

#[tokio::test]
async fn a_member_whose_connection_falls_silent_is_dropped() {
    let server = server_with(config_with(|c| {
        c.connections.ping_interval = std::time::Duration::from_millis(100);
        c.connections.silence_limit = std::time::Duration::from_millis(300);
    }))
    .await;
    let mut silent = ws(&server).await;
    ws_join(&mut silent, "quiet", "Silent").await;
    // From here on the client reads nothing, so it answers no ping.
    assert!(wait_until(|| async { server.counts().members == 0 }).await);
    // What is left to read ends with the close.
    while let Some(m) = next(&mut silent).await {
        assert!(!matches!(m, ServerMsg::Error { .. }), "{m:?}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn room_and_server_limits_are_enforced() {
    let server = server_with(config_with(|c| {
        c.limits.max_room_members = 2;
        c.limits.max_rooms = 2;
        c.limits.max_peers = 3;
    }))
    .await;
    let mut a = ws(&server).await;
    ws_join(&mut a, "one", "A").await;
    let mut b = ws(&server).await;
    ws_join(&mut b, "one", "B").await;
    let mut c = ws(&server).await;
    send_text(&mut c, r#"{"type":"join","v":1,"room":"one","name":"C"}"#).await;
    expect_error(&mut c, ErrorCode::RoomFull).await;
    ws_join(&mut c, "two", "C").await;
    let mut d = ws(&server).await;
    send_text(&mut d, r#"{"type":"join","v":1,"room":"three","name":"D"}"#).await;
    expect_error(&mut d, ErrorCode::ServerFull).await;
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_says_bye_to_everyone() {
    let server = server().await;
    let mut a = ws(&server).await;
    ws_join(&mut a, "bye", "A").await;
    let mut idle = ws(&server).await;
    let stop = tokio::spawn(server.shutdown());
    let m = next_matching(&mut a, |m| matches!(m, ServerMsg::Bye { .. })).await;
    assert_eq!(
        m,
        Some(ServerMsg::Bye {
            reason: ByeReason::ServerShutdown
        })
    );
    assert_eq!(next(&mut a).await, None);
    let m = next_matching(&mut idle, |m| matches!(m, ServerMsg::Bye { .. })).await;
    assert_eq!(
        m,
        Some(ServerMsg::Bye {
            reason: ByeReason::ServerShutdown
        })
    );
    stop.await.unwrap();
}

#[tokio::test]
async fn a_rooms_handle_lists_its_members_removes_one_and_closes_the_room() {
    let server = server().await;
    let mut a = ws(&server).await;
    let ServerMsg::Joined { id: a_id, .. } = ws_join(&mut a, "handled", "Alice").await else {
        unreachable!()
    };
    let mut b = ws(&server).await;
    let ServerMsg::Joined { id: b_id, .. } = ws_join(&mut b, "handled", "Bob").await else {
        unreachable!()
    };
    let rooms = server.rooms();
    assert!(rooms.find("elsewhere").await.is_none());
    let listed = rooms.rooms().await;
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].room.as_str(), listed[0].members), ("handled", 2));

    let room = rooms.find("handled").await.expect("the room runs");
    let snapshot = room.snapshot().await.expect("a snapshot");
    let ids: Vec<_> = snapshot.members.iter().map(|m| m.id).collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&a_id) && ids.contains(&b_id));

    // Bob is removed: he is told why, and Alice sees him leave.
    assert!(room.remove(b_id, ByeReason::Removed).await);
    let bye = next_matching(&mut b, |m| matches!(m, ServerMsg::Bye { .. })).await;
    assert_eq!(
        bye,
        Some(ServerMsg::Bye {
            reason: ByeReason::Removed
        })
    );
    let left = next_matching(&mut a, |m| matches!(m, ServerMsg::MemberLeft { .. })).await;
    assert_eq!(left, Some(ServerMsg::MemberLeft { id: b_id }));
    assert!(!room.remove(b_id, ByeReason::Removed).await, "only once");

    // Closing the room tells Alice why and ends it.
    room.close(ByeReason::RoomClosed).await;
    let bye = next_matching(&mut a, |m| matches!(m, ServerMsg::Bye { .. })).await;
    assert_eq!(
        bye,
        Some(ServerMsg::Bye {
            reason: ByeReason::RoomClosed
        })
    );
    tokio::time::timeout(WAIT, room.closed()).await.unwrap();
    assert!(rooms.find("handled").await.is_none());
    assert_eq!((server.counts().rooms, server.counts().members), (0, 0));
    server.shutdown().await;
}
