//! What the signalling layer asks of the core: participants coming and going, their SDP and
//! candidates, and the rooms spread over several workers.

use std::panic::{AssertUnwindSafe, catch_unwind};

use rand::Rng;
use rand::distr::Alphanumeric;
use str0m::bwe::Bitrate;
use str0m::change::SdpAnswer;
use str0m::ice::IceCreds;
use str0m::media::Mid;
use str0m::net::TcpType;
use str0m::rtp::Extension;
use str0m::{Candidate, RtcConfig};
use tracing::{debug, info};

use free4chat_ids::{MemberId, RoomId, TrackKind};

use super::Sfu;
use crate::api::{MediaErrorCode, MediaEvent};
use crate::participant::Participant;
use crate::participants::ParticipantKey;
use crate::sdp::{has_active_media, outgoing, parse_offer};
use crate::uptrack::{UpTrack, UpTrackKey};

/// Outgoing audio packets str0m keeps per stream. Audio is not retransmitted (browsers do not
/// negotiate NACK for Opus; RED covers loss), so the buffer only bridges a write and the drain
/// that follows it; str0m's default of 50 costs memory in every stream of every participant.
const SEND_BUFFER_AUDIO: usize = 16;

/// The RTP header extensions we negotiate. Transport-wide sequence numbers carry the
/// feedback (TWCC) a browser's send-side bandwidth estimator lives on: without it, Chromium
/// keeps its estimate near its start (about 300 kbit/s) and sends only the lowest simulcast
/// layer of a camera. The SDP we send keeps it in video sections only (`sdp::outgoing`), so
/// audio pays nothing for it. Absolute send time serves only the older receive-side
/// estimation and is left out.
const HEADER_EXTENSIONS: [(u8, Extension); 6] = [
    (1, Extension::AudioLevel),
    (3, Extension::TransportSequenceNumber),
    (4, Extension::RtpMid),
    (10, Extension::RtpStreamId),
    (11, Extension::RepairedRtpStreamId),
    (13, Extension::VideoOrientation),
];

/// Whether an SDP offer has a video section.
fn has_video_section(offer: &str) -> bool {
    offer.lines().any(|l| l.starts_with("m=video"))
}

impl Sfu {
    pub(super) fn add_participant(
        &mut self,
        room: RoomId,
        (member, source): (MemberId, u32),
        offer: &str,
    ) {
        let now = self.now;
        if self.participants.key_of(member).is_some() {
            return self.error(member, MediaErrorCode::InvalidSdp, "media session exists");
        }
        let video = has_video_section(offer);
        let offer = match parse_offer(offer) {
            Ok(o) => o,
            Err(e) => return self.refuse(room, member, e),
        };
        let ufrag = self.random_token(16);
        let creds = IceCreds {
            ufrag: ufrag.clone(),
            pass: self.random_token(32),
        };
        let mut rtc_config = RtcConfig::new()
            .set_rtp_mode(true)
            .set_ice_lite(true)
            .set_local_ice_credentials(creds)
            // The video codecs forwarded, in the order our answers list them: a browser
            // sends the first its publisher's offer and our answer share, so VP8 whenever it
            // offers VP8 (every browser decodes it); H264, VP9 or AV1 only when a client
            // offers that alone. A viewer is sent a track only in a codec its own answer
            // accepted (`forward::Route`). H265 is left out: few browsers decode it, and its
            // keyframes, like H264's, would need their parameter sets found first.
            .clear_codecs()
            .enable_opus(true, true)
            .enable_vp8(true)
            .enable_h264(true)
            .enable_vp9(true)
            .enable_av1(true)
            .set_send_buffer_audio(SEND_BUFFER_AUDIO)
            .clear_extension_map()
            .set_stats_interval(Some(crate::quality::STATS_INTERVAL))
            .set_dtls_cert(self.config.dtls_cert.clone());
        // Send-side estimation, for the video a member is sent, only for a member whose first
        // offer has video or who joins a room with video in it (a track of it known here, or a
        // member who offered video): it can only be enabled as the
        // session is built, and with it str0m paces every packet the session sends (a packet
        // written leaves on a later timeout, not in the drain that follows the write), which
        // costs an audio room 20-30 % more instructions per packet (measured, 1 x 4 x 16 with
        // open microphones: 21,177-21,494 without, 25,702-28,022 with), and which a member of
        // a room without video must not pay.
        let room_has_video = self.up_tracks.has_video(room)
            || self
                .participants
                .iter()
                .any(|(_, p)| p.room == room && p.offered_video);
        if video || room_has_video {
            let start = Bitrate::bps(super::bandwidth::ESTIMATOR_START);
            rtc_config = rtc_config.enable_bwe(Some(start));
        }
        for (id, ext) in HEADER_EXTENSIONS {
            rtc_config = rtc_config.set_extension(id, ext);
        }
        let candidates = self.config.candidates.clone();
        let tcp_candidates = self.config.tcp_candidates.clone();
        let built = catch_unwind(AssertUnwindSafe(move || {
            let mut rtc = rtc_config.build(now);
            for addr in candidates {
                if let Ok(c) = Candidate::host(addr, "udp") {
                    rtc.add_local_candidate(c);
                }
            }
            for addr in tcp_candidates {
                let passive = Candidate::builder()
                    .tcp()
                    .host(addr)
                    .tcptype(TcpType::Passive)
                    .build();
                if let Ok(c) = passive {
                    rtc.add_local_candidate(c);
                }
            }
            let answer = rtc.sdp_api().accept_offer(offer);
            (rtc, answer)
        }));
        let (rtc, answer) = match built {
            Ok((rtc, Ok(answer))) => (rtc, outgoing(&answer.to_sdp_string())),
            Ok((_, Err(e))) => return self.refuse(room, member, format!("offer refused: {e}")),
            Err(_) => return self.refuse(room, member, "offer refused"),
        };
        if !has_active_media(&answer) {
            return self.refuse(room, member, "the offer has nothing this server can use");
        }
        info!(%member, %room, "media session created");
        let mut participant = Participant::new((member, source), room, rtc, ufrag.clone(), now);
        participant.negotiation.first_offer_answered();
        participant.offered_video = video;
        // The audio slots, negotiated once, with the first server offer.
        participant.add_slots(self.rooms.slots());
        let key = self.participants.insert(participant);
        self.demux.add(key, ufrag);
        let shard = self.rooms.entry(room);
        shard.members.push(key);
        // Receive what the others in the room already publish, here or elsewhere.
        let existing = shard.up_tracks.clone();
        for up in existing {
            self.subscribe(key, up);
        }
        self.reassign_listener(key);
        self.emit(MediaEvent::Answer {
            member,
            sdp: answer,
        });
        self.after_sdp(key);
    }

