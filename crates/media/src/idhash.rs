//! A hasher for member ids. They are counters the server assigns, never chosen by a client,
//! so they need no protection against crafted collisions, and the map from member id to
//! member is looked up several times per forwarded packet: one multiplication instead of
//! SipHash.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::PeerId;

/// A map keyed by member id.
pub type PeerMap<V> = HashMap<PeerId, V, BuildHasherDefault<IdHasher>>;

/// Multiplicative hashing (as in rustc's FxHash). With an odd multiplier the low bits of
/// consecutive ids stay distinct, and the high bits are well mixed.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdHasher(u64);

const K: u64 = 0x517c_c1b7_2722_0a95;

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(b as u64);
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(K);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}
