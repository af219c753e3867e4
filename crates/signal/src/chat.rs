//! The chat's messages as the room keeps and sends them, with their replies, reactions, edits
//! and deletions, and the fixed set of reactions.

use serde::{Deserialize, Serialize};

use crate::{
    ClientMsg, ErrorCode, MemberId, ValidationError, validate_chat_text, validate_client_ref,
};

/// The reactions a chat message may get: a small fixed set, the same in every client.
pub const REACTIONS: [&str; 6] = ["👍", "❤️", "😂", "😮", "😢", "🙏"];

/// The most members one reaction of one message records; a further one is refused
/// (`too_many_reactions`). Bounds a stored message: six reactions of this many.
pub const MAX_REACTORS: usize = 50;

/// One chat message as stored in the room and sent to clients.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Increases by one per message within a room: the message's id there.
    pub seq: u64,
    pub from: MemberId,
    /// The sender's nickname at the time of sending.
    pub name: String,
    /// Empty once deleted.
    pub text: String,
    /// Milliseconds since the Unix epoch, server clock.
    pub ts: u64,
    /// The sender's tag (see [`crate::Member::tag`]), if they had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The `seq` of the message this one answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<u64>,
    /// Who reacted how, in the order the reactions were first given; none without any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reactions: Vec<Reaction>,
    /// When the text was last edited (ms since the Unix epoch), if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited: Option<u64>,
    /// Deleted by its author: no text, no reactions.
    #[serde(default, skip_serializing_if = "is_false")]
    pub deleted: bool,
}

/// One reaction to a message and the members who gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reaction {
    /// One of [`REACTIONS`].
    pub emoji: String,
    /// At most [`MAX_REACTORS`], in the order they reacted.
    pub by: Vec<Reactor>,
}

/// A member who reacted: known by their tag if they have one (so that it is the same person
/// after they reconnect), else by their member id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reactor {
    pub id: MemberId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

impl Reactor {
    /// Whether this is the same person as `other`: the same tag, or without tags the same id.
    pub fn same_as(&self, other: &Reactor) -> bool {
        match (&self.tag, &other.tag) {
            (Some(a), Some(b)) => a == b,
            (None, None) => self.id == other.id,
            _ => false,
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A reaction must be one of [`REACTIONS`].
pub fn validate_reaction(emoji: &str) -> Result<(), ValidationError> {
    if REACTIONS.contains(&emoji) {
        Ok(())
    } else {
        Err(ValidationError {
            code: ErrorCode::InvalidReaction,
            message: "a reaction is one of the fixed set",
        })
    }
}

/// Checks a chat message a client sent (`chat`, `chat_edit`, `chat_delete`, `chat_react`): its
/// text, `client_ref` and reaction. Whether the message it names exists, and is theirs, is for
/// the room to say. Any other message passes.
pub fn check_chat_msg(msg: &ClientMsg) -> Result<(), ValidationError> {
    match msg {
        ClientMsg::Chat {
            text, client_ref, ..
        } => {
            validate_chat_text(text)?;
            client_ref.as_deref().map_or(Ok(()), validate_client_ref)
        }
        ClientMsg::ChatEdit { text, .. } => validate_chat_text(text),
        ClientMsg::ChatReact { emoji, .. } => validate_reaction(emoji),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_messages_are_checked_as_their_text_and_reaction_require() {
        let chat = |text: &str, client_ref: Option<&str>| ClientMsg::Chat {
            text: text.into(),
            client_ref: client_ref.map(Into::into),
            reply_to: Some(1),
        };
        assert!(check_chat_msg(&chat("hi", Some("r1"))).is_ok());
        assert_eq!(
            check_chat_msg(&chat(" ", None)).unwrap_err().code,
            ErrorCode::ChatEmpty
        );
        assert_eq!(
            check_chat_msg(&chat("hi", Some("no spaces")))
                .unwrap_err()
                .code,
            ErrorCode::InvalidClientRef
        );
        let edit = |text: &str| ClientMsg::ChatEdit {
            seq: 1,
            text: text.into(),
        };
        assert!(check_chat_msg(&edit("better")).is_ok());
        assert_eq!(
            check_chat_msg(&edit(&"a".repeat(2001))).unwrap_err().code,
            ErrorCode::ChatTooLong
        );
        let react = |emoji: &str| ClientMsg::ChatReact {
            seq: 1,
            emoji: emoji.into(),
            on: true,
        };
        assert!(check_chat_msg(&react("🙏")).is_ok());
        assert_eq!(
            check_chat_msg(&react("<script>")).unwrap_err().code,
            ErrorCode::InvalidReaction
        );
        assert!(check_chat_msg(&ClientMsg::ChatDelete { seq: 1 }).is_ok());
    }

    #[test]
    fn only_the_fixed_reactions_are_taken() {
        for emoji in REACTIONS {
            assert!(validate_reaction(emoji).is_ok());
        }
        for bad in ["", "👍👍", "x", "<b>", "👎"] {
            assert_eq!(
                validate_reaction(bad).unwrap_err().code,
                ErrorCode::InvalidReaction
            );
        }
    }

    #[test]
    fn a_plain_message_has_no_reply_reactions_or_marks_on_the_wire() {
        let m = ChatMessage {
            seq: 1,
            name: "Ann".into(),
            text: "hi".into(),
            ..ChatMessage::default()
        };
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(
            json,
            r#"{"seq":1,"from":0,"name":"Ann","text":"hi","ts":0}"#
        );
        let back: ChatMessage = serde_json::from_str(&json).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn a_reactor_is_the_same_person_by_tag_or_else_by_id() {
        let tagged = |id, tag: &str| Reactor {
            id: MemberId(id),
            tag: Some(tag.into()),
        };
        let bare = |id| Reactor {
            id: MemberId(id),
            tag: None,
        };
        assert!(tagged(1, "a").same_as(&tagged(2, "a")));
        assert!(!tagged(1, "a").same_as(&tagged(1, "b")));
        assert!(bare(3).same_as(&bare(3)));
        assert!(!bare(3).same_as(&tagged(3, "a")));
    }
}
