//! What participants' sessions report, and forwarding: tracks published, packets prepared
//! once and fanned out to each up-track's subscribers, keyframe requests.

use str0m::bwe::BweKind;
use str0m::media::{Direction, MediaKind, Mid, Rid};
use str0m::rtp::RtpPacket;
use str0m::{Event, IceConnectionState, Input};
use tracing::debug;

use free4chat_ids::{MemberId, RoomId, TrackKind};

use super::Sfu;
use crate::api::{MediaEvent, VideoQuality};
use crate::participant::MAX_PUBLISHED_TRACKS;
use crate::participants::ParticipantKey;
use crate::prepared::Relay;
use crate::uptrack::{UpTrack, UpTrackKey};

impl Sfu {
    /// Acts on the str0m events drained so far until none are left. Acting may drain further
    /// participants, whose events are acted on in turn.
    pub(super) fn act_on_rtc_events(&mut self) {
        while let Some((key, event)) = self.rtc_events.pop_front() {
            self.on_rtc_event(key, event);
        }
    }

    fn on_rtc_event(&mut self, key: ParticipantKey, event: Event) {
        let now = self.now;
        let Some(p) = self.participants.get_mut(key) else {
            return;
        };
        match event {
            Event::Connected => {
                p.connection.connected = true;
                let member = p.member;
                self.emit(MediaEvent::Connected { member });
            }
            Event::IceConnectionStateChange(state) => {
                p.connection.disconnected_since = match state {
                    IceConnectionState::Disconnected => Some(now),
                    _ => None,
                };
            }
            Event::MediaAdded(added) => {
                let receiving =
                    matches!(added.direction, Direction::RecvOnly | Direction::SendRecv);
                if receiving {
                    let kind = match added.kind {
                        MediaKind::Audio => TrackKind::Audio,
                        MediaKind::Video => TrackKind::Video,
                    };
                    // The layers the publisher sends, in its `a=simulcast` send line.
                    let rids = added
                        .simulcast
                        .map(|s| s.recv.into_iter().map(|l| l.rid).collect())
                        .unwrap_or_default();
                    self.publish(key, (added.mid, rids), kind);
                }
            }
            Event::RtpPacket(packet) => {
                if !p.connection.media {
                    p.connection.media = true;
                    let member = p.member;
                    self.emit(MediaEvent::FirstMedia { member });
                }
                self.forward(key, packet)
            }
            Event::KeyframeRequest(req) => {
                // Of the layer the viewer is sent (or about to be); of a simulcast track not
                // sent yet, none: its layer switch asks for the keyframe it waits for.
                let down = p.down_on(req.mid);
                let source = down.and_then(|d| Some((d.track_source()?, d.layer.keyframe_layer())));
                let room = p.room;
                if let Some(((publisher, mid), layer)) = source {
                    self.ask_keyframe(room, publisher, mid, layer);
                }
            }
            Event::StreamPaused(paused) => {
                let member = p.member;
                if let Some(t) = self
                    .up_tracks
                    .find(member, paused.mid)
                    .and_then(|up| self.up_tracks.get_mut(up))
                {
                    t.set_paused(paused.rid, paused.paused);
                }
            }
            Event::EgressBitrateEstimate(BweKind::Twcc { estimate, .. }) => {
                let estimate = estimate.as_u64();
                // The first is the start it was configured with, not a measurement: until one
                // comes, the caps alone decide (a viewer is not moved down and up again while
                // the estimator's first probes find the room).
                if p.bandwidth.estimate.is_some() || estimate != super::bandwidth::ESTIMATOR_START {
                    p.bandwidth.estimate = Some(estimate);
                    self.allocate(key);
                } else {
                    // Where it stands, for its first step down to be seen as one.
                    p.bandwidth.seen = Some(estimate);
                }
            }
            Event::PeerStats(s) => p.quality.on_peer(&s),
            Event::MediaEgressStats(s) => p.quality.on_egress(&s),
            Event::MediaIngressStats(s) => {
                let member = p.member;
                // Jitter is wanted of audio, in its RTP clock (Opus: 48 kHz).
                let audio = self
                    .up_tracks
                    .find(member, s.mid)
                    .and_then(|up| self.up_tracks.get(up))
                    .is_some_and(|t| t.kind == TrackKind::Audio);
                if let Some(p) = self.participants.get_mut(key) {
                    p.quality.on_ingress(&s, audio.then_some(48_000));
                }
            }
            _ => {}
        }
    }

