//! What puts a worker's output on the wire: datagrams to the UDP sockets (one `sendmmsg` per
//! socket) or to TCP connections' write queues, and relays to the other workers' queues. What
//! a full socket buffer, write queue or relay queue refuses is dropped and counted, as the
//! network would drop it: the worker never waits.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::Instant;

use free4chat_sfu::{Protocol, Relay, Transmit, WorkerIndex};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::debug;

use crate::latency::LatencyHistogram;
use crate::stats::{TcpStats, Traffic};
use crate::tcp_conn::TcpConn;
use crate::udp;

/// A packet or keyframe request on its way to another worker, and when what it stems from
/// reached the server: each copy the other worker sends counts its wait from there, the
/// time the datagram waited in this worker's socket included.
#[derive(Debug)]
pub struct Relayed {
    pub relay: Relay,
    pub arrived: Instant,
}

/// The parts of the shell that send, borrowed apart from the core so that the core can be
/// polled while they send.
pub struct Wire<'a> {
    pub sockets: &'a [(Rc<UdpSocket>, SocketAddr)],
    /// Datagrams waiting to be sent, per socket (same order as `sockets`).
    pub outgoing: &'a mut [Vec<Transmit>],
    pub sender: &'a mut udp::Sender,
    pub tcp: &'a HashMap<SocketAddr, TcpConn>,
    pub tcp_stats: &'a mut TcpStats,
    pub send_delay: &'a mut LatencyHistogram,
    pub send_dropped: &'a mut u64,
    pub neighbours: &'a [mpsc::Sender<Relayed>],
    pub relay_dropped: &'a mut u64,
    pub traffic: &'a mut Traffic,
}

impl Wire<'_> {
    /// Hands packets and keyframe requests to the workers they are for, with when what they
    /// stem from reached the server (`arrived`; if not given, when the publisher's worker read
    /// the packet, or now).
    pub fn relay(
        &mut self,
        relays: impl Iterator<Item = (WorkerIndex, Relay)>,
        arrived: Option<Instant>,
    ) {
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

    /// Hands datagrams to the kernel (UDP) or to their connections' write queues (TCP), and
    /// records each one's wait since `arrived`, when the datagram that caused it reached the
    /// server (none for what timers and commands cause). Returns how many it handed on.
    pub fn send(
        &mut self,
        transmits: impl Iterator<Item = Transmit>,
        arrived: Option<Instant>,
    ) -> u64 {
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
                        self.traffic.sent(t.contents.len());
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
            for t in batch.iter().take(sent) {
                self.traffic.sent(t.contents.len());
            }
            batch.clear();
        }
        if let Some(arrived) = arrived {
            self.send_delay.record_many(arrived.elapsed(), handed);
        }
        handed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket as StdUdpSocket;
    use std::time::Duration;

    use free4chat_sfu::MemberId;
    use str0m::media::Mid;

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
            let (mut tcp_stats, mut send_delay) =
                (TcpStats::default(), LatencyHistogram::default());
            let (mut send_dropped, mut relay_dropped) = (0, 0);
            let mut traffic = Traffic::default();
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
                traffic: &mut traffic,
            };
            // A packet that waited 30 ms in the socket before the worker read it.
            let arrived = Instant::now() - Duration::from_millis(30);
            let keyframe = || Relay::Keyframe {
                src: MemberId(1),
                mid: Mid::from("0"),
            };
            let transmits = [Transmit {
                proto: Protocol::Udp,
                source: local,
                destination: client.local_addr().unwrap(),
                contents: vec![7; 20].into(),
            }];
            // The second relay finds the other worker's queue full, the third no worker.
            let relays = [(0, keyframe()), (0, keyframe()), (5, keyframe())];
            wire.relay(relays.into_iter(), Some(arrived));
            assert_eq!(wire.send(transmits.into_iter(), Some(arrived)), 1);
            let relayed = relays_in.try_recv().unwrap();
            assert_eq!(relayed.arrived, arrived);
            assert!(relays_in.try_recv().is_err());
            assert_eq!(*wire.relay_dropped, 1);
            // The copy sent counts the 30 ms it waited before it was read.
            assert_eq!(wire.send_delay.count(), 1);
            assert!(wire.send_delay.max_us >= 30_000, "{:?}", wire.send_delay);
            assert_eq!(wire.send_delay.sum_us, wire.send_delay.max_us);
            // The datagram sent is counted, with its bytes.
            assert_eq!(
                (wire.traffic.datagrams_out, wire.traffic.bytes_out),
                (1, 20)
            );
            let mut buf = [0; 64];
            assert_eq!(client.recv(&mut buf).unwrap(), 20);

            // What is relayed outside a fan-out counts from now.
            let before = Instant::now();
            wire.relay([(0, keyframe())].into_iter(), None);
            let relayed = relays_in.try_recv().unwrap();
            assert!(relayed.arrived >= before);
        });
    }
}
