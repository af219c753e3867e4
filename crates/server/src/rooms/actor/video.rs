//! Members' video: whether each sends their camera and screen share now (shown to everyone),
//! how each shows the others' video tracks — the size of each tile, which decides the layer of
//! a simulcast track the media core sends it — and which layers of each camera anyone watches
//! at all (dynacast): the publisher is told to stop encoding and sending the others, which
//! spares its uplink and processor, and to resume one the moment someone needs it.
//!
//! Dynacast is decided here, where every viewer's tiles arrive whatever worker or node holds
//! the viewer, with the media core's sans-I/O [`Dynacast`] per camera track.

use std::collections::BTreeMap;

use free4chat_sfu::VideoQuality;
use free4chat_sfu::video::allocation::Layer;
use free4chat_sfu::video::dynacast::Dynacast;
use free4chat_signal::{MemberId, ServerMsg, TileView, TrackKind, TrackSource};
use tokio::time::Instant;

use super::Room;
use crate::rooms::trace;

/// The heights of a camera's three layers as our web client publishes them (a quarter, half
/// and all of 720p). A tile gets the smallest layer at least as tall as itself, as LiveKit
/// chooses, so a picture is never stretched when a sharper one exists.
const LOW_HEIGHT: u32 = 180;
const MEDIUM_HEIGHT: u32 = 360;

/// The layer cap for a tile of `width` × `height` device pixels. A tile's height counts, or
/// for a wide tile the height a 16:9 picture filling its width would have: a picture is
/// shown whole in its tile, so the larger of the two is what it is drawn at.
pub(crate) fn quality_for_tile(width: u32, height: u32) -> VideoQuality {
    if width == 0 || height == 0 {
        return VideoQuality::Off;
    }
    let drawn = height.max(u32::try_from(u64::from(width) * 9 / 16).unwrap_or(u32::MAX));
    if drawn <= LOW_HEIGHT {
        VideoQuality::Low
    } else if drawn <= MEDIUM_HEIGHT {
        VideoQuality::Medium
    } else {
        VideoQuality::High
    }
}

/// The rids of a camera's layers, by [`Layer::index`], as the web client names them.
const RIDS: [&str; 3] = ["q", "h", "f"];

/// The room's video: every viewer's cap per track it named, the layer its bandwidth allows it,
/// and each camera's dynacast. All are bounded by the room's members and their published
/// tracks: a view or an allocation is kept only for a track in the room, and goes with its
/// viewer or its track.
#[derive(Default)]
pub(super) struct Videos {
    /// (viewer, publisher, track id) → the cap its tile gives.
    views: BTreeMap<(MemberId, MemberId, String), VideoQuality>,
    /// (viewer, publisher, track id) → the layer the viewer's bandwidth allows it (`None`:
    /// nothing), as its media worker last said; before it says, the best under the cap.
    allocated: BTreeMap<(MemberId, MemberId, String), Option<Layer>>,
    /// (publisher, track id) → its layers' dynacast, and the rids last told to the publisher.
    cameras: BTreeMap<(MemberId, String), (Dynacast, [bool; 3])>,
}

impl Videos {
    /// When the next pause is due, if one is.
    pub(super) fn due(&self) -> Option<Instant> {
        self.cameras
            .values()
            .filter_map(|(d, _)| d.poll_timeout())
            .min()
            .map(Instant::from_std)
    }
}

impl Room {
    /// Starts dynacast for `publisher`'s camera track `track`.
    pub(super) fn camera_published(&mut self, publisher: MemberId, track: &str) {
        let key = (publisher, track.to_string());
        self.videos
            .cameras
            .entry(key)
            .or_insert_with(|| (Dynacast::new(), [true; 3]));
        self.update_dynacast();
    }

    /// Forgets `member` as a viewer and as a publisher.
    pub(super) fn video_member_left(&mut self, member: MemberId) {
        let videos = &mut self.videos;
        videos
            .views
            .retain(|(viewer, publisher, _), _| *viewer != member && *publisher != member);
        videos
            .allocated
            .retain(|(viewer, publisher, _), _| *viewer != member && *publisher != member);
        videos
            .cameras
            .retain(|(publisher, _), _| *publisher != member);
        self.update_dynacast();
    }

    /// Feeds every camera's dynacast with its viewers' needs now: each other member of the
    /// room views it at the cap its tile gives (the best layer before it says), and is given
    /// the layer its bandwidth allows (the best under the cap until its worker says). Then
    /// tells publishers what changed.
    pub(super) fn update_dynacast(&mut self) {
        let now = Instant::now().into_std();
        let members: Vec<MemberId> = self.members.keys().copied().collect();
        for ((publisher, track), (dynacast, _)) in &mut self.videos.cameras {
            let (views, allocated) = (&self.videos.views, &self.videos.allocated);
            let viewers = members.iter().filter(|m| *m != publisher).map(|viewer| {
                let key = (*viewer, *publisher, track.clone());
                let cap = views.get(&key).copied().unwrap_or(VideoQuality::High);
                let layer = allocated.get(&key).copied().unwrap_or(cap.highest());
                (layer, cap)
            });
            dynacast.update(viewers, now);
        }
        self.tell_layers();
    }