    /// A participant publishes a new track: an up-track every other member of the room here
    /// subscribes to.
    fn publish(&mut self, key: ParticipantKey, (mid, rids): (Mid, Vec<Rid>), kind: TrackKind) {
        let Some(p) = self.participants.get(key) else {
            return;
        };
        let (room, member) = (p.room, p.member);
        if self.up_tracks.find(member, mid).is_some() {
            return;
        }
        if p.published.len() >= MAX_PUBLISHED_TRACKS {
            debug!(%member, "track not forwarded: too many published");
            return;
        }
        let source = p.source;
        let mut track = UpTrack::new(room, (member, source), mid, kind, Some(key));
        track.set_rids(rids);
        let (up, _) = self.up_tracks.insert(track);
        if let Some(p) = self.participants.get_mut(key) {
            p.published.push(up);
        }
        self.emit(MediaEvent::TrackPublished {
            member,
            track: mid.to_string(),
            kind,
        });
        let shard = self.rooms.entry(room);
        shard.up_tracks.push(up);
        let others: Vec<ParticipantKey> = shard
            .members
            .iter()
            .copied()
            .filter(|o| *o != key)
            .collect();
        for other in others {
            self.subscribe(other, up);
            self.negotiate(other);
        }
    }

    /// Forwards one RTP packet a participant published: prepared once, relayed at once to the
    /// other workers that hold members of its room, and added to the fan-out batch for the
    /// subscribers here.
    fn forward(&mut self, key: ParticipantKey, packet: RtpPacket) {
        let now = self.now;
        let Some(silenced) = self.participants.get(key).map(|p| p.silenced) else {
            return;
        };
        let Some((up, layer)) = self.up_track_of(key, &packet) else {
            return;
        };
        // Muted for everyone: its voice (and its screen's sound) is not forwarded, relayed, nor
        // ranked for a slot; its camera and screen go on, as a moderator's mute silences a
        // member without hiding them.
        if silenced
            && self
                .up_tracks
                .get(up)
                .is_none_or(|t| t.kind == TrackKind::Audio)
        {
            return;
        }
        let recovered = self.fan_out.take_recovery_list();
        let (Some(p), Some(track)) = (self.participants.get_mut(key), self.up_tracks.get_mut(up))
        else {
            return;
        };
        let (prepared, noticed) = match track.prepare(&p.rtc, (packet, layer), recovered) {
            Ok(done) => done,
            Err(recovered) => return self.fan_out.give_back_recovery_list(recovered),
        };
        if let Some(level) = noticed.audio_level
            && let Some(speaking) = p.speaking.observe(now, level)
        {
            let event = MediaEvent::Speaking {
                member: p.member,
                speaking,
            };
            self.outbox.events.push_back((p.room, event));
        }
        if noticed.needs_keyframe {
            self.request_keyframe(key, prepared.mid, Some(layer));
        }
        if self.slots_on() {
            self.observe_speaker(up, noticed.audio_level, now);
        }
        // The other workers start on their share before this one writes its own.
        let mut relayed = false;
        if let Some(shard) = self.rooms.get(prepared.room) {
            for &worker in &shard.relay_to {
                let relay = Relay::Packet(Box::new(prepared.clone()));
                self.outbox.relays.push_back((worker, relay));
            }
            self.stats.relayed += shard.relay_to.len() as u64;
            relayed = !shard.relay_to.is_empty();
        }
        // A speaker nobody here hears now (an open microphone off the slots) stops here.
        let heard = self
            .up_tracks
            .get(up)
            .is_some_and(|t| !t.subscribers.is_empty());
        if heard {
            self.fan_out.push(prepared);
        } else if !relayed {
            self.fan_out
                .give_back_recovery_list(prepared.codec.recovered);
        }
    }

    /// The up-track a participant's packet belongs to, and its layer: by the SSRC it was
    /// last seen on, else by the mid (and simulcast rid) str0m knows the stream by.
    fn up_track_of(&mut self, key: ParticipantKey, packet: &RtpPacket) -> Option<(UpTrackKey, u8)> {
        let p = self.participants.get_mut(key)?;
        let ssrc = packet.header.ssrc;
        let seen = p.published.iter().find_map(|u| {
            let layer = self.up_tracks.get(*u)?.layer_of(ssrc)?;
            Some((*u, layer))
        });
        if seen.is_some() {
            return seen;
        }
        let (mid, rid) = p
            .rtc
            .direct_api()
            .stream_rx(&ssrc)
            .map(|s| (s.mid(), s.rid()))?;
        let rid = rid.or(packet.header.ext_vals.rid);
        let up = self.up_tracks.find(p.member, mid)?;
        if !p.published.contains(&up) {
            return None;
        }
        let layer = self.up_tracks.get_mut(up)?.bind(ssrc, rid)?;
        Some((up, layer))
    }

