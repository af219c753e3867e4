//! The envelopes nodes send each other over Redis pub/sub, one channel per node.
//!
//! The node holding a member's WebSocket forwards the member's messages to the node holding
//! the member's room, and that node sends the room's messages for the member back the same
//! way. Every envelope read from Redis is hostile input: bounded in size, parsed with errors,
//! and what it carries is checked again where it is used.

use free4chat_signal::{ClientMsg, ErrorCode, MemberId, RoomId, ServerMsg};
use serde::{Deserialize, Serialize};

use super::NodeId;

/// The largest envelope read. A `joined` with a full page of members and a chat history of
/// long messages fits with room to spare.
pub const MAX_ENVELOPE: usize = 4 * 1024 * 1024;
/// An envelope of messages for one member is sent once it holds this many bytes.
pub const BATCH_BYTES: usize = 256 * 1024;
/// The most messages one envelope for a member carries.
pub const MAX_BATCH: usize = 256;
/// The most rooms one node's list may hold.
pub const MAX_LISTED_ROOMS: usize = 100_000;

/// One message on the bus, from one node to another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// The sending node: where answers go.
    pub from: NodeId,
    pub body: Body,
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case", deny_unknown_fields)]
pub enum Body {
    /// Take `member` into `room`, known by the id the sender made: into the room running
    /// there, or, if it runs nowhere, a new one there (unless the receiver takes no new room).
    Join {
        req: u64,
        member: MemberId,
        room: String,
        name: String,
        muted: bool,
        host: Option<String>,
        /// The member's tag (`rooms::tag`), if their client sent a key.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tag: Option<String>,
        /// The member's join token made it a moderator of its room.
        #[serde(default, skip_serializing_if = "is_false")]
        moderator: bool,
    },
    /// The answer to `join`.
    JoinReply {
        req: u64,
        outcome: JoinOutcome,
    },
    /// A member's message to their room; `seq` counts from 1 per member.
    ToRoom {
        member: MemberId,
        seq: u64,
        msg: ClientMsg,
    },
    /// The member's connection ended (`said_leave`: they said `leave`).
    Leave {
        member: MemberId,
        said_leave: bool,
    },
    /// The room's messages for a member, in order; `seq` counts envelopes from 1 per member.
    ToMember {
        member: MemberId,
        seq: u64,
        msgs: Vec<ServerMsg>,
    },
    /// The room let go of the member (after any `bye` it had for them): end their connection.
    Gone {
        member: MemberId,
    },
    /// Asks for the node's rooms.
    ListRooms {
        req: u64,
    },
    RoomList {
        req: u64,
        rooms: Vec<ListedRoom>,
    },
}

/// What became of a relayed join.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case", deny_unknown_fields)]
pub enum JoinOutcome {
    /// In the room: its `joined` comes in a `to_member`.
    Joined,
    Refused {
        code: ErrorCode,
        message: String,
    },
    /// Another node holds the room.
    Elsewhere {
        owner: NodeId,
    },
    /// This node takes no new room (draining, or the room is closing): choose again.
    NotHere,
}

/// A room as a node lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListedRoom {
    pub room: String,
    pub id: RoomId,
    pub members: usize,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    #[error("envelope of {0} bytes is too large")]
    TooLarge(usize),
    #[error("envelope does not parse: {0}")]
    Malformed(String),
    #[error("envelope is out of bounds: {0}")]
    OutOfBounds(&'static str),
}

impl Envelope {
    pub fn new(from: &NodeId, body: Body) -> Envelope {
        Envelope {
            from: from.clone(),
            body,
        }
    }

    /// Reads an envelope: bounded, parsed, its counts checked.
    pub fn parse(bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
        if bytes.len() > MAX_ENVELOPE {
            return Err(EnvelopeError::TooLarge(bytes.len()));
        }
        let envelope: Envelope =
            serde_json::from_slice(bytes).map_err(|e| EnvelopeError::Malformed(e.to_string()))?;
        match &envelope.body {
            Body::ToMember { msgs, seq, .. } => {
                if msgs.is_empty() || msgs.len() > MAX_BATCH {
                    return Err(EnvelopeError::OutOfBounds("messages in one envelope"));
                }
                if *seq == 0 {
                    return Err(EnvelopeError::OutOfBounds("sequence number"));
                }
            }
            Body::ToRoom { seq: 0, .. } => {
                return Err(EnvelopeError::OutOfBounds("sequence number"));
            }
            Body::RoomList { rooms, .. } if rooms.len() > MAX_LISTED_ROOMS => {
                return Err(EnvelopeError::OutOfBounds("rooms in a list"));
            }
            _ => {}
        }
        Ok(envelope)
    }

