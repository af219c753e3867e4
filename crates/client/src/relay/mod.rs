//! A UDP relay on loopback with a bandwidth limit, to put between a client and the server's
//! media port in tests: a narrow or lossy link without `tc netem`, set per direction and
//! changeable while media flows.
//!
//! A test starts one in front of the server's media address and gives its address to the
//! client, which then sends all its media there (its remote UDP candidates are rewritten):
//!
//! ```ignore
//! let relay = Relay::start(server.media_addrs()[0], RelayConfig::default()).await?;
//! let mut config = ClientConfig::new(server.http_addr(), "room", "Viewer");
//! config.media_via = Some(relay.addr());
//! let viewer = Client::join(config).await?;
//! relay.set_rate(Way::Down, Some(300_000)); // server → client: 300 kbit/s from now on
//! ```
//!
//! Each address that sends to the relay gets a socket of its own towards the server, so the
//! server sees one remote address per client, as it would through a NAT; the server answers
//! that socket and the relay passes the answer back. Each direction has a token bucket (bits
//! per second, none: unlimited) in front of a bounded queue: what does not fit is dropped and
//! counted. Loss, if set, drops that share of RTP and RTCP datagrams (never STUN or DTLS, so
//! that a session still connects), at random but the same from run to run.

mod shaper;

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use shaper::{Shaper, WayStats};

/// The most clients one relay carries; datagrams from more are dropped.
pub const MAX_RELAY_CLIENTS: usize = 64;
/// Datagrams from the server waiting to be shaped (beyond, they are dropped as a full queue).
const DOWN_CHANNEL: usize = 4096;

/// A direction through the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    /// From the client to the server.
    Up,
    /// From the server to the client.
    Down,
}

/// How a relay starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RelayConfig {
    /// Bits per second from the client to the server; none: unlimited.
    pub up_rate: Option<u64>,
    /// Bits per second from the server to the client; none: unlimited.
    pub down_rate: Option<u64>,
    /// The most bytes each direction's queue holds.
    pub queue_bytes: usize,
    /// The share (0 to 1) of RTP and RTCP datagrams dropped, each way.
    pub up_loss: f64,
    pub down_loss: f64,
}

impl Default for RelayConfig {
    fn default() -> RelayConfig {
        RelayConfig {
            up_rate: None,
            down_rate: None,
            // About 100 ms at 4 Mbit/s: a home router's buffer.
            queue_bytes: 50_000,
            up_loss: 0.0,
            down_loss: 0.0,
        }
    }
}

/// What a relay did, each way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayStats {
    pub up: WayStats,
    pub down: WayStats,
    /// Clients seen (at most [`MAX_RELAY_CLIENTS`]), and datagrams from clients past that.
    pub clients: usize,
    pub refused: u64,
}

enum Setting {
    Rate(Way, Option<u64>),
    Loss(Way, f64),
}

/// A running relay; dropping it stops it.
pub struct Relay {
    addr: SocketAddr,
    settings: mpsc::UnboundedSender<Setting>,
    stats: Arc<Mutex<RelayStats>>,
    task: JoinHandle<()>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Relay {
    /// Starts a relay on 127.0.0.1 in front of `upstream` (the server's media address).
    pub async fn start(upstream: SocketAddr, config: RelayConfig) -> io::Result<Relay> {
        let front = std::net::UdpSocket::bind(("127.0.0.1", 0))?;
        front.set_nonblocking(true)?;
        let addr = front.local_addr()?;
        let (settings, settings_rx) = mpsc::unbounded_channel();
        let stats = Arc::new(Mutex::new(RelayStats::default()));
        let run = Run::new(front, upstream, config, stats.clone())?;
        let task = tokio::spawn(run.run(settings_rx));
        Ok(Relay {
            addr,
            settings,
            stats,
            task,
        })
    }

    /// The address clients send to: [`crate::ClientConfig::media_via`].
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A new rate limit one way, bits per second (none: unlimited), from now on.
    pub fn set_rate(&self, way: Way, bits_per_second: Option<u64>) {
        let _ = self.settings.send(Setting::Rate(way, bits_per_second));
    }

    /// A new share (0 to 1) of RTP and RTCP datagrams to drop one way.
    pub fn set_loss(&self, way: Way, loss: f64) {
        let _ = self.settings.send(Setting::Loss(way, loss));
    }

    /// What the relay has done so far.
    pub fn stats(&self) -> RelayStats {
        *lock(&self.stats)
    }
}

fn lock(stats: &Mutex<RelayStats>) -> MutexGuard<'_, RelayStats> {
    match stats.lock() {
        Ok(s) => s,
        Err(p) => p.into_inner(),
    }
}

/// A socket the relay sends on: the plain one (non-blocking), which sends whenever the kernel
/// takes it, where tokio's would first wait to hear from its reactor that it may.
type SendSocket = std::net::UdpSocket;

/// The relay's task state.
struct Run {
    front: SendSocket,
    front_rx: Arc<UdpSocket>,
    upstream: SocketAddr,
    /// Each client's socket towards the server, and the task reading the server's answers.
    clients: HashMap<SocketAddr, (SendSocket, JoinHandle<()>)>,
    up: Shaper<(SocketAddr, Vec<u8>)>,
    down: Shaper<(SocketAddr, Vec<u8>)>,
    loss: [f64; 2],
    random: u64,
    refused: u64,
    stats: Arc<Mutex<RelayStats>>,
    down_tx: mpsc::Sender<(SocketAddr, Vec<u8>)>,
    down_rx: mpsc::Receiver<(SocketAddr, Vec<u8>)>,
    /// Datagrams from the server dropped before the shaper because its channel was full:
    /// counted with the way down's queue drops.
    channel_drops: Arc<AtomicU64>,
}

