//! A Janus session: its requests and the events that complete them, its long poll and its
//! keepalive.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::api::*;

/// Time allowed for the event that completes an asynchronous request (an SDP answer or offer).
const EVENT_TIMEOUT: Duration = Duration::from_secs(20);
/// Janus answers a long poll within 30 s, with a keepalive when nothing happened.
const POLL_TIMEOUT: Duration = Duration::from_secs(45);
/// Long-poll failures in a row after which a session's poller gives up.
const POLL_FAILURES: u32 = 5;
/// Keepalive period; Janus drops sessions silent for 60 s.
const KEEPALIVE: Duration = Duration::from_secs(25);

/// A reply to a plugin message: its plugin data and its JSEP, if any.
pub(super) struct Reply {
    pub(super) data: Value,
    pub(super) jsep: Option<Value>,
}

/// A Janus session: its URL, the requests waiting for their events, and the handles whose
/// other events we route.
pub(super) struct Session {
    http: reqwest::Client,
    url: String,
    next_transaction: AtomicU64,
    waiting: Mutex<HashMap<String, oneshot::Sender<Value>>>,
    handles: Mutex<HashMap<u64, mpsc::UnboundedSender<Value>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl Session {
    /// Creates a session; starts its long poll and keepalive.
    pub(super) async fn open(
        http: reqwest::Client,
        base: &str,
    ) -> JResult<(Arc<Session>, Vec<JoinHandle<()>>)> {
        let created = post_json(
            &http,
            base,
            json!({ "janus": "create", "transaction": "create" }),
        )
        .await
        .and_then(check_reply)?;
        let id = data_id(&created, "session")?;
        let session = Arc::new(Session {
            http,
            url: format!("{base}/{id}"),
            next_transaction: AtomicU64::new(1),
            waiting: Mutex::new(HashMap::new()),
            handles: Mutex::new(HashMap::new()),
        });
        let poller = tokio::spawn(session.clone().poll());
        let keepalive = tokio::spawn(session.clone().keepalive());
        Ok((session, vec![poller, keepalive]))
    }

    fn transaction(&self) -> String {
        format!(
            "t{:x}",
            self.next_transaction.fetch_add(1, Ordering::Relaxed)
        )
    }

    pub(super) async fn post(&self, handle: Option<u64>, mut body: Value) -> JResult<Value> {
        if body.get("transaction").is_none() {
            body["transaction"] = json!(self.transaction());
        }
        let url = match handle {
            Some(h) => format!("{}/{h}", self.url),
            None => self.url.clone(),
        };
        post_json(&self.http, &url, body).await
    }

    /// Attaches a VideoRoom handle; its events that answer no request come out of the receiver.
    pub(super) async fn attach(&self) -> JResult<(u64, mpsc::UnboundedReceiver<Value>)> {
        let reply = self
            .post(
                None,
                json!({ "janus": "attach", "plugin": "janus.plugin.videoroom" }),
            )
            .await
            .and_then(check_reply)?;
        let id = data_id(&reply, "handle")?;
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&self.handles).insert(id, tx);
        Ok((id, rx))
    }

    /// Sends a plugin message; for an asynchronous request, waits for the event that
    /// completes it.
    pub(super) async fn message(
        &self,
        handle: u64,
        body: Value,
        jsep: Option<Value>,
    ) -> JResult<Reply> {
        let transaction = self.transaction();
        let what = body
            .get("request")
            .and_then(Value::as_str)
            .unwrap_or("request")
            .to_owned();
        let (tx, rx) = oneshot::channel();
        lock(&self.waiting).insert(transaction.clone(), tx);
        let mut msg = json!({ "janus": "message", "transaction": transaction, "body": body });
        if let Some(jsep) = jsep {
            msg["jsep"] = jsep;
        }
        let reply = self.post(Some(handle), msg).await;
        let event = match reply {
            Ok(r) if r.get("janus").and_then(Value::as_str) == Some("ack") => {
                match tokio::time::timeout(EVENT_TIMEOUT, rx).await {
                    Ok(Ok(event)) => event,
                    Ok(Err(_)) => {
                        return Err(JanusError::other("session ended before the reply"));
                    }
                    Err(_) => {
                        lock(&self.waiting).remove(&transaction);
                        return Err(JanusError::other(format!(
                            "no reply to {what} within {EVENT_TIMEOUT:?}"
                        )));
                    }
                }
            }
            Ok(r) => {
                lock(&self.waiting).remove(&transaction);
                check_reply(r)?
            }
            Err(e) => {
                lock(&self.waiting).remove(&transaction);
                return Err(e);
            }
        };
        Ok(Reply {
            data: plugin_data(&event)?,
            jsep: event.get("jsep").cloned(),
        })
    }

    /// The feeds publishing in a room.
    pub(super) async fn published(&self, handle: u64, room: u64) -> JResult<Vec<u64>> {
        let reply = self
            .message(
                handle,
                json!({ "request": "listparticipants", "room": room }),
                None,
            )
            .await?;
        let participants = reply
            .data
            .get("participants")
            .and_then(Value::as_array)
            .ok_or_else(|| JanusError::other(format!("no participants in {}", reply.data)))?;
        Ok(participants
            .iter()
            .filter(|p| p.get("publisher").and_then(Value::as_bool) == Some(true))
            .filter_map(|p| p.get("id").and_then(Value::as_u64))
            .collect())
    }

    /// Long-polls for the session's events and routes them; ends with the session.
    async fn poll(self: Arc<Session>) {
        let url = format!("{}?maxev=16", self.url);
        let mut failures = 0;
        while failures < POLL_FAILURES {
            let got = async {
                self.http
                    .get(&url)
                    .timeout(POLL_TIMEOUT)
                    .send()
                    .await?
                    .json::<Value>()
                    .await
            }
            .await;
            match got {
                Ok(Value::Array(events)) => {
                    failures = 0;
                    for e in events {
                        self.dispatch(e);
                    }
                }
                Ok(event) => {
                    if event.get("janus").and_then(Value::as_str) == Some("error") {
                        tracing::debug!("janus long poll: {event}");
                        return;
                    }
                    failures = 0;
                    self.dispatch(event);
                }
                Err(e) => {
                    tracing::debug!("janus long poll: {e}");
                    failures += 1;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }

    fn dispatch(&self, event: Value) {
        if event.get("janus").and_then(Value::as_str) != Some("event") {
            // keepalive, webrtcup, media, slowlink, hangup, detached: nothing to do.
            return;
        }
        let waiter = event
            .get("transaction")
            .and_then(Value::as_str)
            .and_then(|t| lock(&self.waiting).remove(t));
        if let Some(waiter) = waiter {
            let _ = waiter.send(event);
            return;
        }
        let handle = event.get("sender").and_then(Value::as_u64);
        if let Some(tx) = handle.and_then(|h| lock(&self.handles).get(&h).cloned()) {
            let _ = tx.send(event);
        }
    }

    async fn keepalive(self: Arc<Session>) {
        let mut tick = tokio::time::interval(KEEPALIVE);
        tick.tick().await;
        loop {
            tick.tick().await;
            let alive = self
                .post(None, json!({ "janus": "keepalive" }))
                .await
                .and_then(check_reply);
            if let Err(e) = alive {
                tracing::debug!("janus keepalive: {e}");
                return;
            }
        }
    }
}
