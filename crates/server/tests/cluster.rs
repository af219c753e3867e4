//! Cluster mode against a real Redis: a `redis-server` of the test's own on a free loopback
//! port (never a system one), and real nodes (servers in this process) with real WebRTC
//! clients.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::redis::{Redis, node};
use common::*;
use free4chat::Server;
use free4chat::cluster::lease::Claim;
use free4chat::cluster::registry::NodeInfo;
use free4chat::cluster::{LEASE_TTL, NodeId, Store};
use free4chat_client::{Client, ClientConfig, ClientError};
use free4chat_signal::{ByeReason, ClientMsg};
use tokio::sync::mpsc;

async fn health(server: &Server) -> serde_json::Value {
    get_json(server, "/api/health").await
}

async fn get_json(server: &Server, path: &str) -> serde_json::Value {
    let (_, json) = http_get(server, path).await;
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"))
}

fn store(redis: &Redis) -> Store {
    let (tx, _rx) = mpsc::channel(16);
    Store::connect(&redis.url(), tx).unwrap()
}

fn record(id: &NodeId) -> NodeInfo {
    NodeInfo {
        id: id.clone(),
        http: "127.0.0.1:4000".into(),
        media: Vec::new(),
        members: 0,
        rooms: 0,
        cpu: 0.0,
        max_members: 100,
        max_rooms: 100,
        draining: false,
        version: "test".into(),
    }
}

