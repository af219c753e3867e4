//! Video end to end through the real server, with str0m clients that publish synthetic VP8
//! (one stream, or three simulcast layers) and record every frame they receive.

mod common;

use std::time::Duration;

use common::video::*;
use common::*;
use free4chat_client::relay::{RelayConfig, Way};
use free4chat_client::{Client, ClientConfig, Layer, VideoOptions};
use free4chat_signal::{ServerMsg, TrackKind, TrackSource};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_layer_video_reaches_two_viewers_whole_and_their_keyframe_requests_reach_the_publisher()
{
    let server = server().await;
    // Keyframes only when asked for: every keyframe a viewer gets was requested.
    let mut video = VideoOptions::single(Layer::H);
    video.keyframe_interval = Duration::from_secs(600);
    let alice = camera(&server, "video", video).await;
    let bob = join(&server, "video", "Bob").await;
    let carol = join(&server, "video", "Carol").await;

    // Bob and Carol are told of a camera, and get its frames (2 s of them) from a keyframe on.
    for viewer in [&bob, &carol] {
        let log = sees(viewer, alice.id, |v| v.frames >= 60 && v.keyframes >= 1).await;
        assert_eq!(log.continuity_breaks(), 0, "{log:?}");
        assert_eq!(log.undecodable_frames, 0, "{log:?}");
        assert_eq!(log.frames_of(Layer::H) + log.foreign, log.frames, "{log:?}");
        assert_eq!(log.foreign, 0);
        assert!(log.layer_runs.iter().all(|r| r.sender == alice.id.0));
        assert!(
            log.packets >= 2 * log.frames,
            "a frame is two packets: {log:?}"
        );
        let announced = viewer.with_state(|s| {
            s.messages.iter().any(|m| {
                matches!(m, ServerMsg::TrackAdded { track }
                    if track.member == alice.id
                        && track.kind == TrackKind::Video
                        && track.source == TrackSource::Camera)
            })
        });
        assert!(announced, "a video track_added for the camera");
    }
    // Opening the viewers' streams asked Alice for keyframes.
    let sent = alice.video_sent();
    assert!(sent.keyframe_requests[Layer::H.index()] >= 1, "{sent:?}");
    assert_eq!(
        sent.frames[Layer::Q.index()] + sent.frames[Layer::F.index()],
        0
    );

    // Bob asks for a keyframe (after the server's throttle has passed): Alice is asked, and
    // sends one, which Bob receives.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let asked = alice.video_sent().keyframe_requests[Layer::H.index()];
    let keyframes = bob.video_from(alice.id).map_or(0, |v| v.keyframes);
    bob.request_keyframes().await;
    let reached = alice
        .wait_for(VIDEO_WAIT, |s| {
            s.video_sent.keyframe_requests[Layer::H.index()] > asked
        })
        .await;
    assert!(
        reached,
        "Bob's request reaches Alice: {:?}",
        alice.video_sent()
    );
    let log = sees(&bob, alice.id, |v| v.keyframes > keyframes).await;
    assert_eq!(log.continuity_breaks(), 0, "{log:?}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_behind_a_narrow_relay_loses_video_the_relay_counts_it_and_a_wide_one_loses_none()
{
    let server = server().await;
    let alice = camera(&server, "narrow", VideoOptions::single(Layer::H)).await;
    // A queue of 400 ms at the narrow rate: a deeper one would delay the session's STUN
    // checks past their deadline before it dropped anything.
    let config = RelayConfig {
        queue_bytes: 10_000,
        ..RelayConfig::default()
    };
    let relay = relay(&server, config).await;
    let mut config = ClientConfig::new(server.http_addr(), "narrow", "Bob");
    config.media_via = Some(relay.addr());
    let bob = Client::join(config).await.expect("joins");

    // Unlimited, the relay carries everything: Bob's media, and Alice's video to him, whole.
    let log = sees(&bob, alice.id, |v| v.frames >= 60 && v.keyframes >= 1).await;
    assert_eq!(log.continuity_breaks(), 0, "{log:?}");
    let stats = relay.stats();
    assert_eq!(stats.clients, 1);
    assert!(
        stats.down.bytes >= 60 * Layer::H.frame_bytes() as u64,
        "{stats:?}"
    );
    assert_eq!(stats.down.queue_drops, 0, "{stats:?}");

    // 200 kbit/s down for a 500 kbit/s stream: the queue overflows (until the server's estimate
    // of Bob's link falls and it stops sending him the stream), and the relay counts it.
    relay.set_rate(Way::Down, Some(200_000));
    let mut waited = Duration::ZERO;
    while relay.stats().down.queue_drops == 0 && waited < VIDEO_WAIT {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += Duration::from_millis(100);
    }
    assert!(relay.stats().down.queue_drops > 0, "{:?}", relay.stats());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_of_three_simulcast_layers_receives_the_full_one_whole() {
    let server = server().await;
    let alice = camera(&server, "layers", VideoOptions::simulcast()).await;
    let bob = join(&server, "layers", "Bob").await;
    // Alice sends all three layers...
    assert!(
        alice
            .wait_for(VIDEO_WAIT, |s| s.video_sent.frames.iter().all(|f| *f >= 30))
            .await,
        "{:?}",
        alice.video_sent()
    );
    // ...and Bob, with room for it, gets the full one, as one whole stream.
    let log = sees(&bob, alice.id, |v| v.frames_of(Layer::F) >= 60).await;
    assert_eq!(log.continuity_breaks(), 0, "{log:?}");
    assert_eq!(log.undecodable_frames, 0, "{log:?}");
    assert_eq!(log.current_layer(), Some(Layer::F), "{log:?}");
    // Every change of layer on the way up was at a keyframe.
    assert_eq!(log.switches_without_keyframe, 0, "{log:?}");
    assert!(
        log.layer_runs.iter().all(|r| r.starts_with_keyframe),
        "{:?}",
        log.layer_runs
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_gets_the_layer_its_tile_fits_and_the_publisher_is_told_the_layers_anyone_watches()
{
    let server = server().await;
    let alice = camera(&server, "tiles", VideoOptions::simulcast()).await;
    let bob = join(&server, "tiles", "Bob").await;
    let full = sees(&bob, alice.id, |v| v.current_layer() == Some(Layer::F)).await;
    let track = camera_track(&bob, alice.id);

    // A small tile: the lowest layer, from its keyframe, the stream's numbering going on.
    show(&bob, alice.id, &track, 320, 180).await;
    let low = sees(&bob, alice.id, |v| {
        v.current_layer() == Some(Layer::Q) && v.frames_of(Layer::Q) >= 15
    })
    .await;
    assert!(low.layer_switches > full.layer_switches, "{low:?}");
    assert_eq!(low.switches_without_keyframe, 0, "{low:?}");
    assert_eq!(low.seq_backwards + low.timestamp_backwards, 0, "{low:?}");
    // A picture number skipped only where a packet was lost on the way (a busy machine drops
    // datagrams on loopback too): the server's numbering itself goes on by one.
    assert!(low.picture_id_breaks <= low.seq_gaps, "{low:?}");

    // Nobody watches Alice's other layers now: she is told to send the lowest alone.
    assert!(
        told_layers(&alice, &track, |active| active == ["q"]).await,
        "Alice told to send q alone"
    );

    // A large tile: the full layer again, and Alice is told to send it.
    show(&bob, alice.id, &track, 1280, 720).await;
    let again = sees(&bob, alice.id, |v| {
        v.current_layer() == Some(Layer::F) && v.layer_switches > low.layer_switches
    })
    .await;
    assert_eq!(again.switches_without_keyframe, 0, "{again:?}");
    assert_eq!(
        again.seq_backwards + again.timestamp_backwards,
        0,
        "{again:?}"
    );
    assert!(again.picture_id_breaks <= again.seq_gaps, "{again:?}");
    assert!(
        told_layers(&alice, &track, |active| active.iter().any(|r| r == "f")).await,
        "Alice told to send f again"
    );
    server.shutdown().await;
}
