//! The shell around one core: what a worker holds besides the core (sockets, TCP connections,
//! where each room's events go, its own figures), how it hands the core its input, and how it
//! sends what that input caused.
//!
//! The core never calls out; after each input the shell polls it: relays first (the other
//! workers start on their share before this one writes its own), then datagrams, which the
//! core makes a subscriber at a time as they are polled, sent in chunks of [`SEND_CHUNK`] so a
//! large fan-out's first copies leave while the last are still being sealed.

use std::cell::Cell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use free4chat_sfu::{MediaEvent, Protocol, RoomId, Sfu, Transmit};
use tokio::net::UdpSocket;
use tokio::sync::{Notify, mpsc};
use tracing::{debug, warn};

use crate::latency::LatencyHistogram;
use crate::stats::{SchedulingStats, StatsBoard, TcpStats, Traffic, UdpStats, WorkerStats};
use crate::tcp_conn::{TcpConn, TcpOptions};
use crate::udp;
use crate::wire::{Relayed, Wire};

/// Datagrams handed to the kernel together while a fan-out goes on.
pub const SEND_CHUNK: usize = 16;

pub struct Shell {
    pub sfu: Sfu,
    pub sockets: Vec<(Rc<UdpSocket>, SocketAddr)>,
    /// Where each room's media events go.
    pub rooms: HashMap<RoomId, mpsc::Sender<MediaEvent>>,
    pub sender: udp::Sender,
    /// Datagrams waiting to be sent, per socket (same order as `sockets`).
    pub outgoing: Vec<Vec<Transmit>>,
    /// The deadline the timer task sleeps until; it is woken only for an earlier one.
    pub armed: Rc<Cell<Instant>>,
    pub wake: Rc<Notify>,
    pub residence: LatencyHistogram,
    pub send_delay: LatencyHistogram,
    /// TCP connections by remote address (at most one per address).
    pub tcp: HashMap<SocketAddr, TcpConn>,
    pub tcp_options: TcpOptions,
    pub tcp_stats: TcpStats,
    pub next_conn: u64,
    pub scheduling: Rc<Cell<SchedulingStats>>,
    /// Datagrams not sent because a socket's send buffer was full.
    pub send_dropped: u64,
    /// The workers to relay to, by index.
    pub neighbours: Vec<mpsc::Sender<Relayed>>,
    /// Relayed packets not handed on because a worker's relay queue was full.
    pub relay_dropped: u64,
    pub traffic: Traffic,
    pub board: Arc<StatsBoard>,
    /// Reused per `recvmmsg` batch: when each of its datagrams reached the server, the room of
    /// each, and the order in which they are handed to the core.
    batch: BatchScratch,
}

#[derive(Default)]
struct BatchScratch {
    arrivals: Vec<Instant>,
    rooms: Vec<Option<RoomId>>,
    order: Vec<usize>,
}

/// Sorts `items` so that those with equal keys are together: each group where its key first
/// appears in `keys` (the items' keys, in the items' present order), and each group's items in
/// their present order. Keys `[a, b, a, c, b]` put items `[0, 1, 2, 3, 4]` in the order
/// `[0, 2, 1, 4, 3]`.
pub fn group_in_order<T, K: PartialEq>(items: &mut [T], keys: &[K], key: impl Fn(&T) -> K) {
    // A stable sort by where each item's key first appears.
    items.sort_by_key(|item| {
        let k = key(item);
        keys.iter().position(|x| *x == k)
    });
}

/// When a datagram read at `now` reached the server: `arrival`, the kernel's stamp, moved onto
/// the monotonic clock; `now` without a stamp or with one that is not in the past.
pub fn arrived(now: Instant, arrival: Option<SystemTime>) -> Instant {
    arrival
        .and_then(|at| SystemTime::now().duration_since(at).ok())
        .and_then(|waited| Instant::now().checked_sub(waited))
        .map_or(now, |at| at.min(now))
}

/// What a shell is made of at start.
pub struct ShellParts {
    pub sfu: Sfu,
    pub sockets: Vec<(Rc<UdpSocket>, SocketAddr)>,
    pub tcp_options: TcpOptions,
    pub armed: Rc<Cell<Instant>>,
    pub wake: Rc<Notify>,
    pub scheduling: Rc<Cell<SchedulingStats>>,
    pub board: Arc<StatsBoard>,
}

