//! free4chat's integrated TURN server (RFC 8656), for browsers whose networks block UDP or
//! direct paths to the media server.
//!
//! Its one job: relay between a browser and **this server's own media sockets**, and nothing
//! else. It is not a general-purpose relay.
//!
//! # Design
//!
//! - `engine` is the sans-I/O core: a state machine fed with client bytes (per 5-tuple:
//!   transport, client address, listener address), relay-socket datagrams, stream opens and
//!   closes, and time. It yields outputs (bytes for a client, a datagram for a peer, open or
//!   close a relay socket, close a connection) and its next deadline. It owns authentication,
//!   allocations, permissions, channels, quotas and every expiry.
//! - `shell` is the thin tokio I/O around it, on a thread of its own with a single-threaded
//!   runtime: the UDP, TCP and TLS listeners, one UDP relay socket per allocation (an
//!   ephemeral port on [`TurnConfig::relay_bind`]), a task per TCP/TLS connection, and one task
//!   that owns the engine.
//! - `auth` holds the credentials (coturn's `use-auth-secret` scheme, see [`credentials`]) and
//!   the stateless nonces; `framing` splits TCP/TLS streams into STUN and ChannelData frames.
//!
//! Message parsing, writing and MESSAGE-INTEGRITY come from the `stun-types` and `turn-types`
//! crates; the allocation logic is ours.
//!
//! # Security rules
//!
//! - **Relay only to our media.** [`TurnConfig::peers`] lists (advertised, local) address pairs.
//!   CreatePermission and ChannelBind for any other address — another IP, or our IP with
//!   another port — get 403 Forbidden; Send indications and ChannelData towards one are
//!   dropped. Datagrams reach a peer's *local* address; datagrams from that local address are
//!   reported to the client as coming from the *advertised* one; anything else arriving on a
//!   relay socket is dropped.
//! - **No state before authentication.** Passwords are derived from the shared secret on the
//!   fly and nonces are an issue time plus a MAC bound to the client IP, so unauthenticated
//!   traffic creates nothing. Expired usernames and wrong passwords get 401, old or foreign
//!   nonces 438. Credentials are checked on every request, so a Refresh after the username's
//!   expiry fails and the allocation then lapses — unless the credentials' holder was renewed
//!   ([`TurnHandle::renew`]: free4chat does so while the member stays in its room, as it
//!   hands it fresh credentials): then the allocation they made, and only it, from its own
//!   5-tuple, is kept with them until the renewal lapses too. Browsers keep using the
//!   credentials an allocation was made with, whatever fresh ones they are given. Credentials
//!   can be revoked before their expiry ([`TurnHandle::revoke`]: free4chat does so when their
//!   member leaves): their allocations are freed, and they get 401 from then on.
//! - **Everything outsiders can grow is bounded**: allocations per client address and in
//!   total (486 Allocation Quota Reached / 508 Insufficient Capacity), TCP/TLS connections
//!   per client address and in total (closed at once), where an address is an IPv4 address
//!   or an IPv6 /64,
//!   frames on a stream (8 KiB), every queue. A TCP/TLS connection
//!   without an allocation after [`TurnConfig::auth_timeout`] is closed, as is one that sends
//!   bytes that are not TURN; closing a connection deletes its allocation.
//! - Only UDP relaying (REQUESTED-TRANSPORT 17; others get 442). Lifetimes, Refresh (0
//!   deletes), permissions (300 s) and channels (600 s) follow RFC 8656.
//! - No panics on any input: malformed messages are dropped or answered 400.

#![warn(missing_docs)]

mod auth;
mod engine;
mod framing;
mod shell;
#[cfg(any(test, feature = "fuzzing"))]
#[cfg_attr(not(test), allow(dead_code))]
mod test_messages;

/// Entry points for fuzzing the engine and the framing (the `fuzzing` feature).
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;

use std::collections::HashSet;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::oneshot;

/// Revocations waiting for the server's task.
const REVOKE_QUEUE: usize = 4096;

pub use auth::credentials;
pub use engine::Stats;
/// The rustls this crate builds its TLS listener on.
pub use tokio_rustls::rustls;

use engine::{Engine, EngineConfig};
use shell::{Bound, Shell};

