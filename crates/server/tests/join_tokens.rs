//! Join tokens from an application that embeds the rooms: who gets in, under which name, and
//! what each refusal says, against a real server over a real WebSocket.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::*;
use free4chat::join_token::{Claims, Role};
use jsonwebtoken::{Algorithm, EncodingKey, Header};

const SECRET: &str = "the-embedding-applications-secret-0123456789";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn claims(room: &str, name: &str) -> Claims {
    Claims {
        room: room.into(),
        name: name.into(),
        role: Role::Member,
        exp: now() + 600,
        nbf: None,
    }
}

fn sign_with(claims: &Claims, secret: &str) -> String {
    let key = EncodingKey::from_secret(secret.as_bytes()).unwrap();
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &key).unwrap()
}

fn sign(claims: &Claims) -> String {
    sign_with(claims, SECRET)
}

fn with_secret(require: bool) -> free4chat::config::Config {
    config_with(|c| {
        c.tokens.token_secret = Some(SECRET.into());
        c.tokens.require_token = require;
    })
}

/// Sends `join` with these fields; returns the answer.
async fn join_with(ws: &mut Ws, fields: serde_json::Value) -> ServerMsg {
    let mut join = serde_json::json!({"type": "join", "v": 1});
    for (k, v) in fields.as_object().unwrap() {
        join[k] = v.clone();
    }
    send_text(ws, &join.to_string()).await;
    next(ws).await.expect("an answer")
}

fn code_of(msg: &ServerMsg) -> Option<ErrorCode> {
    match msg {
        ServerMsg::Error { code, .. } => Some(*code),
        _ => None,
    }
}

#[tokio::test]
async fn a_token_names_the_room_and_the_nickname_and_the_name_cannot_be_changed() {
    let server = server_with(with_secret(false)).await;
    let mut a = ws(&server).await;
    // No room and another name in the join: the token's are taken.
    let token = sign(&claims("standup", "Ann from Accounts"));
    let joined = join_with(
        &mut a,
        serde_json::json!({"token": token, "name": "Mallory"}),
    )
    .await;
    let ServerMsg::Joined { room, name, .. } = &joined else {
        panic!("expected joined, got {joined:?}")
    };
    assert_eq!(
        (room.as_str(), name.as_str()),
        ("standup", "Ann from Accounts")
    );

    // A room named beside the token must be the token's.
    let mut b = ws(&server).await;
    let token = sign(&claims("standup", "Bob"));
    let joined = join_with(
        &mut b,
        serde_json::json!({"token": token, "room": "standup"}),
    )
    .await;
    assert!(
        matches!(joined, ServerMsg::Joined { ref name, .. } if name == "Bob"),
        "{joined:?}"
    );
    let joined_a = next(&mut a).await;
    assert!(
        matches!(joined_a, Some(ServerMsg::MemberJoined { ref member }) if member.name == "Bob"),
        "{joined_a:?}"
    );

    // Its nickname is the token's for as long as it stays.
    send_text(&mut b, r#"{"type":"rename","name":"Mallory"}"#).await;
    expect_error(&mut b, ErrorCode::RenameNotAllowed).await;
    // A member without a token still may rename (the server does not require tokens).
    let mut c = ws(&server).await;
    ws_join(&mut c, "standup", "Carol").await;
    send_text(&mut c, r#"{"type":"rename","name":"Caro"}"#).await;
    let renamed = next_matching(&mut c, |m| matches!(m, ServerMsg::MemberRenamed { .. })).await;
    assert!(
        matches!(renamed, Some(ServerMsg::MemberRenamed { ref name, .. }) if name == "Caro"),
        "{renamed:?}"
    );
}

#[tokio::test]
async fn forged_tampered_expired_early_and_misdirected_tokens_are_refused_with_their_code() {
    let server = server_with(with_secret(false)).await;
    let mut ws = ws(&server).await;
    let good = claims("standup", "Ann");
    let expired = Claims {
        exp: now() - 120,
        ..good.clone()
    };
    let early = Claims {
        nbf: Some(now() + 600),
        ..good.clone()
    };
    let valid = sign(&good);
    let mut parts: Vec<String> = valid.split('.').map(str::to_owned).collect();
    // The payload of another member's token, with this one's signature.
    parts[1] = sign(&claims("standup", "Boss"))
        .split('.')
        .nth(1)
        .unwrap()
        .to_owned();
    let tampered = parts.join(".");
    let cases = [
        (
            sign_with(&good, "some-other-secret-of-enough-length-000"),
            ErrorCode::TokenInvalid,
        ),
        (
            sign_with(&expired, "some-other-secret-of-enough-length-000"),
            ErrorCode::TokenInvalid,
        ),
        (tampered, ErrorCode::TokenInvalid),
        ("not a token".to_owned(), ErrorCode::TokenInvalid),
        (sign(&claims("bad room!", "Ann")), ErrorCode::TokenInvalid),
        (sign(&expired), ErrorCode::TokenExpired),
        (sign(&early), ErrorCode::TokenExpired),
    ];
    for (token, code) in cases {
        let answer = join_with(&mut ws, serde_json::json!({"token": token})).await;
        assert_eq!(code_of(&answer), Some(code), "{token}: {answer:?}");
    }
    // A token for one room does not open another.
    let answer = join_with(
        &mut ws,
        serde_json::json!({"token": valid.clone(), "room": "boardroom"}),
    )
    .await;
    assert_eq!(
        code_of(&answer),
        Some(ErrorCode::TokenInvalid),
        "{answer:?}"
    );
    // Nobody got in on the way; the valid token still does.
    let answer = join_with(&mut ws, serde_json::json!({"token": valid})).await;
    let ServerMsg::Joined { room, members, .. } = &answer else {
        panic!("expected joined, got {answer:?}")
    };
    assert_eq!(room, "standup");
    assert!(members.is_empty(), "{members:?}");
}

#[tokio::test]
async fn with_require_token_only_joins_with_a_valid_token_get_in() {
    let server = server_with(with_secret(true)).await;
    let mut ws = ws(&server).await;
    let plain = join_with(
        &mut ws,
        serde_json::json!({"room": "standup", "name": "Ann"}),
    )
    .await;
    assert_eq!(code_of(&plain), Some(ErrorCode::TokenRequired), "{plain:?}");
    let forged = sign_with(
        &claims("standup", "Ann"),
        "some-other-secret-of-enough-length-000",
    );
    let answer = join_with(&mut ws, serde_json::json!({"token": forged})).await;
    assert_eq!(
        code_of(&answer),
        Some(ErrorCode::TokenInvalid),
        "{answer:?}"
    );
    let answer = join_with(
        &mut ws,
        serde_json::json!({"token": sign(&claims("standup", "Ann"))}),
    )
    .await;
    assert!(
        matches!(answer, ServerMsg::Joined { ref name, .. } if name == "Ann"),
        "{answer:?}"
    );
    assert_eq!(server.counts().members, 1);
}

#[tokio::test]
async fn a_server_without_a_token_key_refuses_tokens_and_takes_plain_joins() {
    let server = server().await;
    let mut ws = ws(&server).await;
    let answer = join_with(
        &mut ws,
        serde_json::json!({"token": sign(&claims("standup", "Ann"))}),
    )
    .await;
    assert_eq!(
        code_of(&answer),
        Some(ErrorCode::TokenInvalid),
        "{answer:?}"
    );
    ws_join(&mut ws, "standup", "Ann").await;
}

#[tokio::test]
async fn require_token_without_a_key_does_not_start() {
    let config = config_with(|c| c.tokens.require_token = true);
    assert!(free4chat::Server::start(&config).await.is_err());
}
