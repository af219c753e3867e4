//! Which participant a datagram is for: by the remote address it came from, and for a STUN
//! binding request from an address not yet known, by the USERNAME's local ufrag (ours, unique
//! per participant).
//!
//! Addresses come from the network, so they are hashed with SipHash (a sender cannot choose
//! addresses that collide), and each participant is known by at most
//! [`MAX_ADDRS_PER_PARTICIPANT`] of them.

use std::collections::HashMap;
use std::net::SocketAddr;

use rustc_hash::FxHashMap;
use str0m::ice::StunMessage;
use str0m::net::Protocol;

use crate::participants::ParticipantKey;

/// A remote address with the transport it was seen on: a UDP and a TCP remote may share an
/// address and belong to different participants.
pub type Remote = (Protocol, SocketAddr);

/// How many remote addresses one participant may be known by at once (ICE can try several).
pub const MAX_ADDRS_PER_PARTICIPANT: usize = 8;

#[derive(Debug, Default)]
pub struct Demux {
    by_addr: HashMap<Remote, ParticipantKey>,
    by_ufrag: HashMap<String, ParticipantKey>,
    /// Each participant's addresses, oldest first.
    addrs: FxHashMap<ParticipantKey, Vec<Remote>>,
}

impl Demux {
    /// The participant known by `remote`.
    pub fn find(&self, remote: Remote) -> Option<ParticipantKey> {
        self.by_addr.get(&remote).copied()
    }

    /// The participant a STUN message is for, by the local ufrag of its USERNAME.
    pub fn find_by_stun(&self, data: &[u8]) -> Option<ParticipantKey> {
        let msg = StunMessage::parse(data).ok()?;
        let (local, _remote) = msg.split_username()?;
        self.by_ufrag.get(local).copied()
    }

    /// A new participant, whose STUN requests carry `ufrag`.
    pub fn add(&mut self, key: ParticipantKey, ufrag: String) {
        self.by_ufrag.insert(ufrag, key);
        self.addrs.entry(key).or_default();
    }

    /// Knows `key` by `remote` from now on. An address another participant was known by now
    /// belongs to this one; past [`MAX_ADDRS_PER_PARTICIPANT`], the oldest is forgotten.
    /// Returns the TCP remote no longer anyone's, whose connection should close.
    pub fn remember(&mut self, key: ParticipantKey, remote: Remote) -> Option<SocketAddr> {
        let own = self.addrs.get_mut(&key)?;
        if own.contains(&remote) {
            return None;
        }
        let mut closed = None;
        if own.len() >= MAX_ADDRS_PER_PARTICIPANT {
            let evicted = own.remove(0);
            if self.by_addr.get(&evicted) == Some(&key) {
                self.by_addr.remove(&evicted);
                if evicted.0 == Protocol::Tcp {
                    closed = Some(evicted.1);
                }
            }
        }
        own.push(remote);
        if let Some(previous) = self.by_addr.insert(remote, key)
            && previous != key
            && let Some(theirs) = self.addrs.get_mut(&previous)
        {
            theirs.retain(|a| *a != remote);
        }
        closed
    }

    /// Forgets a participant: its ufrag and addresses. Returns its TCP remotes, whose
    /// connections should close.
    pub fn remove(&mut self, key: ParticipantKey, ufrag: &str) -> Vec<SocketAddr> {
        if self.by_ufrag.get(ufrag) == Some(&key) {
            self.by_ufrag.remove(ufrag);
        }
        let mut closed = Vec::new();
        for remote in self.addrs.remove(&key).unwrap_or_default() {
            if self.by_addr.get(&remote) == Some(&key) {
                self.by_addr.remove(&remote);
                if remote.0 == Protocol::Tcp {
                    closed.push(remote.1);
                }
            }
        }
        closed
    }

    /// A TCP connection from `remote` has closed: nobody is known by it any more.
    pub fn tcp_closed(&mut self, remote: SocketAddr) {
        let key = (Protocol::Tcp, remote);
        if let Some(owner) = self.by_addr.remove(&key)
            && let Some(addrs) = self.addrs.get_mut(&owner)
        {
            addrs.retain(|a| *a != key);
        }
    }

    pub fn addrs(&self) -> usize {
        self.by_addr.len()
    }

    pub fn tcp_addrs(&self) -> usize {
        self.by_addr
            .keys()
            .filter(|(proto, _)| *proto == Protocol::Tcp)
            .count()
    }

    pub fn ufrags(&self) -> usize {
        self.by_ufrag.len()
    }

    /// Gives back the capacity that busy times left.
    pub fn shrink(&mut self) {
        self.by_addr.shrink_to_fit();
        self.by_ufrag.shrink_to_fit();
        self.addrs.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udp(port: u16) -> Remote {
        (Protocol::Udp, SocketAddr::from(([127, 0, 0, 1], port)))
    }

    fn tcp(port: u16) -> Remote {
        (Protocol::Tcp, SocketAddr::from(([127, 0, 0, 1], port)))
    }

    #[test]
    fn an_address_belongs_to_the_participant_last_seen_at_it() {
        let (a, b) = (ParticipantKey(0), ParticipantKey(1));
        let mut d = Demux::default();
        d.add(a, "ua".into());
        d.add(b, "ub".into());
        assert_eq!(d.remember(a, udp(1)), None);
        assert_eq!(d.remember(a, tcp(1)), None);
        assert_eq!(d.find(udp(1)), Some(a));
        assert_eq!(
            d.find(tcp(1)),
            Some(a),
            "UDP and TCP on one address are apart"
        );
        assert_eq!(d.remember(b, udp(1)), None);
        assert_eq!(d.find(udp(1)), Some(b));
        // a no longer claims it: removing a leaves b's address alone.
        assert_eq!(d.remove(a, "ua"), vec![tcp(1).1]);
        assert_eq!(d.find(udp(1)), Some(b));
        assert_eq!(d.find(tcp(1)), None);
        assert_eq!((d.addrs(), d.ufrags()), (1, 1));
    }

    #[test]
    fn a_participant_is_known_by_a_bounded_number_of_addresses() {
        let a = ParticipantKey(3);
        let mut d = Demux::default();
        d.add(a, "ua".into());
        assert_eq!(d.remember(a, tcp(100)), None);
        for port in 1..MAX_ADDRS_PER_PARTICIPANT as u16 {
            assert_eq!(d.remember(a, udp(port)), None);
        }
        // The oldest, a TCP connection, goes, and its connection is to close.
        assert_eq!(d.remember(a, udp(999)), Some(tcp(100).1));
        assert_eq!(d.addrs(), MAX_ADDRS_PER_PARTICIPANT);
        assert_eq!(d.find(tcp(100)), None);
        d.tcp_closed(tcp(5).1);
        assert_eq!(d.addrs(), MAX_ADDRS_PER_PARTICIPANT);
    }

    #[test]
    fn unknown_participants_and_garbage_never_panic() {
        let mut d = Demux::default();
        assert_eq!(d.remember(ParticipantKey(9), udp(1)), None);
        assert!(d.remove(ParticipantKey(9), "nobody").is_empty());
        d.tcp_closed(tcp(1).1);
        let mut x = 0x2545_f491_4f6c_dd1d_u64;
        for len in 0..300 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            assert_eq!(d.find_by_stun(&bytes), None);
        }
    }
}
