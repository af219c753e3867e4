//! The I/O shell around one [`Sfu`]: a thread with its own single-threaded async runtime, the
//! UDP sockets and TCP listeners media arrives on, and channels to the signalling layer.
//!
//! Everything that decides anything about media lives in the core; this file only moves bytes
//! and time between the sockets, the clock, the channels and the core. For TCP (ICE-TCP, RFC
//! 6544) it also keeps the connections: it accepts them, de-frames what they carry (RFC 4571,
//! see `tcp.rs`), and enforces the bounds on connections, silence and queued bytes.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener as StdTcpListener, UdpSocket as StdUdpSocket};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use str0m::net::{Protocol, Transmit};
use tokio::io::{AsyncReadExt, Interest};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::AbortHandle;
use tracing::{debug, info, warn};

use crate::priority::{self, Change, Governor, Realtime};
use crate::tcp::{Deframer, Frame, WriteQueue};
use crate::udp;
use crate::{
    MediaCmd, MediaEvent, Outgoing, Relay, Residence, RoomId, SendNow, Sfu, SfuConfig, SfuStats,
};

/// How many messages may wait for a worker before senders wait.
const CMD_QUEUE: usize = 4096;
/// How many relayed packets may wait for a worker; beyond, they are dropped, as a full socket
/// buffer drops datagrams.
const RELAY_QUEUE: usize = 4096;
/// `recvmmsg` batches one socket drains before letting the worker's other tasks run.
const BATCHES_PER_TURN: usize = 8;

/// One media socket: where to bind, and the address to offer in candidates if it differs
/// (a public address in front of a NAT).
#[derive(Debug, Clone, Copy)]
pub struct SocketSpec {
    pub bind: SocketAddr,
    pub advertise: Option<IpAddr>,
}

/// Media over TCP (ICE-TCP): each worker listens on the same addresses and port numbers as
/// its UDP sockets and offers a passive TCP host candidate beside each UDP one.
#[derive(Debug, Clone, Copy)]
pub struct TcpOptions {
    /// The most connections a worker holds at once; further ones are closed at once.
    pub max_connections: usize,
    /// A connection must open with a STUN binding request for a member within this time of
    /// being accepted.
    pub first_frame_timeout: Duration,
    /// An open connection without a whole frame for this long is closed: ICE consent lapses
    /// after 30 s anyway, and browsers check a backup pair at least every 25 s.
    pub idle_timeout: Duration,
    /// Bytes that may wait to be written to one connection; beyond, frames are dropped, as a
    /// full UDP socket buffer drops datagrams.
    pub write_queue_bytes: usize,
}

impl Default for TcpOptions {
    fn default() -> TcpOptions {
        TcpOptions {
            max_connections: 4096,
            first_frame_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            write_queue_bytes: 64 * 1024,
        }
    }
}

/// Messages to a worker.
#[derive(Debug)]
pub enum WorkerMsg {
    /// Route this room's media events to `events`.
    OpenRoom {
        room: RoomId,
        events: mpsc::Sender<MediaEvent>,
    },
    /// The room has no members here any more (they must have been removed first): stop
    /// routing its events and forget what the core kept about it.
    CloseRoom {
        room: RoomId,
    },
    /// Where to hand packets relayed to each worker, by index ([`link`]).
    Neighbours(Vec<mpsc::Sender<Relayed>>),
    Cmd(MediaCmd),
    Stats(oneshot::Sender<WorkerStats>),
}

/// A worker's figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerStats {
    pub sfu: SfuStats,
    /// How long received datagrams stayed in the worker, until all they caused was sent.
    pub residence: Residence,
    /// For each datagram sent because one was received, how long after that one's arrival it
    /// was handed to the kernel: the latency the worker adds to each forwarded copy.
    pub send_delay: Residence,
    pub tcp: TcpStats,
    pub udp: UdpStats,
    pub scheduling: SchedulingStats,
    /// Packets for other workers dropped because that worker's relay queue was full.
    pub relay_dropped: u64,
}

/// Datagrams the worker's UDP sockets lost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UdpStats {
    /// Dropped by the kernel on arrival: a socket's receive buffer was full (the worker fell
    /// behind).
    pub receive_dropped: u64,
    /// Not sent: a socket's send buffer was full.
    pub send_dropped: u64,
}

/// How the worker threads are scheduled ([`crate::priority`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SchedulingStats {
    /// Workers at real-time priority now.
    pub realtime: usize,
    /// Times a worker returned to normal scheduling because it was busy most of a second.
    pub demotions: u64,
    /// Times a worker took real-time priority again after calm seconds.
    pub promotions: u64,
}

/// A worker's TCP connections.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpStats {
    /// Open now.
    pub connections: usize,
    /// Of those, opened by a STUN binding request a member accepted.
    pub admitted: usize,
    /// Bytes waiting in their write queues.
    pub queued_bytes: usize,
    /// Closed at once: the worker already held `max_connections` that all carry media, or one
    /// from that address.
    pub refused: u64,
    /// Closed to make room for a new connection: the oldest that had not yet opened with a
    /// member's STUN request, when `max_connections` were open.
    pub evicted: u64,
    /// Closed because the first frame was not a STUN binding request for a member.
    pub rejected: u64,
    /// Closed for silence.
    pub idle: u64,
    /// Frames not written: the connection's write queue was full.
    pub dropped: u64,
    /// Frames longer than any WebRTC datagram, skipped.
    pub oversized: u64,
}

