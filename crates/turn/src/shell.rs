//! The thin tokio I/O shell around the [`Engine`]: listeners, relay sockets, stream
//! connections, timers. One task owns the engine; everything else talks to it over one
//! bounded queue and never blocks it.

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::Notice;
use tokio_rustls::TlsAcceptor;

use crate::engine::{Engine, FiveTuple, Output, RelayId, Stats, Transport};
use crate::framing::StreamDecoder;

/// Datagrams and frames waiting for the engine task.
const INBOUND_QUEUE: usize = 1024;
/// Frames waiting to be written to one TCP/TLS connection; beyond it frames are dropped.
const STREAM_QUEUE: usize = 64;
/// Receive buffer of a relay socket. Our media server sends packets under the path MTU.
const RELAY_BUFFER: usize = 4096;
/// A write to a client stream that takes longer ends the connection.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Sockets bound by [`crate::Turn::start`], handed to the shell's thread.
pub(crate) struct Bound {
    pub(crate) udp: Option<std::net::UdpSocket>,
    pub(crate) tcp: Option<std::net::TcpListener>,
    pub(crate) tls: Option<(std::net::TcpListener, Arc<crate::rustls::ServerConfig>)>,
}

enum Inbound {
    /// A datagram on a relay socket, from one of our media addresses.
    Relay {
        relay: RelayId,
        from: SocketAddr,
        data: Vec<u8>,
    },
    /// One frame from a TCP/TLS connection.
    Stream {
        tuple: FiveTuple,
        id: u64,
        data: Vec<u8>,
    },
    /// A TCP/TLS connection ended on the client's side or on an error.
    StreamClosed { tuple: FiveTuple, id: u64 },
}

struct Relay {
    /// Sends go through a plain non-blocking handle on the same socket: tokio's `try_send_to`
    /// refuses to write until its reactor has seen the socket writable, which a new socket
    /// may not have been yet.
    send: std::net::UdpSocket,
    task: JoinHandle<()>,
    port: u16,
}

struct Conn {
    id: u64,
    tx: mpsc::Sender<Vec<u8>>,
}

pub(crate) struct Shell {
    engine: Engine,
    /// The UDP listener, its send handle (see [`Relay::send`]) and address.
    udp: Option<(Arc<UdpSocket>, std::net::UdpSocket, SocketAddr)>,
    tcp: Option<(TcpListener, SocketAddr)>,
    tls: Option<(TcpListener, SocketAddr, TlsAcceptor)>,
    relay_bind: IpAddr,
    /// Local addresses of our media sockets: the only senders a relay socket listens to.
    media: Arc<HashSet<SocketAddr>>,
    relays: HashMap<RelayId, Relay>,
    streams: HashMap<FiveTuple, Conn>,
    next_conn: u64,
    auth_timeout: Duration,
    inbound_tx: mpsc::Sender<Inbound>,
    inbound_rx: mpsc::Receiver<Inbound>,
    /// Credentials' holders to revoke or renew.
    revoke_rx: mpsc::Receiver<Notice>,
    /// Datagrams from foreign senders dropped by relay sockets.
    foreign: Arc<AtomicU64>,
    stats: Arc<Mutex<Stats>>,
    /// The ports of the relay sockets open now, for others to tell relayed media apart.
    relay_ports: Arc<Mutex<HashSet<u16>>>,
}

fn tokio_listener(l: std::net::TcpListener) -> io::Result<(TcpListener, SocketAddr)> {
    l.set_nonblocking(true)?;
    let addr = l.local_addr()?;
    Ok((TcpListener::from_std(l)?, addr))
}

