//! A member's media on Janus: its multistream subscription, and the str0m sessions that
//! carry it and a speaker's publishing.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use free4chat_client::media::lock_state;
use free4chat_client::{Control, MediaOptions, MediaSession, SharedState};
use serde_json::{Value, json};
use str0m::media::Direction;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::api::*;
use super::session::Session;

/// Time for our media session to answer an offer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// A member's multistream subscription: one subscriber handle, one PeerConnection.
pub(super) struct Subscription {
    pub(super) session: Arc<Session>,
    pub(super) handle: u64,
    pub(super) room: u64,
    pub(super) own_feed: Option<u64>,
    pub(super) opts: MediaOptions,
    pub(super) state: SharedState,
    /// Exists once Janus made its first offer.
    pub(super) peer: Option<Peer>,
    /// Feeds subscribed to.
    pub(super) feeds: HashSet<u64>,
    /// The simulcast layer asked for on each feed's video (none: Janus's default).
    pub(super) substream: Option<u8>,
}

impl Subscription {
    /// Subscribes to those of `feeds` not subscribed yet (not our own).
    pub(super) async fn ensure(&mut self, feeds: &[u64]) -> JResult<()> {
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
        let streams: Vec<Value> = new
            .iter()
            .map(|f| stream_request(*f, self.substream))
            .collect();
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
    pub(super) async fn answer(&mut self, jsep: &Value) -> JResult<()> {
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
pub(super) struct Peer {
    pub(super) control: mpsc::Sender<Control>,
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
    pub(super) async fn start(
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

/// One feed to subscribe to: all its streams, its video at `substream` if given.
pub(super) fn stream_request(feed: u64, substream: Option<u8>) -> Value {
    match substream {
        Some(n) => json!({ "feed": feed, "substream": n }),
        None => json!({ "feed": feed }),
    }
}