impl WorkerStats {
    /// Adds another worker's figures into these.
    pub fn merge(&mut self, o: &WorkerStats) {
        let (a, b) = (&mut self.sfu, &o.sfu);
        a.rooms += b.rooms;
        a.peers += b.peers;
        a.addrs += b.addrs;
        a.tcp_addrs += b.tcp_addrs;
        a.ufrags += b.ufrags;
        a.timers += b.timers;
        a.forwarded += b.forwarded;
        a.relayed += b.relayed;
        a.relayed_in += b.relayed_in;
        a.garbage += b.garbage;
        a.unknown += b.unknown;
        a.failed += b.failed;
        self.residence.merge(&o.residence);
        self.send_delay.merge(&o.send_delay);
        let (a, b) = (&mut self.tcp, &o.tcp);
        a.connections += b.connections;
        a.admitted += b.admitted;
        a.queued_bytes += b.queued_bytes;
        a.refused += b.refused;
        a.evicted += b.evicted;
        a.rejected += b.rejected;
        a.idle += b.idle;
        a.dropped += b.dropped;
        a.oversized += b.oversized;
        self.udp.receive_dropped += o.udp.receive_dropped;
        self.udp.send_dropped += o.udp.send_dropped;
        let (a, b) = (&mut self.scheduling, &o.scheduling);
        a.realtime += b.realtime;
        a.demotions += b.demotions;
        a.promotions += b.promotions;
        self.relay_dropped += o.relay_dropped;
    }
}

/// A packet or keyframe request on its way to another worker, and when what it stems from
/// reached the server: each copy the other worker sends counts its wait from there, the
/// time the datagram waited in this worker's socket included.
#[derive(Debug)]
pub struct Relayed {
    relay: Relay,
    arrived: Instant,
}

/// Sorts `items` so that those with equal keys are together: each group where its key first
/// appears in `keys` (the items' keys, in the items' present order), and each group's items in
/// their present order. Keys `[a, b, a, c, b]` put items `[0, 1, 2, 3, 4]` in the order
/// `[0, 2, 1, 4, 3]`.
fn group_in_order<T, K: PartialEq>(items: &mut [T], keys: &[K], key: impl Fn(&T) -> K) {
    // A stable sort by where each item's key first appears.
    items.sort_by_key(|item| {
        let k = key(item);
        keys.iter().position(|x| *x == k)
    });
}

/// When a datagram read at `now` reached the server: `arrival`, the kernel's stamp, moved onto
/// the monotonic clock; `now` without a stamp or with one that is not in the past.
fn arrived(now: Instant, arrival: Option<SystemTime>) -> Instant {
    arrival
        .and_then(|at| SystemTime::now().duration_since(at).ok())
        .and_then(|waited| Instant::now().checked_sub(waited))
        .map_or(now, |at| at.min(now))
}

/// The signalling layer's handle on a worker thread.
pub struct WorkerHandle {
    tx: mpsc::Sender<WorkerMsg>,
    relay: mpsc::Sender<Relayed>,
    addrs: Vec<SocketAddr>,
    tcp_addrs: Vec<SocketAddr>,
    thread: Option<JoinHandle<()>>,
}

/// The worker thread has stopped.
#[derive(Debug, thiserror::Error)]
#[error("the media worker has stopped")]
pub struct WorkerGone;

impl WorkerHandle {
    /// Binds the sockets (and, with `tcp`, a TCP listener beside each) and starts the worker
    /// thread, at real-time priority if `realtime` asks for it and the system allows it, under
    /// a governor that gives it up while the worker is too busy ([`crate::priority`]). The
    /// core runs with `sfu`'s timings; its candidates are the sockets bound here, whatever
    /// `sfu` lists.
    pub fn spawn(
        index: usize,
        specs: &[SocketSpec],
        tcp: Option<TcpOptions>,
        realtime: Realtime,
        sfu: SfuConfig,
    ) -> io::Result<WorkerHandle> {
        let mut sockets = Vec::new();
        let mut listeners = Vec::new();
        let mut addrs = Vec::new();
        let mut tcp_addrs = Vec::new();
        for spec in specs {
            let (socket, listener) = bind(spec.bind, tcp.is_some())?;
            socket.set_nonblocking(true)?;
            udp::enlarge_buffers(&socket);
            udp::stamp_arrivals(&socket);
            let local = socket.local_addr()?;
            let advertised = SocketAddr::new(spec.advertise.unwrap_or(local.ip()), local.port());
            info!(worker = index, %local, %advertised, "media socket bound");
            sockets.push((socket, advertised));
            addrs.push(advertised);
            if let Some(listener) = listener {
                listener.set_nonblocking(true)?;
                let local = listener.local_addr()?;
                let advertised =
                    SocketAddr::new(spec.advertise.unwrap_or(local.ip()), local.port());
                info!(worker = index, %local, %advertised, "media TCP listener bound");
                listeners.push((listener, advertised));
                tcp_addrs.push(advertised);
            }
        }
        let (tx, rx) = mpsc::channel(CMD_QUEUE);
        let (relay, relays) = mpsc::channel(RELAY_QUEUE);
        let options = tcp.unwrap_or_default();
        let thread = std::thread::Builder::new()
            .name(format!("media-{index}"))
            .spawn(move || {
                let priority = realtime.priority;
                let granted = priority > 0
                    && match priority::set_realtime(priority) {
                        Ok(()) => {
                            info!(worker = index, priority, "real-time priority");
                            true
                        }
                        Err(e) if realtime.asked => {
                            warn!(
                                worker = index,
                                "real-time priority {priority} refused, running at normal priority: {e}"
                            );
                            false
                        }
                        Err(e) => {
                            info!(
                                worker = index,
                                "normal priority (real-time priority {priority} refused: {e})"
                            );
                            false
                        }
                    };
                let realtime = granted.then_some(priority);
                run(index, sockets, listeners, options, sfu, (rx, relays), realtime)
            })?;
        Ok(WorkerHandle {
            tx,
            relay,
            addrs,
            tcp_addrs,
            thread: Some(thread),
        })
    }

