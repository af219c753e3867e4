//! Members' video: whether each sends their camera and screen share now (shown to everyone),
//! and how each shows the others' video tracks — the size of each tile, which decides the
//! layer of a simulcast track the media core sends it.

use free4chat_sfu::VideoQuality;
use free4chat_signal::{MemberId, ServerMsg, TileView};

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

impl Room {
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
            let published = self
                .members
                .get(&tile.peer)
                .is_some_and(|p| tile.peer != member && p.tracks.iter().any(|t| t.id == tile.id));
            if !published {
                continue;
            }
            let quality = quality_for_tile(tile.width, tile.height);
            self.link.view_video(member, tile.peer, tile.id, quality);
        }
        self.drive_link().await;
    }
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
