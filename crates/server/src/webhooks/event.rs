//! An event's JSON, and its signature.

use std::time::{SystemTime, UNIX_EPOCH};

use free4chat_signal::{MemberId, RoomId};
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

use crate::rooms::Lifecycle;

/// The header that carries an attempt's signature: `t=<unix seconds>,v1=<hex>`.
pub const SIGNATURE_HEADER: &str = "x-free4chat-signature";

/// One event, written once for every receiver and every attempt.
#[derive(Debug)]
pub(super) struct Event {
    /// Its kind, as in the body (`room_started`…), also sent as a header.
    pub name: &'static str,
    /// Unique to this event, kept across retries: receivers may ignore one seen before.
    pub id: String,
    /// The JSON body.
    pub body: String,
}

/// The body's fields (`docs/webhooks.md`).
#[derive(Serialize)]
struct Body<'a> {
    event: &'static str,
    id: &'a str,
    /// When it happened, in milliseconds since the Unix epoch.
    timestamp_ms: u64,
    room: &'a str,
    room_id: RoomId,
    #[serde(skip_serializing_if = "Option::is_none")]
    member_id: Option<MemberId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    member_name: Option<&'a str>,
    /// The node the room runs on, in cluster mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    node: Option<&'a str>,
}

impl Event {
    pub fn new(room: &str, room_id: RoomId, what: Lifecycle<'_>, node: Option<&str>) -> Event {
        let (name, member) = match what {
            Lifecycle::Started => ("room_started", None),
            Lifecycle::MemberJoined { member, name } => ("member_joined", Some((member, name))),
            Lifecycle::MemberLeft { member, name } => ("member_left", Some((member, name))),
            Lifecycle::Finished => ("room_finished", None),
        };
        let id = format!("evt_{:032x}", rand::random::<u128>());
        let timestamp_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let body = Body {
            event: name,
            id: &id,
            timestamp_ms,
            room,
            room_id,
            member_id: member.map(|(id, _)| id),
            member_name: member.map(|(_, name)| name),
            node,
        };
        // A struct of strings and numbers always serializes.
        let body = serde_json::to_string(&body).unwrap_or_default();
        Event { name, id, body }
    }
}

/// The hex HMAC-SHA256, keyed by `secret`, of `<t>.<body>`: what `v1=` carries.
pub fn signature(secret: &[u8], t: u64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_hmac_of_the_time_a_dot_and_the_body() {
        // As Python's hmac.new(b"Jefe", b"12.what do ya want for nothing?", sha256) has it.
        let text = "what do ya want for nothing?";
        assert_eq!(
            signature(b"Jefe", 12, text),
            "884f387af4fab053210fff358c2ae1ceb946a70c677f05c2b731ca65c7769498"
        );
        assert_ne!(signature(b"Jefe", 13, text), signature(b"Jefe", 12, text));
    }

    #[test]
    fn a_member_event_names_the_member_and_a_room_event_does_not() {
        let joined = Lifecycle::MemberJoined {
            member: MemberId(5),
            name: "Ann \"A\"",
        };
        let e = Event::new("lobby", RoomId(7), joined, Some("node-1"));
        let v: serde_json::Value = serde_json::from_str(&e.body).unwrap();
        assert_eq!(v["event"], "member_joined");
        assert_eq!(v["room"], "lobby");
        assert_eq!(v["room_id"], 7);
        assert_eq!(v["member_id"], 5);
        assert_eq!(v["member_name"], "Ann \"A\"");
        assert_eq!(v["node"], "node-1");
        assert_eq!(v["id"], e.id.as_str());
        assert!(v["timestamp_ms"].as_u64().unwrap() > 1_700_000_000_000);

        let started = Event::new("lobby", RoomId(7), Lifecycle::Started, None);
        let v: serde_json::Value = serde_json::from_str(&started.body).unwrap();
        assert_eq!(v["event"], "room_started");
        assert!(v.get("member_id").is_none() && v.get("node").is_none());
        assert_ne!(started.id, e.id);
    }
}
