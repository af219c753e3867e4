//! Allocations: granting, refreshing and freeing them, their relay sockets and their
//! quotas.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use stun_types::attribute::{ErrorCode, XorMappedAddress};
use stun_types::message::{IntegrityKey, Message, MessageClass, TransactionId};
use stun_types::prelude::*;
use turn_types::attribute::{
    Lifetime, RequestedAddressFamily, RequestedTransport, XorRelayedAddress,
};
use turn_types::message::{ALLOCATE, REFRESH};

use super::answer::{Req, build};
use super::authentication::Authed;
use super::client_key;
use super::permissions::Channel;
use super::{Engine, FiveTuple, Output, RelayId};

/// Allocation lifetime when the client asks for none or for less (RFC 8656 §3.3).
pub(super) const DEFAULT_LIFETIME: Duration = Duration::from_secs(600);
/// The longest allocation lifetime granted per Allocate or Refresh.
pub(super) const MAX_LIFETIME: Duration = Duration::from_secs(3600);

/// One client's relay: its socket, its credentials, and the peers it may reach.
pub(super) struct Allocation {
    pub(super) relay: RelayId,
    /// `None` while the shell opens the relay socket.
    pub(super) relay_addr: Option<SocketAddr>,
    pub(super) username: String,
    pub(super) key: IntegrityKey,
    /// The Allocate request's transaction, to answer its retransmissions.
    pub(super) tx: TransactionId,
    pub(super) fingerprint: bool,
    pub(super) expires: Instant,
    /// Peer IP → expiry. Only our media IPs get in, so it stays small.
    pub(super) permissions: HashMap<IpAddr, Instant>,
    /// At most one per peer and per number, peers being our media addresses only.
    pub(super) channels: Vec<Channel>,
}

pub(super) fn lifetime_for(requested: Option<u32>) -> Duration {
    match requested {
        Some(s) => Duration::from_secs(u64::from(s)).clamp(DEFAULT_LIFETIME, MAX_LIFETIME),
        None => DEFAULT_LIFETIME,
    }
}

