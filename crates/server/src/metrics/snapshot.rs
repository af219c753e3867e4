//! The figures read at scrape time, and how they are written as Prometheus series.

use std::sync::{Arc, Mutex};

use free4chat_media::{LatencyHistogram, WorkerStats};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeCounterValue, EncodeGaugeValue, NoLabelSet,
};
use prometheus_client::metrics::MetricType;

use crate::rooms::Counts;

/// What a scrape reads: this node's figures at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Rooms and members on this node.
    pub counts: Counts,
    /// The members of each room on this node.
    pub room_sizes: Vec<usize>,
    /// Signalling WebSockets open (members relayed to rooms on other nodes included).
    pub connections: usize,
    /// Nodes alive in the cluster, in cluster mode.
    pub cluster_nodes: Option<usize>,
    /// The media workers' figures, summed.
    pub media: WorkerStats,
    /// The connection quality of each member whose media is connected.
    pub quality: Vec<free4chat_sfu::quality::Figures>,
    /// The integrated TURN server's, when it runs.
    pub turn: Option<free4chat_turn::Stats>,
    /// Each webhook receiver's figures (none without webhooks).
    pub webhooks: Vec<crate::webhooks::ReceiverStats>,
    /// HTTP connections, and what was refused by client address.
    pub admission: crate::admission::AdmissionStats,
    /// Members dropped for not connecting media within the deadline after joining.
    pub media_deadline_dropped: u64,
    /// Log lines held back by the log's rate limit.
    pub log_suppressed: u64,
    pub process: Process,
}

/// The process's own figures, from `/proc` (none where it cannot be read).
#[derive(Debug, Clone, Copy, Default)]
pub struct Process {
    pub cpu_seconds: Option<f64>,
    pub resident_bytes: Option<u64>,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
}

impl Process {
    /// Reads them now.
    pub fn read() -> Process {
        Process {
            cpu_seconds: cpu_seconds(),
            resident_bytes: resident_bytes(),
            open_fds: std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|d| d.count() as u64),
            max_fds: max_fds(),
        }
    }
}

fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    let after = stat.get(stat.rfind(')')? + 2..)?;
    let mut fields = after.split_whitespace();
    // utime and stime are fields 14 and 15 of the line, 12th and 13th after the name.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    // SAFETY: sysconf reads a constant of the system; no pointers.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (ticks > 0).then(|| (utime + stime) as f64 / ticks as f64)
}

fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: as above.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(page).ok().map(|p| pages * p)
}

fn max_fds() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own and pass by pointer.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    ok.then_some(limit.rlim_cur)
}

/// Room sizes, as the histogram `room_members` buckets them.
const ROOM_SIZE_BUCKETS: [f64; 9] = [2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0];

/// Latency buckets: powers of two of microseconds, from 64 µs to about a second, which are
/// bucket bounds of the workers' own histograms, so each count is exact.
const LATENCY_BUCKETS_US: [u64; 15] = [
    64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072, 262144, 524288, 1048576,
];

/// Writes the free4chat series of the scrape's snapshot.
#[derive(Debug)]
pub(super) struct SnapshotCollector(pub(super) Arc<Mutex<Option<Snapshot>>>);

/// Writes the `process_*` series, under the names every Prometheus client gives them.
#[derive(Debug)]
pub(super) struct ProcessCollector(pub(super) Arc<Mutex<Option<Snapshot>>>);

type Result = std::result::Result<(), std::fmt::Error>;

fn gauge(e: &mut DescriptorEncoder, name: &str, help: &str, v: impl EncodeGaugeValue) -> Result {
    e.encode_descriptor(name, help, None, MetricType::Gauge)?
        .encode_gauge(&v)
}

fn counter(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    v: impl EncodeCounterValue,
) -> Result {
    e.encode_descriptor(name, help, None, MetricType::Counter)?
        .encode_counter::<NoLabelSet, _, u64>(&v, None)
}