/// What the TURN server listens on, relays to and allows.
#[derive(Clone)]
pub struct TurnConfig {
    /// TURN over UDP.
    pub udp: Option<SocketAddr>,
    /// TURN over TCP.
    pub tcp: Option<SocketAddr>,
    /// TURN over TLS, with the certificate configuration.
    pub tls: Option<(SocketAddr, Arc<rustls::ServerConfig>)>,
    /// The IP relay sockets bind to (each on an ephemeral port).
    pub relay_bind: IpAddr,
    /// The IP clients are told their relay addresses have (differs from `relay_bind` behind
    /// a NAT).
    pub relay_advertise: IpAddr,
    /// The authentication realm.
    pub realm: String,
    /// The secret shared with whoever issues [`credentials`].
    pub secret: Vec<u8>,
    /// The only peers: `(advertised, local)` addresses of our media sockets. Clients name the
    /// advertised one (the address in our ICE candidates); datagrams go to the local one, and
    /// datagrams are accepted on relay sockets only from a local one — so it must be the source
    /// address the media socket's packets show when they reach [`relay_bind`](Self::relay_bind)
    /// (on one host: loopback for both, or the same interface address).
    pub peers: Vec<(SocketAddr, SocketAddr)>,
    /// Allocations held at once, in total.
    pub max_allocations: usize,
    /// Allocations held at once from one client address (an IPv4 address or an IPv6 /64).
    pub max_allocations_per_ip: usize,
    /// TCP and TLS connections open at once, in total.
    pub max_connections: usize,
    /// TCP and TLS connections open at once from one client address (an IPv4 address or an
    /// IPv6 /64).
    pub max_connections_per_ip: usize,
    /// How long a TCP/TLS connection may stay open without an allocation.
    pub auth_timeout: Duration,
}

impl TurnConfig {
    /// A configuration with no listener, no peer, relay sockets bound to and advertised on
    /// `relay_ip`, and default limits: 2000 allocations, 8 per client IP, 1000 connections,
    /// 32 per client IP, 5 s to authenticate.
    pub fn new(realm: impl Into<String>, secret: impl Into<Vec<u8>>, relay_ip: IpAddr) -> Self {
        Self {
            udp: None,
            tcp: None,
            tls: None,
            relay_bind: relay_ip,
            relay_advertise: relay_ip,
            realm: realm.into(),
            secret: secret.into(),
            peers: Vec::new(),
            max_allocations: 2000,
            max_allocations_per_ip: 8,
            max_connections: 1000,
            max_connections_per_ip: 32,
            auth_timeout: Duration::from_secs(5),
        }
    }

    fn validate(&self) -> io::Result<()> {
        let invalid = |why: &str| Err(io::Error::new(io::ErrorKind::InvalidInput, why.to_owned()));
        if self.udp.is_none() && self.tcp.is_none() && self.tls.is_none() {
            return invalid("no TURN listener configured");
        }
        if self.realm.is_empty() || self.realm.len() > 763 {
            return invalid("the TURN realm must be 1 to 763 bytes");
        }
        if self.secret.is_empty() {
            return invalid("the TURN secret is empty");
        }
        if self.relay_advertise.is_unspecified() {
            return invalid("the TURN relay address to advertise is unspecified");
        }
        if self.relay_bind.is_ipv4() != self.relay_advertise.is_ipv4() {
            return invalid("the TURN relay bind and advertised addresses differ in family");
        }
        Ok(())
    }
}

impl std::fmt::Debug for TurnConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnConfig")
            .field("udp", &self.udp)
            .field("tcp", &self.tcp)
            .field("tls", &self.tls.as_ref().map(|(addr, _)| addr))
            .field("relay_bind", &self.relay_bind)
            .field("relay_advertise", &self.relay_advertise)
            .field("realm", &self.realm)
            .field("secret", &"<redacted>")
            .field("peers", &self.peers)
            .field("max_allocations", &self.max_allocations)
            .field("max_allocations_per_ip", &self.max_allocations_per_ip)
            .field("max_connections", &self.max_connections)
            .field("max_connections_per_ip", &self.max_connections_per_ip)
            .field("auth_timeout", &self.auth_timeout)
            .finish()
    }
}

/// The addresses the server actually listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalAddrs {
    /// The UDP listener, if configured.
    pub udp: Option<SocketAddr>,
    /// The TCP listener, if configured.
    pub tcp: Option<SocketAddr>,
    /// The TLS listener, if configured.
    pub tls: Option<SocketAddr>,
}

/// Starts TURN servers.
#[derive(Debug)]
pub struct Turn;