    /// The addresses offered as UDP host candidates.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The addresses offered as passive TCP host candidates (none when TCP is off): the same
    /// as [`WorkerHandle::addrs`], port numbers included.
    pub fn tcp_addrs(&self) -> &[SocketAddr] {
        &self.tcp_addrs
    }

    pub async fn send(&self, msg: WorkerMsg) -> Result<(), WorkerGone> {
        self.tx.send(msg).await.map_err(|_| WorkerGone)
    }

    pub async fn stats(&self) -> Result<WorkerStats, WorkerGone> {
        let (reply, rx) = oneshot::channel();
        self.send(WorkerMsg::Stats(reply)).await?;
        rx.await.map_err(|_| WorkerGone)
    }

    /// Stops the worker (dropping every media session) and waits for its thread.
    pub fn shutdown(mut self) {
        let thread = self.thread.take();
        drop(self);
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

/// Tells each worker where to relay to the others, so that a room may spread over them:
/// the packets its members publish in one worker reach its members in another.
pub fn link(workers: &[&WorkerHandle]) -> Result<(), WorkerGone> {
    let relays: Vec<mpsc::Sender<Relayed>> = workers.iter().map(|w| w.relay.clone()).collect();
    for w in workers {
        // Called before any room exists, so the command queue has room.
        w.tx.try_send(WorkerMsg::Neighbours(relays.clone()))
            .map_err(|_| WorkerGone)?;
    }
    Ok(())
}

/// Binds a UDP socket and, if asked, a TCP listener on the same address and port number.
/// With port 0, tries a few ports until both are free.
fn bind(addr: SocketAddr, tcp: bool) -> io::Result<(StdUdpSocket, Option<StdTcpListener>)> {
    let tries = if addr.port() == 0 { 16 } else { 1 };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let socket = StdUdpSocket::bind(addr)?;
        if !tcp {
            return Ok((socket, None));
        }
        let port = socket.local_addr()?.port();
        match StdTcpListener::bind(SocketAddr::new(addr.ip(), port)) {
            Ok(listener) => return Ok((socket, Some(listener))),
            Err(_) if attempt < tries => continue,
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!(
                        "media TCP port {}:{port}: {e} (media over TCP can be turned off)",
                        addr.ip()
                    ),
                ));
            }
        }
    }
}

/// One TCP connection, as the shell keeps it.
struct TcpConn {
    /// Tells this connection from a later one from the same remote address.
    id: u64,
    /// Opened by a STUN binding request a member accepted: only then does it carry media.
    admitted: bool,
    queue: WriteQueue,
    reader: AbortHandle,
    writer: AbortHandle,
}

impl TcpConn {
    fn abort(&self) {
        self.reader.abort();
        self.writer.abort();
    }
}

struct Shell {
    sfu: Sfu,
    sockets: Vec<(Rc<UdpSocket>, SocketAddr)>,
    rooms: HashMap<RoomId, mpsc::Sender<MediaEvent>>,
    sender: udp::Sender,
    /// Datagrams waiting to be sent, per socket (same order as `sockets`).
    outgoing: Vec<Vec<Transmit>>,
    /// The deadline the timer task sleeps until; it is woken only for an earlier one.
    armed: Rc<Cell<Instant>>,
    wake: Rc<Notify>,
    residence: Residence,
    send_delay: Residence,
    /// TCP connections by remote address (at most one per address).
    tcp: HashMap<SocketAddr, TcpConn>,
    tcp_options: TcpOptions,
    tcp_stats: TcpStats,
    next_conn: u64,
    scheduling: Rc<Cell<SchedulingStats>>,
    /// Datagrams not sent because a socket's send buffer was full.
    send_dropped: u64,
    /// The workers to relay to, by index.
    neighbours: Vec<mpsc::Sender<Relayed>>,
    /// Relayed packets not handed on because a worker's relay queue was full.
    relay_dropped: u64,
    /// Reused per `recvmmsg` batch: when each of its datagrams reached the server, and the
    /// order in which they are handed to the core.
    arrivals: Vec<Instant>,
    batch_order: Vec<usize>,
    /// Reused per batch of datagrams or relays: the room of each.
    batch_rooms: Vec<Option<RoomId>>,
}

impl Shell {
    /// Closes the oldest connection that has not opened with a member's STUN request, to make
    /// room for a new one: connections that stay silent cannot keep a member from connecting.
    /// Returns false if every connection carries media.
    fn evict_oldest_unadmitted(&mut self) -> bool {
        let oldest = self
            .tcp
            .iter()
            .filter(|(_, c)| !c.admitted)
            .min_by_key(|(_, c)| c.id)
            .map(|(remote, _)| *remote);
        let Some(remote) = oldest else {
            return false;
        };
        if let Some(conn) = self.tcp.remove(&remote) {
            conn.abort();
        }
        self.tcp_stats.evicted += 1;
        debug!(%remote, "unadmitted TCP connection closed to make room");
        true
    }

