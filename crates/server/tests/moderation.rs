//! Moderators: who they are, what they may do and others may not, and raised hands.

mod common;

use std::time::Duration;

use common::*;
use free4chat_client::ClientState;
use free4chat_signal::{ByeReason, ClientMsg, MemberId, RoomInfo};
use serde_json::{Value, json};

/// Joins by hand with `extra` fields in the `join`; returns the `joined`.
async fn joined(ws: &mut Ws, room: &str, name: &str, extra: Value) -> ServerMsg {
    let mut join = json!({"type":"join","v":1,"room":room,"name":name});
    if let (Some(j), Some(e)) = (join.as_object_mut(), extra.as_object()) {
        j.extend(e.clone());
    }
    send_text(ws, &join.to_string()).await;
    match next(ws).await {
        Some(m @ ServerMsg::Joined { .. }) => m,
        other => panic!("expected joined, got {other:?}"),
    }
}

fn id_of(joined: &ServerMsg) -> MemberId {
    match joined {
        ServerMsg::Joined { id, .. } => *id,
        _ => unreachable!(),
    }
}

async fn send(ws: &mut Ws, msg: Value) {
    send_text(ws, &msg.to_string()).await;
}

async fn error_code(ws: &mut Ws) -> Option<ErrorCode> {
    match next_matching(ws, |m| matches!(m, ServerMsg::Error { .. })).await {
        Some(ServerMsg::Error { code, .. }) => Some(code),
        _ => None,
    }
}

