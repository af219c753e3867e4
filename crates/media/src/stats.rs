//! A worker's figures, as data: the core's counters and what the shell counts itself, read
//! through one snapshot type. Each worker publishes its snapshot on a board of its own when
//! asked, from a task of its own, so reading figures never waits behind media commands.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use free4chat_sfu::CoreStats;
use free4chat_sfu::quality::MemberQuality;
use serde::Serialize;
use tokio::sync::Notify;

use crate::latency::LatencyHistogram;

/// A worker's figures. Gauges say what it holds now; counters and histograms are cumulative
/// since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct WorkerStats {
    #[serde(flatten)]
    pub core: CoreStats,
    /// Packets for other workers dropped because that worker's relay queue was full.
    pub relay_dropped: u64,
    pub tcp: TcpStats,
    pub udp: UdpStats,
    pub scheduling: SchedulingStats,
    pub traffic: Traffic,
    /// How long received datagrams stayed in the worker, until all they caused was sent.
    pub residence: LatencyHistogram,
    /// For each datagram sent because one was received, how long after that one's arrival it
    /// was handed to the kernel: the latency the worker adds to each forwarded copy.
    pub send_delay: LatencyHistogram,
}

/// Datagrams the worker's UDP sockets lost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct UdpStats {
    /// Dropped by the kernel on arrival: a socket's receive buffer was full (the worker fell
    /// behind).
    pub receive_dropped: u64,
    /// Not sent: a socket's send buffer was full.
    pub send_dropped: u64,
}

/// What the worker's sockets carried, UDP and TCP together: datagrams (TCP frames) and their
/// bytes (without the TCP framing).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Traffic {
    pub datagrams_in: u64,
    pub bytes_in: u64,
    /// Handed to the kernel (UDP) or to a connection's write queue (TCP).
    pub datagrams_out: u64,
    pub bytes_out: u64,
}

impl Traffic {
    pub fn received(&mut self, bytes: usize) {
        self.datagrams_in += 1;
        self.bytes_in += bytes as u64;
    }

    pub fn sent(&mut self, bytes: usize) {
        self.datagrams_out += 1;
        self.bytes_out += bytes as u64;
    }

    fn merge(&mut self, o: &Traffic) {
        self.datagrams_in += o.datagrams_in;
        self.bytes_in += o.bytes_in;
        self.datagrams_out += o.datagrams_out;
        self.bytes_out += o.bytes_out;
    }
}

/// How the worker threads are scheduled ([`crate::priority`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SchedulingStats {
    /// Workers at real-time priority now.
    pub realtime_workers: usize,
    /// Times a worker returned to normal scheduling because it was busy most of a second.
    pub demotions: u64,
    /// Times a worker took real-time priority again after calm seconds.
    pub promotions: u64,
}

/// A worker's TCP connections.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
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
        self.core.merge(&o.core);
        self.relay_dropped += o.relay_dropped;
        let TcpStats {
            connections,
            admitted,
            queued_bytes,
            refused,
            evicted,
            rejected,
            idle,
            dropped,
            oversized,
        } = o.tcp;
        let t = &mut self.tcp;
        t.connections += connections;
        t.admitted += admitted;
        t.queued_bytes += queued_bytes;
        t.refused += refused;
        t.evicted += evicted;
        t.rejected += rejected;
        t.idle += idle;
        t.dropped += dropped;
        t.oversized += oversized;
        self.udp.receive_dropped += o.udp.receive_dropped;
        self.udp.send_dropped += o.udp.send_dropped;
        let s = &mut self.scheduling;
        s.realtime_workers += o.scheduling.realtime_workers;
        s.demotions += o.scheduling.demotions;
        s.promotions += o.scheduling.promotions;
        self.traffic.merge(&o.traffic);
        self.residence.merge(&o.residence);
        self.send_delay.merge(&o.send_delay);
    }
}

/// Where a worker publishes its figures for other threads to read.
#[derive(Debug, Default)]
pub struct StatsBoard {
    latest: Mutex<WorkerStats>,
    /// Each of the worker's members' connection quality, published with the figures.
    quality: Mutex<Arc<[MemberQuality]>>,
    /// Someone wants a fresh snapshot.
    asked: Notify,
    /// A fresh snapshot is on the board.
    published: Notify,
}