impl Engine {
    pub(super) fn remove_allocation(&mut self, tuple: FiveTuple) {
        let Some(a) = self.allocations.remove(&tuple) else {
            return;
        };
        self.relays.remove(&a.relay);
        let ip = client_key(tuple.client.ip());
        if let Some(n) = self.per_ip.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
        }
        self.out.push_back(Output::CloseRelay { relay: a.relay });
        if tuple.is_stream() && self.forget_stream(tuple) {
            self.out.push_back(Output::CloseStream { tuple });
        }
    }

    pub(super) fn allocate(
        &mut self,
        tuple: FiveTuple,
        msg: &Message,
        req: Req,
        auth: Authed,
        now: Instant,
    ) {
        let key = Some(&auth.key);
        if let Some(a) = self.allocations.get(&tuple) {
            if a.tx == req.tx {
                // A retransmission: answer again once the relay is open.
                if a.relay_addr.is_some() {
                    self.allocate_success(tuple, now);
                }
            } else {
                self.error(tuple, req, ErrorCode::ALLOCATION_MISMATCH, key);
            }
            return;
        }
        let Ok(transport) = msg.attribute::<RequestedTransport>() else {
            self.stats.malformed += 1;
            return self.error(tuple, req, ErrorCode::BAD_REQUEST, key);
        };
        if transport.protocol() != RequestedTransport::UDP {
            return self.error(tuple, req, ErrorCode::UNSUPPORTED_TRANSPORT_PROTOCOL, key);
        }
        if msg.has_attribute(RequestedAddressFamily::TYPE) {
            let ours = if self.cfg.relay_ip.is_ipv4() {
                stun_types::AddressFamily::IPV4
            } else {
                stun_types::AddressFamily::IPV6
            };
            match msg.attribute::<RequestedAddressFamily>() {
                Ok(f) if f.family() == ours => {}
                Ok(_) => {
                    return self.error(tuple, req, ErrorCode::ADDRESS_FAMILY_NOT_SUPPORTED, key);
                }
                Err(_) => {
                    self.stats.malformed += 1;
                    return self.error(tuple, req, ErrorCode::BAD_REQUEST, key);
                }
            }
        }
        let ip = client_key(tuple.client.ip());
        if self.per_ip.get(&ip).copied().unwrap_or(0) >= self.cfg.max_allocations_per_ip {
            self.stats.refused_quota += 1;
            return self.error(tuple, req, ErrorCode::ALLOCATION_QUOTA_REACHED, key);
        }
        if self.allocations.len() >= self.cfg.max_allocations {
            self.stats.refused_quota += 1;
            return self.error(tuple, req, ErrorCode::INSUFFICIENT_CAPACITY, key);
        }
        let lifetime = lifetime_for(msg.attribute::<Lifetime>().ok().map(|l| l.seconds()));
        let relay = RelayId(self.next_relay);
        self.next_relay += 1;
        *self.per_ip.entry(ip).or_insert(0) += 1;
        self.relays.insert(relay, tuple);
        self.allocations.insert(
            tuple,
            Allocation {
                relay,
                relay_addr: None,
                username: auth.username,
                key: auth.key,
                tx: req.tx,
                fingerprint: req.fingerprint,
                expires: now + lifetime,
                permissions: HashMap::new(),
                channels: Vec::new(),
            },
        );
        self.out.push_back(Output::OpenRelay { relay });
    }

    /// The shell opened (`Some(port)`) or failed to open (`None`) a relay socket.
    pub(crate) fn relay_opened(&mut self, relay: RelayId, port: Option<u16>, now: Instant) {
        let Some(&tuple) = self.relays.get(&relay) else {
            return;
        };
        let Some(a) = self.allocations.get_mut(&tuple) else {
            return;
        };
        match port {
            Some(port) => {
                a.relay_addr = Some(SocketAddr::new(self.cfg.relay_ip, port));
                self.allocate_success(tuple, now);
            }
            None => {
                let req = Req {
                    method: ALLOCATE,
                    tx: a.tx,
                    fingerprint: a.fingerprint,
                };
                let key = a.key.clone();
                self.remove_allocation(tuple);
                self.error(tuple, req, ErrorCode::INSUFFICIENT_CAPACITY, Some(&key));
            }
        }
    }

    fn allocate_success(&mut self, tuple: FiveTuple, now: Instant) {
        let Some(a) = self.allocations.get(&tuple) else {
            return;
        };
        let Some(relay_addr) = a.relay_addr else {
            return;
        };
        let tx = a.tx;
        // What is left, rounded up: the full lifetime right after the Allocate.
        let left = a.expires.saturating_duration_since(now);
        let lifetime = left.as_secs() + u64::from(left.subsec_nanos() > 0);
        let lifetime = u32::try_from(lifetime).unwrap_or(u32::MAX);
        let msg = build(
            MessageClass::Success,
            ALLOCATE,
            tx,
            Some(&a.key),
            a.fingerprint,
            |w| {
                w.add_attribute(&XorRelayedAddress::new(relay_addr, tx))?;
                w.add_attribute(&Lifetime::new(lifetime))?;
                w.add_attribute(&XorMappedAddress::new(tuple.client, tx))
            },
        );
        self.send(tuple, msg);
    }

    /// The allocation of `tuple` if its relay socket is open and it has not expired (expired
    /// ones linger until the next sweep).
    pub(super) fn active(&self, tuple: &FiveTuple, now: Instant) -> Option<&Allocation> {
        self.allocations
            .get(tuple)
            .filter(|a| a.relay_addr.is_some() && a.expires > now)
    }

    pub(super) fn refresh(
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
        let requested = msg.attribute::<Lifetime>().ok().map(|l| l.seconds());
        let granted = if requested == Some(0) {
            0
        } else {
            let lifetime = lifetime_for(requested);
            if let Some(a) = self.allocations.get_mut(&tuple) {
                a.expires = now + lifetime;
            }
            lifetime.as_secs() as u32
        };
        let reply = build(
            MessageClass::Success,
            REFRESH,
            req.tx,
            key,
            req.fingerprint,
            |w| w.add_attribute(&Lifetime::new(granted)),
        );
        self.send(tuple, reply);
        if granted == 0 {
            self.remove_allocation(tuple);
        }
    }
}