impl Shell {
    /// Takes over the bound sockets; must run inside the shell's runtime.
    pub(crate) fn new(
        engine: Engine,
        bound: Bound,
        relay_bind: IpAddr,
        media: HashSet<SocketAddr>,
        auth_timeout: Duration,
        (stats, relay_ports): (Arc<Mutex<Stats>>, Arc<Mutex<HashSet<u16>>>),
        revoke_rx: mpsc::Receiver<Notice>,
    ) -> io::Result<Self> {
        let udp = match bound.udp {
            Some(s) => {
                s.set_nonblocking(true)?;
                let addr = s.local_addr()?;
                let send = s.try_clone()?;
                Some((Arc::new(UdpSocket::from_std(s)?), send, addr))
            }
            None => None,
        };
        let tcp = bound.tcp.map(tokio_listener).transpose()?;
        let tls = match bound.tls {
            Some((l, config)) => {
                let (l, addr) = tokio_listener(l)?;
                Some((l, addr, TlsAcceptor::from(config)))
            }
            None => None,
        };
        let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND_QUEUE);
        Ok(Self {
            engine,
            udp,
            tcp,
            tls,
            relay_bind,
            media: Arc::new(media),
            relays: HashMap::new(),
            streams: HashMap::new(),
            next_conn: 0,
            auth_timeout,
            inbound_tx,
            inbound_rx,
            revoke_rx,
            foreign: Arc::new(AtomicU64::new(0)),
            stats,
            relay_ports,
        })
    }

    /// Serves until `shutdown` fires (or its sender is dropped), then frees everything.
    pub(crate) async fn run(mut self, mut shutdown: oneshot::Receiver<()>) {
        let mut buf = vec![0u8; 65_536];
        let udp = self.udp.as_ref().map(|(s, _, a)| (s.clone(), *a));
        let tcp = self.tcp.take();
        let tls = self.tls.take();
        loop {
            let deadline = self.engine.poll_timeout();
            tokio::select! {
                _ = &mut shutdown => break,
                r = recv_udp(udp.as_ref().map(|(s, _)| &**s), &mut buf) => {
                    if let (Ok((n, client)), Some((_, listener))) = (r, &udp) {
                        let tuple = FiveTuple { transport: Transport::Udp, client, listener: *listener };
                        self.engine.handle_client(tuple, &buf[..n], Instant::now());
                    }
                }
                Some(msg) = self.inbound_rx.recv() => self.inbound(msg),
                Some(notice) = self.revoke_rx.recv() => match notice {
                    Notice::Revoke(peer, until) => self.engine.revoke(&peer, until, Instant::now()),
                    Notice::Renew(peer, until) => self.engine.renew(&peer, until, Instant::now()),
                },
                r = accept(tcp.as_ref().map(|(l, _)| l)) => {
                    if let (Ok((stream, client)), Some((_, listener))) = (r, &tcp) {
                        let tuple = FiveTuple { transport: Transport::Tcp, client, listener: *listener };
                        self.accept(tuple, stream, None);
                    }
                }
                r = accept(tls.as_ref().map(|(l, _, _)| l)) => {
                    if let (Ok((stream, client)), Some((_, listener, acceptor))) = (r, &tls) {
                        let tuple = FiveTuple { transport: Transport::Tls, client, listener: *listener };
                        self.accept(tuple, stream, Some(acceptor.clone()));
                    }
                }
                _ = sleep_until(deadline) => self.engine.handle_timeout(Instant::now()),
            }
            // Stats first, so whoever sees our answers sees the state that caused them.
            self.publish();
            self.drain();
            self.publish();
        }
        for (_, relay) in self.relays.drain() {
            relay.task.abort();
        }
        lock(&self.relay_ports).clear();
        self.streams.clear();
        *lock(&self.stats) = Stats {
            allocations: 0,
            connections: 0,
            ..self.engine.stats()
        };
    }

    fn publish(&self) {
        let mut stats = self.engine.stats();
        stats.refused_peer += self.foreign.load(Ordering::Relaxed);
        *lock(&self.stats) = stats;
    }

    fn inbound(&mut self, msg: Inbound) {
        let now = Instant::now();
        match msg {
            Inbound::Relay { relay, from, data } => {
                self.engine.handle_peer(relay, from, &data, now)
            }
            Inbound::Stream { tuple, id, data } => {
                if self.streams.get(&tuple).is_some_and(|c| c.id == id) {
                    self.engine.handle_client(tuple, &data, now);
                }
            }
            Inbound::StreamClosed { tuple, id } => {
                if self.streams.get(&tuple).is_some_and(|c| c.id == id) {
                    self.streams.remove(&tuple);
                    self.engine.stream_closed(tuple);
                }
            }
        }
    }

    fn accept(&mut self, tuple: FiveTuple, stream: TcpStream, tls: Option<TlsAcceptor>) {
        if !self.engine.stream_opened(tuple, Instant::now()) {
            return; // dropping the stream closes it
        }
        let _ = stream.set_nodelay(true);
        let (tx, rx) = mpsc::channel(STREAM_QUEUE);
        let id = self.next_conn;
        self.next_conn += 1;
        let inbound = self.inbound_tx.clone();
        let handshake_timeout = self.auth_timeout;
        tokio::spawn(async move {
            match tls {
                None => serve_stream(stream, tuple, id, inbound, rx).await,
                Some(acceptor) => {
                    match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => serve_stream(stream, tuple, id, inbound, rx).await,
                        _ => {
                            let _ = inbound.send(Inbound::StreamClosed { tuple, id }).await;
                        }
                    }
                }
            }
        });
        self.streams.insert(tuple, Conn { id, tx });
    }

    fn drain(&mut self) {
        while let Some(out) = self.engine.poll_output() {
            match out {
                Output::ToClient { tuple, data } => match tuple.transport {
                    Transport::Udp => {
                        if let Some((_, send, _)) = &self.udp {
                            let _ = send.send_to(&data, tuple.client);
                        }
                    }
                    Transport::Tcp | Transport::Tls => {
                        if let Some(conn) = self.streams.get(&tuple) {
                            let _ = conn.tx.try_send(data);
                        }
                    }
                },
                Output::ToPeer { relay, to, data } => {
                    if let Some(r) = self.relays.get(&relay) {
                        let _ = r.send.send_to(&data, to);
                    }
                }
                Output::OpenRelay { relay } => {
                    let port = self.open_relay(relay);
                    self.engine.relay_opened(relay, port, Instant::now());
                }
                Output::CloseRelay { relay } => {
                    if let Some(r) = self.relays.remove(&relay) {
                        r.task.abort();
                        lock(&self.relay_ports).remove(&r.port);
                    }
                }
                Output::CloseStream { tuple } => {
                    // Dropping the sender lets the connection write what is queued, then close.
                    self.streams.remove(&tuple);
                }
            }
        }
    }

    fn open_relay(&mut self, relay: RelayId) -> Option<u16> {
        let socket = std::net::UdpSocket::bind(SocketAddr::new(self.relay_bind, 0)).ok()?;
        socket.set_nonblocking(true).ok()?;
        let send = socket.try_clone().ok()?;
        let port = socket.local_addr().ok()?.port();
        let socket = Arc::new(UdpSocket::from_std(socket).ok()?);
        let task = tokio::spawn(read_relay(
            relay,
            socket.clone(),
            self.media.clone(),
            self.inbound_tx.clone(),
            self.foreign.clone(),
        ));
        self.relays.insert(relay, Relay { send, task, port });
        lock(&self.relay_ports).insert(port);
        Some(port)
    }
}

