//! The chat beyond plain messages, over the WebSocket: replies, reactions, and a message's
//! author (known by their client key, on any connection) editing or deleting it.

mod common;

use common::*;
use free4chat_signal::{ChatMessage, MAX_REACTORS};

const ANN_KEY: &str = "annannannannannannann0";

/// Joins `room` as `name`, with `key` if given; returns the connection once `joined` came.
async fn join_with(server: &free4chat::Server, room: &str, name: &str, key: Option<&str>) -> Ws {
    let mut w = ws(server).await;
    let mut join = serde_json::json!({"type":"join","v":1,"room":room,"name":name});
    if let Some(key) = key {
        join["key"] = key.into();
    }
    send_text(&mut w, &join.to_string()).await;
    next_matching(&mut w, |m| matches!(m, ServerMsg::Joined { .. }))
        .await
        .expect("joined");
    w
}

/// The next chat message (new or changed) on `w`, skipping everything else.
async fn next_chat(w: &mut Ws) -> ChatMessage {
    match next_matching(w, |m| {
        matches!(
            m,
            ServerMsg::Chat { .. }
                | ServerMsg::ChatAck { .. }
                | ServerMsg::ChatUpdated { .. }
                | ServerMsg::Error { .. }
        )
    })
    .await
    {
        Some(
            ServerMsg::Chat { message }
            | ServerMsg::ChatAck { message, .. }
            | ServerMsg::ChatUpdated { message },
        ) => message,
        other => panic!("expected a chat message, got {other:?}"),
    }
}

/// The next error on `w`, skipping everything else.
async fn next_error(w: &mut Ws) -> ErrorCode {
    match next_matching(w, |m| matches!(m, ServerMsg::Error { .. })).await {
        Some(ServerMsg::Error { code, .. }) => code,
        other => panic!("expected an error, got {other:?}"),
    }
}

fn generous() -> free4chat::config::Config {
    config_with(|c| {
        c.limits.message_burst = 500;
        c.limits.chat_burst = 500;
        c.protection.join_burst_per_ip = 200;
    })
}

