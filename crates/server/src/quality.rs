//! The members' connection quality, read from the media workers' boards every few seconds:
//! kept here for the admin API, and handed to each room as its members' levels, which the
//! room tells its members (`rooms::quality`) when they change.
//!
//! The media threads only publish what they hold when asked (as they do for every figure);
//! nothing here is on the packet path.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use free4chat_sfu::quality::{Figures, Level, MemberQuality};
use free4chat_signal::{MemberId, Quality, RoomId};
use serde::Serialize;
use tokio::sync::watch;

use crate::rooms::{MediaWorkers, RoomDirectory};

/// How often the levels are read and rooms told of changes.
pub const QUALITY_EVERY: Duration = Duration::from_secs(3);

/// One member's figures as the admin API shows them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MemberFigures {
    pub connected: bool,
    #[serde(flatten)]
    pub figures: Figures,
    /// `udp`, `tcp` or `turn` (relayed by the integrated TURN server); none before media
    /// flows.
    pub path: Option<&'static str>,
    /// The level the room's members are told.
    pub quality: Option<Quality>,
}

/// Tells relayed media apart: the integrated TURN server's relay sockets send from its relay
/// ports, on this host's own addresses.
pub struct Relays {
    pub turn: Option<Arc<free4chat_turn::TurnHandle>>,
    /// The addresses the media sockets are reached at (a relay on this host sends from one of
    /// them, or from loopback).
    pub local_ips: Vec<IpAddr>,
}

impl Relays {
    fn is_relay(&self, remote: SocketAddr) -> bool {
        let ip = remote.ip();
        let ours = ip.is_loopback() || self.local_ips.contains(&ip);
        ours && self
            .turn
            .as_ref()
            .is_some_and(|t| t.is_relay_port(remote.port()))
    }
}

/// The latest reading of every member of this node.
pub struct QualityView {
    latest: Mutex<HashMap<MemberId, MemberFigures>>,
    relays: Relays,
}

fn level(q: &MemberQuality) -> Option<Quality> {
    q.level().map(|l| match l {
        Level::Good => Quality::Good,
        Level::Fair => Quality::Fair,
        Level::Poor => Quality::Poor,
        Level::Unconnected => Quality::Unconnected,
    })
}

impl QualityView {
    pub fn new(relays: Relays) -> QualityView {
        QualityView {
            latest: Mutex::new(HashMap::new()),
            relays,
        }
    }

    /// A member's latest figures, if their media session is on this node.
    pub fn of(&self, member: MemberId) -> Option<MemberFigures> {
        self.latest.lock().ok()?.get(&member).copied()
    }

    /// Takes a reading of the workers; returns each room's members' levels.
    fn take(&self, reading: Vec<MemberQuality>) -> HashMap<RoomId, Vec<(MemberId, Quality)>> {
        let mut rooms: HashMap<RoomId, Vec<(MemberId, Quality)>> = HashMap::new();
        let mut latest = HashMap::with_capacity(reading.len());
        for q in &reading {
            let quality = level(q);
            if let Some(l) = quality {
                rooms.entry(q.room).or_default().push((q.member, l));
            }
            let path = q.figures.path.map(|p| match p.protocol {
                "udp" if self.relays.is_relay(p.remote) => "turn",
                other => other,
            });
            let figures = MemberFigures {
                connected: q.connected,
                figures: q.figures,
                path,
                quality,
            };
            latest.insert(q.member, figures);
        }
        if let Ok(mut l) = self.latest.lock() {
            *l = latest;
        }
        rooms
    }
}

/// Reads the workers' quality every [`QUALITY_EVERY`] and tells the rooms, until `stop`.
pub fn spawn(
    view: Arc<QualityView>,
    rooms: Arc<dyn RoomDirectory>,
    media: Arc<MediaWorkers>,
    mut stop: watch::Receiver<bool>,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(QUALITY_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            let mut by_room = view.take(media.fresh_quality().await);
            // Every room, those with no media session too: a room tells its members of one
            // whose media never started.
            for summary in rooms.local_rooms().await {
                let levels = by_room.remove(&summary.id).unwrap_or_default();
                if let Some(handle) = rooms.find(&summary.room).await
                    && handle.id() == summary.id
                {
                    handle.quality(levels);
                }
            }
        }
    });
}
