//! Everything the cluster keeps in Redis, and every call to it: each with a deadline, so that
//! a Redis that is away or slow costs a bounded wait and an error, never a hang.
//!
//! Keys (all under `f4c:`):
//! - `f4c:node-seq`: a counter; each node start draws its number (its id and id prefix).
//! - `f4c:nodes`: the set of node ids; `f4c:node:<id>`: a node's heartbeat record (JSON,
//!   [`NodeInfo`]), expiring after the heartbeat lifetime unless the node beats again.
//! - `f4c:room:<name>`: the room's lease, the id of the node holding it, expiring unless
//!   renewed.
//! - `f4c:chat:<name>`: the room's last chat messages (JSON), expiring some time after the
//!   room empties.
//! - `f4c:secret:<name>`: a private room's password hash (a PHC string), so that the room
//!   stays private wherever it starts again; it expires with the room's chat.
//! - `f4c:public:<name>`: a public room's summary (JSON, [`PublicRoom`]), written by its node
//!   with each renewal of its lease and expiring with it; `f4c:public`: the public rooms by
//!   members (a sorted set, at most [`MAX_PUBLIC_INDEX`] names).
//! - channel `f4c:bus:<id>`: the envelopes for node `<id>`.

use std::time::Duration;

use free4chat_signal::{
    CHAT_HISTORY_LEN, ChatMessage, MAX_CHAT_CHARS, MAX_REACTORS, REACTIONS, validate_reaction,
};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, ProtocolVersion, PushInfo, PushKind, Script, Value};
use tokio::sync::mpsc;

use super::NodeId;
use super::lease::{CLAIM, Claim, RELEASE, RENEW, Renewal};
use super::registry::NodeInfo;

/// The longest any one call to Redis may take, connecting included.
pub const CALL_DEADLINE: Duration = Duration::from_secs(1);
/// The longest a chat message may be as stored: its text at most 2,000 characters of up to
/// four bytes, escaped, and its reactions, six of at most 50 members each.
const MAX_STORED_CHAT: usize = 64 * 1024;

const NODE_SEQ: &str = "f4c:node-seq";
const NODES: &str = "f4c:nodes";
const NODE_PREFIX: &str = "f4c:node:";

fn node_key(id: &NodeId) -> String {
    format!("{NODE_PREFIX}{id}")
}

fn room_key(room: &str) -> String {
    format!("f4c:room:{room}")
}

fn secret_key(room: &str) -> String {
    format!("f4c:secret:{room}")
}

/// The longest a stored password hash may be (Argon2id's PHC strings are about 100 bytes).
const MAX_STORED_SECRET: usize = 256;

fn summary_key(room: &str) -> String {
    format!("f4c:public:{room}")
}

const PUBLIC_INDEX: &str = "f4c:public";
/// The most public rooms the index holds: those with fewest members go first.
pub const MAX_PUBLIC_INDEX: usize = 1000;
/// The longest a stored summary may be.
const MAX_STORED_SUMMARY: usize = 1024;

/// A public room as the cluster lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicRoom {
    pub room: String,
    pub id: free4chat_signal::RoomId,
    pub node: NodeId,
    pub members: usize,
    pub topic: String,
    pub language: String,
}

/// One stored summary, if it reads and keeps within the protocol's bounds.
pub fn read_summary(stored: &[u8]) -> Option<PublicRoom> {
    if stored.len() > MAX_STORED_SUMMARY {
        return None;
    }
    let r: PublicRoom = serde_json::from_slice(stored).ok()?;
    let fits = free4chat_signal::validate_room_name(&r.room).is_ok()
        && free4chat_signal::validate_topic(&r.topic).is_ok_and(|t| t == r.topic)
        && free4chat_signal::validate_language(&r.language).is_ok_and(|l| l == r.language)
        && r.members <= 1_000_000;
    fits.then_some(r)
}

fn chat_key(room: &str) -> String {
    format!("f4c:chat:{room}")
}

/// The pub/sub channel of node `id`.
pub fn bus_channel(id: &NodeId) -> String {
    format!("f4c:bus:{id}")
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("Redis answered something unexpected: {0}")]
    Unexpected(String),
}

