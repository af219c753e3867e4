//! The sans-I/O core: authentication, allocations, permissions, channels, quotas and the
//! relaying rules. It is fed with what arrives (client bytes, relay datagrams, stream opens and
//! closes, time) and yields [`Output`]s; it never touches a socket or a clock.
//!
//! Here are the engine, its inputs and outputs, and the requests sorted to their handlers;
//! `answer.rs` writes responses, `authentication.rs` checks credentials, `allocation.rs`
//! grants, refreshes and frees allocations under their quotas, `permissions.rs` keeps
//! permissions and channels, and `relay.rs` moves data between clients and our media sockets.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use stun_types::attribute::{
    AttributeType, ErrorCode, Fingerprint, MessageIntegrity, MessageIntegritySha256, Nonce, Realm,
    UnknownAttributes, Username, XorMappedAddress,
};
use stun_types::message::{BINDING, Message, MessageClass, MessageHeader};
use stun_types::prelude::*;
use turn_types::attribute::{
    ChannelNumber, Data, DontFragment, Lifetime, RequestedAddressFamily, RequestedTransport,
    XorPeerAddress,
};
use turn_types::message::{ALLOCATE, CHANNEL_BIND, CREATE_PERMISSION, REFRESH, SEND};

use crate::auth::Nonces;

mod allocation;
mod answer;
mod authentication;
mod permissions;
mod relay;

use allocation::Allocation;
use answer::{Req, build};
use permissions::CHANNEL_COOLDOWN;
// Names the tests take from here.
#[cfg(test)]
use {
    allocation::{DEFAULT_LIFETIME, MAX_LIFETIME, lifetime_for},
    turn_types::message::DATA,
};

/// How often expiries are checked.
const SWEEP_INTERVAL: Duration = Duration::from_millis(250);
/// The most revoked credentials remembered at once; past it, the oldest revocations are
/// forgotten first (their credentials then work again until they expire).
const MAX_REVOKED: usize = 100_000;

/// Attributes this server understands in requests; any other comprehension-required attribute
/// gets 420 Unknown Attribute. DONT-FRAGMENT is accepted and ignored.
const KNOWN_ATTRIBUTES: [AttributeType; 12] = [
    Username::TYPE,
    MessageIntegrity::TYPE,
    MessageIntegritySha256::TYPE,
    Realm::TYPE,
    Nonce::TYPE,
    ChannelNumber::TYPE,
    Lifetime::TYPE,
    XorPeerAddress::TYPE,
    Data::TYPE,
    RequestedAddressFamily::TYPE,
    RequestedTransport::TYPE,
    DontFragment::TYPE,
];

/// The key per-address quotas count under: an IPv4 address, or the /64 of an IPv6 address
/// (one host is commonly given a whole /64). IPv4-mapped addresses count as IPv4.
pub(crate) fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut s = v6.segments();
                s[4..].fill(0);
                IpAddr::V6(std::net::Ipv6Addr::from(s))
            }
        },
    }
}

/// The part of a username after its expiry: whom the credentials were issued to.
fn peer_of(username: &str) -> Option<&str> {
    username.split_once(':').map(|(_, peer)| peer)
}

/// How a client reaches the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Transport {
    Udp,
    Tcp,
    Tls,
}

/// A client as the server sees it: transport, client address and the listener's address
/// (RFC 8656's 5-tuple). An allocation belongs to exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct FiveTuple {
    pub(crate) transport: Transport,
    pub(crate) client: SocketAddr,
    pub(crate) listener: SocketAddr,
}

impl FiveTuple {
    fn is_stream(&self) -> bool {
        self.transport != Transport::Udp
    }
}

/// Names one allocation's relay socket, which the shell owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct RelayId(pub(crate) u64);

/// What the core asks of its shell.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Output {
    /// Send bytes to a client (one datagram, or one frame on its stream).
    ToClient { tuple: FiveTuple, data: Vec<u8> },
    /// Send a datagram from a relay socket to a peer's local address.
    ToPeer {
        relay: RelayId,
        to: SocketAddr,
        data: Vec<u8>,
    },
    /// Open a UDP relay socket; answer with [`Engine::relay_opened`].
    OpenRelay { relay: RelayId },
    /// Close a relay socket.
    CloseRelay { relay: RelayId },
    /// Close a TCP or TLS connection.
    CloseStream { tuple: FiveTuple },
}

