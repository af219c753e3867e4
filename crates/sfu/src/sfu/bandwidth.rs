//! Each viewer's bandwidth shared among the video tracks it is sent: its send-side estimate
//! (TWCC, str0m's `Event::EgressBitrateEstimate`), less its audio, goes through its
//! [`Allocation`] to the layer each video down-track may be sent (its [`LayerSwitch`]
//! ceiling, under the viewer's cap), and the estimator is told what to probe for.
//!
//! Run once the estimator has measured (its first event, the configured start, is not taken):
//! when an estimate arrives, when the viewer changes a tile's cap, and every housekeeping
//! round (250 ms) for viewers sent video, which takes in new tracks, the publishers' measured
//! bitrates and changes of speaker. A member sent no video is never run: audio alone pays
//! nothing here.
//!
//! [`LayerSwitch`]: crate::video::layer::LayerSwitch

use std::time::{Duration, Instant};

use str0m::bwe::Bitrate;

use free4chat_ids::{MemberId, TrackKind};

use super::Sfu;
use crate::api::MediaEvent;
use crate::downtrack::DownTrackKey;
use crate::participants::ParticipantKey;
use crate::video::allocation::{AUDIO_PER_SLOT, Allocation, Priority, Probe, Tile};
use crate::video::fall::Fall;

/// Where each session's estimator starts (bits/s): room for a camera's full layer (1.5 Mbit/s
/// with its headroom) and the audio, so that a viewer on a wide link is not moved down while
/// the first measurements come in; a viewer on a narrow link is moved down as they do, having
/// been sent what its caps allow until then anyway.
pub const ESTIMATOR_START: u64 = 2_500_000;

/// How often a viewer held below what its tiles could have leads its estimator to probe again:
/// often enough that a link widened again is found within a few seconds (each probe that finds
/// room is followed by one twice as high), rarely enough that the short bursts of probing cost
/// a narrow link little.
pub const REPROBE: Duration = Duration::from_secs(2);

/// One viewer's share of its bandwidth among its video tiles.
#[derive(Debug, Default)]
pub struct ViewerBandwidth {
    /// The viewer's latest estimate (bits/s); none before the first.
    pub estimate: Option<u64>,
    /// Where the estimate stood when last looked at, the estimator's start included: what a
    /// new one is a fall from.
    pub seen: Option<u64>,
    fall: Fall,
    allocation: Allocation<DownTrackKey>,
    /// The tiles of the last run (storage reused from run to run).
    tiles: Vec<Tile<DownTrackKey>>,
    /// What the estimator was last told to aim for.
    probe: Option<Probe>,
    /// When the estimator was last led to probe again.
    reprobe: Option<Instant>,
}

#[cfg(test)]
impl ViewerBandwidth {
    /// What the estimator was last told to aim for, if anything.
    pub fn probe(&self) -> Option<Probe> {
        self.probe
    }
}

impl Sfu {
    /// Shares the bandwidth of every viewer sent video.
    pub(super) fn allocate_viewers(&mut self) {
        let viewers: Vec<ParticipantKey> = self
            .participants
            .iter()
            .filter(|(_, p)| p.downs.iter().any(|(_, d)| d.kind == TrackKind::Video))
            .map(|(key, _)| key)
            .collect();
        for key in viewers {
            self.allocate(key);
        }
    }