    /// Sends what the core wants sent and hands its events to their rooms. Returns how many
    /// datagrams it handed on.
    fn flush(&mut self) -> u64 {
        let (sfu, mut wire) = self.split();
        let sent = wire.send(std::iter::from_fn(|| sfu.poll_transmit()));
        wire.relay(std::iter::from_fn(|| sfu.poll_relay()), None);
        while let Some(remote) = self.sfu.poll_tcp_close() {
            if let Some(conn) = self.tcp.remove(&remote) {
                debug!(%remote, "TCP connection closed: its member is gone");
                conn.abort();
            }
        }
        if self.sfu.next_timeout() < self.armed.get() {
            self.wake.notify_one();
        }
        while let Some((room, event)) = self.sfu.poll_event() {
            match self.rooms.get(&room) {
                Some(tx) => match tx.try_send(event) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(e)) => {
                        warn!(room, "room not keeping up, media event dropped: {e:?}");
                    }
                    // The room is closing; what it would have been told no longer matters.
                    Err(mpsc::error::TrySendError::Closed(_)) => {}
                },
                None => debug!(room, "media event for a closed room: {event:?}"),
            }
        }
        sent
    }

    /// Hands the core what `take` gives it, letting it hand datagrams out midway (a large
    /// fan-out in chunks as it goes), then sends what is left. Every datagram sent counts its
    /// wait from `arrived`, when what caused it reached the server.
    fn answer<R>(&mut self, arrived: Instant, take: impl FnOnce(&mut Sfu, SendNow<'_>) -> R) -> R {
        let (sfu, mut wire) = self.split();
        let mut send_now = |out: Outgoing<'_>| wire.hand_out(out, arrived);
        let taken = take(sfu, &mut send_now);
        let n = self.flush();
        self.send_delay.record_many(arrived.elapsed(), n);
        taken
    }

    /// Hands one frame of an admitted TCP connection from `source`, read at `now`, to the core
    /// ([`Sfu::handle_datagram`]) and sends what it caused. Its time in the worker and each
    /// answer's wait count from `now` (a stream carries no arrival stamps).
    fn take_frame(&mut self, now: Instant, source: SocketAddr, local: SocketAddr, data: &[u8]) {
        self.answer(now, |sfu, send| {
            sfu.handle_datagram(now, Protocol::Tcp, source, local, data, send)
        });
        self.residence.record(now.elapsed());
    }

    /// After the first frame of a TCP connection, read at `now`, was handled (and the
    /// connection marked admitted, so that the answer can go out on it): sends what it caused
    /// and records its time in the worker.
    fn answered(&mut self, now: Instant) {
        self.answer(now, |_, _| {});
        self.residence.record(now.elapsed());
    }

    /// Hands the datagrams one `recvmmsg` read, at `now`, to the core
    /// ([`Sfu::handle_datagrams`]) room by room, and sends what each room's datagrams caused
    /// before the next room's are taken: those of one room are fanned out together (they go
    /// to the same members, who are then drained once), while a room's copies never wait for
    /// another room's. Rooms come in the order of their first datagram, and each room's
    /// datagrams in the order they came (datagrams from addresses no member has yet form one
    /// more group). Each datagram's time in the worker counts from its own kernel arrival
    /// stamp until its room's share was sent; the wait of each datagram sent, here or by other
    /// workers, from the earliest of its room's (it cannot tell which it answers), which
    /// overstates the later ones' by at most the time between their arrivals. A batch of one
    /// is counted exactly.
    fn take_batch(&mut self, now: Instant, local: SocketAddr, receiver: &udp::Receiver) {
        let mut arrivals = std::mem::take(&mut self.arrivals);
        arrivals.clear();
        arrivals.extend(receiver.datagrams().map(|(_, _, at)| arrived(now, at)));
        let mut rooms = std::mem::take(&mut self.batch_rooms);
        rooms.clear();
        rooms.extend(
            receiver
                .datagrams()
                .map(|(source, _, _)| self.sfu.room_of(Protocol::Udp, source)),
        );
        let mut order = std::mem::take(&mut self.batch_order);
        order.clear();
        order.extend(0..rooms.len());
        group_in_order(&mut order, &rooms, |&i| rooms[i]);
        for group in order.chunk_by(|&a, &b| rooms[a] == rooms[b]) {
            let first = group.iter().map(|&i| arrivals[i]).min().unwrap_or(now);
            let datagrams = group
                .iter()
                .filter_map(|&i| receiver.datagram(i))
                .map(|(source, data, _)| (Protocol::Udp, source, local, data));
            self.answer(first, |sfu, send| {
                sfu.handle_datagrams(now, datagrams, send)
            });
            for &i in group {
                self.residence.record(arrivals[i].elapsed());
            }
        }
        self.arrivals = arrivals;
        self.batch_rooms = rooms;
        self.batch_order = order;
    }

    /// Hands what other workers relayed, all that was waiting, to the core
    /// ([`Sfu::handle_relays`]) room by room as [`Shell::take_batch`] takes datagrams, and
    /// sends what each room's packets caused before the next room's are taken. Each copy's
    /// wait counts from when the earliest packet of its room's reached the server.
    fn take_relayed(&mut self, batch: &mut Vec<Relayed>) {
        let mut rooms = std::mem::take(&mut self.batch_rooms);
        rooms.clear();
        rooms.extend(batch.iter().map(|r| r.relay.room()));
        group_in_order(batch, &rooms, |r| r.relay.room());
        while let Some(head) = batch.first() {
            let room = head.relay.room();
            let n = batch.iter().take_while(|r| r.relay.room() == room).count();
            let first = batch[..n].iter().map(|r| r.arrived).min();
            let first = first.unwrap_or_else(Instant::now);
            let relays = batch.drain(..n).map(|r| r.relay);
            self.answer(first, |sfu, send| {
                sfu.handle_relays(relays, Instant::now(), send)
            });
        }
        self.batch_rooms = rooms;
    }

    /// The core, and the parts that send datagrams, borrowed apart: the core can then hand
    /// datagrams out in the middle of a fan-out.
    fn split(&mut self) -> (&mut Sfu, Wire<'_>) {
        let wire = Wire {
            sockets: &self.sockets,
            outgoing: &mut self.outgoing,
            sender: &mut self.sender,
            tcp: &self.tcp,
            tcp_stats: &mut self.tcp_stats,
            send_delay: &mut self.send_delay,
            send_dropped: &mut self.send_dropped,
            neighbours: &self.neighbours,
            relay_dropped: &mut self.relay_dropped,
        };
        (&mut self.sfu, wire)
    }

    fn stats(&self) -> WorkerStats {
        WorkerStats {
            sfu: self.sfu.stats(),
            residence: self.residence,
            send_delay: self.send_delay,
            tcp: TcpStats {
                connections: self.tcp.len(),
                admitted: self.tcp.values().filter(|c| c.admitted).count(),
                queued_bytes: self.tcp.values().map(|c| c.queue.queued()).sum(),
                ..self.tcp_stats
            },
            udp: UdpStats {
                receive_dropped: self
                    .sockets
                    .iter()
                    .filter_map(|(socket, _)| udp::dropped(socket.as_ref()))
                    .map(u64::from)
                    .sum(),
                send_dropped: self.send_dropped,
            },
            scheduling: self.scheduling.get(),
            relay_dropped: self.relay_dropped,
        }
    }
}

