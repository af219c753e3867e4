//! A room's moderators and what they may do: mute a member for everyone, remove one (who then
//! stays out for a while), lock the room, set its topic and language, clear the chat, make
//! others moderators, lower hands. And every member's own raised hand.
//!
//! The member who makes a room moderates it; when the last moderator leaves, the member
//! present longest becomes one, so a room is never left without.

use std::collections::VecDeque;
use std::net::IpAddr;

use free4chat_signal::{
    ByeReason, ClientMsg, ErrorCode, MemberId, ServerMsg, validate_language, validate_topic,
};
use tokio::time::Instant;
use tracing::info;

use super::Room;
use crate::rooms::Refusal;
use crate::rooms::trace;

/// The most removals a room remembers; the oldest is forgotten first. Far more than a room's
/// moderators remove in the time each is kept.
const MAX_BANS: usize = 256;

/// Who was removed from the room, by tag (their client key) and by address, until when.
#[derive(Default)]
pub(super) struct Bans {
    entries: VecDeque<Ban>,
}

struct Ban {
    until: Instant,
    tag: Option<String>,
    ip: Option<IpAddr>,
}

impl Bans {
    fn add(&mut self, until: Instant, tag: Option<String>, ip: Option<IpAddr>) {
        if tag.is_none() && ip.is_none() {
            return;
        }
        if self.entries.len() >= MAX_BANS {
            self.entries.pop_front();
        }
        self.entries.push_back(Ban { until, tag, ip });
    }

    /// Whether a client with this tag or address is kept out now.
    fn holds(&mut self, tag: Option<&str>, ip: Option<IpAddr>, now: Instant) -> bool {
        self.entries.retain(|b| b.until > now);
        self.entries
            .iter()
            .any(|b| (tag.is_some() && b.tag.as_deref() == tag) || (ip.is_some() && b.ip == ip))
    }
}

impl Room {
    /// Why a client may not come in now, if it may not: removed of late, or the room locked
    /// (a moderator by token still comes in).
    pub(super) fn admits(
        &mut self,
        tag: Option<&str>,
        ip: Option<IpAddr>,
        moderator: bool,
    ) -> Option<Refusal> {
        if self.bans.holds(tag, ip, Instant::now()) {
            return Some(Refusal::new(
                ErrorCode::RemovedFromRoom,
                "a moderator removed you from this room; try again later",
            ));
        }
        if self.info.locked && !moderator {
            return Some(Refusal::new(ErrorCode::RoomLocked, "the room is locked"));
        }
        None
    }

    pub(super) fn moderators(&self) -> Vec<MemberId> {
        self.members
            .iter()
            .filter(|(_, m)| m.moderator)
            .map(|(id, _)| *id)
            .collect()
    }

    /// The moderators once `member`, joining, is in (a moderator if `moderator`, or if they
    /// make the room).
    pub(super) fn moderators_with(&self, member: MemberId, moderator: bool) -> Vec<MemberId> {
        let mut ids = self.moderators();
        if moderator || self.members.is_empty() {
            ids.push(member);
            ids.sort();
        }
        ids
    }

    /// Tells everyone (but `except`, who knows) who moderates now.
    pub(super) fn send_moderators(&mut self, except: Option<MemberId>) {
        let ids = self.moderators();
        self.broadcast(except, &ServerMsg::Moderators { ids });
    }

    fn send_hands(&mut self) {
        let ids = self.hands.clone();
        self.broadcast(None, &ServerMsg::Hands { ids });
    }

    /// After `member` left: their hand goes down, and if they were the last moderator, the
    /// member present longest becomes one.
    pub(super) fn after_leaving(&mut self, member: MemberId, was_moderator: bool) {
        if let Some(i) = self.hands.iter().position(|id| *id == member) {
            self.hands.remove(i);
            self.send_hands();
        }
        if !was_moderator || self.members.values().any(|m| m.moderator) {
            return;
        }
        let longest = self.members.iter_mut().min_by_key(|(_, m)| m.since);
        if let Some((id, m)) = longest {
            m.moderator = true;
            info!(room = self.name, member = %id, "the last moderator left: a member present longest moderates now");
            self.send_moderators(None);
        }
    }

    /// Mutes a member for everyone, or lifts it (they stay muted until they unmute).
    /// Returns whether they were in the room.
    pub(super) async fn force_mute(&mut self, member: MemberId, forced: bool) -> bool {
        let Some(state) = self.members.get_mut(&member) else {
            return false;
        };
        state.forced_muted = forced;
        state.muted |= forced;
        trace::changed(&state.span, "mute for everyone", &forced);
        let muted = state.muted;
        self.link.silence(member, forced);
        self.drive_link().await;
        self.tell_mute(member, muted, forced);
        true
    }