/// Counters of what the server holds and what it refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Allocations now held (each owns one relay socket).
    pub allocations: usize,
    /// TCP and TLS connections now open.
    pub connections: usize,
    /// Requests with credentials refused: wrong password, expired or malformed username,
    /// stale nonce, or another user's allocation.
    pub refused_auth: u64,
    /// Requests and data refused because the peer is not one of our media addresses, or
    /// has no permission; datagrams from foreign senders on relay sockets.
    pub refused_peer: u64,
    /// Allocations and connections refused by a quota.
    pub refused_quota: u64,
    /// Messages dropped or answered 400 because they were malformed.
    pub malformed: u64,
    /// Credentials revoked because their member left (their allocations go with them).
    pub revoked: u64,
}

/// What the core is configured with.
#[derive(Debug, Clone)]
pub(crate) struct EngineConfig {
    pub(crate) realm: String,
    pub(crate) secret: Vec<u8>,
    /// The IP clients are told their relay addresses have.
    pub(crate) relay_ip: IpAddr,
    /// (advertised, local) addresses of our media sockets: the only peers.
    pub(crate) peers: Vec<(SocketAddr, SocketAddr)>,
    pub(crate) max_allocations: usize,
    pub(crate) max_allocations_per_ip: usize,
    pub(crate) max_connections: usize,
    pub(crate) max_connections_per_ip: usize,
    /// A TCP or TLS connection without an allocation after this long is closed.
    pub(crate) auth_timeout: Duration,
}

/// The TURN server's state machine.
pub(crate) struct Engine {
    cfg: EngineConfig,
    nonces: Nonces,
    /// Advertised → local and back.
    to_local: HashMap<SocketAddr, SocketAddr>,
    to_advertised: HashMap<SocketAddr, SocketAddr>,
    epoch: Instant,
    epoch_unix: u64,
    allocations: HashMap<FiveTuple, Allocation>,
    relays: HashMap<RelayId, FiveTuple>,
    /// Allocations by client address ([`client_key`]).
    per_ip: HashMap<IpAddr, usize>,
    /// Open TCP/TLS connections and when they opened.
    streams: HashMap<FiveTuple, Instant>,
    /// Open TCP/TLS connections by client address ([`client_key`]).
    streams_per_ip: HashMap<IpAddr, usize>,
    /// Revoked credentials, by the part of the username after its expiry (the member), with
    /// the Unix time after which they would have expired anyway.
    revoked: HashMap<String, u64>,
    /// Renewed holders of credentials, by member, with the Unix time their latest credentials
    /// expire: their allocations may be kept with older ones until then.
    renewed: HashMap<String, u64>,
    next_relay: u64,
    next_sweep: Instant,
    out: VecDeque<Output>,
    stats: Stats,
}

impl Engine {
    /// `now` and `wall` are the same moment on the monotonic and the wall clock: credential
    /// expiries are Unix times, everything else runs on `Instant`s.
    pub(crate) fn new(
        cfg: EngineConfig,
        now: Instant,
        wall: SystemTime,
        nonce_key: [u8; 32],
    ) -> Self {
        let to_local = cfg.peers.iter().copied().collect();
        let to_advertised = cfg.peers.iter().map(|&(a, l)| (l, a)).collect();
        Self {
            nonces: Nonces::new(nonce_key),
            to_local,
            to_advertised,
            epoch: now,
            epoch_unix: wall
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            allocations: HashMap::new(),
            relays: HashMap::new(),
            per_ip: HashMap::new(),
            streams: HashMap::new(),
            streams_per_ip: HashMap::new(),
            revoked: HashMap::new(),
            renewed: HashMap::new(),
            next_relay: 0,
            next_sweep: now + SWEEP_INTERVAL,
            out: VecDeque::new(),
            stats: Stats::default(),
            cfg,
        }
    }

    /// Seconds since this engine started: the clock nonces carry.
    fn secs(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_secs()
    }

    fn unix(&self, now: Instant) -> u64 {
        self.epoch_unix.saturating_add(self.secs(now))
    }

    pub(crate) fn stats(&self) -> Stats {
        Stats {
            allocations: self.allocations.len(),
            connections: self.streams.len(),
            ..self.stats
        }
    }

