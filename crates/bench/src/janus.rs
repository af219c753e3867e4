//! The Janus WebRTC server (VideoRoom plugin, HTTP API) as a load target.
//!
//! Each member opens its own Janus session over the HTTP API (long-poll for events, a
//! keepalive well inside Janus's 60 s session timeout) and drives the same str0m sessions as
//! the free4chat target:
//!
//! - a speaker attaches a publisher handle, joins the room as a publisher (its feed id is its
//!   sender id) and publishes one send-only audio m-line (our offer, Janus's answer);
//! - every member attaches one subscriber handle and receives all the room's speakers (but
//!   itself) on one multistream subscription: Janus offers, we answer with `start`, and every
//!   later feed is added with `subscribe` (a renegotiation on the same PeerConnection).
//!
//! Speakers learn of publishers that arrive after them from the events on their publisher
//! handle, as a Janus application does. Listeners have no publisher handle: they subscribe to
//! what is published when they join, and [`Janus::room_complete`] adds whatever came later.
//!
//! Janus sends its candidates inside its SDP (half-trickle, its default) and ours are inside
//! ours, so every JSEP we send says `trickle: false` and no trickle messages are exchanged.
//! Everything Janus replies is checked; nothing it sends can make this code panic.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use free4chat_client::media::lock_state;
use free4chat_client::{ClientState, Control, MediaOptions, MediaSession, SharedState};
use serde_json::{Value, json};
use str0m::media::Direction;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::target::{Inner, Member, Role};

/// Time allowed for one HTTP request that Janus answers at once.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for the event that completes an asynchronous request (an SDP answer or offer).
const EVENT_TIMEOUT: Duration = Duration::from_secs(20);
/// Janus answers a long poll within 30 s, with a keepalive when nothing happened.
const POLL_TIMEOUT: Duration = Duration::from_secs(45);
/// Long-poll failures in a row after which a session's poller gives up.
const POLL_FAILURES: u32 = 5;
/// Keepalive period; Janus drops sessions silent for 60 s.
const KEEPALIVE: Duration = Duration::from_secs(25);
/// Time for our media session to answer an offer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
/// Time for every speaker of a room to be listed as publishing, once all have joined.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Publishers allowed in a room we create (Janus's default is 3).
const MAX_PUBLISHERS: u64 = 1000;
/// Janus VideoRoom error: the room exists already.
const ROOM_EXISTS: i64 = 427;

/// An error from Janus (with its code, when Janus gave one) or from talking to it.
#[derive(Debug)]
struct JanusError {
    code: Option<i64>,
    reason: String,
}

impl JanusError {
    fn other(reason: impl fmt::Display) -> JanusError {
        JanusError {
            code: None,
            reason: reason.to_string(),
        }
    }
}

impl fmt::Display for JanusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code {
            Some(code) => write!(f, "janus error {code}: {}", self.reason),
            None => write!(f, "janus: {}", self.reason),
        }
    }
}

impl From<JanusError> for String {
    fn from(e: JanusError) -> String {
        e.to_string()
    }
}

type JResult<T> = Result<T, JanusError>;

/// A Janus server reached at its HTTP API.
pub struct Janus {
    pub url: String,
    http: Result<reqwest::Client, String>,
    /// Room ids of this run start here, so runs against the same Janus do not meet.
    room_base: u64,
    /// Rooms created so far.
    rooms: tokio::sync::Mutex<HashSet<u64>>,
}

impl Janus {
    /// `url` is the HTTP API's URL, e.g. `http://10.0.0.1:8088/janus`; a bare `host:port`
    /// means `http://host:port/janus`.
    pub fn new(url: &str) -> Janus {
        let mut url = url.trim_end_matches('/').to_owned();
        if !url.contains("://") {
            url = format!("http://{url}");
        }
        let has_path = url
            .split_once("://")
            .is_some_and(|(_, rest)| rest.contains('/'));
        if !has_path {
            url.push_str("/janus");
        }
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .map_err(|e| format!("http client: {e}"));
        Janus {
            url,
            http,
            room_base: u64::from(std::process::id()) * 1000,
            rooms: tokio::sync::Mutex::new(HashSet::new()),
        }
    }

    fn room_id(&self, room: usize) -> u64 {
        self.room_base + room as u64 + 1
    }