impl Turn {
    /// Binds every configured listener and starts serving on a thread of its own (with a
    /// single-threaded tokio runtime), so it can be called from anywhere, inside a runtime or
    /// not. Fails if the configuration is invalid or a listener cannot be bound.
    pub fn start(config: TurnConfig) -> io::Result<TurnHandle> {
        config.validate()?;
        let udp = config.udp.map(std::net::UdpSocket::bind).transpose()?;
        let tcp = config.tcp.map(std::net::TcpListener::bind).transpose()?;
        let tls = match &config.tls {
            Some((addr, tls)) => Some((std::net::TcpListener::bind(addr)?, tls.clone())),
            None => None,
        };
        let addrs = LocalAddrs {
            udp: udp.as_ref().map(|s| s.local_addr()).transpose()?,
            tcp: tcp.as_ref().map(|s| s.local_addr()).transpose()?,
            tls: tls.as_ref().map(|(s, _)| s.local_addr()).transpose()?,
        };
        let bound = Bound { udp, tcp, tls };
        let engine = Engine::new(
            EngineConfig {
                realm: config.realm,
                secret: config.secret,
                relay_ip: config.relay_advertise,
                peers: config.peers.clone(),
                max_allocations: config.max_allocations,
                max_allocations_per_ip: config.max_allocations_per_ip,
                max_connections: config.max_connections,
                max_connections_per_ip: config.max_connections_per_ip,
                auth_timeout: config.auth_timeout,
            },
            Instant::now(),
            SystemTime::now(),
            rand::random(),
        );
        let media: HashSet<SocketAddr> = config.peers.iter().map(|&(_, local)| local).collect();
        let relay_bind = config.relay_bind;
        let auth_timeout = config.auth_timeout;
        let stats = Arc::new(Mutex::new(Stats::default()));
        let shell_stats = stats.clone();
        let relay_ports = Arc::new(Mutex::new(HashSet::new()));
        let shell_ports = relay_ports.clone();
        let (shutdown_tx, shutdown_rx) = oneshot::channel();
        let (revoke_tx, revoke_rx) = tokio::sync::mpsc::channel(REVOKE_QUEUE);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("turn".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                rt.block_on(async move {
                    let shell = Shell::new(
                        engine,
                        bound,
                        relay_bind,
                        media,
                        auth_timeout,
                        (shell_stats, shell_ports),
                        revoke_rx,
                    );
                    match shell {
                        Ok(shell) => {
                            let _ = ready_tx.send(Ok(()));
                            shell.run(shutdown_rx).await;
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                    }
                });
            })?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(TurnHandle {
                addrs,
                stats,
                relay_ports,
                revoke: revoke_tx,
                shutdown: Some(shutdown_tx),
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(io::Error::other("the TURN thread ended while starting"))
            }
        }
    }
}

/// What the room's side tells the TURN server about a credentials' holder: by the name given
/// to [`credentials`], with a Unix time.
#[derive(Debug)]
pub(crate) enum Notice {
    /// It left: refuse its credentials (valid until then at most) and free its allocations.
    Revoke(String, u64),
    /// It stays and was given fresh credentials valid until then.
    Renew(String, u64),
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A running TURN server. Dropping it shuts the server down too.
#[derive(Debug)]
pub struct TurnHandle {
    addrs: LocalAddrs,
    stats: Arc<Mutex<Stats>>,
    relay_ports: Arc<Mutex<HashSet<u16>>>,
    revoke: tokio::sync::mpsc::Sender<Notice>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl TurnHandle {
    /// The bound listener addresses (useful when configured with port 0).
    pub fn local_addrs(&self) -> LocalAddrs {
        self.addrs
    }

    /// Whether `port` is the port of one of the relay sockets open now: a datagram from it to
    /// our media sockets is a TURN-relayed member's.
    pub fn is_relay_port(&self, port: u16) -> bool {
        self.relay_ports
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&port)
    }

    /// Allocations and connections held now, and what was refused so far.
    pub fn stats(&self) -> Stats {
        *self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Revokes the credentials issued to `peer` (the name given to [`credentials`]; free4chat
    /// gives a member's id), which are valid until `until` at most: their allocations are
    /// freed and they are refused from now on. Returns false if the server is too busy to take
    /// it now (the credentials then stay valid until they expire).
    pub fn revoke(&self, peer: &str, until: SystemTime) -> bool {
        self.revoke
            .try_send(Notice::Revoke(peer.to_owned(), unix_secs(until)))
            .is_ok()
    }

    /// Renews `peer` until `until`, as it is given fresh credentials valid that long: the
    /// allocations it made with older credentials may go on being refreshed with them (from
    /// their own 5-tuple) until then, while every new allocation needs credentials not yet
    /// expired. Returns false if the server is too busy to take it now (the old credentials
    /// then lapse at their own expiry).
    pub fn renew(&self, peer: &str, until: SystemTime) -> bool {
        self.revoke
            .try_send(Notice::Renew(peer.to_owned(), unix_secs(until)))
            .is_ok()
    }

    /// Closes every listener, connection and relay socket, frees every allocation, and waits
    /// for the server's thread to end.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for TurnHandle {
    fn drop(&mut self) {
        self.stop();
    }
}