    /// Writes the copies of the fan-out batch to its next subscriber, then drains that
    /// subscriber once. Returns false when nothing is left to write.
    pub(super) fn fan_out_next_subscriber(&mut self) -> bool {
        let now = self.now;
        let Some((key, copies)) = self.fan_out.next_subscriber(&self.up_tracks) else {
            return false;
        };
        let fan_out = &mut self.fan_out;
        let asks = &mut self.keyframe_asks;
        let written = self.participants.get_mut(key).map(|p| {
            if !p.connection.connected {
                // Nothing may queue up before the session can send it.
                return Ok(0);
            }
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let mut n = 0;
                for i in copies {
                    let Some(copy) = fan_out.copy(i) else {
                        continue;
                    };
                    let (Some(down), Some((packet, payloads))) =
                        (p.downs.get_mut(copy.down.0), fan_out.packet(copy.packet))
                    else {
                        continue;
                    };
                    let w = down.write(&mut p.rtc, packet, payloads, now);
                    n += w.packets;
                    if let Some(layer) = w.ask_keyframe {
                        asks.push((p.room, packet.src, packet.mid, layer));
                    }
                }
                // str0m sends what was written on its next timeout: give it now, rather than
                // learn from a drain that the timeout is due.
                if n > 0
                    && let Err(e) = p.rtc.handle_input(Input::Timeout(now))
                {
                    debug!(member = %p.member, "timeout refused: {e}");
                }
                n
            }))
        });
        match written {
            Some(Ok(0)) | None => {}
            Some(Ok(n)) => {
                self.stats.forwarded += n;
                #[cfg(test)]
                {
                    self.test.fan_out_drains += 1;
                }
                self.drain(key);
                self.act_on_rtc_events();
            }
            Some(Err(_)) => self.fail(key, "internal error in the media session"),
        }
        // The keyframes the subscriber's layer switches wait for.
        if !self.keyframe_asks.is_empty() {
            while let Some((room, publisher, mid, layer)) = self.keyframe_asks.pop() {
                self.ask_keyframe(room, publisher, mid, Some(layer));
            }
            self.act_on_rtc_events();
        }
        true
    }

    /// Asks for a keyframe of `publisher`'s track `mid` (of simulcast layer `layer`, if
    /// given) on behalf of a member of `room`: from the publisher if this worker holds them,
    /// else through the workers the room is relayed to (the one that holds the publisher acts
    /// on it).
    pub(super) fn ask_keyframe(
        &mut self,
        room: RoomId,
        publisher: MemberId,
        mid: Mid,
        layer: Option<u8>,
    ) {
        if let Some(key) = self.participants.key_of(publisher) {
            return self.request_keyframe(key, mid, layer);
        }
        if let Some(shard) = self.rooms.get(room) {
            for &worker in &shard.relay_to {
                let src = publisher;
                let relay = match layer {
                    Some(layer) => Relay::LayerKeyframe { src, mid, layer },
                    None => Relay::Keyframe { src, mid },
                };
                self.outbox.relays.push_back((worker, relay));
            }
        }
    }

    /// Asks the publisher `key` for a keyframe of its track `mid`, of simulcast layer `layer`
    /// (a simulcast track: only of a layer named), at most once per layer per throttle period.
    pub(super) fn request_keyframe(&mut self, key: ParticipantKey, mid: Mid, layer: Option<u8>) {
        let now = self.now;
        let Some(member) = self.participants.get(key).map(|p| p.member) else {
            return;
        };
        let Some(track) = self
            .up_tracks
            .find(member, mid)
            .and_then(|up| self.up_tracks.get_mut(up))
        else {
            return;
        };
        let (rid, layer) = match (track.is_simulcast(), layer) {
            (false, _) => (None, 0),
            (true, None) => return,
            (true, Some(l)) => match track.rid_of(l) {
                Some(rid) => (Some(rid), l),
                None => return,
            },
        };
        if !track.may_request_keyframe(layer, now) {
            return;
        }
        self.stats.keyframe_requests += 1;
        self.with_participant(key, |p| {
            if let Some(stream) = p.rtc.direct_api().stream_rx_by_mid(mid, rid) {
                stream.request_keyframe(str0m::media::KeyframeRequestKind::Pli);
            }
        });
        self.drain(key);
    }

    /// The viewer `member` wants `quality` of `publisher`'s video track `track` (a screen
    /// share if `screen`). A viewer with no session here is ignored; an unknown track is
    /// remembered for when it comes. Its bandwidth is shared again at once.
    pub(super) fn view_video(
        &mut self,
        member: MemberId,
        (publisher, track): (MemberId, &str),
        quality: VideoQuality,
        screen: bool,
    ) {
        let mid = Mid::from(track);
        let Some(key) = self.participants.key_of(member) else {
            return;
        };
        if let Some(p) = self.participants.get_mut(key) {
            p.choose_video((publisher, mid), quality, screen);
        }
        self.allocate(key);
    }
}