    /// Joins member `index` of `room`: opens its session, publishes (speakers) and subscribes
    /// to the speakers already publishing.
    pub async fn join(
        &self,
        room: usize,
        index: usize,
        role: Role,
        local_ip: IpAddr,
    ) -> Result<Member, String> {
        let http = self.http.clone()?;
        let room_id = self.room_id(room);
        let sender_id = room as u64 * 100_000 + index as u64 + 1;
        let state: SharedState = Arc::new(Mutex::new(ClientState::default()));

        let started = Instant::now();
        let (session, mut tasks) = Session::open(http, &self.url).await?;
        let mut member = JanusMember {
            session: session.clone(),
            sub: Arc::new(tokio::sync::Mutex::new(Subscription {
                session: session.clone(),
                handle: 0,
                room: room_id,
                own_feed: (role == Role::Speaker).then_some(sender_id),
                opts: MediaOptions {
                    local_ip,
                    publish: false,
                    sender_id,
                    ..Default::default()
                },
                state: state.clone(),
                peer: None,
                feeds: HashSet::new(),
            })),
            publisher: None,
            tasks: Vec::new(),
        };
        member.tasks.append(&mut tasks);

        // The subscriber handle; offers Janus makes on its own (a publisher left) are answered.
        let (sub_handle, mut sub_events) = session.attach().await?;
        member.sub.lock().await.handle = sub_handle;
        let sub = member.sub.clone();
        member.tasks.push(tokio::spawn(async move {
            while let Some(event) = sub_events.recv().await {
                if let Some(jsep) = event.get("jsep") {
                    let mut s = sub.lock().await;
                    if let Err(e) = s.answer(jsep).await {
                        tracing::debug!("janus renegotiation: {e}");
                    }
                }
            }
        }));

        self.ensure_room(&session, sub_handle, room_id).await?;

        let present = match role {
            Role::Speaker => {
                let (present, publisher) = self
                    .publish(&session, room_id, index, sender_id, local_ip, &state)
                    .await?;
                member.publisher = Some(publisher.peer);
                // New publishers are announced on the publisher handle: subscribe to them.
                let sub = member.sub.clone();
                let mut events = publisher.events;
                member.tasks.push(tokio::spawn(async move {
                    while let Some(event) = events.recv().await {
                        let feeds = publisher_ids(&plugin_data_lenient(&event));
                        if !feeds.is_empty()
                            && let Err(e) = sub.lock().await.ensure(&feeds).await
                        {
                            tracing::debug!("janus subscribe on announcement: {e}");
                        }
                    }
                }));
                present
            }
            Role::Listener => session.published(sub_handle, room_id).await?,
        };
        member.sub.lock().await.ensure(&present).await?;

        Ok(Member {
            room,
            role,
            sender_id,
            started,
            state,
            inner: Inner::Janus(member),
        })
    }

    /// Creates the room unless this run did already (or it exists).
    async fn ensure_room(&self, session: &Session, handle: u64, room_id: u64) -> JResult<()> {
        let mut rooms = self.rooms.lock().await;
        if rooms.contains(&room_id) {
            return Ok(());
        }
        let create = json!({
            "request": "create",
            "room": room_id,
            "description": format!("free4chat-bench {room_id}"),
            "publishers": MAX_PUBLISHERS,
            "audiocodec": "opus",
            "is_private": false,
            "notify_joining": false,
        });
        match session.message(handle, create, None).await {
            Ok(_) => {}
            Err(e) if e.code == Some(ROOM_EXISTS) => {}
            Err(e) => return Err(e),
        }
        rooms.insert(room_id);
        Ok(())
    }

