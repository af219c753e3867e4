//! One receiver's task: POSTs its queue's events in order, signed, retrying failures.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{CONTENT_TYPE, HeaderValue};
use tokio::sync::{mpsc, watch};
use tracing::{debug, warn};

use super::Counts;
use super::event::{Event, SIGNATURE_HEADER, signature};

/// Attempts per event: the first and five retries.
pub(super) const ATTEMPTS: u32 = 6;
/// The pause before the first retry; each further pause doubles it, up to [`LAST_BACKOFF`]
/// (0.5, 1, 2, 4, 8 s: an event is given up about 15 s after its first failure, plus the
/// attempts' own time).
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const LAST_BACKOFF: Duration = Duration::from_secs(30);

/// The HTTP client all receivers share: a timeout for the whole of each attempt, and no
/// redirects (a POST redirected would become a GET, or carry the signature elsewhere).
pub(super) fn client(timeout: Duration) -> std::io::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("free4chat/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(std::io::Error::other)
}

pub(super) struct Receiver {
    pub client: reqwest::Client,
    pub url: reqwest::Url,
    pub secret: Arc<[u8]>,
    pub counts: Arc<Counts>,
    /// True once the server stops: a failure is then not retried.
    pub stop: watch::Receiver<bool>,
}

impl Receiver {
    /// Delivers the events of `queue` until the server drops it.
    pub async fn run(mut self, mut queue: mpsc::Receiver<Arc<Event>>) {
        while let Some(event) = queue.recv().await {
            self.deliver(&event).await;
            self.counts.pending.fetch_sub(1, Ordering::Relaxed);
        }
    }

    async fn deliver(&mut self, event: &Event) {
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1..=ATTEMPTS {
            let why = match self.post(event).await {
                Ok(()) => {
                    self.counts.delivered.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Err(why) => why,
            };
            if attempt == ATTEMPTS || *self.stop.borrow() {
                self.counts.dropped_failed.fetch_add(1, Ordering::Relaxed);
                warn!(
                    receiver = %self.url.origin().ascii_serialization(),
                    event = event.name, id = event.id, attempt, "webhook dropped: {why}"
                );
                return;
            }
            self.counts.retries.fetch_add(1, Ordering::Relaxed);
            debug!(
                event = event.name,
                attempt, "webhook failed, will retry: {why}"
            );
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = self.stop.wait_for(|stop| *stop) => {}
            }
            backoff = (backoff * 2).min(LAST_BACKOFF);
        }
    }

    /// One attempt: signed now, so that a receiver may refuse an old signature.
    async fn post(&self, event: &Event) -> Result<(), String> {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let v1 = signature(&self.secret, t, &event.body);
        let response = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(SIGNATURE_HEADER, format!("t={t},v1={v1}"))
            .header("x-free4chat-event", event.name)
            .header("x-free4chat-event-id", event.id.as_str())
            .body(event.body.clone())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("answered {status}"))
        }
    }
}
