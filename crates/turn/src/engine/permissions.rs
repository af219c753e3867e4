//! Permissions and channels: which of our media addresses an allocation may reach, and
//! by which channel numbers.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use stun_types::attribute::ErrorCode;
use stun_types::message::Message;
use stun_types::prelude::*;
use turn_types::attribute::{ChannelNumber, XorPeerAddress};

use crate::framing::CHANNELS;

use super::allocation::Allocation;
use super::answer::Req;
use super::authentication::Authed;
use super::{Engine, FiveTuple};

/// Permission lifetime (RFC 8656 §9).
const PERMISSION_LIFETIME: Duration = Duration::from_secs(300);
/// Channel binding lifetime (RFC 8656 §12).
const CHANNEL_LIFETIME: Duration = Duration::from_secs(600);
/// After a channel binding expires, its number and peer stay reserved this long (RFC 8656 §12).
pub(super) const CHANNEL_COOLDOWN: Duration = Duration::from_secs(300);
/// At most this many XOR-PEER-ADDRESS attributes in one CreatePermission.
const MAX_PEERS_PER_REQUEST: usize = 16;

/// A channel binding: a number standing for one of our media addresses.
pub(super) struct Channel {
    pub(super) number: u16,
    /// The peer's advertised address.
    pub(super) peer: SocketAddr,
    pub(super) expires: Instant,
}

impl Allocation {
    pub(super) fn permitted(&self, ip: IpAddr, now: Instant) -> bool {
        self.permissions.get(&ip).is_some_and(|&e| e > now)
    }

    pub(super) fn channel_by_number(&self, number: u16, now: Instant) -> Option<&Channel> {
        self.channels
            .iter()
            .find(|c| c.number == number && c.expires > now)
    }

    pub(super) fn channel_by_peer(&self, peer: SocketAddr, now: Instant) -> Option<&Channel> {
        self.channels
            .iter()
            .find(|c| c.peer == peer && c.expires > now)
    }
}

fn same_family(a: IpAddr, b: IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

impl Engine {
    /// Checks a peer address against our media addresses: `Err(code)` to refuse it.
    fn check_peer(&mut self, peer: SocketAddr) -> Result<(), u16> {
        if !same_family(peer.ip(), self.cfg.relay_ip) {
            self.stats.refused_peer += 1;
            return Err(ErrorCode::PEER_ADDRESS_FAMILY_MISMATCH);
        }
        if !self.to_local.contains_key(&peer) {
            self.stats.refused_peer += 1;
            return Err(ErrorCode::FORBIDDEN);
        }
        Ok(())
    }

    pub(super) fn create_permission(
        &mut self,
        tuple: FiveTuple,
        msg: &Message,
        req: Req,
        auth: &Authed,
        now: Instant,
    ) {
        let key = Some(&auth.key);
        if self.active(&tuple, now).is_none() {
            return self.error(tuple, req, ErrorCode::ALLOCATION_MISMATCH, key);
        }
        let mut peers = Vec::new();
        for (_, raw) in msg.iter_attributes() {
            if raw.get_type() != XorPeerAddress::TYPE {
                continue;
            }
            let parsed = XorPeerAddress::try_from(&raw);
            match parsed {
                Ok(p) if peers.len() < MAX_PEERS_PER_REQUEST => peers.push(p.addr(req.tx)),
                _ => {
                    self.stats.malformed += 1;
                    return self.error(tuple, req, ErrorCode::BAD_REQUEST, key);
                }
            }
        }
        if peers.is_empty() {
            self.stats.malformed += 1;
            return self.error(tuple, req, ErrorCode::BAD_REQUEST, key);
        }
        for &peer in &peers {
            if let Err(code) = self.check_peer(peer) {
                return self.error(tuple, req, code, key);
            }
        }
        if let Some(a) = self.allocations.get_mut(&tuple) {
            for peer in peers {
                a.permissions.insert(peer.ip(), now + PERMISSION_LIFETIME);
            }
        }
        self.succeed(tuple, req, key);
    }

    pub(super) fn channel_bind(
        &mut self,
        tuple: FiveTuple,
        msg: &Message,
        req: Req,
        auth: &Authed,
        now: Instant,
    ) {
        let key = Some(&auth.key);
        if self.active(&tuple, now).is_none() {
            return self.error(tuple, req, ErrorCode::ALLOCATION_MISMATCH, key);
        }
        let (Ok(number), Ok(peer)) = (
            msg.attribute::<ChannelNumber>(),
            msg.attribute::<XorPeerAddress>(),
        ) else {
            self.stats.malformed += 1;
            return self.error(tuple, req, ErrorCode::BAD_REQUEST, key);
        };
        let number = number.channel();
        let peer = peer.addr(req.tx);
        if !CHANNELS.contains(&number) {
            self.stats.malformed += 1;
            return self.error(tuple, req, ErrorCode::BAD_REQUEST, key);
        }
        if let Err(code) = self.check_peer(peer) {
            return self.error(tuple, req, code, key);
        }
        let Some(a) = self.allocations.get_mut(&tuple) else {
            return;
        };
        // A number is bound to one peer and a peer to one number, including during the
        // cooldown after expiry.
        let conflict = a
            .channels
            .iter()
            .any(|c| (c.number == number) != (c.peer == peer));
        if conflict {
            return self.error(tuple, req, ErrorCode::BAD_REQUEST, key);
        }
        match a.channels.iter_mut().find(|c| c.number == number) {
            Some(c) => c.expires = now + CHANNEL_LIFETIME,
            None => a.channels.push(Channel {
                number,
                peer,
                expires: now + CHANNEL_LIFETIME,
            }),
        }
        a.permissions.insert(peer.ip(), now + PERMISSION_LIFETIME);
        self.succeed(tuple, req, key);
    }
}