    /// The next thing for the shell to do. Drain after every call into the engine.
    pub(crate) fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) wants to run; `None` while nothing can
    /// expire.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        if self.allocations.is_empty() && self.streams.is_empty() {
            None
        } else {
            Some(self.next_sweep)
        }
    }

    /// Expires allocations, permissions, channels and connections that never allocated.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if now < self.next_sweep {
            return;
        }
        self.next_sweep = now + SWEEP_INTERVAL;
        let expired: Vec<FiveTuple> = self
            .allocations
            .iter()
            .filter(|(_, a)| a.expires <= now)
            .map(|(t, _)| *t)
            .collect();
        for tuple in expired {
            self.remove_allocation(tuple);
        }
        for a in self.allocations.values_mut() {
            a.permissions.retain(|_, e| *e > now);
            a.channels.retain(|c| c.expires + CHANNEL_COOLDOWN > now);
        }
        let idle: Vec<FiveTuple> = self
            .streams
            .iter()
            .filter(|(t, opened)| {
                !self.allocations.contains_key(t) && **opened + self.cfg.auth_timeout <= now
            })
            .map(|(t, _)| *t)
            .collect();
        for tuple in idle {
            self.forget_stream(tuple);
            self.out.push_back(Output::CloseStream { tuple });
        }
    }

    /// Revokes the credentials of `peer` (the part of usernames after the expiry: the member
    /// id), valid at most `until` (Unix seconds): its allocations are freed, and its
    /// credentials are refused from now on.
    pub(crate) fn revoke(&mut self, peer: &str, until: u64, now: Instant) {
        let unix = self.unix(now);
        if self.revoked.len() >= MAX_REVOKED {
            self.revoked.retain(|_, u| *u >= unix);
        }
        if self.revoked.len() >= MAX_REVOKED
            && let Some(oldest) = self
                .revoked
                .iter()
                .min_by_key(|(_, u)| **u)
                .map(|(p, _)| p.clone())
        {
            self.revoked.remove(&oldest);
        }
        if until >= unix {
            self.revoked.insert(peer.to_owned(), until);
        }
        self.renewed.remove(peer);
        self.stats.revoked += 1;
        let doomed: Vec<FiveTuple> = self
            .allocations
            .iter()
            .filter(|(_, a)| peer_of(&a.username) == Some(peer))
            .map(|(t, _)| *t)
            .collect();
        for tuple in doomed {
            self.remove_allocation(tuple);
        }
    }

    /// `peer` (the member) was given fresh credentials, valid until `until` (Unix seconds):
    /// the allocations it made with older ones may be kept with them until then. Revoked
    /// members are not renewed.
    pub(crate) fn renew(&mut self, peer: &str, until: u64, now: Instant) {
        let unix = self.unix(now);
        if until < unix || self.revoked.get(peer).is_some_and(|u| *u >= unix) {
            return;
        }
        if self.renewed.len() >= MAX_REVOKED && !self.renewed.contains_key(peer) {
            self.renewed.retain(|_, u| *u >= unix);
            if self.renewed.len() >= MAX_REVOKED {
                return;
            }
        }
        self.renewed.insert(peer.to_owned(), until);
    }

    /// Whether `username`, expired, is still good for the allocation of `tuple`: the one it
    /// made, whose member has been renewed since.
    fn renewed_for(&self, username: &str, tuple: &FiveTuple, now: Instant) -> bool {
        let unix = self.unix(now);
        self.allocations
            .get(tuple)
            .is_some_and(|a| a.username == username)
            && peer_of(username)
                .and_then(|p| self.renewed.get(p))
                .is_some_and(|u| *u >= unix)
    }

    /// Whether `username`'s credentials were revoked.
    fn is_revoked(&self, username: &str, now: Instant) -> bool {
        let unix = self.unix(now);
        peer_of(username)
            .and_then(|p| self.revoked.get(p))
            .is_some_and(|u| *u >= unix)
    }

    /// A TCP or TLS connection was accepted. `false` (close it) when at the limit, in total
    /// or for its client's address.
    pub(crate) fn stream_opened(&mut self, tuple: FiveTuple, now: Instant) -> bool {
        let key = client_key(tuple.client.ip());
        let held = self.streams_per_ip.get(&key).copied().unwrap_or(0);
        if self.streams.len() >= self.cfg.max_connections || held >= self.cfg.max_connections_per_ip
        {
            self.stats.refused_quota += 1;
            return false;
        }
        if self.streams.insert(tuple, now).is_none() {
            *self.streams_per_ip.entry(key).or_insert(0) += 1;
        }
        true
    }

    /// Forgets an open TCP or TLS connection (the caller closes it or has seen it close).
    fn forget_stream(&mut self, tuple: FiveTuple) -> bool {
        if self.streams.remove(&tuple).is_none() {
            return false;
        }
        let key = client_key(tuple.client.ip());
        if let Some(n) = self.streams_per_ip.get_mut(&key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.streams_per_ip.remove(&key);
            }
        }
        true
    }

    /// A TCP or TLS connection ended: its allocation goes with it.
    pub(crate) fn stream_closed(&mut self, tuple: FiveTuple) {
        self.forget_stream(tuple);
        if self.allocations.contains_key(&tuple) {
            self.remove_allocation(tuple);
        }
    }

    /// Bytes from a client: a STUN message or a ChannelData message (one datagram, or one
    /// frame from a stream).
    pub(crate) fn handle_client(&mut self, tuple: FiveTuple, data: &[u8], now: Instant) {
        match data.first().map(|b| b >> 6) {
            Some(0) => self.handle_stun(tuple, data, now),
            Some(1) => self.handle_channel_data(tuple, data, now),
            _ => self.stats.malformed += 1,
        }
    }

    fn handle_stun(&mut self, tuple: FiveTuple, data: &[u8], now: Instant) {
        let Ok(header) = MessageHeader::from_bytes(data) else {
            self.stats.malformed += 1;
            return;
        };
        let len = MessageHeader::LENGTH + usize::from(header.data_length());
        if !header.data_length().is_multiple_of(4) || len > data.len() {
            self.stats.malformed += 1;
            return;
        }
        let mtype = header.get_type();
        let msg = match Message::from_bytes(&data[..len]) {
            Ok(msg) => msg,
            Err(_) => {
                self.stats.malformed += 1;
                if mtype.has_class(MessageClass::Request) {
                    let req = Req {
                        method: mtype.method(),
                        tx: header.transaction_id(),
                        fingerprint: false,
                    };
                    self.error(tuple, req, ErrorCode::BAD_REQUEST, None);
                }
                return;
            }
        };
        match msg.class() {
            MessageClass::Request => self.handle_request(tuple, &msg, now),
            MessageClass::Indication if msg.has_method(SEND) => self.handle_send(tuple, &msg, now),
            // Responses and other indications mean nothing to a server.
            _ => {}
        }
    }

    fn handle_request(&mut self, tuple: FiveTuple, msg: &Message, now: Instant) {
        let req = Req {
            method: msg.method(),
            tx: msg.transaction_id(),
            fingerprint: msg.has_attribute(Fingerprint::TYPE),
        };
        if ![BINDING, ALLOCATE, REFRESH, CREATE_PERMISSION, CHANNEL_BIND].contains(&req.method) {
            self.stats.malformed += 1;
            return self.error(tuple, req, ErrorCode::BAD_REQUEST, None);
        }
        let unknown: Vec<AttributeType> = msg
            .iter_attributes()
            .map(|(_, a)| a.get_type())
            .filter(|t| t.comprehension_required() && !KNOWN_ATTRIBUTES.contains(t))
            .take(16)
            .collect();
        if !unknown.is_empty() {
            let msg = build(
                MessageClass::Error,
                req.method,
                req.tx,
                None,
                req.fingerprint,
                |w| {
                    w.add_attribute(&ErrorCode::builder(ErrorCode::UNKNOWN_ATTRIBUTE).build()?)?;
                    w.add_attribute(&UnknownAttributes::new(&unknown))
                },
            );
            return self.send(tuple, msg);
        }
        if req.method == BINDING {
            let msg = build(
                MessageClass::Success,
                BINDING,
                req.tx,
                None,
                req.fingerprint,
                |w| w.add_attribute(&XorMappedAddress::new(tuple.client, req.tx)),
            );
            return self.send(tuple, msg);
        }
        let Some(auth) = self.authenticate(tuple, msg, req, now) else {
            return;
        };
        if let Some(a) = self.allocations.get(&tuple)
            && a.username != auth.username
        {
            self.stats.refused_auth += 1;
            return self.error(tuple, req, ErrorCode::WRONG_CREDENTIALS, Some(&auth.key));
        }
        match req.method {
            ALLOCATE => self.allocate(tuple, msg, req, auth, now),
            REFRESH => self.refresh(tuple, msg, req, &auth, now),
            CREATE_PERMISSION => self.create_permission(tuple, msg, req, &auth, now),
            _ => self.channel_bind(tuple, msg, req, &auth, now),
        }
    }
}

#[cfg(test)]
mod tests;