impl Shell {
    pub fn new(parts: ShellParts) -> Shell {
        Shell {
            sfu: parts.sfu,
            outgoing: parts.sockets.iter().map(|_| Vec::new()).collect(),
            sockets: parts.sockets,
            rooms: HashMap::new(),
            sender: udp::Sender::default(),
            armed: parts.armed,
            wake: parts.wake,
            residence: LatencyHistogram::default(),
            send_delay: LatencyHistogram::default(),
            tcp: HashMap::new(),
            tcp_options: parts.tcp_options,
            tcp_stats: TcpStats::default(),
            next_conn: 0,
            scheduling: parts.scheduling,
            send_dropped: 0,
            neighbours: Vec::new(),
            relay_dropped: 0,
            traffic: Traffic::default(),
            board: parts.board,
            batch: BatchScratch::default(),
        }
    }

    /// Sends everything the core has made, counting each datagram's wait from `arrived`, when
    /// the datagram that caused it reached the server (none after timers and commands);
    /// closes the TCP connections it gave up; hands its events to their rooms. Returns how
    /// many datagrams it handed on.
    pub fn send_all(&mut self, arrived: Option<Instant>) -> u64 {
        let (sfu, mut wire) = self.split();
        let mut sent = 0;
        loop {
            wire.relay(std::iter::from_fn(|| sfu.poll_relay()), arrived);
            let mut taken = 0;
            let chunk = std::iter::from_fn(|| sfu.poll_transmit())
                .take(SEND_CHUNK)
                .inspect(|_| taken += 1);
            sent += wire.send(chunk, arrived);
            if taken < SEND_CHUNK {
                break;
            }
        }
        wire.relay(std::iter::from_fn(|| sfu.poll_relay()), arrived);
        while let Some(remote) = self.sfu.poll_tcp_close() {
            if let Some(conn) = self.tcp.remove(&remote) {
                debug!(%remote, "TCP connection closed: its member is gone");
                conn.abort();
            }
        }
        if self.sfu.next_timeout() < self.armed.get() {
            self.wake.notify_one();
        }
        self.route_events();
        sent
    }