    /// Joins as a publisher and publishes one send-only audio m-line. Returns the feeds
    /// already publishing in the room, and the publisher.
    async fn publish(
        &self,
        session: &Arc<Session>,
        room_id: u64,
        index: usize,
        sender_id: u64,
        local_ip: IpAddr,
        state: &SharedState,
    ) -> JResult<(Vec<u64>, Publisher)> {
        let (handle, events) = session.attach().await?;
        let join = json!({
            "request": "join",
            "ptype": "publisher",
            "room": room_id,
            "id": sender_id,
            "display": format!("speaker-{index}"),
        });
        let joined = session.message(handle, join, None).await?;
        if joined.data.get("videoroom").and_then(Value::as_str) != Some("joined") {
            return Err(JanusError::other(format!(
                "unexpected reply to join: {}",
                joined.data
            )));
        }
        let present = publisher_ids(&joined.data);

        let opts = MediaOptions {
            local_ip,
            publish: true,
            sender_id,
            ..Default::default()
        };
        let (peer, offer) = Peer::start(opts, state.clone(), Some(Direction::SendOnly)).await?;
        let offer = offer.ok_or_else(|| JanusError::other("no local offer"))?;
        let reply = session
            .message(
                handle,
                json!({ "request": "publish" }),
                Some(json!({ "type": "offer", "sdp": offer, "trickle": false })),
            )
            .await?;
        let jsep = reply
            .jsep
            .ok_or_else(|| JanusError::other(format!("publish without answer: {}", reply.data)))?;
        let answer = sdp_of(&jsep, "answer")?;
        tracing::debug!("publisher {sender_id}: offer\n{offer}\nanswer\n{answer}");
        peer.control
            .send(Control::RemoteAnswer(answer.to_owned()))
            .await
            .map_err(|_| JanusError::other("publisher media session ended"))?;
        Ok((present, Publisher { events, peer }))
    }

    /// Called once every member of `room` has joined: waits (bounded) until Janus lists every
    /// speaker as publishing, then subscribes every member to the speakers it lacks.
    pub async fn room_complete(&self, room: usize, members: &mut [Member]) -> Result<(), String> {
        let room_id = self.room_id(room);
        let speakers: Vec<u64> = members
            .iter()
            .filter(|m| m.role == Role::Speaker)
            .map(|m| m.sender_id)
            .collect();
        let probe = members.iter().find_map(|m| match &m.inner {
            Inner::Janus(j) => Some(j),
            Inner::Free4chat(_) => None,
        });
        let Some(probe) = probe else {
            return Ok(());
        };
        if speakers.is_empty() {
            return Ok(());
        }
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let handle = probe.sub.lock().await.handle;
            let published = probe.session.published(handle, room_id).await?;
            let missing = speakers.iter().filter(|s| !published.contains(s)).count();
            if missing == 0 {
                break;
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "room {room}: {missing} of {} speakers not publishing after {READY_TIMEOUT:?}",
                    speakers.len()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut tasks = Vec::new();
        for m in members.iter() {
            if let Inner::Janus(j) = &m.inner {
                let sub = j.sub.clone();
                let feeds = speakers.clone();
                tasks.push(tokio::spawn(async move {
                    sub.lock().await.ensure(&feeds).await
                }));
            }
        }
        let mut failed = Vec::new();
        for t in tasks {
            match t.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failed.push(e.to_string()),
                Err(e) => failed.push(e.to_string()),
            }
        }
        match failed.first() {
            None => Ok(()),
            Some(e) => Err(format!(
                "room {room}: {} subscriptions failed, first: {e}",
                failed.len()
            )),
        }
    }
}

