//! Helpers for the video tests: members with a synthetic camera, and waiting for what a viewer
//! receives.

use std::time::Duration;

use free4chat::Server;
use free4chat_client::{Client, ClientConfig, ClientState, VideoLog, VideoOptions};
use free4chat_signal::{ClientMsg, MemberId, ServerMsg, TileView, TrackKind};

/// A member who publishes a camera made as `video`, and audio.
pub async fn camera(server: &Server, room: &str, video: VideoOptions) -> Client {
    camera_with(server, room, video, |_| {}).await
}

/// [`camera`], its configuration changed by `change` (e.g. its media through a relay).
pub async fn camera_with(
    server: &Server,
    room: &str,
    video: VideoOptions,
    change: impl FnOnce(&mut ClientConfig),
) -> Client {
    let mut config = ClientConfig::new(server.http_addr(), room, "Camera");
    config.video = Some(video);
    change(&mut config);
    Client::join(config).await.expect("joins")
}

/// How long a viewer may take to see what a test waits for: longer than the other tests' WAIT,
/// as video sessions carry a hundred times audio's packets and a busy machine may be slow to
/// connect them.
pub const VIDEO_WAIT: Duration = Duration::from_secs(30);

/// The video stream `viewer` receives from `from`, once it holds `f` (within VIDEO_WAIT).
pub async fn sees(viewer: &Client, from: MemberId, f: impl Fn(&VideoLog) -> bool) -> VideoLog {
    let prefix = format!("{from}-");
    let found = viewer
        .wait_for(VIDEO_WAIT, |s: &ClientState| {
            s.video
                .values()
                .any(|v| v.stream.starts_with(&prefix) && f(v))
        })
        .await;
    let log = viewer.video_from(from);
    assert!(found, "{} sees {from}: {log:?}", viewer.id);
    log.expect("a video stream")
}

/// The id of `publisher`'s camera track, as `viewer` was told it.
pub fn camera_track(viewer: &Client, publisher: MemberId) -> String {
    viewer
        .with_state(|s| {
            s.messages.iter().find_map(|m| match m {
                ServerMsg::TrackAdded { track }
                    if track.member == publisher && track.kind == TrackKind::Video =>
                {
                    Some(track.id.clone())
                }
                _ => None,
            })
        })
        .expect("told of the camera")
}

/// `viewer` shows `publisher`'s track `track` in a tile of `width` × `height`.
pub async fn show(viewer: &Client, publisher: MemberId, track: &str, width: u32, height: u32) {
    let tile = TileView {
        peer: publisher,
        id: track.to_string(),
        width,
        height,
    };
    let tracks = vec![tile];
    viewer.send(ClientMsg::VideoView { tracks }).await;
}

/// Whether `publisher` is told, within VIDEO_WAIT, to send of `track` the layers (rids) that
/// `f` accepts.
pub async fn told_layers(publisher: &Client, track: &str, f: impl Fn(&[String]) -> bool) -> bool {
    let told = |s: &ClientState| {
        s.messages.iter().any(
            |m| matches!(m, ServerMsg::VideoLayers { track: t, active } if t == track && f(active)),
        )
    };
    publisher.wait_for(VIDEO_WAIT, told).await
}