    /// After an SDP step: drain the participant, act on what it produced, and send them our
    /// own offer if their down-tracks are waiting for one.
    fn after_sdp(&mut self, key: ParticipantKey) {
        self.drain(key);
        self.act_on_rtc_events();
        self.negotiate(key);
    }

    /// The member's participant, and whether a server offer to them is outstanding; `None`
    /// (and the member told) if they have no session here.
    fn session_of(&mut self, member: MemberId) -> Option<(ParticipantKey, bool)> {
        let Some(key) = self.participants.key_of(member) else {
            self.error(member, MediaErrorCode::NoSession, "no media session");
            return None;
        };
        let outstanding = self
            .participants
            .get(key)
            .is_some_and(|p| p.negotiation.is_outstanding());
        Some((key, outstanding))
    }

    pub(super) fn client_offer(&mut self, member: MemberId, sdp: &str) {
        let Some((key, outstanding)) = self.session_of(member) else {
            return;
        };
        if outstanding {
            // Glare: we are the impolite side. The client rolls back and offers again later.
            debug!(%member, "client offer ignored: a server offer is outstanding");
            return;
        }
        let offer = match parse_offer(sdp) {
            Ok(o) => o,
            Err(e) => return self.error(member, MediaErrorCode::InvalidSdp, e),
        };
        match self.with_participant(key, |p| p.rtc.sdp_api().accept_offer(offer)) {
            Some(Ok(answer)) => self.emit(MediaEvent::Answer {
                member,
                sdp: outgoing(&answer.to_sdp_string()),
            }),
            Some(Err(e)) => self.error(member, MediaErrorCode::InvalidSdp, format!("{e}")),
            None => return,
        }
        self.after_sdp(key);
    }