/// Reads a `redis://` or `rediss://` URL, for RESP3 (pub/sub messages arrive on the same
/// connection as commands).
pub fn redis_url(url: &str) -> Result<redis::ConnectionInfo, String> {
    use redis::IntoConnectionInfo;
    if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
        return Err("not a redis:// or rediss:// URL".into());
    }
    let info = url.into_connection_info().map_err(|e| e.to_string())?;
    let settings = info
        .redis_settings()
        .clone()
        .set_protocol(ProtocolVersion::RESP3);
    Ok(info.set_redis_settings(settings))
}

/// A pub/sub message: the channel it came on, and its payload.
pub type Delivery = (String, Vec<u8>);

/// One node's connection to Redis, shared by its tasks.
#[derive(Clone)]
pub struct Store {
    conn: ConnectionManager,
}

impl Store {
    /// Connects lazily (the first call connects, and every call after a loss reconnects, with
    /// backoff). Pub/sub messages for the channels this store subscribes to go to `deliveries`;
    /// when that queue is full, they are dropped (and the relay's sequence numbers tell).
    pub fn connect(url: &str, deliveries: mpsc::Sender<Delivery>) -> Result<Store, StoreError> {
        let info = redis_url(url).map_err(StoreError::Unexpected)?;
        let client = redis::Client::open(info)?;
        let push = move |info: PushInfo| -> Result<(), ()> {
            if info.kind != PushKind::Message {
                return Ok(());
            }
            if let [Value::BulkString(channel), Value::BulkString(payload)] = &info.data[..] {
                let channel = String::from_utf8_lossy(channel).into_owned();
                return deliveries
                    .try_send((channel, payload.clone()))
                    .map_err(drop);
            }
            Ok(())
        };
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CALL_DEADLINE))
            .set_response_timeout(Some(CALL_DEADLINE))
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500))
            .set_number_of_retries(4)
            .set_push_sender(push)
            .set_automatic_resubscription();
        let conn = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(Store { conn })
    }

    /// Runs one call to Redis under the deadline.
    async fn call<T>(
        &self,
        f: impl AsyncFnOnce(&mut ConnectionManager) -> redis::RedisResult<T>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn.clone();
        match tokio::time::timeout(CALL_DEADLINE, f(&mut conn)).await {
            Ok(r) => r.map_err(StoreError::from),
            Err(_) => Err(StoreError::Timeout(CALL_DEADLINE)),
        }
    }

    /// Whether Redis answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.call(async |c| redis::cmd("PING").query_async::<()>(c).await)
            .await
    }

    /// Draws this node's number: never the same twice on one Redis.
    pub async fn next_node_number(&self) -> Result<u64, StoreError> {
        self.call(async |c| c.incr(NODE_SEQ, 1u64).await).await
    }

    /// Publishes this node's heartbeat record for `ttl`.
    pub async fn beat(&self, info: &NodeInfo, ttl: Duration) -> Result<(), StoreError> {
        let key = node_key(&info.id);
        let record = info.to_json();
        let ms = ttl.as_millis() as u64;
        let id = info.id.to_string();
        self.call(async |c| {
            redis::pipe()
                .cmd("SET")
                .arg(&key)
                .arg(&record)
                .arg("PX")
                .arg(ms)
                .ignore()
                .sadd(NODES, &id)
                .ignore()
                .query_async::<()>(c)
                .await
        })
        .await
    }

    /// Takes this node's heartbeat away (it is stopping).
    pub async fn forget_node(&self, id: &NodeId) -> Result<(), StoreError> {
        let key = node_key(id);
        let id = id.to_string();
        self.call(async |c| {
            redis::pipe()
                .del(&key)
                .ignore()
                .srem(NODES, &id)
                .ignore()
                .query_async::<()>(c)
                .await
        })
        .await
    }

    /// The nodes with a heartbeat, and the records that did not read (with why). Ids whose
    /// heartbeat is gone are taken out of the set.
    pub async fn nodes(&self) -> Result<(Vec<NodeInfo>, Vec<String>), StoreError> {
        let ids: Vec<String> = self.call(async |c| c.smembers(NODES).await).await?;
        let ids: Vec<NodeId> = ids.iter().filter_map(|id| NodeId::parse(id).ok()).collect();
        if ids.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let keys: Vec<String> = ids.iter().map(node_key).collect();
        let records: Vec<Option<Vec<u8>>> = self
            .call(async |c| redis::cmd("MGET").arg(&keys).query_async(c).await)
            .await?;
        let mut nodes = Vec::new();
        let mut problems = Vec::new();
        let mut gone = Vec::new();
        for (id, record) in ids.iter().zip(records) {
            match record.map(|r| NodeInfo::parse(&r)) {
                Some(Ok(info)) if info.id == *id => nodes.push(info),
                Some(Ok(_)) => problems.push(format!("{id}: record names another node")),
                Some(Err(e)) => problems.push(format!("{id}: {e}")),
                None => gone.push(id.to_string()),
            }
        }
        if !gone.is_empty() {
            self.call(async |c| c.srem::<_, _, ()>(NODES, &gone).await)
                .await?;
        }
        Ok((nodes, problems))
    }

    /// The node holding `room`, if any.
    pub async fn owner(&self, room: &str) -> Result<Option<NodeId>, StoreError> {
        let key = room_key(room);
        let owner: Option<String> = self.call(async |c| c.get(&key).await).await?;
        owner
            .map(|o| NodeId::parse(&o).map_err(|e| StoreError::Unexpected(e.into())))
            .transpose()
    }

    /// Claims `room` for `me` (see [`CLAIM`]).
    pub async fn claim(&self, room: &str, me: &NodeId, ttl: Duration) -> Result<Claim, StoreError> {
        let key = room_key(room);
        let me_s = me.to_string();
        let ms = ttl.as_millis() as u64;
        let (won, owner): (i64, String) = self
            .call(async |c| {
                Script::new(CLAIM)
                    .key(&key)
                    .arg(&me_s)
                    .arg(ms)
                    .arg(NODE_PREFIX)
                    .invoke_async(c)
                    .await
            })
            .await?;
        if won == 1 {
            return Ok(Claim::Won);
        }
        let owner = NodeId::parse(&owner).map_err(|e| StoreError::Unexpected(e.into()))?;
        Ok(Claim::Held(owner))
    }

    /// Renews `me`'s leases of `rooms`, and keeps their chat for `chat_ttl` more.
    pub async fn renew(
        &self,
        rooms: &[String],
        me: &NodeId,
        ttl: Duration,
        chat_ttl: Duration,
    ) -> Result<Vec<Renewal>, StoreError> {
        if rooms.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = rooms.iter().map(|r| room_key(r)).collect();
        // A room's chat and its password's hash live as long as each other.
        let chats: Vec<String> = rooms
            .iter()
            .flat_map(|r| [chat_key(r), secret_key(r)])
            .collect();
        let me_s = me.to_string();
        let ms = ttl.as_millis() as u64;
        let chat_ms = chat_ttl.as_millis() as u64;
        let codes: Vec<i64> = self
            .call(async |c| {
                let script = Script::new(RENEW);
                let mut invocation = script.key(&keys);
                invocation.arg(&me_s).arg(ms);
                // Loads the script into Redis's cache when it is not there (after a restart).
                invocation.invoke_async(c).await
            })
            .await?;
        self.call(async |c| {
            let mut pipe = redis::pipe();
            for chat in &chats {
                pipe.pexpire(chat, chat_ms as i64).ignore();
            }
            pipe.query_async::<()>(c).await
        })
        .await?;
        if codes.len() != rooms.len() {
            return Err(StoreError::Unexpected(format!(
                "{} answers for {} leases",
                codes.len(),
                rooms.len()
            )));
        }
        Ok(codes.into_iter().map(Renewal::from_code).collect())
    }

    /// Gives up `me`'s lease of `room`, and its place in the list of public rooms.
    pub async fn release(&self, room: &str, me: &NodeId) -> Result<(), StoreError> {
        let key = room_key(room);
        let me_s = me.to_string();
        let released: i64 = self
            .call(async |c| {
                Script::new(RELEASE)
                    .key(&key)
                    .arg(&me_s)
                    .invoke_async::<i64>(c)
                    .await
            })
            .await?;
        if released == 1 {
            let summary = summary_key(room);
            self.call(async |c| {
                redis::pipe()
                    .del(&summary)
                    .ignore()
                    .zrem(PUBLIC_INDEX, room)
                    .ignore()
                    .query_async::<()>(c)
                    .await
            })
            .await?;
        }
        Ok(())
    }

    /// Publishes the summaries of this node's public rooms for `ttl` (their leases' life).
    pub async fn publish_rooms(
        &self,
        rooms: &[PublicRoom],
        ttl: Duration,
    ) -> Result<(), StoreError> {
        if rooms.is_empty() {
            return Ok(());
        }
        let ms = ttl.as_millis() as u64;
        let mut pipe = redis::pipe();
        for r in rooms {
            let json =
                serde_json::to_string(r).map_err(|e| StoreError::Unexpected(e.to_string()))?;
            pipe.cmd("SET")
                .arg(summary_key(&r.room))
                .arg(json)
                .arg("PX")
                .arg(ms)
                .ignore()
                .zadd(PUBLIC_INDEX, &r.room, r.members as f64)
                .ignore();
        }
        // The index keeps its largest rooms: the rest, and rooms gone, fall out of it.
        pipe.zremrangebyrank(PUBLIC_INDEX, 0, -(MAX_PUBLIC_INDEX as isize) - 1)
            .ignore();
        self.call(async |c| pipe.query_async::<()>(c).await).await
    }

    /// The public rooms of the cluster with the most members, at most `limit`, largest first.
    /// Names whose summary has expired (their node stopped holding them) leave the index.
    pub async fn public_rooms(&self, limit: usize) -> Result<Vec<PublicRoom>, StoreError> {
        let names: Vec<String> = self
            .call(async |c| c.zrevrange(PUBLIC_INDEX, 0, limit as isize - 1).await)
            .await?;
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = names.iter().map(|n| summary_key(n)).collect();
        let stored: Vec<Option<Vec<u8>>> = self
            .call(async |c| redis::cmd("MGET").arg(&keys).query_async(c).await)
            .await?;
        let mut rooms = Vec::new();
        let mut gone = Vec::new();
        for (name, s) in names.iter().zip(stored) {
            match s.as_deref().and_then(read_summary) {
                Some(r) if r.room == *name => rooms.push(r),
                _ => gone.push(name.clone()),
            }
        }
        if !gone.is_empty() {
            self.call(async |c| c.zrem::<_, _, ()>(PUBLIC_INDEX, &gone).await)
                .await?;
        }
        Ok(rooms)
    }

    /// Keeps a private room's password hash for `ttl` (renewed with the room's chat).
    pub async fn keep_secret(
        &self,
        room: &str,
        phc: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let key = secret_key(room);
        let ms = ttl.as_millis() as u64;
        self.call(async |c| {
            redis::cmd("SET")
                .arg(&key)
                .arg(phc)
                .arg("PX")
                .arg(ms)
                .query_async::<()>(c)
                .await
        })
        .await
    }

    /// A private room's password hash, as kept; none if the room was public (or its earlier
    /// life long over). A stored value that is not an Argon2id hash is an error: the room is
    /// then not made, rather than made public.
    pub async fn secret(&self, room: &str) -> Result<Option<String>, StoreError> {
        let key = secret_key(room);
        let stored: Option<String> = self.call(async |c| c.get(&key).await).await?;
        match stored {
            Some(s) if s.len() > MAX_STORED_SECRET || !s.starts_with("$argon2id$") => Err(
                StoreError::Unexpected(format!("{key} does not hold a password hash")),
            ),
            other => Ok(other),
        }
    }

    /// Forgets `room`'s stored chat (a moderator cleared it).
    pub async fn clear_chat(&self, room: &str) -> Result<(), StoreError> {
        let key = chat_key(room);
        self.call(async |c| c.del::<_, ()>(&key).await).await
    }

    /// Sends `payload` to node `to`; returns how many subscribers received it (0: the node
    /// is not listening, or is gone).
    pub async fn publish(&self, to: &NodeId, payload: &str) -> Result<usize, StoreError> {
        let channel = bus_channel(to);
        self.call(async |c| c.publish(&channel, payload).await)
            .await
    }

    /// Listens on node `id`'s channel (again after every reconnection).
    pub async fn subscribe(&self, id: &NodeId) -> Result<(), StoreError> {
        let channel = bus_channel(id);
        self.call(async |c| c.subscribe(&channel).await).await
    }

    /// Adds a message to `room`'s stored chat, keeping the last ones, for `ttl`.
    pub async fn push_chat(
        &self,
        room: &str,
        message: &ChatMessage,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let key = chat_key(room);
        let json =
            serde_json::to_string(message).map_err(|e| StoreError::Unexpected(e.to_string()))?;
        let keep = CHAT_HISTORY_LEN as isize;
        self.call(async |c| {
            redis::pipe()
                .rpush(&key, &json)
                .ignore()
                .ltrim(&key, -keep, -1)
                .ignore()
                .pexpire(&key, ttl.as_millis() as i64)
                .ignore()
                .query_async::<()>(c)
                .await
        })
        .await
    }

    /// Replaces `room`'s stored chat with `history` (a message changed), for `ttl`; at once,
    /// so that a node reading it meanwhile finds the old chat or the new, never a part.
    pub async fn replace_chat(
        &self,
        room: &str,
        history: &[ChatMessage],
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let key = chat_key(room);
        let keep = history.len().saturating_sub(CHAT_HISTORY_LEN);
        let mut lines = Vec::with_capacity(history.len());
        for m in &history[keep..] {
            lines
                .push(serde_json::to_string(m).map_err(|e| StoreError::Unexpected(e.to_string()))?);
        }
        self.call(async |c| {
            let mut pipe = redis::pipe();
            pipe.atomic().del(&key).ignore();
            if !lines.is_empty() {
                pipe.rpush(&key, &lines)
                    .ignore()
                    .pexpire(&key, ttl.as_millis() as i64)
                    .ignore();
            }
            pipe.query_async::<()>(c).await
        })
        .await
    }

    /// `room`'s stored chat, oldest first: at most the last [`CHAT_HISTORY_LEN`] messages,
    /// each checked; those that do not read are left out.
    pub async fn chat(&self, room: &str) -> Result<Vec<ChatMessage>, StoreError> {
        let key = chat_key(room);
        let keep = CHAT_HISTORY_LEN as isize;
        let stored: Vec<Vec<u8>> = self.call(async |c| c.lrange(&key, -keep, -1).await).await?;
        Ok(stored.iter().filter_map(|s| read_chat(s)).collect())
    }
}

