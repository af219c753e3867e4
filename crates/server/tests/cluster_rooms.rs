//! Room lists and private rooms in cluster mode, against a real Redis of the test's own: the
//! list is the cluster's (each node writes its public rooms' summaries beside their leases), and
//! a private room's password is checked on the node where the room runs.

mod common;

use common::redis::{Redis, node};
use common::*;
use free4chat::Server;
use free4chat_client::{Client, ClientConfig, ClientError};
use serde_json::{Value, json};

async fn get_json(server: &Server, path: &str) -> Value {
    let (_, body) = http_get(server, path).await;
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

async fn join_with(ws: &mut Ws, room: &str, name: &str, extra: Value) -> Option<ServerMsg> {
    let mut join = json!({"type":"join","v":1,"room":room,"name":name});
    if let (Some(j), Some(e)) = (join.as_object_mut(), extra.as_object()) {
        j.extend(e.clone());
    }
    send_text(ws, &join.to_string()).await;
    next(ws).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_node_lists_the_clusters_public_rooms_with_live_counts_and_never_a_private_one() {
    let redis = Redis::start();
    let a = node(&redis).await;
    let b = node(&redis).await;
    let mut ann = ws(&a).await;
    join_with(
        &mut ann,
        "on-a",
        "Ann",
        json!({"topic":"A's","language":"en"}),
    )
    .await;
    let mut ben = ws(&b).await;
    join_with(&mut ben, "on-b", "Ben", json!({"language":"de"})).await;
    let mut cat = ws(&b).await;
    join_with(&mut cat, "hidden", "Cat", json!({"password":"pw"})).await;

    for s in [&a, &b] {
        let listed = || async {
            let list = get_json(s, "/api/rooms").await;
            let names: Vec<&str> = list["rooms"]
                .as_array()
                .map(|r| r.iter().filter_map(|r| r["room"].as_str()).collect())
                .unwrap_or_default();
            names.contains(&"on-a") && names.contains(&"on-b")
        };
        assert!(
            wait_until(listed).await,
            "{}",
            get_json(s, "/api/rooms").await
        );
        let list = get_json(s, "/api/rooms").await;
        assert!(
            !list.to_string().contains("hidden"),
            "a private room is not listed: {list}"
        );
        let de = get_json(s, "/api/rooms?language=de").await;
        assert_eq!(de["rooms"].as_array().map(Vec::len), Some(1), "{de}");
        assert_eq!(de["rooms"][0]["room"], "on-b");
    }
    // A's list counts B's room's members as they come, from what B writes to Redis.
    let mut dan = ws(&a).await;
    join_with(&mut dan, "on-b", "Dan", json!({})).await;
    let counted = || async {
        let de = get_json(&a, "/api/rooms?language=de").await;
        de["rooms"][0]["members"] == 2
    };
    assert!(wait_until(counted).await);
    drop((ann, ben, cat, dan));
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_private_room_on_another_node_checks_the_password_where_it_runs() {
    let redis = Redis::start();
    let a = node(&redis).await;
    let b = node(&redis).await;
    let mut config = ClientConfig::new(a.http_addr(), "vault", "Ann");
    config.password = Some("right".into());
    let ann = Client::join(config).await.expect("Ann makes the room on A");

    // Through node B: a wrong password is refused by A, relayed back as it is.
    let mut eve = ws(&b).await;
    let answer = join_with(&mut eve, "vault", "Eve", json!({"password":"wrong"})).await;
    assert_error(&answer, ErrorCode::WrongPassword);
    let refused = Client::join(ClientConfig::new(b.http_addr(), "vault", "Eve")).await;
    assert!(
        matches!(&refused, Err(ClientError::Refused(m)) if matches!(**m, ServerMsg::Error { code: ErrorCode::WrongPassword, .. })),
        "a missing password too"
    );
    let mut config = ClientConfig::new(b.http_addr(), "vault", "Ben");
    config.password = Some("right".into());
    let ben = Client::join(config).await.expect("Ben joins through B");
    assert!(hears(&ann, &ben, 20).await && hears(&ben, &ann, 20).await);
    drop((ann, ben, eve));
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_private_room_that_starts_again_on_another_node_keeps_its_password_and_its_chat_stays_behind_it()
 {
    let redis = Redis::start();
    let a = node(&redis).await;
    let b = node(&redis).await;
    let mut ann = ws(&a).await;
    let joined = join_with(&mut ann, "hush", "Ann", json!({"password":"right"})).await;
    assert!(
        matches!(joined, Some(ServerMsg::Joined { .. })),
        "{joined:?}"
    );
    send_text(&mut ann, r#"{"type":"chat","text":"between us"}"#).await;
    next_matching(&mut ann, |m| matches!(m, ServerMsg::ChatAck { .. })).await;
    // The room's node stops: its members are told to come back, and the room starts again
    // wherever the first of them does.
    a.shutdown().await;
    drop(ann);

    // Without the password, nobody makes it again, public, with its chat.
    for extra in [json!({}), json!({"password":"wrong"})] {
        let mut eve = ws(&b).await;
        let answer = join_with(&mut eve, "hush", "Eve", extra).await;
        assert_error(&answer, ErrorCode::WrongPassword);
    }
    // And the refused joins left no empty room behind.
    assert!(b.rooms().find("hush").await.is_none());
    let mut ann = ws(&b).await;
    let joined = join_with(&mut ann, "hush", "Ann", json!({"password":"right"})).await;
    let Some(ServerMsg::Joined {
        room_info, chat, ..
    }) = joined
    else {
        panic!("{joined:?}")
    };
    assert!(room_info.private);
    assert_eq!(chat.len(), 1);
    assert_eq!(chat[0].text, "between us");
    let list = get_json(&b, "/api/rooms").await;
    assert!(!list.to_string().contains("hush"), "{list}");
    drop(ann);
    b.shutdown().await;
}