#[tokio::test]
async fn a_reply_names_its_message_and_one_to_nothing_is_refused() {
    let server = server_with(generous()).await;
    let mut ann = join_with(&server, "replies", "Ann", None).await;
    let mut ben = join_with(&server, "replies", "Ben", None).await;
    send_text(&mut ann, r#"{"type":"chat","text":"a question"}"#).await;
    let q = next_chat(&mut ben).await;
    next_chat(&mut ann).await; // the ack
    send_text(
        &mut ben,
        &format!(
            r#"{{"type":"chat","text":"an answer","reply_to":{}}}"#,
            q.seq
        ),
    )
    .await;
    let a = next_chat(&mut ann).await;
    assert_eq!((a.text.as_str(), a.reply_to), ("an answer", Some(q.seq)));
    next_chat(&mut ben).await; // the ack
    send_text(
        &mut ben,
        r#"{"type":"chat","text":"to what?","reply_to":999}"#,
    )
    .await;
    assert_eq!(next_error(&mut ben).await, ErrorCode::ChatNotFound);
    server.shutdown().await;
}

#[tokio::test]
async fn only_the_author_edits_or_deletes_and_a_key_makes_them_the_author_on_a_new_connection() {
    let server = server_with(generous()).await;
    let mut ann = join_with(&server, "edits", "Ann", Some(ANN_KEY)).await;
    let mut ben = join_with(&server, "edits", "Ben", None).await;
    send_text(&mut ann, r#"{"type":"chat","text":"helo"}"#).await;
    let m = next_chat(&mut ben).await;

    // Ben may not change Ann's message.
    send_text(
        &mut ben,
        &format!(
            r#"{{"type":"chat_edit","seq":{},"text":"mine now"}}"#,
            m.seq
        ),
    )
    .await;
    assert_eq!(next_error(&mut ben).await, ErrorCode::NotAuthor);
    send_text(
        &mut ben,
        &format!(r#"{{"type":"chat_delete","seq":{}}}"#, m.seq),
    )
    .await;
    assert_eq!(next_error(&mut ben).await, ErrorCode::NotAuthor);

    // Ann, back on a new connection with her key, edits it: everyone gets the message as now.
    drop(ann);
    let mut ann = join_with(&server, "edits", "Ann", Some(ANN_KEY)).await;
    send_text(
        &mut ann,
        &format!(r#"{{"type":"chat_edit","seq":{},"text":"hello"}}"#, m.seq),
    )
    .await;
    let edited = next_chat(&mut ben).await;
    assert_eq!(edited.seq, m.seq);
    assert_eq!(edited.text, "hello");
    assert!(edited.edited.is_some());
    assert_eq!(next_chat(&mut ann).await, edited, "the editor is told too");
    // An edit is checked as chat text is.
    send_text(
        &mut ann,
        &format!(r#"{{"type":"chat_edit","seq":{},"text":"  "}}"#, m.seq),
    )
    .await;
    assert_eq!(next_error(&mut ann).await, ErrorCode::ChatEmpty);

    // Deleted: the text goes, the place stays, and it can be changed no more.
    send_text(
        &mut ann,
        &format!(r#"{{"type":"chat_delete","seq":{}}}"#, m.seq),
    )
    .await;
    let gone = next_chat(&mut ben).await;
    assert!(gone.deleted && gone.text.is_empty(), "{gone:?}");
    next_chat(&mut ann).await;
    send_text(
        &mut ann,
        &format!(r#"{{"type":"chat_edit","seq":{},"text":"back"}}"#, m.seq),
    )
    .await;
    assert_eq!(next_error(&mut ann).await, ErrorCode::ChatNotFound);
    let mut late = ws(&server).await;
    let ServerMsg::Joined { chat, .. } = ws_join(&mut late, "edits", "Late").await else {
        unreachable!()
    };
    assert_eq!(chat, vec![gone], "a latecomer sees the message deleted");
    server.shutdown().await;
}

#[tokio::test]
async fn reactions_come_from_a_fixed_set_once_per_person_and_are_bounded() {
    let server = server_with(generous()).await;
    let mut ann = join_with(&server, "reacts", "Ann", None).await;
    let mut ben = join_with(&server, "reacts", "Ben", None).await;
    send_text(&mut ann, r#"{"type":"chat","text":"news"}"#).await;
    let m = next_chat(&mut ben).await;
    next_chat(&mut ann).await; // the ack
    let react = |emoji: &str, on: bool| {
        format!(
            r#"{{"type":"chat_react","seq":{},"emoji":"{emoji}","on":{on}}}"#,
            m.seq
        )
    };
    send_text(&mut ben, &react("👍", true)).await;
    let liked = next_chat(&mut ann).await;
    assert_eq!(liked.reactions.len(), 1);
    assert_eq!(liked.reactions[0].emoji, "👍");
    assert_eq!(liked.reactions[0].by.len(), 1);
    next_chat(&mut ben).await;
    // Twice is once: nothing changes, nobody is told.
    send_text(&mut ben, &react("👍", true)).await;
    send_text(&mut ben, &react("👎", true)).await;
    assert_eq!(next_error(&mut ben).await, ErrorCode::InvalidReaction);
    send_text(&mut ben, &react("👍", false)).await;
    let back = next_chat(&mut ann).await;
    assert!(back.reactions.is_empty(), "{back:?}");
    send_text(
        &mut ben,
        r#"{"type":"chat_react","seq":77,"emoji":"👍","on":true}"#,
    )
    .await;
    assert_eq!(next_error(&mut ben).await, ErrorCode::ChatNotFound);

    // As many members as a reaction records, then one more is refused.
    let mut crowd = Vec::new();
    for i in 0..MAX_REACTORS {
        let mut w = join_with(&server, "reacts", &format!("P{i}"), None).await;
        send_text(&mut w, &react("🙏", true)).await;
        crowd.push(w);
    }
    let full = loop {
        let got = next_chat(&mut ann).await;
        if got
            .reactions
            .first()
            .is_some_and(|r| r.by.len() == MAX_REACTORS)
        {
            break got;
        }
    };
    assert_eq!(full.reactions[0].emoji, "🙏");
    send_text(&mut ann, &react("🙏", true)).await;
    assert_eq!(next_error(&mut ann).await, ErrorCode::TooManyReactions);
    server.shutdown().await;
}