/// What puts datagrams on the wire, borrowed from the shell ([`Shell::split`]).
struct Wire<'a> {
    sockets: &'a [(Rc<UdpSocket>, SocketAddr)],
    outgoing: &'a mut [Vec<Transmit>],
    sender: &'a mut udp::Sender,
    tcp: &'a HashMap<SocketAddr, TcpConn>,
    tcp_stats: &'a mut TcpStats,
    send_delay: &'a mut Residence,
    send_dropped: &'a mut u64,
    neighbours: &'a [mpsc::Sender<Relayed>],
    relay_dropped: &'a mut u64,
}

impl Wire<'_> {
    /// What a fan-out of the packet that reached the server at `arrived` handed out midway:
    /// relays to their workers, datagrams to the kernel, each datagram's wait since then
    /// recorded.
    fn hand_out(&mut self, out: Outgoing<'_>, arrived: Instant) {
        self.relay(out.relays.drain(..), Some(arrived));
        let n = self.send(out.transmits.drain(..));
        self.send_delay.record_many(arrived.elapsed(), n);
    }

    /// Hands packets and keyframe requests to the workers they are for, with when what they
    /// stem from reached the server (`arrived`; if not given, when the publisher's worker
    /// read the packet, or now). A full relay queue drops them, as a full socket buffer would.
    fn relay(&mut self, relays: impl Iterator<Item = (usize, Relay)>, arrived: Option<Instant>) {
        for (worker, relay) in relays {
            let Some(tx) = self.neighbours.get(worker) else {
                debug!(worker, "relay to an unknown worker");
                continue;
            };
            let arrived = arrived
                .or_else(|| relay.received())
                .unwrap_or_else(Instant::now);
            match tx.try_send(Relayed { relay, arrived }) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => *self.relay_dropped += 1,
                // That worker has stopped: the server is shutting down.
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
    }

    /// Hands datagrams to the kernel (UDP: one `sendmmsg` per socket) or to their
    /// connections' write queues (TCP). What a full socket buffer or write queue refuses is
    /// dropped, as the network would drop it. Returns how many it handed on.
    fn send(&mut self, transmits: impl Iterator<Item = Transmit>) -> u64 {
        let mut handed = 0;
        for t in transmits {
            match t.proto {
                Protocol::Udp => {
                    match self.sockets.iter().position(|(_, addr)| *addr == t.source) {
                        Some(i) => self.outgoing[i].push(t),
                        None => debug!(source = %t.source, "no socket for transmit"),
                    }
                }
                Protocol::Tcp => {
                    let Some(conn) = self.tcp.get(&t.destination).filter(|c| c.admitted) else {
                        debug!(destination = %t.destination, "no TCP connection for transmit");
                        continue;
                    };
                    if conn.queue.push(&t.contents) {
                        handed += 1;
                    } else {
                        self.tcp_stats.dropped += 1;
                    }
                }
                other => debug!(?other, "transmit over an unsupported protocol"),
            }
        }
        for ((socket, _), batch) in self.sockets.iter().zip(self.outgoing.iter_mut()) {
            if batch.is_empty() {
                continue;
            }
            let sent = self.sender.send(socket.as_raw_fd(), batch);
            if sent < batch.len() {
                *self.send_dropped += (batch.len() - sent) as u64;
                debug!(dropped = batch.len() - sent, "send buffer full");
            }
            handed += sent as u64;
            batch.clear();
        }
        handed
    }
}

