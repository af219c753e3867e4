//! The size at which every viewer shows every camera (`--tile WxH`), and the simulcast layer
//! that size asks for: free4chat is told the tile (`video_view`) and picks the layer itself;
//! Janus is asked for the same layer (`substream`), so that both forward the same streams.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use free4chat_client::Layer;
use free4chat_client::media::lock_state;
use free4chat_signal::{ClientMsg, ServerMsg, TileView, Track, TrackKind};

use crate::target::{Inner, Member, Role};

/// Time for every member of a room to learn of every camera in it.
const TRACKS_TIMEOUT: Duration = Duration::from_secs(20);

/// A tile, in device pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tile {
    pub width: u32,
    pub height: u32,
}

/// The largest tile side free4chat accepts (its `video_view` limit).
const MAX_SIDE: u32 = 16_384;

impl FromStr for Tile {
    type Err = String;

    /// `640x360` (or `640×360`): both sides 1 to 16,384.
    fn from_str(s: &str) -> Result<Tile, String> {
        let (w, h) = s
            .split_once(['x', 'X', '×'])
            .ok_or_else(|| format!("{s}: a tile is WIDTHxHEIGHT, e.g. 640x360"))?;
        let side = |v: &str| -> Result<u32, String> {
            match v.trim().parse::<u32>() {
                Ok(n) if (1..=MAX_SIDE).contains(&n) => Ok(n),
                _ => Err(format!("{s}: each side is 1 to {MAX_SIDE} pixels")),
            }
        };
        Ok(Tile {
            width: side(w)?,
            height: side(h)?,
        })
    }
}

impl fmt::Display for Tile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.width, self.height)
    }
}

impl Tile {
    /// The layer free4chat sends to this tile (docs/protocol.md, *Video*): the smallest at
    /// least as tall as the tile, a wide tile counting as tall as a 16:9 picture filling its
    /// width.
    pub fn layer(self) -> Layer {
        let wide = u64::from(self.width) * 9 / 16;
        let tall = u64::from(self.height).max(wide);
        match tall {
            0..=180 => Layer::Q,
            181..=360 => Layer::H,
            _ => Layer::F,
        }
    }

    /// Janus's `substream` for that layer: 0 lowest, 2 highest.
    pub fn substream(self) -> u8 {
        self.layer().index() as u8
    }
}

/// free4chat: once every member of a room knows every other speaker's camera, each tells the
/// server it shows them all in `tile`.
pub async fn show_cameras(members: &[Member], tile: Tile) -> Result<(), String> {
    let speakers = members.iter().filter(|m| m.role == Role::Speaker).count();
    let deadline = Instant::now() + TRACKS_TIMEOUT;
    for m in members {
        let Inner::Free4chat(client) = &m.inner else {
            continue;
        };
        let expected = speakers - usize::from(m.role == Role::Speaker);
        let cameras = loop {
            let cameras = cameras_known(&client.joined, &lock_state(&m.state).messages);
            if cameras.len() >= expected {
                break cameras;
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{} of {expected} cameras known to a member after {TRACKS_TIMEOUT:?}",
                    cameras.len()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let tracks = cameras
            .into_iter()
            .map(|t| TileView {
                peer: t.member,
                id: t.id,
                width: tile.width,
                height: tile.height,
            })
            .collect();
        client.send(ClientMsg::VideoView { tracks }).await;
    }
    Ok(())
}

/// The video tracks a member knows of: those in its `joined`, and those added since (and not
/// removed).
fn cameras_known(joined: &ServerMsg, messages: &[ServerMsg]) -> Vec<Track> {
    let mut tracks: Vec<Track> = match joined {
        ServerMsg::Joined { tracks, .. } => tracks.clone(),
        _ => Vec::new(),
    };
    for msg in messages {
        match msg {
            ServerMsg::TrackAdded { track } => tracks.push(track.clone()),
            ServerMsg::TrackRemoved { track } => {
                tracks.retain(|t| (t.member, &t.id) != (track.member, &track.id))
            }
            _ => {}
        }
    }
    tracks.retain(|t| t.kind == TrackKind::Video);
    tracks.sort_by(|a, b| (a.member, &a.id).cmp(&(b.member, &b.id)));
    tracks.dedup_by(|a, b| (a.member, &a.id) == (b.member, &b.id));
    tracks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tile(s: &str) -> Tile {
        s.parse().unwrap()
    }

    #[test]
    fn tiles_parse_from_width_by_height_and_nonsense_is_refused() {
        assert_eq!(
            tile("640x360"),
            Tile {
                width: 640,
                height: 360
            }
        );
        assert_eq!(tile("1280×720").to_string(), "1280x720");
        assert_eq!(tile("320X180").height, 180);
        for bad in [
            "", "640", "x360", "640x", "0x360", "640x0", "640x-1", "99999x1", "axb",
        ] {
            assert!(bad.parse::<Tile>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_tile_asks_for_the_smallest_layer_at_least_as_tall_as_itself() {
        assert_eq!(tile("320x180").layer(), Layer::Q);
        assert_eq!(tile("640x360").layer(), Layer::H);
        assert_eq!(tile("641x360").layer(), Layer::H, "641 wide draws 360 tall");
        assert_eq!(
            tile("642x360").layer(),
            Layer::F,
            "wide: as tall as 16:9 at 642"
        );
        assert_eq!(tile("100x181").layer(), Layer::H);
        assert_eq!(tile("960x540").layer(), Layer::F);
        assert_eq!(tile("1x1").layer(), Layer::Q);
        assert_eq!(
            [tile("320x180"), tile("640x360"), tile("1280x720")].map(Tile::substream),
            [0, 1, 2]
        );
    }

    #[test]
    fn the_cameras_a_member_knows_are_the_video_tracks_added_and_not_removed() {
        use free4chat_signal::{MemberId, TrackSource};
        let track =
            |m: u64, id: &str, kind| Track::new(MemberId(m), id.into(), kind, TrackSource::Camera);
        let added = |t: Track| ServerMsg::TrackAdded { track: t };
        let messages = vec![
            added(track(3, "1", TrackKind::Video)),
            added(track(2, "1", TrackKind::Video)),
            added(track(2, "0", TrackKind::Audio)),
            added(track(4, "1", TrackKind::Video)),
            added(track(2, "1", TrackKind::Video)),
            ServerMsg::TrackRemoved {
                track: track(4, "1", TrackKind::Video),
            },
        ];
        // Not a `joined`: it adds nothing.
        let known = cameras_known(&messages[0], &messages);
        let ids: Vec<(u64, &str)> = known.iter().map(|t| (t.member.0, t.id.as_str())).collect();
        assert_eq!(ids, vec![(2, "1"), (3, "1")]);
    }
}
