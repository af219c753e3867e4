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
use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use free4chat_client::{ClientState, Control, MediaOptions, SharedState, VideoOptions};
use serde_json::{Value, json};
use str0m::media::Direction;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::target::{Inner, Member, Role};
use crate::view::Tile;

mod api;
mod session;
mod subscription;
#[cfg(test)]
mod tests;

use api::*;
use session::Session;
use subscription::{Peer, Subscription};

/// Time for every speaker of a room to be listed as publishing, once all have joined.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Publishers allowed in a room we create (Janus's default is 3).
const MAX_PUBLISHERS: u64 = 1000;
/// Janus VideoRoom error: the room exists already.
const ROOM_EXISTS: i64 = 427;
/// A Janus server reached at its HTTP API.
pub struct Janus {
    pub url: String,
    http: Result<reqwest::Client, String>,
    /// Room ids of this run start here, so runs against the same Janus do not meet.
    room_base: u64,
    /// Rooms created so far.
    rooms: tokio::sync::Mutex<HashSet<u64>>,
    /// The camera speakers publish, if any.
    video: Option<VideoOptions>,
    /// The simulcast layer every subscriber asks for (none: Janus's default, the best).
    substream: Option<u8>,
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
            video: None,
            substream: None,
        }
    }

    /// Speakers publish `video` as well; with a `tile`, every subscriber asks for the layer
    /// free4chat would send to that tile.
    pub fn with_video(mut self, video: Option<VideoOptions>, tile: Option<Tile>) -> Janus {
        self.video = video;
        self.substream = tile.map(Tile::substream);
        self
    }

    fn room_id(&self, room: usize) -> u64 {
        self.room_base + room as u64 + 1
    }

    /// Joins member `index` of `room`: opens its session, publishes (speakers, at `level`
    /// dBov) and subscribes to the speakers already publishing. Listeners do not publish here:
    /// Janus would forward every open microphone to everyone, which is other work than a
    /// server that forwards the loudest speakers only.
    pub async fn join(
        &self,
        room: usize,
        index: usize,
        role: Role,
        level: Option<i8>,
        local_ip: IpAddr,
    ) -> Result<Member, String> {
        if role == Role::Listener && level.is_some() {
            return Err("janus: listeners with open microphones are not supported".into());
        }
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
                substream: self.substream,
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
                let opts = MediaOptions {
                    local_ip,
                    publish: true,
                    sender_id,
                    audio_level: level.unwrap_or(MediaOptions::default().audio_level),
                    video: self.video.clone(),
                    ..Default::default()
                };
                let (present, publisher) =
                    self.publish(&session, room_id, index, opts, &state).await?;
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
            publishes: role == Role::Speaker,
            audio_slots: None,
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
            "videocodec": "vp8",
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

    /// Joins as a publisher and publishes one send-only audio m-line as `opts` say (its sender
    /// id is its feed id). Returns the feeds already publishing in the room, and the publisher.
    async fn publish(
        &self,
        session: &Arc<Session>,
        room_id: u64,
        index: usize,
        opts: MediaOptions,
        state: &SharedState,
    ) -> JResult<(Vec<u64>, Publisher)> {
        let sender_id = opts.sender_id;
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

        let (peer, offer) = Peer::start(opts, state.clone(), Some(Direction::SendOnly)).await?;
        let offer = offer.ok_or_else(|| JanusError::other("no local offer"))?;
        let mut jsep = json!({ "type": "offer", "sdp": offer, "trickle": false });
        if self.video.as_ref().is_some_and(|v| v.simulcast) {
            // Our rids are offered lowest first (q, h, f); Janus takes the first as the
            // highest unless told.
            jsep["rid_order"] = json!("lmh");
        }
        let reply = session
            .message(handle, json!({ "request": "publish" }), Some(jsep))
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
