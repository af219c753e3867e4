//! A room's chat: the last messages, kept for those who join later, numbered in order; and
//! what may change in them: replies, reactions, and their authors' edits and deletions.

use std::collections::VecDeque;
use std::time::{SystemTime, UNIX_EPOCH};

use free4chat_signal::{
    CHAT_HISTORY_LEN, ChatMessage, ErrorCode, MAX_REACTORS, MemberId, Reaction, Reactor,
};

#[derive(Debug, Default)]
pub struct ChatLog {
    messages: VecDeque<ChatMessage>,
    /// The number of the last message; increases by one per message.
    seq: u64,
}

impl ChatLog {
    /// A log that goes on from `history` (oldest first, as stored by the room's earlier
    /// node): its last messages kept, its numbering continued.
    pub fn with_history(history: Vec<ChatMessage>) -> ChatLog {
        let skip = history.len().saturating_sub(CHAT_HISTORY_LEN);
        let messages: VecDeque<ChatMessage> = history.into_iter().skip(skip).collect();
        let seq = messages.iter().map(|m| m.seq).max().unwrap_or(0);
        ChatLog { messages, seq }
    }

    /// Adds a message from `from` (named `name` now), stamped with the server's clock, keeping
    /// at most [`CHAT_HISTORY_LEN`]. `reply_to` must name a message of the log that is not
    /// deleted. Returns the message as stored.
    pub fn add(
        &mut self,
        from: MemberId,
        name: String,
        tag: Option<String>,
        text: String,
        reply_to: Option<u64>,
    ) -> Result<ChatMessage, ErrorCode> {
        if let Some(seq) = reply_to {
            self.find(seq)?;
        }
        self.seq += 1;
        let message = ChatMessage {
            seq: self.seq,
            from,
            name,
            text,
            ts: unix_millis(),
            tag,
            reply_to,
            ..ChatMessage::default()
        };
        if self.messages.len() >= CHAT_HISTORY_LEN {
            self.messages.pop_front();
        }
        self.messages.push_back(message.clone());
        Ok(message)
    }

    /// Gives message `seq` of `author` a new text. Returns it as it is now.
    pub fn edit(
        &mut self,
        seq: u64,
        author: &Reactor,
        text: String,
    ) -> Result<ChatMessage, ErrorCode> {
        let m = self.own(seq, author)?;
        m.text = text;
        m.edited = Some(unix_millis());
        Ok(m.clone())
    }

    /// Deletes message `seq` of `author`: its text and reactions go, its place stays.
    pub fn delete(&mut self, seq: u64, author: &Reactor) -> Result<ChatMessage, ErrorCode> {
        let m = self.own(seq, author)?;
        m.text.clear();
        m.reactions.clear();
        m.edited = None;
        m.deleted = true;
        Ok(m.clone())
    }

    /// Adds (`on`) or takes back `who`'s reaction `emoji` (already checked) to message `seq`.
    /// Returns the message if that changed it, None if it already was so.
    pub fn react(
        &mut self,
        seq: u64,
        who: Reactor,
        emoji: &str,
        on: bool,
    ) -> Result<Option<ChatMessage>, ErrorCode> {
        let m = self.find(seq)?;
        let at = m.reactions.iter().position(|r| r.emoji == emoji);
        let given = at.and_then(|i| m.reactions[i].by.iter().position(|r| r.same_as(&who)));
        match (on, at, given) {
            (true, _, Some(_)) | (false, _, None) => return Ok(None),
            (true, Some(i), None) => {
                if m.reactions[i].by.len() >= MAX_REACTORS {
                    return Err(ErrorCode::TooManyReactions);
                }
                m.reactions[i].by.push(who);
            }
            (true, None, None) => m.reactions.push(Reaction {
                emoji: emoji.to_owned(),
                by: vec![who],
            }),
            (false, Some(i), Some(j)) => {
                m.reactions[i].by.remove(j);
                if m.reactions[i].by.is_empty() {
                    m.reactions.remove(i);
                }
            }
            (false, None, Some(_)) => return Ok(None),
        }
        Ok(Some(m.clone()))
    }

    /// Message `seq`, if the log still holds it and it is not deleted.
    fn find(&mut self, seq: u64) -> Result<&mut ChatMessage, ErrorCode> {
        self.messages
            .iter_mut()
            .find(|m| m.seq == seq && !m.deleted)
            .ok_or(ErrorCode::ChatNotFound)
    }

    /// Message `seq`, if `author` wrote it: the same tag, or without one the same member.
    fn own(&mut self, seq: u64, author: &Reactor) -> Result<&mut ChatMessage, ErrorCode> {
        let m = self.find(seq)?;
        let writer = Reactor {
            id: m.from,
            tag: m.tag.clone(),
        };
        if writer.same_as(author) {
            Ok(m)
        } else {
            Err(ErrorCode::NotAuthor)
        }
    }

    /// The kept messages, oldest first.
    pub fn history(&self) -> Vec<ChatMessage> {
        self.messages.iter().cloned().collect()
    }

    /// Forgets every message; the numbering goes on.
    pub fn clear(&mut self) {
        self.messages.clear();
    }

    pub fn len(&self) -> usize {
        self.messages.len()
    }
}

fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_keeps_the_last_messages_in_order_and_numbers_every_one() {
        let mut log = ChatLog::default();
        for i in 0..CHAT_HISTORY_LEN + 5 {
            let m = log
                .add(MemberId(1), "Alice".into(), None, format!("{i}"), None)
                .unwrap();
            assert_eq!(m.seq, i as u64 + 1);
        }
        let history = log.history();
        assert_eq!(history.len(), CHAT_HISTORY_LEN);
        assert_eq!(log.len(), CHAT_HISTORY_LEN);
        assert_eq!(history[0].text, "5");
        assert!(history.windows(2).all(|w| w[1].seq == w[0].seq + 1));
    }

    #[test]
    fn a_log_that_goes_on_from_stored_history_keeps_its_numbering() {
        let mut old = ChatLog::default();
        for i in 0..CHAT_HISTORY_LEN + 3 {
            old.add(MemberId(1), "Ann".into(), None, format!("{i}"), None)
                .unwrap();
        }
        let mut log = ChatLog::with_history(old.history());
        assert_eq!(log.history(), old.history());
        let next = log
            .add(MemberId(2), "Ben".into(), None, "again".into(), None)
            .unwrap();
        assert_eq!(next.seq, CHAT_HISTORY_LEN as u64 + 4);
        assert_eq!(log.len(), CHAT_HISTORY_LEN);
        assert!(ChatLog::with_history(Vec::new()).history().is_empty());
    }

    const ANN_TAG: &str = "0123456789abcdef0123456789abcdef";

    fn ann(id: u64) -> Reactor {
        Reactor {
            id: MemberId(id),
            tag: Some(ANN_TAG.into()),
        }
    }

    fn bare(id: u64) -> Reactor {
        Reactor {
            id: MemberId(id),
            tag: None,
        }
    }

    #[test]
    fn a_reply_names_a_message_the_log_holds() {
        let mut log = ChatLog::default();
        let first = log.add(MemberId(1), "Ann".into(), None, "q".into(), None);
        let first = first.unwrap();
        let reply = log.add(MemberId(2), "Ben".into(), None, "a".into(), Some(first.seq));
        assert_eq!(reply.unwrap().reply_to, Some(first.seq));
        let none = log.add(MemberId(2), "Ben".into(), None, "a".into(), Some(99));
        assert_eq!(none, Err(ErrorCode::ChatNotFound));
        assert_eq!(log.len(), 2, "a refused reply is not kept");
    }

    #[test]
    fn only_the_author_edits_or_deletes_known_again_by_tag_after_reconnecting() {
        let mut log = ChatLog::default();
        let tagged = log.add(
            MemberId(1),
            "Ann".into(),
            Some(ANN_TAG.into()),
            "helo".into(),
            None,
        );
        let tagged = tagged.unwrap();
        let bare_msg = log
            .add(MemberId(5), "Cy".into(), None, "x".into(), None)
            .unwrap();
        // Ann, back on a new connection (id 7), edits her message; Ben cannot.
        let edited = log.edit(tagged.seq, &ann(7), "hello".into()).unwrap();
        assert_eq!(edited.text, "hello");
        assert!(edited.edited.is_some());
        assert_eq!(
            log.edit(tagged.seq, &bare(1), "x".into()),
            Err(ErrorCode::NotAuthor)
        );
        assert_eq!(
            log.delete(bare_msg.seq, &bare(6)),
            Err(ErrorCode::NotAuthor)
        );
        // A message without a tag is its member's: the same id.
        assert!(log.edit(bare_msg.seq, &bare(5), "y".into()).is_ok());
        // Deleted: no text, no reactions, and nothing more to do with it.
        log.react(tagged.seq, bare(2), "👍", true).unwrap();
        let gone = log.delete(tagged.seq, &ann(7)).unwrap();
        assert!(gone.deleted && gone.text.is_empty() && gone.reactions.is_empty());
        assert_eq!(
            log.edit(tagged.seq, &ann(7), "z".into()),
            Err(ErrorCode::ChatNotFound)
        );
        assert_eq!(
            log.react(tagged.seq, bare(2), "👍", true),
            Err(ErrorCode::ChatNotFound)
        );
        assert_eq!(
            log.edit(404, &ann(7), "z".into()),
            Err(ErrorCode::ChatNotFound)
        );
        assert_eq!(
            log.history()[0],
            gone,
            "the log keeps the deleted message's place"
        );
    }

    #[test]
    fn reactions_are_given_once_per_person_taken_back_and_bounded() {
        let mut log = ChatLog::default();
        let m = log
            .add(MemberId(1), "Ann".into(), None, "hi".into(), None)
            .unwrap();
        let once = log.react(m.seq, ann(2), "👍", true).unwrap().unwrap();
        assert_eq!(once.reactions.len(), 1);
        // The same person again (on another connection): nothing changes.
        assert_eq!(log.react(m.seq, ann(3), "👍", true), Ok(None));
        let two = log.react(m.seq, bare(4), "❤️", true).unwrap().unwrap();
        assert_eq!(
            two.reactions
                .iter()
                .map(|r| r.emoji.as_str())
                .collect::<Vec<_>>(),
            ["👍", "❤️"]
        );
        let back = log.react(m.seq, ann(3), "👍", false).unwrap().unwrap();
        assert_eq!(
            back.reactions.len(),
            1,
            "a reaction nobody gives any more goes"
        );
        assert_eq!(log.react(m.seq, ann(3), "👍", false), Ok(None));
        for i in 0..MAX_REACTORS as u64 {
            log.react(m.seq, bare(100 + i), "😂", true).unwrap();
        }
        assert_eq!(
            log.react(m.seq, bare(99), "😂", true),
            Err(ErrorCode::TooManyReactions)
        );
    }
}