    pub(super) fn client_answer(&mut self, member: MemberId, sdp: &str) {
        let Some((key, outstanding)) = self.session_of(member) else {
            return;
        };
        if !outstanding {
            return self.error(
                member,
                MediaErrorCode::UnexpectedAnswer,
                "no offer outstanding",
            );
        }
        let answer = match SdpAnswer::from_sdp_string(sdp) {
            Ok(a) => a,
            Err(e) => return self.error(member, MediaErrorCode::InvalidSdp, format!("{e}")),
        };
        let result = self.with_participant(key, |p| {
            let pending = p.negotiation.take_pending()?;
            let r = p.rtc.sdp_api().accept_answer(pending, answer);
            crate::negotiation::Negotiation::settle(&mut p.downs, r.is_ok());
            Some(r)
        });
        match result {
            Some(Some(Ok(()))) => {
                // A new viewer of video needs a keyframe to start from.
                let video: Vec<(MemberId, Mid)> = self
                    .participants
                    .get(key)
                    .into_iter()
                    .flat_map(|p| p.downs.iter().map(|(_, d)| d))
                    .filter(|d| d.kind == TrackKind::Video && d.open_mid().is_some())
                    .filter_map(|d| d.track_source())
                    .collect();
                let room = self.participants.get(key).map(|p| p.room);
                for (publisher, mid) in video {
                    if let Some(room) = room {
                        // Of a simulcast track, each viewer's layer switch asks for its own.
                        self.ask_keyframe(room, publisher, mid, None);
                    }
                }
            }
            Some(Some(Err(e))) => self.error(member, MediaErrorCode::InvalidSdp, format!("{e}")),
            _ => return,
        }
        self.after_sdp(key);
    }

    pub(super) fn candidate(&mut self, member: MemberId, line: &str) {
        let Some(key) = self.participants.key_of(member) else {
            return self.error(member, MediaErrorCode::NoSession, "no media session");
        };
        let line = line.trim();
        let line = line.strip_prefix("a=").unwrap_or(line);
        if line.is_empty() {
            return;
        }
        // Browsers hide their addresses behind mDNS names we cannot resolve; their
        // connectivity checks tell us the address anyway.
        if line
            .split_whitespace()
            .nth(4)
            .is_some_and(|a| a.ends_with(".local"))
        {
            return;
        }
        let candidate = match Candidate::from_sdp_string(line) {
            Ok(c) => c,
            Err(e) => {
                return self.error(member, MediaErrorCode::InvalidCandidate, format!("{e}"));
            }
        };
        self.with_participant(key, |p| p.rtc.add_remote_candidate(candidate));
        self.drain(key);
    }

    /// Sends the participant a server offer if their down-tracks changed and none is
    /// outstanding.
    pub(super) fn negotiate(&mut self, key: ParticipantKey) {
        if let Some(Some(sdp)) = self.with_participant(key, |p| p.make_offer()) {
            let sdp = outgoing(&sdp);
            if let Some(member) = self.participants.get(key).map(|p| p.member) {
                self.emit(MediaEvent::Offer { member, sdp });
            }
            self.drain(key);
        }
    }

    /// `subscriber` receives the up-track `up` (unless it is their own) on a down-track of its
    /// own; with audio slots, an audio up-track reaches it on a slot instead, when selected.
    pub(super) fn subscribe(&mut self, subscriber: ParticipantKey, up: UpTrackKey) {
        let Some(track) = self.up_tracks.get(up) else {
            return;
        };
        if track.local == Some(subscriber) {
            return;
        }
        if track.kind == TrackKind::Audio && self.slots_on() {
            return;
        }
        let (publisher, mid, kind) = (track.publisher, track.mid, track.kind);
        let Some(p) = self.participants.get_mut(subscriber) else {
            return;
        };
        if p.member == publisher {
            return;
        }
        if let Some(down) = p.subscribe(publisher, mid, kind)
            && let Some(track) = self.up_tracks.get_mut(up)
        {
            track.subscribers.push(crate::uptrack::Subscriber {
                participant: subscriber,
                down,
            });
        }
    }

    /// Removes an up-track: its subscribers stop receiving it (their m-lines are stopped by
    /// the next offer). Returns the subscribers, to renegotiate.
    pub(super) fn remove_up_track(&mut self, up: UpTrackKey) -> Vec<ParticipantKey> {
        let Some(track) = self.up_tracks.remove(up) else {
            return Vec::new();
        };
        if let Some(shard) = self.rooms.get_mut(track.room) {
            shard.up_tracks.retain(|u| *u != up);
            shard.speakers.remove(up);
        }
        let mut affected = Vec::with_capacity(track.subscribers.len());
        let mut emptied_slots = false;
        for s in track.subscribers {
            let Some(p) = self.participants.get_mut(s.participant) else {
                continue;
            };
            match p.downs.get_mut(s.down.0).map(|d| &mut d.feed) {
                // A slot stays, empty until the next speaker.
                Some(crate::downtrack::Feed::Slot { current, .. }) => {
                    *current = None;
                    emptied_slots = true;
                }
                _ => {
                    p.unsubscribe(s.down);
                    affected.push(s.participant);
                }
            }
        }
        if emptied_slots {
            self.reassign_slots(track.room);
        }
        affected.dedup();
        affected
    }