/// The worker thread's body. `realtime`: the real-time priority the thread runs at, if any.
fn run(
    index: usize,
    sockets: Vec<(StdUdpSocket, SocketAddr)>,
    listeners: Vec<(StdTcpListener, SocketAddr)>,
    tcp_options: TcpOptions,
    sfu: SfuConfig,
    (rx, relays): (mpsc::Receiver<WorkerMsg>, mpsc::Receiver<Relayed>),
    realtime: Option<u8>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            warn!("media worker could not start its runtime: {e}");
            return;
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let mut bound = Vec::new();
        for (socket, advertised) in sockets {
            match UdpSocket::from_std(socket) {
                Ok(s) => bound.push((Rc::new(s), advertised)),
                Err(e) => warn!(%advertised, "media socket unusable: {e}"),
            }
        }
        let mut listening = Vec::new();
        for (listener, advertised) in listeners {
            match TcpListener::from_std(listener) {
                Ok(l) => listening.push((l, advertised)),
                Err(e) => warn!(%advertised, "media TCP listener unusable: {e}"),
            }
        }
        let mut config = sfu;
        config.candidates = bound.iter().map(|(_, a)| *a).collect();
        config.tcp_candidates = listening.iter().map(|(_, a)| *a).collect();
        let now = Instant::now();
        let wake = Rc::new(Notify::new());
        let armed = Rc::new(Cell::new(now));
        let scheduling = Rc::new(Cell::new(SchedulingStats {
            realtime: usize::from(realtime.is_some()),
            ..SchedulingStats::default()
        }));
        let shell = Rc::new(RefCell::new(Shell {
            sfu: Sfu::new(config, now),
            outgoing: bound.iter().map(|_| Vec::new()).collect(),
            sockets: bound.clone(),
            rooms: HashMap::new(),
            sender: udp::Sender::default(),
            armed: armed.clone(),
            wake: wake.clone(),
            residence: Residence::default(),
            send_delay: Residence::default(),
            tcp: HashMap::new(),
            tcp_options,
            tcp_stats: TcpStats::default(),
            next_conn: 0,
            scheduling: scheduling.clone(),
            send_dropped: 0,
            neighbours: Vec::new(),
            relay_dropped: 0,
            arrivals: Vec::new(),
            batch_rooms: Vec::new(),
            batch_order: Vec::new(),
        }));

        for (socket, advertised) in bound {
            tokio::task::spawn_local(receive(socket, advertised, shell.clone()));
        }
        for (listener, advertised) in listening {
            tokio::task::spawn_local(accept(listener, advertised, shell.clone()));
        }
        tokio::task::spawn_local(timer(shell.clone(), armed, wake));
        tokio::task::spawn_local(relayed(relays, shell.clone()));
        if let Some(priority) = realtime {
            let cpu = priority::thread_cpu_time;
            tokio::task::spawn_local(govern(index, priority, priority::WINDOW, cpu, scheduling));
        }
        commands(rx, shell).await;
    });
}

async fn commands(mut rx: mpsc::Receiver<WorkerMsg>, shell: Rc<RefCell<Shell>>) {
    while let Some(msg) = rx.recv().await {
        let mut sh = shell.borrow_mut();
        match msg {
            WorkerMsg::OpenRoom { room, events } => {
                sh.rooms.insert(room, events);
            }
            WorkerMsg::CloseRoom { room } => {
                sh.rooms.remove(&room);
                sh.sfu.close_room(room);
            }
            WorkerMsg::Neighbours(neighbours) => sh.neighbours = neighbours,
            WorkerMsg::Cmd(cmd) => sh.sfu.handle_cmd(cmd, Instant::now()),
            WorkerMsg::Stats(reply) => {
                let _ = reply.send(sh.stats());
            }
        }
        sh.flush();
    }
}

async fn receive(socket: Rc<UdpSocket>, local: SocketAddr, shell: Rc<RefCell<Shell>>) {
    let mut receiver = udp::Receiver::default();
    let fd = socket.as_raw_fd();
    loop {
        if let Err(e) = socket.readable().await {
            warn!(%local, "socket unusable: {e}");
            return;
        }
        // Drain what is waiting, a batch per system call; `try_io` re-arms readiness once
        // the socket would block. Past capacity the socket never empties: after a few batches
        // the other tasks of this worker (commands, timers, other sockets) get their turn.
        for batch in 0.. {
            if batch == BATCHES_PER_TURN {
                tokio::task::yield_now().await;
                break;
            }
            match socket.try_io(Interest::READABLE, || receiver.recv(fd)) {
                Ok(_) => shell
                    .borrow_mut()
                    .take_batch(Instant::now(), local, &receiver),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                // ICMP errors surface here on some systems; they concern one remote only.
                Err(e) => debug!(%local, "receive error: {e}"),
            }
        }
    }
}

/// Packets and keyframe requests other workers relay to this one.
async fn relayed(mut rx: mpsc::Receiver<Relayed>, shell: Rc<RefCell<Shell>>) {
    let mut batch = Vec::with_capacity(udp::BATCH);
    while rx.recv_many(&mut batch, udp::BATCH).await > 0 {
        shell.borrow_mut().take_relayed(&mut batch);
    }
}

async fn timer(shell: Rc<RefCell<Shell>>, armed: Rc<Cell<Instant>>, wake: Rc<Notify>) {
    loop {
        let due = shell.borrow().sfu.next_timeout();
        armed.set(due);
        tokio::select! {
            _ = tokio::time::sleep_until(due.into()) => {
                let mut sh = shell.borrow_mut();
                sh.sfu.handle_timeout(Instant::now());
                sh.flush();
            }
            _ = wake.notified() => {}
        }
    }
}

/// Runs on the worker thread while it holds real-time priority: once a `window`, gives the
/// [`Governor`] the thread's CPU time (read by `cpu`) and makes the change it asks for,
/// reporting it in `stats`.
async fn govern(
    index: usize,
    priority: u8,
    window: Duration,
    mut cpu: impl FnMut() -> Option<Duration>,
    stats: Rc<Cell<SchedulingStats>>,
) {
    let mut governor = Governor::new();
    let mut ticks = tokio::time::interval(window);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    let (Some(mut used), mut at) = (cpu(), Instant::now()) else {
        warn!(
            worker = index,
            "no thread CPU clock: real-time priority is not governed"
        );
        return;
    };
    loop {
        ticks.tick().await;
        let (Some(now_used), now) = (cpu(), Instant::now()) else {
            return;
        };
        let change = governor.observe(now_used.saturating_sub(used), now - at);
        (used, at) = (now_used, now);
        let Some(change) = change else {
            continue;
        };
        let made = match change {
            Change::Demote => priority::set_normal(),
            Change::Promote => priority::set_realtime(priority),
        };
        if let Err(e) = made {
            debug!(worker = index, "scheduling change {change:?} refused: {e}");
            continue;
        }
        governor.applied(change);
        let mut s = stats.get();
        s.realtime = usize::from(governor.is_realtime());
        match change {
            Change::Demote => {
                s.demotions += 1;
                warn!(
                    worker = index,
                    "media worker busy: normal priority until load falls"
                );
            }
            Change::Promote => {
                s.promotions += 1;
                info!(
                    worker = index,
                    priority, "media worker calm: real-time priority again"
                );
            }
        }
        stats.set(s);
    }
}

