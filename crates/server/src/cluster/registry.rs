//! The nodes of the cluster as each node sees them: what a node says of itself in its
//! heartbeat, which node takes a new room, and when a node that went quiet counts as dead.
//! No I/O here: the heartbeat task feeds these from Redis.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::NodeId;

/// The largest heartbeat record read from Redis.
pub const MAX_NODE_RECORD: usize = 16 * 1024;
/// The most media addresses a node record may list.
const MAX_ADDRS: usize = 64;

/// What a node says of itself in its heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeInfo {
    pub id: NodeId,
    /// Its HTTP and WebSocket address, as it listens.
    pub http: String,
    /// The addresses its media workers offer to browsers.
    pub media: Vec<String>,
    /// Members and rooms it holds now.
    pub members: usize,
    pub rooms: usize,
    /// The share of its cores it used over the last beat, 0 to 1.
    pub cpu: f64,
    /// Its limits: it takes no new room at or past them.
    pub max_members: usize,
    pub max_rooms: usize,
    /// Stopping: it takes no new room and is moving its members elsewhere.
    pub draining: bool,
    pub version: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordError {
    #[error("node record of {0} bytes is too large")]
    TooLarge(usize),
    #[error("node record does not parse: {0}")]
    Malformed(String),
    #[error("node record is out of bounds: {0}")]
    OutOfBounds(&'static str),
}

impl NodeInfo {
    /// Reads a record from Redis: bounded, checked field by field.
    pub fn parse(bytes: &[u8]) -> Result<NodeInfo, RecordError> {
        if bytes.len() > MAX_NODE_RECORD {
            return Err(RecordError::TooLarge(bytes.len()));
        }
        let info: NodeInfo =
            serde_json::from_slice(bytes).map_err(|e| RecordError::Malformed(e.to_string()))?;
        if !(0.0..=1.0).contains(&info.cpu) {
            return Err(RecordError::OutOfBounds("cpu"));
        }
        if info.media.len() > MAX_ADDRS
            || info
                .media
                .iter()
                .chain([&info.http, &info.version])
                .any(|s| s.len() > 128)
        {
            return Err(RecordError::OutOfBounds("addresses"));
        }
        Ok(info)
    }

    pub fn to_json(&self) -> String {
        // A struct of plain fields with string keys always serialises.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Whether it may take one more room with one member.
    fn has_room(&self) -> bool {
        !self.draining && self.members < self.max_members && self.rooms < self.max_rooms
    }

    /// How loaded it is, 0 (idle) and up: its fullest limit and its processor together.
    fn load(&self) -> f64 {
        let share = |n: usize, max: usize| n as f64 / max.max(1) as f64;
        share(self.members, self.max_members).max(share(self.rooms, self.max_rooms)) + self.cpu
    }
}

/// The node a new room goes to: the least loaded of those within their limits and not
/// draining; ties go to the smaller id, so that nodes choosing at once agree.
pub fn choose_node(nodes: &[NodeInfo]) -> Option<&NodeInfo> {
    nodes
        .iter()
        .filter(|n| n.has_room())
        .min_by(|a, b| a.load().total_cmp(&b.load()).then_with(|| a.id.cmp(&b.id)))
}

/// Tells which nodes died: a node seen alive whose heartbeat is gone.
///
/// A node's heartbeat also disappears when Redis restarts empty, until the node beats again;
/// and while this node cannot reach Redis it knows nothing. So a missing heartbeat counts only
/// once this node has read Redis without a failure for a whole heartbeat lifetime.
#[derive(Debug)]
pub struct DeathWatch {
    ttl: Duration,
    /// Since when every reading of Redis has succeeded.
    healthy_since: Option<Instant>,
    /// Nodes known to be alive at some point and not yet declared dead.
    known: HashSet<NodeId>,
}

impl DeathWatch {
    pub fn new(ttl: Duration) -> DeathWatch {
        DeathWatch {
            ttl,
            healthy_since: None,
            known: HashSet::new(),
        }
    }

    /// A node to keep an eye on (one that owns a room a member here is in, or one whose
    /// members are in a room here), alive or not.
    pub fn watch(&mut self, node: &NodeId) {
        if !self.known.contains(node) {
            self.known.insert(node.clone());
        }
    }

    /// Redis could not be read.
    pub fn unreachable(&mut self) {
        self.healthy_since = None;
    }

    /// Redis was read at `now`: these nodes have a heartbeat. Returns the nodes that died,
    /// each once.
    pub fn alive(&mut self, now: Instant, alive: &[NodeId]) -> Vec<NodeId> {
        let since = *self.healthy_since.get_or_insert(now);
        self.known.extend(alive.iter().cloned());
        if now.duration_since(since) < self.ttl {
            return Vec::new();
        }
        let alive: HashSet<&NodeId> = alive.iter().collect();
        let mut dead: Vec<NodeId> = self
            .known
            .iter()
            .filter(|n| !alive.contains(n))
            .cloned()
            .collect();
        dead.sort();
        for n in &dead {
            self.known.remove(n);
        }
        dead
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, members: usize, rooms: usize, cpu: f64) -> NodeInfo {
        NodeInfo {
            id: NodeId::parse(id).unwrap(),
            http: "127.0.0.1:4000".into(),
            media: vec!["127.0.0.1:40000".into()],
            members,
            rooms,
            cpu,
            max_members: 100,
            max_rooms: 10,
            draining: false,
            version: "0.1.0".into(),
        }
    }

    #[test]
    fn a_new_room_goes_to_the_least_loaded_node_within_its_limits() {
        let nodes = vec![
            node("n1", 50, 2, 0.1),
            node("n2", 10, 1, 0.1),
            node("n3", 10, 1, 0.6),
        ];
        assert_eq!(choose_node(&nodes).unwrap().id.as_str(), "n2");
        // Full of members, full of rooms, or draining: never chosen.
        let mut full = nodes.clone();
        full[1].members = 100;
        full[2].rooms = 10;
        full[0].draining = true;
        assert!(choose_node(&full).is_none());
        full[0].draining = false;
        assert_eq!(choose_node(&full).unwrap().id.as_str(), "n1");
        assert!(choose_node(&[]).is_none());
    }

    #[test]
    fn equally_loaded_nodes_agree_on_the_smaller_id() {
        let nodes = vec![node("n9", 0, 0, 0.0), node("n10", 0, 0, 0.0)];
        let reversed: Vec<NodeInfo> = nodes.iter().rev().cloned().collect();
        assert_eq!(choose_node(&nodes), choose_node(&reversed));
    }

    #[test]
    fn a_node_record_from_redis_is_bounded_and_checked() {
        let good = node("n1", 1, 1, 0.5);
        assert_eq!(NodeInfo::parse(good.to_json().as_bytes()).unwrap(), good);
        let big = vec![b' '; MAX_NODE_RECORD + 1];
        assert_eq!(
            NodeInfo::parse(&big),
            Err(RecordError::TooLarge(MAX_NODE_RECORD + 1))
        );
        for bad in [
            "",
            "null",
            "{}",
            r#"{"id":"n1"}"#,
            &good.to_json().replace("\"n1\"", "\"../x\""),
            &good.to_json().replace("0.5", "7.5"),
            &good.to_json().replace("0.5", "-1"),
            &good.to_json().replace("\"members\":1", "\"members\":-1"),
            &good.to_json().replace("}", ",\"extra\":1}"),
        ] {
            assert!(NodeInfo::parse(bad.as_bytes()).is_err(), "{bad}");
        }
        let mut many = good.clone();
        many.media = vec!["x".into(); MAX_ADDRS + 1];
        assert!(NodeInfo::parse(many.to_json().as_bytes()).is_err());
    }

    #[test]
    fn a_node_is_dead_once_its_heartbeat_is_gone_while_redis_answers() {
        let ttl = Duration::from_secs(2);
        let mut watch = DeathWatch::new(ttl);
        let t0 = Instant::now();
        let (a, b) = (NodeId::parse("n1").unwrap(), NodeId::parse("n2").unwrap());
        assert!(watch.alive(t0, &[a.clone(), b.clone()]).is_empty());
        // Too soon after the first good reading to judge anyone.
        assert!(
            watch
                .alive(t0 + Duration::from_secs(1), std::slice::from_ref(&a))
                .is_empty()
        );
        let dead = watch.alive(t0 + ttl, std::slice::from_ref(&a));
        assert_eq!(dead, vec![b.clone()]);
        // Said once.
        assert!(
            watch
                .alive(t0 + ttl * 2, std::slice::from_ref(&a))
                .is_empty()
        );
    }

    #[test]
    fn after_redis_was_unreachable_nobody_is_judged_for_a_heartbeat_lifetime() {
        let ttl = Duration::from_secs(2);
        let mut watch = DeathWatch::new(ttl);
        let t0 = Instant::now();
        let (a, b) = (NodeId::parse("n1").unwrap(), NodeId::parse("n2").unwrap());
        watch.alive(t0, &[a.clone(), b.clone()]);
        watch.unreachable();
        // Redis is back, empty: neither has beaten yet.
        let t1 = t0 + Duration::from_secs(10);
        assert!(watch.alive(t1, &[]).is_empty());
        assert!(
            watch
                .alive(t1 + Duration::from_millis(500), std::slice::from_ref(&a))
                .is_empty()
        );
        // b never came back.
        assert_eq!(watch.alive(t1 + ttl, std::slice::from_ref(&a)), vec![b]);
    }

    #[test]
    fn a_watched_node_that_never_beats_is_dead_too() {
        let ttl = Duration::from_secs(2);
        let mut watch = DeathWatch::new(ttl);
        let t0 = Instant::now();
        let ghost = NodeId::parse("n7").unwrap();
        watch.alive(t0, &[]);
        watch.watch(&ghost);
        assert_eq!(watch.alive(t0 + ttl, &[]), vec![ghost]);
    }
}
