//! The identities and kinds every free4chat crate shares.
//!
//! Member and room ids are numbers on the wire (JSON), so they must stay exact in a browser's
//! JavaScript: every id is below 2^53. They must also stay unique across the nodes of a
//! cluster, not only within one process: an [`IdSpace`] hands out ids made of a prefix that is
//! the node's own (random, or assigned by the cluster) and a counter.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// Bits of an id taken by the counter; the node's prefix takes the 20 above them.
const COUNTER_BITS: u32 = 33;
/// Prefixes are below this: with the counter, every id stays below 2^53.
pub const PREFIX_LIMIT: u64 = 1 << (53 - COUNTER_BITS);

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<u64> for $name {
            fn from(n: u64) -> $name {
                $name(n)
            }
        }
    };
}

id_type!(
    /// A member of a room: one person's connection, from `join` until they leave.
    MemberId
);
id_type!(
    /// One running room (a room that empties and fills again is a new room with a new id).
    RoomId
);

/// Hands out ids unique across nodes: `prefix · 2^33 + counter`. Two nodes with different
/// prefixes never make the same id; one node makes 2^33 ids before its counter would wrap,
/// which at a thousand joins a second is three months.
#[derive(Debug)]
pub struct IdSpace {
    prefix: u64,
    next: AtomicU64,
}

impl IdSpace {
    /// Ids under `prefix` (taken modulo [`PREFIX_LIMIT`]). Prefix 0 is as good as any other.
    pub fn new(prefix: u64) -> IdSpace {
        IdSpace {
            prefix: prefix % PREFIX_LIMIT,
            next: AtomicU64::new(1),
        }
    }

    pub fn prefix(&self) -> u64 {
        self.prefix
    }

    /// The next id: never 0, never repeated by this space, below 2^53.
    pub fn next(&self) -> u64 {
        let counter = self.next.fetch_add(1, Ordering::Relaxed) & ((1 << COUNTER_BITS) - 1);
        (self.prefix << COUNTER_BITS) | counter
    }

    pub fn member(&self) -> MemberId {
        MemberId(self.next())
    }

    pub fn room(&self) -> RoomId {
        RoomId(self.next())
    }
}

/// The kind of a media track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackKind {
    Audio,
    Video,
}

/// What a track carries: the device or surface it comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackSource {
    /// Also what a track described without a source is: before sources were part of the
    /// protocol, every published track was a microphone.
    #[default]
    Microphone,
    Camera,
    /// A shared screen, window or tab: its picture, or the sound it plays.
    Screen,
}

impl TrackSource {
    /// The source of a track whose publisher did not say: a microphone for audio, a camera
    /// for video.
    pub fn default_for(kind: TrackKind) -> TrackSource {
        match kind {
            TrackKind::Audio => TrackSource::Microphone,
            TrackKind::Video => TrackSource::Camera,
        }
    }

    /// Whether a track of `kind` can come from this source: a microphone gives audio, a camera
    /// video, and a shared screen either.
    pub fn carries(self, kind: TrackKind) -> bool {
        match self {
            TrackSource::Microphone => kind == TrackKind::Audio,
            TrackSource::Camera => kind == TrackKind::Video,
            TrackSource::Screen => true,
        }
    }

    /// The source of a published track of `kind`: the one declared, if it can carry that
    /// kind, else the default.
    pub fn resolve(declared: Option<TrackSource>, kind: TrackKind) -> TrackSource {
        declared
            .filter(|s| s.carries(kind))
            .unwrap_or_else(|| TrackSource::default_for(kind))
    }
}

impl fmt::Display for TrackSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrackSource::Microphone => "microphone",
            TrackSource::Camera => "camera",
            TrackSource::Screen => "screen",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_of_two_spaces_never_meet_and_stay_exact_in_javascript() {
        let a = IdSpace::new(1);
        let b = IdSpace::new(PREFIX_LIMIT - 1);
        let from_a: Vec<u64> = (0..1000).map(|_| a.next()).collect();
        let from_b: Vec<u64> = (0..1000).map(|_| b.next()).collect();
        assert!(from_a.iter().all(|id| !from_b.contains(id)));
        assert!(
            from_a
                .iter()
                .chain(&from_b)
                .all(|id| *id < (1 << 53) && *id != 0)
        );
        let mut sorted = from_a.clone();
        sorted.dedup();
        assert_eq!(sorted.len(), 1000, "no id repeats within a space");
        // A prefix out of range wraps into range rather than overflowing.
        assert_eq!(IdSpace::new(u64::MAX).prefix(), (u64::MAX) % PREFIX_LIMIT);
        assert!(IdSpace::new(u64::MAX).next() < 1 << 53);
    }

    #[test]
    fn ids_are_plain_numbers_on_the_wire() {
        assert_eq!(serde_json::to_string(&MemberId(42)).unwrap(), "42");
        assert_eq!(serde_json::from_str::<RoomId>("7").unwrap(), RoomId(7));
        assert_eq!(
            serde_json::to_string(&TrackSource::Screen).unwrap(),
            "\"screen\""
        );
        assert!(serde_json::from_str::<MemberId>("-1").is_err());
        assert!(serde_json::from_str::<TrackSource>("\"radio\"").is_err());
    }
}