impl Drop for Run {
    fn drop(&mut self) {
        for (_, task) in self.clients.values() {
            task.abort();
        }
    }
}

impl Run {
    fn new(
        front: SendSocket,
        upstream: SocketAddr,
        config: RelayConfig,
        stats: Arc<Mutex<RelayStats>>,
    ) -> io::Result<Run> {
        let now = Instant::now();
        let (down_tx, down_rx) = mpsc::channel(DOWN_CHANNEL);
        Ok(Run {
            front_rx: Arc::new(UdpSocket::from_std(front.try_clone()?)?),
            front,
            upstream,
            clients: HashMap::new(),
            up: Shaper::new(now, config.up_rate, config.queue_bytes),
            down: Shaper::new(now, config.down_rate, config.queue_bytes),
            loss: [config.up_loss, config.down_loss],
            random: 0x9e37_79b9_7f4a_7c15,
            refused: 0,
            stats,
            down_tx,
            down_rx,
            channel_drops: Arc::new(AtomicU64::new(0)),
        })
    }

    async fn run(mut self, mut settings: mpsc::UnboundedReceiver<Setting>) {
        let mut buf = vec![0u8; 65_536];
        let front = self.front_rx.clone();
        loop {
            let now = Instant::now();
            let due = [self.up.next_ready(now), self.down.next_ready(now)]
                .into_iter()
                .flatten()
                .min();
            tokio::select! {
                r = front.recv_from(&mut buf) => {
                    let Ok((n, from)) = r else { continue };
                    self.client_sent(from, &buf[..n]);
                }
                Some((to, datagram)) = self.down_rx.recv() => {
                    if !self.lose(Way::Down, &datagram) {
                        self.down.push(datagram.len(), (to, datagram));
                    }
                }
                s = settings.recv() => match s {
                    Some(Setting::Rate(Way::Up, r)) => self.up.set_rate(Instant::now(), r),
                    Some(Setting::Rate(Way::Down, r)) => self.down.set_rate(Instant::now(), r),
                    Some(Setting::Loss(way, loss)) => self.loss[way as usize] = loss,
                    None => return,
                },
                _ = sleep_until(due) => {}
            }
            self.send_due(Instant::now());
            let mut stats = lock(&self.stats);
            stats.up = self.up.stats;
            stats.down = self.down.stats;
            stats.down.queue_drops += self.channel_drops.load(Ordering::Relaxed);
            stats.clients = self.clients.len();
            stats.refused = self.refused;
        }
    }

    /// A datagram from a client: shaped on its way up, through the client's own socket.
    fn client_sent(&mut self, from: SocketAddr, datagram: &[u8]) {
        if !self.clients.contains_key(&from) {
            if self.clients.len() >= MAX_RELAY_CLIENTS {
                self.refused += 1;
                return;
            }
            let Some(link) = self.open_link(from) else {
                return;
            };
            self.clients.insert(from, link);
        }
        if !self.lose(Way::Up, datagram) {
            self.up.push(datagram.len(), (from, datagram.to_vec()));
        }
    }

    /// A socket towards the server for client `client`, and a task passing what the server
    /// sends it to the shaper of the way down.
    fn open_link(&self, client: SocketAddr) -> Option<(SendSocket, JoinHandle<()>)> {
        let socket = std::net::UdpSocket::bind(("127.0.0.1", 0)).ok()?;
        socket.set_nonblocking(true).ok()?;
        let reader = UdpSocket::from_std(socket.try_clone().ok()?).ok()?;
        let down = self.down_tx.clone();
        let drops = self.channel_drops.clone();
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 65_536];
            while let Ok((n, _)) = reader.recv_from(&mut buf).await {
                match down.try_send((client, buf[..n].to_vec())) {
                    Ok(()) => {}
                    // A full channel is a full queue: the datagram is dropped.
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        drops.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => return,
                }
            }
        });
        Some((socket, task))
    }

    /// Sends whatever each bucket lets through by `now`.
    fn send_due(&mut self, now: Instant) {
        while let Some((client, datagram)) = self.up.pop(now) {
            if let Some((socket, _)) = self.clients.get(&client) {
                let _ = socket.send_to(&datagram, self.upstream);
            }
        }
        while let Some((client, datagram)) = self.down.pop(now) {
            let _ = self.front.send_to(&datagram, client);
        }
    }

    /// Whether the configured loss takes this datagram (RTP and RTCP only).
    fn lose(&mut self, way: Way, datagram: &[u8]) -> bool {
        let loss = self.loss[way as usize];
        let rtp_or_rtcp = datagram.first().is_some_and(|b| (128..=191).contains(b));
        if loss <= 0.0 || !rtp_or_rtcp {
            return false;
        }
        self.random ^= self.random << 13;
        self.random ^= self.random >> 7;
        self.random ^= self.random << 17;
        let lost = (self.random >> 11) as f64 / (1u64 << 53) as f64 <= loss;
        if lost {
            let stats = match way {
                Way::Up => &mut self.up.stats,
                Way::Down => &mut self.down.stats,
            };
            stats.loss_drops += 1;
        }
        lost
    }
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests;
