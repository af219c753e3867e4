//! The sans-I/O core: authentication, allocations, permissions, channels, quotas and the
//! relaying rules. It is fed with what arrives (client bytes, relay datagrams, stream opens and
//! closes, time) and yields [`Output`]s; it never touches a socket or a clock.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use stun_types::attribute::{
    AttributeType, ErrorCode, Fingerprint, MessageIntegrity, MessageIntegritySha256, Nonce, Realm,
    UnknownAttributes, Username, XorMappedAddress,
};
use stun_types::message::{
    BINDING, IntegrityAlgorithm, IntegrityKey, LongTermKeyCredentials, Message, MessageClass,
    MessageHeader, MessageType, MessageWriteVec, Method, StunWriteError, TransactionId,
};
use stun_types::prelude::*;
use turn_types::attribute::{
    ChannelNumber, Data, DontFragment, Lifetime, RequestedAddressFamily, RequestedTransport,
    XorPeerAddress, XorRelayedAddress,
};
use turn_types::message::{ALLOCATE, CHANNEL_BIND, CREATE_PERMISSION, DATA, REFRESH, SEND};

use crate::auth::{self, NonceCheck, Nonces};
use crate::framing::{CHANNELS, channel_data, parse_channel_data};

/// Allocation lifetime when the client asks for none or for less (RFC 8656 §3.3).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(600);
/// The longest allocation lifetime granted per Allocate or Refresh.
const MAX_LIFETIME: Duration = Duration::from_secs(3600);
/// Permission lifetime (RFC 8656 §9).
const PERMISSION_LIFETIME: Duration = Duration::from_secs(300);
/// Channel binding lifetime (RFC 8656 §12).
const CHANNEL_LIFETIME: Duration = Duration::from_secs(600);
/// After a channel binding expires, its number and peer stay reserved this long (RFC 8656 §12).
const CHANNEL_COOLDOWN: Duration = Duration::from_secs(300);
/// How often expiries are checked.
const SWEEP_INTERVAL: Duration = Duration::from_millis(250);
/// At most this many XOR-PEER-ADDRESS attributes in one CreatePermission.
const MAX_PEERS_PER_REQUEST: usize = 16;
/// Largest payload relayed; keeps every message we write under STUN's 16-bit length.
const MAX_PAYLOAD: usize = 65_000;

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
    /// A TCP or TLS connection without an allocation after this long is closed.
    pub(crate) auth_timeout: Duration,
}

struct Channel {
    number: u16,
    /// The peer's advertised address.
    peer: SocketAddr,
    expires: Instant,
}

struct Allocation {
    relay: RelayId,
    /// `None` while the shell opens the relay socket.
    relay_addr: Option<SocketAddr>,
    username: String,
    key: IntegrityKey,
    /// The Allocate request's transaction, to answer its retransmissions.
    tx: TransactionId,
    fingerprint: bool,
    expires: Instant,
    /// Peer IP → expiry. Only our media IPs get in, so it stays small.
    permissions: HashMap<IpAddr, Instant>,
    /// At most one per peer and per number, peers being our media addresses only.
    channels: Vec<Channel>,
}

impl Allocation {
    fn permitted(&self, ip: IpAddr, now: Instant) -> bool {
        self.permissions.get(&ip).is_some_and(|&e| e > now)
    }

    fn channel_by_number(&self, number: u16, now: Instant) -> Option<&Channel> {
        self.channels
            .iter()
            .find(|c| c.number == number && c.expires > now)
    }

    fn channel_by_peer(&self, peer: SocketAddr, now: Instant) -> Option<&Channel> {
        self.channels
            .iter()
            .find(|c| c.peer == peer && c.expires > now)
    }
}

/// What a request needs to be answered.
#[derive(Clone, Copy)]
struct Req {
    method: Method,
    tx: TransactionId,
    fingerprint: bool,
}

/// A request that passed authentication.
struct Authed {
    username: String,
    key: IntegrityKey,
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
    per_ip: HashMap<IpAddr, usize>,
    /// Open TCP/TLS connections and when they opened.
    streams: HashMap<FiveTuple, Instant>,
    next_relay: u64,
    next_sweep: Instant,
    out: VecDeque<Output>,
    stats: Stats,
}

fn lifetime_for(requested: Option<u32>) -> Duration {
    match requested {
        Some(s) => Duration::from_secs(u64::from(s)).clamp(DEFAULT_LIFETIME, MAX_LIFETIME),
        None => DEFAULT_LIFETIME,
    }
}

