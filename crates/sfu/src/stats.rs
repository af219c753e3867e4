//! The core's figures: what it holds (to prove state is freed) and what it has done.

use serde::Serialize;

/// A reading of one core's figures. Gauges say what the core holds now; counters are
/// cumulative since start (compare two readings to get a window).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CoreStats {
    /// Rooms with a shard here.
    pub rooms: usize,
    pub participants: usize,
    /// Tracks published here or relayed here from other workers.
    pub up_tracks: usize,
    /// Remote addresses known for demultiplexing (UDP and TCP).
    pub addrs: usize,
    /// Of `addrs`, those of TCP connections.
    pub tcp_addrs: usize,
    /// ICE usernames known for demultiplexing.
    pub ufrags: usize,
    pub timers: usize,
    /// Media packets written to subscribers.
    pub forwarded: u64,
    /// Published packets handed to other workers for their members (one per worker).
    pub relayed: u64,
    /// Relayed packets received from other workers.
    pub relayed_in: u64,
    /// Datagrams that were not STUN, DTLS, RTP or RTCP.
    pub garbage: u64,
    /// Datagrams from an address and with a username nobody here knows, and first frames of
    /// TCP connections that were not a STUN binding request.
    pub unknown: u64,
    /// Participants dropped because their media session failed or panicked.
    pub failed: u64,
    /// Keyframe requests sent to publishers (after throttling).
    pub keyframe_requests: u64,
}

impl CoreStats {
    /// Adds another core's figures into these.
    pub fn merge(&mut self, o: &CoreStats) {
        let CoreStats {
            rooms,
            participants,
            up_tracks,
            addrs,
            tcp_addrs,
            ufrags,
            timers,
            forwarded,
            relayed,
            relayed_in,
            garbage,
            unknown,
            failed,
            keyframe_requests,
        } = *o;
        self.rooms += rooms;
        self.participants += participants;
        self.up_tracks += up_tracks;
        self.addrs += addrs;
        self.tcp_addrs += tcp_addrs;
        self.ufrags += ufrags;
        self.timers += timers;
        self.forwarded += forwarded;
        self.relayed += relayed;
        self.relayed_in += relayed_in;
        self.garbage += garbage;
        self.unknown += unknown;
        self.failed += failed;
        self.keyframe_requests += keyframe_requests;
    }
}