/// How long a reader waits for a busy or stopped worker before taking the last snapshot.
const FRESH_WAIT: Duration = Duration::from_secs(1);

impl StatsBoard {
    /// The latest snapshot, without asking for a fresh one.
    pub fn latest(&self) -> WorkerStats {
        self.latest.lock().map(|s| *s).unwrap_or_default()
    }

    /// The members' quality published with the latest snapshot.
    pub fn latest_quality(&self) -> Arc<[MemberQuality]> {
        self.quality
            .lock()
            .map(|q| q.clone())
            .unwrap_or_else(|_| Arc::from(Vec::new()))
    }

    /// Asks the worker for a fresh snapshot and returns it (or, if the worker does not answer
    /// within a second, the latest one).
    pub async fn fresh(&self) -> WorkerStats {
        let published = self.published.notified();
        tokio::pin!(published);
        published.as_mut().enable();
        self.asked.notify_one();
        let _ = tokio::time::timeout(FRESH_WAIT, published).await;
        self.latest()
    }

    /// The worker's side: waits until a snapshot is asked for.
    pub(crate) async fn asked(&self) {
        self.asked.notified().await;
    }

    /// The worker's side: puts a snapshot on the board and wakes those waiting for it.
    pub(crate) fn publish(&self, stats: WorkerStats, quality: Vec<MemberQuality>) {
        if let Ok(mut latest) = self.latest.lock() {
            *latest = stats;
        }
        if let Ok(mut latest) = self.quality.lock() {
            *latest = Arc::from(quality);
        }
        self.published.notify_waiters();
    }
}

/// The boards of every worker of the node, for the HTTP layer.
#[derive(Debug, Clone, Default)]
pub struct Boards(pub Vec<Arc<StatsBoard>>);

impl Boards {
    /// Every worker's fresh figures, summed.
    pub async fn fresh_total(&self) -> WorkerStats {
        let mut total = WorkerStats::default();
        for board in &self.0 {
            total.merge(&board.fresh().await);
        }
        total
    }

    /// Every worker's members' quality, freshly published.
    pub async fn fresh_quality(&self) -> Vec<MemberQuality> {
        let mut all = Vec::new();
        for board in &self.0 {
            board.fresh().await;
            all.extend(board.latest_quality().iter().copied());
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_add_up_and_read_as_json_fields() {
        let mut a = WorkerStats::default();
        a.core.forwarded = 3;
        a.tcp.connections = 1;
        a.udp.send_dropped = 2;
        a.scheduling.realtime_workers = 1;
        a.residence.record(Duration::from_micros(100));
        let mut total = a;
        total.merge(&a);
        assert_eq!(total.core.forwarded, 6);
        assert_eq!(total.tcp.connections, 2);
        assert_eq!(total.udp.send_dropped, 4);
        assert_eq!(total.scheduling.realtime_workers, 2);
        assert_eq!(total.residence.count(), 2);
        let json = serde_json::to_value(total).unwrap();
        assert_eq!(
            json["forwarded"], 6,
            "the core's counters sit at the top: {json}"
        );
        assert_eq!(json["tcp"]["connections"], 2);
        assert_eq!(json["udp"]["send_dropped"], 4);
        assert_eq!(json["residence"]["datagrams"], 2);
        assert_eq!(json["residence"]["p99_us"], 112);
    }

    #[test]
    fn a_reader_gets_the_snapshot_the_worker_publishes_when_asked() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let board = Arc::new(StatsBoard::default());
            let worker = board.clone();
            tokio::spawn(async move {
                let mut n = 0;
                loop {
                    worker.asked().await;
                    n += 1;
                    let mut s = WorkerStats::default();
                    s.core.forwarded = n;
                    worker.publish(s, Vec::new());
                }
            });
            assert_eq!(board.fresh().await.core.forwarded, 1);
            assert_eq!(board.fresh().await.core.forwarded, 2);
            assert_eq!(board.latest().core.forwarded, 2);
        });
    }
}
