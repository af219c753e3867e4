//! The room actor's chat: new messages, replies, edits, deletions and reactions, each told to
//! the room and to its observers (a cluster keeps the chat in Redis).

use free4chat_signal::{ClientMsg, ErrorCode, MemberId, Reactor, ServerMsg};

use super::Room;

impl Room {
    /// One of member `member`'s chat messages (already checked as the connection checks them).
    /// `name` and `tag` are theirs now.
    pub(super) fn chat_msg(
        &mut self,
        member: MemberId,
        name: String,
        tag: Option<String>,
        msg: ClientMsg,
    ) {
        let who = Reactor { id: member, tag };
        let changed = match msg {
            ClientMsg::Chat {
                text,
                client_ref,
                reply_to,
            } => {
                match self.chat.add(member, name, who.tag, text, reply_to) {
                    Ok(message) => {
                        for observer in &self.local.observers {
                            observer.chat(&self.name, &message);
                        }
                        let chat = ServerMsg::Chat {
                            message: message.clone(),
                        };
                        self.broadcast(Some(member), &chat);
                        self.send_to(
                            member,
                            ServerMsg::ChatAck {
                                client_ref,
                                message,
                            },
                        );
                    }
                    Err(code) => self.refuse_chat(member, code),
                }
                return;
            }
            ClientMsg::ChatEdit { seq, text } => self.chat.edit(seq, &who, text).map(Some),
            ClientMsg::ChatDelete { seq } => self.chat.delete(seq, &who).map(Some),
            ClientMsg::ChatReact { seq, emoji, on } => self.chat.react(seq, who, &emoji, on),
            _ => return,
        };
        match changed {
            Ok(Some(message)) => {
                let history = self.chat.history();
                for observer in &self.local.observers {
                    observer.chat_changed(&self.name, &history);
                }
                self.broadcast(None, &ServerMsg::ChatUpdated { message });
            }
            Ok(None) => {}
            Err(code) => self.refuse_chat(member, code),
        }
    }

    fn refuse_chat(&mut self, member: MemberId, code: ErrorCode) {
        let message = match code {
            ErrorCode::ChatNotFound => "no such message in the room's chat",
            ErrorCode::NotAuthor => "only its author may change a message",
            ErrorCode::TooManyReactions => "that reaction has as many members as it may",
            _ => "refused",
        };
        self.send_to(member, ServerMsg::error(code, message));
    }
}