/// Accepts TCP connections on one listener; `local` is its advertised address.
async fn accept(listener: TcpListener, local: SocketAddr, shell: Rc<RefCell<Shell>>) {
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, or a connection that died in the backlog: pause
                // rather than spin.
                debug!(%local, "accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let mut sh = shell.borrow_mut();
        if sh.tcp.len() >= sh.tcp_options.max_connections && !sh.evict_oldest_unadmitted() {
            // Full of connections that carry media: dropping the stream closes it.
            sh.tcp_stats.refused += 1;
            debug!(%remote, "TCP connection refused");
            continue;
        }
        if sh.tcp.contains_key(&remote) {
            sh.tcp_stats.refused += 1;
            debug!(%remote, "TCP connection refused: one from that address is open");
            continue;
        }
        let _ = stream.set_nodelay(true);
        let (read, write) = stream.into_split();
        let id = sh.next_conn;
        sh.next_conn += 1;
        let options = sh.tcp_options;
        let (queue, write) = WriteQueue::new(write, options.write_queue_bytes);
        // Neither task runs before this one yields, so the entry is in place when they do.
        let writer = tokio::task::spawn_local(write);
        let reader =
            tokio::task::spawn_local(tcp_reader(read, remote, local, id, options, shell.clone()));
        let conn = TcpConn {
            id,
            admitted: false,
            queue,
            reader: reader.abort_handle(),
            writer: writer.abort_handle(),
        };
        sh.tcp.insert(remote, conn);
    }
}

/// Why a connection's reader stopped.
enum Ended {
    Closed,
    Idle,
    Rejected,
    /// The shell closed the connection (its member is gone) while the reader was busy.
    Dropped,
}