    pub fn to_json(&self) -> String {
        // Plain structs with string keys always serialise.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Gathers the room's messages for one remote member into envelopes of bounded size.
#[derive(Debug, Default)]
pub struct Batch {
    msgs: Vec<ServerMsg>,
    bytes: usize,
}

impl Batch {
    /// Adds a message; returns whether the batch should now be sent.
    pub fn push(&mut self, msg: ServerMsg) -> bool {
        // The size of its JSON, as the envelope will hold it.
        self.bytes += serde_json::to_string(&msg).map_or(0, |s| s.len());
        self.msgs.push(msg);
        self.is_full()
    }

    pub fn is_full(&self) -> bool {
        self.bytes >= BATCH_BYTES || self.msgs.len() >= MAX_BATCH
    }

    pub fn is_empty(&self) -> bool {
        self.msgs.is_empty()
    }

    pub fn take(&mut self) -> Vec<ServerMsg> {
        self.bytes = 0;
        std::mem::take(&mut self.msgs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use free4chat_signal::ByeReason;

    fn node(id: &str) -> NodeId {
        NodeId::parse(id).unwrap()
    }

    #[test]
    fn every_envelope_reads_back_as_it_was_written() {
        let bodies = vec![
            Body::Join {
                req: 1,
                member: MemberId(5),
                room: "practice".into(),
                name: "Ann".into(),
                muted: true,
                host: Some("chat.example".into()),
                tag: Some("0123456789abcdef0123456789abcdef".into()),
                moderator: true,
            },
            Body::JoinReply {
                req: 1,
                outcome: JoinOutcome::Refused {
                    code: ErrorCode::RoomFull,
                    message: "full".into(),
                },
            },
            Body::JoinReply {
                req: 2,
                outcome: JoinOutcome::Elsewhere { owner: node("n3") },
            },
            Body::ToRoom {
                member: MemberId(5),
                seq: 1,
                msg: ClientMsg::Mute { muted: false },
            },
            Body::Leave {
                member: MemberId(5),
                said_leave: true,
            },
            Body::ToMember {
                member: MemberId(5),
                seq: 3,
                msgs: vec![
                    ServerMsg::Pong,
                    ServerMsg::Bye {
                        reason: ByeReason::ServerShutdown,
                    },
                ],
            },
            Body::Gone {
                member: MemberId(5),
            },
            Body::ListRooms { req: 9 },
            Body::RoomList {
                req: 9,
                rooms: vec![ListedRoom {
                    room: "practice".into(),
                    id: RoomId(8),
                    members: 2,
                }],
            },
        ];
        for body in bodies {
            let e = Envelope::new(&node("n1"), body);
            assert_eq!(Envelope::parse(e.to_json().as_bytes()).unwrap(), e);
        }
    }

    #[test]
    fn hostile_envelopes_are_refused_with_a_reason_and_never_panic() {
        let big = vec![b'x'; MAX_ENVELOPE + 1];
        assert_eq!(
            Envelope::parse(&big),
            Err(EnvelopeError::TooLarge(MAX_ENVELOPE + 1))
        );
        let cases = [
            "",
            "{",
            "[]",
            "null",
            r#"{"from":"n1"}"#,
            r#"{"from":"n1","body":{"t":"explode"}}"#,
            r#"{"from":"../../etc","body":{"t":"list_rooms","req":1}}"#,
            r#"{"from":"n1","body":{"t":"list_rooms","req":-1}}"#,
            r#"{"from":"n1","body":{"t":"list_rooms","req":1,"more":1}}"#,
            r#"{"from":"n1","body":{"t":"to_member","member":1,"seq":1,"msgs":[]}}"#,
            r#"{"from":"n1","body":{"t":"to_member","member":1,"seq":0,"msgs":[{"type":"pong"}]}}"#,
            r#"{"from":"n1","body":{"t":"to_room","member":1,"seq":0,"msg":{"type":"leave"}}}"#,
            r#"{"from":"n1","body":{"t":"to_room","member":1,"seq":1,"msg":{"type":"nope"}}}"#,
            r#"{"from":"n1","body":{"t":"join_reply","req":1,"outcome":{"outcome":"refused","code":"made_up","message":""}}}"#,
        ];
        for case in cases {
            assert!(Envelope::parse(case.as_bytes()).is_err(), "{case}");
        }
        let many = format!(
            r#"{{"from":"n1","body":{{"t":"to_member","member":1,"seq":1,"msgs":[{}]}}}}"#,
            vec![r#"{"type":"pong"}"#; MAX_BATCH + 1].join(",")
        );
        assert_eq!(
            Envelope::parse(many.as_bytes()),
            Err(EnvelopeError::OutOfBounds("messages in one envelope"))
        );
    }

    #[test]
    fn a_batch_is_sent_when_it_holds_enough_bytes_or_messages() {
        let mut batch = Batch::default();
        assert!(batch.is_empty());
        for _ in 0..MAX_BATCH - 1 {
            assert!(!batch.push(ServerMsg::Pong));
        }
        assert!(batch.push(ServerMsg::Pong));
        assert_eq!(batch.take().len(), MAX_BATCH);
        assert!(batch.is_empty() && !batch.is_full());
        let long = ServerMsg::Offer {
            sdp: "a".repeat(BATCH_BYTES),
        };
        assert!(batch.push(long));
    }
}
