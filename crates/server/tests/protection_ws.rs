//! Attacks on signalling by one host (or a few), reproduced on loopback from other 127.0.0.x
//! addresses, while real members join from 127.0.0.1: WebSockets by the dozen, joins in a
//! loop, a room held full by members who never connect media, and pages of another site.

mod common;

use std::time::Duration;

use common::*;
use free4chat_client::ClientError;
use free4chat_signal::ByeReason;

/// Joins over a bare WebSocket: true if joined, else the error code.
async fn try_join(ws: &mut Ws, room: &str) -> Result<(), Option<ErrorCode>> {
    let join = serde_json::json!({"type":"join","v":1,"room":room,"name":"Mallory"});
    send_text(ws, &join.to_string()).await;
    match next(ws).await {
        Some(ServerMsg::Joined { .. }) => Ok(()),
        Some(ServerMsg::Error { code, .. }) => Err(Some(code)),
        _ => Err(None),
    }
}

#[tokio::test]
async fn one_host_holds_only_its_share_of_websockets_while_members_join_and_hear() {
    let server = server_with(config_with(|c| c.protection.ws_max_connections_per_ip = 3)).await;
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..10 {
        let mut ws = ws_from(&server, ip("127.0.0.3"), None).await.expect("ws");
        match try_join(&mut ws, "w").await {
            Ok(()) => held.push(ws),
            Err(Some(ErrorCode::TooManyConnections)) => {
                // Then the connection closes.
                assert_eq!(next(&mut ws).await, None);
                refused += 1;
            }
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!((held.len(), refused), (3, 7));
    let alice = join(&server, "w", "Alice").await;
    let bob = join(&server, "w", "Bob").await;
    assert!(hears(&bob, &alice, 10).await);
    assert!(hears(&alice, &bob, 10).await);
    // Another host is not counted with the first.
    let mut other = ws_from(&server, ip("127.0.0.4"), None).await.expect("ws");
    assert_eq!(try_join(&mut other, "w").await, Ok(()));
    assert_eq!(stats(&server).await["admission"]["refused_ws_per_ip"], 7);
    server.shutdown().await;
}

#[tokio::test]
async fn joins_in_a_loop_from_one_host_are_refused_past_its_allowance_but_not_others() {
    let server = server_with(config_with(|c| {
        c.protection.join_burst_per_ip = 3;
        // So slow that the loop below earns nothing back.
        c.protection.join_rate_per_ip = 0.001;
    }))
    .await;
    let mut joined = 0;
    let mut refused = 0;
    for _ in 0..10 {
        // A fresh connection each time: closing them does not give joins back.
        let mut ws = ws_from(&server, ip("127.0.0.4"), None).await.expect("ws");
        match try_join(&mut ws, "j").await {
            Ok(()) => joined += 1,
            Err(Some(ErrorCode::TooManyJoins)) => refused += 1,
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!((joined, refused), (3, 7));
    let alice = join(&server, "j", "Alice").await;
    let bob = join(&server, "j", "Bob").await;
    assert!(hears(&bob, &alice, 10).await);
    assert_eq!(stats(&server).await["admission"]["refused_joins"], 7);
    server.shutdown().await;
}

#[tokio::test]
async fn members_who_never_connect_media_cannot_hold_a_room_full() {
    // Long enough for real members to connect on a busy machine; the squatters are dropped
    // within the tests' usual wait.
    let deadline = Duration::from_secs(5);
    let server = server_with(config_with(|c| {
        c.limits.max_room_members = 4;
        c.protection.media_deadline = deadline;
    }))
    .await;
    // Four hosts each join and then say nothing: the room is full.
    let mut squatters = Vec::new();
    for host in 5..=8 {
        let mut ws = ws_from(&server, ip(&format!("127.0.0.{host}")), None)
            .await
            .expect("ws");
        ws_join(&mut ws, "sq", "Squatter").await;
        squatters.push(ws);
    }
    match free4chat_client::Client::join(free4chat_client::ClientConfig::new(
        server.http_addr(),
        "sq",
        "Alice",
    ))
    .await
    {
        Err(ClientError::Refused(m)) => assert!(
            matches!(
                *m,
                ServerMsg::Error {
                    code: ErrorCode::RoomFull,
                    ..
                }
            ),
            "{m:?}"
        ),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("joined a full room"),
    }
    // At the deadline each squatter is told and dropped.
    for ws in &mut squatters {
        let error = next_matching(ws, |m| matches!(m, ServerMsg::Error { .. })).await;
        assert!(
            matches!(
                error,
                Some(ServerMsg::Error {
                    code: ErrorCode::MediaFailed,
                    ..
                })
            ),
            "{error:?}"
        );
        assert_eq!(
            next(ws).await,
            Some(ServerMsg::Bye {
                reason: ByeReason::MediaFailed
            })
        );
    }
    let alice = join(&server, "sq", "Alice").await;
    let bob = join(&server, "sq", "Bob").await;
    assert!(hears(&bob, &alice, 10).await);
    // Members whose media connected stay past the deadline.
    tokio::time::sleep(deadline + Duration::from_secs(1)).await;
    assert!(hears(&bob, &alice, count(&bob, &alice) + 10).await);
    assert!(hears(&alice, &bob, count(&alice, &bob) + 10).await);
    assert_eq!(server.counts().members, 2);
    assert_eq!(server.counts().media_deadline_dropped, 4);
    server.shutdown().await;
}

#[tokio::test]
async fn pages_of_other_sites_are_refused_and_our_own_and_listed_ones_are_not() {
    let server = server_with(config_with(|c| {
        c.protection.allowed_origins = vec!["https://embed.example".into()];
    }))
    .await;
    let local = ip("127.0.0.1");
    let mut evil = ws_from(&server, local, Some("https://evil.example"))
        .await
        .expect("ws");
    expect_error(&mut evil, ErrorCode::OriginNotAllowed).await;
    assert_eq!(next(&mut evil).await, None);
    // Our own page, a listed one, and a program that sends no Origin.
    let own = format!("http://127.0.0.1:{}", server.http_addr().port());
    for origin in [Some(own.as_str()), Some("https://embed.example"), None] {
        let mut ws = ws_from(&server, local, origin).await.expect("ws");
        ws_join(&mut ws, "o", "Alice").await;
    }
    assert_eq!(stats(&server).await["admission"]["refused_origin"], 1);
    server.shutdown().await;
}

#[tokio::test]
async fn a_members_turn_credentials_are_revoked_when_it_leaves() {
    let server = server_with(config_with(|c| {
        c.turn.turn_udp = Some("127.0.0.1:0".parse().unwrap());
    }))
    .await;
    let mut ws = ws(&server).await;
    let ServerMsg::Joined {
        id, ice_servers, ..
    } = ws_join(&mut ws, "t", "Alice").await
    else {
        unreachable!()
    };
    let username = ice_servers[0].username.clone().unwrap();
    assert!(username.ends_with(&format!(":{id}")), "{username}");
    send_text(&mut ws, r#"{"type":"leave"}"#).await;
    let revoked = || async { stats(&server).await["turn"]["revoked"] == 1 };
    assert!(wait_until(revoked).await, "{}", stats(&server).await);
    server.shutdown().await;
}