/// A counter with one label, a series per value.
fn counters(
    e: &mut DescriptorEncoder,
    (name, help, label): (&str, &str, &'static str),
    series: &[(&'static str, u64)],
) -> Result {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    for &(value, v) in series {
        m.encode_family(&[(label, value)])?
            .encode_counter::<NoLabelSet, _, u64>(&v, None)?;
    }
    Ok(())
}

fn latency(e: &mut DescriptorEncoder, name: &str, help: &str, h: &LatencyHistogram) -> Result {
    let mut buckets = Vec::with_capacity(LATENCY_BUCKETS_US.len() + 1);
    let mut i = 0;
    for bound in LATENCY_BUCKETS_US {
        let mut n = 0;
        while i < h.counts.len() && free4chat_media::latency::bucket_below_us(i) <= bound {
            n += h.counts[i];
            i += 1;
        }
        buckets.push((bound as f64 / 1e6, n));
    }
    buckets.push((f64::INFINITY, h.counts[i..].iter().sum()));
    e.encode_descriptor(name, help, None, MetricType::Histogram)?
        .encode_histogram::<NoLabelSet>(h.sum_us as f64 / 1e6, h.count(), &buckets, None)
}

fn room_sizes(e: &mut DescriptorEncoder, sizes: &[usize]) -> Result {
    let mut buckets: Vec<(f64, u64)> = ROOM_SIZE_BUCKETS.iter().map(|&b| (b, 0)).collect();
    let mut over = 0;
    for &s in sizes {
        match buckets.iter_mut().find(|(b, _)| s as f64 <= *b) {
            Some((_, n)) => *n += 1,
            None => over += 1,
        }
    }
    buckets.push((f64::INFINITY, over));
    let sum = sizes.iter().sum::<usize>() as f64;
    e.encode_descriptor(
        "room_members",
        "Rooms on this node by their number of members",
        None,
        MetricType::Histogram,
    )?
    .encode_histogram::<NoLabelSet>(sum, sizes.len() as u64, &buckets, None)
}

impl Collector for SnapshotCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> Result {
        let Some(s) = self.0.lock().ok().and_then(|s| s.clone()) else {
            return Ok(());
        };
        let e = &mut e;
        gauge(e, "rooms", "Rooms running on this node", s.counts.rooms)?;
        gauge(
            e,
            "members",
            "Members in rooms on this node",
            s.counts.members,
        )?;
        room_sizes(e, &s.room_sizes)?;
        gauge(
            e,
            "websocket_connections",
            "Signalling WebSockets open",
            s.connections as f64,
        )?;
        if let Some(n) = s.cluster_nodes {
            gauge(e, "cluster_nodes", "Nodes alive in the cluster", n)?;
        }
        media(e, &s.media)?;
        super::quality::encode(e, &s.quality)?;
        if let Some(t) = &s.turn {
            turn(e, t)?;
        }
        if !s.webhooks.is_empty() {
            webhooks(e, &s.webhooks)?;
        }
        admission(e, &s.admission)?;
        counter(
            e,
            "media_deadline_dropped_members",
            "Members dropped for not connecting media within the deadline after joining",
            s.media_deadline_dropped,
        )?;
        counter(
            e,
            "log_suppressed_lines",
            "Log lines held back by the log's rate limit",
            s.log_suppressed,
        )
    }
}

fn media(e: &mut DescriptorEncoder, m: &WorkerStats) -> Result {
    let c = &m.core;
    gauge(
        e,
        "media_sessions",
        "Media sessions (members' WebRTC connections)",
        c.participants,
    )?;
    gauge(
        e,
        "media_tracks",
        "Tracks published or relayed to the workers",
        c.up_tracks,
    )?;
    gauge(
        e,
        "media_realtime_workers",
        "Media workers at real-time priority now",
        m.scheduling.realtime_workers,
    )?;
    let t = &m.traffic;
    counters(
        e,
        (
            "media_datagrams",
            "Datagrams (and TCP frames) received and sent by the media workers",
            "direction",
        ),
        &[("in", t.datagrams_in), ("out", t.datagrams_out)],
    )?;
    counters(
        e,
        ("media_bytes", "Bytes of those datagrams", "direction"),
        &[("in", t.bytes_in), ("out", t.bytes_out)],
    )?;
    counter(
        e,
        "media_forwarded_packets",
        "Media packets written to subscribers (one per copy)",
        c.forwarded,
    )?;
    counters(
        e,
        (
            "media_relayed_packets",
            "Packets handed between media workers for rooms spread over them",
            "direction",
        ),
        &[("out", c.relayed), ("in", c.relayed_in)],
    )?;
    counters(
        e,
        (
            "media_dropped_datagrams",
            "Datagrams dropped, by cause",
            "cause",
        ),
        &[
            ("garbage", c.garbage),
            ("unknown_sender", c.unknown),
            ("relay_queue_full", m.relay_dropped),
            ("udp_receive_buffer_full", m.udp.receive_dropped),
            ("udp_send_buffer_full", m.udp.send_dropped),
            ("tcp_write_queue_full", m.tcp.dropped),
            ("tcp_oversized", m.tcp.oversized),
        ],
    )?;
    counter(
        e,
        "media_failed_sessions",
        "Media sessions dropped because they failed (ICE, DTLS, or an error)",
        c.failed,
    )?;
    counter(
        e,
        "media_keyframe_requests",
        "Keyframe requests (PLI) sent to publishers",
        c.keyframe_requests,
    )?;
    gauge(
        e,
        "media_tcp_connections",
        "ICE-TCP connections open",
        m.tcp.connections,
    )?;
    counters(
        e,
        (
            "media_tcp_closed_connections",
            "ICE-TCP connections closed by the server, by reason",
            "reason",
        ),
        &[
            ("refused", m.tcp.refused),
            ("evicted", m.tcp.evicted),
            ("rejected", m.tcp.rejected),
            ("idle", m.tcp.idle),
        ],
    )?;
    counters(
        e,
        (
            "media_worker_scheduling_changes",
            "Media workers leaving or taking real-time priority",
            "change",
        ),
        &[
            ("demotion", m.scheduling.demotions),
            ("promotion", m.scheduling.promotions),
        ],
    )?;
    latency(
        e,
        "media_residence_seconds",
        "How long a received datagram stays in a media worker until all it caused was sent",
        &m.residence,
    )?;
    latency(
        e,
        "media_send_delay_seconds",
        "For each datagram sent, the time since the datagram that caused it arrived",
        &m.send_delay,
    )
}

fn turn(e: &mut DescriptorEncoder, t: &free4chat_turn::Stats) -> Result {
    gauge(
        e,
        "turn_allocations",
        "TURN allocations held",
        t.allocations,
    )?;
    gauge(
        e,
        "turn_connections",
        "TURN TCP and TLS connections open",
        t.connections,
    )?;
    counters(
        e,
        (
            "turn_refusals",
            "TURN requests and data refused, by cause",
            "cause",
        ),
        &[
            ("auth", t.refused_auth),
            ("peer", t.refused_peer),
            ("quota", t.refused_quota),
            ("malformed", t.malformed),
        ],
    )
}

/// The webhook receivers' figures, summed: a series per receiver would name their hosts.
fn webhooks(e: &mut DescriptorEncoder, receivers: &[crate::webhooks::ReceiverStats]) -> Result {
    let sum = |f: fn(&crate::webhooks::ReceiverStats) -> u64| receivers.iter().map(f).sum();
    counters(
        e,
        (
            "webhook_events",
            "Webhook events by what became of them, summed over the receivers",
            "outcome",
        ),
        &[
            ("delivered", sum(|r| r.delivered)),
            ("dropped_queue_full", sum(|r| r.dropped_queue_full)),
            ("dropped_failed", sum(|r| r.dropped_failed)),
        ],
    )?;
    counter(
        e,
        "webhook_retries",
        "Webhook deliveries that failed and were tried again",
        sum(|r| r.retries),
    )?;
    gauge(
        e,
        "webhook_pending_events",
        "Webhook events queued or being delivered",
        sum(|r| r.pending),
    )
}

impl Collector for ProcessCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> Result {
        let Some(p) = self
            .0
            .lock()
            .ok()
            .and_then(|s| s.as_ref().map(|s| s.process))
        else {
            return Ok(());
        };
        let e = &mut e;
        if let Some(v) = p.cpu_seconds {
            counter(e, "process_cpu_seconds", "User and system CPU time", v)?;
        }
        if let Some(v) = p.resident_bytes {
            gauge(e, "process_resident_memory_bytes", "Resident memory", v)?;
        }
        if let Some(v) = p.open_fds {
            gauge(e, "process_open_fds", "Open file descriptors", v)?;
        }
        if let Some(v) = p.max_fds {
            gauge(
                e,
                "process_max_fds",
                "The limit on open file descriptors",
                v,
            )?;
        }
        Ok(())
    }
}

/// The bounds per client address ([`crate::admission`], `docs/security.md`).
fn admission(e: &mut DescriptorEncoder, a: &crate::admission::AdmissionStats) -> Result {
    gauge(
        e,
        "http_connections",
        "HTTP and WebSocket connections open",
        a.http_connections,
    )?;
    counters(
        e,
        (
            "refusals",
            "Connections and joins refused or cut off to protect the others, by cause",
            "cause",
        ),
        &[
            ("http_total", a.refused_http_total),
            ("http_per_ip", a.refused_http_per_ip),
            ("header_timeout", a.header_timeouts),
            ("idle_timeout", a.idle_timeouts),
            ("websocket_per_ip", a.refused_ws_per_ip),
            ("joins_per_ip", a.refused_joins),
            ("origin", a.refused_origin),
        ],
    )
}