    /// A member's hand, or a moderator's act. A member who is not a moderator asking for one
    /// is refused `not_moderator`, and nothing happens.
    pub(super) async fn moderation(&mut self, member: MemberId, msg: ClientMsg) {
        let Some(me) = self.members.get(&member) else {
            return;
        };
        if let ClientMsg::Hand { raised } = msg {
            return self.hand(member, raised);
        }
        if !me.moderator {
            let e = ServerMsg::error(ErrorCode::NotModerator, "only a moderator may do that");
            return self.send_to(member, e);
        }
        let target = match &msg {
            ClientMsg::MuteMember { id, .. }
            | ClientMsg::RemoveMember { id }
            | ClientMsg::MakeModerator { id }
            | ClientMsg::LowerHand { id } => Some(*id),
            _ => None,
        };
        if let Some(id) = target
            && !self.members.contains_key(&id)
        {
            let e = ServerMsg::error(ErrorCode::NoSuchMember, "no such member in the room");
            return self.send_to(member, e);
        }
        match msg {
            ClientMsg::SetRoom {
                topic,
                language,
                locked,
            } => self.set_room(member, topic, language, locked),
            ClientMsg::MuteMember { id, muted } => {
                self.force_mute(id, muted).await;
            }
            ClientMsg::RemoveMember { id } => self.remove_member(member, id).await,
            ClientMsg::MakeModerator { id } => {
                if let Some(m) = self.members.get_mut(&id)
                    && !m.moderator
                {
                    m.moderator = true;
                    self.send_moderators(None);
                }
            }
            ClientMsg::ClearChat => {
                self.chat.clear();
                for observer in &self.local.observers {
                    observer.chat_cleared(&self.name);
                }
                self.broadcast(None, &ServerMsg::ChatCleared);
            }
            ClientMsg::LowerHand { id } => self.hand(id, false),
            _ => {}
        }
    }

    fn hand(&mut self, member: MemberId, raised: bool) {
        let up = self.hands.iter().position(|id| *id == member);
        match (raised, up) {
            (true, None) => self.hands.push(member),
            (false, Some(i)) => {
                self.hands.remove(i);
            }
            // Already as asked: nothing changes, nobody is told.
            _ => return,
        }
        self.send_hands();
    }

    /// Topic, language and lock, each checked (as the connection checked them: a relayed
    /// member's message is checked again here).
    fn set_room(
        &mut self,
        member: MemberId,
        topic: Option<String>,
        language: Option<String>,
        locked: Option<bool>,
    ) {
        let topic = topic.map(|t| validate_topic(&t)).transpose();
        let language = language.map(|l| validate_language(&l)).transpose();
        let (topic, language) = match (topic, language) {
            (Ok(t), Ok(l)) => (t, l),
            (Err(e), _) | (_, Err(e)) => {
                return self.send_to(member, ServerMsg::error(e.code, e.message));
            }
        };
        let before = self.info.clone();
        if let Some(topic) = topic {
            self.info.topic = topic;
        }
        if let Some(language) = language {
            self.info.language = language;
        }
        if let Some(locked) = locked {
            self.info.locked = locked;
        }
        if self.info != before {
            let info = self.info.clone();
            self.broadcast(None, &ServerMsg::Room { info });
        }
    }

    /// Removes `id`, who is told `removed` and kept out (by tag and address) for the server's
    /// removal time.
    async fn remove_member(&mut self, by: MemberId, id: MemberId) {
        let Some(m) = self.members.get(&id) else {
            return;
        };
        let until = Instant::now() + self.local.limits.removal_ban;
        self.bans.add(until, m.tag.clone(), m.ip);
        info!(room = self.name, member = %id, by = %by, "member removed by a moderator");
        trace::step(&m.span, "removed by a moderator");
        self.send_to(
            id,
            ServerMsg::Bye {
                reason: ByeReason::Removed,
            },
        );
        self.why(id, "removed by a moderator");
        self.remove(id).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_removal_holds_by_tag_or_address_until_it_ends_and_the_list_stays_bounded() {
        let now = Instant::now();
        let mut bans = Bans::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        bans.add(now + Duration::from_secs(60), Some("t1".into()), Some(ip));
        assert!(bans.holds(Some("t1"), None, now));
        assert!(bans.holds(None, Some(ip), now));
        assert!(bans.holds(Some("t2"), Some(ip), now));
        assert!(!bans.holds(Some("t2"), None, now));
        assert!(!bans.holds(None, None, now));
        assert!(!bans.holds(Some("t1"), Some(ip), now + Duration::from_secs(61)));
        bans.add(now, None, None);
        assert!(
            bans.entries.is_empty(),
            "nothing to know them by: nothing kept"
        );
        for i in 0..MAX_BANS + 10 {
            bans.add(now + Duration::from_secs(60), Some(format!("t{i}")), None);
        }
        assert_eq!(bans.entries.len(), MAX_BANS);
        assert!(!bans.holds(Some("t0"), None, now), "the oldest went first");
    }
}
