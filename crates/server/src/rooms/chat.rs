//! A room's chat: the last messages, kept for those who join later, numbered in order.

use std::collections::VecDeque;
use std::time::{SystemTime, UNIX_EPOCH};

use free4chat_signal::{CHAT_HISTORY_LEN, ChatMessage, MemberId};

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
    /// at most [`CHAT_HISTORY_LEN`]. Returns the message as stored.
    pub fn add(
        &mut self,
        from: MemberId,
        name: String,
        tag: Option<String>,
        text: String,
    ) -> ChatMessage {
        self.seq += 1;
        let message = ChatMessage {
            seq: self.seq,
            from,
            name,
            text,
            ts: unix_millis(),
            tag,
        };
        if self.messages.len() >= CHAT_HISTORY_LEN {
            self.messages.pop_front();
        }
        self.messages.push_back(message.clone());
        message
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
            let m = log.add(MemberId(1), "Alice".into(), None, format!("{i}"));
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
            old.add(MemberId(1), "Ann".into(), None, format!("{i}"));
        }
        let mut log = ChatLog::with_history(old.history());
        assert_eq!(log.history(), old.history());
        let next = log.add(MemberId(2), "Ben".into(), None, "again".into());
        assert_eq!(next.seq, CHAT_HISTORY_LEN as u64 + 4);
        assert_eq!(log.len(), CHAT_HISTORY_LEN);
        assert!(ChatLog::with_history(Vec::new()).history().is_empty());
    }
}
