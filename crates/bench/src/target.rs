//! The servers the load generator can drive, behind one interface: members join a room as
//! speakers (publish at speech level and receive) or listeners (receive; with open
//! microphones also publish, at a background level), and their media sessions record what
//! arrives.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use free4chat_client::{Client, ClientConfig, SharedState, VideoOptions};
use free4chat_signal::ServerMsg;

use crate::janus;
use crate::view::Tile;

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
    /// Whether it publishes audio.
    pub publishes: bool,
    /// The audio slots the server gives it (free4chat's `joined`); none where the server has
    /// no such thing (Janus).
    pub audio_slots: Option<usize>,
    /// When joining began (the WebSocket or HTTP session was opened).
    pub started: Instant,
    pub state: SharedState,
    pub(crate) inner: Inner,
}

pub(crate) enum Inner {
    /// Boxed: a client holds its whole `joined`, far larger than a Janus member.
    Free4chat(Box<Client>),
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
        /// How often each publisher sends a packet.
        packet_interval: Duration,
        /// The camera speakers publish, if any.
        video: Option<VideoOptions>,
        /// The tile every member shows every camera in, if said.
        tile: Option<Tile>,
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

    /// Joins member `index` of `room`, publishing at `level` dBov (none: not publishing).
    pub async fn join(
        &self,
        room: usize,
        index: usize,
        role: Role,
        level: Option<i8>,
        local_ip: IpAddr,
    ) -> Result<Member, String> {
        match self {
            Target::Free4chat {
                http,
                run,
                packet_interval,
                video,
                ..
            } => {
                let name = match role {
                    Role::Speaker => format!("speaker-{index}"),
                    Role::Listener => format!("listener-{index}"),
                };
                // Each room's members spread over the nodes: most are relayed to the room's.
                let Some(node) = http.get((room + index) % http.len().max(1)) else {
                    return Err("no server to connect to".into());
                };
                let mut config = ClientConfig::new(*node, &format!("bench-{run}-{room}"), &name);
                config.publish = level.is_some();
                if let Some(level) = level {
                    config.audio_level = level;
                }
                config.local_ip = local_ip;
                config.packet_interval = *packet_interval;
                if role == Role::Speaker {
                    config.video = video.clone();
                }
                let started = Instant::now();
                let client = Client::join(config).await.map_err(|e| e.to_string())?;
                let audio_slots = match &client.joined {
                    ServerMsg::Joined { audio_slots, .. } => Some(*audio_slots),
                    _ => None,
                };
                Ok(Member {
                    room,
                    role,
                    sender_id: client.id.0,
                    publishes: level.is_some(),
                    audio_slots,
                    started,
                    state: client.state(),
                    inner: Inner::Free4chat(Box::new(client)),
                })
            }
            Target::Janus(j) => j.join(room, index, role, level, local_ip).await,
        }
    }

    /// Called once every member of `room` has joined (speakers first, then listeners).
    pub async fn room_complete(&self, room: usize, members: &mut [Member]) -> Result<(), String> {
        match self {
            Target::Free4chat { tile: None, .. } => Ok(()),
            Target::Free4chat {
                tile: Some(tile), ..
            } => crate::view::show_cameras(members, *tile).await,
            Target::Janus(j) => j.room_complete(room, members).await,
        }
    }
}