/// One stored chat message, if it reads and keeps within the protocol's bounds.
pub fn read_chat(stored: &[u8]) -> Option<ChatMessage> {
    if stored.len() > MAX_STORED_CHAT {
        return None;
    }
    let m: ChatMessage = serde_json::from_slice(stored).ok()?;
    let is_tag = crate::rooms::tag::is_tag;
    let reactions_fit = m.reactions.len() <= REACTIONS.len()
        && m.reactions.iter().all(|r| {
            validate_reaction(&r.emoji).is_ok()
                && !r.by.is_empty()
                && r.by.len() <= MAX_REACTORS
                && r.by.iter().all(|who| who.tag.as_deref().is_none_or(is_tag))
        });
    let fits = m.text.chars().count() <= MAX_CHAT_CHARS
        && free4chat_signal::validate_nickname(&m.name).is_ok()
        && m.tag.as_deref().is_none_or(is_tag)
        && m.seq > 0
        && m.reply_to.is_none_or(|r| r > 0 && r < m.seq)
        && reactions_fit;
    fits.then_some(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use free4chat_signal::MemberId;

    #[test]
    fn only_redis_urls_with_a_host_are_taken() {
        assert!(redis_url("redis://127.0.0.1:6379").is_ok());
        assert!(redis_url("redis://:secret@redis.example:6380/2").is_ok());
        assert!(redis_url("rediss://:secret@redis.example").is_ok());
        for bad in [
            "",
            "127.0.0.1:6379",
            "http://redis.example",
            "redis://",
            "unix:///tmp/r.sock",
        ] {
            assert!(redis_url(bad).is_err(), "{bad}");
        }
        let info = redis_url("redis://:pw@h:1").unwrap();
        assert_eq!(info.redis_settings().protocol(), ProtocolVersion::RESP3);
    }

    #[test]
    fn a_stored_summary_is_read_only_within_the_protocol_bounds() {
        let r = PublicRoom {
            room: "jazz".into(),
            id: free4chat_signal::RoomId(3),
            node: NodeId::from_number(2),
            members: 4,
            topic: "Standards".into(),
            language: "en".into(),
        };
        let json = serde_json::to_vec(&r).unwrap();
        assert_eq!(read_summary(&json), Some(r.clone()));
        for bad in [
            PublicRoom {
                room: "a b".into(),
                ..r.clone()
            },
            PublicRoom {
                topic: "x\u{7}".into(),
                ..r.clone()
            },
            PublicRoom {
                language: "english".into(),
                ..r.clone()
            },
        ] {
            assert_eq!(read_summary(&serde_json::to_vec(&bad).unwrap()), None);
        }
        assert_eq!(read_summary(b"{}"), None);
        assert_eq!(read_summary(&vec![b' '; MAX_STORED_SUMMARY + 1]), None);
    }

    #[test]
    fn stored_chat_is_read_only_within_the_protocol_bounds() {
        let m = ChatMessage {
            seq: 3,
            from: MemberId(9),
            name: "Ann".into(),
            text: "hello".into(),
            ts: 1,
            ..ChatMessage::default()
        };
        let json = serde_json::to_vec(&m).unwrap();
        assert_eq!(read_chat(&json), Some(m.clone()));
        let mut tagged = m.clone();
        tagged.tag = Some("0123456789abcdef0123456789abcdef".into());
        assert_eq!(
            read_chat(&serde_json::to_vec(&tagged).unwrap()),
            Some(tagged.clone())
        );
        tagged.tag = Some("<not a tag>".into());
        assert_eq!(read_chat(&serde_json::to_vec(&tagged).unwrap()), None);
        let mut long = m.clone();
        long.text = "a".repeat(MAX_CHAT_CHARS + 1);
        assert_eq!(read_chat(&serde_json::to_vec(&long).unwrap()), None);
        let mut unnamed = m.clone();
        unnamed.name = String::new();
        assert_eq!(read_chat(&serde_json::to_vec(&unnamed).unwrap()), None);
        assert_eq!(read_chat(b"{}"), None);
        assert_eq!(read_chat(&vec![b' '; MAX_STORED_CHAT + 1]), None);
    }

    #[test]
    fn stored_replies_and_reactions_are_read_only_within_their_bounds() {
        use free4chat_signal::{Reaction, Reactor};
        let reactor = |i: u64| Reactor {
            id: MemberId(i),
            tag: None,
        };
        let full = ChatMessage {
            seq: 9,
            from: MemberId(1),
            name: "Ann".into(),
            text: "字".repeat(MAX_CHAT_CHARS),
            reply_to: Some(3),
            reactions: REACTIONS
                .iter()
                .map(|e| Reaction {
                    emoji: (*e).into(),
                    by: (0..MAX_REACTORS as u64)
                        .map(|i| reactor(u64::MAX / 2 + i))
                        .collect(),
                })
                .collect(),
            edited: Some(5),
            ..ChatMessage::default()
        };
        // The largest message the room can make is read back.
        let json = serde_json::to_vec(&full).unwrap();
        assert!(json.len() <= MAX_STORED_CHAT, "{}", json.len());
        assert_eq!(read_chat(&json), Some(full.clone()));
        let mut later = full.clone();
        later.reply_to = Some(9);
        assert_eq!(
            read_chat(&serde_json::to_vec(&later).unwrap()),
            None,
            "a reply to itself or later"
        );
        let mut odd = full.clone();
        odd.reactions[0].emoji = "👎".into();
        assert_eq!(read_chat(&serde_json::to_vec(&odd).unwrap()), None);
        let mut crowded = full.clone();
        crowded.reactions[0].by.push(reactor(1));
        assert_eq!(read_chat(&serde_json::to_vec(&crowded).unwrap()), None);
        let mut empty = full.clone();
        empty.reactions[1].by.clear();
        assert_eq!(read_chat(&serde_json::to_vec(&empty).unwrap()), None);
    }
}