/// The winners among the outcomes of many claims: the node each claim that won was made for.
async fn race(stores: &[(NodeId, Store)], room: &str, per_node: usize) -> Vec<NodeId> {
    let mut claims = tokio::task::JoinSet::new();
    for _ in 0..per_node {
        for (id, store) in stores {
            let (id, store, room) = (id.clone(), store.clone(), room.to_owned());
            claims.spawn(async move {
                let outcome = store.claim(&room, &id, LEASE_TTL * 5).await.unwrap();
                (id, outcome)
            });
        }
    }
    let mut winners = Vec::new();
    let mut holders = Vec::new();
    while let Some(r) = claims.join_next().await {
        let (id, outcome) = r.unwrap();
        match outcome {
            Claim::Won => winners.push(id),
            Claim::Held(owner) => holders.push(owner),
        }
    }
    winners.sort();
    winners.dedup();
    holders.sort();
    holders.dedup();
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    assert!(
        holders.iter().all(|h| *h == winners[0]),
        "losers were told {holders:?}, the winner was {winners:?}"
    );
    winners
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_many_concurrent_claims_of_one_room_by_several_nodes_exactly_one_node_wins() {
    let redis = Redis::start();
    let stores: Vec<(NodeId, Store)> = (1..=5)
        .map(|n| (NodeId::from_number(n), store(&redis)))
        .collect();
    for (id, s) in &stores {
        s.beat(&record(id), Duration::from_secs(30)).await.unwrap();
    }
    let winner = race(&stores, "contested", 40).await.remove(0);

    // The winner dies (its heartbeat goes): of the survivors racing to take the room over,
    // again exactly one wins.
    let (_, winner_store) = stores.iter().find(|(id, _)| *id == winner).unwrap();
    winner_store.forget_node(&winner).await.unwrap();
    let survivors: Vec<(NodeId, Store)> = stores
        .iter()
        .filter(|(id, _)| *id != winner)
        .cloned()
        .collect();
    let heir = race(&survivors, "contested", 40).await.remove(0);
    assert_ne!(heir, winner);
    assert_eq!(
        survivors[0].1.owner("contested").await.unwrap(),
        Some(heir.clone())
    );

    // A node that lost the room finds it out when it renews.
    let renewals = winner_store
        .renew(&["contested".into()], &winner, LEASE_TTL, LEASE_TTL)
        .await
        .unwrap();
    assert_eq!(renewals, vec![free4chat::cluster::lease::Renewal::Lost]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn members_reaching_two_nodes_share_one_room_and_hear_each_other() {
    let redis = Redis::start();
    let a = node(&redis).await;
    let b = node(&redis).await;
    let ann = join(&a, "shared", "Ann").await;
    let ben = join(&b, "shared", "Ben").await;
    // Ben sees Ann in the room: one room, not two.
    let ServerMsg::Joined { members, .. } = &ben.joined else {
        unreachable!()
    };
    assert_eq!(
        members.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![ann.id]
    );
    assert!(hears(&ann, &ben, 20).await, "Ann hears Ben");
    assert!(hears(&ben, &ann, 20).await, "Ben hears Ann");

    // Both nodes see the whole cluster (each reads the others' heartbeats every 500 ms).
    for s in [&a, &b] {
        let both_seen = || async { health(s).await["cluster"]["nodes"] == 2 };
        assert!(wait_until(both_seen).await, "{}", health(s).await);
        let rooms = get_json(s, "/api/rooms").await;
        let list = rooms["rooms"].as_array().unwrap();
        assert_eq!(list.len(), 1, "{rooms}");
        assert_eq!(list[0]["room"], "shared");
        assert_eq!(list[0]["members"], 2);
        assert_eq!(
            list[0]["node"],
            health(&a).await["node"],
            "the room runs on Ann's node"
        );
    }
    // Ids are unique across nodes.
    assert_ne!(ann.id, ben.id);
    // Each node's metrics name it, and count its own room only.
    for s in [&a, &b] {
        let node = health(s).await["node"].as_str().unwrap().to_owned();
        let (_, text) = http_get(s, "/metrics").await;
        let rooms = format!("free4chat_rooms{{node=\"{node}\"}} ");
        let line = text.lines().find(|l| l.starts_with(&rooms));
        let here = if std::ptr::eq(s, &a) { 1 } else { 0 };
        assert_eq!(line, Some(format!("{rooms}{here}").as_str()), "{text}");
    }

    // Ben's chat reaches Ann through the relay, and Ben's leaving reaches the room.
    ben.send(ClientMsg::Chat {
        text: "over the bus".into(),
        client_ref: None,
        reply_to: None,
    })
    .await;
    assert!(
        ann.wait_for(WAIT, |s| s.messages.iter().any(
            |m| matches!(m, ServerMsg::Chat { message } if message.text == "over the bus")
        ))
        .await
    );
    ben.leave().await;
    let ben_gone = |s: &free4chat_client::ClientState| {
        s.messages
            .iter()
            .any(|m| matches!(m, ServerMsg::MemberLeft { .. }))
    };
    assert!(ann.wait_for(WAIT, ben_gone).await, "Ann is told Ben left");
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_room_whose_node_stops_starts_again_on_another_node_with_its_chat() {
    let redis = Redis::start();
    let a = node(&redis).await;
    let b = node(&redis).await;
    let ann = join(&a, "moving", "Ann").await;
    let ben = join(&b, "moving", "Ben").await;
    let say = |text: &str, reply_to| ClientMsg::Chat {
        text: text.into(),
        client_ref: None,
        reply_to,
    };
    ann.send(say("remember me", None)).await;
    let seq_of = |s: &free4chat_client::ClientState, text: &str| {
        s.messages.iter().find_map(|m| match m {
            ServerMsg::Chat { message } | ServerMsg::ChatAck { message, .. }
                if message.text == text =>
            {
                Some(message.seq)
            }
            _ => None,
        })
    };
    assert!(
        ben.wait_for(WAIT, |s| seq_of(s, "remember me").is_some())
            .await
    );
    let first = ben.with_state(|s| seq_of(s, "remember me")).unwrap();
    let ben_id = ben.id;
    // Ben, relayed from the other node, answers and reacts; Ann edits her message, and sends
    // and deletes another: the room's chat in Redis follows every change.
    ben.send(say("a reply", Some(first))).await;
    ben.send(ClientMsg::ChatReact {
        seq: first,
        emoji: "👍".into(),
        on: true,
    })
    .await;
    ann.send(ClientMsg::ChatEdit {
        seq: first,
        text: "remember me, edited".into(),
    })
    .await;
    assert!(ann.wait_for(WAIT, |s| seq_of(s, "a reply").is_some()).await);
    ann.send(say("oops", None)).await;
    assert!(ann.wait_for(WAIT, |s| seq_of(s, "oops").is_some()).await);
    let oops = ann.with_state(|s| seq_of(s, "oops")).unwrap();
    ann.send(ClientMsg::ChatDelete { seq: oops }).await;
    let stored = store(&redis);
    let all_kept = || async {
        let chat = stored.chat("moving").await.unwrap_or_default();
        chat.len() == 3
            && chat[2].deleted
            && chat[0].edited.is_some()
            && !chat[0].reactions.is_empty()
    };
    assert!(
        wait_until(all_kept).await,
        "{:?}",
        stored.chat("moving").await
    );
    // The room's node stops: both members, on either node, are told to reconnect.
    let room_node = health(&a).await["node"].clone();
    a.shutdown().await;
    let told = |s: &free4chat_client::ClientState| {
        s.messages.iter().any(|m| {
            matches!(
                m,
                ServerMsg::Bye {
                    reason: ByeReason::ServerShutdown
                }
            )
        })
    };
    assert!(ann.wait_for(WAIT, told).await, "Ann is told to reconnect");
    assert!(ben.wait_for(WAIT, told).await, "Ben is told to reconnect");
    drop((ann, ben));

    // They come back through the surviving node: the room starts again there, with its chat.
    let ann = join(&b, "moving", "Ann").await;
    let ServerMsg::Joined { chat, .. } = &ann.joined else {
        unreachable!()
    };
    assert_eq!(
        chat.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(),
        vec!["remember me, edited", "a reply", ""]
    );
    assert_eq!(chat[1].reply_to, Some(first));
    assert_eq!(chat[0].reactions[0].emoji, "👍");
    assert_eq!(chat[0].reactions[0].by[0].id, ben_id);
    assert!(chat[2].deleted);
    let ben = join(&b, "moving", "Ben").await;
    assert!(hears(&ann, &ben, 20).await && hears(&ben, &ann, 20).await);
    let rooms = get_json(&b, "/api/rooms").await;
    assert_eq!(rooms["rooms"][0]["node"], health(&b).await["node"]);
    assert_ne!(rooms["rooms"][0]["node"], room_node);
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn while_redis_is_away_running_rooms_go_on_and_what_needs_it_says_so() {
    let mut redis = Redis::start();
    let a = node(&redis).await;
    let ann = join(&a, "steady", "Ann").await;
    let ben = join(&a, "steady", "Ben").await;
    assert!(hears(&ann, &ben, 20).await);

    redis.stop();
    // Rooms running here go on, and take new members.
    let before = count(&ann, &ben);
    let cat = join(&a, "steady", "Cat").await;
    assert!(
        wait_until(|| async { count(&ann, &ben) > before + 50 }).await,
        "media goes on"
    );
    assert!(hears(&cat, &ann, 20).await);
    // A room that does not run here needs Redis: a clear error, in bounded time.
    let started = std::time::Instant::now();
    let refused = Client::join(ClientConfig::new(a.http_addr(), "elsewhere", "Dan")).await;
    match refused {
        Err(ClientError::Refused(msg)) => assert!(
            matches!(
                *msg,
                ServerMsg::Error {
                    code: ErrorCode::ClusterUnavailable,
                    ..
                }
            ),
            "{msg:?}"
        ),
        Err(other) => panic!("expected cluster_unavailable, got {other}"),
        Ok(_) => panic!("joined a new room with Redis away"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "{:?}",
        started.elapsed()
    );

    // Redis comes back (empty): the node registers again and new rooms work.
    redis.spawn();
    let back = Arc::new(a);
    let probe = back.clone();
    assert!(
        wait_until(|| {
            let s = probe.clone();
            async move {
                Client::join(ClientConfig::new(s.http_addr(), "elsewhere", "Dan"))
                    .await
                    .is_ok()
            }
        })
        .await,
        "joins work again once Redis is back"
    );
    // The running room's lease is held again, at the node's next renewal (every 500 ms): a
    // new room may be joined before it comes.
    let check = store(&redis);
    let node_id = health(&back).await["node"].as_str().map(String::from);
    assert!(
        wait_until(|| async {
            check
                .owner("steady")
                .await
                .ok()
                .flatten()
                .map(|o| o.to_string())
                == node_id
        })
        .await,
        "the running room's lease is taken again, by {node_id:?}"
    );
    drop((ann, ben, cat));
    if let Ok(a) = Arc::try_unwrap(back) {
        a.shutdown().await;
    }
}
