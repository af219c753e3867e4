//! The servers the load generator can drive, behind one interface: members join a room as
//! speakers (publish and receive) or listeners (receive only), and their media sessions
//! record what arrives.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use free4chat_client::{Client, ClientConfig, SharedState};

use crate::janus;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Speaker,
    Listener,
}

/// One simulated member.
pub struct Member {
    pub room: usize,
    pub role: Role,
    /// The id this member writes into the audio it sends.
    pub sender_id: u64,
    /// When joining began (the WebSocket or HTTP session was opened).
    pub started: Instant,
    pub state: SharedState,
    pub(crate) inner: Inner,
}

pub(crate) enum Inner {
    Free4chat(Client),
    Janus(janus::JanusMember),
}

impl Member {
    /// Leaves politely.
    pub async fn leave(self) {
        match self.inner {
            Inner::Free4chat(c) => c.leave().await,
            Inner::Janus(j) => j.leave().await,
        }
    }
}

pub enum Target {
    /// The nodes members connect to (one, or a cluster's), and a tag making room names unique
    /// to this run.
    Free4chat {
        http: Vec<SocketAddr>,
        run: String,
    },
    Janus(janus::Janus),
}

impl Target {
    pub fn name(&self) -> &'static str {
        match self {
            Target::Free4chat { .. } => "free4chat",
            Target::Janus(_) => "janus",
        }
    }

    /// Joins member `index` of `room`.
    pub async fn join(
        &self,
        room: usize,
        index: usize,
        role: Role,
        local_ip: IpAddr,
    ) -> Result<Member, String> {
        match self {
            Target::Free4chat { http, run } => {
                let name = match role {
                    Role::Speaker => format!("speaker-{index}"),
                    Role::Listener => format!("listener-{index}"),
                };
                // Each room's members spread over the nodes: most are relayed to the room's.
                let Some(node) = http.get((room + index) % http.len().max(1)) else {
                    return Err("no server to connect to".into());
                };
                let mut config = ClientConfig::new(*node, &format!("bench-{run}-{room}"), &name);
                config.publish = role == Role::Speaker;
                config.local_ip = local_ip;
                let started = Instant::now();
                let client = Client::join(config).await.map_err(|e| e.to_string())?;
                Ok(Member {
                    room,
                    role,
                    sender_id: client.id.0,
                    started,
                    state: client.state(),
                    inner: Inner::Free4chat(client),
                })
            }
            Target::Janus(j) => j.join(room, index, role, local_ip).await,
        }
    }

    /// Called once every member of `room` has joined (speakers first, then listeners).
    pub async fn room_complete(&self, room: usize, members: &mut [Member]) -> Result<(), String> {
        match self {
            Target::Free4chat { .. } => Ok(()),
            Target::Janus(j) => j.room_complete(room, members).await,
        }
    }
}