fn lock<T>(stats: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    stats.lock().unwrap_or_else(|e| e.into_inner())
}

async fn recv_udp(socket: Option<&UdpSocket>, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
    match socket {
        Some(s) => s.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

async fn accept(listener: Option<&TcpListener>) -> io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(l) => {
            let r = l.accept().await;
            if r.is_err() {
                // Out of descriptors, most likely: do not spin.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            r
        }
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

/// Reads one relay socket. Only datagrams from our media sockets reach the engine; the rest
/// are counted and dropped here, so a flood from elsewhere cannot crowd the engine's queue.
async fn read_relay(
    relay: RelayId,
    socket: Arc<UdpSocket>,
    media: Arc<HashSet<SocketAddr>>,
    inbound: mpsc::Sender<Inbound>,
    foreign: Arc<AtomicU64>,
) {
    let mut buf = vec![0u8; RELAY_BUFFER];
    loop {
        let (n, from) = match socket.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        if !media.contains(&from) {
            foreign.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let msg = Inbound::Relay {
            relay,
            from,
            data: buf[..n].to_vec(),
        };
        if let Err(mpsc::error::TrySendError::Closed(_)) = inbound.try_send(msg) {
            return;
        }
    }
}

/// Serves one TCP or TLS connection: frames in, frames out, until either side ends it.
async fn serve_stream<S: AsyncRead + AsyncWrite>(
    stream: S,
    tuple: FiveTuple,
    id: u64,
    inbound: mpsc::Sender<Inbound>,
    mut out: mpsc::Receiver<Vec<u8>>,
) {
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut decoder = StreamDecoder::default();
    let mut buf = vec![0u8; 4096];
    let closed_by_engine = 'conn: loop {
        tokio::select! {
            r = rd.read(&mut buf) => {
                let n = match r {
                    Ok(0) | Err(_) => break 'conn false,
                    Ok(n) => n,
                };
                decoder.push(&buf[..n]);
                loop {
                    match decoder.next_frame() {
                        Ok(Some(data)) => {
                            let msg = Inbound::Stream { tuple, id, data };
                            if inbound.send(msg).await.is_err() {
                                break 'conn true;
                            }
                        }
                        Ok(None) => break,
                        // Not TURN: a stream cannot be resynchronised.
                        Err(_) => break 'conn false,
                    }
                }
            }
            m = out.recv() => match m {
                Some(data) => {
                    let written = tokio::time::timeout(WRITE_TIMEOUT, wr.write_all(&data)).await;
                    if !matches!(written, Ok(Ok(()))) {
                        break 'conn false;
                    }
                }
                None => break 'conn true,
            },
        }
    };
    if closed_by_engine {
        let _ = tokio::time::timeout(WRITE_TIMEOUT, wr.shutdown()).await;
    } else {
        let _ = inbound.send(Inbound::StreamClosed { tuple, id }).await;
    }
}
