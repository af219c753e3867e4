//! Prometheus metrics: what `GET /metrics` serves, in the Prometheus text format (0.0.4).
//!
//! Two kinds of figures, one registry:
//!
//! - **Events the signalling counts as they happen** (messages by type, errors by code, joins,
//!   leaves, join time): counters and a histogram kept here, incremented by the sessions. They
//!   cost an atomic add each.
//! - **Everything else is read at scrape time** from the snapshots that already exist
//!   ([`Snapshot`]: the room directory's counts, the media workers' published figures, the TURN
//!   server's, the process's own from `/proc`). The media threads publish their snapshot when
//!   asked, from a task of their own, so a scrape never waits behind media and adds nothing to
//!   the packet path.
//!
//! In cluster mode every series carries the label `node` (this node's id).

mod quality;
mod snapshot;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use free4chat_signal::{ClientMsg, ErrorCode};
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

pub use snapshot::Process;
pub use snapshot::Snapshot;
use snapshot::{ProcessCollector, SnapshotCollector};

/// The `Content-Type` of what [`Metrics::render`] returns.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

type ByLabel = Family<[(&'static str, &'static str); 1], Counter>;

/// The server's metrics: the event counters, and the registry that renders them with a
/// snapshot's figures.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// The figures of the scrape under way, read by the collector while it renders.
    snapshot: Arc<Mutex<Option<Snapshot>>>,
    /// Held through a scrape, so that two at once each render their own snapshot.
    scrape: Mutex<()>,
    messages: ByLabel,
    errors: ByLabel,
    joins: Counter,
    leaves: Counter,
    join_seconds: Histogram,
}

/// Join times from a millisecond to ten seconds: a join is the room's answer to `join`, which
/// in a cluster may cross Redis twice each way.
const JOIN_BUCKETS: [f64; 11] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5, 10.0,
];

impl Metrics {
    /// The metrics of a server; `node` is its id in a cluster.
    pub fn new(node: Option<String>) -> Metrics {
        let labels = node.map(|n| (std::borrow::Cow::Borrowed("node"), n.into()));
        let mut registry = Registry::with_labels(labels.into_iter());
        let root = registry.sub_registry_with_prefix("free4chat");
        let messages = ByLabel::default();
        let errors = ByLabel::default();
        // Every code from the start at 0, as Prometheus advises: a rate over a series that
        // appears with its first error would miss that error.
        for code in <ErrorCode as strum::IntoEnumIterator>::iter() {
            let _zero = errors.get_or_create(&[("code", code.into())]).get();
        }
        let joins = Counter::default();
        let leaves = Counter::default();
        let join_seconds = Histogram::new(JOIN_BUCKETS);
        root.register(
            "websocket_messages",
            "Signalling messages received, by type (`invalid`: not a message of the protocol)",
            messages.clone(),
        );
        root.register(
            "websocket_errors",
            "Errors sent to clients, by code (docs/protocol.md)",
            errors.clone(),
        );
        root.register("joins", "Members who joined a room", joins.clone());
        root.register(
            "leaves",
            "Members who left a room, for any reason",
            leaves.clone(),
        );
        root.register(
            "join_seconds",
            "From a join message to the room's answer (joined, or an error)",
            join_seconds.clone(),
        );
        let snapshot = Arc::new(Mutex::new(None));
        root.register_collector(Box::new(SnapshotCollector(snapshot.clone())));
        registry.register_collector(Box::new(ProcessCollector(snapshot.clone())));
        Metrics {
            registry,
            snapshot,
            scrape: Mutex::new(()),
            messages,
            errors,
            joins,
            leaves,
            join_seconds,
        }
    }

    /// A message received: `None` when it was not one of the protocol's.
    pub fn message(&self, msg: Option<&ClientMsg>) {
        let kind = msg.map_or("invalid", <&'static str>::from);
        self.messages.get_or_create(&[("type", kind)]).inc();
    }

    /// An error sent to a client.
    pub fn error(&self, code: ErrorCode) {
        let code: &'static str = code.into();
        self.errors.get_or_create(&[("code", code)]).inc();
    }

    /// A join answered after `took`; `joined` if the member is now in the room.
    pub fn join(&self, took: Duration, joined: bool) {
        self.join_seconds.observe(took.as_secs_f64());
        if joined {
            self.joins.inc();
        }
    }

    /// A member left its room (said so, was dropped, or the connection ended).
    pub fn leave(&self) {
        self.leaves.inc();
    }

    /// The text of a scrape: the event counters, and `snapshot`'s figures.
    pub fn render(&self, snapshot: Snapshot) -> String {
        let _one_at_a_time = self.scrape.lock().unwrap_or_else(|p| p.into_inner());
        *self.snapshot.lock().unwrap_or_else(|p| p.into_inner()) = Some(snapshot);
        let mut out = String::with_capacity(16 * 1024);
        // Writing into a String cannot fail.
        let _ = prometheus_text::encode(&mut out, &self.registry);
        *self.snapshot.lock().unwrap_or_else(|p| p.into_inner()) = None;
        out
    }
}
