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

use str0m::bwe::Bitrate;

use free4chat_ids::{MemberId, TrackKind};

use super::Sfu;
use crate::api::MediaEvent;
use crate::downtrack::DownTrackKey;
use crate::participants::ParticipantKey;
use crate::video::allocation::{AUDIO_PER_SLOT, Allocation, Priority, Probe, Tile};

/// Where each session's estimator starts (bits/s): room for a camera's full layer (1.5 Mbit/s
/// with its headroom) and the audio, so that a viewer on a wide link is not moved down while
/// the first measurements come in; a viewer on a narrow link is moved down as they do, having
/// been sent what its caps allow until then anyway.
pub const ESTIMATOR_START: u64 = 2_500_000;

/// One viewer's share of its bandwidth among its video tiles.
#[derive(Debug, Default)]
pub struct ViewerBandwidth {
    /// The viewer's latest estimate (bits/s); none before the first.
    pub estimate: Option<u64>,
    allocation: Allocation<DownTrackKey>,
    /// The tiles of the last run (storage reused from run to run).
    tiles: Vec<Tile<DownTrackKey>>,
    /// What the estimator was last told to aim for.
    probe: Option<Probe>,
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
        if estimate.is_none() {
            return;
        }
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
        let bandwidth = &mut p.bandwidth;
        bandwidth.tiles.clear();
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
        let audio = AUDIO_PER_SLOT.saturating_mul(p.slots.len() as u64);
        let chosen = bandwidth
            .allocation
            .allocate(estimate, audio, &bandwidth.tiles);
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
        let probe = bandwidth.allocation.probe();
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