    /// A member another worker holds publishes a track: this worker's members of the room
    /// receive it.
    pub(super) fn remote_track(
        &mut self,
        room: RoomId,
        publisher: (MemberId, u32),
        track: &str,
        kind: TrackKind,
    ) {
        let mid = Mid::from(track);
        let (up, new) = self
            .up_tracks
            .insert(UpTrack::new(room, publisher, mid, kind, None));
        if !new {
            return;
        }
        let shard = self.rooms.entry(room);
        shard.up_tracks.push(up);
        let members = shard.members.clone();
        for key in members {
            self.subscribe(key, up);
            self.negotiate(key);
        }
    }

    /// A member another worker held has gone: this worker's members stop receiving them.
    pub(super) fn remote_member_gone(&mut self, room: RoomId, member: MemberId) {
        let Some(shard) = self.rooms.get(room) else {
            return;
        };
        let theirs: Vec<UpTrackKey> = shard
            .up_tracks
            .iter()
            .copied()
            .filter(|u| {
                self.up_tracks
                    .get(*u)
                    .is_some_and(|t| t.publisher == member && t.local.is_none())
            })
            .collect();
        let mut affected = Vec::new();
        for up in theirs {
            affected.extend(self.remove_up_track(up));
        }
        affected.sort();
        affected.dedup();
        for key in affected {
            self.negotiate(key);
        }
    }

    /// Forgets a room none of whose members is here any more: the up-tracks its members
    /// elsewhere publish, and where to relay. The signalling layer sends them again if a
    /// member of the room comes back here.
    pub(super) fn close_room(&mut self, room: RoomId) {
        let empty = self.rooms.get(room).is_some_and(|s| s.members.is_empty());
        if !empty {
            return;
        }
        if let Some(shard) = self.rooms.remove(room) {
            for up in shard.up_tracks {
                self.up_tracks.remove(up);
            }
        }
        self.shrink();
    }

    /// Forgets a participant and everything that points at them. Returns their room and
    /// member id if they existed.
    pub(super) fn detach(&mut self, key: ParticipantKey) -> Option<(RoomId, MemberId)> {
        let participant = self.participants.remove(key)?;
        let (room, member) = (participant.room, participant.member);
        self.timers.cancel(key);
        let closed = self.demux.remove(key, &participant.ufrag);
        self.outbox.tcp_closes.extend(closed);
        // No longer a subscriber of what they received...
        for (down_key, down) in participant.downs.iter() {
            let up = match down.track_source() {
                Some((publisher, mid)) => self.up_tracks.find(publisher, mid),
                None => down.slot_current(),
            };
            if let Some(track) = up.and_then(|u| self.up_tracks.get_mut(u)) {
                track.unsubscribe(key, crate::downtrack::DownTrackKey(down_key));
            }
        }
        // ...and what they published is gone for everyone.
        let mut affected = Vec::new();
        for up in participant.published.iter().copied() {
            affected.extend(self.remove_up_track(up));
        }
        drop(participant);
        if let Some(shard) = self.rooms.get_mut(room) {
            shard.members.retain(|m| *m != key);
        }
        // After the room's last member here, what it kept for members elsewhere goes too.
        self.close_room(room);
        affected.sort();
        affected.dedup();
        for other in affected {
            self.negotiate(other);
        }
        Some((room, member))
    }

    /// Queues an event about a member for their room's signalling.
    pub(super) fn emit(&mut self, event: MediaEvent) {
        let member = event.member();
        let room = self
            .participants
            .key_of(member)
            .and_then(|k| self.participants.get(k))
            .map(|p| p.room);
        match room {
            Some(room) => self.outbox.events.push_back((room, event)),
            None => debug!(%member, "event for a member who is gone: {event:?}"),
        }
    }

    /// Tells a member something they sent was refused. A member with no session here has no
    /// room here either, so that is only logged.
    fn error(&mut self, member: MemberId, code: MediaErrorCode, message: impl Into<String>) {
        self.emit(MediaEvent::Error {
            member,
            code,
            message: message.into(),
        });
    }

    /// Refuses a first offer: the member gets no media session.
    fn refuse(&mut self, room: RoomId, member: MemberId, message: impl Into<String>) {
        let message = message.into();
        self.outbox
            .events
            .push_back((room, MediaEvent::Refused { member, message }));
    }

    fn random_token(&mut self, len: usize) -> String {
        (&mut self.rng)
            .sample_iter(Alphanumeric)
            .take(len)
            .map(char::from)
            .collect()
    }
}