    /// A pause came due.
    pub(super) fn dynacast_timeout(&mut self) {
        let now = Instant::now().into_std();
        for (dynacast, _) in self.videos.cameras.values_mut() {
            dynacast.handle_timeout(now);
        }
        self.tell_layers();
    }

    /// Tells each publisher whose camera's layers changed which to send.
    fn tell_layers(&mut self) {
        let mut tell = Vec::new();
        for ((publisher, track), (dynacast, told)) in &mut self.videos.cameras {
            let mut now = *told;
            while let Some((layer, active)) = dynacast.poll() {
                now[layer.index()] = active;
            }
            if now != *told {
                *told = now;
                let active = Layer::ALL
                    .iter()
                    .filter(|l| now[l.index()])
                    .map(|l| RIDS[l.index()].to_string())
                    .collect();
                tell.push((*publisher, track.clone(), active));
            }
        }
        for (publisher, track, active) in tell {
            self.send_to(publisher, ServerMsg::VideoLayers { track, active });
        }
    }

    /// `member` turned their camera or screen share on or off: everyone is told, themself too.
    pub(super) fn video_state(&mut self, member: MemberId, camera: bool, screen: bool) {
        let Some(state) = self.members.get_mut(&member) else {
            return;
        };
        if (state.camera, state.screen) == (camera, screen) {
            return;
        }
        state.camera = camera;
        state.screen = screen;
        trace::changed(&state.span, "camera", &camera);
        trace::changed(&state.span, "screen", &screen);
        let msg = ServerMsg::Video {
            id: member,
            camera,
            screen,
        };
        self.broadcast(None, &msg);
    }

    /// `member`'s tiles (already checked by its connection): each names a track of another
    /// member of the room, whose worker then sends the layer that fits. Tiles of tracks not
    /// in the room are passed over.
    pub(super) async fn video_view(&mut self, member: MemberId, tiles: Vec<TileView>) {
        for tile in tiles {
            let Some(source) = self.video_source(member, tile.peer, &tile.id) else {
                continue;
            };
            let quality = quality_for_tile(tile.width, tile.height);
            let key = (member, tile.peer, tile.id.clone());
            if self.videos.views.insert(key, quality) == Some(quality) {
                continue;
            }
            let screen = source == TrackSource::Screen;
            self.link
                .view_video(member, tile.peer, (tile.id, screen), quality);
        }
        self.drive_link().await;
        self.update_dynacast();
    }
}

impl Room {
    /// The source of `publisher`'s video track `track`, if it is one in the room that `viewer`
    /// (someone else) may view.
    fn video_source(
        &self,
        viewer: MemberId,
        publisher: MemberId,
        track: &str,
    ) -> Option<TrackSource> {
        if viewer == publisher {
            return None;
        }
        let p = self.members.get(&publisher)?;
        p.tracks
            .iter()
            .find(|t| t.id == track && t.kind == TrackKind::Video)
            .map(|t| t.source)
    }

    /// `viewer`'s worker says which layer of `publisher`'s video track `track` its bandwidth
    /// allows it (an index, lowest first; `None`: nothing): dynacast takes it in.
    pub(super) fn video_allocated(
        &mut self,
        viewer: MemberId,
        (publisher, track): (MemberId, String),
        layer: Option<u8>,
    ) {
        if self.video_source(viewer, publisher, &track).is_none() {
            return;
        }
        let layer = layer.map(|l| {
            Layer::ALL
                .get(usize::from(l))
                .copied()
                .unwrap_or(Layer::High)
        });
        let key = (viewer, publisher, track);
        if self.videos.allocated.insert(key, layer) != Some(layer) {
            self.update_dynacast();
        }
    }
}

/// Whether a track is a camera, whose layers dynacast decides.
pub(super) fn is_camera(kind: TrackKind, source: TrackSource) -> bool {
    kind == TrackKind::Video && source == TrackSource::Camera
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tile_gets_the_smallest_layer_at_least_as_tall_as_itself() {
        assert_eq!(quality_for_tile(0, 0), VideoQuality::Off);
        assert_eq!(quality_for_tile(320, 0), VideoQuality::Off);
        assert_eq!(quality_for_tile(320, 180), VideoQuality::Low);
        assert_eq!(quality_for_tile(160, 180), VideoQuality::Low);
        assert_eq!(quality_for_tile(480, 270), VideoQuality::Medium);
        // A wide, short tile draws a 16:9 picture at the height its width gives.
        assert_eq!(quality_for_tile(1280, 100), VideoQuality::High);
        assert_eq!(quality_for_tile(640, 360), VideoQuality::Medium);
        assert_eq!(quality_for_tile(641, 361), VideoQuality::High);
        assert_eq!(quality_for_tile(u32::MAX, u32::MAX), VideoQuality::High);
    }
}