/// Sends a ping and reads up to its pong: what arrived before it.
async fn until_pong(ws: &mut Ws) -> Vec<ServerMsg> {
    send_text(ws, r#"{"type":"ping"}"#).await;
    let mut seen = Vec::new();
    while let Some(m) = next(ws).await {
        if m == ServerMsg::Pong {
            return seen;
        }
        seen.push(m);
    }
    seen
}

const ANN_KEY: &str = "AAAAAAAAAAAAAAAAAAAAAA";
const BEN_KEY: &str = "BBBBBBBBBBBBBBBBBBBBBB";

#[tokio::test]
async fn a_member_who_is_no_moderator_is_refused_every_act_and_nothing_happens() {
    let server = server().await;
    let mut ann = ws(&server).await;
    let a = joined(&mut ann, "r", "Ann", json!({})).await;
    let ServerMsg::Joined { moderators, .. } = &a else {
        unreachable!()
    };
    assert_eq!(
        moderators,
        &vec![id_of(&a)],
        "the room's maker moderates it"
    );
    let mut ben = ws(&server).await;
    let b = joined(&mut ben, "r", "Ben", json!({})).await;
    let ServerMsg::Joined { moderators, .. } = &b else {
        unreachable!()
    };
    assert_eq!(moderators, &vec![id_of(&a)], "everyone sees who moderates");
    let ann_id = id_of(&a).0;
    for act in [
        json!({"type":"set_room","locked":true}),
        json!({"type":"set_room","topic":"mine now"}),
        json!({"type":"mute_member","id":ann_id,"muted":true}),
        json!({"type":"remove_member","id":ann_id}),
        json!({"type":"make_moderator","id":id_of(&b).0}),
        json!({"type":"clear_chat"}),
        json!({"type":"lower_hand","id":ann_id}),
    ] {
        send(&mut ben, act.clone()).await;
        assert_eq!(
            error_code(&mut ben).await,
            Some(ErrorCode::NotModerator),
            "{act}"
        );
    }
    // Ann saw nothing of it but Ben's arrival.
    let seen = until_pong(&mut ann).await;
    assert!(
        seen.iter()
            .all(|m| matches!(m, ServerMsg::MemberJoined { .. })),
        "{seen:?}"
    );
    // The room is as it was: unlocked, with its one moderator.
    let mut cat = ws(&server).await;
    let c = joined(&mut cat, "r", "Cat", json!({})).await;
    let ServerMsg::Joined {
        moderators,
        room_info,
        ..
    } = &c
    else {
        unreachable!()
    };
    assert_eq!(moderators, &vec![id_of(&a)]);
    assert_eq!(room_info, &RoomInfo::default());
    server.shutdown().await;
}

#[tokio::test]
async fn a_moderator_locks_the_room_sets_its_topic_clears_the_chat_and_removes_a_member_who_stays_out()
 {
    let server = server().await;
    let mut ann = ws(&server).await;
    let a = joined(&mut ann, "club", "Ann", json!({"key": ANN_KEY})).await;
    let mut ben = ws_from(&server, ip("127.0.0.21"), None).await.unwrap();
    let b = joined(&mut ben, "club", "Ben", json!({"key": BEN_KEY})).await;
    let ben_id = id_of(&b);

    // Topic and language, for everyone and for the room list.
    send(
        &mut ann,
        json!({"type":"set_room","topic":"Jazz night","language":"en"}),
    )
    .await;
    let info = RoomInfo {
        topic: "Jazz night".into(),
        language: "en".into(),
        private: false,
        locked: false,
    };
    let room = ServerMsg::Room { info: info.clone() };
    assert_eq!(
        next_matching(&mut ben, |m| matches!(m, ServerMsg::Room { .. })).await,
        Some(room)
    );
    let (_, body) = http_get(&server, "/api/rooms").await;
    let list: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list["rooms"][0]["topic"], "Jazz night", "{list}");
    send(&mut ann, json!({"type":"set_room","topic":"x\u{7}"})).await;
    assert_eq!(error_code(&mut ann).await, Some(ErrorCode::InvalidTopic));

    // The chat, cleared for everyone, and for those who come later.
    send(
        &mut ben,
        json!({"type":"chat","text":"something regrettable"}),
    )
    .await;
    next_matching(&mut ann, |m| matches!(m, ServerMsg::Chat { .. })).await;
    send(&mut ann, json!({"type":"clear_chat"})).await;
    assert_eq!(
        next_matching(&mut ben, |m| *m == ServerMsg::ChatCleared).await,
        Some(ServerMsg::ChatCleared)
    );

    // Removed: told so, gone for everyone, and kept out by key and by address.
    send(&mut ann, json!({"type":"remove_member","id":ben_id.0})).await;
    let bye = next_matching(&mut ben, |m| matches!(m, ServerMsg::Bye { .. })).await;
    assert_eq!(
        bye,
        Some(ServerMsg::Bye {
            reason: ByeReason::Removed
        })
    );
    assert_eq!(
        next_matching(&mut ann, |m| matches!(m, ServerMsg::MemberLeft { .. })).await,
        Some(ServerMsg::MemberLeft { id: ben_id })
    );
    for (from, key) in [
        ("127.0.0.21", Some(BEN_KEY)),
        ("127.0.0.22", Some(BEN_KEY)),
        ("127.0.0.21", None),
    ] {
        let mut again = ws_from(&server, ip(from), None).await.unwrap();
        let join = json!({"type":"join","v":1,"room":"club","name":"Ben","key":key});
        send(&mut again, join).await;
        assert_eq!(
            error_code(&mut again).await,
            Some(ErrorCode::RemovedFromRoom),
            "{from} {key:?}"
        );
    }
    // Someone else gets in, and finds the chat empty.
    let mut cat = ws_from(&server, ip("127.0.0.23"), None).await.unwrap();
    let c = joined(&mut cat, "club", "Cat", json!({})).await;
    let ServerMsg::Joined {
        chat, room_info, ..
    } = &c
    else {
        unreachable!()
    };
    assert!(chat.is_empty(), "{chat:?}");
    assert_eq!(room_info, &info);

    // Locked: nobody new gets in; unlocked, they do.
    send(&mut ann, json!({"type":"set_room","locked":true})).await;
    let locked = |m: &ServerMsg| matches!(m, ServerMsg::Room { info } if info.locked);
    assert!(next_matching(&mut cat, locked).await.is_some());
    let mut dan = ws_from(&server, ip("127.0.0.24"), None).await.unwrap();
    send(
        &mut dan,
        json!({"type":"join","v":1,"room":"club","name":"Dan"}),
    )
    .await;
    assert_eq!(error_code(&mut dan).await, Some(ErrorCode::RoomLocked));
    send(&mut ann, json!({"type":"set_room","locked":false})).await;
    let _ = until_pong(&mut ann).await;
    let mut dan = ws_from(&server, ip("127.0.0.24"), None).await.unwrap();
    joined(&mut dan, "club", "Dan", json!({})).await;
    let _ = a;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_a_moderator_mutes_for_everyone_is_heard_by_nobody_and_cannot_unmute() {
    let server = server().await;
    let ann = join(&server, "stage", "Ann").await;
    let ben = join(&server, "stage", "Ben").await;
    assert!(hears(&ann, &ben, 20).await && hears(&ben, &ann, 20).await);
    ann.send(ClientMsg::MuteMember {
        id: ben.id,
        muted: true,
    })
    .await;
    let forced = |s: &ClientState| {
        s.messages.iter().any(
            |m| matches!(m, ServerMsg::Mute { id, muted: true, forced: true } if *id == ben.id),
        )
    };
    assert!(ann.wait_for(WAIT, forced).await && ben.wait_for(WAIT, forced).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = count(&ann, &ben);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(count(&ann, &ben) <= before + 2, "Ann hears Ben no more");
    ben.send(ClientMsg::Mute { muted: false }).await;
    let refused = |s: &ClientState| {
        s.messages.iter().any(|m| {
            matches!(
                m,
                ServerMsg::Error {
                    code: ErrorCode::MutedForEveryone,
                    ..
                }
            )
        })
    };
    assert!(ben.wait_for(WAIT, refused).await);
    // Lifted, Ben unmutes and is heard again.
    ann.send(ClientMsg::MuteMember {
        id: ben.id,
        muted: false,
    })
    .await;
    ben.send(ClientMsg::Mute { muted: false }).await;
    let heard = count(&ann, &ben);
    assert!(hears(&ann, &ben, heard + 20).await, "Ann hears Ben again");
    server.shutdown().await;
}

#[tokio::test]
async fn moderators_are_made_and_when_the_last_leaves_the_member_present_longest_becomes_one() {
    let server = server().await;
    let mut ann = ws(&server).await;
    let a = joined(&mut ann, "m", "Ann", json!({})).await;
    let mut ben = ws(&server).await;
    let b = joined(&mut ben, "m", "Ben", json!({})).await;
    let mut cat = ws(&server).await;
    let c = joined(&mut cat, "m", "Cat", json!({})).await;
    let (a, b, c) = (id_of(&a), id_of(&b), id_of(&c));

    send(&mut ann, json!({"type":"make_moderator","id":c.0})).await;
    let both = ServerMsg::Moderators { ids: vec![a, c] };
    assert_eq!(
        next_matching(&mut ben, |m| matches!(m, ServerMsg::Moderators { .. })).await,
        Some(both)
    );
    send(&mut ann, json!({"type":"make_moderator","id":999_999})).await;
    assert_eq!(error_code(&mut ann).await, Some(ErrorCode::NoSuchMember));
    // Cat, a moderator now, may act.
    send(&mut cat, json!({"type":"set_room","topic":"by Cat"})).await;
    assert!(
        next_matching(&mut ben, |m| matches!(m, ServerMsg::Room { .. }))
            .await
            .is_some()
    );

    // Both moderators leave: Ben, here longest of those left, moderates.
    drop(ann);
    drop(cat);
    let ben_moderates = ServerMsg::Moderators { ids: vec![b] };
    assert_eq!(
        next_matching(
            &mut ben,
            |m| matches!(m, ServerMsg::Moderators { ids } if !ids.contains(&c) && !ids.contains(&a))
        )
        .await,
        Some(ben_moderates)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn raised_hands_queue_in_the_order_raised_and_a_moderator_lowers_anyones() {
    let server = server().await;
    let mut ann = ws(&server).await;
    let a = joined(&mut ann, "h", "Ann", json!({})).await;
    let mut ben = ws(&server).await;
    let b = joined(&mut ben, "h", "Ben", json!({})).await;
    let mut cat = ws(&server).await;
    let c = joined(&mut cat, "h", "Cat", json!({})).await;
    let (_, b, c) = (id_of(&a), id_of(&b), id_of(&c));
    let hands = |_: &str| |m: &ServerMsg| matches!(m, ServerMsg::Hands { .. });

    send(&mut cat, json!({"type":"hand","raised":true})).await;
    assert_eq!(
        next_matching(&mut ann, hands("ann")).await,
        Some(ServerMsg::Hands { ids: vec![c] })
    );
    send(&mut ben, json!({"type":"hand","raised":true})).await;
    assert_eq!(
        next_matching(&mut ann, hands("ann")).await,
        Some(ServerMsg::Hands { ids: vec![c, b] })
    );
    // A newcomer sees the queue.
    let mut dan = ws(&server).await;
    let ServerMsg::Joined { hands: queue, .. } = joined(&mut dan, "h", "Dan", json!({})).await
    else {
        unreachable!()
    };
    assert_eq!(queue, vec![c, b]);
    // Ben may not lower Cat's hand; Cat lowers her own; Ann, the moderator, lowers Ben's.
    send(&mut ben, json!({"type":"lower_hand","id":c.0})).await;
    assert_eq!(error_code(&mut ben).await, Some(ErrorCode::NotModerator));
    send(&mut cat, json!({"type":"hand","raised":false})).await;
    assert_eq!(
        next_matching(&mut ann, hands("ann")).await,
        Some(ServerMsg::Hands { ids: vec![b] })
    );
    send(&mut ann, json!({"type":"lower_hand","id":b.0})).await;
    assert_eq!(
        next_matching(
            &mut dan,
            |m| matches!(m, ServerMsg::Hands { ids } if ids.is_empty())
        )
        .await,
        Some(ServerMsg::Hands { ids: vec![] })
    );
    // A raised hand goes down when its member leaves.
    send(&mut dan, json!({"type":"hand","raised":true})).await;
    let one = |m: &ServerMsg| matches!(m, ServerMsg::Hands { ids } if ids.len() == 1);
    assert!(next_matching(&mut ann, one).await.is_some());
    drop(dan);
    assert_eq!(
        next_matching(&mut ann, hands("ann")).await,
        Some(ServerMsg::Hands { ids: vec![] })
    );
    server.shutdown().await;
}