/// One member's Janus session, handles and media.
pub struct JanusMember {
    session: Arc<Session>,
    sub: Arc<tokio::sync::Mutex<Subscription>>,
    /// The publishing media session, for speakers.
    publisher: Option<Peer>,
    /// The session's poller and keepalive, and the event handlers.
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for JanusMember {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl JanusMember {
    /// Ends the Janus session: Janus detaches its handles, so the member leaves the room and
    /// its PeerConnections are hung up. Our media sessions end when the member is dropped.
    pub async fn leave(self) {
        let _ = self
            .session
            .post(None, json!({ "janus": "destroy" }))
            .await
            .and_then(check_reply);
    }
}

/// A speaker's events announcing other publishers, and its publishing media session.
struct Publisher {
    events: mpsc::UnboundedReceiver<Value>,
    peer: Peer,
}

/// A member's multistream subscription: one subscriber handle, one PeerConnection.
struct Subscription {
    session: Arc<Session>,
    handle: u64,
    room: u64,
    own_feed: Option<u64>,
    opts: MediaOptions,
    state: SharedState,
    /// Exists once Janus made its first offer.
    peer: Option<Peer>,
    /// Feeds subscribed to.
    feeds: HashSet<u64>,
}

impl Subscription {
    /// Subscribes to those of `feeds` not subscribed yet (not our own).
    async fn ensure(&mut self, feeds: &[u64]) -> JResult<()> {
        let mut new: Vec<u64> = feeds
            .iter()
            .copied()
            .filter(|f| Some(*f) != self.own_feed && !self.feeds.contains(f))
            .collect();
        new.sort_unstable();
        new.dedup();
        if new.is_empty() {
            return Ok(());
        }
        let streams: Vec<Value> = new.iter().map(|f| json!({ "feed": f })).collect();
        let body = if self.peer.is_none() && self.feeds.is_empty() {
            json!({ "request": "join", "ptype": "subscriber", "room": self.room, "streams": streams })
        } else {
            json!({ "request": "subscribe", "streams": streams })
        };
        let reply = self.session.message(self.handle, body, None).await?;
        self.feeds.extend(&new);
        match reply.jsep {
            Some(jsep) => self.answer(&jsep).await,
            // Postponed ("updating") or nothing to renegotiate: an offer, if any, comes later
            // as an event of its own.
            None => Ok(()),
        }
    }

    /// Answers an offer from Janus and sends the answer with `start`.
    async fn answer(&mut self, jsep: &Value) -> JResult<()> {
        let offer = sdp_of(jsep, "offer")?;
        if self.peer.is_none() {
            let (peer, _) = Peer::start(self.opts.clone(), self.state.clone(), None).await?;
            self.peer = Some(peer);
        }
        let peer = self
            .peer
            .as_mut()
            .ok_or_else(|| JanusError::other("no media session"))?;
        let answer = peer.answer(offer).await?;
        tracing::debug!("subscriber: offer\n{offer}\nanswer\n{answer}");
        self.session
            .message(
                self.handle,
                json!({ "request": "start" }),
                Some(json!({ "type": "answer", "sdp": answer, "trickle": false })),
            )
            .await?;
        Ok(())
    }
}

/// One running str0m session.
struct Peer {
    control: mpsc::Sender<Control>,
    sdp: mpsc::Receiver<String>,
    task: JoinHandle<()>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Peer {
    /// Binds and runs a session; makes our offer first if `offer` says in which direction.
    async fn start(
        opts: MediaOptions,
        state: SharedState,
        offer: Option<Direction>,
    ) -> JResult<(Peer, Option<String>)> {
        let mut session = MediaSession::bind(opts, state.clone())
            .await
            .map_err(JanusError::other)?;
        let sdp = match offer {
            Some(dir) => Some(session.offer(dir).map_err(JanusError::other)?),
            None => None,
        };
        let (control, control_rx) = mpsc::channel(16);
        let (sdp_tx, sdp_rx) = mpsc::channel(4);
        let task = tokio::spawn(async move {
            let result = session.run(control_rx, sdp_tx).await;
            if let Err(e) = &result {
                tracing::warn!("janus media session: {e}");
            }
            lock_state(&state).ended.get_or_insert(match result {
                Ok(()) => "closed".into(),
                Err(e) => e.to_string(),
            });
        });
        Ok((
            Peer {
                control,
                sdp: sdp_rx,
                task,
            },
            sdp,
        ))
    }

    async fn answer(&mut self, offer: &str) -> JResult<String> {
        self.control
            .send(Control::RemoteOffer(offer.to_owned()))
            .await
            .map_err(|_| JanusError::other("media session ended"))?;
        match tokio::time::timeout(ANSWER_TIMEOUT, self.sdp.recv()).await {
            Ok(Some(sdp)) => Ok(sdp),
            Ok(None) => Err(JanusError::other("media session ended before answering")),
            Err(_) => Err(JanusError::other("media session did not answer")),
        }
    }
}

/// A reply to a plugin message: its plugin data and its JSEP, if any.
struct Reply {
    data: Value,
    jsep: Option<Value>,
}

/// A Janus session: its URL, the requests waiting for their events, and the handles whose
/// other events we route.
struct Session {
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
    async fn open(
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

    async fn post(&self, handle: Option<u64>, mut body: Value) -> JResult<Value> {
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
    async fn attach(&self) -> JResult<(u64, mpsc::UnboundedReceiver<Value>)> {
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
    async fn message(&self, handle: u64, body: Value, jsep: Option<Value>) -> JResult<Reply> {
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
    async fn published(&self, handle: u64, room: u64) -> JResult<Vec<u64>> {
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

async fn post_json(http: &reqwest::Client, url: &str, body: Value) -> JResult<Value> {
    let response = http
        .post(url)
        .json(&body)
        .timeout(REQUEST_TIMEOUT)
        .send()
        .await
        .map_err(|e| JanusError::other(format!("{url}: {e}")))?;
    response
        .json::<Value>()
        .await
        .map_err(|e| JanusError::other(format!("{url}: {e}")))
}

/// The reply itself unless Janus says it is an error.
fn check_reply(reply: Value) -> JResult<Value> {
    if reply.get("janus").and_then(Value::as_str) == Some("error") {
        let error = reply.get("error");
        return Err(JanusError {
            code: error.and_then(|e| e.get("code")).and_then(Value::as_i64),
            reason: error
                .and_then(|e| e.get("reason"))
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_owned(),
        });
    }
    Ok(reply)
}

/// The plugin's data in a reply or event, or the plugin's error.
fn plugin_data(event: &Value) -> JResult<Value> {
    let data = event
        .get("plugindata")
        .and_then(|p| p.get("data"))
        .ok_or_else(|| JanusError::other(format!("no plugin data in {event}")))?;
    if let Some(reason) = data.get("error") {
        return Err(JanusError {
            code: data.get("error_code").and_then(Value::as_i64),
            reason: reason.as_str().unwrap_or("unknown").to_owned(),
        });
    }
    Ok(data.clone())
}

fn plugin_data_lenient(event: &Value) -> Value {
    plugin_data(event).unwrap_or(Value::Null)
}

/// The ids in a `publishers` list (of a `joined` reply or an announcement).
fn publisher_ids(data: &Value) -> Vec<u64> {
    data.get("publishers")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|p| p.get("id").and_then(Value::as_u64))
                .collect()
        })
        .unwrap_or_default()
}

/// The SDP of a JSEP of the given type.
fn sdp_of<'a>(jsep: &'a Value, kind: &str) -> JResult<&'a str> {
    if jsep.get("type").and_then(Value::as_str) != Some(kind) {
        return Err(JanusError::other(format!("expected an {kind}, got {jsep}")));
    }
    jsep.get("sdp")
        .and_then(Value::as_str)
        .ok_or_else(|| JanusError::other(format!("no SDP in {jsep}")))
}

/// The `data.id` of a Janus success reply (a new session's or handle's id).
fn data_id(reply: &Value, what: &str) -> JResult<u64> {
    reply
        .get("data")
        .and_then(|d| d.get("id"))
        .and_then(Value::as_u64)
        .ok_or_else(|| JanusError::other(format!("no {what} id in {reply}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_completed() {
        assert_eq!(
            Janus::new("10.0.0.1:8088").url,
            "http://10.0.0.1:8088/janus"
        );
        assert_eq!(
            Janus::new("http://10.0.0.1:8088/janus/").url,
            "http://10.0.0.1:8088/janus"
        );
        assert_eq!(Janus::new("http://h:1/x").url, "http://h:1/x");
    }

    #[test]
    fn replies_are_checked_not_trusted() {
        let err = check_reply(json!({"janus": "error", "error": {"code": 458, "reason": "gone"}}));
        assert_eq!(err.map_err(|e| e.code).err(), Some(Some(458)));
        assert!(check_reply(json!({"janus": "error"})).is_err());
        assert!(plugin_data(&json!({"janus": "event"})).is_err());
        let exists = json!({"plugindata": {"data": {"error_code": 427, "error": "exists"}}});
        assert_eq!(
            plugin_data(&exists).map_err(|e| e.code).err(),
            Some(Some(427))
        );
        assert_eq!(
            publisher_ids(&json!({"publishers": [{"id": 3}, {"id": "x"}, {}]})),
            vec![3]
        );
        assert!(publisher_ids(&json!({"publishers": 5})).is_empty());
        assert!(sdp_of(&json!({"type": "offer"}), "offer").is_err());
        assert!(sdp_of(&json!({"type": "answer", "sdp": "v=0"}), "offer").is_err());
        assert_eq!(
            sdp_of(&json!({"type": "offer", "sdp": "v=0"}), "offer").ok(),
            Some("v=0")
        );
    }
}
