//! Rooms people can find and rooms they can close: the public room list with topics and
//! languages, and private rooms behind a password.

mod common;

use std::time::Duration;

use common::*;
use free4chat_client::{Client, ClientConfig};
use free4chat_signal::RoomInfo;
use serde_json::{Value, json};

/// Sends a `join` with `extra` fields; returns the first answer.
async fn join_with(ws: &mut Ws, room: &str, name: &str, extra: Value) -> Option<ServerMsg> {
    let mut join = json!({"type":"join","v":1,"room":room,"name":name});
    if let (Some(j), Some(e)) = (join.as_object_mut(), extra.as_object()) {
        j.extend(e.clone());
    }
    send_text(ws, &join.to_string()).await;
    next(ws).await
}

async fn list(server: &free4chat::Server, query: &str) -> (u16, Value) {
    let (status, body) = get_from(server, ip("127.0.0.1"), &format!("/api/rooms{query}"))
        .await
        .expect("answer");
    (status, serde_json::from_str(&body).expect("JSON"))
}

fn names(list: &Value) -> Vec<String> {
    list["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["room"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn public_rooms_are_listed_largest_first_with_topic_and_language_and_filtered_by_language() {
    let server = server().await;
    let mut ann = ws(&server).await;
    let joined = join_with(
        &mut ann,
        "jazz",
        "Ann",
        json!({"topic":"  Standards  ","language":"EN"}),
    )
    .await;
    let Some(ServerMsg::Joined { room_info, .. }) = joined else {
        panic!("{joined:?}")
    };
    assert_eq!(
        room_info,
        RoomInfo {
            topic: "Standards".into(),
            language: "en".into(),
            private: false,
            locked: false,
        }
    );
    let mut ben = ws(&server).await;
    let joined = join_with(&mut ben, "fado", "Ben", json!({"language":"pt-PT"})).await;
    assert!(matches!(joined, Some(ServerMsg::Joined { .. })));
    // A later member's topic does not change the room's.
    let mut cat = ws(&server).await;
    join_with(&mut cat, "jazz", "Cat", json!({"topic":"Bebop"})).await;
    // A private room is never listed.
    let mut dan = ws(&server).await;
    join_with(
        &mut dan,
        "hidden",
        "Dan",
        json!({"password":"pw","language":"en"}),
    )
    .await;

    let (status, all) = list(&server, "").await;
    assert_eq!(status, 200);
    assert_eq!(names(&all), vec!["jazz", "fado"], "{all}");
    assert_eq!(all["rooms"][0]["members"], 2);
    assert_eq!(all["rooms"][0]["topic"], "Standards");
    assert_eq!(all["rooms"][0]["language"], "en");
    assert_eq!(all["rooms"][1]["language"], "pt-PT");
    assert_eq!(all["total"], 2);
    let (_, pt) = list(&server, "?language=pt").await;
    assert_eq!(names(&pt), vec!["fado"], "{pt}");
    let (_, en) = list(&server, "?language=en").await;
    assert_eq!(names(&en), vec!["jazz"], "{en}");
    let (status, _) = list(&server, "?language=not%20one").await;
    assert_eq!(status, 400);

    // The count is live: Cat leaves.
    drop(cat);
    let one_left = || async { list(&server, "").await.1["rooms"][0]["members"] == 1 };
    assert!(wait_until(one_left).await);

    // Topics and languages are checked.
    let mut eve = ws(&server).await;
    let long = "x".repeat(81);
    let refused = join_with(&mut eve, "r", "Eve", json!({ "topic": long })).await;
    assert_error(&refused, ErrorCode::InvalidTopic);
    let refused = join_with(&mut eve, "r", "Eve", json!({"language":"english"})).await;
    assert_error(&refused, ErrorCode::InvalidLanguage);
    let refused = join_with(&mut eve, "r", "Eve", json!({"password":""})).await;
    assert_error(&refused, ErrorCode::InvalidPassword);
    server.shutdown().await;
}

fn with_password(server: &free4chat::Server, room: &str, name: &str, pw: &str) -> ClientConfig {
    let mut config = ClientConfig::new(server.http_addr(), room, name);
    config.password = Some(pw.into());
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_room_refuses_a_missing_or_wrong_password_alike_and_takes_the_right_one() {
    let server = server().await;
    let ann = Client::join(with_password(&server, "secret", "Ann", "open sesame"))
        .await
        .expect("Ann makes the room");
    let ServerMsg::Joined { room_info, .. } = &ann.joined else {
        unreachable!()
    };
    assert!(room_info.private);

    // Without the password, or with a wrong one: the same error, and nothing else.
    for extra in [json!({}), json!({"password":"open sesame!"})] {
        let mut eve = ws(&server).await;
        let answer = join_with(&mut eve, "secret", "Eve", extra).await;
        assert_error(&answer, ErrorCode::WrongPassword);
        send_text(&mut eve, r#"{"type":"ping"}"#).await;
        assert_eq!(
            next(&mut eve).await,
            Some(ServerMsg::Pong),
            "nothing more came"
        );
    }
    let ServerMsg::Joined { members, .. } = &ann.joined else {
        unreachable!()
    };
    assert!(members.is_empty());

    // The right password joins, and they hear each other.
    let ben = Client::join(with_password(&server, "secret", "Ben", "open sesame"))
        .await
        .expect("Ben joins with the password");
    assert!(hears(&ann, &ben, 20).await && hears(&ben, &ann, 20).await);
    let snapshot = server
        .rooms()
        .find("secret")
        .await
        .unwrap()
        .snapshot()
        .await;
    assert_eq!(snapshot.map(|s| s.members.len()), Some(2));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_from_one_address_run_out_while_other_addresses_still_get_in() {
    let server = server_with(config_with(|c| {
        c.protection.password_burst_per_ip = 2;
        c.protection.password_rate_per_ip = 0.001;
    }))
    .await;
    let mut owner = ws(&server).await;
    join_with(&mut owner, "vault", "Ann", json!({"password":"right"})).await;

    let guesser = ip("127.0.0.7");
    let mut eve = ws_from(&server, guesser, None).await.unwrap();
    for _ in 0..2 {
        let answer = join_with(&mut eve, "vault", "Eve", json!({"password":"wrong"})).await;
        assert_error(&answer, ErrorCode::WrongPassword);
    }
    // Past its allowance, even the right password is not tried from that address.
    let answer = join_with(&mut eve, "vault", "Eve", json!({"password":"right"})).await;
    assert_error(&answer, ErrorCode::TooManyAttempts);
    assert_eq!(stats(&server).await["admission"]["refused_passwords"], 1);
    let mut ben = ws_from(&server, ip("127.0.0.8"), None).await.unwrap();
    let answer = join_with(&mut ben, "vault", "Ben", json!({"password":"right"})).await;
    assert!(
        matches!(answer, Some(ServerMsg::Joined { .. })),
        "{answer:?}"
    );
    // Joins without a password are no guesses: the address still joins public rooms.
    let mut eve2 = ws_from(&server, guesser, None).await.unwrap();
    let answer = join_with(&mut eve2, "lobby", "Eve", json!({})).await;
    assert!(
        matches!(answer, Some(ServerMsg::Joined { .. })),
        "{answer:?}"
    );
    tokio::time::sleep(Duration::from_millis(10)).await;
    server.shutdown().await;
}
