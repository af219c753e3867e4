//! Webhooks: the rooms' lives told to HTTP receivers (`docs/webhooks.md`).
//!
//! The rooms tell their steps to [`Webhooks`] as a [`RoomObserver`], from their own tasks. It
//! writes each event's JSON once and offers it to every receiver's bounded queue without
//! waiting: a full queue drops the event and counts it. Each receiver has a task of its own
//! that POSTs its queue's events one at a time, in order, signed, and retries a failure with
//! a growing pause a bounded number of times (`deliver.rs`). A slow or dead receiver so costs
//! nothing but its own queue: no room, and no other receiver, ever waits for it.

mod deliver;
mod event;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use free4chat_signal::{ChatMessage, RoomId};
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tracing::warn;

use crate::config::WebhookSettings;
use crate::rooms::{Lifecycle, RoomObserver};
use event::Event;

pub use event::{SIGNATURE_HEADER, signature};

/// Most receivers: each has a task, a queue and a connection pool.
pub const MAX_RECEIVERS: usize = 16;

/// A webhook URL, if it is one: http or https, with a host.
pub fn url(text: &str) -> Option<reqwest::Url> {
    let url = reqwest::Url::parse(text).ok()?;
    let web = matches!(url.scheme(), "http" | "https");
    (web && url.host_str().is_some_and(|h| !h.is_empty())).then_some(url)
}

/// The receivers, their queues and their counts.
pub struct Webhooks {
    receivers: Vec<Receiver>,
    /// This node's id in a cluster, put in every event.
    node: Option<String>,
    /// Set when the server stops: failures are no longer retried.
    stopping: watch::Sender<bool>,
}

struct Receiver {
    /// Scheme, host and port only: a URL's path or query may hold a token of its own.
    origin: String,
    queue: mpsc::Sender<Arc<Event>>,
    counts: Arc<Counts>,
}

/// What happened to one receiver's events.
#[derive(Debug, Default)]
struct Counts {
    delivered: AtomicU64,
    retries: AtomicU64,
    dropped_queue_full: AtomicU64,
    dropped_failed: AtomicU64,
    /// Events in the queue or being delivered.
    pending: AtomicU64,
}

/// One receiver's figures, as `/api/stats` and `/metrics` show them. Cumulative since start,
/// except `pending`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReceiverStats {
    /// The receiver's scheme, host and port.
    pub receiver: String,
    /// Events it answered with a 2xx status.
    pub delivered: u64,
    /// Attempts that failed and were tried again.
    pub retries: u64,
    /// Events dropped because its queue was full.
    pub dropped_queue_full: u64,
    /// Events dropped after their last attempt failed.
    pub dropped_failed: u64,
    /// Events waiting in its queue or being delivered now.
    pub pending: u64,
}

impl Webhooks {
    /// Starts a delivery task per URL of `settings`, signing with `secret`; none if there are
    /// no URLs. Must be called within the runtime.
    pub fn start(
        settings: &WebhookSettings,
        secret: Vec<u8>,
        node: Option<String>,
    ) -> std::io::Result<Option<Arc<Webhooks>>> {
        if settings.webhook.is_empty() {
            return Ok(None);
        }
        let client = deliver::client(settings.webhook_timeout)?;
        let secret: Arc<[u8]> = secret.into();
        let (stopping, stop) = watch::channel(false);
        let mut receivers = Vec::with_capacity(settings.webhook.len());
        for text in &settings.webhook {
            let url = url(text).ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a webhook URL")
            })?;
            let origin = url.origin().ascii_serialization();
            let (queue, rx) = mpsc::channel(settings.webhook_queue);
            let counts = Arc::new(Counts::default());
            let receiver = deliver::Receiver {
                client: client.clone(),
                url,
                secret: secret.clone(),
                counts: counts.clone(),
                stop: stop.clone(),
            };
            tokio::spawn(receiver.run(rx));
            receivers.push(Receiver {
                origin,
                queue,
                counts,
            });
        }
        Ok(Some(Arc::new(Webhooks {
            receivers,
            node,
            stopping,
        })))
    }

    /// Each receiver's figures, in the order of the configuration.
    pub fn stats(&self) -> Vec<ReceiverStats> {
        let get = |n: &AtomicU64| n.load(Ordering::Relaxed);
        self.receivers
            .iter()
            .map(|r| ReceiverStats {
                receiver: r.origin.clone(),
                delivered: get(&r.counts.delivered),
                retries: get(&r.counts.retries),
                dropped_queue_full: get(&r.counts.dropped_queue_full),
                dropped_failed: get(&r.counts.dropped_failed),
                pending: get(&r.counts.pending),
            })
            .collect()
    }

    /// When the server stops: delivers what is queued, without retrying failures, for at most
    /// `patience` (the rooms have ended, so their last events are queued already).
    pub async fn flush(&self, patience: Duration) {
        let _ = self.stopping.send(true);
        let empty = || {
            self.receivers
                .iter()
                .all(|r| r.counts.pending.load(Ordering::Relaxed) == 0)
        };
        let _ = tokio::time::timeout(patience, async {
            while !empty() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
    }

    /// Offers `event` to every receiver's queue, without waiting.
    fn offer(&self, event: Event) {
        let event = Arc::new(event);
        for r in &self.receivers {
            r.counts.pending.fetch_add(1, Ordering::Relaxed);
            if r.queue.try_send(event.clone()).is_err() {
                r.counts.pending.fetch_sub(1, Ordering::Relaxed);
                let dropped = r.counts.dropped_queue_full.fetch_add(1, Ordering::Relaxed) + 1;
                // A warning at the 1st, 2nd, 4th, 8th… drop: a dead receiver under load must
                // not flood the log.
                if dropped.is_power_of_two() {
                    warn!(
                        receiver = r.origin,
                        dropped, "webhook queue full: event dropped"
                    );
                }
            }
        }
    }
}

impl RoomObserver for Webhooks {
    fn chat(&self, _room: &str, _message: &ChatMessage) {}

    fn closed(&self, _room: &str) {}

    fn lifecycle(&self, room: &str, id: RoomId, what: Lifecycle<'_>) {
        self.offer(Event::new(room, id, what, self.node.as_deref()));
    }
}