    /// Shares viewer `key`'s bandwidth among its video down-tracks: sets each one's allocated
    /// layer, tells the room of a change (for dynacast), and sets what its estimator aims for.
    pub(super) fn allocate(&mut self, key: ParticipantKey) {
        let Some(p) = self.participants.get_mut(key) else {
            return;
        };
        #[cfg(test)]
        let estimate = self.test.estimate.or(p.bandwidth.estimate);
        #[cfg(not(test))]
        let estimate = p.bandwidth.estimate;
        // No measurement yet (or no estimator: a member who joined with audio alone): the caps
        // alone decide, and there is nothing to gather the tiles for.
        let Some(estimate) = estimate else {
            return;
        };
        // The publishers heard on the viewer's audio slots: its active speakers (the protocol
        // has no pinned tile; the speaker stands in for it).
        let mut speakers: [Option<MemberId>; 8] = [None; 8];
        for (place, slot) in speakers.iter_mut().zip(&p.slots) {
            *place = p
                .downs
                .get(slot.0)
                .and_then(|d| d.slot_current())
                .and_then(|up| self.up_tracks.get(up))
                .map(|t| t.publisher);
        }
        // Audio is reserved for the slots that carry a voice: an empty slot sends nothing, and
        // three empty slots' 120 kbit/s is most of what a narrow link has (at 300 kbit/s the
        // quarter layer fits beside one voice, not beside three reservations). A voice put on
        // a slot is reserved for at the next run, within 250 ms.
        let voices = speakers.iter().flatten().count() as u64;
        let bandwidth = &mut p.bandwidth;
        bandwidth.tiles.clear();
        // What the viewer is sent now, for a fall of its estimate to be taken against.
        let mut sent: u64 = 0;
        for (i, down) in p.downs.iter() {
            if down.kind != TrackKind::Video || down.is_stopping() {
                continue;
            }
            let Some((publisher, mid)) = down.track_source() else {
                continue;
            };
            let Some(track) = self
                .up_tracks
                .find(publisher, mid)
                .and_then(|up| self.up_tracks.get(up))
            else {
                continue;
            };
            // Not measured yet: the cap alone decides until it is.
            if track.bitrates == [0; 3] {
                continue;
            }
            if let Some(&bitrate) = down
                .layer
                .current()
                .and_then(|l| track.bitrates.get(usize::from(l)))
            {
                sent = sent.saturating_add(u64::from(bitrate));
            }
            let priority = if down.screen {
                Priority::Screen
            } else if speakers.contains(&Some(publisher)) {
                Priority::Speaker
            } else {
                Priority::Other
            };
            bandwidth.tiles.push(Tile {
                id: DownTrackKey(i),
                priority,
                cap: down.layer.quality(),
                bitrates: track.bitrates.map(|b| (b > 0).then_some(u64::from(b))),
            });
        }
        if bandwidth.tiles.is_empty() && bandwidth.probe.is_none() {
            return;
        }
        let audio = AUDIO_PER_SLOT.saturating_mul(voices);
        let now = self.now;
        if let Some(seen) = bandwidth.seen.replace(estimate)
            && seen != estimate
        {
            let sent = sent.saturating_add(audio);
            bandwidth.fall.observe(seen, estimate, sent, now);
        }
        let budget = bandwidth.fall.apply(estimate, now);
        let chosen = bandwidth
            .allocation
            .allocate(Some(budget), audio, &bandwidth.tiles);
        let (member, room) = (p.member, p.room);
        for &(down, layer) in chosen {
            let Some(d) = p.downs.get_mut(down.0) else {
                continue;
            };
            let layer = layer.and_then(|l| u8::try_from(l.index()).ok());
            if d.layer.allocated() == Some(layer) {
                continue;
            }
            d.layer.set_allocated(layer);
            if let Some((publisher, mid)) = d.track_source() {
                let event = MediaEvent::VideoAllocated {
                    member,
                    publisher,
                    track: mid.to_string(),
                    layer,
                };
                self.outbox.events.push_back((room, event));
            }
        }
        let mut probe = bandwidth.allocation.probe();
        // Within a fall's cap, no padding toward the next layer: the path is full already.
        if bandwidth.fall.is_capped(estimate) {
            probe.minimum = 0;
        } else if probe.minimum > 0 && bandwidth.reprobe.is_none_or(|at| now >= at + REPROBE) {
            // Held below what its tiles could have: the estimator probes again. It probes when
            // the rate it is told to aim for rises (and its own gates allow: not while
            // congested, nor above what it already has), and a probe that finds room leads to
            // the next, twice as high; so the aim is told a little lower now and as it is at
            // the next run, 250 ms on. Without it, once a narrowing has passed, only its
            // periodic probing (every 5 s, and only while sending well below the estimate)
            // finds the room again.
            bandwidth.reprobe = Some(now);
            probe.desired = probe.desired.saturating_sub(probe.desired / 64);
        }
        if bandwidth.probe == Some(probe) {
            return;
        }
        bandwidth.probe = Some(probe);
        self.with_participant(key, |p| {
            let desired = Bitrate::bps(probe.desired);
            p.rtc
                .bwe()
                .set_bitrate(Bitrate::bps(probe.minimum), desired);
        });
        // The estimator's timers moved.
        self.drain(key);
    }
}