/// Reads one connection: de-frames what arrives and hands each frame to the core, the first
/// one as the connection's credentials.
async fn tcp_reader(
    mut read: OwnedReadHalf,
    remote: SocketAddr,
    local: SocketAddr,
    id: u64,
    options: TcpOptions,
    shell: Rc<RefCell<Shell>>,
) {
    let mut deframer = Deframer::default();
    let mut admitted = false;
    // Deadlines count whole frames, not bytes: a trickle of bytes keeps nothing open.
    let opened = tokio::time::Instant::now();
    let mut last_frame = opened;
    let ended = loop {
        let deadline = if admitted {
            last_frame + options.idle_timeout
        } else {
            opened + options.first_frame_timeout
        };
        let n = match tokio::time::timeout_at(deadline, read.read(deframer.space())).await {
            Err(_) => break Ended::Idle,
            Ok(Ok(0)) => break Ended::Closed,
            Ok(Ok(n)) => n,
            Ok(Err(e)) => {
                debug!(%remote, "TCP read: {e}");
                break Ended::Closed;
            }
        };
        deframer.filled(n);
        let now = Instant::now();
        let mut sh = shell.borrow_mut();
        let mut verdict = None;
        while let Some(frame) = deframer.next_frame() {
            let data = match frame {
                Frame::Data(data) => {
                    last_frame = now.into();
                    data
                }
                Frame::Oversized(_) if admitted => {
                    sh.tcp_stats.oversized += 1;
                    continue;
                }
                Frame::Oversized(_) => {
                    sh.tcp_stats.oversized += 1;
                    verdict = Some(Ended::Rejected);
                    break;
                }
            };
            if admitted {
                sh.take_frame(now, remote, local, data);
            } else {
                if sh.sfu.handle_first_tcp_frame(now, remote, local, data) {
                    admitted = true;
                    if let Some(conn) = sh.tcp.get_mut(&remote).filter(|c| c.id == id) {
                        conn.admitted = true;
                    }
                } else {
                    verdict = Some(Ended::Rejected);
                }
                sh.answered(now);
            }
            if sh.tcp.get(&remote).is_none_or(|c| c.id != id) {
                verdict = Some(Ended::Dropped);
            }
            if verdict.is_some() {
                break;
            }
        }
        if let Some(v) = verdict {
            break v;
        }
    };
    let mut sh = shell.borrow_mut();
    match ended {
        Ended::Dropped => return,
        Ended::Idle => sh.tcp_stats.idle += 1,
        Ended::Rejected => sh.tcp_stats.rejected += 1,
        Ended::Closed => {}
    }
    if sh.tcp.get(&remote).is_none_or(|c| c.id != id) {
        return;
    }
    if let Some(conn) = sh.tcp.remove(&remote) {
        conn.writer.abort();
    }
    debug!(%remote, admitted, "TCP connection closed");
    if admitted {
        sh.sfu.tcp_closed(remote);
        sh.flush();
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use str0m::media::Mid;

    /// The calling thread's scheduling policy.
    fn policy() -> i32 {
        priority::thread_scheduling().0 as i32
    }

    /// Waits (at most 10 s) until `f` holds.
    async fn until(f: impl Fn() -> bool) -> bool {
        for _ in 0..1000 {
            if f() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    #[test]
    fn datagrams_read_together_are_taken_room_by_room_in_arrival_order() {
        let in_order = |keys: &[Option<u64>]| {
            let mut order: Vec<usize> = (0..keys.len()).collect();
            group_in_order(&mut order, keys, |&i| keys[i]);
            order
        };
        let (a, b, c) = (Some(1), Some(2), Some(3));
        assert_eq!(in_order(&[a, b, a, c, b]), [0, 2, 1, 4, 3]);
        // Datagrams from unknown addresses are one more group; a batch of one stays one.
        assert_eq!(in_order(&[None, a, None, a]), [0, 2, 1, 3]);
        assert_eq!(in_order(&[a]), [0]);
        assert!(in_order(&[]).is_empty());
        // Owned items (relays) are put in the same order.
        let mut relays = ["a1", "b1", "a2", "c1", "b2"];
        let rooms: Vec<char> = relays.iter().map(|r| r.as_bytes()[0] as char).collect();
        group_in_order(&mut relays, &rooms, |r| r.as_bytes()[0] as char);
        assert_eq!(relays, ["a1", "a2", "b1", "b2", "c1"]);
    }

    #[test]
    fn a_kernel_arrival_stamp_moves_onto_the_monotonic_clock() {
        let now = Instant::now();
        let stamp = SystemTime::now() - Duration::from_millis(30);
        let at = arrived(now, Some(stamp));
        assert!(at <= now);
        let waited = at.elapsed();
        assert!(waited >= Duration::from_millis(30), "{waited:?}");
        assert!(waited < Duration::from_secs(5), "{waited:?}");
        // No stamp, or one from a clock set back: the time the datagram was read.
        assert_eq!(arrived(now, None), now);
        let ahead = SystemTime::now() + Duration::from_secs(60);
        assert_eq!(arrived(now, Some(ahead)), now);
    }

    #[test]
    fn copies_and_relays_count_their_wait_from_when_the_packet_reached_the_server() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let local = socket.local_addr().unwrap();
            let client = StdUdpSocket::bind("127.0.0.1:0").unwrap();
            let sockets = [(Rc::new(socket), local)];
            let mut outgoing = [Vec::new()];
            let (neighbour, mut relays_in) = mpsc::channel(1);
            let neighbours = [neighbour];
            let (mut sender, tcp) = (udp::Sender::default(), HashMap::new());
            let (mut tcp_stats, mut send_delay) = (TcpStats::default(), Residence::default());
            let (mut send_dropped, mut relay_dropped) = (0, 0);
            let mut wire = Wire {
                sockets: &sockets,
                outgoing: &mut outgoing,
                sender: &mut sender,
                tcp: &tcp,
                tcp_stats: &mut tcp_stats,
                send_delay: &mut send_delay,
                send_dropped: &mut send_dropped,
                neighbours: &neighbours,
                relay_dropped: &mut relay_dropped,
            };
            // A packet that waited 30 ms in the socket before the worker read it.
            let arrived = Instant::now() - Duration::from_millis(30);
            let keyframe = || Relay::Keyframe {
                src: 1,
                mid: Mid::from("0"),
            };
            let mut transmits = VecDeque::from([Transmit {
                proto: Protocol::Udp,
                source: local,
                destination: client.local_addr().unwrap(),
                contents: vec![7; 20].into(),
            }]);
            // The second relay finds the other worker's queue full, the third no worker.
            let mut relays = VecDeque::from([(0, keyframe()), (0, keyframe()), (5, keyframe())]);
            wire.hand_out(
                Outgoing {
                    transmits: &mut transmits,
                    relays: &mut relays,
                },
                arrived,
            );
            assert!(transmits.is_empty() && relays.is_empty());
            let relayed = relays_in.try_recv().unwrap();
            assert_eq!(relayed.arrived, arrived);
            assert!(relays_in.try_recv().is_err());
            assert_eq!(*wire.relay_dropped, 1);
            // The copy sent counts the 30 ms it waited before it was read.
            assert_eq!(wire.send_delay.count(), 1);
            assert!(wire.send_delay.max_us >= 30_000, "{:?}", wire.send_delay);
            let mut buf = [0; 64];
            assert_eq!(client.recv(&mut buf).unwrap(), 20);

            // What is relayed outside a fan-out counts from now.
            let before = Instant::now();
            wire.relay([(0, keyframe())].into_iter(), None);
            let relayed = relays_in.try_recv().unwrap();
            assert!(relayed.arrived >= before);
        });
    }

    #[test]
    fn a_busy_worker_thread_gives_up_real_time_priority_and_takes_it_back_when_calm() {
        std::thread::spawn(|| {
            if let Err(e) = priority::set_realtime(5) {
                // Nothing to give up without the privilege (CI runs as root).
                eprintln!("skipped: {e}");
                return;
            }
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let local = tokio::task::LocalSet::new();
            local.block_on(&runtime, async {
                // A thread CPU clock that runs at `share` of the wall clock.
                let share = Rc::new(Cell::new(0.9));
                let clock = {
                    let share = share.clone();
                    let (mut used, mut at) = (Duration::ZERO, Instant::now());
                    move || {
                        let now = Instant::now();
                        used += (now - at).mul_f64(share.get());
                        at = now;
                        Some(used)
                    }
                };
                let stats = Rc::new(Cell::new(SchedulingStats {
                    realtime: 1,
                    ..SchedulingStats::default()
                }));
                let window = Duration::from_millis(20);
                tokio::task::spawn_local(govern(0, 5, window, clock, stats.clone()));
                // (CPU share, then: policy, workers at real-time priority, demotions and
                // promotions so far).
                let phases = [
                    (0.9, libc::SCHED_OTHER, 0, (1, 0)),
                    (0.1, libc::SCHED_RR, 1, (1, 1)),
                ];
                for (busy, then, realtime, changes) in phases {
                    share.set(busy);
                    let counted = || (stats.get().demotions, stats.get().promotions);
                    assert!(until(|| counted() == changes).await, "{:?}", stats.get());
                    assert_eq!(policy(), then);
                    assert_eq!(stats.get().realtime, realtime);
                }
            });
        })
        .join()
        .unwrap();
    }
}
