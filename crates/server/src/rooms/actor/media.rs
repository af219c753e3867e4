//! What the media workers tell a room: answers, offers and errors for a member, their media
//! connecting, failing or never connecting, tracks published, who speaks.

use std::sync::atomic::Ordering;

use free4chat_sfu::{MediaErrorCode, MediaEvent};
use free4chat_signal::{ByeReason, ErrorCode, ServerMsg, Track, TrackSource};
use tokio::time::Instant;
use tracing::debug;

use super::Room;
use crate::rooms::trace;

impl Room {
    pub(super) async fn media_event(&mut self, event: MediaEvent) {
        let member = event.member();
        if !self.members.contains_key(&member) {
            return;
        }
        self.link.on_event(&event);
        self.drive_link().await;
        match event {
            MediaEvent::Answer { sdp, .. } => {
                if let Some(m) = self.members.get(&member) {
                    trace::step(&m.span, "negotiation: server answer");
                }
                self.send_to(member, ServerMsg::Answer { sdp })
            }
            MediaEvent::Offer { sdp, .. } => {
                if let Some(m) = self.members.get(&member) {
                    trace::step(&m.span, "negotiation: server offer");
                }
                self.send_to(member, ServerMsg::Offer { sdp })
            }
            MediaEvent::Error { code, message, .. } => {
                let code = match code {
                    MediaErrorCode::InvalidSdp | MediaErrorCode::NoSession => ErrorCode::InvalidSdp,
                    MediaErrorCode::UnexpectedAnswer => ErrorCode::UnexpectedAnswer,
                    MediaErrorCode::InvalidCandidate => ErrorCode::InvalidCandidate,
                };
                self.send_to(member, ServerMsg::error(code, message));
            }
            // No session was made: the member's next offer starts afresh.
            MediaEvent::Refused { message, .. } => {
                self.send_to(member, ServerMsg::error(ErrorCode::InvalidSdp, message));
            }
            MediaEvent::Connected { .. } => {
                debug!(%member, "media connected");
                if let Some(m) = self.members.get_mut(&member) {
                    m.connected = true;
                    trace::step(&m.span, "ice and dtls connected");
                }
            }
            MediaEvent::FirstMedia { .. } => {
                if let Some(m) = self.members.get(&member) {
                    trace::step(&m.span, "first media");
                }
            }
            MediaEvent::TrackPublished { track, kind, .. } => {
                let Some(m) = self.members.get_mut(&member) else {
                    return;
                };
                let source = TrackSource::resolve(m.sources.get(&track).copied(), kind);
                let track = Track::new(member, track, kind, source);
                m.tracks.push(track.clone());
                if super::video::is_camera(kind, source) {
                    self.camera_published(member, &track.id);
                }
                self.broadcast(Some(member), &ServerMsg::TrackAdded { track });
            }
            MediaEvent::Speaking { speaking, .. } => {
                if let Some(m) = self.members.get_mut(&member)
                    && m.speaking != speaking
                {
                    m.speaking = speaking;
                    self.speakers.dirty = true;
                }
            }
            MediaEvent::VideoAllocated {
                publisher,
                track,
                layer,
                ..
            } => self.video_allocated(member, (publisher, track), layer),
            // The worker has dropped the session already, and the link has let it go.
            MediaEvent::Failed { reason, .. } => {
                self.send_to(member, ServerMsg::error(ErrorCode::MediaFailed, reason));
                let bye = ServerMsg::Bye {
                    reason: ByeReason::MediaFailed,
                };
                self.send_to(member, bye);
                self.why(member, "media failed");
                self.remove(member).await;
            }
        }
    }

    /// Drops the members whose media deadline has passed without their media connecting: a
    /// member who joins and never connects would otherwise hold a place in the room forever.
    pub(super) async fn drop_unconnected(&mut self) {
        let now = Instant::now();
        while let Some(&(at, member)) = self.unconnected.front() {
            if at > now {
                break;
            }
            self.unconnected.pop_front();
            if self.members.get(&member).is_none_or(|m| m.connected) {
                continue;
            }
            let message = "media did not connect in time after joining";
            self.send_to(member, ServerMsg::error(ErrorCode::MediaFailed, message));
            let bye = ServerMsg::Bye {
                reason: ByeReason::MediaFailed,
            };
            self.send_to(member, bye);
            self.local
                .media_deadline_dropped
                .fetch_add(1, Ordering::Relaxed);
            debug!(room = self.name, %member, "{message}");
            self.why(member, "media did not connect in time");
            self.remove(member).await;
        }
    }
}