    /// Hands the core's events to their rooms.
    fn route_events(&mut self) {
        while let Some((room, event)) = self.sfu.poll_event() {
            match self.rooms.get(&room) {
                Some(tx) => match tx.try_send(event) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(e)) => {
                        warn!(%room, "room not keeping up, media event dropped: {e:?}");
                    }
                    // The room is closing; what it would have been told no longer matters.
                    Err(mpsc::error::TrySendError::Closed(_)) => {}
                },
                None => debug!(%room, "media event for a closed room: {event:?}"),
            }
        }
    }

    /// Hands one frame of an admitted TCP connection from `source`, read at `now`, to the core
    /// and sends what it caused. Its time in the worker and each answer's wait count from
    /// `now` (a stream carries no arrival stamps).
    pub fn take_frame(&mut self, now: Instant, source: SocketAddr, local: SocketAddr, data: &[u8]) {
        self.traffic.received(data.len());
        self.sfu
            .handle_datagram(now, Protocol::Tcp, source, local, data);
        self.send_all(Some(now));
        self.residence.record(now.elapsed());
    }

    /// The first frame of a TCP connection from `source`, read at `now`: only a STUN binding
    /// request that a participant accepts admits the connection (marked so before the answer
    /// is sent, so that it can go out on it). Returns whether it was admitted.
    pub fn take_first_frame(
        &mut self,
        now: Instant,
        (source, id): (SocketAddr, u64),
        local: SocketAddr,
        data: &[u8],
    ) -> bool {
        self.traffic.received(data.len());
        let admitted = self.sfu.handle_first_tcp_frame(now, source, local, data);
        if admitted && let Some(conn) = self.tcp.get_mut(&source).filter(|c| c.id == id) {
            conn.admitted = true;
        }
        self.send_all(Some(now));
        self.residence.record(now.elapsed());
        admitted
    }

    /// Hands the datagrams one `recvmmsg` read, at `now`, to the core room by room, and sends
    /// what each room's datagrams caused before the next room's are taken: those of one room
    /// are fanned out together (they go to the same members, who are then drained once),
    /// while a room's copies never wait for another room's. Rooms come in the order of their
    /// first datagram, and each room's datagrams in the order they came (datagrams from
    /// addresses no participant has yet form one more group). Relays leave as each datagram is
    /// taken. Each datagram's time in the worker counts from its own kernel arrival stamp until
    /// its room's share was sent; the wait of each datagram sent, here or by other workers,
    /// from the earliest of its room's (it cannot tell which it answers), which overstates the
    /// later ones' by at most the time between their arrivals. A batch of one is counted
    /// exactly.
    pub fn take_batch(&mut self, now: Instant, local: SocketAddr, receiver: &udp::Receiver) {
        let mut scratch = std::mem::take(&mut self.batch);
        let BatchScratch {
            arrivals,
            rooms,
            order,
        } = &mut scratch;
        for (_, data, _) in receiver.datagrams() {
            self.traffic.received(data.len());
        }
        arrivals.clear();
        arrivals.extend(receiver.datagrams().map(|(_, _, at)| arrived(now, at)));
        rooms.clear();
        rooms.extend(
            receiver
                .datagrams()
                .map(|(source, _, _)| self.sfu.room_of(Protocol::Udp, source)),
        );
        order.clear();
        order.extend(0..rooms.len());
        group_in_order(order, rooms, |&i| rooms[i]);
        for group in order.chunk_by(|&a, &b| rooms[a] == rooms[b]) {
            let first = group.iter().map(|&i| arrivals[i]).min().unwrap_or(now);
            for &i in group {
                if let Some((source, data, _)) = receiver.datagram(i) {
                    self.sfu
                        .handle_datagram(now, Protocol::Udp, source, local, data);
                    let (sfu, mut wire) = self.split();
                    wire.relay(std::iter::from_fn(|| sfu.poll_relay()), Some(first));
                }
            }
            self.send_all(Some(first));
            for &i in group {
                self.residence.record(arrivals[i].elapsed());
            }
        }
        self.batch = scratch;
    }

    /// Hands what other workers relayed, all that was waiting, to the core room by room as
    /// [`Shell::take_batch`] takes datagrams, and sends what each room's packets caused before
    /// the next room's are taken. Each copy's wait counts from when the earliest packet of its
    /// room's reached the server.
    pub fn take_relayed(&mut self, batch: &mut Vec<Relayed>) {
        let mut rooms = std::mem::take(&mut self.batch.rooms);
        rooms.clear();
        rooms.extend(batch.iter().map(|r| r.relay.room()));
        group_in_order(batch, &rooms, |r| r.relay.room());
        while let Some(head) = batch.first() {
            let room = head.relay.room();
            let n = batch.iter().take_while(|r| r.relay.room() == room).count();
            let first = batch[..n].iter().map(|r| r.arrived).min();
            let first = first.unwrap_or_else(Instant::now);
            let now = Instant::now();
            for relayed in batch.drain(..n) {
                self.sfu.handle_relay(relayed.relay, now);
            }
            self.send_all(Some(first));
        }
        self.batch.rooms = rooms;
    }

    /// Closes the oldest connection that has not opened with a member's STUN request, to make
    /// room for a new one: connections that stay silent cannot keep a member from connecting.
    /// Returns false if every connection carries media.
    pub fn evict_oldest_unadmitted(&mut self) -> bool {
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

    /// The core, and the parts that send, borrowed apart: the core can then be polled while
    /// they send.
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
            traffic: &mut self.traffic,
        };
        (&mut self.sfu, wire)
    }

    pub fn stats(&self) -> WorkerStats {
        WorkerStats {
            core: self.sfu.stats(),
            relay_dropped: self.relay_dropped,
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
            traffic: self.traffic,
            residence: self.residence,
            send_delay: self.send_delay,
        }
    }

    /// Puts the worker's figures on its board.
    pub fn publish_stats(&self) {
        self.board.publish(self.stats(), self.sfu.quality());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
}
