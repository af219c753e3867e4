//! The admin API: its token, what it shows of the rooms, and each action, on real members.

mod common;

use std::time::Duration;

use common::*;
use free4chat_client::ClientState;
use free4chat_signal::{ByeReason, ClientMsg};
use serde_json::{Value, json};

const TOKEN: &str = "a-token-of-some-length";

async fn admin_server() -> free4chat::Server {
    server_with(config_with(|c| {
        c.admin.admin_listen = Some("127.0.0.1:0".parse().unwrap());
        c.admin.admin_token = Some(TOKEN.into());
    }))
    .await
}

/// A request to the admin API: its status and JSON body (null when empty).
async fn call(
    server: &free4chat::Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let url = format!("http://{}{path}", server.admin_addr().unwrap());
    let client = reqwest::Client::new();
    let mut req = client.request(method.parse().unwrap(), url);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn admin(
    server: &free4chat::Server,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    call(server, method, path, Some(TOKEN), body).await
}

fn got(s: &ClientState, f: impl Fn(&ServerMsg) -> bool) -> bool {
    s.messages.iter().any(f)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_token_the_admin_api_answers_401_and_nothing_else() {
    let server = admin_server().await;
    for token in [None, Some("wrong"), Some("a-token-of-some-lengthX")] {
        let (status, body) = call(&server, "GET", "/admin/api/rooms", token, None).await;
        assert_eq!(status, 401, "{token:?}");
        assert_eq!(body["error"], "unauthorized");
        let (status, _) = call(&server, "POST", "/admin/api/rooms/r/close", token, None).await;
        assert_eq!(status, 401);
    }
    // The description of the API is open, and names every path.
    let (status, spec) = call(&server, "GET", "/admin/api/openapi.json", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(spec["openapi"], "3.0.3");
    assert_eq!(spec["paths"].as_object().unwrap().len(), 8);
    // The node's last hour: a first sample is taken as the server starts.
    let sampled = wait_until(|| async {
        let (_, h) = call(&server, "GET", "/admin/api/history", Some(TOKEN), None).await;
        h["samples"].as_array().is_some_and(|s| !s.is_empty())
    })
    .await;
    assert!(sampled);
    let (status, history) = call(&server, "GET", "/admin/api/history", Some(TOKEN), None).await;
    assert_eq!(status, 200);
    assert_eq!(history["interval_seconds"], 10);
    let first = &history["samples"][0];
    assert_eq!(
        (first["rooms"].as_u64(), first["members"].as_u64()),
        (Some(0), Some(0)),
        "{history}"
    );
    let (status, _) = call(&server, "GET", "/admin/api/history", None, None).await;
    assert_eq!(status, 401);
    // The public listener has none of it.
    let (head, _) = http_get(&server, "/admin/api/rooms").await;
    assert!(!head.starts_with("HTTP/1.1 200"), "{head}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_sees_the_members_mutes_one_for_everyone_sends_a_notice_limits_removes_and_closes()
 {
    let server = admin_server().await;
    let ann = join(&server, "lobby", "Ann").await;
    let ben = join(&server, "lobby", "Ben").await;
    assert!(hears(&ann, &ben, 20).await && hears(&ben, &ann, 20).await);

    let (status, rooms) = admin(&server, "GET", "/admin/api/rooms", None).await;
    assert_eq!(status, 200);
    let room = &rooms["rooms"][0];
    assert_eq!(room["room"], "lobby");
    let names: Vec<_> = room["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].clone())
        .collect();
    assert_eq!(names, vec![json!("Ann"), json!("Ben")]);
    // Ann made the room: she moderates it; it is public and open.
    assert_eq!(room["members"][0]["moderator"], true, "{room}");
    assert_eq!(room["members"][1]["moderator"], false, "{room}");
    assert_eq!(
        (room["private"].clone(), room["locked"].clone()),
        (json!(false), json!(false))
    );
    let (status, _) = admin(&server, "GET", "/admin/api/rooms/nowhere", None).await;
    assert_eq!(status, 404);

    // Ben muted for everyone: Ann stops hearing him, Ben cannot unmute, everyone is told.
    let ben_path = format!("/admin/api/rooms/lobby/members/{}", ben.id.0);
    let (status, _) = admin(
        &server,
        "POST",
        &format!("{ben_path}/mute"),
        Some(json!({"muted": true})),
    )
    .await;
    assert_eq!(status, 204);
    let forced = |s: &ClientState| {
        got(
            s,
            |m| matches!(m, ServerMsg::Mute { id, muted: true, forced: true } if *id == ben.id),
        )
    };
    assert!(ann.wait_for(WAIT, forced).await && ben.wait_for(WAIT, forced).await);
    // What was on its way arrives; then nothing for a second.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = count(&ann, &ben);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(count(&ann, &ben) <= before + 2, "Ann hears Ben no more");
    let ann_heard = count(&ben, &ann);
    assert!(
        hears(&ben, &ann, ann_heard + 20).await,
        "Ben still hears Ann"
    );
    ben.send(ClientMsg::Mute { muted: false }).await;
    let refused = |s: &ClientState| {
        got(s, |m| {
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
    let (_, room) = admin(&server, "GET", "/admin/api/rooms/lobby", None).await;
    assert_eq!(room["members"][1]["muted_for_everyone"], true, "{room}");
    // Lifted: Ben unmutes, and Ann hears him again.
    admin(
        &server,
        "POST",
        &format!("{ben_path}/mute"),
        Some(json!({"muted": false})),
    )
    .await;
    ben.send(ClientMsg::Mute { muted: false }).await;
    let heard = count(&ann, &ben);
    assert!(hears(&ann, &ben, heard + 20).await, "Ann hears Ben again");

    // A notice reaches everyone; a bad one is refused.
    let (status, _) = admin(
        &server,
        "POST",
        "/admin/api/rooms/lobby/notice",
        Some(json!({"text": "closing at six"})),
    )
    .await;
    assert_eq!(status, 204);
    let notice = |s: &ClientState| {
        got(
            s,
            |m| matches!(m, ServerMsg::Notice { text } if text == "closing at six"),
        )
    };
    assert!(ann.wait_for(WAIT, notice).await && ben.wait_for(WAIT, notice).await);
    let (status, body) = admin(
        &server,
        "POST",
        "/admin/api/rooms/lobby/notice",
        Some(json!({"text": ""})),
    )
    .await;
    assert_eq!((status, body["error"].clone()), (400, json!("bad_request")));
    let (status, _) = admin(
        &server,
        "POST",
        "/admin/api/rooms/lobby/notice",
        Some(json!({"txt": 1})),
    )
    .await;
    assert_eq!(status, 400);

    // A room held at two refuses a third; lifted, it takes her.
    let (status, _) = admin(
        &server,
        "PUT",
        "/admin/api/rooms/lobby/limits",
        Some(json!({"max_members": 2})),
    )
    .await;
    assert_eq!(status, 204);
    let mut ws = ws(&server).await;
    send_text(
        &mut ws,
        r#"{"type":"join","v":1,"room":"lobby","name":"Cat"}"#,
    )
    .await;
    expect_error(&mut ws, ErrorCode::RoomFull).await;
    admin(
        &server,
        "PUT",
        "/admin/api/rooms/lobby/limits",
        Some(json!({"max_members": null})),
    )
    .await;
    let cat = join(&server, "lobby", "Cat").await;

    // Cat removed: told why; an unknown member or room is 404.
    let (status, _) = admin(
        &server,
        "DELETE",
        &format!("/admin/api/rooms/lobby/members/{}", cat.id.0),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let removed = |s: &ClientState| {
        got(s, |m| {
            matches!(
                m,
                ServerMsg::Bye {
                    reason: ByeReason::Removed
                }
            )
        })
    };
    assert!(cat.wait_for(WAIT, removed).await);
    for path in [
        "/admin/api/rooms/lobby/members/999",
        "/admin/api/rooms/lobby/members/x",
        "/admin/api/rooms/none/members/1",
    ] {
        assert_eq!(admin(&server, "DELETE", path, None).await.0, 404, "{path}");
    }

    // Closed: everyone is told, and the room is gone.
    let (status, _) = admin(&server, "POST", "/admin/api/rooms/lobby/close", None).await;
    assert_eq!(status, 204);
    let closed = |s: &ClientState| {
        got(s, |m| {
            matches!(
                m,
                ServerMsg::Bye {
                    reason: ByeReason::RoomClosed
                }
            )
        })
    };
    assert!(ann.wait_for(WAIT, closed).await && ben.wait_for(WAIT, closed).await);
    let gone =
        || async { admin(&server, "GET", "/admin/api/rooms", None).await.1["rooms"] == json!([]) };
    assert!(wait_until(gone).await);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_is_served_without_the_token_under_a_policy_that_keeps_it_to_its_listener() {
    let server = admin_server().await;
    let base = format!("http://{}", server.admin_addr().unwrap());
    let client = reqwest::Client::new();
    let page = client.get(format!("{base}/admin")).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("connect-src 'self'"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(html.contains("/admin/console/console.js"), "{html}");
    for (file, mime) in [("console.js", "javascript"), ("console.css", "text/css")] {
        let r = client
            .get(format!("{base}/admin/console/{file}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{file}");
        let kind = r.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(kind.contains(mime), "{file}: {kind}");
    }
    let r = client
        .get(format!("{base}/admin/console/..%2Fsrc%2Fmain.rs"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    // The page is open; what it shows still needs the token.
    let (status, _) = call(&server, "GET", "/admin/api/rooms", None, None).await;
    assert_eq!(status, 401);
    // The public listener has no console.
    let (head, _) = http_get(&server, "/admin/console/console.js").await;
    assert!(!head.contains("javascript"), "{head}");
    server.shutdown().await;
}