fn same_family(a: IpAddr, b: IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

/// Builds a message; `None` if it cannot be written (never for what this module writes).
fn build(
    class: MessageClass,
    method: Method,
    tx: TransactionId,
    key: Option<&IntegrityKey>,
    fingerprint: bool,
    attrs: impl FnOnce(&mut MessageWriteVec) -> Result<(), StunWriteError>,
) -> Option<Vec<u8>> {
    let mut w = Message::builder(
        MessageType::from_class_method(class, method),
        tx,
        MessageWriteVec::with_capacity(128),
    );
    attrs(&mut w).ok()?;
    if let Some(key) = key {
        w.add_message_integrity_with_key(key, IntegrityAlgorithm::Sha1)
            .ok()?;
    }
    if fingerprint {
        w.add_fingerprint().ok()?;
    }
    Some(w.finish())
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
            self.streams.remove(&tuple);
            self.out.push_back(Output::CloseStream { tuple });
        }
    }

    /// A TCP or TLS connection was accepted. `false` (close it) when at the limit.
    pub(crate) fn stream_opened(&mut self, tuple: FiveTuple, now: Instant) -> bool {
        if self.streams.len() >= self.cfg.max_connections {
            self.stats.refused_quota += 1;
            return false;
        }
        self.streams.insert(tuple, now);
        true
    }

    /// A TCP or TLS connection ended: its allocation goes with it.
    pub(crate) fn stream_closed(&mut self, tuple: FiveTuple) {
        self.streams.remove(&tuple);
        if self.allocations.contains_key(&tuple) {
            self.remove_allocation(tuple);
        }
    }

    fn remove_allocation(&mut self, tuple: FiveTuple) {
        let Some(a) = self.allocations.remove(&tuple) else {
            return;
        };
        self.relays.remove(&a.relay);
        let ip = tuple.client.ip();
        if let Some(n) = self.per_ip.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
        }
        self.out.push_back(Output::CloseRelay { relay: a.relay });
        if tuple.is_stream() && self.streams.remove(&tuple).is_some() {
            self.out.push_back(Output::CloseStream { tuple });
        }
    }

    fn send(&mut self, tuple: FiveTuple, data: Option<Vec<u8>>) {
        if let Some(data) = data {
            self.out.push_back(Output::ToClient { tuple, data });
        }
    }

    /// Answers `req` with a success response that carries no attribute.
    fn succeed(&mut self, tuple: FiveTuple, req: Req, key: Option<&IntegrityKey>) {
        let msg = build(
            MessageClass::Success,
            req.method,
            req.tx,
            key,
            req.fingerprint,
            |_| Ok(()),
        );
        self.send(tuple, msg);
    }

    fn error(&mut self, tuple: FiveTuple, req: Req, code: u16, key: Option<&IntegrityKey>) {
        let msg = build(
            MessageClass::Error,
            req.method,
            req.tx,
            key,
            req.fingerprint,
            |w| w.add_attribute(&ErrorCode::builder(code).build()?),
        );
        self.send(tuple, msg);
    }

    /// 401 or 438 with our realm and a fresh nonce.
    fn challenge(&mut self, tuple: FiveTuple, req: Req, code: u16, now: Instant) {
        let nonce = self.nonces.issue(tuple.client.ip(), self.secs(now));
        let realm = &self.cfg.realm;
        let msg = build(
            MessageClass::Error,
            req.method,
            req.tx,
            None,
            req.fingerprint,
            |w| {
                w.add_attribute(&ErrorCode::builder(code).build()?)?;
                w.add_attribute(&Realm::new(realm)?)?;
                w.add_attribute(&Nonce::new(&nonce)?)
            },
        );
        self.send(tuple, msg);
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

    /// Long-term credentials (RFC 8489 §9.2.4) with the password derived from the secret.
    /// Answers and returns `None` when the request does not pass.
    fn authenticate(
        &mut self,
        tuple: FiveTuple,
        msg: &Message,
        req: Req,
        now: Instant,
    ) -> Option<Authed> {
        if !msg.has_attribute(MessageIntegrity::TYPE) {
            self.challenge(tuple, req, ErrorCode::UNAUTHORIZED, now);
            return None;
        }
        let (Ok(username), Ok(realm), Ok(nonce)) = (
            msg.attribute::<Username>(),
            msg.attribute::<Realm>(),
            msg.attribute::<Nonce>(),
        ) else {
            self.stats.malformed += 1;
            self.error(tuple, req, ErrorCode::BAD_REQUEST, None);
            return None;
        };
        if self
            .nonces
            .check(nonce.nonce(), tuple.client.ip(), self.secs(now))
            == NonceCheck::Stale
        {
            self.stats.refused_auth += 1;
            self.challenge(tuple, req, ErrorCode::STALE_NONCE, now);
            return None;
        }
        let username = username.username();
        let fresh = auth::username_expiry(username).is_some_and(|e| e >= self.unix(now));
        if realm.realm() != self.cfg.realm || !fresh {
            self.stats.refused_auth += 1;
            self.challenge(tuple, req, ErrorCode::UNAUTHORIZED, now);
            return None;
        }
        let password = auth::password(&self.cfg.secret, username);
        let key =
            LongTermKeyCredentials::new(username.to_owned(), password, self.cfg.realm.clone())
                .make_key(IntegrityAlgorithm::Sha1);
        if msg.validate_integrity_with_key(&key).is_err() {
            self.stats.refused_auth += 1;
            self.challenge(tuple, req, ErrorCode::UNAUTHORIZED, now);
            return None;
        }
        Some(Authed {
            username: username.to_owned(),
            key,
        })
    }

    fn allocate(&mut self, tuple: FiveTuple, msg: &Message, req: Req, auth: Authed, now: Instant) {
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
        let ip = tuple.client.ip();
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
    fn active(&self, tuple: &FiveTuple, now: Instant) -> Option<&Allocation> {
        self.allocations
            .get(tuple)
            .filter(|a| a.relay_addr.is_some() && a.expires > now)
    }

    fn refresh(&mut self, tuple: FiveTuple, msg: &Message, req: Req, auth: &Authed, now: Instant) {
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

    fn create_permission(
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

    fn channel_bind(
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

    /// Relays a payload from a client to a peer, if the peer is one of ours and permitted.
    fn relay_to_peer(&mut self, tuple: FiveTuple, peer: SocketAddr, data: &[u8], now: Instant) {
        let Some(a) = self.active(&tuple, now) else {
            return;
        };
        let relay = a.relay;
        let permitted = a.permitted(peer.ip(), now);
        match self.to_local.get(&peer) {
            Some(&to) if permitted => self.out.push_back(Output::ToPeer {
                relay,
                to,
                data: data.to_vec(),
            }),
            _ => self.stats.refused_peer += 1,
        }
    }

    fn handle_send(&mut self, tuple: FiveTuple, msg: &Message, now: Instant) {
        let (Ok(peer), Ok(data)) = (msg.attribute::<XorPeerAddress>(), msg.attribute::<Data>())
        else {
            self.stats.malformed += 1;
            return;
        };
        let peer = peer.addr(msg.transaction_id());
        self.relay_to_peer(tuple, peer, data.data(), now);
    }

    fn handle_channel_data(&mut self, tuple: FiveTuple, data: &[u8], now: Instant) {
        let Some((number, payload)) = parse_channel_data(data) else {
            self.stats.malformed += 1;
            return;
        };
        let Some(peer) = self
            .active(&tuple, now)
            .and_then(|a| a.channel_by_number(number, now))
            .map(|c| c.peer)
        else {
            return;
        };
        self.relay_to_peer(tuple, peer, payload, now);
    }

    /// A datagram arrived on a relay socket from `from`: relayed to the client only if `from`
    /// is one of our media sockets' local addresses and the client permitted its advertised
    /// address, which is what the client is told it came from.
    pub(crate) fn handle_peer(
        &mut self,
        relay: RelayId,
        from: SocketAddr,
        data: &[u8],
        now: Instant,
    ) {
        let Some(&tuple) = self.relays.get(&relay) else {
            return;
        };
        let Some(a) = self.active(&tuple, now) else {
            return;
        };
        let peer = match self.to_advertised.get(&from) {
            Some(&peer) if a.permitted(peer.ip(), now) => peer,
            _ => {
                self.stats.refused_peer += 1;
                return;
            }
        };
        if data.len() > MAX_PAYLOAD {
            self.stats.malformed += 1;
            return;
        }
        let msg = match a.channel_by_peer(peer, now) {
            Some(c) => channel_data(c.number, data, tuple.is_stream()),
            None => {
                let tx = TransactionId::generate();
                build(MessageClass::Indication, DATA, tx, None, false, |w| {
                    w.add_attribute(&XorPeerAddress::new(peer, tx))?;
                    w.add_attribute(&Data::new(data))
                })
            }
        };
        self.send(tuple, msg);
    }
}

#[cfg(test)]
mod tests;
